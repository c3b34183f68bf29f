/*
 * aliases.c: the alias/user table (SPEC 5) and the system's accounts.
 *
 * The table is an aliases(5)-style text file.  It is opened at start-up
 * and read from disk at each lookup, through one bounded buffer: a
 * connection that looks up two names does not pay for loading a table
 * of a hundred thousand, and a client cannot make the process grow.
 * A lookup only parses the entries whose names it wants; the others
 * cost a glance at their first bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "session.h"

#define ENTRY_MAX	65536	/* one logical entry, continuations joined */

struct reader {
	off_t		 off;		/* file offset of buf[0] */
	size_t		 pos, len;
	unsigned long	 lineno;
	char		 buf[16384];
};

/* One entry: `name: targets', continuation lines joined by a space. */
struct entry {
	unsigned long	 lineno;
	char		 name[SMTP_LOCAL_MAX + 1];
	size_t		 len;		/* of text */
	int		 too_long;
	char		 text[ENTRY_MAX];
};

/* One target of an entry: an address and its display name, if any. */
struct target_text {
	char	 addr[SMTP_PATH_MAX + 1];
	char	 display[FULLNAME_MAX + 1];
};

static int	 table_fd = -1;
static struct reader rd;
static struct entry ent;

/* SPEC 2: the default table may be absent; one named with -a may not. */
int
aliases_open(const char *path, int must_exist)
{
	table_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (table_fd == -1 && errno == ENOENT && !must_exist)
		return 0;
	return table_fd == -1 ? -1 : 0;
}

static void
reader_rewind(struct reader *r)
{
	r->off = 0;
	r->pos = r->len = 0;
	r->lineno = 0;
}

/* The next byte of the table, or -1 at its end or on an error. */
static int
reader_byte(struct reader *r)
{
	ssize_t n;

	if (r->pos == r->len) {
		r->off += r->len;
		r->pos = r->len = 0;
		do
			n = pread(table_fd, r->buf, sizeof r->buf, r->off);
		while (n == -1 && errno == EINTR);
		if (n <= 0)
			return -1;
		r->len = n;
	}
	return (unsigned char)r->buf[r->pos++];
}

static int
reader_peek(struct reader *r)
{
	int c = reader_byte(r);

	if (c != -1)
		r->pos--;
	return c;
}

/* Skip to the start of the next physical line. */
static void
skip_line(struct reader *r)
{
	char *nl;

	for (;;) {
		if (r->pos == r->len && reader_peek(r) == -1)
			return;
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl != NULL) {
			r->pos = nl - r->buf + 1;
			r->lineno++;
			return;
		}
		r->pos = r->len;
	}
}

/* Append the rest of a physical line to the entry, bounded. */
static void
take_line(struct reader *r, struct entry *e)
{
	int c;

	while ((c = reader_byte(r)) != -1 && c != '\n') {
		if (e->len + 1 < sizeof e->text)
			e->text[e->len++] = c == '\t' || c == '\r' ? ' ' : c;
		else
			e->too_long = 1;
	}
	r->lineno++;
	e->text[e->len] = '\0';
}

/*
 * The next entry whose name `want' accepts (any, when it is NULL),
 * with its continuation lines.  Returns 1, or 0 at the table's end.
 * A line with no colon in its first SMTP_LOCAL_MAX bytes comes back
 * with an empty name: malformed.
 */
static int
next_entry(struct reader *r, struct entry *e, int (*want)(const char *))
{
	size_t n;
	int c;

	for (;;) {
		c = reader_peek(r);
		if (c == -1)
			return 0;
		if (c == '#' || c == '\n' || c == ' ' || c == '\t' ||
		    c == '\r') {
			skip_line(r);	/* comment, blank or stray continuation */
			continue;
		}
		e->lineno = r->lineno + 1;
		for (n = 0; (c = reader_byte(r)) != -1 && c != ':' &&
		    c != '\n' && n < SMTP_LOCAL_MAX; n++)
			e->name[n] = tolower(c);
		while (n > 0 && (e->name[n - 1] == ' ' ||
		    e->name[n - 1] == '\t'))
			n--;
		e->name[c == ':' ? n : 0] = '\0';
		if (c == '\n') {
			r->pos--;
		} else if (want != NULL && (c != ':' || !want(e->name))) {
			skip_line(r);
			continue;
		}
		e->len = 0;
		e->too_long = 0;
		take_line(r, e);
		while ((c = reader_peek(r)) == ' ' || c == '\t') {
			if (e->len + 1 < sizeof e->text)
				e->text[e->len++] = ' ';
			take_line(r, e);
		}
		return 1;
	}
}

/* Copy s[0..n) to dst trimmed of white space and of one pair of quotes. */
static void
copy_trimmed(char *dst, size_t size, const char *s, size_t n)
{
	size_t i, j = 0;

	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		s++, n -= 2;
	for (i = 0; i < n && j + 1 < size; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		dst[j++] = s[i];
	}
	dst[j] = '\0';
	sanitize(dst);
}

/*
 * The next target in *p, a comma-separated list: `addr', `Name <addr>'
 * or `"Name" <addr>'.  Commas inside quotes or angle brackets do not
 * separate.  Returns 0 at the end of the list.
 */
static int
next_target(const char **p, struct target_text *t)
{
	const char *s = *p, *lt = NULL, *gt = NULL;
	int quoted = 0, angle = 0;

	while (*s == ' ' || *s == ',')
		s++;
	if (*s == '\0')
		return 0;
	for (*p = s; **p != '\0' && (quoted || angle || **p != ','); (*p)++) {
		if (**p == '\\' && (*p)[1] != '\0')
			(*p)++;
		else if (**p == '"')
			quoted = !quoted;
		else if (**p == '<' && !quoted && lt == NULL)
			lt = *p, angle = 1;
		else if (**p == '>' && !quoted && angle)
			gt = *p, angle = 0;
	}
	if (lt != NULL && gt != NULL) {
		copy_trimmed(t->display, sizeof t->display, s, lt - s);
		copy_trimmed(t->addr, sizeof t->addr, lt + 1, gt - lt - 1);
	} else {
		t->display[0] = '\0';
		copy_trimmed(t->addr, sizeof t->addr, s, *p - s);
	}
	return 1;
}

/* Is addr the local name itself: `name', or `name@' a local domain? */
static int
is_self(const char *addr, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(addr, name, n) == 0 &&
	    (addr[n] == '\0' || (addr[n] == '@' && is_local_domain(addr + n + 1)));
}

/*
 * SPEC 5: `name: Full Name <name>', a line whose only target is its own
 * name, declares a local user.  Fills u and returns 1 when e does.
 */
static int
entry_user(const struct entry *e, struct user *u)
{
	const char *p = e->text;
	struct target_text t;

	if (!next_target(&p, &t) || !is_self(t.addr, e->name))
		return 0;
	if (next_target(&p, &t))
		return 0;
	(void)snprintf(u->name, sizeof u->name, "%s", e->name);
	(void)snprintf(u->fullname, sizeof u->fullname, "%s", t.display);
	return 1;
}

static const char *wanted;

static int
want_name(const char *name)
{
	return strcmp(name, wanted) == 0;
}

/* BSD: the GECOS full name is its first field, `&' the capitalised login. */
static void
gecos_name(char *dst, size_t size, const struct passwd *pw)
{
	const char *g = pw->pw_gecos != NULL ? pw->pw_gecos : "";
	size_t j = 0, k;

	for (; *g != '\0' && *g != ',' && j + 1 < size; g++) {
		if (*g != '&') {
			dst[j++] = *g;
			continue;
		}
		for (k = 0; pw->pw_name[k] != '\0' && j + 1 < size; k++)
			dst[j++] = k == 0 ? toupper((unsigned char)pw->pw_name[k])
			    : pw->pw_name[k];
	}
	dst[j] = '\0';
	sanitize(dst);
}

/*
 * Is `name' (lower case) a local user: declared in the table, or, unless
 * -T, a system account?  Returns 1 and fills u, or 0.
 */
int
aliases_user(const char *name, struct user *u)
{
	struct passwd *pw;

	if (table_fd != -1) {
		reader_rewind(&rd);
		wanted = name;
		while (next_entry(&rd, &ent, want_name))
			if (entry_user(&ent, u))
				return 1;
	}
	if (conf.table_only || (pw = getpwnam(name)) == NULL)
		return 0;
	(void)snprintf(u->name, sizeof u->name, "%s", name);
	gecos_name(u->fullname, sizeof u->fullname, pw);
	return 1;
}

/* Does `word' stand, whole and case-insensitively, among the words of s? */
static int
has_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	while (*s != '\0') {
		while (*s == ' ' || *s == '.' || *s == ',')
			s++;
		if (strncasecmp(s, word, n) == 0 && (s[n] == '\0' ||
		    s[n] == ' ' || s[n] == '.' || s[n] == ','))
			return 1;
		while (*s != '\0' && *s != ' ')
			s++;
	}
	return 0;
}

/*
 * SPEC 3, VRFY: the users of the table whose full names hold `word'.
 * Up to max of them go to found[]; the count of all is returned.
 */
size_t
aliases_match_fullname(const char *word, struct user *found, size_t max)
{
	struct user u;
	size_t n = 0;

	if (table_fd == -1 || *word == '\0')
		return 0;
	reader_rewind(&rd);
	while (next_entry(&rd, &ent, NULL))
		if (entry_user(&ent, &u) && has_word(u.fullname, word)) {
			if (n < max)
				found[n] = u;
			n++;
		}
	return n;
}
