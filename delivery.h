/*
 * delivery.h: delivery into mbox files and onto terminals, and the
 * -F forward (delivery.c); what became of a message, and why.
 */
#ifndef DELIVERY_H
#define DELIVERY_H

#include "smtpd.h"

struct message;

enum delivery_status {
	DELIVERY_OK, DELIVERY_TEMP, DELIVERY_NO_SPACE, DELIVERY_FORWARD,
	DELIVERY_NOT_SENT		/* SEND: a terminal not reached */
};
/* What became of a message, and why, for the reply and the log. */
struct outcome {
	enum delivery_status	 status;
	char			 why[256];
	char			 who[SMTP_PATH_MAX + 1];	/* NOT_SENT */
};
enum delivery_status	delivery_deliver(struct envelope *,
			    struct message *, struct outcome *);
size_t	delivery_trace(const struct envelope *, char *, size_t);
int	delivery_terminals(const char *, const char *, const char *,
	    const struct message *);

#endif
