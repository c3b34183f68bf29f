#!/usr/bin/env bats
# Policy at the door (smtpd.8, CONTENT FILTER and POLICY): the -X filter
# with test filters that behave and misbehave, and with
# examples/filters/spamassassin and Debian's SpamAssassin; early talkers
# (-g) under tcpserver and systemd-socket-activate; HTTP clients; the
# refusal lines of the log read by fail2ban-regex with
# examples/fail2ban/filter.d/smtpd.conf.  Needs python3; SpamAssassin,
# fail2ban, tcpserver, systemd-socket-activate and curl where a test
# says so, and skips, saying which, where one is missing.
load helpers

EXAMPLES="$BATS_TEST_DIRNAME/../examples"
RECORD="$BATS_TEST_TMPDIR/recorded"

teardown() {
	stop_started
}

# A filter script $1 in the test's directory, its body from stdin.
filter() {
	{
		echo '#!/bin/sh'
		cat
	} >"$BATS_TEST_TMPDIR/$1"
	chmod 755 "$BATS_TEST_TMPDIR/$1"
	mkdir -p "$RECORD" && chmod 1777 "$RECORD"
}

# One transaction from smith@client.example to jones, with the message
# $1 (DATA's lines, the dot included, as "$(message)" gives them: the
# last LF taken off, its CR kept), then NOOP and QUIT.
mail_jones() {
	printf '%s\r\n' "EHLO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA
	printf '%s\n' "$1"
	printf '%s\r\n' NOOP QUIT
}

# The reply to the end of DATA in the last `run': the line after 354.
data_reply() {
	printf '%s\n' "${lines[@]}" | sed -n '/^354 /{n;p;q}'
}

# A whole ordinary message, as a person's mail client makes it.
ordinary() {
	printf '%s\r\n' "From: Fred Smith <smith@client.example>" \
	    "To: Joe Jones <jones@mx.example>" "Subject: lunch tomorrow" \
	    "Date: Thu, 03 Dec 2026 10:00:00 +0000" \
	    "Message-ID: <lunch.20261203@client.example>" "" \
	    "Joe, shall we have lunch tomorrow at noon?" "Fred" "."
}

# --- the filter's protocol ---------------------------------------------

@test "-X: the filter reads the message with smtpd's trace header, its environment holds the envelope and nothing else" {
	filter record <<-EOF
	env >"$RECORD/env"
	id -u >"$RECORD/uid"
	cat >"$RECORD/in"
	exit 0
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/record")
	export TCPREMOTEIP=192.0.2.7
	run -0 smtp "EHLO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" "RCPT TO:<Brown>" DATA "Subject: x" "" "..dot" \
	    "." QUIT
	id=$(printf '%s\n' "${lines[@]}" | sed -n 's/^250 2.0.0 Delivered, id //p')
	[ -n "$id" ]
	run -0 sort "$RECORD/env"
	# sh adds PWD, SHLVL and _ of its own; everything else is smtpd's
	run -0 grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' "$RECORD/env"
	printf '%s\n' "${lines[@]}" | sort >"$BATS_TEST_TMPDIR/got"
	printf '%s\n' "PATH=$PATH" "SMTP_HELO=client.example" "SMTP_ID=$id" \
	    "SMTP_RECIPIENTS=jones" "Brown" "SMTP_SENDER=smith@client.example" \
	    "SMTP_TLS=" "TCPREMOTEIP=192.0.2.7" | sort >"$BATS_TEST_TMPDIR/want"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	# what it read is what the mailbox holds after the From_ line
	tail -n +2 "$SPOOL/jones" | head -n -1 >"$BATS_TEST_TMPDIR/stored"
	diff "$RECORD/in" "$BATS_TEST_TMPDIR/stored"
	head -n 2 "$RECORD/in" | grep -qx 'Return-Path: <smith@client.example>'
	grep -qx 'Received: from client.example (\[192.0.2.7\])' "$RECORD/in"
	grep -qx '.dot' "$RECORD/in"
}

@test "-X as root: the filter runs as the unprivileged account, nobody" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	filter record <<-EOF
	id -u >"$RECORD/uid"
	cat >/dev/null
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/record")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(cat "$RECORD/uid")" = "$(id -u nobody)" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "-X: exit 0 delivers with the header fields it printed below Received:, in every mailbox" {
	filter fields <<-'EOF'
	cat >/dev/null
	printf 'X-Checked: yes\r\nX-Score: 1.5\n\t(folded)\n'
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/fields")
	run -0 smtp "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" "RCPT TO:<brown>" DATA "Subject: x" "" "hi" . QUIT
	for box in jones brown; do
		run -0 sed -n '/^Received:/,/^$/p' "$SPOOL/$box"
		[ "${lines[3]}" = "X-Checked: yes" ]
		[ "${lines[4]}" = "X-Score: 1.5" ]
		[ "${lines[5]}" = $'\t(folded)' ]
		[ "${lines[6]}" = "Subject: x" ]
	done
}

@test "-X: exit 100 refuses with 554 5.7.1 and its first line, nothing delivered, the session goes on" {
	filter refuse <<-'EOF'
	cat >/dev/null
	printf 'Spam detected\tscore 99 \001\nsecond line\n'
	exit 100
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/refuse")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(data_reply)" = "554 5.7.1 Spam detected?score 99 ?" ]
	[ "${lines[-2]}" = "250 2.0.0 OK" ]
	[ ! -e "$SPOOL/jones" ]
	grep -q ' refused: 554 by the filter: Spam detected?score 99 ?$' "$LOG"
	# nothing printed: the text says who refused
	filter quiet <<-'EOF'
	cat >/dev/null; exit 100
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/quiet")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(data_reply)" = "554 5.7.1 Message refused by the content filter" ]
}

# Each misbehaving filter: 451 4.7.1, nothing delivered, the session
# goes on, and the log says why.
temp_failure() {
	OPTS+=(-t 2 -X "$BATS_TEST_TMPDIR/$1")
	run -0 smtp_raw < <(mail_jones "$2")
	[ "$(data_reply)" = "451 4.7.1 Content filter unavailable, try again later" ]
	[ "${lines[-2]}" = "250 2.0.0 OK" ]
	[ ! -e "$SPOOL/jones" ]
	grep -q " failed: 451 filter: $3\$" "$LOG"
	[ -z "$(ls -A "$TMPDIR" | grep -v -e '^spool$' -e '^aliases$' -e '^log$' \
	    -e '^recorded$' -e "^$1\$")" ]		# no temporary file left
}

@test "-X: a filter that exits 111 is a 451" {
	filter fail <<-'EOF'
	cat >/dev/null; exit 111
	EOF
	temp_failure fail "$(message)" "exited 111"
}

@test "-X: a filter killed by a signal is a 451" {
	filter crash <<-'EOF'
	cat >/dev/null; kill -SEGV $$
	EOF
	temp_failure crash "$(message)" "killed by signal 11"
}

@test "-X: a filter that never reads its input is a 451, for a message that fits the pipe and for one that does not" {
	filter deaf <<-'EOF'
	exit 0
	EOF
	temp_failure deaf "$(message)" "did not read the message"
	big=$(printf 'Subject: big\r\n\r\n'; for i in $(seq 2000); do
		printf 'line %04d of a message larger than a pipe buffer\r\n' "$i"
	done; printf '.\r\n')
	start=$(now_ms)
	temp_failure deaf "$big" "did not read the message"
	[ $(($(now_ms) - start)) -lt 1900 ]	# at once, not at -t
}

@test "-X: a filter that sleeps past the time limit is killed with what it started, a 451" {
	filter slow <<-EOF
	cat >/dev/null
	sleep 300 &
	echo \$! >"$RECORD/child"
	sleep 300
	EOF
	temp_failure slow "$(message)" "took too long: killed"
	child=$(cat "$RECORD/child")
	wait_for 5 sh -c "! kill -0 $child 2>/dev/null"
}

@test "-X: a filter that prints 1 MB is a 451, and so is one that prints what is no header field" {
	filter flood <<-'EOF'
	head -c 1048576 /dev/zero | tr '\0' 'x'; cat >/dev/null
	EOF
	temp_failure flood "$(message)" "printed more than 8 KiB"
	filter prose <<-'EOF'
	cat >/dev/null; echo "this message looks fine to me"
	EOF
	rm "$BATS_TEST_TMPDIR/flood"
	temp_failure prose "$(message)" "printed a line that is not a header field"
}

@test "-X: a filter that leaves a child behind after a verdict leaves no process" {
	filter parent <<-EOF
	cat >/dev/null
	sleep 300 &
	echo \$! >"$RECORD/child"
	exit 0
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/parent")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[[ "$(data_reply)" == "250 2.0.0 Delivered, id "* ]]
	child=$(cat "$RECORD/child")
	wait_for 5 sh -c "! kill -0 $child 2>/dev/null"
}

# --- SpamAssassin through examples/filters -----------------------------

have_spamassassin() {
	command -v spamassassin >/dev/null ||
	    skip "spamassassin not installed (apt-get install spamassassin)"
	OPTS+=(-t 60 -X "$EXAMPLES/filters/spamassassin")
	SMTP_WAIT=60
}

# bats test_tags=tools
@test "examples/filters/spamassassin: the GTUBE message is refused 554 before any 250, and reaches no mailbox" {
	have_spamassassin
	gtube='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
	run -0 smtp_raw < <(mail_jones "$(printf '%s\r\n' "Subject: test" "" \
	    "$gtube" .)")
	[[ "$(data_reply)" =~ ^"554 5.7.1 Message refused as spam (SpamAssassin score "[0-9.]+")"$ ]]
	[ ! -e "$SPOOL/jones" ]
	grep -q ' refused: 554 by the filter: Message refused as spam' "$LOG"
}

# bats test_tags=tools
@test "examples/filters/spamassassin: an ordinary message is delivered with X-Spam-Status added" {
	have_spamassassin
	run -0 smtp_raw < <(mail_jones "$(ordinary)")
	[[ "$(data_reply)" == "250 2.0.0 Delivered, id "* ]]
	[ "$(count_messages jones)" = 1 ]
	run -0 sed -n '/^Received:/,/^$/p' "$SPOOL/jones"
	# the first field after Received: and its folded lines
	first=$(printf '%s\n' "${lines[@]}" | awk 'NR > 1 && !/^[ \t]/ { print; exit }')
	[[ "$first" =~ ^"X-Spam-Status: No, score=" ]]
	grep -qx 'Joe, shall we have lunch tomorrow at noon?' "$SPOOL/jones"
}

@test "examples/filters/spamassassin spamc: with spamd down, a 451 (never a message let through unjudged)" {
	command -v spamc >/dev/null || skip "spamc not installed (apt-get install spamc)"
	port=$(free_port)	# free: no spamd there
	OPTS+=(-X "$EXAMPLES/filters/spamassassin spamc -d 127.0.0.1 -p $port")
	run -0 smtp_raw < <(mail_jones "$(ordinary)")
	[ "$(data_reply)" = "451 4.7.1 Content filter unavailable, try again later" ]
	[ ! -e "$SPOOL/jones" ]
}

# --- early talkers and other protocols ---------------------------------

# A python3 client on 127.0.0.1:$PORT.  `early': sends EHLO at once;
# `patient': waits for the greeting, then EHLO and QUIT.  `http LINE':
# sends LINE and two more lines at once after the greeting.  Prints
# every byte it got, with CR removed, until the server closes.
client() {
	timeout 20 python3 - "$PORT" "$@" <<-'PY'
	import socket, sys, time
	port, how = int(sys.argv[1]), sys.argv[2]
	s = socket.create_connection(("127.0.0.1", port), timeout=10)
	def rest():
	    got = b""
	    while True:
	        k = s.recv(4096)
	        if not k:
	            return got
	        got += k
	if how == "early":
	    s.sendall(b"EHLO client.example\r\n")
	    out = rest()
	else:
	    first = s.recv(4096)
	    if how == "patient":
	        s.sendall(b"EHLO client.example\r\nQUIT\r\n")
	    else:
	        s.sendall(sys.argv[3].encode() + b"\r\nHost: x\r\nEHLO x\r\n")
	    out = first + rest()
	sys.stdout.write(out.decode().replace("\r", ""))
	PY
}

start_tcpserver() {
	command -v tcpserver >/dev/null ||
	    skip "tcpserver not installed (apt-get install ucspi-tcp)"
	PORT=$(free_port)
	timeout 60 tcpserver -H -R -l0 127.0.0.1 "$PORT" "$SMTPD" "${OPTS[@]}" \
	    "$@" 2>>"$LOG" 3>&- &
	started $!
	wait_for 5 python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"
	sleep 0.2
	: >"$LOG"	# that probe was a session too
}

@test "-g 1 under tcpserver: a client that sends EHLO before the greeting gets 554 and is closed, logged; a patient one is served" {
	start_tcpserver -g 1
	run -0 client early
	[ "$output" = "554 5.5.1 mx.example talked before the greeting" ]
	wait_for_line "$LOG" 'talked before the greeting\)$'
	grep -q '^smtpd\[[0-9]*\]: refused client=127.0.0.1: talked before the greeting$' "$LOG"
	run -0 client patient
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd $VERSION" ]
	[ "${lines[-1]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "-g 1 under systemd-socket-activate: the early talker is refused and logged" {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	PORT=$(free_port)
	timeout 60 systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
	    "$SMTPD" "${OPTS[@]}" -g 1 >/dev/null 2>>"$LOG" 3>&- &
	started $!
	wait_for 5 grep -qi ":$(printf '%04X' "$PORT") 00000000:0000 0A" /proc/net/tcp
	run -0 client early
	[ "$output" = "554 5.5.1 mx.example talked before the greeting" ]
	wait_for_line "$LOG" 'refused client=127.0.0.1: talked before the greeting$'
}

@test "early-talker checks are for sockets: a pipe's commands, written before the greeting, are served" {
	OPTS+=(-g 1)
	run -0 smtp "HELO client.example" QUIT
	[ "${lines[1]}" = "250 mx.example" ]
}

@test "an HTTP request line is answered 421 and the connection closed at once, nothing after it answered" {
	for line in "GET / HTTP/1.1" "CONNECT mx.example:443 HTTP/1.1" \
	    "POST /cgi-bin/x HTTP/1.0" "HEAD / HTTP/1.1"; do
		export TCPREMOTEIP=192.0.2.9
		run -0 smtp "$line" "Host: mx.example" "EHLO client.example" QUIT
		[ "${#lines[@]}" = 2 ]
		[ "${lines[1]}" = "421 4.7.0 mx.example not an SMTP client" ]
		grep -qx "smtpd\[[0-9]*\]: refused client=192.0.2.9: not an SMTP client: $line" "$LOG"
	done
	# the verbs are HTTP's own, upper case: "get" is an unknown command
	run -0 smtp "get / HTTP/1.1" QUIT
	[ "${lines[1]}" = "500 5.5.2 Command unrecognized" ]
}

@test "curl http:// against smtpd under tcpserver: no HTTP answer, the connection closed" {
	command -v curl >/dev/null || skip "curl not installed"
	start_tcpserver
	run timeout 10 curl -s -m 8 "http://127.0.0.1:$PORT/"
	[ "$status" != 0 ]
	[ "$status" != 124 ]	# closed, not left to time out
	wait_for_line "$LOG" 'refused client=127.0.0.1: (not an SMTP client: GET / HTTP/1.1|talked before the greeting)$'
}

# --- the log, read by fail2ban -----------------------------------------

@test "fail2ban-regex with examples/fail2ban finds every refused client of these sessions, and no line of a good one" {
	command -v fail2ban-regex >/dev/null ||
	    skip "fail2ban-regex not installed (apt-get install fail2ban)"
	all="$BATS_TEST_TMPDIR/all.log"
	session() {	# address, then the command lines
		local ip=$1
		shift
		TCPREMOTEIP=$ip smtp "$@" >/dev/null
		cat "$LOG" >>"$all"
	}
	session 192.0.2.1 "HELO c" "MAIL FROM:<a@c.example>" \
	    "RCPT TO:<x@elsewhere.example>" QUIT
	session 192.0.2.2 "HELO c" "MAIL FROM:<a@c.example>" "RCPT TO:<green>" QUIT
	errors=()
	for i in $(seq 20); do errors+=("BOGUS $i"); done
	session 192.0.2.3 "${errors[@]}"
	junk=()
	for i in $(seq 100); do junk+=(NOOP); done
	session 192.0.2.4 "${junk[@]}"
	session 192.0.2.6 "GET / HTTP/1.1"
	filter refuse <<-'EOF'
	cat >/dev/null; echo spam; exit 100
	EOF
	filter broken <<-'EOF'
	cat >/dev/null; exit 111
	EOF
	saved=("${OPTS[@]}")
	OPTS+=(-X "$BATS_TEST_TMPDIR/refuse")
	session 192.0.2.7 "HELO c" "MAIL FROM:<a@c.example>" "RCPT TO:<jones>" \
	    DATA "Subject: x" "" "x" . QUIT
	OPTS=("${saved[@]}" -X "$BATS_TEST_TMPDIR/broken")
	session 198.51.100.2 "HELO c" "MAIL FROM:<a@c.example>" "RCPT TO:<jones>" \
	    DATA "Subject: x" "" "x" . QUIT
	OPTS=("${saved[@]}")
	session 198.51.100.1 "EHLO c" "VRFY jones" "MAIL FROM:<a@c.example>" \
	    "RCPT TO:<jones>" DATA "Subject: x" "" "x" . QUIT
	# the early talker and the TLS handshake: from their own tests' runs
	printf '%s\n' "smtpd[1]: refused client=192.0.2.5: talked before the greeting" \
	    "smtpd[2]: TLS handshake failed client=2001:db8::8" \
	    "smtpd[2]: TLS started client=198.51.100.1 protocol=TLSv1.2 cipher=X" >>"$all"
	grep -q ' delivered$' "$all"
	grep -q ' failed: 451 filter: exited 111$' "$all"
	# as syslog writes them into /var/log/mail.log; the filter next to
	# the common.conf it includes, as in /etc/fail2ban/filter.d
	sed 's/^/Dec  3 10:00:00 mx /' "$all" >"$BATS_TEST_TMPDIR/mail.log"
	mkdir "$BATS_TEST_TMPDIR/filter.d"
	cp /etc/fail2ban/filter.d/common.conf "$EXAMPLES/fail2ban/filter.d/smtpd.conf" \
	    "$BATS_TEST_TMPDIR/filter.d/"
	run -0 fail2ban-regex -o '<ip>' "$BATS_TEST_TMPDIR/mail.log" \
	    "$BATS_TEST_TMPDIR/filter.d/smtpd.conf"
	[ "$(printf '%s\n' "${lines[@]}" | sort -u | tr '\n' ' ')" = \
	    "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6 192.0.2.7 2001:db8::8 " ]
	# one line a refusal: each address matched once
	[ "${#lines[@]}" = 8 ]
}
