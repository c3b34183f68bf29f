#!/usr/bin/env bats
# A person at a terminal (smtpd.8, DESCRIPTION and INPUT RULES): stdin is a
# tty, LF ends every line, DATA ends with a line holding a single dot, the
# log is on the terminal. The sessions are typed on a real pseudo-terminal
# by tests/pty.py.
load helpers

# common_setup, then options without -e: at a terminal smtpd must log to
# the terminal by itself.
setup() {
	common_setup
	OPTS=(-T -n mx.example -a "$TABLE" -m "$SPOOL")
}

# A session typed at a terminal: each argument is a line, typed after the
# reply to the one before.  The transcript (echo, replies and log) comes
# out with the terminal's CRs taken off; the status is smtpd's.
typed() {
	printf '%s\n' "$@" >"$BATS_TEST_TMPDIR/typed"
	set -o pipefail
	timeout 20 python3 "$BATS_TEST_DIRNAME/pty.py" --timeout 10 \
	    --input "$BATS_TEST_TMPDIR/typed" -- "$SMTPD" "${OPTS[@]}" |
	    tr -d '\r'
}

# The lines of the last `run' that are replies (three digits first).
reply_lines() {
	printf '%s\n' "${lines[@]}" | grep -E '^[0-9]{3}( |-|$)'
}

# The whole session of the tests below, as a person types it: one
# message from smith to jones, the arguments added to its body.
typed_session_to_jones() {
	typed "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA "Subject: typed" "" "Hello, Joe." \
	    "$@" . QUIT
}

@test "a session typed at a terminal is answered line by line, from 220 to 221" {
	run -0 typed_session_to_jones
	run -0 reply_lines
	[ "${#lines[@]}" -eq 7 ]
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd 0.1" ]
	[ "${lines[1]}" = "250 mx.example" ]
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@client.example> OK" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "${lines[4]:0:4}" = "354 " ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "DATA at a terminal asks for a line holding a single dot, not CRLF.CRLF" {
	run -0 typed "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA
	run -0 reply_lines
	[ "${#lines[@]}" -eq 5 ]
	[ "${lines[4]}" = "354 Enter the message; end with a line holding a single dot" ]
}

@test "a message typed at a terminal is in the mailbox whole, with LF line ends" {
	run -0 typed_session_to_jones
	printf '%s\n' "From smith@client.example DATE" \
	    "Return-Path: <smith@client.example>" \
	    "Received: from client.example (localhost)" \
	    $'\tby mx.example (smtpd 0.1) with SMTP id ID' \
	    $'\tfor <jones>;' $'\tDATE' "Subject: typed" "" "Hello, Joe." "" \
	    >"$BATS_TEST_TMPDIR/expected"
	mbox_fixed "$SPOOL/jones" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
	run ! grep -c $'\r' "$SPOOL/jones"
}

@test "a dot-stuffed line typed at a terminal (..x) is stored as .x" {
	run -0 typed_session_to_jones "..x" "..."
	run -0 tail -n 4 "$SPOOL/jones"
	[ "${lines[0]}" = "Hello, Joe." ]
	[ "${lines[1]}" = ".x" ]
	[ "${lines[2]}" = ".." ]
	[ "$(tail -n 4 "$SPOOL/jones" | sed -n 4p)" = "" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "at a terminal the log appears on the terminal without -e" {
	run -0 typed_session_to_jones
	printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/transcript"
	run -0 grep -E '^smtpd\[[0-9]+\]: ' "$BATS_TEST_TMPDIR/transcript"
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ start\ client=local$ ]]
	[[ "${lines[1]}" =~ ^smtpd\[[0-9]+\]:\ id=[0-9A-Z-]+\ client=local\ from=\<smith@client\.example\>\ to=\<jones\>\ size=[0-9]+\ delivered$ ]]
	[[ "${lines[2]}" =~ ^smtpd\[[0-9]+\]:\ end\ client=local\ messages=1\ \(QUIT\)$ ]]
}

@test "at a terminal without -e the log goes to standard error, not standard output" {
	# smtpd's stdin and stdout stay the terminal; stderr goes to $LOG.
	OPTS=(-c 'exec "$@" 2>"$LOG"' sh "$SMTPD" "${OPTS[@]}")
	SMTPD=sh
	export LOG
	run -0 typed_session_to_jones
	run ! grep -F 'smtpd[' <(printf '%s\n' "${lines[@]}")
	run -0 grep -cE '^smtpd\[[0-9]+\]: (start |id=|end )' "$LOG"
	[ "$output" = 3 ]
	[ "$(count_messages jones)" = 1 ]
}

@test "a start-up error at a terminal prints one line and no 421 reply" {
	OPTS=(-T -n mx.example -a "$BATS_TEST_TMPDIR/missing" -m "$SPOOL")
	run -1 typed "HELO client.example" QUIT
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^smtpd\[[0-9]+\]:\ .*"$BATS_TEST_TMPDIR/missing" ]]
	run ! grep -E '^421' <(printf '%s\n' "${lines[@]}")
}

@test "end of input (^D) at a terminal in the middle of a message delivers nothing" {
	run -0 typed "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA "Subject: unfinished" "" "Hello"
	run -0 reply_lines
	[ "$(last_reply)" = "354 Enter the message; end with a line holding a single dot" ]
	[ ! -e "$SPOOL/jones" ]
}
