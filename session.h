/*
 * session.h: the dialogue (session.c): the session itself, the limits
 * on a client's refusals and idle commands, and every reply's text.
 */
#ifndef SESSION_H
#define SESSION_H

#include "smtpd.h"

#define ERROR_LIMIT	20	/* smtpd.8: refusals before 421 */
#define JUNK_LIMIT	100	/* smtpd.8: NOOP, RSET, VRFY... before 421 */

/*
 * Every reply, basic and RFC 3463 enhanced code side by side.  They are
 * sent with enhanced codes whether or not the client said EHLO (smtpd.8,
 * THE DIALOGUE); the compiler checks each use against its format.
 */
#define REPLY_GREETING	"220 %s ESMTP smtpd " SMTPD_VERSION
#define REPLY_CLOSING	"221 2.0.0 %s closing connection"
#define REPLY_TLS_GO	"220 2.0.0 Ready to start TLS"
#define REPLY_HELP_LIST	"214-2.0.0 %s"
#define REPLY_HELP_END	"214 2.0.0 %s"
#define REPLY_HELLO	"250 %s"
#define REPLY_EHLO	"250-%s"
#define REPLY_EHLO_LAST	"250 %s"
#define REPLY_OK	"250 2.0.0 OK"
#define REPLY_RESET	"250 2.0.0 Reset"
#define REPLY_SENDER_OK	"250 2.1.0 Sender <%s> OK"
#define REPLY_RCPT_OK	"250 2.1.5 Recipient <%s> OK"
#define REPLY_DELIVERED	"250 2.0.0 Delivered, id %s"
#define REPLY_USER	"250 2.1.5 %s"
#define REPLY_LIST_NEXT	"250-2.1.5 %s"
#define REPLY_FORWARD	"251 2.1.5 User not local; will forward to <%s>"
#define REPLY_NO_VRFY	"252 2.5.2 Cannot VRFY user, but will accept " \
			"message and attempt delivery"
#define REPLY_NO_EXPN	"252 2.5.2 EXPN is disabled on this server"
#define REPLY_DATA	"354 Start mail input; end with <CRLF>.<CRLF>"
#define REPLY_DATA_TTY	"354 Enter the message; end with a line holding " \
			"a single dot"
#define REPLY_CONFIG	"421 4.3.0 %s local configuration error"
#define REPLY_TIMEOUT	"421 4.4.2 %s timeout"
#define REPLY_SHUTDOWN	"421 4.3.2 %s shutting down"
#define REPLY_NOT_SMTP	"421 4.7.0 %s not an SMTP client"
#define REPLY_ERRORS	"421 4.7.0 %s too many errors, closing connection"
#define REPLY_JUNK	"421 4.7.0 %s too many commands without mail, " \
			"closing connection"
#define REPLY_TLS_DOWN	"454 4.7.0 TLS not available due to temporary reason"
#define REPLY_NOT_ACTIVE "450 4.2.1 User not active or not accepting messages"
#define REPLY_NOT_SENT	"451 4.2.1 Could not write to the terminal of <%s>"
#define REPLY_LOCAL	"451 4.3.0 Local error in processing: %s"
#define REPLY_FILTER_TEMP "451 4.7.1 Content filter %s, try again later"
#define REPLY_TOO_MANY	"452 4.5.3 Too many recipients"
#define REPLY_NO_SPACE	"452 4.3.1 Insufficient system storage"
#define REPLY_UNKNOWN	"500 5.5.2 Command unrecognized"
#define REPLY_TOO_LONG	"500 5.5.6 Line too long (512 octets at most)"
#define REPLY_BAD_LINE	"500 5.5.2 Bare CR or NUL in command line"
#define REPLY_SYNTAX	"501 5.5.4 Syntax: %s"
#define REPLY_BAD_PATH	"501 5.1.3 Bad address syntax: %s"
#define REPLY_BAD_HELO	"501 5.5.4 Syntax: %s <domain>"
#define REPLY_NO_ARG	"501 5.5.4 %s takes no argument"
#define REPLY_TURN	"502 5.7.0 TURN refused: role reversal would hand " \
			"mail to an unauthenticated peer"
#define REPLY_NO_TLS	"502 5.5.1 STARTTLS not available"
#define REPLY_TLS_IN_TX	"503 5.5.1 STARTTLS not inside a transaction"
#define REPLY_SEQUENCE	"503 5.5.1 Bad sequence of commands"
#define REPLY_NEED_HELO	"503 5.5.1 Send HELO or EHLO first"
#define REPLY_NESTED	"503 5.5.1 Sender already specified"
#define REPLY_NEED_MAIL	"503 5.5.1 Need MAIL before RCPT"
#define REPLY_NEED_RCPT	"503 5.5.1 Need RCPT before DATA"
#define REPLY_HELP_NONE	"504 5.5.1 HELP topic unknown: %s"
#define REPLY_NEED_TLS	"530 5.7.0 Must issue a STARTTLS command first"
#define REPLY_NO_USER	"550 5.1.1 <%s>: user unknown"
#define REPLY_NOWHERE	"550 5.1.1 <%s>: this alias leads to no mailbox"
#define REPLY_NO_MATCH	"550 5.1.1 String does not match anything"
#define REPLY_NOT_LIST	"550 5.1.1 <%s> is not a mailing list"
#define REPLY_BAD_BOX	"550 5.1.3 <%s>: mailbox name not allowed"
#define REPLY_RELAY	"550 5.7.1 relaying denied"
#define REPLY_NOT_LOCAL	"551 5.1.6 User not local; please try <%s>"
#define REPLY_MAIL_SIZE	"552 5.3.4 Message size exceeds fixed maximum " \
			"message size (%lld)"
#define REPLY_AMBIGUOUS	"553 5.1.4 User ambiguous"
#define REPLY_AMBIG_ONE	"553-5.1.4 %s"
#define REPLY_UTF8	"553 5.6.7 Must declare SMTPUTF8 to send UTF-8 " \
			"addresses"
#define REPLY_FILTERED	"554 5.7.1 %s"
#define REPLY_EARLY	"554 5.5.1 %s talked before the greeting"
#define REPLY_LOOP	"554 5.4.6 Too many Received: headers (mail loop)"
#define REPLY_BARE_EOL	"554 5.6.0 Message refused: bare CR or LF in " \
			"the data (lines must end in CRLF)"
#define REPLY_NUL	"554 5.6.0 Message refused: NUL byte in the data"
#define REPLY_PARAM	"555 5.5.4 Parameter not recognized: %s"
#define REPLY_PARAM_BAD	"501 5.5.4 Bad parameter: %s"

int	session_run(void);
void	session_refuse(void);

#endif
