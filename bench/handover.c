/*
 * handover.c: the measurement behind how a large message passes from
 * the dialogue to the deliverer (smtpd.8, PRIVILEGE SEPARATION).  Two
 * ways keep the dialogue from changing what the deliverer appends:
 *
 *   copy   the dialogue writes the message to an unlinked file in
 *          $TMPDIR; the deliverer reads it back in 64 KiB pieces,
 *          checks each with message.c's message_check() (the framing:
 *          no NUL, no CR, no unquoted From_ line, a last line ended)
 *          and appends it (what delivery.c's copy_spool() does).
 *   memfd  the dialogue writes it to a memfd and seals it (no write,
 *          grow or shrink); the deliverer appends it unchecked with
 *          copy_file_range(), falling back to sendfile().
 *
 * For each: the deliverer's time, the whole time, and the memory the
 * message holds while it waits for delivery: a memfd is shmem, in RAM
 * (or swap) until it is closed, whatever its size; the spool file's
 * pages are ordinary page cache, written back and dropped under
 * pressure.  Usage: handover [MiB] (default 64), in the directory the
 * mailbox is to go; $TMPDIR is the spool's.  Built by make bench.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../message.h"

#define PIECE	65536

static char	 piece[PIECE];

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* Lines of text as a message body holds them, 72 bytes each. */
static void
fill(void)
{
	size_t i;

	for (i = 0; i < PIECE; i++)
		piece[i] = i % 72 == 71 ? '\n' : "abcdefghij klmnop"[i % 17];
	piece[PIECE - 1] = '\n';	/* so the message ends its last line */
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	for (; n > 0; p += w, n -= (size_t)w)
		if ((w = write(fd, p, n)) <= 0)
			die("write");
}

/* The dialogue's part: the message into fd, piece by piece. */
static void
spool(int fd, size_t size)
{
	size_t n;

	for (n = 0; n < size; n += PIECE)
		write_all(fd, piece, PIECE);
}

/* kB of shmem in the system now (/proc/meminfo). */
static long
shmem_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "Shmem: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int
mailbox(void)
{
	int fd = open("handover.mbox", O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd == -1)
		die("handover.mbox");
	return fd;
}

static void
by_copy(size_t size)
{
	struct framing f = FRAMING_START;
	static char buf[PIECE];
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	double t0, t1, t2;
	off_t in;
	ssize_t n;
	int fd, box;

	if ((fd = open(tmp, O_RDWR | O_TMPFILE, 0600)) == -1)
		die(tmp);
	t0 = now();
	spool(fd, size);
	t1 = now();
	box = mailbox();
	for (in = 0; in < (off_t)size; in += n) {
		if ((n = pread(fd, buf, sizeof buf, in)) <= 0)
			die("pread");
		if (message_check(&f, buf, (size_t)n) == -1) {
			fprintf(stderr, "check failed\n");
			exit(1);
		}
		write_all(box, buf, (size_t)n);
	}
	if (message_check_end(&f) == -1) {
		fprintf(stderr, "check failed at the end\n");
		exit(1);
	}
	if (fsync(box) == -1)
		die("fsync");
	t2 = now();
	printf("| copy and check | %.0f | %.0f | 0 | page cache, "
	    "written back and reclaimable |\n", size / 1e6 / (t2 - t1),
	    size / 1e6 / (t2 - t0));
	close(box);
	close(fd);
}

static void
by_memfd(size_t size)
{
	double t0, t1, t2;
	long before, held;
	off_t off = 0;
	ssize_t n;
	int fd, box;

	before = shmem_kb();
	if ((fd = memfd_create("message", MFD_CLOEXEC | MFD_ALLOW_SEALING)) ==
	    -1)
		die("memfd_create");
	t0 = now();
	spool(fd, size);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
	    F_SEAL_SEAL) == -1)
		die("F_ADD_SEALS");
	held = shmem_kb() - before;
	t1 = now();
	box = mailbox();
	while (off < (off_t)size) {
		n = copy_file_range(fd, &off, box, NULL, size - off, 0);
		if (n == -1 && (errno == EXDEV || errno == EINVAL ||
		    errno == EOPNOTSUPP))
			n = sendfile(box, fd, &off, size - off);
		if (n <= 0)
			die("copy");
	}
	if (fsync(box) == -1)
		die("fsync");
	t2 = now();
	printf("| sealed memfd | %.0f | %.0f | %ld | shmem, held in RAM |\n",
	    size / 1e6 / (t2 - t1), size / 1e6 / (t2 - t0), held);
	close(box);
	close(fd);
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	size_t size = mib << 20;
	int round;

	if (mib == 0)
		return 2;
	fill();
	printf("| %zu MiB message | deliverer MB/s | whole MB/s | "
	    "kB held in RAM | where it waits |\n|---|---:|---:|---:|---|\n",
	    mib);
	for (round = 0; round < 3; round++) {
		by_copy(size);
		by_memfd(size);
	}
	(void)unlink("handover.mbox");
	return 0;
}
