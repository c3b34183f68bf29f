/*
 * priv.h: the two processes of a session (priv.c; smtpd.8, PRIVILEGE
 * SEPARATION).  The dialogue asks, the deliverer answers.
 */
#ifndef PRIV_H
#define PRIV_H

#include <stddef.h>

struct envelope;
struct message;
struct outcome;

/*
 * Start-up: fork; returns in the dialogue's process alone, 0, or -1
 * when it could not be started as it must (logged).
 */
int	priv_split(void);

/* The dialogue's side: a delivery, and SEND's question at RCPT. */
int	priv_deliver(struct envelope *, struct message *, struct outcome *);
int	priv_terminals(const char *);

/* The dialogue's end of the socketpair, -1 in one process: for
 * tests/priv-driver.c, which speaks the records by hand. */
int	priv_channel(void);

/*
 * The deliverer's reading of one delivery request: every field checked
 * again.  0 when it may be delivered; -1, *why set, when it may not.
 * Shared with the fuzzing harness (tests/fuzz/fuzz_request.c).
 */
int	priv_decode_delivery(const unsigned char *, size_t, int,
	    struct envelope *, struct message *, const char **);

#endif
