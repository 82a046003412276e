package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// postfixWait bounds how long a test waits for Postfix to relay, bounce and deliver:
// each happens within a second (queue delays are 1 s); the margin is for a loaded machine.
const postfixWait = 20 * time.Second

// TestPostfixRelaysBouncesAndDeliversToLMTP: a message through Postfix reaches the relay
// host for the recipient it accepts; for the recipient it refuses with 550 5.1.1, Postfix
// writes its own delivery status notification (RFC 3464) to the sender, whose domain goes
// to Dovecot's LMTP, so the bounce lands in the sender's INBOX. Mail straight to the
// sender's domain goes there too.
func TestPostfixRelaysBouncesAndDeliversToLMTP(t *testing.T) {
	sink := StartSMTPSink(t)
	gate := sink.StartRcptGate(t)
	gate.Answer(t, "gone@example.org", "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown")
	d := StartDovecot(t, &DovecotOptions{LMTP: true})
	p := StartPostfix(t, &PostfixOptions{RelayHost: gate.Addr, LMTP: d.LMTPAddr, LMTPDomains: []string{"example.test"}})
	const sender = "support@example.test"

	msg := []byte("From: " + sender + "\r\nTo: ana@example.org, gone@example.org\r\nSubject: Your order\r\n" +
		"Message-ID: <order-1@example.test>\r\n\r\nIt has shipped.\r\n")
	sendPlain(t, p.Addr, sender, []string{"ana@example.org", "gone@example.org"}, msg)
	local := []byte("From: colleague@example.org\r\nTo: " + sender + "\r\nSubject: Lunch\r\n" +
		"Message-ID: <lunch-1@example.org>\r\n\r\nAt noon?\r\n")
	sendPlain(t, p.Addr, "colleague@example.org", []string{sender}, local)

	got := sink.Wait(t, 1, postfixWait)
	if len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "ana@example.org" || got[0].MailFrom != sender {
		t.Errorf("relayed: from <%s> to %v, want from <%s> to [ana@example.org]", got[0].MailFrom, got[0].Rcpts, sender)
	}
	if !bytes.Contains(got[0].Data, []byte("Message-ID: <order-1@example.test>")) {
		t.Errorf("relayed message lost its Message-ID:\n%s", got[0].Data)
	}

	deadline := time.Now().Add(postfixWait)
	var msgs []DovecotMessage
	for {
		msgs = d.Messages(t, sender, "INBOX")
		if len(msgs) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	subjects := map[string]bool{}
	for _, m := range msgs {
		subjects[m.Subject] = true
	}
	if len(msgs) != 2 || !subjects["Lunch"] || !subjects["Undelivered Mail Returned to Sender"] {
		t.Fatalf("INBOX of %s holds %+v, want the colleague's message and Postfix's bounce\nqueue: %s", sender, msgs, p.Queue(t))
	}

	raw, err := d.Doveadm(context.Background(), nil, "fetch", "-u", sender, "text", "mailbox", "INBOX", "HEADER", "Subject", "Undelivered")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Content-Type: multipart/report; report-type=delivery-status",
		"<MAILER-DAEMON@" + postfixHostname + ">",
		"Final-Recipient: rfc822; gone@example.org",
		"Status: 5.1.1",
		"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>",
		"Message-ID: <order-1@example.test>",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the bounce lacks %q:\n%s", want, raw)
		}
	}
	if bytes.Contains(raw, []byte("ana@example.org: ")) {
		t.Errorf("the bounce reports the delivered recipient too:\n%s", raw)
	}
	lmtpHost, lmtpPort, _ := net.SplitHostPort(d.LMTPAddr)
	p.WaitLog(t, "to=<"+sender+">, relay="+lmtpHost+"["+lmtpHost+"]:"+lmtpPort)
	if q := p.Queue(t); !strings.Contains(q, "Mail queue is empty") {
		t.Errorf("postfix queue after delivery:\n%s", q)
	}
}

// TestPostfixWithoutRelayHostRefuses: without a relay host, Postfix refuses a recipient
// outside the LMTP domains at once, saying why, rather than sending anything to the
// Internet.
func TestPostfixWithoutRelayHostRefuses(t *testing.T) {
	p := StartPostfix(t, nil)
	c, err := smtp.Dial(p.Addr)
	if err != nil {
		t.Fatalf("dial postfix: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail("support@example.test", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	err = c.Rcpt("someone@example.org", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || !strings.Contains(se.Message, "no relay host") {
		t.Errorf("RCPT outside the LMTP domains: %v, want 550 saying there is no relay host", err)
	}
}
