package api

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"

	"github.com/postroom/postroom/internal/store"
)

// TestReplyCcBccAttachmentsNotesDone: an agent answers with reply all, a Bcc and a file,
// writes a note mentioning a supervisor, and marks the item done. The outbox sends to
// every recipient; the sent header names the Cc but not the Bcc, and carries the file
// byte for byte; the note is on the item, in the supervisor's mentions, never in a
// message; bad input gets a field error.
func TestReplyCcBccAttachmentsNotesDone(t *testing.T) {
	f, _ := routingFixture(t)
	ctx := t.Context()
	res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID,
		Raw: []byte("Subject: Broken lamp\r\n\r\nglass everywhere\r\n"),
		Message: store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: "conv:1", MessageID: "lamp@example.org",
			Subject: "Broken lamp", FromAddr: "bar@example.org", To: "Support <support@example.com>, partner@example.org",
			Cc: "Friend <friend@example.org>, support@example.com", TextBody: "glass everywhere"}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.WorkItemID
	ana := f.signedIn(t, "ana")
	base := fmt.Sprintf("/api/v1/workitems/%d", id)

	// Bad input: each names its field.
	for body, field := range map[string]string{
		`{"text":"x","cc":["not an address"]}`:                                                              "cc",
		`{"text":"x","bcc":["a@b@c"]}`:                                                                      "bcc",
		`{"text":"x","attachments":[{"filename":"a.txt","content_base64":"!!!"}]}`:                          "attachments",
		`{"text":"x","attachments":[{"filename":"a.txt","content_base64":""}]}`:                             "attachments",
		`{"text":"x","then":"closed"}`:                                                                      "then",
		`{"text":"x","attachments":[{"filename":"big.bin","content_base64":"` + base64Text(22<<20) + `"}]}`: "attachments",
	} {
		resp := ana.postJSON(base+"/reply", body)
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), `"`+field+`"`) {
			t.Errorf("reply %.60s: %d %s, want a field error for %s", body, resp.status, resp.body, field)
		}
	}

	file := []byte("receipt 42\n\x00\x01binary\xff")
	resp := ana.postJSON(base+"/reply", `{"text":"A new lamp is on its way.","reply_all":true,"cc":["Boss <boss@example.org>"],`+
		`"bcc":["audit@example.com"],"attachments":[{"filename":"receipt.bin","content_type":"application/octet-stream","content_base64":"`+
		base64.StdEncoding.EncodeToString(file)+`"}]}`)
	if resp.status != http.StatusAccepted {
		t.Fatalf("reply: %d %s", resp.status, resp.body)
	}
	outbox, err := f.st.OutboxForWorkItem(ctx, id)
	if err != nil || len(outbox) != 1 {
		t.Fatalf("%d outbox items, %v", len(outbox), err)
	}
	got := strings.Join(outbox[0].Recipients, ",")
	for _, want := range []string{"bar@example.org", "partner@example.org", "friend@example.org", "boss@example.org", "audit@example.com"} {
		if !strings.Contains(got, want) {
			t.Errorf("recipients %s lack %s", got, want)
		}
	}
	if strings.Contains(got, "support@example.com") {
		t.Errorf("reply all copied our own address: %s", got)
	}
	mr, err := gomail.CreateReader(bytes.NewReader(outbox[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if cc := mr.Header.Get("Cc"); !strings.Contains(cc, "friend@example.org") || !strings.Contains(cc, "partner@example.org") || !strings.Contains(cc, "boss@example.org") {
		t.Errorf("Cc header = %q", cc)
	}
	if bytes.Contains(outbox[0].Raw, []byte("audit@example.com")) {
		t.Errorf("the Bcc address is in the sent message")
	}
	var attached []byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*gomail.AttachmentHeader); ok {
			if name, _ := h.Filename(); name == "receipt.bin" {
				attached, _ = readAllPart(p)
			}
		}
	}
	if !bytes.Equal(attached, file) {
		t.Errorf("attachment = %q, want %q", attached, file)
	}

	// A note mentioning sam; an empty note is refused.
	if resp := ana.postJSON(base+"/notes", `{"text":"  "}`); resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), `"text"`) {
		t.Errorf("empty note: %d %s", resp.status, resp.body)
	}
	resp = ana.postJSON(base+"/notes", `{"text":"@sam the customer may want a refund, write to ana@example.com"}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("note: %d %s", resp.status, resp.body)
	}
	sam := f.signedIn(t, "sam")
	if m := sam.get("/api/v1/me/mentions"); !strings.Contains(string(m.body), "may want a refund") || !strings.Contains(string(m.body), "Broken lamp") {
		t.Errorf("sam's mentions: %s", m.body)
	}
	if m := ana.get("/api/v1/me/mentions"); strings.Contains(string(m.body), "refund") {
		t.Errorf("ana is mentioned by her own note (or by the email address in it): %s", m.body)
	}
	detail := ana.get(base)
	if !strings.Contains(string(detail.body), `"notes":[{`) || !strings.Contains(string(detail.body), `"author":"Ana"`) {
		t.Errorf("detail: %s", detail.body)
	}
	for _, o := range outbox {
		if bytes.Contains(o.Raw, []byte("refund")) {
			t.Errorf("a note went out in outbox item %d", o.ID)
		}
	}

	if resp := ana.postJSON(base+"/done", `{}`); resp.status != http.StatusOK || !strings.Contains(string(resp.body), `"state":"done"`) {
		t.Fatalf("done: %d %s", resp.status, resp.body)
	}
}

// base64Text is n bytes of base64 text.
func base64Text(n int) string { return strings.Repeat("QUFB", n/4) }

func readAllPart(p *gomail.Part) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(p.Body)
	return b.Bytes(), err
}
