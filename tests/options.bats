# smtpd.8, DESCRIPTION: the command line, and how smtpd refuses a bad one.
load helpers

# A session of HELO and QUIT with the options of OPTS and then "$@".
start_with() {
	local OPTS=("${OPTS[@]}" "$@")
	smtp "HELO client.example" QUIT
}

# The last `run' was a refusal at start-up: a non-zero exit and, on
# stdout, the 421 naming $1 (mx.example by default) and nothing else.
refused_at_startup() {
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]	# not timeout(1): smtpd left by itself
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 ${1:-mx.example} local configuration error" ]
}

# --- -v -----------------------------------------------------------------

@test "-v prints the version on stdout and exits 0" {
	[ -n "$VERSION" ]
	run -0 --separate-stderr timeout 10 "$SMTPD" -v </dev/null
	[ "$output" = "smtpd $VERSION" ]
	[ "$stderr" = "" ]
}

# --- refusals at start-up -------------------------------------------------

@test "a bad option: exit 1 or 64, 421 on stdout, one line on stderr" {
	run start_with -x
	refused_at_startup
	[ "$status" -eq 1 ] || [ "$status" -eq 64 ]
	[ "$(wc -l <"$LOG")" -eq 1 ]
	grep -q '^smtpd\[[0-9]*\]: ' "$LOG"
}

@test "a bad option before any -n: the 421 names gethostname()" {
	host=$(uname -n)
	[ -n "$host" ]
	OPTS=(-x -e -T -a "$TABLE" -m "$SPOOL")
	run smtp QUIT
	refused_at_startup "$host"
}

@test "an option missing its value is refused" {
	run start_with -n
	refused_at_startup
}

@test "a stray argument after the options is refused" {
	run start_with extra
	refused_at_startup
}

@test "bad numbers for -s are refused" {
	for v in 0 -1 abc 10k 1.5 "" " 10" 99999999999999999999999; do
		run start_with -s "$v"
		echo "-s '$v'"
		refused_at_startup
	done
	run -0 start_with -s 100
	[ "$(codes)" = "220 250 221" ]
}

@test "bad numbers for -r are refused" {
	for v in 0 -1 abc 10k 1.5 "" " 10" 99999999999999999999999; do
		run start_with -r "$v"
		echo "-r '$v'"
		refused_at_startup
	done
	run -0 start_with -r 2
	[ "$(codes)" = "220 250 221" ]
}

@test "bad numbers for -t are refused" {
	for v in 0 -1 abc 10k 1.5 "" " 10" 99999999999999999999999; do
		run start_with -t "$v"
		echo "-t '$v'"
		refused_at_startup
	done
	run -0 start_with -t 5
	[ "$(codes)" = "220 250 221" ]
}

@test "-a naming a missing table is refused, the table named in the log" {
	run start_with -a "$BATS_TEST_TMPDIR/no-such-table"
	refused_at_startup
	[ "$status" -eq 1 ]
	[ "$(wc -l <"$LOG")" -eq 1 ]
	grep -q "no-such-table" "$LOG"
}

@test "-a naming a directory (an unreadable table) is refused" {
	mkdir "$BATS_TEST_TMPDIR/tabledir"
	run start_with -a "$BATS_TEST_TMPDIR/tabledir"
	refused_at_startup
	[ "$status" -eq 1 ]
}

@test "a missing spool directory is refused at start-up with 421" {
	run start_with -m "$BATS_TEST_TMPDIR/no-such-spool"
	refused_at_startup
	[ "$status" -eq 1 ]
	[ "$(wc -l <"$LOG")" -eq 1 ]
	grep -q "no-such-spool" "$LOG"
	[ ! -e "$BATS_TEST_TMPDIR/no-such-spool" ]
}

@test "a spool that is a file, not a directory, is refused at start-up" {
	: >"$BATS_TEST_TMPDIR/spoolfile"
	run start_with -m "$BATS_TEST_TMPDIR/spoolfile"
	refused_at_startup
	[ "$status" -eq 1 ]
	[ ! -s "$BATS_TEST_TMPDIR/spoolfile" ]
}

# --- -n, -d -------------------------------------------------------------

@test "-n sets the name in the greeting, the replies and Received:" {
	OPTS=(-e -T -n relay.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones@relay.example>" DATA "Subject: named" "" "x" . QUIT
	[ "${lines[0]}" = "220 relay.example ESMTP smtpd $VERSION" ]
	[ "${lines[1]}" = "250 relay.example" ]
	[ "$(last_reply)" = "221 2.0.0 relay.example closing connection" ]
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	re="^Received: from client\.example \(localhost\) by relay\.example"
	re+=" \(smtpd ${VERSION//./\\.}\) with SMTP id [0-9A-Z-]+"
	re+=" for <jones@relay\.example>; "
	[[ "$(received_unfolded "$SPOOL/jones")" =~ $re ]]
}

@test "-n also names the host in EHLO's first line" {
	OPTS=(-e -T -n relay.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp "EHLO client.example" QUIT
	[ "${lines[1]}" = "250-relay.example" ]
}

@test "without -d the host name and localhost are the local domains" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones@mx.example>" "RCPT TO:<smith@localhost>" \
	    "RCPT TO:<brown@example.com>" "VRFY brown" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones@mx.example> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <smith@localhost> OK" ]
	[ "${lines[5]}" = "550 5.7.1 relaying denied" ]
	[ "${lines[6]}" = "250 2.1.5 Bob Brown <brown@mx.example>" ]
}

@test "-d: the first domain is VRFY's, each one is local, others relaying" {
	OPTS+=(-d example.com -d other.example)
	run -0 smtp "VRFY smith" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<jones@example.com>" \
	    "RCPT TO:<smith@Other.Example>" "RCPT TO:<brown@elsewhere.example>" \
	    "RCPT TO:<brown@mx.example>" "RCPT TO:<nobody@example.com>" QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@example.com>" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones@example.com> OK" ]
	[ "${lines[5]}" = "250 2.1.5 Recipient <smith@Other.Example> OK" ]
	[ "${lines[6]}" = "550 5.7.1 relaying denied" ]
	[ "${lines[7]}" = "550 5.7.1 relaying denied" ]	# not a -d domain
	[ "${lines[8]}" = "550 5.1.1 <nobody@example.com>: user unknown" ]
}

# --- -r, -s ---------------------------------------------------------------

@test "-r 2: the third RCPT is 452, the message goes to the first two" {
	OPTS+=(-r 2)
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<smith>" "RCPT TO:<jones>" "RCPT TO:<brown>" DATA \
	    "Subject: two" "" "x" . QUIT
	[ "${lines[5]}" = "452 4.5.3 Too many recipients" ]
	[ "$(codes)" = "220 250 250 250 250 452 354 250 221" ]
	[ "$(count_messages smith)" = 1 ]
	[ "$(count_messages jones)" = 1 ]
	[ ! -e "$SPOOL/brown" ]
}

@test "-r counts each transaction anew" {
	OPTS+=(-r 1)
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<smith>" "RCPT TO:<jones>" RSET \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<jones>" QUIT
	[ "$(codes)" = "220 250 250 250 452 250 250 250 221" ]
	[ "${lines[7]}" = "250 2.1.5 Recipient <jones> OK" ]
}

@test "-s 100: EHLO says SIZE 100, a bigger message is 552, nothing delivered" {
	OPTS+=(-s 100)
	big=$(head -c 120 /dev/zero | tr '\0' x)
	run -0 smtp "EHLO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: big" "" "$big" . NOOP QUIT
	grep -qx '250-SIZE 100' <<<"$output"
	n=${#lines[@]}
	[ "${lines[n-4]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[ "${lines[n-3]}" = \
	    "552 5.3.4 Message size exceeds fixed maximum message size (100)" ]
	[ "${lines[n-2]}" = "250 2.0.0 OK" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "-s 100: a message under the limit is still delivered" {
	OPTS+=(-s 100)
	run -0 smtp "${TRANSACTION[@]}" "Subject: small" "" "x" . QUIT
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "$(count_messages jones)" = 1 ]
}

# --- -T -------------------------------------------------------------------

@test "-T: system accounts such as root and daemon are not users" {
	getent passwd root >/dev/null
	getent passwd daemon >/dev/null || skip "no system account daemon"
	run -0 smtp "VRFY root" "VRFY daemon" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<root>" "RCPT TO:<daemon>" \
	    "RCPT TO:<jones>" QUIT
	[ "${lines[1]}" = "550 5.1.1 String does not match anything" ]
	[ "${lines[2]}" = "550 5.1.1 String does not match anything" ]
	[ "${lines[5]}" = "550 5.1.1 <root>: user unknown" ]
	[ "${lines[6]}" = "550 5.1.1 <daemon>: user unknown" ]
	[ "${lines[7]}" = "250 2.1.5 Recipient <jones> OK" ]
}

@test "without -T: system accounts are users, full name from GECOS" {
	getent passwd daemon >/dev/null || skip "no system account daemon"
	gecos=$(gecos_name root)
	[ -n "$gecos" ] || skip "root has no full name in its GECOS here"
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp "VRFY root" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<root>" "RCPT TO:<daemon>" \
	    "RCPT TO:<jones>" QUIT
	[ "${lines[1]}" = "250 2.1.5 $gecos <root@mx.example>" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <root> OK" ]
	[ "${lines[5]}" = "250 2.1.5 Recipient <daemon> OK" ]
	[ "${lines[6]}" = "250 2.1.5 Recipient <jones> OK" ]
}

# --- -t -------------------------------------------------------------------

# A client that sends nothing and never closes (a FIFO this shell holds
# open, never written); smtpd's exit status and the time it left are
# kept in files.
silent_client() {
	local fifo="$BATS_TEST_TMPDIR/silent" hold
	mkfifo "$fifo"
	exec {hold}<>"$fifo"
	smtp_raw <"$fifo" && echo 0 >"$BATS_TEST_TMPDIR/rc" ||
	    echo $? >"$BATS_TEST_TMPDIR/rc"
	now_ms >"$BATS_TEST_TMPDIR/end"
	exec {hold}>&-
}

@test "-t 1: a client that sends nothing gets 421 4.4.2 timeout" {
	OPTS+=(-t 1)
	start=$(now_ms)
	run -0 silent_client
	elapsed=$(($(cat "$BATS_TEST_TMPDIR/end") - start))
	[ "$(cat "$BATS_TEST_TMPDIR/rc")" -eq 0 ]
	[ "$(codes)" = "220 421" ]
	[ "${lines[1]}" = "421 4.4.2 mx.example timeout" ]
	[ "$elapsed" -ge 900 ]
	[ "$elapsed" -lt 5000 ]		# the client never ends its input
}

# --- -e, and silence on stderr without it ---------------------------------

@test "-e writes the log lines on stderr, none on stdout" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: logged" "" "secret body" . \
	    QUIT
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "$(wc -l <"$LOG")" -ge 3 ]
	# every line of stderr is a log line, none a reply
	[ "$(grep -cv '^smtpd\[[0-9]*\]: ' "$LOG")" -eq 0 ]
	head -n 1 "$LOG" | grep -q 'start client=local'
	tail -n 1 "$LOG" | grep -q 'end client=local'
	grep -q 'from=<sender@example.org>.*jones' "$LOG"
	[ "$(grep -c 'secret body' "$LOG")" -eq 0 ]
	[ "$(grep -c 'smtpd\[' <<<"$output")" -eq 0 ]
}

@test "without -e and without a tty nothing is written on stderr" {
	OPTS=(-T -n mx.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp BOGUS "${TRANSACTION[@]}" "Subject: quiet" "" "x" . \
	    "RCPT TO:<nobody>" QUIT
	[ "$(codes)" = "220 500 250 250 250 354 250 503 221" ]
	[ "$(count_messages jones)" = 1 ]
	[ -e "$LOG" ]
	[ ! -s "$LOG" ]
}

@test "without -e a refusal at start-up writes nothing on stderr either" {
	OPTS=(-T -n mx.example -a "$TABLE" -m "$BATS_TEST_TMPDIR/no-such-spool")
	run smtp QUIT
	refused_at_startup
	[ -e "$LOG" ]
	[ ! -s "$LOG" ]
	OPTS=(-n mx.example -x -a "$TABLE" -m "$SPOOL")
	run smtp QUIT
	refused_at_startup
	[ ! -s "$LOG" ]
}

@test "without -e a timeout writes nothing on stderr" {
	OPTS=(-T -n mx.example -a "$TABLE" -m "$SPOOL" -t 1)
	run -0 silent_client
	[ "${lines[1]}" = "421 4.4.2 mx.example timeout" ]
	[ ! -s "$LOG" ]
}
