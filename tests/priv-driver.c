/*
 * priv-driver.c: the deliverer (priv.c) driven with hostile records,
 * for tests/privrecords.bats.
 *
 * It is linked with smtpd's own objects and starts the real split,
 * priv_split(): the deliverer that answers is smtpd's, unchanged.  In
 * the dialogue's process, instead of speaking SMTP, it writes by hand
 * what a compromised dialogue could write to the socketpair, and prints
 * each answer that comes back, one line each:
 *
 *	status=N why=TEXT	an answer to a delivery (N: delivery.h)
 *	count=N			an answer to SEND's question
 *	closed			the deliverer closed its end, unanswered
 *	silent			no answer within -t and 8 s more
 *
 * Then, if the stream should still be in step, one more question
 * (jones's terminals) shows whether the deliverer still serves; last,
 * `sigterm' if the deliverer ended the session.
 *
 * usage: priv-driver [-t seconds] spool table scenario [argument]
 *
 * The deliverer logs to standard error; -t (2 s unless given) is its
 * bound on a record once the header came.  Message files, and the
 * FIFO, are made in the current directory, which should be outside the
 * spool.  Every wait here is bounded: a deliverer that hangs shows as
 * `silent', never as a driver that hangs.
 */
#define _GNU_SOURCE		/* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../aliases.h"
#include "../priv.h"
#include "../smtpd.h"

struct config conf;

#define REC_DELIVER	1	/* as priv.c numbers them */
#define REC_TERMINALS	2
#define REC_OUTCOME	3
#define REC_COUNT	4
#define REC_MAX		(512 * 1024)
#define FLOOD		1000	/* records in a row: under 1024 descriptors
				 * in flight, the limit for all but root */

static unsigned char	 rec[REC_MAX + 64];
static size_t		 len;
static int		 wait_ms;	/* for an answer: -t, and more */
static volatile sig_atomic_t termed;

static const char *tls_protocol = "", *tls_cipher = "";
static const char *headers = "";	/* -X's fields, as the filter gave them */
static const char body[] = "Subject: driven\n\nHello.\n";
static const char file_text[] = "Subject: spooled\n\nHello from a file.\n";

static void
on_term(int sig)
{
	(void)sig;
	termed = 1;
}

/* --- records, as priv.c lays them out ---------------------------------- */

static void
u32(uint32_t v)
{
	memcpy(rec + len, &v, sizeof v);
	len += sizeof v;
}

static void
str(const char *s)
{
	u32((uint32_t)strlen(s));
	while (*s != '\0')	/* counted, not terminated */
		rec[len++] = (unsigned char)*s++;
}

/* A delivery request into rec: ntargets mailboxes `name', from sender. */
static void
envelope(const char *sender, const char *name, uint32_t ntargets,
    uint32_t spooled, const char *text)
{
	uint32_t i;

	len = 0;
	u32(0);			/* MODE_MAIL */
	u32(0);			/* no SMTPUTF8 */
	u32(1);			/* EHLO */
	str(sender);
	str("client.example");
	str(tls_protocol);	/* "": no TLS */
	str(tls_cipher);
	str("");		/* for_rcpt: none */
	str("TPX-DRV-1");
	u32((uint32_t)((uint64_t)time(NULL) >> 32));	/* when */
	u32((uint32_t)time(NULL));
	str(headers);
	u32(ntargets);
	for (i = 0; i < ntargets; i++) {
		u32(0);		/* TARGET_MAILBOX */
		str(name);
	}
	u32(0);			/* spooled, high and low */
	u32(spooled);
	str(text);
}

/* --- the socket: every wait bounded -------------------------------------- */

/* n bytes onto the socket, a descriptor with the first unless fd is -1. */
static int
put(int sock, const void *p, size_t n, int fd)
{
	union {
		struct cmsghdr	 align;
		char		 buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct pollfd pfd = { sock, POLLOUT, 0 };
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t w;

	while (n > 0) {
		memset(&msg, 0, sizeof msg);
		iov.iov_base = (void *)p;
		iov.iov_len = n;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (fd != -1) {
			memset(&control, 0, sizeof control);
			msg.msg_control = control.buf;
			msg.msg_controllen = sizeof control.buf;
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof fd);
		}
		w = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1 && errno == EAGAIN && poll(&pfd, 1, wait_ms) == 1)
			continue;
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;	/* gone, or stuck: the answer says */
		p = (const char *)p + w;
		n -= (size_t)w;
		fd = -1;
	}
	return 0;
}

/* A header claiming `claimed' bytes, then the first `sent' of rec. */
static int
send_rec(int sock, uint32_t type, uint32_t claimed, size_t sent, int fd)
{
	uint32_t h[2] = { type, claimed };

	if (put(sock, h, sizeof h, fd) == -1)
		return -1;
	return put(sock, rec, sent, -1);
}

/* Exactly n bytes, within wait_ms for each: 0, -1 at the end, -2 silent. */
static int
get(int sock, void *p, size_t n)
{
	struct pollfd pfd = { sock, POLLIN, 0 };
	ssize_t k;

	while (n > 0) {
		if (poll(&pfd, 1, wait_ms) == 0)
			return -2;
		if ((k = read(sock, p, n)) == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p = (char *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

/* One answer, printed; 0 when there was one. */
static int
answer(int sock)
{
	static unsigned char a[4096];
	uint32_t h[2], v, n;
	int r;

	if ((r = get(sock, h, sizeof h)) == 0 && (h[1] < 4 || h[1] > sizeof a))
		r = -1;		/* no answer priv.c would write */
	if (r == 0)
		r = get(sock, a, h[1]);
	if (r != 0) {
		printf(r == -2 ? "silent\n" : "closed\n");
		return -1;
	}
	memcpy(&v, a, sizeof v);
	if (h[0] == REC_COUNT) {
		printf("count=%lu\n", (unsigned long)v);
		return 0;
	}
	n = 0;
	if (h[1] >= 8)
		memcpy(&n, a + 4, sizeof n);
	if (n > h[1] - 8)
		n = h[1] - 8;
	printf("%s=%lu why=%.*s\n", h[0] == REC_OUTCOME ? "status" : "type?",
	    (unsigned long)v, (int)n, (const char *)a + 8);
	return 0;
}

/* The deliverer's open descriptors, as /proc shows them. */
static int
deliverer_fds(void)
{
	char path[64];
	DIR *d;
	int n = 0;

	(void)snprintf(path, sizeof path, "/proc/%ld/fd", (long)getppid());
	if ((d = opendir(path)) == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	(void)closedir(d);
	return n - 2;		/* . and .. */
}

/* --- the scenarios: each returns 0 if the stream is still in step ------- */

/* A delivery of the message inline to mailbox arg (jones). */
static int
deliver(int sock, const char *arg)
{
	envelope("sender@example.org", arg != NULL ? arg : "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, -1);
	return answer(sock);
}

/* The message as a descriptor: a regular file, or what arg says. */
static int
file(int sock, const char *arg)
{
	const char *kind = arg != NULL ? arg : "regular";
	uint32_t spooled = sizeof file_text - 1;
	int fd, how = O_RDONLY;

	if ((fd = open("message", O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, file_text, spooled) != (ssize_t)spooled ||
	    close(fd) == -1)
		return -1;
	if (strcmp(kind, "writeonly") == 0)
		how = O_WRONLY;
	else if (strcmp(kind, "opath") == 0)
		how = O_PATH;
	else if (strcmp(kind, "short") == 0)
		spooled += 100;		/* more than the file holds */
	if (strcmp(kind, "fifo") == 0 && mkfifo("fifo", 0600) == 0)
		fd = open("fifo", O_RDWR);	/* Linux: no wait for a peer */
	else if (strcmp(kind, "directory") == 0)
		fd = open(".", O_RDONLY | O_DIRECTORY);
	else
		fd = open("message", how);
	(void)unlink("message");
	(void)unlink("fifo");
	if (fd == -1)
		return -1;
	envelope("sender@example.org", "jones", 1, spooled, "");
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, fd);
	return answer(sock);
}

/*
 * A message whose mbox framing is broken, as arg says: `from' (a line
 * that would begin a message of its own), `newline' (no final newline).
 * Inline, or with `file' after it, as a descriptor.
 */
static int
framing(int sock, const char *arg)
{
	static const char from[] =
	    "Subject: split\n\nFrom forged@example.org Thu Jan  1 00:00:00 1970\n"
	    "Subject: forged\n\n";
	static const char newline[] = "Subject: cut\n\nno end";
	const char *text = arg != NULL && strncmp(arg, "newline", 7) == 0 ?
	    newline : from;
	uint32_t n = (uint32_t)strlen(text);
	int fd = -1;

	if (arg != NULL && strstr(arg, "file") != NULL) {
		if ((fd = open("message", O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1 ||
		    write(fd, text, n) != (ssize_t)n)
			return -1;
		(void)unlink("message");
		envelope("sender@example.org", "jones", 1, n, "");
	} else
		envelope("sender@example.org", "jones", 1, 0, text);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, fd);
	if (fd != -1)
		(void)close(fd);
	return answer(sock);
}

/* The sender's length says 60000 bytes in a record of a hundred. */
static int
overrun(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	memcpy(rec + 12, &(uint32_t){ 60000 }, 4);	/* after 3 u32s */
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, -1);
	return answer(sock);
}

/* Bytes after the body, inside the record's length. */
static int
leftover(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	u32(0x61727478);	/* "xtra", after the body */
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, -1);
	return answer(sock);
}

/* One target more than a message may have. */
static int
targets(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", MAX_TARGETS + 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, -1);
	return answer(sock);
}

/* A sender that would write a header of its own into the mailbox. */
static int
sender(int sock, const char *arg)
{
	(void)arg;
	envelope("a@example.org\nX-Injected: yes", "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len, -1);
	return answer(sock);
}

/* TLS facts, as arg says: `good', or `bad' (a header line in them). */
static int
tls(int sock, const char *arg)
{
	tls_protocol = "TLSv1.2";
	tls_cipher = arg != NULL && strcmp(arg, "bad") == 0 ?
	    "X\nX-Injected: yes" : "ECDHE-RSA-CHACHA20-POLY1305";
	return deliver(sock, "jones");
}

/*
 * The -X filter's header fields, as arg says: `good', or one of the
 * ways a dialogue could smuggle more than fields through them: an
 * empty line (a body of its own), a From_ line, a field without its
 * name, a line without its end.
 */
static int
fields(int sock, const char *arg)
{
	static const struct { const char *name, *text; } kinds[] = {
		{ "good", "X-Spam-Status: No, score=0.1\n\ttests=NONE\n" },
		{ "empty", "X-Spam: no\n\nInjected body\n" },
		{ "from", "X-Spam: no\nFrom evil@example.org Thu Dec  3 10:00:00 2026\n" },
		{ "noname", ": no name\n" },
		{ "unended", "X-Spam: no" },
	};
	size_t i;

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (arg != NULL && strcmp(arg, kinds[i].name) == 0)
			headers = kinds[i].text;
	return deliver(sock, "jones");
}

/* A header claiming more than REC_MAX, then what there is. */
static int
huge(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, REC_MAX + 1, len, -1);
	(void)answer(sock);
	return -1;
}

/* Half a delivery, then the dialogue writes no more. */
static int
cut(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, len / 2, -1);
	(void)shutdown(sock, SHUT_WR);
	(void)answer(sock);
	return -1;
}

/* A delivery's header, then nothing: -t must end the wait. */
static int
stall(int sock, const char *arg)
{
	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, 0, -1);
	(void)answer(sock);
	return -1;
}

/* The record a byte every half second: -t bounds it all, not a byte. */
static int
drip(int sock, const char *arg)
{
	struct pollfd pfd = { sock, POLLIN, 0 };
	size_t i;

	(void)arg;
	envelope("sender@example.org", "jones", 1, 0, body);
	(void)send_rec(sock, REC_DELIVER, (uint32_t)len, 0, -1);
	for (i = 0; i < len && poll(&pfd, 1, 500) == 0; i++)
		if (put(sock, rec + i, 1, -1) == -1)
			break;
	(void)answer(sock);
	return -1;
}

/* Half a header, then the dialogue goes. */
static int
half_header(int sock, const char *arg)
{
	uint32_t type = REC_DELIVER;

	(void)arg;
	(void)put(sock, &type, sizeof type, -1);
	(void)close(sock);
	return -1;
}

/* One record of type arg (99): neither a delivery nor a question. */
static int
unknown(int sock, const char *arg)
{
	len = 0;
	(void)send_rec(sock, arg != NULL ? (uint32_t)strtoul(arg, NULL, 0) :
	    99, 0, 0, -1);
	(void)answer(sock);
	return -1;
}

/* Records of unknown types in a row. */
static int
unknowns(int sock, const char *arg)
{
	int i;

	(void)arg;
	len = 0;
	for (i = 0; i < FLOOD; i++)
		if (send_rec(sock, 100 + i, 0, 0, -1) == -1)
			break;
	(void)answer(sock);
	return -1;
}

/* SEND's question about user arg. */
static int
terminal(int sock, const char *arg)
{
	len = 0;
	str(arg != NULL ? arg : "jones");
	(void)send_rec(sock, REC_TERMINALS, (uint32_t)len, len, -1);
	return answer(sock);
}

/*
 * arg questions (100 unless given), each with a descriptor it does not
 * ask for, no answer read until the last is sent.  A hundred fit in the
 * socket: each must be answered, in order, and no descriptor kept.  Ten
 * thousand do not: the deliverer, unable to answer within -t, must end
 * the session rather than wait for a dialogue that does not read.
 */
static int
flood(int sock, const char *arg)
{
	long count = arg != NULL ? strtol(arg, NULL, 10) : 100;
	int before, fd, gained;
	long i, n;

	if (terminal(sock, "jones") == -1 ||
	    (fd = open("/dev/null", O_RDONLY)) == -1)
		return -1;
	before = deliverer_fds();
	len = 0;
	str("jones");
	for (i = 0; i < count && !termed; i++)
		if (send_rec(sock, REC_TERMINALS, (uint32_t)len, len, fd) == -1)
			break;
	for (n = 0; n < i && get(sock, rec, 12) == 0; n++)
		if (memcmp(rec, &(uint32_t[]){ REC_COUNT, 4, 0 }, 12) != 0)
			break;
	printf("sent=%ld answered=%ld\n", i, n);
	if (n != count)
		return -1;
	gained = deliverer_fds() - before;
	printf("descriptors gained=%d\n", gained);
	return 0;
}

static const struct scenario {
	const char	*name;
	int		(*run)(int, const char *);
} scenarios[] = {
	{ "deliver",	deliver },	/* [name] */
	{ "file",	file },		/* [regular|fifo|directory|writeonly|
					 *  opath|short] */
	{ "framing",	framing },	/* from|newline[-file] */
	{ "overrun",	overrun },
	{ "leftover",	leftover },
	{ "targets",	targets },
	{ "sender",	sender },
	{ "tls",	tls },		/* good|bad */
	{ "fields",	fields },	/* good|empty|from|noname|unended */
	{ "huge",	huge },
	{ "cut",	cut },
	{ "stall",	stall },
	{ "drip",	drip },
	{ "half-header", half_header },
	{ "unknown",	unknown },	/* [type] */
	{ "unknowns",	unknowns },
	{ "terminal",	terminal },	/* [user] */
	{ "flood",	flood },	/* [count] */
	{ NULL,		NULL }
};

/* Whether the deliverer still serves: one more question, then the end. */
static void
finish(int sock, int in_step)
{
	if (in_step)
		(void)terminal(sock, "jones");
	(void)shutdown(sock, SHUT_WR);
	while (get(sock, rec, sizeof rec) == 0)
		;			/* until it closes, or wait_ms */
	if (termed)
		printf("sigterm\n");
}

int
main(int argc, char **argv)
{
	const struct scenario *s;
	int c;

	conf.timeout = 2;
	while ((c = getopt(argc, argv, "t:")) != -1)
		if (c != 't' || (conf.timeout = (int)strtol(optarg, NULL,
		    10)) < 1)
			return 2;
	argc -= optind;
	argv += optind;
	for (s = scenarios; argc >= 3 && s->name != NULL; s++)
		if (strcmp(s->name, argv[2]) == 0)
			break;
	if (argc < 3 || s->name == NULL) {
		fprintf(stderr, "usage: priv-driver [-t seconds] spool table "
		    "scenario [argument]\n");
		return 2;
	}
	/* as smtpd.c main() and the options of a test: -e -T -n mx.example */
	wait_ms = (conf.timeout + 8) * 1000;
	conf.name = "mx.example";
	conf.domains[conf.ndomains++] = "mx.example";
	conf.spool = argv[0];
	conf.table = argv[1];
	conf.table_given = 1;
	conf.table_only = 1;
	conf.maxsize = 10485760;
	conf.maxrcpt = 100;
	conf.utmp = "/dev/null";	/* nobody at a terminal */
	conf.log_stderr = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (aliases_open(conf.table, 1) == -1 || priv_split() == -1)
		return 1;
	/* the deliverer ends a session out of step with SIGTERM: noted */
	(void)signal(SIGTERM, on_term);
	finish(priv_channel(), s->run(priv_channel(), argv[3]) == 0);
	return 0;
}
