#!/usr/bin/env python3
"""Is 127.0.0.1:PORT listened on by process PID or one of its descendants
(directly, or through a dual-stack socket on [::]:PORT)?

    launchers-listening.py PID PORT

Exit 0 when it is, 1 when not (yet).  Linux: reads /proc/net/tcp (and
tcp6, for [::]) for the
listening socket's inode and looks for it among the processes' open
files.  A superserver that could not bind the port (it was taken a
moment ago by someone else) keeps running but is not the one listening,
so the tests ask this (wait_listening, launchers-helpers.bash) before
they talk to the port.
"""
import os
import sys

root, port = int(sys.argv[1]), int(sys.argv[2])
wanted = "0100007F:%04X" % port     # 127.0.0.1, as /proc/net/tcp writes it

wanted6 = "0" * 32 + ":%04X" % port     # [::], as /proc/net/tcp6 has it

inodes = set()
for table, address in (("/proc/net/tcp", wanted), ("/proc/net/tcp6", wanted6)):
    try:
        with open(table) as f:
            next(f)
            for line in f:
                field = line.split()
                if field[1] == address and field[3] == "0A":     # LISTEN
                    inodes.add("socket:[%s]" % field[9])
    except OSError:
        pass
if not inodes:
    sys.exit(1)

parent = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/stat" % pid) as f:
            stat = f.read()
        parent[int(pid)] = int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        pass


def ours(pid):
    for _ in range(64):         # a bounded walk up the tree
        if pid == root:
            return True
        if pid not in parent or pid <= 1:
            return False
        pid = parent[pid]
    return False


for pid in filter(ours, parent):
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                sys.exit(0)
    except OSError:
        pass
sys.exit(1)
