/*
 * accounts.h: the system's accounts, as getpwnam(3) and NSS know them
 * (accounts.c), and the rule for a name that may become a mailbox.
 */
#ifndef ACCOUNTS_H
#define ACCOUNTS_H

#include <sys/types.h>

#define ACCOUNT_NAME_MAX	64	/* RFC 5321 4.5.3.1.1, a local part */
#define ACCOUNT_FULL_MAX	128	/* a full name kept from GECOS */

/* What a lookup tells of one account. */
struct account {
	char	 name[ACCOUNT_NAME_MAX + 1];
	uid_t	 uid;
	gid_t	 gid;
	char	 fullname[ACCOUNT_FULL_MAX + 1];	/* GECOS, cleaned */
};

/* 1: found, *a filled; 0: no such account; -1: cannot be told now. */
int	account_find(const char *, struct account *);
typedef int	(*account_fn)(const struct account *, void *);
int	account_each(account_fn, void *);
int	mailbox_name_ok(const char *);

#endif
