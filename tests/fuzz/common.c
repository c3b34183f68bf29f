/* common.c: see common.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

struct config conf;

const char *
fuzz_dir(void)
{
	static char dir[4096];
	const char *tmp = getenv("TMPDIR");

	if (dir[0] == '\0') {
		(void)snprintf(dir, sizeof dir, "%s/smtpd-fuzz.XXXXXX",
		    tmp != NULL ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			abort();
		}
	}
	return dir;
}

int
fuzz_file(const char *name, const uint8_t *data, size_t size)
{
	char path[4200];
	int fd;

	(void)snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || (size > 0 && write(fd, data, size) != (ssize_t)size) ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		perror(path);
		abort();
	}
	return fd;
}

void
fuzz_conf(void)
{
	static char spool[4200];

	(void)snprintf(spool, sizeof spool, "%s/spool", fuzz_dir());
	(void)mkdir(spool, 0700);
	memset(&conf, 0, sizeof conf);
	conf.name = "mx.example";
	conf.domains[conf.ndomains++] = "example.org";
	conf.domains[conf.ndomains++] = "mx.example";
	conf.spool = spool;
	conf.table = "";
	conf.maxsize = 65536;
	conf.maxrcpt = 100;
	conf.timeout = 5;
	conf.utmp = "/dev/null";
	conf.log_stderr = 1;	/* libFuzzer's -close_fd_mask=2 silences it */
}
