package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/automsg"
)

// TestTemplatesPage: a supervisor adds a canned response and a signature on the Templates
// page; a misspelt field is refused with the list of fields and the text kept; an agent
// may not open the page.
func TestTemplatesPage(t *testing.T) {
	f := newFixture(t)
	sam := f.signIn(t, "sam")
	page := sam.get("/templates")
	if page.status != http.StatusOK || !strings.Contains(page.body, "No canned responses yet.") {
		t.Fatalf("templates page: %d\n%s", page.status, page.body)
	}
	csrf := page.csrf(t)
	bad := sam.post("/templates/responses", url.Values{"csrf": {csrf}, "name": {"Refund"}, "body": {"Hello {{.Customer}}"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "CustomerName, CustomerAddress") || !strings.Contains(bad.body, "Hello {{.Customer}}") {
		t.Errorf("misspelt field: %d, want the fields listed and the text kept\n%s", bad.status, bad.body)
	}
	if r := sam.post("/templates/responses", url.Values{"csrf": {csrf}, "name": {"Refund"}, "body": {"Hello {{.CustomerName}}"}}); r.status != http.StatusSeeOther {
		t.Fatalf("add template: %d\n%s", r.status, r.body)
	}
	if r := sam.post("/templates/signatures", url.Values{"csrf": {csrf}, "address": {"support@example.com"}, "body": {"Regards, {{.AgentName}}"}}); r.status != http.StatusSeeOther {
		t.Fatalf("add signature: %d\n%s", r.status, r.body)
	}
	page = sam.get("/templates")
	if !strings.Contains(page.body, "Saved.") || !strings.Contains(page.body, `value="Refund"`) || !strings.Contains(page.body, "From address support@example.com") {
		t.Errorf("templates page after saving:\n%s", page.body)
	}
	if r := f.signIn(t, "ana").get("/templates"); r.status != http.StatusForbidden {
		t.Errorf("an agent opened the Templates page: %d", r.status)
	}
}

// TestAutomaticMessagesPage: an admin turns on a queue's acknowledgement with a new text
// and changes the limits on the page, which saves them as the API does; a supervisor sees
// the page but may not save; bad limits are refused.
func TestAutomaticMessagesPage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	q, err := f.st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := f.signIn(t, "admin")
	page := admin.get("/routing/automatic")
	if page.status != http.StatusOK || !strings.Contains(page.body, "Acknowledgement in closed hours") || !strings.Contains(page.body, "Over-size notice") {
		t.Fatalf("automatic messages page: %d\n%s", page.status, page.body)
	}
	csrf := page.csrf(t)
	qid := strconv.FormatInt(q.ID, 10)
	if r := admin.post("/routing/automatic", url.Values{"csrf": {csrf}, "op": {"template"}, "queue_id": {qid}, "name": {automsg.NameAckOpen},
		"enabled": {"1"}, "subject": {"Re: {{.Subject}}"}, "body": {"Hello {{.CustomerName}}, we have it."}}); r.status != http.StatusSeeOther {
		t.Fatalf("save acknowledgement: %d\n%s", r.status, r.body)
	}
	list, err := f.st.AutoTemplates(ctx, q.ID)
	if err != nil || len(list) != 1 || !list[0].Enabled || list[0].Body != "Hello {{.CustomerName}}, we have it." {
		t.Errorf("stored acknowledgements: %+v, %v", list, err)
	}
	if r := admin.post("/routing/automatic", url.Values{"csrf": {csrf}, "op": {"template"}, "queue_id": {qid}, "name": {automsg.NameAckOpen},
		"subject": {"Re: {{.Subjekt}}"}, "body": {"x"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "Subject") {
		t.Errorf("misspelt field: %d\n%s", r.status, r.body)
	}
	if r := admin.post("/routing/automatic", url.Values{"csrf": {csrf}, "op": {"limits"}, "per_conversation": {"0"}, "per_address": {"3"}, "window_h": {"24"}}); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, "per_conversation") {
		t.Errorf("bad limits: %d\n%s", r.status, r.body)
	}
	if r := admin.post("/routing/automatic", url.Values{"csrf": {csrf}, "op": {"limits"}, "per_conversation": {"2"}, "per_address": {"5"}, "window_h": {"12"}}); r.status != http.StatusSeeOther {
		t.Fatalf("save limits: %d\n%s", r.status, r.body)
	}
	if l, err := automsg.LoadLimits(ctx, f.st); err != nil || l != (automsg.Limits{PerConversation: 2, PerAddress: 5, WindowS: 12 * 3600}) {
		t.Errorf("limits = %+v, %v", l, err)
	}
	sam := f.signIn(t, "sam")
	p := sam.get("/routing/automatic")
	if p.status != http.StatusOK || !strings.Contains(p.body, "we have it.") {
		t.Fatalf("supervisor's view: %d", p.status)
	}
	if r := sam.post("/routing/automatic", url.Values{"csrf": {p.csrf(t)}, "op": {"limits"}, "per_conversation": {"9"}, "per_address": {"9"}, "window_h": {"1"}}); r.status != http.StatusForbidden {
		t.Errorf("a supervisor saved: %d", r.status)
	}
}
