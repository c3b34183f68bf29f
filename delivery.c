/*
 * delivery.c: mailboxes (smtpd.8, MAILBOX FORMAT), the -F
 * forward, and terminals.
 *
 * A message goes to all its mailboxes or to none.  Each is locked the
 * way Debian Policy 11.6, Dovecot and mutt lock an mbox on Linux:
 * fcntl() first, then a dot-lock made with link(), then flock(), none
 * of them waited for while another is held, in the order of the
 * mailboxes' names so that two deliveries never deadlock.  Only when
 * every copy is written and fsynced are the locks let go; if any copy
 * fails, every mailbox is cut back to its old size first.  The dot-lock
 * records the old size, so a writer killed halfway leaves behind what
 * the next one needs to cut its partial message away.
 *
 * The spool may be writable by people who are not to be trusted (1777,
 * or a group-writable 2775): whatever they plant there, a lock, a
 * directory, a FIFO, a symbolic link, a mailbox made in advance, is
 * judged by its type and owner before anything it says is believed.
 *
 * Offers: delivery_deliver(), one transaction's message as its mode says
 * (mailboxes, the -F program while they are still locked, terminals,
 * which are at the end of the file), with the reason of a failure;
 * delivery_trace(), the Return-Path:/Received: that heads every copy.
 * Relies on: priv.c to have checked the envelope, message.c to check
 * the framing again as it copies, accounts.c for each mailbox's owner.
 * Never: delivers in the dialogue's process (delivery_trace() alone
 * serves it, for -X), follows a symbolic link in the spool, or reports
 * success before every copy is on disk.
 */
#define _GNU_SOURCE		/* sync_file_range(), O_PATH */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#include "accounts.h"
#include "client.h"
#include "delivery.h"
#include "message.h"
#include "smtpd.h"

/* smtpd.8, MAILBOX FORMAT: seconds for all the locks, then 451; the age at
 * which another host's dot-lock is taken to be dead */
#define LOCK_WAIT	FIXED_WAIT("LOCK_WAIT", 60)
#define LOCK_STALE	FIXED_WAIT("LOCK_STALE", 300)
#define BACKOFF_MIN_US	100
#define BACKOFF_MAX_US	20000
#define COPY_STEP	(4 << 20)	/* bytes copied between writeback starts */
#define TMP_TRIES	8		/* unique lock files tried before giving up */

struct mailbox {
	const char	*name;
	int		 fd;
	int		 lockfd;	/* our dot-lock, until it holds the size */
	int		 fcntl_held;
	int		 dotlocked;
	int		 flocked;
	int		 tmp_made;	/* the unique file of its dot-lock */
	int		 created;
	int		 written;
	uint64_t	 tmp_id;	/* the random part of its name */
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

static void	queue_leave(void);

/* A lock that was in the way: wait, try again, give up, or break it. */
enum lock_verdict { LOCK_ALIVE = -1, LOCK_GONE = -2, LOCK_DIR = -3 };

static struct mailbox	 boxes[MAX_TARGETS];
static char		 copybuf[65536];
static char		 lockhost[65];
static unsigned		 seed;

/* A failed write or create: 452 when the disk is full. */
static enum delivery_status
write_failure(void)
{
	return errno == ENOSPC || errno == EDQUOT ? DELIVERY_NO_SPACE :
	    DELIVERY_TEMP;
}

/*
 * Why a mailbox failed, for the log, by its path; errno 0 adds nothing.
 * A path too long for the line is cut: the log line says enough.
 */
static void
say(char *why, size_t size, const char *what, const struct mailbox *mb)
{
	if ((size_t)snprintf(why, size, "%s: %s%s%s", mb->path, what,
	    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "") >= size)
		why[size - 1] = '\0';
}

/*
 * A failed append, said.  EBADMSG: the message handed over is not what
 * the dialogue's process should have made of it (an unquoted From_
 * line, no final newline, cut short); only a dialogue gone wrong does
 * that, so it is logged here, by the half that may still be trusted.
 */
static enum delivery_status
append_failure(const struct mailbox *mb, char *why, size_t size)
{
	enum delivery_status st = write_failure();

	if (errno != EBADMSG) {
		say(why, size, "cannot write", mb);
		return st;
	}
	errno = 0;
	say(why, size, "the message handed over breaks its mbox framing", mb);
	log_msg(LOG_ERR, "%s", why);
	return st;
}

/*
 * A randomised wait, doubling from BACKOFF_MIN_US: a delivery holds its
 * locks for about a millisecond, so the first waits are short, and even
 * the longest stays short enough that a free lock does not sit idle
 * while twenty writers sleep.  SIGTERM cuts it short.
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
	client_nap(&ts);
}

static int
past(const struct timespec *until)
{
	struct timespec left;

	return deadline_left(until, &left) == -1;
}

/* Time to give up a wait: the deadline passed, or SIGTERM came. */
static int
give_up(const struct timespec *until)
{
	return past(until) || client_stopping();
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

/*
 * Could the owner of a lock write the mailbox?  Root, the account smtpd
 * delivers as, the mailbox's owner, or its group when the mailbox is
 * group-writable (a setgid-mail locker such as mutt_dotlock).  A lock
 * made by anyone else is no lock: planted in a shared spool, it would
 * block the mailbox for as long as its maker liked.
 */
static int
lock_owner_may_write(const struct stat *lk, const struct mailbox *mb)
{
	struct stat st;

	if (lk->st_uid == 0 || lk->st_uid == geteuid())
		return 1;
	if (fstat(mb->fd, &st) == -1)
		return 1;	/* cannot tell: a lock as any other */
	return lk->st_uid == st.st_uid ||
	    ((st.st_mode & S_IWGRP) && lk->st_gid == st.st_gid);
}

/*
 * What a dead smtpd's lock says of the mailbox, believed only when the
 * lock is a regular file of the account smtpd delivers as: anyone else
 * could write any size there, and have the mailbox cut at it.  Returns
 * whether its writer is dead.
 */
static int
read_lock(const char *lock, const struct stat *held, struct leftover *lo)
{
	char buf[512], *host = NULL;
	long long pid = 0, size = 0;
	unsigned long long ino = 0;
	struct stat st;
	ssize_t n;
	int fd, dead;

	if ((fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1)
		return 0;
	if (fstat(fd, &st) == -1 || st.st_ino != held->st_ino ||
	    st.st_dev != held->st_dev || (n = read(fd, buf, sizeof buf - 1))
	    < 0) {
		(void)close(fd);
		return 0;	/* replaced meanwhile: judged again next time */
	}
	(void)close(fd);
	buf[n] = '\0';
	n = lock_fields(buf, &pid, &host, &size, &ino);
	dead = n >= 2 && pid > 0 && pid <= INT_MAX &&
	    strcmp(host, lockhost) == 0 && kill((pid_t)pid, 0) == -1 &&
	    errno == ESRCH;
	if (dead && n == 4 && held->st_uid == geteuid()) {
		lo->valid = 1;
		lo->size = size;
		lo->ino = ino;
	} else if (dead && n == 4)
		log_msg(LOG_WARNING, "%s: a dead writer's lock made by uid %lu, "
		    "not by us: its record is not believed", lock,
		    (unsigned long)held->st_uid);
	return dead;
}

static const char DEAD_WRITER[] = "its process is gone";
static const char BUSY_DOTLOCK[] = "the dot-lock";	/* take_locks()'s */

/*
 * smtpd.8: is the dot-lock in our way dead?  Returns a verdict, or an
 * O_PATH descriptor of a lock to break, kept open so that its inode
 * cannot be reused for a new lock before break_lock() has compared
 * them.  A lock that is no regular file (a symbolic link, a FIFO, a
 * socket) is judged by its own times, never opened for real; a
 * directory can never be broken by unlink().
 */
static int
judge_lock(const char *lock, const struct mailbox *mb, struct leftover *lo,
    const char **why)
{
	struct stat st;
	int fd;

	if ((fd = open(lock, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ENOENT ? LOCK_GONE : LOCK_ALIVE;
	if (fstat(fd, &st) == -1 || S_ISDIR(st.st_mode)) {
		(void)close(fd);
		return S_ISDIR(st.st_mode) ? LOCK_DIR : LOCK_ALIVE;
	}
	if (!lock_owner_may_write(&st, mb))
		*why = "made by someone who cannot write the mailbox";
	else if (S_ISREG(st.st_mode) && read_lock(lock, &st, lo))
		*why = DEAD_WRITER;
	else if (time(NULL) - st.st_mtime > LOCK_STALE)
		*why = "more than five minutes old";
	else {
		(void)close(fd);
		return LOCK_ALIVE;
	}
	return fd;
}

/*
 * Break the dead lock open on fd, unless it is gone or another lock has
 * taken its name.  Returns 2 when this call removed it, LOCK_GONE when
 * it went by itself (a live owner that finished between our reading and
 * our kill(): what it said must not be believed), 0 otherwise.
 * XXX: between the lstat() and the unlink() a new lock may still slip
 * in; every dot-lock scheme shares this window, and the fcntl() lock we
 * hold closes it for the writers that take fcntl() first.
 */
static int
break_lock(const char *lock, int fd, const char *why)
{
	struct stat st, held;
	int r = 0;

	if (lstat(lock, &st) == -1)
		r = errno == ENOENT ? LOCK_GONE : 0;
	else if (fstat(fd, &held) == 0 && st.st_ino == held.st_ino &&
	    st.st_dev == held.st_dev && unlink(lock) == 0) {
		log_msg(LOG_WARNING, "removed stale lock %s (%s)", lock, why);
		r = 2;
	}
	(void)close(fd);
	return r;
}

/*
 * Killed writers leave their unique files behind (.lk.HOST.PID.ID, made
 * before the queue, linked as the dot-lock).  Once a dead writer of this
 * host has been seen, the spool is swept, once a process, of the unique
 * files of this host's dead processes that are surely smtpd's: regular,
 * of one link (no dot-lock is that file any longer), and made by the
 * account smtpd delivers as, never a file planted by someone else.
 */
static void
sweep_leftovers(void)
{
	static int swept;
	char prefix[80], *end;
	struct dirent *e;
	struct stat st;
	long long pid;
	int n, removed = 0;
	DIR *d;

	if (swept++ || (n = snprintf(prefix, sizeof prefix, ".lk.%s.",
	    lockhost)) >= (int)sizeof prefix || (d = opendir(conf.spool)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, (size_t)n) != 0)
			continue;
		pid = strtoll(e->d_name + n, &end, 10);
		if (end == e->d_name + n || *end != '.' || pid <= 0 ||
		    pid > INT_MAX || fstatat(dirfd(d), e->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || st.st_uid != geteuid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	(void)closedir(d);
	if (removed > 0)
		log_msg(LOG_NOTICE, "%s: removed %d lock files of dead writers",
		    conf.spool, removed);
}

/* Our unique file for a mailbox's dot-lock. */
static int
tmp_name(char *buf, size_t size, const struct mailbox *mb)
{
	return (size_t)snprintf(buf, size, "%s/.lk.%s.%ld.%016llx",
	    conf.spool, lockhost, (long)self_pid(),
	    (unsigned long long)mb->tmp_id) < size ? 0 : -1;
}

/* The mailbox's dot-lock, <mailbox>.lock. */
static int
lock_name(char *buf, size_t size, const struct mailbox *mb)
{
	return (size_t)snprintf(buf, size, "%s.lock", mb->path) < size ? 0 :
	    -1;
}

/*
 * 64 bits no one can guess: the names of smtpd's files in the spool
 * must not be made in advance by someone who wants every delivery to
 * fail (smtpd.8, SECURITY).  The clock and a counter stand in only
 * where the kernel will not answer, and O_EXCL still guards the name.
 */
static uint64_t
random64(void)
{
	static uint64_t counter;
	struct timespec ts;
	uint64_t r;

	if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
	    ((uint64_t)self_pid() << 16) ^ ++counter;
}

/*
 * The dot-lock, NFS-safe: a unique file linked to <mailbox>.lock; a link
 * count of 2 says it worked even if link()'s reply was lost.  Its name
 * is random, made with O_EXCL, tried anew when it is taken.  The unique
 * file is made before the queue and removed after it, so that the next
 * delivery in line does not wait while a file system allocates or frees
 * an inode.
 */
static enum delivery_status
dotlock_prepare(struct mailbox *mb, char *why, size_t size)
{
	char tmp[PATH_MAX], text[300];
	enum delivery_status st_fail;
	int n, tries;

	if ((size_t)snprintf(mb->path, sizeof mb->path, "%s/%s", conf.spool,
	    mb->name) >= sizeof mb->path - 5) {
		errno = ENAMETOOLONG;
		say(why, size, "cannot lock", mb);
		return DELIVERY_TEMP;
	}
	errno = 0;
	for (tries = 0; tries < TMP_TRIES; tries++) {
		mb->tmp_id = random64();
		if (tmp_name(tmp, sizeof tmp, mb) == -1) {
			errno = ENAMETOOLONG;
			break;
		}
		mb->lockfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_NOCTTY | O_CLOEXEC, 0644);
		if (mb->lockfd != -1 || errno != EEXIST)
			break;
	}
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

/* Let go of whichever of a mailbox's three locks are held. */
static void
unlock_mailbox(struct mailbox *mb)
{
	char lock[PATH_MAX];

	if (mb->flocked)
		(void)flock(mb->fd, LOCK_UN);
	if (mb->dotlocked && lock_name(lock, sizeof lock, mb) == 0 &&
	    unlink(lock) == -1)
		log_msg(LOG_ERR, "%s: cannot remove: %m", lock);
	if (mb->fcntl_held)
		(void)range_lock(mb->fd, F_SETLK, F_UNLCK, 0, 0);
	mb->flocked = mb->dotlocked = mb->fcntl_held = 0;
}

/*
 * The mailbox as it is now, its size above all, which recovery and
 * roll-back cut back to.  On a shared spool (GlusterFS, NFS) fstat() may
 * answer from a cache that lags another host's fsynced append by a
 * second; statx()'s AT_STATX_FORCE_SYNC asks the file system itself
 * (smtpd.8, MAILBOX FORMAT).  A FUSE file system may keep a cache of its
 * own below the kernel's (GlusterFS's md-cache answers even a forced
 * statx() from it): there an fsync() first, which reaches the servers
 * and brings back the file's attributes, makes the size a real one.  On
 * a local disk fstat() alone is the truth.
 */
#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC	0x65735546
#endif

struct box_now {
	off_t		 size;
	ino_t		 ino;
	struct timespec	 atime;
};

static int
mailbox_now(int fd, struct box_now *now)
{
	const unsigned want = STATX_SIZE | STATX_INO | STATX_ATIME;
	static int fuse = -1;
	struct statfs sf;
	struct statx sx;
	struct stat st;

	if (fuse == -1)
		fuse = fstatfs(fd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
	if (fuse == 1)
		(void)fsync(fd);
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, want, &sx) == 0 &&
	    (sx.stx_mask & want) == want) {
		now->size = (off_t)sx.stx_size;
		now->ino = (ino_t)sx.stx_ino;
		now->atime.tv_sec = sx.stx_atime.tv_sec;
		now->atime.tv_nsec = sx.stx_atime.tv_nsec;
		return 0;
	}
	if (fstat(fd, &st) == -1)	/* a kernel before statx() */
		return -1;
	now->size = st.st_size;
	now->ino = st.st_ino;
	now->atime = st.st_atim;
	return 0;
}

/* mailbox_now()'s size alone, or -1. */
static long long
size_now(int fd)
{
	struct box_now now;

	return mailbox_now(fd, &now) == 0 ? (long long)now.size : -1;
}

/* What taking the locks came to: all three, one busy, or a failure. */
enum take { TAKE_LOCKED, TAKE_BUSY, TAKE_FAILED };

/*
 * The dot-lock, the fcntl() lock being held: a dead lock in the way is
 * broken and the link tried again at once; a live one is busy.  Only
 * while we hold fcntl() is a lock judged, so no writer that takes
 * fcntl() first can be between its steps.
 */
static enum take
take_dotlock(struct mailbox *mb, struct leftover *lo, char *why,
    size_t size)
{
	char tmp[PATH_MAX], lock[PATH_MAX];
	const char *reason = "";
	struct stat st;
	int r, tries;

	if (tmp_name(tmp, sizeof tmp, mb) == -1 ||
	    lock_name(lock, sizeof lock, mb) == -1) {
		errno = ENAMETOOLONG;	/* dotlock_prepare() saw to it */
		say(why, size, "cannot lock", mb);
		return TAKE_FAILED;
	}
	for (tries = 0; tries < 4; tries++) {
		if (link(tmp, lock) == 0 || (fstat(mb->lockfd, &st) == 0 &&
		    st.st_nlink == 2)) {
			mb->dotlocked = 1;
			return TAKE_LOCKED;
		}
		if (errno != EEXIST) {
			say(why, size, "cannot make the dot-lock", mb);
			return TAKE_FAILED;
		}
		/*
		 * What a dead writer's lock says of the mailbox is only
		 * believed when this process removed that very lock and
		 * its next link() took the name, and when nobody wrote in
		 * between: the size seen before must still be the size.
		 */
		lo->valid = 0;
		lo->seen = size_now(mb->fd);
		if ((r = judge_lock(lock, mb, lo, &reason)) == LOCK_DIR) {
			errno = EISDIR;
			say(why, size, "a directory is where its dot-lock "
			    "belongs", mb);
			log_msg(LOG_ERR, "%s: a directory: no delivery to %s "
			    "until it is removed", lock, mb->path);
			return TAKE_FAILED;
		}
		if (r >= 0 && (r = break_lock(lock, r, reason)) == 2 &&
		    reason == DEAD_WRITER)
			sweep_leftovers();
		if (r != 2)
			lo->valid = 0;
		if (r != 2 && r != LOCK_GONE)
			return TAKE_BUSY;
	}
	return TAKE_BUSY;
}

/*
 * Is flock() the fcntl() lock on the spool's file system?  Linux's NFS
 * client and GlusterFS make one of the other, and the fcntl() lock we
 * hold on a mailbox then makes its flock() busy for ever.  Asked of the
 * conflict itself, not of a list of file systems, the first time a
 * mailbox's flock() is busy while we hold its fcntl() lock: on fd, our
 * dot-lock's unique file, which no one else has open, the two are taken
 * one after the other; if the second is refused, they are one lock, and
 * the fcntl() lock already held stands for both (smtpd.8, MAILBOX
 * FORMAT).  On a local disk the flock() of a reader that takes flock()
 * alone is still waited for.
 */
static int	 flock_same = -1;	/* unknown, 0 or 1, for the process */

static int
flock_is_fcntl(int fd)
{
	int busy;

	if (flock_same != -1)
		return flock_same;
	if (fd == -1 || range_lock(fd, F_SETLK, F_WRLCK, 0, 0) == -1)
		return 0;	/* cannot tell now: a lock of its own */
	busy = flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	if (!busy)
		(void)flock(fd, LOCK_UN);
	(void)range_lock(fd, F_SETLK, F_UNLCK, 0, 0);
	if ((flock_same = busy))
		log_msg(LOG_NOTICE, "%s: flock() is the fcntl() lock on this "
		    "file system: fcntl() and the dot-lock are taken alone",
		    conf.spool);
	return flock_same;
}

/*
 * The three locks of smtpd.8, MAILBOX FORMAT, in Debian's order, each tried
 * once without blocking; when one is busy, those already taken are let
 * go, so that smtpd never waits for a lock while it holds another (a
 * Dovecot holding fcntl() and waiting for the dot-lock would otherwise
 * wait for us while we wait for it).  *busy names the busy one.
 */
static enum take
take_locks(struct mailbox *mb, struct leftover *lo, const char **busy,
    char *why, size_t size)
{
	enum take t;

	if (range_lock(mb->fd, F_SETLK, F_WRLCK, 0, 0) == -1) {
		*busy = "the fcntl lock";
		if (errno == EAGAIN || errno == EACCES)
			return TAKE_BUSY;
		say(why, size, "cannot take the fcntl lock", mb);
		return TAKE_FAILED;
	}
	mb->fcntl_held = 1;
	*busy = BUSY_DOTLOCK;
	if ((t = take_dotlock(mb, lo, why, size)) != TAKE_LOCKED) {
		unlock_mailbox(mb);
		return t;
	}
	if (flock_same == 1)
		return TAKE_LOCKED;
	if (flock(mb->fd, LOCK_EX | LOCK_NB) == -1) {
		*busy = "the flock lock";
		if (errno == EWOULDBLOCK && flock_is_fcntl(mb->lockfd))
			return TAKE_LOCKED;
		t = errno == EWOULDBLOCK ? TAKE_BUSY : TAKE_FAILED;
		if (t == TAKE_FAILED)
			say(why, size, "cannot take the flock lock", mb);
		unlock_mailbox(mb);
		return t;
	}
	mb->flocked = 1;
	return TAKE_LOCKED;
}

/*
 * The mailbox's account: the uid a mailbox made for it belongs to, and
 * the only one besides ours that an existing one may belong to.
 * 1: *a set; 0: no such account; -1: the accounts cannot be asked now.
 */
static int
mailbox_account(const struct mailbox *mb, struct account *a)
{
	return account_find(mb->name, a);
}

/* The spool's group and whether it may write there (Debian: root:mail 2775). */
static int
spool_group(gid_t *gid)
{
	static int known, writable;
	static gid_t group;
	struct stat st;

	if (!known && stat(conf.spool, &st) == 0) {
		known = 1;
		group = st.st_gid;
		writable = (st.st_mode & S_IWGRP) != 0;
	}
	*gid = group;
	return writable;
}

/* How a new mailbox is to be made: its owner, group and mode. */
struct making {
	int	 chown;		/* uid and gid to be set */
	uid_t	 uid;
	gid_t	 gid;
	mode_t	 mode;
};

/*
 * smtpd.8: a new mailbox belongs to its recipient's account, when there
 * is one, and can be read by it: made by root, it is given to them; in
 * a group-writable spool it is the spool's group's too, mode 0660, as
 * Debian Policy 11.6 has mailboxes.  Not root, smtpd makes none for an
 * account that is not its own: the recipient could not read it.  The
 * account is asked before the mailbox is made, so that when the
 * accounts cannot be asked none is made.  0, or the reason it may not.
 */
static const char *
plan_mailbox(const struct mailbox *mb, struct making *mk)
{
	struct account a;
	gid_t group;
	int r, shared = spool_group(&group);

	mk->mode = shared ? 0660 : 0600;
	mk->chown = 0;
	mk->uid = geteuid();
	mk->gid = shared ? group : getegid();
	if ((r = mailbox_account(mb, &a)) == -1)
		return "cannot look up its owner";
	errno = 0;
	if (r == 1 && a.uid != mk->uid && mk->uid != 0)
		return "not made: its recipient could not read a mailbox of "
		    "ours (run smtpd as root to make mailboxes)";
	if (r == 1 && mk->uid == 0) {
		mk->uid = a.uid;
		mk->gid = shared ? group : a.gid;
	}
	mk->chown = mk->uid != geteuid() || shared;
	return NULL;
}

/* A mailbox just made becomes what plan_mailbox() said. */
static void
give_mailbox(const struct mailbox *mb, const struct making *mk)
{
	if (mk->chown && fchown(mb->fd, mk->uid, mk->gid) == -1)
		log_msg(LOG_WARNING, "%s: cannot give to uid %lu, gid %lu: %m",
		    mb->path, (unsigned long)mk->uid, (unsigned long)mk->gid);
	if (fchmod(mb->fd, mk->mode) == -1)	/* whatever the umask */
		log_msg(LOG_WARNING, "%s: cannot set mode %03o: %m", mb->path,
		    (unsigned)mk->mode);
}

/*
 * smtpd.8: an existing mailbox is the recipient's or ours.  One that
 * someone else made for the recipient before their first mail, in a
 * spool they may write, is a trap: delivering into it would hand them
 * the recipient's mail.
 */
static enum delivery_status
check_owner(const struct mailbox *mb, const struct stat *st, char *why,
    size_t size)
{
	struct account a;
	int r;

	if (st->st_uid == geteuid())
		return DELIVERY_OK;
	if ((r = mailbox_account(mb, &a)) == 1 && a.uid == st->st_uid)
		return DELIVERY_OK;
	if (r == -1) {
		say(why, size, "cannot look up its owner", mb);
		return DELIVERY_TEMP;
	}
	errno = 0;
	say(why, size, "belongs to someone who is neither its recipient "
	    "nor smtpd: left alone", mb);
	log_msg(LOG_ERR, "%s: owned by uid %lu, not by the account of %s "
	    "nor by us: refused", mb->path, (unsigned long)st->st_uid,
	    mb->name);
	return DELIVERY_TEMP;
}

/*
 * smtpd.8: never through a symbolic link, never a file that is not a
 * regular one or that has another name: such a mailbox is left alone.
 * lstat() first, so that a device or a FIFO is not even opened.  It is
 * opened before any lock is taken, as mutt and Dovecot do: fcntl()
 * needs a descriptor.
 */
static enum delivery_status
open_mailbox(struct mailbox *mb, char *why, size_t size)
{
	const int flags = O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC;
	struct making mk = { 0, 0, 0, 0 };
	struct stat before, st;
	const char *refusal;
	int exists;

	exists = lstat(mb->path, &before) == 0;
	if (exists && (!S_ISREG(before.st_mode) || before.st_nlink != 1)) {
		errno = 0;
		say(why, size, S_ISREG(before.st_mode) ? "has hard links" :
		    "not a regular file", mb);
		return DELIVERY_TEMP;
	}
	if (!exists && (refusal = plan_mailbox(mb, &mk)) != NULL) {
		say(why, size, refusal, mb);
		if (errno == 0)
			log_msg(LOG_ERR, "%s: %s", mb->path, refusal);
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
	if (exists)
		return check_owner(mb, &st, why, size);
	give_mailbox(mb, &mk);
	return DELIVERY_OK;
}

/* Does the mailbox's name still lead to the file we locked? */
static int
still_named(const struct mailbox *mb)
{
	struct stat named, held;

	return lstat(mb->path, &named) == 0 && fstat(mb->fd, &held) == 0 &&
	    named.st_ino == held.st_ino && named.st_dev == held.st_dev;
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
	struct box_now now;
	int n;

	if (mailbox_now(mb->fd, &now) == -1) {
		say(why, size, "cannot stat", mb);
		return DELIVERY_TEMP;
	}
	if (lo->valid && lo->ino == (unsigned long long)now.ino &&
	    lo->seen == (long long)now.size &&
	    lo->size >= 0 && lo->size < (long long)now.size) {
		if (ftruncate(mb->fd, lo->size) == -1 || fsync(mb->fd) == -1) {
			say(why, size, "cannot remove a partial message", mb);
			return DELIVERY_TEMP;
		}
		log_msg(LOG_WARNING, "%s: removed %lld bytes left by a dead "
		    "writer", mb->path, (long long)now.size - lo->size);
		now.size = lo->size;
	}
	mb->oldsize = now.size;
	mb->atime = now.atime;
	n = snprintf(text, sizeof text, "%ld %s %lld %llu\n", (long)self_pid(),
	    lockhost, (long long)now.size, (unsigned long long)now.ino);
	errno = ENOSPC;		/* what a short write means */
	if (pwrite(mb->lockfd, text, n, 0) != n) {
		say(why, size, "cannot write the dot-lock", mb);
		return write_failure();
	}
	(void)close(mb->lockfd);
	mb->lockfd = -1;
	return DELIVERY_OK;
}

/*
 * Open the mailbox and take its locks, trying again after a back-off
 * while one is busy, until `until'.  A mailbox renamed or removed
 * while we waited (a reader rewriting it) is opened again by its name.
 */
static enum delivery_status
lock_mailbox(struct mailbox *mb, const struct timespec *until, char *why,
    size_t size)
{
	struct leftover lo = { 0, 0, 0, -1 };
	enum delivery_status st;
	const char *busy = "the locks";
	unsigned attempt;
	enum take t;

	for (attempt = 0;; attempt++) {
		if (mb->fd == -1 &&
		    (st = open_mailbox(mb, why, size)) != DELIVERY_OK)
			return st;
		if ((t = take_locks(mb, &lo, &busy, why, size)) == TAKE_FAILED)
			return DELIVERY_TEMP;
		if (t == TAKE_LOCKED && still_named(mb))
			return note_size(mb, &lo, why, size);
		if (t == TAKE_LOCKED) {		/* not the one named now */
			unlock_mailbox(mb);
			(void)close(mb->fd);
			mb->fd = -1;
			mb->created = 0;
		}
		if (give_up(until)) {
			errno = client_stopping() ? EINTR : EWOULDBLOCK;
			(void)snprintf(why, size, "%s: cannot take %s: %s",
			    mb->path, busy, strerror(errno));
			return DELIVERY_TEMP;
		}
		/*
		 * A dot-lock in our way while we hold the mailbox's turn is
		 * no queued smtpd's (that one would hold the turn): a
		 * reader's, or a dead writer's that we may not break, another
		 * host's on a shared spool.  The turn is given up for the rest
		 * of this delivery, which goes on by the back-off alone, so
		 * that whoever can break it (a process of the dead writer's
		 * own host) is not kept behind us for the whole lock wait.
		 */
		if (t == TAKE_BUSY && busy == BUSY_DOTLOCK)
			queue_leave();
		if (t == TAKE_BUSY)
			backoff(attempt);
	}
}

/*
 * The queue: smtpd's own turn-taking, ahead of the locks of smtpd.8,
 * MAILBOX FORMAT. Those are tried without blocking, so twenty deliveries to
 * one busy mailbox would each sleep out a back-off while the mailbox stands
 * free.  Instead a delivery first waits in the kernel for an fcntl() lock
 * on one byte per mailbox (its name hashed) of a file that only smtpd uses,
 * <spool>/.smtpd-queue, and wakes the moment the delivery before it is
 * done.  Other programs never see this lock, so it cannot deadlock with
 * them; smtpd takes its bytes in rising order, all before any mailbox lock,
 * so it cannot deadlock with itself.  Two names that hash alike merely
 * share a turn.  Without the file (no permission, a full disk) delivery
 * goes on with the back-off alone.
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

/*
 * The queue file is smtpd's own: made with O_EXCL, mode 0600, or, when
 * it is there already, used only if it is a regular file of the account
 * smtpd delivers as that no one else may open.  Anyone who could open it
 * could hold its bytes locked and make every delivery wait out the
 * whole lock wait (smtpd.8, SECURITY); then the back-off alone decides.
 */
static int
queue_open(void)
{
	const int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC;
	static int tried;
	char path[PATH_MAX];
	struct stat st;

	if (tried)
		return -1;	/* judged once a session, and logged once */
	tried = 1;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", conf.spool,
	    QUEUE_NAME) >= sizeof path)
		return -1;
	if ((queue_fd = open(path, flags | O_CREAT | O_EXCL, 0600)) == -1 &&
	    errno == EEXIST && (lstat(path, &st) == -1 || S_ISREG(st.st_mode)))
		queue_fd = open(path, flags);
	if (queue_fd == -1) {
		log_msg(LOG_WARNING, "%s: cannot be used (%s): deliveries take "
		    "turns by the back-off alone", path, errno == EEXIST ?
		    "not a regular file" : strerror(errno));
		return -1;
	}
	if (fstat(queue_fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_nlink != 1) {
		log_msg(LOG_WARNING, "%s: not to be trusted (uid %lu, mode "
		    "%03o, %lu links): deliveries take turns by the back-off "
		    "alone", path, (unsigned long)st.st_uid,
		    (unsigned)(st.st_mode & 07777), (unsigned long)st.st_nlink);
		(void)close(queue_fd);
		queue_fd = -1;
	}
	return queue_fd == -1 ? -1 : 0;
}

static off_t
queue_byte(const char *name)
{
	return (off_t)(name_hash(name) & 0x7fffffffUL);
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
	    errno == EINTR && !give_up(until))
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

/* smtpd.8, MAILBOX FORMAT: a blank line before each new From_ line. */
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
 * The spooled message onto the end of the mailbox, in pieces read into
 * our own buffer, each checked (message_check) before it is written:
 * the file is the dialogue's, which may change it while we copy, so
 * what is appended is what was checked, and no more than its size.
 * (The kernel's copy_file_range() would copy what it finds, unseen.)
 * A sealed memfd would let the dialogue hand over a message it can no
 * longer change, to be appended unchecked; bench/handover.c measured
 * both for 64 and 256 MiB (bench/results.md): MB/s alike within the
 * noise, the fsync() being most of the time, but the memfd holds the
 * whole message in RAM (shmem) from the first byte to the delivery,
 * so twenty sessions at -s 128 MiB could pin 2.5 GiB.  The spool file
 * is page cache, written back and dropped under pressure: memory stays
 * flat whatever the size, so the copy it is.
 */
static int
copy_spool(struct mailbox *mb, const struct message *m)
{
	struct framing f = FRAMING_START;
	off_t in = 0, end, from;
	struct stat st;
	size_t want;
	ssize_t n;

	if (fstat(mb->fd, &st) == -1)
		return -1;
	from = end = st.st_size;
	for (; in < m->spooled; in += n, end += n) {
		want = m->spooled - in < (off_t)sizeof copybuf ?
		    (size_t)(m->spooled - in) : sizeof copybuf;
		n = pread(m->fd, copybuf, want, in);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0 || message_check(&f, copybuf, (size_t)n) == -1) {
			errno = EBADMSG;	/* cut short, or not as checked */
			return -1;
		}
		if (writev_all(mb->fd, &(struct iovec){ copybuf, (size_t)n },
		    1) == -1)
			return -1;
		write_behind(mb->fd, &from, end + n);
	}
	if (message_check_end(&f) == -1) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* A mailbox's copy for -b mboxo, gathered in copybuf between writes. */
struct box_out {
	int	 fd;
	size_t	 len;
};

static int
box_flush(struct box_out *bo)
{
	struct iovec iov = { copybuf, bo->len };

	bo->len = 0;
	return iov.iov_len == 0 ? 0 : writev_all(bo->fd, &iov, 1);
}

static int
to_box(void *arg, const char *p, size_t n)
{
	struct box_out *bo = arg;
	size_t k;

	for (; n > 0; p += k, n -= k) {
		if (bo->len == sizeof copybuf && box_flush(bo) == -1)
			return -1;
		k = sizeof copybuf - bo->len < n ? sizeof copybuf - bo->len : n;
		memcpy(copybuf + bo->len, p, k);
		bo->len += k;
	}
	return 0;
}

/*
 * -b mboxo: the message quoted again the mboxo way on its way in; the
 * kernel's copy cannot change it, and mboxo sites are few.
 */
static int
append_mboxo(struct mailbox *mb, struct iovec *iov, const struct message *m)
{
	struct box_out bo = { mb->fd, 0 };

	if (writev_all(mb->fd, iov, 2) == -1 ||
	    message_each(m, EACH_MBOXO, to_box, &bo) == -1 ||
	    box_flush(&bo) == -1)
		return -1;
	return writev_all(mb->fd, &iov[3], 1);
}

/* The envelope header, the message, one blank line. */
static int
append(struct mailbox *mb, const char *head, size_t headlen,
    const struct message *m)
{
	struct framing f = FRAMING_START;
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
	if (conf.mboxo)
		return append_mboxo(mb, iov, m);
	if (m->spooled == 0 && (message_check(&f, m->buf, m->len) == -1 ||
	    message_check_end(&f) == -1)) {
		errno = EBADMSG;	/* see copy_spool() */
		return -1;
	}
	if (m->spooled == 0)
		return writev_all(mb->fd, iov, 4);
	if (writev_all(mb->fd, iov, 2) == -1 || copy_spool(mb, m) == -1)
		return -1;
	return writev_all(mb->fd, &iov[3], 1);
}

/*
 * smtpd.8, MAILBOX FORMAT: the access time stays older than the
 * modification time (mail readers compare them in whole seconds to tell of
 * new mail).
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

/*
 * Cut every mailbox back to what it was, still locked.  A mailbox made
 * for this message is removed, but only while we hold all its locks:
 * another delivery that opened it meanwhile is waiting for them, and
 * finds the name gone (still_named) when it gets them.
 */
static void
roll_back(size_t n)
{
	struct mailbox *mb;
	size_t i;

	for (i = 0; i < n; i++) {
		mb = &boxes[i];
		if (mb->created && mb->flocked) {
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
	char tmp[PATH_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (boxes[i].lockfd != -1)
			(void)close(boxes[i].lockfd);
		if (boxes[i].fd != -1) {
			unlock_mailbox(&boxes[i]);
			(void)close(boxes[i].fd);
		}
	}
	queue_leave();
	for (i = 0; i < n; i++)
		if (boxes[i].tmp_made && tmp_name(tmp, sizeof tmp, &boxes[i]) == 0)
			(void)unlink(tmp);
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

/*
 * This host's name as one word of a lock and a part of a file name in
 * the spool: letters, digits, '.', '-' and '_' alone (a '/' in it would
 * lead out of the spool).
 */
static void
host_word(char *dst, size_t size)
{
	size_t i;

	if (gethostname(dst, size - 1) == -1 || dst[0] == '\0')
		(void)snprintf(dst, size, "localhost");
	dst[size - 1] = '\0';
	for (i = 0; dst[i] != '\0'; i++)
		if (!isalnum((unsigned char)dst[i]) && dst[i] != '.' &&
		    dst[i] != '-' && dst[i] != '_')
			dst[i] = '_';
}

static size_t
collect(const struct target *t, size_t nt)
{
	size_t i, n = 0;

	if (seed == 0) {
		seed = (unsigned)self_pid() ^ (unsigned)time(NULL);
		host_word(lockhost, sizeof lockhost);
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
		qsort(boxes, n, sizeof boxes[0], by_name); /* no deadlock */
	if (n > 8)
		room_for(n);	/* fewer fit in any limit */
	return n;
}

/*
 * smtpd.8, FORWARDING AND RELAYING: the forwarding program, run once for
 * all the remote recipients of a message, directly (no shell): -F's words,
 * then `-f sender -- recipient...', the sendmail convention.  It reads the
 * Received: header and the message as the mailboxes hold it, mboxrd quoting
 * undone: the header clean-up of smtpd.8, MAILBOX FORMAT (mbox readers'
 * bookkeeping fields, an old Return-Path, which only final delivery may
 * write: RFC 5321 4.4) applies to forwarded copies too.  It must read the
 * message and exit 0 within -t seconds, or it is killed with its whole
 * process group.  It runs while the mailboxes are still locked, so that its
 * failure can take their copies back.
 */
static char	*fwd_argv[PROGRAM_WORDS + 4 + MAX_TARGETS + 1];

/* The program's input: written without blocking, within its deadline. */
struct pipe_out {
	int			 fd;
	const struct timespec	*until;
	int			 why;	/* LINE_TIMEOUT, LINE_TERM, LINE_EOF */
};

static int
to_pipe(void *arg, const char *p, size_t n)
{
	struct pipe_out *po = arg;

	/* LINE_EOF: it closed its input */
	return (po->why = write_all(po->fd, p, n, po->until, 1)) == 0 ? 0 : -1;
}

/*
 * Wait for the program until `until'; killed with its group when it
 * passes or SIGTERM comes.  Its status, or -2 when it had to be killed.
 */
static int
forward_wait(pid_t pid, const struct timespec *until)
{
	const struct timespec tick = { 0, 10000000L };
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 ||
	    (r == -1 && errno == EINTR)) {
		if (give_up(until)) {
			spawn_kill(pid);
			return -2;
		}
		client_nap(&tick);
	}
	return r == pid ? status : -1;
}

/* The words of the program's command line: -F's, then the envelope. */
static void
forward_argv(const char *sender, const struct target *t, size_t nt)
{
	size_t i, n, words;

	for (words = 0; conf.forward_cmd.argv[words] != NULL; words++)
		fwd_argv[words] = conf.forward_cmd.argv[words];
	n = words;
	fwd_argv[n++] = "-f";
	fwd_argv[n++] = sender[0] != '\0' ? (char *)sender : "<>";
	fwd_argv[n++] = "--";
	for (i = 0; i < nt; i++)
		if (t[i].kind == TARGET_FORWARD)
			fwd_argv[n++] = (char *)t[i].name;
	fwd_argv[n] = NULL;
}

static enum delivery_status
forward(const char *sender, const struct target *t, size_t nt,
    const char *received, const struct message *m, char *why, size_t size)
{
	struct timespec until;
	struct pipe_out po = { -1, &until, 0 };
	size_t i;
	int fds[2], wrote, status;
	pid_t pid = 0;	/* stays 0 when there is no pipe */

	for (i = 0; i < nt && t[i].kind != TARGET_FORWARD; i++)
		;
	if (i == nt)
		return DELIVERY_OK;	/* nothing to forward */
	forward_argv(sender, t, nt);
	deadline_set(&until, conf.timeout);
	if (pipe_cloexec(fds) == -1 ||
	    (pid = spawn(fwd_argv, NULL, fds[0], -1, 0)) == -1) {
		(void)snprintf(why, size, "cannot start %s: %s", fwd_argv[0],
		    strerror(errno));
		if (pid == -1)
			(void)close(fds[0]), (void)close(fds[1]);
		status = -1;
	} else {
		(void)close(fds[0]);
		po.fd = fds[1];
		(void)fcntl(po.fd, F_SETFL, O_NONBLOCK);
		wrote = to_pipe(&po, received, strlen(received)) == 0 &&
		    message_each(m, EACH_SENT, to_pipe, &po) == 0;
		(void)close(fds[1]);
		if (!wrote && po.why != LINE_EOF) {
			spawn_kill(pid);	/* it stopped reading */
			status = -2;
		} else
			status = forward_wait(pid, &until);
		if (status == 0 && !wrote)
			status = -1;
		(void)snprintf(why, size, "forwarding: %s %s", fwd_argv[0],
		    po.why == LINE_TERM || (status == -2 && client_stopping()) ?
		    "was stopped: smtpd is shutting down" : status == -2 ?
		    "took too long (-t): killed" : !wrote ?
		    "did not read the message" : WIFSIGNALED(status) ?
		    "was killed" : "failed");
	}
	return status == 0 ? DELIVERY_OK : DELIVERY_FORWARD;
}

/*
 * Deliver the message to every mailbox among t[0..nt), prefixed with
 * head (the From_ line and the envelope's headers), and to the
 * forwarding program for the remote ones, or to none.  On failure why
 * says which mailbox, or the program, and what happened.
 */
static enum delivery_status
mailboxes_and_forward(const char *sender, const struct target *t,
    size_t nt,
    const char *head, size_t headlen, struct message *m, char *why,
    size_t size)
{
	enum delivery_status st = DELIVERY_OK;
	const char *received;
	struct timespec until;
	size_t i, n = collect(t, nt);

	for (i = 0; i < n && st == DELIVERY_OK; i++)
		st = dotlock_prepare(&boxes[i], why, size);
	deadline_set(&until, LOCK_WAIT);	/* for all the locks together */
	if (st == DELIVERY_OK)
		queue_enter(n, &until);
	for (i = 0; i < n && st == DELIVERY_OK; i++)
		st = lock_mailbox(&boxes[i], &until, why, size);
	for (i = 0; i < n && st == DELIVERY_OK; i++)
		if (append(&boxes[i], head, headlen, m) == -1 ||
		    fsync(boxes[i].fd) == -1)
			st = append_failure(&boxes[i], why, size);
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
 * Terminals (smtpd.8, Terminal delivery), the way write(1) reaches a
 * logged-in user.  The utmp file names the user's ttys; one accepts
 * messages when its group may write it (mesg y) and it belongs to the
 * user's account.  What is written is filtered first: printable text, tab
 * and newline alone, so no escape sequence, bell or terminal answer-back
 * can be triggered by a stranger.  A terminal that blocks is given up after
 * TTY_WAIT seconds.
 */
#define TTY_WAIT	FIXED_WAIT("TTY_WAIT", 10) /* one terminal, in all */
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

static void
tty_flush(struct tty_out *t)
{
	if (!t->failed && write_all(t->fd, t->buf, t->len, &t->until, 0) != 0)
		t->failed = 1;
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
	struct account a;
	char line[sizeof ut.ut_line + 1];
	int ufd, done = 0, cut;

	if (strlen(user) > sizeof ut.ut_user || account_find(user, &a) != 1)
		return 0;	/* no account, no terminal it could own */
	if ((ufd = open(conf.utmp, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	while (read(ufd, &ut, sizeof ut) == (ssize_t)sizeof ut) {
		memcpy(line, ut.ut_line, sizeof ut.ut_line);
		line[sizeof ut.ut_line] = '\0';	/* not always ended */
		if (ut.ut_type != USER_PROCESS ||
		    strncmp(ut.ut_user, user, sizeof ut.ut_user) != 0 ||
		    (t.fd = tty_open(line, a.uid)) == -1)
			continue;
		if (m != NULL) {
			t.failed = 0;
			t.len = t.lines = t.shown = 0;
			t.utf8_need = 0;
			deadline_set(&t.until, TTY_WAIT);
			tty_put(&t, "\r\n", 2);
			tty_text(&t, banner, strlen(banner));
			cut = message_each(m, EACH_SENT, tty_piece, &t) == -1;
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

/* Received:'s protocol: RFC 3848, and RFC 6531 for SMTPUTF8. */
static const char *
with_word(const struct envelope *env)
{
	int tls = env->tls_protocol[0] != '\0';	/* tls.c: "TLS" at least */

	if (env->smtputf8)
		return tls ? "UTF8SMTPS" : "UTF8SMTP";
	if (env->esmtp)
		return tls ? "ESMTPS" : "ESMTP";
	return tls ? "SMTPS" : "SMTP";
}

/* The TLS facts as a comment after the protocol, or "". */
static void
tls_comment(const struct envelope *env, char *buf, size_t size)
{
	buf[0] = '\0';
	if (env->tls_protocol[0] != '\0' || env->tls_cipher[0] != '\0')
		(void)snprintf(buf, size, "\n\t(%s%s%s)", env->tls_protocol,
		    env->tls_protocol[0] != '\0' && env->tls_cipher[0] != '\0' ?
		    " " : "", env->tls_cipher);
}

/*
 * smtpd.8, MAILBOX FORMAT: the trace header that goes before the
 * message, Return-Path: and Received:, from the envelope and what
 * start-up learnt of the client, then the -X filter's header fields.
 * What the filter reads first, and what each mailbox holds after its
 * From_ line.  The length, or 0 if it did not fit.
 */
size_t
delivery_trace(const struct envelope *env, char *buf, size_t size)
{
	char date[64], peer[400], tls[2 * TLS_FACT_MAX + 32];
	int n;

	(void)strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z",
	    localtime(&env->when));
	if (conf.client_ip[0] == '\0')
		(void)snprintf(peer, sizeof peer, "localhost");
	else
		(void)snprintf(peer, sizeof peer, "%s%s[%s%s]",
		    conf.client_host, conf.client_host[0] != '\0' ? " " : "",
		    strchr(conf.client_ip, ':') != NULL ? "IPv6:" : "",
		    conf.client_ip);
	tls_comment(env, tls, sizeof tls);
	n = snprintf(buf, size, "Return-Path: <%s>\n"
	    "Received: from %s (%s)\n\tby %s (smtpd %s) with %s%s id %s%s%s%s;"
	    "\n\t%s\n%s", env->sender, env->helo, peer, conf.name,
	    SMTPD_VERSION, with_word(env), tls, env->id,
	    env->for_rcpt != NULL ? "\n\tfor <" : "",
	    env->for_rcpt != NULL ? env->for_rcpt : "",
	    env->for_rcpt != NULL ? ">" : "", date,
	    env->headers != NULL ? env->headers : "");
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The From_ line, then the trace header; the length, or 0. */
static size_t
envelope_header(const struct envelope *env, char *buf, size_t size)
{
	char from[SMTP_PATH_MAX + 1], ctime_[32];
	size_t i, trace;
	int n;

	(void)snprintf(from, sizeof from, "%s", env->sender[0] != '\0' ?
	    env->sender : "MAILER-DAEMON");
	for (i = 0; from[i] != '\0'; i++)
		if (from[i] == ' ' || from[i] == '\t')
			from[i] = '_';	/* one word on the From_ line */
	(void)strftime(ctime_, sizeof ctime_, "%a %b %e %H:%M:%S %Y",
	    localtime(&env->when));
	n = snprintf(buf, size, "From %s %s\n", from, ctime_);
	if (n <= 0 || (size_t)n >= size ||
	    (trace = delivery_trace(env, buf + n, size - n)) == 0)
		return 0;
	return (size_t)n + trace;
}

#define NOTE_CUT	"[the message was cut here]"
#define NOTE_IN_BOX	"[the message was cut here; the whole of it is " \
			"in your mailbox]"

/*
 * smtpd.8, Terminal delivery: the message to the recipients' terminals,
 * each after a banner naming the sender and the time.  A SOML recipient
 * reached there needs no mailbox copy.  Returns how many were not
 * reached; out->who names one.
 */
static size_t
to_terminals(struct envelope *env, const struct message *m,
    const char *note, struct outcome *out)
{
	char banner[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 64], when[32];
	struct target *t;
	size_t i, missed = 0;

	(void)strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y",
	    localtime(&env->when));
	(void)snprintf(banner, sizeof banner, "Message from <%s> (HELO %s) "
	    "at %s ...\n", env->sender, env->helo, when);
	for (i = 0; i < env->ntargets; i++) {
		t = &env->targets[i];
		if (t->kind != TARGET_MAILBOX)
			continue;
		if (delivery_terminals(t->name, banner, note, m) == 0) {
			missed++;
			(void)snprintf(out->who, sizeof out->who, "%s",
			    t->name);
		} else if (env->mode == MODE_SOML)
			t->kind = TARGET_SENT;
	}
	return missed;
}

/*
 * Deliver a transaction's message as its mode says: SEND to terminals
 * alone, every recipient reached or none (451: the client may try again
 * when the user is back); SOML to terminals, mailboxes for the others;
 * MAIL to the mailboxes and the forwarding program; SAML both.
 */
enum delivery_status
delivery_deliver(struct envelope *env, struct message *m, struct outcome *out)
{
	char head[4096 + FILTER_HEADERS_MAX];
	size_t len;

	out->why[0] = out->who[0] = '\0';
	if ((len = envelope_header(env, head, sizeof head)) == 0) {
		(void)snprintf(out->why, sizeof out->why, "header too long");
		return out->status = DELIVERY_TEMP;
	}
	if (env->mode == MODE_SEND) {
		if (to_terminals(env, m, NOTE_CUT, out) == 0)
			return out->status = DELIVERY_OK;
		(void)snprintf(out->why, sizeof out->why, "not at a terminal");
		return out->status = DELIVERY_NOT_SENT;
	}
	if (env->mode == MODE_SOML)
		(void)to_terminals(env, m, NOTE_CUT, out);
	out->status = mailboxes_and_forward(env->sender, env->targets,
	    env->ntargets, head, len, m, out->why, sizeof out->why);
	if (out->status == DELIVERY_OK && env->mode == MODE_SAML)
		(void)to_terminals(env, m, NOTE_IN_BOX, out);
	return out->status;
}
