/*
 * ref: the benchmark's reference, the least an inetd-style SMTP receiver
 * can do and still keep smtpd's promise of an fsync before the 250.
 *
 * It answers 220, then 250 to every command but DATA and QUIT, 354 to
 * DATA, and 221 to QUIT, looking at no more than a command's first four
 * letters.  After 354 it reads the message up to <CRLF>.<CRLF> and
 * appends it, as it came (no dot-unstuffing, no CRLF to LF), after a
 * From_ line, to the one file named on the command line, under an fcntl
 * lock, with write() and fsync() before its 250.  A message cut short by
 * the end of the input is cut off the file again.  No table, no address
 * checks, no log, no timeouts.
 *
 * usage: ref mbox
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BUF	65536

static char	 in[BUF];		/* client bytes */
static size_t	 in_off, in_len;
static char	 dbuf[BUF + 8];		/* the message, as it passes */
static const char *mbox_path;
static int	 mbox = -1;

static void
say(const char *s)
{
	size_t n = strlen(s);

	if (write(1, s, n) != (ssize_t)n)
		exit(1);
}

/* One command line, CRLF kept; NULL at the end of the input. */
static char *
get_line(void)
{
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(in + in_off, '\n', in_len - in_off);
		if (nl != NULL) {
			char *line = in + in_off;

			*nl = '\0';
			in_off = nl - in + 1;
			return line;
		}
		if (in_off > 0) {	/* keep the partial line */
			memmove(in, in + in_off, in_len - in_off);
			in_len -= in_off;
			in_off = 0;
		}
		if (in_len == sizeof in)
			in_len = 0;	/* a line this long: dropped */
		do
			n = read(0, in + in_len, sizeof in - in_len);
		while (n == -1 && errno == EINTR);
		if (n <= 0)
			return NULL;
		in_len += n;
	}
}

static int
put(const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(mbox, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/*
 * The message, up to <CRLF>.<CRLF>, appended to the mbox.  dbuf holds
 * the bytes not yet written: the last four of each read are kept back,
 * for the end may straddle two reads; the CRLF that ended DATA's line
 * is in front, and never written.
 */
static const char *
data(void)
{
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char from_[64], *dot;
	size_t len, skip = 2, keep, scan;
	off_t old;
	ssize_t n;
	time_t now = time(NULL);
	struct tm tm;
	int failed = 0;

	if (mbox == -1 &&
	    (mbox = open(mbox_path, O_WRONLY | O_APPEND | O_CREAT, 0600)) == -1)
		failed = 1;
	while (!failed && fcntl(mbox, F_SETLKW, &lk) == -1)
		if (errno != EINTR)
			failed = 1;
	old = failed ? 0 : lseek(mbox, 0, SEEK_END);
	(void)gmtime_r(&now, &tm);
	(void)strftime(from_, sizeof from_, "From bench %a %b %e %H:%M:%S %Y\n",
	    &tm);
	if (!failed && put(from_, strlen(from_)) == -1)
		failed = 1;

	memcpy(dbuf, "\r\n", 2);
	len = in_len - in_off;
	memcpy(dbuf + 2, in + in_off, len);
	len += 2;
	in_off = in_len = 0;
	for (scan = 0;;) {
		/* <CRLF>.<CRLF>: a dot with CRLF on both sides */
		for (dot = dbuf + scan; (dot = memchr(dot, '.', dbuf + len -
		    dot)) != NULL; dot++)
			if (dot - dbuf >= 2 && dbuf + len - dot >= 3 &&
			    memcmp(dot - 2, "\r\n.\r\n", 5) == 0)
				break;
		if (dot != NULL) {
			size_t end = dot - dbuf;	/* the last CRLF kept */

			if (end > skip && !failed &&
			    put(dbuf + skip, end - skip) == -1)
				failed = 1;
			in_len = dbuf + len - (dot + 3);	/* pipelined */
			memcpy(in, dot + 3, in_len);
			break;
		}
		keep = len < 4 ? len : 4;
		if (len - keep > skip && !failed &&
		    put(dbuf + skip, len - keep - skip) == -1)
			failed = 1;
		skip = skip > len - keep ? skip - (len - keep) : 0;
		memmove(dbuf, dbuf + len - keep, keep);
		len = keep;
		scan = 0;
		do
			n = read(0, dbuf + len, BUF);
		while (n == -1 && errno == EINTR);
		if (n <= 0) {		/* the client is gone: no half message */
			if (mbox != -1 && ftruncate(mbox, old) == 0)
				(void)fsync(mbox);
			exit(1);
		}
		len += n;
	}
	if (!failed && (put("\n", 1) == -1 || fsync(mbox) == -1))
		failed = 1;
	if (failed && mbox != -1 && ftruncate(mbox, old) == 0)
		(void)fsync(mbox);
	lk.l_type = F_UNLCK;
	if (mbox != -1)
		(void)fcntl(mbox, F_SETLK, &lk);
	return failed ? "451 4.3.0 not stored\r\n" : "250 2.0.0 stored\r\n";
}

int
main(int argc, char **argv)
{
	char *line;

	if (argc != 2) {
		say("421 4.3.0 usage: ref mbox\r\n");
		return 1;
	}
	mbox_path = argv[1];
	say("220 ref ESMTP\r\n");
	while ((line = get_line()) != NULL) {
		if (strncasecmp(line, "DATA", 4) == 0) {
			say("354 go ahead\r\n");
			say(data());
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			say("221 2.0.0 bye\r\n");
			return 0;
		} else
			say("250 ok\r\n");
	}
	return 0;
}
