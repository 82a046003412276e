package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestReplyCollisionGuard: a reply that says which message its agent saw is refused with
// 409 and the new message once the customer wrote again; "confirm": true sends it, and so
// does the new latest_message_id.
func TestReplyCollisionGuard(t *testing.T) {
	f, _ := routingFixture(t)
	ctx := t.Context()
	ingest := func(source, msgID, inReplyTo, text string) store.IngestResult {
		t.Helper()
		res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID,
			Raw: []byte("Subject: Broken lamp\r\n\r\n" + text + "\r\n"),
			Message: store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: source, MessageID: msgID, InReplyTo: inReplyTo,
				Subject: "Broken lamp", FromAddr: "bar@example.org", To: "support@example.com", TextBody: text}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := ingest("conv:1", "lamp@example.org", "", "glass everywhere")
	base := fmt.Sprintf("/api/v1/workitems/%d", first.WorkItemID)
	ana := f.signedIn(t, "ana")

	var detail struct {
		LatestMessageID int64 `json:"latest_message_id"`
	}
	resp := ana.get(base)
	if err := json.Unmarshal(resp.body, &detail); err != nil || detail.LatestMessageID != first.MessageID {
		t.Fatalf("latest_message_id = %d (%v), want %d: %s", detail.LatestMessageID, err, first.MessageID, resp.body)
	}
	seen := detail.LatestMessageID

	second := ingest("conv:2", "lamp2@example.org", "lamp@example.org", "and the bulb too")
	if second.ConversationID != first.ConversationID {
		t.Fatalf("the follow-up started conversation %d, want %d", second.ConversationID, first.ConversationID)
	}

	resp = ana.postJSON(base+"/reply", fmt.Sprintf(`{"text":"A new lamp is on its way.","seen_message_id":%d}`, seen))
	if resp.status != http.StatusConflict {
		t.Fatalf("reply to a changed conversation: %d %s, want 409", resp.status, resp.body)
	}
	var refused struct {
		Error       string `json:"error"`
		NewMessages []struct {
			ID       int64  `json:"id"`
			TextBody string `json:"text_body"`
		} `json:"new_messages"`
		LatestMessageID int64 `json:"latest_message_id"`
	}
	if err := json.Unmarshal(resp.body, &refused); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(refused.Error, "1 new message from the customer") || !strings.Contains(refused.Error, `"confirm": true`) {
		t.Errorf("explanation = %q", refused.Error)
	}
	if len(refused.NewMessages) != 1 || refused.NewMessages[0].ID != second.MessageID || refused.LatestMessageID != second.MessageID {
		t.Errorf("new messages = %+v, latest %d; want message %d", refused.NewMessages, refused.LatestMessageID, second.MessageID)
	}
	if outbox, _ := f.st.OutboxForWorkItem(ctx, first.WorkItemID); len(outbox) != 0 {
		t.Fatalf("the refused reply was queued: %+v", outbox)
	}

	// A message id of another conversation is a field error.
	resp = ana.postJSON(base+"/reply", `{"text":"x","seen_message_id":999999}`)
	if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), `"seen_message_id"`) {
		t.Errorf("unknown seen_message_id: %d %s", resp.status, resp.body)
	}

	// Confirmed: sent.
	resp = ana.postJSON(base+"/reply", fmt.Sprintf(`{"text":"A new lamp is on its way.","seen_message_id":%d,"confirm":true}`, seen))
	if resp.status != http.StatusAccepted {
		t.Fatalf("confirmed reply: %d %s", resp.status, resp.body)
	}
	// Our own reply is now the latest message: a second reply that saw only the customer's
	// follow-up is refused; one that saw the latest goes out.
	resp = ana.postJSON(base+"/reply", fmt.Sprintf(`{"text":"PS","seen_message_id":%d}`, second.MessageID))
	if resp.status != http.StatusConflict || !strings.Contains(string(resp.body), "1 reply sent by Ana") {
		t.Errorf("reply after another reply: %d %s", resp.status, resp.body)
	}
	if err := json.Unmarshal(ana.get(base).body, &detail); err != nil {
		t.Fatal(err)
	}
	resp = ana.postJSON(base+"/reply", fmt.Sprintf(`{"text":"PS","seen_message_id":%d}`, detail.LatestMessageID))
	if resp.status != http.StatusAccepted {
		t.Errorf("reply having seen the latest: %d %s", resp.status, resp.body)
	}
	// Without seen_message_id the guard is off (scripts that do not use it keep working).
	if resp := ana.postJSON(base+"/reply", `{"text":"PPS"}`); resp.status != http.StatusAccepted {
		t.Errorf("reply without seen_message_id: %d %s", resp.status, resp.body)
	}
}
