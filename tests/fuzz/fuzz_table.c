/*
 * fuzz_table.c: the alias/user table parser (aliases.c).  One input
 * is one table; it is looked up, expanded, searched by full name and
 * checked as `smtpd -C' would, then closed.  The first byte picks -T and
 * -F.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "../../accounts.h"

static int
member(const struct member *m, void *arg)
{
	if (m->name[0] == '\0' && m->kind == TARGET_MAILBOX)
		__builtin_trap();	/* a mailbox with no name */
	return ++*(int *)arg > 200 ? -1 : 0;
}

static void
expand(const char *name)
{
	struct user u;
	unsigned flags;
	int n = 0;

	(void)aliases_expand(name, &u, member, &n, &flags);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[4200];
	struct user found[8];
	char first[SMTP_LOCAL_MAX + 1];
	size_t i;
	int fd;

	if (size < 1)
		return 0;
	if (path[0] == '\0') {
		fuzz_conf();
		(void)snprintf(path, sizeof path, "%s/aliases", fuzz_dir());
	}
	conf.table_only = (data[0] & 1) != 0;
	conf.forward = (data[0] & 2) != 0 ? "true" : NULL;
	fd = fuzz_file("aliases", data + 1, size - 1);
	(void)close(fd);
	if (aliases_open(path, 1) == -1)
		__builtin_trap();
	for (i = 0; i + 1 < size && i < sizeof first - 1 &&
	    data[i + 1] != ':' && data[i + 1] != '\n'; i++)
		first[i] = (char)data[i + 1];
	first[i] = '\0';
	lowercase(first, first, sizeof first);
	if (mailbox_name_ok(first))
		expand(first);	/* as smtpd asks: never an empty name */
	expand("postmaster");
	expand("staff");
	expand("a");
	(void)aliases_match_fullname("smith", found, 8);
	(void)aliases_check(path);
	aliases_close();
	return 0;
}
