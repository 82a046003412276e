package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// TestOverSizeConversation: a message over the mailbox's Max size is stored as its header
// with a note, not flagged unparsed (its body is missing on purpose, not broken), and the
// automatic notice it triggers follows it in the conversation, as it was sent after it.
func TestOverSizeConversation(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	// The customer's clock is a little ahead of ours, as a sender's clock may be.
	sent := time.Now().Add(2 * time.Minute).Format(time.RFC1123Z)
	raw := largeMail(1, "scan.pdf", make([]byte, 2<<20))
	raw = append([]byte("Date: "+sent+"\r\n"), raw...)
	e.d.Append(t, e.user, "INBOX", raw)
	if _, err := e.st.CreateMailbox(ctx, store.Mailbox{
		Name: "replies", Direction: store.Outbound, Protocol: "smtp", Address: e.user,
		Host: "smtp.example.test", Port: 587, Security: "starttls", Login: e.user, Enabled: true, IsDefault: true,
	}); err != nil {
		t.Fatal(err)
	}
	m := e.mailbox("support", "INBOX", e.password)
	m.MaxSizeMB = 1
	if err := e.st.UpdateMailbox(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.run(Options{})
	var items []store.WorkItem
	waitFor(t, "the over-size work item", func() (bool, string) {
		items = e.workItems()
		return len(items) == 1, ""
	})
	wi := items[0]
	if !wi.OverSize || wi.Unparsed {
		t.Errorf("work item: over size %t, unparsed %t; want over size and not unparsed", wi.OverSize, wi.Unparsed)
	}
	msgs, err := e.st.ConversationMessages(ctx, wi.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("conversation has %d messages, want the customer's and the notice", len(msgs))
	}
	customer, notice := msgs[0], msgs[1]
	if customer.Direction != store.Inbound || notice.Direction != store.Outbound {
		t.Errorf("conversation order: %s %q then %s %q; want the customer's message first, then the notice",
			msgs[0].Direction, msgs[0].Subject, msgs[1].Direction, msgs[1].Subject)
	}
	if customer.Unparsed || customer.ParseError != "" || !strings.Contains(customer.TextBody, "over this mailbox's Max size of 1 MB") {
		t.Errorf("customer's message: unparsed %t (%q), text %q", customer.Unparsed, customer.ParseError, customer.TextBody)
	}
	if !strings.Contains(notice.TextBody, "larger than the 1 MB we can accept") {
		t.Errorf("notice text %q", notice.TextBody)
	}
}
