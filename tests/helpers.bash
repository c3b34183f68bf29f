# Shared by every test file: `load helpers'.  Each test gets its own
# spool, table and log under $BATS_TEST_TMPDIR; smtpd is the real binary
# (its test build after short_waits).
# The setup() here runs common_setup alone; a test file that needs more
# defines its own setup(), after `load helpers', calling common_setup
# first:
#	setup() {
#		common_setup
#		...
#	}
# Helpers that more than one test file uses are here (the launchers'
# and superservers' in launchers-helpers.bash); a file's own stay in it.
bats_require_minimum_version 1.5.0

# The version as smtpd.h defines it: "0.1" (read once a run: what runs
# for every test is kept to builtins where it can be, each process
# started costing every one of the suite's tests).
[ -s "$BATS_RUN_TMPDIR/version" ] ||
    sed -n 's/^#define SMTPD_VERSION[ \t]*"\(.*\)"$/\1/p' \
    "$BATS_TEST_DIRNAME/../smtpd.h" >"$BATS_RUN_TMPDIR/version"
read -r VERSION <"$BATS_RUN_TMPDIR/version"

# The start of a transaction from sender@example.org to jones, up to
# DATA, as command lines.
TRANSACTION=("HELO client.example" "MAIL FROM:<sender@example.org>"
    "RCPT TO:<jones>" "DATA")

# Replies to the end of the data: the start of a delivery's, a mailbox
# that could not be written, a forwarding program that failed.
DELIVERED="250 2.0.0 Delivered, id "
REFUSED="451 4.3.0 Local error in processing: mailbox unavailable"
FORWARD_FAILED="451 4.3.0 Local error in processing: forwarding failed"

# python3 itself first on PATH, not a version manager's shim before it
# (pyenv's costs a tenth of a second a call, and the suite makes hundreds):
# looked up once a run.
python3_itself() {
	local bin="$BATS_RUN_TMPDIR/python3-itself" real
	if [ ! -x "$bin/python3" ]; then
		real=$(python3 -c 'import sys; print(sys.executable)' \
		    2>/dev/null) && [ -x "$real" ] || return 0
		mkdir -p "$bin" && ln -sfn "$real" "$bin/python3" || return 0
	fi
	case ":$PATH:" in
	*":$bin:"*) ;;
	*) PATH="$bin:$PATH" ;;
	esac
}
python3_itself

# What every test starts from: $SMTPD, $SMTPD_TEST, $SPOOL, $TABLE with
# RFC 821's users smith, jones and brown, $LOG, $TMPDIR, and OPTS (with
# -T: the table's users are the only ones, whatever accounts the machine
# has).
common_setup() {
	# make sanitize points SMTPD_BIN at its own build
	SMTPD="${SMTPD_BIN:-$BATS_TEST_DIRNAME/../smtpd}"
	# the same with its fixed waits settable (make check builds it)
	SMTPD_TEST="${SMTPD_TEST_BIN:-$BATS_TEST_DIRNAME/../run/test/smtpd}"
	SPOOL="$BATS_TEST_TMPDIR/spool"
	TABLE="$BATS_TEST_TMPDIR/aliases"
	LOG="$BATS_TEST_TMPDIR/log"
	export TMPDIR="$BATS_TEST_TMPDIR"
	mkdir -p "$SPOOL"
	printf '%s\n' "# the users of RFC 821's examples" \
	    "smith:	Fred Smith <smith>" "jones:	Joe Jones <jones>" \
	    "brown:	Bob Brown <brown>" >"$TABLE"
	# smtpd's own options for this test; a test may add to it
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
	[ "$EUID" != 0 ] || reachable_by_nobody
}

# A test file's setup() unless it has one of its own.
setup() {
	common_setup
}

# As root, smtpd's dialogue and its -F program run as nobody (smtpd.8,
# PRIVILEGE SEPARATION): they must reach the test's directory, where
# TMPDIR is, the programs of the test and what they write.  It becomes
# writable by all (sticky), and the directories of bats' run above it
# searchable.
reachable_by_nobody() {
	local d=$BATS_TEST_TMPDIR top=${BATS_RUN_TMPDIR%/*} up=()
	while d=${d%/*}; [ "$d" != "$top" ] && [ -n "$d" ]; do
		up+=("$d")
	done
	chmod 1777 "$BATS_TEST_TMPDIR" && chmod o+x "${up[@]}"
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

# N times a word, each after a space: " 550 550" for 2 550.
repeat_word() {
	local i
	for i in $(seq "$1"); do
		printf ' %s' "$2"
	done
}

# The reply to the end of DATA in the last `run': the line after 354.
data_reply() {
	printf '%s\n' "${lines[@]}" | sed -n '/^354 /{n;p;q}'
}

# The id that the `250 2.0.0 Delivered, id ID' line names, in file $1 or,
# without one, in the lines of the last `run'.
delivered_id() {
	if [ $# = 0 ]; then printf '%s\n' "${lines[@]}"; else cat "$1"; fi |
	    sed -n 's/^250 2\.0\.0 Delivered, id \([0-9A-Z-]*\)$/\1/p'
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

# The keywords smtpd's EHLO lists with the OPTS of common_setup and no TLS
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

# deliver_to NAME SUBJECT: one message to NAME through smtp(); the reply
# to its data is lines[5].
deliver_to() {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<$1>" DATA "Subject: $2" "" "Hello." . QUIT
}

# The number of messages (From_ lines) in mailbox $SPOOL/$1.
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

# The Received: header on line 3 of mailbox $1 (smtpd's, in the first
# message, after From_ and Return-Path:), unfolded: each folded line
# joined to it with one space.
received_unfolded() {
	awk 'NR == 3 { r = $0; next }
	NR > 3 && /^[ \t]/ { sub(/^[ \t]+/, " "); r = r $0; next }
	NR > 3 { print r; exit }' "$1"
}

# Mailbox $1 with what changes from run to run made fixed, for diff: the
# From_ lines' dates and smtpd's Received: lines' date (DATE) and id (ID).
mbox_fixed() {
	sed -E \
	    -e 's/^(From [^ ]+) [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$/\1 DATE/' \
	    -e 's/ id [0-9A-Z-]+(;?)$/ id ID\1/' \
	    -e 's/^\t[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$/\tDATE/' \
	    "$1"
}

# The subjects of mailbox $1 as Python's mailbox module reads it.
mbox_subjects() {
	python3 -c 'import mailbox, sys
for m in mailbox.mbox(sys.argv[1], create=False): print(m["Subject"])' "$1"
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

# s6-networking's s6-tcpserver, s6-tlsserver and s6-ucspitlsd, in one
# directory on PATH (in S6BIN), or a skip.
have_s6_networking() {
	S6BIN=$(dirname "$(command -v s6-ucspitlsd 2>/dev/null)")
	[ -x "$S6BIN/s6-tcpserver" ] && [ -x "$S6BIN/s6-tlsserver" ] ||
	    skip "s6-networking is not on PATH (../shared/tls/build-s6-networking.sh builds it)"
}

# A port on 127.0.0.1 that was free a moment ago.
free_port() {
	timeout 5 python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# short_waits NAME=SECONDS...: from here on, smtpd is the test build,
# with those of its fixed waits shortened (smtpd.8, ENVIRONMENT: LOCK_WAIT,
# LOCK_STALE, TTY_WAIT), so that the test need not sit them out.
short_waits() {
	local a
	[ -x "$SMTPD_TEST" ] || {
		echo "no test build $SMTPD_TEST: make check makes it" >&2
		return 1
	}
	SMTPD=$SMTPD_TEST
	for a; do
		export "SMTPD_TEST_$a"
	done
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

# The full name smtpd takes from account $1's GECOS: the first field, `&'
# the login capitalised.
gecos_name() {
	local g
	g=$(getent passwd "$1" | cut -d: -f5 | cut -d, -f1)
	local cap="$(printf '%s' "${1:0:1}" | tr a-z A-Z)${1:1}"
	printf '%s\n' "${g//&/$cap}"
}

# A user of $TABLE whose name is no account of this machine, in
# NO_ACCOUNT: jones, or another name where the machine has an account
# jones (smtpd gives a new mailbox to the account of its name, if any).
table_user_without_account() {
	NO_ACCOUNT=jones
	while getent passwd "$NO_ACCOUNT" >/dev/null; do
		NO_ACCOUNT=noaccount$RANDOM
	done
	grep -q "^$NO_ACCOUNT:" "$TABLE" ||
	    printf '%s:\t%s\n' "$NO_ACCOUNT" "No Account <$NO_ACCOUNT>" >>"$TABLE"
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

# Command lines to start_session's smtpd, each ending in CRLF.
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

# Whether process $1 has ended (it no longer runs).
gone() {
	! running "$1"
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

# wait_until SECONDS COMMAND...: COMMAND again and again until it
# succeeds, about SECONDS seconds at most; fails if it never does.
wait_until() {
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

# delivered_in NAME N: NAME.out, of smtpd_bg, holds N replies `250 ...
# Delivered' and no 451 (and is shown with NAME.log when it does not).
delivered_in() {
	local out="$BATS_TEST_TMPDIR/$1.out"
	if [ "$(grep -c '^250 2.0.0 Delivered' "$out")" != "$2" ] ||
	    grep -q '^451' "$out"; then
		echo "session $1:"
		cat "$out" "$BATS_TEST_TMPDIR/$1.log"
		return 1
	fi
}
