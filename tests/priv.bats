#!/usr/bin/env bats
# The two processes of a session (smtpd.8, PRIVILEGE SEPARATION): the
# dialogue, as the -U account when smtpd starts as root, and the
# deliverer, which never reads the connection.  Seen from outside, in
# /proc, while a session is held open on a FIFO.
load helpers

teardown() {
	stop_started
}

# The one child of process $1 (the dialogue), once there is one.
child_of() {
	local kids
	# (a file of /proc has no size: its text is what tells)
	wait_until 5 grep -q . "/proc/$1/task/$1/children"
	read -r -a kids <"/proc/$1/task/$1/children"
	[ "${#kids[@]}" = 1 ]
	echo "${kids[0]}"
}

# A field of /proc/PID/status, its words as they are.
status_of() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t ' ' '
}

# Where descriptor N of process PID leads.
fd_of() {
	readlink "/proc/$1/fd/$2"
}

@test "as root, the dialogue runs as nobody with no groups and no new privileges, the deliverer as root" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	dialogue=$(child_of "$PID")
	nobody="$(id -u nobody) $(id -u nobody) $(id -u nobody) $(id -u nobody)"
	[ "$(status_of "$dialogue" Uid)" = "$nobody" ]
	[ "$(status_of "$dialogue" Gid)" = \
	    "$(id -g nobody) $(id -g nobody) $(id -g nobody) $(id -g nobody)" ]
	[ "$(status_of "$dialogue" Groups)" = "" ]
	[ "$(status_of "$dialogue" NoNewPrivs)" = 1 ]
	[ "$(status_of "$PID" Uid)" = "0 0 0 0" ]
	# the dialogue cannot write the spool, nor a mailbox in it
	[ "$(stat -c '%u %a' "$SPOOL")" = "0 755" ]
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
}

@test "as root, the dialogue can write nothing in the spool: not the directory, a mailbox or a lock, and holds none of them open" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	printf '%s\r\n' "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: first" "" "Hello." . QUIT |
	    "$SMTPD" "${OPTS[@]}" >/dev/null 2>>"$LOG"
	[ -s "$SPOOL/jones" ]
	cp "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	start_session held
	send "HELO client.example" "MAIL FROM:<a@example.org>" "RCPT TO:<jones>"
	wait_until 5 grep -q '^250 2.1.5 ' "$OUT"
	dialogue=$(child_of "$PID")
	# with the dialogue's own credentials, as /proc shows them
	uid=$(status_of "$dialogue" Uid | cut -d' ' -f2)
	gid=$(status_of "$dialogue" Gid | cut -d' ' -f2)
	[ "$uid" != 0 ] && [ "$gid" != 0 ]
	as_dialogue() {
		setpriv --reuid="$uid" --regid="$gid" --clear-groups \
		    --no-new-privs sh -c "$1" 2>/dev/null
	}
	run as_dialogue ": >>'$SPOOL/jones'"
	[ "$status" -ne 0 ]
	run as_dialogue ": >'$SPOOL/planted'"
	[ "$status" -ne 0 ]
	run as_dialogue "ln '$SPOOL/jones' '$SPOOL/jones.lock'"
	[ "$status" -ne 0 ]
	run as_dialogue "cat '$SPOOL/jones'"
	[ "$status" -ne 0 ]
	# the control: with the same credentials, it writes where anyone may
	mkdir -m 1777 "$BATS_TEST_TMPDIR/free"
	run as_dialogue ": >'$BATS_TEST_TMPDIR/free/mine'"
	[ "$status" -eq 0 ]
	# and it holds nothing of the spool open
	run ls "/proc/$dialogue/fd"
	for fd in "${lines[@]}"; do
		[[ "$(fd_of "$dialogue" "$fd")" != "$SPOOL"* ]] ||
		    { echo "fd $fd: $(fd_of "$dialogue" "$fd")"; false; }
	done
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	[ ! -e "$SPOOL/planted" ] && [ ! -e "$SPOOL/jones.lock" ]
}

@test "the deliverer holds none of the client's descriptors: its 0, 1 and 2 are /dev/null or the log" {
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	dialogue=$(child_of "$PID")
	[[ "$(fd_of "$dialogue" 0)" == *held.in ]]
	[[ "$(fd_of "$dialogue" 1)" == *held.out ]]
	[ "$(fd_of "$PID" 0)" = /dev/null ]
	[ "$(fd_of "$PID" 1)" = /dev/null ]
	[ "$(fd_of "$PID" 2)" = "$LOG" ]	# -e: the log
	# and nothing else of the client: the socketpair, no more
	run ls "/proc/$PID/fd"
	for fd in "${lines[@]}"; do
		case $fd in
		0 | 1 | 2) ;;
		*) [[ "$(fd_of "$PID" "$fd")" == socket:* ]] ||
		    { echo "fd $fd: $(fd_of "$PID" "$fd")"; false; } ;;
		esac
	done
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
}

@test "without -e and not at a terminal, the deliverer keeps no standard error either: it may be the client's socket" {
	OPTS=(-T -n mx.example -a "$TABLE" -m "$SPOOL")
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	[ "$(fd_of "$PID" 2)" = /dev/null ]
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
}

@test "mail delivered through the split: the dot-lock is the deliverer's, the message id the dialogue's" {
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	dialogue=$(child_of "$PID")
	send "MAIL FROM:<a@example.org>" "RCPT TO:<jones>" DATA "Subject: split" \
	    "" "Hello." . QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	grep -q '^250 2.0.0 Delivered, id ' "$OUT"
	id=$(sed -n 's/^250 2\.0\.0 Delivered, id \([0-9A-Z-]*\)\r*$/\1/p' "$OUT")
	# base 36: time, the dialogue's pid, the message's number
	pid36=$(python3 -c 'import sys
n, d, s = int(sys.argv[1]), "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", ""
while True:
    s = d[n % 36] + s
    n //= 36
    if n == 0: break
print(s)' "$dialogue")
	[ "$(echo "$id" | cut -d- -f2)" = "$pid36" ]
	grep -q "^	by mx.example (smtpd [0-9.]*) with SMTP id $id\$" "$SPOOL/jones"
}

@test "the -F program runs as the -U account, never as root" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	cat >"$BATS_TEST_TMPDIR/forward" <<-EOF
	#!/bin/sh
	id -u >"$BATS_TEST_TMPDIR/forward.uid"
	id -G >"$BATS_TEST_TMPDIR/forward.groups"
	cat >/dev/null
	EOF
	chmod +x "$BATS_TEST_TMPDIR/forward"
	echo "far: far@remote.example" >>"$TABLE"
	OPTS+=(-F "$BATS_TEST_TMPDIR/forward")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<far>" DATA "Subject: x" "" "Hello." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(cat "$BATS_TEST_TMPDIR/forward.uid")" = "$(id -u nobody)" ]
	[ "$(cat "$BATS_TEST_TMPDIR/forward.groups")" = "$(id -g nobody)" ]
}

@test "-U names the dialogue's account: as root, a named one is used" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	getent passwd daemon >/dev/null || skip "no account daemon"
	OPTS+=(-U daemon)
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	dialogue=$(child_of "$PID")
	[ "$(status_of "$dialogue" Uid | cut -d' ' -f1)" = "$(id -u daemon)" ]
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
}

@test "-U with an unknown account, or root's, is a configuration error: 421, exit 1" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	for user in no-such-account-here root; do
		run --separate-stderr -1 "$SMTPD" "${OPTS[@]}" -U "$user" \
		    </dev/null
		[ "$output" = $'421 4.3.0 mx.example local configuration error\r' ]
	done
	run -1 "$SMTPD" "${OPTS[@]}" -U no-such-account-here </dev/null
	[[ "$output" == *"-U no-such-account-here: no such account"* ]]
	run -1 "$SMTPD" -C "${OPTS[@]}" -U root
	[[ "$output" == *"-U root: the dialogue never runs as root"* ]]
}

@test "-U when not started as root is a configuration error: 421, exit 1" {
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null || skip "no setpriv"
		runner=(setpriv --reuid nobody --regid nogroup --clear-groups)
	else
		runner=()
	fi
	run -1 "${runner[@]}" "$SMTPD" -e -T -n mx.example -a "$TABLE" \
	    -m "$SPOOL" -U nobody </dev/null
	[[ "$output" == *"-U nobody: smtpd was not started as root and changes no account"* ]]
	[[ "$output" == *"421 4.3.0 mx.example local configuration error"* ]]
}

@test "a dialogue killed mid-session costs its session alone: the deliverer ends, nothing is left behind" {
	start_session held
	send "HELO client.example" "MAIL FROM:<a@example.org>" "RCPT TO:<jones>"
	wait_until 5 grep -q '^250 2.1.5' "$OUT"
	dialogue=$(child_of "$PID")
	kill -9 "$dialogue"
	rc=0
	wait "$PID" || rc=$?
	[ "$rc" = 1 ]	# the deliverer ends as its dialogue did: killed
	exec {TO}>&-
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "the deliverer killed mid-session: the dialogue ends too (it could deliver nothing)" {
	start_session held
	send "HELO client.example"
	wait_until 5 grep -q '^250 ' "$OUT"
	dialogue=$(child_of "$PID")
	kill -9 "$PID"
	wait "$PID" || true
	wait_until 5 gone "$dialogue"
	exec {TO}>&-
}
