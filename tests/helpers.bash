# Shared by every test file: `load helpers'.  Each test gets its own
# spool, table and log under $BATS_TEST_TMPDIR; smtpd is the real binary.
bats_require_minimum_version 1.5.0

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
}

# One session through a pipe: each argument is a command line, sent with
# CRLF.  Replies come out with the CR taken off; the log goes to $LOG.
smtp() {
	printf '%s\r\n' "$@" | smtp_raw
}

# A session fed with standard input as it is (make the bytes yourself).
smtp_raw() {
	set -o pipefail
	timeout 10 "$SMTPD" "${OPTS[@]}" 2>"$LOG" | tr -d '\r'
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

# A whole message, as DATA's lines, ending with the dot.
message() {
	printf '%s\r\n' "Subject: ${1:-test}" "" "${2:-Hello.}" "."
}

# The number of messages in a mailbox (From_ lines).
count_messages() {
	grep -c '^From ' "$SPOOL/$1" || true
}
