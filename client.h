/*
 * client.h: the client's bytes and everything else that touches the
 * outside world (client.c): the reader and writer with their
 * deadlines, the log, child processes, signals, text helpers.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <sys/types.h>
#include <poll.h>
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
int	split_words(const char *, char *, size_t, char **, size_t);
pid_t	spawn(char *const [], char *const [], int, int, unsigned);
void	spawn_kill(pid_t);
void	close_from(int);
int	fds_wait(struct pollfd *, nfds_t, const struct timespec *, int);
int	fd_wait(int, short, const struct timespec *, int);
int	client_stopping(void);
void	client_nap(const struct timespec *);
void	sanitize(char *);
int	utf8_clean(const char *);
size_t	utf8_char(const unsigned char *, unsigned *);
void	lowercase(char *, const char *, size_t);
void	deadline_set(struct timespec *, int);
int	deadline_left(const struct timespec *, struct timespec *);

#endif
