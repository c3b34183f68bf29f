#!/usr/bin/env bats
# The TLS examples run as they are written (smtpd.8, TLS and LAUNCHING),
# only their paths, ports and the TLS engine's account replaced by the
# test's: examples/s6-networking/run (STARTTLS on 25), run.submission
# (587: TLS required, relaying for the addresses its rules allow),
# run.smtps (465: implicit TLS under s6-tlsserver), the ExecStart= of
# smtd-tls.service, and examples/stunnel/smtpd-465.conf under the
# tcpserver line its comment gives.  Real clients: swaks and python3's
# smtplib.  Each server listens on 127.0.0.1 and is ended by its pid.
# Needs root (the TLS engine drops to TLS_UID), s6-networking on PATH,
# openssl; run.submission also s6-accessrules-cdb-from-fs (Debian's s6),
# the stunnel test stunnel4 and tcpserver.  A test skips, saying which,
# where one is missing.
# bats file_tags=tools,slow
load helpers
load launchers-helpers

# common_setup and launchers_setup, then a key and a self-signed
# certificate for mx.test.
setup() {
	common_setup
	launchers_setup
	[ "$(id -u)" = 0 ] || skip "the examples' TLS engine changes its uid: needs root"
	command -v openssl >/dev/null || skip "openssl not installed"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.test \
	    -keyout "$BATS_TEST_TMPDIR/key.pem" \
	    -out "$BATS_TEST_TMPDIR/cert.pem" 2>/dev/null
	chmod 0600 "$BATS_TEST_TMPDIR/key.pem"
}

teardown() {
	stop_started
}

# The rules of run.submission's comment, for 127.0.0.1, compiled into
# $CDB: the address may connect, and relays (RELAYCLIENT empty).  With
# argument `deny', a rule set that allows no one.
submission_rules() {
	command -v s6-accessrules-cdb-from-fs >/dev/null ||
	    skip "s6-accessrules-cdb-from-fs not installed (apt-get install s6)"
	local rules="$BATS_TEST_TMPDIR/rules"
	CDB="$BATS_TEST_TMPDIR/submission.cdb"
	mkdir -p "$rules/ip4"
	if [ "${1:-}" != deny ]; then
		local d="$rules/ip4/127.0.0.1_32"
		mkdir -p "$d/env" && touch "$d/allow"
		echo >"$d/env/RELAYCLIENT"
	fi
	s6-accessrules-cdb-from-fs "$CDB" "$rules"
}

# The example $1 (a path under examples/, or an absolute one), made the
# test's into $RUN:
# its port ($2) on 0.0.0.0 becomes 127.0.0.1:$PORT, the key and the
# certificate the test's, the account smtpd-tls nobody, smtpd, its table
# and -F program the test's, with -m $SPOOL.  Fails when a path of the
# example is left outside its comments.
example_script() {
	PORT=$(free_port)
	local src=$1
	[ "${src#/}" != "$src" ] || src="$EXAMPLES/$1"
	RUN="$BATS_TEST_TMPDIR/$(basename "$1").run"
	sed -e "s|/opt/s6-networking/bin|$S6BIN|g" \
	    -e "s|id -\([ug]\) smtpd-tls|id -\1 nobody|g" \
	    -e "s|/etc/smtpd/tls/key\.pem|$BATS_TEST_TMPDIR/key.pem|g" \
	    -e "s|/etc/smtpd/tls/cert\.pem|$BATS_TEST_TMPDIR/cert.pem|g" \
	    -e "s|/etc/smtpd/submission\.cdb|${CDB:-}|g" \
	    -e "s|0\.0\.0\.0 $2\b|127.0.0.1 $PORT|" \
	    -e "s|/usr/local/sbin/smtpd|$SMTPD|" \
	    -e "s|/etc/smtpd/aliases|$TABLE -m $SPOOL|" \
	    -e "s|\"/usr/sbin/sendmail -oi\"|\"$FWD -oi\"|" \
	    "$src" >"$RUN"
	! grep -v '^[#;]' "$RUN" | grep -E '/etc/|/usr/local|/usr/sbin|0\.0\.0\.0'
	chmod +x "$RUN"
}

# Run $RUN in the background, its output (the example's log) into $LOG,
# until it listens.
start_example() {
	"$@" "$RUN" </dev/null >>"$LOG" 2>&1 3>&- &
	SERVER_PID=$!
	started "$SERVER_PID"
	wait_listening "$SERVER_PID" "$PORT"
}

# swaks to $PORT: a message from smith@client.example to $1, more swaks
# options after.
swaks_to() {
	local to=$1
	shift
	run timeout 30 swaks --server 127.0.0.1 --port "$PORT" \
	    --helo client.example --from smith@client.example --to "$to" \
	    --body "Hello, $MARKER." "$@"
}

# The message reached jones once, over TLS: the Received: header says
# ESMTPS and, after it, the comment that the extended regular expression
# $1 matches.
jones_over_tls() {
	[ "$(count_messages jones)" = 1 ]
	grep -qx "Hello, $MARKER." "$SPOOL/jones"
	awk '/^Received:/ { r = $0; next } r && /^[ \t]/ { r = r $0; next }
	r { print r; exit }' "$SPOOL/jones" | tr -s '\t ' ' ' >"$BATS_TEST_TMPDIR/rcvd"
	grep -Eq " with ESMTPS $1 id " "$BATS_TEST_TMPDIR/rcvd"
}

# --- examples/s6-networking ---------------------------------------------

@test "s6-networking/run: STARTTLS offered on port 25, swaks delivers over it, the log says TLS started" {
	have_s6_networking
	have_swaks_tls
	example_script s6-networking/run 25
	start_example sh
	swaks_to jones --tls
	[ "$status" = 0 ]
	[[ "$output" == *"STARTTLS"* ]]
	wait_until 5 grep -q ' delivered$' "$LOG"
	jones_over_tls '\(TLSv1\.[23] [A-Z0-9_-]+\)'
	grep -Eq '^smtpd\[[0-9]+\]: TLS started client=127\.0\.0\.1 protocol=TLSv1\.[23] cipher=' "$LOG"
}

@test "s6-networking/run: a public MX, so mail in clear is still taken" {
	have_s6_networking
	have_swaks_tls
	example_script s6-networking/run 25
	start_example sh
	swaks_to jones
	[ "$status" = 0 ]
	wait_until 5 grep -q ' delivered$' "$LOG"
	grep -q ' with ESMTP id ' "$SPOOL/jones"
}

@test "s6-networking/run: the TLS engine runs as TLS_UID, smtpd's dialogue as nobody, its deliverer as root" {
	have_s6_networking
	example_script s6-networking/run 25
	start_example sh
	# hold a session open after STARTTLS, then look at its processes
	mkfifo "$BATS_TEST_TMPDIR/in"
	exec {W}<>"$BATS_TEST_TMPDIR/in"
	timeout 20 openssl s_client -quiet -starttls smtp \
	    -connect "127.0.0.1:$PORT" <"$BATS_TEST_TMPDIR/in" \
	    >"$BATS_TEST_TMPDIR/out" 2>/dev/null {W}>&- &
	started $!
	printf 'EHLO client.example\r\n' >&"$W"
	wait_until 10 grep -q '^250 ' "$BATS_TEST_TMPDIR/out"
	# the server (the run script's shell, exec'd into s6-tcpserver4d),
	# smtpd's root half under it (s6-ucspitlsd exec'd into it), the TLS
	# engine and the dialogue under that
	nobody=$(id -u nobody)
	owner() { stat -c %u "/proc/$1"; }
	root=$(pgrep -P "$SERVER_PID" -x smtpd)
	io=$(pgrep -P "$root" -x s6-tlsd-io)
	dialogue=$(pgrep -P "$root" -x smtpd)
	[ "$(owner "$root")" = 0 ]
	[ "$(owner "$io")" = "$nobody" ]
	[ "$(owner "$dialogue")" = "$nobody" ]
	printf 'QUIT\r\n' >&"$W"
	exec {W}>&-
}

@test "s6-networking/run.submission: 530 before STARTTLS, relaying after it for the address the rules allow" {
	have_s6_networking
	have_swaks_tls
	submission_rules
	example_script s6-networking/run.submission 587
	start_example sh
	swaks_to jones
	[ "$status" != 0 ]
	[[ "$output" == *"<** 530 5.7.0 "* ]]
	[ ! -e "$SPOOL/jones" ]
	swaks_to someone@elsewhere.example --tls
	[ "$status" = 0 ]
	wait_until 5 test -s "$BATS_TEST_TMPDIR/forward.msg"
	grep -qx -- -oi "$BATS_TEST_TMPDIR/forward.args"
	grep -qx someone@elsewhere.example "$BATS_TEST_TMPDIR/forward.args"
	grep -q "Hello, $MARKER." "$BATS_TEST_TMPDIR/forward.msg"
	grep -Eq ' with ESMTPS( |$)' "$BATS_TEST_TMPDIR/forward.msg"
}

@test "s6-networking/run.submission: an address no rule allows is refused before any SMTP" {
	have_s6_networking
	submission_rules deny
	example_script s6-networking/run.submission 587
	start_example sh
	run -0 timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(repr(s.recv(512)))' "$PORT"
	[ "$output" = "b''" ]
	! grep -q 'smtpd\[' "$LOG"
}

@test "s6-networking/run.smtps: implicit TLS on 465, swaks --tlsc relays and delivers, no STARTTLS offered" {
	have_s6_networking
	have_swaks_tls
	submission_rules
	example_script s6-networking/run.smtps 465
	start_example sh
	swaks_to jones --tlsc
	[ "$status" = 0 ]
	[[ "$output" != *"250-STARTTLS"* ]]
	jones_over_tls '\(TLSv1\.[23] [A-Z0-9_-]+\)'
	swaks_to someone@elsewhere.example --tlsc
	[ "$status" = 0 ]
	wait_until 5 test -s "$BATS_TEST_TMPDIR/forward.msg"
	grep -qx someone@elsewhere.example "$BATS_TEST_TMPDIR/forward.args"
}

@test "s6-networking/smtpd-tls.service: its ExecStart=, with its Environment=, serves STARTTLS" {
	have_s6_networking
	have_swaks_tls
	local unit="$EXAMPLES/s6-networking/smtpd-tls.service"
	# the unit's own command is run's: the two must not drift apart
	exec_start=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" |
	    sed 's/^ExecStart=//; s/\\$//' | tr -s ' \t\n' ' ')
	run_cmd=$(sed -n '/^exec s6-tcpserver/,/[^\\]$/p' \
	    "$EXAMPLES/s6-networking/run" | sed 's/^exec //; s/\\$//' |
	    tr -s ' \t\n' ' ')
	[ "${exec_start#/opt/s6-networking/bin/}" = "$run_cmd" ]
	# made into a script: TLS_UID and TLS_GID as the comment's printf
	# writes them into /etc/smtpd/tls.env, the Environment= lines, then
	# the command; made the test's as the run scripts are
	{
		echo '#!/bin/sh'
		echo 'TLS_UID=$(id -u smtpd-tls) TLS_GID=$(id -g smtpd-tls)'
		sed -n 's/^Environment=/export /p' "$unit"
		echo 'export TLS_UID TLS_GID'
		echo "exec $exec_start"
	} >"$BATS_TEST_TMPDIR/smtpd-tls.service.sh"
	example_script "$BATS_TEST_TMPDIR/smtpd-tls.service.sh" 25
	start_example sh
	swaks_to jones --tls
	[ "$status" = 0 ]
	jones_over_tls '\(TLSv1\.[23] [A-Z0-9_-]+\)'
}

# --- examples/stunnel ----------------------------------------------------

@test "stunnel/smtpd-465.conf under its tcpserver line: implicit TLS, smtpd -S, Received: says ESMTPS (TLS)" {
	have_swaks_tls
	command -v stunnel4 >/dev/null || skip "stunnel4 not installed"
	command -v tcpserver >/dev/null || skip "tcpserver not installed (apt-get install ucspi-tcp)"
	PORT=$(free_port)
	conf="$BATS_TEST_TMPDIR/smtpd-465.conf"
	sed -e "s|/etc/smtpd/tls/key\.pem|$BATS_TEST_TMPDIR/key.pem|" \
	    -e "s|/etc/smtpd/tls/cert\.pem|$BATS_TEST_TMPDIR/cert.pem|" \
	    -e "s|/usr/local/sbin/smtpd|$SMTPD|" \
	    -e "s|/etc/smtpd/aliases|$TABLE -m $SPOOL|" \
	    "$EXAMPLES/stunnel/smtpd-465.conf" >"$conf"
	! grep -v '^;' "$conf" | grep -E '/etc/|/usr/local'
	# the comment's run script, its rules the test's (none: every
	# client may connect, as the rules' last line says)
	line=$(sed -n '/^;   exec tcpserver/,/[^\\]$/p' \
	    "$EXAMPLES/stunnel/smtpd-465.conf" |
	    sed 's/^;[[:space:]]*//; s/^exec //; s/\\$//' | tr -s ' \n' ' ')
	[[ "$line" == "tcpserver "*" 0 465 /usr/bin/stunnel4 "* ]]
	echo ':allow' | timeout 10 tcprules "$BATS_TEST_TMPDIR/tcp.cdb" \
	    "$BATS_TEST_TMPDIR/tcp.tmp"
	line=$(sed -e "s|/etc/smtpd/tcp\.cdb|$BATS_TEST_TMPDIR/tcp.cdb|" \
	    -e "s|/etc/smtpd/stunnel/smtpd-465\.conf|$conf|" \
	    -e "s| 0 465 | 127.0.0.1 $PORT |" <<<"$line")
	RUN="$BATS_TEST_TMPDIR/run"
	printf '#!/bin/sh\nexec 2>&1\nexec %s\n' "$line" >"$RUN"
	start_example sh
	swaks_to jones --tlsc
	[ "$status" = 0 ]
	[[ "$output" != *"250-STARTTLS"* ]]
	# without -e smtpd logs to syslog: judged by the mailbox alone
	wait_until 5 test -s "$SPOOL/jones"
	jones_over_tls '\(TLS\)'
}
