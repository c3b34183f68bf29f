#!/usr/bin/env python3
"""An IMAP client (RFC 3501) for dovecot.bats, talking to the test's own
Dovecot on 127.0.0.1.  Every step is printed on a line of its own as
soon as it is done, so that the test can see how far it got.

  dovecot-imap.py wait PORT SECONDS
      until the server greets (RFC 3501, 7.1.1), at most SECONDS
  dovecot-imap.py store PORT USER PASSWORD GO
      LOGIN, SELECT INBOX, then once the file GO exists (30 seconds at
      most), STORE 1 +FLAGS (\\Seen), LOGOUT
  dovecot-imap.py stream PORT USER PASSWORD ROUNDS
      ROUNDS times: APPEND a message of its own, change the flags of
      every message, mark its own \\Deleted and EXPUNGE it: each round
      has Dovecot rewrite the mbox under its write locks
"""
import imaplib
import os
import socket
import sys
import time

TIMEOUT = 90	# seconds any one command may take: a stuck server fails


def say(*words):
    print(*words, flush=True)


def ok(what, typ, data):
    if typ != "OK":
        raise SystemExit(f"{what}: {typ} {data!r}")
    return data


def connect(port, user, password):
    imap = imaplib.IMAP4("127.0.0.1", int(port), timeout=TIMEOUT)
    ok("LOGIN", *imap.login(user, password))
    say("logged in")
    return imap


def wait(port, seconds):
    end = time.monotonic() + float(seconds)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), 1) as s:
                s.settimeout(1)
                if s.recv(100).startswith(b"* OK"):
                    s.sendall(b"a LOGOUT\r\n")
                    s.recv(100)
                    return
        except OSError:
            pass
        if time.monotonic() > end:
            raise SystemExit(f"no IMAP greeting on 127.0.0.1:{port}")
        time.sleep(0.05)


def store(port, user, password, go):
    imap = connect(port, user, password)
    exists = ok("SELECT", *imap.select("INBOX"))
    say("selected", exists[0].decode())
    end = time.monotonic() + 30
    while not os.path.exists(go):
        if time.monotonic() > end:
            raise SystemExit(f"{go} never came")
        time.sleep(0.02)
    say("storing")
    typ, data = imap.store("1", "+FLAGS", "(\\Seen)")
    say("stored", typ)
    ok("STORE", typ, data)
    imap.logout()
    say("logged out")


def stream(port, user, password, rounds):
    imap = connect(port, user, password)
    ok("SELECT", *imap.select("INBOX"))
    for i in range(1, int(rounds) + 1):
        subject = f"appended by IMAP in round {i}"
        msg = f"Subject: {subject}\r\n\r\nround {i}\r\n".encode()
        ok("APPEND", *imap.append("INBOX", None, None, msg))
        ok("NOOP", *imap.noop())
        sign = "+" if i % 2 else "-"
        ok("STORE", *imap.store("1:*", sign + "FLAGS", "(\\Seen \\Answered)"))
        found = ok("SEARCH", *imap.search(None, "SUBJECT", f'"{subject}"'))
        mine = found[0].split()
        if len(mine) != 1:
            raise SystemExit(f"round {i}: {len(mine)} copies of its message")
        ok("STORE", *imap.store(mine[0], "+FLAGS", "(\\Deleted)"))
        ok("EXPUNGE", *imap.expunge())
        found = ok("SEARCH", *imap.search(None, "SUBJECT", f'"{subject}"'))
        if found[0].split():
            raise SystemExit(f"round {i}: its message is still there")
        say("round", i, "ok")
        time.sleep(0.05)
    imap.logout()
    say("logged out")


if __name__ == "__main__":
    {"wait": wait, "store": store, "stream": stream}[sys.argv[1]](*sys.argv[2:])
