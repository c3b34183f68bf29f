#!/usr/bin/env bats
# Policy at the door (smtpd.8, CONTENT FILTER and POLICY).  The -X
# filter: its input, its exact environment, its account, the fields it
# adds, its 554, and the 451 of each way a filter can fail (an exit
# status, a signal, not reading, sleeping past -t, too much or wrong
# output), with no process and no temporary file left behind; then
# examples/filters/spamassassin with Debian's SpamAssassin (GTUBE
# refused, ordinary mail delivered with X-Spam-Status), and
# examples/filters/spamc with a spamd of the test's own when there is
# one, and with none (451).  -g: early talkers refused under tcpserver
# and systemd-socket-activate, patient clients served, pipes never
# looked at.  HTTP request lines cut off with 421, curl http://
# answered nothing.  The refusal lines of the log, read by
# fail2ban-regex with examples/fail2ban/filter.d/smtpd.conf.
# Needs python3 and perl; SpamAssassin (spamassassin, spamc, spamd),
# ucspi-tcp (tcpserver), systemd (systemd-socket-activate), curl and
# fail2ban where a test says so: a test whose tool is missing skips,
# saying which.
load helpers
load launchers-helpers	# EXAMPLES, start_tcpserver, start_socket_activate

RECORD="$BATS_TEST_TMPDIR/recorded"
UNAVAILABLE="451 4.7.1 Content filter unavailable, try again later"
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

# common_setup, then TMPDIR a directory of its own, which must be empty
# after each session, and the directory where filters record what they
# saw (both writable by nobody, the filter's account when smtpd runs as
# root).
setup() {
	common_setup
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR" "$RECORD"
	chmod 1777 "$TMPDIR" "$RECORD"
	unset TCPREMOTEIP REMOTE_ADDR
}

# The servers, and any filter or child of one that smtpd failed to
# end: each by its pid, if that is still a process with a filter's
# environment (SMTP_ID=), not one that took the pid since.
teardown() {
	local pid
	stop_started
	cat "$RECORD/filters" "$RECORD/children" 2>/dev/null |
	    while read -r pid; do
		if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
		    grep -q '^SMTP_ID='; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
}

# A shell filter $1 in the test's directory, its body from stdin; its
# pid is noted in $RECORD/filters, for teardown.
filter() {
	{
		echo '#!/bin/sh'
		echo "echo \$\$ >>\"$RECORD/filters\""
		cat
	} >"$BATS_TEST_TMPDIR/$1"
	chmod 755 "$BATS_TEST_TMPDIR/$1"
}

# A line for a filter's body: start a child that would outlive it, and
# note its pid in $RECORD/children.
CHILD="sleep 300 & echo \$! >>\"$RECORD/children\""

# Each child a filter noted has gone (smtpd killed its process group).
children_gone() {
	local pid
	[ -s "$RECORD/children" ]	# there was one
	while read -r pid; do
		wait_until 5 gone "$pid" ||
		    { echo "the filter's child $pid still runs" >&2; return 1; }
	done <"$RECORD/children"
}

# TMPDIR holds nothing: no temporary file of smtpd or of the filter.
no_temp_files() {
	if [ -n "$(ls -A "$TMPDIR")" ]; then
		ls -la "$TMPDIR" >&2
		return 1
	fi
}

# The session used by most tests: one transaction from smith to jones
# with the message $1 (DATA's lines, the dot included, as "$(message)"
# gives them: the last LF taken off, its CR kept), then another MAIL,
# which must be accepted whatever became of the first, and QUIT.
mail_jones() {
	printf '%s\r\n' "EHLO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA
	printf '%s\n' "$1"
	printf '%s\r\n' "MAIL FROM:<brown@client.example>" QUIT
}

# The session of the last `run' went on after the message.
went_on() {
	[ "${lines[-2]}" = "250 2.1.0 Sender <brown@client.example> OK" ]
	[ "${lines[-1]}" = "221 2.0.0 mx.example closing connection" ]
}

# A whole ordinary message, as a person's mail client makes it.
ordinary() {
	printf '%s\r\n' "From: Fred Smith <smith@client.example>" \
	    "To: Joe Jones <jones@mx.example>" "Subject: lunch tomorrow" \
	    "Date: Thu, 03 Dec 2026 10:00:00 +0000" \
	    "Message-ID: <lunch.20261203@client.example>" "" \
	    "Joe, shall we have lunch tomorrow at noon?" "Fred" "."
}

# A message of about 100 KiB, more than a pipe holds.
big_message() {
	printf 'Subject: big\r\n\r\n'
	for i in $(seq 2000); do
		printf 'line %04d of a message larger than a pipe buffer\r\n' "$i"
	done
	printf '.\r\n'
}

# The perl filter that records, in $RECORD, its environment (env: one
# VAR=value a line, sorted, each newline in a value written \n), its
# uid and its standard input, and exits 0 having printed nothing.  Perl
# rather than sh: a shell exports PWD of its own.
record_filter() {
	command -v perl >/dev/null || skip "no perl for the recording filter"
	cat >"$BATS_TEST_TMPDIR/record.pl" <<-'EOF'
	my $dir = shift;
	open(my $env, '>', "$dir/env") or die "env: $!";
	for my $k (sort keys %ENV) {
		(my $v = $ENV{$k}) =~ s/\\/\\\\/g;
		$v =~ s/\n/\\n/g;
		print $env "$k=$v\n";
	}
	close $env;
	open(my $uid, '>', "$dir/uid") or die "uid: $!";
	print $uid "$<\n";
	close $uid;
	binmode STDIN;
	local $/;
	my $in = <STDIN>;
	open(my $out, '>', "$dir/in") or die "in: $!";
	binmode $out;
	print $out $in;
	close $out;
	exit 0;
	EOF
	chmod 644 "$BATS_TEST_TMPDIR/record.pl"
	OPTS+=(-X "perl $BATS_TEST_TMPDIR/record.pl $RECORD")
}

# --- the filter's input, environment and account -----------------------

@test "-X: the filter reads the message as it will be stored: Return-Path:, Received:, then the message, LF ends, dots unstuffed" {
	record_filter
	export TCPREMOTEIP=192.0.2.7
	run -0 smtp "EHLO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA "Subject: x" "" "..dot" "...two dots" \
	    "From me" "last" . QUIT
	id=$(delivered_id)
	[ -n "$id" ]
	printf '%s\n' "Return-Path: <smith@client.example>" \
	    "Received: from client.example ([192.0.2.7])" \
	    $'\tby mx.example (smtpd '"$VERSION) with ESMTP id $id" \
	    $'\tfor <jones>;' $'\tDATE' "Subject: x" "" ".dot" "..two dots" \
	    "From me" "last" >"$BATS_TEST_TMPDIR/want"
	sed -E 's/^\t[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$/\tDATE/' \
	    "$RECORD/in" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	run ! grep -c $'\r' "$RECORD/in"		# LF line ends only
	# just what the mailbox holds after its From_ line (mbox quoting
	# aside), and the mailbox's last empty line
	tail -n +2 "$SPOOL/jones" | head -n -1 | sed 's/^>From /From /' \
	    >"$BATS_TEST_TMPDIR/stored"
	diff -u "$BATS_TEST_TMPDIR/stored" "$RECORD/in"
}

@test "-X: the filter's environment is exactly PATH and the envelope, SMTP_ID the id of the reply and of the log" {
	record_filter
	export TCPREMOTEIP=192.0.2.7
	run -0 smtp "EHLO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" "RCPT TO:<green>" "RCPT TO:<Brown>" DATA \
	    "Subject: x" "" "hi" . QUIT
	id=$(delivered_id)
	[ -n "$id" ]
	printf '%s\n' "PATH=$PATH" "SMTP_HELO=client.example" "SMTP_ID=$id" \
	    'SMTP_RECIPIENTS=jones\nBrown' "SMTP_SENDER=smith@client.example" \
	    "SMTP_TLS=" "TCPREMOTEIP=192.0.2.7" | LC_ALL=C sort \
	    >"$BATS_TEST_TMPDIR/want"
	LC_ALL=C sort "$RECORD/env" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	grep -qE "^smtpd\[[0-9]+\]: id=$id client=192\.0\.2\.7 from=<smith@client\.example> to=<jones>,<Brown> size=[0-9]+ delivered$" "$LOG"
	no_temp_files
}

@test "-X: for <> and a client with no address, SMTP_SENDER is empty and there is no TCPREMOTEIP" {
	record_filter
	run -0 smtp "HELO relay.example" "MAIL FROM:<>" "RCPT TO:<smith>" DATA \
	    "Subject: bounce" "" "hi" . QUIT
	id=$(delivered_id)
	[ -n "$id" ]
	printf '%s\n' "PATH=$PATH" "SMTP_HELO=relay.example" "SMTP_ID=$id" \
	    "SMTP_RECIPIENTS=smith" "SMTP_SENDER=" "SMTP_TLS=" | LC_ALL=C sort \
	    >"$BATS_TEST_TMPDIR/want"
	LC_ALL=C sort "$RECORD/env" >"$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	[ "$(head -n 1 "$RECORD/in")" = "Return-Path: <>" ]
}

@test "-X runs the filter as -U's account, nobody, when smtpd is root; as the invoking user otherwise" {
	want=$(id -u)
	if [ "$want" = 0 ]; then
		want=$(id -u nobody 2>/dev/null) || skip "no account nobody"
	fi
	filter uid <<-EOF
	id -u >"$RECORD/uid"
	cat >/dev/null
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/uid")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(cat "$RECORD/uid")" = "$want" ]
	[ "$(count_messages jones)" = 1 ]
}

# --- verdicts ----------------------------------------------------------

@test "-X: exit 0 delivers, the header fields it printed just below Received:, in every mailbox" {
	filter fields <<-'EOF'
	cat >/dev/null
	printf 'X-Checked: yes\r\nX-Score: 1.5\n\t(folded)\n'
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/fields")
	run -0 smtp "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" "RCPT TO:<brown>" DATA "Subject: x" "" "hi" . QUIT
	[[ "$(data_reply)" == "$DELIVERED"* ]]
	for box in jones brown; do
		[ "$(count_messages "$box")" = 1 ]
		[ "$(sed -n 2p "$SPOOL/$box")" = "Return-Path: <smith@client.example>" ]
		[[ "$(sed -n 3p "$SPOOL/$box")" == "Received: from client.example "* ]]
		run -0 stored "$SPOOL/$box"
		[ "$output" = $'X-Checked: yes\nX-Score: 1.5\n\t(folded)\nSubject: x\n\nhi' ]
	done
	no_temp_files
}

@test "-X: 8 KiB of header fields are added; 8 KiB and one byte are a 451" {
	# 128 lines of 64 bytes, LF included
	for i in $(seq -w 1 128); do
		printf 'X-Pad-%s: %s\n' "$i" "$(printf '%052d' 0)"
	done >"$BATS_TEST_TMPDIR/8k"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/8k")" = 8192 ]
	filter pad <<-EOF
	cat >/dev/null
	cat "$BATS_TEST_TMPDIR/8k"
	EOF
	OPTS+=(-t 2 -X "$BATS_TEST_TMPDIR/pad")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[[ "$(data_reply)" == "$DELIVERED"* ]]
	run -0 stored "$SPOOL/jones"
	[ "$(printf '%s\n' "${lines[@]:0:128}")" = "$(cat "$BATS_TEST_TMPDIR/8k")" ]
	[ "${lines[128]}" = "Subject: test" ]
	rm "$SPOOL/jones"
	# the last field one byte longer
	sed -i '$s/$/0/' "$BATS_TEST_TMPDIR/8k"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/8k")" = 8193 ]
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(data_reply)" = "$UNAVAILABLE" ]
	[ ! -e "$SPOOL/jones" ]
	grep -q " failed: 451 filter: printed more than 8 KiB$" "$LOG"
}

@test "-X: exit 100 refuses with 554 5.7.1 and its first line (controls made ?), nothing delivered, logged, the session goes on" {
	filter refuse <<-'EOF'
	cat >/dev/null
	printf 'Spam detected\tscore 99 \001\nsecond line\n'
	exit 100
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/refuse")
	export TCPREMOTEIP=192.0.2.7
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(data_reply)" = "554 5.7.1 Spam detected?score 99 ?" ]
	went_on
	[[ "$output" != *"$DELIVERED"* ]]
	[ -z "$(spool_ls "$SPOOL")" ]
	grep -qE '^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ client=192\.0\.2\.7 from=<smith@client\.example> to=<jones> size=[0-9]+ refused: 554 by the filter: Spam detected\?score 99 \?$' "$LOG"
	no_temp_files
}

@test "-X: exit 100 having printed nothing: 554 5.7.1 Message refused by the content filter" {
	filter quiet <<-'EOF'
	cat >/dev/null
	exit 100
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/quiet")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[ "$(data_reply)" = "554 5.7.1 Message refused by the content filter" ]
	went_on
	[ -z "$(spool_ls "$SPOOL")" ]
}

# --- failures: 451, nothing delivered, nothing left ---------------------

# temp_failure FILTER MESSAGE WHY: the session with filter FILTER (from
# `filter') and -t 2 answers the message 451 4.7.1, delivers nothing,
# goes on, logs `failed: 451 filter: WHY', and leaves no temporary file.
temp_failure() {
	local OPTS=("${OPTS[@]}" -t 2 -X "$BATS_TEST_TMPDIR/$1")
	run -0 smtp_raw < <(mail_jones "$2")
	[ "$(data_reply)" = "$UNAVAILABLE" ]
	went_on
	[ -z "$(spool_ls "$SPOOL")" ]
	grep -qE "^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ client=[^ ]+ from=<smith@client\.example> to=<jones> size=[0-9]+ failed: 451 filter: $3\$" "$LOG"
	no_temp_files
}

@test "-X: a filter that exits 111 is a 451, and its child is killed" {
	filter fail <<-EOF
	$CHILD
	cat >/dev/null
	exit 111
	EOF
	temp_failure fail "$(message)" "exited 111"
	children_gone
}

@test "-X: a filter that exits 1 or 2 is a 451 too (only 0 and 100 are verdicts)" {
	for n in 1 2 99 101; do
		filter "fail$n" <<-EOF
		cat >/dev/null
		echo "X-Status: $n"
		exit $n
		EOF
		temp_failure "fail$n" "$(message)" "exited $n"
	done
}

@test "-X: a filter killed by a signal is a 451, and its child is killed" {
	filter crash <<-EOF
	$CHILD
	cat >/dev/null
	kill -SEGV \$\$
	EOF
	temp_failure crash "$(message)" "killed by signal 11"
	children_gone
}

@test "-X: a filter that exits 0 without reading a small message is a 451" {
	filter deaf <<-EOF
	$CHILD
	exit 0
	EOF
	temp_failure deaf "$(message)" "did not read the message"
	children_gone
}

@test "-X: a filter that reads only the first line and exits 0 is a 451" {
	# the shell's read takes one byte at a time: the rest stays unread
	filter first <<-'EOF'
	read -r line
	exit 0
	EOF
	temp_failure first "$(message)" "did not read the message"
}

# bats test_tags=slow
@test "-X: a message larger than a pipe, a filter that never reads: a 451 at once, not at the time limit" {
	filter deaf <<-'EOF'
	exit 0
	EOF
	start=$(now_ms)
	temp_failure deaf "$(big_message)" "did not read the message"
	elapsed=$(($(now_ms) - start))
	echo "elapsed: $elapsed ms"
	[ "$elapsed" -lt 1800 ]		# -t is 2 s
	# and one that sleeps first, without reading, then exits 0
	filter sleepy <<-'EOF'
	sleep 0.3
	exit 0
	EOF
	temp_failure sleepy "$(big_message)" "did not read the message"
}

# bats test_tags=slow
@test "-X: a filter that sleeps past -t 2 is killed with what it started: 451 after about 2 s" {
	filter slow <<-EOF
	$CHILD
	cat >/dev/null
	exec sleep 300
	EOF
	start=$(now_ms)
	temp_failure slow "$(message)" "took too long: killed"
	elapsed=$(($(now_ms) - start))
	echo "elapsed: $elapsed ms"
	[ "$elapsed" -ge 1900 ] && [ "$elapsed" -lt 6000 ]
	children_gone
}

# bats test_tags=slow
@test "-X: a filter that sleeps past -t 2 without reading a big message: 451, nothing left" {
	filter stuck <<-EOF
	$CHILD
	exec sleep 300
	EOF
	temp_failure stuck "$(big_message)" "took too long: killed"
	children_gone
}

@test "-X: a filter that prints 1 MB is a 451, and its child is killed" {
	filter flood <<-EOF
	$CHILD
	head -c 1048576 /dev/zero | tr '\0' x
	cat >/dev/null
	EOF
	temp_failure flood "$(message)" "printed more than 8 KiB"
	children_gone
}

@test "-X: exit 0 with output that is not header fields is a 451" {
	filter prose <<-'EOF'
	cat >/dev/null
	echo "this message looks fine to me"
	EOF
	temp_failure prose "$(message)" "printed a line that is not a header field"
	filter late <<-'EOF'
	cat >/dev/null
	printf 'X-Good: yes\nno colon here\n'
	EOF
	temp_failure late "$(message)" "printed a line that is not a header field"
	filter blank <<-'EOF'
	cat >/dev/null
	printf 'X-Good: yes\n\nBody: text\n'
	EOF
	temp_failure blank "$(message)" "printed a line that is not a header field"
}

@test "-X: a filter that leaves a child behind after delivering leaves no process" {
	filter parent <<-EOF
	$CHILD
	cat >/dev/null
	exit 0
	EOF
	OPTS+=(-X "$BATS_TEST_TMPDIR/parent")
	run -0 smtp_raw < <(mail_jones "$(message)")
	[[ "$(data_reply)" == "$DELIVERED"* ]]
	went_on
	[ "$(count_messages jones)" = 1 ]
	children_gone
	no_temp_files
}

# --- SpamAssassin through examples/filters -----------------------------

# The example verbatim, with a minute for SpamAssassin to judge.
have_spamassassin() {
	command -v spamassassin >/dev/null ||
	    skip "spamassassin not installed (apt-get install spamassassin)"
	[ -x "$EXAMPLES/filters/spamassassin" ] ||
	    skip "examples/filters/spamassassin not there yet"
	OPTS+=(-t 60 -X "$EXAMPLES/filters/spamassassin")
	SMTP_WAIT=100
}

# The spamc way to spamd on 127.0.0.1:$1: examples/filters/spamc, or
# where that is not there, the spamassassin filter's own spamc way.
have_spamc() {
	local how
	command -v spamc >/dev/null || skip "spamc not installed (apt-get install spamc)"
	if [ -x "$EXAMPLES/filters/spamc" ]; then
		how="$EXAMPLES/filters/spamc"
	elif [ -x "$EXAMPLES/filters/spamassassin" ]; then
		how="$EXAMPLES/filters/spamassassin spamc"
	else
		skip "examples/filters/spamc not there yet"
	fi
	OPTS+=(-t 60 -X "$how -d 127.0.0.1 -p $1")
	SMTP_WAIT=100
}

# A message carrying GTUBE, which SpamAssassin always takes for spam.
gtube_message() {
	printf '%s\r\n' "From: <spammer@client.example>" "Subject: test" "" \
	    "$GTUBE" .
}

# The SpamAssassin verdicts: GTUBE refused with 554 before any 250 and
# in no mailbox; an ordinary message delivered with X-Spam-Status: as
# the first field below Received:.
spamassassin_verdicts() {
	run -0 smtp_raw < <(mail_jones "$(gtube_message)")
	[[ "$(data_reply)" =~ ^"554 5.7.1 Message refused as spam (SpamAssassin score "[0-9.]+")"$ ]]
	went_on
	[[ "$output" != *"250 2.0.0 "* ]]	# no Delivered, no OK
	[ -z "$(spool_ls "$SPOOL")" ]
	grep -qE '^smtpd\[[0-9]+\]: id=[0-9A-Z-]+ .* refused: 554 by the filter: Message refused as spam' "$LOG"
	run -0 smtp_raw < <(mail_jones "$(ordinary)")
	[[ "$(data_reply)" == "$DELIVERED"* ]]
	[ "$(count_messages jones)" = 1 ]
	run -0 stored "$SPOOL/jones"
	[[ "${lines[0]}" =~ ^"X-Spam-Status: No, score=" ]]
	grep -qx 'Joe, shall we have lunch tomorrow at noon?' "$SPOOL/jones"
	run ! grep -q "$GTUBE" "$SPOOL/jones"
	no_temp_files
}

# bats test_tags=tools,slow
@test "examples/filters/spamassassin: GTUBE refused 554 before any 250 and in no mailbox; an ordinary message delivered with X-Spam-Status" {
	have_spamassassin
	spamassassin_verdicts
}

# bats test_tags=tools,slow
@test "examples/filters/spamc, with a spamd of the test's own: the same verdicts" {
	command -v spamc >/dev/null || skip "spamc not installed (apt-get install spamc)"
	spamd=$(PATH="$PATH:/usr/sbin:/sbin" command -v spamd) ||
	    skip "spamd not installed (apt-get install spamd)"
	port=$(free_port)
	have_spamc "$port"
	user=()
	[ "$(id -u)" != 0 ] || user=(--username nobody)
	timeout 300 "$spamd" --listen "127.0.0.1:$port" --allowed-ips 127.0.0.1 \
	    --local --max-children 1 --syslog stderr --nouser-config \
	    "${user[@]}" </dev/null >/dev/null 2>"$BATS_TEST_TMPDIR/spamd.log" 3>&- &
	spamd_pid=$!
	started "$spamd_pid"
	up=
	for _ in $(seq 12); do	# a minute at most: spamd starts slowly
		wait_listening "$spamd_pid" "$port" && { up=1; break; }
		running "$spamd_pid" || break
	done
	[ -n "$up" ] || { cat "$BATS_TEST_TMPDIR/spamd.log"; false; }
	spamassassin_verdicts
}

# bats test_tags=tools,slow
@test "examples/filters/spamc, with spamd down: a 451, never a message let through unjudged" {
	port=$(free_port)	# free: no spamd there
	have_spamc "$port"
	run -0 smtp_raw < <(mail_jones "$(ordinary)")
	[ "$(data_reply)" = "$UNAVAILABLE" ]
	went_on
	[ -z "$(spool_ls "$SPOOL")" ]
}

# --- early talkers -----------------------------------------------------

# A python3 client of 127.0.0.1:$PORT.  `early': sends EHLO as soon as
# it is connected.  `patient': waits for the greeting, then EHLO, waits
# for its reply, then QUIT.  `http LINE': after the greeting, sends
# LINE, a Host: line and an EHLO in one go.  Then reads until the
# server closes.  Prints the replies, CR taken off, then `# greeting N'
# (ms from connect to the first reply) and `# closed N' (ms from its
# last send to the server's close); exit 3 if the server kept it
# waiting 10 s.
timed_client() {
	timeout 30 python3 - "$PORT" "$@" <<-'PY'
	import socket, sys, time
	port, how = int(sys.argv[1]), sys.argv[2]
	s = socket.create_connection(("127.0.0.1", port), timeout=10)
	f = s.makefile("rb")
	t0 = time.monotonic()
	out = []
	greeting = None
	def ms(t):
	    return int((time.monotonic() - t) * 1000)
	def reply():
	    global greeting
	    while True:
	        line = f.readline()
	        if greeting is None:
	            greeting = ms(t0)
	        if not line:
	            return None
	        out.append(line.decode().rstrip("\r\n"))
	        if line[3:4] != b"-":
	            return line
	try:
	    if how == "early":
	        s.sendall(b"EHLO client.example\r\n")
	    elif how == "patient":
	        reply()
	        s.sendall(b"EHLO client.example\r\n")
	        reply()
	        s.sendall(b"QUIT\r\n")
	    else:
	        reply()
	        s.sendall(sys.argv[3].encode() + b"\r\nHost: mx.example\r\n"
	                  b"EHLO client.example\r\n")
	    sent = time.monotonic()
	    while True:
	        try:
	            if reply() is None:
	                break
	        except ConnectionResetError:
	            out.append("# reset")
	            break
	    closed = ms(sent)
	except socket.timeout:
	    print("\n".join(out + ["# timeout"]))
	    sys.exit(3)
	print("\n".join(out + ["# greeting %d" % greeting, "# closed %d" % closed]))
	PY
}

# The replies of the last `run' of timed_client, without its `#' lines.
timed_client_replies() {
	printf '%s\n' "${lines[@]}" | grep -v '^# '
}

# What the last `run' of timed_client timed: greeting or closed, in ms.
timed() {
	printf '%s\n' "${lines[@]}" | sed -n "s/^# $1 //p"
}

# With -g 1 (the server started already): an early talker gets the 554
# alone and then the end, logged; a patient client is greeted after a
# second and served.
early_and_patient() {
	run -0 timed_client early
	[ "$(timed_client_replies)" = "554 5.5.1 mx.example talked before the greeting" ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end .*\(talked before the greeting\)$'
	run -0 grep -cE '^smtpd\[[0-9]+\]: refused client=127\.0\.0\.1: talked before the greeting$' "$LOG"
	[ "$output" = 1 ]
	run -0 timed_client patient
	run -0 timed_client_replies
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd $VERSION" ]
	[ "${lines[1]}" = "250-mx.example" ]
	[[ "${lines[-2]}" == "250 "* ]]
	[ "${lines[-1]}" = "221 2.0.0 mx.example closing connection" ]
	run -0 timed_client patient
	[ "$(timed greeting)" -ge 950 ]		# -g 1: a second's wait first
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: end .*\(QUIT\)$'
	run -0 grep -c 'talked before the greeting$' "$LOG"
	[ "$output" = 1 ]			# the patient ones were not
}

# bats test_tags=slow
@test "-g 1 under tcpserver: an early talker gets 554 and the end, logged; a patient client is served" {
	start_tcpserver -g 1
	early_and_patient
}

# bats test_tags=slow
@test "-g 1 under systemd-socket-activate: an early talker gets 554 and the end, logged; a patient client is served" {
	start_socket_activate -g 1
	early_and_patient
}

@test "-g 0 (the default) under tcpserver: a patient client is served" {
	start_tcpserver
	run -0 timed_client patient
	run -0 timed_client_replies
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd $VERSION" ]
	[ "${lines[-1]}" = "221 2.0.0 mx.example closing connection" ]
}

@test "-g: pipes are never looked at: commands written before the greeting are served" {
	OPTS+=(-g 1)
	run -0 smtp "HELO client.example" "MAIL FROM:<smith@client.example>" \
	    "RCPT TO:<jones>" DATA "Subject: x" "" "hi" . QUIT
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "$(count_messages jones)" = 1 ]
	run ! grep 'talked before the greeting' "$LOG"
}

# smtpd -C with the test's table and the arguments: its status, and
# its standard error with the pids taken off, in $BATS_TEST_TMPDIR/$1.
check_with() {
	local name=$1 rc=0
	shift
	"$SMTPD" -C -n mx.example -a "$TABLE" -m "$SPOOL" "$@" </dev/null \
	    2>"$BATS_TEST_TMPDIR/$name.err" || rc=$?
	sed -i 's/^smtpd\[[0-9]*\]: //' "$BATS_TEST_TMPDIR/$name.err"
	echo "$rc" >"$BATS_TEST_TMPDIR/$name.rc"
}

@test "-g takes 0 to 300 seconds" {
	echo 'postmaster: smith' >>"$TABLE"
	# -C's verdict without -g (not clean when not run as root)
	check_with base
	for g in 0 1 300; do
		check_with good -g "$g"
		diff "$BATS_TEST_TMPDIR/base.rc" "$BATS_TEST_TMPDIR/good.rc"
		diff "$BATS_TEST_TMPDIR/base.err" "$BATS_TEST_TMPDIR/good.err"
	done
	for g in 301 -1 x 1.5 ""; do
		check_with bad -g "$g"
		[ "$(cat "$BATS_TEST_TMPDIR/bad.rc")" = 1 ]
		! diff "$BATS_TEST_TMPDIR/base.err" "$BATS_TEST_TMPDIR/bad.err" \
		    >/dev/null || { echo "-g '$g' was taken" >&2; false; }
	done
}

# --- HTTP clients ------------------------------------------------------

@test "an HTTP request line is answered 421 at once, logged, and nothing after it is answered" {
	export TCPREMOTEIP=192.0.2.9
	for line in "GET / HTTP/1.1" "CONNECT mx.example:443 HTTP/1.1" \
	    "POST /cgi-bin/form HTTP/1.0" "HEAD / HTTP/1.1"; do
		run -0 smtp "$line" "Host: mx.example" "EHLO client.example" \
		    "MAIL FROM:<smith@client.example>" QUIT
		[ "${#lines[@]}" = 2 ]
		[ "${lines[0]}" = "220 mx.example ESMTP smtpd $VERSION" ]
		[ "${lines[1]}" = "421 4.7.0 mx.example not an SMTP client" ]
		run -0 grep -c 'refused client=' "$LOG"
		[ "$output" = 1 ]
		grep -qxF "smtpd[$(sed -n 's/^smtpd\[\([0-9]*\)\]: start .*/\1/p' "$LOG")]: refused client=192.0.2.9: not an SMTP client: $line" "$LOG"
	done
	# HTTP's verbs are upper case: "get" is an unknown command
	run -0 smtp "get / HTTP/1.1" QUIT
	[ "${lines[1]}" = "500 5.5.2 Command unrecognized" ]
}

@test "an HTTP request under tcpserver: 421 as the first reply after the greeting, then the connection closes" {
	start_tcpserver
	run -0 timed_client http "GET / HTTP/1.1"
	[ "$(timed_client_replies)" = $'220 mx.example ESMTP smtpd '"$VERSION"$'\n421 4.7.0 mx.example not an SMTP client' ]
	[ "$(timed closed)" -lt 3000 ]
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: refused client=127\.0\.0\.1: not an SMTP client: GET / HTTP/1\.1$'
}

@test "curl http:// against smtpd under tcpserver: no HTTP response, the connection closed within seconds" {
	command -v curl >/dev/null || skip "curl not installed"
	start_tcpserver
	start=$(now_ms)
	run timeout 20 curl -s -m 15 "http://127.0.0.1:$PORT/"
	elapsed=$(($(now_ms) - start))
	echo "curl: status $status after $elapsed ms"
	[ "$status" != 0 ]
	[ "$status" != 124 ] && [ "$status" != 28 ]	# not a time-out
	[ "$elapsed" -lt 5000 ]
	[[ "$output" != *"HTTP/"* ]]
	# -g 0 may or may not have caught curl talking first
	wait_for_line "$LOG" '^smtpd\[[0-9]+\]: refused client=127\.0\.0\.1: (not an SMTP client: GET / HTTP/1\.1|talked before the greeting)$'
}

# --- the log, read by fail2ban -----------------------------------------

# One session through a pipe from client address $1 (TCPREMOTEIP),
# the other arguments its command lines; its log added to $ALL.
session_from() {
	local ip=$1
	shift
	TCPREMOTEIP=$ip smtp "$@" >"$BATS_TEST_TMPDIR/session.out" || true
	cat "$LOG" >>"$ALL"
}

# bats test_tags=slow
@test "fail2ban-regex with examples/fail2ban finds each refused client, and no line of a good session or a 451" {
	command -v fail2ban-regex >/dev/null ||
	    skip "fail2ban-regex not installed (apt-get install fail2ban)"
	[ -f "$EXAMPLES/fail2ban/filter.d/smtpd.conf" ] ||
	    skip "examples/fail2ban/filter.d/smtpd.conf not there yet"
	# the filter includes common.conf, as /etc/fail2ban/filter.d has it
	f2b=${F2B_CONFIG:-/etc/fail2ban}
	[ -f "$f2b/filter.d/common.conf" ] ||
	    skip "no $f2b/filter.d/common.conf (set F2B_CONFIG to fail2ban's configuration directory)"
	ALL="$BATS_TEST_TMPDIR/all.log"
	: >"$ALL"
	mail=("MAIL FROM:<a@client.example>" "RCPT TO:<jones>" DATA
	    "Subject: x" "" "x" .)
	# one refusal from each of 192.0.2.1 to 192.0.2.8
	session_from 192.0.2.1 "HELO c" "MAIL FROM:<a@client.example>" \
	    "RCPT TO:<x@elsewhere.example>" QUIT
	grep -q 'relaying denied to=<x@elsewhere.example>$' "$LOG"
	session_from 192.0.2.2 "HELO c" "MAIL FROM:<a@client.example>" \
	    "RCPT TO:<green>" QUIT
	grep -q 'user unknown to=<green>$' "$LOG"
	errors=()
	for i in $(seq 25); do errors+=("BOGUS $i"); done
	session_from 192.0.2.3 "${errors[@]}"
	grep -q 'too many errors$' "$LOG"
	junk=()
	for i in $(seq 110); do junk+=(NOOP); done
	session_from 192.0.2.4 "${junk[@]}"
	grep -q 'too many commands without mail$' "$LOG"
	# the early talker: a socket (a socketpair) as smtpd's stdin and stdout
	TCPREMOTEIP=192.0.2.5 timeout 20 python3 - "$SMTPD" "${OPTS[@]}" -g 1 \
	    2>>"$ALL" <<-'PY'
	import socket, subprocess, sys
	ours, its = socket.socketpair()
	ours.sendall(b"EHLO client.example\r\n")
	p = subprocess.Popen(sys.argv[1:], stdin=its, stdout=its)
	its.close()
	ours.settimeout(10)
	got = b""
	while True:
	    k = ours.recv(4096)
	    if not k:
	        break
	    got += k
	p.wait(10)
	assert got == b"554 5.5.1 mx.example talked before the greeting\r\n", got
	PY
	grep -q 'refused client=192.0.2.5: talked before the greeting$' "$ALL"
	session_from 192.0.2.6 "GET / HTTP/1.1"
	grep -q 'not an SMTP client: GET / HTTP/1.1$' "$LOG"
	filter refuse <<-'EOF'
	cat >/dev/null; echo "Looks like spam to me"; exit 100
	EOF
	filter broken <<-'EOF'
	cat >/dev/null; exit 111
	EOF
	filter accept <<-'EOF'
	cat >/dev/null; echo "X-Filtered: yes"
	EOF
	saved=("${OPTS[@]}")
	OPTS=("${saved[@]}" -X "$BATS_TEST_TMPDIR/refuse")
	session_from 192.0.2.7 "HELO c" "${mail[@]}" QUIT
	grep -q 'refused: 554 by the filter: Looks like spam to me$' "$LOG"
	# a TLS handshake that fails: the wrapper's descriptors faked, its
	# control descriptor giving nothing
	: >"$BATS_TEST_TMPDIR/ctl"
	OPTS=("${saved[@]}")
	SSLCTLFD=5 SSLREADFD=6 SSLWRITEFD=7 session_from 192.0.2.8 \
	    "EHLO c" STARTTLS QUIT 5<>"$BATS_TEST_TMPDIR/ctl" 6</dev/null \
	    7>/dev/null
	grep -q 'TLS handshake failed client=192.0.2.8$' "$LOG"
	# and what must not match: a filter's 451, good sessions
	OPTS=("${saved[@]}" -X "$BATS_TEST_TMPDIR/broken")
	session_from 198.51.100.2 "HELO c" "${mail[@]}" QUIT
	grep -q ' failed: 451 filter: exited 111$' "$LOG"
	OPTS=("${saved[@]}")
	session_from 198.51.100.1 "EHLO c" "VRFY jones" "HELP" "${mail[@]}" \
	    "MAIL FROM:<>" "RCPT TO:<smith>" DATA "Subject: y" "" "y" . QUIT
	OPTS=("${saved[@]}" -X "$BATS_TEST_TMPDIR/accept")
	session_from 198.51.100.1 "EHLO c" "${mail[@]}" QUIT
	run -0 grep -c ' client=198\.51\.100\.1 .* delivered$' "$ALL"
	[ "$output" = 3 ]
	# as syslog writes them into /var/log/mail.log; the filter beside
	# the common.conf it includes
	sed 's/^/Dec  3 10:00:00 mx /' "$ALL" >"$BATS_TEST_TMPDIR/mail.log"
	mkdir "$BATS_TEST_TMPDIR/filter.d"
	cp "$f2b/filter.d/common.conf" "$EXAMPLES/fail2ban/filter.d/smtpd.conf" \
	    "$BATS_TEST_TMPDIR/filter.d/"
	run -0 timeout 120 fail2ban-regex -o '<ip>' \
	    "$BATS_TEST_TMPDIR/mail.log" "$BATS_TEST_TMPDIR/filter.d/smtpd.conf"
	# each refusal matched once, with its address; nothing else
	[ "$(printf '%s\n' "${lines[@]}" | tr '\n' ' ')" = \
	    "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6 192.0.2.7 192.0.2.8 " ]
	# the lines matched, as fail2ban-regex tells them
	run -0 timeout 120 fail2ban-regex --print-all-matched --print-no-missed \
	    "$BATS_TEST_TMPDIR/mail.log" "$BATS_TEST_TMPDIR/filter.d/smtpd.conf"
	[[ "$output" == *"Lines: $(wc -l <"$ALL") lines, 0 ignored, 8 matched"* ]]
	sed -n '/^|- Matched line(s):$/,/^`-$/s/^|  //p' <<<"$output" \
	    >"$BATS_TEST_TMPDIR/matched"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/matched")" = 8 ]
	run ! grep -E '198\.51\.100\.| 451 |delivered$' "$BATS_TEST_TMPDIR/matched"
}
