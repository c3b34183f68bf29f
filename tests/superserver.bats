#!/usr/bin/env bats
# smtpd started for real by a superserver on 127.0.0.1 (smtpd.8, LAUNCHING):
# tcpserver (ucspi-tcp) and systemd-socket-activate in inetd mode, with a
# client over TCP (launchers-pipeline.py).  Each test's server runs in the
# background and is killed by its PID in teardown().
load helpers
load launchers-helpers	# start_tcpserver, start_socket_activate, pipeline_client

teardown() {
	stop_server
}

# One message from smith to jones over TCP, QUIT included.
tcp_session_to_jones() {
	pipeline_client "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA \
	    $'Subject: over TCP\n\nHello, Joe.\n.' QUIT
}

# What jones's mailbox must hold after tcp_session_to_jones, once
# mbox_fixed.
mbox_after_tcp_session() {
	printf '%s\n' "From smith@client.example DATE" \
	    "Return-Path: <smith@client.example>" \
	    "Received: from client.example ([127.0.0.1])" \
	    $'\tby mx.example (smtpd 0.1) with SMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE' "Subject: over TCP" "" "Hello, Joe." ""
}

# tcpserver's rules for start_tcpserver (-x, in TCPSERVER_OPTS): 127.0.0.1
# allowed, with RELAYCLIENT="" set; or a skip where tcprules is missing.
relayclient_rules() {
	command -v tcprules >/dev/null ||
	    skip "tcprules not installed (apt-get install ucspi-tcp)"
	echo '127.0.0.1:allow,RELAYCLIENT=""' |
	    timeout 10 tcprules "$BATS_TEST_TMPDIR/rules.cdb" \
	    "$BATS_TEST_TMPDIR/rules.tmp"
	TCPSERVER_OPTS=(-x "$BATS_TEST_TMPDIR/rules.cdb")
}

@test "under tcpserver a session over TCP is answered from 220 to 221" {
	start_tcpserver
	run -0 tcp_session_to_jones
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
	run -0 tcp_session_to_jones
	mbox_after_tcp_session >"$BATS_TEST_TMPDIR/expected"
	mbox_fixed "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "under tcpserver the log names the client 127.0.0.1" {
	start_tcpserver
	run -0 tcp_session_to_jones
	run -0 grep -E '^smtpd\[[0-9]+\]: start client=127\.0\.0\.1$' "$LOG"
	run -0 grep -E '^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ client=127\.0\.0\.1 from=<smith@client\.example> to=<jones> size=[0-9]+ delivered$' "$LOG"
}

@test "under tcpserver with RELAYCLIENT=\"\" from the rules a local delivery still works" {
	relayclient_rules
	start_tcpserver
	run -0 tcp_session_to_jones
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
	mbox_after_tcp_session >"$BATS_TEST_TMPDIR/expected"
	mbox_fixed "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "under tcpserver with RELAYCLIENT but without -F a remote recipient is refused 550 5.7.1" {
	relayclient_rules
	start_tcpserver
	run -0 pipeline_client "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<someone@elsewhere.example>" QUIT
	[ "${lines[3]}" = "550 5.7.1 relaying denied" ]
	[ "${lines[4]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "under tcpserver a start-up error answers the client 421 and closes" {
	OPTS=(-e -T -n mx.example -a "$BATS_TEST_TMPDIR/missing" -m "$SPOOL")
	start_tcpserver
	run -0 pipeline_client "HELO client.example" QUIT
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example local configuration error" ]
	run -0 grep -E "^smtpd\[[0-9]+\]: .*$BATS_TEST_TMPDIR/missing" "$LOG"
}

@test "with standard error on the socket, as under inetd, only replies reach the client" {
	# no -e: the log goes to syslog, never to the client's socket
	OPTS=(-c 'exec "$0" "$@" 2>&1' "$SMTPD" -T -n mx.example -a "$TABLE" -m "$SPOOL")
	SMTPD=sh
	start_tcpserver
	run -0 tcp_session_to_jones
	[ "${#lines[@]}" -eq 7 ]
	run ! grep -v -E '^[0-9]{3} ' <(printf '%s\n' "${lines[@]}")
	[ "$(count_messages jones)" = 1 ]
}

@test "under systemd-socket-activate --inetd a session delivers the message" {
	start_socket_activate
	run -0 tcp_session_to_jones
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "under systemd-socket-activate --inetd the Received: header names [127.0.0.1]" {
	start_socket_activate
	run -0 tcp_session_to_jones
	mbox_after_tcp_session >"$BATS_TEST_TMPDIR/expected"
	mbox_fixed "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

@test "pipelined MAIL, RCPT, RCPT, DATA in one write are answered in order" {
	start_tcpserver
	run -0 pipeline_client "EHLO client.example" \
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
