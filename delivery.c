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
 *
 * Terminals (SEND, SOML, SAML) are at the end of the file.
 */
#define _GNU_SOURCE		/* copy_file_range(), sync_file_range() */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#include "session.h"

#define LOCK_WAIT	60		/* SPEC 8: seconds, then 451 */
#define LOCK_STALE	300		/* SPEC 8: a dot-lock this old is dead */
#define BACKOFF_MIN_US	100
#define BACKOFF_MAX_US	20000
#define COPY_STEP	(4 << 20)	/* bytes copied between writeback starts */

struct mailbox {
	const char	*name;
	int		 fd;
	int		 lockfd;	/* our dot-lock, until it holds the size */
	int		 dotlocked;
	int		 tmp_made;	/* the unique file of its dot-lock */
	int		 created;
	int		 written;
	off_t		 oldsize;
	struct timespec	 atime;		/* as it was before delivery */
	char		 path[PATH_MAX];	/* last: the fields share a page */
};

/* What a dead writer's dot-lock said: cut its partial message off. */
struct leftover {
	int		 valid;
	long long	 size;		/* the mailbox's, before the dead one */
	unsigned long long ino;
	long long	 seen;		/* the mailbox's, when we broke the lock */
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

/* A failed write or create: 452 when the disk is full (SPEC 8). */
static enum delivery_status
write_failure(void)
{
	return errno == ENOSPC || errno == EDQUOT ? DELIVERY_NO_SPACE :
	    DELIVERY_TEMP;
}

/* Why a mailbox failed, for the log; errno 0 adds nothing. */
static void
say(char *why, size_t size, const char *what, const struct mailbox *mb)
{
	(void)snprintf(why, size, "%s: %s%s%s", mb->name, what,
	    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
}

/*
 * A randomised wait, doubling from BACKOFF_MIN_US: a delivery holds its
 * locks for about a millisecond, so the first waits are short, and even
 * the longest stays short enough that a free lock does not sit idle
 * while twenty writers sleep.
 */
static void
backoff(unsigned attempt)
{
	long us = BACKOFF_MIN_US << (attempt < 8 ? attempt : 8);
	struct timespec ts;

	if (us > BACKOFF_MAX_US)
		us = BACKOFF_MAX_US;
	us = us / 2 + rand_r(&seed) % (us / 2 + 1);	/* no lock-step */
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
past(const struct timespec *until)
{
	struct timespec left;

	return deadline_left(until, &left) == -1;
}

/*
 * A lock file's words, "pid host size inode" (the last two from smtpd
 * only): how many leading ones are whole numbers where they should be.
 */
static int
lock_fields(char *buf, long long *pid, char **host, long long *size,
    unsigned long long *ino)
{
	char *word[4], *save = NULL, *end;
	int n;

	for (n = 0; n < 4 && (word[n] = strtok_r(n == 0 ? buf : NULL,
	    " \t\n", &save)) != NULL; n++)
		;
	errno = 0;
	if (n < 2 || (*pid = strtoll(word[0], &end, 10), *end != '\0') ||
	    errno != 0)
		return 0;
	*host = word[1];
	if (n < 4 || (*size = strtoll(word[2], &end, 10), *end != '\0') ||
	    *size < 0 || (*ino = strtoull(word[3], &end, 10), *end != '\0') ||
	    errno != 0)
		return 2;
	return 4;
}

#define LOCK_GONE	(-2)	/* no lock any more: try again at once */

/*
 * SPEC 8: is the dot-lock dead?  Returns LOCK_GONE, -1 (alive), or a
 * descriptor of the dead lock, kept open so that its inode cannot be
 * reused for a new lock before break_lock() has compared them.
 */
static int
lock_is_stale(const char *lock, struct leftover *lo)
{
	char buf[512], *host = NULL;
	long long pid = 0, size = 0;
	unsigned long long ino = 0;
	struct stat st;
	ssize_t n;
	int fd, dead;

	if ((fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? LOCK_GONE : -1;
	if (fstat(fd, &st) == -1 || (n = read(fd, buf, sizeof buf - 1)) < 0) {
		(void)close(fd);
		return -1;
	}
	buf[n] = '\0';
	n = lock_fields(buf, &pid, &host, &size, &ino);
	dead = n >= 2 && pid > 0 && pid <= INT_MAX &&
	    strcmp(host, lockhost) == 0 && kill((pid_t)pid, 0) == -1 &&
	    errno == ESRCH;
	if (dead && n == 4) {
		lo->valid = 1;
		lo->size = size;
		lo->ino = ino;
	}
	if (dead || time(NULL) - st.st_mtime > LOCK_STALE)
		return fd;
	(void)close(fd);
	return -1;
}

/*
 * Break the dead lock open on fd, unless it is gone or another lock has
 * taken its name.  Returns 2 when this call removed it, LOCK_GONE when
 * it went by itself (a live owner that finished between our reading and
 * our kill(): what it said must not be believed), 0 otherwise.
 * XXX: between the lstat() and the unlink() a new lock may still slip
 * in; every dot-lock scheme shares this window, the fcntl() and flock()
 * locks taken next close it for the writers that use them.
 */
static int
break_lock(const char *lock, int fd)
{
	struct stat st, held;
	int r = 0;

	if (lstat(lock, &st) == -1)
		r = errno == ENOENT ? LOCK_GONE : 0;
	else if (fstat(fd, &held) == 0 && st.st_ino == held.st_ino &&
	    st.st_dev == held.st_dev && unlink(lock) == 0) {
		log_msg(LOG_WARNING, "removed stale lock %s", lock);
		r = 2;
	}
	(void)close(fd);
	return r;
}


/* Our unique file for the i-th mailbox's dot-lock. */
static int
tmp_name(char *buf, size_t size, size_t i)
{
	return (size_t)snprintf(buf, size, "%s/.lk.%.64s.%ld.%zu", conf.spool,
	    lockhost, (long)self_pid(), i) < size ? 0 : -1;
}

/* The mailbox's dot-lock, <mailbox>.lock. */
static int
lock_name(char *buf, size_t size, const struct mailbox *mb)
{
	return (size_t)snprintf(buf, size, "%s.lock", mb->path) < size ? 0 :
	    -1;
}

/*
 * The dot-lock, NFS-safe: a unique file linked to <mailbox>.lock; a link
 * count of 2 says it worked even if link()'s reply was lost.  The unique
 * file is made before the queue and removed after it, so that the next
 * delivery in line does not wait while a file system allocates or frees
 * an inode.
 */
static enum delivery_status
dotlock_prepare(struct mailbox *mb, size_t i, char *why, size_t size)
{
	char tmp[PATH_MAX], text[300];
	enum delivery_status st_fail;
	int n;

	if ((size_t)snprintf(mb->path, sizeof mb->path, "%s/%s", conf.spool,
	    mb->name) >= sizeof mb->path - 5 || tmp_name(tmp, sizeof tmp, i)) {
		errno = ENAMETOOLONG;
		say(why, size, "cannot lock", mb);
		return DELIVERY_TEMP;
	}
	errno = 0;
	mb->lockfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (mb->lockfd == -1 && errno == EEXIST && unlink(tmp) == 0)
		mb->lockfd = open(tmp, O_RDWR | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0644);	/* a dead one's */
	mb->tmp_made = mb->lockfd != -1;
	n = snprintf(text, sizeof text, "%ld %s\n", (long)self_pid(), lockhost);
	if (mb->lockfd == -1 || write(mb->lockfd, text, n) != n) {
		if (mb->lockfd != -1 && errno == 0)
			errno = ENOSPC;	/* a short write */
		st_fail = write_failure();
		say(why, size, "cannot make a lock file", mb);
		return st_fail;
	}
	return DELIVERY_OK;
}

static enum delivery_status
dotlock(struct mailbox *mb, size_t i, const struct timespec *until,
    struct leftover *lo, char *why, size_t size)
{
	char tmp[PATH_MAX], lock[PATH_MAX];
	struct stat st;
	unsigned attempt;
	int got, r;

	if (tmp_name(tmp, sizeof tmp, i) == -1 ||
	    lock_name(lock, sizeof lock, mb) == -1) {
		errno = ENAMETOOLONG;	/* dotlock_prepare() saw to it */
		say(why, size, "cannot lock", mb);
		return DELIVERY_TEMP;
	}
	for (attempt = 0;; attempt++) {
		got = link(tmp, lock) == 0 || (fstat(mb->lockfd, &st) == 0 &&
		    st.st_nlink == 2);
		if (got || errno != EEXIST)
			break;
		/*
		 * What a dead writer's lock says of the mailbox is only
		 * believed when this process removed that very lock and
		 * its next link() took the name, and when nobody wrote in
		 * between: the size seen before must still be the size.
		 */
		lo->valid = 0;
		lo->seen = stat(mb->path, &st) == 0 ? (long long)st.st_size : -1;
		if ((r = lock_is_stale(lock, lo)) >= 0)
			r = break_lock(lock, r);
		if (r != 2)
			lo->valid = 0;
		if (r == 2 || r == LOCK_GONE)
			continue;
		if (past(until)) {
			errno = EWOULDBLOCK;
			break;
		}
		backoff(attempt);
	}
	if (!got)
		say(why, size, "cannot take the dot-lock", mb);
	mb->dotlocked = got;
	return got ? DELIVERY_OK : DELIVERY_TEMP;
}

/*
 * SPEC 8: a new mailbox belongs to its user's account when run as root.
 * The account is asked before the mailbox is made, so that when the
 * accounts cannot be asked none is made, rather than one that would
 * stay root's.  1: *uid and *gid set; 0: the mailbox stays ours; -1:
 * try later.
 */
static int
new_owner(const struct mailbox *mb, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if ((pw = aliases_getpw(mb->name)) == NULL)
		return errno == 0 ? 0 : -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 1;
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
	int exists, owner = 0;
	uid_t uid = 0;
	gid_t gid = 0;

	exists = lstat(mb->path, &before) == 0;
	if (exists && (!S_ISREG(before.st_mode) || before.st_nlink != 1)) {
		errno = 0;
		say(why, size, S_ISREG(before.st_mode) ? "has hard links" :
		    "not a regular file", mb);
		return DELIVERY_TEMP;
	}
	if (!exists && (owner = new_owner(mb, &uid, &gid)) == -1) {
		say(why, size, "cannot look up its owner", mb);
		return DELIVERY_TEMP;
	}
	mb->fd = exists ? open(mb->path, flags) :
	    open(mb->path, flags | O_CREAT | O_EXCL, 0600);
	if (mb->fd == -1) {
		say(why, size, "cannot open", mb);
		return write_failure();
	}
	mb->created = !exists;
	if (fstat(mb->fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || (exists && (st.st_ino != before.st_ino ||
	    st.st_dev != before.st_dev))) {
		errno = EAGAIN;
		say(why, size, "changed while being opened", mb);
		return DELIVERY_TEMP;
	}
	if (owner == 1 && fchown(mb->fd, uid, gid) == -1)	/* it is new */
		log_msg(LOG_WARNING, "%s: cannot give to %s: %m", mb->path,
		    mb->name);
	return DELIVERY_OK;
}

/* An fcntl() lock of type on len bytes from start (0: to the end). */
static int
range_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	return fcntl(fd, cmd, &fl);
}

/* fcntl() and flock(): on Linux they do not see each other (SPEC 8). */
static enum delivery_status
lock_fd(struct mailbox *mb, const struct timespec *until, char *why,
    size_t size)
{
	unsigned attempt;

	for (attempt = 0; range_lock(mb->fd, F_SETLK, F_WRLCK, 0, 0) == -1;
	    attempt++) {
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
	    lo->seen == (long long)st.st_size &&
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
	n = snprintf(text, sizeof text, "%ld %s %lld %llu\n", (long)self_pid(),
	    lockhost, (long long)st.st_size, (unsigned long long)st.st_ino);
	errno = ENOSPC;		/* what a short write means */
	if (pwrite(mb->lockfd, text, n, 0) != n) {
		say(why, size, "cannot write the dot-lock", mb);
		return write_failure();
	}
	(void)close(mb->lockfd);
	mb->lockfd = -1;
	return DELIVERY_OK;
}

static enum delivery_status
lock_mailbox(struct mailbox *mb, size_t i, const struct timespec *until,
    char *why, size_t size)
{
	struct leftover lo = { 0, 0, 0, -1 };
	enum delivery_status st;

	if ((st = dotlock(mb, i, until, &lo, why, size)) != DELIVERY_OK ||
	    (st = open_mailbox(mb, why, size)) != DELIVERY_OK ||
	    (st = lock_fd(mb, until, why, size)) != DELIVERY_OK)
		return st;
	return note_size(mb, &lo, why, size);
}

/*
 * The queue: smtpd's own turn-taking, ahead of the locks of SPEC 8.
 * Those are tried without blocking, so twenty deliveries to one busy
 * mailbox would each sleep out a back-off while the mailbox stands
 * free.  Instead a delivery first waits in the kernel for an fcntl()
 * lock on one byte per mailbox (its name hashed) of a file that only
 * smtpd uses, <spool>/.smtpd-queue, and wakes the moment the delivery
 * before it is done.  Other programs never see this lock, so it cannot
 * deadlock with them; smtpd takes its bytes in rising order, all before
 * any mailbox lock, so it cannot deadlock with itself.  Two names that
 * hash alike merely share a turn.  Without the file (no permission, a
 * full disk) delivery goes on with the back-off alone.
 */
#define QUEUE_NAME	".smtpd-queue"
#define QUEUE_TICK_US	10000	/* the alarm again, should one be missed */

static int	 queue_fd = -1;
static off_t	 queue_bytes[MAX_TARGETS];

static void
on_alarm(int sig)
{
	(void)sig;		/* only to end the wait with EINTR */
}

static int
queue_open(void)
{
	char path[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", conf.spool,
	    QUEUE_NAME) >= sizeof path ||
	    (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)))
		return -1;
	queue_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
	if (queue_fd != -1 && (fstat(queue_fd, &st) == -1 ||
	    !S_ISREG(st.st_mode))) {
		(void)close(queue_fd);
		queue_fd = -1;
	}
	return queue_fd == -1 ? -1 : 0;
}

static off_t
queue_byte(const char *name)
{
	unsigned long h = 2166136261UL;		/* FNV-1a */

	for (; *name != '\0'; name++)
		h = ((h ^ (unsigned char)*name) * 16777619UL) & 0xffffffffUL;
	return (off_t)(h & 0x7fffffffUL);
}

/* Wait for one byte's lock until `until'; 0 when it is ours. */
static int
queue_take(off_t byte, const struct timespec *until)
{
	static int handler_set;
	struct itimerval it;
	struct timespec left;
	struct sigaction sa;
	int r;

	if (range_lock(queue_fd, F_SETLK, F_WRLCK, byte, 1) == 0)
		return 0;
	if ((errno != EAGAIN && errno != EACCES) ||
	    deadline_left(until, &left) == -1)
		return -1;
	if (!handler_set) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;	/* no SA_RESTART */
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGALRM, &sa, NULL);
		handler_set = 1;
	}
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = left.tv_sec;
	it.it_value.tv_usec = left.tv_nsec / 1000;
	if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
		it.it_value.tv_usec = 1;
	it.it_interval.tv_usec = QUEUE_TICK_US;
	if (setitimer(ITIMER_REAL, &it, NULL) == -1)
		return -1;	/* no waiting without a bound */
	while ((r = range_lock(queue_fd, F_SETLKW, F_WRLCK, byte, 1)) == -1 &&
	    errno == EINTR && !past(until))
		;
	memset(&it, 0, sizeof it);
	(void)setitimer(ITIMER_REAL, &it, NULL);
	return r;
}

static int
by_byte(const void *a, const void *b)
{
	off_t x = *(const off_t *)a, y = *(const off_t *)b;

	return x < y ? -1 : x > y;
}

/* Every mailbox's turn, or none (then the back-off alone decides). */
static void
queue_enter(size_t n, const struct timespec *until)
{
	size_t i;

	if (n == 0 || (queue_fd == -1 && queue_open() == -1))
		return;
	for (i = 0; i < n; i++)
		queue_bytes[i] = queue_byte(boxes[i].name);
	qsort(queue_bytes, n, sizeof queue_bytes[0], by_byte);
	for (i = 0; i < n; i++)
		if ((i == 0 || queue_bytes[i] != queue_bytes[i - 1]) &&
		    queue_take(queue_bytes[i], until) == -1)
			break;
}

/* After the mailboxes' own locks: the next delivery may go. */
static void
queue_leave(void)
{
	if (queue_fd != -1)
		(void)range_lock(queue_fd, F_SETLK, F_UNLCK, 0, 0);
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

/*
 * Start the disk on what the copy wrote since *from, once that is
 * COPY_STEP bytes: the disk then works while the copy goes on, and the
 * fsync() after it finds little left to write.
 */
static void
write_behind(int fd, off_t *from, off_t to)
{
	if (to - *from < COPY_STEP)
		return;
	(void)sync_file_range(fd, *from, to - *from, SYNC_FILE_RANGE_WRITE);
	*from = to;
}

/*
 * The spooled message onto the end of the mailbox.  copy_file_range()
 * copies inside the kernel, from page cache to page cache, but will not
 * write to an O_APPEND descriptor: it writes at the end, which is ours
 * while the locks are, with O_APPEND off for the time.  Where it cannot
 * (the spool on another file system, an old kernel) pread() and write()
 * go on from where it stopped.
 */
static int
copy_spool(struct mailbox *mb, const struct message *m)
{
	off_t in = 0, end, from;
	struct stat st;
	ssize_t n = -1;
	int fl, e;

	if (fstat(mb->fd, &st) == -1 || (fl = fcntl(mb->fd, F_GETFL)) == -1)
		return -1;
	from = end = st.st_size;
	if (fcntl(mb->fd, F_SETFL, fl & ~O_APPEND) == 0) {
		while (in < m->spooled && ((n = copy_file_range(m->fd, &in,
		    mb->fd, &end, m->spooled - in < COPY_STEP ?
		    (size_t)(m->spooled - in) : COPY_STEP, 0)) > 0 ||
		    (n == -1 && errno == EINTR)))
			write_behind(mb->fd, &from, end);
		e = n == 0 ? EIO : n == -1 ? errno : 0;	/* 0 read: cut short */
		if (fcntl(mb->fd, F_SETFL, fl) == -1)
			return -1;
		if (e == EIO || (e != 0 && e != EXDEV && e != ENOSYS &&
		    e != EINVAL && e != EOPNOTSUPP && e != EBADF)) {
			errno = e;
			return -1;
		}
	}
	for (; in < m->spooled; in += n, end += n) {
		n = pread(m->fd, copybuf, sizeof copybuf, in);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0 || writev_all(mb->fd, &(struct iovec){ copybuf,
		    (size_t)n }, 1) == -1)
			return -1;
		write_behind(mb->fd, &from, end + n);
	}
	return 0;
}

/* The envelope header, the message, one blank line. */
static int
append(struct mailbox *mb, const char *head, size_t headlen,
    const struct message *m)
{
	struct iovec iov[4];
	const char *sep = separator(mb);

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
	if (writev_all(mb->fd, iov, 2) == -1 || copy_spool(mb, m) == -1)
		return -1;
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
		    lock_name(lock, sizeof lock, &boxes[i]) == 0 &&
		    unlink(lock) == -1)
			log_msg(LOG_ERR, "%s: cannot remove: %m", lock);
		if (boxes[i].fd != -1)
			(void)close(boxes[i].fd);
	}
	queue_leave();
	for (i = 0; i < n; i++)
		if (boxes[i].tmp_made && tmp_name(lock, sizeof lock, i) == 0)
			(void)unlink(lock);
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
		seed = (unsigned)self_pid() ^ (unsigned)time(NULL);
		if (gethostname(lockhost, sizeof lockhost - 1) == -1)
			(void)snprintf(lockhost, sizeof lockhost, "localhost");
	}
	for (i = 0; i < nt; i++) {
		if (t[i].kind != TARGET_MAILBOX)
			continue;
		/* all but the path, which is written before it is read:
		 * clearing it would touch a page more per mailbox */
		memset(&boxes[n], 0, offsetof(struct mailbox, path));
		boxes[n].path[0] = '\0';
		boxes[n].name = t[i].name;
		boxes[n].fd = boxes[n].lockfd = -1;
		n++;
	}
	if (n > 1)
		qsort(boxes, n, sizeof boxes[0], by_name); /* SPEC 8: no deadlock */
	if (n > 8)
		room_for(n);	/* fewer fit in any limit */
	return n;
}

/*
 * SPEC 6: the forwarding program, run once for all the remote
 * recipients of a message, directly (no shell): -F's words, then
 * `-f sender -- recipient...', the sendmail convention.  It reads the
 * Received: header and the message as the mailboxes hold it, mboxrd
 * quoting undone: the header clean-up of SPEC 8 (mbox readers'
 * bookkeeping fields, an old Return-Path, which only final delivery
 * may write: RFC 5321 4.4) applies to forwarded copies too.  It must
 * exit 0 within FORWARD_WAIT seconds.  It runs while the mailboxes are still
 * locked, so that its failure can take their copies back.
 */
#define FORWARD_WAIT	300
#define FORWARD_WORDS	32

static char	*fwd_argv[FORWARD_WORDS + 4 + MAX_TARGETS + 1];

/* -F's value, split at spaces; -1 when it has no word or too many. */
int
delivery_forward_words(const char *program)
{
	static char words[4096];
	char *w, *save = NULL;
	size_t n = 0;

	if (strlen(program) >= sizeof words)
		return -1;
	memcpy(words, program, strlen(program) + 1);
	for (w = strtok_r(words, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save)) {
		if (n == FORWARD_WORDS)
			return -1;
		fwd_argv[n++] = w;
	}
	fwd_argv[n] = NULL;
	return n == 0 ? -1 : (int)n;
}

/* The program -F names, once delivery_forward_words() has split it. */
const char *
delivery_forward_program(void)
{
	return fwd_argv[0];
}

static int
to_pipe(void *arg, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(*(int *)arg, p, n);
		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k, n -= k;
	}
	return 0;
}

/* Wait for the program, FORWARD_WAIT seconds at most. */
static int
forward_wait(pid_t pid)
{
	struct timespec tick = { 0, 10000000L }, until;
	int status;
	pid_t r;

	deadline_set(&until, FORWARD_WAIT);
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 ||
	    (r == -1 && errno == EINTR)) {
		if (past(&until)) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			return -2;
		}
		(void)nanosleep(&tick, NULL);
	}
	return r == pid ? status : -1;
}

static enum delivery_status
forward(const char *sender, const struct target *t, size_t nt,
    const char *received, const struct message *m, char *why, size_t size)
{
	size_t i, n = 0, words;
	int fds[2], wrote, status;
	pid_t pid = 0;	/* stays 0 when there is no pipe */

	for (i = 0; i < nt && t[i].kind != TARGET_FORWARD; i++)
		;
	if (i == nt)
		return DELIVERY_OK;	/* nothing to forward */
	for (words = 0; fwd_argv[words] != NULL; words++)
		;
	n = words;
	fwd_argv[n++] = "-f";
	fwd_argv[n++] = sender[0] != '\0' ? (char *)sender : "<>";
	fwd_argv[n++] = "--";
	for (i = 0; i < nt; i++)
		if (t[i].kind == TARGET_FORWARD)
			fwd_argv[n++] = (char *)t[i].name;
	fwd_argv[n] = NULL;
	if (pipe_cloexec(fds) == -1 ||
	    (pid = spawn(fwd_argv, fds[0], -1, 0)) == -1) {
		(void)snprintf(why, size, "cannot start %s: %s", fwd_argv[0],
		    strerror(errno));
		if (pid == -1)
			(void)close(fds[0]), (void)close(fds[1]);
		status = -1;
	} else {
		(void)close(fds[0]);
		wrote = to_pipe(&fds[1], received, strlen(received)) == 0 &&
		    message_each(m, to_pipe, &fds[1]) == 0;
		(void)close(fds[1]);
		status = forward_wait(pid);
		if (status == 0 && !wrote)
			status = -1;
		(void)snprintf(why, size, "forwarding: %s %s", fwd_argv[0],
		    status == -2 ? "took too long" : !wrote ?
		    "did not read the message" : WIFSIGNALED(status) ?
		    "was killed" : "failed");
	}
	fwd_argv[words] = NULL;
	return status == 0 ? DELIVERY_OK : DELIVERY_FORWARD;
}

/*
 * Deliver the message to every mailbox among t[0..nt), prefixed with
 * head (the From_ line and the envelope's headers), and to the
 * forwarding program for the remote ones, or to none.  On failure why
 * says which mailbox, or the program, and what happened.
 */
enum delivery_status
delivery_mbox(const char *sender, const struct target *t, size_t nt,
    const char *head, size_t headlen, struct message *m, char *why,
    size_t size)
{
	enum delivery_status st = DELIVERY_OK;
	const char *received;
	struct timespec until;
	size_t i, n = collect(t, nt);

	for (i = 0; i < n && st == DELIVERY_OK; i++)
		st = dotlock_prepare(&boxes[i], i, why, size);
	deadline_set(&until, LOCK_WAIT);	/* for all the locks together */
	if (st == DELIVERY_OK)
		queue_enter(n, &until);
	for (i = 0; i < n && st == DELIVERY_OK; i++)
		st = lock_mailbox(&boxes[i], i, &until, why, size);
	for (i = 0; i < n && st == DELIVERY_OK; i++)
		if (append(&boxes[i], head, headlen, m) == -1 ||
		    fsync(boxes[i].fd) == -1) {
			st = write_failure();
			say(why, size, "cannot write", &boxes[i]);
		}
	if (st == DELIVERY_OK && sync_spool_dir(n) == -1) {
		st = DELIVERY_TEMP;
		(void)snprintf(why, size, "%s: cannot sync: %s", conf.spool,
		    strerror(errno));
	}
	if (st == DELIVERY_OK && (received = strstr(head, "\nReceived:")) !=
	    NULL)
		st = forward(sender, t, nt, received + 1, m, why, size);
	if (st != DELIVERY_OK)
		roll_back(n);
	else
		for (i = 0; i < n; i++)
			keep_unread(&boxes[i]);
	release(n);
	return st;
}

/*
 * Terminals (SPEC 7), the way write(1) reaches a logged-in user.  The
 * utmp file names the user's ttys; one accepts messages when its group
 * may write it (mesg y) and it belongs to the user's account.  What is
 * written is filtered first: printable text, tab and newline alone, so
 * no escape sequence, bell or terminal answer-back can be triggered by a
 * stranger.  A terminal that blocks is given up after TTY_WAIT seconds.
 */
#define TTY_WAIT	10		/* seconds for one terminal, in all */
#define TTY_LINES	100		/* lines of the message shown */
#define TTY_BYTES	16384		/* bytes of the message shown */

/* Output to one terminal: a buffer, flushed with a deadline. */
struct tty_out {
	int		 fd;
	int		 failed;
	struct timespec	 until;
	size_t		 len;
	char		 buf[4096];
	unsigned	 utf8_need;	/* continuation bytes still due */
	unsigned	 utf8_len;
	char		 utf8_seq[4];
	size_t		 lines, shown;	/* of the message */
};

static int
tty_wait(struct tty_out *t)
{
	struct timespec left;
	struct pollfd pfd = { t->fd, POLLOUT, 0 };

	if (deadline_left(&t->until, &left) == -1)
		return -1;
	return poll(&pfd, 1, (int)(left.tv_sec * 1000 +
	    left.tv_nsec / 1000000) + 1) == 1 ? 0 : -1;
}

static void
tty_flush(struct tty_out *t)
{
	size_t off = 0;
	ssize_t n;

	while (off < t->len && !t->failed) {
		n = write(t->fd, t->buf + off, t->len - off);
		if (n > 0)
			off += n;
		else if (n == -1 && errno != EINTR &&
		    (errno != EAGAIN || tty_wait(t) == -1))
			t->failed = 1;	/* else: try again */
	}
	t->len = 0;
}

static void
tty_put(struct tty_out *t, const char *p, size_t n)
{
	if (t->len + n > sizeof t->buf)
		tty_flush(t);
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/*
 * One byte of UTF-8 text.  A sequence is let through only whole and
 * well formed, and not a C1 control (U+0080 to U+009F, which some
 * terminals obey as escapes): utf8_char() judges it once it is whole.
 */
static void
tty_utf8(struct tty_out *t, unsigned char c)
{
	unsigned cp;

	if (t->utf8_need > 0 && (c & 0xc0) == 0x80) {
		t->utf8_seq[t->utf8_len++] = (char)c;
		if (--t->utf8_need == 0 && utf8_char((const unsigned char *)
		    t->utf8_seq, &cp) == t->utf8_len && cp > 0x9f)
			tty_put(t, t->utf8_seq, t->utf8_len);
		return;
	}
	t->utf8_need = 0;	/* a broken sequence is dropped */
	if (c >= 0xc2 && c <= 0xf4) {
		t->utf8_need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
		t->utf8_seq[0] = (char)c;
		t->utf8_len = 1;
	}
}

/* Filtered text: LF becomes CR LF, controls other than tab vanish. */
static void
tty_text(struct tty_out *t, const char *p, size_t n)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c >= 0x80) {
			tty_utf8(t, c);
			continue;
		}
		t->utf8_need = 0;
		if (c == '\n')
			tty_put(t, "\r\n", 2);
		else if (c == '\t' || (c >= 0x20 && c < 0x7f))
			tty_put(t, (const char *)&c, 1);
	}
}

/* The message, at most TTY_LINES lines and TTY_BYTES bytes of it. */
static int
tty_piece(void *arg, const char *p, size_t n)
{
	struct tty_out *t = arg;
	const char *nl;
	size_t k;

	while (n > 0) {
		if (t->lines == TTY_LINES || t->shown == TTY_BYTES)
			return -1;	/* cut here */
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) + 1 : n;
		if (k > TTY_BYTES - t->shown)
			k = TTY_BYTES - t->shown;
		else if (nl != NULL)
			t->lines++;
		tty_text(t, p, k);
		t->shown += k;
		p += k, n -= k;
	}
	return 0;
}

/*
 * A terminal named by utmp, if it is the user's and accepts messages.
 * The line must stay under /dev; O_NOCTTY so that it never becomes our
 * controlling terminal, O_NONBLOCK so that it cannot hang us.
 */
static int
tty_open(const char *line, uid_t uid)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (line[0] == '\0' || line[0] == '.' || line[0] == '/' ||
	    strstr(line, "/.") != NULL)
		return -1;
	(void)snprintf(path, sizeof path, "/dev/%s", line);
	fd = open(path, O_WRONLY | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISCHR(st.st_mode) ||
	    st.st_uid != uid || !(st.st_mode & S_IWGRP)) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/*
 * Write the message to every accepting terminal of user, after banner;
 * note follows it when it had to be cut.  With m NULL, only count the
 * terminals that would take it.  Returns how many terminals took it.
 */
int
delivery_terminals(const char *user, const char *banner, const char *note,
    const struct message *m)
{
	static struct tty_out t;
	struct utmpx ut;
	struct passwd *pw;
	char line[sizeof ut.ut_line + 1];
	int ufd, done = 0, cut;

	if (strlen(user) > sizeof ut.ut_user ||
	    (pw = aliases_getpw(user)) == NULL)
		return 0;	/* no account, no terminal it could own */
	if ((ufd = open(conf.utmp, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	while (read(ufd, &ut, sizeof ut) == (ssize_t)sizeof ut) {
		memcpy(line, ut.ut_line, sizeof ut.ut_line);
		line[sizeof ut.ut_line] = '\0';	/* not always ended */
		if (ut.ut_type != USER_PROCESS ||
		    strncmp(ut.ut_user, user, sizeof ut.ut_user) != 0 ||
		    (t.fd = tty_open(line, pw->pw_uid)) == -1)
			continue;
		if (m != NULL) {
			t.failed = 0;
			t.len = t.lines = t.shown = 0;
			t.utf8_need = 0;
			deadline_set(&t.until, TTY_WAIT);
			tty_put(&t, "\r\n", 2);
			tty_text(&t, banner, strlen(banner));
			cut = message_each(m, tty_piece, &t) == -1;
			t.utf8_need = 0;
			tty_put(&t, "\r\n", 2);
			if (cut) {
				tty_text(&t, note, strlen(note));
				tty_put(&t, "\r\n", 2);
			}
			tty_put(&t, "EOF\r\n", 5);
			tty_flush(&t);
		}
		done += !t.failed || m == NULL;
		(void)close(t.fd);
	}
	(void)close(ufd);
	return done;
}
