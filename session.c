/*
 * session.c: the SMTP dialogue (RFC 5321, with RFC 821's SEND, SOML,
 * SAML and TURN) and every reply it sends.
 *
 * One table of commands drives the loop: the order check (503) is made
 * once from it, HELP's list is made from it, and an unknown verb is its
 * last row; one table of extensions drives EHLO's keywords and MAIL's
 * parameters.  reply() writes every reply of a session (session_refuse()
 * the one answer of a start-up that failed); it counts the client's
 * errors and ends the session after any 421.
 *
 * Offers: session_run(), the whole dialogue of one connection, and
 * session_refuse().  Relies on: client.c for every byte, aliases.c for
 * what a local name means, filter.c for -X's verdict, which comes before
 * the deliverer is asked, and priv.c to reach the deliverer.  Never:
 * touches the spool or runs as root (it is the child of the split), or
 * calls malloc(): everything a session holds is sized before the
 * greeting.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "accounts.h"
#include "aliases.h"
#include "client.h"
#include "delivery.h"
#include "filter.h"
#include "message.h"
#include "priv.h"
#include "session.h"
#include "smtpd.h"
#include "tls.h"

#define HAVE_HELO	0x1
#define HAVE_MAIL	0x2
#define HAVE_RCPT	0x4
#define HAVE_TLS	0x8	/* TLS is up, or not required (-R) */

/* What a command counts toward (smtpd.8, INPUT RULES: the limits). */
#define COUNT_REFUSALS	0x1	/* its 5xx replies are the client's errors */
#define COUNT_JUNK	0x2	/* it asks, and delivers nothing */

/*
 * A session's state, split by how long each part lives, each part with
 * the one function that resets it: the connection's lasts the session;
 * the greeting's goes with STARTTLS and a new HELO or EHLO
 * (reset_greeting); the transaction's with RSET, a new greeting and the
 * end of DATA (reset_transaction).
 */
struct connection {
	unsigned	 nerrors;	/* refusals since the last delivery */
	unsigned	 njunk;		/* NOOP, RSET... since the last delivery */
	unsigned	 nmessages;
	const struct command *cmd;	/* being run; NULL between commands */
	int		 over;		/* closed: no more replies, no reading */
};

struct greeting {
	int		 done;		/* HELO or EHLO was accepted */
	int		 esmtp;		/* it was EHLO */
	char		 helo[SMTP_DOMAIN_MAX + 1];
};

struct transaction {
	unsigned	 have;		/* HAVE_MAIL, HAVE_RCPT */
	struct envelope	 env;		/* for delivery */
	char		(*rcpt)[SMTP_PATH_MAX + 1];	/* accepted RCPTs */
	size_t		 nrcpt;
	char		 forward_to[SMTP_PATH_MAX + 1];	/* for a 251 */
};

struct session {
	struct connection conn;
	struct greeting	 hello;
	struct transaction tx;
	struct message	 msg;		/* stays last: see init_session() */
};

/* An address as parsed from a path, route dropped. */
struct address {
	char	 text[SMTP_PATH_MAX + 1];	/* local@domain as sent */
	char	 local[SMTP_PATH_MAX + 1];	/* unquoted */
	char	*domain;			/* in text; NULL when none */
	int	 utf8;				/* has 8-bit bytes */
	int	 too_long;			/* its local part was */
};

struct command {
	const char	*verb;
	unsigned	 needs;		/* HAVE_ bits */
	unsigned	 counts;	/* COUNT_ bits */
	void		(*run)(struct session *, char *);
	const char	*help;
};

static struct session sess;

static void	cmd_helo(struct session *, char *);
static void	cmd_ehlo(struct session *, char *);
static void	cmd_mail(struct session *, char *);
static void	cmd_rcpt(struct session *, char *);
static void	cmd_data(struct session *, char *);
static void	cmd_rset(struct session *, char *);
static void	cmd_vrfy(struct session *, char *);
static void	cmd_expn(struct session *, char *);
static void	cmd_help(struct session *, char *);
static void	cmd_noop(struct session *, char *);
static void	cmd_quit(struct session *, char *);
static void	cmd_turn(struct session *, char *);
static void	cmd_starttls(struct session *, char *);
static void	cmd_unknown(struct session *, char *);

#define PROBE	(COUNT_REFUSALS | COUNT_JUNK)
#define SENDER	(HAVE_TLS | HAVE_HELO)	/* -R: TLS first (smtpd.8, TLS) */

static const struct command commands[] = { /* verb, needs, counts, run, HELP */
	{ "HELO", 0,	     0,	       cmd_helo, "HELO <domain>" },
	{ "EHLO", 0,	     0,	       cmd_ehlo, "EHLO <domain>" },
	{ "MAIL", SENDER,    0,	       cmd_mail, "MAIL FROM:<path> [SIZE=n] "
	    "[BODY=7BIT|8BITMIME] [SMTPUTF8]" },
	{ "SEND", SENDER,    0,	       cmd_mail, "SEND FROM:<path> "
	    "[parameters] (to the user's terminal)" },
	{ "SOML", SENDER,    0,	       cmd_mail, "SOML FROM:<path> "
	    "[parameters] (terminal, or else mailbox)" },
	{ "SAML", SENDER,    0,	       cmd_mail, "SAML FROM:<path> "
	    "[parameters] (terminal and mailbox)" },
	{ "RCPT", HAVE_MAIL, COUNT_REFUSALS, cmd_rcpt, "RCPT TO:<path>" },
	{ "DATA", HAVE_RCPT, 0,	       cmd_data, "DATA (then the message, "
	    "ending with a line holding a single dot)" },
	{ "RSET", 0,	     COUNT_JUNK, cmd_rset, "RSET" },
	{ "VRFY", HAVE_TLS,  PROBE,    cmd_vrfy, "VRFY <user or name>" },
	{ "EXPN", HAVE_TLS,  PROBE,    cmd_expn, "EXPN <mailing list>" },
	{ "HELP", 0,	     COUNT_JUNK, cmd_help, "HELP [command]" },
	{ "NOOP", 0,	     COUNT_JUNK, cmd_noop, "NOOP" },
	{ "QUIT", 0,	     0,	       cmd_quit, "QUIT" },
	{ "TURN", 0,	     0,	       cmd_turn, "TURN (refused)" },
	{ "STARTTLS", 0,     0,	       cmd_starttls, "STARTTLS (when offered)" },
	{ NULL,   0,	     0,	       cmd_unknown, NULL } /* 500; stays last */
};

/*
 * The end of a session: replies flushed, logged once.  Nothing is read
 * or answered after it; the command that ended it returns, and so does
 * session_run().
 */
static void
session_close(struct session *s, const char *why)
{
	if (s->conn.over)
		return;
	s->conn.over = 1;
	(void)client_flush();
	log_msg(LOG_INFO, "end client=%s messages=%u (%s)",
	    conf.client_ip[0] != '\0' ? conf.client_ip : "local",
	    s->conn.nmessages, why);
}

/*
 * smtpd.8, LOGGING: a refusal of the client, one line naming its
 * address, in the form that examples/fail2ban matches.
 */
static void PRINTFLIKE(1, 2)
log_refused(const char *fmt, ...)
{
	char what[SMTP_LINE_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	log_msg(LOG_NOTICE, "refused client=%s: %s", conf.client_ip[0] != '\0' ?
	    conf.client_ip : "local", what);
}

static int
reply_code(const char *line)
{
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/*
 * Send one reply line; CRLF is added.  The client's own errors are
 * counted: every 500-504, and the 5xx answers to RCPT, VRFY and EXPN
 * (an unknown user is a refusal: a dictionary attack must end).  After
 * ERROR_LIMIT of them, or any 421, the session ends (smtpd.8, INPUT
 * RULES).
 */
static void PRINTFLIKE(2, 3)
reply(struct session *s, const char *fmt, ...)
{
	char line[SMTP_LINE_MAX + 1];
	va_list ap;
	int n, code;

	if (s->conn.over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof line - 3)
		n = sizeof line - 3;	/* RFC 5321 4.5.3.1.5: 512 at most */
	line[n++] = '\r';
	line[n++] = '\n';
	if (client_write(line, n) == -1) {
		session_close(s, "cannot write to the client");
		return;
	}
	if (line[3] == '-')
		return;
	code = reply_code(line);
	if (code == 421) {
		log_msg(LOG_INFO, "%.*s", n - 2, line);
		session_close(s, "421");
	}
	if (code >= 500 && code <= 599 && (code <= 504 || (s->conn.cmd != NULL &&
	    (s->conn.cmd->counts & COUNT_REFUSALS))) &&
	    ++s->conn.nerrors >= ERROR_LIMIT) {
		log_refused("too many errors");
		reply(s, REPLY_ERRORS, conf.name);
	}
}

/* smtpd.8, DESCRIPTION: a start-up problem still answers a waiting client. */
void
session_refuse(void)
{
	char line[SMTP_LINE_MAX];
	int n;

	if (conf.tty)
		return;
	n = snprintf(line, sizeof line, REPLY_CONFIG "\r\n",
	    conf.name != NULL ? conf.name : "localhost");
	if (n > 0 && n < (int)sizeof line && client_write(line, n) == 0)
		(void)client_flush();
}

/* The transaction as before MAIL: only its arrays stay. */
static void
reset_transaction(struct session *s)
{
	struct transaction t;

	memset(&t, 0, sizeof t);
	t.rcpt = s->tx.rcpt;
	t.env.targets = s->tx.env.targets;
	t.env.mode = MODE_MAIL;
	s->tx = t;
}

/* The greeting as before HELO, and so the transaction too. */
static void
reset_greeting(struct session *s)
{
	memset(&s->hello, 0, sizeof s->hello);
	reset_transaction(s);
}

/* What the session has, as the command table's `needs' names it. */
static unsigned
have(const struct session *s)
{
	return (s->hello.done ? HAVE_HELO : 0) | s->tx.have |
	    (tls_required() ? 0 : HAVE_TLS);
}

/* The verb's row, and in *arg what follows it and one space. */
static const struct command *
find_command(char *line, char **arg)
{
	const struct command *c;
	size_t n = strcspn(line, " ");

	*arg = line + n;
	while (**arg == ' ')
		(*arg)++;
	for (n = strlen(*arg); n > 0 && (*arg)[n - 1] == ' '; n--)
		(*arg)[n - 1] = '\0';
	for (c = commands; c->verb != NULL; c++)
		if ((n = strlen(c->verb), strncasecmp(line, c->verb, n) == 0) &&
		    (line[n] == ' ' || line[n] == '\0'))
			break;
	return c;
}

static void
reply_sequence(struct session *s, unsigned missing)
{
	if (missing & HAVE_TLS)
		reply(s, REPLY_NEED_TLS);
	else if (missing & HAVE_HELO)
		reply(s, REPLY_NEED_HELO);
	else if (missing & HAVE_MAIL)
		reply(s, REPLY_NEED_MAIL);
	else
		reply(s, REPLY_NEED_RCPT);
}

static void
init_session(struct session *s)
{
	/* Static, not allocated: untouched pages cost nothing. */
	static char rcpt[MAX_TARGETS][SMTP_PATH_MAX + 1];
	static struct target targets[MAX_TARGETS];

	/* All but the message, whose 64 KiB buffer need not be cleared. */
	memset(s, 0, offsetof(struct session, msg));
	s->tx.rcpt = rcpt;
	s->tx.env.targets = targets;
	s->msg.fd = -1;
	s->msg.spooled = 0;
}

/* A line could not be read: the session ends, or the line is refused. */
static void
read_failed(struct session *s, int status)
{
	switch (status) {
	case LINE_EOF:
		session_close(s, "end of input");
		break;
	case LINE_TIMEOUT:
		reply(s, REPLY_TIMEOUT, conf.name);	/* a 421 ends it */
		break;
	case LINE_TERM:
		reply(s, REPLY_SHUTDOWN, conf.name);
		break;
	case LINE_TOO_LONG:
		reply(s, REPLY_TOO_LONG);	/* the rest was dropped */
		break;
	default:
		reply(s, REPLY_BAD_LINE);
		break;
	}
}

/*
 * smtpd.8, POLICY: RFC 5321 4.3.1 has a client wait for the greeting;
 * one that talked first (after -g seconds) is refused and cut off.
 * 1 when the greeting may go out.
 */
static int
greeted(struct session *s)
{
	switch (client_talked_early(conf.greet_pause)) {
	case 0:
		return 1;
	case LINE_TERM:
		read_failed(s, LINE_TERM);
		return 0;
	}
	log_refused("talked before the greeting");
	reply(s, REPLY_EARLY, conf.name);
	session_close(s, "talked before the greeting");
	client_linger();
	return 0;
}

/*
 * smtpd.8, POLICY: an HTTP request line (a browser, a proxy scanner, a
 * web page's form aimed at port 25) is no SMTP command, and never will
 * be: its methods, upper case as HTTP has them, then a space.
 */
static int
http_request(const char *line)
{
	static const char *const methods[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
		"TRACE", "PATCH"
	};
	size_t i, n;

	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if ((n = strlen(methods[i]), strncmp(line, methods[i], n) == 0) &&
		    line[n] == ' ')
			return 1;
	return 0;
}

/* Serve the client until it quits or the session must end; 0. */
int
session_run(void)
{
	struct session *s = &sess;
	const struct command *c;
	char line[SMTP_LINE_MAX + 1], *arg;
	int n;

	init_session(s);
	log_msg(LOG_INFO, "start client=%s%s%s", conf.client_ip[0] != '\0' ?
	    conf.client_ip : "local", conf.client_host[0] != '\0' ? " host=" :
	    "", conf.client_host);
	if (greeted(s))
		reply(s, REPLY_GREETING, conf.name);
	while (!s->conn.over) {
		if ((n = client_read_line(line, sizeof line)) < 0) {
			read_failed(s, n);
			continue;
		}
		if (http_request(line)) {
			line[100] = '\0';	/* enough to know it by */
			sanitize(line);
			log_refused("not an SMTP client: %s", line);
			reply(s, REPLY_NOT_SMTP, conf.name);	/* a 421 */
			client_linger();
			continue;
		}
		c = find_command(line, &arg);
		s->conn.cmd = c;
		if (c->needs & ~have(s))
			reply_sequence(s, c->needs & ~have(s));
		else
			c->run(s, arg);
		/* each asks something of the table or the accounts: a
		 * client that only asks is probing (smtpd.8, INPUT RULES) */
		if ((c->counts & COUNT_JUNK) && ++s->conn.njunk >= JUNK_LIMIT &&
		    !s->conn.over) {
			log_refused("too many commands without mail");
			reply(s, REPLY_JUNK, conf.name);
		}
		s->conn.cmd = NULL;
	}
	message_close(&s->msg);
	return 0;
}

/* RFC 5321 4.1.2 Let-dig and ldh-str, and 8-bit bytes for U-labels. */
static int
domain_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c >= 0x80;
}

/*
 * A domain or an address literal at p, of at most SMTP_DOMAIN_MAX bytes;
 * the byte after it, or NULL when it is not one.
 */
static const char *
parse_domain(const char *p)
{
	const char *start = p;

	if (*p == '[') {	/* RFC 5321 4.1.3 address literal */
		p += strcspn(p, "[]\\ \t");
		return *p == ']' && p > start + 1 ? p + 1 : NULL;
	}
	for (;;) {
		if (!domain_char((unsigned char)*p) || *p == '-')
			return NULL;
		while (domain_char((unsigned char)*p))
			p++;
		if (p[-1] == '-')
			return NULL;
		if (*p != '.')
			break;
		p++;
	}
	return p - start <= SMTP_DOMAIN_MAX ? p : NULL;
}

/* RFC 5322 atext, and 8-bit bytes (RFC 6531) for UTF-8. */
static int
atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	    c >= 0x80;
}

/* A local part at p into a->local, unquoted; the byte after it, or NULL. */
static const char *
parse_local(const char *p, struct address *a)
{
	size_t n = 0;

	if (*p == '"') {	/* RFC 5321 4.1.2 Quoted-string */
		for (p++; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			if ((unsigned char)*p < 32 || *p == 127)
				return NULL;
			if (n + 1 >= sizeof a->local) {
				a->too_long = 1;
				return NULL;
			}
			a->local[n++] = *p;
		}
		a->local[n] = '\0';
		return p + 1;
	}
	/* Dot-string: atoms joined by single dots */
	if (!atext((unsigned char)*p))
		return NULL;
	while (atext((unsigned char)*p) ||
	    (*p == '.' && atext((unsigned char)p[1]))) {
		if (n + 1 >= sizeof a->local) {
			a->too_long = 1;	/* longer than any path */
			return NULL;
		}
		a->local[n++] = *p++;
	}
	if (*p == '.')
		return NULL;	/* a dot at the end, or two in a row */
	a->local[n] = '\0';
	return p;
}

/*
 * RFC 5321 4.1.2 Path: "<" [ A-d-l ":" ] Mailbox ">", or "<>" when
 * `empty_ok'.  The source route is accepted and ignored (RFC 5321 C).
 * A bare local part is taken as local.  On success *p moves past '>'
 * and NULL is returned; else a short reason.
 */
static const char *
parse_path(char **p, struct address *a, int empty_ok)
{
	const char *s = *p, *start, *end;
	size_t i;

	memset(a, 0, sizeof *a);
	while (*s == ' ')
		s++;		/* "MAIL FROM: <x>" is common enough */
	if (*s++ != '<')
		return "the address must be in angle brackets";
	if (*s == '>' && empty_ok) {
		*p = (char *)s + 1;
		return NULL;
	}
	if (*s == '@') {	/* source route */
		while (*s == '@' && (s = parse_domain(s + 1)) != NULL &&
		    *s == ',')
			s++;
		if (s == NULL || *s++ != ':')
			return "bad source route";
	}
	start = s;
	if ((s = parse_local(s, a)) == NULL || *a->local == '\0')
		return a->too_long ? "address too long" : "bad local part";
	if (*s == '@' && (s = parse_domain(s + 1)) == NULL)
		return "bad domain";
	if (*s != '>')
		return "bad address";
	end = s;
	if ((size_t)(end - start) > SMTP_PATH_MAX - 2)
		return "address too long";
	memcpy(a->text, start, end - start);
	a->text[end - start] = '\0';
	a->domain = strrchr(a->text, '@');
	if (a->domain != NULL && (a->text[0] != '"' ||
	    a->domain > strrchr(a->text, '"')))
		a->domain++;
	else
		a->domain = NULL;
	for (i = 0; a->text[i] != '\0'; i++)
		if ((unsigned char)a->text[i] >= 0x80)
			a->utf8 = 1;
	if (a->utf8 && !utf8_clean(a->text))
		return "not UTF-8, or a control character in it";
	*p = (char *)s + 1;
	return NULL;
}

/* "FROM:" or "TO:", case-insensitive; the rest, or NULL. */
static char *
skip_keyword(char *arg, const char *kw)
{
	size_t n = strlen(kw);

	return strncasecmp(arg, kw, n) == 0 ? arg + n : NULL;
}

/* MAIL's parameters so far: a repeated one must say the same again. */
struct mail_params {
	unsigned		 seen;		/* 1 SIZE, 2 BODY, 4 SMTPUTF8 */
	unsigned long long	 size;
	int			 body8;
};

/*
 * A parameter given again (Python's smtplib sends SMTPUTF8 and BODY=
 * twice): accepted when it says the same, 501 when it contradicts.
 * Returns 1 when it was seen before (and replied to if it differs).
 */
static int
param_again(struct session *s, struct mail_params *mp, unsigned bit,
    int same)
{
	if (!(mp->seen & bit)) {
		mp->seen |= bit;
		return 0;
	}
	if (!same)
		reply(s, REPLY_PARAM_BAD, "parameter given twice with "
		    "different values");
	return same ? 1 : -1;
}

/* SIZE=n (RFC 1870); 0 if accepted, else replied. */
static int
take_size(struct session *s, char *value, struct mail_params *mp)
{
	unsigned long long size;
	char *end;
	int again;

	errno = 0;
	if (value == NULL || !isdigit((unsigned char)*value) ||
	    (size = strtoull(value, &end, 10), *end != '\0') || errno != 0) {
		reply(s, REPLY_PARAM_BAD, "SIZE=");
		return -1;
	}
	if ((again = param_again(s, mp, 1, size == mp->size)) != 0)
		return again == 1 ? 0 : -1;
	mp->size = size;
	if (size > (unsigned long long)conf.maxsize) {
		reply(s, REPLY_MAIL_SIZE, conf.maxsize);
		return -1;
	}
	return 0;
}

/* BODY=7BIT or 8BITMIME (RFC 6152). */
static int
take_body(struct session *s, char *value, struct mail_params *mp)
{
	int again, body8;

	if (value == NULL || (strcasecmp(value, "7BIT") != 0 &&
	    strcasecmp(value, "8BITMIME") != 0)) {
		reply(s, REPLY_PARAM, "BODY= takes 7BIT or 8BITMIME");
		return -1;
	}
	body8 = strcasecmp(value, "8BITMIME") == 0;
	if ((again = param_again(s, mp, 2, body8 == mp->body8)) != 0)
		return again == 1 ? 0 : -1;
	mp->body8 = body8;
	return 0;
}

/* SMTPUTF8 (RFC 6531), no value. */
static int
take_smtputf8(struct session *s, char *value, struct mail_params *mp)
{
	if (value != NULL) {
		reply(s, REPLY_PARAM_BAD, "SMTPUTF8 takes no value");
		return -1;
	}
	(void)param_again(s, mp, 4, 1);
	s->tx.env.smtputf8 = 1;
	return 0;
}

static int
offer_starttls(void)
{
	return tls_offered();
}

static int
offer_vrfy(void)
{
	return !conf.no_vrfy;
}

static int
offer_expn(void)
{
	return !conf.no_expn;
}

/*
 * The extensions, in the order EHLO lists them, each with the condition
 * for listing it and the MAIL parameter it brings: EHLO's reply and
 * MAIL's parameters both come from here.
 */
static const struct extension {
	const char	*keyword;
	int		(*offered)(void);	/* NULL: always */
	const long long	*value;			/* shown after it, if any */
	const char	*param;			/* its MAIL parameter */
	int		(*take)(struct session *, char *, struct mail_params *);
} extensions[] = {
	{ "PIPELINING",	     NULL,	     NULL,	    NULL, NULL },
	{ "SIZE",	     NULL,	     &conf.maxsize, "SIZE", take_size },
	{ "8BITMIME",	     NULL,	     NULL,	    "BODY", take_body },
	{ "ENHANCEDSTATUSCODES", NULL,	     NULL,	    NULL, NULL },
	{ "SMTPUTF8",	     NULL,	     NULL,	    "SMTPUTF8", take_smtputf8 },
	{ "STARTTLS",	     offer_starttls, NULL,	    NULL, NULL },
	{ "VRFY",	     offer_vrfy,     NULL,	    NULL, NULL },
	{ "EXPN",	     offer_expn,     NULL,	    NULL, NULL },
	{ "SEND",	     NULL,	     NULL,	    NULL, NULL },
	{ "SOML",	     NULL,	     NULL,	    NULL, NULL },
	{ "SAML",	     NULL,	     NULL,	    NULL, NULL },
	{ "HELP",	     NULL,	     NULL,	    NULL, NULL },
};
#define NEXTENSIONS	(sizeof extensions / sizeof extensions[0])

/* One MAIL parameter, KEYWORD[=value]; 0 if accepted, else replied. */
static int
mail_param(struct session *s, char *param, struct mail_params *mp)
{
	char *value = strchr(param, '=');
	size_t i;

	if (value != NULL)
		*value++ = '\0';
	for (i = 0; i < NEXTENSIONS; i++)
		if (extensions[i].param != NULL &&
		    strcasecmp(param, extensions[i].param) == 0)
			return extensions[i].take(s, value, mp);
	reply(s, REPLY_PARAM, param);
	return -1;
}

/*
 * RFC 5321 4.1.1.2: MAIL, and RFC 821's SEND, SOML and SAML alike; the
 * verb being run says which (enum mode's order).
 */
static void
cmd_mail(struct session *s, char *arg)
{
	static const char *const verbs[] = { "MAIL", "SEND", "SOML", "SAML" };
	enum mode mode = MODE_MAIL;
	struct address a;
	struct mail_params mp = { 0, 0, 0 };
	const char *why;
	char *param, usage[48];

	while (mode < MODE_SAML && strcmp(s->conn.cmd->verb, verbs[mode]) != 0)
		mode++;

	if (s->tx.have & HAVE_MAIL) {
		reply(s, REPLY_NESTED);
		return;
	}
	if ((arg = skip_keyword(arg, "FROM:")) == NULL) {
		(void)snprintf(usage, sizeof usage, "%s FROM:<address> "
		    "[parameters]", verbs[mode]);
		reply(s, REPLY_SYNTAX, usage);
		return;
	}
	if ((why = parse_path(&arg, &a, 1)) != NULL) {
		reply(s, REPLY_BAD_PATH, why);
		return;
	}
	s->tx.env.smtputf8 = 0;
	while ((param = strtok(arg, " ")) != NULL) {
		arg = NULL;
		if (mail_param(s, param, &mp) == -1)
			return;
	}
	if (a.utf8 && !s->tx.env.smtputf8) {
		reply(s, REPLY_UTF8);
		return;
	}
	(void)snprintf(s->tx.env.sender, sizeof s->tx.env.sender, "%s", a.text);
	s->tx.env.mode = mode;
	s->tx.have |= HAVE_MAIL;
	reply(s, REPLY_SENDER_OK, s->tx.env.sender);
}

/* A target once: `bob' and `Bob' are one mailbox (smtpd.8, INPUT RULES). */
static int
add_target(struct session *s, enum target_kind kind, const char *name)
{
	size_t i;

	for (i = 0; i < s->tx.env.ntargets; i++)
		if (s->tx.env.targets[i].kind == kind &&
		    strcasecmp(s->tx.env.targets[i].name, name) == 0)
			return 0;
	if (s->tx.env.ntargets == MAX_TARGETS)
		return -1;
	s->tx.env.targets[s->tx.env.ntargets].kind = kind;
	(void)snprintf(s->tx.env.targets[s->tx.env.ntargets].name,
	    sizeof s->tx.env.targets[0].name, "%s", name);
	s->tx.env.ntargets++;
	return 0;
}

/* What an expansion for RCPT gathered. */
struct gather {
	struct session	*s;
	size_t		 local, remote;
	char		 first_remote[SMTP_PATH_MAX + 1];
};

/*
 * One member of an alias or list for RCPT: a mailbox, or a remote address,
 * kept only when there is a program to forward it (smtpd.8, FORWARDING AND
 * RELAYING).
 */
static int
gather_member(const struct member *m, void *arg)
{
	struct gather *g = arg;

	if (m->kind == TARGET_FORWARD) {
		if (g->remote++ == 0)
			(void)snprintf(g->first_remote, sizeof g->first_remote,
			    "%s", m->name);
		if (conf.forward == NULL)
			return 0;
	} else
		g->local++;
	return add_target(g->s, m->kind, m->name);
}

/* SEND: some mailbox among targets[from..] must be at a terminal. */
static int
at_terminal(struct session *s, size_t from)
{
	for (; from < s->tx.env.ntargets; from++)
		if (s->tx.env.targets[from].kind == TARGET_MAILBOX &&
		    priv_terminals(s->tx.env.targets[from].name) > 0)
			return 1;
	return 0;
}

/* A list's outcome, for the log, when the table is not what it should. */
static void
log_table_trouble(const char *name, unsigned flags)
{
	if (flags & (EXPAND_LOOP | EXPAND_UNKNOWN | EXPAND_SKIPPED))
		log_msg(LOG_WARNING, "table: %s:%s%s%s (smtpd -C tells more)",
		    name, flags & EXPAND_LOOP ? " loop" : "",
		    flags & EXPAND_UNKNOWN ? " unknown member" : "",
		    flags & EXPAND_SKIPPED ? " target not delivered" : "");
}

/*
 * RCPT's answer for a local name, from what the table told (kind, flags)
 * and the members it gathered: 250, 251 (one remote member, forwarded),
 * or the code of a refusal.
 */
static int
rcpt_code(struct session *s, enum expand kind, unsigned flags,
    const struct gather *g, const struct user *u, size_t before)
{
	if (flags & EXPAND_FULL)
		return 452;
	if (flags & EXPAND_TRY_LATER)
		return 451;	/* never 550 for want of an answer */
	if (kind == EXPAND_LIST && g->local + g->remote == 0)
		return 550;	/* a loop, or members that are nobody */
	if (g->local == 0 && g->remote > 0 && conf.forward == NULL)
		return 551;
	if (s->tx.env.mode == MODE_SEND && (kind == EXPAND_USER ?
	    priv_terminals(u->name) == 0 : !at_terminal(s, before)))
		return 450;
	if (kind == EXPAND_LIST && g->local == 0 && g->remote == 1 &&
	    conf.forward != NULL)
		return 251;
	return 250;
}

/* The reply for a refusal that rcpt_code() gave. */
static void
rcpt_refuse(struct session *s, int code, const char *name,
    const struct address *a, const struct gather *g)
{
	switch (code) {
	case 450:
		reply(s, REPLY_NOT_ACTIVE);	/* RFC 821 4.1.1 */
		break;
	case 451:
		log_msg(LOG_WARNING, "RCPT %s: the system's accounts could "
		    "not be asked; 451", name);
		reply(s, REPLY_LOCAL, "cannot look up the account now");
		break;
	case 452:
		reply(s, REPLY_TOO_MANY);
		break;
	case 551:
		reply(s, REPLY_NOT_LOCAL, g->first_remote);
		break;
	default:
		reply(s, REPLY_NOWHERE, a->text);
		break;
	}
}

/*
 * A local recipient, through the table (smtpd.8, THE TABLE and FORWARDING
 * AND RELAYING): a user, an alias or a list, or the postmaster (RFC 5321
 * 4.5.1).  Returns the reply to give, 250 or 251 (forward_to set), or -1
 * when refused (replied, and the targets it added taken off again).
 */
static int
local_recipient(struct session *s, const struct address *a)
{
	char name[SMTP_LOCAL_MAX + 1];
	struct gather g = { s, 0, 0, "" };
	size_t before = s->tx.env.ntargets;
	enum expand kind;
	unsigned flags;
	struct user u;
	int code;

	if (strlen(a->local) > SMTP_LOCAL_MAX || !mailbox_name_ok(a->local)) {
		reply(s, REPLY_BAD_BOX, a->text);
		return -1;
	}
	lowercase(name, a->local, sizeof name);
	switch (kind = aliases_expand(name, &u, gather_member, &g, &flags)) {
	case EXPAND_NONE:
		log_refused("user unknown to=<%s>", a->text);
		reply(s, REPLY_NO_USER, a->text);
		return -1;
	case EXPAND_USER:
		flags = add_target(s, TARGET_MAILBOX, u.name) == -1 ?
		    EXPAND_FULL : 0;
		break;
	case EXPAND_LIST:
		log_table_trouble(name, flags);
		break;
	case EXPAND_UNSURE:
		flags = EXPAND_TRY_LATER;
		break;
	}
	code = rcpt_code(s, kind, flags, &g, &u, before);
	if (code == 251)
		(void)snprintf(s->tx.forward_to, sizeof s->tx.forward_to, "%s",
		    g.first_remote);
	if (code == 250 || code == 251)
		return code;
	rcpt_refuse(s, code, name, a, &g);
	s->tx.env.ntargets = before;
	return -1;
}

/*
 * smtpd.8, FORWARDING AND RELAYING: a recipient in another domain, relayed
 * through -F for a RELAYCLIENT, in a plain mail transaction only.  Returns
 * 250, or -1 when refused (replied).
 */
static int
relay_recipient(struct session *s, const struct address *a)
{
	if (!conf.relay_client || conf.forward == NULL ||
	    s->tx.env.mode != MODE_MAIL) {
		log_refused("relaying denied to=<%s>", a->text);
		reply(s, REPLY_RELAY);
	}
	else if (add_target(s, TARGET_FORWARD, a->text) == -1)
		reply(s, REPLY_TOO_MANY);
	else
		return 250;
	return -1;
}

/* RFC 5321 4.1.1.3 */
static void
cmd_rcpt(struct session *s, char *arg)
{
	struct address a;
	const char *why;
	char *param;
	int code;

	if ((arg = skip_keyword(arg, "TO:")) == NULL) {
		reply(s, REPLY_SYNTAX, "RCPT TO:<address>");
		return;
	}
	if ((why = parse_path(&arg, &a, 0)) != NULL) {
		reply(s, REPLY_BAD_PATH, why);
		return;
	}
	if ((param = strtok(arg, " ")) != NULL) {
		reply(s, REPLY_PARAM, param);
		return;
	}
	if (a.utf8 && !s->tx.env.smtputf8) {
		reply(s, REPLY_UTF8);
		return;
	}
	if (s->tx.nrcpt == conf.maxrcpt) {
		reply(s, REPLY_TOO_MANY);
		return;
	}
	code = a.domain == NULL || is_local_domain(a.domain) ?
	    local_recipient(s, &a) : relay_recipient(s, &a);
	if (code == -1)
		return;
	(void)snprintf(s->tx.rcpt[s->tx.nrcpt++], sizeof s->tx.rcpt[0], "%s", a.text);
	s->tx.have |= HAVE_RCPT;
	if (code == 251)
		reply(s, REPLY_FORWARD, s->tx.forward_to);
	else
		reply(s, REPLY_RCPT_OK, a.text);
}

/* Base 36, for short ids. */
static char *
base36(char *p, unsigned long long n)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char tmp[16];
	size_t i = 0;

	do
		tmp[i++] = digits[n % 36];
	while ((n /= 36) > 0);
	while (i > 0)
		*p++ = tmp[--i];
	return p;
}

/* A message id unique on this host: time, pid, message of the session. */
static void
make_id(struct session *s, time_t now)
{
	char *p = s->tx.env.id;

	p = base36(p, (unsigned long long)now);
	*p++ = '-';
	p = base36(p, (unsigned long long)self_pid());
	*p++ = '-';
	p = base36(p, s->conn.nmessages + 1);
	*p = '\0';
}

/* smtpd.8, LOGGING: one line per transaction, never the body. */
static void PRINTFLIKE(2, 3)
log_transaction(struct session *s, const char *fmt, ...)
{
	char to[2048], outcome[512];
	size_t i, n = 0;
	va_list ap;
	int k;

	va_start(ap, fmt);
	(void)vsnprintf(outcome, sizeof outcome, fmt, ap);
	va_end(ap);

	to[0] = '\0';
	for (i = 0; i < s->tx.nrcpt; i++) {
		k = snprintf(to + n, sizeof to - n, "%s<%s>", i > 0 ? "," : "",
		    s->tx.rcpt[i]);
		if (k < 0 || (size_t)k >= sizeof to - n) {
			(void)snprintf(to + n, sizeof to - n, ",...");
			break;
		}
		n += k;
	}
	log_msg(LOG_INFO, "id=%s client=%s from=<%s> to=%s size=%lld%s%s%s%s "
	    "%s", s->tx.env.id,
	    conf.client_ip[0] != '\0' ? conf.client_ip : "local",
	    s->tx.env.sender, to, s->msg.size, tls_up() ? " tls=" : "",
	    tls_up() ? tls_facts()->protocol : "", tls_up() ? "/" : "",
	    tls_up() ? tls_facts()->cipher : "", outcome);
}

/*
 * A message that could not be delivered: the reply (fmt, with at most
 * one %s for what), and the log line naming the same code and why.
 */
static void
message_failed(struct session *s, const char *fmt, const char *what,
    const char *why)
{
	reply(s, fmt, what);
	log_transaction(s, "failed: %.3s %s", fmt, why);
}

/* A message the DATA reader refused, or could not spool: 1 if it was. */
static int
message_refused(struct session *s)
{
	static const char *const refusals[] = {
		[MSG_BARE_EOL] = REPLY_BARE_EOL, [MSG_NUL] = REPLY_NUL,
		[MSG_LOOP] = REPLY_LOOP
	};
	char why[256];

	switch (s->msg.error) {
	case MSG_OK:
		return 0;
	case MSG_TOO_BIG:
		reply(s, REPLY_MAIL_SIZE, conf.maxsize);
		log_transaction(s, "refused: 552 too big");
		break;
	case MSG_IO:
		(void)snprintf(why, sizeof why, "cannot spool the message: %s",
		    strerror(s->msg.io_errno));
		message_failed(s, s->msg.io_errno == ENOSPC ? REPLY_NO_SPACE :
		    REPLY_LOCAL, "cannot spool the message", why);
		break;
	default:
		reply(s, "%s", refusals[s->msg.error]);
		log_transaction(s, "refused: %s", refusals[s->msg.error]);
		break;
	}
	return 1;
}

/*
 * smtpd.8, CONTENT FILTER: the -X filter's verdict, before any delivery.
 * 1 when the message may go on, with the filter's header fields in the
 * envelope; 0 when it was refused or must wait (replied and logged).
 */
static int
filtered(struct session *s)
{
	static struct filter_result res;
	char why[sizeof res.text + 16];

	filter_run(&s->tx.env, s->tx.rcpt, s->tx.nrcpt, &s->msg, &res);
	switch (res.verdict) {
	case FILTER_ACCEPT:
		s->tx.env.headers = res.headers;
		return 1;
	case FILTER_REFUSE:
		reply(s, REPLY_FILTERED, res.text);
		log_transaction(s, "refused: 554 by the filter: %s", res.text);
		return 0;
	case FILTER_TEMP:
		break;
	}
	(void)snprintf(why, sizeof why, "filter: %s", res.text);
	message_failed(s, REPLY_FILTER_TEMP, "unavailable", why);
	return 0;
}

/* The message is read: refuse it, or have it delivered and say so. */
static void
finish_message(struct session *s)
{
	struct outcome out;

	s->tx.env.when = time(NULL);
	make_id(s, s->tx.env.when);
	s->conn.nmessages++;
	if (message_refused(s))
		return;
	s->tx.env.helo = s->hello.helo;
	s->tx.env.esmtp = s->hello.esmtp;
	s->tx.env.tls_protocol = tls_up() ? tls_facts()->protocol : "";
	s->tx.env.tls_cipher = tls_up() ? tls_facts()->cipher : "";
	s->tx.env.for_rcpt = s->tx.nrcpt == 1 ? s->tx.rcpt[0] : NULL;
	s->tx.env.headers = "";
	if (conf.filter != NULL && !filtered(s))
		return;
	switch (priv_deliver(&s->tx.env, &s->msg, &out)) {
	case DELIVERY_OK:
		s->conn.nerrors = s->conn.njunk = 0;	/* the limits start again */
		reply(s, REPLY_DELIVERED, s->tx.env.id);
		log_transaction(s, s->tx.env.mode == MODE_SEND ?
		    "sent to terminal" : "delivered");
		break;
	case DELIVERY_NO_SPACE:
		message_failed(s, REPLY_NO_SPACE, "", out.why);
		break;
	case DELIVERY_TEMP:
		message_failed(s, REPLY_LOCAL, "mailbox unavailable", out.why);
		break;
	case DELIVERY_FORWARD:
		message_failed(s, REPLY_LOCAL, "forwarding failed", out.why);
		break;
	case DELIVERY_NOT_SENT:
		message_failed(s, REPLY_NOT_SENT, out.who, out.why);
		break;
	}
}

/* RFC 5321 4.1.1.4 */
static void
cmd_data(struct session *s, char *arg)
{
	int n;

	if (*arg != '\0') {
		reply(s, REPLY_NO_ARG, "DATA");
		return;
	}
	message_begin(&s->msg, !conf.tty, conf.maxsize);
	reply(s, conf.tty ? REPLY_DATA_TTY : REPLY_DATA);
	if (!s->conn.over && (n = client_read_data(&s->msg)) < 0)
		read_failed(s, n);	/* EOF, timeout or SIGTERM: it ends */
	if (s->conn.over) {
		message_close(&s->msg);	/* never delivered */
		return;
	}
	(void)message_end(&s->msg);
	finish_message(s);
	reset_transaction(s);
}

/* EHLO's reply: our name, then each extension offered, one a line. */
static void
ehlo_keywords(struct session *s)
{
	const struct extension *list[NEXTENSIONS];
	size_t i, n = 0;

	for (i = 0; i < NEXTENSIONS; i++)
		if (extensions[i].offered == NULL || extensions[i].offered())
			list[n++] = &extensions[i];
	reply(s, REPLY_EHLO, conf.name);
	for (i = 0; i < n; i++)
		if (list[i]->value != NULL)
			reply(s, "250%c%s %lld", i + 1 < n ? '-' : ' ',
			    list[i]->keyword, *list[i]->value);
		else
			reply(s, i + 1 < n ? REPLY_EHLO : REPLY_EHLO_LAST,
			    list[i]->keyword);
}

/* HELO and EHLO: RFC 5321 4.1.1.1; a second one resets (4.1.4). */
static void
hello(struct session *s, char *arg, int esmtp)
{
	const char *verb = esmtp ? "EHLO" : "HELO";

	if (*arg == '\0' || strchr(arg, ' ') != NULL ||
	    strlen(arg) > SMTP_DOMAIN_MAX) {
		reply(s, REPLY_BAD_HELO, verb);
		return;
	}
	reset_greeting(s);
	(void)snprintf(s->hello.helo, sizeof s->hello.helo, "%s", arg);
	sanitize(s->hello.helo);
	s->hello.done = 1;
	s->hello.esmtp = esmtp;
	if (!esmtp)
		reply(s, REPLY_HELLO, conf.name);
	else
		ehlo_keywords(s);
}

static void
cmd_helo(struct session *s, char *arg)
{
	hello(s, arg, 0);
}

static void
cmd_ehlo(struct session *s, char *arg)
{
	hello(s, arg, 1);
}

static void
cmd_rset(struct session *s, char *arg)
{
	if (*arg != '\0') {
		reply(s, REPLY_NO_ARG, "RSET");
		return;
	}
	reset_transaction(s);
	reply(s, REPLY_RESET);
}

/*
 * A VRFY or EXPN argument: `user', `<user>', `user@local.domain'; into
 * name, lower case.  Returns 0, or -1 when it is not a local address.
 */
static int
local_name(const char *arg, char *name, size_t size)
{
	char buf[SMTP_PATH_MAX + 1], *at;
	size_t n;

	(void)snprintf(buf, sizeof buf, "%s", arg + (*arg == '<'));
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '>' && *arg == '<')
		buf[--n] = '\0';
	if ((at = strrchr(buf, '@')) != NULL) {
		if (!is_local_domain(at + 1))
			return -1;
		*at = '\0';
	}
	if (strlen(buf) >= size)
		return -1;
	lowercase(name, buf, size);
	return 0;
}

/* An argument as a reply quotes it in <>: its own brackets off. */
static char *
unbracket(char *arg)
{
	size_t n = strlen(arg);

	if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
		arg[n - 1] = '\0';
		return arg + 1;
	}
	return arg;
}

/*
 * RFC 821 4.1.1: "Full Name <user@domain>", or just the mailbox; a
 * remote member as the table gives it.
 */
static const char *
member_text(const struct member *m)
{
	static char text[FULLNAME_MAX + SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 8];
	int local = m->kind == TARGET_MAILBOX;

	(void)snprintf(text, sizeof text, "%s%s<%s%s%s>", m->fullname,
	    m->fullname[0] != '\0' ? " " : "", m->name, local ? "@" : "",
	    local ? conf.domains[0] : "");
	return text;
}

static const char *
user_text(const struct user *u)
{
	struct member m;

	m.kind = TARGET_MAILBOX;
	(void)snprintf(m.name, sizeof m.name, "%s", u->name);
	(void)snprintf(m.fullname, sizeof m.fullname, "%s", u->fullname);
	return member_text(&m);
}

/* VRFY of an alias: its first member, and how many there are. */
struct first {
	size_t		n;
	struct member	m;
};

static int
first_member(const struct member *m, void *arg)
{
	struct first *f = arg;

	if (f->n++ == 0)
		f->m = *m;
	return 0;
}

/*
 * VRFY of a table name: a user is 250; an alias of one member is that
 * member (251 or 551 when it is remote, smtpd.8, FORWARDING AND RELAYING);
 * a list is 250 with its own address, for mail to it does reach its
 * members.  Returns 0 when the name was nothing.
 */
static int
verify_name(struct session *s, const char *name)
{
	struct first f = { 0 };
	unsigned flags;
	struct user u;

	switch (aliases_expand(name, &u, first_member, &f, &flags)) {
	case EXPAND_NONE:
		return 0;
	case EXPAND_UNSURE:
		reply(s, REPLY_NO_VRFY);	/* RCPT will say 451 */
		return 1;
	case EXPAND_USER:
		reply(s, REPLY_USER, user_text(&u));
		return 1;
	case EXPAND_LIST:
		break;
	}
	if (f.n == 0)
		reply(s, REPLY_NOWHERE, name);
	else if (f.n > 1 || f.m.kind == TARGET_MAILBOX) {
		if (f.n > 1) {
			(void)snprintf(f.m.name, sizeof f.m.name, "%s", name);
			f.m.fullname[0] = '\0';
			f.m.kind = TARGET_MAILBOX;
		}
		reply(s, REPLY_USER, member_text(&f.m));
	} else if (conf.forward != NULL)
		reply(s, REPLY_FORWARD, f.m.name);
	else
		reply(s, REPLY_NOT_LOCAL, f.m.name);
	return 1;
}

/*
 * RFC 5321 3.5.1, smtpd.8 THE DIALOGUE: a name first, then a word of the
 * full names of the local users: one match is 250, several a multi-line
 * 553.
 */
static void
cmd_vrfy(struct session *s, char *arg)
{
	char name[SMTP_PATH_MAX + 1];
	struct user found[8];
	size_t n, i;

	if (conf.no_vrfy) {
		reply(s, REPLY_NO_VRFY);
		return;
	}
	if (*arg == '\0') {
		reply(s, REPLY_SYNTAX, "VRFY <user or name>");
		return;
	}
	sanitize(arg);
	if (local_name(arg, name, sizeof name) == 0 &&
	    mailbox_name_ok(name) && verify_name(s, name))
		return;
	n = aliases_match_fullname(arg, found, 8);
	if (n == 0) {
		reply(s, REPLY_NO_MATCH);
		return;
	}
	if (n == 1) {
		reply(s, REPLY_USER, user_text(&found[0]));
		return;
	}
	reply(s, REPLY_AMBIG_ONE, "User ambiguous; possibilities are");
	for (i = 0; i < n && i < 8; i++)
		reply(s, REPLY_AMBIG_ONE, user_text(&found[i]));
	reply(s, REPLY_AMBIGUOUS);
}

/* EXPN's lines go out one behind, so that the last is "250 ". */
struct listing {
	struct session	*s;
	size_t		 n;
	char		 held[FULLNAME_MAX + SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 8];
};

static int
list_member(const struct member *m, void *arg)
{
	struct listing *l = arg;

	if (l->n++ > 0)
		reply(l->s, REPLY_LIST_NEXT, l->held);
	(void)snprintf(l->held, sizeof l->held, "%s", member_text(m));
	return 0;
}

/*
 * RFC 5321 3.5.2, smtpd.8 THE DIALOGUE: a list's members, nested lists
 * expanded, one a line with full names.  A user is not a list.
 */
static void
cmd_expn(struct session *s, char *arg)
{
	char name[SMTP_PATH_MAX + 1];
	struct listing l = { s, 0, "" };
	unsigned flags;
	struct user u;

	if (conf.no_expn) {
		reply(s, REPLY_NO_EXPN);
		return;
	}
	if (*arg == '\0') {
		reply(s, REPLY_SYNTAX, "EXPN <mailing list>");
		return;
	}
	sanitize(arg);
	if (local_name(arg, name, sizeof name) == -1 ||
	    !mailbox_name_ok(name) || aliases_expand(name, &u, list_member,
	    &l, &flags) != EXPAND_LIST) {
		reply(s, REPLY_NOT_LIST, unbracket(arg));
		return;
	}
	if (l.n == 0)
		reply(s, REPLY_NOWHERE, name);
	else
		reply(s, REPLY_USER, l.held);
}

/* HELP alone: the verbs of the command table, six to a line. */
static void
help_list(struct session *s)
{
	char line[80];
	size_t n = 0, i = 0;
	const struct command *c;

	reply(s, REPLY_HELP_LIST, "smtpd " SMTPD_VERSION ", commands:");
	for (c = commands; c->verb != NULL; c++) {
		n += (size_t)snprintf(line + n, sizeof line - n, " %s",
		    c->verb);
		if (++i % 6 == 0 || c[1].verb == NULL) {
			reply(s, REPLY_HELP_LIST, line);
			n = 0;
		}
	}
	reply(s, REPLY_HELP_END, "HELP <command> for its syntax");
}

static void
cmd_help(struct session *s, char *arg)
{
	const struct command *c;

	if (*arg == '\0') {
		help_list(s);
		return;
	}
	for (c = commands; c->verb != NULL; c++)
		if (strcasecmp(arg, c->verb) == 0) {
			reply(s, REPLY_HELP_END, c->help);
			return;
		}
	sanitize(arg);
	reply(s, REPLY_HELP_NONE, arg);
}

/* RFC 5321 4.1.1.9: an argument is allowed and ignored. */
static void
cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	reply(s, REPLY_OK);
}

static void
cmd_quit(struct session *s, char *arg)
{
	if (*arg != '\0') {
		reply(s, REPLY_NO_ARG, "QUIT");
		return;
	}
	reply(s, REPLY_CLOSING, conf.name);
	session_close(s, "QUIT");
}

/* RFC 821 TURN: the client would become the server, unauthenticated. */
static void
cmd_turn(struct session *s, char *arg)
{
	(void)arg;
	reply(s, REPLY_TURN);
}

/*
 * RFC 3207, smtpd.8 TLS: 220, flushed; then the wrapper starts TLS and
 * the session goes on over it, as just after the greeting.  Whatever
 * the client sent after STARTTLS is dropped unread (tls_start).
 */
static void
cmd_starttls(struct session *s, char *arg)
{
	if (!tls_offered()) {
		reply(s, REPLY_NO_TLS);
		return;
	}
	if (*arg != '\0') {
		reply(s, REPLY_NO_ARG, "STARTTLS");
		return;
	}
	if (s->tx.have & HAVE_MAIL) {
		reply(s, REPLY_TLS_IN_TX);
		return;
	}
	if (!tls_ready()) {
		reply(s, REPLY_TLS_DOWN);
		return;
	}
	reply(s, REPLY_TLS_GO);
	if (s->conn.over || client_flush() == -1)
		return;
	if (tls_start() == -1) {
		log_msg(LOG_INFO, "TLS handshake failed client=%s",
		    conf.client_ip[0] != '\0' ? conf.client_ip : "local");
		session_close(s, "TLS handshake failed");
		return;
	}
	reset_greeting(s);
	log_msg(LOG_INFO, "TLS started client=%s protocol=%s cipher=%s",
	    conf.client_ip[0] != '\0' ? conf.client_ip : "local",
	    tls_facts()->protocol, tls_facts()->cipher);
}

static void
cmd_unknown(struct session *s, char *arg)
{
	(void)arg;
	reply(s, REPLY_UNKNOWN);
}
