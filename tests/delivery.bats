# smtpd.8, MAILBOX FORMAT: delivery that never loses or corrupts mail:
# concurrency and locking against other lockers, a full disk, smtpd killed
# at any moment, all or nothing across recipients, hostile local parts, real
# mail readers, access times and ownership.  (The format itself, and
# symbolic links, directories, FIFOs and hard links as mailboxes:
# mbox.bats.)
load helpers

HELPER="$BATS_TEST_DIRNAME/delivery-mbox.py"

# The reply to the data when the mailbox's disk is full.
NO_SPACE="452 4.3.1 Insufficient system storage"

teardown() {
	stop_started
	if [ -f "$BATS_TEST_TMPDIR/immutable" ]; then
		python3 "$HELPER" immutable "$(cat "$BATS_TEST_TMPDIR/immutable")" off || true
	fi
	if [ -f "$BATS_TEST_TMPDIR/mounted" ]; then
		umount "$(cat "$BATS_TEST_TMPDIR/mounted")" ||
		    umount -l "$(cat "$BATS_TEST_TMPDIR/mounted")"
	fi
}

# A 256 KiB tmpfs as the spool (TMPDIR, where smtpd spools the message
# itself, stays on the normal disk); skips the test when it cannot be.
mount_spool() {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs as the spool needs root"
	mount -t tmpfs -o size=256k,mode=0755 tmpfs "$SPOOL" \
	    2>"$BATS_TEST_TMPDIR/mount.err" ||
	    skip "cannot mount a tmpfs (no CAP_SYS_ADMIN?): $(cat "$BATS_TEST_TMPDIR/mount.err")"
	echo "$SPOOL" >"$BATS_TEST_TMPDIR/mounted"
	[ "$(stat -c %d "$TMPDIR")" != "$(stat -c %d "$SPOOL")" ]
}

# Messages delivered through one smtpd session, each given as a subject:
# the body says which it is.
deliver_subjects() {
	local args=("HELO client.example") s
	for s in "$@"; do
		args+=("MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" DATA \
		    "Subject: $s" "" "body of $s" .)
	done
	run -0 smtp "${args[@]}" QUIT
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^250 2.0.0 Delivered')" = $# ]
}

# The replies in file $1, a session's output, without their CRs, as
# smtp() gives them.
replies_in() {
	tr -d '\r' <"$1"
}

# replied CODE: the session's output has a line starting with CODE.
replied() {
	grep -q "^$1" "$OUT"
}

# dead_lock [WORD...]: jones's dot-lock as a process of this host that is
# gone left it: its pid and the host, then the WORDs (smtpd's: the
# mailbox's size and inode).
dead_lock() {
	printf '%s\n' "$(sh -c 'echo $$') $(uname -n)${*:+ $*}" \
	    >"$SPOOL/jones.lock"
}

# jones's dot-lock made immutable, so that no smtpd can remove it until
# the test (or teardown) lets it go; skips where that cannot be done.
immutable_lock() {
	run python3 "$HELPER" immutable "$SPOOL/jones.lock" on
	[ "$status" = 0 ] || skip "cannot make a file immutable here: $output"
	echo "$SPOOL/jones.lock" >"$BATS_TEST_TMPDIR/immutable"
}

# bats test_tags=slow
@test "40 concurrent sessions of 5 messages to one mailbox, a reader taking the locks meanwhile: every message once, whole, in its session's order" {
	python3 "$HELPER" gen "$BATS_TEST_TMPDIR" 40 5 2024
	: >"$SPOOL/jones"
	chmod 600 "$SPOOL/jones"
	# the reader holds the locks 0.2 s, 12 times, in turn all three,
	# the dot-lock alone, fcntl alone, flock alone; each time it checks
	# that the mailbox holds whole messages and is not written meanwhile
	ready="$BATS_TEST_TMPDIR/reader.ready"
	timeout 300 python3 "$HELPER" lock "$SPOOL/jones" 12 0.2 0.1 "$ready" \
	    "$BATS_TEST_TMPDIR/reader.log" >"$BATS_TEST_TMPDIR/reader.out" \
	    2>&1 3>&- &
	reader=$!
	started "$reader"
	wait_until 30 test -e "$ready"	# the sessions start while it holds them
	pids=()
	for i in $(seq 40); do
		smtpd_bg 120 "$BATS_TEST_TMPDIR/session.$i" "$i"
		pids+=("$PID")
	done
	for i in $(seq 40); do
		wait_ok "${pids[i - 1]}" "session $i"
	done
	wait_ok "$reader" reader || { cat "$BATS_TEST_TMPDIR/reader.out" \
	    "$BATS_TEST_TMPDIR/reader.log"; false; }
	cat "$BATS_TEST_TMPDIR/reader.log"
	[ "$(grep -c ' ok$' "$BATS_TEST_TMPDIR/reader.log")" = 12 ]
	for i in $(seq 40); do
		delivered_in "$i" 5
	done
	run -0 python3 "$HELPER" check "$SPOOL/jones" 40 5
	[ "${lines[-1]}" = "200 messages, 0 problems" ]
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}

@test "20 concurrent sessions to two lists naming the same mailboxes in opposite orders: no deadlock, every message in both" {
	printf '%s\n' "ab: smith, jones" "ba: jones, smith" >>"$TABLE"
	pids=()
	for i in $(seq 20); do
		list=ab
		[ $((i % 2)) = 0 ] && list=ba
		args=("HELO client.example")
		for j in 1 2 3; do
			args+=("MAIL FROM:<sender@example.org>" "RCPT TO:<$list>" \
			    DATA "Subject: $i.$j" "" "to $list" .)
		done
		printf '%s\r\n' "${args[@]}" QUIT >"$BATS_TEST_TMPDIR/in.$i"
		smtpd_bg 100 "$BATS_TEST_TMPDIR/in.$i" "$i"
		pids+=("$PID")
	done
	for i in $(seq 20); do
		wait_ok "${pids[i - 1]}" "session $i"
		delivered_in "$i" 3
	done
	[ "$(count_messages smith)" = 60 ]
	[ "$(count_messages jones)" = 60 ]
	[ "$(mbox_subjects "$SPOOL/smith" | sort)" = "$(mbox_subjects "$SPOOL/jones" | sort)" ]
	run spool_ls "$SPOOL"
	[ "$output" = "$(printf '%s\n' jones smith)" ]
}

@test "the delivery queue is an empty file of mode 0600; a symbolic link or a directory in its place is left alone, and mail still goes" {
	deliver_subjects one
	[ "$(stat -c '%F %a %s' "$SPOOL/.smtpd-queue")" = "regular empty file 600 0" ]
	rm "$SPOOL/.smtpd-queue"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$SPOOL/.smtpd-queue"
	deliver_subjects two
	[ ! -e "$BATS_TEST_TMPDIR/elsewhere" ]
	[ -L "$SPOOL/.smtpd-queue" ]
	rm "$SPOOL/.smtpd-queue"
	mkdir "$SPOOL/.smtpd-queue"
	deliver_subjects three
	[ -d "$SPOOL/.smtpd-queue" ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' one two three)" ]
}

@test "disk full: a message that fits the first mailbox but not the second gets 452, and both are byte-identical to before" {
	mount_spool
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: before" "" \
	    "the old message" . QUIT
	[ "${lines[6]:0:24}" = "250 2.0.0 Delivered, id " ]
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	cp -p "$SPOOL/smith" "$BATS_TEST_TMPDIR/smith.before"
	# two thirds of the space left: jones (locked and written first,
	# mailboxes go in the order of their names) has room, smith not
	free=$(($(stat -f -c '%a * %S' "$SPOOL")))
	size=$((free * 2 / 3))
	run -0 smtp_raw < <(printf '%s\r\n' "HELO client.example" \
	    "MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" \
	    "RCPT TO:<smith>" DATA "Subject: too big for two" ""
	    awk -v n="$size" 'BEGIN { for (i = 0; i < n; i += 64) printf "%063d\r\n", i }'
	    printf '.\r\nQUIT\r\n')
	[ "$(codes)" = "220 250 250 250 250 354 452 221" ]
	[ "${lines[6]}" = "$NO_SPACE" ]
	# jones was written, then cut back: it is smith that had no room
	grep -q 'smith: cannot write' "$LOG"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	cmp "$BATS_TEST_TMPDIR/smith.before" "$SPOOL/smith"
	run spool_ls "$SPOOL"
	[ "$output" = "$(printf '%s\n' jones smith)" ]
	# nothing was left locked or taken: a small one still goes to both
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: after" "" \
	    "small" . QUIT
	[ "${lines[6]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' before after)" ]
	[ "$(mbox_subjects "$SPOOL/smith")" = "$(printf '%s\n' before after)" ]
}

@test "disk full to the last byte: 452, the mailbox as it was, nothing left behind" {
	mount_spool
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	# fill it: dd ends at the first ENOSPC
	run dd if=/dev/zero of="$SPOOL/filler" bs=4096 count=100
	[ "$(stat -f -c %a "$SPOOL")" = 0 ]
	run -0 smtp "${TRANSACTION[@]}" "Subject: no room" "" "Hello." . QUIT
	[ "$(codes)" = "220 250 250 250 354 452 221" ]
	[ "${lines[5]}" = "$NO_SPACE" ]
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run spool_ls "$SPOOL"
	[ "$output" = "$(printf '%s\n' filler jones)" ]
}

@test "kill -9 during DATA: the mailbox is untouched, no spool file is left, the next delivery succeeds" {
	deliver_subjects "old one" "old two"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	mkdir "$BATS_TEST_TMPDIR/tmp"
	TMPDIR="$BATS_TEST_TMPDIR/tmp" start_session killed
	send "${TRANSACTION[@]}"
	wait_until 10 replied 354
	send "Subject: never finished" ""
	# 4 MB of it: more than smtpd keeps in memory, so it is spooled
	awk 'BEGIN { for (i = 0; i < 65536; i++) printf "%063d\r\n", i }' >&"$TO"
	kill -9 "$PID"
	wait "$PID" || true
	exec {TO}>&-
	run ! grep '^250 2.0.0 Delivered' "$OUT"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
	run ls -A "$BATS_TEST_TMPDIR/tmp"	# the spool file was unlinked at once
	[ "$output" = "" ]
	deliver_subjects "after"
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" "old two" after)" ]
	cmp -n "$(stat -c %s "$BATS_TEST_TMPDIR/jones.before")" \
	    "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
}

@test "kill -9 while a large message is being appended: the next delivery cuts it off, the old messages intact" {
	OPTS+=(-s 200000000)
	deliver_subjects "old one" "old two"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	old=$(stat -c %s "$SPOOL/jones")
	python3 "$HELPER" big "$BATS_TEST_TMPDIR/big.in" 64000000 "cut short"
	# killed as soon as the mailbox grows: inside the append or its
	# fsync, with the locks held.  Should the writer ever get through
	# before the kill, the mailbox is put back and it is tried again.
	for attempt in 1 2 3; do
		run -0 timeout 90 python3 "$HELPER" killwrite "$SPOOL/jones" \
		    "$old" "$BATS_TEST_TMPDIR/big.in" "$BATS_TEST_TMPDIR/big.out" \
		    "$SMTPD" "${OPTS[@]}"
		[ ! -e "$SPOOL/jones.lock" ] || break
		echo "attempt $attempt: the writer finished before the kill"
		cat "$BATS_TEST_TMPDIR/jones.before" >"$SPOOL/jones"
	done
	# it died holding the lock, a partial (or unacknowledged) message
	# after the old ones, and no 250 was given for it
	[ -e "$SPOOL/jones.lock" ]
	[ "$(stat -c %s "$SPOOL/jones")" -gt "$old" ]
	run ! grep '^250 2.0.0 Delivered' "$BATS_TEST_TMPDIR/big.out"
	cmp -n "$old" "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	# the dead writer's lock names a process of this host that is gone:
	# stale at once, so this is not kept waiting (smtp's timeout is 10 s,
	# smtpd would wait 60 s for a live lock)
	deliver_subjects "after"
	[ ! -e "$SPOOL/jones.lock" ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" "old two" after)" ]
	cmp -n "$old" "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run ! grep -q 'cut short' "$SPOOL/jones"
	# the new message starts right where the old ones end
	[ "$(tail -c +$((old + 1)) "$SPOOL/jones" | head -n 1 | cut -d' ' -f1-2)" = \
	    "From sender@example.org" ]
	[ "$(grep -c '^From ' "$SPOOL/jones")" = 3 ]
}

@test "a dead smtpd's dot-lock: the partial message after the size it recorded is cut off before the next one" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	old=$(stat -c %s "$SPOOL/jones")
	printf '%s\n' "From cut@example.org Mon Jan  1 00:00:00 2024" \
	    "Return-Path: <cut@example.org>" "Subject: cut short" "" \
	    "half a li" | head -c -1 >>"$SPOOL/jones"
	# what delivery.c records: pid, host, size before, inode
	dead_lock "$old" "$(stat -c %i "$SPOOL/jones")"
	deliver_subjects "after"
	[ ! -e "$SPOOL/jones.lock" ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" after)" ]
	cmp -n "$old" "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run ! grep -q 'half a li' "$SPOOL/jones"
}

@test "several deliveries held up by a dead smtpd's dot-lock: every message that got 250 is kept" {
	[ "$(id -u)" = 0 ] || skip "making the lock immutable needs root"
	deliver_subjects "old one"
	# the dead writer recorded the mailbox's present size: nothing to cut
	dead_lock "$(stat -c %s "$SPOOL/jones")" "$(stat -c %i "$SPOOL/jones")"
	# immutable for a moment, so that all five see it stale before any
	# of them can break it (as happens when they come at the same time)
	immutable_lock
	pids=()
	for i in 1 2 3 4 5; do
		printf '%s\r\n' "${TRANSACTION[@]}" "Subject: message $i" "" \
		    "Hello." . QUIT >"$BATS_TEST_TMPDIR/in.$i"
		smtpd_bg 90 "$BATS_TEST_TMPDIR/in.$i" "$i"
		pids+=("$PID")
	done
	sleep 1
	python3 "$HELPER" immutable "$SPOOL/jones.lock" off
	rm "$BATS_TEST_TMPDIR/immutable"
	for i in 1 2 3 4 5; do
		wait_ok "${pids[i - 1]}" "session $i"
		delivered_in "$i" 1
	done
	[ ! -e "$SPOOL/jones.lock" ]
	diff -u <(printf '%s\n' "message "{1..5} "old one") \
	    <(mbox_subjects "$SPOOL/jones" | sort)
}

@test "a dead smtpd's dot-lock seen, then broken by another deliverer who appends: that message is kept" {
	[ "$(id -u)" = 0 ] || skip "making the lock immutable needs root"
	deliver_subjects "old one"
	dead_lock "$(stat -c %s "$SPOOL/jones")" "$(stat -c %i "$SPOOL/jones")"
	# immutable, smtpd cannot remove it: it sees it stale, and retries
	immutable_lock
	start_session waiting
	send "${TRANSACTION[@]}"
	wait_until 10 replied 354
	send "Subject: waited" "" "Hello." .
	sleep 1
	run ! replied '250 2.0.0 Delivered'
	# another deliverer (procmail's lockfile) breaks the stale lock,
	# putting its own in its place at once, appends a message, lets go
	lockfile -r0 "$BATS_TEST_TMPDIR/other.lock"
	python3 "$HELPER" swaplock "$SPOOL/jones.lock" "$BATS_TEST_TMPDIR/other.lock"
	rm "$BATS_TEST_TMPDIR/immutable"
	printf '%s\n' "From other@example.org Mon Jan  1 00:00:00 2024" \
	    "Subject: by the other" "" "Its body." "" >>"$SPOOL/jones"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	rm "$SPOOL/jones.lock"
	wait_until 30 replied '250 2.0.0 Delivered'
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	cmp -n "$(stat -c %s "$BATS_TEST_TMPDIR/jones.before")" \
	    "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" "by the other" waited)" ]
}

@test "a dead process's dot-lock naming another inode, or no size, cuts nothing" {
	deliver_subjects "old one" "old two"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	old=$(stat -c %s "$SPOOL/jones")
	first=$(($(grep -b -m 2 '^From ' "$SPOOL/jones" | tail -n 1 | cut -d: -f1) - 1))
	# a size recorded for some other file (the mailbox was replaced)
	dead_lock "$first" "$(($(stat -c %i "$SPOOL/jones") + 1))"
	deliver_subjects "third"
	[ ! -e "$SPOOL/jones.lock" ]
	cmp -n "$old" "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	old=$(stat -c %s "$SPOOL/jones")
	# another program's lock, pid and host only
	dead_lock
	deliver_subjects "fourth"
	[ ! -e "$SPOOL/jones.lock" ]
	cmp -n "$old" "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" "old two" third fourth)" ]
}

@test "a dot-lock of procmail's lockfile more than five minutes old is broken" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	lockfile -r0 "$SPOOL/jones.lock"
	touch -d '10 minutes ago' "$SPOOL/jones.lock"
	deliver_subjects "after"
	[ ! -e "$SPOOL/jones.lock" ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" after)" ]
	cmp -n "$(stat -c %s "$BATS_TEST_TMPDIR/jones.before")" \
	    "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
}

# bats test_tags=slow
@test "a dot-lock held by procmail's lockfile: the delivery waits, and succeeds after the lock is removed" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	lockfile -r0 "$SPOOL/jones.lock"
	ino=$(stat -c %i "$SPOOL/jones.lock")
	start_session waiting
	send "${TRANSACTION[@]}"
	wait_until 10 replied 354
	send "Subject: waited" "" "Hello." .
	sleep 2		# lockfile's lock is held a while
	# before the lock is removed: no reply yet, still running, the
	# mailbox as it was, the lock still lockfile's
	run ! replied '250 2.0.0 Delivered'
	kill -0 "$PID"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	[ "$(stat -c %i "$SPOOL/jones.lock")" = "$ino" ]
	[ "$(cat "$SPOOL/jones.lock")" = 0 ]
	rm -f "$SPOOL/jones.lock"
	# after: it is delivered
	wait_until 30 replied '250 2.0.0 Delivered'
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	run replies_in "$OUT"
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" waited)" ]
	[ ! -e "$SPOOL/jones.lock" ]
}

# bats test_tags=slow
@test "an flock(1) lock on the mailbox: the delivery waits, and succeeds after it is let go" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	flock --no-fork "$SPOOL/jones" sleep 60 3>&- &
	holder=$!
	started "$holder"
	wait_until 10 eval '! flock -n "$SPOOL/jones" true'
	start_session waiting
	send "${TRANSACTION[@]}"
	wait_until 10 replied 354
	send "Subject: waited" "" "Hello." .
	sleep 2
	run ! replied '250 2.0.0 Delivered'
	kill -0 "$PID"
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	kill "$holder"
	wait "$holder" || true
	wait_until 30 replied '250 2.0.0 Delivered'
	send QUIT
	exec {TO}>&-
	wait_ok "$PID" smtpd
	run replies_in "$OUT"
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "$(mbox_subjects "$SPOOL/jones")" = "$(printf '%s\n' "old one" waited)" ]
}

@test "a dot-lock held for good (lockfile's, or naming a live process): 451 after the wait, the lock and mailbox left alone" {
	deliver_subjects "old one"
	short_waits LOCK_WAIT=1		# of 60 s
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	lockfile -r0 "$SPOOL/jones.lock"
	sleep 600 3>&- &
	alive=$!
	started "$alive"
	printf '%s %s\n' "$alive" "$(uname -n)" >"$SPOOL/smith.lock"
	# the two at once: smtpd gives up after its lock wait (here 1 s)
	printf '%s\r\n' "${TRANSACTION[@]}" "Subject: never" "" "Hello." . QUIT \
	    >"$BATS_TEST_TMPDIR/jones.in"
	printf '%s\r\n' "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<smith>" DATA "Subject: never" "" "Hello." . QUIT \
	    >"$BATS_TEST_TMPDIR/smith.in"
	start=$(now_ms)
	for who in jones smith; do
		smtpd_bg 30 "$BATS_TEST_TMPDIR/$who.in" "$who"
		eval "pid_$who=\$PID"
	done
	wait_ok "$pid_jones" "smtpd to jones"
	wait_ok "$pid_smith" "smtpd to smith"
	took=$(($(now_ms) - start))
	[ "$took" -ge 900 ] && [ "$took" -le 20000 ] ||
	    { echo "took $took ms"; false; }
	run replies_in "$BATS_TEST_TMPDIR/jones.out"
	[ "$(codes)" = "220 250 250 250 354 451 221" ]
	[ "${lines[5]}" = "$REFUSED" ]
	run replies_in "$BATS_TEST_TMPDIR/smith.out"
	[ "$(codes)" = "220 250 250 250 354 451 221" ]
	[ "${lines[5]}" = "$REFUSED" ]
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	# smith's mailbox was made, as mutt and Dovecot make one, before its
	# locks; never having had them, smtpd leaves it as it is, empty
	[ "$(stat -c %s "$SPOOL/smith")" = 0 ]
	[ "$(cat "$SPOOL/jones.lock")" = 0 ]
	[ "$(cat "$SPOOL/smith.lock")" = "$alive $(uname -n)" ]
	run spool_ls "$SPOOL"
	[ "$output" = "$(printf '%s\n' jones jones.lock smith smith.lock)" ]
}

@test "the waits are settable in the test build alone: the smtpd that make installs reads no SMTPD_TEST_ variable" {
	run -1 grep -c SMTPD_TEST_ "$BATS_TEST_DIRNAME/../smtpd"
	[ "$output" = 0 ]
	run -0 grep -c SMTPD_TEST_LOCK_WAIT "$SMTPD_TEST"
}

@test "local parts that could leave the spool or name a lock are refused, and nothing is created anywhere" {
	top="$BATS_TEST_TMPDIR/top"
	SPOOL="$top/spool"
	mkdir -p "$SPOOL/a"	# a/b would land in it
	# the table even names them: only the name check can refuse them
	cat >>"$TABLE" <<-'TABLE'
	a/b:	A B <a/b>
	x.lock:	X Lock <x.lock>
	jones.lock:	J Lock <jones.lock>
	"../x":	Up <"../x">
	up:	../x, a/b, jones.lock
	TABLE
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
	listing() {
		find "$top" -printf '%p %y %s %m %n %T@ %C@\n' | sort
	}
	before=$(listing)
	bad=('../x' 'a/b' '.x' '"../x"' 'x.lock' 'jones.lock' '"a/b"' '".x"'
	    '"."' '".."' '../x@mx.example' '"../x"@mx.example' 'a/b@mx.example'
	    'up' '"/x"' '"x/"' '"jones/"')
	cmds=("HELO client.example" "MAIL FROM:<sender@example.org>")
	for r in "${bad[@]}"; do
		cmds+=("RCPT TO:<$r>")
	done
	run -0 smtp "${cmds[@]}" DATA QUIT
	for i in "${!bad[@]}"; do
		reply=${lines[i + 3]}
		[[ "$reply" =~ ^(501|550|553)\  ]] ||
		    { echo "RCPT TO:<${bad[i]}>: $reply"; false; }
	done
	[ "$(last_reply)" = "221 2.0.0 mx.example closing connection" ]
	[ "${lines[-2]:0:3}" = 503 ]	# DATA: no recipient was taken
	diff -u <(echo "$before") <(listing)
	# along with a good recipient: only its mailbox appears
	cmds+=("RCPT TO:<jones>" DATA "Subject: only jones" "" "Hello." .)
	run -0 smtp "${cmds[@]}" QUIT
	[ "${lines[-2]:0:24}" = "250 2.0.0 Delivered, id " ]
	diff -u <(echo "$before" | grep -v "^$SPOOL d ") \
	    <(listing | grep -v -e "^$SPOOL d " -e "^$SPOOL/jones " \
	    -e "^$SPOOL/.smtpd-queue ")
	diff -u <({ echo "$before" | cut -d' ' -f1; echo "$SPOOL/jones"; } | sort) \
	    <(listing | cut -d' ' -f1 | grep -vx "$SPOOL/.smtpd-queue" | sort)
}

@test "real readers (formail, s-nail) see every message, From lines in bodies included" {
	subjects=("plain" "From at the start of the body" "quoted >From lines"
	    "From everywhere" "last")
	bodies=("just text"
	    "From the beginning of the body|and more"
	    ">From already quoted|>>From twice|a line"
	    "From x|From y Mon Jan  1 00:00:00 2024||From z|>From w|From"
	    "the end")
	args=("HELO client.example")
	for i in "${!subjects[@]}"; do
		IFS='|' read -r -a body <<<"${bodies[i]}"
		args+=("MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" DATA \
		    "Subject: ${subjects[i]}" "" "${body[@]}" "end of message $i" .)
	done
	run -0 smtp "${args[@]}" QUIT
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^250 2.0.0 Delivered')" = 5 ]
	cp "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.copy"
	# formail splits the mailbox into its messages
	mkdir "$BATS_TEST_TMPDIR/split"
	formail -s sh -c 'cat >"$0.$FILENO"' "$BATS_TEST_TMPDIR/split/msg" \
	    <"$SPOOL/jones"
	run ls "$BATS_TEST_TMPDIR/split"
	[ "${#lines[@]}" = 5 ]
	for i in "${!subjects[@]}"; do
		part="$BATS_TEST_TMPDIR/split/msg.00$i"
		[ "$(formail -zx Subject: <"$part")" = "${subjects[i]}" ]
		# the message ends with its own last line, and a blank one
		[ "$(tail -n 2 "$part")" = "$(printf '%s\n' "end of message $i" "")" ]
	done
	# s-nail's header summary, read-only, no resource files
	run -0 env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" s-nail -:/ -R -H \
	    -S headline='%m %s' -f "$SPOOL/jones"
	expected=$(for i in "${!subjects[@]}"; do echo "$((i + 1)) ${subjects[i]}"; done)
	[ "$(printf '%s\n' "${lines[@]}" | awk '{ $1 = $1 } 1')" = "$expected" ]
	# s-nail shows the body with its From lines
	run -0 env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" s-nail -:/ -R -N \
	    -# -f "$SPOOL/jones" <<<$'print 4\nquit'
	[[ "$output" == *'From y Mon Jan  1 00:00:00 2024'*'From z'*'end of message 3'* ]]
	cmp "$BATS_TEST_TMPDIR/jones.copy" "$SPOOL/jones"	# left as it was
}

@test "access time is left older than modification time" {
	# an old mailbox read two days ago: its access time stays as it was
	deliver_subjects "old one"
	touch -a -d '2 days ago' "$SPOOL/jones"
	touch -m -d '3 days ago' "$SPOOL/jones"
	atime=$(stat -c %X "$SPOOL/jones")
	deliver_subjects "new one"
	read -r x y < <(stat -c '%X %Y' "$SPOOL/jones")
	[ "$x" -lt "$y" ]
	[ "$x" = "$atime" ]
	# a mailbox read just now, in the second of the delivery
	touch -m -d '1 hour ago' "$SPOOL/jones"
	touch -a "$SPOOL/jones"
	deliver_subjects "newer one"
	read -r x y < <(stat -c '%X %Y' "$SPOOL/jones")
	[ "$x" -lt "$y" ]
	# a reader's clock ahead: access time after the delivery
	touch -a -d '1 hour' "$SPOOL/jones"
	deliver_subjects "newest one"
	read -r x y < <(stat -c '%X %Y' "$SPOOL/jones")
	[ "$x" -lt "$y" ]
	# a new mailbox
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<smith>" DATA "Subject: first" "" "Hello." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	read -r x y < <(stat -c '%X %Y' "$SPOOL/smith")
	[ "$x" -lt "$y" ]
}

@test "a new mailbox is mode 0600, whatever the umask, and owned by the recipient's system account under root" {
	[ "$(id -u)" = 0 ] || skip "giving a mailbox to its account needs root"
	getent passwd daemon >/dev/null || skip "no system account daemon"
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")	# system accounts too
	table_user_without_account
	umask 000
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<daemon>" "RCPT TO:<$NO_ACCOUNT>" DATA "Subject: mine" "" \
	    "Hello." . QUIT
	[ "${lines[6]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(stat -c '%u %g %a' "$SPOOL/daemon")" = "$(id -u daemon) $(id -g daemon) 600" ]
	# the table's only, no account: the user smtpd runs as
	[ "$(stat -c '%u %g %a' "$SPOOL/$NO_ACCOUNT")" = "$(id -u) $(id -g) 600" ]
	umask 077
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<smith>" DATA "Subject: mine" "" "Hello." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(stat -c %a "$SPOOL/smith")" = 600 ]
}

@test "as root, a new mailbox whose owner cannot be looked up is not made: 451" {
	# not in /etc/passwd, the one source left to ask
	table_user_without_account
	accounts_unavailable
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<$NO_ACCOUNT>" DATA "Subject: mine" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ ! -e "$SPOOL/$NO_ACCOUNT" ]
	grep -q "$NO_ACCOUNT: cannot look up its owner" "$LOG"
	# a mailbox already there needs no owner
	: >"$SPOOL/$NO_ACCOUNT"
	chmod 600 "$SPOOL/$NO_ACCOUNT"
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<$NO_ACCOUNT>" DATA "Subject: mine" "" "Hello." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(count_messages "$NO_ACCOUNT")" = 1 ]
}

@test "all or nothing: the second mailbox a directory, the first is left byte-identical and the reply is 451" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	mkdir "$SPOOL/smith"
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: both" "" \
	    "Hello." . QUIT
	[ "${lines[6]}" = "$REFUSED" ]
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run spool_ls "$SPOOL"
	[ "$output" = "$(printf '%s\n' jones smith)" ]
	run ls -A "$SPOOL/smith"
	[ "$output" = "" ]
}

@test "all or nothing: a mailbox created for the message is removed when another one fails" {
	printf 'precious\n' >"$BATS_TEST_TMPDIR/other"
	ln "$BATS_TEST_TMPDIR/other" "$SPOOL/smith"
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<brown>" "RCPT TO:<smith>" DATA "Subject: both" "" \
	    "Hello." . QUIT
	[ "${lines[6]}" = "$REFUSED" ]
	run spool_ls "$SPOOL"
	[ "$output" = smith ]
	[ "$(cat "$SPOOL/smith")" = precious ]
}

@test "all or nothing: a forwarding program failing after the mailboxes were written has them cut back, 451" {
	deliver_subjects "old one"
	cp -p "$SPOOL/jones" "$BATS_TEST_TMPDIR/jones.before"
	echo "both: jones, smith, far@remote.example" >>"$TABLE"
	cat >"$BATS_TEST_TMPDIR/forward" <<-EOF
	#!/bin/sh
	# what the mailboxes hold while the program runs, then failure
	cat >/dev/null
	stat -c '%n %s' "$SPOOL/jones" "$SPOOL/smith" >"$BATS_TEST_TMPDIR/seen"
	exit 1
	EOF
	chmod +x "$BATS_TEST_TMPDIR/forward"
	OPTS+=(-F "$BATS_TEST_TMPDIR/forward")
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<both>" DATA "Subject: both" "" "Hello." . QUIT
	[ "${lines[5]}" = "451 4.3.0 Local error in processing: forwarding failed" ]
	# the program ran with both copies written...
	old=$(stat -c %s "$BATS_TEST_TMPDIR/jones.before")
	read -r _ seen_jones < <(sed -n 1p "$BATS_TEST_TMPDIR/seen")
	[ "$seen_jones" -gt "$old" ]
	# ...which were taken back
	cmp "$BATS_TEST_TMPDIR/jones.before" "$SPOOL/jones"
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}
