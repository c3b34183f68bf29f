/*
 * accounts.c: the system's accounts, and which names may be mailboxes.
 *
 * Offers: account_find(), one account by name through getpwnam_r(3),
 * so that every source nsswitch.conf names (files, LDAP, sssd,
 * systemd-userdb) is asked, with the GECOS full name cleaned;
 * account_each(), every account, for VRFY's search by full name; and
 * mailbox_name_ok(), the rule a local part must pass before it names a
 * file in the spool.  It has a file of its own because the table, the
 * dialogue and delivery all ask it and it asks none of them.
 * Relies on: libc's NSS, linked dynamically (a static libc cannot load
 * its modules).  Never: opens a file itself, or writes anywhere.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "client.h"

/*
 * smtpd.8, INPUT RULES: a local part that names a mailbox must stay in
 * the spool: no '/', no leading dot, no control character; and none may
 * end in ".lock", which is another mailbox's dot-lock.
 */
int
mailbox_name_ok(const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (n == 0 || n > ACCOUNT_NAME_MAX || name[0] == '.' ||
	    (n >= 5 && strcmp(name + n - 5, ".lock") == 0))
		return 0;
	for (p = name; *p != '\0'; p++)
		if (*p == '/' || (unsigned char)*p < 32 || *p == 127)
			return 0;
	return 1;
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

/* One passwd entry as an account; 0, or -1 when its name is too long. */
static int
to_account(const struct passwd *pw, struct account *a)
{
	if (strlen(pw->pw_name) >= sizeof a->name)
		return -1;
	(void)snprintf(a->name, sizeof a->name, "%s", pw->pw_name);
	a->uid = pw->pw_uid;
	a->gid = pw->pw_gid;
	gecos_name(a->fullname, sizeof a->fullname, pw);
	return 0;
}

/*
 * getpwnam_r(3) tells "no such account" by a NULL result and 0, or, as
 * POSIX lets it, ENOENT, ESRCH, EBADF or EPERM; anything else is a
 * source that could not be asked (an LDAP server down: TRYAGAIN), which
 * must answer 451, never 550.
 */
int
account_find(const char *name, struct account *a)
{
	/* The last account found, for the life of this process (one
	 * session): the deliverer asks for a mailbox's owner with each
	 * message, and a session mostly writes to the same few. */
	static char last_name[ACCOUNT_NAME_MAX + 1];
	static struct account last;
	char buf[16384];
	struct passwd pw, *r = NULL;
	int e;

	if (last_name[0] != '\0' && strcmp(name, last_name) == 0) {
		*a = last;
		return 1;
	}
	e = getpwnam_r(name, &pw, buf, sizeof buf, &r);
	if (r != NULL && to_account(&pw, a) == 0) {
		size_t n = strlen(name);

		if (n < sizeof last_name) {
			memcpy(last_name, name, n + 1);
			last = *a;
		}
		return 1;
	}
	if (r != NULL)
		return 0;
	if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
		return 0;
	errno = e;
	return -1;
}

/*
 * Every account, to fn until it returns -1.  getpwent(3) walks each
 * source that allows it (an LDAP directory may be large: -V stops VRFY
 * from asking).  Returns 0, or -1 when fn stopped.
 */
int
account_each(account_fn fn, void *arg)
{
	struct passwd *pw;
	struct account a;
	int r = 0;

	setpwent();
	while (r == 0 && (pw = getpwent()) != NULL)
		if (to_account(pw, &a) == 0)
			r = fn(&a, arg);
	endpwent();
	return r;
}
