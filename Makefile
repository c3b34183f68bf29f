# smtpd: a tiny SMTP receiver.  make; make check; make run.
PREFIX	= /usr/local
MANDIR	= $(PREFIX)/share/man
CC	= cc
CFLAGS	= -O2 -g
STRICT	= -std=c99 -D_XOPEN_SOURCE=700 -D_DEFAULT_SOURCE -Wall -Wextra
# libc is linked dynamically, as distributions expect: a libc security
# update reaches smtpd without a rebuild, getpwnam(3) can load the NSS
# modules (LDAP, sssd, systemd-userdb), and valgrind checks the binary
# that is installed.  Position-independent, for ASLR.
LINK	= -pie
PIE	= -fPIE
SRCS	= smtpd.c client.c session.c message.c delivery.c aliases.c accounts.c \
	  priv.c tls.c filter.c
OBJS	= $(SRCS:.c=.o)
HDRS	= smtpd.h client.h session.h message.h delivery.h aliases.h \
	  accounts.h priv.h tls.h filter.h
RUNDIR	= run

all: smtpd

smtpd: $(OBJS)
	$(CC) $(LINK) $(LDFLAGS) -o $@ $(OBJS)

.c.o:
	$(CC) $(STRICT) $(PIE) $(CPPFLAGS) $(CFLAGS) -c $<

# Every object is rebuilt when a header, this file, or a variable given
# on make's command line (CC=clang, CFLAGS=...) changes: $(FLAGS) holds
# the commands' flags and is rewritten only when they differ.
FLAGS	= $(RUNDIR)/flags
$(OBJS): $(HDRS) Makefile $(FLAGS)
$(FLAGS): FORCE
	@mkdir -p $(RUNDIR)
	@echo '$(CC) $(STRICT) $(PIE) $(CPPFLAGS) $(CFLAGS) $(LINK) $(LDFLAGS)' \
	    >$@.new && { cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@; }
FORCE:

# The suite (tests/), against the smtpd just built; the tests tagged slow
# (they wait out a real timer, or load the machine for seconds) are left
# to make check-slow, which CI runs as well.  The test build
# (run/test/smtpd, -DSMTPD_TEST_WAITS) is smtpd with its fixed waits
# settable from the environment (smtpd.8, ENVIRONMENT), for the few tests
# that would sit out a real minute.
TESTBIN	= $(RUNDIR)/test/smtpd
check: smtpd $(TESTBIN) $(RUNDIR)/priv-driver
	@command -v bats >/dev/null || { echo "make check needs bats: apt-get install bats" >&2; exit 1; }
	bats --filter-tags '!slow' tests

check-slow: smtpd $(TESTBIN) $(RUNDIR)/priv-driver
	@command -v bats >/dev/null || { echo "make check-slow needs bats: apt-get install bats" >&2; exit 1; }
	bats --filter-tags slow tests

$(TESTBIN): $(SRCS) $(HDRS) Makefile $(FLAGS)
	@mkdir -p $(RUNDIR)/test
	$(CC) $(STRICT) $(PIE) -DSMTPD_TEST_WAITS $(CPPFLAGS) $(CFLAGS) \
	    $(LINK) $(LDFLAGS) -o $@ $(SRCS)

# A session at the terminal: the example table, a spool under the build
# tree, the log on standard error.
run: smtpd
	@mkdir -p $(RUNDIR)/spool
	@echo "smtpd: mail lands in $(RUNDIR)/spool; type QUIT to end." >&2
	./smtpd -e -n localhost -a examples/aliases -m $(RUNDIR)/spool

# The benchmark (bench/run): smtpd beside a minimal reference under
# tcpserver; results in bench/results.md.  make bench ROUNDS=1 is quick.
bench: smtpd
	CC="$(CC)" bench/run $(ROUNDS:%=--rounds %)

install: smtpd
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(MANDIR)/man8
	install -m 755 smtpd $(DESTDIR)$(PREFIX)/sbin/
	install -m 644 smtpd.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -f smtpd $(OBJS)
	rm -f bench/load bench/ref bench/peakrss bench/handover
	rm -rf $(RUNDIR)

# Hardening (tests/fuzz/README): libFuzzer harnesses, each run for
# FUZZ_TIME seconds from the committed seeds; and the whole suite against
# a build with AddressSanitizer and UndefinedBehaviorSanitizer, slow tests
# too, but for those tagged tools (they try examples/ with other programs:
# SpamAssassin, the TLS wrappers, over code paths the rest of the suite
# runs too).
FUZZ_CC		= clang
FUZZ_FLAGS	= -g -O1 -fsanitize=fuzzer,address,undefined \
		  -fno-sanitize-recover=all
FUZZ_TIME	= 60
FUZZERS		= session data table request
LIBSRCS		= client.c session.c message.c delivery.c aliases.c accounts.c \
		  priv.c tls.c filter.c
SAN_FLAGS	= -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
		  -fno-omit-frame-pointer

# The deliverer driven with hostile records (tests/privrecords.bats).
$(RUNDIR)/priv-driver: tests/priv-driver.c $(LIBSRCS) $(HDRS) Makefile $(FLAGS)
	@mkdir -p $(RUNDIR)
	$(CC) $(STRICT) $(CFLAGS) -o $@ tests/priv-driver.c $(LIBSRCS)

fuzz-build: $(LIBSRCS) $(HDRS) tests/fuzz/*.c tests/fuzz/common.h
	@mkdir -p $(RUNDIR)/fuzz
	for f in $(FUZZERS); do \
		$(FUZZ_CC) $(STRICT) $(FUZZ_FLAGS) \
		    -o $(RUNDIR)/fuzz/$$f \
		    tests/fuzz/fuzz_$$f.c tests/fuzz/common.c $(LIBSRCS) \
		    || exit 1; \
	done

fuzz: fuzz-build
	for f in $(FUZZERS); do \
		mkdir -p $(RUNDIR)/fuzz/corpus-$$f && \
		TMPDIR=$${TMPDIR:-/tmp} $(RUNDIR)/fuzz/$$f \
		    -max_total_time=$(FUZZ_TIME) -close_fd_mask=3 \
		    -dict=tests/fuzz/smtp.dict -timeout=10 \
		    -artifact_prefix=$(RUNDIR)/fuzz/$$f- \
		    $(RUNDIR)/fuzz/corpus-$$f tests/fuzz/corpus/$$f \
		    || exit 1; \
	done

sanitize:
	@mkdir -p $(RUNDIR)/sanitize
	$(CC) $(STRICT) $(SAN_FLAGS) -DSMTPD_TEST_WAITS \
	    -o $(RUNDIR)/sanitize/smtpd smtpd.c $(LIBSRCS)
	@command -v bats >/dev/null || { echo "make sanitize needs bats: apt-get install bats" >&2; exit 1; }
	SMTPD_BIN=$$PWD/$(RUNDIR)/sanitize/smtpd \
	    SMTPD_TEST_BIN=$$PWD/$(RUNDIR)/sanitize/smtpd \
	    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 bats --filter-tags '!tools' tests

# memcheck on the very binary that make builds and installs.
valgrind: smtpd
	tests/valgrind.sh ./smtpd

# Static analysis; .clang-tidy lists the checks and why some are off.
lint:
	cppcheck --quiet --error-exitcode=1 --std=c99 \
	    --enable=warning,portability,performance \
	    -D_XOPEN_SOURCE=700 *.c tests/fuzz/*.c tests/priv-driver.c
	clang-tidy --quiet *.c tests/fuzz/*.c tests/priv-driver.c -- $(STRICT)

.PHONY: all check check-slow run bench install clean fuzz fuzz-build sanitize valgrind lint FORCE
