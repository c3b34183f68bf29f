/*
 * smtpd.h: the words every file of smtpd shares: the protocol's limits,
 * the configuration that start-up (smtpd.c) fills once, and the
 * envelope that carries one transaction from the dialogue (session.c)
 * through the deliverer's checks (priv.c) to delivery (delivery.c).
 * It offers types and one variable, conf; no functions.  Each module's
 * functions are in its own header.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <sys/types.h>

#define SMTPD_VERSION	"0.1"

#define SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, CRLF included */
#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */
#define SMTP_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define MAX_DOMAINS	32	/* -d, repeated */
#define MAX_TARGETS	1000	/* mailboxes and forwards of one message */
#define FULLNAME_MAX	128	/* a full name kept from the table or GECOS */

#define PRINTFLIKE(f, a)	__attribute__((format(printf, f, a)))
#define NORETURN		__attribute__((noreturn))

/* What the command line and the environment set up, once. */
#define FILTER_HEADERS_MAX 8192	/* what -X may add to a message */
#define FILTER_TIME	120	/* seconds -X has for a verdict, at most */
#define TLS_FACT_MAX	95	/* a TLS protocol's or cipher's name */
/* What such a name may hold (tls.c makes anything else '?'). */
#define TLS_FACT_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789._-"

/*
 * -F's or -X's command, split at spaces once at start-up (no shell
 * between): argv[0] is NULL when it has no word, or too many.
 */
#define PROGRAM_WORDS	32
struct program {
	char	*argv[PROGRAM_WORDS + 1];
	char	 words[4096];
};

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
	struct program	 forward_cmd;
	const char	*filter;		/* -X */
	struct program	 filter_cmd;
	int		 greet_pause;		/* -g, seconds */
	const char	*utmp;			/* -u */
	int		 mboxo;			/* -b mboxo */
	int		 implicit_tls;		/* -S: TLS from the first byte */
	int		 require_tls;		/* -R: no mail before TLS */
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
enum target_kind { TARGET_MAILBOX, TARGET_FORWARD, TARGET_SENT };

/* One place a message goes: a local mailbox or a forwarding address. */
struct target {
	enum target_kind	kind;
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
	const char	*tls_protocol;	/* "" when not over TLS */
	const char	*tls_cipher;
	const char	*for_rcpt;	/* the one RCPT, or NULL */
	const char	*headers;	/* -X's header fields, or "" */
	char		 id[32];
	time_t		 when;
};

#endif
