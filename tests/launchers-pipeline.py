#!/usr/bin/env python3
"""A pipelining SMTP client on a raw socket (RFC 2920), for launchers.bats
and superserver.bats (pipeline_client in launchers-helpers.bash).

    launchers-pipeline.py PORT GROUP...

Connects to 127.0.0.1:PORT and reads the greeting.  Each GROUP is a run
of lines separated by LF; the whole group, each line ending in CRLF, goes
out in a single send(), and only then are its replies read: one for each
command line, and one for the dot that ends the message lines following
a DATA, in this group or an earlier one (those lines get none).  The
arguments' bytes are sent as they are (os.fsencode), so a test can put
control characters or 8-bit bytes in them.  When the groups are done the client closes its side and reads
whatever the server still says.  Every reply line is printed as it came,
CR taken off, in the order it arrived.  Exit status 2 when a group could
not go out in one send().
"""
import os
import socket
import sys

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
replies = sock.makefile("rb")
out = sys.stdout.buffer


def reply():
    """One whole reply, multi-line ones included; None at the end."""
    while True:
        try:
            line = replies.readline()
        except OSError:         # reset: the server has gone
            return None
        if not line:
            return None
        line = line.rstrip(b"\n").rstrip(b"\r")
        out.write(line + b"\n")
        out.flush()
        if line[3:4] != b"-":
            return line


in_data = False             # inside a message, since a DATA


def expected(lines):
    """How many replies a group's lines call for."""
    global in_data
    n = 0
    for line in lines:
        if in_data:
            if line == b".":
                n, in_data = n + 1, False
            continue
        n += 1
        in_data = line.upper() == b"DATA"
    return n


status = 0
if reply() is not None:
    for group in sys.argv[2:]:
        lines = os.fsencode(group).split(b"\n")
        data = b"".join(line + b"\r\n" for line in lines)
        try:
            if sock.send(data) != len(data):
                status = 2      # not one segment's worth: not a real test
                break
        except OSError:         # the server closed first
            break
        if any(reply() is None for _ in range(expected(lines))):
            break
try:
    sock.shutdown(socket.SHUT_WR)
    while reply() is not None:
        pass
except OSError:
    pass
sys.exit(status)
