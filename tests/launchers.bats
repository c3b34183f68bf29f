#!/usr/bin/env bats
# smtpd deployed the way examples/ says (smtpd.8, LAUNCHING and LOGGING),
# driven by clients that are not ours.  Launchers: examples/tcpserver/run
# with its rules compiled by tcprules; the ExecStart= of
# examples/smtpd@.service under systemd-socket-activate --inetd -a (what
# systemd's Accept=yes socket does); the line of examples/inetd.conf under
# openbsd-inetd in the foreground.  Clients: curl smtp://, python3's
# smtplib, and a raw client that pipelines (RFC 2920).  The log is smtpd's
# -e output; launchers-helpers.bash tells the details.
#
# Not here: xinetd (on Debian it conflicts with openbsd-inetd, which the
# inetd tests use; debian.bats runs its example from an unpacked binary),
# and the systemd unit's StandardError=journal (it needs a running
# systemd): the inetd tests check instead that, without -e, nothing but
# SMTP replies reaches a client whose socket is also standard error.
# Needs curl, python3, ucspi-tcp, systemd (systemd-socket-activate) and
# openbsd-inetd; a test whose launcher is missing is skipped.
load helpers
load launchers-helpers

# common_setup ($SMTPD, $SPOOL, $TABLE with smith, jones and brown,
# $LOG), then launchers_setup: the -F program and marker.
setup() {
	common_setup
	launchers_setup
}

teardown() {
	stop_server
}

# The pid of the session that tcpserver -v says it started.
tcpserver_child() {
	sed -n 's/^tcpserver: pid \([0-9]*\) from 127\.0\.0\.1$/\1/p' "$LOG"
}

# --- tcpserver: examples/tcpserver/run and rules ------------------------

@test "tcpserver run script: curl sends one message to two mailboxes" {
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --mail-rcpt brown --upload-file "$BATS_TEST_TMPDIR/msg"
	run -0 cat "$REPLIES"
	[ "${lines[0]}" = "220 mx.example.org ESMTP smtpd 0.1" ]
	[ "${lines[1]}" = "250-mx.example.org" ]
	[ "${lines[2]}" = "250-PIPELINING" ]
	run -0 grep -v '^250-' "$REPLIES"
	[ "${#lines[@]}" -ge 7 ]
	[ "${lines[1]}" = "250 HELP" ]
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <brown> OK" ]
	[ "${lines[5]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	id=$(delivered_id "$REPLIES")
	[ -n "$id" ]
	# two recipients: no `for <...>' in Received: (blind copies stay blind)
	for box in jones brown; do
		check_mbox "$SPOOL/$box" -H \
		    "Received: from client.example ([127.0.0.1])" \
		    $'\tby mx.example.org (smtpd 0.1) with ESMTP id ID;' $'\tDATE'
		grep -qx "	by mx.example.org (smtpd 0.1) with ESMTP id $id;" \
		    "$SPOOL/$box"
	done
	[ ! -e "$BATS_TEST_TMPDIR/forward.args" ]	# nothing to forward
}

@test "tcpserver run script: the log has the session's start, its transaction and its end, never the body" {
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --mail-rcpt brown --upload-file "$BATS_TEST_TMPDIR/msg"
	id=$(delivered_id "$REPLIES")
	size=$(wc -c <"$BATS_TEST_TMPDIR/msg")
	# tcpserver -v names the smtpd it started; the session's lines are
	# its dialogue's, a process of its own (smtpd.8, PRIVILEGE SEPARATION)
	wait_for_line "$LOG" '^tcpserver: pid [0-9]+ from 127\.0\.0\.1$'
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	pid=$(session_pid)
	[ "$pid" != "$(tcpserver_child)" ]
	run -0 smtpd_log
	[ "${#lines[@]}" -eq 3 ]
	# tcpserver without -H adds the client's DNS name, if it has one
	[[ "${lines[0]}" =~ ^"smtpd[$pid]: start client=127.0.0.1"( host=[A-Za-z0-9.-]+)?$ ]]
	[ "${lines[1]}" = "smtpd[$pid]: id=$id client=127.0.0.1 from=<smith@client.example> to=<jones>,<brown> size=$size delivered" ]
	[ "${lines[2]}" = "smtpd[$pid]: end client=127.0.0.1 messages=1 (QUIT)" ]
	grep -qF "$MARKER" "$SPOOL/jones"	# the marker was sent...
	check_log_clean				# ...and is not in the log
}

@test "tcpserver run script: smtplib sends to three recipients, the unknown one refused 550" {
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones green brown \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "refused green: 550 5.1.1 <green>: user unknown" ]
	[ "${lines[1]}" = "sent" ]
	[ "${lines[2]}" = "QUIT 221 2.0.0 mx.example.org closing connection" ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages brown)" = 1 ]
	[ ! -e "$SPOOL/green" ]
	grep -qx "Hello, $MARKER." "$SPOOL/brown"
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[[ "${lines[1]}" =~ ^smtpd\[[0-9]+\]:\ refused\ client=127\.0\.0\.1:\ user\ unknown\ to=\<green\>$ ]]
	[[ "${lines[2]}" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=127\.0\.0\.1\ from=\<smith@client\.example\>\ to=\<jones\>,\<brown\>\ size=[0-9]+\ delivered$ ]]
	check_log_clean
}

@test "tcpserver rules: RELAYCLIENT for 127.0.0.1 lets curl relay through the -F program" {
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --mail-rcpt someone@elsewhere.example \
	    --upload-file "$BATS_TEST_TMPDIR/msg"
	grep -qx "250 2.1.5 Recipient <someone@elsewhere.example> OK" "$REPLIES"
	id=$(delivered_id "$REPLIES")
	[ -n "$id" ]
	[ "$(count_messages jones)" = 1 ]
	# the example's `-F "/usr/sbin/sendmail -oi"', sendmail's arguments
	run -0 cat "$BATS_TEST_TMPDIR/forward.args"
	[ "${lines[*]}" = "-oi -f smith@client.example -- someone@elsewhere.example" ]
	# the program gets the message after a Received: header
	run -0 head -n 1 "$BATS_TEST_TMPDIR/forward.msg"
	[[ "$output" =~ ^"Received: from client.example ("([A-Za-z0-9.-]+ )?"[127.0.0.1])"$ ]]
	grep -q "id $id;" "$BATS_TEST_TMPDIR/forward.msg"
	grep -q "^Hello, $MARKER\." "$BATS_TEST_TMPDIR/forward.msg"
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 grep -E "^smtpd\[[0-9]+\]: id=$id client=127\.0\.0\.1 from=<smith@client\.example> to=<jones>,<someone@elsewhere\.example> size=[0-9]+ delivered$" "$LOG"
	check_log_clean
}

@test "tcpserver rules without RELAYCLIENT (:allow alone): a remote recipient 550 5.7.1, local mail delivered" {
	echo ':allow' >"$BATS_TEST_TMPDIR/rules"
	start_tcpserver_example "$BATS_TEST_TMPDIR/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones \
	    someone@elsewhere.example <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "refused someone@elsewhere.example: 550 5.7.1 relaying denied" ]
	[ "${lines[1]}" = "sent" ]
	[ "$(count_messages jones)" = 1 ]
	[ ! -e "$BATS_TEST_TMPDIR/forward.args" ]
}

@test "tcpserver rules: a failing -F program is a 451, nothing delivered, and the log says 451 and why" {
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	echo 1 >"$BATS_TEST_TMPDIR/forward.status"
	write_message "$BATS_TEST_TMPDIR/msg"
	run ! curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --mail-rcpt someone@elsewhere.example \
	    --upload-file "$BATS_TEST_TMPDIR/msg"
	run -0 grep '^4' "$REPLIES"
	[ "$output" = "451 4.3.0 Local error in processing: forwarding failed" ]
	# all or nothing: jones's copy was taken back
	[ ! -s "$SPOOL/jones" ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 grep -E '^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ client=127\.0\.0\.1 from=<smith@client\.example> to=<jones>,<someone@elsewhere\.example> size=[0-9]+ ' "$LOG"
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *forward* ]]	# why
	[[ "$output" == *451* ]]	# the reply code, as for 552 and 554
	check_log_clean
}

@test "tcpserver: TCPREMOTEIP names the client, before REMOTE_ADDR and the socket" {
	printf '%s\n' '127.0.0.1:allow,TCPREMOTEIP="192.0.2.9"' ':allow' \
	    >"$BATS_TEST_TMPDIR/rules"
	REMOTE_ADDR=198.51.100.7 start_tcpserver_example "$BATS_TEST_TMPDIR/rules"
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "sent" ]
	run -0 grep -A 1 '^Received: ' "$SPOOL/jones"
	[[ "${lines[0]}" =~ ^"Received: from client.example ("([A-Za-z0-9.-]+ )?"[192.0.2.9])"$ ]]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ start\ client=192\.0\.2\.9( host=[A-Za-z0-9.-]+)?$ ]]
	[[ "${lines[1]}" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=192\.0\.2\.9\ from= ]]
	[[ "${lines[2]}" =~ ^smtpd\[[0-9]+\]:\ end\ client=192\.0\.2\.9\  ]]
}

@test "tcpserver: control characters from the client, and in TCPREMOTEHOST, never reach the log or headers raw" {
	# a DNS name is the client's to choose: any bytes (smtpd.8,
	# DESCRIPTION)
	printf '%s\n' $'127.0.0.1:allow,TCPREMOTEHOST="ev\e[31mil\a\x7f.example"' \
	    ':allow' >"$BATS_TEST_TMPDIR/rules"
	start_tcpserver_example "$BATS_TEST_TMPDIR/rules"
	run -0 pipeline_client $'EHLO cli\e[2Jent\a.example' \
	    $'MAIL FROM:<sm\eith@client.example>' \
	    $'RCPT TO:<jo\x7fnes>' $'VRFY \e[31mjones' $'NOOP \a\r' \
	    $'\e[2J' $'MAIL FROM:<smith@client.example>\nRCPT TO:<jones>\nDATA' \
	    $'Subject: test '"$MARKER"$'\n\nHello.\n.' QUIT
	printf '%s\n' "${lines[@]}" | grep -v '^250-' >"$BATS_TEST_TMPDIR/got"
	run -0 cut -c 1-3 "$BATS_TEST_TMPDIR/got"
	[ "${lines[*]}" = "220 250 501 503 550 500 500 250 250 354 250 221" ]
	# the log: the host name cleaned, nothing raw
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ start\ client=127\.0\.0\.1\ host=ev\?\?31mil\?\?\.example$ ]]
	check_log_clean
	# the mailbox's envelope headers: cleaned too
	run -0 grep -A 1 '^Received: ' "$SPOOL/jones"
	[ "${lines[0]}" = 'Received: from cli?[2Jent?.example (ev??31mil??.example [127.0.0.1])' ]
	sed '/^$/q' "$SPOOL/jones" >"$BATS_TEST_TMPDIR/head"
	run ! env LC_ALL=C grep -a $'[\x01-\x08\x0b-\x1f\x7f]' "$BATS_TEST_TMPDIR/head"
}

@test "tcpserver: C1 controls (U+0080-U+009F) from the client never reach the log or headers raw" {
	# U+009B is CSI, the one-byte escape sequence introducer
	start_tcpserver_example "$EXAMPLES/tcpserver/rules"
	run -0 pipeline_client $'EHLO cli\xc2\x9b2Jent.example' \
	    $'MAIL FROM:<sm\xc2\x9b31mith@client.example> SMTPUTF8' \
	    $'RCPT TO:<jones>' DATA $'Subject: test '"$MARKER"$'\n\nHello.\n.' QUIT
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run ! env LC_ALL=C grep -a $'\xc2[\x80-\x9f]' "$LOG"
	if [ -e "$SPOOL/jones" ]; then
		sed '/^$/q' "$SPOOL/jones" >"$BATS_TEST_TMPDIR/head"
		run ! env LC_ALL=C grep -a $'\xc2[\x80-\x9f]' "$BATS_TEST_TMPDIR/head"
	fi
}

@test "tcpserver run.public-mx: VRFY and EXPN tell nothing, SIZE is 25 MiB, relaying is refused, local mail delivered" {
	command -v tcpserver >/dev/null && command -v tcprules >/dev/null ||
	    skip "tcpserver, tcprules not installed (apt-get install ucspi-tcp)"
	timeout 10 tcprules "$BATS_TEST_TMPDIR/tcp.cdb" "$BATS_TEST_TMPDIR/tcp.tmp" \
	    <"$EXAMPLES/tcpserver/rules"
	RUN="$BATS_TEST_TMPDIR/run.public-mx"
	sed -e "s|/etc/smtpd/tcp\.cdb|$BATS_TEST_TMPDIR/tcp.cdb|g" \
	    -e "s|\([[:space:]]\)0 25 |\1-1 127.0.0.1 0 |" \
	    -e "s|/usr/local/sbin/smtpd|$SMTPD|" \
	    -e "s|/etc/smtpd/aliases|$TABLE -m $SPOOL|" \
	    "$EXAMPLES/tcpserver/run.public-mx" >"$RUN"
	run ! grep -E '^[^#].*/(etc|usr)/' "$RUN"
	timeout 60 sh "$RUN" >"$LOG" 2>&1 3>&- &
	SERVER_PID=$!
	wait_for_line "$LOG" '^[0-9]+$'
	PORT=$(grep -m 1 -E '^[0-9]+$' "$LOG")
	wait_listening "$SERVER_PID" "$PORT"
	run -0 pipeline_client "EHLO client.example" "VRFY jones" "EXPN jones" \
	    "MAIL FROM:<smith@client.example>" "RCPT TO:<far@remote.example>" \
	    "RCPT TO:<jones>" DATA $'Subject: public\n\nHello.\n.' QUIT
	replies=$output
	[[ "$replies" == *"250-SIZE 26214400"* ]]
	grep -q '^252 2.5.2 Cannot VRFY user' <<<"$replies"
	grep -q '^252 2.5.2 EXPN is disabled' <<<"$replies"
	grep -q '^550 5.7.1 relaying denied' <<<"$replies"
	grep -q '^250 2.0.0 Delivered, id ' <<<"$replies"
	run ! grep -E '^250-(VRFY|EXPN)' <<<"$replies"
	[ "$(count_messages jones)" = 1 ]
}

# --- systemd: examples/smtpd@.service under systemd-socket-activate -----

@test "systemd unit's command: curl delivers, and Received: names [127.0.0.1] from the socket" {
	start_socket_activate_example
	write_message "$BATS_TEST_TMPDIR/msg"
	curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --upload-file "$BATS_TEST_TMPDIR/msg"
	run -0 grep -v '^250-' "$REPLIES"
	[ "${lines[0]}" = "220 mx.example.org ESMTP smtpd 0.1" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones> OK" ]
	id=$(delivered_id "$REPLIES")
	[ -n "$id" ]
	# no TCPREMOTEIP, no REMOTE_ADDR here: getpeername() on stdin
	check_mbox "$SPOOL/jones" "" \
	    "Received: from client.example ([127.0.0.1])" \
	    $'\tby mx.example.org (smtpd 0.1) with ESMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE'
	size=$(wc -c <"$BATS_TEST_TMPDIR/msg")
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ start\ client=127\.0\.0\.1$ ]]
	[[ "${lines[1]}" =~ ^smtpd\[[0-9]+\]:\ id=$id\ client=127\.0\.0\.1\ from=\<smith@client\.example\>\ to=\<jones\>\ size=$size\ delivered$ ]]
	[[ "${lines[2]}" =~ ^smtpd\[[0-9]+\]:\ end\ client=127\.0\.0\.1\ messages=1\ \(QUIT\)$ ]]
	check_log_clean
}

@test "systemd unit's command: two pipelined transactions, each group in one send(), answered in order" {
	start_socket_activate_example
	# RFC 2920: MAIL, RCPTs and DATA in one send(); the end of a message
	# and the next transaction's commands in one send()
	run -0 pipeline_client "EHLO client.example" \
	    $'MAIL FROM:<smith@client.example>\nRCPT TO:<jones>\nRCPT TO:<green>\nRCPT TO:<brown>\nDATA' \
	    $'Subject: first '"$MARKER"$'\n\nOne.\n.\nMAIL FROM:<brown@client.example>\nRCPT TO:<smith>\nDATA' \
	    $'Subject: second '"$MARKER"$'\n\nTwo.\n..\n.\nQUIT'
	printf '%s\n' "${lines[@]}" | grep -v '^250-' >"$BATS_TEST_TMPDIR/got"
	run -0 sed -E 's/ id [0-9A-Z-]+$/ id ID/' "$BATS_TEST_TMPDIR/got"
	[ "${#lines[@]}" -eq 13 ]
	[ "${lines[0]}" = "220 mx.example.org ESMTP smtpd 0.1" ]
	[ "${lines[1]}" = "250 HELP" ]
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[4]}" = "550 5.1.1 <green>: user unknown" ]
	[ "${lines[5]}" = "250 2.1.5 Recipient <brown> OK" ]
	[ "${lines[6]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[ "${lines[7]}" = "250 2.0.0 Delivered, id ID" ]
	[ "${lines[8]}" = "250 2.1.0 Sender <brown@client.example> OK" ]
	[ "${lines[9]}" = "250 2.1.5 Recipient <smith> OK" ]
	[ "${lines[10]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[ "${lines[11]}" = "250 2.0.0 Delivered, id ID" ]
	[ "${lines[12]}" = "221 2.0.0 mx.example.org closing connection" ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages brown)" = 1 ]
	[ "$(count_messages smith)" = 1 ]
	grep -qx "Subject: first $MARKER" "$SPOOL/brown"
	run -0 sed -n '/^Subject: second/,$p' "$SPOOL/smith"
	[ "${lines[*]}" = "Subject: second $MARKER Two. ." ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[ "${#lines[@]}" -eq 5 ]
	[[ "${lines[1]}" =~ \ refused\ client=127\.0\.0\.1:\ user\ unknown\ to=\<green\>$ ]]
	[[ "${lines[2]}" =~ \ from=\<smith@client\.example\>\ to=\<jones\>,\<brown\>\ size=[0-9]+\ delivered$ ]]
	[[ "${lines[3]}" =~ \ from=\<brown@client\.example\>\ to=\<smith\>\ size=[0-9]+\ delivered$ ]]
	[[ "${lines[4]}" =~ \ end\ client=127\.0\.0\.1\ messages=2\ \(QUIT\)$ ]]
	check_log_clean
}

@test "systemd unit's command: REMOTE_ADDR (Accept=yes sets it) names the client, an IPv6 one as IPv6:" {
	SA_OPTS=(-E REMOTE_ADDR=2001:db8::7)
	start_socket_activate_example
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client steps smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[[ "${lines[2]}" =~ ^"DATA 250 2.0.0 Delivered, id " ]]
	check_mbox "$SPOOL/jones" "" \
	    "Received: from client.example ([IPv6:2001:db8::7])" \
	    $'\tby mx.example.org (smtpd 0.1) with ESMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE'
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 smtpd_log
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ start\ client=2001:db8::7$ ]]
	[[ "${lines[1]}" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=2001:db8::7\ from= ]]
}

@test "systemd unit's command: a message over -s is 552, with SIZE= at MAIL, without it after the data, and logged" {
	start_socket_activate_example -s 1000
	{ write_message /dev/stdout; for i in $(seq 40); do
		printf 'line %s of a message too big to be accepted\r\n' "$i"
	done; } >"$BATS_TEST_TMPDIR/msg"
	# smtplib declares SIZE= when the server offers it
	run -0 smtplib_client sendmail smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "SMTPSenderRefused 552 5.3.4 Message size exceeds fixed maximum message size (1000)" ]
	# without SIZE=, the data is read to its end, then 552
	run -0 smtplib_client steps smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "MAIL 250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[1]}" = "RCPT 250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[2]}" = "DATA 552 5.3.4 Message size exceeds fixed maximum message size (1000)" ]
	[ "${lines[3]}" = "QUIT 221 2.0.0 mx.example.org closing connection" ]
	[ ! -s "$SPOOL/jones" ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end .*messages=1'
	run -0 grep -E '^smtpd\[[0-9]+\]: id=' "$LOG"
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=127\.0\.0\.1\ from=\<smith@client\.example\>\ to=\<jones\>\ size=[0-9]+\ .*552 ]]
	[[ "$output" == *"too big"* ]]
	check_log_clean
}

@test "systemd unit's command: curl with bare LF line ends is refused 554, and the log says so" {
	start_socket_activate_example
	printf '%s\n' "Subject: test $MARKER" "" "Hello, $MARKER." \
	    >"$BATS_TEST_TMPDIR/msg"
	run ! curl_smtp --mail-from smith@client.example --mail-rcpt jones \
	    --upload-file "$BATS_TEST_TMPDIR/msg"
	run -0 grep '^5' "$REPLIES"
	[ "$output" = "554 5.6.0 Message refused: bare CR or LF in the data (lines must end in CRLF)" ]
	[ ! -s "$SPOOL/jones" ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end '
	run -0 grep -E '^smtpd\[[0-9]+\]: id=' "$LOG"
	[[ "$output" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=127\.0\.0\.1\ from=\<smith@client\.example\>\ to=\<jones\>\ size=[0-9]+\ .*554.*bare ]]
	check_log_clean
}

# --- inetd: examples/inetd.conf under openbsd-inetd ---------------------

@test "inetd line: smtplib delivers, and Received: names [127.0.0.1] from the socket" {
	start_inetd_example
	write_message "$BATS_TEST_TMPDIR/msg"
	run -0 smtplib_client sendmail smith@client.example jones \
	    <"$BATS_TEST_TMPDIR/msg"
	[ "${lines[0]}" = "sent" ]
	[ "${lines[1]}" = "QUIT 221 2.0.0 mx.example.org closing connection" ]
	check_mbox "$SPOOL/jones" "" \
	    "Received: from client.example ([127.0.0.1])" \
	    $'\tby mx.example.org (smtpd 0.1) with ESMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE'
}

@test "inetd line: with standard error on the socket, only SMTP replies reach the client, whatever is logged" {
	# a list with an unknown member (a table warning), a forward whose
	# program fails and talks on its standard error, an unknown command
	printf '%s\n' 'staff: jones, nosuchuser' 'jq: Joe Q <jq@usc-isiq.example>' \
	    >>"$TABLE"
	echo 1 >"$BATS_TEST_TMPDIR/forward.status"
	echo "noise from the -F program" >"$BATS_TEST_TMPDIR/forward.noise"
	start_inetd_example -T -F "$FWD"
	run -0 pipeline_client "EHLO client.example" BOGUS \
	    "MAIL FROM:<smith@client.example>" "RCPT TO:<staff>" \
	    "RCPT TO:<jq>" DATA $'Subject: test '"$MARKER"$'\n\nHello.\n.' QUIT
	printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/got"
	grep -qx "451 4.3.0 Local error in processing: forwarding failed" \
	    "$BATS_TEST_TMPDIR/got"	# the program did run, and fail
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/got")" = "221 2.0.0 mx.example.org closing connection" ]
	run ! grep -v -E '^[0-9]{3}[ -]' "$BATS_TEST_TMPDIR/got"
	run -0 grep -v '^250-' "$BATS_TEST_TMPDIR/got"
	[ "${#lines[@]}" -eq 9 ]
	[ ! -s "$SPOOL/jones" ]
}

@test "inetd line: a start-up error answers the client 421 alone" {
	TABLE="$BATS_TEST_TMPDIR/missing"
	start_inetd_example
	run -0 pipeline_client "EHLO client.example" QUIT
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example.org local configuration error" ]
}

@test "inetd line: a bad option answers the client 421 alone, no usage text" {
	start_inetd_example -Z
	run -0 pipeline_client "EHLO client.example" QUIT
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example.org local configuration error" ]
}

# --- the -C check of each example's command line ------------------------

@test "-C added to each example's command line: a clean set-up checks clean" {
	echo 'postmaster: smith' >>"$TABLE"
	# tcpserver: the run script itself, with a stand-in tcpserver that
	# skips its own options, host and port, and runs its program with -C
	mkdir "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/tcpserver" <<-'EOF'
	#!/bin/sh
	while [ $# -gt 0 ]; do
		case $1 in
		-[bcgltux]) shift 2 ;;
		-*) shift ;;
		*) break ;;
		esac
	done
	shift 2
	prog=$1
	shift
	exec "$prog" -C "$@"
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/tcpserver"
	tcpserver_run_script "$EXAMPLES/tcpserver/rules"
	run -0 env PATH="$BATS_TEST_TMPDIR/bin:$PATH" sh "$RUN" </dev/null
	[ -z "$output" ]
	service_command
	run -0 "${CMD[@]}" -C </dev/null
	[ -z "$output" ]
	inetd_line
	run -0 "${INETD_LINE[5]}" "${INETD_LINE[@]:7}" -C </dev/null
	[ -z "$output" ]
}

@test "-C added to the inetd line, run from a script: a bad option value is told on standard error, not as a 421" {
	echo 'postmaster: smith' >>"$TABLE"
	inetd_line
	run -1 --separate-stderr "${INETD_LINE[5]}" "${INETD_LINE[@]:7}" \
	    -C -s 10x </dev/null
	[ -z "$output" ]	# standard output: no SMTP reply, nobody to read it
	[[ "$stderr" == *10x* ]]
}
