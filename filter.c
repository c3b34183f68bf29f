/*
 * filter.c: the -X content filter (smtpd.8, CONTENT FILTER).  A file of
 * its own because it is a protocol of its own with a child process: the
 * message written to the filter while its output is read, both bounded
 * in time and size, and the verdict taken from its exit status.
 *
 * Offers filter_run(), once a message is read; its command is conf's,
 * split at start-up.  Relies on client.c's spawn() (the -U account, a
 * process group, PATH and the envelope alone, descriptors 0-2 alone),
 * delivery.c's trace header and message.c's header-field check.  Runs in
 * the dialogue, never as root; never delivers, never answers the client,
 * and lets none of the filter's output through that
 * message_header_fields() refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "delivery.h"
#include "filter.h"
#include "message.h"
#include "smtpd.h"

#define ENV_MAX		(128 * 1024)	/* Linux's bound on one variable */
#define REFUSAL_MAX	200		/* of the filter's line, in a 554 */

/* One run of the filter, as filter_run() follows it. */
struct run {
	int		 in, out;	/* our ends of its pipes; -1 closed */
	pid_t		 pid;
	struct timespec	 until;		/* the whole run's deadline */
	int		 why;		/* LINE_TIMEOUT, LINE_TERM, LINE_EOF */
	int		 flood;		/* it printed too much */
	size_t		 len;
	char		 buf[FILTER_HEADERS_MAX + 2];	/* its output */
};

/* Read what it printed, without blocking; -1 once that is too much. */
static int
drain(struct run *r)
{
	ssize_t k;

	while (r->out != -1) {
		k = read(r->out, r->buf + r->len, sizeof r->buf - 1 - r->len);
		if (k > 0) {
			if ((r->len += (size_t)k) > FILTER_HEADERS_MAX) {
				r->flood = 1;
				return -1;
			}
		} else if (k == 0) {
			(void)close(r->out);
			r->out = -1;
		} else if (errno != EINTR)
			break;		/* EAGAIN: nothing more now */
	}
	return 0;
}

/*
 * Wait for its input to have room or its output to hold something, until
 * `until'; then read that output.  0, or -1 with r->why or r->flood set.
 */
static int
wait_io(struct run *r, int writing, const struct timespec *until)
{
	struct pollfd pfd[2];
	struct timespec left;
	nfds_t n = 0;
	int w;

	if (writing)
		pfd[n++] = (struct pollfd){ r->in, POLLOUT, 0 };
	if (r->out != -1)
		pfd[n++] = (struct pollfd){ r->out, POLLIN, 0 };
	w = fds_wait(pfd, n, until, 1);
	if (w == LINE_TIMEOUT && deadline_left(&r->until, &left) == 0)
		w = 0;			/* a short wait ended: look again */
	if (w != 0) {
		r->why = w;
		return -1;
	}
	return drain(r);
}

/*
 * message_fn: a piece of the message to the filter, its output read.
 * Not write_all(): while the filter's input is full, its output must be
 * drained, or a filter that writes as it reads would never read again.
 */
static int
feed(void *arg, const char *p, size_t n)
{
	struct run *r = arg;
	ssize_t k;

	while (n > 0) {
		k = write(r->in, p, n);
		if (k > 0)
			p += k, n -= (size_t)k;
		else if (k == -1 && errno == EAGAIN) {
			if (wait_io(r, 1, &r->until) == -1)
				return -1;
		} else if (k == -1 && errno != EINTR) {
			r->why = LINE_EOF;	/* EPIPE: it closed its input */
			return -1;
		}
	}
	return 0;
}

/* Has it exited?  Asked without reaping it: its process group stays. */
static int
exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == pid;
}

/* A short wait, never past the run's deadline: the next look at it. */
static void
soon(const struct run *r, struct timespec *t)
{
	deadline_set(t, 0);
	t->tv_nsec += 5000000L;		/* 5 ms */
	if (t->tv_nsec >= 1000000000L)
		t->tv_sec++, t->tv_nsec -= 1000000000L;
	if (t->tv_sec > r->until.tv_sec || (t->tv_sec == r->until.tv_sec &&
	    t->tv_nsec > r->until.tv_nsec))
		*t = r->until;
}

/*
 * The whole message is in the pipe: wait until the filter has read it
 * (the pipe empty), then close its input, then wait for it to exit,
 * reading its output all along.  1 when it read everything, 0 when it
 * exited first, -1 when the run must end (r->why, r->flood).
 */
static int
await(struct run *r)
{
	struct timespec t;
	int left, all = 1;

	while (r->in != -1) {
		if (ioctl(r->in, FIONREAD, &left) == -1 || left == 0 ||
		    exited(r->pid)) {
			all = ioctl(r->in, FIONREAD, &left) == 0 && left == 0;
			(void)close(r->in);
			r->in = -1;
		} else if (soon(r, &t), wait_io(r, 0, &t) == -1)
			return -1;
	}
	while (!exited(r->pid))
		if (soon(r, &t), wait_io(r, 0, &t) == -1)
			return -1;
	return all;
}

/* Start the filter with pipes on its input and output; -1 on failure. */
static int
start(struct run *r, char *const env[])
{
	int in[2], out[2];

	r->in = r->out = -1;
	if (pipe_cloexec(in) == -1)
		return -1;
	if (pipe_cloexec(out) == -1) {
		(void)close(in[0]), (void)close(in[1]);
		return -1;
	}
	r->pid = spawn(conf.filter_cmd.argv, env, in[0], out[1], 0);
	(void)close(in[0]), (void)close(out[1]);
	if (r->pid == -1) {
		(void)close(in[1]), (void)close(out[0]);
		return -1;
	}
	r->in = in[1];
	r->out = out[0];
	(void)fcntl(r->in, F_SETFL, O_NONBLOCK);
	(void)fcntl(r->out, F_SETFL, O_NONBLOCK);
	return 0;
}

/*
 * The envelope, as the filter's environment: static, for one run.
 * NULL when the recipients do not fit in one variable.
 */
static char *const *
envelope_vars(const struct envelope *env, char (*rcpt)[SMTP_PATH_MAX + 1],
    size_t nrcpt)
{
	static char sender[SMTP_PATH_MAX + 16], helo[SMTP_DOMAIN_MAX + 16];
	static char id[64], tls[TLS_FACT_MAX + 16], ip[96], rcpts[ENV_MAX];
	static char *vars[7];
	size_t i, n = 0, used;
	int k;

	used = (size_t)snprintf(rcpts, sizeof rcpts, "SMTP_RECIPIENTS=");
	for (i = 0; i < nrcpt; i++, used += (size_t)k)
		if ((k = snprintf(rcpts + used, sizeof rcpts - used, "%s%s",
		    i > 0 ? "\n" : "", rcpt[i])) < 0 ||
		    (size_t)k >= sizeof rcpts - used)
			return NULL;
	(void)snprintf(sender, sizeof sender, "SMTP_SENDER=%s", env->sender);
	(void)snprintf(helo, sizeof helo, "SMTP_HELO=%s", env->helo);
	(void)snprintf(id, sizeof id, "SMTP_ID=%s", env->id);
	(void)snprintf(tls, sizeof tls, "SMTP_TLS=%s", env->tls_protocol);
	vars[n++] = sender, vars[n++] = rcpts, vars[n++] = helo;
	vars[n++] = id, vars[n++] = tls;
	if (conf.client_ip[0] != '\0') {
		(void)snprintf(ip, sizeof ip, "TCPREMOTEIP=%s", conf.client_ip);
		vars[n++] = ip;
	}
	vars[n] = NULL;
	return vars;
}

/* Its output, CR LF as LF, ended by a LF: the header fields it adds. */
static size_t
output_lines(struct run *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->len; i++)
		if (r->buf[i] != '\r' || i + 1 == r->len || r->buf[i + 1] != '\n')
			r->buf[n++] = r->buf[i];
	if (n > 0 && r->buf[n - 1] != '\n')
		r->buf[n++] = '\n';
	r->buf[n] = '\0';
	return n;
}

/* A refusal's text: its first line, printable, cut short. */
static void
refusal_text(struct run *r, struct filter_result *res)
{
	size_t i, n = strcspn(r->buf, "\r\n");

	if (n == 0) {
		(void)snprintf(res->text, sizeof res->text,
		    "Message refused by the content filter");
		return;
	}
	if (n > REFUSAL_MAX)
		n = REFUSAL_MAX;
	memcpy(res->text, r->buf, n);
	res->text[n] = '\0';
	for (i = 0; i < n; i++)		/* a reply is ASCII (RFC 5321 4.2) */
		if (res->text[i] < ' ' || res->text[i] > '~')
			res->text[i] = '?';
}

/* The verdict, from how the run ended and what it printed. */
static void
verdict(struct run *r, int all, int status, struct filter_result *res)
{
	res->verdict = FILTER_TEMP;
	r->buf[r->len] = '\0';
	if (r->why == LINE_TERM)
		(void)snprintf(res->text, sizeof res->text, "was stopped: "
		    "smtpd is shutting down");
	else if (r->why == LINE_TIMEOUT)
		(void)snprintf(res->text, sizeof res->text, "took too long: "
		    "killed");
	else if (r->flood)
		(void)snprintf(res->text, sizeof res->text, "printed more than "
		    "%d KiB", FILTER_HEADERS_MAX / 1024);
	else if (WIFSIGNALED(status))
		(void)snprintf(res->text, sizeof res->text, "killed by signal "
		    "%d", WTERMSIG(status));
	else if (!WIFEXITED(status))
		(void)snprintf(res->text, sizeof res->text, "lost");
	else if (WEXITSTATUS(status) == 100) {
		res->verdict = FILTER_REFUSE;
		refusal_text(r, res);
	} else if (WEXITSTATUS(status) != 0)
		(void)snprintf(res->text, sizeof res->text, "exited %d",
		    WEXITSTATUS(status));
	else if (!all)
		(void)snprintf(res->text, sizeof res->text, "did not read the "
		    "message");
	else if (message_header_fields(r->buf, output_lines(r)) != 0)
		(void)snprintf(res->text, sizeof res->text, "printed a line "
		    "that is not a header field");
	else {
		res->verdict = FILTER_ACCEPT;
		memcpy(res->headers, r->buf, strlen(r->buf) + 1);
	}
}

/*
 * smtpd.8, CONTENT FILTER: the filter's verdict on the message m of the
 * envelope env (env->headers still empty) and the RCPT addresses; on
 * FILTER_ACCEPT res->headers holds the fields to add, otherwise
 * res->text says why (the refusal's text, or what went wrong).  No
 * process of the filter's group outlives the call.
 */
void
filter_run(const struct envelope *env, char (*rcpt)[SMTP_PATH_MAX + 1],
    size_t nrcpt, const struct message *m, struct filter_result *res)
{
	static struct run r;
	char trace[4096];
	char *const *vars;
	size_t len;
	int all = 0, status = 0;

	res->headers[0] = '\0';
	res->verdict = FILTER_TEMP;
	if ((vars = envelope_vars(env, rcpt, nrcpt)) == NULL ||
	    (len = delivery_trace(env, trace, sizeof trace)) == 0) {
		(void)snprintf(res->text, sizeof res->text, "the envelope is "
		    "too large for the filter");
		return;
	}
	memset(&r, 0, offsetof(struct run, buf));
	deadline_set(&r.until, conf.timeout < FILTER_TIME ? conf.timeout :
	    FILTER_TIME);
	if (start(&r, vars) == -1) {
		(void)snprintf(res->text, sizeof res->text, "cannot start %s: "
		    "%s", conf.filter_cmd.argv[0], strerror(errno));
		return;
	}
	if ((feed(&r, trace, len) == 0 && message_each(m, EACH_SENT, feed, &r)
	    == 0) || r.why == LINE_EOF)
		all = await(&r);
	if (r.why == LINE_EOF)
		all = 0;		/* it closed its input early */
	(void)kill(-r.pid, SIGKILL);	/* what it left behind, or itself */
	(void)kill(r.pid, SIGKILL);
	(void)drain(&r);
	while (waitpid(r.pid, &status, 0) == -1 && errno == EINTR)
		;
	if (r.in != -1)
		(void)close(r.in);
	if (r.out != -1)
		(void)close(r.out);
	verdict(&r, all, status, res);
}
