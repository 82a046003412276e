package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// TestBadInputPages: the pages answer a search too long, reply text that is not UTF-8 and a
// reply to a message without a sender with a 4xx page that says what to do, never a 500.
func TestBadInputPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "ana")

	if p := c.get("/workitems?q=" + strings.Repeat("a", 50000)); p.status >= 500 || !strings.Contains(p.body, "at most") {
		t.Errorf("search of 50,000 characters: %d, want a page saying the limit\n%.2000s", p.status, p.body)
	}

	id := f.items["plain.eml"].WorkItemID
	path := fmt.Sprintf("/workitems/%d", id)
	token := c.get(path).csrf(t)
	p := c.post(path+"/reply", url.Values{"csrf": {token}, "text": {"caf\xe9 \xff"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not valid UTF-8") {
		t.Errorf("reply with invalid UTF-8: %d, want 400 naming UTF-8\n%.3000s", p.status, p.body)
	}

	raw := []byte("From: <>\r\nTo: support@example.com\r\nSubject: Undeliverable\r\nMessage-ID: <nosender@example.net>\r\n\r\nYour message could not be delivered.\r\n")
	m := message.Parse(raw)
	m.MailboxID, m.Direction, m.SourceID = f.inbound.ID, store.Inbound, "imap:1:99"
	res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: raw, Message: m})
	if err != nil {
		t.Fatal(err)
	}
	path = fmt.Sprintf("/workitems/%d", res.WorkItemID)
	token = c.get(path).csrf(t)
	p = c.post(path+"/reply", url.Values{"csrf": {token}, "text": {"Hello"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "no sender address") {
		t.Errorf("reply to From: <>: %d, want 422 saying there is no sender address\n%.3000s", p.status, p.body)
	}
	if n, err := f.st.CountOutbox(ctx, store.OutboxQueued); err != nil || n != 0 {
		t.Errorf("the outbox holds %d items (%v) after refused replies, want none", n, err)
	}
}
