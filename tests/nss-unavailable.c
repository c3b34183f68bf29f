/*
 * nss-unavailable.c: an NSS module for the tests (helpers.bash,
 * accounts_unavailable), built as libnss_smtpdtest.so.2.  Named in
 * nsswitch.conf after `files', it answers every name the file lacks as a
 * source that cannot be reached (an LDAP server down): smtpd must then
 * say 451, never 550.
 */
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <stddef.h>

enum nss_status	_nss_smtpdtest_getpwnam_r(const char *, struct passwd *,
		    char *, size_t, int *);

enum nss_status
_nss_smtpdtest_getpwnam_r(const char *name, struct passwd *pw, char *buf,
    size_t len, int *errnop)
{
	(void)name;
	(void)pw;
	(void)buf;
	(void)len;
	*errnop = EHOSTUNREACH;
	return NSS_STATUS_UNAVAIL;
}
