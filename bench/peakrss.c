/*
 * peakrss: run a command and append its peak resident set (VmHWM, KiB)
 * to a file when it exits.  bench/run puts it between tcpserver and the
 * server for the RSS measurements only.
 *
 * usage: peakrss file command [arg...]
 *
 * The figure is the command's own: VmHWM of its address space, read
 * from /proc/PID/status at the moment it exits (a ptrace exit stop),
 * after exec.  getrusage()'s ru_maxrss, which GNU time reports, also
 * counts the image of the process before its exec (Linux carries the
 * old mm's high-water mark over), so under tcpserver or time it never
 * drops below theirs.  Standard input and output go to the command
 * alone: this process keeps no copy of the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void
record(const char *file, pid_t pid)
{
	char path[64], line[256];
	FILE *f, *out;
	long kib = -1;

	(void)snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	(void)fclose(f);
	if (kib >= 0 && (out = fopen(file, "a")) != NULL) {
		fprintf(out, "%ld\n", kib);
		(void)fclose(out);
	}
}

int
main(int argc, char **argv)
{
	pid_t pid;
	int status, null, sig;

	if (argc < 3) {
		fprintf(stderr, "usage: peakrss file command [arg...]\n");
		return 64;
	}
	if ((pid = fork()) == -1) {
		perror("peakrss: fork");
		return 71;
	}
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1)
			_exit(126);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(null, 0);
		(void)dup2(null, 1);
		(void)close(null);
	}
	for (;;) {
		if (waitpid(pid, &status, 0) == -1) {
			if (errno == EINTR)
				continue;
			perror("peakrss: waitpid");
			return 71;
		}
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		if (status >> 8 == (SIGTRAP | PTRACE_EVENT_EXIT << 8)) {
			record(argv[1], pid);
			sig = 0;
		} else if (sig == SIGTRAP) {
			/* the stop after exec: from now on, stop at exit */
			(void)ptrace(PTRACE_SETOPTIONS, pid, NULL,
			    (void *)(long)(PTRACE_O_TRACEEXIT |
			    PTRACE_O_EXITKILL));
			sig = 0;
		}
		(void)ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
	}
}
