/*
 * priv.c: the two processes of a session (smtpd.8, PRIVILEGE
 * SEPARATION).
 *
 * Offers: priv_split(), which forks before the greeting.  The child
 * speaks SMTP, as the -U account when smtpd was started as root (no
 * supplementary groups, no new privileges, no core dumps); the parent
 * keeps what smtpd was started with, never reads the connection, and
 * answers the child's requests over one socketpair until the child
 * goes.  There are two requests: a delivery (the envelope, and the
 * message inline or as the descriptor of its spool file) and SEND's
 * question at RCPT (how many of a user's terminals accept messages).
 * Their answers are an outcome with its reason, and a number.
 *
 * Relies on: delivery.c to deliver what this file checked, and to
 * verify the message's mbox framing as it copies it; nothing of the
 * child.  Every record is length-checked against REC_MAX, every field
 * against its limit and its syntax again, names against the rule that
 * keeps them in the spool, the message's descriptor must be a regular
 * file that can be read, and a record that does not add up, or leaves
 * bytes over, is logged and answered 451.
 *
 * Never: reads the client's connection, runs a program as root (the -F
 * program drops to the -U account: spawn()), or waits without a bound
 * once a record has begun.  A child that dies, stalls or floods costs
 * its own session and nothing else.
 */
#define _GNU_SOURCE		/* setresuid(), setresgid() */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "aliases.h"
#include "client.h"
#include "delivery.h"
#include "message.h"
#include "priv.h"
#include "smtpd.h"

#define REC_DELIVER	1	/* the child: a delivery */
#define REC_TERMINALS	2	/* the child: SEND's question */
#define REC_OUTCOME	3	/* the parent: what became of a delivery */
#define REC_COUNT	4	/* the parent: a number */
#define REC_MAX		(512 * 1024)	/* MAX_TARGETS names fit, and a body */
#define ID_MAX		31
/* The stored form: each line may gain a '>', and one blank line. */
#define STORED_MAX(max)	(2 * (max) + 65536)
/* The child waits this long, beyond -t, for what became of a delivery:
 * the lock wait, the -F program (-t), terminals. */
#define ANSWER_WAIT	300

/* A record being written or read: bounded, and bad once it overflows. */
struct rec {
	unsigned char	*p;
	size_t		 len;		/* bytes in it */
	size_t		 pos;		/* reading: the next byte */
	size_t		 cap;
	int		 bad;
};

struct rec_head {
	uint32_t	 type;
	uint32_t	 len;
};

static int		 priv_fd = -1;	/* the child's end; -1: one process */
static pid_t		 parent_pid;
static unsigned char	 recbuf[REC_MAX];

/* --- records ------------------------------------------------------- */

static void
put(struct rec *r, const void *p, size_t n)
{
	if (r->bad || n > r->cap - r->len) {
		r->bad = 1;
		return;
	}
	if (n == 0)		/* p may be NULL: an empty string */
		return;
	memcpy(r->p + r->len, p, n);
	r->len += n;
}

static void
put_u32(struct rec *r, uint32_t v)
{
	put(r, &v, sizeof v);
}

/* Bytes, after their length. */
static void
put_bytes(struct rec *r, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		r->bad = 1;
		return;
	}
	put_u32(r, (uint32_t)n);
	put(r, p, n);
}

static void
put_str(struct rec *r, const char *s)
{
	put_bytes(r, s, s != NULL ? strlen(s) : 0);
}

static const unsigned char *
get(struct rec *r, size_t n)
{
	const unsigned char *p = r->p + r->pos;

	if (r->bad || n > r->len - r->pos) {
		r->bad = 1;
		return NULL;
	}
	r->pos += n;
	return p;
}

static uint32_t
get_u32(struct rec *r)
{
	const unsigned char *p = get(r, sizeof(uint32_t));
	uint32_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof v);
	return v;
}

/* Bytes after their length, at most max of them; *n says how many. */
static const unsigned char *
get_bytes(struct rec *r, size_t max, size_t *n)
{
	uint32_t len = get_u32(r);

	*n = 0;
	if (r->bad || len > max) {
		r->bad = 1;
		return NULL;
	}
	*n = len;
	return get(r, len);
}

/* A string into dst[size]: shorter than size, and no NUL inside. */
static void
get_str(struct rec *r, char *dst, size_t size)
{
	const unsigned char *p;
	size_t n;

	dst[0] = '\0';
	if ((p = get_bytes(r, size - 1, &n)) == NULL)
		return;
	if (memchr(p, '\0', n) != NULL) {
		r->bad = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/*
 * write() all of iov[0..n), across short writes; the first with msg.
 * Within -t: a peer that does not read stalls nobody for longer.
 */
static int
send_all(int fd, struct msghdr *msg)
{
	struct iovec *iov = msg->msg_iov;
	size_t n = msg->msg_iovlen;
	struct timespec until;
	ssize_t w;

	deadline_set(&until, conf.timeout);
	while (n > 0) {
		w = sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1 && errno == EAGAIN &&
		    fd_wait(fd, POLLOUT, &until, 0) != 0) {
			errno = ETIMEDOUT;	/* not read within -t */
			return -1;
		}
		if (w == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w == -1)
			return -1;
		msg->msg_control = NULL;	/* the descriptor went first */
		msg->msg_controllen = 0;
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
		msg->msg_iov = iov;
		msg->msg_iovlen = n;
	}
	return 0;
}

/* One record, with a descriptor passed alongside unless fd is -1. */
static int
rec_send(int sock, uint32_t type, const struct rec *r, int fd)
{
	union {
		struct cmsghdr	 align;
		char		 buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct rec_head h = { type, (uint32_t)r->len };
	struct iovec iov[2] = { { &h, sizeof h }, { r->p, r->len } };
	struct msghdr msg;
	struct cmsghdr *cm;

	if (r->bad)
		return -1;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
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
	return send_all(sock, &msg);
}

/* The descriptor that came with a message, or -1; any other is closed. */
static int
taken_fd(struct msghdr *msg)
{
	struct cmsghdr *cm;
	int fd = -1, extra, i;
	size_t n;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; (size_t)i < n; i++) {
			memcpy(&extra, CMSG_DATA(cm) + i * sizeof(int),
			    sizeof extra);
			if (fd == -1)
				fd = extra;
			else
				(void)close(extra);
		}
	}
	return fd;
}

/*
 * Read exactly n bytes by `until'; the first read may bring a
 * descriptor (*fd, else -1).  0, or -1 at the end, a timeout, an error.
 */
static int
read_exact(int sock, void *p, size_t n, int *fd, const struct timespec *until)
{
	union {
		struct cmsghdr	 align;
		char		 buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg;
	ssize_t k;
	int got;

	while (n > 0) {
		iov.iov_base = p;
		iov.iov_len = n;
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		/* what is there already is taken without a poll first */
		k = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (k == -1 && errno == EAGAIN &&
		    fd_wait(sock, POLLIN, until, 0) != 0)
			return -1;
		if (k == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if ((got = taken_fd(&msg)) != -1) {
			if (fd != NULL && *fd == -1)
				*fd = got;
			else
				(void)close(got);	/* not asked for */
		}
		if (k <= 0)
			return -1;
		p = (char *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * One record into r: its header within `first' (NULL: wait as long as
 * it takes), the rest within `rest' seconds of it.  Its type, or 0:
 * then *broken is the type of a record that began and did not add up
 * (too long, cut short, too slow), 0 when none began.
 */
static uint32_t
rec_recv(int sock, struct rec *r, int *fd, const struct timespec *first,
    int rest, uint32_t *broken)
{
	static const struct timespec never = { 0x7fffffff, 0 };
	struct timespec until;
	struct rec_head h;

	*broken = 0;
	if (fd != NULL)
		*fd = -1;
	if (read_exact(sock, &h, sizeof h, fd, first != NULL ? first :
	    &never) == -1)
		return 0;
	deadline_set(&until, rest);
	if (h.len > r->cap || read_exact(sock, r->p, h.len, NULL, &until) ==
	    -1) {
		if (fd != NULL && *fd != -1)
			(void)close(*fd);
		*broken = h.type != 0 ? h.type : UINT32_MAX;
		log_msg(LOG_ERR, h.len > r->cap ? "a record of %lu bytes, "
		    "more than any may have" : "a record of %lu bytes cut "
		    "short or too slow", (unsigned long)h.len);
		return 0;
	}
	r->len = h.len;
	r->pos = 0;
	r->bad = 0;
	return h.type;
}

/* --- the delivery request, as the child writes it ----------------------- */

static void
encode_delivery(struct rec *r, const struct envelope *env,
    const struct message *m)
{
	size_t i;

	put_u32(r, (uint32_t)env->mode);
	put_u32(r, (uint32_t)env->smtputf8);
	put_u32(r, (uint32_t)env->esmtp);
	put_str(r, env->sender);
	put_str(r, env->helo);
	put_str(r, env->tls_protocol);
	put_str(r, env->tls_cipher);
	put_str(r, env->for_rcpt);
	put_str(r, env->id);
	put_u32(r, (uint32_t)((uint64_t)env->when >> 32));
	put_u32(r, (uint32_t)env->when);
	put_str(r, env->headers != NULL ? env->headers : "");
	put_u32(r, (uint32_t)env->ntargets);
	for (i = 0; i < env->ntargets; i++) {
		put_u32(r, (uint32_t)env->targets[i].kind);
		put_str(r, env->targets[i].name);
	}
	put_u32(r, (uint32_t)((uint64_t)m->spooled >> 32));
	put_u32(r, (uint32_t)m->spooled);
	put_bytes(r, m->buf, m->spooled == 0 ? m->len : 0);
}

/* --- and as the parent reads it: every field checked again -------------- */

/* A HELO name or an address: UTF-8 with nothing a header or log fears. */
static int
clean_text(const char *s, int empty_ok)
{
	return (empty_ok || *s != '\0') && utf8_clean(s);
}

/* A message id as make_id() makes them: base 36 and dashes. */
static int
id_ok(const char *id)
{
	return *id != '\0' && strspn(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-")
	    == strlen(id);
}

/* A TLS fact for Received: what tls.c lets through, and no more. */
static int
fact_ok(const char *f)
{
	return strspn(f, TLS_FACT_CHARS "?") == strlen(f);
}

/*
 * The time the dialogue took the message, for the trace header that
 * the -X filter has already read: believed within FILTER_TIME of this
 * clock (the filter's longest run, and some), this clock's otherwise.
 */
static time_t
when_ok(time_t when)
{
	time_t now = time(NULL);

	return when > now - (time_t)2 * FILTER_TIME && when <= now + 5 ? when : now;
}

/* A target: a mailbox whose name stays in the spool, or a remote one. */
static int
target_ok(const struct target *t)
{
	const char *p;

	if (t->kind == TARGET_MAILBOX) {
		for (p = t->name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				return 0;	/* names are lower case */
		return mailbox_name_ok(t->name);
	}
	return t->kind == TARGET_FORWARD && strchr(t->name, '@') != NULL &&
	    clean_text(t->name, 0);
}

/* The message: inline, or a regular file of at least its size. */
static const char *
message_ok(struct message *m, int fd, const unsigned char *body, size_t n)
{
	struct stat st;
	char c;

	m->fd = fd;
	m->len = 0;
	if (fd == -1) {
		if (m->spooled != 0)
			return "a spooled message without its file";
		memcpy(m->buf, body, n);
		m->len = n;
		return NULL;
	}
	if (m->spooled <= 0 || n != 0 ||
	    m->spooled > STORED_MAX(conf.maxsize))
		return "a message file of a size out of bounds";
	/* a byte read shows it readable: not opened write-only, nor
	 * O_PATH, which fstat() accepts and every read refuses */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size < m->spooled || pread(fd, &c, 1, 0) != 1)
		return "the message is no regular file it can read";
	return NULL;
}

static const char *
fields_ok(const struct envelope *env, const char *for_rcpt)
{
	size_t i;

	if ((unsigned)env->mode > MODE_SAML || (unsigned)env->smtputf8 > 1 ||
	    (unsigned)env->esmtp > 1)
		return "bad mode or flags";
	if (!clean_text(env->sender, 1) || !clean_text(for_rcpt, 1) ||
	    !clean_text(env->helo, 0) || strchr(env->helo, ' ') != NULL)
		return "bad sender, recipient or HELO";
	if (!id_ok(env->id))
		return "bad id";
	if (!fact_ok(env->tls_protocol) || !fact_ok(env->tls_cipher))
		return "bad TLS facts";
	if (message_header_fields(env->headers, strlen(env->headers)) != 0)
		return "the filter's header fields are not header fields";
	if (env->ntargets == 0)
		return "no target";
	for (i = 0; i < env->ntargets; i++)
		if (!target_ok(&env->targets[i]))
			return "a target that may not be delivered to";
	return NULL;
}

int
priv_decode_delivery(const unsigned char *p, size_t len, int fd,
    struct envelope *env, struct message *m, const char **why)
{
	static char helo[SMTP_DOMAIN_MAX + 1], for_rcpt[SMTP_PATH_MAX + 1];
	static char tls_protocol[TLS_FACT_MAX + 1], tls_cipher[TLS_FACT_MAX + 1];
	static char headers[FILTER_HEADERS_MAX + 1];
	struct rec r = { (unsigned char *)p, len, 0, len, 0 };
	const unsigned char *body;
	uint64_t spooled, when;
	size_t i, n;

	env->mode = (enum mode)get_u32(&r);
	env->smtputf8 = (int)get_u32(&r);
	env->esmtp = (int)get_u32(&r);
	get_str(&r, env->sender, sizeof env->sender);
	get_str(&r, helo, sizeof helo);
	get_str(&r, tls_protocol, sizeof tls_protocol);
	get_str(&r, tls_cipher, sizeof tls_cipher);
	get_str(&r, for_rcpt, sizeof for_rcpt);
	get_str(&r, env->id, ID_MAX + 1);
	when = (uint64_t)get_u32(&r) << 32;
	when |= get_u32(&r);
	get_str(&r, headers, sizeof headers);
	if ((env->ntargets = get_u32(&r)) > MAX_TARGETS)
		r.bad = 1;
	for (i = 0; !r.bad && i < env->ntargets; i++) {
		env->targets[i].kind = (enum target_kind)get_u32(&r);
		get_str(&r, env->targets[i].name, sizeof env->targets[i].name);
	}
	spooled = (uint64_t)get_u32(&r) << 32;
	spooled |= get_u32(&r);
	body = get_bytes(&r, MSG_BUF_SIZE, &n);
	*why = r.bad ? "a field too long, or cut short" : r.pos != r.len ?
	    "bytes left over" : spooled > (uint64_t)LLONG_MAX ?
	    "a size out of bounds" : NULL;
	env->helo = helo;
	env->tls_protocol = tls_protocol;
	env->tls_cipher = tls_cipher;
	env->for_rcpt = for_rcpt[0] != '\0' ? for_rcpt : NULL;
	env->headers = headers;
	env->when = when_ok((time_t)when);
	m->spooled = (long long)spooled;
	if (*why == NULL)
		*why = fields_ok(env, for_rcpt);
	if (*why == NULL)
		*why = message_ok(m, fd, body, n);
	return *why == NULL ? 0 : -1;
}

/* --- the parent --------------------------------------------------------- */

/*
 * An answer to the dialogue, -1 if it could not be written within -t.
 * The dialogue reads each answer before it asks again, so a full socket
 * means a dialogue that asks without reading: its session ends.
 */
static int
answer(int sock, uint32_t type, const struct rec *r)
{
	if (rec_send(sock, type, r, -1) == 0)
		return 0;
	log_msg(LOG_ERR, "cannot answer the dialogue: %m");
	return -1;
}

static int
answer_outcome(int sock, const struct outcome *out)
{
	struct rec r = { recbuf, 0, 0, sizeof recbuf, 0 };

	put_u32(&r, (uint32_t)out->status);
	put_str(&r, out->why);
	put_str(&r, out->who);
	return answer(sock, REC_OUTCOME, &r);
}

static int
serve_delivery(int sock, struct rec *r, int fd)
{
	static struct target targets[MAX_TARGETS];
	static struct message msg;
	struct envelope env;
	struct outcome out;
	const char *why;

	memset(&env, 0, sizeof env);
	env.targets = targets;
	memset(&out, 0, sizeof out);
	if (priv_decode_delivery(r->p, r->len, fd, &env, &msg, &why) == -1) {
		log_msg(LOG_ERR, "a malformed delivery request: %s", why);
		out.status = DELIVERY_TEMP;
		(void)snprintf(out.why, sizeof out.why, "malformed request: %s",
		    why);
	} else
		(void)delivery_deliver(&env, &msg, &out);
	if (fd != -1)
		(void)close(fd);
	return answer_outcome(sock, &out);
}

static int
serve_terminals(int sock, struct rec *r)
{
	struct rec a = { recbuf, 0, 0, sizeof recbuf, 0 };
	char user[SMTP_LOCAL_MAX + 1];
	uint32_t n = 0;

	get_str(r, user, sizeof user);
	if (r->bad || r->pos != r->len || !mailbox_name_ok(user))
		log_msg(LOG_ERR, "a malformed terminal question");
	else
		n = (uint32_t)delivery_terminals(user, NULL, NULL, NULL);
	put_u32(&a, n);
	return answer(sock, REC_COUNT, &a);
}

/*
 * Requests until the child goes.  A signal that ends the session is
 * passed on to the child, once; a delivery under way sees it too
 * (client_stopping) and is rolled back.
 */
static void
serve(int sock, pid_t child)
{
	struct rec r = { recbuf, 0, 0, sizeof recbuf, 0 };
	static const struct timespec never = { 0x7fffffff, 0 };
	static const struct outcome refused = { DELIVERY_TEMP,
	    "malformed request: a record that does not add up", "" };
	int fd, passed = 0;
	uint32_t type, broken;

	for (;;) {
		if (!passed && fd_wait(sock, POLLIN, &never, 1) == LINE_TERM) {
			(void)kill(child, SIGTERM);
			passed = 1;
			continue;
		}
		if ((type = rec_recv(sock, &r, &fd, &never, conf.timeout,
		    &broken)) == 0) {
			/* the child is gone, or broke off: the stream
			 * cannot be read on, but a delivery is answered */
			if (broken == REC_DELIVER)
				(void)answer_outcome(sock, &refused);
			if (broken != 0)	/* a dialogue out of step */
				(void)kill(child, SIGTERM);
			return;
		}
		if (type == REC_DELIVER) {
			if (serve_delivery(sock, &r, fd) == -1)
				break;
			continue;
		}
		if (fd != -1)
			(void)close(fd);
		if (type != REC_TERMINALS) {
			log_msg(LOG_ERR, "a request of unknown type %lu",
			    (unsigned long)type);
			break;
		}
		if (serve_terminals(sock, &r) == -1)
			break;
	}
	(void)kill(child, SIGTERM);	/* out of step: the session ends */
}

/*
 * The parent: the client's descriptors closed (standard error too, but
 * where the log goes), /dev/null in their place, the table left to the
 * child; then it serves, and ends as the child ended.
 */
static NORETURN void
parent(int sock, pid_t child)
{
	int null, status = 0, top = conf.log_stderr ? 1 : 2, i;

	client_signals();
	aliases_close();
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		exit(1);
	for (i = 0; i <= top; i++)
		if (dup2(null, i) == -1)
			exit(1);
	/* the socketpair on 3, and nothing else of what came with us:
	 * a TLS wrapper's descriptors are the dialogue's alone */
	if (sock != 3) {
		if (dup3(sock, 3, O_CLOEXEC) == -1)
			exit(1);
		sock = 3;
	}
	close_from(4);
	serve(sock, child);
	(void)close(sock);
	while (waitpid(child, &status, 0) == -1 && errno == EINTR)
		;
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* A start-up failure in the child: said; the session ends (main()). */
static int
child_fails(const char *what)
{
	log_msg(LOG_ERR, "the dialogue's process: %s: %m", what);
	return -1;
}

/*
 * The child becomes the -U account, if smtpd runs as root, and can
 * never be root again, gain a privilege by exec, or dump core.
 */
static int
become_user(void)
{
	const struct rlimit none = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0) == -1 ||
	    setrlimit(RLIMIT_CORE, &none) == -1)
		return child_fails("cannot forbid core dumps");
	if (conf.drop && (setgroups(0, NULL) == -1 ||
	    setresgid(conf.user_gid, conf.user_gid, conf.user_gid) == -1 ||
	    setresuid(conf.user_uid, conf.user_uid, conf.user_uid) == -1))
		return child_fails("cannot become the -U account");
	if (conf.drop && (setuid(0) != -1 || geteuid() == 0 || getuid() == 0))
		return child_fails("could become root again");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return child_fails("cannot forbid new privileges");
	/* the deliverer gone, the session cannot deliver: it ends too */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent_pid)
		return child_fails("cannot follow the deliverer");
	return 0;
}

int
priv_split(void)
{
	int sv[2];
	pid_t pid;

	parent_pid = getpid();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1) {
		log_msg(LOG_ERR, "cannot start the dialogue's process: %m");
		return -1;
	}
	if (pid != 0) {
		(void)close(sv[1]);
		parent(sv[0], pid);
	}
	(void)close(sv[0]);
	priv_fd = sv[1];
	self_pid_reset();
	return become_user();
}

/* --- the child's side ----------------------------------------------------- */

/*
 * The answer of the type wanted, within the bound of ANSWER_WAIT; 0
 * when none came (the deliverer is then asked nothing more this
 * session: the next reply would be out of step).
 */
static int
await(struct rec *r, uint32_t wanted)
{
	struct timespec until;
	uint32_t broken;

	deadline_set(&until, conf.timeout + ANSWER_WAIT);
	if (rec_recv(priv_fd, r, NULL, &until, conf.timeout, &broken) == wanted)
		return 1;
	log_msg(LOG_ERR, "the deliverer did not answer");
	(void)close(priv_fd);
	priv_fd = -2;
	return 0;
}

int
priv_deliver(struct envelope *env, struct message *m, struct outcome *out)
{
	struct rec r = { recbuf, 0, 0, sizeof recbuf, 0 };
	uint32_t st;

	if (priv_fd == -1)
		return delivery_deliver(env, m, out);	/* fuzzers: one process */
	out->why[0] = out->who[0] = '\0';
	out->status = DELIVERY_TEMP;
	encode_delivery(&r, env, m);
	if (priv_fd < 0 || rec_send(priv_fd, REC_DELIVER, &r,
	    m->spooled > 0 ? m->fd : -1) == -1 || !await(&r, REC_OUTCOME)) {
		(void)snprintf(out->why, sizeof out->why, "the deliverer "
		    "cannot be asked");
		return out->status;
	}
	st = get_u32(&r);
	get_str(&r, out->why, sizeof out->why);
	get_str(&r, out->who, sizeof out->who);
	if (r.bad || st > DELIVERY_NOT_SENT)
		return out->status = DELIVERY_TEMP;
	return out->status = (enum delivery_status)st;
}

int
priv_terminals(const char *user)
{
	struct rec r = { recbuf, 0, 0, sizeof recbuf, 0 };
	uint32_t n;

	if (priv_fd == -1)
		return delivery_terminals(user, NULL, NULL, NULL);
	put_str(&r, user);
	if (priv_fd < 0 || rec_send(priv_fd, REC_TERMINALS, &r, -1) == -1 ||
	    !await(&r, REC_COUNT))
		return 0;
	n = get_u32(&r);
	return r.bad || n > INT32_MAX ? 0 : (int)n;
}

int
priv_channel(void)
{
	return priv_fd;
}
