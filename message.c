/*
 * message.c: the DATA stream, from the client's bytes to the message as
 * a mailbox will hold it.  It has a file of its own because it is the
 * one part that reads a whole untrusted message: three small state
 * machines, fed any split of the input, with no I/O of their own but the
 * spool file, so they can be read, and fuzzed, apart from the dialogue.
 *
 *   wire:   SMTP framing (RFC 5321 4.1.1.4, 4.5.2): CRLF lines, the dot
 *           that ends the data, dot-stuffing undone; a bare CR or LF or a
 *           NUL refuses the message after its end (smtpd.8, INPUT RULES).
 *   header: the readers' bookkeeping headers and any old Return-Path
 *           are dropped from the header section, which lasts until its
 *           empty line (smtpd.8, MAILBOX FORMAT); Received: headers are
 *           counted (a loop).
 *   quote:  mboxrd: '>' before every line matching ^>*From
 *           (smtpd.8, MAILBOX FORMAT).
 *
 * Offers: message_begin/feed/end, which build it; message_each(), which
 * hands it out as the client sent it or in mboxo's quoting (-b mboxo,
 * the -X filter, the -F program, terminals); message_check(), which
 * delivery runs over the copy it makes, so that the deliverer trusts no
 * framing the dialogue made; message_header_fields(), for -X's output.
 * The result, with LF line ends, stays in m->buf while it fits; beyond
 * that it goes to a temporary file, unlinked at once (smtpd.8, INPUT
 * RULES): memory does not grow with the message.
 * Relies on: TMPDIR (or /tmp) for that file.  Never: reads the client or
 * writes a mailbox itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "message.h"

enum wire { W_BOL, W_DOT, W_DOT_CR, W_TEXT, W_CR };
enum head { H_BOL, H_NAME, H_PASS, H_DROP };
enum quote { Q_BOL, Q_FROM, Q_TEXT };

static const char from_[] = "From ";
static const char gts[] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";	/* quoting */

/* smtpd.8, MAILBOX FORMAT: what mbox readers keep, and an old Return-Path. */
static const char *const dropped[] = {
	"Content-Length", "Status", "X-Status", "X-UID", "X-IMAP",
	"X-IMAPbase", "X-Keywords", "Return-Path", NULL
};

static void
fail(struct message *m, enum msg_error e)
{
	if (m->error == MSG_OK)
		m->error = e;
}

/* The spool file, made on first need: small messages never touch disk. */
static int
spool_open(struct message *m)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int n;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	n = snprintf(path, sizeof path, "%s/smtpd.XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((m->fd = mkstemp(path)) == -1)
		return -1;
	(void)fcntl(m->fd, F_SETFD, FD_CLOEXEC);	/* not for -F's program */
	(void)unlink(path);	/* nobody else may read it, or find it */
	return 0;
}

/* Positional writes: the file is reused for each message of a session. */
static int
spool_write(struct message *m)
{
	const char *p = m->buf;
	size_t len = m->len;
	ssize_t n;

	while (len > 0) {
		n = pwrite(m->fd, p, len, m->spooled);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
		m->spooled += n;
	}
	m->len = 0;
	return 0;
}

static void
spool_flush(struct message *m)
{
	if (m->len == 0 || m->error != MSG_OK)
		return;
	if ((m->fd == -1 && spool_open(m) == -1) || spool_write(m) == -1) {
		m->io_errno = errno;
		fail(m, MSG_IO);
	}
}

static void
out(struct message *m, const char *p, size_t n)
{
	size_t k;

	while (n > 0 && m->error == MSG_OK) {
		if (m->len == sizeof m->buf)
			spool_flush(m);
		k = sizeof m->buf - m->len < n ? sizeof m->buf - m->len : n;
		memcpy(m->buf + m->len, p, k);
		m->len += k;
		p += k;
		n -= k;
	}
}

/* The '>'s and the part of "From " held back at a line's start. */
static void
quote_release(struct message *m, int quoted)
{
	size_t n = m->ngt + (quoted != 0), k;

	for (; n > 0; n -= k) {
		k = n < sizeof gts - 1 ? n : sizeof gts - 1;
		out(m, gts, k);
	}
	out(m, from_, m->nfrom);
	m->ngt = m->nfrom = 0;
	m->quote = Q_TEXT;
}

static void
quote_text(struct message *m, const char *p, size_t n)
{
	for (; n > 0 && m->quote != Q_TEXT; p++, n--) {
		if (m->quote == Q_BOL && *p == '>') {
			m->ngt++;
			continue;
		}
		m->quote = Q_FROM;
		if (*p != from_[m->nfrom]) {
			quote_release(m, 0);
			break;
		}
		if (++m->nfrom == sizeof from_ - 1)
			quote_release(m, 1);
	}
	out(m, p, n);
}

static void
quote_eol(struct message *m)
{
	if (m->quote != Q_TEXT)
		quote_release(m, 0);
	out(m, "\n", 1);
	m->quote = Q_BOL;
}

/* Is the field name just read one that mbox readers keep for themselves? */
static int
is_dropped(const struct message *m)
{
	size_t i;

	for (i = 0; dropped[i] != NULL; i++)
		if (strlen(dropped[i]) == m->namelen &&
		    strncasecmp(dropped[i], m->name, m->namelen) == 0)
			return 1;
	return 0;
}

/* A header field's name was read up to its colon: keep it or drop it? */
static void
head_field(struct message *m)
{
	m->dropping = is_dropped(m);
	if (m->namelen == 8 && strncasecmp(m->name, "Received", 8) == 0 &&
	    ++m->nreceived > RECEIVED_LIMIT)
		fail(m, MSG_LOOP);
	if (m->dropping) {
		m->head = H_DROP;
		return;
	}
	quote_text(m, m->name, m->namelen);
	quote_text(m, ":", 1);
	m->head = H_PASS;
}

/* RFC 5322 2.2: a field name is printable US-ASCII but the colon. */
static int
field_char(char c)
{
	return c > 32 && c < 127 && c != ':';
}

/* Bytes inside one line (no line end among them) reach the header filter. */
static void
text(struct message *m, const char *p, size_t n)
{
	while (n > 0 && m->in_header) {
		switch (m->head) {
		case H_BOL:
			if (*p == ' ' || *p == '\t') {	/* folded */
				m->head = m->dropping ? H_DROP : H_PASS;
				continue;
			}
			m->head = H_NAME;
			m->namelen = 0;
			continue;
		case H_NAME:
			if (*p == ':' && m->namelen > 0) {
				head_field(m);
			} else if (field_char(*p) &&
			    m->namelen < sizeof m->name) {
				m->name[m->namelen++] = *p;
			} else if ((*p == ' ' || *p == '\t') &&
			    is_dropped(m)) {
				/* "Status : RO", and "Status RO", which
				 * mutt takes for Status: too */
				m->dropping = 1;
				m->head = H_DROP;
			} else {
				/* a long name is a field we keep; any other
				 * line without its colon is kept as it is,
				 * and the header section goes on to its
				 * empty line, as mail readers take it
				 * (smtpd.8, MAILBOX FORMAT) */
				m->dropping = 0;
				m->head = H_PASS;
				quote_text(m, m->name, m->namelen);
				continue;
			}
			p++, n--;
			continue;
		case H_PASS:
			quote_text(m, p, n);
			return;
		case H_DROP:
			return;
		}
	}
	if (n > 0)
		quote_text(m, p, n);
}

static void
eol(struct message *m)
{
	m->lines++;
	m->size += 2;		/* RFC 1870: CRLF counts, as sent */
	if (m->size > m->maxsize)
		fail(m, MSG_TOO_BIG);
	if (m->in_header) {
		if (m->head == H_DROP) {
			m->head = H_BOL;
			return;
		}
		if (m->head == H_NAME)	/* a line of one word, no colon */
			quote_text(m, m->name, m->namelen);
		if (m->head == H_BOL)	/* the empty line: the body begins */
			m->in_header = 0;
		m->head = H_BOL;
	}
	quote_eol(m);
}

/* Text of a line; past the size limit, only the bytes up to it are read
 * (so that however the input was cut, the same headers were seen). */
static void
content(struct message *m, const char *p, size_t n)
{
	long long room = m->maxsize - m->size;

	m->size += n;
	if (m->size > m->maxsize) {
		if (m->error == MSG_OK && room > 0)
			text(m, p, (size_t)room);
		fail(m, MSG_TOO_BIG);
	} else if (m->error == MSG_OK)
		text(m, p, n);
}

/* Where, in p[0..n), the plain bytes of a line end. */
static size_t
plain_run(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t run = nl != NULL ? (size_t)(nl - p) : n;
	const char *cr = memchr(p, '\r', run);
	const char *nul = memchr(p, '\0', run);

	if (cr != NULL)
		run = cr - p;
	if (nul != NULL && (size_t)(nul - p) < run)
		run = nul - p;
	return run;
}

/*
 * One byte that is not plain text, in wire state W_TEXT or W_CR.  RFC
 * 5321 2.3.8: only CRLF ends a line.  A bare CR or LF is kept as part of
 * the line, and marks the message refused: a line end the receiver does
 * not see cannot end the data either, so there is no smuggling.  At a
 * terminal, LF alone ends lines.
 */
static void
special(struct message *m, char c)
{
	if (m->wire == W_CR) {
		if (c == '\n') {
			eol(m);
			m->wire = W_BOL;
			return;
		}
		fail(m, MSG_BARE_EOL);
		m->wire = W_TEXT;
	}
	if (c == '\r') {
		m->wire = W_CR;
	} else if (c == '\n' && !m->crlf) {
		eol(m);
		m->wire = W_BOL;
	} else {
		fail(m, c == '\0' ? MSG_NUL : MSG_BARE_EOL);
		m->size++;
	}
}

/*
 * The start of a line, where a dot may end the data or be a stuffed one
 * (RFC 5321 4.5.2).  Returns 1 when the data has ended.
 */
static int
line_start(struct message *m, char c)
{
	switch (m->wire) {
	case W_BOL:
		if (c == '.') {
			m->wire = W_DOT;
			return 0;
		}
		break;
	case W_DOT:
		if (c == '\r') {
			m->wire = W_DOT_CR;
			return 0;
		}
		if (c == '\n' && !m->crlf)
			return 1;
		break;		/* the stuffed dot is gone; c is text */
	case W_DOT_CR:
		if (c == '\n')
			return 1;
		fail(m, MSG_BARE_EOL);
		break;
	}
	m->wire = W_TEXT;
	if (c == '\r' || c == '\n' || c == '\0')
		special(m, c);
	else
		content(m, &c, 1);
	return 0;
}

/* A line of the body, its CR left out: the common case in one copy. */
static void
out_line(struct message *m, const char *p, size_t n)
{
	if (sizeof m->buf - m->len > n) {
		memcpy(m->buf + m->len, p, n);
		m->buf[m->len + n] = '\n';
		m->len += n + 1;
		return;
	}
	out(m, p, n);
	out(m, "\n", 1);
}

/*
 * The body's common case, whole lines at a time, at a line's start: a
 * line that begins with none of '.', '>' and 'F' (nothing to undo,
 * nothing to quote) and holds no CR, LF or NUL before its CRLF goes out
 * as it is, with LF.  What content() and eol() would do for it, less
 * their steps.  Returns the bytes taken: whole lines only.
 */
static size_t
plain_lines(struct message *m, const char *p, size_t n, int nul_free)
{
	const char *nl;
	size_t i = 0, len;

	while (i < n && p[i] != '.' && p[i] != '>' && p[i] != 'F' &&
	    p[i] != '\r' && p[i] != '\n') {
		if ((nl = memchr(p + i, '\n', n - i)) == NULL)
			break;
		len = (size_t)(nl - (p + i)) - 1;	/* without CRLF */
		if (p[i + len] != '\r' || memchr(p + i, '\r', len) != NULL ||
		    (!nul_free && memchr(p + i, '\0', len) != NULL))
			break;
		m->size += len + 2;
		m->lines++;
		if (m->size > m->maxsize)
			fail(m, MSG_TOO_BIG);
		if (m->error == MSG_OK)
			out_line(m, p + i, len);
		i += len + 2;
	}
	return i;
}

/*
 * Take what the client sent: *used is set to the bytes consumed.
 * Returns 1 once the line holding a single dot was read, 0 when more
 * is needed.
 */
int
message_feed(struct message *m, const char *p, size_t n, size_t *used)
{
	size_t i = 0, run;
	int nul_free = memchr(p, '\0', n) == NULL;

	while (i < n) {
		if (m->wire == W_BOL && !m->in_header && m->quote == Q_BOL &&
		    (i += plain_lines(m, p + i, n - i, nul_free)) == n)
			break;
		if (m->wire == W_BOL && p[i] != '.')
			m->wire = W_TEXT;	/* no dot: one run for the line */
		if (m->wire == W_TEXT && (run = plain_run(p + i, n - i)) > 0) {
			content(m, p + i, run);
			i += run;
		} else if (m->wire == W_TEXT || m->wire == W_CR) {
			special(m, p[i++]);
		} else if (line_start(m, p[i++])) {
			*used = i;
			return 1;
		}
	}
	*used = i;
	return 0;
}

void
message_begin(struct message *m, int crlf, long long maxsize)
{
	if (m->spooled > 0 && ftruncate(m->fd, 0) == -1) {
		/* a stale tail is harmless: only `spooled' bytes are read */
	}
	m->crlf = crlf;
	m->maxsize = maxsize;
	m->size = m->spooled = 0;
	m->error = MSG_OK;
	m->io_errno = 0;
	m->nreceived = 0;
	m->lines = 0;
	m->wire = W_BOL;
	m->head = H_BOL;
	m->in_header = 1;
	m->dropping = 0;
	m->namelen = 0;
	m->quote = Q_BOL;
	m->ngt = m->nfrom = 0;
	m->len = 0;
}

/* The data has ended: what is still in buf stays there if nothing was
 * spooled yet, else it joins the rest in the file. */
int
message_end(struct message *m)
{
	if (m->spooled > 0)
		spool_flush(m);
	return m->error == MSG_OK ? 0 : -1;
}

void
message_close(struct message *m)
{
	if (m->fd != -1)
		(void)close(m->fd);
	m->fd = -1;
}

/*
 * Reading a message back as it was sent, mboxrd quoting undone (one '>'
 * off each line matching ^>+From ), for the forwarding program and for
 * terminals, or as an mboxo mailbox holds it (-b mboxo); an mboxrd
 * mailbox copy is written from the spool as it is.
 */
struct unquote {
	message_fn	 fn;
	void		*arg;
	int		 mboxo;		/* keep one '>' where "From " was */
	int		 bol;		/* at a line's start */
	size_t		 ngt;		/* '>' held back at its start */
	size_t		 nfrom;		/* bytes of "From " held after them */
};

static int
give(struct unquote *u, const char *p, size_t n)
{
	return n == 0 ? 0 : u->fn(u->arg, p, n);
}

/*
 * What was held back at a line's start, less one '>' when it quoted:
 * the line as it was sent.  For an mboxo mailbox, a line that was sent
 * as "From " keeps its one '>', the only quoting mboxo knows.
 */
static int
give_held(struct unquote *u, int quoted)
{
	size_t n = u->ngt - (quoted && !(u->mboxo && u->ngt == 1)), k;

	for (; n > 0; n -= k) {
		k = n < sizeof gts - 1 ? n : sizeof gts - 1;
		if (give(u, gts, k) == -1)
			return -1;
	}
	u->bol = 0;
	return give(u, from_, u->nfrom);
}

static int
unquote_run(struct unquote *u, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	while (n > 0) {
		if (!u->bol) {
			nl = memchr(p, '\n', n);
			k = nl != NULL ? (size_t)(nl - p) + 1 : n;
			if (give(u, p, k) == -1)
				return -1;
			p += k, n -= k;
			u->bol = nl != NULL;
			u->ngt = u->nfrom = 0;
		} else if (*p == '>' && u->nfrom == 0) {
			u->ngt++;
			p++, n--;
		} else if (u->ngt > 0 && *p == from_[u->nfrom]) {
			p++, n--;
			if (++u->nfrom == sizeof from_ - 1 &&
			    give_held(u, 1) == -1)
				return -1;
		} else if (give_held(u, 0) == -1)
			return -1;	/* not quoting: as it was, then text */
	}
	return 0;
}

/*
 * The message to fn in pieces, as it was sent (EACH_SENT), or quoted
 * the mboxo way (EACH_MBOXO: '>' before "From " alone, so that readers
 * that undo no quoting show lines that began ">From " as they were);
 * fn returns -1 to stop.  Returns 0, or -1 when fn stopped or the spool
 * could not be read.
 */
int
message_each(const struct message *m, enum each form, message_fn fn,
    void *arg)
{
	static char chunk[65536];
	struct unquote u = { fn, arg, form == EACH_MBOXO, 1, 0, 0 };
	struct framing f = FRAMING_START;
	int check = form == EACH_MBOXO;	/* a mailbox's copy: see append() */
	off_t off;
	ssize_t n;

	if (m->spooled == 0)
		return (check && (message_check(&f, m->buf, m->len) == -1 ||
		    message_check_end(&f) == -1)) ||
		    unquote_run(&u, m->buf, m->len) == -1 ||
		    (u.bol && give_held(&u, 0) == -1) ? -1 : 0;
	for (off = 0; off < m->spooled; off += n) {
		n = pread(m->fd, chunk, m->spooled - off < (off_t)sizeof chunk ?
		    (size_t)(m->spooled - off) : sizeof chunk, off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0 || (check && message_check(&f, chunk, n) == -1) ||
		    unquote_run(&u, chunk, n) == -1)
			return -1;
	}
	if (check && message_check_end(&f) == -1)
		return -1;
	return u.bol && give_held(&u, 0) == -1 ? -1 : 0;
}

/*
 * What a delivery appends must have the framing this file gives it
 * (smtpd.8, MAILBOX FORMAT), whoever wrote the spool file: no line
 * beginning "From " (quoting made each one ">From "), no CR and no NUL,
 * and, once all is seen, a last line with its LF.  The deliverer checks
 * each piece as it copies it, so that what it writes is what it
 * checked (smtpd.8, PRIVILEGE SEPARATION).  0, or -1 at the first
 * fault.
 */
int
message_check(struct framing *f, const char *p, size_t n)
{
	const char *end = p + n, *nl;
	size_t k;

	if (n == 0)
		return 0;
	if (memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL)
		return -1;
	f->last = end[-1];
	while (p < end) {
		if (f->nfrom > 0 || f->bol) {	/* at a line's start */
			k = sizeof from_ - 1 - f->nfrom;
			if ((size_t)(end - p) < k)
				k = (size_t)(end - p);
			if (memcmp(p, from_ + f->nfrom, k) != 0)
				f->nfrom = 0;
			else if ((f->nfrom += k) == sizeof from_ - 1)
				return -1;
			f->bol = 0;
			if (f->nfrom > 0)
				return 0;	/* the piece ended in "From" */
		}
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		p = nl + 1;
		f->bol = 1;
	}
	return 0;
}

/* After the last piece: a message that is empty, or ends its line. */
int
message_check_end(const struct framing *f)
{
	return f->last == '\0' || f->last == '\n' ? 0 : -1;
}

/*
 * Header fields that a -X filter printed, before any mailbox takes
 * them (smtpd.8, CONTENT FILTER): whole lines, each a field (a name of
 * printable ASCII but the colon, then a colon) or the continuation of
 * the one before (a space or tab first, something else after), the
 * rest printable ASCII or tab; no empty line, which would end the
 * header section.  The dialogue checks them, and the deliverer again.
 * 0, or -1.
 */
int
message_header_fields(const char *p, size_t n)
{
	const char *end = p + n, *nl, *q;
	int first = 1;

	for (; p < end; p = nl + 1, first = 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;		/* a line without its end */
		for (q = p; q < nl; q++)
			if ((*q < ' ' || *q > '~') && *q != '\t')
				return -1;
		if (*p == ' ' || *p == '\t') {
			if (first || strspn(p, " \t") >= (size_t)(nl - p))
				return -1;	/* folds nothing */
			continue;
		}
		for (q = p; q < nl && *q != ':'; q++)
			if (*q == ' ' || *q == '\t')
				return -1;
		if (q == p || q == nl)
			return -1;		/* no name, or no colon */
	}
	return 0;
}
