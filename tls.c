/*
 * tls.c: TLS through a UCSPI-TLS wrapper (smtpd.8, TLS).
 *
 * smtpd holds no key and does no cryptography: a wrapper (s6-ucspitlsd,
 * sslserver -n) owns the TLS stack and hands smtpd three descriptors, a
 * control socket and the two ends to use once TLS is up.  It has a room
 * of its own because it is the one place that speaks to the wrapper.
 * Offers: tls_init(), which reads the descriptors from the environment;
 * whether STARTTLS may be offered or is required; tls_start(), once the
 * client asked and has been told 220, which starts TLS and moves the
 * session over; the protocol and cipher for Received:.
 * Relies on: client.c for the switch of descriptors (client_open drops
 * whatever the client sent in clear).  Never: reads the network, or
 * believes a fact of the wrapper's before cleaning it (TLS_FACT_CHARS).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "smtpd.h"
#include "tls.h"

static int	 ctl_fd = -1, read_fd = -1, write_fd = -1;
static int	 up;		/* TLS is up: implicit, or after STARTTLS */
static int	 no_starttls;	/* UCSPITLS=- */
static int	 required;	/* -R, or UCSPITLS=! */
static struct tls_facts facts;

static void
set_fact(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = strchr(TLS_FACT_CHARS, src[i]) != NULL ? src[i] : '?';
	dst[i] = '\0';
}

/* TLS is up: the protocol is named, if only as "TLS" (stunnel, -S). */
static void
fact_default(void)
{
	if (facts.protocol[0] == '\0')
		(void)snprintf(facts.protocol, sizeof facts.protocol, "TLS");
}

/* A descriptor the wrapper names in variable `name', if it is open. */
static int
env_fd(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (*end != '\0' || errno != 0 || n > 1024 ||
	    fcntl((int)n, F_SETFD, FD_CLOEXEC) == -1)
		return -1;	/* not open: no wrapper to speak to */
	return (int)n;
}

void
tls_init(int implicit, int require)
{
	const char *u = getenv("UCSPITLS");

	no_starttls = u != NULL && *u == '-';
	required = require || (u != NULL && *u == '!');
	/* sslserver without -n sets the descriptors although it did the
	 * TLS itself: SSL_PROTOCOL says TLS is up already */
	if (implicit || getenv("SSL_PROTOCOL") != NULL) {
		up = 1;
		set_fact(facts.protocol, sizeof facts.protocol,
		    getenv("SSL_PROTOCOL") != NULL ? getenv("SSL_PROTOCOL") : "");
		set_fact(facts.cipher, sizeof facts.cipher,
		    getenv("SSL_CIPHER") != NULL ? getenv("SSL_CIPHER") : "");
		fact_default();
		return;
	}
	ctl_fd = env_fd("SSLCTLFD");
	read_fd = env_fd("SSLREADFD");
	write_fd = env_fd("SSLWRITEFD");
	if (ctl_fd == -1 || read_fd == -1 || write_fd == -1)
		ctl_fd = read_fd = write_fd = -1;
}

int
tls_offered(void)
{
	return !up && !no_starttls && ctl_fd != -1;
}

int
tls_up(void)
{
	return up;
}

int
tls_required(void)
{
	return required && !up;
}

const struct tls_facts *
tls_facts(void)
{
	return up ? &facts : NULL;
}

/* Whether the control socket is still there to ask: 454 if not. */
int
tls_ready(void)
{
	struct pollfd p = { ctl_fd, 0, 0 };

	return ctl_fd != -1 && poll(&p, 1, 0) == 0;
}

/*
 * The wrapper's answer to `Y': NAME=value strings each ended by a NUL,
 * the whole by an empty one; a NAME without `=' is a fact it lacks.  It
 * closes the socket with nothing written if the handshake failed.
 */
static int
read_facts(const struct timespec *until)
{
	char buf[4096] = "", *p, *v;
	size_t len = 0;
	ssize_t n;

	for (;;) {
		if (len >= 2 && buf[len - 1] == '\0' && buf[len - 2] == '\0')
			break;
		if (len == 1 && buf[0] == '\0')
			break;		/* no fact at all */
		if (len == sizeof buf ||
		    fd_wait(ctl_fd, POLLIN, until, 0) != 0)
			return -1;
		if ((n = read(ctl_fd, buf + len, sizeof buf - len)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			return -1;	/* the handshake failed */
		len += (size_t)n;
	}
	for (p = buf; *p != '\0'; p += strlen(p) + 1) {
		if ((v = strchr(p, '=')) == NULL)
			continue;
		*v++ = '\0';
		if (strcmp(p, "SSL_PROTOCOL") == 0)
			set_fact(facts.protocol, sizeof facts.protocol, v);
		else if (strcmp(p, "SSL_CIPHER") == 0)
			set_fact(facts.cipher, sizeof facts.cipher, v);
		p = v;		/* on past the value */
	}
	return 0;
}

/*
 * Start TLS, the 220 sent and flushed: `Y' to the wrapper, the
 * handshake's facts read back within -t, and the session moved to the
 * wrapper's descriptors with empty buffers, so that nothing the client
 * sent in clear after STARTTLS is ever read (RFC 3207 4.2).  -1: the
 * handshake failed, and the session cannot go on.
 */
int
tls_start(void)
{
	struct timespec until;
	ssize_t n;

	deadline_set(&until, conf.timeout);
	while ((n = write(ctl_fd, "Y", 1)) == -1 && errno == EINTR)
		;
	if (n != 1 || read_facts(&until) == -1) {
		(void)close(ctl_fd);
		ctl_fd = -1;
		return -1;
	}
	(void)close(ctl_fd);
	ctl_fd = -1;
	up = 1;
	fact_default();
	client_open(read_fd, write_fd);
	return 0;
}
