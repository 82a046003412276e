package message

import (
	"net/mail"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// A Postfix-shaped report (RFC 3464) names the returned message and each recipient.
const postfixDSN = "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n" +
	"To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
	"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\n\r\n" +
	"--B1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n" +
	"--B1\r\nContent-Type: message/delivery-status\r\n\r\n" +
	"Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n" +
	"Final-Recipient: rfc822; bar@example.org\r\nOriginal-Recipient: rfc822;bar@example.org\r\n" +
	"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <bar@example.org>:\r\n    Recipient address rejected: user unknown\r\n\r\n" +
	"Final-Recipient: rfc822; ok@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n" +
	"--B1\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <reply-9@example.com>\r\nFrom: support@example.com\r\nSubject: Re: x\r\n\r\nbody\r\n" +
	"--B1--\r\n"

func TestBounce(t *testing.T) {
	b := Bounce([]byte(postfixDSN))
	if b == nil {
		t.Fatal("Bounce = nil for a standard report")
	}
	if b.OriginalMessageID != "reply-9@example.com" || len(b.Recipients) != 2 {
		t.Fatalf("Bounce = %+v", b)
	}
	r := b.Recipients[0]
	if r.Address != "bar@example.org" || !r.Failed() || r.Status != "5.1.1" ||
		r.Diagnostic != "550 5.1.1 <bar@example.org>: Recipient address rejected: user unknown" {
		t.Errorf("first recipient = %+v", r)
	}
	if b.Recipients[1].Failed() {
		t.Errorf("a delayed recipient counts as failed: %+v", b.Recipients[1])
	}
	// Not a report, or a report that names no returned message: nothing to match.
	for name, raw := range map[string]string{
		"plain":         "Subject: hi\r\n\r\nhello\r\n",
		"read receipt":  strings.Replace(postfixDSN, "report-type=delivery-status", "report-type=disposition-notification", 1),
		"no Message-ID": strings.Replace(postfixDSN, "Message-ID: <reply-9@example.com>\r\n", "", 1),
		"broken":        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\n\x00\x01",
	} {
		if b := Bounce([]byte(raw)); b != nil {
			t.Errorf("%s: Bounce = %+v, want nil", name, b)
		}
	}
}

func TestReplyAll(t *testing.T) {
	orig := store.Message{FromAddr: "bar@example.org", To: "Support <support@example.com>, partner@example.org",
		Cc: "Friend <friend@example.org>, SUPPORT@example.com, bar@example.org, billing@example.com"}
	d := Draft{From: mail.Address{Address: "billing@example.com"}, To: []mail.Address{{Address: "bar@example.org"}}}
	ReplyAll(&d, orig, func(a string) bool { return strings.EqualFold(a, "support@example.com") })
	var got []string
	for _, a := range d.Cc {
		got = append(got, a.String())
	}
	if strings.Join(got, ", ") != `<partner@example.org>, "Friend" <friend@example.org>` {
		t.Errorf("Cc = %v: want the customer's other recipients, without us, the From or the To", got)
	}
}
