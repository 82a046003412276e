package api

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

// TestBadInputIs4xx: input a client can send by mistake or on purpose is refused with a
// 4xx that says what to change, never a 500.
func TestBadInputIs4xx(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	id := f.items["plain.eml"].WorkItemID
	replyPath := fmt.Sprintf("/api/v1/workitems/%d/reply", id)

	// A search of 50,000 characters: 400 naming q and the limit.
	resp := c.get("/api/v1/workitems?q=" + strings.Repeat("a", 50000))
	if fields, _ := resp.json(t)["fields"].(map[string]any); resp.status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(fields["q"]), "at most") {
		t.Errorf("q of 50,000 characters: %d %s, want 400 with fields.q", resp.status, resp.body)
	}
	// The longest search allowed, of the characters a search engine might take for syntax.
	for _, q := range []string{
		strings.Repeat("a ", 250),
		strings.Repeat(`"%_*`, 125),
		strings.Repeat("é", 250),
		strings.Repeat("ab* OR NEAR(", 41),
	} {
		resp := c.get("/api/v1/workitems?q=" + url.QueryEscape(q))
		if resp.status != http.StatusOK {
			t.Errorf("q of %d characters (%.20q...): %d %s, want 200", len([]rune(q)), q, resp.status, resp.body)
		}
	}

	// JSON with something after the object.
	for _, body := range []string{`{"text": "hi"} {"text": "again"}`, `{"text": "hi"}x`, `{"text": "hi"}]`} {
		resp := c.postJSON(replyPath, body)
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "after the JSON") {
			t.Errorf("reply %s: %d %s, want 400 about data after the JSON", body, resp.status, resp.body)
		}
	}
	if resp := f.client(t).postJSON("/api/v1/session", fmt.Sprintf(`{"user": "ana", "password": %q}{}`, testPassword)); resp.status != http.StatusBadRequest {
		t.Errorf("session with data after the object: %d %s, want 400", resp.status, resp.body)
	}
	admin := f.signedIn(t, "admin")
	if resp := admin.do("PUT", fmt.Sprintf("/api/v1/mailboxes/%d", f.inbound.ID), "application/json", `{"name": "x"} {"name": "y"}`); resp.status != http.StatusBadRequest {
		t.Errorf("mailbox change with data after the object: %d %s, want 400", resp.status, resp.body)
	}

	// Reply text that is not UTF-8 (a raw 0xff byte in the JSON string).
	resp = c.postJSON(replyPath, "{\"text\": \"caf\xe9 \xff\xfe\"}")
	if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "UTF-8") {
		t.Errorf("reply with invalid UTF-8: %d %s, want 400 naming UTF-8", resp.status, resp.body)
	}
	if n, err := f.st.CountOutbox(context.Background(), store.OutboxQueued); err != nil || n != 0 {
		t.Errorf("after the refused replies the outbox holds %d items (%v), want none", n, err)
	}

	// A reply to a message without a sender address (From: <>, as bounces have).
	raw := []byte("From: <>\r\nTo: support@example.com\r\nSubject: Undeliverable\r\nMessage-ID: <nosender@example.net>\r\n\r\nYour message could not be delivered.\r\n")
	m := message.Parse(raw)
	m.MailboxID, m.Direction, m.SourceID = f.inbound.ID, store.Inbound, "imap:1:99"
	res, err := f.st.IngestMessage(context.Background(), store.InboundMessage{MailboxID: f.inbound.ID, Raw: raw, Message: m})
	if err != nil {
		t.Fatal(err)
	}
	resp = c.postJSON(fmt.Sprintf("/api/v1/workitems/%d/reply", res.WorkItemID), `{"text": "Hello"}`)
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), "no sender address") || !strings.Contains(strings.ToLower(string(resp.body)), "forward") {
		t.Errorf("reply to From: <>: %d %s, want 422 saying there is no sender address and to forward instead", resp.status, resp.body)
	}
}
