# smtpd.8, MAILBOX FORMAT: what a delivered message looks like in its mbox,
# and which mailboxes smtpd refuses to write.
load helpers

# "smtpd <version>", as smtpd -v says it
VERSION=$("${SMTPD_BIN:-$BATS_TEST_DIRNAME/../smtpd}" -v)

DAYS='(Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
MONTHS='(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
TIME='[0-2][0-9]:[0-5][0-9]:[0-6][0-9]'
ASCTIME="$DAYS $MONTHS [ 1-3][0-9] $TIME [0-9]{4}"
RFC5322_DATE="$DAYS, [0-9]{1,2} $MONTHS [0-9]{4} $TIME [+-][0-9]{4}"

# The mailbox with smtpd's Received: header unfolded onto one line
# (its folded lines joined with one space).
unfolded() {
	awk 'rec && /^[ \t]/ { sub(/^[ \t]+/, " "); line = line $0; next }
	rec { print line; rec = 0 }
	prev ~ /^Return-Path: / && /^Received: / { rec = 1; line = $0 }
	{ prev = $0 }
	!rec { print }
	END { if (rec) print line }' "$1"
}

# Mailbox $1 unfolded, with what changes from run to run (dates, ids)
# made fixed.
unfolded_fixed() {
	unfolded "$1" | sed -E \
	    -e "s/^(From [^ ]+) $ASCTIME\$/\\1 DATE/" \
	    -e "/^Received: /s/ id [0-9A-Z-]+/ id ID/" \
	    -e "/^Received: /s/; $RFC5322_DATE\$/; DATE/"
}

# What unfolded_fixed makes of smtpd's envelope lines: sender [recipient].
envelope() {
	printf '%s\n' "From $1 DATE" "Return-Path: <$1>"
	printf '%s' "Received: from client.example (localhost) by mx.example" \
	    " ($VERSION) with SMTP id ID${2:+ for <$2>}; DATE"
	echo
}

# What smtpd's Received: header must be, unfolded, as a regular
# expression: SMTP or ESMTP, the id, and "for <rcpt>" or nothing.
received_re() {
	printf '%s' "^Received: from client[.]example [(]localhost[)]" \
	    " by mx[.]example [(]${VERSION//./[.]}[)] with $1 id $2" \
	    "${3:+ for <$3>}; $RFC5322_DATE\$"
}

# received_is WITH [RCPT]: the first message of jones's mailbox (the
# only one, in the tests that ask) came in `with WITH' and its Received:
# header, unfolded, matches received_re for the id the 250 after the data
# gave (the reply before last of the last `run').
received_is() {
	local delivered=${lines[${#lines[@]}-2]}
	[ "${delivered:0:24}" = "250 2.0.0 Delivered, id " ]
	[[ "$(received_unfolded "$SPOOL/jones")" =~ \
	    $(received_re "$1" "${delivered#250 2.0.0 Delivered, id }" "${2:-}") ]]
}

# One message to jones, its lines given as arguments; the reply to the
# data must say it was delivered.
deliver_lines() {
	run -0 smtp "${TRANSACTION[@]}" "$@" . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
}

@test "the From_ line is From, the sender and a 24-character asctime date" {
	deliver_lines "Subject: from" "" "Hello."
	from_=$(head -n 1 "$SPOOL/jones")
	[[ "$from_" =~ ^From\ sender@example\.org\ ($ASCTIME)$ ]]
	[ "${#BASH_REMATCH[1]}" -eq 24 ]
}

@test "the null sender is MAILER-DAEMON on the From_ line" {
	run -0 smtp "HELO client.example" "MAIL FROM:<>" "RCPT TO:<jones>" \
	    DATA "Subject: bounce" "" "Returned." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[[ "$(head -n 1 "$SPOOL/jones")" =~ ^From\ MAILER-DAEMON\ $ASCTIME$ ]]
	[ "$(sed -n 2p "$SPOOL/jones")" = "Return-Path: <>" ]
}

@test "white space in the sender is written as _ on the From_ line" {
	run -0 smtp "HELO client.example" 'MAIL FROM:<"Joe Q Public"@example.org>' \
	    "RCPT TO:<jones>" DATA "Subject: quoted" "" "Hi." . QUIT
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[[ "$(head -n 1 "$SPOOL/jones")" =~ ^From\ \"Joe_Q_Public\"@example\.org\ $ASCTIME$ ]]
}

@test "Return-Path: follows the From_ line and holds the sender" {
	deliver_lines "Subject: path" "" "Hello."
	[ "$(sed -n 2p "$SPOOL/jones")" = "Return-Path: <sender@example.org>" ]
}

@test "Received: names the HELO, localhost, the host, version, id and the one recipient" {
	deliver_lines "Subject: trace" "" "Hello."
	received_is SMTP jones
}

@test "Received: says ESMTP after EHLO" {
	run -0 smtp "EHLO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" DATA "Subject: esmtp" "" "Hello." . QUIT
	received_is ESMTP jones
}

# RFC 6531 4.3: a transaction that used SMTPUTF8 is `with UTF8SMTP'.
@test "Received: says UTF8SMTP after MAIL ... SMTPUTF8" {
	run -0 smtp "EHLO client.example" \
	    "MAIL FROM:<sÃ©nder@example.org> SMTPUTF8" \
	    "RCPT TO:<jones>" DATA "Subject: utf8" "" "Hello." . QUIT
	received_is UTF8SMTP jones
}

@test "Received: names no recipient when two RCPTs were accepted" {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: bcc" "" \
	    "Hello." . QUIT
	received_is SMTP
	run ! grep -F 'for <' "$SPOOL/smith"
}

@test "From lines are quoted the mboxrd way" {
	gt=$(printf '>%.0s' {1..20})
	deliver_lines "Subject: quoting" "" "From a" ">From b" ">>>From x" "From" \
	    "Fromage" " From c" "not From d" ">From" ">Fromage" ">>>" \
	    "${gt}From y" "$gt"
	diff -u <(printf '%s\n' "Subject: quoting" "" ">From a" ">>From b" \
	    ">>>>From x" "From" "Fromage" " From c" "not From d" ">From" \
	    ">Fromage" ">>>" ">${gt}From y" "$gt" "") <(stored "$SPOOL/jones")
}

@test "a message whose first line is a From_ line gets it quoted" {
	deliver_lines "From someone@example.org Mon Jan  1 00:00:00 2024" \
	    "Subject: pasted" "" "Body."
	diff -u <(printf '%s\n' \
	    ">From someone@example.org Mon Jan  1 00:00:00 2024" \
	    "Subject: pasted" "" "Body." "") <(stored "$SPOOL/jones")
}

@test "a line that becomes From by unstuffing is quoted" {
	deliver_lines "Subject: stuffed" "" ".From a" ".>From b" "..From c"
	diff -u <(printf '%s\n' "Subject: stuffed" "" ">From a" ">>From b" \
	    ".From c" "") <(stored "$SPOOL/jones")
}

@test "line ends in the mailbox are LF, with no CR anywhere" {
	deliver_lines "Subject: crlf" "" "one" "two" "" "three"
	[ "$(count_messages jones)" = 1 ]
	run ! grep -c $'\r' "$SPOOL/jones"
	[ "$output" = 0 ]
	diff -u <(printf '%s\n' "Subject: crlf" "" one two "" three "") \
	    <(stored "$SPOOL/jones")
}

@test "each message is followed by one blank line" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: one" "" "first" . \
	    "MAIL FROM:<sender@example.org>" "RCPT TO:<jones>" DATA \
	    "Subject: two" "" "second" . QUIT
	[ "$(codes)" = "220 250 250 250 354 250 250 250 354 250 221" ]
	diff -u <(envelope sender@example.org jones
	    printf '%s\n' "Subject: one" "" first ""
	    envelope sender@example.org jones
	    printf '%s\n' "Subject: two" "" second "") \
	    <(unfolded_fixed "$SPOOL/jones")
}

@test "two messages in one mailbox are read back as two by Python's mailbox" {
	first=("Subject: first" "" "From the start" ">From quoted" "plain" \
	    "..dotted" "From")
	second=("Subject: second" "" "second body" ">>From deep")
	run -0 smtp "${TRANSACTION[@]}" "${first[@]}" . \
	    "MAIL FROM:<other@example.org>" "RCPT TO:<jones>" DATA \
	    "${second[@]}" . QUIT
	[ "$(codes)" = "220 250 250 250 354 250 250 250 354 250 221" ]
	[ "$(count_messages jones)" = 2 ]
	# mailbox.mbox splits the messages but keeps the quoting; mboxrd
	# unquoting (one '>' off ^>+From ) is done here
	run -0 python3 - "$SPOOL/jones" "$BATS_TEST_TMPDIR/body" <<-'PY'
	import mailbox, re, sys
	box = mailbox.mbox(sys.argv[1])
	keys = box.keys()
	print(len(keys))
	print("\n".join(box[k]["Subject"] for k in keys))
	bodies = [box.get_bytes(k).split(b"\n\n", 1)[1] for k in keys]
	bodies = [re.sub(rb"(?m)^>(>*From )", rb"\1", b) for b in bodies]
	for i, b in enumerate(bodies, 1): open("%s.%d" % (sys.argv[2], i), "wb").write(b)
	PY
	[ "$output" = "$(printf '%s\n' 2 first second)" ]
	cmp <(printf '%s\n' "From the start" ">From quoted" plain .dotted From) \
	    "$BATS_TEST_TMPDIR/body.1"
	cmp <(printf '%s\n' "second body" ">>From deep") "$BATS_TEST_TMPDIR/body.2"
}

@test "the readers' bookkeeping headers are dropped with their folded lines, whatever their case" {
	deliver_lines "Subject: clean-up" "Content-Length: 999" "status: RO" \
	    "X-Status: A" "X-UID: 12" "X-IMAP: 1 2" "X-IMAPbase: 1 2" \
	    "X-Keywords: junk," $'\tmore junk' "CONTENT-LENGTH: 5" \
	    "  folded too" "x-keywords: x" "To: jones" "" "Body."
	diff -u <(printf '%s\n' "Subject: clean-up" "To: jones" "" Body. "") \
	    <(stored "$SPOOL/jones")
}

@test "a Return-Path header sent with the message is dropped" {
	deliver_lines "Return-Path: <forged@example.net>" "Subject: path" \
	    "return-path: <forged@example.com>" $'\t(folded)' "" "Body."
	diff -u <(printf '%s\n' "Subject: path" "" Body. "") \
	    <(stored "$SPOOL/jones")
	[ "$(grep -ci '^Return-Path:' "$SPOOL/jones")" = 1 ]
	[ "$(sed -n 2p "$SPOOL/jones")" = "Return-Path: <sender@example.org>" ]
}

@test "bookkeeping header names in the body are kept" {
	body=("Status: RO" "Content-Length: 12" "X-UID: 1" "X-IMAP: 1" \
	    "X-IMAPbase: 1" "X-Status: A" "X-Keywords: k" \
	    "Return-Path: <body@example.net>" $'\tfolded')
	deliver_lines "Subject: body" "" "${body[@]}"
	diff -u <(printf '%s\n' "Subject: body" "" "${body[@]}" "") \
	    <(stored "$SPOOL/jones")
}

@test "other headers, folded ones included, are kept intact" {
	head=("Received: from a.example by b.example;" \
	    $'\tMon, 1 Jan 2024 00:00:00 +0000' "Subject: a subject" \
	    "  folded with spaces" "X-UIDL: keep" "Status-Line: keep" \
	    "X-Status2: keep" "X-Keywordsx: keep" "Content-Type: text/plain;" \
	    $'\tcharset=us-ascii' \
	    "X-A-Header-Name-Longer-Than-Thirty-Two-Octets: kept" \
	    "Content-Length-Of-Something-Else-Entirely-Here: kept" \
	    "To: Joe Jones <jones@mx.example>")
	deliver_lines "${head[@]}" "" "Body."
	diff -u <(printf '%s\n' "${head[@]}" "" Body. "") \
	    <(stored "$SPOOL/jones")
}

@test "a mailbox not ending in a blank line gets one before the new message" {
	printf '%s\n' "From old@example.org Mon Jan  1 00:00:00 2024" \
	    "Subject: old" "" "old body" >"$SPOOL/jones"
	chmod 600 "$SPOOL/jones"
	deliver_lines "Subject: new" "" "new body"
	diff -u <(printf '%s\n' "From old@example.org DATE" "Subject: old" "" \
	    "old body" ""
	    envelope sender@example.org jones
	    printf '%s\n' "Subject: new" "" "new body" "") \
	    <(unfolded_fixed "$SPOOL/jones")
}

@test "a mailbox not ending in a newline gets a blank line before the new message" {
	printf 'From old@example.org Mon Jan  1 00:00:00 2024\n%s' \
	    $'Subject: old\n\nold body' >"$SPOOL/jones"
	chmod 600 "$SPOOL/jones"
	deliver_lines "Subject: new" "" "new body"
	diff -u <(printf '%s\n' "From old@example.org DATE" "Subject: old" "" \
	    "old body" ""
	    envelope sender@example.org jones
	    printf '%s\n' "Subject: new" "" "new body" "") \
	    <(unfolded_fixed "$SPOOL/jones")
}

@test "a mailbox ending in a blank line gets no other one" {
	printf '%s\n' "From old@example.org Mon Jan  1 00:00:00 2024" \
	    "Subject: old" "" "old body" "" >"$SPOOL/jones"
	chmod 600 "$SPOOL/jones"
	deliver_lines "Subject: new" "" "new body"
	diff -u <(printf '%s\n' "From old@example.org DATE" "Subject: old" "" \
	    "old body" ""
	    envelope sender@example.org jones
	    printf '%s\n' "Subject: new" "" "new body" "") \
	    <(unfolded_fixed "$SPOOL/jones")
}

@test "a new mailbox is created mode 0600" {
	umask 000
	deliver_lines "Subject: mode" "" "Hello."
	[ "$(stat -c %a "$SPOOL/jones")" = 600 ]
}

@test "a message of headers without a blank line after them is stored intact" {
	deliver_lines "Subject: no body" "X-Note: nothing follows"
	diff -u <(printf '%s\n' "Subject: no body" "X-Note: nothing follows" "") \
	    <(stored "$SPOOL/jones")
}

@test "a message without any header is stored intact but for bookkeeping lines before its first empty line" {
	# mail readers take every line up to the first empty one for the
	# header section: a Status: there would mark the message read
	deliver_lines "just text, no header" "Status: RO" "Content-Length: 3" \
	    "From here" "" "Status: in the body"
	diff -u <(printf '%s\n' "just text, no header" ">From here" "" \
	    "Status: in the body" "") <(stored "$SPOOL/jones")
}

@test "an empty message is delivered" {
	deliver_lines
	diff -u <(envelope sender@example.org jones; echo) \
	    <(unfolded_fixed "$SPOOL/jones")
}

@test "a symbolic link at the mailbox's path is refused with 451, its target untouched" {
	printf 'precious\n' >"$BATS_TEST_TMPDIR/outside"
	ln -s "$BATS_TEST_TMPDIR/outside" "$SPOOL/jones"
	run -0 smtp "${TRANSACTION[@]}" "Subject: link" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$(cat "$BATS_TEST_TMPDIR/outside")" = precious ]
	[ "$(readlink "$SPOOL/jones")" = "$BATS_TEST_TMPDIR/outside" ]
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}

@test "a dangling symbolic link at the mailbox's path is refused with 451, nothing created" {
	ln -s "$BATS_TEST_TMPDIR/nowhere" "$SPOOL/jones"
	run -0 smtp "${TRANSACTION[@]}" "Subject: link" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ ! -e "$BATS_TEST_TMPDIR/nowhere" ]
	[ "$(readlink "$SPOOL/jones")" = "$BATS_TEST_TMPDIR/nowhere" ]
}

@test "a directory at the mailbox's path is refused with 451 and left alone" {
	mkdir "$SPOOL/jones"
	run -0 smtp "${TRANSACTION[@]}" "Subject: dir" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ -d "$SPOOL/jones" ]
	run ls -A "$SPOOL/jones"
	[ "$output" = "" ]
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}

@test "a FIFO at the mailbox's path is refused with 451 and left alone" {
	mkfifo "$SPOOL/jones"
	run -0 smtp "${TRANSACTION[@]}" "Subject: fifo" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ -p "$SPOOL/jones" ]
	run spool_ls "$SPOOL"
	[ "$output" = jones ]
}

@test "a hard-linked mailbox is refused with 451 and left alone" {
	printf 'precious\n' >"$BATS_TEST_TMPDIR/other"
	ln "$BATS_TEST_TMPDIR/other" "$SPOOL/jones"
	run -0 smtp "${TRANSACTION[@]}" "Subject: link" "" "Hello." . QUIT
	[ "${lines[5]}" = "$REFUSED" ]
	[ "$(cat "$SPOOL/jones")" = precious ]
	[ "$(stat -c %h "$SPOOL/jones")" = 2 ]
	[ "$SPOOL/jones" -ef "$BATS_TEST_TMPDIR/other" ]
}

@test "a message over 64 KiB is stored byte-exact" {
	sent="$BATS_TEST_TMPDIR/sent"
	# 200 KB: dots to unstuff, a lone dot, lines long and empty
	awk 'BEGIN {
		print "Subject: big"
		print ""
		for (i = 1; i <= 4000; i++) {
			if (i % 7 == 0) printf ".dot line %d\n", i
			else if (i % 13 == 0) print "."
			else if (i % 17 == 0) print ""
			else printf "line %d: the quick brown fox jumps over the lazy dog\n", i
		}
	}' >"$sent"
	[ "$(wc -c <"$sent")" -gt 131072 ]
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"
	    sed -e 's/^\./../' -e 's/$/\r/' "$sent"
	    printf '.\r\nQUIT\r\n')
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	cmp <(cat "$sent"; echo) <(stored "$SPOOL/jones")
}

# A message over 64 KiB goes to a spool file first, and from there into
# the mailbox, read, checked and written piece by piece, whether the two
# are on one file system or not.  About 9 MB, so that the copy goes in
# several steps (the disk started on each 4 MiB in turn).
big_after_old() {
	local sent="$BATS_TEST_TMPDIR/sent" before
	awk 'BEGIN {
		print "Subject: big"; print ""
		for (i = 1; i <= 200000; i++) {
			if (i % 11 == 0) printf "From line %d\n", i
			else if (i % 7 == 0) printf ".dot line %d\n", i
			else printf "line %d: the quick brown fox jumps over the dog\n", i
		}
	}' >"$sent"
	[ "$(wc -c <"$sent")" -gt $((8 << 20)) ]
	deliver_lines "Subject: first" "" "The old message."
	before=$(cat "$SPOOL/jones"; echo x)
	run -0 smtp_raw < <(printf '%s\r\n' "${TRANSACTION[@]}"
	    sed -e 's/^\./../' -e 's/$/\r/' "$sent"
	    printf '.\r\nQUIT\r\n')
	[ "${lines[5]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(count_messages jones)" = 2 ]
	# the old message is as it was, the new one follows it whole
	[ "$(head -c $((${#before} - 1)) "$SPOOL/jones"; echo x)" = "$before" ]
	cmp <(sed 's/^From line/>From line/' "$sent"; echo) \
	    <(tail -c +$((${#before})) "$SPOOL/jones" | stored /dev/stdin)
}

@test "a message of 9 MB after an old one: spool file on the mailbox's file system" {
	big_after_old
}

@test "a message of 9 MB after an old one: spool file on another file system" {
	[ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" != "$(stat -f -c %T "$SPOOL")" ] ||
	    skip "no second file system type at /dev/shm"
	TMPDIR=$(mktemp -d /dev/shm/smtpd-test.XXXXXX)
	echo "$TMPDIR" >"$BATS_TEST_TMPDIR/shm"
	chmod 1777 "$TMPDIR"	# the dialogue may run as nobody
	big_after_old
	rmdir "$TMPDIR"
}

teardown() {
	if [ -f "$BATS_TEST_TMPDIR/shm" ]; then
		rm -rf "$(cat "$BATS_TEST_TMPDIR/shm")"
	fi
}

@test "a message to two recipients is identical in both mailboxes" {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "RCPT TO:<smith>" DATA "Subject: both" "" \
	    "Same for all." . QUIT
	[ "${lines[6]:0:24}" = "250 2.0.0 Delivered, id " ]
	[ "$(count_messages jones)" = 1 ]
	cmp "$SPOOL/jones" "$SPOOL/smith"
}
