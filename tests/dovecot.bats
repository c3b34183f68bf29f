#!/usr/bin/env bats
# smtpd and Debian's Dovecot on one mbox spool (smtpd.8, LOCKING): both
# lock a mailbox the way Debian Policy 11.6 says, fcntl() first, then
# the dot-lock, and smtpd never waits for one lock while holding another,
# so that a Dovecot holding its fcntl() lock and waiting for the dot-lock
# is never deadlocked.  Each test starts a private Dovecot (dovecot-core,
# dovecot-imapd) on 127.0.0.1, driven through IMAP (RFC 3501) by
# dovecot-imap.py and read back with doveadm; it needs root, procmail's
# lockfile and python3.  The last lock test needs no Dovecot.
load helpers

HELPER="$BATS_TEST_DIRNAME/dovecot-imap.py"
PASSWORD=secret

# common_setup, then dana, the table user of the Dovecot tests.
setup() {
	common_setup
	TOP=
	DC="$BATS_TEST_TMPDIR/dovecot"
	printf '%s\n' "dana:	Dana <dana>" >>"$TABLE"
	: >"$BATS_TEST_TMPDIR/pids"
}

teardown() {
	stop_started 100	# a moment for Dovecot to stop its processes
	[ -z "$TOP" ] || rm -rf "$TOP"
}

# to_dana SUBJECT [BODY LINE...]: a session's input, one message to dana.
to_dana() {
	local subject=$1
	shift
	printf '%s\r\n' "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<dana>" DATA "Subject: $subject" "" "${@:-Hello.}" . QUIT
}

# dana's mailbox, empty, as Debian's spool has mailboxes: group mail,
# mode 0660.  Its owner is root, the account smtpd delivers as here,
# since dana has no system account (smtpd.8: an existing mailbox is the
# recipient's or smtpd's); Dovecot, as user mail, writes it as its group.
mailbox() {
	: >"$SPOOL/dana"
	chgrp mail "$SPOOL/dana"
	chmod 660 "$SPOOL/dana"
}

# Whether some process holds an fcntl() write lock on file $1 (no lock
# waiting for one: those lines of /proc/locks have `->' in field 2).
fcntl_held() {
	local ino
	ino=$(stat -c %i "$1") || return 1
	awk -v ino="$ino" '$2 == "POSIX" && $4 == "WRITE" &&
	    $6 ~ (":" ino "$") { found = 1 } END { exit !found }' /proc/locks
}

# The spool and dana's home for a private Dovecot, or the test is
# skipped.  Dovecot reads and writes mail as a user that is not root (it
# refuses root: "Mail access not allowed for root"), here the system
# account mail, so the two are under a directory every account may
# reach (the test's own is mode 0700), and the spool is Debian's,
# root:mail 2775, so that Dovecot can make its dot-locks there.
dovecot_spool() {
	[ "$(id -u)" = 0 ] || skip "a private Dovecot that reads mail as user mail needs root"
	command -v dovecot >/dev/null || skip "no dovecot (dovecot-core, dovecot-imapd)"
	command -v doveadm >/dev/null || skip "no doveadm (dovecot-core)"
	[ -x /usr/lib/dovecot/imap ] || skip "no Dovecot IMAP server (dovecot-imapd)"
	command -v lockfile >/dev/null || skip "no lockfile (procmail)"
	MAIL_UID=$(id -u mail 2>/dev/null) || skip "no system account mail"
	MAIL_GID=$(id -g mail)
	TOP=$(mktemp -d /tmp/smtpd-dovecot.XXXXXX)
	chmod 755 "$TOP"
	SPOOL="$TOP/spool"
	mkdir "$SPOOL" "$TOP/home" "$TOP/home/dana"
	chgrp mail "$SPOOL"
	chmod 2775 "$SPOOL"
	chmod 755 "$TOP/home" "$TOP/home/dana"
	chown mail:mail "$TOP/home/dana"
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
}

# A private Dovecot on a free port of 127.0.0.1 ($PORT), its own
# configuration ($DC/dovecot.conf), run for 300 seconds at most.
start_dovecot() {
	mkdir -p "$DC/run" "$DC/state"
	PORT=$(free_port)
	# passwd-file: user:password:uid:gid:gecos:home:shell
	printf 'dana:{PLAIN}%s:%s:%s::%s::\n' "$PASSWORD" "$MAIL_UID" \
	    "$MAIL_GID" "$TOP/home/dana" >"$DC/users"
	cat >"$DC/dovecot.conf" <<-CONF
	# Nothing from /etc/dovecot: a private instance, IMAP alone.
	protocols = imap
	listen = 127.0.0.1
	# Its sockets, state and log in the test's directory.
	base_dir = $DC/run
	state_dir = $DC/state
	log_path = $DC/log
	# No TLS on 127.0.0.1, so plaintext LOGIN must be allowed.
	ssl = no
	disable_plaintext_auth = no
	# The internal processes (auth reading the users file) run as root:
	# the test's directory is mode 0700, closed to the account dovecot.
	# The login processes stay dovenull's (the default): Dovecot refuses
	# to run imap-login as root.
	default_internal_user = root
	# The mail user is the account mail (uid $MAIL_UID): below Dovecot's
	# default first_valid_uid, 500.  Root cannot be one (passwd-file
	# calls uid 0 invalid, and Dovecot refuses mail access for root).
	first_valid_uid = $MAIL_UID
	# dana's INBOX is the spool's mbox; other folders under ~/mail.
	mail_location = mbox:~/mail:INBOX=$SPOOL/%u
	# Debian's values (its 10-mail.conf, after Debian Policy 11.6; the
	# upstream default is dotlock first), said outright: fcntl() first,
	# then the dot-lock; readers take fcntl() alone.
	mbox_write_locks = fcntl dotlock
	mbox_read_locks = fcntl
	# Changes written to the mbox by the command that makes them (STORE),
	# not later at CHECK or LOGOUT: the test knows which one locks.
	mbox_lazy_writes = no
	passdb {
	  driver = passwd-file
	  args = $DC/users
	}
	userdb {
	  driver = passwd-file
	  args = $DC/users
	}
	service imap-login {
	  inet_listener imap {
	    address = 127.0.0.1
	    port = $PORT
	  }
	  # no IMAPS: no TLS, and port 993 is not ours
	  inet_listener imaps {
	    port = 0
	  }
	}
	CONF
	timeout 300 dovecot -c "$DC/dovecot.conf" -F >"$DC/stdout" 2>&1 3>&- &
	started "$!"
	timeout 15 python3 "$HELPER" wait "$PORT" 10 ||
	    { cat "$DC/stdout" "$DC/log"; false; }
	started "$(cat "$DC/run/master.pid")"
}

# Dovecot's count of the messages in dana's INBOX.
dovecot_count() {
	timeout 30 doveadm -c "$DC/dovecot.conf" mailbox status -u dana \
	    messages INBOX | sed -n 's/^INBOX messages=//p'
}

# Dovecot logged no error, fatal error or panic.
dovecot_quiet() {
	run ! grep -E ': (Error|Fatal|Panic):' "$DC/log"
}

# deliver_to_dana SUBJECT [BODY LINE...]: one message delivered to dana
# by smtpd, now.
deliver_to_dana() {
	run -0 smtp_raw < <(to_dana "$@")
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ] || { echo "$output"; false; }
}

# The Status: header of each message in dana's mailbox (Dovecot's record
# of its flags there: R for \Seen, O for not \Recent).
statuses() {
	python3 -c 'import mailbox, sys
for m in mailbox.mbox(sys.argv[1], create=False): print(m["Status"] or "")' \
	    "$SPOOL/dana"
}

# bats test_tags=slow
@test "Dovecot holding its fcntl lock and waiting for procmail's dot-lock: a delivery meanwhile gets 250 soon after the dot-lock goes, and Dovecot's STORE completes" {
	dovecot_spool
	start_dovecot
	mailbox
	deliver_to_dana "first"
	# an IMAP client reads INBOX; it marks the message \Seen once the
	# dot-lock is taken by someone else (procmail's lockfile)
	go="$BATS_TEST_TMPDIR/go"
	timeout 120 python3 "$HELPER" store "$PORT" dana "$PASSWORD" "$go" \
	    >"$BATS_TEST_TMPDIR/imap.out" 2>&1 3>&- &
	imap=$!
	started "$imap"
	wait_until 10 grep -q '^selected 1$' "$BATS_TEST_TMPDIR/imap.out"
	lockfile -r0 "$SPOOL/dana.lock"
	touch "$go"
	# Dovecot takes its fcntl() write lock and waits for the dot-lock
	wait_until 10 fcntl_held "$SPOOL/dana"
	sleep 0.5
	run ! grep -q '^stored' "$BATS_TEST_TMPDIR/imap.out"
	# a delivery now, and the dot-lock let go a second later
	to_dana "second" >"$BATS_TEST_TMPDIR/second.in"
	start=$(now_ms)
	smtpd_bg 90 "$BATS_TEST_TMPDIR/second.in" second
	sleep 1
	rm "$SPOOL/dana.lock"
	wait_ok "$PID" "the delivery"
	took=$(($(now_ms) - start))
	echo "the delivery took $took ms"
	delivered_in second 1
	[ "$took" -lt 30000 ]
	# Dovecot was not left stuck: its STORE is done
	wait_until 10 grep -qx 'logged out' "$BATS_TEST_TMPDIR/imap.out" ||
	    { cat "$BATS_TEST_TMPDIR/imap.out"; false; }
	wait_ok "$imap" "the IMAP client"
	grep -qx 'stored OK' "$BATS_TEST_TMPDIR/imap.out"
	[ ! -e "$SPOOL/dana.lock" ]
	[ "$(grep -c '^From ' "$SPOOL/dana")" = 2 ]
	[ "$(dovecot_count)" = 2 ]
	[ "$(mbox_subjects "$SPOOL/dana")" = "$(printf '%s\n' first second)" ]
	# the \Seen flag is in the mbox itself, Status: R (written by Dovecot
	# under its locks: mbox_lazy_writes = no)
	[[ "$(statuses | head -n 1)" == *R* ]]
	dovecot_quiet
}

# bats test_tags=slow
@test "30 deliveries, three at a time, while an IMAP client appends, flags and expunges 30 times: every delivery 250, every message once, Dovecot and the From_ lines agree" {
	dovecot_spool
	start_dovecot
	mailbox
	# a first message the client leaves alone: Dovecot keeps its
	# X-IMAPbase: header in the mbox's first message, and puts a message
	# of its own first when it expunges that one ("DON'T DELETE THIS
	# MESSAGE -- FOLDER INTERNAL DATA", a From_ line that is no mail)
	deliver_to_dana "delivery 0"
	start=$(now_ms)
	timeout 110 python3 "$HELPER" stream "$PORT" dana "$PASSWORD" 30 \
	    >"$BATS_TEST_TMPDIR/imap.out" 2>&1 3>&- &
	imap=$!
	started "$imap"
	# three deliveries started at the first round, the fourth, ... the
	# 28th: the IMAP client's rounds go on while they run
	pids=()
	for wave in $(seq 0 9); do
		wait_until 60 grep -qx "round $((wave * 3 + 1)) ok" \
		    "$BATS_TEST_TMPDIR/imap.out" ||
		    { cat "$BATS_TEST_TMPDIR/imap.out"; false; }
		for i in $((wave * 3 + 1)) $((wave * 3 + 2)) $((wave * 3 + 3)); do
			to_dana "delivery $i" "message $i of 30" \
			    >"$BATS_TEST_TMPDIR/in.$i"
			smtpd_bg 100 "$BATS_TEST_TMPDIR/in.$i" "$i"
			pids+=("$PID")
		done
	done
	for i in $(seq 30); do
		wait_ok "${pids[i - 1]}" "delivery $i"
		delivered_in "$i" 1
	done
	wait_ok "$imap" "the IMAP client" || { cat "$BATS_TEST_TMPDIR/imap.out"; false; }
	[ "$(grep -c '^round [0-9]* ok$' "$BATS_TEST_TMPDIR/imap.out")" = 30 ]
	took=$(($(now_ms) - start))
	echo "30 deliveries and 30 IMAP rounds took $took ms"
	[ "$took" -lt 120000 ]
	# each delivered message once, the client's own all expunged
	diff -u <(printf 'delivery %s\n' $(seq 0 30) | sort) <(mbox_subjects "$SPOOL/dana" | sort)
	[ "$(grep -c '^From ' "$SPOOL/dana")" = 31 ]
	[ "$(dovecot_count)" = 31 ]
	[ ! -e "$SPOOL/dana.lock" ]
	dovecot_quiet
}

# The body of dana's only message as Dovecot gives it (RFC 3501 BODY[TEXT]).
dovecot_body() {
	timeout 30 doveadm -c "$DC/dovecot.conf" fetch -u dana body all
}

# A message whose body has a >From line and a From line.
FROMS=(before ">From quoted once" "From not quoted" after)

@test "-b mboxo: Dovecot gives a body line sent as >From as it was sent, and one sent as From with smtpd's '>'" {
	dovecot_spool
	start_dovecot
	mailbox
	OPTS+=(-b mboxo)
	deliver_to_dana "froms" "${FROMS[@]}"
	run -0 dovecot_body
	# Dovecot undoes no quoting; an mboxo mailbox cannot tell the From
	# line from one sent as >From (smtpd.8, MAILBOX FORMAT)
	diff -u <(printf '%s\n' body: before ">From quoted once" \
	    ">From not quoted" after) <(printf '%s\n' "$output")
}

@test "mboxrd, the default: Dovecot, which undoes no quoting, gives a body line sent as >From with a '>' more" {
	dovecot_spool
	start_dovecot
	mailbox
	deliver_to_dana "froms" "${FROMS[@]}"
	run -0 dovecot_body
	diff -u <(printf '%s\n' body: before ">>From quoted once" \
	    ">From not quoted" after) <(printf '%s\n' "$output")
}

@test "an fcntl lock held on the mailbox: the delivery waits without its dot-lock, and gets 250 once the lock is let go" {
	command -v python3 >/dev/null || skip "no python3"
	: >"$SPOOL/dana"
	chmod 600 "$SPOOL/dana"
	# Python's lockf() is fcntl(F_SETLKW), as Dovecot's and mutt's locks
	ready="$BATS_TEST_TMPDIR/held"
	timeout 120 python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(100)' "$SPOOL/dana" "$ready" 3>&- &
	holder=$!
	started "$holder"
	wait_until 10 test -e "$ready"
	to_dana "waited" >"$BATS_TEST_TMPDIR/waited.in"
	smtpd_bg 90 "$BATS_TEST_TMPDIR/waited.in" waited
	# it is delivering (smtpd.8: each delivery to a mailbox holds its turn,
	# a lock on .smtpd-queue) ...
	wait_until 10 fcntl_held "$SPOOL/.smtpd-queue"
	# ... and for a second, looked at every millisecond, takes no
	# dot-lock: the fcntl lock, the first of the three, is busy
	timeout 10 python3 -c 'import os, sys, time
end = time.monotonic() + 1
while time.monotonic() < end:
    if os.path.exists(sys.argv[1]):
        sys.exit("dana.lock made while the fcntl lock was held")
    time.sleep(0.001)' "$SPOOL/dana.lock"
	kill -0 "$PID"
	[ "$(stat -c %s "$SPOOL/dana")" = 0 ]
	run ! grep -q '^250' "$BATS_TEST_TMPDIR/waited.out"
	kill "$holder"
	wait "$holder" || true
	wait_ok "$PID" "the delivery"
	delivered_in waited 1
	[ ! -e "$SPOOL/dana.lock" ]
	[ "$(mbox_subjects "$SPOOL/dana")" = waited ]
}
