/*
 * common.h: what the fuzzing harnesses share.  Each harness is linked
 * with smtpd's objects (all but smtpd.o, whose main() libFuzzer
 * replaces) and sets `conf' the way smtpd's start-up would.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "../../aliases.h"
#include "../../client.h"
#include "../../delivery.h"
#include "../../message.h"
#include "../../session.h"
#include "../../smtpd.h"

/* A directory of the harness's own under $TMPDIR, made once. */
const char	*fuzz_dir(void);

/* A file in fuzz_dir() holding exactly data[0..size), open for reading. */
int	fuzz_file(const char *name, const uint8_t *data, size_t size);

/* conf as `smtpd -e -n mx.example -d example.org' would set it. */
void	fuzz_conf(void);

#endif
