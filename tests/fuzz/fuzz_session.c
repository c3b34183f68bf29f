/*
 * fuzz_session.c: a whole SMTP session from one input, served by the
 * real reader, command table, parsers, DATA reader and mbox delivery,
 * as smtpd serves a client; the replies go to /dev/null.  The first
 * byte picks the start-up choices a client cannot: terminal line ends,
 * RELAYCLIENT, -V, -E, -F.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static const char table[] =
    "# the table of the RFC 821 examples\n"
    "smith:\tFred Smith <smith>\n"
    "jones:\tJoe Jones <jones>\n"
    "brown: \"Sam Q. Brown\" <brown@example.org>\n"
    "postmaster: smith\n"
    "staff: smith, jones,\n\tbrown, sqsmith@usc-isiq.example\n"
    "all: staff, jq\n"
    "jq: Joe Q <jq@usc-isiq.example>\n"
    "loop1: loop2\nloop2: loop1, smith\n";

static char	 tablepath[4200];
static int	 null_fd = -1;

static void
setup(void)
{
	int fd;

	fuzz_conf();
	fd = fuzz_file("aliases", (const uint8_t *)table, sizeof table - 1);
	(void)close(fd);
	(void)snprintf(tablepath, sizeof tablepath, "%s/aliases", fuzz_dir());
	conf.table = tablepath;
	conf.table_given = 1;
	conf.table_only = 1;
	if (aliases_open(conf.table, 1) == -1 ||
	    (null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1) {
		perror("setup");
		__builtin_trap();
	}
}

/* Mailboxes must not grow from one input to the next. */
static void
empty_spool(void)
{
	char path[4500];
	struct dirent *d;
	DIR *dir = opendir(conf.spool);

	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.') {
			(void)snprintf(path, sizeof path, "%s/%s", conf.spool,
			    d->d_name);
			(void)unlink(path);
		}
	(void)closedir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in;

	if (null_fd == -1)
		setup();
	if (size == 0)
		return 0;
	conf.tty = data[0] & 1;
	conf.relay_client = (data[0] & 2) != 0;
	conf.no_vrfy = (data[0] & 4) != 0;
	conf.no_expn = (data[0] & 8) != 0;
	conf.forward = (data[0] & 16) != 0 ? "true -x" : NULL;
	if (conf.forward != NULL &&
	    program_split(&conf.forward_cmd, conf.forward) == -1)
		__builtin_trap();
	in = fuzz_file("input", data + 1, size - 1);
	client_open(in, null_fd);
	(void)session_run();
	(void)close(in);
	empty_spool();
	return 0;
}
