#!/usr/bin/env python3
"""Helpers for tests/delivery.bats: make messages whose body carries its
own checksum, check a mailbox holds them whole, hold a mailbox's locks
the way mail readers do, and kill a writer in the middle of its append.

  gen DIR SESSIONS MESSAGES SEED   DIR/session.N: one SMTP session each
  big FILE BYTES SUBJECT           one SMTP transaction, message > BYTES
  check MAILBOX SESSIONS MESSAGES  every message once, whole, in order
  lock MAILBOX ROUNDS HOLD GAP READY LOG
                                   a reader taking the locks ROUNDS times
  killwrite MAILBOX OLDSIZE IN OUT SMTPD ARGS...
                                   SIGKILL smtpd once MAILBOX has grown
  immutable FILE on|off            chattr +i / -i
  swaplock LOCK NEW                LOCK made mutable, NEW renamed onto it

Every wait here is bounded; a problem is printed and the exit status is 1.
"""
import errno
import fcntl
import hashlib
import mailbox
import os
import random
import re
import signal
import subprocess
import sys
import time

WORDS = ("From", ">From", "from", "alpha", "beta", "gamma", ".", "..",
         "mailbox", "lock", "delta", "Subject:", "x" * 70, "", "\t")


def quote(line):
    """mboxrd: a '>' before ^>*From ."""
    return ">" + line if re.match(r">*From ", line) else line


def unquote(line):
    return line[1:] if re.match(rb">+From ", line) else line


def body_lines(rnd, size):
    """Random lines of about size bytes, some of them From_ lookalikes,
    lone dots and empty lines, then a Checksum: line over them all."""
    lines, n = [], 0
    while n < size:
        k = rnd.randint(0, 12)
        line = " ".join(rnd.choice(WORDS) for _ in range(k))
        if rnd.random() < 0.05:
            line = "From " + line
        lines.append(line)
        n += len(line) + 1
    digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    return lines + ["Checksum: " + digest]


def smtp_message(headers, lines):
    """DATA's lines with dot-stuffing and CRLF, and the final dot."""
    out = [h + "\r\n" for h in headers] + ["\r\n"]
    out += [("." + l if l.startswith(".") else l) + "\r\n" for l in lines]
    return "".join(out) + ".\r\n"


def gen(outdir, sessions, messages, seed):
    rnd = random.Random(seed)
    for s in range(1, sessions + 1):
        parts = ["HELO s%d.example\r\n" % s]
        for m in range(1, messages + 1):
            parts.append("MAIL FROM:<s%d@example.org>\r\n" % s)
            parts.append("RCPT TO:<jones>\r\nDATA\r\n")
            parts.append(smtp_message(
                ["Subject: session %d message %d" % (s, m),
                 "X-Session: %d" % s, "X-Seq: %d" % m],
                body_lines(rnd, rnd.choice((200, 3000, 20000, 70000)))))
        parts.append("QUIT\r\n")
        with open(os.path.join(outdir, "session.%d" % s), "w") as f:
            f.write("".join(parts))


def big(path, size, subject):
    line = "the quick brown fox jumps over the lazy dog " * 2
    with open(path, "w") as f:
        f.write("HELO big.example\r\nMAIL FROM:<big@example.org>\r\n"
                "RCPT TO:<jones>\r\nDATA\r\nSubject: %s\r\n\r\n" % subject)
        n, i = 0, 0
        while n < size:
            text = "%08d %s\r\n" % (i, line)
            f.write(text)
            n += len(text)
            i += 1
        f.write(".\r\nQUIT\r\n")


def whole(raw):
    """None if a message as mailbox.mbox gives it (From_ line off) is
    whole, else what is wrong.  The body's last non-empty line must be
    its checksum, right for the (unquoted) lines before it."""
    head, sep, body = raw.partition(b"\n\n")
    if not sep:
        return "no end of header"
    lines = body.split(b"\n")
    while lines and lines[-1] == b"":
        lines.pop()
    if not lines or not lines[-1].startswith(b"Checksum: "):
        return "cut short: last line %r" % (lines[-1:] or [b""])[0][:60]
    data = b"\n".join(unquote(l) for l in lines[:-1]) + b"\n"
    if hashlib.sha256(data).hexdigest().encode() != lines[-1][10:]:
        return "body damaged: checksum does not match"
    return None


def check(path, sessions, messages):
    box = mailbox.mbox(path, create=False)
    seen = {}
    problems = []
    keys = box.keys()
    for k in keys:
        msg = box.get_message(k)
        raw = box.get_bytes(k)
        tag = "message %d (%s)" % (k + 1, msg["Subject"])
        why = whole(raw)
        if why:
            problems.append("%s: %s" % (tag, why))
        try:
            s, m = int(msg["X-Session"]), int(msg["X-Seq"])
        except (TypeError, ValueError):
            problems.append("%s: no X-Session/X-Seq" % tag)
            continue
        if msg["Subject"] != "session %d message %d" % (s, m):
            problems.append("%s: headers do not match" % tag)
        seen.setdefault(s, []).append(m)
    for s in range(1, sessions + 1):
        got = seen.pop(s, [])
        if got != list(range(1, messages + 1)):
            problems.append("session %d: messages %s" % (s, got))
    for s in seen:
        problems.append("session %d: unexpected" % s)
    for p in problems:
        print(p)
    print("%d messages, %d problems" % (len(keys), len(problems)))
    return 1 if problems else 0


def consistent(fd):
    """What a reader holding the locks may demand: whole messages only.
    Read through the locked descriptor: closing another one of the same
    file would drop the process's fcntl() locks (POSIX)."""
    chunks, off = [], 0
    while True:
        chunk = os.pread(fd, 1 << 20, off)
        if not chunk:
            break
        chunks.append(chunk)
        off += len(chunk)
    data = b"".join(chunks)
    if data and not data.endswith(b"\n\n"):
        return "mailbox does not end with a blank line"
    for raw in re.split(rb"(?:^|\n\n)From [^\n]*\n", data)[1:]:
        why = whole(raw)
        if why:
            return why
    return None


def retry(what, fn, until):
    """fn() until it does not raise EAGAIN/EEXIST/EACCES, or the time
    is up (then exit 1)."""
    delay = 0.002
    while True:
        try:
            return fn()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EEXIST, errno.EACCES):
                raise
        if time.monotonic() > until:
            print("reader: could not take the %s lock in time" % what)
            sys.exit(1)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def lock(path, rounds, hold, gap, ready, log):
    """The reader: each round takes one of (all three, the dot-lock
    alone, fcntl alone, flock alone), checks the mailbox is whole, holds
    it, checks nobody wrote meanwhile, lets go.  The dot-lock is made the
    procmail way: <mailbox>.lock with O_EXCL."""
    modes = ("all", "dotlock", "fcntl", "flock")
    bad = 0
    out = open(log, "w")
    for r in range(rounds):
        mode = modes[r % len(modes)]
        until = time.monotonic() + 30
        fd = os.open(path, os.O_RDWR)
        dot = None
        if mode in ("all", "dotlock"):
            dot = retry("dot", lambda: os.open(path + ".lock",
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444), until)
        if mode in ("all", "fcntl"):
            retry("fcntl", lambda: fcntl.lockf(fd, fcntl.LOCK_EX |
                  fcntl.LOCK_NB), until)
        if mode in ("all", "flock"):
            retry("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX |
                  fcntl.LOCK_NB), until)
        before = os.fstat(fd)
        why = consistent(fd)
        if r == 0:
            open(ready, "w").close()
        time.sleep(hold)
        after = os.fstat(fd)
        if after.st_size != before.st_size or \
                after.st_mtime_ns != before.st_mtime_ns:
            why = (why or "") + " written while locked (%d -> %d bytes)" % (
                before.st_size, after.st_size)
        if dot is not None:
            os.close(dot)
            os.unlink(path + ".lock")
        os.close(fd)		# lets go of fcntl and flock
        out.write("round %d %s size %d %s\n" % (r + 1, mode, before.st_size,
                  why or "ok"))
        out.flush()
        bad += why is not None
        time.sleep(gap)
    out.close()
    return 1 if bad else 0


def killwrite(path, oldsize, infile, outfile, argv):
    """Start smtpd (argv) reading infile, and SIGKILL it as soon as the
    mailbox is longer than oldsize: it is then inside its append (or its
    fsync), holding the locks.  Prints the mailbox's size at the kill."""
    with open(infile, "rb") as i, open(outfile, "wb") as o:
        proc = subprocess.Popen(argv, stdin=i, stdout=o,
                                stderr=subprocess.DEVNULL)
    try:
        until = time.monotonic() + 60
        while time.monotonic() < until and proc.poll() is None:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            if size > oldsize:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                print(size)
                return 0
        print("the mailbox never grew while smtpd ran (status %s)" %
              proc.poll())
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10


def immutable(path, on):
    """chattr +i / -i, without needing e2fsprogs."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        flags = int.from_bytes(buf[:4], sys.byteorder)
        flags = flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS,
                    flags.to_bytes(4, sys.byteorder) + bytes(4))
    finally:
        os.close(fd)


def swaplock(lock, new):
    """Make lock removable again and put new in its place at once, so
    that no one trying to take it can slip in between."""
    immutable(lock, False)
    os.rename(new, lock)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        gen(args[0], int(args[1]), int(args[2]), args[3])
        return 0
    if cmd == "big":
        big(args[0], int(args[1]), args[2])
        return 0
    if cmd == "check":
        return check(args[0], int(args[1]), int(args[2]))
    if cmd == "lock":
        return lock(args[0], int(args[1]), float(args[2]), float(args[3]),
                    args[4], args[5])
    if cmd == "killwrite":
        return killwrite(args[0], int(args[1]), args[2], args[3], args[4:])
    if cmd == "immutable":
        try:
            immutable(args[0], args[1] == "on")
        except OSError as e:
            print("%s: %s" % (args[0], e.strerror))
            return 1
        return 0
    if cmd == "swaplock":
        swaplock(args[0], args[1])
        return 0
    print("unknown command %s" % cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
