package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestPostfixBounceMarksReply: every message on a real MTA path. The customer writes
// through Postfix, which delivers to our Dovecot mailbox over LMTP; the agent replies
// and sets the item to "pending"; the reply leaves through Postfix, whose next hop
// refuses the customer with 550 5.1.1; Postfix writes its own delivery status
// notification (RFC 3464) to our address and delivers it to the same mailbox. postroom
// matches it to the reply: the API shows the reply "bounced" with Postfix's words, the
// item stays pending, no work item is created, and nothing is sent to the mail system.
func TestPostfixBounceMarksReply(t *testing.T) {
	const (
		user     = "support@example.test"
		customer = "bar@example.org"
	)
	sink := testenv.StartSMTPSink(t)
	gate := sink.StartRcptGate(t) // the customer's server, as Postfix's next hop
	gate.Answer(t, customer, "550 5.1.1 <"+customer+">: Recipient address rejected: User unknown")
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{LMTP: true})
	d.AddUser(t, user, "support-pw")
	mta := testenv.StartPostfix(t, &testenv.PostfixOptions{
		RelayHost: gate.Addr, LMTP: d.LMTPAddr, LMTPDomains: []string{"example.test"},
	})

	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	mtaHost, mtaPort := hostPort(t, mta.Addr)
	// Postfix takes mail from loopback without AUTH or TLS, as a relay on the local network.
	if _, err := h.app.EnsureMailbox(ctx, "test", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "replies", Direction: store.Outbound, Protocol: "smtp", Address: user,
			Host: mtaHost, Port: mtaPort, Security: "none", MaxSizeMB: 5, Enabled: true, IsDefault: true},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.Auth.EnsureUser(ctx, "boss", "Bo Admin", store.RoleAdmin, "boss-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, h.url, "boss", "boss-pw-for-tests")

	sendThrough(t, mta.Addr, customer, user, "From: Bar Customer <"+customer+">\r\nTo: "+user+"\r\n"+
		"Subject: Lamp arrived broken\r\nMessage-ID: <lamp-2@example.org>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\n"+
		"The lamp arrived broken, glass everywhere.\r\n")
	h.addInbound(d, user, "support-pw")
	var item store.WorkItem
	waitFor(t, "the customer's work item", func() (bool, string) {
		items := allWorkItems(t, h.app.Store)
		if len(items) > 0 {
			item = items[0]
		}
		return len(items) == 1, fmt.Sprintf("%d work items", len(items))
	})

	base := fmt.Sprintf("/api/v1/workitems/%d", item.ID)
	status, body := c.do("POST", base+"/reply", map[string]any{"text": "Sorry about the lamp, a new one is on its way.", "then": "pending"})
	if status != 202 {
		t.Fatalf("reply: %d %s", status, body)
	}
	var replied struct {
		Outbox   struct{ ID int64 } `json:"outbox"`
		WorkItem struct {
			State string `json:"state"`
		} `json:"workitem"`
	}
	if err := json.Unmarshal(body, &replied); err != nil || replied.Outbox.ID == 0 || replied.WorkItem.State != store.StatePending {
		t.Fatalf("reply answer %s (%v): want the outbox item and the work item pending", body, err)
	}

	type detail struct {
		State  string `json:"state"`
		Outbox []struct {
			ID        int64  `json:"id"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"outbox"`
		Messages []struct {
			FromAddr  string `json:"from_addr"`
			Automatic string `json:"automatic"`
		} `json:"messages"`
	}
	var got detail
	waitFor(t, "the reply shown bounced", func() (bool, string) {
		status, body := c.do("GET", base, nil)
		got = detail{}
		if status != 200 || json.Unmarshal(body, &got) != nil {
			return false, fmt.Sprintf("%d %s", status, body)
		}
		for _, o := range got.Outbox {
			if o.ID == replied.Outbox.ID && o.State == store.OutboxBounced {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s; postfix queue: %s", body, mta.Queue(t))
	})
	for _, o := range got.Outbox {
		if o.ID == replied.Outbox.ID && !strings.Contains(o.LastError, "5.1.1") {
			t.Errorf("bounced reply's last_error = %q, want Postfix's diagnostic with 5.1.1", o.LastError)
		}
	}
	if got.State != store.StatePending {
		t.Errorf("work item state after the bounce = %q, want it still pending", got.State)
	}
	var dsns int
	for _, m := range got.Messages {
		if strings.HasPrefix(strings.ToLower(m.FromAddr), "mailer-daemon@") {
			dsns++
			if m.Automatic == "" {
				t.Errorf("Postfix's bounce is not marked automatic in the conversation")
			}
		}
	}
	if dsns != 1 {
		t.Errorf("%d messages from MAILER-DAEMON in the conversation, want Postfix's bounce once", dsns)
	}
	if n := len(allWorkItems(t, h.app.Store)); n != 1 {
		t.Errorf("%d work items after the bounce, want only the customer's", n)
	}
	if b, err := h.app.Store.AddressBounce(ctx, customer); err != nil || b.Status != "5.1.1" {
		t.Errorf("bouncing address = %+v, %v; want %s bouncing with 5.1.1", b, err, customer)
	}
	// The bounce was Postfix's own, generated from the next hop's answer.
	log := mta.Log()
	if !strings.Contains(log, "to=<"+customer+">") || !strings.Contains(log, "status=bounced") ||
		!strings.Contains(log, "sender non-delivery notification") {
		t.Errorf("postfix log does not show the refused reply and its bounce:\n%s", log)
	}
	// Nobody answers a program: a message to MAILER-DAEMON would have gone through Postfix
	// to its next hop, and the next hop took none.
	if strings.Contains(strings.ToLower(log), "to=<mailer-daemon@") {
		t.Errorf("postroom wrote to the mail system:\n%s", log)
	}
	if msgs := sink.Messages(t); len(msgs) != 0 {
		t.Errorf("%d messages reached the next hop, want none", len(msgs))
	}
}

// sendThrough hands one message to the SMTP server at addr in plain text, as another
// server on the network would (smtp.SendMail insists on STARTTLS).
func sendThrough(t *testing.T, addr, from, to, data string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Hello("mx.example.org"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.SendMail(from, []string{to}, bytes.NewReader([]byte(data))); err != nil {
		t.Fatalf("send from %s to %s: %v", from, to, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}
