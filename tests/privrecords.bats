#!/usr/bin/env bats
# The deliverer against a dialogue gone wrong (smtpd.8, PRIVILEGE
# SEPARATION): run/priv-driver starts smtpd's own split and, in the
# dialogue's place, writes what a compromised dialogue could write to
# the socketpair.  Every malformed request is logged and answered 451
# (status 1, DELIVERY_TEMP), nothing reaches a mailbox, and a dialogue
# that breaks the stream, stalls or floods loses its own session only.
load helpers

setup_file() {
	DRIVER="$BATS_TEST_DIRNAME/../run/priv-driver"
	export DRIVER
}

# The driver on this test's spool and table, from the test's directory
# (where it makes its message files: the dialogue, nobody as root, can
# write there).  timeout: a deliverer that hung would show as 124.
drive() {
	[ -x "$DRIVER" ] || skip "run/priv-driver is missing: make check builds it"
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr timeout 60 "$DRIVER" "$SPOOL" "$TABLE" "$@"
	echo "answers: $output"
	echo "log: $stderr"
	[ "$status" = 0 ]
}

# The answer a malformed request gets, its log line, an empty spool.
request_refused() {
	[ "${lines[0]}" = "status=1 why=malformed request: $1" ]
	[[ "$stderr" == *"a malformed delivery request: $1"* ]]
	[ -z "$(spool_ls "$SPOOL")" ]
}

# The deliverer still serves: the closing question was answered.
still_serves() {
	[ "${lines[-1]}" = count=0 ]
	[[ "$output" != *sigterm* ]]
}

# The deliverer ended the session: it sent the dialogue SIGTERM.
session_ended() {
	[ "${lines[-1]}" = sigterm ]
	[ -z "$(spool_ls "$SPOOL")" ]
}

@test "priv-driver: a well-formed request, inline, is delivered and the deliverer serves on" {
	drive deliver jones
	[ "${lines[0]}" = "status=0 why=" ]
	still_serves
	[ "$(stored "$SPOOL/jones")" = "$(printf 'Subject: driven\n\nHello.\n')" ]
	# the root half wrote the envelope lines itself, from checked fields
	head -n 1 "$SPOOL/jones" | grep -q '^From sender@example.org '
	grep -q 'TPX-DRV-1' "$SPOOL/jones"
}

@test "priv-driver: a well-formed request with its message as a descriptor is delivered" {
	drive file regular
	[ "${lines[0]}" = "status=0 why=" ]
	still_serves
	[ "$(stored "$SPOOL/jones")" = "$(printf 'Subject: spooled\n\nHello from a file.\n')" ]
}

@test "priv-driver: a message descriptor that is a FIFO, a directory, write-only or O_PATH is refused" {
	for kind in fifo directory writeonly opath; do
		drive file "$kind"
		request_refused "the message is no regular file it can read"
		still_serves
	done
}

@test "priv-driver: a message file shorter than the size the request claims is refused" {
	drive file short
	request_refused "the message is no regular file it can read"
	still_serves
}

@test "priv-driver: a field whose length runs past the record is refused" {
	drive overrun
	request_refused "a field too long, or cut short"
	still_serves
}

@test "priv-driver: bytes left over after the message are refused" {
	drive leftover
	request_refused "bytes left over"
	still_serves
}

@test "priv-driver: more targets than a message may have are refused" {
	drive targets
	request_refused "a field too long, or cut short"
	still_serves
}

@test "priv-driver: a sender that carries a line of its own is refused" {
	drive sender
	request_refused "bad sender, recipient or HELO"
	still_serves
}

@test "priv-driver: mailbox names that leave the spool or name a lock are refused" {
	for name in ../escape .smtpd-queue jones.lock Jones "a/b" ""; do
		drive deliver "$name"
		request_refused "a target that may not be delivered to"
		still_serves
	done
	[ ! -e "$BATS_TEST_TMPDIR/escape" ]
}

@test "priv-driver: a message with an unquoted From_ line, inline or as a file, never reaches the mailbox" {
	for how in from from-file; do
		drive framing "$how"
		[ "${lines[0]}" = "status=1 why=$SPOOL/jones: the message handed over breaks its mbox framing" ]
		[[ "$stderr" == *"the message handed over breaks its mbox framing"* ]]
		[ -z "$(spool_ls "$SPOOL")" ]
		still_serves
	done
}

@test "priv-driver: a message without its final newline, inline or as a file, never reaches the mailbox" {
	for how in newline newline-file; do
		drive framing "$how"
		[ "${lines[0]}" = "status=1 why=$SPOOL/jones: the message handed over breaks its mbox framing" ]
		[ -z "$(spool_ls "$SPOOL")" ]
		still_serves
	done
	# an existing mailbox keeps exactly what it had
	drive deliver jones
	before=$(cksum <"$SPOOL/jones")
	drive framing newline-file
	[ "$(cksum <"$SPOOL/jones")" = "$before" ]
}

@test "priv-driver: TLS facts are written into Received: as checked; a header line hidden in them is refused" {
	drive tls good
	[ "${lines[0]}" = "status=0 why=" ]
	grep -q 'with ESMTPS$' "$SPOOL/jones"
	grep -q '(TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305) id TPX-DRV-1' "$SPOOL/jones"
	rm "$SPOOL/jones"
	drive tls bad
	request_refused "bad TLS facts"
	still_serves
}

@test "priv-driver: the -X filter's header fields go below Received:; anything but header fields is refused" {
	drive fields good
	[ "${lines[0]}" = "status=0 why=" ]
	run -0 sed -n '/^Received:/,/^$/p' "$SPOOL/jones"
	[ "${lines[3]}" = "X-Spam-Status: No, score=0.1" ]
	[ "${lines[4]}" = $'\ttests=NONE' ]
	[ "${lines[5]}" = "Subject: driven" ]
	rm "$SPOOL/jones"
	for kind in empty from noname unended; do
		drive fields "$kind"
		request_refused "the filter's header fields are not header fields"
		[ ! -e "$SPOOL/jones" ]
	done
	still_serves
}

@test "priv-driver: a record longer than any may be is answered 451 and ends the session" {
	drive huge
	[ "${lines[0]}" = "status=1 why=malformed request: a record that does not add up" ]
	[[ "$stderr" == *"a record of 524289 bytes, more than any may have"* ]]
	session_ended
}

@test "priv-driver: half a request, then the dialogue stops writing: 451, the session ends" {
	drive cut
	[ "${lines[0]}" = "status=1 why=malformed request: a record that does not add up" ]
	[[ "$stderr" == *"cut short or too slow"* ]]
	session_ended
}

@test "priv-driver: a request's header and then silence: the wait ends within -t" {
	drive -t 1 stall
	[ "${lines[0]}" = "status=1 why=malformed request: a record that does not add up" ]
	[[ "$stderr" == *"cut short or too slow"* ]]
	session_ended
}

@test "priv-driver: a request dripped a byte at a time: -t bounds the whole record, not each byte" {
	drive -t 1 drip
	[ "${lines[0]}" = "status=1 why=malformed request: a record that does not add up" ]
	[[ "$stderr" == *"cut short or too slow"* ]]
	session_ended
}

@test "priv-driver: half a header, then the dialogue goes: the deliverer ends too, nothing delivered" {
	drive half-header
	[ -z "$output" ]
	[ -z "$(spool_ls "$SPOOL")" ]
}

@test "priv-driver: a record of an unknown type is logged and ends the session" {
	drive unknown 99
	[ "${lines[0]}" = closed ]
	[[ "$stderr" == *"a request of unknown type 99"* ]]
	session_ended
	# a delivery's answer sent as a request is no request either
	drive unknown 3
	[[ "$stderr" == *"a request of unknown type 3"* ]]
	session_ended
}

@test "priv-driver: a thousand records of unknown types: the first ends the session" {
	drive unknowns
	[[ "$stderr" == *"a request of unknown type 100"* ]]
	[[ "$stderr" != *"unknown type 101"* ]]
	session_ended
}

@test "priv-driver: SEND's question with a name that is no mailbox name is answered 0 and logged" {
	drive terminal ../x
	[ "${lines[0]}" = count=0 ]
	[[ "$stderr" == *"a malformed terminal question"* ]]
	still_serves
}

@test "priv-driver: a hundred questions unread, each with a descriptor: all answered in order, no descriptor kept" {
	drive flood 100
	[ "${lines[1]}" = "sent=100 answered=100" ]
	[ "${lines[2]}" = "descriptors gained=0" ]
	still_serves
}

@test "priv-driver: ten thousand questions, no answer read: the deliverer ends the session within -t" {
	drive -t 1 flood 10000
	[[ "$stderr" == *"cannot answer the dialogue: Connection timed out"* ]]
	[[ "${lines[1]}" =~ ^sent=([0-9]+)\ answered=([0-9]+)$ ]]
	[ "${BASH_REMATCH[2]}" -lt 10000 ]
	session_ended
}
