#!/usr/bin/env bats
# A hostile spool: smtpd runs as root, and the spool is writable by local
# users who are not to be trusted, either mode 1777 (sticky, writable by
# all) or root:mail 2775 (writable by group mail, setgid).  Whatever such
# a user plants there, a dot-lock, a directory, a FIFO, a symbolic link,
# a mailbox made in advance, smtpd's own queue file or the names of its
# lock files, must neither hand them anyone's mail, nor cut a mailbox,
# nor block delivery for good (smtpd.8, MAILBOX FORMAT).  Then what a
# client or a forwarding program could do with smtpd's root: the
# program's clean-up (smtpd.8, FORWARDING AND RELAYING), the header
# clean-up (MAILBOX FORMAT), the session's limits (INPUT RULES), an
# address too long (RFC 5321 4.5.3.1.3), and /etc/passwd as smtpd reads
# it (FILES).  The attacker is the account nobody, played with setpriv(1).
load helpers

# Every test here plays a local attacker against smtpd running as root.
setup() {
	[ "$(id -u)" = 0 ] ||
	    skip "playing a local attacker against smtpd as root needs root"
	common_setup
}

teardown() {
	local top
	stop_started
	if [ -f "$BATS_TEST_TMPDIR/protected_regular" ]; then
		cat "$BATS_TEST_TMPDIR/protected_regular" \
		    >/proc/sys/fs/protected_regular
	fi
	if [ -f "$BATS_TEST_TMPDIR/tops" ]; then
		while read -r top; do
			rm -rf "$top"
		done <"$BATS_TEST_TMPDIR/tops"
	fi
}

# fs.protected_regular at 0 for this test, where it may be changed; the
# old value comes back in teardown.  At 1 the kernel refuses an O_CREAT
# open of another user's file in a sticky directory, and that used to
# hide smtpd opening a queue file planted in a 1777 spool; smtpd no
# longer depends on it, and the sticky spool's tests show it under the
# setting where the old flaw showed.
protected_regular_off() {
	local f=/proc/sys/fs/protected_regular
	[ -w "$f" ] && [ ! -e "$BATS_TEST_TMPDIR/protected_regular" ] ||
	    return 0
	cat "$f" >"$BATS_TEST_TMPDIR/protected_regular"
	{ echo 0 >"$f"; } 2>/dev/null || rm "$BATS_TEST_TMPDIR/protected_regular"
}

# hostile_spool sticky|group: a spool the attacker may write, 1777 or
# root:mail 2775, in a directory of its own under /tmp that every account
# may reach (the test's own directory is mode 0700); SPOOL and OPTS name
# it, and ATTACKER_GROUP is the attacker's group: nogroup, or mail.  A
# sticky spool has fs.protected_regular at 0 (protected_regular_off).
hostile_spool() {
	command -v setpriv >/dev/null ||
	    skip "no setpriv (util-linux) to play the attacker"
	getent passwd nobody >/dev/null || skip "no account nobody"
	local top
	top=$(mktemp -d /tmp/smtpd-hostile.XXXXXX)
	echo "$top" >>"$BATS_TEST_TMPDIR/tops"
	chmod 755 "$top"
	SPOOL="$top/spool"
	mkdir "$SPOOL"
	case $1 in
	sticky)
		getent group nogroup >/dev/null || skip "no group nogroup"
		chmod 1777 "$SPOOL"
		ATTACKER_GROUP=nogroup
		protected_regular_off
		;;
	group)
		getent group mail >/dev/null || skip "no group mail"
		chgrp mail "$SPOOL"
		chmod 2775 "$SPOOL"
		ATTACKER_GROUP=mail
		;;
	esac
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
}

# A command run by the attacker: nobody, in ATTACKER_GROUP and no other.
attacker() {
	setpriv --reuid nobody --regid "$ATTACKER_GROUP" --clear-groups "$@"
}

# A python3 along PATH that the attacker may run too (in ATTACKER_PYTHON).
attacker_python() {
	local p
	ATTACKER_PYTHON=
	for p in $(type -ap python3); do
		if attacker "$p" -c '' 2>/dev/null; then
			ATTACKER_PYTHON=$p
			return 0
		fi
	done
	skip "no python3 that the account nobody may run"
}

# A user of the table with a mailbox of their own.
table_user() {
	printf '%s:\t%s <%s>\n' "$1" "${1^}" "$1" >>"$TABLE"
}

# The reply to the data of the last `run' (lines[5]) says delivered (the
# replies and the log are shown when it does not).
delivered() {
	[ "${lines[5]:0:24}" = "$DELIVERED" ] ||
	    { printf '%s\n' "${lines[@]}"; cat "$LOG"; false; }
}

# --- a planted dot-lock that says "cut the mailbox to 0 bytes" ----------

# The attacker writes bob.lock as a dead smtpd's: a pid above pid_max
# (kill() says ESRCH), this host, the size 0 and bob's inode.
planted_lock() {
	table_user bob
	for s in one two three; do
		deliver_to bob "$s"
		delivered
	done
	cp -p "$SPOOL/bob" "$BATS_TEST_TMPDIR/bob.before"
	old=$(stat -c %s "$SPOOL/bob")
	printf '%s %s 0 %s\n' 2147483647 "$(uname -n)" \
	    "$(stat -c %i "$SPOOL/bob")" |
	    attacker sh -c 'cat >"$0"' "$SPOOL/bob.lock"
	[ "$(stat -c %u "$SPOOL/bob.lock")" = "$(id -u nobody)" ]
	start=$(now_ms)
	deliver_to bob four
	took=$(($(now_ms) - start))
	delivered
	# smtpd waits 60 s for a live lock (smtpd.8, MAILBOX FORMAT)
	[ "$took" -lt 5000 ] || { echo "took $took ms"; false; }
	cmp -n "$old" "$BATS_TEST_TMPDIR/bob.before" "$SPOOL/bob"
	[ "$(count_messages bob)" = 4 ]
	run ! grep 'left by a dead writer' "$LOG"
	[ ! -e "$SPOOL/bob.lock" ]
}

@test "1777 spool: a planted lock claiming a dead smtpd left the mailbox at 0 bytes is removed at once, every old message kept" {
	hostile_spool sticky
	planted_lock
	# bob's mailbox is root's, mode 0600: nobody could have locked it
	grep -qF "removed stale lock $SPOOL/bob.lock (made by someone who cannot write the mailbox)" "$LOG"
}

@test "root:mail 2775 spool: a planted lock claiming a dead smtpd left the mailbox at 0 bytes is not believed, every old message kept" {
	hostile_spool group
	planted_lock
	# bob's mailbox is root:mail 0660: the group may lock it, so the
	# lock is judged by what it says, its size not believed
	[ "$(stat -c '%U %G %a' "$SPOOL/bob")" = "root mail 660" ]
	grep -qF "$SPOOL/bob.lock: a dead writer's lock made by uid $(id -u nobody), not by us: its record is not believed" "$LOG"
	grep -qF "removed stale lock $SPOOL/bob.lock (its process is gone)" "$LOG"
}

# --- a mailbox made in advance, to steal the mail -----------------------

# The attacker makes NAME's mailbox before its first mail, for all to
# write; delivery to NAME must refuse it and leave it empty.
mailbox_trap() {
	attacker sh -c ': >"$0"; chmod 666 "$0"' "$SPOOL/$1"
	deliver_to "$1" "for $1 only"
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$(stat -c '%s %u' "$SPOOL/$1")" = "0 $(id -u nobody)" ]
	grep -qF "$SPOOL/$1: owned by uid $(id -u nobody), not by the account of $1 nor by us: refused" "$LOG"
}

@test "1777 spool: a mailbox another user made for a new recipient is refused with 451 and stays empty" {
	hostile_spool sticky
	table_user carol
	mailbox_trap carol
}

@test "root:mail 2775 spool: a mailbox another user made for a new recipient is refused with 451 and stays empty" {
	hostile_spool group
	table_user carol
	mailbox_trap carol
}

@test "a postmaster mailbox another user made in advance is refused with 451, in a 1777 and in a 2775 spool" {
	for mode in sticky group; do
		hostile_spool "$mode"
		mailbox_trap postmaster
	done
}

@test "a root mailbox another user made in advance is refused with 451, in a 1777 and in a 2775 spool" {
	getent passwd root >/dev/null || skip "no account root"
	for mode in sticky group; do
		hostile_spool "$mode"
		OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")	# accounts too
		mailbox_trap root
	done
}

# --- things planted where a dot-lock or a mailbox belongs ---------------

# A directory as alice's dot-lock can never be removed by unlink():
# smtpd says so at once instead of waiting out its 60 s.
lock_directory() {
	table_user alice
	attacker mkdir "$SPOOL/alice.lock"
	start=$(now_ms)
	deliver_to alice blocked
	took=$(($(now_ms) - start))
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	[ -d "$SPOOL/alice.lock" ]
	run ls -A "$SPOOL/alice.lock"
	[ "$output" = "" ]
	grep -qF "$SPOOL/alice.lock: a directory: no delivery to $SPOOL/alice" "$LOG"
}

@test "1777 spool: a directory planted as a dot-lock gets 451 at once, is left alone and is logged" {
	hostile_spool sticky
	lock_directory
}

@test "root:mail 2775 spool: a directory planted as a dot-lock gets 451 at once, is left alone and is logged" {
	hostile_spool group
	lock_directory
}

# An old symbolic link as dave's dot-lock, to a file outside the spool.
lock_symlink() {
	table_user dave
	printf 'precious\n' >"$BATS_TEST_TMPDIR/outside"
	touch -d 2021-06-01 "$BATS_TEST_TMPDIR/outside"
	mtime=$(stat -c %Y "$BATS_TEST_TMPDIR/outside")
	attacker sh -c 'ln -s "$0" "$1" && touch -h -d 2020-01-01 "$1"' \
	    "$BATS_TEST_TMPDIR/outside" "$SPOOL/dave.lock"
	deliver_to dave "through the link?"
	delivered
	[ ! -L "$SPOOL/dave.lock" ]
	[ "$(cat "$BATS_TEST_TMPDIR/outside")" = precious ]
	[ "$(stat -c %Y "$BATS_TEST_TMPDIR/outside")" = "$mtime" ]
	[ "$(count_messages dave)" = 1 ]
}

@test "1777 spool: an old symbolic link planted as a dot-lock is removed, the file it names untouched, and mail goes" {
	hostile_spool sticky
	lock_symlink
	grep -qF "removed stale lock $SPOOL/dave.lock (made by someone who cannot write the mailbox)" "$LOG"
}

@test "root:mail 2775 spool: an old symbolic link planted as a dot-lock is removed, the file it names untouched, and mail goes" {
	hostile_spool group
	lock_symlink
	# the group may write the mailbox: the link is judged by its age
	grep -qF "removed stale lock $SPOOL/dave.lock (more than five minutes old)" "$LOG"
}

# In a 2775 spool a FIFO of the group, new, is a lock like any other (its
# maker may write the mailbox): only the sticky spool's is broken at once.
@test "1777 spool: a FIFO planted as a dot-lock is removed at once and mail goes" {
	hostile_spool sticky
	table_user erin
	attacker mkfifo "$SPOOL/erin.lock"
	start=$(now_ms)
	deliver_to erin "not stuck"
	took=$(($(now_ms) - start))
	delivered
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	[ ! -e "$SPOOL/erin.lock" ]
	grep -qF "removed stale lock $SPOOL/erin.lock (made by someone who cannot write the mailbox)" "$LOG"
	[ "$(count_messages erin)" = 1 ]
}

# Root's lock: its maker may write the mailbox, so it is judged by its age.
@test "a symbolic link root left as a dot-lock more than five minutes ago is removed and mail goes" {
	hostile_spool sticky
	table_user frank
	ln -s "$BATS_TEST_TMPDIR/nowhere" "$SPOOL/frank.lock"
	touch -h -d 2020-01-01 "$SPOOL/frank.lock"
	deliver_to frank "after the old lock"
	delivered
	[ ! -L "$SPOOL/frank.lock" ]
	[ ! -e "$BATS_TEST_TMPDIR/nowhere" ]
	grep -qF "removed stale lock $SPOOL/frank.lock (more than five minutes old)" "$LOG"
	[ "$(count_messages frank)" = 1 ]
}

@test "a directory planted where a new mailbox belongs gets 451 at once and is left alone, empty" {
	hostile_spool sticky
	table_user gina
	attacker mkdir "$SPOOL/gina"
	start=$(now_ms)
	deliver_to gina "into a directory?"
	took=$(($(now_ms) - start))
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	[ -d "$SPOOL/gina" ]
	run ls -A "$SPOOL/gina"
	[ "$output" = "" ]
	grep -qF "$SPOOL/gina: not a regular file" "$LOG"
}

@test "a FIFO planted where a new mailbox belongs gets 451 at once and is left alone" {
	hostile_spool sticky
	table_user gina
	attacker mkfifo "$SPOOL/gina"
	start=$(now_ms)
	deliver_to gina "into a FIFO?"
	took=$(($(now_ms) - start))
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	[ -p "$SPOOL/gina" ]
	grep -qF "$SPOOL/gina: not a regular file" "$LOG"
}

# --- lock file names guessed in advance ---------------------------------

# The names smtpd once gave its unique lock files, .lk.<host>.<pid>.<n>,
# made in advance as directories for the next 3000 pids (the first 300
# for a second mailbox too): smtpd's names are random now.
guessed_names() {
	local host last max
	host=$(uname -n)
	last=$(cat /proc/sys/kernel/ns_last_pid)
	max=$(cat /proc/sys/kernel/pid_max)
	# (in awk: a loop of 3000 in the test's shell costs seconds)
	mapfile -t names < <(awk -v last="$last" -v max="$max" \
	    -v stem="$SPOOL/.lk.$host." 'BEGIN {
		for (i = 1; i <= 3000; i++) {
			p = last + i
			if (p >= max)
				p = p - max + 300	# the kernel wraps to 300
			print stem p ".0"
			if (i <= 300)
				print stem p ".1"
		}
	}')
	attacker mkdir "${names[@]}"
	start=$(now_ms)
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: two" "" \
	    "Hello." . QUIT
	took=$(($(now_ms) - start))
	[ "${lines[6]:0:24}" = "$DELIVERED" ] || { cat "$LOG"; false; }
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages smith)" = 1 ]
	# the attacker's directories alone are left, and none of smtpd's
	run find "$SPOOL" -maxdepth 1 -name '.lk.*' ! -type d
	[ "$output" = "" ]
	[ "$(find "$SPOOL" -maxdepth 1 -name '.lk.*' -type d | wc -l)" = 3300 ]
	run ! grep -E '^\.lk\..+\.[0-9]+\.[0-9a-f]{16}$' < <(ls -A "$SPOOL")
}

# bats test_tags=slow
@test "1777 spool: lock file names made in advance for the next 3000 pids do not stop delivery" {
	hostile_spool sticky
	guessed_names
}

# bats test_tags=slow
@test "root:mail 2775 spool: lock file names made in advance for the next 3000 pids do not stop delivery" {
	hostile_spool group
	guessed_names
}

# --- the queue file -----------------------------------------------------

# The attacker makes .smtpd-queue, mode $1, and holds an fcntl() write
# lock over all of it: smtpd must not wait in its queue.
queue_held() {
	attacker_python
	ready="$BATS_TEST_TMPDIR/held"
	: >"$ready"
	timeout 60 setpriv --reuid nobody --regid "$ATTACKER_GROUP" \
	    --clear-groups "$ATTACKER_PYTHON" -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.fchmod(fd, int(sys.argv[2], 8))
fcntl.lockf(fd, fcntl.LOCK_EX)
os.write(9, b"locked\n")
time.sleep(60)' "$SPOOL/.smtpd-queue" "$1" 9>"$ready" 3>&- &
	started "$!"
	wait_until 10 test -s "$ready"
	[ "$(stat -c '%u %a' "$SPOOL/.smtpd-queue")" = "$(id -u nobody) $1" ]
	start=$(now_ms)
	deliver_to jones queued
	took=$(($(now_ms) - start))
	delivered
	# waiting in the queue would last the whole 60 s lock wait, then 451
	# (smtpd.8, MAILBOX FORMAT)
	[ "$took" -lt 10000 ] || { echo "took $took ms"; false; }
	grep -qF "$SPOOL/.smtpd-queue: not to be trusted" "$LOG"
	[ "$(count_messages jones)" = 1 ]
}

@test "1777 spool: a queue file planted mode 0666 and locked by another user is not used, and mail goes at once" {
	hostile_spool sticky
	queue_held 666
}

@test "root:mail 2775 spool: a queue file planted mode 0660 and locked by a member of group mail is not used, and mail goes at once" {
	hostile_spool group
	queue_held 660
}

@test "in a fresh 1777 or 2775 spool, the queue file smtpd makes is an empty regular file of root's, mode 0600" {
	for mode in sticky group; do
		hostile_spool "$mode"
		deliver_to jones first
		delivered
		[ "$(stat -c '%F %a %s %u' "$SPOOL/.smtpd-queue")" = \
		    "regular empty file 600 0 0" ]
	done
}

# --- the forwarding program ---------------------------------------------

# jones's mailbox with one message in it, kept as jones.before; then
# `both' as jones and a remote address, forwarded by the program
# $BATS_TEST_TMPDIR/forward with -t $1.
forwarding() {
	deliver_to jones "old one"
	delivered
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	printf 'both:\tjones, far@remote.example\n' >>"$TABLE"
	chmod +x "$BATS_TEST_TMPDIR/forward"
	OPTS+=(-F "$BATS_TEST_TMPDIR/forward" -t "$1")
}

# A program that never reads its input nor exits, with a grandchild in
# the background; it writes its own pid last, once both are known.
hanging_program() {
	cat >"$BATS_TEST_TMPDIR/forward" <<-EOF
	#!/bin/sh
	sleep 40 &
	echo \$! >"$BATS_TEST_TMPDIR/grandchild.pid"
	echo \$\$ >"$BATS_TEST_TMPDIR/program.pid"
	exec sleep 30
	EOF
	forwarding "$1"
}

# The program's pid and its grandchild's, noted for teardown.
program_pids() {
	wait_until 10 test -s "$BATS_TEST_TMPDIR/program.pid"
	program=$(cat "$BATS_TEST_TMPDIR/program.pid")
	grandchild=$(cat "$BATS_TEST_TMPDIR/grandchild.pid")
	started "$program"
	started "$grandchild"
}

# A transaction to `both' whose message is $1 bytes of lines, as input,
# up to its final dot.
message_to_both() {
	printf '%s\r\n' "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<both>" DATA "Subject: to both" ""
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i += 64) printf "%062d\r\n", i }'
	printf '.\r\n'
}

# bats test_tags=slow
@test "a forwarding program that never reads a large message is killed with its process group after -t: 451, the mailbox as before" {
	hanging_program 3
	start=$(now_ms)
	SMTP_WAIT=30 run -0 smtp_raw < <(message_to_both 204800; printf 'QUIT\r\n')
	took=$(($(now_ms) - start))
	[ "$(codes)" = "220 250 250 250 354 451 221" ]
	[ "${lines[5]}" = "$FORWARD_FAILED" ]
	[ "$took" -lt 15000 ] || { echo "took $took ms"; false; }
	program_pids
	wait_until 5 gone "$program"
	wait_until 5 gone "$grandchild"
	grep -qF "took too long (-t): killed" "$LOG"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
}

# bats test_tags=slow
@test "a forwarding program that reads nothing of a message that fits its pipe is killed after -t as not exiting: 451" {
	hanging_program 3
	start=$(now_ms)
	SMTP_WAIT=30 run -0 smtp_raw < <(message_to_both 1000; printf 'QUIT\r\n')
	took=$(($(now_ms) - start))
	[ "$(codes)" = "220 250 250 250 354 451 221" ]
	[ "${lines[5]}" = "$FORWARD_FAILED" ]
	# the whole message went into the pipe: it was -t that ended it
	[ "$took" -ge 2500 ] && [ "$took" -lt 15000 ] ||
	    { echo "took $took ms"; false; }
	program_pids
	wait_until 5 gone "$program"
	wait_until 5 gone "$grandchild"
	grep -qF "took too long (-t): killed" "$LOG"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
}

@test "SIGTERM to smtpd while the forwarding program hangs: 451, then 421, smtpd exits, the program's group is gone, the mailbox as before" {
	hanging_program 30	# SIGTERM ends it, not -t
	start_session term
	message_to_both 204800 >&"$TO"
	program_pids
	kill -TERM "$PID"
	start=$(now_ms)
	wait_until 5 gone "$PID"
	rc=0
	wait "$PID" || rc=$?
	took=$(($(now_ms) - start))
	exec {TO}>&-
	[ "$rc" -lt 128 ]	# it left by itself, not killed by the signal
	[ "$took" -lt 5000 ] || { echo "took $took ms"; false; }
	run tr -d '\r' <"$OUT"
	[ "$(codes)" = "220 250 250 250 354 451 421" ] ||
	    { printf '%s\n' "${lines[@]}"; cat "$LOG"; false; }
	[ "${lines[5]}" = "$FORWARD_FAILED" ]
	[ "${lines[6]}" = "421 4.3.2 mx.example shutting down" ]
	wait_until 5 gone "$program"
	wait_until 5 gone "$grandchild"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
}

@test "kill -9 of smtpd while the forwarding program hangs: the program dies with it" {
	hanging_program 30
	start_session killed
	message_to_both 204800 >&"$TO"
	program_pids
	running "$program"
	kill -9 "$PID"
	wait "$PID" || true
	exec {TO}>&-
	# smtpd asked the kernel for it (PR_SET_PDEATHSIG)
	wait_until 5 gone "$program"
}

@test "the forwarding program gets PATH alone as its environment, and no descriptor of smtpd's past 0, 1 and 2" {
	cat >"$BATS_TEST_TMPDIR/forward" <<-EOF
	#!/bin/sh
	tr '\0' '\n' </proc/\$\$/environ >"$BATS_TEST_TMPDIR/environ"
	# in a subshell: the shell's own descriptors, none of a redirection's
	(ls -l /proc/\$\$/fd) >"$BATS_TEST_TMPDIR/fds"
	cat >/dev/null
	exit 0
	EOF
	forwarding 10
	export TCPREMOTEHOST=attacker.example RELAYCLIENT= FOO=bar
	run -0 smtp_raw < <(message_to_both 1000; printf 'QUIT\r\n')
	[ "${lines[5]:0:24}" = "$DELIVERED" ] || { cat "$LOG"; false; }
	# the environment exec gave it
	[ "$(wc -l <"$BATS_TEST_TMPDIR/environ")" = 1 ]
	grep -q '^PATH=' "$BATS_TEST_TMPDIR/environ"
	# its input is the pipe; past 2, only the shell's own script
	cat "$BATS_TEST_TMPDIR/fds"	# shown should it fail
	awk '$(NF - 1) == "->" && $(NF - 2) == 0 { print $NF }' \
	    "$BATS_TEST_TMPDIR/fds" | grep -q '^pipe:'
	run awk -v script="$BATS_TEST_TMPDIR/forward" \
	    '$(NF - 1) == "->" && $(NF - 2) > 2 && $NF != script { print }' \
	    "$BATS_TEST_TMPDIR/fds"
	[ "$output" = "" ]
}

# --- the header clean-up ------------------------------------------------

@test "bookkeeping headers after a line without a colon, or with a space before their colon, are still dropped" {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: x" "X-Note no colon" \
	    "Status: RO" "X-Status: D" "Content-Length: 0" "Status : RO" "" \
	    "body line" . QUIT
	delivered
	diff -u <(printf '%s\n' "Subject: x" "X-Note no colon" "" "body line" "") \
	    <(stored "$SPOOL/jones")
	run -0 python3 -c 'import mailbox, sys
for m in mailbox.mbox(sys.argv[1], create=False):
    print("message:", *m.keys())' "$SPOOL/jones"
	[ "${#lines[@]}" = 1 ]
	run ! grep -iE ' (status|x-status|content-length)( |$)' <<<"$output"
}

# --- the session's limits (smtpd.8, INPUT RULES) ------------------------

@test "300 unknown recipients in one session: 20 answers 550, then 421 and the end" {
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")	# each asks the accounts
	cmds=("HELO client.example" "MAIL FROM:<sender@example.org>")
	for i in $(seq 300); do
		cmds+=("RCPT TO:<no-such-user-$i>")
	done
	run -0 smtp "${cmds[@]}" QUIT
	[ "$(codes)" = "220 250 250$(repeat_word 20 550) 421" ]
	[ "${lines[23]}" = \
	    "421 4.7.0 mx.example too many errors, closing connection" ]
	[ "${#lines[@]}" = 24 ]
}

# 110 times the command $1 without mail: answered 250 100 times, then
# 421 and the end.
asks_100() {
	cmds=()
	for i in $(seq 110); do
		cmds+=("$1")
	done
	run -0 smtp "${cmds[@]}" QUIT
	[ "$(codes)" = "220$(repeat_word 100 250) 421" ]
	[ "${lines[101]}" = \
	    "421 4.7.0 mx.example too many commands without mail, closing connection" ]
	[ "${#lines[@]}" = 102 ]
}

@test "100 VRFY without mail: 421 after the 100th, and the end" {
	asks_100 "VRFY jones"
}

@test "100 NOOP without mail: 421 after the 100th, and the end" {
	asks_100 NOOP
}

@test "a delivered message starts the count of commands without mail again" {
	noops=()
	for i in $(seq 60); do
		noops+=(NOOP)
	done
	run -0 smtp "${noops[@]}" "HELO client.example" \
	    "MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" DATA \
	    "Subject: between" "" "Hello." . "${noops[@]}" QUIT
	[ "$(codes)" = "220$(repeat_word 60 250) 250 250 250 354 250$(repeat_word 60 250) 221" ]
	[ "${lines[65]:0:24}" = "$DELIVERED" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "a delivered message starts the count of errors again" {
	unknown=()
	for i in $(seq 19); do
		unknown+=("RCPT TO:<no-such-user-$i>")
	done
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "${unknown[@]}" RSET "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: between" "" "Hello." . \
	    "MAIL FROM:<sender@example.org>" "${unknown[@]}" QUIT
	[ "$(codes)" = "220 250 250$(repeat_word 19 550) 250 250 250 354 250 250$(repeat_word 19 550) 221" ]
	[ "${lines[26]:0:24}" = "$DELIVERED" ]
}

# --- an address longer than a path may be (RFC 5321 4.5.3.1.3) ----------

@test "a sender address longer than 256 characters is answered 501 address too long, and the session goes on" {
	long=$(head -c 256 /dev/zero | tr '\0' a)
	run -0 smtp "HELO client.example" "MAIL FROM:<$long.x@example.org>" \
	    NOOP QUIT
	[ "$(codes)" = "220 250 501 250 221" ]
	[ "${lines[2]}" = "501 5.1.3 Bad address syntax: address too long" ]
}

# --- /etc/passwd as smtpd reads it itself -------------------------------

@test "a commented-out line and a NIS line of /etc/passwd are no accounts: RCPT 550, no mailbox" {
	pw="$BATS_TEST_TMPDIR/passwd"
	cat /etc/passwd >"$pw"
	printf '%s\n' '#olduser:x:1001:1001::/home/olduser:/bin/sh' \
	    '+nisguy:x:1002:1002::/home/nisguy:/bin/sh' >>"$pw"
	mounted_over "$pw" /etc/passwd
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")	# accounts too
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<#olduser>" "RCPT TO:<+nisguy>" "RCPT TO:<jones>" DATA \
	    "Subject: to three" "" "Hello." . QUIT
	[ "$(codes)" = "220 250 250 550 550 250 354 250 221" ]
	[ "${lines[3]}" = "550 5.1.1 <#olduser>: user unknown" ]
	[ "${lines[4]}" = "550 5.1.1 <+nisguy>: user unknown" ]
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}
