/*
 * message.h: the DATA stream (message.c), from the client's bytes to
 * the message as a mailbox stores it, in memory or in its spool file;
 * and the check of that stored form that delivery makes as it copies.
 */
#ifndef MESSAGE_H
#define MESSAGE_H

#include <stddef.h>

/* smtpd.8, INPUT RULES: more Received: fields than this is a mail loop */
#define RECEIVED_LIMIT	100
/* Sticky outcomes of reading a message. */
enum msg_error {
	MSG_OK, MSG_BARE_EOL, MSG_NUL, MSG_TOO_BIG, MSG_LOOP, MSG_IO
};

#define MSG_BUF_SIZE	65536

/*
 * The DATA stream, from the client's bytes to the message as an mbox
 * holds it: dot-stuffing undone, LF line ends, readers' bookkeeping
 * headers dropped, mboxrd quoting.  The result stays in buf while it
 * fits and goes to an unlinked temporary file beyond that.
 */
struct message {
	int		 fd;		/* spool file, -1 until needed */
	int		 crlf;		/* lines end in CRLF (not a tty) */
	long long	 maxsize;
	long long	 size;		/* as received, CRLF counted */
	long long	 spooled;	/* bytes written to fd */
	enum msg_error	 error;
	int		 io_errno;
	int		 nreceived;	/* Received: headers seen */
	unsigned long	 lines;		/* lines ended so far */
	int		 wire;		/* state of the SMTP layer */
	int		 head;		/* state of the header filter */
	int		 in_header;	/* still in the header section */
	int		 dropping;	/* the current field is dropped */
	char		 name[32];	/* a field name being read */
	size_t		 namelen;
	int		 quote;		/* state of mboxrd quoting */
	size_t		 ngt;		/* '>' seen at a line's start */
	size_t		 nfrom;		/* bytes of "From " matched */
	size_t		 len;		/* bytes in buf */
	char		 buf[MSG_BUF_SIZE];
};

void	message_begin(struct message *, int, long long);
int	message_feed(struct message *, const char *, size_t, size_t *);
int	message_end(struct message *);
void	message_close(struct message *);
/* message_check(): where a check of the stored form stands. */
struct framing {
	int	 bol;		/* at a line's start */
	size_t	 nfrom;		/* bytes of "From " matched there */
	char	 last;		/* the last byte seen, '\0' for none */
};
#define FRAMING_START	{ 1, 0, '\0' }
int	message_check(struct framing *, const char *, size_t);
int	message_check_end(const struct framing *);
int	message_header_fields(const char *, size_t);
typedef int	(*message_fn)(void *, const char *, size_t);
enum each { EACH_SENT, EACH_MBOXO };
int	message_each(const struct message *, enum each, message_fn, void *);

#endif
