/*
 * delivery.c: mailboxes (SPEC 8).
 *
 * A message goes to all its mailboxes or to none.  Each is locked the
 * way mutt, procmail, Dovecot and mail.local expect on Linux (a dot-lock
 * made with link(), then fcntl(), then flock(), none of them blocking),
 * in the order of their names so that two deliveries never deadlock.
 * Only when every copy is written and fsynced are the locks let go; if
 * any copy fails, every mailbox is cut back to its old size first.  The
 * dot-lock records the old size, so a writer killed halfway leaves
 * behind what the next one needs to cut its partial message away.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define LOCK_WAIT	60		/* SPEC 8: seconds, then 451 */
#define LOCK_STALE	300		/* SPEC 8: a dot-lock this old is dead */
#define BACKOFF_MIN_MS	5
#define BACKOFF_MAX_MS	500

struct mailbox {
	const char	*name;
	char		 path[PATH_MAX];
	int		 fd;
	int		 lockfd;	/* our dot-lock, until it holds the size */
	int		 dotlocked;
	int		 created;
	int		 written;
	off_t		 oldsize;
	struct timespec	 atime;		/* as it was before delivery */
};

/* What a dead writer's dot-lock said: cut its partial message off. */
struct leftover {
	int		 valid;
	long long	 size;
	unsigned long long ino;
};

static struct mailbox	 boxes[MAX_TARGETS];
static char		 copybuf[65536];
static char		 lockhost[256];
static unsigned		 seed;

/*
 * SPEC 4: a local part that names a mailbox must stay in the spool: no
 * '/', no leading dot, no control character; and none may end in
 * ".lock", which is another mailbox's dot-lock.
 */
int
delivery_safe_name(const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (n == 0 || n > SMTP_LOCAL_MAX || name[0] == '.' ||
	    (n >= 5 && strcmp(name + n - 5, ".lock") == 0))
		return 0;
	for (p = name; *p != '\0'; p++)
		if (*p == '/' || (unsigned char)*p < 32 || *p == 127)
			return 0;
	return 1;
}

/* Why a mailbox failed, for the log; errno 0 adds nothing. */
static void
say(char *why, size_t size, const char *what, const struct mailbox *mb)
{
	(void)snprintf(why, size, "%s: %s%s%s", mb->name, what,
	    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
}

static void
backoff(unsigned attempt)
{
	long ms = BACKOFF_MIN_MS << (attempt < 7 ? attempt : 7);
	struct timespec ts;

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	ms = ms / 2 + rand_r(&seed) % (ms / 2 + 1);	/* no lock-step */
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
past(const struct timespec *until)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > until->tv_sec || (now.tv_sec == until->tv_sec &&
	    now.tv_nsec >= until->tv_nsec);
}

/*
 * SPEC 8: a dot-lock is dead when it names a process of this host that
 * is gone, or when it has not changed for five minutes.  A dead smtpd's
 * lock also says how long the mailbox was before it began.
 */
static int
lock_is_stale(const char *lock, struct leftover *lo, ino_t *lockino)
{
	char buf[512], host[256];
	long long pid, size;
	unsigned long long ino;
	struct stat st;
	ssize_t n;
	int fd, dead;

	if ((fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT;	/* gone already: try again */
	if (fstat(fd, &st) == -1 || (n = read(fd, buf, sizeof buf - 1)) < 0) {
		(void)close(fd);
		return 0;
	}
	(void)close(fd);
	*lockino = st.st_ino;
	buf[n] = '\0';
	host[0] = '\0';
	n = sscanf(buf, "%lld %255s %lld %llu", &pid, host, &size, &ino);
	dead = n >= 2 && pid > 0 && pid <= INT_MAX &&
	    strcmp(host, lockhost) == 0 && kill((pid_t)pid, 0) == -1 &&
	    errno == ESRCH;
	if (dead && n == 4) {
		lo->valid = 1;
		lo->size = size;
		lo->ino = ino;
	}
	return dead || time(NULL) - st.st_mtime > LOCK_STALE;
}

/*
 * Break a dead lock, unless another process replaced it meanwhile.
 * XXX: between the lstat() and the unlink() a new lock may still slip
 * in; every dot-lock scheme shares this window, the fcntl() and flock()
 * locks taken next close it for the writers that use them.
 */
static int
break_lock(const char *lock, ino_t ino)
{
	struct stat st;

	if (lstat(lock, &st) == -1)
		return errno == ENOENT;		/* gone: try again at once */
	if (st.st_ino != ino || unlink(lock) == -1)
		return 0;
	log_msg(LOG_WARNING, "removed stale lock %s", lock);
	return 1;
}

/*
 * The dot-lock, NFS-safe: a unique file linked to <mailbox>.lock; a link
 * count of 2 says it worked even if link()'s reply was lost.
 */
static enum delivery_status
dotlock(struct mailbox *mb, const struct timespec *until,
    struct leftover *lo, char *why, size_t size)
{
	char tmp[PATH_MAX], lock[PATH_MAX], text[300];
	struct stat st;
	unsigned attempt;
	ino_t ino = 0;
	int n, got;

	n = snprintf(lock, sizeof lock, "%s.lock", mb->path);
	if (n < 0 || (size_t)n >= sizeof lock ||
	    (size_t)snprintf(tmp, sizeof tmp, "%s/.lk.%.64s.%ld", conf.spool,
	    lockhost, (long)getpid()) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		say(why, size, "cannot lock", mb);
		return DELIVERY_TEMP;
	}
	(void)unlink(tmp);	/* our pid: any such file is a dead one's */
	mb->lockfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	n = snprintf(text, sizeof text, "%ld %s\n", (long)getpid(), lockhost);
	if (mb->lockfd == -1 || write(mb->lockfd, text, n) != n) {
		say(why, size, "cannot make a lock file", mb);
		if (mb->lockfd != -1)
			(void)unlink(tmp);
		return DELIVERY_TEMP;
	}
	for (attempt = 0;; attempt++) {
		got = link(tmp, lock) == 0 || (fstat(mb->lockfd, &st) == 0 &&
		    st.st_nlink == 2);
		if (got || errno != EEXIST)
			break;
		if (lock_is_stale(lock, lo, &ino) && break_lock(lock, ino))
			continue;
		if (past(until)) {
			errno = EWOULDBLOCK;
			break;
		}
		backoff(attempt);
	}
	if (!got)
		say(why, size, "cannot take the dot-lock", mb);
	(void)unlink(tmp);
	mb->dotlocked = got;
	return got ? DELIVERY_OK : DELIVERY_TEMP;
}

/* SPEC 8: a new mailbox belongs to its user's account when run as root. */
static void
give_away(struct mailbox *mb)
{
	struct passwd *pw;

	if (geteuid() != 0 || (pw = getpwnam(mb->name)) == NULL)
		return;
	if (fchown(mb->fd, pw->pw_uid, pw->pw_gid) == -1)
		log_msg(LOG_WARNING, "%s: cannot give to %s: %m", mb->path,
		    mb->name);
}

/*
 * SPEC 8: never through a symbolic link, never a file that is not a
 * regular one or that has another name: such a mailbox is left alone.
 * lstat() first, so that a device or a FIFO is not even opened.
 */
static enum delivery_status
open_mailbox(struct mailbox *mb, char *why, size_t size)
{
	const int flags = O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC;
	struct stat before, st;
	int exists;

	exists = lstat(mb->path, &before) == 0;
	if (exists && (!S_ISREG(before.st_mode) || before.st_nlink != 1)) {
		errno = 0;
		say(why, size, S_ISREG(before.st_mode) ? "has hard links" :
		    "not a regular file", mb);
		return DELIVERY_TEMP;
	}
	mb->fd = exists ? open(mb->path, flags) :
	    open(mb->path, flags | O_CREAT | O_EXCL, 0600);
	if (mb->fd == -1) {
		say(why, size, "cannot open", mb);
		return DELIVERY_TEMP;
	}
	mb->created = !exists;
	if (fstat(mb->fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || (exists && (st.st_ino != before.st_ino ||
	    st.st_dev != before.st_dev))) {
		errno = EAGAIN;
		say(why, size, "changed while being opened", mb);
		return DELIVERY_TEMP;
	}
	if (mb->created)
		give_away(mb);
	return DELIVERY_OK;
}

/* fcntl() and flock(): on Linux they do not see each other (SPEC 8). */
static enum delivery_status
lock_fd(struct mailbox *mb, const struct timespec *until, char *why,
    size_t size)
{
	struct flock fl;
	unsigned attempt;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (attempt = 0; fcntl(mb->fd, F_SETLK, &fl) == -1; attempt++) {
		if ((errno != EAGAIN && errno != EACCES) || past(until)) {
			say(why, size, "cannot take the fcntl lock", mb);
			return DELIVERY_TEMP;
		}
		backoff(attempt);
	}
	for (attempt = 0; flock(mb->fd, LOCK_EX | LOCK_NB) == -1; attempt++) {
		if (errno != EWOULDBLOCK || past(until)) {
			say(why, size, "cannot take the flock lock", mb);
			return DELIVERY_TEMP;
		}
		backoff(attempt);
	}
	return DELIVERY_OK;
}

/*
 * Locked: note the size, first cutting off what a dead writer left, and
 * record it in the dot-lock for whoever comes after a crash of ours.
 */
static enum delivery_status
note_size(struct mailbox *mb, const struct leftover *lo, char *why,
    size_t size)
{
	char text[400];
	struct stat st;
	int n;

	if (fstat(mb->fd, &st) == -1) {
		say(why, size, "cannot stat", mb);
		return DELIVERY_TEMP;
	}
	if (lo->valid && lo->ino == (unsigned long long)st.st_ino &&
	    lo->size >= 0 && lo->size < (long long)st.st_size) {
		if (ftruncate(mb->fd, lo->size) == -1 || fsync(mb->fd) == -1) {
			say(why, size, "cannot remove a partial message", mb);
			return DELIVERY_TEMP;
		}
		log_msg(LOG_WARNING, "%s: removed %lld bytes left by a dead "
		    "writer", mb->path, (long long)st.st_size - lo->size);
		st.st_size = lo->size;
	}
	mb->oldsize = st.st_size;
	mb->atime = st.st_atim;
	n = snprintf(text, sizeof text, "%ld %s %lld %llu\n", (long)getpid(),
	    lockhost, (long long)st.st_size, (unsigned long long)st.st_ino);
	if (pwrite(mb->lockfd, text, n, 0) != n) {
		say(why, size, "cannot write the dot-lock", mb);
		return DELIVERY_TEMP;
	}
	(void)close(mb->lockfd);
	mb->lockfd = -1;
	return DELIVERY_OK;
}

static enum delivery_status
lock_mailbox(struct mailbox *mb, char *why, size_t size)
{
	struct leftover lo = { 0, 0, 0 };
	struct timespec until;
	enum delivery_status st;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += LOCK_WAIT;
	if ((size_t)snprintf(mb->path, sizeof mb->path, "%s/%s", conf.spool,
	    mb->name) >= sizeof mb->path) {
		errno = ENAMETOOLONG;
		say(why, size, "bad path", mb);
		return DELIVERY_TEMP;
	}
	if ((st = dotlock(mb, &until, &lo, why, size)) != DELIVERY_OK ||
	    (st = open_mailbox(mb, why, size)) != DELIVERY_OK ||
	    (st = lock_fd(mb, &until, why, size)) != DELIVERY_OK)
		return st;
	return note_size(mb, &lo, why, size);
}

/* write() all of iov[0..n), across short writes. */
static int
writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = writev(fd, iov, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

/* SPEC 8: the new From_ line must start a message: a blank line before. */
static const char *
separator(const struct mailbox *mb)
{
	char end[2];
	size_t n = mb->oldsize >= 2 ? 2 : (size_t)mb->oldsize;

	if (n == 0 || pread(mb->fd, end, n, mb->oldsize - n) != (ssize_t)n)
		return "";
	if (end[n - 1] != '\n')
		return "\n\n";
	return n == 2 && end[0] != '\n' ? "\n" : "";
}

/* The envelope header, the message, one blank line. */
static int
append(struct mailbox *mb, const char *head, size_t headlen,
    const struct message *m)
{
	struct iovec iov[4];
	const char *sep = separator(mb);
	off_t off;
	ssize_t n;

	mb->written = 1;
	iov[0].iov_base = (char *)sep;
	iov[0].iov_len = strlen(sep);
	iov[1].iov_base = (char *)head;
	iov[1].iov_len = headlen;
	iov[2].iov_base = (char *)m->buf;
	iov[2].iov_len = m->spooled == 0 ? m->len : 0;
	iov[3].iov_base = "\n";
	iov[3].iov_len = 1;
	if (m->spooled == 0)
		return writev_all(mb->fd, iov, 4);
	if (writev_all(mb->fd, iov, 2) == -1)
		return -1;
	for (off = 0; off < m->spooled; off += n) {
		n = pread(m->fd, copybuf, sizeof copybuf, off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0 || writev_all(mb->fd, &(struct iovec){ copybuf,
		    (size_t)n }, 1) == -1)
			return -1;
	}
	return writev_all(mb->fd, &iov[3], 1);
}

/*
 * SPEC 8: the access time stays older than the modification time (mail
 * readers compare them in whole seconds to tell of new mail).
 */
static void
keep_unread(struct mailbox *mb)
{
	struct timespec t[2];
	struct stat st;

	if (fstat(mb->fd, &st) == -1)
		return;
	t[0] = mb->atime;
	if (mb->created || t[0].tv_sec >= st.st_mtim.tv_sec) {
		t[0].tv_sec = st.st_mtim.tv_sec - 1;
		t[0].tv_nsec = 0;
	}
	t[1].tv_sec = 0;
	t[1].tv_nsec = UTIME_OMIT;
	(void)futimens(mb->fd, t);	/* not ours to change: no harm */
}

/* Cut every mailbox back to what it was; still locked. */
static void
roll_back(size_t n)
{
	struct mailbox *mb;
	size_t i;

	for (i = 0; i < n; i++) {
		mb = &boxes[i];
		if (mb->created && mb->fd != -1) {
			(void)unlink(mb->path);
			continue;
		}
		if (!mb->written)
			continue;
		if (ftruncate(mb->fd, mb->oldsize) == -1 || fsync(mb->fd) == -1)
			log_msg(LOG_ERR, "%s: cannot undo a partial delivery: "
			    "%m", mb->path);
	}
}

static void
release(size_t n)
{
	char lock[PATH_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (boxes[i].lockfd != -1)
			(void)close(boxes[i].lockfd);
		if (boxes[i].dotlocked &&
		    (size_t)snprintf(lock, sizeof lock, "%s.lock",
		    boxes[i].path) < sizeof lock && unlink(lock) == -1)
			log_msg(LOG_ERR, "%s: cannot remove: %m", lock);
		if (boxes[i].fd != -1)
			(void)close(boxes[i].fd);
	}
}

/* A created mailbox's name must survive a crash too. */
static int
sync_spool_dir(size_t n)
{
	size_t i;
	int fd, r;

	for (i = 0; i < n && !boxes[i].created; i++)
		;
	if (i == n)
		return 0;
	if ((fd = open(conf.spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	(void)close(fd);
	return r;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct mailbox *)a)->name,
	    ((const struct mailbox *)b)->name);
}

/* Enough descriptors for every mailbox of a large list. */
static void
room_for(size_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 32 &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = n + 32 < rl.rlim_max ? n + 32 : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static size_t
collect(const struct target *t, size_t nt)
{
	size_t i, n = 0;

	if (seed == 0) {
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
		if (gethostname(lockhost, sizeof lockhost - 1) == -1)
			(void)snprintf(lockhost, sizeof lockhost, "localhost");
	}
	for (i = 0; i < nt; i++) {
		if (t[i].kind != TARGET_MAILBOX)
			continue;
		memset(&boxes[n], 0, sizeof boxes[n]);
		boxes[n].name = t[i].name;
		boxes[n].fd = boxes[n].lockfd = -1;
		n++;
	}
	qsort(boxes, n, sizeof boxes[0], by_name);	/* SPEC 8: no deadlock */
	room_for(n);
	return n;
}

/*
 * Deliver the message to every mailbox among t[0..nt), prefixed with
 * head (the From_ line and the envelope's headers), or to none.  On
 * failure why says which mailbox and what happened.
 */
enum delivery_status
delivery_mbox(const struct target *t, size_t nt, const char *head,
    size_t headlen, struct message *m, char *why, size_t size)
{
	enum delivery_status st = DELIVERY_OK;
	size_t i, n = collect(t, nt);

	for (i = 0; i < n && st == DELIVERY_OK; i++)
		st = lock_mailbox(&boxes[i], why, size);
	for (i = 0; i < n && st == DELIVERY_OK; i++)
		if (append(&boxes[i], head, headlen, m) == -1 ||
		    fsync(boxes[i].fd) == -1) {
			st = errno == ENOSPC || errno == EDQUOT ?
			    DELIVERY_NO_SPACE : DELIVERY_TEMP;
			say(why, size, "cannot write", &boxes[i]);
		}
	if (st == DELIVERY_OK && sync_spool_dir(n) == -1) {
		st = DELIVERY_TEMP;
		(void)snprintf(why, size, "%s: cannot sync: %s", conf.spool,
		    strerror(errno));
	}
	if (st != DELIVERY_OK)
		roll_back(n);
	else
		for (i = 0; i < n; i++)
			keep_unread(&boxes[i]);
	release(n);
	return st;
}
