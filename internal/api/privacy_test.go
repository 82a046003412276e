package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// addAudit records audit events for the audit tests.
func (f *fixture) addAudit(t *testing.T, events ...store.AuditEvent) {
	t.Helper()
	for _, e := range events {
		if err := f.st.AddAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditList: GET /api/v1/audit?q=login.failure lists the matching events with their
// total; filters combine; paging works; bad filters answer 400 with advice; only admins.
func TestAuditList(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f.addAudit(t,
		store.AuditEvent{At: at, Actor: "ana", Action: "login.failure", Object: "user:ana", New: "from 192.0.2.7"},
		store.AuditEvent{At: at.Add(time.Minute), Actor: "ana", Action: "login.success", Object: "user:ana"},
		store.AuditEvent{At: at.Add(2 * time.Minute), Actor: "mallory", Action: "login.failure", Object: "user:mallory"},
		store.AuditEvent{At: at.Add(3 * time.Minute), Actor: "admin", Action: "mailbox.create", Object: "mailbox:9"},
	)
	admin := f.signedIn(t, "admin")
	var page struct {
		Events []auditEventJSON `json:"events"`
		Total  int              `json:"total"`
	}
	get := func(q string) {
		t.Helper()
		resp := admin.get("/api/v1/audit?" + q)
		if resp.status != http.StatusOK {
			t.Fatalf("GET /api/v1/audit?%s: %d %s", q, resp.status, resp.body)
		}
		page.Events, page.Total = nil, 0
		if err := json.Unmarshal(resp.body, &page); err != nil {
			t.Fatal(err)
		}
	}
	get("q=login.failure&to=2026-05-02T00:00:00Z")
	if page.Total != 2 || len(page.Events) != 2 || page.Events[0].Actor != "mallory" || page.Events[1].New != "from 192.0.2.7" || page.Events[0].ID == 0 {
		t.Errorf("q=login.failure: %+v", page)
	}
	get("action=login.failure&actor=ana")
	if page.Total != 1 || page.Events[0].Object != "user:ana" {
		t.Errorf("action and actor: %+v", page)
	}
	get("from=2026-05-01T09:01:00Z&to=2026-05-01T09:03:00Z")
	if page.Total != 2 || page.Events[0].Actor != "mallory" || page.Events[1].Action != "login.success" {
		t.Errorf("from and to: %+v", page)
	}
	get("q=user:&to=2026-05-02T00:00:00Z&limit=1&offset=1") // not the sign-ins of this test
	if page.Total != 3 || len(page.Events) != 1 || page.Events[0].Action != "login.success" {
		t.Errorf("paged: %+v", page)
	}
	for _, bad := range []string{"from=yesterday", "limit=100000", "q=" + strings.Repeat("x", 50000)} {
		resp := admin.get("/api/v1/audit?" + bad)
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "enter") {
			t.Errorf("GET /api/v1/audit?%.30s: %d %s, want 400 with advice", bad, resp.status, resp.body)
		}
	}
	for _, user := range []string{"sam", "ana"} {
		if resp := f.signedIn(t, user).get("/api/v1/audit?q=login.failure"); resp.status != http.StatusForbidden {
			t.Errorf("%s reads the audit log: %d", user, resp.status)
		}
	}
}

// TestAuditCSV: the export has a header row, the filter's events, RFC 4180 quoting and no
// cell a spreadsheet would run.
func TestAuditCSV(t *testing.T) {
	f := newFixture(t)
	f.addAudit(t,
		store.AuditEvent{Actor: "=HYPERLINK(\"http://evil.example\")", Action: "login.failure", Object: "user:x", New: "a,b \"c\""},
		store.AuditEvent{Actor: "admin", Action: "mailbox.create", Object: "mailbox:1"},
	)
	resp := f.signedIn(t, "admin").get("/api/v1/audit.csv?" + url.Values{"action": {"login.failure"}}.Encode())
	if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET /api/v1/audit.csv: %d %v %s", resp.status, resp.header, resp.body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(resp.body))).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v: %s", err, resp.body)
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != "id,at,actor,action,object,old,new" {
		t.Fatalf("rows: %q", rows)
	}
	if rows[1][2] != `'=HYPERLINK("http://evil.example")` || rows[1][6] != `a,b "c"` || rows[1][3] != "login.failure" {
		t.Errorf("row: %q", rows[1])
	}
	if resp := f.signedIn(t, "sam").get("/api/v1/audit.csv"); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor exports the audit log: %d", resp.status)
	}
}

// TestErasure: a dry run counts and changes nothing; confirm erases the customer's work
// items and leaves the others; the audit event holds the hash, not the address.
func TestErasure(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	var out struct {
		DryRun        bool                `json:"dry_run"`
		AddressSHA256 string              `json:"address_sha256"`
		Counts        store.ErasureCounts `json:"counts"`
	}
	post := func(body string) {
		t.Helper()
		resp := admin.postJSON("/api/v1/erasure", body)
		if resp.status != http.StatusOK {
			t.Fatalf("POST /api/v1/erasure %s: %d %s", body, resp.status, resp.body)
		}
		out = struct {
			DryRun        bool                `json:"dry_run"`
			AddressSHA256 string              `json:"address_sha256"`
			Counts        store.ErasureCounts `json:"counts"`
		}{}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
	}
	post(`{"address": "Carla@Example.net"}`)
	if !out.DryRun || out.Counts.Conversations != 1 || out.Counts.WorkItems != 1 || len(out.AddressSHA256) != 64 {
		t.Errorf("dry run: %+v", out)
	}
	carla := f.items["plain.eml"].WorkItemID
	if resp := admin.get(fmt.Sprintf("/api/v1/workitems/%d", carla)); resp.status != http.StatusOK {
		t.Fatalf("a dry run removed the work item: %d", resp.status)
	}
	post(`{"address": "carla@example.net", "confirm": true}`)
	if out.DryRun || out.Counts.Conversations != 1 {
		t.Errorf("erasure: %+v", out)
	}
	if resp := admin.get(fmt.Sprintf("/api/v1/workitems/%d", carla)); resp.status != http.StatusNotFound {
		t.Errorf("the erased work item: %d, want 404", resp.status)
	}
	if resp := admin.get(fmt.Sprintf("/api/v1/workitems/%d", f.items["html.eml"].WorkItemID)); resp.status != http.StatusOK {
		t.Errorf("another customer's work item after the erasure: %d", resp.status)
	}
	resp := admin.get("/api/v1/audit?action=erasure")
	if !strings.Contains(string(resp.body), "address-sha256:"+out.AddressSHA256) || strings.Contains(strings.ToLower(string(resp.body)), "carla") {
		t.Errorf("erasure audit: %s", resp.body)
	}

	for _, bad := range []string{`{"address": "Carla <carla@example.net>"}`, `{"address": ""}`, `{"address": "x"} {}`, `{"adress": "a@b.c"}`} {
		if resp := admin.postJSON("/api/v1/erasure", bad); resp.status != http.StatusBadRequest {
			t.Errorf("POST /api/v1/erasure %s: %d %s, want 400", bad, resp.status, resp.body)
		}
	}
	if resp := f.signedIn(t, "sam").postJSON("/api/v1/erasure", `{"address": "ivan@example.org", "confirm": true}`); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor erases: %d", resp.status)
	}
}

// TestQueueRetentionSettings: PUT /api/v1/queues/{id} takes retention_days and
// retention_mode, keeps the other settings, and refuses bad values with advice.
func TestQueueRetentionSettings(t *testing.T) {
	f := newFixture(t)
	q, err := f.st.EnsureDefaultQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := f.signedIn(t, "admin")
	path := fmt.Sprintf("/api/v1/queues/%d", q.ID)
	resp := admin.put(path, `{"max_depth": 7, "retention_days": 30, "retention_mode": "anonymise"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", path, resp.status, resp.body)
	}
	saved, err := f.st.Queue(context.Background(), q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(saved.Spec); !strings.Contains(s, `"retention_days":30`) || !strings.Contains(s, `"retention_mode":"anonymise"`) || !strings.Contains(s, `"max_depth":7`) {
		t.Errorf("saved settings %s", s)
	}
	for body, field := range map[string]string{
		`{"retention_days": 30}`:                             "retention_mode",
		`{"retention_days": -1, "retention_mode": "delete"}`: "retention_days",
		`{"retention_days": 5, "retention_mode": "shred"}`:   "retention_mode",
	} {
		resp := admin.put(path, body)
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), field) {
			t.Errorf("PUT %s %s: %d %s, want 400 naming %s", path, body, resp.status, resp.body, field)
		}
	}
}
