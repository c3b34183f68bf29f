# smtpd.8, THE DIALOGUE: the dialogue, command by command, each reply
# checked word for word (every reply carries its RFC 3463 enhanced code).
load helpers

NEED_HELO="503 5.5.1 Send HELO or EHLO first"
NEED_MAIL="503 5.5.1 Need MAIL before RCPT"
NEED_RCPT="503 5.5.1 Need RCPT before DATA"
NESTED="503 5.5.1 Sender already specified"

# --- greeting, HELO, EHLO ---------------------------------------------

@test "the greeting is 220, the name, ESMTP and smtpd with its version" {
	[ -n "$VERSION" ]
	run -0 smtp QUIT
	[ "${lines[0]}" = "220 mx.example ESMTP smtpd $VERSION" ]
	[ "${#lines[@]}" -eq 2 ]
}

@test "HELO is answered 250 with the host name" {
	run -0 smtp "HELO client.example" QUIT
	[ "${lines[1]}" = "250 mx.example" ]
	[ "$(codes)" = "220 250 221" ]
}

@test "EHLO is answered with a multi-line 250 listing every extension" {
	run -0 smtp "EHLO client.example" QUIT
	[ "${lines[1]}" = "250-mx.example" ]
	[ "$(last_reply)" = "221 2.0.0 mx.example closing connection" ]
	# every line but the last of the reply is 250-, the last 250 SP
	n=$((${#lines[@]} - 2))
	for i in $(seq 1 $((n - 1))); do
		[ "${lines[$i]:0:4}" = "250-" ]
	done
	[ "${lines[$n]:0:4}" = "250 " ]
	diff -u <(ehlo_expected) <(ehlo_keywords)
}

@test "EHLO does not list VRFY with -V" {
	OPTS+=(-V)
	run -0 smtp "EHLO client.example" QUIT
	diff -u <(ehlo_expected -VRFY) <(ehlo_keywords)
}

@test "EHLO does not list EXPN with -E" {
	OPTS+=(-E)
	run -0 smtp "EHLO client.example" QUIT
	diff -u <(ehlo_expected -EXPN) <(ehlo_keywords)
}

@test "EHLO lists neither VRFY nor EXPN with -V -E" {
	OPTS+=(-V -E)
	run -0 smtp "EHLO client.example" QUIT
	diff -u <(ehlo_expected -VRFY -EXPN) <(ehlo_keywords)
}

@test "a second HELO resets the transaction" {
	run -0 smtp "HELO client.example" "MAIL FROM:<sender@example.org>" \
	    "RCPT TO:<jones>" "HELO again.example" DATA "RCPT TO:<jones>" \
	    "MAIL FROM:<other@example.org>" QUIT
	[ "${lines[4]}" = "250 mx.example" ]
	[[ "${lines[5]}" == "503 5.5.1 "* ]]	# DATA: no transaction any more
	[ "${lines[6]}" = "$NEED_MAIL" ]
	[ "${lines[7]}" = "250 2.1.0 Sender <other@example.org> OK" ]
	[ "$(codes)" = "220 250 250 250 250 503 503 250 221" ]
}

@test "a second EHLO resets the transaction" {
	run -0 smtp "EHLO client.example" "MAIL FROM:<sender@example.org>" \
	    "EHLO again.example" "RCPT TO:<jones>" \
	    "MAIL FROM:<other@example.org>" QUIT
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^250-mx\.example$')" -eq 2 ]
	[ "${lines[${#lines[@]}-3]}" = "$NEED_MAIL" ]
	[ "${lines[${#lines[@]}-2]}" = \
	    "250 2.1.0 Sender <other@example.org> OK" ]
}

# --- MAIL ---------------------------------------------------------------

@test "MAIL FROM:<path> is answered 250 naming the sender" {
	run -0 smtp "HELO client.example" "MAIL FROM:<smith@example.org>" QUIT
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@example.org> OK" ]
}

@test "MAIL FROM:<> is the null sender, accepted" {
	run -0 smtp "HELO client.example" "MAIL FROM:<>" "RCPT TO:<jones>" QUIT
	[ "${lines[2]}" = "250 2.1.0 Sender <> OK" ]
	[ "$(codes)" = "220 250 250 250 221" ]
}

@test "MAIL takes SIZE=n under the limit" {
	run -0 smtp "EHLO client.example" "MAIL FROM:<a@example.org> SIZE=1000" \
	    "RCPT TO:<jones>" QUIT
	[ "${lines[${#lines[@]}-3]}" = "250 2.1.0 Sender <a@example.org> OK" ]
	[ "${lines[${#lines[@]}-2]}" = "250 2.1.5 Recipient <jones> OK" ]
}

@test "MAIL takes BODY=7BIT and BODY=8BITMIME" {
	run -0 smtp "EHLO client.example" "MAIL FROM:<a@example.org> BODY=7BIT" \
	    RSET "MAIL FROM:<b@example.org> BODY=8BITMIME" QUIT
	[ "${lines[${#lines[@]}-4]}" = "250 2.1.0 Sender <a@example.org> OK" ]
	[ "${lines[${#lines[@]}-3]}" = "250 2.0.0 Reset" ]
	[ "${lines[${#lines[@]}-2]}" = "250 2.1.0 Sender <b@example.org> OK" ]
}

@test "MAIL takes SMTPUTF8, and then a UTF-8 address" {
	run -0 smtp "EHLO client.example" \
	    "MAIL FROM:<jürgen@example.org> SMTPUTF8" QUIT
	[ "${lines[${#lines[@]}-2]}" = \
	    "250 2.1.0 Sender <jürgen@example.org> OK" ]
}

@test "MAIL takes its parameters together, in any case" {
	run -0 smtp "EHLO client.example" \
	    "MAIL FROM:<a@example.org> size=10 body=8bitmime smtputf8" QUIT
	[ "${lines[${#lines[@]}-2]}" = "250 2.1.0 Sender <a@example.org> OK" ]
}

@test "an unknown MAIL parameter is refused with 555 and starts nothing" {
	run -0 smtp "EHLO client.example" "MAIL FROM:<a@example.org> FOO=bar" \
	    "RCPT TO:<jones>" QUIT
	reply=${lines[${#lines[@]}-3]}
	[[ "$reply" == "555 5.5.4 "*FOO* ]]
	[ "${lines[${#lines[@]}-2]}" = "$NEED_MAIL" ]
}

@test "BODY= other than 7BIT or 8BITMIME is refused and starts nothing" {
	run -0 smtp "EHLO client.example" \
	    "MAIL FROM:<a@example.org> BODY=BINARYMIME" "RCPT TO:<jones>" QUIT
	reply=${lines[${#lines[@]}-3]}
	[[ "$reply" == 5[05][15]" 5.5.4 "* ]]
	[ "${lines[${#lines[@]}-2]}" = "$NEED_MAIL" ]
}

@test "MAIL with SIZE= over the limit is refused with 552" {
	OPTS+=(-s 1000)
	run -0 smtp "EHLO client.example" "MAIL FROM:<a@example.org> SIZE=1001" \
	    "RCPT TO:<jones>" "MAIL FROM:<a@example.org> SIZE=1000" QUIT
	n=${#lines[@]}
	[ "${lines[n-4]}" = \
	    "552 5.3.4 Message size exceeds fixed maximum message size (1000)" ]
	[ "${lines[n-3]}" = "$NEED_MAIL" ]
	[ "${lines[n-2]}" = "250 2.1.0 Sender <a@example.org> OK" ]
}

@test "MAIL with SIZE= over the default limit of 10485760 is refused with 552" {
	run -0 smtp "HELO client.example" \
	    "MAIL FROM:<a@example.org> SIZE=10485761" QUIT
	[ "${lines[2]}" = \
	    "552 5.3.4 Message size exceeds fixed maximum message size (10485760)" ]
}

# --- RCPT ---------------------------------------------------------------

@test "RCPT of a user of the table is 250" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones@mx.example>" "RCPT TO:<Smith@MX.EXAMPLE>" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <jones@mx.example> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <Smith@MX.EXAMPLE> OK" ]
}

@test "RCPT of an unknown user is 550" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<nobody@mx.example>" "RCPT TO:<nobody>" DATA QUIT
	[ "${lines[3]}" = "550 5.1.1 <nobody@mx.example>: user unknown" ]
	[ "${lines[4]}" = "550 5.1.1 <nobody>: user unknown" ]
	[ "${lines[5]}" = "$NEED_RCPT" ]
}

@test "RCPT of a bare local part is taken as local" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<brown>" QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <brown> OK" ]
}

@test "postmaster is always accepted and gets its own mailbox" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<postmaster>" "RCPT TO:<PostMaster@mx.example>" DATA \
	    "Subject: for the postmaster" "" "Hi." . QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <postmaster> OK" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <PostMaster@mx.example> OK" ]
	[ "$(codes)" = "220 250 250 250 250 354 250 221" ]
	[ "$(count_messages postmaster)" = 1 ]	# one mailbox, one copy
	diff -u <(printf '%s\n' "Subject: for the postmaster" "" "Hi." "") \
	    <(stored "$SPOOL/postmaster")
}

# --- DATA ---------------------------------------------------------------

@test "DATA is 354, then 250 once the message is in the spool, unstuffed" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: dots" "" "..leading" \
	    "...." "a.b" ".." "end" . QUIT
	[ "${lines[4]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[[ "${lines[5]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "$(codes)" = "220 250 250 250 354 250 221" ]
	[ "$(count_messages jones)" = 1 ]
	diff -u <(printf '%s\n' "Subject: dots" "" ".leading" "..." "a.b" \
	    "." "end" "") <(stored "$SPOOL/jones")
}

@test "after DATA the transaction is over: RCPT needs a new MAIL" {
	run -0 smtp "${TRANSACTION[@]}" "Subject: one" "" "x" . \
	    "RCPT TO:<jones>" DATA QUIT
	[ "${lines[6]}" = "$NEED_MAIL" ]
	[[ "${lines[7]}" == "503 5.5.1 "* ]]
}

# --- RSET, NOOP -----------------------------------------------------------

@test "RSET is 250 and clears the transaction, not the HELO" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<jones>" RSET DATA "RCPT TO:<jones>" \
	    "MAIL FROM:<b@example.org>" QUIT
	[ "${lines[4]}" = "250 2.0.0 Reset" ]
	[[ "${lines[5]}" == "503 5.5.1 "* ]]
	[ "${lines[6]}" = "$NEED_MAIL" ]
	[ "${lines[7]}" = "250 2.1.0 Sender <b@example.org> OK" ]
	[ ! -e "$SPOOL/jones" ]
}

@test "RSET before HELO is 250" {
	run -0 smtp RSET QUIT
	[ "${lines[1]}" = "250 2.0.0 Reset" ]
}

@test "NOOP is 250, with or without an argument, and changes nothing" {
	run -0 smtp NOOP "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "NOOP some words" "RCPT TO:<jones>" QUIT
	[ "${lines[1]}" = "250 2.0.0 OK" ]
	[ "${lines[4]}" = "250 2.0.0 OK" ]
	[ "${lines[5]}" = "250 2.1.5 Recipient <jones> OK" ]
}

# --- HELP -----------------------------------------------------------------

@test "HELP is a multi-line 214 naming every command and the version" {
	run -0 smtp HELP QUIT
	n=$((${#lines[@]} - 2))		# the last line of HELP's reply
	[ "$n" -ge 2 ]
	for i in $(seq 1 $((n - 1))); do
		[ "${lines[$i]:0:4}" = "214-" ]
	done
	[ "${lines[$n]:0:4}" = "214 " ]
	help=$(printf '%s\n' "${lines[@]:1:n}")
	[[ "$help" == *"smtpd $VERSION"* ]]
	for verb in HELO EHLO MAIL RCPT DATA RSET SEND SOML SAML VRFY EXPN \
	    HELP NOOP QUIT TURN; do
		grep -qw "$verb" <<<"$help"
	done
	[ "$(last_reply)" = "221 2.0.0 mx.example closing connection" ]
}

@test "HELP MAIL gives MAIL's syntax in a 214" {
	run -0 smtp "HELP MAIL" "help rcpt" QUIT
	[[ "${lines[1]}" == "214 2.0.0 MAIL FROM:<"*">"* ]]
	[[ "${lines[1]}" == *SIZE=* ]]
	[[ "${lines[2]}" == "214 2.0.0 RCPT TO:<"*">"* ]]
	[ "$(codes)" = "220 214 214 221" ]
}

@test "HELP of an unknown topic is 504" {
	run -0 smtp "HELP BOGUS" QUIT
	[ "${lines[1]}" = "504 5.5.1 HELP topic unknown: BOGUS" ]
}

# --- QUIT, TURN -----------------------------------------------------------

@test "QUIT is 221 closing, exit 0, and nothing after it is answered" {
	run -0 smtp "HELO client.example" QUIT NOOP "HELO other.example"
	[ "${lines[2]}" = "221 2.0.0 mx.example closing connection" ]
	[ "${#lines[@]}" -eq 3 ]
}

@test "TURN is refused with 502" {
	run -0 smtp "HELO client.example" TURN QUIT
	[ "${lines[2]}" = "502 5.7.0 TURN refused: role reversal would hand \
mail to an unauthenticated peer" ]
	[ "$(codes)" = "220 250 502 221" ]
}

# --- VRFY, EXPN -----------------------------------------------------------

@test "VRFY of a user is 250 Full Name <user@domain>" {
	run -0 smtp "VRFY smith" "VRFY <Smith@mx.example>" QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
}

@test "VRFY by one word of a full name is 250 for its only match" {
	run -0 smtp "VRFY Fred" "VRFY bob" QUIT
	[ "${lines[1]}" = "250 2.1.5 Fred Smith <smith@mx.example>" ]
	[ "${lines[2]}" = "250 2.1.5 Bob Brown <brown@mx.example>" ]
}

@test "VRFY by a word of several full names is a multi-line 553" {
	echo "joeb:	Joe Bloggs <joeb>" >>"$TABLE"
	run -0 smtp "VRFY joe" QUIT
	[ "$(codes)" = "220 553 553 553 553 221" ]
	[ "${lines[1]:0:4}" = "553-" ]
	[ "${lines[2]:0:4}" = "553-" ]
	[ "${lines[3]:0:4}" = "553-" ]
	[ "${lines[4]}" = "553 5.1.4 User ambiguous" ]
	grep -qx '553-5.1.4 Joe Jones <jones@mx.example>' <<<"$output"
	grep -qx '553-5.1.4 Joe Bloggs <joeb@mx.example>' <<<"$output"
}

@test "VRFY of an unknown string is 550" {
	run -0 smtp "VRFY nobody" QUIT
	[ "${lines[1]}" = "550 5.1.1 String does not match anything" ]
}

@test "VRFY with -V is 252" {
	OPTS+=(-V)
	run -0 smtp "VRFY smith" QUIT
	[ "${lines[1]}" = "252 2.5.2 Cannot VRFY user, but will accept \
message and attempt delivery" ]
}

@test "EXPN with -E is 252" {
	OPTS+=(-E)
	run -0 smtp "EXPN smith" QUIT
	[ "${lines[1]}" = "252 2.5.2 EXPN is disabled on this server" ]
}

@test "EXPN of a user that is not a list is 550" {
	run -0 smtp "EXPN smith" "EXPN nobody" QUIT
	[ "${lines[1]}" = "550 5.1.1 <smith> is not a mailing list" ]
	[ "${lines[2]}" = "550 5.1.1 <nobody> is not a mailing list" ]
}

@test "EXPN of a list is a multi-line 250 of its members with full names" {
	echo "staff:	smith, jones" >>"$TABLE"
	run -0 smtp "EXPN staff" QUIT
	[ "$(codes)" = "220 250 250 221" ]
	[ "${lines[1]:0:4}" = "250-" ]
	[ "${lines[2]:0:4}" = "250 " ]
	diff -u <(printf '%s\n' "Fred Smith <smith@mx.example>" \
	    "Joe Jones <jones@mx.example>") \
	    <(printf '%s\n' "${lines[1]:10}" "${lines[2]:10}" | sort)
}

@test "EXPN of a list expands nested lists recursively" {
	printf '%s\n' "staff:	smith, jones" "all:	staff, brown" >>"$TABLE"
	run -0 smtp "EXPN all" QUIT
	[ "$(codes)" = "220 250 250 250 221" ]
	[ "${lines[1]:0:4}" = "250-" ]
	[ "${lines[2]:0:4}" = "250-" ]
	[ "${lines[3]:0:4}" = "250 " ]
	diff -u <(printf '%s\n' "Bob Brown <brown@mx.example>" \
	    "Fred Smith <smith@mx.example>" "Joe Jones <jones@mx.example>") \
	    <(printf '%s\n' "${lines[@]:1:3}" | cut -c11- | sort)
}

@test "RCPT of a list is 250 and each member gets one copy" {
	printf '%s\n' "staff:	smith, jones" "all:	staff, brown" >>"$TABLE"
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT TO:<all>" "RCPT TO:<Jones>" DATA "Subject: to all" "" "x" . \
	    QUIT
	[ "${lines[3]}" = "250 2.1.5 Recipient <all> OK" ]
	[ "$(codes)" = "220 250 250 250 250 354 250 221" ]
	[ "$(count_messages smith)" = 1 ]
	[ "$(count_messages jones)" = 1 ]
	[ "$(count_messages brown)" = 1 ]
	[ ! -e "$SPOOL/all" ]
	[ ! -e "$SPOOL/staff" ]
}

# --- wrong order, unknown commands, bad syntax -----------------------------

@test "MAIL before HELO is 503" {
	run -0 smtp "MAIL FROM:<a@example.org>" "HELO client.example" \
	    "MAIL FROM:<a@example.org>" QUIT
	[ "${lines[1]}" = "$NEED_HELO" ]
	[ "${lines[3]}" = "250 2.1.0 Sender <a@example.org> OK" ]
}

@test "RCPT before MAIL is 503" {
	run -0 smtp "HELO client.example" "RCPT TO:<jones>" QUIT
	[ "${lines[2]}" = "$NEED_MAIL" ]
}

@test "DATA before RCPT is 503, and no 354 comes" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" DATA \
	    "RCPT TO:<jones>" QUIT
	[ "${lines[3]}" = "$NEED_RCPT" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones> OK" ]
	[ "$(codes)" = "220 250 250 503 250 221" ]
}

@test "a nested MAIL is 503 and the first sender stands" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "MAIL FROM:<b@example.org>" "RCPT TO:<jones>" DATA \
	    "Subject: nested" "" "x" . QUIT
	[ "${lines[3]}" = "$NESTED" ]
	[ "$(codes)" = "220 250 250 503 250 354 250 221" ]
	[ "$(sed -n 2p "$SPOOL/jones")" = "Return-Path: <a@example.org>" ]
}

@test "an unknown command is 500 and the session goes on" {
	run -0 smtp "HELO client.example" "FOO bar" MAILX "XMAIL FROM:<a@b>" \
	    NOOP QUIT
	[ "${lines[2]}" = "500 5.5.2 Command unrecognized" ]
	[ "${lines[3]}" = "500 5.5.2 Command unrecognized" ]
	[ "${lines[4]}" = "500 5.5.2 Command unrecognized" ]
	[ "$(codes)" = "220 250 500 500 500 250 221" ]
}

@test "commands are understood in any case" {
	run -0 smtp "helo client.example" "mail from:<a@example.org>" \
	    "rcpt to:<jones>" "rSeT" "quit"
	[ "$(codes)" = "220 250 250 250 250 221" ]
}

@test "MAIL without FROM: is 501" {
	run -0 smtp "HELO client.example" "MAIL <a@example.org>" MAIL \
	    "RCPT TO:<jones>" QUIT
	syntax="501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
	[ "${lines[2]}" = "$syntax" ]
	[ "${lines[3]}" = "$syntax" ]
	[ "${lines[4]}" = "$NEED_MAIL" ]
}

@test "MAIL with an address out of angle brackets is 501" {
	run -0 smtp "HELO client.example" "MAIL FROM:a@example.org" \
	    "MAIL FROM:<a@@example.org>" QUIT
	[[ "${lines[2]}" == "501 5.1.3 "* ]]
	[[ "${lines[3]}" == "501 5.1.3 "* ]]
}

@test "RCPT without TO: is 501" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RCPT <jones>" "RCPT TO:jones" QUIT
	[ "${lines[3]}" = "501 5.5.4 Syntax: RCPT TO:<address>" ]
	[[ "${lines[4]}" == "501 5.1.3 "* ]]
}

@test "HELO and EHLO without an argument are 501" {
	run -0 smtp HELO EHLO "MAIL FROM:<a@example.org>" QUIT
	[ "${lines[1]}" = "501 5.5.4 Syntax: HELO <domain>" ]
	[ "${lines[2]}" = "501 5.5.4 Syntax: EHLO <domain>" ]
	[ "${lines[3]}" = "$NEED_HELO" ]	# neither counted as a HELO
}

@test "QUIT with an argument is 501 and the session goes on" {
	run -0 smtp "QUIT now" NOOP QUIT
	[ "${lines[1]}" = "501 5.5.4 QUIT takes no argument" ]
	[ "$(codes)" = "220 501 250 221" ]
}

@test "RSET with an argument is 501 and clears nothing" {
	run -0 smtp "HELO client.example" "MAIL FROM:<a@example.org>" \
	    "RSET all" "RCPT TO:<jones>" QUIT
	[ "${lines[3]}" = "501 5.5.4 RSET takes no argument" ]
	[ "${lines[4]}" = "250 2.1.5 Recipient <jones> OK" ]
}

@test "DATA with an argument is 501, no 354, and DATA still works after" {
	run -0 smtp "${TRANSACTION[@]:0:3}" "DATA now" DATA "Subject: x" "" \
	    "y" . QUIT
	[ "${lines[4]}" = "501 5.5.4 DATA takes no argument" ]
	[ "$(codes)" = "220 250 250 250 501 354 250 221" ]
	[ "$(count_messages jones)" = 1 ]
}

@test "VRFY and EXPN without an argument are 501" {
	run -0 smtp VRFY EXPN QUIT
	[ "${lines[1]}" = "501 5.5.4 Syntax: VRFY <user or name>" ]
	[ "${lines[2]}" = "501 5.5.4 Syntax: EXPN <mailing list>" ]
}

# --- SEND, SOML, SAML: the transaction starts (delivery is not tested) --

@test "SEND FROM: starts a transaction like MAIL" {
	run -0 smtp "HELO client.example" "SEND FROM:<smith@mx.example>" \
	    "MAIL FROM:<a@example.org>" QUIT
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@mx.example> OK" ]
	[ "${lines[3]}" = "$NESTED" ]
}

@test "SOML FROM: starts a transaction like MAIL" {
	run -0 smtp "HELO client.example" "SOML FROM:<smith@mx.example>" \
	    "SOML FROM:<a@example.org>" QUIT
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@mx.example> OK" ]
	[ "${lines[3]}" = "$NESTED" ]
}

@test "SAML FROM: starts a transaction like MAIL" {
	run -0 smtp "HELO client.example" "SAML FROM:<smith@mx.example>" \
	    "SEND FROM:<a@example.org>" QUIT
	[ "${lines[2]}" = "250 2.1.0 Sender <smith@mx.example> OK" ]
	[ "${lines[3]}" = "$NESTED" ]
}

@test "SEND, SOML and SAML need HELO and FROM:" {
	run -0 smtp "SEND FROM:<a@example.org>" "HELO client.example" \
	    "SEND <a@example.org>" "SOML <a@example.org>" "SAML" QUIT
	[ "${lines[1]}" = "$NEED_HELO" ]
	[ "${lines[3]}" = "501 5.5.4 Syntax: SEND FROM:<address> [parameters]" ]
	[ "${lines[4]}" = "501 5.5.4 Syntax: SOML FROM:<address> [parameters]" ]
	[ "${lines[5]}" = "501 5.5.4 Syntax: SAML FROM:<address> [parameters]" ]
}

# --- RFC 821 section 3.1 ------------------------------------------------

@test "RFC 821 3.1 example: Jones and Brown get the message, Green is 550" {
	run -0 smtp "HELO client.example" "MAIL FROM:<Smith@mx.example>" \
	    "RCPT TO:<Jones@mx.example>" "RCPT TO:<Green@mx.example>" \
	    "RCPT TO:<Brown@mx.example>" DATA "Blah blah blah..." \
	    "....etc. etc. etc." . QUIT
	[ "$(codes)" = "220 250 250 250 550 250 354 250 221" ]
	[ "${lines[2]}" = "250 2.1.0 Sender <Smith@mx.example> OK" ]
	[ "${lines[3]}" = "250 2.1.5 Recipient <Jones@mx.example> OK" ]
	[ "${lines[4]}" = "550 5.1.1 <Green@mx.example>: user unknown" ]
	[ "${lines[5]}" = "250 2.1.5 Recipient <Brown@mx.example> OK" ]
	[ "${lines[6]}" = "354 Start mail input; end with <CRLF>.<CRLF>" ]
	[[ "${lines[7]}" =~ ^"250 2.0.0 Delivered, id "[0-9A-Z-]+$ ]]
	[ "${lines[8]}" = "221 2.0.0 mx.example closing connection" ]
	expected() {
		printf '%s\n' "Blah blah blah..." "...etc. etc. etc." ""
	}
	diff -u <(expected) <(stored "$SPOOL/jones")
	diff -u <(expected) <(stored "$SPOOL/brown")
	diff -u "$SPOOL/jones" "$SPOOL/brown"	# one message, same header
	[ "$(count_messages jones)" = 1 ]
	[[ "$(head -n 1 "$SPOOL/jones")" == "From Smith@mx.example "* ]]
	[ ! -e "$SPOOL/green" ]
	[ ! -e "$SPOOL/Green" ]
	[ ! -e "$SPOOL/smith" ]
	[ "$(ls "$SPOOL" | sort | tr '\n' ' ')" = "brown jones " ]
}
