package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestForwardNewEmailAndHistory, against Dovecot (IMAP in, submission out) and
// smtp-sink: an agent forwards a customer's message with one of its two attachments and
// a Bcc; the receiver gets "Fwd:", the note, the original inline and the chosen file
// byte-exact, not the other file, and no Bcc in the header. The agent then writes a new
// email to the same customer; the customer's answer, delivered into the inbound mailbox,
// lands in that conversation and its work item. The first item's customer history lists
// the new conversation.
func TestForwardNewEmailAndHistory(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	invoice := []byte("%PDF-1.4\n\x00\x01\x02 invoice 42 \xff\xfe\n")
	photo := []byte("\xff\xd8\xff\xe0 not the invoice")
	d.Append(t, user, "INBOX", []byte("From: Kim Lee <kim@example.org>\r\n"+
		"To: support@example.test\r\n"+
		"Subject: Broken lamp\r\n"+
		"Message-ID: <lamp-1@example.org>\r\n"+
		"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe lamp flickers; invoice and photo attached.\r\n"+
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		base64.StdEncoding.EncodeToString(invoice)+"\r\n"+
		"--b1\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; filename=\"photo.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		base64.StdEncoding.EncodeToString(photo)+"\r\n"+
		"--b1--\r\n"))

	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	h.addInbound(d, user, "support-pw")
	_, subPort := hostPort(t, d.SubmissionAddr)
	h.addOutbound("localhost", subPort, user, "support-pw")
	if _, err := h.app.Auth.EnsureUser(context.Background(), "agent", "Alex Agent", store.RoleAgent, "agent-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	var items []store.WorkItem
	waitFor(t, "the customer's work item", func() (bool, string) {
		items = allWorkItems(t, h.app.Store)
		return len(items) == 1, fmt.Sprintf("%d work items", len(items))
	})
	lamp := items[0]
	c := newAPIClient(t, h.url, "agent", "agent-pw-for-tests")

	var detail struct {
		Messages []struct {
			ID          int64 `json:"id"`
			Attachments []struct {
				ID       int64  `json:"id"`
				Filename string `json:"filename"`
			} `json:"attachments"`
		} `json:"messages"`
		CustomerHistory []struct {
			WorkItemID int64  `json:"workitem_id"`
			Subject    string `json:"subject"`
			State      string `json:"state"`
		} `json:"customer_history"`
	}
	getDetail := func() {
		t.Helper()
		status, body := c.do("GET", fmt.Sprintf("/api/v1/workitems/%d", lamp.ID), nil)
		if status != http.StatusOK {
			t.Fatalf("detail: %d %s", status, body)
		}
		if err := json.Unmarshal(body, &detail); err != nil {
			t.Fatal(err)
		}
	}
	getDetail()
	if len(detail.Messages) != 1 || len(detail.Messages[0].Attachments) != 2 {
		t.Fatalf("the customer's message: %+v, want one message with two attachments", detail.Messages)
	}
	var invoiceID int64
	for _, a := range detail.Messages[0].Attachments {
		if a.Filename == "invoice.pdf" {
			invoiceID = a.ID
		}
	}

	// Forward with the invoice only, and a Bcc.
	status, body := c.do("POST", fmt.Sprintf("/api/v1/workitems/%d/forward", lamp.ID), map[string]any{
		"to": []string{"Repair Shop <repair@example.net>"}, "bcc": []string{"audit@example.test"},
		"text": "Can you replace this lamp?", "attachment_ids": []int64{invoiceID},
	})
	if status != http.StatusAccepted {
		t.Fatalf("forward: %d %s", status, body)
	}
	fwd := sink.Wait(t, 1, waitLimit)[0]
	if !slices.Contains(fwd.Rcpts, "repair@example.net") || !slices.Contains(fwd.Rcpts, "audit@example.test") || len(fwd.Rcpts) != 2 {
		t.Errorf("forward envelope recipients %v, want repair@example.net and audit@example.test", fwd.Rcpts)
	}
	if bytes.Contains(fwd.Data, []byte("audit@example.test")) {
		t.Error("the Bcc address is in the forwarded message")
	}
	mr, err := gomail.CreateReader(bytes.NewReader(fwd.Data))
	if err != nil {
		t.Fatalf("the forward is not a message: %v\n%s", err, fwd.Data)
	}
	if s, _ := mr.Header.Subject(); s != "Fwd: Broken lamp" {
		t.Errorf("forward subject %q, want Fwd: Broken lamp", s)
	}
	files := map[string][]byte{}
	var text string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p.Body)
		switch hd := p.Header.(type) {
		case *gomail.AttachmentHeader:
			name, _ := hd.Filename()
			files[name] = b
		case *gomail.InlineHeader:
			text += string(b)
		}
	}
	if !bytes.Equal(files["invoice.pdf"], invoice) {
		t.Errorf("forwarded invoice = %q, want %q byte for byte", files["invoice.pdf"], invoice)
	}
	if _, ok := files["photo.jpg"]; ok || len(files) != 1 {
		t.Errorf("forwarded files %v, want the invoice only", slices.Collect(mapsKeys(files)))
	}
	for _, want := range []string{"Can you replace this lamp?", "Forwarded message", "From: Kim Lee <kim@example.org>", "Subject: Broken lamp", "The lamp flickers"} {
		if !strings.Contains(text, want) {
			t.Errorf("forward text lacks %q:\n%s", want, text)
		}
	}
	if wi, _ := h.app.Store.WorkItem(context.Background(), lamp.ID); wi.State != lamp.State {
		t.Errorf("after the forward the item is %s, want it unchanged (%s)", wi.State, lamp.State)
	}

	// A new email to the customer.
	status, body = c.do("POST", "/api/v1/conversations", map[string]any{
		"to": []string{"kim@example.org"}, "subject": "Your replacement lamp", "text": "A new lamp leaves today.",
	})
	if status != http.StatusCreated {
		t.Fatalf("new email: %d %s", status, body)
	}
	var created struct {
		ConversationID int64 `json:"conversation_id"`
		WorkItem       struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"workitem"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if created.WorkItem.State != store.StatePending {
		t.Errorf("the new email's item is %s, want pending (waiting for the customer)", created.WorkItem.State)
	}
	var sent testenv.SinkMessage
	for _, m := range sink.Wait(t, 2, waitLimit) {
		if bytes.Contains(m.Data, []byte("Subject: Your replacement lamp")) {
			sent = m
		}
	}
	if len(sent.Rcpts) != 1 || sent.Rcpts[0] != "kim@example.org" {
		t.Fatalf("new email envelope: %v", sent.Rcpts)
	}
	hdr, err := gomail.CreateReader(bytes.NewReader(sent.Data))
	if err != nil {
		t.Fatal(err)
	}
	newID, err := hdr.Header.MessageID()
	if err != nil || newID == "" {
		t.Fatalf("the new email has no Message-ID: %v", err)
	}

	// The customer answers it; the answer arrives in the inbound mailbox.
	d.Append(t, user, "INBOX", []byte("From: Kim Lee <kim@example.org>\r\n"+
		"To: support@example.test\r\n"+
		"Subject: Re: Your replacement lamp\r\n"+
		"Message-ID: <lamp-2@example.org>\r\n"+
		"In-Reply-To: <"+newID+">\r\nReferences: <"+newID+">\r\n"+
		"Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nThank you, it arrived.\r\n"))
	waitFor(t, "the answer in the new conversation", func() (bool, string) {
		msgs, _ := h.app.Store.ConversationMessages(context.Background(), created.ConversationID)
		wi, _ := h.app.Store.WorkItem(context.Background(), created.WorkItem.ID)
		answered := slices.ContainsFunc(msgs, func(m store.Message) bool {
			return m.Direction == store.Inbound && m.Subject == "Re: Your replacement lamp"
		})
		return len(msgs) == 2 && answered && wi.State == store.StateQueued,
			fmt.Sprintf("%d messages, item %s", len(msgs), wi.State)
	})
	if items := allWorkItems(t, h.app.Store); len(items) != 2 {
		t.Errorf("%d work items, want 2: the answer made no new one", len(items))
	}

	// The lamp item's customer history lists the other conversation.
	getDetail()
	if len(detail.CustomerHistory) != 1 || detail.CustomerHistory[0].WorkItemID != created.WorkItem.ID ||
		detail.CustomerHistory[0].Subject != "Your replacement lamp" {
		t.Errorf("customer history %+v, want the replacement lamp conversation", detail.CustomerHistory)
	}
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
