package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestResponsesSignaturesDrafts: a supervisor saves a canned response and signatures (a
// misspelt field is refused at once, an agent may not save); the agent gets the template
// filled in for the item, saves a draft that only they see, and sends: the sent text ends
// with the From address's signature (it wins over the queue's), the draft is gone, and
// "signature": false sends none.
func TestResponsesSignaturesDrafts(t *testing.T) {
	f, _ := routingFixture(t)
	ctx := t.Context()
	q, err := f.st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte("Subject: Broken lamp\r\n\r\nx\r\n"),
		Classification: &store.Classification{QueueID: q.ID},
		Message: store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: "tpl:1", MessageID: "lamp@example.org",
			Subject: "Broken lamp", FromName: "Lamp Owner", FromAddr: "owner@example.org", To: "support@example.com", TextBody: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.WorkItemID
	ana, sam := f.signedIn(t, "ana"), f.signedIn(t, "sam")

	tpl := `{"name":"Greeting","body":"Hello {{.CustomerName}}, this is {{.AgentName}} about #{{.WorkItem}} ({{.Queue}})."}`
	if r := ana.postJSON("/api/v1/templates/responses", tpl); r.status != http.StatusForbidden {
		t.Errorf("an agent saved a template: %d %s", r.status, r.body)
	}
	if r := sam.postJSON("/api/v1/templates/responses", `{"name":"Bad","body":"Hello {{.Customer}}"}`); r.status != http.StatusBadRequest ||
		!strings.Contains(string(r.body), `"body"`) || !strings.Contains(string(r.body), "CustomerName") {
		t.Errorf("misspelt field: %d %s, want a field error listing the fields", r.status, r.body)
	}
	if r := sam.postJSON("/api/v1/templates/responses", `{"name":"Q","queue_id":9999,"body":"x"}`); r.status != http.StatusBadRequest ||
		!strings.Contains(string(r.body), `"queue_id"`) {
		t.Errorf("unknown queue: %d %s", r.status, r.body)
	}
	r := sam.postJSON("/api/v1/templates/responses", tpl)
	if r.status != http.StatusCreated {
		t.Fatalf("save template: %d %s", r.status, r.body)
	}
	if r := sam.postJSON("/api/v1/templates/responses", tpl); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"name"`) {
		t.Errorf("a second Greeting: %d %s", r.status, r.body)
	}
	tid := int64(r.json(t)["id"].(float64))
	other := sam.postJSON("/api/v1/templates/responses", fmt.Sprintf(`{"name":"Elsewhere","queue_id":%d,"body":"x"}`, mustQueue(t, f, "Elsewhere")))
	if other.status != http.StatusCreated {
		t.Fatalf("template of another queue: %d %s", other.status, other.body)
	}

	for _, body := range []string{
		fmt.Sprintf(`{"queue_id":%d,"body":"The {{.Queue}} team"}`, q.ID),
		`{"address":"Support@example.com","body":"Kind regards,\n{{.AgentName}}\nSupport"}`,
	} {
		if r := sam.do("PUT", "/api/v1/signatures", "application/json", body); r.status != http.StatusOK {
			t.Fatalf("PUT signature %s: %d %s", body, r.status, r.body)
		}
	}
	if r := sam.do("PUT", "/api/v1/signatures", "application/json", `{"address":"a@example.com","queue_id":1,"body":"x"}`); r.status != http.StatusBadRequest {
		t.Errorf("a signature of both an address and a queue: %d %s", r.status, r.body)
	}

	base := fmt.Sprintf("/api/v1/workitems/%d", id)
	offered := ana.get(base + "/responses")
	want := fmt.Sprintf("Hello Lamp Owner, this is Ana about #%d (%s).", id, q.Name)
	if offered.status != http.StatusOK || !strings.Contains(string(offered.body), want) ||
		!strings.Contains(string(offered.body), `"signature":"Kind regards,\nAna\nSupport"`) || strings.Contains(string(offered.body), "Elsewhere") {
		t.Fatalf("offered responses: %d %s, want %q, the address's signature and not another queue's template", offered.status, offered.body, want)
	}
	if r := ana.get(fmt.Sprintf("/api/v1/templates/responses/%d", tid)); r.status != http.StatusOK {
		t.Errorf("an agent reads a template: %d %s", r.status, r.body)
	}

	// The draft: saved, read back by its author only, gone after the reply.
	if r := ana.get(base + "/draft"); r.status != http.StatusNotFound {
		t.Errorf("draft before saving: %d %s", r.status, r.body)
	}
	if r := ana.do("PUT", base+"/draft", "application/json", `{"text":"`+want+`","cc":["boss@example.org"],"reply_all":true}`); r.status != http.StatusOK {
		t.Fatalf("PUT draft: %d %s", r.status, r.body)
	}
	if r := ana.get(base + "/draft"); r.status != http.StatusOK || !strings.Contains(string(r.body), want) ||
		!strings.Contains(string(r.body), `"cc":["boss@example.org"]`) || !strings.Contains(string(r.body), `"reply_all":true`) {
		t.Errorf("GET draft: %d %s", r.status, r.body)
	}
	if r := sam.get(base + "/draft"); r.status != http.StatusNotFound {
		t.Errorf("sam sees ana's draft: %d %s", r.status, r.body)
	}
	if r := ana.do("PUT", "/api/v1/workitems/99999/draft", "application/json", `{"text":"x"}`); r.status != http.StatusNotFound {
		t.Errorf("draft on a missing item: %d %s", r.status, r.body)
	}

	if r := ana.postJSON(base+"/reply", fmt.Sprintf(`{"text":%q}`, want)); r.status != http.StatusAccepted {
		t.Fatalf("reply: %d %s", r.status, r.body)
	}
	if r := ana.get(base + "/draft"); r.status != http.StatusNotFound {
		t.Errorf("the draft outlived the reply: %d %s", r.status, r.body)
	}
	if r := ana.postJSON(base+"/reply", `{"text":"Unsigned.","signature":false}`); r.status != http.StatusAccepted {
		t.Fatalf("reply without signature: %d %s", r.status, r.body)
	}
	outbox, err := f.st.OutboxForWorkItem(ctx, id)
	if err != nil || len(outbox) != 2 {
		t.Fatalf("%d outbox items, %v", len(outbox), err)
	}
	var texts []string
	for _, o := range outbox {
		m, err := f.st.Message(ctx, o.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, strings.ReplaceAll(m.TextBody, "\r\n", "\n"))
	}
	signed := want + "\n\nKind regards,\nAna\nSupport"
	if !strings.HasPrefix(texts[0], signed) && !strings.HasPrefix(texts[1], signed) {
		t.Errorf("sent texts %q, want one that begins %q", texts, signed)
	}
	for _, tx := range texts {
		if strings.HasPrefix(tx, "Unsigned.") && strings.Contains(tx, "Kind regards") {
			t.Errorf("\"signature\": false sent a signature: %q", tx)
		}
	}

	if r := sam.do("DELETE", fmt.Sprintf("/api/v1/templates/responses/%d", tid), "", ""); r.status != http.StatusNoContent {
		t.Errorf("DELETE template: %d %s", r.status, r.body)
	}
	if r := ana.get("/api/v1/templates/responses"); strings.Contains(string(r.body), "Greeting") {
		t.Errorf("deleted template still listed: %s", r.body)
	}
}

// mustQueue creates a queue and returns its id.
func mustQueue(t *testing.T, f *fixture, name string) int64 {
	t.Helper()
	q, err := f.st.CreateQueue(t.Context(), store.Queue{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return q.ID
}
