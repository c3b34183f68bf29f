# For the test files that run smtpd under a superserver (launchers,
# debian, tls-examples, policy, superserver): `load launchers-helpers'
# after `load helpers'.  smtpd started by the launch examples of
# examples/, with their own command lines, only the paths replaced by the
# test's:
#   examples/tcpserver/run and rules   tcpserver (ucspi-tcp), tcprules
#   examples/smtpd@.service            its ExecStart=, under
#                                      systemd-socket-activate --inetd -a
#   examples/inetd.conf                its line, under openbsd-inetd run in
#                                      the foreground on a private file
# or with the test's own command line (start_tcpserver,
# start_socket_activate).  Each server listens on 127.0.0.1 only, runs
# under `timeout', and is killed by its PID in teardown().  Clients:
# curl, python3's smtplib and a raw pipelining client (launchers-*.py).

EXAMPLES="$BATS_TEST_DIRNAME/../examples"

# After common_setup: the -F program, a body marker, no server.
launchers_setup() {
	SERVER_PID=
	SA_OPTS=()
	REPLIES="$BATS_TEST_TMPDIR/curl.replies"
	# The -F program: records its arguments, one a line, and the message
	# it is given; prints forward.noise on its standard error and exits
	# with forward.status, when a test writes them.
	FWD="$BATS_TEST_TMPDIR/forward"
	cat >"$FWD" <<-EOF
	#!/bin/sh
	printf '%s\n' "\$@" >"$BATS_TEST_TMPDIR/forward.args"
	cat >"$BATS_TEST_TMPDIR/forward.msg"
	[ ! -e "$BATS_TEST_TMPDIR/forward.noise" ] ||
	    cat "$BATS_TEST_TMPDIR/forward.noise" >&2
	exit \$(cat "$BATS_TEST_TMPDIR/forward.status" 2>/dev/null || echo 0)
	EOF
	chmod +x "$FWD"
	# a word that is in every test message and must never be in the log
	MARKER="xyzzy${RANDOM}plugh"
}

# The server started last (SERVER_PID) killed, and waited for.
stop_server() {
	if [ -n "${SERVER_PID:-}" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}

# Wait, at most 5 seconds, until process $1 (or a child of it) listens on
# 127.0.0.1:$2; 1 when it gave up or died (the port was taken).
wait_listening() {
	local _
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || return 1
		timeout 5 python3 "$BATS_TEST_DIRNAME/launchers-listening.py" \
		    "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}

# listen_on_free_port NAME COMMAND...: COMMAND (a function that execs
# a listener on 127.0.0.1:$PORT) run in the background on a free port,
# five ports tried, until it listens; SERVER_PID its pid.  NAME says
# who gave up when every port was taken.
listen_on_free_port() {
	local name=$1 try
	shift
	for try in 1 2 3 4 5; do
		PORT=$(free_port)
		"$@" &
		SERVER_PID=$!
		wait_listening "$SERVER_PID" "$PORT" && return 0
		stop_server
	done
	echo "$name: no port to listen on after $try tries" >&2
	return 1
}

# smtpd with OPTS and the arguments under tcpserver -H -R on 127.0.0.1
# and a free port ($PORT), tcpserver's own options (-x CDB) first from
# the array TCPSERVER_OPTS; smtpd's log (-e) and tcpserver's in $LOG.
# Sets SERVER_PID (noted with `started') and PORT.  No probe connection:
# it would be a session of its own in the log.
start_tcpserver() {
	command -v tcpserver >/dev/null ||
	    skip "tcpserver not installed (apt-get install ucspi-tcp)"
	SMTPD_ARGS=("$@")
	listen_on_free_port tcpserver tcpserver_on_port && started "$SERVER_PID"
}

# start_tcpserver's listener, on $PORT.
tcpserver_on_port() {
	exec timeout 120 tcpserver -H -R -l0 "${TCPSERVER_OPTS[@]}" \
	    127.0.0.1 "$PORT" "$SMTPD" "${OPTS[@]}" "${SMTPD_ARGS[@]}" \
	    </dev/null >/dev/null 2>>"$LOG" 3>&-
}

# The same under systemd-socket-activate --inetd -a (systemd's
# Accept=yes: one process a connection), without TCPSERVER_OPTS.
start_socket_activate() {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	SMTPD_ARGS=("$@")
	listen_on_free_port systemd-socket-activate socket_activate_on_port &&
	    started "$SERVER_PID"
}

# start_socket_activate's listener, on $PORT.
socket_activate_on_port() {
	exec timeout 120 systemd-socket-activate --inetd -a \
	    -l "127.0.0.1:$PORT" "$SMTPD" "${OPTS[@]}" "${SMTPD_ARGS[@]}" \
	    </dev/null >/dev/null 2>>"$LOG" 3>&-
}

# examples/tcpserver/run, made the test's into $RUN: tcpserver on
# 127.0.0.1 and a port the kernel picks (-1 prints it, instead of 0 25),
# its -x database compiled by tcprules from the rules file $1, the test's
# smtpd, table, -F program (with the example's -oi), and -m $SPOOL; the
# other arguments are added to smtpd's.
tcpserver_run_script() {
	local rules=$1 cdb="$BATS_TEST_TMPDIR/tcp.cdb" extra="" a
	shift
	if ! command -v tcpserver >/dev/null || ! command -v tcprules >/dev/null
	then
		skip "tcpserver, tcprules not installed (apt-get install ucspi-tcp)"
	fi
	for a in "$@"; do
		extra+=" $(printf '%q' "$a")"
	done
	RUN="$BATS_TEST_TMPDIR/run"
	timeout 10 tcprules "$cdb" "$BATS_TEST_TMPDIR/tcp.tmp" <"$rules"
	sed -e "s|/etc/smtpd/tcp\.cdb|$cdb|g" \
	    -e "s|\([[:space:]]\)0 25 |\1-1 127.0.0.1 0 |" \
	    -e "s|/usr/local/sbin/smtpd|$SMTPD|" \
	    -e "s|/etc/smtpd/aliases|$TABLE|" \
	    -e "s|\"/usr/sbin/sendmail -oi\"|\"$FWD -oi\" -m \"$SPOOL\"$extra|" \
	    "$EXAMPLES/tcpserver/run" >"$RUN"
	# every substitution made, no path of the example left outside comments
	grep -qE -- "[[:space:]]-1 127\.0\.0\.1 0 " "$RUN"
	grep -qF -- "-F \"$FWD -oi\" -m \"$SPOOL\"" "$RUN"
	if grep -v '^#' "$RUN" | grep -E '/etc/|/usr/'; then
		echo "examples/tcpserver/run: a path left unreplaced" >&2
		return 1
	fi
}

# tcpserver_run_script's script, run for real; its output (tcpserver -v
# and smtpd -e) goes to $LOG.  Sets SERVER_PID and PORT.
start_tcpserver_example() {
	tcpserver_run_script "$@"
	timeout 120 sh "$RUN" >"$LOG" 2>&1 3>&- &
	SERVER_PID=$!
	wait_for_line "$LOG" '^[0-9]+$'
	PORT=$(grep -m 1 -E '^[0-9]+$' "$LOG")
	wait_listening "$SERVER_PID" "$PORT"
}

# The ExecStart= command of examples/smtpd@.service with the test's smtpd
# and table, -e (the unit's StandardError=journal becomes $LOG) and
# -m $SPOOL, then the arguments; in the array CMD.
service_command() {
	local word
	CMD=()
	for word in $(sed -n 's/^ExecStart=//p' "$EXAMPLES/smtpd@.service"); do
		case $word in
		/usr/local/sbin/smtpd) CMD+=("$SMTPD") ;;
		/etc/smtpd/aliases) CMD+=("$TABLE") ;;
		/*)
			echo "smtpd@.service: unexpected path $word" >&2
			return 1 ;;
		*) CMD+=("$word") ;;
		esac
	done
	[ "${#CMD[@]}" -gt 1 ]
	CMD+=(-e -m "$SPOOL" "$@")
}

# smtpd under systemd-socket-activate --inetd -a (systemd's Accept=yes,
# one process a connection, the socket its stdin and stdout) with the
# command of examples/smtpd@.service (service_command; the arguments are
# added to it).  Options for systemd-socket-activate itself (-E VAR=value)
# in the array SA_OPTS.  Tries a few ports.  Sets SERVER_PID and PORT.
start_socket_activate_example() {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate not installed (apt-get install systemd)"
	service_command "$@"
	listen_on_free_port systemd-socket-activate socket_activate_example
}

# start_socket_activate_example's listener, on $PORT.
socket_activate_example() {
	exec timeout 120 systemd-socket-activate --inetd -a \
	    -l "127.0.0.1:$PORT" "${SA_OPTS[@]}" "${CMD[@]}" \
	    >/dev/null 2>"$LOG" 3>&-
}

# The line of examples/inetd.conf, made the test's, in the array
# INETD_LINE: run as the user running the tests instead of mail, with the
# test's smtpd and table, -m $SPOOL and the arguments (no spaces in them:
# inetd splits at white space).  The service, smtp, is left for
# start_inetd_example to replace.
inetd_line() {
	local line
	line=$(grep -v '^#' "$EXAMPLES/inetd.conf" | grep -v '^[[:space:]]*$')
	read -r -a INETD_LINE <<<"$line"
	# service type protocol wait user server argv0 arguments...
	if [ "${INETD_LINE[0]}" != smtp ] || [ "${INETD_LINE[3]}" != nowait ] ||
	    [ "${INETD_LINE[5]}" != /usr/local/sbin/smtpd ] ||
	    [ "${INETD_LINE[6]}" != smtpd ]; then
		echo "examples/inetd.conf: not the line expected: $line" >&2
		return 1
	fi
	INETD_LINE[4]=$(id -un)
	# inetd wants the program's absolute path
	INETD_LINE[5]="$(cd "$(dirname "$SMTPD")" && pwd)/$(basename "$SMTPD")"
	INETD_LINE=("${INETD_LINE[@]/#\/etc\/smtpd\/aliases/$TABLE}" \
	    -m "$SPOOL" "$@")
	if printf '%s\n' "${INETD_LINE[@]:7}" | grep -E '^/(etc|usr)/'; then
		echo "examples/inetd.conf: a path left unreplaced" >&2
		return 1
	fi
}

# openbsd-inetd in the foreground (-i; -d: its debugging lines in
# inetd.log) with a private configuration: inetd_line's line, listening
# on 127.0.0.1:PORT instead of smtp.  Standard error is the client's
# socket, as under any inetd.  Tries a few ports.  Sets SERVER_PID, PORT.
start_inetd_example() {
	local inetd
	inetd=$(PATH="$PATH:/usr/sbin:/sbin" command -v inetd) ||
	    skip "inetd not installed (apt-get install openbsd-inetd)"
	inetd_line "$@"
	INETD=$inetd
	listen_on_free_port inetd inetd_example
}

# start_inetd_example's listener, on $PORT.
inetd_example() {
	INETD_LINE[0]="127.0.0.1:$PORT"
	(IFS=$'\t'; printf '%s\n' "${INETD_LINE[*]}") \
	    >"$BATS_TEST_TMPDIR/inetd.conf"
	exec timeout 120 "$INETD" -d -i "$BATS_TEST_TMPDIR/inetd.conf" \
	    >"$BATS_TEST_TMPDIR/inetd.log" 2>&1 3>&-
}

# curl as the SMTP client of 127.0.0.1:$PORT, EHLO client.example; the
# arguments are curl's (--mail-from, --mail-rcpt, --upload-file ...).
# The server's replies (curl -v's `< ' lines) are left in $REPLIES.
curl_smtp() {
	local status=0
	timeout 20 curl --silent --show-error --verbose \
	    "smtp://127.0.0.1:$PORT/client.example" "$@" \
	    2>"$BATS_TEST_TMPDIR/curl.trace" || status=$?
	sed -n 's/^< //p' "$BATS_TEST_TMPDIR/curl.trace" | tr -d '\r' >"$REPLIES"
	return "$status"
}

# python3's smtplib as the client: launchers-smtplib.py MODE FROM RCPT...,
# the message on standard input.
smtplib_client() {
	timeout 20 python3 "$BATS_TEST_DIRNAME/launchers-smtplib.py" "$PORT" "$@"
}

# The raw pipelining client: launchers-pipeline.py GROUP...
pipeline_client() {
	timeout 20 python3 "$BATS_TEST_DIRNAME/launchers-pipeline.py" "$PORT" "$@"
}

# A message, lines ending in CRLF, into file $1: its subject and body
# carry $MARKER; a line starting with a dot (stuffed by the client) and
# one starting with `From ' (quoted in the mailbox).
write_message() {
	printf '%s\r\n' "Subject: test $MARKER" "" "Hello, $MARKER." \
	    ".a line starting with a dot" "From the start of a line" >"$1"
}

# What a mailbox holds of write_message's message, dates and id fixed
# (mbox_fixed), after the Received: lines $@ (tabs and all).
mbox_of_written_message() {
	printf '%s\n' "From smith@client.example DATE" \
	    "Return-Path: <smith@client.example>" "$@" \
	    "Subject: test $MARKER" "" "Hello, $MARKER." \
	    ".a line starting with a dot" ">From the start of a line" ""
}

# Mailbox $1 is what mbox_of_written_message with Received: lines $3...
# says, once mbox_fixed.  tcpserver without -H puts the client's DNS
# name, if any, in TCPREMOTEHOST: with $2 -H, the name before
# [127.0.0.1] is dropped; $2 is empty otherwise.
check_mbox() {
	local box=$1 mode=$2 dns=
	shift 2
	[ "$mode" != -H ] ||
	    dns='s/^(Received: from [^ ]+ \()[A-Za-z0-9.-]+ (\[127\.0\.0\.1\]\))$/\1\2/'
	mbox_of_written_message "$@" >"$BATS_TEST_TMPDIR/expected"
	mbox_fixed "$box" | sed -E "$dns" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
}

# smtpd's own lines of the log (not tcpserver's or systemd's).
smtpd_log() {
	grep -a '^smtpd\[' "$LOG" || true
}

# Wait until session $1's (a pid) end line is in the log: the client may
# have its 221 before smtpd has written it.
wait_session_end() {
	wait_for_line "$LOG" "^smtpd\\[$1\\]: end "
}

# The pid of the only smtpd session in the log.
session_pid() {
	local pids
	pids=$(smtpd_log | sed -E 's/^smtpd\[([0-9]+)\]: start .*/\1/p' -n)
	[ "$(printf '%s\n' "$pids" | wc -l)" -eq 1 ] && [ -n "$pids" ] &&
	    echo "$pids"
}

# Neither $MARKER (the body) nor a control character (C0 but tab and LF,
# and DEL) may be in the log.
check_log_clean() {
	if grep -aF "$MARKER" "$LOG"; then
		echo "the body is in the log" >&2
		return 1
	fi
	if LC_ALL=C grep -a -q $'[\x01-\x08\x0b-\x1f\x7f]' "$LOG"; then
		LC_ALL=C grep -a -n $'[\x01-\x08\x0b-\x1f\x7f]' "$LOG" | cat -v
		echo "control characters in the log" >&2
		return 1
	fi
}
