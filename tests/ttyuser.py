#!/usr/bin/env python3
# ttyuser.py: a user logged in at a terminal, for smtpd's SEND, SOML and
# SAML (smtpd.8, Terminal delivery).  Standard library only.
#
#   python3 ttyuser.py [options] UTMP OUT
#
# A new pseudo-terminal is opened (os.openpty).  Its slave side is made to
# accept messages or not (--mesg), its output processing is turned off
# (no OPOST: what reaches the master side is exactly what was written to
# the terminal, so a CR seen there is a CR the writer sent), and a utmp
# file UTMP is written holding one USER_PROCESS record that names the
# user and the slave's line ("pts/5": the path without /dev/), in the
# layout of glibc's struct utmpx on x86_64 (384 bytes a record).
#
# With --mesg y,n,... the user is logged in on several terminals, one per
# letter, each with its own record (in that order), and what reaches the
# second is written to OUT.2, the third to OUT.3, and so on.
#
# The slave's line is printed on standard output, followed by a newline
# (one line per terminal), before UTMP appears; UTMP appears whole (it is written under another name
# and renamed), so a test may wait for it to exist and then run smtpd with
# -u UTMP.
#
# Then everything arriving on the master side is read, continuously so
# that a writer never blocks, until one of:
#   - --markers "EOF\r\n" markers (default 1) have arrived on every
#     terminal (exit 0);
#   - --timeout seconds (default 10, at most 60) have passed (exit 1);
#   - SIGUSR1, SIGTERM or SIGINT arrives (exit 3): the test says that the
#     writer is done; what is still on the pty is read, until nothing more
#     comes for 0.05 s (at most 2 s), before the helper ends.  After the
#     markers the quiet it waits for is 0.3 s.
# The bytes received are then written to OUT (whole, by renaming), even
# when none arrived.  The helper always ends by itself; a test should still
# kill it by its PID in teardown if it is alive.  Exit 2: bad usage or a
# failure to set things up (said on standard error).
#
# Options:
#   --user NAME    the record's ut_user (default: the user running this)
#   --line LINE    the record's ut_line; "%s" in it stands for the slave's
#                  own line, so "pts/../%s" or "/dev/%s" name it in other
#                  ways (default "%s"); LINE is cut to 32 bytes
#   --type N       the record's ut_type (default 7, USER_PROCESS)
#   --decoys N     N other records before the user's: a BOOT_TIME record,
#                  another user's USER_PROCESS on a line that does not
#                  exist, a DEAD_PROCESS of the user on the (first) slave's
#                  line, and
#                  so on in turn (default 0)
#   --mesg y|n     y: the slave is mode 0620 (group may write: accepting
#                  messages); n: mode 0600 (default y); a list such as
#                  "y,n" opens that many terminals (8 at most)
#   --owner USER   chown the slave to USER first (needs root)
#   --no-read      do not read the master side before the end: a terminal
#                  that does not drain (what came is read at the end)
#   --fill         before UTMP appears, write to the terminal until its
#                  output queue is full (with --no-read: a terminal whose
#                  writer blocks at once); these bytes are not recorded
#   --timeout S    see above
#   --markers N    see above
import os
import pwd
import select
import signal
import struct
import sys
import termios
import time

UTMPX = struct.Struct("<hxxi32s4s32s256shhiii4i20s")	# 384 bytes
assert UTMPX.size == 384
USER_PROCESS, DEAD_PROCESS, BOOT_TIME = 7, 8, 2
MARKER = b"EOF\r\n"
# After the marker, or the end: read until the terminal has been quiet
# this long.  Told to stop (smtpd has ended), all it wrote is already
# queued on the pty, so a short quiet is enough.
QUIET, QUIET_STOPPED, QUIET_MAX = 0.3, 0.05, 2.0

stop = False


def on_signal(signum, frame):
	global stop
	stop = True


def die(msg):
	sys.stderr.write("ttyuser.py: %s\n" % msg)
	sys.exit(2)


def usage():
	die("usage: ttyuser.py [--user NAME] [--line LINE] [--type N] "
	    "[--decoys N] [--mesg y|n] [--owner USER] [--no-read] [--fill] "
	    "[--timeout S] [--markers N] UTMP OUT")


def parse_args(argv):
	o = {"user": pwd.getpwuid(os.getuid()).pw_name, "line": "%s",
	    "type": USER_PROCESS, "decoys": 0, "mesg": "y", "owner": None,
	    "read": True, "fill": False, "timeout": 10.0, "markers": 1}
	valued = {"--user": "user", "--line": "line", "--type": "type",
	    "--decoys": "decoys", "--mesg": "mesg", "--owner": "owner",
	    "--timeout": "timeout", "--markers": "markers"}
	rest = []
	i = 0
	while i < len(argv):
		a = argv[i]
		if a in valued and i + 1 < len(argv):
			o[valued[a]] = argv[i + 1]
			i += 2
		elif a == "--no-read":
			o["read"] = False
			i += 1
		elif a == "--fill":
			o["fill"] = True
			i += 1
		elif a.startswith("--"):
			usage()
		else:
			rest.append(a)
			i += 1
	o["mesg"] = o["mesg"].split(",")
	if len(rest) != 2 or not 1 <= len(o["mesg"]) <= 8 or \
	    any(m not in ("y", "n") for m in o["mesg"]):
		usage()
	try:
		o["type"] = int(o["type"])
		o["decoys"] = int(o["decoys"])
		o["markers"] = int(o["markers"])
		o["timeout"] = min(float(o["timeout"]), 60.0)
	except ValueError:
		usage()
	o["utmp"], o["out"] = rest
	return o


def record(ut_type, user, line, pid):
	now = time.time()
	return UTMPX.pack(ut_type, pid, line.encode()[:32],
	    line.encode()[-4:], user.encode()[:32], b"", 0, 0, 0,
	    int(now), int((now % 1) * 1e6), 0, 0, 0, 0, b"")


def decoy(n, user, line, pid):
	kind = n % 3
	if kind == 0:
		return record(BOOT_TIME, "reboot", "~", 0)
	if kind == 1:
		return record(USER_PROCESS, "nobody-else", "pts/nonexistent%d" % n,
		    pid + 1 + n)
	return record(DEAD_PROCESS, user, line, pid + 1 + n)


def write_whole(path, data):
	tmp = path + ".part"
	with open(tmp, "wb") as f:
		f.write(data)
	os.replace(tmp, path)


class Terminal:
	"""One pty: the master side, what was read from it, the slave."""

	def __init__(self, mesg, owner):
		self.master, self.slave = os.openpty()
		path = os.ttyname(self.slave)
		if not path.startswith("/dev/"):
			die("%s: not under /dev" % path)
		self.line = path[len("/dev/"):]
		self.got = bytearray()
		try:
			if owner is not None:
				os.chown(path, pwd.getpwnam(owner).pw_uid, -1)
			os.chmod(path, 0o620 if mesg == "y" else 0o600)
			attrs = termios.tcgetattr(self.slave)
			attrs[1] &= ~termios.OPOST	# bytes pass as written
			termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
		except (OSError, KeyError, termios.error) as e:
			die("%s: %s" % (path, e))

	def read(self):
		try:
			data = os.read(self.master, 65536)
		except OSError:		# EIO: nobody has the slave open
			return False
		self.got.extend(data)
		return len(data) > 0


def read_some(terms, wait):
	"""Read what is there, waiting up to `wait' seconds; true if any."""
	fds = {t.master: t for t in terms}
	r, _, _ = select.select(list(fds), [], [], max(wait, 0))
	got = False
	for fd in r:
		got = fds[fd].read() or got
	return got


def fill(slave):
	"""Write to the terminal until its output queue stays full."""
	os.set_blocking(slave, False)
	chunk = b"." * 1024
	full_rounds = 0
	for _ in range(200):		# bounded: 200 rounds of at most 0.05 s
		wrote = 0
		while True:
			try:
				wrote += os.write(slave, chunk)
			except BlockingIOError:
				break
			if wrote > (1 << 24):
				die("--fill: the terminal never fills")
		full_rounds = full_rounds + 1 if wrote == 0 else 0
		if full_rounds == 3:
			return
		time.sleep(0.05)	# the kernel moves data along meanwhile
	die("--fill: the terminal does not stay full")


def main():
	o = parse_args(sys.argv[1:])
	terms = [Terminal(m, o["owner"]) for m in o["mesg"]]
	if o["fill"]:
		for t in terms:
			fill(t.slave)

	for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
		signal.signal(s, on_signal)
	deadline = time.monotonic() + o["timeout"]

	sys.stdout.write("".join(t.line + "\n" for t in terms))
	sys.stdout.flush()
	pid = os.getpid()
	first = terms[0].line
	records = [decoy(n, o["user"], first, pid) for n in range(o["decoys"])]
	for t in terms:
		records.append(record(o["type"], o["user"],
		    o["line"].replace("%s", t.line), pid))
	write_whole(o["utmp"], b"".join(records))

	status = 1
	while True:
		if stop:
			status = 3
			break
		left = deadline - time.monotonic()
		if left <= 0:
			break
		if not o["read"]:
			time.sleep(min(left, 0.05))
			continue
		read_some(terms, min(left, 0.05))
		if all(t.got.count(MARKER) >= o["markers"] for t in terms):
			status = 0
			break
	# Whatever is still on its way: read until it is quiet.
	end = time.monotonic() + QUIET_MAX
	quiet_since = time.monotonic()
	quiet = QUIET_STOPPED if status == 3 else QUIET
	while time.monotonic() < end:
		if read_some(terms, 0.05):
			quiet_since = time.monotonic()
		elif time.monotonic() - quiet_since >= quiet:
			break
	for n, t in enumerate(terms):
		if o["fill"]:
			# The filling came first, whole: dots, then the writer's.
			k = 0
			while k < len(t.got) and t.got[k] == ord("."):
				k += 1
			del t.got[:k]
		write_whole(o["out"] + ("" if n == 0 else ".%d" % (n + 1)),
		    bytes(t.got))
		os.close(t.master)
		os.close(t.slave)
	sys.exit(status)


if __name__ == "__main__":
	main()
