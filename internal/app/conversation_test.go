package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestConversationOnTheWire: a customer writes to us with a partner in Cc (real Dovecot);
// the agent answers to all with a Bcc and a file (real submission to the SMTP peer): the
// peer gets every recipient, the header names the Cc and not the Bcc, and the file arrives
// byte for byte; a note never leaves. The item is marked done; an out-of-office answer to
// our reply and the bounce of our reply (RFC 3464, as Postfix writes it) arrive in the
// mailbox: the bounce marks the reply "bounced" with the server's words, and neither
// reopens the item nor gets an answer.
func TestConversationOnTheWire(t *testing.T) {
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

	d.Append(t, user, "INBOX", []byte("From: Bar Customer <bar@example.org>\r\nTo: support@example.test\r\n"+
		"Cc: Partner <partner@example.org>\r\nSubject: Lamp arrived broken\r\nMessage-ID: <lamp-1@example.org>\r\n"+
		"Date: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nThe lamp arrived broken, glass everywhere.\r\n"))
	h.addInbound(d, user, "support-pw")
	var item store.WorkItem
	waitFor(t, "the customer's work item", func() (bool, string) {
		items := allWorkItems(t, h.app.Store)
		if len(items) > 0 {
			item = items[0]
		}
		return len(items) == 1, fmt.Sprintf("%d work items", len(items))
	})

	file := append([]byte("receipt\r\n"), 0, 1, 2, 0xfe, 0xff, '\n')
	base := fmt.Sprintf("/api/v1/workitems/%d", item.ID)
	if status, body := c.do("POST", base+"/notes", map[string]any{"text": "internal-note-7 do not send"}); status != 201 {
		t.Fatalf("note: %d %s", status, body)
	}
	status, body := c.do("POST", base+"/reply", map[string]any{
		"text": "Sorry about the lamp, a new one is on its way.", "reply_all": true, "bcc": []string{"audit@example.com"},
		"attachments": []map[string]string{{"filename": "receipt.bin", "content_type": "application/octet-stream",
			"content_base64": base64.StdEncoding.EncodeToString(file)}}})
	if status != 202 {
		t.Fatalf("reply: %d %s", status, body)
	}
	got := sink.Wait(t, 1, waitLimit)[0]
	rcpts := slices.Clone(got.Rcpts)
	slices.Sort(rcpts)
	if !slices.Equal(rcpts, []string{"audit@example.com", "bar@example.org", "partner@example.org"}) {
		t.Errorf("envelope recipients %v, want the customer, the Cc and the Bcc", got.Rcpts)
	}
	if bytes.Contains(got.Data, []byte("audit@example.com")) || bytes.Contains(got.Data, []byte("internal-note-7")) {
		t.Errorf("the Bcc or the note is in the delivered message:\n%s", got.Data)
	}
	mr, err := gomail.CreateReader(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	if cc := mr.Header.Get("Cc"); !strings.Contains(cc, "partner@example.org") || strings.Contains(cc, user) {
		t.Errorf("Cc = %q, want the partner and not us", cc)
	}
	replyID, _ := mr.Header.MessageID()
	var attached []byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if ah, ok := p.Header.(*gomail.AttachmentHeader); ok {
			if name, _ := ah.Filename(); name == "receipt.bin" {
				var b bytes.Buffer
				_, _ = b.ReadFrom(p.Body)
				attached = b.Bytes()
			}
		}
	}
	if !bytes.Equal(attached, file) {
		t.Errorf("attachment at the peer = %q, want %q", attached, file)
	}
	if status, body := c.do("POST", base+"/done", nil); status != 200 || !strings.Contains(string(body), `"state":"done"`) {
		t.Fatalf("done: %d %s", status, body)
	}

	// The customer's out-of-office answer, then the bounce of our reply.
	d.Append(t, user, "INBOX", []byte("From: Bar Customer <bar@example.org>\r\nTo: support@example.test\r\n"+
		"Subject: Automatic reply: Re: Lamp arrived broken\r\nMessage-ID: <ooo-1@example.org>\r\nAuto-Submitted: auto-replied\r\n"+
		"In-Reply-To: <"+replyID+">\r\nReferences: <"+replyID+">\r\n\r\nI am out of office until Monday.\r\n"))
	d.Append(t, user, "INBOX", postfixBounce(replyID, "bar@example.org"))
	waitFor(t, "the reply marked bounced", func() (bool, string) {
		ob, _ := h.app.Store.OutboxForWorkItem(ctx, item.ID)
		for _, o := range ob {
			if o.State == store.OutboxBounced && strings.Contains(o.LastError, "550 5.1.1") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d outbox items", len(ob))
	})
	wi, err := h.app.Store.WorkItem(ctx, item.ID)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := h.app.Store.ConversationMessages(ctx, item.ConversationID)
	automatic := 0
	for _, m := range msgs {
		if m.Automatic != "" {
			automatic++
		}
	}
	if wi.State != store.StateDone || len(allWorkItems(t, h.app.Store)) != 1 || automatic != 2 {
		t.Errorf("after the auto-reply and the bounce: item %s, %d items, %d automatic messages in the conversation; want done, 1, 2",
			wi.State, len(allWorkItems(t, h.app.Store)), automatic)
	}
	if b, err := h.app.Store.AddressBounce(ctx, "bar@example.org"); err != nil || b.Status != "5.1.1" {
		t.Errorf("bouncing address = %+v, %v", b, err)
	}
	if n := len(sink.Messages(t)); n != 1 {
		t.Errorf("%d messages reached the peer, want only the reply (nobody answers a program)", n)
	}
}

// postfixBounce is a delivery status notification as Postfix writes it for a message
// whose recipient the next server refused.
func postfixBounce(messageID, rcpt string) []byte {
	return []byte("Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nTo: support@example.test\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"4C1E52C3.1\"\r\n" +
		"Message-Id: <20261207101010.4C1E52C3@mx.example.org>\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n" +
		"--4C1E52C3.1\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"This is the mail system at host mx.example.org.\r\n\r\nI'm sorry to have to inform you that your message could not\r\n" +
		"be delivered to one or more recipients.\r\n\r\n<" + rcpt + ">: host mail.example.org[192.0.2.7] said: 550 5.1.1\r\n" +
		"    <" + rcpt + ">: Recipient address rejected: User unknown\r\n\r\n" +
		"--4C1E52C3.1\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.org\r\nX-Postfix-Queue-ID: 4C1E52C3\r\nX-Postfix-Sender: rfc822; support@example.test\r\n" +
		"Arrival-Date: Mon,  7 Dec 2026 10:10:09 +0000 (UTC)\r\n\r\nFinal-Recipient: rfc822; " + rcpt + "\r\n" +
		"Original-Recipient: rfc822;" + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Remote-MTA: dns; mail.example.org\r\nDiagnostic-Code: smtp; 550 5.1.1 <" + rcpt + ">: Recipient address\r\n" +
		"    rejected: User unknown\r\n\r\n" +
		"--4C1E52C3.1\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"Return-Path: <support@example.test>\r\nFrom: support@example.test\r\nTo: " + rcpt + "\r\n" +
		"Subject: Re: Lamp arrived broken\r\nMessage-ID: <" + messageID + ">\r\n\r\n--4C1E52C3.1--\r\n")
}
