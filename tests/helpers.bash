# Shared by every test file: `load helpers'.  Each test gets its own
# spool, table and log under $BATS_TEST_TMPDIR; smtpd is the real binary.
bats_require_minimum_version 1.5.0

# The version as smtpd.h defines it: "0.1".
VERSION=$(sed -n 's/^#define SMTPD_VERSION[ \t]*"\(.*\)"$/\1/p' \
    "$BATS_TEST_DIRNAME/../smtpd.h")

setup() {
	# make sanitize points SMTPD_BIN at its own build
	SMTPD="${SMTPD_BIN:-$BATS_TEST_DIRNAME/../smtpd}"
	SPOOL="$BATS_TEST_TMPDIR/spool"
	TABLE="$BATS_TEST_TMPDIR/aliases"
	LOG="$BATS_TEST_TMPDIR/log"
	export TMPDIR="$BATS_TEST_TMPDIR"
	mkdir -p "$SPOOL"
	cat >"$TABLE" <<-'TABLE'
	# the users of RFC 821's examples
	smith:	Fred Smith <smith>
	jones:	Joe Jones <jones>
	brown:	Bob Brown <brown>
	TABLE
	# smtpd's own options for this test; a test may add to it
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
	[ "$(id -u)" != 0 ] || reachable_by_nobody
}

# As root, smtpd's dialogue and its -F program run as nobody (smtpd.8,
# PRIVILEGE SEPARATION): they must reach the test's directory, where
# TMPDIR is, the programs of the test and what they write.  It becomes
# writable by all (sticky), and the directories of bats' run above it
# searchable.
reachable_by_nobody() {
	local d=$BATS_TEST_TMPDIR top
	top=$(dirname "$BATS_RUN_TMPDIR")
	chmod 1777 "$d"
	while d=$(dirname "$d"); [ "$d" != "$top" ] && [ "$d" != / ]; do
		chmod o+x "$d"
	done
}

# One session through a pipe: each argument is a command line, sent with
# CRLF.  Replies come out with the CR taken off; the log goes to $LOG.
smtp() {
	printf '%s\r\n' "$@" | smtp_raw
}

# A session fed with standard input as it is (make the bytes yourself);
# it may take SMTP_WAIT seconds (10 unless the test says).
smtp_raw() {
	set -o pipefail
	timeout "${SMTP_WAIT:-10}" "$SMTPD" "${OPTS[@]}" 2>"$LOG" | tr -d '\r'
}

# The reply codes of the last `run', one per line, multi-line replies
# included (250-... counts as 250).
codes() {
	printf '%s\n' "${lines[@]}" | cut -c1-3 | tr '\n' ' ' | sed 's/ $//'
}

# The last reply line of the last `run'.
last_reply() {
	printf '%s\n' "${lines[${#lines[@]}-1]}"
}

# The keywords of the last EHLO reply in $lines (the lines after the
# first), sorted: the list to compare with ehlo_expected.
ehlo_keywords() {
	printf '%s\n' "${lines[@]}" | sed -n '/^250[- ]mx\.example$/,/^250 /p' |
	    sed 1d | cut -c5- | sort
}

# The keywords smtpd's EHLO lists with the options of setup() and no TLS
# wrapper, sorted; each argument +KEYWORD adds one, -KEYWORD takes it off.
ehlo_expected() {
	local list=(8BITMIME ENHANCEDSTATUSCODES EXPN HELP PIPELINING SAML SEND
	    "SIZE 10485760" SMTPUTF8 SOML VRFY) a off=()
	for a in "$@"; do
		case $a in
		+*) list+=("${a#+}") ;;
		-*) off+=("${a#-}") ;;
		esac
	done
	printf '%s\n' "${list[@]}" | grep -vxF -f <(printf '%s\n' "${off[@]}" '') |
	    sort
}

# A whole message, as DATA's lines, ending with the dot.
message() {
	printf '%s\r\n' "Subject: ${1:-test}" "" "${2:-Hello.}" "."
}

# The number of messages in a mailbox (From_ lines).
count_messages() {
	grep -c '^From ' "$SPOOL/$1" || true
}

# The spool's files but smtpd's delivery queue (an empty file of locks).
spool_ls() {
	ls -A "$1" | grep -vxF .smtpd-queue
}

# The message as the mailbox holds it: what follows smtpd's own From_
# line, Return-Path: and Received: (with its folded lines).
stored() {
	awk 'NR == 1 || (NR == 2 && /^Return-Path:/) { next }
	NR == 3 && /^Received:/ { rec = 1; next }
	rec && /^[ \t]/ { next }
	{ rec = 0; print }' "$1"
}

# Milliseconds since the epoch.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# Wait, at most 5 seconds, until file $1 holds a line matching regex $2.
wait_for_line() {
	local _
	for _ in $(seq 50); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "gave up waiting for /$2/ in $1" >&2
	return 1
}

# swaks able to speak TLS (it needs Net::SSLeay for that), or a skip.
have_swaks_tls() {
	command -v swaks >/dev/null || skip "swaks not installed"
	perl -MNet::SSLeay -e 1 2>/dev/null ||
	    skip "swaks needs Net::SSLeay (libnet-ssleay-perl) for TLS"
}

# A port on 127.0.0.1 that was free a moment ago.
free_port() {
	timeout 5 python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# From here on, smtpd runs in a mount namespace of its own with the
# file $1 mounted over $2 (a test's stand-in for a system file); the
# test is skipped where no such namespace can be made.
mounted_over() {
	[ "$(id -u)" = 0 ] || skip "mounting over $2 needs root"
	unshare -m sh -c 'mount --bind "$0" "$1"' "$1" "$2" 2>/dev/null ||
	    skip "cannot mount $1 over $2 in a mount namespace here"
	local w="$BATS_TEST_TMPDIR/smtpd-ns"
	cat >"$w" <<-WRAP
	#!/bin/sh
	exec unshare -m sh -c 'mount --bind "\$0" "\$1" && shift && exec "\$@"' \\
	    "$1" "$2" "$SMTPD" "\$@"
	WRAP
	chmod +x "$w"
	SMTPD=$w
}

# From here on, the system's accounts that /etc/passwd lacks cannot be
# asked: NSS is told to ask, after the file, a module (nss-unavailable.c)
# that answers as an LDAP server that is down.
accounts_unavailable() {
	command -v cc >/dev/null || skip "no C compiler for the test's NSS module"
	cc -shared -fPIC -o "$BATS_TEST_TMPDIR/libnss_smtpdtest.so.2" \
	    "$BATS_TEST_DIRNAME/nss-unavailable.c" ||
	    skip "cannot build the test's NSS module"
	printf '%s\n' 'passwd: files smtpdtest' 'group: files' \
	    >"$BATS_TEST_TMPDIR/nsswitch.conf"
	export LD_LIBRARY_PATH="$BATS_TEST_TMPDIR"
	mounted_over "$BATS_TEST_TMPDIR/nsswitch.conf" /etc/nsswitch.conf
}

# An smtpd in the background reading a FIFO this shell writes to (fd
# $TO, with send), its replies going to $OUT, its log added to $LOG, its
# pid in $PID.  Used where a reply must be seen before the next line is
# sent: smtpd flushes its replies only when it waits for input.
start_session() {
	OUT="$BATS_TEST_TMPDIR/$1.out"
	mkfifo "$BATS_TEST_TMPDIR/$1.in"
	exec {TO}<>"$BATS_TEST_TMPDIR/$1.in"	# open, on Linux, without a reader
	"$SMTPD" "${OPTS[@]}" <"$BATS_TEST_TMPDIR/$1.in" >"$OUT" 2>>"$LOG" \
	    3>&- {TO}>&- &
	PID=$!
	started "$PID"
}

send() {
	printf '%s\r\n' "$@" >&"$TO"
}

# Background processes are noted here with `started PID', and ended by
# their pid with stop_started (in a test file's teardown).
started() {
	echo "$1" >>"$BATS_TEST_TMPDIR/pids"
}

# Whether process $1 still runs (a zombie nobody has reaped yet does not).
running() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) ||
	    true
	[ -n "$state" ] && [ "$state" != Z ]
}

# Whether any of the noted processes still runs.
any_running() {
	local pid
	while read -r pid; do
		running "$pid" && return 0
	done <"$BATS_TEST_TMPDIR/pids"
	return 1
}

# SIGTERM to each noted process, a moment (N twentieths of a second, 40
# unless given) for timeout(1) to pass it on, then SIGKILL to what is left.
stop_started() {
	local pid n
	[ -f "$BATS_TEST_TMPDIR/pids" ] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
	done <"$BATS_TEST_TMPDIR/pids"
	for n in $(seq "${1:-40}"); do
		any_running || break
		sleep 0.05
	done
	while read -r pid; do
		kill -9 "$pid" 2>/dev/null || true
	done <"$BATS_TEST_TMPDIR/pids"
}

# wait_for SECONDS COMMAND...: COMMAND again and again until it succeeds,
# about SECONDS seconds at most; fails if it never does.
wait_for() {
	local n=$(($1 * 50))
	shift
	until "$@"; do
		((n-- > 0)) || return 1
		sleep 0.02
	done
}

# wait_ok PID NAME: its exit status must be 0 (say which one it was if not).
wait_ok() {
	local rc=0
	wait "$1" || rc=$?
	[ "$rc" = 0 ] || { echo "process $1 ($2) ended with status $rc"; return 1; }
}

# smtpd_bg SECONDS INPUT NAME: an smtpd in the background reading INPUT,
# its replies in NAME.out and its log in NAME.log (in $BATS_TEST_TMPDIR),
# ended after SECONDS at most; its pid in $PID, noted for teardown.
smtpd_bg() {
	timeout "$1" "$SMTPD" "${OPTS[@]}" <"$2" >"$BATS_TEST_TMPDIR/$3.out" \
	    2>"$BATS_TEST_TMPDIR/$3.log" 3>&- &
	PID=$!
	started "$PID"
}
