#!/usr/bin/env python3
"""bench/tls.py: what STARTTLS costs a session (make bench).

usage: bench/tls.py SMTPD SPOOLDIR TABLE [SESSIONS [ROUNDS]]

Starts smtpd under s6-tcpserver with s6-ucspitlsd (both on PATH), a
throwaway certificate made with openssl, and runs SESSIONS sessions one
after another (100 unless given), each a 1 KiB message to bench: in
clear through the same wrapper, and with STARTTLS, alternately, ROUNDS
times (3), and with implicit TLS under s6-tlsserver: the same handshake
by the same TLS engine with no part of smtpd's in it, what the wrapper
alone costs.  Prints a markdown table: sessions/s each way, the median
over the rounds, and the median of the rounds' ratios; STARTTLS against
implicit TLS is what smtpd's side of STARTTLS adds.
"""
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

BODY = b"Subject: bench\r\n\r\n" + b"x" * 1000 + b"\r\n"


def reply(f):
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            if not line or line[:1] not in b"23":
                raise SystemExit("bench/tls.py: unexpected reply %r" % line)
            return line


def session(port, ctx, implicit=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    if implicit:
        s = ctx.wrap_socket(s, server_hostname="bench.example")
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO bench.example\r\n")
    reply(f)
    if ctx is not None and not implicit:
        s.sendall(b"STARTTLS\r\n")
        reply(f)
        s = ctx.wrap_socket(s, server_hostname="bench.example")
        f = s.makefile("rb")
        s.sendall(b"EHLO bench.example\r\n")
        reply(f)
    for c in (b"MAIL FROM:<bench@example.test>", b"RCPT TO:<bench@example.test>",
              b"DATA"):
        s.sendall(c + b"\r\n")
        reply(f)
    s.sendall(BODY + b".\r\nQUIT\r\n")
    reply(f)
    reply(f)
    s.close()


def rate(port, ctx, n, implicit=False):
    t = time.monotonic()
    for _ in range(n):
        session(port, ctx, implicit)
    return n / (time.monotonic() - t)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    smtpd, spool, table = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    d = tempfile.mkdtemp()
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=bench.example",
                    "-keyout", key, "-out", cert], check=True,
                   stderr=subprocess.DEVNULL)
    port, port2 = free_port(), free_port()
    env = dict(os.environ, KEYFILE=key, CERTFILE=cert)
    args = [smtpd, "-n", "bench.example", "-d", "example.test", "-a", table,
            "-m", spool]
    servers = [subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for argv in (
        ["s6-tcpserver", "-c", "40", "127.0.0.1", str(port), "s6-ucspitlsd",
         "-S", "--"] + args,
        ["s6-tlsserver", "-S", "-c", "40", "127.0.0.1", str(port2)] + args)]
    try:
        for p in (port, port2):
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", p), 1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        clear, tls, implicit = [], [], []
        for r in range(rounds):
            order = [(clear, port, None, False), (tls, port, ctx, False),
                     (implicit, port2, ctx, True)]
            for values, p, c, i in order if r % 2 == 0 else reversed(order):
                values.append(rate(p, c, n, i))
        med = statistics.median
        print("| sessions/s, 1 client, 1 KiB message each | value | ratio |")
        print("|---|---:|---:|")
        print("| in clear, through s6-ucspitlsd | %.0f | |" % med(clear))
        print("| STARTTLS, through s6-ucspitlsd | %.0f | %.2f of clear |"
              % (med(tls), med([t / c for t, c in zip(tls, clear)])))
        print("| implicit TLS, s6-tlsserver (the wrapper's handshake alone) "
              "| %.0f | STARTTLS %.2f of it |"
              % (med(implicit), med([t / i for t, i in zip(tls, implicit)])))
        print()
        print("%d sessions a try, %d rounds. Per round, in clear: %s; "
              "STARTTLS: %s; implicit: %s." % (n, rounds,
              ", ".join("%.0f" % v for v in clear),
              ", ".join("%.0f" % v for v in tls),
              ", ".join("%.0f" % v for v in implicit)))
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
