#!/usr/bin/env bats
# smtpd started for real by a superserver on 127.0.0.1 (smtpd.8, LAUNCHING):
# tcpserver (ucspi-tcp) and systemd-socket-activate in inetd mode, with a
# client over TCP.  Each test's server runs in the background and is
# killed by its PID in teardown().
load helpers

teardown() {
	if [ -n "${SERVER_PID:-}" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
}

# smtpd under tcpserver on 127.0.0.1, on a port the kernel picks (-1
# prints it); the arguments go to tcpserver before its host and port.
# smtpd's log (-e) and tcpserver's go to $LOG.  Sets SERVER_PID and PORT.
start_tcpserver() {
	command -v tcpserver >/dev/null ||
	    skip "tcpserver not installed (apt-get install ucspi-tcp)"
	timeout 60 tcpserver -1 -q -R -H -l localhost "$@" 127.0.0.1 0 \
	    "$SMTPD" "${OPTS[@]}" >"$BATS_TEST_TMPDIR/port" 2>"$LOG" 3>&- &
	SERVER_PID=$!
	wait_for_line "$BATS_TEST_TMPDIR/port" '^[0-9]+$'
	PORT=$(head -n 1 "$BATS_TEST_TMPDIR/port")
}

# smtpd under systemd-socket-activate in inetd mode, one process a
# connection (like Accept=yes).  Sets SERVER_PID and PORT.
start_socket_activate() {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	PORT=$(free_port)
	timeout 60 systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
	    "$SMTPD" "${OPTS[@]}" >/dev/null 2>"$LOG" 3>&- &
	SERVER_PID=$!
	wait_for_line "$LOG" "^Listening on 127\.0\.0\.1:$PORT "
}

# A client on 127.0.0.1:$PORT.  It reads the greeting; then each argument
# is sent in one write, its lines (separated by LF) each ending in CRLF, and
# one reply is read for each line, except for message lines after a 354
# (up to the single dot).  When done it closes its side and reads to the
# end, or stops when the server has closed.  Every reply line is printed
# as it came, CR taken off.
client() {
	timeout 15 python3 - "$PORT" "$@" <<'PY'
import socket, sys

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
replies = sock.makefile("rb")

def reply():
	"""One whole reply, multi-line ones included; False at the end."""
	while True:
		try:
			line = replies.readline()
		except OSError:		# reset: the server has gone
			return False
		if not line:
			return False
		line = line.rstrip(b"\n").rstrip(b"\r")
		sys.stdout.buffer.write(line + b"\n")
		sys.stdout.buffer.flush()
		if line[3:4] != b"-":
			return line

last = reply()
in_data = False
for arg in sys.argv[2:]:
	if last is False:
		break
	lines = arg.split("\n")
	try:
		sock.sendall(b"".join(l.encode() + b"\r\n" for l in lines))
	except OSError:		# the server closed first: read what it said
		break
	for l in lines:
		if in_data and l != ".":
			continue
		in_data = False
		last = reply()
		if last is False:
			break
		in_data = last.startswith(b"354")
try:
	sock.shutdown(socket.SHUT_WR)
	while reply() is not False:
		pass
except OSError:
	pass
PY
}

# A mailbox with its varying parts (dates, id) made fixed, for diff.
normalize() {
	sed -E \
	    -e 's/^(From [^ ]+) [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$/\1 DATE/' \
	    -e 's/ id [0-9A-Z-]+$/ id ID/' \
	    -e 's/^\t[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$/\tDATE/' \
	    "$1"
}

# One message from smith to jones over TCP, QUIT included.
session() {
	client "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA \
	    $'Subject: over TCP\n\nHello, Joe.\n.' QUIT
}

# What jones's mailbox must hold after session(), dates and id fixed.
expected_mbox() {
	printf '%s\n' "From smith@client.example DATE" \
	    "Return-Path: <smith@client.example>" \
	    "Received: from client.example ([127.0.0.1])" \
	    $'\tby mx.example (smtpd 0.1) with SMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE' "Subject: over TCP" "" "Hello, Joe." ""
}

@test "under tcpserver a session over TCP is answered from 220 to 221" {
	start_tcpserver
	run -0 session
	[ "${#lines[@]}" -eq 7 ]
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd 0.1" ]
	[ "${lines[1]}" = "250 mx.example" ]
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[4]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "under tcpserver the Received: header names the client [127.0.0.1]" {
	start_tcpserver
	run -0 session
	expected_mbox >"$BATS_TEST_TMPDIR/expected"
	normalize "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "under tcpserver the log names the client 127.0.0.1" {
	start_tcpserver
	run -0 session
	run -0 grep -E '^smtpd\[[0-9]+\]: start client=127\.0\.0\.1$' "$LOG"
	run -0 grep -E '^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ client=127\.0\.0\.1 from=<smith@client\.example> to=<jones> size=[0-9]+ delivered$' "$LOG"
}

@test "under tcpserver with RELAYCLIENT=\"\" from the rules a local delivery still works" {
	command -v tcprules >/dev/null ||
	    skip "tcprules not installed (apt-get install ucspi-tcp)"
	echo '127.0.0.1:allow,RELAYCLIENT=""' |
	    timeout 10 tcprules "$BATS_TEST_TMPDIR/rules.cdb" \
	    "$BATS_TEST_TMPDIR/rules.tmp"
	start_tcpserver -x "$BATS_TEST_TMPDIR/rules.cdb"
	run -0 session
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
	expected_mbox >"$BATS_TEST_TMPDIR/expected"
	normalize "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "under tcpserver with RELAYCLIENT but without -F a remote recipient is refused 550 5.7.1" {
	command -v tcprules >/dev/null ||
	    skip "tcprules not installed (apt-get install ucspi-tcp)"
	echo '127.0.0.1:allow,RELAYCLIENT=""' |
	    timeout 10 tcprules "$BATS_TEST_TMPDIR/rules.cdb" \
	    "$BATS_TEST_TMPDIR/rules.tmp"
	start_tcpserver -x "$BATS_TEST_TMPDIR/rules.cdb"
	run -0 client "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<someone@elsewhere.example>" QUIT
	[ "${lines[3]}" = "550 5.7.1 relaying denied" ]
	[ "${lines[4]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "under tcpserver a start-up error answers the client 421 and closes" {
	OPTS=(-e -T -n mx.example -a "$BATS_TEST_TMPDIR/missing" -m "$SPOOL")
	start_tcpserver
	run -0 client "HELO client.example" QUIT
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example local configuration error" ]
	run -0 grep -E "^smtpd\[[0-9]+\]: .*$BATS_TEST_TMPDIR/missing" "$LOG"
}

@test "with standard error on the socket, as under inetd, only replies reach the client" {
	# no -e: the log goes to syslog, never to the client's socket
	OPTS=(-c 'exec "$0" "$@" 2>&1' "$SMTPD" -T -n mx.example -a "$TABLE" -m "$SPOOL")
	SMTPD=sh
	start_tcpserver
	run -0 session
	[ "${#lines[@]}" -eq 7 ]
	run ! grep -v -E '^[0-9]{3} ' <(printf '%s\n' "${lines[@]}")
	[ "$(count_messages jones)" = 1 ]
}

@test "under systemd-socket-activate --inetd a session delivers the message" {
	start_socket_activate
	run -0 session
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "under systemd-socket-activate --inetd the Received: header names [127.0.0.1]" {
	start_socket_activate
	run -0 session
	expected_mbox >"$BATS_TEST_TMPDIR/expected"
	normalize "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "pipelined MAIL, RCPT, RCPT, DATA in one write are answered in order" {
	start_tcpserver
	run -0 client "EHLO client.example" \
	    $'MAIL FROM:<smith@client.example>\nRCPT TO:<jones>\nRCPT TO:<brown>\nDATA' \
	    $'Subject: pipelined\n\nHello, both.\n.' QUIT
	printf '%s\n' "${lines[@]}" | grep -v '^250-' >"$BATS_TEST_TMPDIR/got"
	run -0 sed -n 3,6p "$BATS_TEST_TMPDIR/got"
	[ "${lines[0]}" = "250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[1]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[2]}" = "250 2.1.5 Recipient <brown> OK" ]
	[ "${lines[3]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	run -0 sed -n '7,$p' "$BATS_TEST_TMPDIR/got"
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages brown)" = 1 ]
}
