#!/usr/bin/env bats
# TLS (smtpd.8, TLS): STARTTLS through s6-networking's s6-ucspitlsd
# under s6-tcpserver, implicit TLS under s6-tlsserver, with real
# clients (openssl s_client, swaks, smtplib, curl).  smtpd holds no
# key: the wrapper does the TLS, smtpd speaks SMTP over its
# descriptors.  The tests that need the wrapper skip, saying so, where
# s6-networking is not on PATH (.ci/run builds it); the rest fake the
# wrapper's descriptors with files and run through pipes.
load helpers

CLIENT="$BATS_TEST_DIRNAME/tls-client.py"

setup_file() {
	# a throwaway certificate, made once for the file's tests
	if command -v openssl >/dev/null; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		    -subj /CN=mx.test -keyout "$BATS_FILE_TMPDIR/key.pem" \
		    -out "$BATS_FILE_TMPDIR/cert.pem" 2>/dev/null
	fi
}

teardown() {
	stop_started
}

# The TLS wrapper (have_s6_networking) and the file's certificate, or a
# skip.
have_wrapper() {
	have_s6_networking
	[ -s "$BATS_FILE_TMPDIR/cert.pem" ] || skip "openssl made no certificate"
}

# Whether something listens on 127.0.0.1:$1 (read off /proc: no probe
# connection, which would show in the log).
listening() {
	grep -qi "^ *[0-9]*: 0100007F:$(printf '%04X' "$1") 00000000:0000 0A" \
	    /proc/net/tcp
}

# smtpd under the wrapper on a free port: `starttls' (s6-tcpserver with
# s6-ucspitlsd) or `implicit' (s6-tlsserver); more smtpd options after.
# The log (-e) goes to $LOG; the listener is ended by its pid.
start_tls() {
	local kind=$1
	shift
	have_wrapper
	PORT=$(free_port)
	export KEYFILE="$BATS_FILE_TMPDIR/key.pem"
	export CERTFILE="$BATS_FILE_TMPDIR/cert.pem"
	if [ "$kind" = starttls ]; then
		s6-tcpserver 127.0.0.1 "$PORT" s6-ucspitlsd -S -K 10000 -- \
		    "$SMTPD" "${OPTS[@]}" "$@" </dev/null 2>>"$LOG" 3>&- &
	else
		s6-tlsserver -S -K 10000 127.0.0.1 "$PORT" \
		    "$SMTPD" "${OPTS[@]}" "$@" </dev/null 2>>"$LOG" 3>&- &
	fi
	SERVER_PID=$!
	started "$SERVER_PID"
	wait_until 5 listening "$PORT"
}

# The reply codes of the last `run', one per reply (its last line).
reply_codes() {
	printf '%s\n' "${lines[@]}" | grep -v '^...-' | cut -c1-3 |
	    tr '\n' ' ' | sed 's/ $//'
}

# The message was delivered once over TLS, and says so in Received:
# and in the log.
delivered_over_tls() {
	wait_until 5 grep -q ' delivered$' "$LOG"
	[ "$(count_messages jones)" = 1 ]
	[[ "$(received_unfolded "$SPOOL/jones")" == *" with ESMTPS ("TLSv1.?" "*")"* ]]
	grep -Eq "tls=TLSv1\.[0-9]/[A-Z0-9-]+ delivered$" "$LOG"
}

# --- real clients over STARTTLS and implicit TLS ------------------------

@test "openssl s_client -starttls smtp: EHLO lists STARTTLS, the message is delivered, Received: says ESMTPS and the cipher" {
	start_tls starttls
	printf '%s\r\n' "EHLO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: s_client" "" "hello" . QUIT |
	    timeout 20 openssl s_client -quiet -starttls smtp \
	    -connect "127.0.0.1:$PORT" >"$BATS_TEST_TMPDIR/out" 2>/dev/null
	grep -q '^250 2.0.0 Delivered' "$BATS_TEST_TMPDIR/out"
	delivered_over_tls
	cipher=$(sed -n 's/.*TLS started .* cipher=//p' "$LOG")
	[ -n "$cipher" ]
	[[ "$(received_unfolded "$SPOOL/jones")" == *"$cipher"* ]]
	# s_client itself does not show the plain EHLO; ask again in clear
	run -0 timeout 10 python3 -c '
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
print(c.ehlo("client.example")[1].decode()); c.quit()' "$PORT"
	grep -qx STARTTLS <<<"$output"
}

@test "swaks --tls delivers a message over STARTTLS" {
	have_swaks_tls
	start_tls starttls
	run -0 timeout 20 swaks --tls --server 127.0.0.1 --port "$PORT" \
	    --helo client.example --from a@example.org --to jones@mx.example
	[[ "$output" == *"TLS started"* ]]
	delivered_over_tls
}

@test "Python smtplib starttls() delivers a message" {
	start_tls starttls
	run -0 timeout 20 python3 "$CLIENT" starttls "$PORT"
	delivered_over_tls
	[ "$(stored "$SPOOL/jones")" = "$(printf 'Subject: over TLS\n\nHello over TLS.\n')" ]
}

@test "curl --ssl-reqd smtp:// delivers a message over STARTTLS" {
	command -v curl >/dev/null || skip "curl not installed"
	start_tls starttls
	printf 'Subject: curl\r\n\r\nfrom curl\r\n' >"$BATS_TEST_TMPDIR/mail"
	run -0 timeout 20 curl -s -k --ssl-reqd "smtp://127.0.0.1:$PORT" \
	    --mail-from a@example.org --mail-rcpt jones \
	    -T "$BATS_TEST_TMPDIR/mail"
	delivered_over_tls
}

@test "implicit TLS under s6-tlsserver: smtplib SMTP_SSL delivers, EHLO offers no STARTTLS, Received: says ESMTPS" {
	start_tls implicit
	run -0 timeout 20 python3 "$CLIENT" smtps "$PORT"
	[[ "$output" != *STARTTLS* ]]
	delivered_over_tls
}

@test "swaks --tlsc (implicit TLS) delivers a message" {
	have_swaks_tls
	start_tls implicit
	run -0 timeout 20 swaks --tlsc --server 127.0.0.1 --port "$PORT" \
	    --helo client.example --from a@example.org --to jones@mx.example
	delivered_over_tls
}

# --- the hand-over -------------------------------------------------------

@test "commands sent behind STARTTLS in one write are never answered or remembered, in clear or in TLS (CVE-2011-0411)" {
	start_tls starttls
	run -0 timeout 20 python3 "$CLIENT" inject "$PORT"
	# in clear: STARTTLS's 220 and nothing for RSET or MAIL
	clear=$(sed -n '/^250 HELP/,/^-- TLS/p' <<<"$output")
	[ "$(sed -n 2p <<<"$clear")" = "220 2.0.0 Ready to start TLS" ]
	[ "$(sed -n 3p <<<"$clear")" = "-- TLS" ]
	# in TLS: EHLO's 250, then RCPT finds no MAIL: evil's was dropped
	tls=$(sed -n '/^-- TLS/,$p' <<<"$output")
	[ "$(sed -n 2p <<<"$tls")" = "250-mx.example" ]
	grep -qx "503 5.5.1 Need MAIL before RCPT" <<<"$tls"
	[[ "$output" != *evil* ]]
	[[ "$output" != *"250 2.0.0 Reset"* ]]
	! grep -q evil "$LOG"
}

@test "after STARTTLS the session is as after the greeting: MAIL needs EHLO, no STARTTLS listed, a second STARTTLS is 502" {
	start_tls starttls
	run -0 timeout 20 python3 "$CLIENT" again "$PORT"
	tls=$(sed -n '/^-- TLS/,$p' <<<"$output")
	[ "$(sed -n 2p <<<"$tls")" = "503 5.5.1 Send HELO or EHLO first" ]
	mapfile -t lines <<<"$tls"
	diff -u <(ehlo_expected) <(ehlo_keywords)
	[[ "$tls" == *"250 HELP"* ]]
	[[ "$tls" != *"250-STARTTLS"* ]]
	grep -qx "502 5.5.1 STARTTLS not available" <<<"$tls"
	[ "$(tail -n 1 <<<"$tls")" = "221 2.0.0 mx.example closing connection" ]
}

@test "the HELO name given before STARTTLS is gone from Received:" {
	start_tls starttls
	printf '%s\r\n' "MAIL FROM:<a@example.org>" "RCPT TO:<jones>" DATA \
	    "Subject: names" "" "hello" . QUIT |
	    timeout 20 openssl s_client -quiet -starttls smtp \
	    -name before.example -connect "127.0.0.1:$PORT" \
	    >"$BATS_TEST_TMPDIR/out" 2>/dev/null || true
	# s_client said EHLO before.example in clear; in TLS nobody did
	grep -qx "503 5.5.1 Send HELO or EHLO first" \
	    <(tr -d '\r' <"$BATS_TEST_TMPDIR/out")
	[ ! -e "$SPOOL/jones" ]
	run -0 timeout 20 python3 "$CLIENT" starttls "$PORT"
	[[ "$(received_unfolded "$SPOOL/jones")" == "Received: from client.example "* ]]
	! grep -q before.example "$SPOOL/jones"
}

@test "a client that drops during the handshake: the session ends, logged, nothing delivered" {
	start_tls starttls
	run -0 timeout 20 python3 "$CLIENT" drop "$PORT"
	[[ "$output" == *"220 2.0.0 Ready to start TLS"* ]]
	wait_until 15 grep -q "TLS handshake failed client=127.0.0.1" "$LOG"
	wait_until 5 grep -q "end client=127.0.0.1 messages=0 (TLS handshake failed)" "$LOG"
	[ ! -e "$SPOOL/jones" ]
}

@test "-R under the wrapper: 530 before TLS, the message delivered after it" {
	start_tls starttls -R
	run -0 timeout 10 python3 -c '
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
c.ehlo("client.example")
print(c.mail("a@example.org")); c.quit()' "$PORT"
	[[ "$output" == *"530"*"Must issue a STARTTLS command first"* ]]
	run -0 timeout 20 python3 "$CLIENT" starttls "$PORT"
	delivered_over_tls
}

# --- without a wrapper: its descriptors faked -----------------------------

# smtpd through pipes with the wrapper's three descriptors open on files
# (5, 6 and 7) and the variables naming them, unless told otherwise.
smtp_fake_wrapper() {
	: >"$BATS_TEST_TMPDIR/ctl"
	SSLCTLFD=5 SSLREADFD=6 SSLWRITEFD=7 smtp "$@" \
	    5<>"$BATS_TEST_TMPDIR/ctl" 6</dev/null 7>/dev/null
}

@test "without the wrapper EHLO lists no STARTTLS, and STARTTLS answers 502" {
	run -0 smtp "EHLO client.example" STARTTLS QUIT
	diff -u <(ehlo_expected) <(ehlo_keywords)
	[ "$(reply_codes)" = "220 250 502 221" ]
	grep -qx "502 5.5.1 STARTTLS not available" <<<"$output"
}

@test "the wrapper's variables naming closed descriptors: no STARTTLS" {
	SSLCTLFD=57 SSLREADFD=58 SSLWRITEFD=59 run -0 smtp "EHLO client.example" QUIT
	[[ "$output" != *STARTTLS* ]]
}

@test "with the wrapper's descriptors EHLO lists STARTTLS, before VRFY" {
	run -0 smtp_fake_wrapper "EHLO client.example" QUIT
	diff -u <(ehlo_expected +STARTTLS) <(ehlo_keywords)
	[ "$(grep -n STARTTLS <<<"$output" | cut -d: -f1)" -lt \
	    "$(grep -n VRFY <<<"$output" | cut -d: -f1)" ]
}

@test "SSL_PROTOCOL set beside the descriptors (sslserver without -n did the TLS): no STARTTLS, and Received: says ESMTPS" {
	SSL_PROTOCOL=TLSv1.3 SSL_CIPHER=TLS_AES_256_GCM_SHA384 run -0 \
	    smtp_fake_wrapper "EHLO client.example" STARTTLS \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<jones>" DATA "Subject: x" \
	    "" "hi" . QUIT
	[[ "$output" != *"250-STARTTLS"* ]]
	[ "$(reply_codes)" = "220 250 502 250 250 354 250 221" ]
	[[ "$(received_unfolded "$SPOOL/jones")" == *" with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384) id "* ]]
	grep -q "tls=TLSv1.3/TLS_AES_256_GCM_SHA384 delivered$" "$LOG"
}

@test "-S: the session is TLS from the start (stunnel): no STARTTLS, Received: says ESMTPS (TLS)" {
	OPTS+=(-S)
	run -0 smtp_fake_wrapper "EHLO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: x" "" "hi" . QUIT
	[[ "$output" != *STARTTLS* ]]
	[[ "$(received_unfolded "$SPOOL/jones")" == *" with ESMTPS (TLS) id "* ]]
}

@test "STARTTLS with an argument is 501, inside a transaction 503" {
	run -0 smtp_fake_wrapper "EHLO client.example" "STARTTLS now" \
	    "MAIL FROM:<a@example.org>" STARTTLS QUIT
	[ "$(reply_codes)" = "220 250 501 250 503 221" ]
	grep -qx "501 5.5.4 STARTTLS takes no argument" <<<"$output"
	grep -qx "503 5.5.1 STARTTLS not inside a transaction" <<<"$output"
}

@test "STARTTLS when the wrapper's control socket has gone: 454" {
	: >"$BATS_TEST_TMPDIR/c"
	python3 - "$SMTPD" "${OPTS[@]}" <<-'PY' >"$BATS_TEST_TMPDIR/out"
	import os, socket, subprocess, sys
	a, b = socket.socketpair()
	b.close()                       # the wrapper's end: gone
	env = dict(os.environ, SSLCTLFD=str(a.fileno()), SSLREADFD="0",
	           SSLWRITEFD="1")
	p = subprocess.run(sys.argv[1:], input=b"EHLO c.example\r\nSTARTTLS\r\nQUIT\r\n",
	                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
	                   env=env, pass_fds=(a.fileno(),), timeout=20)
	sys.stdout.write(p.stdout.decode())
	PY
	grep -q "^454 4.7.0 TLS not available due to temporary reason" "$BATS_TEST_TMPDIR/out"
	[[ "$(tail -n 1 "$BATS_TEST_TMPDIR/out")" == "221 "* ]]
}

@test "UCSPITLS=- offers no STARTTLS although the wrapper is there" {
	UCSPITLS=- run -0 smtp_fake_wrapper "EHLO client.example" STARTTLS QUIT
	[[ "$output" != *"250-STARTTLS"* ]]
	[ "$(reply_codes)" = "220 250 502 221" ]
}

@test "UCSPITLS=! and -R: MAIL, SEND, SOML, SAML, VRFY and EXPN before TLS answer 530; HELO, NOOP, RSET, HELP and QUIT work" {
	for how in env opt; do
		if [ "$how" = env ]; then
			export UCSPITLS='!'
		else
			unset UCSPITLS
			OPTS+=(-R)
		fi
		run -0 smtp_fake_wrapper "HELO client.example" \
		    "MAIL FROM:<a@example.org>" "SEND FROM:<a@example.org>" \
		    "SOML FROM:<a@example.org>" "SAML FROM:<a@example.org>" \
		    "VRFY jones" "EXPN jones" NOOP RSET "HELP MAIL" QUIT
		[ "$(reply_codes)" = "220 250 530 530 530 530 530 530 250 250 214 221" ]
		grep -qx "530 5.7.0 Must issue a STARTTLS command first" <<<"$output"
	done
}

@test "HELP lists STARTTLS with every other command of the table" {
	run -0 smtp HELP "HELP STARTTLS" QUIT
	grep -qw STARTTLS <<<"$output"
	grep -q "^214 2.0.0 STARTTLS" <<<"$output"
}

@test "the wrapper's descriptors reach neither the -F program nor the deliverer, and are close-on-exec in the dialogue" {
	cat >"$BATS_TEST_TMPDIR/fwd" <<-EOF
	#!/bin/sh
	(ls -l /proc/\$\$/fd) >"$BATS_TEST_TMPDIR/fds"
	cat >/dev/null
	EOF
	chmod 755 "$BATS_TEST_TMPDIR/fwd"
	OPTS+=(-F "$BATS_TEST_TMPDIR/fwd")
	export RELAYCLIENT=
	: >"$BATS_TEST_TMPDIR/ctl"
	export SSLCTLFD=5 SSLREADFD=6 SSLWRITEFD=7
	exec 5<>"$BATS_TEST_TMPDIR/ctl" 6</dev/null 7>/dev/null
	start_session held
	exec 5>&- 6<&- 7>&-
	send "EHLO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	grep -qx $'250-STARTTLS\r' "$OUT"
	dialogue=$(tr -d " " <"/proc/$PID/task/$PID/children")
	[ -n "$dialogue" ]
	# the deliverer: 0 to 2 and its socket pair on 3, nothing more
	run ls "/proc/$PID/fd"
	[ "$(tr '\n' ' ' <<<"$output")" = "0 1 2 3 " ]
	# the dialogue holds them, close-on-exec (O_CLOEXEC, 02000000)
	for fd in 5 6 7; do
		flags=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$dialogue/fdinfo/$fd")
		(( (8#$flags & 8#2000000) != 0 ))
	done
	send "MAIL FROM:<a@example.org>" "RCPT TO:<someone@elsewhere.example>" \
	    DATA "Subject: fds" "" "hi" . QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	grep -q '^250 2.0.0 Delivered' "$OUT"
	cat "$BATS_TEST_TMPDIR/fds"	# shown should it fail
	run awk -v script="$BATS_TEST_TMPDIR/fwd" \
	    '$(NF - 1) == "->" && $(NF - 2) > 2 && $NF != script { print }' \
	    "$BATS_TEST_TMPDIR/fds"
	[ "$output" = "" ]
}
