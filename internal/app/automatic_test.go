package app_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// ackTestMail is a plain message from addr; inReplyTo threads it when not empty; extra
// header lines come before the body.
func ackTestMail(addr, id, subject, inReplyTo, extra string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n", addr, subject, id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString(extra)
	b.WriteString("\r\nHello, I have a question.\r\n")
	return []byte(b.String())
}

// TestAcknowledgementOnTheWire: with the default queue's acknowledgement on, a customer's
// new conversation gets exactly one acknowledgement at the real SMTP peer, with
// Auto-Submitted: auto-replied and the null envelope sender (MAIL FROM:<>), from the
// mailbox's name; the customer's second message in it gets none; an auto-reply, a bounce
// and our own acknowledgement coming back get none (no loop); the per-address limit
// holds; the over-size notice uses its edited template; a broken template is refused.
func TestAcknowledgementOnTheWire(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	_, subPort := hostPort(t, d.SubmissionAddr)
	if _, err := h.app.EnsureMailbox(ctx, "test", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "replies", Direction: store.Outbound, Protocol: "smtp", Address: user,
			Host: "localhost", Port: subPort, Security: "starttls", Login: user, MaxSizeMB: 5, Enabled: true, IsDefault: true},
		Password: vault.NewSecret("support-pw"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.Auth.EnsureUser(ctx, "boss", "Bo Admin", store.RoleAdmin, "boss-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, h.url, "boss", "boss-pw-for-tests")
	q, err := h.app.Store.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/queues/%d/auto-replies", q.ID)

	// A template with a syntax error, or a misspelt field, is refused with the reason.
	status, body := c.do("PUT", path, map[string]any{"templates": []map[string]any{
		{"name": "acknowledgement_open", "enabled": true, "subject": "Re: {{.Subject}", "body": "Hello {{.CustomerNme}}"}}})
	if status != 400 || !strings.Contains(string(body), "the subject does not parse") || !strings.Contains(string(body), "CustomerName") {
		t.Errorf("broken template: %d %s, want 400 saying what is wrong", status, body)
	}
	status, body = c.do("PUT", "/api/v1/templates/automatic/oversize", map[string]any{"enabled": true, "subject": "Too big", "body": "{{.Nope}}"})
	if status != 400 || !strings.Contains(string(body), "can't evaluate field Nope") {
		t.Errorf("broken over-size template: %d %s", status, body)
	}
	if status, body := c.do("GET", path, nil); status != 200 || !strings.Contains(string(body), `"enabled":false`) || strings.Contains(string(body), `"enabled":true`) {
		t.Errorf("nothing may be saved by a refused PUT: %d %s", status, body)
	}

	status, body = c.do("PUT", path, map[string]any{"templates": []map[string]any{
		{"name": "acknowledgement_open", "enabled": true, "subject": "Re: {{.Subject}} [#{{.WorkItem}}]",
			"body": "Dear {{.CustomerName}}, the {{.Queue}} team has request {{.WorkItem}}. OPEN-ACK"},
		{"name": "acknowledgement_closed", "enabled": true, "subject": "Re: {{.Subject}}", "body": "CLOSED-ACK"},
		{"name": "acknowledgement_holiday", "enabled": true, "subject": "Re: {{.Subject}}", "body": "HOLIDAY-ACK"}}})
	if status != 200 || strings.Contains(string(body), `"default":true`) {
		t.Fatalf("save acknowledgements: %d %s", status, body)
	}
	if status, body := c.do("PUT", "/api/v1/templates/automatic/oversize", map[string]any{"enabled": true,
		"subject": "Re: {{.Subject}}", "body": "TOO-BIG: {{.Size}} over {{.MaxSize}} for {{.CustomerName}}"}); status != 200 {
		t.Fatalf("save over-size template: %d %s", status, body)
	}
	if status, body := c.do("PUT", "/api/v1/auto-message-limits", map[string]any{"per_conversation": 1, "per_address": 2, "window_s": 86400}); status != 200 {
		t.Fatalf("save limits: %d %s", status, body)
	}
	if status, body := c.do("PUT", "/api/v1/auto-message-limits", map[string]any{"per_conversation": 1, "per_address": 0, "window_s": 86400}); status != 400 ||
		!strings.Contains(string(body), "per_address") {
		t.Errorf("limit 0: %d %s", status, body)
	}

	dsn := "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <dsn-1@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r1\r\n\r\n" +
		"--r1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--r1\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--r1--\r\n"
	for _, raw := range [][]byte{
		ackTestMail("Alice <alice@example.org>", "a1@example.org", "Where is my parcel", "", ""),
		ackTestMail("Alice <alice@example.org>", "a2@example.org", "Re: Where is my parcel", "a1@example.org", ""),
		ackTestMail("Robot <robot@example.org>", "r1@example.org", "Out of office", "", "Auto-Submitted: auto-replied\r\n"),
		[]byte(dsn),
		ackTestMail("Carol <carol@example.org>", "c1@example.org", "First question", "", ""),
		ackTestMail("Carol <carol@example.org>", "c2@example.org", "Second question", "", ""),
		ackTestMail("Carol <carol@example.org>", "c3@example.org", "Third question", "", ""),
	} {
		d.Append(t, user, "INBOX", raw)
	}
	d.Append(t, user, "INBOX", bigMail("Scan of six megabytes", 6<<20))
	h.addInbound(d, user, "support-pw")

	waitFor(t, "every message stored", func() (bool, string) {
		n := 0
		for _, wi := range allWorkItems(t, h.app.Store) {
			msgs, _ := h.app.Store.ConversationMessages(ctx, wi.ConversationID)
			for _, m := range msgs {
				if m.Direction == store.Inbound {
					n++
				}
			}
		}
		return n == 8, fmt.Sprintf("%d inbound messages", n)
	})
	// Alice's first message, Carol's first two (the third is over the limit of two per
	// address) and the over-size notice.
	got := sink.Wait(t, 4, waitLimit)
	byRcpt := map[string][]testenv.SinkMessage{}
	for _, m := range got {
		if m.MailFrom != "" || !bytes.Contains(m.Data, []byte("Auto-Submitted: auto-replied")) {
			t.Errorf("automatic message to %v: MAIL FROM:<%s>, want <> and Auto-Submitted\n%s", m.Rcpts, m.MailFrom, m.Data)
		}
		if !bytes.Contains(m.Data, []byte(`From: "support" <support@example.test>`)) && !bytes.Contains(m.Data, []byte("From: support <support@example.test>")) {
			t.Errorf("automatic message not from the mailbox's name:\n%s", m.Data)
		}
		byRcpt[strings.Join(m.Rcpts, ",")] = append(byRcpt[strings.Join(m.Rcpts, ",")], m)
	}
	alice := byRcpt["alice@example.org"]
	if len(alice) != 1 || !bytes.Contains(alice[0].Data, []byte("Dear Alice, the "+q.Name+" team has request")) ||
		!bytes.Contains(alice[0].Data, []byte("OPEN-ACK")) || !bytes.Contains(alice[0].Data, []byte("In-Reply-To: <a1@example.org>")) {
		t.Errorf("Alice got %d acknowledgements, want one (open hours) answering her first message: %s", len(alice), firstData(alice))
	}
	if n := len(byRcpt["carol@example.org"]); n != 2 {
		t.Errorf("Carol got %d acknowledgements for three new conversations, want 2 (the limit)", n)
	}
	big := byRcpt["big@example.org"]
	if len(big) != 1 || !bytes.Contains(big[0].Data, []byte("TOO-BIG: 6.0 MB over 5 MB for Big Sender")) {
		t.Errorf("over-size notice: %s", firstData(big))
	}

	// Our acknowledgement comes back (a customer's server bounced it into our mailbox, or
	// an address of ours was the customer): it is a program's mail and gets no answer.
	back := bytes.Replace(alice[0].Data, []byte("To: "), []byte("X-Original-To: "), 1)
	back = append([]byte("Return-Path: <>\r\nTo: support@example.test\r\n"), back...)
	d.Append(t, user, "INBOX", back)
	d.Append(t, user, "INBOX", ackTestMail("Erin <erin@example.org>", "e1@example.org", "A late question", "", ""))
	// Erin's acknowledgement at the peer means the message before hers was stored too
	// (messages are stored in order): an answer to it would be in the outbox by now.
	erin := sink.Wait(t, 5, waitLimit)
	queued, _ := h.app.Store.CountOutbox(ctx, store.OutboxQueued)
	sent, _ := h.app.Store.CountOutbox(ctx, store.OutboxSent)
	if queued+sent != 5 || !slices.ContainsFunc(erin, func(m testenv.SinkMessage) bool { return slices.Contains(m.Rcpts, "erin@example.org") }) {
		for _, m := range sink.Messages(t) {
			t.Logf("to %v:\n%s", m.Rcpts, m.Data)
		}
		t.Errorf("%d queued and %d sent automatic messages, want 5 sent: an acknowledgement coming back must not be answered", queued, sent)
	}
}

func firstData(ms []testenv.SinkMessage) string {
	if len(ms) == 0 {
		return "(none)"
	}
	return string(ms[0].Data)
}
