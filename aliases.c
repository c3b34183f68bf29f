/*
 * aliases.c: the alias/user table (smtpd.8, THE TABLE).
 *
 * The table is an aliases(5)-style text file, opened at start-up and
 * read through one bounded buffer.  Nothing is loaded before a lookup
 * needs it: a connection that never names a recipient pays nothing for
 * a table of a hundred thousand entries.  The first lookup reads the
 * file once and keeps a hash index of where each entry begins (eight
 * bytes an entry); each later lookup reads only the entry it wants, so
 * expanding a long list costs one short read per member instead of one
 * pass over the file per member.
 *
 * Offers: aliases_expand(), a name's mailboxes and forwards, depth-first
 * with loops and nesting bounded (RCPT, VRFY, EXPN); the full-name search
 * for VRFY; is_local_domain(); and aliases_check(), smtpd -C's reading of
 * the whole table into memory (at the end of this file).
 * Relies on: accounts.c for the names the table does not hold (without
 * -T).  Never: writes anything but -C's report, or reads past an
 * entry's bounds: a line too long is an entry skipped and reported.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts.h"
#include "aliases.h"
#include "client.h"
#include "smtpd.h"

#define ENTRY_MAX	65536	/* one logical entry, continuations joined */

struct reader {
	off_t		 off;		/* file offset of buf[0] */
	size_t		 pos, len;
	unsigned long	 lineno;
	char		 buf[16384];
};

/* One of the domains -d names (or the host name): their local parts
 * are the table's names. */
int
is_local_domain(const char *d)
{
	size_t i, n = strlen(d);

	if (n > 0 && d[n - 1] == '.')
		n--;		/* an absolute name is the same domain */
	for (i = 0; i < conf.ndomains; i++)
		if (strlen(conf.domains[i]) == n &&
		    strncasecmp(conf.domains[i], d, n) == 0)
			return 1;
	return 0;
}

/* One entry: `name: targets', continuation lines joined by a space. */
struct entry {
	off_t		 off;		/* where its first line begins */
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
static off_t	 table_size;	/* when opened: no read past it is needed */
static struct reader rd;
static struct entry ent;

/* smtpd.8, -a: the default table may be absent; one named with -a may not. */
int
aliases_open(const char *path, int must_exist)
{
	struct stat st;

	table_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (table_fd == -1)
		return errno == ENOENT && !must_exist ? 0 : -1;
	if (fstat(table_fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)close(table_fd);	/* a directory or a FIFO is no table */
		table_fd = -1;
		errno = EINVAL;
		return -1;
	}
	table_size = st.st_size;
	return 0;
}

/*
 * The index: open addressing, linear probing, in table order so that
 * the first of two entries with one name is found first, as a scan
 * would.  A slot holds a name's hash and its entry's offset plus one
 * (0: empty).  Tables past 4 GiB, or no memory, fall back to scanning.
 */
struct slot {
	uint32_t	 hash;
	uint32_t	 off1;
};

static struct slot	*slots;
static size_t		 nslots, nused;
static int		 indexed;	/* 1: built, -1: cannot be */

static void	forget_checked(void);

static void
index_forget(void)
{
	free(slots);
	slots = NULL;
	nslots = nused = 0;
}

/* Close the table and forget all that was read of it. */
void
aliases_close(void)
{
	if (table_fd != -1)
		(void)close(table_fd);
	table_fd = -1;
	index_forget();
	indexed = 0;
	forget_checked();
}

static void
reader_seek(struct reader *r, off_t off)
{
	r->off = off;
	r->pos = r->len = 0;
	r->lineno = 0;
}

/* Refill the buffer; the next byte, or -1 at the end or on an error. */
static int
reader_fill(struct reader *r)
{
	ssize_t n;

	r->off += r->len;
	r->pos = r->len = 0;
	if (r->off >= table_size)
		return -1;
	do
		n = pread(table_fd, r->buf, sizeof r->buf, r->off);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -1;
	r->len = n;
	return (unsigned char)r->buf[r->pos++];
}

/* The next byte of the table, or -1 at its end or on an error. */
static inline int
reader_byte(struct reader *r)
{
	if (r->pos < r->len)
		return (unsigned char)r->buf[r->pos++];
	return reader_fill(r);
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
		e->off = r->off + r->pos;
		e->lineno = r->lineno + 1;
		for (n = 0; (c = reader_byte(r)) != -1 && c != ':' &&
		    c != '\n' && n < SMTP_LOCAL_MAX; n++)
			e->name[n] = tolower(c);
		while (n > 0 && (e->name[n - 1] == ' ' ||
		    e->name[n - 1] == '\t'))
			n--;
		e->name[c == ':' ? n : 0] = '\0';
		if (strlen(e->name) != n)
			e->name[0] = '\0';	/* a NUL in it: malformed */
		if (c == '\n') {
			r->pos--;
		} else if (want != NULL && (c != ':' || e->name[0] == '\0' ||
		    !want(e->name))) {
			skip_line(r);
			continue;
		}
		e->len = 0;
		e->too_long = 0;
		take_line(r, e);
		for (;;) {	/* continuations; comments between them do not end it */
			c = reader_peek(r);
			if (c == '#' || c == '\n' || c == '\r') {
				skip_line(r);
				continue;
			}
			if (c != ' ' && c != '\t')
				break;
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
 * smtpd.8, THE TABLE: `name: Full Name <name>', a line whose only target is
 * its own name, declares a local user.  Fills u and returns 1 when e does.
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

/*
 * Expansion (smtpd.8, THE TABLE): a table name leads, through lists and
 * aliases, to mailboxes and remote addresses.  It is walked depth first, so
 * EXPN shows members in the table's order; each entry being walked keeps
 * its text on a small stack, and each name is expanded once (a member of
 * two lists gets one copy; a name met again on its own path is a loop).
 */
#define MAX_DEPTH	20		/* nested lists deeper are refused */
#define MAX_SEEN	(2 * (size_t)MAX_TARGETS) /* lists walked, members */

struct walk {
	alias_member_fn	 fn;
	void		*arg;
	unsigned	 flags;		/* EXPAND_ bits */
	size_t		 nseen;
	size_t		 depth;
	size_t		 top;		/* of stack */
	const char	*path[MAX_DEPTH];
};

static char	 stack[2 * ENTRY_MAX];
static char	 seen[MAX_SEEN][SMTP_LOCAL_MAX + 1];

static void
slot_put(struct slot *tab, size_t size, struct slot sl)
{
	size_t i = sl.hash & (size - 1);

	while (tab[i].off1 != 0)
		i = (i + 1) & (size - 1);
	tab[i] = sl;
}

/* Room for one more entry: the table stays at most half full. */
static int
index_grow(void)
{
	struct slot *tab;
	size_t i, size = nslots == 0 ? 1024 : 2 * nslots;

	if (2 * (nused + 1) <= nslots)
		return 0;
	if ((tab = calloc(size, sizeof *tab)) == NULL)
		return -1;
	for (i = 0; i < nslots; i++)
		if (slots[i].off1 != 0)
			slot_put(tab, size, slots[i]);
	free(slots);
	slots = tab;
	nslots = size;
	return 0;
}

/* Called by next_entry for every named entry while the index is built. */
static int
index_add(const char *name)
{
	struct slot sl;

	if (indexed == -1 || ent.off >= (off_t)UINT32_MAX ||
	    index_grow() == -1) {
		indexed = -1;
		return 0;
	}
	sl.hash = name_hash(name);
	sl.off1 = (uint32_t)ent.off + 1;
	slot_put(slots, nslots, sl);
	nused++;
	return 0;	/* never taken: the pass reads on */
}

static void
index_build(void)
{
	indexed = 0;
	reader_seek(&rd, 0);
	while (next_entry(&rd, &ent, index_add))
		;
	if (indexed == -1)
		index_forget();
	else
		indexed = 1;
}

/* Look name up; the entry is left in ent.  Returns 1 when found. */
static int
lookup(const char *name)
{
	uint32_t h = name_hash(name);
	size_t i;

	if (table_fd == -1)
		return 0;
	if (indexed == 0)
		index_build();
	if (indexed == -1) {
		reader_seek(&rd, 0);
		wanted = name;
		while (next_entry(&rd, &ent, want_name))
			if (strcmp(ent.name, name) == 0)
				return 1;	/* not a line with no colon */
		return 0;
	}
	if (nused == 0)
		return 0;	/* no entry, no slot: nslots is 0 */
	for (i = h & (nslots - 1); slots[i].off1 != 0;
	    i = (i + 1) & (nslots - 1)) {
		if (slots[i].hash != h)
			continue;
		reader_seek(&rd, (off_t)slots[i].off1 - 1);
		if (next_entry(&rd, &ent, NULL) && strcmp(ent.name, name) == 0)
			return 1;
	}
	return 0;
}

/*
 * A target's local part, lower case, when the target is local: no '@',
 * or a local domain.  Returns 0 for a remote target.
 */
static int
local_part(const char *addr, char *dst, size_t size)
{
	const char *at = strrchr(addr, '@');
	size_t i, n = at != NULL ? (size_t)(at - addr) : strlen(addr);

	if (at != NULL && !is_local_domain(at + 1))
		return 0;
	if (n >= size)
		n = size - 1;
	for (i = 0; i < n; i++)
		dst[i] = tolower((unsigned char)addr[i]);
	dst[n] = '\0';
	return 1;
}

/* RFC 5321 4.1.2: a source route in a remote target is dropped. */
static const char *
no_route(const char *addr)
{
	const char *colon;

	if (addr[0] == '@' && (colon = strchr(addr, ':')) != NULL)
		return colon + 1;
	return addr;
}

static int
emit(struct walk *w, enum target_kind kind, const char *name,
    const char *fullname)
{
	struct member m;

	m.kind = kind;
	(void)snprintf(m.name, sizeof m.name, "%s", name);
	(void)snprintf(m.fullname, sizeof m.fullname, "%s", fullname);
	if (w->fn(&m, w->arg) == -1) {
		w->flags |= EXPAND_FULL;
		return -1;
	}
	return 0;
}

static int	walk_name(struct walk *, const char *, const char *);

/* The targets of the entry whose text is at stack[from]. */
static int
walk_targets(struct walk *w, const char *self, size_t from)
{
	const char *p = stack + from;
	struct target_text t;
	char name[SMTP_LOCAL_MAX + 1];

	while (next_target(&p, &t)) {
		if (t.addr[0] == '|' || t.addr[0] == '/' || t.addr[0] == ':' ||
		    t.addr[0] == '\0') {
			w->flags |= EXPAND_SKIPPED;	/* not ours: -C says */
			continue;
		}
		if (!local_part(t.addr, name, sizeof name)) {
			if (emit(w, TARGET_FORWARD, no_route(t.addr),
			    t.display) == -1)
				return -1;
		} else if (strcmp(name, self) == 0) {
			if (emit(w, TARGET_MAILBOX, name, t.display) == -1)
				return -1;	/* `bob: bob, bob@home' */
		} else if (walk_name(w, name, t.display) == -1)
			return -1;
	}
	return 0;
}

/* Is name on the path being walked? */
static int
on_path(const struct walk *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->depth; i++)
		if (strcmp(w->path[i], name) == 0)
			return 1;
	return 0;
}

/* Has name been walked already (1)?  If not, it is now (0), or -1. */
static int
walked(struct walk *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->nseen; i++)
		if (strcmp(seen[i], name) == 0)
			return 1;
	if (w->nseen == MAX_SEEN) {
		w->flags |= EXPAND_FULL;	/* never lose one quietly */
		return -1;
	}
	(void)snprintf(seen[w->nseen++], sizeof seen[0], "%s", name);
	return 0;
}

/*
 * A local user the table does not name: a system account (unless -T),
 * or the postmaster (RFC 5321 4.5.1), who always has a mailbox.  1 for
 * a user, 0 for none, -1 when the accounts cannot be asked now.
 */
static int
account(const char *name, struct user *u)
{
	struct account a;
	int postmaster = strcmp(name, "postmaster") == 0, r = 0;

	(void)snprintf(u->name, sizeof u->name, "%s", name);
	u->fullname[0] = '\0';
	if (!conf.table_only && (r = account_find(name, &a)) == 1) {
		(void)snprintf(u->fullname, sizeof u->fullname, "%s",
		    a.fullname);
		return 1;
	}
	if (postmaster || r == 0)
		return postmaster;
	return -1;		/* the accounts could not be asked */
}

/* What a local name is: a user (u filled), a list (left in ent), none. */
static enum expand
resolve(const char *name, struct user *u)
{
	if (lookup(name))
		return entry_user(&ent, u) ? EXPAND_USER : EXPAND_LIST;
	switch (account(name, u)) {
	case 0:
		return EXPAND_NONE;
	case 1:
		return EXPAND_USER;
	}
	return EXPAND_UNSURE;
}

/* The list just resolved (in ent), its entry pushed on the path. */
static int
walk_list(struct walk *w, const char *name)
{
	size_t from = w->top;
	int r;

	if (w->depth == MAX_DEPTH) {
		w->flags |= EXPAND_LOOP;	/* a list MAX_DEPTH + 1 deep */
		return 0;
	}
	if (ent.len + 1 > sizeof stack - w->top) {
		w->flags |= EXPAND_FULL;
		return -1;
	}
	memcpy(stack + from, ent.text, ent.len + 1);
	w->top += ent.len + 1;
	w->path[w->depth++] = name;
	r = walk_targets(w, name, from);
	w->path[--w->depth] = NULL;	/* name dies with our caller */
	w->top = from;
	return r;
}

/*
 * One local name met in an entry; display is the full name the entry
 * gave it, used when nothing better is known.
 */
static int
walk_name(struct walk *w, const char *name, const char *display)
{
	struct user u;
	int r;

	if (on_path(w, name)) {
		w->flags |= EXPAND_LOOP;
		return 0;
	}
	if (!mailbox_name_ok(name)) {
		w->flags |= EXPAND_SKIPPED;
		return 0;
	}
	if ((r = walked(w, name)) != 0)
		return r == 1 ? 0 : -1;
	switch (resolve(name, &u)) {
	case EXPAND_NONE:
		w->flags |= EXPAND_UNKNOWN;
		return 0;
	case EXPAND_UNSURE:
		w->flags |= EXPAND_TRY_LATER;
		return 0;
	case EXPAND_USER:
		return emit(w, TARGET_MAILBOX, name, u.fullname[0] != '\0' ?
		    u.fullname : display);
	case EXPAND_LIST:
		break;
	}
	return walk_list(w, name);
}

/*
 * What a local name (lower case) is: EXPAND_NONE, nothing; EXPAND_USER,
 * a local user (of the table, a system account, or the postmaster), u
 * filled; EXPAND_LIST, an alias or list, fn called for each mailbox and
 * remote address it leads to, and *flags telling of loops, unknown or
 * skipped targets, or fn's refusal (EXPAND_FULL).
 */
enum expand
aliases_expand(const char *name, struct user *u, alias_member_fn fn,
    void *arg, unsigned *flags)
{
	enum expand kind = resolve(name, u);
	struct walk w;

	*flags = 0;
	if (kind == EXPAND_LIST) {
		memset(&w, 0, sizeof w);
		w.fn = fn;
		w.arg = arg;
		(void)walked(&w, name);
		(void)walk_list(&w, name);
		*flags = w.flags;
	}
	return kind;
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
 * smtpd.8, THE DIALOGUE, VRFY: the local users whose full names hold
 * `word': those of the table, then (unless -T) the system's accounts that
 * the table does not name.  Up to max of them go to found[]; the count of
 * all is returned.
 */
/* VRFY's search among the accounts: what it looks for, what it found. */
struct search {
	const char	*word;
	struct user	*found;
	size_t		 max, n;
};

static int
search_account(const struct account *a, void *arg)
{
	struct search *sr = arg;
	struct user u;

	if (!has_word(a->fullname, sr->word))
		return 0;
	lowercase(u.name, a->name, sizeof u.name);
	if (lookup(u.name))
		return 0;	/* the table's word is the one */
	(void)snprintf(u.fullname, sizeof u.fullname, "%s", a->fullname);
	if (sr->n < sr->max)
		sr->found[sr->n] = u;
	sr->n++;
	return 0;
}

size_t
aliases_match_fullname(const char *word, struct user *found, size_t max)
{
	struct search sr = { word, found, max, 0 };
	struct user u;

	if (*word == '\0')
		return 0;
	if (table_fd != -1) {
		reader_seek(&rd, 0);
		while (next_entry(&rd, &ent, NULL))
			if (entry_user(&ent, &u) && has_word(u.fullname, word)) {
				if (sr.n < max)
					found[sr.n] = u;
				sr.n++;
			}
	}
	if (!conf.table_only)
		(void)account_each(search_account, &sr);
	return sr.n;
}

/*
 * smtpd -C (smtpd.8, -C and THE TABLE): the whole table in memory, every
 * problem reported as `file:line: message'.  Memory is no concern here:
 * this runs once, by hand, never for a client.
 */
struct checked {
	char		*name;
	char		*text;
	unsigned long	 lineno;
	int		 user;		/* declares a local user */
	int		 state;		/* walk: 0 new, 1 on path, 2 done */
	int		 height;	/* longest chain of names from here */
	int		 member;	/* some other entry names it */
	int		 dup;		/* an earlier entry has its name */
};

/*
 * The entries are sorted by name for the walk, but whoever fixes the
 * table reads it from the top: the problems are kept, then printed in
 * the order of their lines, those of one line in the order found.
 */
struct report {
	unsigned long	 lineno;
	size_t		 seq;		/* when found */
	char		*text;
};

static struct checked	*cents;
static size_t		 ncents;
static struct report	*reports;
static size_t		 nreports, reports_cap;
static const char	*check_path;
static int		 nproblems;

static int
reports_room(void)
{
	struct report *r;
	size_t cap = reports_cap == 0 ? 64 : 2 * reports_cap;

	if (nreports < reports_cap)
		return 0;
	if ((r = realloc(reports, cap * sizeof *r)) == NULL)
		return -1;
	reports = r;
	reports_cap = cap;
	return 0;
}

/* One line of the report, kept; printed at once when it cannot be. */
static void
keep(unsigned long lineno, const char *fmt, va_list ap)
{
	char line[4096];	/* a loop of MAX_DEPTH names fits */
	char *text = NULL;

	(void)vsnprintf(line, sizeof line, fmt, ap);
	sanitize(line);		/* a name may hold any byte but NUL */
	if (reports_room() == -1 || (text = strdup(line)) == NULL) {
		(void)fprintf(stderr, "%s:%lu: %s\n", check_path, lineno,
		    line);	/* out of order, rather than lost */
		return;
	}
	reports[nreports].lineno = lineno;
	reports[nreports].seq = nreports;
	reports[nreports++].text = text;
}

/* A line of -C's report: warning, what may be meant (the table is still
 * clean, exit 0); problem, what makes -C exit 1. */
static void PRINTFLIKE(2, 3)
report(unsigned long lineno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep(lineno, fmt, ap);
	va_end(ap);
}
#define warning(...)	report(__VA_ARGS__)
#define problem(...)	(nproblems++, report(__VA_ARGS__))

static int
by_line(const void *a, const void *b)
{
	const struct report *x = a, *y = b;

	if (x->lineno != y->lineno)
		return x->lineno < y->lineno ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void
forget_reports(void)
{
	size_t i;

	for (i = 0; i < nreports; i++)
		free(reports[i].text);
	free(reports);
	reports = NULL;
	nreports = reports_cap = 0;
}

static void
print_reports(void)
{
	size_t i;

	if (nreports > 0)
		qsort(reports, nreports, sizeof *reports, by_line);
	for (i = 0; i < nreports; i++)
		(void)fprintf(stderr, "%s:%lu: %s\n", check_path,
		    reports[i].lineno, reports[i].text);
	forget_reports();
}

static int
by_name_line(const void *a, const void *b)
{
	const struct checked *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* The first entry named name, or NULL. */
static struct checked *
find_checked(const char *name)
{
	size_t lo = 0, hi = ncents, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(cents[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ncents && strcmp(cents[lo].name, name) == 0 ?
	    &cents[lo] : NULL;
}

/*
 * smtpd.8, THE TABLE: a line starting with white space continues the
 * entry before it.  Before the first entry there is none, and
 * next_entry passes such a line over without a word; -C gives one.  A
 * line of white space alone is blank, and continues nothing either.
 */
static void
check_stray_lines(void)
{
	int c, text;

	reader_seek(&rd, 0);
	for (;;) {
		c = reader_peek(&rd);
		if (c == '#' || c == '\n' || c == '\r') {
			skip_line(&rd);
			continue;
		}
		if (c != ' ' && c != '\t')
			return;		/* the first entry, or the end */
		text = 0;
		while ((c = reader_byte(&rd)) != -1 && c != '\n')
			text |= c != ' ' && c != '\t' && c != '\r';
		rd.lineno++;
		if (text)
			problem(rd.lineno, "a continuation line with no entry "
			    "before it: ignored");
	}
}

/* Read every entry; malformed ones are reported and left out. */
static int
load_all(void)
{
	struct checked *c;
	struct user u;
	size_t i, cap = 0;

	check_stray_lines();
	reader_seek(&rd, 0);
	while (next_entry(&rd, &ent, NULL)) {
		if (ent.name[0] == '\0') {
			problem(ent.lineno, "malformed line: no `name:' (or "
			    "a name longer than %d bytes)", SMTP_LOCAL_MAX);
			continue;
		}
		if (ent.too_long)
			problem(ent.lineno, "%s: entry longer than %d bytes, "
			    "cut", ent.name, ENTRY_MAX - 1);
		if (ncents == cap) {
			cap = cap == 0 ? 1024 : 2 * cap;
			if ((c = realloc(cents, cap * sizeof *c)) == NULL)
				return -1;
			cents = c;
		}
		c = &cents[ncents];
		memset(c, 0, sizeof *c);
		c->lineno = ent.lineno;
		c->user = entry_user(&ent, &u);
		if ((c->name = strdup(ent.name)) == NULL ||
		    (c->text = strdup(ent.text)) == NULL)
			return -1;
		ncents++;
	}
	if (ncents > 0)
		qsort(cents, ncents, sizeof *cents, by_name_line);
	for (i = 1; i < ncents; i++)
		cents[i].dup = strcmp(cents[i].name, cents[i - 1].name) == 0;
	return 0;
}

/*
 * Can an address reach the entry called name?  RCPT refuses a local
 * part that mailbox_name_ok() refuses or that is not clean UTF-8
 * (smtpd.8, INPUT RULES), and expansion skips such a target; one with
 * bytes that are not clean is made `?' by sanitize() and names another.
 */
static int
reachable(const char *name)
{
	return mailbox_name_ok(name) && utf8_clean(name);
}

/* What a target is, to the entry that names it. */
enum target_is {
	IS_OTHER,		/* remote, or nothing smtpd delivers to */
	IS_SELF,		/* the entry's own name: its own mailbox */
	IS_LOCAL		/* another local name */
};

/* One target of entry c: is it something smtpd can deliver to? */
static enum target_is
check_target(struct checked *c, const struct target_text *t)
{
	char name[SMTP_LOCAL_MAX + 1];
	struct checked *to;
	struct user u = { "", "" };	/* only written */
	int r;

	if (t->addr[0] == '\0') {
		problem(c->lineno, "%s: empty target", c->name);
		return IS_OTHER;
	}
	if (t->addr[0] == '|' || t->addr[0] == '/' ||
	    strncasecmp(t->addr, ":include:", 9) == 0) {
		problem(c->lineno, "%s: %s: pipes, files and :include: are "
		    "not delivered by smtpd", c->name, t->addr);
		return IS_OTHER;
	}
	if (!local_part(t->addr, name, sizeof name)) {
		if (conf.forward == NULL)
			problem(c->lineno, "%s: %s is remote and no -F is "
			    "given: RCPT answers 551", c->name, t->addr);
		return IS_OTHER;
	}
	if (strcmp(name, c->name) == 0)
		return IS_SELF;
	if (!mailbox_name_ok(name))	/* before the table, as walk_name */
		problem(c->lineno, "%s: %s: not usable as a mailbox name",
		    c->name, t->addr);
	else if ((to = find_checked(name)) != NULL)
		to->member = 1;
	else if ((r = account(name, &u)) <= 0)
		problem(c->lineno, r == 0 ? "%s: unknown local target %s" :
		    "%s: %s: the system's accounts cannot be asked",
		    c->name, t->addr);
	return IS_LOCAL;
}

/*
 * The targets of c, a list or an alias.  With none, RCPT of it is 550
 * (smtpd.8, RCPT).  A name among its own targets is its own mailbox
 * (aliases(5): `bob: bob, bob@home' keeps a copy, sends one on), and
 * EXPN lists that mailbox with the other members; beside other local
 * targets it makes a list that delivers to a mailbox of the list's own
 * name, which only makes sense when meant.
 */
static void
check_targets(struct checked *c)
{
	struct target_text t;
	const char *p = c->text;
	int n = 0, self = 0, local = 0;

	for (; next_target(&p, &t); n++)
		switch (check_target(c, &t)) {
		case IS_SELF:
			self = 1;
			break;
		case IS_LOCAL:
			local = 1;
			break;
		case IS_OTHER:
			break;
		}
	if (n == 0)
		problem(c->lineno, "%s: no target: RCPT answers 550",
		    c->name);
	else if (self && local)
		warning(c->lineno, "warning: %s: names itself beside other "
		    "local targets: a mailbox %s gets a copy too, and EXPN "
		    "lists it", c->name, c->name);
}

/*
 * The longest chain of table names from c, in the way expansion walks
 * them: a name met again on its own path is a loop.  The walk goes no
 * deeper than expansion would, so it is bounded whatever the table.
 */
static struct checked	*path[MAX_DEPTH + 2];

/* The loop path[i..depth] -> to, on the line of the entry closing it. */
static void
report_loop(size_t i, size_t depth, const struct checked *to)
{
	char text[(MAX_DEPTH + 2) * (SMTP_LOCAL_MAX + 4)] = "";
	size_t n = 0;
	int w;

	for (; i <= depth; i++) {
		w = snprintf(text + n, sizeof text - n, "%s -> ",
		    path[i]->name);
		if (w < 0 || (size_t)w >= sizeof text - n)
			break;	/* never: a path is MAX_DEPTH names at most */
		n += w;
	}
	problem(path[depth]->lineno, "loop: %s%s", text, to->name);
}

static int
chain(struct checked *c, size_t depth)
{
	const char *p = c->text;
	char name[SMTP_LOCAL_MAX + 1];
	struct target_text t;
	struct checked *to;
	size_t i;
	int h, high = 0, cut = 0;

	if (c->state == 2)
		return c->height;
	if (c->user) {
		c->state = 2;	/* a mailbox: no list below */
		return c->height = 0;
	}
	if (depth >= MAX_DEPTH)
		return MAX_DEPTH + 1;
	c->state = 1;
	path[depth] = c;
	while (next_target(&p, &t)) {
		if (!local_part(t.addr, name, sizeof name) ||
		    strcmp(name, c->name) == 0 || !mailbox_name_ok(name))
			continue;	/* walk_name() skips the unsafe */
		if ((to = find_checked(name)) == NULL)
			continue;	/* an account, or unknown */
		if (to->state == 1) {
			for (i = 0; path[i] != to; i++)
				;
			report_loop(i, depth, to);
			continue;
		}
		h = chain(to, depth + 1);
		cut |= h > MAX_DEPTH || to->state == 0;
		if (h > high)
			high = h;
	}
	c->height = high + 1 > MAX_DEPTH + 1 ? MAX_DEPTH + 1 : high + 1;
	c->state = cut ? 0 : 2;	/* a cut walk is not the whole answer */
	return c->height;
}

static void
forget_checked(void)
{
	size_t i;

	for (i = 0; i < ncents; i++) {
		free(cents[i].name);
		free(cents[i].text);
	}
	free(cents);
	cents = NULL;
	ncents = 0;
	nproblems = 0;
	forget_reports();
}

/* Each entry alone; a later one of the same name is never read. */
static void
check_entries(void)
{
	struct checked *c;
	size_t i;

	for (i = 0; i < ncents; i++)	/* cents is NULL with no entry */
		if ((c = &cents[i])->dup)
			problem(c->lineno, "%s: already defined at line %lu; "
			    "this entry is never used", c->name, c[-1].lineno);
		else if (!reachable(c->name))
			problem(c->lineno, "%s: no address can reach this "
			    "entry", c->name);
		else if (!c->user)
			check_targets(c);
}

/*
 * Lists nested deeper than expansion goes (MAX_DEPTH): RCPT of the top
 * one is refused.  Only a top one is named: one that no entry names.
 */
static void
check_depth(void)
{
	struct checked *c;
	size_t i;

	for (i = 0; i < ncents; i++)
		if (!(c = &cents[i])->user && !c->dup && reachable(c->name) &&
		    chain(c, 0) > MAX_DEPTH && !c->member)
			problem(c->lineno, "%s: lists nested more than %d "
			    "deep", c->name, MAX_DEPTH);
}

/* Check the table at path; returns the number of problems reported. */
int
aliases_check(const char *file)
{
	check_path = file;
	if (table_fd == -1)
		return 0;
	if (load_all() == -1) {
		print_reports();
		(void)fprintf(stderr, "%s: out of memory\n", file);
		return nproblems + 1;
	}
	check_entries();
	check_depth();
	print_reports();
	if (find_checked("postmaster") == NULL)
		(void)fprintf(stderr, "%s: warning: no postmaster entry; "
		    "its mail goes to the spool's postmaster mailbox\n", file);
	return nproblems;
}
