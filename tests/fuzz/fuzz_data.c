/*
 * fuzz_data.c: the DATA reader (message.c) fed one input twice: once cut
 * into pieces of a size the first byte chooses (0: all of it at once),
 * as the network would cut it, and once a byte at a time.  Whole lines
 * in one piece take the reader's fast path; single bytes never can, so
 * the two readings must agree: where the data ended, the verdict, the
 * size, the lines, the Received: headers counted and, for a message
 * accepted, every byte, read back the way forwarding and terminals read
 * it (and no more bytes than were received).
 */
#include <string.h>
#include <unistd.h>

#include "common.h"

struct back {
	char	 buf[1 << 16];
	size_t	 len;
	int	 over;
};

static int
collect(void *arg, const char *p, size_t n)
{
	struct back *b = arg;

	if (n > sizeof b->buf - b->len) {
		b->over = 1;
		n = sizeof b->buf - b->len;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 0;
}

/* Feed data[0..size) in pieces of step; the bytes used, and *done. */
static size_t
feed(struct message *m, const uint8_t *data, size_t size, size_t step,
    int *done)
{
	size_t off = 0, used;

	*done = 0;
	while (off < size && !*done) {
		used = 0;
		*done = message_feed(m, (const char *)data + off,
		    size - off < step ? size - off : step, &used);
		if (used > step)
			__builtin_trap();	/* took more than it was given */
		off += used;
		if (used == 0 && !*done)
			__builtin_trap();	/* no progress */
	}
	(void)message_end(m);
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct message a = { .fd = -1 }, b = { .fd = -1 };
	static struct back ba, bb;
	size_t step, used_a, used_b;
	int crlf, done_a, done_b;
	long long max;

	if (size < 1)
		return 0;
	fuzz_dir();
	step = data[0] % 64 == 0 ? size : (size_t)(data[0] % 64);
	crlf = !(data[0] & 0x80);
	max = (data[0] & 0x40) ? 512 : 1 << 20;
	data++, size--;
	message_begin(&a, crlf, max);
	message_begin(&b, crlf, max);
	used_a = feed(&a, data, size, step, &done_a);
	used_b = feed(&b, data, size, 1, &done_b);
	if (used_a != used_b || done_a != done_b || a.error != b.error ||
	    a.size != b.size || a.lines != b.lines ||
	    a.nreceived != b.nreceived)
		__builtin_trap();	/* the cut changed the verdict */
	if (done_a && a.error == MSG_OK) {
		ba.len = bb.len = 0;
		ba.over = bb.over = 0;
		if (message_each(&a, EACH_SENT, collect, &ba) == -1 ||
		    message_each(&b, EACH_SENT, collect, &bb) == -1)
			__builtin_trap();
		if (ba.len != bb.len || ba.over != bb.over ||
		    memcmp(ba.buf, bb.buf, ba.len) != 0)
			__builtin_trap();	/* different bytes */
		if ((long long)ba.len > a.size && !ba.over)
			__builtin_trap();
	}
	message_close(&a);
	message_close(&b);
	return 0;
}
