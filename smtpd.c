/*
 * smtpd.c: start-up (smtpd.8, DESCRIPTION and ENVIRONMENT).
 *
 * One process serves one connection, handed over as standard input and
 * output by inetd, systemd, tcpserver or a terminal.  Offers main(): the
 * command line and the environment read into `conf' once; what they name
 * checked (the spool, the utmp file, the table, the -U account, the -F
 * and -X programs; with -C all of it and each entry of the table); then
 * the session split in two (priv.c) and the dialogue run (session.c).
 * Relies on each module to open what it needs (aliases_open, tls_init).
 * Never: reads the client's bytes, or writes to the client but through
 * session_refuse(), the 421 that a failed start-up owes it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <paths.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "accounts.h"
#include "aliases.h"
#include "client.h"
#include "delivery.h"
#include "filter.h"
#include "priv.h"
#include "session.h"
#include "smtpd.h"
#include "tls.h"

#ifndef _PATH_UTMP
#define _PATH_UTMP	"/var/run/utmp"
#endif

#define DEFAULT_TABLE	"/etc/smtpd/aliases"
#define DEFAULT_SPOOL	"/var/mail"
#define DEFAULT_SIZE	10485760
#define DEFAULT_RCPT	100
#define DEFAULT_TIMEOUT	300
#define GREET_PAUSE_MAX	300	/* -g: seconds, at most */
#define EX_USAGE	64
#define OPTIONS		"eTVEvCSRn:d:a:m:s:r:t:F:u:b:U:X:g:"

struct config conf;

static char	 hostname[SMTP_DOMAIN_MAX + 1];
static int	 checking;		/* -C: report problems, serve nothing */
static int	 nproblems;

static void	default_names(void);

static void
usage(void)
{
	log_msg(LOG_ERR, "usage: smtpd [-eTVEvSR] [-C] [-n name] [-d domain]... "
	    "[-a table] [-m spooldir] [-s maxbytes] [-r maxrcpts] "
	    "[-t seconds] [-F program] [-X filter] [-g seconds] "
	    "[-u utmpfile] [-b mboxrd|mboxo] [-U user]");
	default_names();	/* the refusal names this host */
	if (!checking)
		session_refuse();	/* -C serves nobody */
	exit(EX_USAGE);
}

/* A start-up problem: logged, and a client is not left hanging. */
static NORETURN void
fail_config(const char *fmt, const char *arg)
{
	log_msg(LOG_ERR, fmt, arg);
	default_names();
	if (!checking)
		session_refuse();
	exit(1);
}

/* With -C, one line of the report; otherwise the end. */
static void
config_problem(const char *fmt, const char *arg)
{
	if (!checking)
		fail_config(fmt, arg);
	log_msg(LOG_ERR, fmt, arg);
	nproblems++;
}

/* The number of option -opt, from min to max, or a configuration error. */
static long long
number(int opt, const char *arg, long long min, long long max)
{
	char *end, why[SMTP_LINE_MAX];
	long long n;

	errno = 0;
	n = strtoll(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 ||
	    n < min || n > max) {
		(void)snprintf(why, sizeof why, "-%c %%s: not a number from "
		    "%lld to %lld", opt, min, max);
		fail_config(why, arg);
	}
	return n;
}

static void
add_domain(const char *d)
{
	if (conf.ndomains == MAX_DOMAINS)
		fail_config("too many -d domains (at most 32): %s", d);
	if (*d == '\0' || strlen(d) > SMTP_DOMAIN_MAX)
		fail_config("bad domain: '%s'", d);
	conf.domains[conf.ndomains++] = d;
}

/* -b: mboxrd, the default, or mboxo for sites whose readers undo no
 * quoting (smtpd.8, MAILBOX FORMAT). */
static void
mailbox_format(const char *arg)
{
	if (strcmp(arg, "mboxo") == 0)
		conf.mboxo = 1;
	else if (strcmp(arg, "mboxrd") == 0)
		conf.mboxo = 0;
	else
		fail_config("-b %s: mboxrd or mboxo", arg);
}

/*
 * Before the options: the defaults, and -C, which must be known first
 * because it says where the reason for a bad option goes.
 */
static void
option_defaults(int argc, char **argv)
{
	int c;

	conf.table = DEFAULT_TABLE;
	conf.spool = DEFAULT_SPOOL;
	conf.maxsize = DEFAULT_SIZE;
	conf.maxrcpt = DEFAULT_RCPT;
	conf.timeout = DEFAULT_TIMEOUT;
	opterr = 0;	/* getopt's messages would reach the client */
	while ((c = getopt(argc, argv, OPTIONS)) != -1)
		if (c == 'C')
			checking = conf.log_stderr = 1;
	optind = 1;
}

static void
parse_options(int argc, char **argv)
{
	int c;

	option_defaults(argc, argv);
	while ((c = getopt(argc, argv, OPTIONS)) != -1) {
		switch (c) {
		case 'e': conf.log_stderr = 1; break;
		case 'T': conf.table_only = 1; break;
		case 'V': conf.no_vrfy = 1; break;
		case 'E': conf.no_expn = 1; break;
		case 'S': conf.implicit_tls = 1; break;
		case 'R': conf.require_tls = 1; break;
		case 'v':
			printf("smtpd %s\n", SMTPD_VERSION);
			exit(fflush(stdout) == 0 ? 0 : 1);
		case 'C': break;	/* seen above */
		case 'n': conf.name = optarg; break;
		case 'd': add_domain(optarg); break;
		case 'a': conf.table = optarg; conf.table_given = 1; break;
		case 'm': conf.spool = optarg; break;
		case 's': conf.maxsize = number(c, optarg, 1, LLONG_MAX / 2);
		    break;
		case 'r': conf.maxrcpt = number(c, optarg, 1, MAX_TARGETS); break;
		case 't': conf.timeout = number(c, optarg, 1, 86400); break;
		case 'F': conf.forward = optarg; break;
		case 'X': conf.filter = optarg; break;
		case 'g': conf.greet_pause = number(c, optarg, 0, GREET_PAUSE_MAX);
		    break;
		case 'u': conf.utmp = optarg; break;
		case 'b': mailbox_format(optarg); break;
		case 'U': conf.user = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (conf.forward != NULL &&
	    program_split(&conf.forward_cmd, conf.forward) == -1)
		config_problem("-F %s: no program, or too many words",
		    conf.forward);
	if (conf.filter != NULL &&
	    program_split(&conf.filter_cmd, conf.filter) == -1)
		config_problem("-X %s: no program, or too many words",
		    conf.filter);
}

static void
default_names(void)
{
	if (conf.name == NULL) {
		if (gethostname(hostname, sizeof hostname - 1) == -1 ||
		    hostname[0] == '\0')
			(void)snprintf(hostname, sizeof hostname, "localhost");
		conf.name = hostname;
	}
	if (conf.ndomains == 0) {
		conf.domains[conf.ndomains++] = conf.name;
		if (strcmp(conf.name, "localhost") != 0)
			conf.domains[conf.ndomains++] = "localhost";
	}
}

/* Keep what `keep' allows, '?' for the rest; bytes from outside. */
static void
copy_clean(char *dst, size_t size, const char *src, const char *keep)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = strchr(keep, src[i]) != NULL ? src[i] : '?';
	dst[i] = '\0';
}

#define HOST_CHARS	"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"
#define IP_CHARS	"0123456789abcdefABCDEF.:"

/*
 * smtpd.8, ENVIRONMENT: an IPv4 client reached through an IPv6 socket
 * (::ffff:192.0.2.7, as xinetd and systemd hand it on a dual-stack
 * socket) is the IPv4 address it is, in the log and in Received:, so
 * that fail2ban bans the address the client really has.
 */
static void
unmap_ipv4(char *ip, size_t size)
{
	struct in6_addr a6;

	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, &a6) != 1 ||
	    !IN6_IS_ADDR_V4MAPPED(&a6))
		return;
	if (inet_ntop(AF_INET, &a6.s6_addr[12], ip, size) == NULL)
		ip[0] = '\0';
}

/*
 * smtpd.8, ENVIRONMENT: TCPREMOTEIP (ucspi), else REMOTE_ADDR (systemd),
 * else the socket itself (inetd), else a local session.  The host name
 * is whatever tcpserver found in the DNS: any bytes, so cleaned.
 */
static void
identify_client(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	const char *ip, *host;
	void *a;

	conf.relay_client = getenv("RELAYCLIENT") != NULL;
	if ((host = getenv("TCPREMOTEHOST")) != NULL)
		copy_clean(conf.client_host, sizeof conf.client_host, host,
		    HOST_CHARS);
	if ((ip = getenv("TCPREMOTEIP")) != NULL ||
	    (ip = getenv("REMOTE_ADDR")) != NULL)
		copy_clean(conf.client_ip, sizeof conf.client_ip, ip, IP_CHARS);
	else if (getpeername(0, (struct sockaddr *)&ss, &len) == -1)
		return;
	else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		a = ss.ss_family == AF_INET ?
		    (void *)&((struct sockaddr_in *)&ss)->sin_addr :
		    (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		if (inet_ntop(ss.ss_family, a, conf.client_ip,
		    sizeof conf.client_ip) == NULL)
			conf.client_ip[0] = '\0';
	}
	unmap_ipv4(conf.client_ip, sizeof conf.client_ip);
}

/*
 * smtpd.8, PRIVILEGE SEPARATION: started as root, the dialogue runs as
 * the -U account (nobody unless named), which may not be root; not
 * started as root, smtpd changes no account, and -U is a mistake.
 */
static void
check_user(void)
{
	const char *name = conf.user != NULL ? conf.user : "nobody";
	struct account a;

	if (geteuid() != 0) {
		if (conf.user != NULL)
			config_problem("-U %s: smtpd was not started as root "
			    "and changes no account", conf.user);
		return;
	}
	if (account_find(name, &a) != 1)
		config_problem("-U %s: no such account", name);
	else if (a.uid == 0)
		config_problem("-U %s: the dialogue never runs as root", name);
	else {
		conf.drop = 1;
		conf.user_uid = a.uid;
		conf.user_gid = a.gid;
	}
}

static void
check_spool(void)
{
	struct stat st;

	if (stat(conf.spool, &st) == -1 || !S_ISDIR(st.st_mode))
		config_problem("mail spool %s is not a directory", conf.spool);
}

/*
 * smtpd.8, Terminal delivery: a utmp file named with -u must be there; the
 * system's may be missing (a machine nobody logs in to), and then nobody is
 * at a terminal.
 */
static void
check_utmp(void)
{
	if (conf.utmp == NULL)
		conf.utmp = _PATH_UTMP;
	else if (access(conf.utmp, R_OK) == -1)
		config_problem("cannot read utmp file %s", conf.utmp);
}

/*
 * -F's or -X's program as execvp() will find it: a path, or a name
 * along PATH.  Only -C looks: at run time a missing program fails its
 * transactions (451), and local mail still flows.
 */
static int
runnable(const char *prog)
{
	char dir[PATH_MAX];
	const char *p, *end;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if ((p = getenv("PATH")) == NULL)
		p = "/usr/bin:/bin";
	for (; ; p = end + 1) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (snprintf(dir, sizeof dir, "%.*s/%s", (int)(end - p), p,
		    prog) < (int)sizeof dir && access(dir, X_OK) == 0)
			return 1;
		if (*end == '\0')
			return 0;
	}
}

/* -C: one problem of the spool, in words of its own. */
static void PRINTFLIKE(1, 2)
spool_problem(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	config_problem("%s", line);
}

/*
 * -C (smtpd.8, MAILBOX FORMAT): a mailbox smtpd could not write, or one
 * it would refuse as someone else's, answers 451 for ever; so does a
 * spool it cannot write in.
 */
static void
check_mailboxes(DIR *d)
{
	struct dirent *e;
	struct account a;
	struct stat st;
	size_t n;

	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (e->d_name[0] == '.' || (n > 5 &&
		    strcmp(e->d_name + n - 5, ".lock") == 0) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (faccessat(dirfd(d), e->d_name, R_OK | W_OK, AT_EACCESS) == -1)
			spool_problem("mailbox %s/%s: uid %lu cannot write it: "
			    "its deliveries answer 451", conf.spool, e->d_name,
			    (unsigned long)geteuid());
		else if (st.st_uid != geteuid() &&
		    (account_find(e->d_name, &a) != 1 || a.uid != st.st_uid))
			spool_problem("mailbox %s/%s: owned by uid %lu, neither "
			    "its recipient's account nor smtpd's: refused (451)",
			    conf.spool, e->d_name, (unsigned long)st.st_uid);
	}
}

static void
check_spool_rights(void)
{
	struct stat st;
	DIR *d;

	if (stat(conf.spool, &st) == -1 || !S_ISDIR(st.st_mode))
		return;		/* check_spool() said so */
	if (access(conf.spool, W_OK | X_OK) == -1)
		spool_problem("mail spool %s: uid %lu cannot make files in it: "
		    "every delivery answers 451", conf.spool,
		    (unsigned long)geteuid());
	if (geteuid() != 0 && !conf.table_only)
		spool_problem("not run as root: no mailbox can be made for a "
		    "system account other than uid %lu, whose mail answers 451 "
		    "until its mailbox exists (run smtpd as root)",
		    (unsigned long)geteuid());
	if ((d = opendir(conf.spool)) != NULL) {
		check_mailboxes(d);
		(void)closedir(d);
	}
}

/* smtpd.8, -C: what start-up found, then the table; exit 0 when clean. */
static NORETURN void
check_all(void)
{
	const char *fwd = conf.forward_cmd.argv[0];
	const char *flt = conf.filter_cmd.argv[0];

	if (fwd != NULL && !runnable(fwd))
		config_problem("-F: cannot run %s", fwd);
	if (flt != NULL && !runnable(flt))
		config_problem("-X: cannot run %s", flt);
	check_spool_rights();
	nproblems += aliases_check(conf.table);
	exit(nproblems == 0 ? 0 : 1);
}

int
main(int argc, char **argv)
{
	conf.tty = isatty(0);
	conf.log_stderr = conf.tty;
	openlog("smtpd", LOG_PID, LOG_MAIL);	/* connects at the first line */
	parse_options(argc, argv);
	default_names();
	identify_client();
	tls_init(conf.implicit_tls, conf.require_tls);
	check_spool();
	check_utmp();
	if (aliases_open(conf.table, conf.table_given) == -1)
		config_problem("cannot read table %s", conf.table);
	check_user();
	if (checking)
		check_all();
	if (priv_split() == -1) {	/* returns in the dialogue's process */
		session_refuse();
		exit(1);
	}
	client_open(0, 1);
	return session_run();
}
