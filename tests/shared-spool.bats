#!/usr/bin/env bats
# One spool, several hosts (smtpd.8, MAILBOX FORMAT: a shared spool), on
# a local directory: each "host" is smtpd in a UTS namespace of its own
# with its own host name, which it writes into its dot-locks and by which
# it judges them.  A dead writer's lock is broken at once by its own host
# and by another only when it is older than the stale age (a test clock:
# SMTPD_TEST_LOCK_STALE); nobody waits behind a lock they may not break;
# killed writers' unique lock files go.  tests/glusterfs.bats does the
# same on a real distributed file system.
load helpers

setup() {
	common_setup
	[ "$EUID" = 0 ] || skip "a UTS namespace of its own needs root"
	unshare --uts true 2>/dev/null ||
	    skip "no UTS namespace can be made here"
}

teardown() {
	stop_started
}

# smtpd as host $1, the rest its input's command lines; replies as smtp().
on_host() {
	local host=$1
	shift
	printf '%s\r\n' "$@" | {
		set -o pipefail
		timeout "${SMTP_WAIT:-30}" unshare --uts sh -c \
		    'hostname "$0" && exec "$@"' "$host" "$SMTPD" "${OPTS[@]}" \
		    2>>"$LOG" | tr -d '\r'
	}
}

# One message to jones from host $1, subject $2.
deliver_from() {
	on_host "$1" "HELO $1.example" "MAIL FROM:<sender@$1.example>" \
	    "RCPT TO:<jones>" DATA "Subject: $2" "" "From $1." . QUIT
}

# The pid of a process that has ended.
dead_pid() {
	sh -c 'echo $$'
}

# Whether $1 deliveries of hostB have made their unique lock files.
hostb_waiting() {
	[ "$(find "$SPOOL" -maxdepth 1 -name '.lk.hostB.*' | wc -l)" -ge "$1" ]
}

# A dot-lock on jones as smtpd writes one: pid $1, host $2, through its
# unique file .lk.HOST.PID.ID, left linked as a killed writer leaves it.
plant_lock() {
	local tmp="$SPOOL/.lk.$2.$1.0123456789abcdef"
	printf '%s %s 0 0\n' "$1" "$2" >"$tmp"
	ln "$tmp" "$SPOOL/jones.lock"
}

@test "another host's dot-lock is not judged by its pid: one naming a pid that is gone here is kept, 451 after the lock wait" {
	short_waits LOCK_WAIT=1
	plant_lock "$(dead_pid)" hostA
	run -0 deliver_from hostB "kept out"
	[ "${lines[5]}" = "$REFUSED" ]
	[ -e "$SPOOL/jones.lock" ]
	run ! grep -q 'removed stale lock' "$LOG"
	[ "$(count_messages jones)" = 0 ]
}

@test "a dot-lock of a dead writer of its own host is broken at once" {
	short_waits LOCK_WAIT=20
	plant_lock "$(dead_pid)" hostA
	start=$(now_ms)
	run -0 deliver_from hostA "breaks it"
	took=$(($(now_ms) - start))
	[ "${lines[5]:0:${#DELIVERED}}" = "$DELIVERED" ]
	[ "$took" -lt 5000 ] || { echo "took $took ms"; false; }
	grep -q "removed stale lock $SPOOL/jones.lock (its process is gone)" \
	    "$LOG"
	[ "$(count_messages jones)" = 1 ]
}

@test "another host's dot-lock older than the stale age is broken; a younger one is not" {
	short_waits LOCK_WAIT=1 LOCK_STALE=3
	plant_lock "$(dead_pid)" hostA
	run -0 deliver_from hostB "too soon"
	[ "${lines[5]}" = "$REFUSED" ]
	touch -h -d '-5 seconds' "$SPOOL/jones.lock"
	run -0 deliver_from hostB "old enough"
	[ "${lines[5]:0:${#DELIVERED}}" = "$DELIVERED" ]
	grep -q "removed stale lock $SPOOL/jones.lock (more than five minutes old)" \
	    "$LOG"
	[ "$(mbox_subjects "$SPOOL/jones")" = "old enough" ]
}

@test "a dead writer's lock does not stall its own host behind another host's deliveries waiting for it" {
	short_waits LOCK_WAIT=20
	plant_lock "$(dead_pid)" hostA
	for i in 1 2 3; do	# they may not break it: it is hostA's
		deliver_from hostB "waited $i" >"$BATS_TEST_TMPDIR/b$i.out" &
		started "$!"
		eval "b$i=\$!"
	done
	# each makes its unique lock file before it takes its turn
	wait_until 10 hostb_waiting 3
	start=$(now_ms)
	run -0 deliver_from hostA "its own host"
	took=$(($(now_ms) - start))
	[ "${lines[5]:0:${#DELIVERED}}" = "$DELIVERED" ]
	# behind the three, it would have waited out their 20 s
	[ "$took" -lt 5000 ] || { echo "took $took ms"; false; }
	for i in 1 2 3; do
		eval "wait_ok \$b$i 'hostB session $i'"
		grep -q "^$DELIVERED" "$BATS_TEST_TMPDIR/b$i.out"
	done
	[ "$(count_messages jones)" = 4 ]
}

@test "killed writers' unique lock files are removed by the next delivery of their host, and nothing else is" {
	short_waits LOCK_WAIT=5
	dead=$(dead_pid)
	plant_lock "$dead" hostA
	# one killed in the queue, before its link: never a dot-lock
	other=$(dead_pid)
	printf '%s hostA\n' "$other" >"$SPOOL/.lk.hostA.$other.fedcba9876543210"
	# what must stay: another host's, a live process's, one planted by
	# someone else, one that is not a regular file
	keep=(".lk.hostB.$dead.1111111111111111" ".lk.hostA.$$.2222222222222222"
	    ".lk.hostA.$other.3333333333333333")
	for f in "${keep[@]}"; do
		printf 'x\n' >"$SPOOL/$f"
	done
	chown nobody "$SPOOL/.lk.hostA.$other.3333333333333333"
	mkfifo "$SPOOL/.lk.hostA.$other.4444444444444444"
	keep+=(".lk.hostA.$other.4444444444444444")
	run -0 deliver_from hostA "sweeps"
	[ "${lines[5]:0:${#DELIVERED}}" = "$DELIVERED" ]
	grep -q "removed 2 lock files of dead writers" "$LOG"
	run -0 bash -c 'cd "$1" && ls -A | grep "^\.lk\." | sort' _ "$SPOOL"
	[ "$output" = "$(printf '%s\n' "${keep[@]}" | sort)" ]
}

@test "one host on a local disk: a reader's flock() alone is still waited for" {
	short_waits LOCK_WAIT=20
	command -v flock >/dev/null || skip "no flock(1)"
	deliver_from hostA "first" >/dev/null
	flock --no-fork "$SPOOL/jones" sleep 1 3>&- &
	started "$!"
	wait_until 10 eval '! flock -n "$SPOOL/jones" true'
	start=$(now_ms)
	run -0 deliver_from hostA "after the reader"
	took=$(($(now_ms) - start))
	[ "${lines[5]:0:${#DELIVERED}}" = "$DELIVERED" ]
	[ "$took" -ge 500 ] ||
	    { echo "took $took ms: the flock() was not waited for"; false; }
	run ! grep -q 'flock() is the fcntl() lock' "$LOG"
}
