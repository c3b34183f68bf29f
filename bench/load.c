/*
 * load: a small SMTP load generator for bench/run.
 *
 * It connects to 127.0.0.1:PORT and runs real SMTP transactions (EHLO,
 * MAIL, RCPT, DATA with a generated message, QUIT), checking the code of
 * every reply: anything unexpected ends the run at once with exit status
 * 2 and the offending reply on standard error, so that a failure is never
 * counted as a success.  One process drives every connection with poll(),
 * so twenty clients cost no more processes than one.
 *
 * usage: load [-p port] [-f from] [-t rcpt] [-s size] [-o file] [-w secs]
 *             MODE [ARG...]
 *
 *   sessions N C  N sessions, C of them at once, one message each
 *   messages M    one session, M messages
 *   big           one session, one message (-s, default 64 MiB here)
 *   greet K       K connections one after another: connect to the end of
 *                 the 220 line (the sample), then QUIT
 *   lookup K      K sessions one after another: EHLO, MAIL, one RCPT,
 *                 QUIT, no message; the sample is connect to close
 *   freeport      print a free TCP port of 127.0.0.1 and exit
 *
 * -s is the message size in bytes as sent between DATA's 354 and the
 * final ".", CRLF line ends counted (default 1024).  The message is made
 * of 80-byte lines generated from one 64 KiB block, so even a 64 MiB one
 * is streamed from memory without a buffer of its size.  -o writes one
 * sample a line, in milliseconds: every session's duration, or for greet
 * the time to the greeting.  -w is the longest wait for any progress
 * (default 60 s).
 *
 * The result is one line on standard output, words "key=value"; value=
 * is the figure of the mode: sessions/s, messages/s, MB/s (10^6 bytes,
 * connect to the server's close), or for greet and lookup the median
 * in ms.  A session ends when the server closes the connection after its
 * 221, so the time includes the server process's exit.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS	64
#define LINE_LEN	80		/* message lines, CRLF included */
#define BLOCK_LINES	819		/* 819 * 80 = 65520 bytes */
#define BLOCK_LEN	(LINE_LEN * BLOCK_LINES)

enum mode { M_SESSIONS, M_MESSAGES, M_BIG, M_GREET, M_LOOKUP };

/* What a connection waits for or does next. */
enum state {
	S_CONNECT, S_GREET, S_EHLO, S_MAIL, S_RCPT, S_DATA, S_BODY, S_DOT,
	S_QUIT, S_CLOSE
};

static const char *const state_name[] = {
	"connect", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "message",
	"end of message", "QUIT", "close"
};

struct conn {
	int		 fd;
	enum state	 st;
	int		 msgs_left;	/* messages still to send in this session */
	long long	 body_off;	/* of the message being sent */
	char		 cmd[600];	/* command being sent */
	size_t		 cmdlen, cmdoff;
	char		 in[4096];	/* reply bytes not yet parsed */
	size_t		 inlen;
	double		 t_start;	/* connect() called */
	double		 t_mark;	/* last progress */
	long		 session;	/* its number, from 1, for messages */
};

static enum mode mode;
static int	 port;
static const char *from = "bench@example.test", *rcpt = "bench@example.test";
static long long msg_size = -1;
static const char *sample_file;
static double	 wait_max = 60;

/* The message: header, whole 80-byte lines from block, a tail line, ".". */
static char	 header[512], tail[LINE_LEN + 2];
static size_t	 header_len, tail_len;
static long long full_len;	/* bytes of whole lines after the header */
static long long total_len;	/* header + lines + tail + ".\r\n" */
static char	 block[BLOCK_LEN];

static long	 sessions_total, sessions_started, sessions_done;
static long	 messages_per_session = 1, messages_done;
static double	*samples;
static size_t	 nsamples;
static double	 t_first_mail = -1, t_last_250;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	(void)fflush(stdout);
	fputs("load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr, "usage: load [-p port] [-f from] [-t rcpt] [-s size] "
	    "[-o file] [-w secs]\n"
	    "            sessions N C | messages M | big | greet K | lookup K "
	    "| freeport\n");
	exit(64);
}

static long
count_arg(const char *s, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || n < 1 || n > max)
		die("bad number: %s", s);
	return n;
}

/* The message of msg_size bytes (before ".\r\n"); see the top comment. */
static void
make_message(void)
{
	static const char alpha[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	long long body;
	size_t i, j, rem;
	int n;

	n = snprintf(header, sizeof header, "From: <%s>\r\nTo: <%s>\r\n"
	    "Subject: smtpd benchmark\r\n\r\n", from, rcpt);
	if (n < 0 || (size_t)n >= sizeof header)
		die("addresses too long");
	header_len = (size_t)n;
	if (msg_size < (long long)header_len + 2)
		msg_size = (long long)header_len + 2;
	body = msg_size - (long long)header_len;
	full_len = body / LINE_LEN * LINE_LEN;
	rem = (size_t)(body % LINE_LEN);
	if (rem == 1) {			/* no line of one byte: join it */
		full_len -= LINE_LEN;
		rem += LINE_LEN;
	}
	for (i = 0; i < BLOCK_LINES; i++) {
		char *line = block + i * LINE_LEN;

		for (j = 0; j < LINE_LEN - 2; j++)
			line[j] = alpha[(i + j) % (sizeof alpha - 1)];
		line[LINE_LEN - 2] = '\r';
		line[LINE_LEN - 1] = '\n';
	}
	tail_len = rem;
	if (rem > 0) {
		memset(tail, 'z', rem - 2);
		tail[rem - 2] = '\r';
		tail[rem - 1] = '\n';
	}
	total_len = msg_size + 3;
}

/* The bytes of the message at off, as a pointer and a length. */
static const char *
message_piece(long long off, size_t *len)
{
	long long o;

	if (off < (long long)header_len) {
		*len = header_len - (size_t)off;
		return header + off;
	}
	o = off - (long long)header_len;
	if (o < full_len) {
		size_t b = (size_t)(o % BLOCK_LEN), left = BLOCK_LEN - b;

		*len = full_len - o < (long long)left ? (size_t)(full_len - o)
		    : left;
		return block + b;
	}
	o -= full_len;
	if (o < (long long)tail_len) {
		*len = tail_len - (size_t)o;
		return tail + o;
	}
	o -= (long long)tail_len;
	*len = 3 - (size_t)o;
	return &".\r\n"[o];
}

static void
add_sample(double ms)
{
	static size_t cap;

	if (nsamples == cap) {
		cap = cap == 0 ? 1024 : 2 * cap;
		if ((samples = realloc(samples, cap * sizeof *samples)) == NULL)
			die("out of memory");
	}
	samples[nsamples++] = ms;
}

static void
send_cmd(struct conn *c, enum state st, const char *fmt, const char *arg)
{
	int n = snprintf(c->cmd, sizeof c->cmd, fmt, arg);

	if (n < 0 || (size_t)n >= sizeof c->cmd)
		die("command too long");
	c->cmdlen = (size_t)n;
	c->cmdoff = 0;
	c->st = st;
}

static void
start_session(struct conn *c)
{
	struct sockaddr_in sa;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s", strerror(errno));
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->session = ++sessions_started;
	c->t_start = c->t_mark = now();
	c->inlen = 0;
	c->cmdlen = c->cmdoff = 0;
	c->msgs_left = mode == M_GREET || mode == M_LOOKUP ? 0 :
	    (int)messages_per_session;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		c->st = S_GREET;
	else if (errno == EINPROGRESS)
		c->st = S_CONNECT;
	else
		die("session %ld: connect to 127.0.0.1:%d: %s", c->session,
		    port, strerror(errno));
}

static void
end_session(struct conn *c)
{
	double t = now();

	(void)close(c->fd);
	c->fd = -1;
	if (mode != M_GREET)
		add_sample((t - c->t_start) * 1000.0);
	sessions_done++;
	if (sessions_started < sessions_total)
		start_session(c);
}

static void
next_message_or_quit(struct conn *c)
{
	if (c->msgs_left > 0) {
		if (t_first_mail < 0)
			t_first_mail = now();
		send_cmd(c, S_MAIL, "MAIL FROM:<%s>\r\n", from);
	} else
		send_cmd(c, S_QUIT, "QUIT\r\n%s", "");
}

/* A complete reply (its last line) arrived in state c->st. */
static void
on_reply(struct conn *c, int code, const char *line)
{
	static const int want[] = {
		[S_GREET] = 220, [S_EHLO] = 250, [S_MAIL] = 250,
		[S_RCPT] = 250, [S_DATA] = 354, [S_DOT] = 250, [S_QUIT] = 221
	};

	if (c->st == S_BODY || c->st == S_CLOSE || c->st == S_CONNECT ||
	    c->cmdoff < c->cmdlen)
		die("session %ld: unexpected reply while sending %s: %s",
		    c->session, state_name[c->st], line);
	if (code != want[c->st])
		die("session %ld: expected %d after %s, got: %s", c->session,
		    want[c->st], state_name[c->st], line);
	switch (c->st) {
	case S_GREET:
		if (mode == M_GREET) {
			add_sample((now() - c->t_start) * 1000.0);
			send_cmd(c, S_QUIT, "QUIT\r\n%s", "");
		} else
			send_cmd(c, S_EHLO, "EHLO %s\r\n", "load.example");
		break;
	case S_EHLO:
		if (mode == M_LOOKUP)
			send_cmd(c, S_MAIL, "MAIL FROM:<%s>\r\n", from);
		else
			next_message_or_quit(c);
		break;
	case S_MAIL:
		send_cmd(c, S_RCPT, "RCPT TO:<%s>\r\n", rcpt);
		break;
	case S_RCPT:
		if (mode == M_LOOKUP)
			send_cmd(c, S_QUIT, "QUIT\r\n%s", "");
		else
			send_cmd(c, S_DATA, "DATA\r\n%s", "");
		break;
	case S_DATA:
		c->st = S_BODY;
		c->body_off = 0;
		break;
	case S_DOT:
		c->msgs_left--;
		messages_done++;
		t_last_250 = now();
		next_message_or_quit(c);
		break;
	case S_QUIT:
		c->st = S_CLOSE;
		break;
	default:
		break;
	}
}

/* Parse the reply bytes in c->in: whole lines, multi-line replies. */
static void
parse_replies(struct conn *c)
{
	char *p = c->in, *nl, *end = c->in + c->inlen;
	size_t len;
	int code;

	while ((nl = memchr(p, '\n', end - p)) != NULL) {
		*nl = '\0';
		len = nl - p;
		if (len > 0 && p[len - 1] == '\r')
			p[--len] = '\0';
		if (len < 3 || p[0] < '1' || p[0] > '5' || p[1] < '0' ||
		    p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (len > 3 && p[3] != ' ' && p[3] != '-'))
			die("session %ld: malformed reply after %s: %s",
			    c->session, state_name[c->st], p);
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (len == 3 || p[3] == ' ')
			on_reply(c, code, p);
		p = nl + 1;
	}
	c->inlen = end - p;
	memmove(c->in, p, c->inlen);
	if (c->inlen == sizeof c->in)
		die("session %ld: reply line too long", c->session);
}

static void	on_writable(struct conn *);

static void
on_readable(struct conn *c)
{
	ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1)
		die("session %ld: read in state %s: %s", c->session,
		    state_name[c->st], strerror(errno));
	c->t_mark = now();
	if (n == 0) {
		if (c->st != S_CLOSE || c->inlen > 0)
			die("session %ld: connection closed by the server "
			    "while waiting for %s%s%.*s", c->session,
			    state_name[c->st], c->inlen > 0 ? "; partial: " :
			    "", (int)c->inlen, c->in);
		end_session(c);
		return;
	}
	if (c->st == S_CLOSE)
		die("session %ld: data after 221: %.*s", c->session, (int)n,
		    c->in + c->inlen);
	c->inlen += (size_t)n;
	parse_replies(c);
	if (c->cmdoff < c->cmdlen)
		on_writable(c);		/* the next command, at once */
}

static void
on_writable(struct conn *c)
{
	const char *p;
	size_t len;
	ssize_t n;
	int err;
	socklen_t elen = sizeof err;

	if (c->st == S_CONNECT) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 ||
		    err != 0)
			die("session %ld: connect to 127.0.0.1:%d: %s",
			    c->session, port, strerror(err));
		c->st = S_GREET;
		return;
	}
	for (;;) {
		if (c->st == S_BODY) {
			if (c->body_off == total_len) {
				c->st = S_DOT;
				return;
			}
			p = message_piece(c->body_off, &len);
		} else if (c->cmdoff < c->cmdlen) {
			p = c->cmd + c->cmdoff;
			len = c->cmdlen - c->cmdoff;
		} else
			return;
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1)
			die("session %ld: write in state %s: %s", c->session,
			    state_name[c->st], strerror(errno));
		c->t_mark = now();
		if (c->st == S_BODY)
			c->body_off += n;
		else
			c->cmdoff += (size_t)n;
	}
}

static int
wants_write(const struct conn *c)
{
	return c->st == S_CONNECT || c->st == S_BODY || c->cmdoff < c->cmdlen;
}

static void
run(int clients)
{
	static struct conn conns[MAX_CLIENTS];
	struct pollfd pfd[MAX_CLIENTS];
	int i, n, r;
	double t;

	for (i = 0; i < clients && sessions_started < sessions_total; i++)
		start_session(&conns[i]);
	for (; i < clients; i++)
		conns[i].fd = -1;
	while (sessions_done < sessions_total) {
		for (i = n = 0; i < clients; i++) {
			pfd[i].fd = conns[i].fd;	/* -1 is ignored */
			pfd[i].events = conns[i].fd == -1 ? 0 :
			    wants_write(&conns[i]) ? POLLOUT | POLLIN : POLLIN;
			pfd[i].revents = 0;
		}
		r = poll(pfd, (nfds_t)clients, 1000);
		if (r == -1 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (i = 0; r > 0 && i < clients; i++) {
			struct conn *c = &conns[i];
			int fd = c->fd;

			if (fd == -1 || pfd[i].revents == 0)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR) &&
			    c->st != S_CONNECT)
				on_readable(c);
			else if (pfd[i].revents & (POLLERR | POLLHUP))
				on_writable(c);	/* a failed connect */
			/* on_readable may have ended it and begun the next */
			if (c->fd == fd && pfd[i].revents & POLLOUT &&
			    wants_write(c))
				on_writable(c);
		}
		t = now();
		for (i = 0; i < clients; i++)
			if (conns[i].fd != -1 && t - conns[i].t_mark > wait_max)
				die("session %ld: no progress for %.0f s "
				    "waiting for %s", conns[i].session,
				    wait_max, state_name[conns[i].st]);
	}
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(void)
{
	if (nsamples == 0)
		return 0;
	qsort(samples, nsamples, sizeof *samples, by_value);
	return nsamples % 2 ? samples[nsamples / 2] :
	    (samples[nsamples / 2 - 1] + samples[nsamples / 2]) / 2;
}

static void
freeport(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		die("freeport: %s", strerror(errno));
	printf("%d\n", ntohs(sa.sin_port));
	(void)close(fd);
	exit(0);
}

int
main(int argc, char **argv)
{
	int c, clients = 1;
	double t0, el, value;
	const char *what;
	FILE *f;
	size_t i;

	while ((c = getopt(argc, argv, "p:f:t:s:o:w:")) != -1) {
		switch (c) {
		case 'p': port = (int)count_arg(optarg, 65535); break;
		case 'f': from = optarg; break;
		case 't': rcpt = optarg; break;
		case 's': msg_size = count_arg(optarg, 1L << 40); break;
		case 'o': sample_file = optarg; break;
		case 'w': wait_max = (double)count_arg(optarg, 86400); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "freeport") == 0)
		freeport();
	if (strcmp(argv[0], "sessions") == 0 && argc == 3) {
		mode = M_SESSIONS;
		sessions_total = count_arg(argv[1], 10000000);
		clients = (int)count_arg(argv[2], MAX_CLIENTS);
	} else if (strcmp(argv[0], "messages") == 0 && argc == 2) {
		mode = M_MESSAGES;
		sessions_total = 1;
		messages_per_session = count_arg(argv[1], 10000000);
	} else if (strcmp(argv[0], "big") == 0 && argc == 1) {
		mode = M_BIG;
		sessions_total = 1;
		if (msg_size < 0)
			msg_size = 64LL << 20;
	} else if (strcmp(argv[0], "greet") == 0 && argc == 2) {
		mode = M_GREET;
		sessions_total = count_arg(argv[1], 10000000);
	} else if (strcmp(argv[0], "lookup") == 0 && argc == 2) {
		mode = M_LOOKUP;
		sessions_total = count_arg(argv[1], 10000000);
	} else
		usage();
	if (port == 0)
		die("-p port is required");
	if (msg_size < 0)
		msg_size = 1024;
	make_message();

	t0 = now();
	run(clients);
	el = now() - t0;

	if (sample_file != NULL) {	/* in the order taken */
		if ((f = fopen(sample_file, "w")) == NULL)
			die("%s: %s", sample_file, strerror(errno));
		for (i = 0; i < nsamples; i++)
			fprintf(f, "%.4f\n", samples[i]);
		if (fclose(f) == EOF)
			die("%s: %s", sample_file, strerror(errno));
	}
	switch (mode) {
	case M_SESSIONS:
		value = sessions_done / el;
		what = "sessions/s";
		break;
	case M_MESSAGES:	/* first MAIL to the last message's 250 */
		el = t_last_250 - t_first_mail;
		value = messages_done / el;
		what = "messages/s";
		break;
	case M_BIG:
		value = msg_size / 1e6 / el;
		what = "MB/s";
		break;
	default:
		value = median();
		what = "ms";
		break;
	}
	printf("value=%.4f unit=%s sessions=%ld messages=%ld size=%lld "
	    "clients=%d seconds=%.6f median_ms=%.4f\n", value, what,
	    sessions_done, messages_done, msg_size, clients, el, median());
	return 0;
}
