# smtpd: a tiny SMTP receiver.  make; make check; make run.
PREFIX	= /usr/local
MANDIR	= $(PREFIX)/share/man
CC	= cc
CFLAGS	= -O2 -g
STRICT	= -std=c99 -D_XOPEN_SOURCE=700 -D_DEFAULT_SOURCE -Wall -Wextra
OBJS	= smtpd.o session.o message.o delivery.o aliases.o
RUNDIR	= run

all: smtpd

smtpd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS)

.c.o:
	$(CC) $(STRICT) $(CPPFLAGS) $(CFLAGS) -c $<

$(OBJS): session.h

check: smtpd
	@command -v bats >/dev/null || { echo "make check needs bats: apt-get install bats" >&2; exit 1; }
	bats tests

# A session at the terminal: the example table, a spool under the build
# tree, the log on standard error.
run: smtpd
	@mkdir -p $(RUNDIR)/spool
	@echo "smtpd: mail lands in $(RUNDIR)/spool; type QUIT to end." >&2
	./smtpd -e -n localhost -a examples/aliases -m $(RUNDIR)/spool

install: smtpd
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(MANDIR)/man8
	install -m 755 smtpd $(DESTDIR)$(PREFIX)/sbin/
	install -m 644 smtpd.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -f smtpd $(OBJS)
	rm -rf $(RUNDIR)

.PHONY: all check run install clean
