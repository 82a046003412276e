package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// listPage is the JSON of GET /api/v1/workitems.
type listPage struct {
	Items []struct {
		ID      int64  `json:"id"`
		Subject string `json:"subject"`
	} `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// getList GETs a work item list and fails the test unless it is a 200 list.
func getList(t *testing.T, c *client, path string) listPage {
	t.Helper()
	resp := c.get(path)
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s, want 200", path, resp.status, resp.body)
	}
	var p listPage
	if err := json.Unmarshal(resp.body, &p); err != nil || p.Items == nil {
		t.Fatalf("GET %s: not a list (%v): %s", path, err, resp.body)
	}
	return p
}

// ingestText stores a parsed plain text email with body in the fixture's inbound mailbox.
func (f *fixture) ingestText(t *testing.T, n int, subject, body string) store.IngestResult {
	t.Helper()
	raw := fmt.Sprintf("From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\nSubject: %s\r\n"+
		"Message-ID: <extra-%d@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", n, n, subject, n, body)
	m := message.Parse([]byte(raw))
	m.MailboxID, m.Direction, m.SourceID = f.inbound.ID, store.Inbound, fmt.Sprintf("imap:2:%d", n)
	res, err := f.st.IngestMessage(t.Context(), store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte(raw), Message: m})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSearchWorkItems: q finds words of the bodies (of HTML-only mail too), never fails on
// what a user types, and the list has pages and a total.
func TestSearchWorkItems(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	plain, html := f.items["plain.eml"].WorkItemID, f.items["html.eml"].WorkItemID
	one := func(q string, want int64) {
		t.Helper()
		p := getList(t, c, "/api/v1/workitems?q="+url.QueryEscape(q))
		if p.Total != 1 || len(p.Items) != 1 || p.Items[0].ID != want {
			t.Errorf("q=%s: %+v, want work item %d only", q, p, want)
		}
	}
	one("check", plain)          // only in the plain text body
	one("please", html)          // only in the body of an HTML-only message
	one("CAN YOU CHE", plain)    // any case, the last word a prefix
	one(`"check"`, plain)        // quotes are text
	one(`(check) -you`, plain)   // parentheses and - too
	one("carla@example.", plain) // an address, being typed
	for _, q := range []string{`"`, `*`, `a AND`, `)`, `-`, `:`, `(`, `'`, `\`, `NEAR(`, `check OR nothing`, `'check':*`, `%`, `&|!`} {
		p := getList(t, c, "/api/v1/workitems?q="+url.QueryEscape(q))
		if q == "check OR nothing" && p.Total != 0 {
			t.Errorf("q=%s: %d items, want none (OR is a word)", q, p.Total)
		}
		if q == "'check':*" && p.Total != 1 {
			t.Errorf("q=%s: %d items, want the one with check", q, p.Total)
		}
	}

	var warranty []int64 // oldest first
	for i := range 5 {
		warranty = append(warranty, f.ingestText(t, i, fmt.Sprintf("Item %d", i), "Is this covered by the WARRANTY?").WorkItemID)
	}
	for _, tc := range []struct {
		query string
		total int
		want  []int64
	}{
		{"?q=warranty&limit=2", 5, []int64{warranty[4], warranty[3]}},
		{"?q=warranty&limit=2&offset=2", 5, []int64{warranty[2], warranty[1]}},
		{"?q=warranty&limit=2&offset=4", 5, []int64{warranty[0]}},
		{"?q=warranty&limit=2&offset=6", 5, nil},
		{"?q=warranty&sort=oldest&limit=3", 5, warranty[:3]},
		{"?q=warranty&assignee=none&state=open", 5, []int64{warranty[4], warranty[3], warranty[2], warranty[1], warranty[0]}},
		{"?q=warranty&assignee=me", 0, nil},
		{"?q=" + url.QueryEscape(`"`), 0, nil},
		{"?limit=1", 8, []int64{warranty[4]}},
	} {
		p := getList(t, c, "/api/v1/workitems"+tc.query)
		var got []int64
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if p.Total != tc.total || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("GET %s: total %d, items %v; want %d, %v", tc.query, p.Total, got, tc.total, tc.want)
		}
	}
	for _, bad := range []struct{ query, field string }{{"?assignee=bob", "assignee"}, {"?sort=random", "sort"}} {
		resp := c.get("/api/v1/workitems" + bad.query)
		fields, _ := resp.json(t)["fields"].(map[string]any)
		if resp.status != http.StatusBadRequest || fields[bad.field] == nil {
			t.Errorf("%s: %d %s, want 400 with fields.%s", bad.query, resp.status, resp.body, bad.field)
		}
	}
}

// TestViews: saved views through the API: create, list, use, share and delete, each user
// seeing their own and the shared ones only.
func TestViews(t *testing.T) {
	f := newFixture(t)
	ana, sam, admin := f.signedIn(t, "ana"), f.signedIn(t, "sam"), f.signedIn(t, "admin")
	type view struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Filter string `json:"filter"`
		URL    string `json:"url"`
		Shared bool   `json:"shared"`
		Owner  string `json:"owner"`
		Mine   bool   `json:"mine"`
	}
	create := func(c *client, body string) view {
		t.Helper()
		resp := c.postJSON("/api/v1/views", body)
		var v view
		if resp.status != http.StatusCreated || json.Unmarshal(resp.body, &v) != nil || v.ID == 0 {
			t.Fatalf("POST views %s: %d %s, want 201 with the view", body, resp.status, resp.body)
		}
		return v
	}
	names := func(c *client) string {
		t.Helper()
		resp := c.get("/api/v1/views")
		var body struct {
			Views []view `json:"views"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &body) != nil || body.Views == nil {
			t.Fatalf("GET views: %d %s", resp.status, resp.body)
		}
		var out []string
		for _, v := range body.Views {
			out = append(out, fmt.Sprintf("%s(%s,mine=%v)", v.Name, v.Owner, v.Mine))
		}
		return fmt.Sprint(out)
	}
	if got := names(ana); got != "[]" {
		t.Errorf("views before any is saved: %s", got)
	}

	mine := create(ana, `{"name": "Invoices", "filter": "q=invoice&sort=oldest&offset=100"}`)
	if mine.Filter != "q=invoice&sort=oldest" || mine.URL != "/api/v1/workitems?q=invoice&sort=oldest" || mine.Shared || !mine.Mine {
		t.Errorf("created view = %+v", mine)
	}
	if p := getList(t, ana, mine.URL); p.Total != 1 || p.Items[0].Subject != "Invoice question" {
		t.Errorf("the view's list = %+v, want the invoice question", p)
	}
	billing := create(sam, `{"name": "Unassigned, oldest first", "filter": "assignee=none&sort=oldest", "shared": true}`)

	for _, bad := range []struct{ body, field string }{
		{`{"name": "Everyone", "filter": "state=open", "shared": true}`, "shared"},
		{`{"name": "Invoices", "filter": "state=open"}`, "name"},
		{`{"name": "", "filter": "state=open"}`, "name"},
		{`{"name": "Lost", "filter": "state=lost"}`, "filter"},
	} {
		resp := ana.postJSON("/api/v1/views", bad.body)
		fields, _ := resp.json(t)["fields"].(map[string]any)
		if resp.status != http.StatusBadRequest || fields[bad.field] == nil {
			t.Errorf("POST views %s: %d %s, want 400 with fields.%s", bad.body, resp.status, resp.body, bad.field)
		}
	}

	if got, want := names(ana), "[Invoices(Ana,mine=true) Unassigned, oldest first(Sam,mine=false)]"; got != want {
		t.Errorf("ana's views = %s, want %s", got, want)
	}
	if got, want := names(sam), "[Unassigned, oldest first(Sam,mine=true)]"; got != want {
		t.Errorf("sam's views = %s, want %s (not ana's private one)", got, want)
	}

	del := func(c *client, id int64, want int) {
		t.Helper()
		if resp := c.do("DELETE", fmt.Sprintf("/api/v1/views/%d", id), "", ""); resp.status != want {
			t.Errorf("DELETE views/%d: %d %s, want %d", id, resp.status, resp.body, want)
		}
	}
	del(sam, mine.ID, http.StatusNotFound)     // another's private view does not exist for sam
	del(ana, billing.ID, http.StatusForbidden) // another's shared view
	del(ana, 99999, http.StatusNotFound)
	del(admin, billing.ID, http.StatusNoContent)
	del(ana, mine.ID, http.StatusNoContent)
	if got := names(ana); got != "[]" {
		t.Errorf("ana's views after the deletes = %s, want none", got)
	}
	if resp := f.client(t).get("/api/v1/views"); resp.status != http.StatusUnauthorized {
		t.Errorf("GET views without sign-in: %d, want 401", resp.status)
	}
}
