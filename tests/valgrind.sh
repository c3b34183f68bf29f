#!/bin/sh
# make valgrind: one long session that uses every command (tests/
# session.smtp: twenty transactions with lists, a forward, a relayed
# and an unknown recipient, VRFY, EXPN, SOML, SAML, a refused message)
# under valgrind's memcheck; any error or leak fails.  $1: the binary
# (make valgrind links one dynamically), ./smtpd by default.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-./smtpd}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/spool"
cat >"$dir/aliases" <<'TABLE'
smith:	Fred Smith <smith>
jones:	Joe Jones <jones>
brown:	Bob Brown <brown>
postmaster: smith
staff:	smith, jones, brown
all:	staff, jq
jq:	Joe Q <jq@usc-isiq.example>
TABLE
: >"$dir/utmp"
RELAYCLIENT= TMPDIR="$dir" valgrind -q --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=1 "$bin" -e -T -n mx.example -a "$dir/aliases" \
    -m "$dir/spool" -u "$dir/utmp" -F true <tests/session.smtp \
    >"$dir/replies" 2>"$dir/log" || { cat "$dir/log"; exit 1; }
grep -c '^250 2.0.0 Delivered' "$dir/replies" | grep -qx 22 ||
	{ echo "valgrind session: expected 22 deliveries" >&2; cat "$dir/replies"; exit 1; }
echo "valgrind: clean"
