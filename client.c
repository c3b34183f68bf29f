/*
 * client.c: every byte that crosses the connection, the log, and the
 * process, time and text helpers that the other files share.
 *
 * Offers: one buffered reader with a per-line deadline and one buffered
 * writer (client_*), given their descriptors by client_open() rather than
 * fixed at 0 and 1, so that a fuzzing harness (tests/fuzz/) serves a file
 * of recorded input exactly as a socket; log_msg(); spawn() for -F and
 * -X, with the kill of a whole process group; deadlines on the monotonic
 * clock, waits that SIGTERM cuts short, write_all(); and text helpers
 * (sanitize, UTF-8, lower case, the one name hash).
 * Relies on: conf alone.  Never: decides anything of SMTP, or lets a
 * signal handler do more than note that it came.
 */
#define _GNU_SOURCE		/* ppoll(), close_range() */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "message.h"
#include "smtpd.h"

static int	 in_fd = 0, out_fd = 1;
static int	 out_sock = 1;		/* out_fd takes send(), until it says not */
static char	 ibuf[65536];		/* client bytes not yet consumed */
static size_t	 ipos, ilen;
static char	 obuf[4096];		/* replies not yet sent */
static size_t	 olen;
static int	 line_fresh;		/* a new line began: new deadline */
static struct timespec deadline;	/* the current line's */
static sigset_t	 unblocked;		/* the mask ppoll() waits with */
static volatile sig_atomic_t terminated;

static void
on_signal(int sig)
{
	(void)sig;
	terminated = 1;
}

/*
 * SIGTERM (and a hang-up or ^C) is blocked except while waiting: for the
 * client, where it surfaces as EINTR in ppoll() after the delivery's
 * reply is queued; and, in delivery, for a lock or the -F program,
 * where client_stopping() then rolls the delivery back.  It never cuts a
 * write short (smtpd.8, INPUT RULES).
 */
void
client_signals(void)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;	/* a closed client is EPIPE, not death */
	(void)sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);
	sigdelset(&unblocked, SIGINT);
}

/* Serve the client on in and out, with empty buffers. */
void
client_open(int in, int out)
{
	static int signals_set;

	if (!signals_set) {
		client_signals();
		signals_set = 1;
	}
	in_fd = in;
	out_fd = out;
	out_sock = 1;
	ipos = ilen = olen = 0;
}

/*
 * smtpd.8, POLICY: did the client send before the greeting?  Asked of a
 * socket alone (a pipe or a terminal may be typed ahead into), after
 * `seconds' of waiting, by a look that takes nothing from it: 1 when it
 * did, 0 when it did not or has gone, LINE_TERM when a signal ended the
 * wait.
 */
int
client_talked_early(int seconds)
{
	struct timespec until;
	int type, w;
	socklen_t len = sizeof type;
	char c;

	if (getsockopt(in_fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return 0;
	deadline_set(&until, seconds);
	if (seconds > 0 && (w = fd_wait(-1, 0, &until, 1)) == LINE_TERM)
		return w;
	return recv(in_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/*
 * The last words to a client being cut off: the replies are out, and
 * what it sent meanwhile is read and thrown away, for up to a second
 * and 64 KiB, so that closing does not reset the connection (a TCP
 * close with unread input sends RST, which may destroy the reply
 * before the client reads it).
 */
void
client_linger(void)
{
	struct timespec until;
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	(void)client_flush();
	if (shutdown(out_fd, SHUT_WR) == -1)
		return;			/* no socket: nothing to reset */
	deadline_set(&until, 1);
	while (total < 65536 && fd_wait(in_fd, POLLIN, &until, 1) == 0 &&
	    (n = recv(in_fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		total += (size_t)n;
}

/* This process's id, asked of the kernel once: the log, locks and ids
 * all name it. */
static pid_t	 pid_known;

pid_t
self_pid(void)
{
	if (pid_known == 0)
		pid_known = getpid();
	return pid_known;
}

/* After fork(): the child is another process (dot-locks name theirs). */
void
self_pid_reset(void)
{
	pid_known = 0;
}

/*
 * One line to the log: syslog, facility mail (smtpd.8, LOGGING), or
 * standard error with -e or at a terminal.  Standard error is never written
 * otherwise: under inetd it may be the client's socket.
 */
void
log_msg(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, save = errno;

	va_start(ap, fmt);
	if (!conf.log_stderr) {
		vsyslog(prio, fmt, ap);
		va_end(ap);
		errno = save;
		return;
	}
	n = snprintf(line, sizeof line, "smtpd[%ld]: ", (long)self_pid());
	n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (write(2, line, n) != n) {
		/* nowhere left to complain; the session goes on */
	}
	errno = save;
}

/*
 * The length of the well-formed UTF-8 sequence at p (no overlong form,
 * no surrogate), its code point in *cp; 0 when it is not one.  It reads
 * no further than the lead byte says, nor past a NUL.
 */
size_t
utf8_char(const unsigned char *p, unsigned *cp)
{
	size_t n, i;
	unsigned min;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, *cp = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, *cp = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, *cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		*cp = *cp << 6 | (p[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * The character at p: its length, and whether it may be shown: not a C0
 * or C1 control (raw, as an 8-bit terminal takes it, or in UTF-8), and
 * well-formed.  A byte that may not be shown is one long.
 */
static size_t
text_char(const unsigned char *p, int *shown)
{
	unsigned cp;
	size_t n;

	if (*p < 0x80) {
		*shown = *p >= 32 && *p != 127;
		return 1;
	}
	n = utf8_char(p, &cp);
	*shown = n > 0 && cp > 0x9f;
	return n > 0 ? n : 1;
}

/* Is s all characters that may be shown? */
int
utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;
	int shown;

	for (; *p != '\0'; p += n) {
		n = text_char(p, &shown);
		if (!shown)
			return 0;
	}
	return 1;
}

/* Text from the client becomes harmless before logs and headers. */
void
sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;
	int shown;

	for (; *p != '\0'; p += n) {
		n = text_char(p, &shown);
		if (!shown)
			memset(p, '?', n);
	}
}

/* FNV-1a, 32 bits: the table's index, and a mailbox's byte of the queue. */
uint32_t
name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

/* Names are case-insensitive (smtpd.8, THE TABLE): lower case, cut to size. */
void
lowercase(char *dst, const char *src, size_t size)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

/* A pipe neither end of which leaks into a program: it would never see
 * EOF on the other. */
int
pipe_cloexec(int fds[2])
{
	if (pipe(fds) == -1)
		return -1;
	(void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	return 0;
}

/*
 * The environment of every program smtpd starts (smtpd.8, FORWARDING AND
 * RELAYING): PATH alone, so that nothing the superserver or the client
 * set (TCPREMOTEHOST, RELAYCLIENT, a hostile LD_PRELOAD left by a
 * launcher) reaches it.
 */
#define DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"

static char	*child_env[2];

static void
clean_env(void)
{
	static char path[1024];
	const char *p = getenv("PATH");

	if (p == NULL || (size_t)snprintf(path, sizeof path, "PATH=%s", p) >=
	    sizeof path)
		(void)snprintf(path, sizeof path, "PATH=" DEFAULT_PATH);
	child_env[0] = path;
	child_env[1] = NULL;
}

/* Every descriptor from `first' up closed: none of ours leaks on. */
void
close_from(int first)
{
	struct rlimit rl;
	long fd, max = 1024;

#ifdef SYS_close_range
	if (close_range((unsigned)first, ~0U, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (long)rl.rlim_cur;
	for (fd = first; fd < max; fd++)
		(void)close((int)fd);
}

/*
 * -F's or -X's `line' split at spaces into p; the number of words, or -1
 * (and no argv[0]) when there is none, too many, or the line is too long.
 */
int
program_split(struct program *p, const char *line)
{
	char *w, *save = NULL;
	size_t n = 0;

	p->argv[0] = NULL;
	if (strlen(line) >= sizeof p->words)
		return -1;
	memcpy(p->words, line, strlen(line) + 1);
	for (w = strtok_r(p->words, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save)) {
		if (n == PROGRAM_WORDS) {
			p->argv[0] = NULL;
			return -1;
		}
		p->argv[n++] = w;
	}
	p->argv[n] = NULL;
	return n == 0 ? -1 : (int)n;
}

/*
 * Run argv (searched along PATH) on in and out, /dev/null for a side
 * given as -1, with a clean start (smtpd.8, FORWARDING AND RELAYING): no
 * signal blocked, SIGPIPE fatal again, PATH and then the variables of
 * env (NULL for none) alone in its environment, descriptors 0-2 alone
 * (stderr /dev/null unless the log goes there), in a process group of
 * its own so that it can be killed whole, and killed too should smtpd
 * die first.  A program given seconds is killed
 * by SIGALRM after them: a pending alarm survives execve().
 */
pid_t
spawn(char *const argv[], char *const env[], int in, int out,
    unsigned seconds)
{
	extern char **environ;
	static char *vars[SPAWN_VARS + 2];	/* the child's: it execs */
	pid_t pid, parent = getpid();
	sigset_t none;
	size_t n = 0;
	int null;

	if (child_env[0] == NULL)
		clean_env();
	if ((pid = fork()) != 0) {
		if (pid > 0)
			(void)setpgid(pid, pid);	/* whichever runs first */
		return pid;
	}
	(void)setpgid(0, 0);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	(void)signal(SIGALRM, SIG_DFL);
	if ((null = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(in != -1 ? in : null, 0) == -1 ||
	    dup2(out != -1 ? out : null, 1) == -1 ||
	    (!conf.log_stderr && dup2(null, 2) == -1))
		_exit(126);
	close_from(3);
	/* smtpd.8, PRIVILEGE SEPARATION: no program runs as root (the
	 * dialogue, where -X runs, is the -U account already) */
	if (conf.drop && geteuid() == 0 && (setgroups(0, NULL) == -1 ||
	    setresgid(conf.user_gid, conf.user_gid, conf.user_gid) == -1 ||
	    setresuid(conf.user_uid, conf.user_uid, conf.user_uid) == -1))
		_exit(126);
	/* after the change of account, which clears it; XXX: the kernel
	 * forgets it too across a set-id execve() */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(126);
	vars[n++] = child_env[0];
	while (env != NULL && env[n - 1] != NULL && n <= SPAWN_VARS)
		vars[n] = env[n - 1], n++;
	vars[n] = NULL;
	environ = vars;
	(void)alarm(seconds);
	execvp(argv[0], argv);
	_exit(127);
}

/* Kill a child spawn() started, and its whole process group; reap it. */
void
spawn_kill(pid_t pid)
{
	(void)kill(-pid, SIGKILL);
	(void)kill(pid, SIGKILL);	/* should setpgid() have failed */
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* Deadlines on the monotonic clock, for the client and for delivery. */
void
deadline_set(struct timespec *t, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += seconds;
}

#ifdef SMTPD_TEST_WAITS
/* FIXED_WAIT() in the test build: the variable, if it is 0..seconds. */
int
test_wait(const char *var, int seconds)
{
	const char *v = getenv(var);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return seconds;
	n = strtol(v, &end, 10);
	return *end == '\0' && n >= 0 && n <= seconds ? (int)n : seconds;
}
#endif

/* The time left until `until' in *left; -1 when it has passed. */
int
deadline_left(const struct timespec *until, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = until->tv_sec - now.tv_sec;
	left->tv_nsec = until->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	return left->tv_sec < 0 || (left->tv_sec == 0 && left->tv_nsec == 0) ?
	    -1 : 0;
}

/*
 * Wait until one of pfd[0..n) is ready for its events (POLLIN or
 * POLLOUT), or until the deadline.  With `let_in', the signals that
 * end the session are let in meanwhile, and LINE_TERM says that one
 * came; without, they wait.
 * Returns 0, LINE_TIMEOUT, LINE_TERM or LINE_EOF (poll failed).
 */
int
fds_wait(struct pollfd *pfd, nfds_t n, const struct timespec *until,
    int let_in)
{
	struct timespec left;
	nfds_t i;
	int r;

	for (;;) {
		if (terminated && let_in)
			return LINE_TERM;
		if (deadline_left(until, &left) == -1)
			return LINE_TIMEOUT;
		for (i = 0; i < n; i++)
			pfd[i].revents = 0;
		r = ppoll(n == 0 ? NULL : pfd, n, &left,
		    let_in ? &unblocked : NULL);
		if (r > 0)
			return 0;
		if (r == 0 && n > 0)
			return LINE_TIMEOUT;
		if (r == -1 && errno != EINTR)
			return LINE_EOF;
	}
}

/* fds_wait() for one descriptor, or none (fd -1: a nap until then). */
int
fd_wait(int fd, short events, const struct timespec *until, int let_in)
{
	struct pollfd pfd = { fd, events, 0 };

	return fds_wait(&pfd, fd == -1 ? 0 : 1, until, let_in);
}

/*
 * All n bytes of buf to fd, which may be non-blocking: a write cut by a
 * signal is made again, and while fd is full the wait is fd_wait()'s,
 * until `until', the signals that end the session let in or not.  0, or
 * LINE_TIMEOUT, LINE_TERM (such a signal), or LINE_EOF (the reader is
 * gone: EPIPE, or any other error).
 */
int
write_all(int fd, const void *buf, size_t n, const struct timespec *until,
    int let_in)
{
	const char *p = buf;
	ssize_t k;
	int w;

	while (n > 0) {
		k = write(fd, p, n);
		if (k > 0) {
			p += k, n -= (size_t)k;
			continue;
		}
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((w = fd_wait(fd, POLLOUT, until, let_in)) != 0)
				return w;
			continue;
		}
		return LINE_EOF;
	}
	return 0;
}

/*
 * Has a signal asked the session to end?  Delivery asks between its
 * steps, while the signals wait blocked, so that a wait for a lock or
 * a program is cut short and rolled back rather than sat out (smtpd.8,
 * INPUT RULES: SIGTERM).
 */
int
client_stopping(void)
{
	sigset_t pending;

	if (terminated)
		return 1;
	if (sigpending(&pending) == -1)
		return 0;
	return sigismember(&pending, SIGTERM) == 1 ||
	    sigismember(&pending, SIGHUP) == 1 ||
	    sigismember(&pending, SIGINT) == 1;
}

/* Sleep for *ts, or until a signal that ends the session comes. */
void
client_nap(const struct timespec *ts)
{
	struct timespec until, now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	until.tv_sec = now.tv_sec + ts->tv_sec;
	until.tv_nsec = now.tv_nsec + ts->tv_nsec;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	(void)fd_wait(-1, 0, &until, 1);
}

static int
wait_fd(int fd, int writing, const struct timespec *until)
{
	/* while reading, the signals that end the session are let in; a
	 * write is finished first */
	return fd_wait(fd, writing ? POLLOUT : POLLIN, until, !writing);
}

/*
 * Send what is queued: before each wait for the client, and at the end.
 * To a socket it goes by send() that cannot block, so that the wait (and
 * its deadline) is paid only when the client is not reading; anything
 * else (a pipe, a terminal) is waited for before each write().
 */
int
client_flush(void)
{
	struct timespec until;
	size_t off = 0;
	ssize_t n;

	if (olen == 0)
		return 0;
	deadline_set(&until, conf.timeout);
	while (off < olen && out_sock) {
		n = send(out_fd, obuf + off, olen - off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += n;
		else if (n == -1 && errno == ENOTSOCK)
			out_sock = 0;
		else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(out_fd, 1, &until) != 0)
				return -1;
		} else if (n != -1 || errno != EINTR)
			return -1;
	}
	if (off < olen && (wait_fd(out_fd, 1, &until) != 0 ||
	    write_all(out_fd, obuf + off, olen - off, &until, 0) != 0))
		return -1;
	olen = 0;
	return 0;
}

int
client_write(const char *p, size_t len)
{
	size_t n;

	while (len > 0) {
		if (olen == sizeof obuf && client_flush() == -1)
			return -1;
		n = sizeof obuf - olen < len ? sizeof obuf - olen : len;
		memcpy(obuf + olen, p, n);
		olen += n;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * More bytes from the client.  Replies go out first: a pipelining client
 * waits for them.  The deadline is set when a line begins, so a client
 * trickling one byte at a time cannot stretch a line beyond -t.
 */
static int
fill(void)
{
	ssize_t n;
	int r;

	if (client_flush() == -1)
		return LINE_EOF;
	if (line_fresh) {
		deadline_set(&deadline, conf.timeout);
		line_fresh = 0;
	}
	for (;;) {
		if ((r = wait_fd(in_fd, 0, &deadline)) != 0)
			return r;
		n = read(in_fd, ibuf, sizeof ibuf);
		if (n > 0) {
			ipos = 0;
			ilen = n;
			return 0;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			return LINE_EOF;
	}
}

/*
 * One command line, CRLF (or a bare LF) taken off, into line[size].
 * smtpd.8, INPUT RULES: longer than 512 octets with its CRLF is
 * LINE_TOO_LONG, and the rest of it is read and dropped here, so it can
 * never run as a command of its own.  A NUL or a bare CR inside is
 * LINE_BAD.
 */
int
client_read_line(char *line, size_t size)
{
	size_t n = 0, take, room;
	char *p, *nl, last = '\0';
	int r;

	line_fresh = 1;
	for (;;) {
		if (ipos == ilen && (r = fill()) != 0)
			return r;
		p = ibuf + ipos;
		nl = memchr(p, '\n', ilen - ipos);
		take = nl != NULL ? (size_t)(nl - p) : ilen - ipos;
		if (take > 0)
			last = p[take - 1];
		room = n < size - 1 ? size - 1 - n : 0;
		memcpy(line + n, p, take < room ? take : room);
		n += take;
		ipos += take + (nl != NULL);
		if (nl != NULL)
			break;
	}
	if (last == '\r')
		n--;		/* CRLF; a bare LF is tolerated */
	if (n > SMTP_LINE_MAX - 2 || n >= size)
		return LINE_TOO_LONG;
	line[n] = '\0';
	if (memchr(line, '\r', n) != NULL || strlen(line) != n)
		return LINE_BAD;
	return (int)n;
}

/*
 * The message after 354, up to the line holding a single dot.  Bytes the
 * client sent beyond it stay in ibuf: pipelined commands.
 */
int
client_read_data(struct message *m)
{
	unsigned long lines;
	size_t used;
	int r, done;

	line_fresh = 1;
	for (;;) {
		if (ipos == ilen && (r = fill()) != 0)
			return r;
		lines = m->lines;
		done = message_feed(m, ibuf + ipos, ilen - ipos, &used);
		ipos += used;
		if (m->lines != lines)
			line_fresh = 1;
		if (done)
			return 0;
	}
}
