/*
 * aliases.h: the alias/user table (aliases.c): lookups, expansion into
 * mailboxes and forwards, the full-name search, and smtpd -C's check.
 */
#ifndef ALIASES_H
#define ALIASES_H

#include <stddef.h>
#include "smtpd.h"

struct member {			/* one place a table name leads to */
	enum target_kind	kind;	/* TARGET_MAILBOX or TARGET_FORWARD */
	char		name[SMTP_PATH_MAX + 1];
	char		fullname[FULLNAME_MAX + 1];
};
typedef int	(*alias_member_fn)(const struct member *, void *);
/* EXPAND_UNSURE: not in the table, and the accounts cannot be asked now. */
enum expand { EXPAND_NONE, EXPAND_USER, EXPAND_LIST, EXPAND_UNSURE };
#define EXPAND_LOOP	0x1	/* a name met again on its own path */
#define EXPAND_UNKNOWN	0x2	/* a local target that is nobody */
#define EXPAND_SKIPPED	0x4	/* a target smtpd does not deliver to */
#define EXPAND_FULL	0x8	/* too many members, or nested too deep */
#define EXPAND_TRY_LATER 0x10	/* a member whose account cannot be asked */
enum expand	aliases_expand(const char *, struct user *, alias_member_fn,
		    void *, unsigned *);
int	aliases_check(const char *);
int	aliases_open(const char *, int);
void	aliases_close(void);
size_t	aliases_match_fullname(const char *, struct user *, size_t);
int	is_local_domain(const char *);

#endif
