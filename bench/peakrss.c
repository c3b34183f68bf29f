/*
 * peakrss: run a command and append its peak resident set (VmHWM, KiB)
 * to a file when it exits.  bench/run puts it between tcpserver and the
 * server for the RSS measurements only.
 *
 * usage: peakrss file command [arg...]
 *
 * Two figures, on one line: the largest VmHWM among the command and
 * every process it starts (a lookup helper, a forwarding program), and
 * the command's own.  Each is read from /proc/PID/status at the moment
 * that process exits (a ptrace exit stop), of the address space it then
 * has.  getrusage()'s ru_maxrss, which GNU time reports, also
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

static long	peak = -1;	/* KiB, the largest VmHWM seen */
static long	own = -1;	/* KiB, the command's */
static pid_t	seen[256];	/* processes traced so far */
static size_t	nseen;

static long
hwm(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = -1;

	(void)snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	(void)fclose(f);
	return kib;
}

/* The first stop of a process: a new one stops with SIGSTOP, once. */
static int
first_stop(pid_t pid)
{
	size_t i;

	for (i = 0; i < nseen; i++)
		if (seen[i] == pid)
			return 0;
	if (nseen < sizeof seen / sizeof seen[0])
		seen[nseen++] = pid;
	return 1;
}

int
main(int argc, char **argv)
{
	pid_t pid, w;
	int status, null, sig, traced = 0, rc = 71;
	FILE *out;

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
	(void)first_stop(pid);
	for (;;) {
		if ((w = waitpid(-1, &status, __WALL)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			perror("peakrss: waitpid");
			return 71;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (w == pid)
				rc = WIFEXITED(status) ? WEXITSTATUS(status) :
				    128 + WTERMSIG(status);
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		if (status >> 8 == (SIGTRAP | PTRACE_EVENT_EXIT << 8)) {
			long kib = hwm(w);

			if (kib > peak)
				peak = kib;
			if (w == pid)
				own = kib;
			sig = 0;
		}
		else if (status >> 16 != 0)
			sig = 0;	/* fork, clone or exec */
		else if (sig == SIGSTOP && first_stop(w))
			sig = 0;	/* a new child, attached */
		else if (sig == SIGTRAP && w == pid && !traced) {
			/* the stop after exec: from now on, follow */
			(void)ptrace(PTRACE_SETOPTIONS, pid, NULL,
			    (void *)(long)(PTRACE_O_TRACEEXIT |
			    PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK |
			    PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
			    PTRACE_O_TRACEEXEC));
			traced = 1;
			sig = 0;
		}
		(void)ptrace(PTRACE_CONT, w, NULL, (void *)(long)sig);
	}
	if (peak >= 0 && (out = fopen(argv[1], "a")) != NULL) {
		fprintf(out, "%ld %ld\n", peak, own);
		(void)fclose(out);
	}
	return rc;
}
