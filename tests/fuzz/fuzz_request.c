/*
 * fuzz_request.c: the deliverer's reading of a delivery request
 * (priv.c, priv_decode_delivery), the one door between the dialogue
 * and the process that writes mailboxes.  One input is one request's
 * payload; the first byte picks the descriptor that comes with it:
 * none, a regular file of some size, or a directory.  Whatever the
 * bytes, a request is refused, or what it yields keeps every promise
 * the deliverer relies on.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "../../accounts.h"
#include "../../message.h"
#include "../../priv.h"

static int
clean(const char *s)
{
	return utf8_clean(s);
}

/* What a request that passed must be. */
static void
promises(const struct envelope *env, const struct message *m, int fd)
{
	size_t i;

	if (env->ntargets == 0 || env->ntargets > MAX_TARGETS ||
	    (unsigned)env->mode > MODE_SAML || env->helo[0] == '\0' ||
	    !clean(env->helo) || !clean(env->sender) ||
	    strlen(env->tls_protocol) > TLS_FACT_MAX ||
	    strlen(env->tls_cipher) > TLS_FACT_MAX ||
	    strpbrk(env->tls_protocol, " ()\n") != NULL ||
	    strpbrk(env->tls_cipher, " ()\n") != NULL ||
	    (env->for_rcpt != NULL && !clean(env->for_rcpt)) ||
	    strlen(env->headers) > FILTER_HEADERS_MAX ||
	    message_header_fields(env->headers, strlen(env->headers)) != 0 ||
	    m->len > MSG_BUF_SIZE || (fd == -1 && m->spooled != 0) ||
	    (fd != -1 && (m->spooled <= 0 || m->len != 0)))
		__builtin_trap();
	for (i = 0; i < env->ntargets; i++)
		if ((env->targets[i].kind == TARGET_MAILBOX &&
		    !mailbox_name_ok(env->targets[i].name)) ||
		    (env->targets[i].kind != TARGET_MAILBOX &&
		    env->targets[i].kind != TARGET_FORWARD))
			__builtin_trap();
}

/* The descriptor the first byte asks for, or -1. */
static int
descriptor(uint8_t how)
{
	static char buf[4096];

	switch (how % 3) {
	case 1:
		return fuzz_file("message", (const uint8_t *)buf,
		    (size_t)(how / 3) * 16);
	case 2:
		return open(fuzz_dir(), O_RDONLY | O_DIRECTORY);
	}
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct target targets[MAX_TARGETS];
	static struct message m;
	struct envelope env;
	const char *why;
	int fd;

	if (size == 0)
		return 0;
	if (conf.name == NULL)
		fuzz_conf();
	fd = descriptor(data[0]);
	memset(&env, 0, sizeof env);
	env.targets = targets;
	if (priv_decode_delivery(data + 1, size - 1, fd, &env, &m, &why) == 0)
		promises(&env, &m, fd);
	else if (why == NULL)
		__builtin_trap();	/* refused, and not said why */
	if (fd != -1)
		(void)close(fd);
	return 0;
}
