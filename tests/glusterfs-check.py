#!/usr/bin/env python3
"""Helpers for tests/glusterfs.bats: SMTP sessions whose every message has
a body that follows from its subject, checks that mailboxes hold exactly
the messages they should, each once and whole, and a writer killed in
the middle of its append.

  session FILE [RCPT SUBJECT]...   one SMTP session, a message for each pair
  big FILE RCPT SUBJECT BYTES      a transaction up to its final dot (not
                                   sent: the test sends it when it likes)
  holds MAILBOX [--any-order] SUBJECT...
                                   those messages and no other, whole, in
                                   that order unless --any-order
  check SPOOL ALIAS=A,B.. NAME...  NAME.in sessions, their replies in
                                   NAME.out: every message that got 250 is
                                   once and whole in each of its mailboxes,
                                   in its session's order, none that did
                                   not is anywhere
  killgrown FILE SIZE FIFO PID...  the final dot written to FIFO, then
                                   SIGKILL to each PID as soon as FILE is
                                   longer than SIZE bytes (at most 30 s)

Every wait here is bounded; a problem is printed and the exit status is 1.
"""
import mailbox
import os
import random
import re
import signal
import sys
import time

WORDS = ("From", ">From", "from", ".", "..", "mailbox", "lock", "brick",
         "volume", "Subject:", "x" * 60, "", "\t")


def body(subject):
    """The body of the message of that subject: random lines (some of
    them From_ lookalikes, lone dots, empty lines), then a last line
    that names it."""
    rnd = random.Random(subject)
    lines = []
    for _ in range(rnd.randint(2, 40)):
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 9)))
        if rnd.random() < 0.1:
            line = "From " + line
        lines.append(line)
    return lines + ["End of %s." % subject]


def transaction(rcpt, subject, lines):
    """MAIL to DATA, the message with dot-stuffing and CRLF, no final dot."""
    out = ["MAIL FROM:<sender@example.org>", "RCPT TO:<%s>" % rcpt, "DATA",
           "Subject: " + subject, ""]
    out += ["." + l if l.startswith(".") else l for l in lines]
    return "".join(l + "\r\n" for l in out)


def session(path, pairs):
    parts = ["HELO client.example\r\n"]
    for rcpt, subject in pairs:
        parts.append(transaction(rcpt, subject, body(subject)) + ".\r\n")
    parts.append("QUIT\r\n")
    with open(path, "w") as f:
        f.write("".join(parts))


def big(path, rcpt, subject, size):
    line = "%08d a partial message, never acknowledged, never to be kept\r\n"
    with open(path, "w") as f:
        f.write("HELO client.example\r\n")
        f.write(transaction(rcpt, subject, []))
        n = i = 0
        while n < size:
            text = line % i
            f.write(text)
            n += len(text)
            i += 1


def unquote(line):
    return line[1:] if re.match(rb">+From ", line) else line


def damage(subject, raw):
    """None when raw (a message as mailbox.mbox gives it) has the body of
    its subject, else what is wrong with it."""
    head, sep, text = raw.partition(b"\n\n")
    if not sep:
        return "no end of header"
    got = b"\n".join(unquote(l) for l in text.split(b"\n")).rstrip(b"\n")
    want = "\n".join(body(subject)).encode().rstrip(b"\n")
    if got == want:
        return None
    if want.startswith(got):
        return "cut short (%d of %d bytes)" % (len(got), len(want))
    return "body differs"


def messages(path):
    """(subject, problem) for each message of the mailbox, in order."""
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(path, create=False)
    out = []
    for key in box.keys():
        subject = box.get_message(key)["Subject"] or ""
        out.append((subject, damage(subject, box.get_bytes(key))))
    return out


def holds(path, subjects, any_order):
    got = messages(path)
    problems = ["%s: %r: %s" % (path, s, p) for s, p in got if p]
    names = [s for s, _ in got]
    if (sorted(names) if any_order else names) != \
            (sorted(subjects) if any_order else subjects):
        problems.append("%s holds %r, not %r" % (path, names, subjects))
    for p in problems:
        print(p)
    return 1 if problems else 0


def replies(path):
    """The reply to each message's data in a session's output, in order
    (None for those that got none: the session ended before)."""
    with open(path, "rb") as f:
        lines = f.read().replace(b"\r", b"").decode(errors="replace")
    lines = lines.split("\n")
    return [lines[i + 1] if i + 1 < len(lines) else None
            for i, l in enumerate(lines) if l.startswith("354 ")]


def sent(path):
    """(recipient, subject) of each message of a session's input."""
    out, rcpt = [], None
    with open(path) as f:
        for line in f:
            m = re.match(r"RCPT TO:<([^>]*)>", line)
            if m:
                rcpt = m.group(1)
            m = re.match(r"Subject: (.*?)\r?$", line)
            if m and rcpt is not None:
                out.append((rcpt, m.group(1)))
                rcpt = None
    return out


def check(spool, alias, names):
    name, _, members = alias.partition("=")
    expand = {name: members.split(",")}
    want, order, boxes, acked, total, problems = {}, [], set(), 0, 0, []
    for n in names:
        msgs, got = sent(n + ".in"), replies(n + ".out")
        got += [None] * (len(msgs) - len(got))
        mine = {}
        for (rcpt, subject), reply in zip(msgs, got):
            total += 1
            ok = reply is not None and reply.startswith("250 ")
            acked += ok
            for box in expand.get(rcpt, [rcpt]):
                boxes.add(box)
                want.setdefault(box, {})[subject] = ok
                mine.setdefault(box, []).append(subject)
        order.append((n, mine))
    counts = []
    for box in sorted(boxes):
        seen, where = {}, {}
        for i, (subject, p) in enumerate(messages(os.path.join(spool, box))):
            seen[subject] = seen.get(subject, 0) + 1
            where.setdefault(subject, i)
            if p:
                problems.append("%s: %r: %s" % (box, subject, p))
            if subject not in want[box]:
                problems.append("%s: %r: never sent there" % (box, subject))
        for subject, ok in sorted(want[box].items()):
            n = seen.get(subject, 0)
            if ok and n != 1:
                problems.append("%s: %r: acknowledged, there %d times" %
                                (box, subject, n))
            if not ok and n != 0:
                problems.append("%s: %r: not acknowledged, there %d times"
                                % (box, subject, n))
        for n, mine in order:
            at = [where[s] for s in mine.get(box, []) if s in where]
            if at != sorted(at):
                problems.append("%s: the messages of session %s out of "
                                "order" % (box, os.path.basename(n)))
        counts.append("%s %d" % (box, sum(seen.values())))
    for p in problems:
        print(p)
    print("%d of %d acknowledged; %s; %d problems" %
          (acked, total, ", ".join(counts), len(problems)))
    return 1 if problems else 0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def killgrown(path, size, fifo, pids):
    """The dot from here, so that the watch starts with the delivery."""
    with open(fifo, "w") as f:
        f.write(".\r\n")
    until = time.monotonic() + 30
    while time.monotonic() < until and alive(pids[0]):
        try:
            now = os.stat(path).st_size
        except FileNotFoundError:
            now = 0
        if now > size:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            print(now)
            return 0
        time.sleep(0.0002)
    print("%s never grew past %d bytes while process %d ran" %
          (path, size, pids[0]))
    return 1


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "session":
        session(args[0], list(zip(args[1::2], args[2::2])))
        return 0
    if cmd == "big":
        big(args[0], args[1], args[2], int(args[3]))
        return 0
    if cmd == "holds":
        any_order = "--any-order" in args
        args = [a for a in args if a != "--any-order"]
        return holds(args[0], args[1:], any_order)
    if cmd == "check":
        return check(args[0], args[1], args[2:])
    if cmd == "killgrown":
        return killgrown(args[0], int(args[1]), args[2],
                         [int(p) for p in args[3:]])
    print("unknown command %r" % cmd)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
