/*
 * tls.h: TLS through a UCSPI-TLS wrapper (tls.c): what it offers the
 * dialogue, and the facts of a session's TLS for the log and Received:.
 */
#ifndef TLS_H
#define TLS_H

#include "smtpd.h"

struct tls_facts {
	char	protocol[TLS_FACT_MAX + 1];	/* SSL_PROTOCOL; "" unknown */
	char	cipher[TLS_FACT_MAX + 1];	/* SSL_CIPHER */
};

void	tls_init(int, int);
int	tls_offered(void);
int	tls_up(void);
int	tls_required(void);
int	tls_ready(void);
int	tls_start(void);
const struct tls_facts *tls_facts(void);

#endif
