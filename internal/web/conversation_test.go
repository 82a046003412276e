package web

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// postMultipart sends a form with files, as the reply form does.
func (c *browserless) postMultipart(path string, fields map[string]string, files map[string][]byte) webPage {
	c.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for name, data := range files {
		fw, err := w.CreateFormFile("attachments", name)
		if err != nil {
			c.t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	_ = w.Close()
	req, _ := http.NewRequest("POST", c.base+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return readPage(c.t, resp)
}

// TestReplyFormWithFilesAndNotes: the item page's reply form sends Cc, Bcc and a file
// (multipart) and marks the item done; a bad Cc is named on the form; a note with a
// mention shows on the item, set apart, and on the colleague's My work.
func TestReplyFormWithFilesAndNotes(t *testing.T) {
	f := newFixture(t)
	id := f.items["plain.eml"].WorkItemID
	c := f.signIn(t, "sam")
	page := c.get(fmt.Sprintf("/workitems/%d", id))
	token := page.csrf(t)
	for _, want := range []string{`enctype="multipart/form-data"`, `name="cc"`, `name="bcc"`, `name="reply_all"`, `type="file"`, `value="done"`, `id="notes"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("item page lacks %s", want)
		}
	}
	path := fmt.Sprintf("/workitems/%d/reply", id)
	p := c.postMultipart(path, map[string]string{"csrf": token, "text": "Here is the receipt.", "cc": "not an address", "then": "done"}, nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="cc-error"`) || !strings.Contains(p.body, "Here is the receipt.") {
		t.Errorf("bad Cc: %d, want the form again naming the Cc field", p.status)
	}
	file := []byte("%PDF-1.4 receipt\x00\xff")
	p = c.postMultipart(path, map[string]string{"csrf": token, "text": "Here is the receipt.", "cc": "Boss <boss@example.org>",
		"bcc": "audit@example.com", "then": "done"}, map[string][]byte{"receipt.pdf": file})
	if p.status != http.StatusSeeOther {
		t.Fatalf("reply with a file: %d\n%s", p.status, p.body)
	}
	ob, err := f.st.OutboxForWorkItem(t.Context(), id)
	if err != nil || len(ob) != 1 {
		t.Fatalf("%d outbox items, %v", len(ob), err)
	}
	raw := string(ob[0].Raw)
	if !strings.Contains(strings.Join(ob[0].Recipients, ","), "audit@example.com") || strings.Contains(raw, "audit@example.com") ||
		!strings.Contains(raw, "boss@example.org") || !strings.Contains(raw, `filename=receipt.pdf`) {
		t.Errorf("outbox: recipients %v; raw has Cc, file and no Bcc? \n%.600s", ob[0].Recipients, raw)
	}
	if wi, _ := f.st.WorkItem(t.Context(), id); wi.State != "done" {
		t.Errorf("state after send and mark done = %s", wi.State)
	}
	msg, err := f.st.Message(t.Context(), ob[0].MessageID)
	if err != nil || len(msg.Attachments) != 1 || msg.Attachments[0].Size != int64(len(file)) {
		t.Errorf("the stored reply's attachments = %+v, %v", msg.Attachments, err)
	}

	p = c.post(fmt.Sprintf("/workitems/%d/notes", id), url.Values{"csrf": {token}, "note": {"@ana please call the customer back"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("note: %d\n%s", p.status, p.body)
	}
	page = c.get(fmt.Sprintf("/workitems/%d", id))
	notes := page.body[strings.Index(page.body, `id="notes"`):]
	if !strings.Contains(notes, "@ana please call the customer back") {
		t.Errorf("the note is not in the notes section")
	}
	if my := f.signIn(t, "ana").get("/my"); !strings.Contains(my.body, "Notes that mention you") || !strings.Contains(my.body, "please call the customer back") {
		t.Errorf("ana's My work lacks the mention:\n%s", my.body)
	}
	if p := c.post(fmt.Sprintf("/workitems/%d/notes", id), url.Values{"csrf": {token}, "note": {"  "}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="note-error"`) {
		t.Errorf("empty note: %d", p.status)
	}

	// The reply bounces: the item warns that the customer's address bounced.
	wi, _ := f.st.WorkItem(t.Context(), id)
	if strings.Contains(c.get(fmt.Sprintf("/workitems/%d", id)).body, `id="bouncing"`) {
		t.Errorf("a bounce warning before any bounce")
	}
	if err := f.st.MarkOutboxSent(t.Context(), ob[0].ID, ob[0].CreatedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.IngestMessage(t.Context(), store.InboundMessage{MailboxID: wi.MailboxID, Raw: []byte("Subject: Undelivered\r\n\r\nx\r\n"),
		Message: store.Message{SourceID: "dsn:1", Subject: "Undelivered", FromAddr: "mailer-daemon@mx.example.org", Automatic: "a bounce"},
		Bounce: &store.Bounce{OriginalMessageID: msg.MessageID, Recipients: []store.BounceRecipient{
			{Address: wi.FromAddr, Action: "failed", Status: "5.1.1", Diagnostic: "550 5.1.1 user unknown"}}}}); err != nil {
		t.Fatal(err)
	}
	page = c.get(fmt.Sprintf("/workitems/%d", id))
	if !strings.Contains(page.body, `id="bouncing"`) || !strings.Contains(page.body, "550 5.1.1 user unknown") ||
		!strings.Contains(page.body, "bounced: 550 5.1.1 user unknown") {
		t.Errorf("after the bounce the item does not show it:\n%s", page.body)
	}
}
