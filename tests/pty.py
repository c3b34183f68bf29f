#!/usr/bin/env python3
# pty.py: run a command on a new pseudo-terminal and type lines at it, as a
# person at a terminal would.  Standard library only.
#
#   python3 pty.py [--input FILE] [--timeout SECONDS] [--no-eof] -- command [arg...]
#
# The command's standard input, output and error are the slave side of a new
# pty (it is the command's controlling terminal, so isatty(0) is true); the
# terminal keeps its default modes (echo on, canonical input, ONLCR output).
#
# The lines of FILE (default: standard input of pty.py) are typed one by one,
# each ended with LF.  Before the first line the helper waits for the first
# reply (an output line starting with three digits and a space, or only three
# digits: the greeting); after each line it waits for the reply to that line.
# After a 354 reply the lines that follow are message text: they are typed
# without waiting, up to and including a line holding a single dot, whose
# reply is then waited for.  When every line is typed and answered, end of
# file (^D) is typed (unless --no-eof) and the command is waited for.
# If the command exits early, typing stops.
#
# Everything the command wrote to the terminal (the echo of the typed lines
# included; line ends are CR LF as the terminal sends them) is printed on
# standard output.  The exit status is the command's, 128+N when it was
# killed by signal N, 127 when it could not be run, and 124 when the whole
# run took longer than --timeout seconds (default 10): the command is then
# killed by its PID.
import os
import sys

# This file is named pty.py: keep its own directory out of the module path,
# or `import pty' would find this file instead of the standard module.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path
	if os.path.abspath(p or os.curdir) != _here]

import pty
import re
import select
import signal
import time

REPLY = re.compile(rb"^[0-9]{3}( |$)")


def usage():
	sys.stderr.write("usage: pty.py [--input FILE] [--timeout SECONDS] "
	    "[--no-eof] -- command [arg...]\n")
	sys.exit(2)


def parse_args(argv):
	infile, timeout, eof = None, 10.0, True
	i = 0
	while i < len(argv):
		a = argv[i]
		if a == "--":
			i += 1
			break
		if a == "--input" and i + 1 < len(argv):
			infile = argv[i + 1]
			i += 2
		elif a == "--timeout" and i + 1 < len(argv):
			timeout = float(argv[i + 1])
			i += 2
		elif a == "--no-eof":
			eof = False
			i += 1
		else:
			usage()
	if i >= len(argv):
		usage()
	return infile, timeout, eof, argv[i:]


class Terminal:
	"""The master side of the pty, with everything read from it."""

	def __init__(self, fd, pid, deadline):
		self.fd, self.pid, self.deadline = fd, pid, deadline
		self.out = bytearray()
		self.closed = False	# the slave side is gone (EIO)
		self.status = None	# wait status once reaped

	def reap(self):
		if self.status is None:
			pid, st = os.waitpid(self.pid, os.WNOHANG)
			if pid == self.pid:
				self.status = st
		return self.status is not None

	def read_some(self, wait):
		"""Read what is there, waiting up to `wait' seconds for it."""
		if self.closed:
			return False
		r, _, _ = select.select([self.fd], [], [], max(wait, 0))
		if not r:
			return False
		try:
			data = os.read(self.fd, 65536)
		except OSError:		# EIO: no process holds the slave
			data = b""
		if not data:
			self.closed = True
			return False
		self.out += data
		return True

	def left(self):
		return self.deadline - time.monotonic()

	def wait_reply(self, start, skip):
		"""Wait for a reply line in the output after offset `start';
		the first line equal to `skip' (the echo) does not count."""
		while self.left() > 0:
			lines = bytes(self.out[start:]).split(b"\n")
			for line in lines[:-1]:		# complete lines only
				line = line.rstrip(b"\r")
				if skip is not None and line == skip:
					skip = None
					continue
				if REPLY.match(line):
					return line
			if self.closed or (self.reap() and not self.read_some(0)):
				return None
			self.read_some(min(self.left(), 0.1))
		return None

	def type(self, data):
		try:
			os.write(self.fd, data)
			return True
		except OSError:
			return False


def main():
	infile, timeout, eof, command = parse_args(sys.argv[1:])
	if infile is None:
		text = sys.stdin.buffer.read()
	else:
		with open(infile, "rb") as f:
			text = f.read()
	lines = text.split(b"\n")
	if lines and lines[-1] == b"":
		lines.pop()
	deadline = time.monotonic() + timeout

	pid, fd = pty.fork()
	if pid == 0:
		try:
			os.execvp(command[0], command)
		except OSError as e:
			os.write(2, ("pty.py: %s: %s\n" % (command[0],
			    e.strerror)).encode())
		os._exit(127)

	t = Terminal(fd, pid, deadline)
	timed_out = False
	if t.wait_reply(0, None) is None and t.left() <= 0:
		timed_out = True
	in_data = False
	for line in lines:
		if timed_out or t.closed or t.reap():
			break
		start = len(t.out)
		if not t.type(line + b"\n"):
			break
		if in_data and line != b".":
			continue	# message text: no reply comes
		in_data = False
		reply = t.wait_reply(start, line)
		if reply is None:
			timed_out = t.left() <= 0
			if timed_out:
				break
		elif reply.startswith(b"354"):
			in_data = True
	if eof and not timed_out and not t.closed and not t.reap():
		t.type(b"\x04")	# ^D at the start of a line: end of input
	# Collect the rest of the output until the command is gone.
	while not timed_out:
		if t.reap() and not t.read_some(0.05):
			break
		if t.left() <= 0:
			timed_out = True
			break
		if t.closed:
			time.sleep(0.05)	# output is over; wait for the exit
		else:
			t.read_some(min(t.left(), 0.1))
	if timed_out and not t.reap():
		try:
			os.kill(pid, signal.SIGKILL)
		except ProcessLookupError:
			pass
		_, t.status = os.waitpid(pid, 0)
	while t.read_some(0):
		pass
	os.close(fd)
	sys.stdout.buffer.write(bytes(t.out))
	sys.stdout.buffer.flush()
	if timed_out:
		sys.exit(124)
	if os.WIFSIGNALED(t.status):
		sys.exit(128 + os.WTERMSIG(t.status))
	sys.exit(os.WEXITSTATUS(t.status))


if __name__ == "__main__":
	main()
