package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/store"
)

// addAuditEvents records n login failures and one mailbox change, a minute apart.
func (f *fixture) addAuditEvents(t *testing.T, n int) {
	t.Helper()
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		if err := f.st.AddAudit(context.Background(), store.AuditEvent{At: at.Add(time.Duration(i) * time.Minute), Actor: fmt.Sprintf("user%d", i),
			Action: "login.failure", Object: "user:x", New: "from 192.0.2.7"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.AddAudit(context.Background(), store.AuditEvent{At: at.Add(-time.Hour), Actor: "admin", Action: "mailbox.create",
		Object: "mailbox:1", New: `<script>alert(1)</script>`}); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPage: an admin finds the audit log in the navigation, filters it, pages through
// it and gets the export link of the filter; bad filters are shown with advice; others may
// not open it.
func TestAuditPage(t *testing.T) {
	f := newFixture(t)
	f.addAuditEvents(t, 60)
	admin := f.signIn(t, "admin")
	page := admin.get("/workitems")
	if !strings.Contains(page.body, `href="/audit"`) || !strings.Contains(page.body, `href="/privacy"`) {
		t.Errorf("the admin navigation has no Audit log or Privacy link")
	}
	page = admin.get("/audit?q=login.failure")
	if page.status != http.StatusOK || !strings.Contains(page.body, "Events 1 to 50 of 60") || !strings.Contains(page.body, "user59") ||
		strings.Contains(page.body, "mailbox.create") {
		t.Fatalf("filtered audit page: %d\n%s", page.status, page.body)
	}
	if !strings.Contains(page.body, html.EscapeString("/api/v1/audit.csv?q=login.failure")) || !strings.Contains(page.body, `id="audit-older"`) {
		t.Errorf("no export link of the filter or no next page:\n%s", page.body)
	}
	page = admin.get("/audit?" + url.Values{"q": {"login.failure"}, "offset": {"50"}}.Encode())
	if !strings.Contains(page.body, "Events 51 to 60 of 60") || !strings.Contains(page.body, "user9<") || strings.Contains(page.body, `id="audit-older"`) ||
		!strings.Contains(page.body, `id="audit-newer"`) {
		t.Errorf("second page:\n%s", page.body)
	}
	page = admin.get("/audit?actor=admin&action=mailbox.create") // not the admin's sign-in
	if !strings.Contains(page.body, "Events 1 to 1 of 1") || strings.Contains(page.body, "<script>alert") || !strings.Contains(page.body, "&lt;script&gt;") {
		t.Errorf("actor filter (and escaping):\n%s", page.body)
	}
	page = admin.get("/audit?from=last+week")
	if page.status != http.StatusBadRequest || !strings.Contains(page.body, "enter a date") {
		t.Errorf("bad from: %d\n%s", page.status, page.body)
	}
	for _, u := range []string{"sam", "ana"} {
		if r := f.signIn(t, u).get("/audit"); r.status != http.StatusForbidden {
			t.Errorf("%s opened the audit log: %d", u, r.status)
		}
	}
}

// TestPrivacyPage: the page counts a customer's data first and erases it only on the
// confirmation; the result names the address by its hash only.
func TestPrivacyPage(t *testing.T) {
	f := newFixture(t)
	admin := f.signIn(t, "admin")
	csrf := admin.get("/privacy").csrf(t)
	page := admin.post("/privacy", url.Values{"csrf": {csrf}, "address": {"Carla@Example.net"}})
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="preview-conversations">1<`) || !strings.Contains(page.body, `id="erasure-confirm"`) {
		t.Fatalf("preview: %d\n%s", page.status, page.body)
	}
	carla := f.items["plain.eml"].WorkItemID
	if _, err := f.st.WorkItem(context.Background(), carla); err != nil {
		t.Fatalf("the preview erased: %v", err)
	}
	// Without the confirmation field nothing is erased: the count is shown again.
	if r := admin.post("/privacy/erase", url.Values{"csrf": {csrf}, "address": {"carla@example.net"}}); r.status != http.StatusOK ||
		!strings.Contains(r.body, `id="erasure-confirm"`) {
		t.Errorf("erase without confirm: %d\n%s", r.status, r.body)
	}
	if _, err := f.st.WorkItem(context.Background(), carla); err != nil {
		t.Fatalf("erased without confirmation: %v", err)
	}
	r := admin.post("/privacy/erase", url.Values{"csrf": {csrf}, "address": {"carla@example.net"}, "confirm": {"yes"}})
	hash := privacy.AddressHash("carla@example.net")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Erased: 1 conversations") || !strings.Contains(r.body, hash) {
		t.Fatalf("erase: %d\n%s", r.status, r.body)
	}
	if _, err := f.st.WorkItem(context.Background(), carla); !store.IsNotFound(err) {
		t.Errorf("the customer's work item after the erasure: %v", err)
	}
	if _, err := f.st.WorkItem(context.Background(), f.items["html.eml"].WorkItemID); err != nil {
		t.Errorf("another customer's work item after the erasure: %v", err)
	}
	page = admin.get("/audit?action=erasure")
	if !strings.Contains(page.body, "address-sha256:"+hash) || strings.Contains(strings.ToLower(page.body), "carla") {
		t.Errorf("the audit log after the erasure:\n%s", page.body)
	}
	if r := admin.post("/privacy", url.Values{"csrf": {csrf}, "address": {"Carla <carla@example.net>"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "Enter one email address") {
		t.Errorf("bad address: %d\n%s", r.status, r.body)
	}
	if r := f.signIn(t, "sam").get("/privacy"); r.status != http.StatusForbidden {
		t.Errorf("a supervisor opened the privacy page: %d", r.status)
	}
}

// TestQueueRetentionForm: the queue settings page saves retention, keeps it shown, and
// refuses days without a mode.
func TestQueueRetentionForm(t *testing.T) {
	f := newFixture(t)
	q, err := f.st.EnsureDefaultQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := f.signIn(t, "admin")
	path := fmt.Sprintf("/queues/%d/settings", q.ID)
	page := admin.get(path)
	csrf := page.csrf(t)
	bad := admin.post(path, url.Values{"csrf": {csrf}, "retention_days": {"30"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "delete") || !strings.Contains(bad.body, `value="30"`) {
		t.Errorf("days without a mode: %d\n%s", bad.status, bad.body)
	}
	if r := admin.post(path, url.Values{"csrf": {csrf}, "retention_days": {"30"}, "retention_mode": {"anonymise"}, "max_depth": {"4"}}); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, r.body)
	}
	page = admin.get(path)
	if !strings.Contains(page.body, `id="retention_days" name="retention_days" value="30"`) || !strings.Contains(page.body, `<option value="anonymise" selected>`) {
		t.Errorf("saved retention not shown:\n%s", page.body)
	}
	saved, err := f.st.Queue(context.Background(), q.ID)
	if err != nil || !strings.Contains(string(saved.Spec), `"retention_days":30`) || !strings.Contains(string(saved.Spec), `"max_depth":4`) {
		t.Errorf("saved spec %s, %v", saved.Spec, err)
	}
}
