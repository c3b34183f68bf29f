#!/usr/bin/env bats
# smtpd beside the mail stack a Debian host already runs (smtpd.8,
# ENVIRONMENT, MAILBOX FORMAT, LAUNCHING): IPv4 clients reached through
# dual-stack sockets, a root:mail 2775 spool with smtpd as root and as
# user mail, -C on such a spool, Python's smtplib repeating its MAIL
# parameters, and mboxo mailboxes read back by s-nail and mutt.  Dovecot
# has its own file (dovecot.bats).  Needs root for the spool tests,
# util-linux (setpriv), systemd (systemd-socket-activate), socat, s-nail,
# mutt; xinetd is taken from $XINETD or PATH (Debian's xinetd conflicts
# with openbsd-inetd, which launchers.bats uses, so CI unpacks its
# binary instead of installing it).
load helpers
load launchers-helpers

setup() {
	common_setup
	launchers_setup
	TOP=
}

teardown() {
	stop_server
	[ -z "$TOP" ] || rm -rf "$TOP"
}

# A spool Debian's way, root:mail 2775, under a directory every account
# may reach (the test's own is mode 0700), with the table and TMPDIR
# there too, readable and writable by user mail.
debian_spool() {
	[ "$(id -u)" = 0 ] || skip "a root:mail spool needs root"
	getent group mail >/dev/null || skip "no group mail"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	TOP=$(mktemp -d /tmp/smtpd-debian.XXXXXX)
	chmod 755 "$TOP"
	SPOOL="$TOP/spool"
	mkdir -m 2775 "$SPOOL"
	chgrp mail "$SPOOL"
	chmod 2775 "$SPOOL"
	cp "$TABLE" "$TOP/aliases"
	chmod 644 "$TOP/aliases"
	TABLE="$TOP/aliases"
	mkdir -m 1777 "$TOP/tmp"
	export TMPDIR="$TOP/tmp"
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
}

# smtpd as user mail, group mail and no other, as the inetd and xinetd
# examples run it.
as_mail() {
	setpriv --reuid mail --regid mail --clear-groups "$@"
}

# --- IPv4 clients through IPv6 sockets ----------------------------------

@test "REMOTE_ADDR ::ffff:192.0.2.9, as systemd sets it on a dual-stack socket, is 192.0.2.9 in the log and in Received:" {
	REMOTE_ADDR=::ffff:192.0.2.9 deliver_to jones mapped
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	grep -q '^smtpd\[[0-9]*\]: start client=192\.0\.2\.9$' "$LOG"
	grep -q ' client=192\.0\.2\.9 from=<sender@example\.org>' "$LOG"
	run ! grep -F 'ffff' "$LOG"
	grep -q '^Received: from client\.example (\[192\.0\.2\.9\])$' "$SPOOL/jones"
}

@test "a real IPv6 client stays IPv6: in Received: as [IPv6:...]" {
	REMOTE_ADDR=2001:db8::7 deliver_to jones six
	grep -q '^Received: from client\.example (\[IPv6:2001:db8::7\])$' "$SPOOL/jones"
	grep -q 'start client=2001:db8::7$' "$LOG"
}

@test "systemd unit's command on a dual-stack [::] socket: an IPv4 client is client=127.0.0.1 and [127.0.0.1]" {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	[ "$(cat /proc/sys/net/ipv6/bindv6only 2>/dev/null)" = 0 ] ||
	    skip "IPv6 sockets here are IPv6 only (net.ipv6.bindv6only)"
	service_command
	PORT=$(free_port)
	timeout 60 systemd-socket-activate --inetd -a -l "[::]:$PORT" \
	    "${CMD[@]}" >/dev/null 2>"$LOG" 3>&- &
	SERVER_PID=$!
	wait_listening "$SERVER_PID" "$PORT" ||
	    skip "no dual-stack socket on [::]:$PORT here"
	grep -q 'Listening on \[::\]' "$LOG"
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = sent ]
	grep -q '^Received: from client\.example (\[127\.0\.0\.1\])$' "$SPOOL/jones"
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	grep -q '^smtpd\[[0-9]*\]: start client=127\.0\.0\.1$' "$LOG"
	run ! grep -a 'client=::ffff' "$LOG"
}

@test "the xinetd example on a dual-stack socket (flags = IPv6): an IPv4 client is [127.0.0.1] in Received:" {
	xinetd=${XINETD:-$(PATH="$PATH:/usr/sbin" command -v xinetd || true)}
	[ -x "$xinetd" ] || skip "no xinetd (set XINETD to its binary)"
	PORT=$(free_port)
	# the example, verbatim but for its paths, the port, and the user:
	# root, as the test's spool is root's
	sed -e "s|/usr/local/sbin/smtpd|$(cd "$(dirname "$SMTPD")" && pwd)/$(basename "$SMTPD")|" \
	    -e "s|/etc/smtpd/aliases|$TABLE -m $SPOOL|" \
	    -e 's|^\(\tuser\t*= \)mail$|\1root|' -e '/^\tgroup\t/d' \
	    -e "s|^\(\tlog_type\t*= \).*|\1FILE $BATS_TEST_TMPDIR/xinetd.log|" \
	    -e "s|^{\$|{\n\ttype = UNLISTED\n\tport = $PORT\n\tflags = IPv6|" \
	    "$EXAMPLES/smtpd.xinetd" >"$BATS_TEST_TMPDIR/xinetd.conf"
	grep -q '^	cps		= 400 2$' "$BATS_TEST_TMPDIR/xinetd.conf"
	timeout 60 "$xinetd" -dontfork -f "$BATS_TEST_TMPDIR/xinetd.conf" \
	    -pidfile "$BATS_TEST_TMPDIR/xinetd.pid" >"$BATS_TEST_TMPDIR/xinetd.out" \
	    2>&1 3>&- &
	SERVER_PID=$!
	wait_listening "$SERVER_PID" "$PORT" ||
	    { cat "$BATS_TEST_TMPDIR/xinetd.out"; false; }
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = sent ]
	grep -q '^Received: from client\.example (\[127\.0\.0\.1\])$' "$SPOOL/jones"
	run ! grep -F 'ffff' "$SPOOL/jones"
}

# --- a root:mail 2775 spool ---------------------------------------------

@test "as root in a root:mail 2775 spool, a new mailbox is its account's and group mail's, mode 0660, whatever the umask" {
	debian_spool
	getent passwd daemon >/dev/null || skip "no system account daemon"
	umask 077
	deliver_to daemon first
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(stat -c '%U:%G %a' "$SPOOL/daemon")" = "daemon:mail 660" ]
	# a table user with no account: smtpd's, group mail, 0660 too
	table_user_without_account
	deliver_to "$NO_ACCOUNT" first
	[ "$(stat -c '%U:%G %a' "$SPOOL/$NO_ACCOUNT")" = "root:mail 660" ]
}

@test "as user mail in a root:mail 2775 spool: no mailbox is made for a system account (451, logged), an existing one is delivered to" {
	debian_spool
	getent passwd daemon >/dev/null || skip "no system account daemon"
	printf '#!/bin/sh\nexec setpriv --reuid mail --regid mail --clear-groups %q "$@"\n' \
	    "$SMTPD" >"$TOP/smtpd-as-mail"
	chmod 755 "$TOP/smtpd-as-mail"
	SMTPD="$TOP/smtpd-as-mail"
	deliver_to daemon first
	[ "${lines[5]}" = "451 4.3.0 Local error in processing: mailbox unavailable" ]
	[ ! -e "$SPOOL/daemon" ]
	grep -q "$SPOOL/daemon: not made: its recipient could not read a mailbox of ours" "$LOG"
	# made as Debian makes mailboxes (adduser, or smtpd as root)
	install -o daemon -g mail -m 660 /dev/null "$SPOOL/daemon"
	deliver_to daemon second
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(count_messages daemon)" = 1 ]
	[ "$(stat -c '%U:%G %a' "$SPOOL/daemon")" = "daemon:mail 660" ]
	# a table user with no account: the mailbox is mail's, group mail
	table_user_without_account
	deliver_to "$NO_ACCOUNT" first
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(stat -c '%U:%G %a' "$SPOOL/$NO_ACCOUNT")" = "mail:mail 660" ]
}

@test "as user mail, a mailbox left mode 0600 by root answers 451, and -C says so and exits 1" {
	debian_spool
	getent passwd daemon >/dev/null || skip "no system account daemon"
	install -o daemon -g mail -m 600 /dev/null "$SPOOL/daemon"
	run -0 as_mail "$SMTPD" "${OPTS[@]}" < <(printf '%s\r\n' \
	    "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<daemon>" DATA "Subject: x" "" "Hello." . QUIT)
	[[ "$output" == *"451 4.3.0 Local error in processing: mailbox unavailable"* ]]
	run -1 as_mail "$SMTPD" -C "${OPTS[@]}"
	[[ "$output" == *"mailbox $SPOOL/daemon: uid $(id -u mail) cannot write it: its deliveries answer 451"* ]]
	[[ "$output" == *"not run as root: no mailbox can be made for a system account other than uid $(id -u mail)"* ]]
	# as root, with the mailbox 0660, all is clean
	chmod 660 "$SPOOL/daemon"
	printf '%s\n' "postmaster: smith" >>"$TABLE"
	run -0 "$SMTPD" -C "${OPTS[@]}"
}

@test "-C reports a mailbox someone else made for its recipient, and a spool smtpd cannot write in" {
	debian_spool
	printf '%s\n' "postmaster: smith" >>"$TABLE"
	install -o nobody -g nogroup -m 666 /dev/null "$SPOOL/smith"
	run -1 "$SMTPD" -C "${OPTS[@]}" -T
	[[ "$output" == *"mailbox $SPOOL/smith: owned by uid $(id -u nobody), neither its recipient's account nor smtpd's: refused (451)"* ]]
	rm "$SPOOL/smith"
	chmod 755 "$SPOOL"
	chown root:root "$SPOOL"
	run -1 as_mail "$SMTPD" -C "${OPTS[@]}" -T
	[[ "$output" == *"mail spool $SPOOL: uid $(id -u mail) cannot make files in it: every delivery answers 451"* ]]
}

# --- Python's smtplib repeats MAIL's parameters ---------------------------

@test "smtplib's send_message with SMTPUTF8 and BODY=8BITMIME (sent twice by smtplib) and a UTF-8 sender is delivered" {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	start_socket_activate_example
	run -0 smtplib_client intl "jörg@client.example" jones <<<"Grüße, $MARKER."
	[ "${lines[0]}" = sent ]
	grep -q '^From jörg@client\.example ' "$SPOOL/jones"
	grep -q "^Grüße, $MARKER.\$" "$SPOOL/jones"
}

@test "a MAIL parameter given twice: accepted with the same value, 501 with another" {
	run -0 smtp "EHLO client.example" \
	    "MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8 BODY=8bitmime SMTPUTF8 SIZE=10 SIZE=10" \
	    RSET "MAIL FROM:<a@example.org> BODY=7BIT BODY=8BITMIME" \
	    "MAIL FROM:<a@example.org> SIZE=10 SIZE=11" QUIT
	run -0 grep -v '^250-' <<<"$output"
	[ "${lines[2]}" = "250 2.1.0 Sender <a@example.org> OK" ]
	[ "${lines[4]}" = "501 5.5.4 Bad parameter: parameter given twice with different values" ]
	[ "${lines[5]}" = "501 5.5.4 Bad parameter: parameter given twice with different values" ]
}

# --- mboxo --------------------------------------------------------------

# A message whose body has a From line, a >From line and a >>From line.
FROMS=("From the start" ">From quoted once" ">>From quoted twice" "last")

# The FROMS message delivered to jones through smtp().
deliver_froms() {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: froms" "" "${FROMS[@]}" . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
}

# The body of the only message in jones's mailbox as s-nail shows it.
snail_body() {
	env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" s-nail -:/ -R -N -# \
	    -S 'headerpick=type ignore from_ received return-path subject date' \
	    -f "$SPOOL/jones" <<<$'print 1\nquit' |
	    awk '/^>*From the start$/ { p = 1 } p { print } /^last$/ { p = 0 }'
}

# The message as mutt pipes it (<pipe-message>, undecoded), under a
# pseudo-terminal: mutt wants one. Its folder is the test's own
# directory: where ~/Mail is missing, mutt would first ask to create it
# and the keys pushed would answer that question instead.
mutt_message() {
	printf '%s\n' 'set wait_key=no' 'set quit=yes' 'set pipe_decode=no' \
	    "set folder=$BATS_TEST_TMPDIR" \
	    "push \"<pipe-message>cat >$BATS_TEST_TMPDIR/mutt.out<enter><quit>\"" \
	    >"$BATS_TEST_TMPDIR/muttrc"
	HOME=$BATS_TEST_TMPDIR TERM=vt100 timeout 20 script -qec "mutt -n -F $BATS_TEST_TMPDIR/muttrc -R -f $SPOOL/jones" \
	    /dev/null >/dev/null 2>&1 </dev/null
	cat "$BATS_TEST_TMPDIR/mutt.out"
}

@test "mboxrd, the default: s-nail, which undoes no quoting, shows >From lines with a '>' more" {
	command -v s-nail >/dev/null || skip "no s-nail"
	deliver_froms
	diff -u <(printf '%s\n' ">From the start" ">>From quoted once" \
	    ">>>From quoted twice" last) <(stored "$SPOOL/jones" | sed -n '3,6p')
	run -0 snail_body
	[ "${lines[1]}" = ">>From quoted once" ]
}

@test "-b mboxo: lines sent as >From are stored as sent, From gets one '>', and s-nail and mutt show them so" {
	command -v s-nail >/dev/null || skip "no s-nail"
	OPTS+=(-b mboxo)
	deliver_froms
	expected=(">From the start" ">From quoted once" ">>From quoted twice" last)
	diff -u <(printf '%s\n' "${expected[@]}") <(stored "$SPOOL/jones" | sed -n '3,6p')
	run -0 snail_body
	diff -u <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "${lines[@]}")
	if command -v mutt >/dev/null && command -v script >/dev/null; then
		run -0 mutt_message
		diff -u <(printf '%s\n' "${expected[@]}") \
		    <(printf '%s\n' "${lines[@]}" | sed -n '/From the start$/,/^last$/p')
	fi
}

@test "-b mboxo: a forwarded copy and a large spooled message are as they were sent" {
	OPTS+=(-b mboxo -s 20000000 -F "$FWD")
	echo "both: jones, far@remote.example" >>"$TABLE"
	{
		printf '%s\r\n' "HELO client.example" "MAIL FROM:<sender@example.org>" \
		    "RCPT TO:<both>" DATA "Subject: big" "" "${FROMS[@]}"
		awk 'BEGIN { for (i = 0; i < 40000; i++) printf ">From line %d of a long body\r\n", i }'
		printf '%s\r\n' "From the end" . QUIT
	} >"$BATS_TEST_TMPDIR/in"
	run -0 smtp_raw <"$BATS_TEST_TMPDIR/in"
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	# the mailbox: mboxo, so >From lines as sent; the forward: as sent
	[ "$(grep -c '^>From line [0-9]* of a long body$' "$SPOOL/jones")" = 40000 ]
	grep -q '^>From the end$' "$SPOOL/jones"
	[ "$(grep -c '^>From line [0-9]* of a long body$' "$BATS_TEST_TMPDIR/forward.msg")" = 40000 ]
	grep -q '^From the end' "$BATS_TEST_TMPDIR/forward.msg"
}

@test "-b takes mboxrd or mboxo, nothing else" {
	run -1 "$SMTPD" "${OPTS[@]}" -b mbox </dev/null
	[[ "$output" == *"-b mbox: mboxrd or mboxo"* ]]
	run -0 "$SMTPD" "${OPTS[@]}" -b mboxrd -C
}
