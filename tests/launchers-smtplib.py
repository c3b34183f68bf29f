#!/usr/bin/env python3
"""python3's smtplib as the client, for launchers.bats and debian.bats
(smtplib_client in launchers-helpers.bash).

    launchers-smtplib.py PORT sendmail FROM RCPT... < message
    launchers-smtplib.py PORT steps FROM RCPT... < message

The message is read from standard input as text; smtplib turns its line
ends into CRLF and stuffs its dots.  The client says EHLO client.example.

sendmail: SMTP.sendmail(), as an application sends mail: MAIL (with SIZE=
when the server offers SIZE), RCPT one by one, DATA.  Prints
`refused RCPT: CODE TEXT' for each recipient refused, then `sent', or the
exception smtplib raised as `ExceptionName CODE TEXT'.

steps: SMTP.mail() without parameters, rcpt() for each, data(); prints
`MAIL CODE TEXT', `RCPT CODE TEXT' ..., `DATA CODE TEXT'.

intl: SMTP.send_message() of an email.message.EmailMessage from FROM
(UTF-8 allowed) with mail_options SMTPUTF8 and BODY=8BITMIME, as
applications pass them; smtplib then adds both again itself.  Prints
`sent', or the exception as for sendmail.

Both end with QUIT and print `QUIT CODE TEXT'.
"""
import smtplib
import sys

port, mode, sender, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4:]
message = sys.stdin.read()


def show(what, code, text):
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) \
        else str(text)
    print(what, code, text.replace("\n", " / "))


smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                    timeout=10)
if mode == "sendmail":
    try:
        refused = smtp.sendmail(sender, rcpts, message)
        for rcpt, (code, text) in sorted(refused.items()):
            show("refused %s:" % rcpt, code, text)
        print("sent")
    except smtplib.SMTPRecipientsRefused as e:
        for rcpt, (code, text) in sorted(e.recipients.items()):
            show("refused %s:" % rcpt, code, text)
        print("SMTPRecipientsRefused")
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        show(type(e).__name__, e.smtp_code, e.smtp_error)
elif mode == "intl":
    from email.message import EmailMessage
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(rcpts), \
        "intl"
    msg.set_content(message)
    try:
        smtp.send_message(msg, sender, rcpts,
                          mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        print("sent")
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        show(type(e).__name__, e.smtp_code, e.smtp_error)
elif mode == "steps":
    smtp.ehlo()
    show("MAIL", *smtp.mail(sender))
    for rcpt in rcpts:
        show("RCPT", *smtp.rcpt(rcpt))
    show("DATA", *smtp.data(message))
else:
    sys.exit("unknown mode " + mode)
show("QUIT", *smtp.quit())
