#!/usr/bin/env python3
"""TLS clients for tests/tls.bats, where openssl s_client cannot say
what is needed.  Each prints the server's replies, one a line, and exits
0 if the dialogue went as asked.  The certificate is the test's own
throwaway: it is not verified.

usage: tls-client.py MODE PORT
  starttls  smtplib: EHLO, starttls(), a message to jones
  smtps     smtplib.SMTP_SSL (implicit TLS): a message to jones
  inject    STARTTLS, RSET and MAIL in one write; then, in TLS, EHLO,
            MAIL and QUIT: every reply after the handshake is printed
  again     after STARTTLS: MAIL without EHLO, EHLO, STARTTLS, QUIT
  drop      STARTTLS, its 220, then the connection closed mid-handshake
"""
import smtplib
import socket
import ssl
import sys

MESSAGE = b"Subject: over TLS\r\n\r\nHello over TLS.\r\n"
TIMEOUT = 20


def context():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def replies(f):
    """One SMTP reply, its lines as read."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            break
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            break
    for line in lines:
        print(line)
    return lines


def plain(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    f = s.makefile("rb")
    replies(f)                       # 220
    return s, f


def tls_dialogue(s, commands):
    t = context().wrap_socket(s, server_hostname="mx.test")
    f = t.makefile("rb")
    for c in commands:
        t.sendall(c + b"\r\n")
        replies(f)
    t.close()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "starttls":
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as c:
            c.ehlo("client.example")
            c.starttls(context=context())
            c.ehlo("client.example")
            c.sendmail("sender@example.org", ["jones"], MESSAGE)
        print("sent")
    elif mode == "smtps":
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=TIMEOUT,
                              context=context()) as c:
            code, text = c.ehlo("client.example")
            print(code, text.decode().replace("\n", " "))
            c.sendmail("sender@example.org", ["jones"], MESSAGE)
        print("sent")
    elif mode == "inject":
        s, f = plain(port)
        s.sendall(b"EHLO client.example\r\n")
        replies(f)
        # CVE-2011-0411: commands behind STARTTLS, in the same write
        s.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.net>\r\n")
        replies(f)                   # 220 and nothing else in clear
        print("-- TLS")
        tls_dialogue(s, [b"EHLO client.example",
                         b"RCPT TO:<jones>", b"QUIT"])
    elif mode == "again":
        s, f = plain(port)
        s.sendall(b"EHLO before.example\r\n")
        replies(f)
        s.sendall(b"STARTTLS\r\n")
        replies(f)
        print("-- TLS")
        tls_dialogue(s, [b"MAIL FROM:<a@example.org>",
                         b"EHLO client.example", b"STARTTLS", b"QUIT"])
    elif mode == "drop":
        s, f = plain(port)
        s.sendall(b"EHLO client.example\r\nSTARTTLS\r\n")
        replies(f)
        replies(f)
        s.sendall(b"\x16\x03\x01\x00")   # the start of a ClientHello
        s.close()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
