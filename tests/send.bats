#!/usr/bin/env bats
# Terminal delivery (smtpd.8, Terminal delivery): SEND, SOML and SAML.  The
# recipient is the account running the tests, logged in on a pseudo-terminal
# that tests/ttyuser.py opens, names in a utmp file of its own (smtpd -u)
# and reads; the slave side of the pty is owned by that account, as login
# would leave it.  smtpd runs without -T, so system accounts are local
# users.
load helpers

# common_setup, then options of our own.
setup() {
	common_setup
	ME=$(id -un)
	# smtpd lowers the recipient's name: an account with capitals,
	# or one that is no safe mailbox name, cannot be the recipient here.
	[[ "$ME" =~ ^[a-z_][a-z0-9_.-]*$ ]] ||
	    skip "account name $ME unusable as a recipient here"
	UTMP="$BATS_TEST_TMPDIR/utmp"
	TTYOUT="$BATS_TEST_TMPDIR/tty.out"
	TTY_PID=
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL" -u "$UTMP")
}

teardown() {
	# the helper ends by itself; if a test failed first, end it here
	if [ -n "$TTY_PID" ] && kill -0 "$TTY_PID" 2>/dev/null; then
		kill -KILL "$TTY_PID" 2>/dev/null || true
		wait "$TTY_PID" 2>/dev/null || true
	fi
}

# Log the user in: ttyuser.py with these options, in the background.
# Returns when the utmp file is there; TTY_LINE is the pty's line (pts/N).
tty_start() {
	local i
	rm -f "$UTMP" "$TTYOUT"
	python3 "$BATS_TEST_DIRNAME/ttyuser.py" "$@" "$UTMP" "$TTYOUT" \
	    >"$BATS_TEST_TMPDIR/tty.line" 2>"$BATS_TEST_TMPDIR/tty.err" 3>&- &
	TTY_PID=$!
	for ((i = 0; i < 1000; i++)); do		# 10 s at most
		[ -e "$UTMP" ] && break
		kill -0 "$TTY_PID" 2>/dev/null || break
		sleep 0.01
	done
	if [ ! -e "$UTMP" ]; then
		cat "$BATS_TEST_TMPDIR/tty.err" >&2
		return 1
	fi
	TTY_LINE=$(head -n 1 "$BATS_TEST_TMPDIR/tty.line")
	[[ "$TTY_LINE" =~ ^[a-z]+/?[0-9a-z]+$ ]]
}

# Wait for the helper to end by itself (at the end of a message, or at its
# own timeout) and give its status: 0 when a whole message arrived.
tty_wait() {
	local st=0
	wait "$TTY_PID" || st=$?
	TTY_PID=
	[ -e "$TTYOUT" ] || return 2
	return "$st"
}

# smtpd has ended, so what it wrote is in the pty: the helper collects
# what is left and ends now.
tty_stop() {
	kill -USR1 "$TTY_PID"
	tty_wait || [ $? -eq 3 ]
}

# Nothing at all reached the terminal.
tty_empty() {
	[ -e "$TTYOUT" ] && [ ! -s "$TTYOUT" ]
}

# The terminal got these bytes (a fixed string, printf escapes allowed);
# $2 names another capture than the first terminal's.
tty_has() {
	LC_ALL=C grep -qF -- "$(printf "$1")" "${2:-$TTYOUT}"
}

# A transaction of $1 (SEND, SOML, SAML or MAIL) from smith to the
# recipients in $2 (default: the user), with the message of the file $3
# (default: a short one), then QUIT, through smtp_raw (smtpd is given
# $SMTP_WAIT seconds, 10 by default).
transaction() {
	local r
	{
		printf '%s\r\n' "HELO client.example" \
		    "$1 FROM:<smith@client.example>"
		for r in ${2:-$ME}; do
			printf 'RCPT TO:<%s>\r\n' "$r"
		done
		printf 'DATA\r\n'
		if [ -n "${3:-}" ]; then
			cat "$3"
		else
			message "to the terminal" "Hello from Fred."
		fi
		printf 'QUIT\r\n'
	} | smtp_raw
}

# Every LF on the terminal comes after a CR, and every CR before an LF.
crlf_only() {
	python3 - "$1" <<-'EOF'
	import sys
	d = open(sys.argv[1], "rb").read()
	sys.exit(0 if d.count(b"\n") > 0 and
	    d.count(b"\n") == d.count(b"\r\n") == d.count(b"\r") else 1)
	EOF
}

# The replies to a transaction whose RCPT was refused: 450 at RCPT, then
# 503 for DATA; no 354 and no delivery.
refused_at_rcpt() {
	[ "${lines[3]}" = "450 4.2.1 User not active or not accepting messages" ]
	[ "${lines[4]}" = "503 5.5.1 Need RCPT before DATA" ]
	run ! grep -E '^(250 2\.0\.0 Delivered|354)' <(printf '%s\n' "${lines[@]}")
}

# --- EHLO ------------------------------------------------------------

@test "EHLO lists SEND, SOML and SAML" {
	: >"$UTMP"
	run -0 smtp "EHLO client.example" QUIT
	printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/ehlo"
	run -0 grep -cxE '250[- ](SEND|SOML|SAML)' "$BATS_TEST_TMPDIR/ehlo"
	[ "$output" = 3 ]
}

@test "-u naming a file that is not there: smtpd refuses to start with 421 4.3.0" {
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL" -u "$BATS_TEST_TMPDIR/nonexistent")
	run smtp "HELO client.example" QUIT
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example local configuration error" ]
}

# --- SEND ------------------------------------------------------------

@test "SEND: the message reaches the terminal after a banner naming the sender and the time, then EOF" {
	tty_start
	run -0 transaction SEND
	[ "${lines[3]}" = "250 2.1.5 Recipient <$ME> OK" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	tty_wait
	tr -d '\r' <"$TTYOUT" >"$BATS_TEST_TMPDIR/shown"
	run -0 grep -E '^Message from <smith@client\.example> .*[0-9]{2}:[0-9]{2}:[0-9]{2}' "$BATS_TEST_TMPDIR/shown"
	run -0 grep -xF "Hello from Fred." "$BATS_TEST_TMPDIR/shown"
	run -0 tail -n 1 "$BATS_TEST_TMPDIR/shown"
	[ "$output" = EOF ]
	# the banner comes before the text, the text before EOF
	[ "$(grep -nE '^Message from' "$BATS_TEST_TMPDIR/shown" | cut -d: -f1)" -lt \
	    "$(grep -nxF 'Hello from Fred.' "$BATS_TEST_TMPDIR/shown" | cut -d: -f1)" ]
	# SEND is for the terminal only
	[ ! -e "$SPOOL/$ME" ]
}

@test "SEND: every line on the terminal ends in CR LF" {
	tty_start
	printf '%s\r\n' "Subject: lines" "" one two "" "three	tab" . >"$BATS_TEST_TMPDIR/msg"
	run -0 transaction SEND "" "$BATS_TEST_TMPDIR/msg"
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	crlf_only "$TTYOUT"
	tty_has 'one\r\ntwo\r\n\r\nthree\ttab\r\n'
}

@test "SEND to a user who is not in utmp is refused at RCPT with 450 4.2.1" {
	tty_start --user nobody-here
	run -0 transaction SEND
	refused_at_rcpt
	tty_stop
	tty_empty
	[ ! -e "$SPOOL/$ME" ]
}

@test "SEND to a user whose terminal refuses messages (mesg n) is 450, nothing written" {
	tty_start --mesg n
	run -0 transaction SEND
	refused_at_rcpt
	tty_stop
	tty_empty
}

@test "SEND to a user whose utmp record names a tty that does not exist is 450" {
	tty_start --line pts/nonexistent
	run -0 transaction SEND
	refused_at_rcpt
	tty_stop
	tty_empty
}

@test "SEND: a utmp record that is not USER_PROCESS (a dead login) is not a terminal" {
	tty_start --type 8
	run -0 transaction SEND
	refused_at_rcpt
	tty_stop
	tty_empty
}

@test "SEND: the user's record is found after other records of utmp" {
	tty_start --decoys 5
	run -0 transaction SEND
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'Hello from Fred.\r\n'
}

@test "SEND to a user at two accepting terminals: the message reaches both" {
	tty_start --mesg y,y
	run -0 transaction SEND
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'Hello from Fred.\r\n'
	tty_has 'Hello from Fred.\r\n' "$TTYOUT.2"
	tty_has 'EOF\r\n' "$TTYOUT.2"
}

@test "SEND to a user at two terminals, the first refusing: only the accepting one gets it" {
	tty_start --mesg n,y
	run -0 transaction SEND
	[ "${lines[3]}" = "250 2.1.5 Recipient <$ME> OK" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_stop
	tty_empty
	tty_has 'Hello from Fred.\r\n' "$TTYOUT.2"
	tty_has 'EOF\r\n' "$TTYOUT.2"
}

@test "SEND: a terminal not owned by the recipient's account is never written" {
	# the pty is ours; utmp says that another account is logged in on it
	other=nobody
	[ "$ME" != nobody ] || other=daemon
	getent passwd "$other" >/dev/null || skip "no account $other"
	tty_start --user "$other"
	run -0 transaction SEND "$other"
	refused_at_rcpt
	tty_stop
	tty_empty
}

@test "SEND: the user's terminal given to another account (chown) is never written" {
	[ "$(id -u)" = 0 ] || skip "chown of a pty needs root"
	getent passwd nobody >/dev/null || skip "no account nobody"
	tty_start --owner nobody
	run -0 transaction SEND
	refused_at_rcpt
	tty_stop
	tty_empty
}

@test "SEND: a utmp line ../etc/passwd is refused with 450" {
	tty_start --line ../etc/passwd
	cp /etc/passwd "$BATS_TEST_TMPDIR/passwd"
	run -0 transaction SEND
	refused_at_rcpt
	cmp /etc/passwd "$BATS_TEST_TMPDIR/passwd"
	tty_stop
	tty_empty
}

# The line names the user's own accepting pty, but not plainly: through
# .., or as an absolute path.  None of it may be written.
line_refused() {
	tty_start --line "$1"
	run -0 transaction SEND
	refused_at_rcpt
	run -0 transaction SAML
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	[ "$(count_messages "$ME")" = 1 ]
	tty_stop
	tty_empty
}

@test "SEND: a utmp line going through .. to the user's own pty (../dev/pts/N) is never written" {
	line_refused '../dev/%s'
}

@test "SEND: a utmp line with .. inside (pts/../pts/N) is never written" {
	line_refused 'pts/../%s'
}

@test "SEND: an absolute utmp line (/dev/pts/N) is never written" {
	line_refused '/dev/%s'
}

# --- SOML, SAML -------------------------------------------------------

@test "SOML to a user at an accepting terminal: on the terminal, not in the mailbox" {
	tty_start
	run -0 transaction SOML
	[ "${lines[3]}" = "250 2.1.5 Recipient <$ME> OK" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	tty_wait
	tty_has 'Message from <smith@client.example>'
	tty_has 'Hello from Fred.\r\n'
	[ ! -e "$SPOOL/$ME" ] || [ "$(count_messages "$ME")" = 0 ]
}

@test "SOML to a user whose terminal refuses messages (mesg n): 250, in the mailbox, not on the terminal" {
	tty_start --mesg n
	run -0 transaction SOML
	[ "${lines[3]}" = "250 2.1.5 Recipient <$ME> OK" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	[ "$(count_messages "$ME")" = 1 ]
	run -0 grep -xF "Hello from Fred." "$SPOOL/$ME"
	tty_stop
	tty_empty
}

@test "SOML to a user not logged in: 250 and in the mailbox" {
	tty_start --user nobody-here
	run -0 transaction SOML
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	[ "$(count_messages "$ME")" = 1 ]
	tty_stop
	tty_empty
}

@test "SOML to two users, one at a terminal: the terminal for one, the mailbox for the other" {
	tty_start
	run -0 transaction SOML "$ME jones"
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones> OK" ]
	[[ "${lines[6]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'Hello from Fred.\r\n'
	[ "$(count_messages jones)" = 1 ]
	[ ! -e "$SPOOL/$ME" ] || [ "$(count_messages "$ME")" = 0 ]
}

@test "SAML to a user at an accepting terminal: in the mailbox and on the terminal" {
	tty_start
	run -0 transaction SAML
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'Message from <smith@client.example>'
	tty_has 'Hello from Fred.\r\n'
	[ "$(count_messages "$ME")" = 1 ]
	run -0 grep -xF "Hello from Fred." "$SPOOL/$ME"
}

@test "SAML to a user whose terminal refuses messages: in the mailbox only" {
	tty_start --mesg n
	run -0 transaction SAML
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	[ "$(count_messages "$ME")" = 1 ]
	tty_stop
	tty_empty
}

# --- what reaches the terminal ------------------------------------------

@test "escape sequences, controls and C1 codes never reach the terminal; text and UTF-8 do" {
	tty_start
	{
		printf '%s\r\n' "Subject: escapes" ""
		printf 'clear\033[2Jscreen\r\n'
		printf 'title\033]0;pwned\007end\r\n'
		printf 'bell\007here\r\n'
		printf 'c0\001\002\003\004\005\006\010\013\014\016\017\020\021\022\023\024\025\026\027\030\031\032\034\035\036\037done\r\n'
		printf 'del\177gone\r\n'
		printf 'c1utf8\302\233[31mred\r\n'
		printf 'c1raw\233[31mred\r\n'
		printf 'h\303\251llo \342\202\254 \360\237\230\200 tab\there\r\n'
		printf '.\r\n'
	} >"$BATS_TEST_TMPDIR/msg"
	run -0 transaction SEND "" "$BATS_TEST_TMPDIR/msg"
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	# no byte of C0 but tab, CR and LF; no DEL; no C1, raw or in UTF-8
	run ! env LC_ALL=C grep -c $'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' "$TTYOUT"
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(1 if b"\x9b" in d or b"\xc2\x9b" in d or b"\x1b" in d or b"\x07" in d or b"\x00" in d else 0)' "$TTYOUT"
	# what is left of each line is its printable text
	tty_has 'clear[2Jscreen\r\n'
	tty_has 'title]0;pwnedend\r\n'
	tty_has 'bellhere\r\n'
	tty_has 'c0done\r\n'
	tty_has 'delgone\r\n'
	tty_has 'c1utf8[31mred\r\n'
	tty_has 'c1raw[31mred\r\n'
	tty_has 'h\303\251llo \342\202\254 \360\237\230\200 tab\there\r\n'
}

@test "a HELO name with an escape sequence never reaches the terminal in the banner" {
	tty_start
	run -0 smtp $'HELO evil\e[2J\e]0;x\a.example' "SEND FROM:<smith@client.example>" \
	    "RCPT TO:<$ME>" DATA "Subject: x" "" "Hi." . QUIT
	[ "${lines[1]}" = "250 mx.example" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	run ! env LC_ALL=C grep -c $'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' "$TTYOUT"
	tty_has 'Message from <smith@client.example>'
	tty_has 'Hi.\r\n'
}

# A message of $1 numbered lines ("line N" and filler to $2 bytes), as
# DATA's lines.
long_message() {
	printf '%s\r\n' "Subject: long" ""
	local i
	for ((i = 1; i <= $1; i++)); do
		printf 'line %-*d|\r\n' "$(($2 - 6))" "$i"
	done
	printf '.\r\n'
}

@test "SEND of a 500-line message: 100 lines or so are shown, then a note that it was cut, then EOF" {
	tty_start
	long_message 500 40 >"$BATS_TEST_TMPDIR/msg"
	run -0 transaction SEND "" "$BATS_TEST_TMPDIR/msg"
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'line 90 '
	run ! tty_has 'line 101 '
	run ! tty_has 'line 500 '
	tty_has '[the message was cut here]'
	run -0 env LC_ALL=C tail -c 5 "$TTYOUT"
	[ "$output" = $'EOF\r' ] || [ "$output" = $'EOF\r\n' ]
	crlf_only "$TTYOUT"
}

@test "SEND of 80 lines of 250 bytes: cut at 16 KiB of text" {
	tty_start
	long_message 80 250 >"$BATS_TEST_TMPDIR/msg"
	run -0 transaction SEND "" "$BATS_TEST_TMPDIR/msg"
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	tty_has 'line 60 '
	run ! tty_has 'line 80 '
	tty_has '[the message was cut here]'
	# 16384 bytes of message, a CR for each LF, a banner and a note
	[ "$(wc -c <"$TTYOUT")" -lt $((16384 + 16384 / 250 + 1024)) ]
}

@test "SAML of a 500-line message: the terminal's note says the whole is in the mailbox" {
	tty_start
	long_message 500 40 >"$BATS_TEST_TMPDIR/msg"
	run -0 transaction SAML "" "$BATS_TEST_TMPDIR/msg"
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	tty_wait
	run ! tty_has 'line 101 '
	tty_has 'mailbox'
	[ "$(count_messages "$ME")" = 1 ]
	run -0 grep -c '^line [0-9]' "$SPOOL/$ME"
	[ "$output" = 500 ]
}

# --- a terminal that does not drain --------------------------------------

@test "SEND to a terminal whose output is full and never read: 451 within the terminal's bound, and the session goes on" {
	short_waits TTY_WAIT=1		# of 10 s
	tty_start --no-read --fill --timeout 40
	SMTP_WAIT=30
	start=$(now_ms)
	run -0 transaction SEND
	took=$(($(now_ms) - start))
	[ "$took" -ge 900 ] && [ "$took" -le 15000 ] ||
	    { echo "took $took ms"; false; }
	[ "${lines[3]}" = "250 2.1.5 Recipient <$ME> OK" ]
	[ "${lines[5]}" = "451 4.2.1 Could not write to the terminal of <$ME>" ]
	[ "${lines[6]}" = "221 2.0.0 mx.example closing connection" ]
	tty_stop
	run ! tty_has 'EOF\r\n'
}

@test "SOML to a terminal whose output is full and never read: the mailbox has it" {
	short_waits TTY_WAIT=1		# of 10 s
	tty_start --no-read --fill --timeout 40
	SMTP_WAIT=30
	start=$(now_ms)
	run -0 transaction SOML
	took=$(($(now_ms) - start))
	[ "$took" -ge 900 ] && [ "$took" -le 15000 ] ||
	    { echo "took $took ms"; false; }
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered" ]]
	[ "$(count_messages "$ME")" = 1 ]
	tty_stop
}
