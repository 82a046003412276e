package web

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestForwardFormAndNewEmailPage: the item page offers a forward form listing the
// message's attachments as checkboxes; a forward with one ticked queues a message that
// carries that file and not the Bcc address, and leaves the item's state; a forward to
// nobody says what to do. The New email page starts a conversation assigned to the agent,
// and the first item's customer history then links to it.
func TestForwardFormAndNewEmailPage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	item := f.items["html.eml"]
	ana := f.signIn(t, "ana")
	path := fmt.Sprintf("/workitems/%d", item.WorkItemID)
	page := ana.get(path)
	msg, err := f.st.Message(ctx, item.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	var pageHTML store.Attachment
	for _, a := range msg.Attachments {
		if a.Filename == "page.html" {
			pageHTML = a
		}
	}
	checkbox := fmt.Sprintf(`name="attachment_id" value="%d"`, pageHTML.ID)
	for _, want := range []string{`action="/workitems/` + strconv.FormatInt(item.WorkItemID, 10) + `/forward"`, checkbox, "page.html",
		`id="customer-history"`, "No other conversations with this customer.", `href="/compose?to=ivan%40example.org"`, "Forward this message"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("item page lacks %q", want)
		}
	}
	before, _ := f.st.WorkItem(ctx, item.WorkItemID)

	// Nobody to forward to: the field says what to do.
	bad := ana.post(path+"/forward", url.Values{"csrf": {page.csrf(t)}, "to": {""}, "text": {"fyi"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "say whom to forward to") || !strings.Contains(bad.body, `id="forward-to-error"`) {
		t.Errorf("forward to nobody: %d, want 400 with the To field's error", bad.status)
	}

	resp := ana.post(path+"/forward", url.Values{"csrf": {page.csrf(t)}, "to": {"repair@example.net"}, "bcc": {"audit@example.com"},
		"text": {"Please check"}, "message_id": {strconv.FormatInt(item.MessageID, 10)}, "attachment_id": {strconv.FormatInt(pageHTML.ID, 10)}})
	if resp.status != http.StatusSeeOther || !strings.HasSuffix(resp.header.Get("Location"), "#forward") {
		t.Fatalf("forward: %d %s\n%s", resp.status, resp.header.Get("Location"), resp.body)
	}
	outbox, err := f.st.OutboxForWorkItem(ctx, item.WorkItemID)
	if err != nil || len(outbox) != 1 {
		t.Fatalf("%d outbox items, %v", len(outbox), err)
	}
	raw := outbox[0].Raw
	if !bytes.Contains(raw, []byte(`filename=page.html`)) && !bytes.Contains(raw, []byte(`filename="page.html"`)) {
		t.Errorf("the forward does not carry page.html:\n%s", raw)
	}
	if bytes.Contains(raw, []byte("logo.png")) || bytes.Contains(raw, []byte("audit@example.com")) {
		t.Errorf("the forward carries the unchosen logo or the Bcc address:\n%s", raw)
	}
	if !bytes.Contains(raw, []byte("Subject: Fwd: ")) {
		t.Errorf("the forward's subject has no Fwd: prefix:\n%s", raw)
	}
	if after, _ := f.st.WorkItem(ctx, item.WorkItemID); after.State != before.State {
		t.Errorf("after the forward the item is %s, want %s", after.State, before.State)
	}
	if again := ana.get(path); !strings.Contains(again.body, "Forward sent to the outbox.") {
		t.Error("the page after the forward does not say it was sent")
	} else if reload := ana.get(path); strings.Contains(reload.body, "Forward sent to the outbox.") {
		t.Error("the forward notice shows again on reload")
	}

	// New email.
	compose := ana.get("/compose?to=ivan@example.org")
	if compose.status != http.StatusOK || !strings.Contains(compose.body, `action="/compose"`) || !strings.Contains(compose.body, `value="ivan@example.org"`) {
		t.Fatalf("New email page: %d\n%s", compose.status, compose.body)
	}
	if !strings.Contains(page.body, `href="/compose"`) {
		t.Error("the navigation has no New email link")
	}
	noSubject := ana.post("/compose", url.Values{"csrf": {compose.csrf(t)}, "to": {"ivan@example.org"}, "text": {"Hello"}, "then": {"pending"}})
	if noSubject.status != http.StatusBadRequest || !strings.Contains(noSubject.body, `id="subject-error"`) {
		t.Errorf("new email without subject: %d, want 400 with the subject's error", noSubject.status)
	}
	sent := ana.post("/compose", url.Values{"csrf": {compose.csrf(t)}, "to": {"ivan@example.org"}, "subject": {"Your invoice"},
		"text": {"Here is the corrected invoice."}, "then": {"pending"}})
	if sent.status != http.StatusSeeOther || !strings.HasPrefix(sent.header.Get("Location"), "/workitems/") {
		t.Fatalf("new email: %d %s\n%s", sent.status, sent.header.Get("Location"), sent.body)
	}
	newID, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(sent.header.Get("Location"), "/workitems/"), "#replies"), 10, 64)
	wi, err := f.st.WorkItem(ctx, newID)
	if err != nil {
		t.Fatal(err)
	}
	anaUser, _ := f.st.UserByUsername(ctx, "ana")
	if wi.State != store.StatePending || wi.AssignedTo != anaUser.ID || wi.ConversationID == item.ConversationID {
		t.Errorf("new email's item: %s, assigned %d, conversation %d; want pending, ana, a new conversation", wi.State, wi.AssignedTo, wi.ConversationID)
	}
	if hist := ana.get(path); !strings.Contains(hist.body, fmt.Sprintf(`href="/workitems/%d">Your invoice</a>`, newID)) {
		t.Error("the customer history does not link to the new conversation")
	}
}
