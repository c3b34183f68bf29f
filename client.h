/*
 * client.h: the client's bytes and everything else that touches the
 * outside world (client.c): the reader and writer with their
 * deadlines, the log, child processes, signals, waits, text helpers.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <sys/types.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include "smtpd.h"

struct message;

enum line_status {
	LINE_EOF = -1, LINE_TIMEOUT = -2, LINE_TERM = -3, LINE_TOO_LONG = -4,
	LINE_BAD = -5
};
void	client_open(int, int);
int	client_talked_early(int);
int	client_read_line(char *, size_t);
int	client_read_data(struct message *);
int	client_write(const char *, size_t);
int	client_flush(void);
void	client_linger(void);
void	log_msg(int, const char *, ...) PRINTFLIKE(2, 3);
pid_t	self_pid(void);
void	self_pid_reset(void);
void	client_signals(void);
int	pipe_cloexec(int [2]);
#define SPAWN_VARS	8	/* variables spawn() adds to PATH */
int	program_split(struct program *, const char *);
pid_t	spawn(char *const [], char *const [], int, int, unsigned);
void	spawn_kill(pid_t);
void	close_from(int);
int	fds_wait(struct pollfd *, nfds_t, const struct timespec *, int);
int	fd_wait(int, short, const struct timespec *, int);
int	write_all(int, const void *, size_t, const struct timespec *, int);
int	client_stopping(void);
void	client_nap(const struct timespec *);
void	sanitize(char *);
int	utf8_clean(const char *);
size_t	utf8_char(const unsigned char *, unsigned *);
void	lowercase(char *, const char *, size_t);
uint32_t name_hash(const char *);
void	deadline_set(struct timespec *, int);
/*
 * One of smtpd.8's fixed waits, in seconds.  The test build (make check
 * compiles run/test/smtpd with -DSMTPD_TEST_WAITS; smtpd.8, ENVIRONMENT)
 * lets SMTPD_TEST_<name> in the environment shorten it, so that a test
 * need not sit out a real minute; in every other build it is the
 * constant, and nothing reads the environment.
 */
#ifdef SMTPD_TEST_WAITS
int	test_wait(const char *, int);
#define FIXED_WAIT(name, seconds)	test_wait("SMTPD_TEST_" name, seconds)
#else
#define FIXED_WAIT(name, seconds)	(seconds)
#endif
int	deadline_left(const struct timespec *, struct timespec *);

#endif
