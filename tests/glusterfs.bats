#!/usr/bin/env bats
# A shared spool on a real distributed file system (smtpd.8, MAILBOX
# FORMAT: a shared spool): a GlusterFS volume of one brick, served by a
# glusterd of the file's own on the loopback address of the machine's
# name (its state, logs and sockets under the file's directory), mounted
# twice with the default options, and deleted at the end.
# Two "hosts" deliver at once into one spool on it: hostA through the
# first mount, hostB through the second, each smtpd in a UTS namespace of
# its own with that host name (which it writes into its dot-locks, and by
# which it judges them).  What is checked is what the mailboxes hold, read
# on the brick itself, below every cache: each acknowledged message once
# and whole, nothing else, however the writers were killed.  The whole
# file is skipped, saying why, where there is no GlusterFS, no FUSE, no
# root, or a glusterd of someone else's holds its port.
# tests/shared-spool.bats checks the same rules on a local directory.
# bats file_tags=slow
load helpers

HELPER="$BATS_TEST_DIRNAME/glusterfs-check.py"
VOLUME=smtpdtest
# glusterd's, and the directory of its own under the file's
G="$BATS_FILE_TMPDIR/gluster"
# the messages of the large deliveries killed halfway, and the size limit
# that lets them in
BIG_BYTES=30000000
BIG_OPTS=(-s 100000000)
PATH="$PATH:/usr/sbin:/sbin"

# The GlusterFS command line client, talking to the file's glusterd.
gl() {
	gluster --mode=script --glusterd-sock="$G/run/glusterd.socket" \
	    --log-file="$G/log/cli.log" "$@"
}

# Why this file cannot run here, for every test's setup to skip with; and
# a failure, for setup_file to stop at (bats cannot skip from setup_file).
unusable() {
	echo "$1" >"$BATS_FILE_TMPDIR/unusable"
	return 1
}

# Whether anything listens on TCP port $1, on any address (read off /proc).
port_taken() {
	local hex
	hex=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
	    END { exit !f }'
}

# glusterd on this machine's own name (GlusterFS refuses a brick on
# localhost), which must lead to a loopback address: glusterd and the
# brick listen on that address alone, never on the network.  Sets ADDR.
gluster_address() {
	local host
	host=$(hostname)
	ADDR=$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')
	[ -n "$ADDR" ] ||
	    unusable "this machine's name $host does not resolve (a GlusterFS brick needs it)" ||
	    return 1
	case $ADDR in
	127.*) ;;
	*) unusable "this machine's name $host resolves to $ADDR, not a loopback address: glusterd would listen on the network" ;;
	esac
}

# The file's glusterd, its volume of one brick, started, and the volume
# mounted on $G/m1 and $G/m2; every process's pid in a file of $G for
# teardown_file.  Fails (after unusable) at the first step that does.
gluster_up() {
	local cmd i pid
	[ "$(id -u)" = 0 ] || unusable "GlusterFS's daemons and FUSE mounts need root" || return 1
	[ -c /dev/fuse ] || unusable "no /dev/fuse" || return 1
	for cmd in glusterd gluster glusterfs unshare python3; do
		command -v "$cmd" >/dev/null ||
		    unusable "no $cmd (GlusterFS: glusterfs-server, glusterfs-client)" ||
		    return 1
	done
	unshare --uts true 2>/dev/null ||
	    unusable "no UTS namespace can be made here (the two hosts)" || return 1
	gluster_address || return 1
	# someone else's glusterd (the packaged one, a leftover): not ours
	# to stop
	port_taken 24007 &&
	    { unusable "port 24007 is in use (another glusterd?): left alone, the file's own cannot start"; return 1; }
	mkdir -p "$G/work" "$G/run" "$G/log" "$G/brick" "$G/m1" "$G/m2"
	cat >"$G/glusterd.vol" <<-EOF
	volume management
	    type mgmt/glusterd
	    option working-directory $G/work
	    option run-directory $G/run
	    option logging-directory $G/log
	    option glusterd-sockfile $G/run/glusterd.socket
	    option transport-type socket
	    option transport.socket.bind-address $ADDR
	    option transport.socket.listen-port 24007
	    option transport.address-family inet
	    option ping-timeout 0
	    option event-threads 1
	end-volume
	EOF
	glusterd -f "$G/glusterd.vol" -p "$G/glusterd.pid" \
	    -l "$G/log/glusterd.log" --log-level WARNING ||
	    unusable "glusterd did not start: $(tail -n 3 "$G/log/glusterd.log")" ||
	    return 1
	wait_until 20 eval 'gl volume list >/dev/null 2>&1' ||
	    unusable "glusterd does not answer: $(tail -n 3 "$G/log/glusterd.log")" ||
	    return 1
	gl volume create "$VOLUME" "$(hostname):$G/brick" force \
	    >"$G/create.out" 2>&1 ||
	    unusable "no volume: $(cat "$G/create.out")" || return 1
	echo "$VOLUME" >"$G/volume"
	gl volume start "$VOLUME" >"$G/start.out" 2>&1 ||
	    unusable "the volume did not start: $(cat "$G/start.out")" || return 1
	# the brick's process: its pid, and the socket it made outside $G
	wait_until 10 eval 'ls "$G"/run/vols/"$VOLUME"/*.pid >/dev/null 2>&1' ||
	    unusable "no brick process: $(tail -n 3 "$G/log/glusterd.log")" ||
	    return 1
	read -r pid <"$(ls "$G"/run/vols/"$VOLUME"/*.pid | head -n 1)"
	echo "$pid" >"$G/brick.pid"
	tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-S$/{n;p;q}' \
	    >"$G/brick.socket"
	for i in 1 2; do
		glusterfs --volfile-server="$ADDR" --volfile-id="$VOLUME" \
		    -l "$G/log/m$i.log" -p "$G/m$i.pid" "$G/m$i" ||
		    unusable "mount $i failed: $(tail -n 3 "$G/log/m$i.log")" ||
		    return 1
		wait_until 20 mountpoint -q "$G/m$i" &&
		    timeout 20 stat "$G/m$i/." >/dev/null ||
		    unusable "mount $i failed: $(tail -n 3 "$G/log/m$i.log")" ||
		    return 1
	done
	# the spools' directory, made through one mount, seen through both
	timeout 20 mkdir "$G/m1/spool" && chmod 755 "$G/m1/spool" &&
	    wait_until 10 test -d "$G/m2/spool" ||
	    unusable "cannot make a directory on the volume" || return 1
}

setup_file() {
	gluster_up || true	# the tests skip, saying why
}

# Everything gluster_up started, by its pid: the mounts first, then the
# volume stopped and deleted, the brick, glusterd.
teardown_file() {
	local i what pid n
	for i in 1 2; do
		if mountpoint -q "$G/m$i" 2>/dev/null; then
			umount "$G/m$i" 2>/dev/null || umount -l "$G/m$i" || true
		fi
	done
	if [ -s "$G/volume" ] && [ -s "$G/glusterd.pid" ] &&
	    running "$(cat "$G/glusterd.pid")"; then
		timeout 60 gl volume stop "$VOLUME" force >/dev/null 2>&1 || true
		timeout 60 gl volume delete "$VOLUME" >/dev/null 2>&1 || true
	fi
	for what in m1 m2 brick glusterd; do
		[ -s "$G/$what.pid" ] || continue
		read -r pid <"$G/$what.pid"
		kill "$pid" 2>/dev/null || continue
		for n in $(seq 100); do
			running "$pid" || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	# the brick's socket is made in /var/run/gluster, whatever is set
	if [ -s "$G/brick.socket" ]; then
		rm -f "$(cat "$G/brick.socket")"
	fi
}

setup() {
	[ ! -e "$BATS_FILE_TMPDIR/unusable" ] ||
	    skip "$(cat "$BATS_FILE_TMPDIR/unusable")"
	common_setup
	LOCAL_SPOOL=$SPOOL
	REAL_SMTPD=$SMTPD
	short_waits	# the test build; each test sets its waits
	export HOSTED_SMTPD=$SMTPD
	echo "list:	jones, smith, brown" >>"$TABLE"
	# the test's spool on the volume, and the same directory on the brick
	SPOOL_NAME=spool/$BATS_TEST_NUMBER
	mkdir -m 755 "$G/m1/$SPOOL_NAME"
	wait_until 10 test -d "$G/m2/$SPOOL_NAME"
	BRICK_SPOOL="$G/brick/$SPOOL_NAME"
	EXTRA_OPTS=()
	local h
	for h in A B; do
		cat >"$BATS_TEST_TMPDIR/host$h" <<-EOF
		#!/bin/sh
		# smtpd (\$HOSTED_SMTPD) as host host$h: a UTS namespace of its own
		exec unshare --uts sh -c 'hostname host$h && exec "\$0" "\$@"' \\
		    "\$HOSTED_SMTPD" "\$@"
		EOF
		chmod +x "$BATS_TEST_TMPDIR/host$h"
	done
}

teardown() {
	stop_started
}

# as_host A|B: from here on smtpd is host hostA, writing through the first
# mount (hostB: the second), into the test's spool there; its options
# common_setup's, and EXTRA_OPTS.
as_host() {
	SMTPD="$BATS_TEST_TMPDIR/host$1"
	case $1 in
	A) SPOOL="$G/m1/$SPOOL_NAME" ;;
	B) SPOOL="$G/m2/$SPOOL_NAME" ;;
	esac
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL" "${EXTRA_OPTS[@]}")
}

# Mailbox $1 on the brick: what the volume holds, no client's cache between.
box() {
	echo "$BRICK_SPOOL/$1"
}

# session HOST NAME SECONDS RCPT SUBJECT [RCPT SUBJECT]...: in the
# background, one session of HOST with a message to each RCPT (its body
# follows from its SUBJECT), its input NAME.in, replies NAME.out, log
# NAME.log; ended after SECONDS at most; its pid in PID.
session() {
	local host=$1 name=$2 wait=$3
	shift 3
	python3 "$HELPER" session "$BATS_TEST_TMPDIR/$name.in" "$@"
	as_host "$host"
	smtpd_bg "$wait" "$BATS_TEST_TMPDIR/$name.in" "$name"
}

# deliver HOST NAME RCPT SUBJECT [RCPT SUBJECT]...: the same, waited for
# (30 s at most): each of its messages must get 250.
deliver() {
	session "$1" "$2" 30 "${@:3}"
	wait_ok "$PID" "$2"
	delivered_in "$2" $((($# - 2) / 2))
}

# held_big HOST RCPT NAME: a session of HOST sends a 30 MB message to RCPT
# but for its final dot, which killed_mid_append sends (start_session's
# FIFO: TO, OUT; its pid in BIG_PID, its name in BIG_NAME).
held_big() {
	python3 "$HELPER" big "$BATS_TEST_TMPDIR/$3.big" "$2" "$3: cut short" \
	    "$BIG_BYTES"
	EXTRA_OPTS=("${BIG_OPTS[@]}")
	as_host "$1"
	EXTRA_OPTS=()
	start_session "$3"
	BIG_PID=$PID BIG_NAME=$3
	disown "$PID"	# its death by SIGKILL is no job for bash to report
	cat "$BATS_TEST_TMPDIR/$3.big" >&"$TO"
}

# killed_mid_append RCPT: held_big's dot sent (by the helper that watches
# the mailbox, so that the watch starts with the delivery); its deliverer
# (the session's smtpd, the parent) and its dialogue (the child) get
# SIGKILL as soon as the mailbox on the brick grows: in the middle of the
# append, the locks held.  It must have died so: its dot-lock left with
# the size it recorded, no 250 given, part of the message in the mailbox.
killed_mid_append() {
	local mailbox child size
	mailbox=$(box "$1")
	size=$(stat -c %s "$mailbox")
	wait_until 10 eval 'child=$(pgrep -P "$BIG_PID")'
	started "$child"
	run -0 python3 "$HELPER" killgrown "$mailbox" "$size" \
	    "$BATS_TEST_TMPDIR/$BIG_NAME.in" "$BIG_PID" "$child"
	wait_until 10 gone "$BIG_PID"
	exec {TO}>&-
	run ! grep '^250 2.0.0 Delivered' "$OUT"
	[ -e "$mailbox.lock" ] ||
	    { echo "the writer was done before it was killed"; cat "$OUT"; false; }
	grep -q " hostA [0-9]* [0-9]*$" "$mailbox.lock"
	[ "$(stat -c %s "$mailbox")" -gt "$size" ]
	echo "$1: $size bytes before, $(stat -c %s "$mailbox") at the kill;" \
	    "its dot-lock says: $(cat "$mailbox.lock")"
}

# One message from hostA to jones, which must get 250 (the first test)
# before a test sends many: otherwise each would sit out the lock wait.
one_delivery_works() {
	short_waits LOCK_WAIT=5
	deliver A probe jones "probe"
}

# The test's spool on the brick had a killed writer's lock broken in it:
# the last test looks there for the unique lock files left behind.
lock_broken_here() {
	echo "$BRICK_SPOOL" >>"$BATS_FILE_TMPDIR/broken-locks"
}

@test "one host delivers to jones on the volume: 250 at once, not after the lock wait, and the message is there once" {
	short_waits LOCK_WAIT=5
	start=$(now_ms)
	deliver A one jones "only one"
	took=$(($(now_ms) - start))
	[ "$took" -lt 2500 ] || { echo "took $took ms"; false; }
	python3 "$HELPER" holds "$(box jones)" "only one"
}

@test "two hosts at once, 5 sessions of 10 messages each, to jones and to a list of three: every message acknowledged is in each of its mailboxes once, whole, in order, and none other" {
	one_delivery_works
	short_waits LOCK_WAIT=30
	names=("$BATS_TEST_TMPDIR/probe") pids=()
	for h in A B; do
		for s in 1 2 3 4 5; do
			args=()
			for m in $(seq 10); do
				rcpt=list
				[ $((m % 2)) = 1 ] && rcpt=jones
				args+=("$rcpt" "host$h session $s message $m")
			done
			session "$h" "$h.$s" 120 "${args[@]}"
			pids+=("$PID")
			names+=("$BATS_TEST_TMPDIR/$h.$s")
		done
	done
	for pid in "${pids[@]}"; do
		wait_ok "$pid" "a session"
	done
	run python3 "$HELPER" check "$BRICK_SPOOL" list=jones,smith,brown \
	    "${names[@]}"
	printf '%s\n' "${lines[@]}"
	[ "$status" = 0 ]
	[ "${lines[-1]}" = "101 of 101 acknowledged; brown 50, jones 101, smith 50; 0 problems" ] ||
	    { cat "$BATS_TEST_TMPDIR"/*.log; false; }
}

@test "hostB's acknowledged message, then hostA killed in its append within the second: hostA's next delivery keeps both hosts' messages and drops the partial one (3 times)" {
	short_waits LOCK_WAIT=10
	# a mailbox each round, so that each starts as the first did
	for box in jones smith brown; do
		held_big A "$box" "big.$box"	# its data spooled, not delivered
		deliver A "m0.$box" "$box" "$box M0 from hostA"
		deliver B "m1.$box" "$box" "$box M1 from hostB"
		# hostA appends now, less than a second after M1's 250, and
		# is killed halfway: its dot-lock says the size before it
		killed_mid_append "$box"
		deliver A "m2.$box" "$box" "$box M2 from hostA"
		lock_broken_here
		grep -q "removed stale lock .*$box.lock (its process is gone)" \
		    "$BATS_TEST_TMPDIR/m2.$box.log"
		[ ! -e "$(box "$box").lock" ]
		python3 "$HELPER" holds "$(box "$box")" "$box M0 from hostA" \
		    "$box M1 from hostB" "$box M2 from hostA"
	done
}

@test "hostA killed holding jones's dot-lock, hostB's sessions waiting for it: hostA's next session delivers within seconds, then hostB's do, every message once" {
	# long enough for every session here, short enough that a stall
	# behind hostB's shows as a failure and not as a minute's wait
	short_waits LOCK_WAIT=10
	deliver A before jones "before"
	held_big A jones big
	killed_mid_append jones
	# hostB cannot break hostA's lock: another host's, not five
	# minutes old
	pids=()
	for i in 1 2 3; do
		session B "b.$i" 60 jones "hostB's $i"
		pids+=("$PID")
	done
	sleep 0.5
	for i in 1 2 3; do
		running "${pids[i - 1]}"
		run ! grep -q '^250 2.0.0 Delivered' "$BATS_TEST_TMPDIR/b.$i.out"
	done
	[ -e "$(box jones).lock" ]
	start=$(now_ms)
	deliver A after jones "hostA's after"
	took=$(($(now_ms) - start))
	lock_broken_here
	[ "$took" -lt 5000 ] || { echo "hostA's session took $took ms"; false; }
	for i in 1 2 3; do
		wait_ok "${pids[i - 1]}" "hostB's session $i"
		delivered_in "b.$i" 1
	done
	[ ! -e "$(box jones).lock" ]
	python3 "$HELPER" holds "$(box jones)" --any-order before \
	    "hostA's after" "hostB's 1" "hostB's 2" "hostB's 3"
	[ "$(mbox_subjects "$(box jones)" | head -n 1)" = before ]
}

@test "the killed writers of the two tests before left no .lk. file in their spools: the deliveries that broke their locks removed them" {
	[ -s "$BATS_FILE_TMPDIR/broken-locks" ] ||
	    skip "the two tests before did not get as far as breaking a killed writer's lock"
	left=$(while read -r dir; do
		ls -A "$dir" | sed -n "s|^\.lk\.|$dir/&|p"
	done <"$BATS_FILE_TMPDIR/broken-locks")
	[ -z "$left" ] || { echo "left: $left"; false; }
}

@test "200 small messages in one session, on the volume and on a local directory: every one delivered, and messages/s reported" {
	one_delivery_works
	export HOSTED_SMTPD=$REAL_SMTPD	# the smtpd that make installs
	args=()
	for m in $(seq 200); do
		args+=(smith "message $m")
	done
	python3 "$HELPER" session "$BATS_TEST_TMPDIR/200.in" "${args[@]}"
	as_host A
	start=$(now_ms)
	smtpd_bg 120 "$BATS_TEST_TMPDIR/200.in" volume
	wait_ok "$PID" volume
	on_volume=$(($(now_ms) - start))
	delivered_in volume 200
	SPOOL=$LOCAL_SPOOL
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
	start=$(now_ms)
	smtpd_bg 120 "$BATS_TEST_TMPDIR/200.in" local
	wait_ok "$PID" local
	on_local=$(($(now_ms) - start))
	delivered_in local 200
	[ "$(count_messages smith)" = 200 ]
	[ "$(grep -c '^From ' "$(box smith)")" = 200 ]
	printf '# 200 messages, one session: GlusterFS %d ms (%d/s), local %d ms (%d/s)\n' \
	    "$on_volume" $((200000 / on_volume)) "$on_local" \
	    $((200000 / on_local)) >&3
}
