#!/usr/bin/env bats
# smtpd.8, THE TABLE and FORWARDING AND RELAYING: the alias/user table, VRFY
# and EXPN through it, lists and forwarding, relay control, and `smtpd -C'.
# Every test drives the real smtpd through a pipe; a forwarding program (-F)
# is a small shell script written into the test's own directory, which
# records what smtpd gave it.
load helpers

# common_setup, then the table of this file: RFC 821's users, an alias,
# a remote forward and two lists.
setup() {
	common_setup
	unset RELAYCLIENT
	cat >"$TABLE" <<'EOF'
# RFC 821's users (section 3.3 and appendix E)
postmaster:	smith
smith:	Fred Smith <smith>
jones:	Joe Jones <jones>
brown:	Bob Brown <brown>
sqsmith:	"Q. Smith" <sqsmith>
postel:	Jon Postel <postel>

# an alias of one local user, and a remote forward
fsmith:	smith
jq:	jones@usc-isiq.arpa

# lists; `all' is written over two lines and holds `staff'
staff:	smith, jones
all:	staff, Bob Brown <brown>,
	postel
EOF
	FWD="$BATS_TEST_TMPDIR/forward"
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
}

# Lines to add to the table.
add_table() {
	printf '%s\n' "$@" >>"$TABLE"
}

# A whole transaction: HELO, MAIL FROM:<$1>, RCPT TO:<...> for each other
# argument, DATA with a short message, QUIT.
# Replies: lines[0] greeting, [1] HELO, [2] MAIL, then one a RCPT; the
# reply to the message is data_reply.
send_mail() {
	local from=$1 r
	local cmds=("HELO client.example" "MAIL FROM:<$from>")
	shift
	for r; do
		cmds+=("RCPT TO:<$r>")
	done
	smtp "${cmds[@]}" DATA "Subject: test" "" "Hello." . QUIT
}

# A delivery's reply to the data, as a regular expression.
DELIVERED_RE='^250 2\.0\.0 Delivered, id [0-9A-Z-]+$'
RELAY_DENIED="550 5.7.1 relaying denied"
NOWHERE="this alias leads to no mailbox"

# The replies between the greeting and QUIT's 221, one a line.
middle() {
	printf '%s\n' "${lines[@]:1:${#lines[@]}-2}"
}

# A forwarding program for -F, at $FWD: it counts its runs in fwd.runs,
# writes its arguments one a line to fwd.args and its input to
# fwd.input, then exits with $1 (0 by default), or kills itself with
# SIGKILL when $1 is "kill".
make_forwarder() {
	local end="exit ${1:-0}"
	[ "${1:-}" != kill ] || end='kill -9 $$'
	cat >"$FWD" <<EOF
#!/bin/sh
echo run >>"$BATS_TEST_TMPDIR/fwd.runs"
printf '%s\n' "\$@" >"$BATS_TEST_TMPDIR/fwd.args"
cat >"$BATS_TEST_TMPDIR/fwd.input"
$end
EOF
	chmod +x "$FWD"
}

# The arguments the forwarding program was last given, one a line.
fwd_args() {
	cat "$BATS_TEST_TMPDIR/fwd.args"
}

# How many times the forwarding program ran.
fwd_runs() {
	if [ -e "$BATS_TEST_TMPDIR/fwd.runs" ]; then
		wc -l <"$BATS_TEST_TMPDIR/fwd.runs"
	else
		echo 0
	fi
}

# The Received: header (with its folded lines) at the start of file $1.
received_of() {
	awk '/^Received:/ { r = 1; print; next }
	r && /^[ \t]/ { print; next }
	r { exit }' "$1"
}

# What follows the Received: header in the forwarded input.
fwd_message() {
	awk 'NR == 1 { next } !body && /^[ \t]/ { next }
	{ body = 1; print }' "$BATS_TEST_TMPDIR/fwd.input"
}

# The message as mailbox $1 holds it, without the blank line that ends
# it in the mbox.
stored_message() {
	stored "$1" | sed '$d'
}

# smtpd -C with the options of OPTS and "$@"; stdin has commands that it
# must not answer.  Standard output must stay empty whatever it finds.
check() {
	run --separate-stderr timeout 20 "$SMTPD" -C "${OPTS[@]}" "$@" \
	    < <(printf '%s\r\n' "HELO client.example" QUIT)
	[ "$status" -ne 124 ]
	[ "$output" = "" ]
}

# The lines -C wrote on stderr, the table's path shown as TABLE, sorted.
reported() {
	reported_in_order | sort
}

# The same lines in the order -C wrote them.
reported_in_order() {
	local l
	for l in "${stderr_lines[@]}"; do
		printf '%s\n' "${l/#"$TABLE:"/TABLE:}"
	done
}

# Each argument is one line -C must have written, nothing else.
expect_reported() {
	diff -u <(printf '%s\n' "$@" | sort) <(reported)
}

# The same, in the order given: that of the table's lines.
expect_reported_in_order() {
	diff -u <(printf '%s\n' "$@") <(reported_in_order)
}

MALFORMED="malformed line: no \`name:' (or a name longer than 64 bytes)"
NOT_DELIVERED="pipes, files and :include: are not delivered by smtpd"

# --- VRFY: RFC 821's examples ---------------------------------------------

@test "RFC 821: VRFY Smith is 250 Fred Smith <smith@domain>" {
	OPTS+=(-d USC-ISIF.ARPA)
	run -0 smtp "VRFY Smith" "VRFY <SMITH@usc-isif.arpa>" QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@USC-ISIF.ARPA>" ]
	[ "${lines[2]}" = "250 2.1.5 Fred Smith <smith@USC-ISIF.ARPA>" ]
	[ "$(codes)" = "220 250 250 221" ]
}

@test "RFC 821: VRFY Smith is a multi-line 553 when two full names hold Smith" {
	cat >"$TABLE" <<'EOF'
fred:	Fred Smith <fred>
sqsmith:	"Q. Smith" <sqsmith>
jones:	Joe Jones <jones>
EOF
	run -0 smtp "VRFY Smith" QUIT
	[ "$(codes)" = "220 553 553 553 553 221" ]
	diff -u <(printf '%s\n' \
	    "553-5.1.4 User ambiguous; possibilities are" \
	    "553-5.1.4 Fred Smith <fred@mx.example>" \
	    "553-5.1.4 Q. Smith <sqsmith@mx.example>" \
	    "553 5.1.4 User ambiguous") <(middle)
}

@test "RFC 821: VRFY of a remote forward is 251 with -F" {
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 smtp "VRFY jq" "VRFY JQ@mx.example" QUIT
	[ "${lines[1]}" = \
	    "251 2.1.5 User not local; will forward to <jones@usc-isiq.arpa>" ]
	[ "${lines[2]}" = "${lines[1]}" ]
}

@test "RFC 821: VRFY of a remote forward is 551 please try, without -F" {
	run -0 smtp "VRFY jq" QUIT
	[ "${lines[1]}" = \
	    "551 5.1.6 User not local; please try <jones@usc-isiq.arpa>" ]
}

@test "RFC 821: VRFY of a string matching nothing is 550" {
	run -0 smtp "VRFY Gourzenkyinplatz" "VRFY nobody@mx.example" \
	    "VRFY smith@elsewhere.example" QUIT
	[ "${lines[1]}" = "550 5.1.1 String does not match anything" ]
	[ "${lines[2]}" = "550 5.1.1 String does not match anything" ]
	[ "${lines[3]}" = "550 5.1.1 String does not match anything" ]
}

@test "VRFY with -V is 252 for any argument" {
	OPTS+=(-V)
	run -0 smtp "VRFY Smith" "VRFY jq" "VRFY nobody" QUIT
	[ "$(codes)" = "220 252 252 252 221" ]
	[ "${lines[1]}" = "252 2.5.2 Cannot VRFY user, but will accept \
message and attempt delivery" ]
	[ "${lines[3]}" = "${lines[1]}" ]
}

@test "VRFY of a quoted display name, an alias and a list" {
	run -0 smtp "VRFY sqsmith" "VRFY Q." "VRFY fsmith" "VRFY staff" QUIT
	[ "${lines[1]}" = "250 2.1.5 Q. Smith <sqsmith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Q. Smith <sqsmith@mx.example>" ]
	[ "${lines[3]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[4]}" = "250 2.1.5 <staff@mx.example>" ]
}

# --- EXPN -----------------------------------------------------------------

@test "RFC 821: EXPN Example-People lists full names and mailboxes" {
	OPTS+=(-d USC-ISIF.ARPA)
	cat >>"$TABLE" <<'EOF'
Example-People:	Jon Postel <Postel>,
	Fred Fonebone <Fonebone@USC-ISIQ.ARPA>,
	Sam Q. Smith <SQSmith@USC-ISIQ.ARPA>,
	Quincy Smith <@USC-ISIF.ARPA:Q-Smith@ISI-VAXA.ARPA>,
	<joe@foo-unix.ARPA>,
	<xyz@bar-unix.ARPA>
EOF
	run -0 smtp "EXPN Example-People" "EXPN example-people" QUIT
	expected=("250-2.1.5 Jon Postel <postel@USC-ISIF.ARPA>"
	    "250-2.1.5 Fred Fonebone <Fonebone@USC-ISIQ.ARPA>"
	    "250-2.1.5 Sam Q. Smith <SQSmith@USC-ISIQ.ARPA>"
	    "250-2.1.5 Quincy Smith <Q-Smith@ISI-VAXA.ARPA>"
	    "250-2.1.5 <joe@foo-unix.ARPA>"
	    "250 2.1.5 <xyz@bar-unix.ARPA>")
	diff -u <(printf '%s\n' "${expected[@]}" "${expected[@]}") <(middle)
}

@test "EXPN expands nested lists, one member a line, the last 250 SP" {
	run -0 smtp "EXPN all" QUIT
	[ "$(codes)" = "220 250 250 250 250 221" ]
	[ "${lines[1]:0:4}" = "250-" ]
	[ "${lines[2]:0:4}" = "250-" ]
	[ "${lines[3]:0:4}" = "250-" ]
	[ "${lines[4]:0:4}" = "250 " ]
	diff -u <(printf '%s\n' "Bob Brown <brown@mx.example>" \
	    "Fred Smith <smith@mx.example>" "Joe Jones <jones@mx.example>" \
	    "Jon Postel <postel@mx.example>") <(middle | cut -c11- | sort)
}

@test "EXPN lists a member of two nested lists once" {
	add_table "team: jones, brown" "both: staff, team, jones"
	run -0 smtp "EXPN both" QUIT
	[ "$(codes)" = "220 250 250 250 221" ]
	diff -u <(printf '%s\n' "Bob Brown <brown@mx.example>" \
	    "Fred Smith <smith@mx.example>" "Joe Jones <jones@mx.example>") \
	    <(middle | cut -c11- | sort)
}

@test "EXPN of a user, an unknown name and a remote address is 550" {
	run -0 smtp "EXPN smith" "EXPN nobody" "EXPN staff@elsewhere.example" \
	    QUIT
	[ "${lines[1]}" = "550 5.1.1 <smith> is not a mailing list" ]
	[ "${lines[2]}" = "550 5.1.1 <nobody> is not a mailing list" ]
	[ "${lines[3]}" = \
	    "550 5.1.1 <staff@elsewhere.example> is not a mailing list" ]
}

@test "EXPN <list> in angle brackets: 250, and a 550 names it once" {
	run -0 smtp "EXPN <staff>" "EXPN <smith@mx.example>" QUIT
	[ "${lines[1]}" = "250-2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Joe Jones <jones@mx.example>" ]
	[ "${lines[3]}" = "550 5.1.1 <smith@mx.example> is not a mailing list" ]
}

@test "EXPN with -E is 252, for lists and others alike" {
	OPTS+=(-E)
	run -0 smtp "EXPN all" "EXPN smith" "EXPN nobody" QUIT
	[ "$(codes)" = "220 252 252 252 221" ]
	[ "${lines[1]}" = "252 2.5.2 EXPN is disabled on this server" ]
	[ "${lines[3]}" = "${lines[1]}" ]
}

# --- lists through RCPT: nesting, loops, duplicates -------------------------

@test "a 5-deep nested list: RCPT is 250, each user gets exactly one copy" {
	add_table "l1: l2, smith" "l2: l3, jones" "l3: l4, brown" \
	    "l4: l5, smith, sqsmith" "l5: postel, Jones"
	run -0 send_mail a@example.org l1
	[ "${lines[3]}" = "250 2.1.5 Recipient <l1> OK" ]
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	for u in smith jones brown sqsmith postel; do
		[ "$(count_messages $u)" = 1 ]
	done
	[ "$(ls "$SPOOL" | sort | tr '\n' ' ')" = \
	    "brown jones postel smith sqsmith " ]
}

@test "a 5-deep nested list: EXPN l1 lists every user once" {
	add_table "l1: l2, smith" "l2: l3, jones" "l3: l4, brown" \
	    "l4: l5, smith, sqsmith" "l5: postel, Jones"
	run -0 smtp "EXPN l1" QUIT
	[ "$(codes)" = "220 250 250 250 250 250 221" ]
	[ "${lines[5]:0:4}" = "250 " ]
	diff -u <(printf '%s\n' "Bob Brown <brown@mx.example>" \
	    "Fred Smith <smith@mx.example>" "Joe Jones <jones@mx.example>" \
	    "Jon Postel <postel@mx.example>" \
	    "Q. Smith <sqsmith@mx.example>") <(middle | cut -c11- | sort)
}

@test "a loop between two lists: RCPT of each is 250, one copy per mailbox" {
	add_table "a: b, smith" "b: a, jones"
	run -0 send_mail a@example.org a b
	[ "${lines[3]}" = "250 2.1.5 Recipient <a> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <b> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(count_messages smith)" = 1 ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(ls "$SPOOL" | sort | tr '\n' ' ')" = "jones smith " ]
}

@test "a loop between two lists: EXPN lists the users reached, once each" {
	add_table "a: b, smith" "b: a, jones"
	run -0 smtp "EXPN a" "EXPN B" QUIT
	[ "$(codes)" = "220 250 250 250 250 221" ]
	diff -u <(printf '%s\n' "250-2.1.5 Joe Jones <jones@mx.example>" \
	    "250 2.1.5 Fred Smith <smith@mx.example>" \
	    "250-2.1.5 Fred Smith <smith@mx.example>" \
	    "250 2.1.5 Joe Jones <jones@mx.example>") <(middle)
}

@test "a loop that reaches no mailbox: RCPT and EXPN are 550" {
	add_table "x: y" "y: x"
	run -0 smtp "EXPN x" "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<x>" "RCPT TO:<y@mx.example>" DATA QUIT
	[ "${lines[1]}" = "550 5.1.1 <x>: $NOWHERE" ]
	[ "${lines[4]}" = "550 5.1.1 <x>: $NOWHERE" ]
	[ "${lines[5]}" = "550 5.1.1 <y@mx.example>: $NOWHERE" ]
	[ "${lines[6]}" = "503 5.5.1 Need RCPT before DATA" ]
	[ -z "$(ls "$SPOOL")" ]
}

@test "duplicates: a user in two lists, both given as RCPT, gets one copy" {
	add_table "team: jones, brown"
	run -0 send_mail a@example.org staff team JONES all
	[ "$(codes)" = "220 250 250 250 250 250 250 354 250 221" ]
	for u in smith jones brown postel; do
		[ "$(count_messages $u)" = 1 ]
	done
	# four RCPTs: no `for <...>' in Received (blind copies stay blind)
	[ -z "$(grep 'for <' "$SPOOL/jones")" ]
}

@test "names are case-insensitive: Smith: in the table, RCPT TO:<SMITH>" {
	cat >"$TABLE" <<'EOF'
Smith:	Fred Smith <Smith>
JONES:	Joe Jones <jones>
Staff:	SMITH, Jones@MX.Example
EOF
	run -0 smtp "VRFY SMITH" "VRFY smith" "EXPN STAFF" "EXPN SMITH" \
	    "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<SMITH>" "RCPT TO:<Staff@mx.example>" DATA \
	    "Subject: case" "" "x" . QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[2]}" = "${lines[1]}" ]
	[ "${lines[3]}" = "250-2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[4]}" = "250 2.1.5 Joe Jones <jones@mx.example>" ]
	# `Smith: ... <Smith>' declares a user: no list
	[ "${lines[5]}" = "550 5.1.1 <SMITH> is not a mailing list" ]
	[ "${lines[8]}" = "250 2.1.5 Recipient <SMITH> OK" ]
	[ "${lines[9]}" = "250 2.1.5 Recipient <Staff@mx.example> OK" ]
	[ "$(count_messages smith)" = 1 ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(ls "$SPOOL" | sort | tr '\n' ' ')" = "jones smith " ]
}

@test "a list with an unknown member still reaches the others" {
	add_table "mixed: ghost, brown"
	run -0 send_mail a@example.org mixed
	[ "${lines[3]}" = "250 2.1.5 Recipient <mixed> OK" ]
	[ "$(count_messages brown)" = 1 ]
	[ ! -e "$SPOOL/ghost" ]
}

@test "pipe, file and :include: targets are never run or written" {
	add_table "archive: \"|/usr/bin/touch $BATS_TEST_TMPDIR/ran\"," \
	    "	$BATS_TEST_TMPDIR/written, :include:$BATS_TEST_TMPDIR/inc," \
	    "	brown"
	echo "smith" >"$BATS_TEST_TMPDIR/inc"
	run -0 send_mail a@example.org archive
	[ "${lines[3]}" = "250 2.1.5 Recipient <archive> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(count_messages brown)" = 1 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	[ ! -e "$BATS_TEST_TMPDIR/written" ]
	[ ! -e "$SPOOL/smith" ]
	run -0 smtp "EXPN archive" QUIT
	[ "${lines[1]}" = "250 2.1.5 Bob Brown <brown@mx.example>" ]
}

# --- the table's syntax -----------------------------------------------------

@test "continuation lines (tab or spaces), comments and blank lines" {
	printf '%s\n' "# a comment: smith, jones" "" "crew:	smith," \
	    "	jones," "    brown" "   " "# crew: postel" "after: postel" \
	    >>"$TABLE"
	run -0 smtp "EXPN crew" "VRFY after" QUIT
	[ "$(codes)" = "220 250 250 250 250 221" ]
	diff -u <(printf '%s\n' "250-2.1.5 Fred Smith <smith@mx.example>" \
	    "250-2.1.5 Joe Jones <jones@mx.example>" \
	    "250 2.1.5 Bob Brown <brown@mx.example>" \
	    "250 2.1.5 Jon Postel <postel@mx.example>") <(middle)
}

@test "display names: quoted, with a comma or a backslash, and unquoted" {
	cat >"$TABLE" <<'EOF'
sqsmith: "Q. Smith" <sqsmith>
fsmith: "Smith, Fred" <fsmith>
odd: "Joe \"J\" Odd" <odd>
plain: Plain Person <plain>
bare: bare
EOF
	run -0 smtp "VRFY sqsmith" "VRFY fsmith" "VRFY odd" "VRFY plain" \
	    "VRFY bare" QUIT
	[ "${lines[1]}" = "250 2.1.5 Q. Smith <sqsmith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Smith, Fred <fsmith@mx.example>" ]
	[ "${lines[3]}" = "250 2.1.5 Joe \"J\" Odd <odd@mx.example>" ]
	[ "${lines[4]}" = "250 2.1.5 Plain Person <plain@mx.example>" ]
	[ "${lines[5]}" = "250 2.1.5 <bare@mx.example>" ]
}

@test "a comma inside a quoted display name does not split a list" {
	cat >"$TABLE" <<'EOF'
fsmith: Fred Smith <fsmith>
jones: Joe Jones <jones>
pair: "Smith, Fred" <fsmith>, jones
EOF
	run -0 smtp "EXPN pair" QUIT
	[ "$(codes)" = "220 250 250 221" ]
	[ "${lines[1]}" = "250-2.1.5 Fred Smith <fsmith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Joe Jones <jones@mx.example>" ]
}

@test "a table with CRLF line ends reads like one with LF" {
	printf '%s\r\n' "smith:	Fred Smith <smith>" "jones: Joe Jones <jones>" \
	    "staff: smith," "	jones" >"$TABLE"
	run -0 smtp "VRFY smith" "EXPN staff" QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[2]}" = "250-2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[3]}" = "250 2.1.5 Joe Jones <jones@mx.example>" ]
}

# A comment inside a continued entry: Postfix skips it and reads on, and
# sendmail calls the next line an error; either way nothing may be lost
# without a word.
@test "a continuation line after a comment is not silently lost" {
	# lines 17, 18, 19
	printf '%s\n' "crew:	smith," "# jones has left" "	brown" >>"$TABLE"
	run -0 smtp "EXPN crew" QUIT
	if ! grep -q '^250[- ]2.1.5 Bob Brown <brown@mx.example>$' \
	    <<<"$output"; then
		make_forwarder
		check -F "$FWD"
		[ "$status" -eq 1 ]	# then -C must say so
		reported | grep -q '^TABLE:1[789]: '
	fi
}

# --- system accounts (getpwnam) ---------------------------------------------

@test "without -T, root and daemon are users, with GECOS full names" {
	getent passwd root >/dev/null || skip "no root account"
	getent passwd daemon >/dev/null || skip "no daemon account"
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	root_name=$(gecos_name root) daemon_name=$(gecos_name daemon)
	run -0 send_mail a@example.org daemon
	[ "${lines[3]}" = "250 2.1.5 Recipient <daemon> OK" ]
	[ "$(count_messages daemon)" = 1 ]
	add_table "ops: root, daemon, smith"
	run -0 smtp "VRFY root" "VRFY DAEMON" "EXPN ops" QUIT
	[ "${lines[1]}" = "250 2.1.5 ${root_name:+$root_name }<root@mx.example>" ]
	[ "${lines[2]}" = \
	    "250 2.1.5 ${daemon_name:+$daemon_name }<daemon@mx.example>" ]
	diff -u <(printf '%s\n' \
	    "250-2.1.5 ${root_name:+$root_name }<root@mx.example>" \
	    "250-2.1.5 ${daemon_name:+$daemon_name }<daemon@mx.example>" \
	    "250 2.1.5 Fred Smith <smith@mx.example>") <(middle | sed 1,2d)
}

@test "without -T, VRFY finds an account by a word of its GECOS name" {
	[ "$(gecos_name list)" = "Mailing List Manager" ] ||
	    skip "no account list with GECOS Mailing List Manager"
	[ "$(getent passwd | cut -d: -f5 | grep -cw Manager)" = 1 ] ||
	    skip "several accounts called Manager"
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp "VRFY Manager" QUIT
	[ "${lines[1]}" = "250 2.1.5 Mailing List Manager <list@mx.example>" ]
}

# smtpd run where /etc/passwd lacks the account nobody (another file is
# mounted over it) while NSS still knows it: nss-systemd makes nobody
# up, as "Kernel Overflow User", when no file names it.  Such an
# account reaches smtpd only through NSS's modules.
nobody_from_nss() {
	local pw="$BATS_TEST_TMPDIR/passwd"
	grep -v '^nobody:' /etc/passwd >"$pw"
	mounted_over "$pw" /etc/passwd
	nss=$(unshare -m sh -c 'mount --bind "$0" /etc/passwd &&
	    getent passwd nobody' "$pw") ||
	    skip "NSS knows no nobody but the file's"
}

@test "without -T, an account only NSS knows is a user, named by NSS" {
	nobody_from_nss
	name=$(printf '%s\n' "$nss" | cut -d: -f5 | cut -d, -f1)
	uid=$(printf '%s\n' "$nss" | cut -d: -f3)
	[ -n "$name" ] && [ "$name" != nobody ]	# not the file's GECOS
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	run -0 smtp "VRFY nobody" QUIT
	[ "${lines[1]}" = "250 2.1.5 $name <nobody@mx.example>" ]
	run -0 send_mail a@example.org nobody
	[ "${lines[3]}" = "250 2.1.5 Recipient <nobody> OK" ]
	[ "$(data_reply | cut -c1-3)" = 250 ]
	[ "$(count_messages nobody)" = 1 ]
	[ "$(stat -c %u "$SPOOL/nobody")" = "$uid" ]	# NSS's owner
	run -0 send_mail a@example.org nobodyelse
	[ "${lines[3]}" = "550 5.1.1 <nobodyelse>: user unknown" ]
}

@test "without -T, when the accounts cannot be asked, RCPT is 451, never 550" {
	accounts_unavailable
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	add_table "ops: smith, nosuchuser"
	run -0 smtp "VRFY nosuchuser" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<nosuchuser>" "RCPT TO:<ops>" \
	    "RCPT TO:<root>" "RCPT TO:<smith>" "RCPT TO:<postmaster>" QUIT
	[ "${lines[1]}" = "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery" ]
	later="451 4.3.0 Local error in processing: cannot look up the account now"
	[ "${lines[4]}" = "$later" ]
	[ "${lines[5]}" = "$later" ]	# a list with such a member
	# /etc/passwd answers for root; the table needs no lookup
	[ "${lines[6]}" = "250 2.1.5 Recipient <root> OK" ]
	[ "${lines[7]}" = "250 2.1.5 Recipient <smith> OK" ]
	[ "${lines[8]}" = "250 2.1.5 Recipient <postmaster> OK" ]
	grep -q "RCPT nosuchuser: the system's accounts could not be asked; 451" "$LOG"
	# -C says so too, and the table is not clean
	run -1 "$SMTPD" -C -a "$TABLE"
	[[ "$output" == *"ops: nosuchuser: the system's accounts cannot be asked"* ]]
}

@test "with -T, system accounts are nobody, in VRFY, EXPN and RCPT" {
	getent passwd root >/dev/null || skip "no root account"
	add_table "ops: root, smith"
	run -0 smtp "VRFY root" "EXPN ops" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<daemon>" QUIT
	[ "${lines[1]}" = "550 5.1.1 String does not match anything" ]
	[ "${lines[2]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[5]}" = "550 5.1.1 <daemon>: user unknown" ]
}

@test "a table entry named like a system account wins over the account" {
	OPTS=(-e -n mx.example -a "$TABLE" -m "$SPOOL")
	add_table "daemon: smith"
	run -0 send_mail a@example.org daemon
	[ "${lines[3]}" = "250 2.1.5 Recipient <daemon> OK" ]
	[ "$(count_messages smith)" = 1 ]
	[ ! -e "$SPOOL/daemon" ]
}

# --- remote targets through RCPT ----------------------------------------------

@test "RCPT of a remote alias is 251 with -F and 551 without" {
	make_forwarder
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jq>" "RCPT TO:<jones>" QUIT
	[ "${lines[3]}" = \
	    "551 5.1.6 User not local; please try <jones@usc-isiq.arpa>" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones> OK" ]
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jq>" "RCPT TO:<JQ@mx.example>" QUIT
	[ "${lines[3]}" = \
	    "251 2.1.5 User not local; will forward to <jones@usc-isiq.arpa>" ]
	[ "${lines[4]}" = "${lines[3]}" ]
}

@test "RCPT of a list with remote members is 250, with -F and without" {
	add_table "far: x@one.example, y@two.example" \
	    "mixed: smith, z@three.example"
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<mixed>" "RCPT TO:<far>" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <mixed> OK" ]
	# nothing of far can be delivered without -F
	[ "${lines[4]}" = "551 5.1.6 User not local; please try <x@one.example>" ]
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<mixed>" "RCPT TO:<far>" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <mixed> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <far> OK" ]
}

# --- -F: the forwarding program -------------------------------------------------

@test "-F: the program gets -F's words, then -f sender -- recipients" {
	make_forwarder
	add_table "far: x@one.example, Why <y@two.example>, smith"
	OPTS+=(-F "$FWD -oi -odq")
	run -0 send_mail sender@example.org jq far brown
	[ "$(codes)" = "220 250 250 251 250 250 354 250 221" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(fwd_runs)" = 1 ]		# once for the transaction
	diff -u <(printf '%s\n' -oi -odq -f sender@example.org -- \
	    jones@usc-isiq.arpa x@one.example y@two.example) <(fwd_args)
	# the local recipients got it too
	[ "$(count_messages smith)" = 1 ]
	[ "$(count_messages brown)" = 1 ]
}

@test "-F: the null sender is passed as -f <>" {
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 send_mail "" jq
	[ "${lines[2]}" = "250 2.1.0 Sender <> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	diff -u <(printf '%s\n' -f "<>" -- jones@usc-isiq.arpa) <(fwd_args)
}

@test "-F: the input is the Received: header, then the message as sent" {
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jq>" "RCPT TO:<smith>" DATA "Subject: forward me" \
	    "" "From here, a line mbox must quote," ">From there too" \
	    "..and a dot" "end" . QUIT
	[ "$(codes)" = "220 250 250 251 250 354 250 221" ]
	[[ "$(head -n 1 "$BATS_TEST_TMPDIR/fwd.input")" == \
	    "Received: from client.example (localhost)" ]]
	# the same Received: as the local copy's
	diff -u <(received_of "$SPOOL/smith") \
	    <(received_of "$BATS_TEST_TMPDIR/fwd.input")
	expected() {
		printf '%s\n' "Subject: forward me" "" \
		    "From here, a line mbox must quote," ">From there too" \
		    ".and a dot" "end"
	}
	diff -u <(expected) <(fwd_message)
	# the mailbox holds it mboxrd-quoted
	diff -u <(printf '%s\n' "Subject: forward me" "" \
	    ">From here, a line mbox must quote," ">>From there too" \
	    ".and a dot" "end") <(stored_message "$SPOOL/smith")
}

@test "-F: a message larger than the memory buffer is forwarded whole" {
	make_forwarder
	OPTS+=(-F "$FWD")
	awk 'BEGIN { print "Subject: big"; print ""
		for (i = 1; i <= 3000; i++)
			if (i % 97 == 0) printf "From line %d\n", i
			else printf "line %d %s\n", i, \
			    "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl"
	}' >"$BATS_TEST_TMPDIR/big"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/big")" -gt 150000 ]
	{
		printf '%s\r\n' "HELO client.example" \
		    "MAIL FROM:<a@example.org>" "RCPT TO:<jq>" DATA
		sed 's/$/\r/' "$BATS_TEST_TMPDIR/big"
		printf '%s\r\n' . QUIT
	} >"$BATS_TEST_TMPDIR/session"
	run -0 smtp_raw <"$BATS_TEST_TMPDIR/session"
	[ "$(codes)" = "220 250 250 251 354 250 221" ]
	cmp "$BATS_TEST_TMPDIR/big" <(fwd_message)
}

@test "-F: a recipient forwarded twice is passed once" {
	make_forwarder
	export RELAYCLIENT=
	add_table "jq2: JONES@usc-isiq.arpa"
	OPTS+=(-F "$FWD")
	run -0 send_mail a@example.org jq jq2 jones@usc-isiq.arpa
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(fwd_args | grep -ci '^jones@usc-isiq.arpa$')" = 1 ]
}

@test "-F: a local-only transaction does not run the program" {
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 send_mail a@example.org smith staff
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(fwd_runs)" = 0 ]
	[ "$(count_messages smith)" = 1 ]
}

# The standard transaction of the failure tests: jq (remote) and smith.
fail_forwarding() {
	run -0 send_mail a@example.org jq smith
	[ "$(codes)" = "220 250 250 251 250 354 451 221" ]
	[ "$(data_reply)" = "$FORWARD_FAILED" ]
}

@test "-F exits 1: 451, and a new mailbox is not created" {
	make_forwarder 1
	OPTS+=(-F "$FWD")
	fail_forwarding
	[ "$(fwd_runs)" = 1 ]
	[ ! -s "$SPOOL/smith" ]
	[ ! -e "$SPOOL/smith.lock" ]
}

@test "-F exits 1: 451, and a mailbox with a message is byte-identical" {
	run -0 send_mail old@example.org smith
	[ "$(count_messages smith)" = 1 ]
	cp "$SPOOL/smith" "$BATS_TEST_TMPDIR/before"
	make_forwarder 1
	OPTS+=(-F "$FWD")
	fail_forwarding
	cmp "$BATS_TEST_TMPDIR/before" "$SPOOL/smith"
}

@test "-F killed by a signal: 451, mailboxes old and new untouched" {
	run -0 send_mail old@example.org smith
	cp "$SPOOL/smith" "$BATS_TEST_TMPDIR/before"
	make_forwarder kill
	OPTS+=(-F "$FWD")
	run -0 send_mail a@example.org jq smith brown
	[ "$(codes)" = "220 250 250 251 250 250 354 451 221" ]
	[ "$(data_reply)" = "$FORWARD_FAILED" ]
	[ "$(fwd_runs)" = 1 ]
	cmp "$BATS_TEST_TMPDIR/before" "$SPOOL/smith"
	[ ! -s "$SPOOL/brown" ]
}

@test "-F naming a missing program: 451 at DATA, nothing delivered" {
	OPTS+=(-F "$BATS_TEST_TMPDIR/no-such-program")
	run -0 send_mail a@example.org jq smith
	[ "$(data_reply)" = "$FORWARD_FAILED" ]
	[ ! -s "$SPOOL/smith" ]
}

@test "after a failed forward the session goes on: local mail is delivered" {
	make_forwarder 1
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jq>" "RCPT TO:<smith>" DATA "Subject: one" "" "x" . \
	    "MAIL FROM:<a@example.org>" "RCPT TO:<smith>" DATA \
	    "Subject: two" "" "y" . QUIT
	[ "$(codes)" = "220 250 250 251 250 354 451 250 250 354 250 221" ]
	[ "$(count_messages smith)" = 1 ]
	grep -qx 'Subject: two' "$SPOOL/smith"
	[ -z "$(grep 'Subject: one' "$SPOOL/smith")" ]
}

# The header clean-up of smtpd.8 (MAILBOX FORMAT) applies to the forwarded
# copy as to the mailbox's (delivery.c says why): bookkeeping fields and an
# old Return-Path go, every other header stays, in order.
@test "-F: the forwarded copy loses the mbox bookkeeping headers, keeps the rest" {
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jq>" DATA "Subject: headers" "Status: RO" \
	    "X-UID: 7" "Return-Path: <old@example.net>" "X-Kept: yes" \
	    "" "body" . QUIT
	[ "$(codes)" = "220 250 250 251 354 250 221" ]
	diff -u <(printf '%s\n' "Subject: headers" "X-Kept: yes" \
	    "" "body") <(fwd_message)
}

# --- relay control ----------------------------------------------------------------

@test "relaying: 550 5.7.1 without RELAYCLIENT, with or without -F" {
	make_forwarder
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<x@elsewhere.example>" "RCPT TO:<smith@mx.example>" QUIT
	[ "${lines[3]}" = "$RELAY_DENIED" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <smith@mx.example> OK" ]
	OPTS+=(-F "$FWD")
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<x@elsewhere.example>" DATA QUIT
	[ "${lines[3]}" = "$RELAY_DENIED" ]
	[ "${lines[4]}" = "503 5.5.1 Need RCPT before DATA" ]
	[ "$(fwd_runs)" = 0 ]
}

@test "relaying: RELAYCLIENT= without -F is still 550 5.7.1" {
	export RELAYCLIENT=
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<x@elsewhere.example>" QUIT
	[ "${lines[3]}" = "$RELAY_DENIED" ]
}

@test "relaying: RELAYCLIENT= and -F: 250, forwarded to the program" {
	export RELAYCLIENT=
	make_forwarder
	OPTS+=(-F "$FWD")
	run -0 send_mail a@example.org x@elsewhere.example Y@Other.Example \
	    smith
	[ "${lines[3]}" = "250 2.1.5 Recipient <x@elsewhere.example> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <Y@Other.Example> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	diff -u <(printf '%s\n' -f a@example.org -- x@elsewhere.example \
	    Y@Other.Example) <(fwd_args)
	[ "$(count_messages smith)" = 1 ]
}

@test "relaying: RELAYCLIENT with a value works too, and a local domain is no relay" {
	export RELAYCLIENT=1
	make_forwarder
	OPTS+=(-F "$FWD" -d example.com)
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<x@elsewhere.example>" "RCPT TO:<nobody@example.com>" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <x@elsewhere.example> OK" ]
	[ "${lines[4]}" = "550 5.1.1 <nobody@example.com>: user unknown" ]
}

# --- smtpd -C ---------------------------------------------------------------------

@test "-C on a good table: exit 0, nothing on stdout or stderr" {
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 0 ]
	[ "$stderr" = "" ]
}

@test "-C on a good table without postmaster: exit 0, one warning" {
	sed -i '/^postmaster:/d' "$TABLE"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 0 ]
	expect_reported "TABLE: warning: no postmaster entry; its mail goes \
to the spool's postmaster mailbox"
}

@test "-C: a malformed line, with its line number" {
	add_table "" "this line has no colon" "ok: smith"	# lines 17, 18, 19
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:18: $MALFORMED"
}

@test "-C: a name defined twice" {
	add_table "staff: brown"				# line 17
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: staff: already defined at line 14; \
this entry is never used"
}

@test "-C: an unknown local target, on the entry's line" {
	add_table "crew: smith," "	ghost," "	jones" "more: Spook <spook@mx.example>"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: crew: unknown local target ghost" \
	    "TABLE:20: more: unknown local target spook@mx.example"
}

@test "-C: |pipe, /file and :include: targets" {
	add_table "vac: \"|/usr/bin/vacation smith\"" "arch: /var/mail/archive" \
	    "inc: :include:/etc/smtpd/staff, smith"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: vac: |/usr/bin/vacation smith: $NOT_DELIVERED" \
	    "TABLE:18: arch: /var/mail/archive: $NOT_DELIVERED" \
	    "TABLE:19: inc: :include:/etc/smtpd/staff: $NOT_DELIVERED"
}

@test "-C: a remote target while no -F is given" {
	check
	[ "$status" -eq 1 ]
	expect_reported "TABLE:11: jq: jones@usc-isiq.arpa is remote and no -F \
is given: RCPT answers 551"
}

@test "-C: a loop between two lists, with file:line" {
	add_table "a: b, smith" "b: a, jones"			# lines 17, 18
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -ge 1 ]
	reported | grep -qx 'TABLE:18: loop: a -> b -> a'
	# any other line is the same loop, seen from b
	[ -z "$(reported | grep -vx -e 'TABLE:18: loop: a -> b -> a' \
	    -e 'TABLE:17: loop: b -> a -> b')" ]
}

@test "-C: a loop is reported once" {
	add_table "a: b, smith" "b: a, jones"			# lines 17, 18
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:18: loop: a -> b -> a"
}

@test "-C: a loop of three lists; a name among its own targets is no loop" {
	add_table "p: q" "q: r" "r: p, smith" "keep: keep, x@home.example"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	reported | grep -qx 'TABLE:19: loop: p -> q -> r -> p'
	[ -z "$(reported | grep keep)" ]	# aliases(5): `bob: bob, bob@home'
}

# A chain of $1 lists d1 -> d2 -> ... -> d$1, the last holding smith.
nested() {
	local i
	for ((i = 1; i < $1; i++)); do
		echo "d$i: d$((i + 1))"
	done
	echo "d$1: smith"
}

@test "-C: lists nested more than 20 deep; RCPT of them is refused" {
	nested 21 >>"$TABLE"				# d1 on line 17
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: d1: lists nested more than 20 deep"
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<d1>" "RCPT TO:<d3>" QUIT
	[ "${lines[3]}" = "550 5.1.1 <d1>: $NOWHERE" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <d3> OK" ]	# 19 deep
}

@test "20 nested lists are within -C's limit of 20, and delivered" {
	nested 20 >>"$TABLE"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 0 ]
	[ "$stderr" = "" ]
	run -0 send_mail a@example.org d1
	[ "${lines[3]}" = "250 2.1.5 Recipient <d1> OK" ]
	[ "$(count_messages smith)" = 1 ]
}

@test "-C: line numbers count comments, blank and continuation lines" {
	cat >"$TABLE" <<'EOF'
# users

postmaster: smith
smith:  Fred Smith <smith>
jones:  Joe Jones <jones>

staff:  smith,
    jones,
    ghost
# a comment
no colon here
smith:  Fred Smith again <smith>
EOF
	check
	[ "$status" -eq 1 ]
	expect_reported "TABLE:7: staff: unknown local target ghost" \
	    "TABLE:11: $MALFORMED" \
	    "TABLE:12: smith: already defined at line 4; this entry is never used"
}

# RCPT of an entry with no target has nothing to deliver to (smtpd.8,
# RCPT: 550); -C must say so before a client finds out.
@test "-C: an entry with no target at all; RCPT of it is 550" {
	add_table "empty:" "blank: ," "	"			# lines 17-19
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: empty: no target: RCPT answers 550" \
	    "TABLE:18: blank: no target: RCPT answers 550"
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<empty>" "RCPT TO:<blank>" QUIT
	[ "${lines[3]}" = "550 5.1.1 <empty>: $NOWHERE" ]
	[ "${lines[4]}" = "550 5.1.1 <blank>: $NOWHERE" ]
}

# A name among its own local targets gets a mailbox of its own, which
# EXPN lists like any member: only a warning, for it may be meant.
# `keep: keep, x@home.example' (aliases(5): a copy kept, one sent on)
# draws nothing: see the loop of three lists above.
@test "-C: a list naming itself beside local targets draws a warning" {
	add_table "selfloop: selfloop, smith"			# line 17
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 0 ]
	expect_reported "TABLE:17: warning: selfloop: names itself beside \
other local targets: a mailbox selfloop gets a copy too, and EXPN lists it"
	run -0 smtp "EXPN selfloop" QUIT
	[ "${lines[1]}" = "250-2.1.5 <selfloop@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	run -0 send_mail a@example.org selfloop
	[ "$(count_messages selfloop)" = 1 ]
	[ "$(count_messages smith)" = 1 ]
}

@test "-C: a continuation line before any entry" {
	{
		printf '%s\n' "# a comment, a blank line and white space alone" \
		    "" "  " "	stray, smith"			# line 4
		cat "$TABLE"
	} >"$BATS_TEST_TMPDIR/t" && mv "$BATS_TEST_TMPDIR/t" "$TABLE"
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:4: a continuation line with no entry before it: \
ignored"
}

# RCPT refuses these local parts (smtpd.8, INPUT RULES), and a list
# naming one skips it, so the entry is dead: a user's entry or a list's.
@test "-C: an entry whose name no address can reach" {
	add_table ".hidden: smith" "mail/box: smith" "x.lock: smith" \
	    "$(printf 'bell\a: smith')" "$(printf 'caf\351: smith')" \
	    ".dot: Dot <.dot>" "crew: .hidden, jones"		# lines 17-23
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	expect_reported "TABLE:17: .hidden: no address can reach this entry" \
	    "TABLE:18: mail/box: no address can reach this entry" \
	    "TABLE:19: x.lock: no address can reach this entry" \
	    "TABLE:20: bell?: no address can reach this entry" \
	    "TABLE:21: caf?: no address can reach this entry" \
	    "TABLE:22: .dot: no address can reach this entry" \
	    "TABLE:23: crew: .hidden: not usable as a mailbox name"
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    'RCPT TO:<".hidden">' "RCPT TO:<x.lock>" "EXPN crew" QUIT
	[ "${lines[3]}" = '550 5.1.3 <".hidden">: mailbox name not allowed' ]
	[ "${lines[4]}" = "550 5.1.3 <x.lock>: mailbox name not allowed" ]
	[ "${lines[5]}" = "250 2.1.5 Joe Jones <jones@mx.example>" ]
}

@test "-C: problems come in the order of their lines, the warning last" {
	cat >"$TABLE" <<'EOF'
	stray
smith:  Fred Smith <smith>
zed:    spook, ghost
b:      a, smith
a:      b, smith
no colon here
empty:
zed:    smith
.hidden: smith
self:   self, smith
EOF
	check
	[ "$status" -eq 1 ]
	expect_reported_in_order \
	    "TABLE:1: a continuation line with no entry before it: ignored" \
	    "TABLE:3: zed: unknown local target spook" \
	    "TABLE:3: zed: unknown local target ghost" \
	    "TABLE:4: loop: a -> b -> a" \
	    "TABLE:6: $MALFORMED" \
	    "TABLE:7: empty: no target: RCPT answers 550" \
	    "TABLE:8: zed: already defined at line 3; this entry is never used" \
	    "TABLE:9: .hidden: no address can reach this entry" \
	    "TABLE:10: warning: self: names itself beside other local \
targets: a mailbox self gets a copy too, and EXPN lists it" \
	    "TABLE: warning: no postmaster entry; its mail goes to the \
spool's postmaster mailbox"
}

@test "-C: a missing spool and a -F program that does not exist, with the table" {
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$BATS_TEST_TMPDIR/no-spool")
	add_table "crew: ghost"					# line 17
	check -F "$BATS_TEST_TMPDIR/no-such-program -oi"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 3 ]
	grep -q "no-spool" <<<"${stderr_lines[0]}"
	grep -q -- "-F: cannot run $BATS_TEST_TMPDIR/no-such-program$" \
	    <<<"$stderr"
	reported | grep -qx 'TABLE:17: crew: unknown local target ghost'
	[ ! -e "$BATS_TEST_TMPDIR/no-spool" ]
}

@test "-C: a missing spool alone, and a missing -F program alone: exit 1" {
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$BATS_TEST_TMPDIR/no-spool")
	make_forwarder
	check -F "$FWD"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	OPTS=(-e -T -n mx.example -a "$TABLE" -m "$SPOOL")
	check -F no-such-program-anywhere
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	grep -q -- "-F: cannot run no-such-program-anywhere$" <<<"$stderr"
	check -F sh		# found along PATH
	[ "$status" -eq 0 ]
}

@test "-C on a table that is a directory: exit 1, no 421 on stdout" {
	OPTS=(-e -T -n mx.example -a "$BATS_TEST_TMPDIR" -m "$SPOOL")
	check
	[ "$status" -eq 1 ]
	grep -q "cannot read table" <<<"$stderr"
}

@test "a table that is a directory: start-up refused with 421" {
	OPTS=(-e -T -n mx.example -a "$BATS_TEST_TMPDIR" -m "$SPOOL")
	run smtp "HELO client.example" QUIT
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "421 4.3.0 mx.example local configuration error" ]
}

# A lattice of lists, three a level, each naming the three of the next
# level: expansion meets each list once, and so must -C.
@test "-C is not exponential on a lattice of lists" {
	{
		for ((i = 1; i < 18; i++)); do
			for x in a b c; do
				echo "$x$i: a$((i + 1)), b$((i + 1)), c$((i + 1))"
			done
		done
		echo "a18: smith" ; echo "b18: jones" ; echo "c18: brown"
	} >>"$TABLE"
	run -0 smtp "EXPN a1" QUIT
	[ "$(codes)" = "220 250 250 250 221" ]
	make_forwarder
	run --separate-stderr timeout 10 "$SMTPD" -C "${OPTS[@]}" -F "$FWD" \
	    </dev/null
	[ "$status" -eq 0 ]	# 124: timeout(1) had to end it
	[ "$output" = "" ]
	[ "$stderr" = "" ]
}

# --- large tables ---------------------------------------------------------------

@test "a table of 100,000 entries: RCPT of the last, EXPN of a 100-list" {
	awk 'BEGIN {
		print "postmaster: u1"
		for (i = 1; i <= 100000; i++) {
			printf "u%d:\tUser %d <u%d>\n", i, i, i
			if (i == 50000) {	# a list in the middle
				printf "hundred: u1"
				for (k = 2; k <= 100; k++)
					printf ",\n\tu%d", 1 + 1010 * (k - 1)
				printf "\n"
			}
		}
	}' >"$TABLE"
	[ "$(grep -c '^u[0-9]*:' "$TABLE")" -eq 100000 ]
	run -0 send_mail a@example.org u100000
	[ "${lines[3]}" = "250 2.1.5 Recipient <u100000> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(count_messages u100000)" = 1 ]
	run -0 smtp "EXPN hundred" "VRFY U99999" "VRFY u100001" QUIT
	[ "${#lines[@]}" -eq 104 ]
	diff -u <(awk 'BEGIN { for (k = 1; k <= 100; k++) {
		n = 1 + 1010 * (k - 1)
		printf "250%s2.1.5 User %d <u%d@mx.example>\n", \
		    k < 100 ? "-" : " ", n, n } }') <(middle | sed -n 1,100p)
	[ "${lines[101]}" = "250 2.1.5 User 99999 <u99999@mx.example>" ]
	[ "${lines[102]}" = "550 5.1.1 String does not match anything" ]
	check
	[ "$status" -eq 0 ]
	[ "$stderr" = "" ]
}

@test "a list of 1000 members: every member gets a copy, EXPN lists 1000" {
	awk 'BEGIN {
		for (i = 1; i <= 1000; i++)
			printf "m%d: Member %d <m%d>\n", i, i, i
		printf "thousand: m1"
		for (i = 2; i <= 1000; i++)
			printf ", m%d", i
		printf "\n"
	}' >"$TABLE"
	run -0 smtp "EXPN thousand" QUIT
	[ "$(middle | grep -c '^250[- ]2\.1\.5 Member ')" -eq 1000 ]
	# a thousand mailboxes made, each owner asked of the accounts:
	# more than the usual 10 s under sanitizers
	SMTP_WAIT=60 run -0 send_mail a@example.org thousand
	[ "${lines[3]}" = "250 2.1.5 Recipient <thousand> OK" ]
	[[ "$(data_reply)" =~ $DELIVERED_RE ]]
	[ "$(ls "$SPOOL" | wc -l)" -eq 1000 ]
	[ "$(count_messages m1000)" = 1 ]
}
