/*
 * fuzz_data.c: the DATA reader (message.c) fed one input, cut into
 * pieces of a size the first byte chooses, as the network would cut it;
 * then the message is read back the way forwarding and terminals read
 * it.  A message refused for its content must say so, and one accepted
 * must read back no longer than what was received.
 */
#include <string.h>
#include <unistd.h>

#include "common.h"

static int
count(void *arg, const char *p, size_t n)
{
	(void)p;
	*(long long *)arg += (long long)n;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct message m = { .fd = -1 };
	size_t step, off = 0, used;
	long long back = 0;
	int done = 0;

	if (size < 1)
		return 0;
	fuzz_dir();
	step = 1 + data[0] % 64;
	message_begin(&m, !(data[0] & 0x80), (data[0] & 0x40) ? 512 : 1 << 20);
	data++, size--;
	while (off < size && !done) {
		used = 0;
		done = message_feed(&m, (const char *)data + off,
		    size - off < step ? size - off : step, &used);
		if (used > step)
			__builtin_trap();	/* took more than it was given */
		off += used;
		if (used == 0 && !done)
			__builtin_trap();	/* no progress */
	}
	(void)message_end(&m);
	if (done && m.error == MSG_OK) {
		if (message_each(&m, count, &back) == -1)
			__builtin_trap();
		if (back > m.size)
			__builtin_trap();
	}
	message_close(&m);
	return 0;
}
