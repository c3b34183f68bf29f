# smtpd.8, INPUT RULES: what smtpd accepts from the client, and the limits
# that keep a stuck or hostile client from holding or growing the process.
load helpers

teardown() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
}

# repeat CHAR N: N copies of the character CHAR.
repeat() {
	head -c "$2" /dev/zero | tr '\0' "$1"
}

# Replies checked word for word.
TOO_LONG="500 5.5.6 Line too long (512 octets at most)"
BAD_LINE="500 5.5.2 Bare CR or NUL in command line"
BARE_EOL="554 5.6.0 Message refused: bare CR or LF in the data"
BARE_EOL+=" (lines must end in CRLF)"

@test "a command line of 510 octets and CRLF is accepted" {
	line="NOOP $(repeat x 505)"
	[ "${#line}" -eq 510 ]
	run -0 smtp "$line" QUIT
	[ "${lines[1]}" = "250 2.0.0 OK" ]
	[ "$(codes)" = "220 250 221" ]
}

@test "a command line of 511 octets and CRLF is refused with 500" {
	line="NOOP $(repeat x 506)"
	[ "${#line}" -eq 511 ]
	run -0 smtp "$line" NOOP QUIT
	[ "${lines[1]}" = "$TOO_LONG" ]
	[ "$(codes)" = "220 500 250 221" ]
}

@test "a QUIT past the 512th octet of a long line is not run" {
	# QUIT starting after 510, 511, 512 and 1000 octets of one line:
	# wherever a reader might cut the line, the rest is no command.
	run -0 smtp "NOOP $(repeat x 505)QUIT" "NOOP $(repeat x 506)QUIT" \
	    "NOOP $(repeat x 507)QUIT" "NOOP $(repeat x 995)QUIT" \
	    "NOOP next" QUIT
	[ "$(codes)" = "220 500 500 500 500 250 221" ]
	[ "${lines[5]}" = "250 2.0.0 OK" ]
}

@test "a RSET past the 512th octet of a long line is not run" {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "NOOP $(repeat x 507)RSET" "RCPT TO:<jones>" QUIT
	[ "${lines[3]}" = "$TOO_LONG" ]
	# the transaction is still there: RSET was not run
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "$(codes)" = "220 250 250 500 250 221" ]
}

@test "a 100 KB line gets one 500 and the session goes on" {
	run -0 smtp "NOOP $(repeat x 100000)" NOOP QUIT
	[ "$(codes)" = "220 500 250 221" ]
	[ "${lines[1]}" = "$TOO_LONG" ]
}

@test "a command line ending in a bare LF is accepted" {
	run -0 smtp_raw < <(printf 'HELO client.example\nNOOP\nQUIT\n')
	[ "${lines[1]}" = "250 mx.example" ]
	[ "${lines[2]}" = "250 2.0.0 OK" ]
	[ "${lines[3]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "a bare CR inside a command line is refused with 500" {
	run -0 smtp_raw < <(printf 'NOOP a\rb\r\nNOOP\r\nQUIT\r\n')
	[ "${lines[1]}" = "$BAD_LINE" ]
	[ "$(codes)" = "220 500 250 221" ]
}

@test "a NUL inside a command line is refused with 500" {
	run -0 smtp_raw < <(printf 'NOOP a\0b\r\nNOOP\r\nQUIT\r\n')
	[ "${lines[1]}" = "$BAD_LINE" ]
	[ "$(codes)" = "220 500 250 221" ]
}

@test "a bare LF inside DATA refuses the message with 554 after its end" {
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"
	    printf 'Subject: bare LF\r\n\r\none\ntwo\r\nthree\r\n'
	    printf '%s\r\n' . NOOP QUIT)
	[ "$(codes)" = "220 250 250 250 354 554 250 221" ]
	[ "${lines[5]}" = "$BARE_EOL" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "a bare CR inside DATA refuses the message with 554 after its end" {
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"
	    printf 'Subject: bare CR\r\n\r\none\rtwo\r\nthree\r\n'
	    printf '%s\r\n' . NOOP QUIT)
	[ "$(codes)" = "220 250 250 250 354 554 250 221" ]
	[ "${lines[5]}" = "$BARE_EOL" ]
	[ ! -e "$SPOOL/jones" ]
}

# SMTP smuggling: a second transaction hidden behind a dot that only a
# receiver taking bare LF as a line end would see.
smuggle() {	# the bytes of the fake end of data
	printf '%s\r\n' "${TRANSACTION[@]}"
	printf 'Subject: first\r\n\r\nfirst'
	printf '%b' "$1"
	printf '%s\r\n' "MAIL FROM:<evil@example.org>" "RCPT TO:<smith>" DATA \
	    "Subject: smuggled" "" "smuggled" . QUIT
}

@test "LF.LF inside DATA does not end it: no message is smuggled" {
	run -0 smtp_raw < <(smuggle '\n.\n')
	[ "$(codes)" = "220 250 250 250 354 554 221" ]
	[ "${lines[5]:0:10}" = "554 5.6.0 " ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "CRLF.LF inside DATA does not end it: no message is smuggled" {
	run -0 smtp_raw < <(smuggle '\r\n.\n')
	[ "$(codes)" = "220 250 250 250 354 554 221" ]
	[ "${lines[5]:0:10}" = "554 5.6.0 " ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "LF.CRLF inside DATA does not end it: no message is smuggled" {
	run -0 smtp_raw < <(smuggle '\n.\r\n')
	[ "$(codes)" = "220 250 250 250 354 554 221" ]
	[ "${lines[5]:0:10}" = "554 5.6.0 " ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "CR.CR inside DATA does not end it: no message is smuggled" {
	run -0 smtp_raw < <(smuggle '\r.\r')
	[ "$(codes)" = "220 250 250 250 354 554 221" ]
	[ "${lines[5]:0:10}" = "554 5.6.0 " ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "a NUL inside DATA refuses the message with 554 5.6.0 after its end" {
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"
	    printf 'Subject: NUL\r\n\r\none\0two\r\nthree\r\n'
	    printf '%s\r\n' . NOOP QUIT)
	[ "$(codes)" = "220 250 250 250 354 554 250 221" ]
	[ "${lines[5]}" = "554 5.6.0 Message refused: NUL byte in the data" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "dot-stuffing is undone" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: dots" "" "..x" "..." \
	    "a.b" ". ." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	diff -u <(printf '%s\n' "Subject: dots" "" ".x" ".." "a.b" " ." "") \
	    <(stored "$SPOOL/jones")
}

@test "a line holding only two dots is stored as one dot" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: dot" "" "before" ".." \
	    "after" . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	diff -u <(printf '%s\n' "Subject: dot" "" before . after "") \
	    <(stored "$SPOOL/jones")
}

@test "message lines of 100,000 octets are stored intact" {
	a=$(repeat a 100000)
	b=".$(repeat b 99999)"
	run -0 smtp "${TRANSACTION[@]}" "Subject: long" "" "$a" ".$b" "end" \
	    . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	cmp <(printf '%s\n' "Subject: long" "" "$a" "$b" end "") \
	    <(stored "$SPOOL/jones")
}

# 13 + 2, 0 + 2, 8 + 2 (".stuffed" once unstuffed), 4 + 2: 33 octets
# after unstuffing, with CRLF line ends; the final dot does not count.
SIZED=("Subject: sized" "" "..stuffed" "body")

@test "a message of exactly -s octets is accepted" {
	OPTS+=(-s 33)
	SIZED[0]="Subject: size"
	run -0 smtp "${TRANSACTION[@]}" "${SIZED[@]}" . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(count_messages jones)" = 1 ]
}

@test "a message of -s plus one octets is refused with 552 after its end" {
	OPTS+=(-s 33)
	SIZED[0]="Subject: sizes"	# one octet more: 34
	run -0 smtp "${TRANSACTION[@]}" "${SIZED[@]}" . NOOP QUIT
	[ "${lines[5]}" = \
	    "552 5.3.4 Message size exceeds fixed maximum message size (33)" ]
	[ "$(codes)" = "220 250 250 250 354 552 250 221" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "recipients over -r get 452 each" {
	OPTS+=(-r 2)
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<smith>" "RCPT TO:<jones>" "RCPT TO:<brown>" \
	    "RCPT TO:<postmaster>" QUIT
	[ "$(codes)" = "220 250 250 250 250 452 452 221" ]
	[ "${lines[5]}" = "452 4.5.3 Too many recipients" ]
	[ "${lines[6]}" = "452 4.5.3 Too many recipients" ]
}

@test "a silent client gets 421 after -t seconds and the process exits" {
	OPTS+=(-t 1)
	mkfifo "$BATS_TEST_TMPDIR/in"
	exec {hold}<>"$BATS_TEST_TMPDIR/in"	# no end of input, ever
	start=$(now_ms)
	run smtp_raw <"$BATS_TEST_TMPDIR/in"
	elapsed=$(($(now_ms) - start))
	exec {hold}>&-
	[ "$status" -eq 0 ]	# not 124: smtpd left by itself
	[ "$(codes)" = "220 421" ]
	[ "${lines[1]}" = "421 4.4.2 mx.example timeout" ]
	[ "$elapsed" -ge 900 ]
	[ "$elapsed" -lt 3000 ]
}

@test "a client trickling a command line one byte at a time is cut after -t" {
	OPTS+=(-t 1)
	mkfifo "$BATS_TEST_TMPDIR/in"
	# one byte every 0.4 s, for 8 s at most, never a whole line
	for i in $(seq 20); do
		printf N
		sleep 0.4
	done >"$BATS_TEST_TMPDIR/in" 2>/dev/null 3>&- &
	PIDS+=($!)
	start=$(now_ms)
	run smtp_raw <"$BATS_TEST_TMPDIR/in"
	elapsed=$(($(now_ms) - start))
	[ "$status" -eq 0 ]
	[ "$(codes)" = "220 421" ]
	[ "${lines[1]}" = "421 4.4.2 mx.example timeout" ]
	[ "$elapsed" -lt 3000 ]
}

@test "a client trickling one data line is cut after -t, nothing delivered" {
	OPTS+=(-t 1)
	mkfifo "$BATS_TEST_TMPDIR/in"
	{
		printf '%s\r\n' "${TRANSACTION[@]}" "Subject: slow" ""
		for i in $(seq 20); do
			printf x
			sleep 0.4
		done
	} >"$BATS_TEST_TMPDIR/in" 2>/dev/null 3>&- &
	PIDS+=($!)
	start=$(now_ms)
	run smtp_raw <"$BATS_TEST_TMPDIR/in"
	elapsed=$(($(now_ms) - start))
	[ "$status" -eq 0 ]
	[ "$(codes)" = "220 250 250 250 354 421" ]
	[ "${lines[5]}" = "421 4.4.2 mx.example timeout" ]
	[ "$elapsed" -lt 3000 ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

# bats test_tags=slow
@test "data lines each complete within -t are not cut, however long the whole" {
	OPTS+=(-t 2)
	mkfifo "$BATS_TEST_TMPDIR/in"
	{
		printf '%s\r\n' "${TRANSACTION[@]}" "Subject: steady" ""
		for i in $(seq 6); do	# 3 s in all, a line every 0.5 s
			sleep 0.5
			printf 'line %d\r\n' "$i"
		done
		printf '%s\r\n' . QUIT
	} >"$BATS_TEST_TMPDIR/in" 2>/dev/null 3>&- &
	PIDS+=($!)
	run -0 smtp_raw <"$BATS_TEST_TMPDIR/in"
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	diff -u <(printf '%s\n' "Subject: steady" "" "line "{1..6} "") \
	    <(stored "$SPOOL/jones")
}

@test "a timeout in the middle of DATA delivers nothing" {
	OPTS+=(-t 1)
	mkfifo "$BATS_TEST_TMPDIR/in"
	exec {hold}<>"$BATS_TEST_TMPDIR/in"
	printf '%s\r\n' "${TRANSACTION[@]}" "Subject: cut" "" "half of it" \
	    >&"$hold"
	run smtp_raw <"$BATS_TEST_TMPDIR/in"
	exec {hold}>&-
	[ "$status" -eq 0 ]
	[ "$(codes)" = "220 250 250 250 354 421" ]
	[ "${lines[5]}" = "421 4.4.2 mx.example timeout" ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "end of input in the middle of DATA delivers nothing and exits 0 quietly" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: cut" "" "half of it"
	[ "$(codes)" = "220 250 250 250 354" ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

@test "the 20th reply of 500-504 is followed by 421 and the end" {
	errors=()
	for i in 1 2 3 4; do
		# 500, 501, 502, 503 and 504: the client's own errors
		errors+=(FOO HELO TURN "RCPT TO:<jones>" "HELP FOO")
	done
	run -0 smtp "${errors[@]}" NOOP QUIT
	[ "$(codes)" = "220$(repeat_word 4 "500 501 502 503 504") 421" ]
	[ "${lines[21]}" = \
	    "421 4.7.0 mx.example too many errors, closing connection" ]
	[ "${#lines[@]}" -eq 22 ]
}

@test "550 replies to RCPT count toward the limit of 20 errors" {
	cmds=("HELO client.example" "MAIL FROM:<sender@example.org>")
	for i in 1 2 3 4 5; do
		cmds+=("RCPT TO:<nobody$i>")
	done
	for i in $(seq 15); do
		cmds+=(FOO)
	done
	run -0 smtp "${cmds[@]}" NOOP QUIT
	[ "${lines[3]}" = "550 5.1.1 <nobody1>: user unknown" ]
	[ "$(codes)" = "220 250 250$(repeat_word 5 550)$(repeat_word 15 500) 421" ]
}

@test "a 554 refusing a message does not count toward the limit of 20 errors" {
	cmds=("HELO client.example")
	for i in $(seq 19); do
		cmds+=(FOO)
	done
	cmds+=("MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" DATA
	    "Subject: bad" "" $'a bare\nLF' .)
	run -0 smtp "${cmds[@]}" NOOP QUIT
	[ "$(codes)" = "220 250$(repeat_word 19 500) 250 250 354 554 250 221" ]
}

@test "452 replies do not count toward the limit of 20 errors" {
	OPTS+=(-r 1)
	cmds=("HELO client.example" "MAIL FROM:<sender@example.org>"
	    "RCPT TO:<jones>")
	for i in 1 2 3 4 5; do
		cmds+=("RCPT TO:<smith>")
	done
	for i in $(seq 19); do
		cmds+=(FOO)
	done
	run -0 smtp "${cmds[@]}" NOOP QUIT
	[ "$(codes)" = "220 250 250 250$(repeat_word 5 452)$(repeat_word 19 500) 250 221" ]
}

# smtpd in the background, reading the fifo $IN that this shell holds
# open on fd $hold (write to it there); its replies go to $OUT.  Sets
# $tpid (the timeout around it) and $pid (smtpd's own, from its first
# log line: "smtpd[PID]: start ...").
start_background() {
	IN=$BATS_TEST_TMPDIR/in
	OUT=$BATS_TEST_TMPDIR/out
	mkfifo "$IN"
	exec {hold}<>"$IN"
	timeout 10 "$SMTPD" "${OPTS[@]}" <"$IN" >"$OUT" 2>"$LOG" 3>&- &
	tpid=$!
	PIDS+=("$tpid")
	wait_for_line "$LOG" '^smtpd\[[0-9]*\]: start '
	pid=$(sed -n '1s/^smtpd\[\([0-9]*\)\]: start .*/\1/p' "$LOG")
	[ -n "$pid" ]
	PIDS+=("$pid")
}

# SIGTERM to smtpd; its exit status once it is gone.
terminate() {
	local rc=0
	kill -TERM "$pid"
	wait_until 5 gone "$tpid"
	wait "$tpid" || rc=$?	# timeout's status is smtpd's
	exec {hold}>&-
	echo "$rc"
}

@test "SIGTERM while waiting for a command gives 421 and exit" {
	start_background
	printf 'HELO client.example\r\n' >&"$hold"
	wait_for_line "$OUT" '^250 '
	rc=$(terminate)
	[ "$rc" -lt 128 ]	# it left by itself, not killed by the signal
	run tr -d '\r' <"$OUT"
	[ "$(codes)" = "220 250 421" ]
	[ "${lines[2]}" = "421 4.3.2 mx.example shutting down" ]
}

@test "SIGTERM in the middle of DATA gives 421 and delivers nothing" {
	start_background
	printf '%s\r\n' "${TRANSACTION[@]}" "Subject: cut" "" "half" >&"$hold"
	wait_for_line "$OUT" '^354 '
	rc=$(terminate)
	[ "$rc" -lt 128 ]
	run tr -d '\r' <"$OUT"
	[ "$(codes)" = "220 250 250 250 354 421" ]
	[ "${lines[5]}" = "421 4.3.2 mx.example shutting down" ]
	run spool_ls "$SPOOL"
	[ "$output" = "" ]
}

# N Received: header lines, as N hops would have added them.
hop_headers() {
	local i
	for i in $(seq "$1"); do
		printf 'Received: from hop%d.example by hop%d.example; %s\r\n' \
		    "$i" "$((i + 1))" "Mon, 1 Jan 2024 00:00:00 +0000"
	done
}

@test "a message with 101 Received headers is refused with 554 5.4.6" {
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"; hop_headers 101
	    printf '%s\r\n' "Subject: loop" "" "round and round" . NOOP QUIT)
	[ "${lines[5]}" = "554 5.4.6 Too many Received: headers (mail loop)" ]
	[ "$(codes)" = "220 250 250 250 354 554 250 221" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "a message with 100 Received headers is delivered" {
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"; hop_headers 100
	    printf '%s\r\n' "Subject: far" "" "a long way" . QUIT)
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	# the 100 it had, and smtpd's own
	[ "$(grep -c '^Received: ' "$SPOOL/jones")" -eq 101 ]
}

@test "pipelined commands get their replies in order" {
	printf -v batch '%s\r\n' "HELO client.example" \
	    "MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" \
	    "RCPT TO:<nobody>" "RCPT TO:<smith>" "VRFY brown" RSET NOOP QUIT
	run -0 smtp_raw < <(printf '%s' "$batch")	# one write
	expected=(
		"220 mx.example ESMTP smtpd 0.1"
		"250 mx.example"
		"250 2.1.0 Sender <sender@example.org> OK"
		"250 2.1.5 Recipient <jones> OK"
		"550 5.1.1 <nobody>: user unknown"
		"250 2.1.5 Recipient <smith> OK"
		"250 2.1.5 Bob Brown <brown@mx.example>"
		"250 2.0.0 Reset"
		"250 2.0.0 OK"
		"221 2.0.0 mx.example closing connection"
	)
	diff -u <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "${lines[@]}")
}

@test "commands pipelined right after the final dot are answered" {
	printf -v batch '%s\r\n' "${TRANSACTION[@]}" "Subject: one" "" 1 . \
	    "MAIL FROM:<other@example.org>" "RCPT TO:<smith>" DATA \
	    "Subject: two" "" 2 . NOOP QUIT
	run -0 smtp_raw < <(printf '%s' "$batch")	# one write
	[ "$(codes)" = "220 250 250 250 354 250 250 250 354 250 250 221" ]
	[ "${lines[6]}" = "250 2.1.0 Sender <other@example.org> OK" ]
	[ "${lines[10]}" = "250 2.0.0 OK" ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages smith)" = 1 ]
}
