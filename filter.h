/*
 * filter.h: the -X content filter (filter.c): its verdict on a message,
 * asked by the dialogue before the deliverer sees it.
 */
#ifndef FILTER_H
#define FILTER_H

#include <stddef.h>
#include "smtpd.h"

struct message;

enum filter_verdict { FILTER_ACCEPT, FILTER_REFUSE, FILTER_TEMP };

struct filter_result {
	enum filter_verdict verdict;
	char	 text[256];	/* the refusal's text, or what went wrong */
	char	 headers[FILTER_HEADERS_MAX + 2];	/* fields to add */
};

void	filter_run(const struct envelope *, char (*)[SMTP_PATH_MAX + 1],
	    size_t, const struct message *, struct filter_result *);

#endif
