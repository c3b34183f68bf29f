/*
 * session.h: what the files of smtpd share.  smtpd.c owns start-up,
 * options and the client's bytes; session.c the dialogue and every reply;
 * message.c the DATA stream and its spool file; delivery.c the mailboxes
 * and terminals; aliases.c the table.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define SMTPD_VERSION	"0.1"

#define SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, CRLF included */
#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */
#define SMTP_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define MAX_DOMAINS	32	/* -d, repeated */
#define MAX_TARGETS	1000	/* mailboxes and forwards of one message */
#define FULLNAME_MAX	128	/* a full name kept from the table or GECOS */
#define ERROR_LIMIT	20	/* smtpd.8: refusals before 421 */
#define JUNK_LIMIT	100	/* smtpd.8: NOOP, RSET, VRFY... before 421 */
#define RECEIVED_LIMIT	100	/* SPEC 4: more Received: is a mail loop */

#define PRINTFLIKE(f, a)	__attribute__((format(printf, f, a)))
#define NORETURN		__attribute__((noreturn))

/*
 * Every reply, basic and RFC 3463 enhanced code side by side.  They are
 * sent with enhanced codes whether or not the client said EHLO, which
 * SPEC 3 allows; the compiler checks each use against its format.
 */
#define REPLY_GREETING	"220 %s ESMTP smtpd " SMTPD_VERSION
#define REPLY_CLOSING	"221 2.0.0 %s closing connection"
#define REPLY_HELP_LIST	"214-2.0.0 %s"
#define REPLY_HELP_END	"214 2.0.0 %s"
#define REPLY_HELLO	"250 %s"
#define REPLY_EHLO	"250-%s"
#define REPLY_EHLO_LAST	"250 %s"
#define REPLY_OK	"250 2.0.0 OK"
#define REPLY_RESET	"250 2.0.0 Reset"
#define REPLY_SENDER_OK	"250 2.1.0 Sender <%s> OK"
#define REPLY_RCPT_OK	"250 2.1.5 Recipient <%s> OK"
#define REPLY_DELIVERED	"250 2.0.0 Delivered, id %s"
#define REPLY_USER	"250 2.1.5 %s"
#define REPLY_LIST_NEXT	"250-2.1.5 %s"
#define REPLY_FORWARD	"251 2.1.5 User not local; will forward to <%s>"
#define REPLY_NO_VRFY	"252 2.5.2 Cannot VRFY user, but will accept " \
			"message and attempt delivery"
#define REPLY_NO_EXPN	"252 2.5.2 EXPN is disabled on this server"
#define REPLY_DATA	"354 Start mail input; end with <CRLF>.<CRLF>"
#define REPLY_DATA_TTY	"354 Enter the message; end with a line holding " \
			"a single dot"
#define REPLY_CONFIG	"421 4.3.0 %s local configuration error"
#define REPLY_TIMEOUT	"421 4.4.2 %s timeout"
#define REPLY_SHUTDOWN	"421 4.3.2 %s shutting down"
#define REPLY_ERRORS	"421 4.7.0 %s too many errors, closing connection"
#define REPLY_JUNK	"421 4.7.0 %s too many commands without mail, " \
			"closing connection"
#define REPLY_NOT_ACTIVE "450 4.2.1 User not active or not accepting messages"
#define REPLY_NOT_SENT	"451 4.2.1 Could not write to the terminal of <%s>"
#define REPLY_LOCAL	"451 4.3.0 Local error in processing: %s"
#define REPLY_TOO_MANY	"452 4.5.3 Too many recipients"
#define REPLY_NO_SPACE	"452 4.3.1 Insufficient system storage"
#define REPLY_UNKNOWN	"500 5.5.2 Command unrecognized"
#define REPLY_TOO_LONG	"500 5.5.6 Line too long (512 octets at most)"
#define REPLY_BAD_LINE	"500 5.5.2 Bare CR or NUL in command line"
#define REPLY_SYNTAX	"501 5.5.4 Syntax: %s"
#define REPLY_BAD_PATH	"501 5.1.3 Bad address syntax: %s"
#define REPLY_BAD_HELO	"501 5.5.4 Syntax: %s <domain>"
#define REPLY_NO_ARG	"501 5.5.4 %s takes no argument"
#define REPLY_TURN	"502 5.7.0 TURN refused: role reversal would hand " \
			"mail to an unauthenticated peer"
#define REPLY_SEQUENCE	"503 5.5.1 Bad sequence of commands"
#define REPLY_NEED_HELO	"503 5.5.1 Send HELO or EHLO first"
#define REPLY_NESTED	"503 5.5.1 Sender already specified"
#define REPLY_NEED_MAIL	"503 5.5.1 Need MAIL before RCPT"
#define REPLY_NEED_RCPT	"503 5.5.1 Need RCPT before DATA"
#define REPLY_HELP_NONE	"504 5.5.1 HELP topic unknown: %s"
#define REPLY_NO_USER	"550 5.1.1 <%s>: user unknown"
#define REPLY_NOWHERE	"550 5.1.1 <%s>: this alias leads to no mailbox"
#define REPLY_NO_MATCH	"550 5.1.1 String does not match anything"
#define REPLY_NOT_LIST	"550 5.1.1 <%s> is not a mailing list"
#define REPLY_BAD_BOX	"550 5.1.3 <%s>: mailbox name not allowed"
#define REPLY_RELAY	"550 5.7.1 relaying denied"
#define REPLY_NOT_LOCAL	"551 5.1.6 User not local; please try <%s>"
#define REPLY_MAIL_SIZE	"552 5.3.4 Message size exceeds fixed maximum " \
			"message size (%lld)"
#define REPLY_AMBIGUOUS	"553 5.1.4 User ambiguous"
#define REPLY_AMBIG_ONE	"553-5.1.4 %s"
#define REPLY_UTF8	"553 5.6.7 Must declare SMTPUTF8 to send UTF-8 " \
			"addresses"
#define REPLY_LOOP	"554 5.4.6 Too many Received: headers (mail loop)"
#define REPLY_BARE_EOL	"554 5.6.0 Message refused: bare CR or LF in " \
			"the data (lines must end in CRLF)"
#define REPLY_NUL	"554 5.6.0 Message refused: NUL byte in the data"
#define REPLY_PARAM	"555 5.5.4 Parameter not recognized: %s"
#define REPLY_PARAM_BAD	"501 5.5.4 Bad parameter: %s"

/* What the command line and the environment set up, once. */
struct config {
	const char	*name;			/* -n: our host name */
	const char	*domains[MAX_DOMAINS];	/* -d, or name + localhost */
	size_t		 ndomains;
	const char	*table;			/* -a */
	int		 table_given;		/* -a given: it must exist */
	const char	*spool;			/* -m */
	long long	 maxsize;		/* -s */
	size_t		 maxrcpt;		/* -r */
	int		 timeout;		/* -t, seconds */
	int		 table_only;		/* -T */
	int		 no_vrfy;		/* -V */
	int		 no_expn;		/* -E */
	const char	*forward;		/* -F */
	const char	*utmp;			/* -u */
	int		 mboxo;			/* -b mboxo */
	int		 log_stderr;		/* -e, or stdin is a tty */
	int		 tty;			/* stdin is a terminal */
	int		 relay_client;		/* RELAYCLIENT is set */
	const char	*user;			/* -U */
	int		 drop;			/* root: become -U's account */
	uid_t		 user_uid;
	gid_t		 user_gid;
	char		 client_ip[64];		/* "" for a local session */
	char		 client_host[SMTP_DOMAIN_MAX + 1];
};
extern struct config conf;

/* What one table lookup or account lookup tells about a local name. */
struct user {
	char	name[SMTP_LOCAL_MAX + 1];	/* lower case */
	char	fullname[FULLNAME_MAX + 1];	/* "" when none is known */
};

/* TARGET_SENT: SOML reached the user's terminal; no mailbox copy. */
enum rcpt_kind { TARGET_MAILBOX, TARGET_FORWARD, TARGET_SENT };

/* One place a message goes: a local mailbox or a forwarding address. */
struct target {
	enum rcpt_kind	kind;
	char		name[SMTP_PATH_MAX + 1];
};

/* How a transaction began: MAIL, or RFC 821's terminal deliveries. */
enum mode { MODE_MAIL, MODE_SEND, MODE_SOML, MODE_SAML };

/*
 * One transaction, from the dialogue to delivery: the envelope, where
 * the message goes, and what the trace header names.  The dialogue
 * fills the first part as MAIL and RCPT come, the rest at the end of
 * DATA.
 */
struct envelope {
	enum mode	 mode;
	int		 smtputf8;	/* MAIL ... SMTPUTF8 */
	char		 sender[SMTP_PATH_MAX + 1];	/* "" for <> */
	struct target	*targets;	/* mailboxes and forwards */
	size_t		 ntargets;
	const char	*helo;		/* as the client gave it, cleaned */
	int		 esmtp;		/* it said EHLO */
	const char	*for_rcpt;	/* the one RCPT, or NULL */
	char		 id[32];
	time_t		 when;
};

/* Sticky outcomes of reading a message (message.c). */
enum msg_error {
	MSG_OK, MSG_BARE_EOL, MSG_NUL, MSG_TOO_BIG, MSG_LOOP, MSG_IO
};

#define MSG_BUF_SIZE	65536

/*
 * The DATA stream, from the client's bytes to the message as an mbox
 * holds it: dot-stuffing undone, LF line ends, readers' bookkeeping
 * headers dropped, mboxrd quoting.  The result stays in buf while it
 * fits and goes to an unlinked temporary file beyond that.
 */
struct message {
	int		 fd;		/* spool file, -1 until needed */
	int		 crlf;		/* lines end in CRLF (not a tty) */
	long long	 maxsize;
	long long	 size;		/* as received, CRLF counted */
	long long	 spooled;	/* bytes written to fd */
	enum msg_error	 error;
	int		 io_errno;
	int		 nreceived;	/* Received: headers seen */
	unsigned long	 lines;		/* lines ended so far */
	int		 wire;		/* state of the SMTP layer */
	int		 head;		/* state of the header filter */
	int		 in_header;	/* still in the header section */
	int		 dropping;	/* the current field is dropped */
	char		 name[32];	/* a field name being read */
	size_t		 namelen;
	int		 quote;		/* state of mboxrd quoting */
	size_t		 ngt;		/* '>' seen at a line's start */
	size_t		 nfrom;		/* bytes of "From " matched */
	size_t		 len;		/* bytes in buf */
	char		 buf[MSG_BUF_SIZE];
};

/* smtpd.c: the client's bytes, logging */
enum line_status {
	LINE_EOF = -1, LINE_TIMEOUT = -2, LINE_TERM = -3, LINE_TOO_LONG = -4,
	LINE_BAD = -5
};
void	client_open(int, int);
int	client_read_line(char *, size_t);
int	client_read_data(struct message *);
int	client_write(const char *, size_t);
int	client_flush(void);
void	log_msg(int, const char *, ...) PRINTFLIKE(2, 3);
pid_t	self_pid(void);
void	self_pid_reset(void);
void	client_signals(void);
int	pipe_cloexec(int [2]);
pid_t	spawn(char *const [], int, int, unsigned);
void	spawn_kill(pid_t);
void	close_from(int);
int	fd_wait(int, short, const struct timespec *, int);
int	client_stopping(void);
void	client_nap(const struct timespec *);
void	sanitize(char *);
int	utf8_clean(const char *);
size_t	utf8_char(const unsigned char *, unsigned *);
void	lowercase(char *, const char *, size_t);
void	deadline_set(struct timespec *, int);
int	deadline_left(const struct timespec *, struct timespec *);

/* session.c: the dialogue */
int	session_run(void);
void	session_refuse(void);
int	is_local_domain(const char *);

/* message.c: the DATA stream */
void	message_begin(struct message *, int, long long);
int	message_feed(struct message *, const char *, size_t, size_t *);
int	message_end(struct message *);
void	message_close(struct message *);
/* message_check(): where a check of the stored form stands. */
struct framing {
	int	 bol;		/* at a line's start */
	size_t	 nfrom;		/* bytes of "From " matched there */
	char	 last;		/* the last byte seen, '\0' for none */
};
#define FRAMING_START	{ 1, 0, '\0' }
int	message_check(struct framing *, const char *, size_t);
int	message_check_end(const struct framing *);
typedef int	(*message_fn)(void *, const char *, size_t);
enum each { EACH_SENT, EACH_MBOXO };
int	message_each(const struct message *, enum each, message_fn, void *);

/* delivery.c: mailboxes */
enum delivery_status {
	DELIVERY_OK, DELIVERY_TEMP, DELIVERY_NO_SPACE, DELIVERY_FORWARD,
	DELIVERY_NOT_SENT		/* SEND: a terminal not reached */
};
/* What became of a message, and why, for the reply and the log. */
struct outcome {
	enum delivery_status	 status;
	char			 why[256];
	char			 who[SMTP_PATH_MAX + 1];	/* NOT_SENT */
};
enum delivery_status	delivery_deliver(struct envelope *,
			    struct message *, struct outcome *);
int	delivery_forward_words(const char *);
const char	*delivery_forward_program(void);
int	delivery_safe_name(const char *);
int	delivery_terminals(const char *, const char *, const char *,
	    const struct message *);

/* aliases.c: the table */
struct member {			/* one place a table name leads to */
	enum rcpt_kind	kind;	/* TARGET_MAILBOX or TARGET_FORWARD */
	char		name[SMTP_PATH_MAX + 1];
	char		fullname[FULLNAME_MAX + 1];
};
typedef int	(*alias_member_fn)(const struct member *, void *);
/* EXPAND_UNSURE: not in the table, and the accounts cannot be asked now. */
enum expand { EXPAND_NONE, EXPAND_USER, EXPAND_LIST, EXPAND_UNSURE };
#define EXPAND_LOOP	0x1	/* a name met again on its own path */
#define EXPAND_UNKNOWN	0x2	/* a local target that is nobody */
#define EXPAND_SKIPPED	0x4	/* a target smtpd does not deliver to */
#define EXPAND_FULL	0x8	/* too many members, or nested too deep */
#define EXPAND_TRY_LATER 0x10	/* a member whose account cannot be asked */
enum expand	aliases_expand(const char *, struct user *, alias_member_fn,
		    void *, unsigned *);
int	aliases_check(const char *);
int	aliases_open(const char *, int);
void	aliases_close(void);
size_t	aliases_match_fullname(const char *, struct user *, size_t);

#endif
