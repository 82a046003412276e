package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

// fixture is an API server on the real SQLite store with three work items (plain, HTML
// with an inline image and an attachment, unparsed) and users admin, sam (supervisor),
// ana (agent).
type fixture struct {
	st        store.Store
	dbPath    string
	auth      *auth.Service
	passwords *credential.Passwords
	mailboxes *mailbox.Service
	srv       *httptest.Server
	inbound   store.Mailbox
	outbound  store.Mailbox
	items     map[string]store.IngestResult // by testdata file name
	raw       map[string][]byte
	// responses holds the body of every response any client of the fixture received.
	responses [][]byte
}

const testPassword = "pw-for-tests-1"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "postroom.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	key := make([]byte, vault.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	passwords := credential.NewPasswords(st, v)
	f := &fixture{
		st: st, dbPath: dbPath, auth: auth.NewService(st, nil), passwords: passwords,
		mailboxes: mailbox.NewService(st, passwords, slog.New(slog.DiscardHandler)),
		items:     map[string]store.IngestResult{}, raw: map[string][]byte{},
	}
	for _, u := range []struct{ name, role string }{{"admin", store.RoleAdmin}, {"sam", store.RoleSupervisor}, {"ana", store.RoleAgent}} {
		if _, err := f.auth.EnsureUser(ctx, u.name, strings.ToUpper(u.name[:1])+u.name[1:], u.role, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	f.inbound, err = st.CreateMailbox(ctx, store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.com",
		Host: "imap.example.com", Port: 993, Security: "tls", Login: "support", Folder: "INBOX", MaxSizeMB: 25,
		PollInterval: time.Minute, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.outbound, err = st.CreateMailbox(ctx, store.Mailbox{
		Name: "support-out", Direction: store.Outbound, Protocol: "smtp", Address: "support@example.com",
		Host: "smtp.example.com", Port: 587, Security: "starttls", Login: "support", IsDefault: true, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSecret(ctx, f.outbound.ID, "password", []byte("ciphertext-must-not-leak")); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"plain.eml", "html.eml", "broken.eml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		m := message.Parse(raw)
		m.MailboxID = f.inbound.ID
		m.Direction = store.Inbound
		m.SourceID = fmt.Sprintf("imap:1:%d", i+1)
		res, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: raw, Message: m})
		if err != nil {
			t.Fatalf("ingest %s: %v", name, err)
		}
		f.items[name] = res
		f.raw[name] = raw
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", New(Options{Store: st, Auth: f.auth, Replier: outbound.NewService(st, slog.New(slog.DiscardHandler)), Mailboxes: f.mailboxes}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// client is an HTTP client with a cookie jar, optionally with a bearer token.
type client struct {
	t      *testing.T
	base   string
	hc     *http.Client
	bearer string
	record *[][]byte // every response body is appended here
}

func (f *fixture) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: f.srv.URL, hc: &http.Client{Jar: jar}, record: &f.responses}
}

// signedIn returns a client with a cookie session for user.
func (f *fixture) signedIn(t *testing.T, user string) *client {
	c := f.client(t)
	resp := c.do("POST", "/api/v1/session", "application/json", fmt.Sprintf(`{"user": %q, "password": %q}`, user, testPassword))
	if resp.status != http.StatusOK {
		t.Fatalf("sign in as %s: %d %s", user, resp.status, resp.body)
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object (%v): %s", err, r.body)
	}
	return m
}

func (c *client) do(method, path, ctype, body string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	*c.record = append(*c.record, b)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *client) get(path string) response {
	c.t.Helper()
	return c.do("GET", path, "", "")
}

func (c *client) postJSON(path, body string) response {
	c.t.Helper()
	return c.do("POST", path, "application/json", body)
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, ctype, body string
		wantStatus        int
		wantError         string
	}{
		{"good", "application/json", `{"user":"ana","password":"` + testPassword + `"}`, 200, ""},
		{"wrong password", "application/json", `{"user":"ana","password":"nope"}`, 401, "wrong user name or password"},
		{"unknown user", "application/json", `{"user":"zed","password":"` + testPassword + `"}`, 401, "wrong user name or password"},
		{"missing password", "application/json", `{"user":"ana"}`, 400, ""},
		{"form instead of JSON", "application/x-www-form-urlencoded", "user=ana&password=" + testPassword, 415, ""},
		{"not JSON", "application/json", `user=ana`, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(t)
			resp := c.do("POST", "/api/v1/session", tc.ctype, tc.body)
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.wantStatus, resp.body)
			}
			body := resp.json(t)
			if tc.wantStatus != 200 {
				if msg, _ := body["error"].(string); msg == "" || (tc.wantError != "" && msg != tc.wantError) {
					t.Errorf("error = %q, want %q", msg, tc.wantError)
				}
				if len(resp.header.Values("Set-Cookie")) != 0 {
					t.Errorf("failed sign-in set a cookie: %v", resp.header.Values("Set-Cookie"))
				}
				return
			}
			user, _ := body["user"].(map[string]any)
			if user["username"] != "ana" || user["role"] != "agent" {
				t.Errorf("user = %v", user)
			}
			if _, ok := user["password_hash"]; ok || bytes.Contains(resp.body, []byte("$2a$")) {
				t.Errorf("response shows the password hash: %s", resp.body)
			}
			if s, _ := body["csrf_token"].(string); s == "" {
				t.Errorf("no csrf_token in %s", resp.body)
			}
			cookie := resp.header.Get("Set-Cookie")
			for _, want := range []string{auth.SessionCookie + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(cookie, want) {
					t.Errorf("Set-Cookie %q lacks %q", cookie, want)
				}
			}
			if me := c.get("/api/v1/me"); me.status != 200 || !strings.Contains(string(me.body), `"ana"`) {
				t.Errorf("GET /me with the new cookie: %d %s", me.status, me.body)
			}
			// Sign out; the cookie stops working.
			if out := c.do("DELETE", "/api/v1/session", "application/json", ""); out.status != http.StatusNoContent {
				t.Errorf("sign out: %d %s", out.status, out.body)
			}
			if me := c.get("/api/v1/me"); me.status != http.StatusUnauthorized {
				t.Errorf("GET /me after sign-out: %d, want 401", me.status)
			}
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	for _, path := range []string{"/api/v1/workitems", "/api/v1/me", "/api/v1/mailboxes", fmt.Sprintf("/api/v1/messages/%d/raw", f.items["plain.eml"].MessageID)} {
		resp := c.get(path)
		if resp.status != http.StatusUnauthorized {
			t.Errorf("GET %s: %d, want 401", path, resp.status)
			continue
		}
		if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "sign in") {
			t.Errorf("GET %s: error %q does not say how to sign in", path, msg)
		}
	}
	c.bearer = "prt_not-a-real-token"
	if resp := c.get("/api/v1/workitems"); resp.status != http.StatusUnauthorized {
		t.Errorf("unknown bearer token: %d, want 401", resp.status)
	}
}

func TestListWorkItems(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	list := func(query string) []map[string]any {
		t.Helper()
		resp := c.get("/api/v1/workitems" + query)
		if resp.status != 200 {
			t.Fatalf("GET workitems%s: %d %s", query, resp.status, resp.body)
		}
		var body struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(resp.body, &body); err != nil {
			t.Fatal(err)
		}
		return body.Items
	}
	all := list("")
	if len(all) != 3 {
		t.Fatalf("%d items, want 3", len(all))
	}
	var unparsed int
	for _, it := range all {
		for _, k := range []string{"id", "subject", "from_name", "from_addr", "mailbox", "state", "unparsed", "received_at", "age_seconds", "updated_at"} {
			if _, ok := it[k]; !ok {
				t.Errorf("item lacks %q: %v", k, it)
			}
		}
		if _, err := time.Parse(time.RFC3339, it["received_at"].(string)); err != nil {
			t.Errorf("received_at %q is not RFC 3339: %v", it["received_at"], err)
		}
		if it["mailbox"] != "support" || it["state"] != store.StateQueued {
			t.Errorf("item %v: want mailbox support, state queued", it)
		}
		if it["unparsed"] == true {
			unparsed++
			if it["subject"] != "Broken structure" {
				t.Errorf("unparsed item is %q", it["subject"])
			}
		}
	}
	if unparsed != 1 {
		t.Errorf("%d unparsed items, want 1", unparsed)
	}
	got := list("?q=INVOICE")
	if len(got) != 1 || got[0]["subject"] != "Invoice question" || got[0]["from_addr"] != "ivan@example.org" {
		t.Errorf("q=INVOICE gave %v", got)
	}
	if got := list("?q=carla@example.net"); len(got) != 1 || got[0]["from_name"] != "Carla Customer" {
		t.Errorf("q=carla@example.net gave %v", got)
	}
	if got := list("?limit=2"); len(got) != 2 {
		t.Errorf("limit=2 gave %d items", len(got))
	}
	if got := list("?state=done"); len(got) != 0 {
		t.Errorf("state=done gave %d items, want 0", len(got))
	}
	for _, bad := range []struct{ query, field string }{{"?state=lost", "state"}, {"?limit=0", "limit"}, {"?limit=x", "limit"}, {"?offset=-1", "offset"}} {
		resp := c.get("/api/v1/workitems" + bad.query)
		fields, _ := resp.json(t)["fields"].(map[string]any)
		if resp.status != 400 || fields[bad.field] == nil {
			t.Errorf("%s: %d %s, want 400 with fields.%s", bad.query, resp.status, resp.body, bad.field)
		}
	}
}

func TestGetWorkItem(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	res := f.items["html.eml"]
	resp := c.get(fmt.Sprintf("/api/v1/workitems/%d", res.WorkItemID))
	if resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	var wi struct {
		ID       int64  `json:"id"`
		Subject  string `json:"subject"`
		Messages []struct {
			ID          int64  `json:"id"`
			Direction   string `json:"direction"`
			FromAddr    string `json:"from_addr"`
			Subject     string `json:"subject"`
			Text        string `json:"text"`
			HTML        string `json:"html"`
			RawURL      string `json:"raw_url"`
			Attachments []struct {
				ID          int64  `json:"id"`
				Filename    string `json:"filename"`
				ContentType string `json:"content_type"`
				Inline      bool   `json:"inline"`
				URL         string `json:"url"`
			} `json:"attachments"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(resp.body, &wi); err != nil {
		t.Fatal(err)
	}
	if wi.ID != res.WorkItemID || wi.Subject != "Invoice question" || len(wi.Messages) != 1 {
		t.Fatalf("work item = %+v", wi)
	}
	m := wi.Messages[0]
	if m.Direction != store.Inbound || m.FromAddr != "ivan@example.org" || m.RawURL != fmt.Sprintf("/api/v1/messages/%d/raw", m.ID) {
		t.Errorf("message = %+v", m)
	}
	if !strings.Contains(m.HTML, "invoice 77") {
		t.Errorf("html lost the text: %q", m.HTML)
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "pwned", "cid:"} {
		if strings.Contains(strings.ToLower(m.HTML), bad) {
			t.Errorf("sanitized html contains %q: %q", bad, m.HTML)
		}
	}
	if len(m.Attachments) != 2 {
		t.Fatalf("attachments = %+v", m.Attachments)
	}
	logo := m.Attachments[0]
	if logo.Filename != "logo.png" || !logo.Inline || logo.URL != fmt.Sprintf("/api/v1/attachments/%d", logo.ID) {
		t.Errorf("inline image = %+v", logo)
	}
	if !strings.Contains(m.HTML, `src="`+logo.URL+`"`) {
		t.Errorf("cid: image not rewritten to %s: %q", logo.URL, m.HTML)
	}

	for _, path := range []string{"/api/v1/workitems/99999", "/api/v1/workitems/abc", "/api/v1/attachments/99999", "/api/v1/messages/99999/raw"} {
		resp := c.get(path)
		if resp.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.status)
		} else if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "not found") {
			t.Errorf("GET %s: error %q", path, msg)
		}
	}

	// The unparsed message is shown with its parse error and raw link.
	resp = c.get(fmt.Sprintf("/api/v1/workitems/%d", f.items["broken.eml"].WorkItemID))
	var broken struct {
		Unparsed bool `json:"unparsed"`
		Messages []struct {
			Unparsed   bool   `json:"unparsed"`
			ParseError string `json:"parse_error"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(resp.body, &broken); err != nil {
		t.Fatal(err)
	}
	if !broken.Unparsed || len(broken.Messages) != 1 || !broken.Messages[0].Unparsed || !strings.Contains(broken.Messages[0].ParseError, "boundary") {
		t.Errorf("unparsed work item = %s", resp.body)
	}
}

func TestRawAndAttachments(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	res := f.items["html.eml"]
	resp := c.get(fmt.Sprintf("/api/v1/messages/%d/raw", res.MessageID))
	if resp.status != 200 || !bytes.Equal(resp.body, f.raw["html.eml"]) {
		t.Fatalf("raw: %d, %d bytes, want the %d stored bytes", resp.status, len(resp.body), len(f.raw["html.eml"]))
	}
	if ct := resp.header.Get("Content-Type"); ct != "message/rfc822" {
		t.Errorf("raw Content-Type %q", ct)
	}
	if cd, want := resp.header.Get("Content-Disposition"), fmt.Sprintf("attachment; filename=message-%d.eml", res.MessageID); cd != want {
		t.Errorf("raw Content-Disposition %q, want %q", cd, want)
	}

	msg, err := f.st.Message(context.Background(), res.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]store.Attachment{}
	for _, a := range msg.Attachments {
		byName[a.Filename] = a
	}
	tests := []struct {
		file, wantType, wantDisposition string
	}{
		{"logo.png", "image/png", "inline; filename=logo.png"},
		{"page.html", "text/html", "attachment; filename=page.html"},
	}
	for _, tc := range tests {
		resp := c.get(fmt.Sprintf("/api/v1/attachments/%d", byName[tc.file].ID))
		if resp.status != 200 {
			t.Errorf("%s: %d %s", tc.file, resp.status, resp.body)
			continue
		}
		h := resp.header
		if h.Get("Content-Type") != tc.wantType || h.Get("Content-Disposition") != tc.wantDisposition ||
			h.Get("Content-Security-Policy") != "sandbox" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", tc.file, h)
		}
	}
	png := c.get(fmt.Sprintf("/api/v1/attachments/%d", byName["logo.png"].ID))
	if !bytes.HasPrefix(png.body, []byte("\x89PNG")) {
		t.Errorf("logo.png body is not the PNG: %q", png.body)
	}
}

func TestReply(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	id := f.items["plain.eml"].WorkItemID
	path := fmt.Sprintf("/api/v1/workitems/%d/reply", id)

	for _, empty := range []string{`{"text": ""}`, `{"text": "  \n "}`, `{}`} {
		resp := c.postJSON(path, empty)
		body := resp.json(t)
		fields, _ := body["fields"].(map[string]any)
		if resp.status != 400 || fields["text"] != "write a reply before sending" {
			t.Errorf("reply %s: %d %s, want 400 with fields.text", empty, resp.status, resp.body)
		}
	}
	if wi, _ := f.st.WorkItem(context.Background(), id); wi.State != store.StateQueued {
		t.Fatalf("empty reply changed the state to %q", wi.State)
	}

	resp := c.postJSON(path, `{"text": "Hello Carla,\nyour parcel left today.\n"}`)
	if resp.status != http.StatusAccepted {
		t.Fatalf("reply: %d %s", resp.status, resp.body)
	}
	var out struct {
		Outbox struct {
			ID         int64    `json:"id"`
			State      string   `json:"state"`
			Recipients []string `json:"recipients"`
		} `json:"outbox"`
		WorkItem struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"workitem"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Outbox.ID == 0 || out.Outbox.State != store.OutboxQueued || len(out.Outbox.Recipients) != 1 || out.Outbox.Recipients[0] != "carla@example.net" {
		t.Errorf("outbox = %+v", out.Outbox)
	}
	// The replying agent keeps the item until someone marks it done.
	if out.WorkItem.ID != id || out.WorkItem.State != store.StateAssigned {
		t.Errorf("workitem = %+v, want state assigned", out.WorkItem)
	}
	// The conversation now shows the reply and who wrote it.
	detail := c.get(fmt.Sprintf("/api/v1/workitems/%d", id))
	if !strings.Contains(string(detail.body), "your parcel left today") || !strings.Contains(string(detail.body), `"author":"Ana"`) {
		t.Errorf("work item after reply: %s", detail.body)
	}
	if list := c.get("/api/v1/workitems?state=assigned"); !strings.Contains(string(list.body), "Order 1234") {
		t.Errorf("state=assigned listing: %s", list.body)
	}
	if resp := c.postJSON("/api/v1/workitems/99999/reply", `{"text":"hi"}`); resp.status != 404 {
		t.Errorf("reply to unknown work item: %d %s", resp.status, resp.body)
	}
}

func TestCrossSiteFormPostRefused(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "ana")
	id := f.items["plain.eml"].WorkItemID
	path := fmt.Sprintf("/api/v1/workitems/%d/reply", id)
	tests := []struct {
		name, ctype, body string
		header            map[string]string
	}{
		{"urlencoded form", "application/x-www-form-urlencoded", "text=hello", nil},
		{"multipart form", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\n--x--\r\n", nil},
		{"text/plain with JSON inside", "text/plain", `{"text":"hello"}`, nil},
		{"no content type", "", `{"text":"hello"}`, nil},
		{"JSON from another site", "application/json", `{"text":"hello"}`, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType && resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 415 or 403: %s", resp.StatusCode, b)
			}
			if !json.Valid(b) {
				t.Errorf("error body is not JSON: %s", b)
			}
		})
	}
	if wi, _ := f.st.WorkItem(context.Background(), id); wi.State != store.StateQueued {
		t.Errorf("a refused request changed the state to %q", wi.State)
	}
	if ob, _ := f.st.OutboxForWorkItem(context.Background(), id); len(ob) != 0 {
		t.Errorf("a refused request queued %d replies", len(ob))
	}
}

func TestTokensAndRoles(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	agent := f.signedIn(t, "ana")
	sup := f.signedIn(t, "sam")

	if resp := agent.postJSON("/api/v1/tokens", `{"name":"mine","scopes":["admin"]}`); resp.status != http.StatusForbidden {
		t.Errorf("agent creating an admin token: %d %s, want 403", resp.status, resp.body)
	} else if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "admin") || !strings.Contains(msg, "agent") {
		t.Errorf("403 error %q does not say which scope is refused and which role the agent has", msg)
	}
	if resp := sup.postJSON("/api/v1/tokens", `{"name":"mine","scopes":["admin"]}`); resp.status != http.StatusForbidden {
		t.Errorf("supervisor creating an admin token: %d, want 403", resp.status)
	}
	if resp := agent.get("/api/v1/mailboxes"); resp.status != http.StatusForbidden {
		t.Errorf("agent listing mailboxes: %d, want 403", resp.status)
	}
	if resp := admin.postJSON("/api/v1/tokens", `{"name":" "}`); resp.status != 400 {
		t.Errorf("token without a name: %d, want 400", resp.status)
	}

	resp := admin.postJSON("/api/v1/tokens", `{"name":"nightly report"}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("create token: %d %s", resp.status, resp.body)
	}
	token, _ := resp.json(t)["token"].(string)
	if !strings.HasPrefix(token, "prt_") {
		t.Fatalf("token %q", token)
	}

	script := f.client(t)
	script.bearer = token
	me := script.get("/api/v1/me")
	if me.status != 200 || !strings.Contains(string(me.body), `"username":"admin"`) {
		t.Fatalf("GET /me with the token: %d %s", me.status, me.body)
	}
	items := script.get("/api/v1/workitems")
	var list struct{ Items []any }
	if err := json.Unmarshal(items.body, &list); err != nil || len(list.Items) != 3 {
		t.Errorf("GET workitems with the token: %d %s", items.status, items.body)
	}
	// A bearer-token script needs no CSRF defence, but it still sends JSON.
	reply := script.postJSON(fmt.Sprintf("/api/v1/workitems/%d/reply", f.items["html.eml"].WorkItemID), `{"text":"Thanks, looking into it."}`)
	if reply.status != http.StatusAccepted {
		t.Errorf("reply with the token: %d %s", reply.status, reply.body)
	}

	for _, c := range []*client{script, sup} {
		mbs := c.get("/api/v1/mailboxes")
		if mbs.status != 200 {
			t.Fatalf("mailboxes: %d %s", mbs.status, mbs.body)
		}
		if bytes.Contains(mbs.body, []byte("ciphertext-must-not-leak")) {
			t.Errorf("mailbox listing shows the secret: %s", mbs.body)
		}
		var out struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(mbs.body, &out); err != nil || len(out.Items) != 2 {
			t.Fatalf("mailboxes: %s", mbs.body)
		}
		for _, m := range out.Items {
			if m["name"] == "support-out" && (m["password_set"] != true || m["is_default"] != true) {
				t.Errorf("outbound mailbox: %v", m)
			}
			if _, ok := m["password"]; ok {
				t.Errorf("mailbox has a password field: %v", m)
			}
		}
	}
}

func TestOpenAPI(t *testing.T) {
	f := newFixture(t)
	resp := f.client(t).get("/api/v1/openapi.json")
	if resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	// Every route that New serves is described.
	for _, rt := range (&server{}).routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("openapi.json does not describe %s", rt.pattern)
		}
	}
	// ... and nothing else.
	served := map[string]bool{}
	for _, rt := range (&server{}).routes() {
		served[rt.pattern] = true
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[strings.ToUpper(method)+" "+path] {
				t.Errorf("openapi.json describes %s %s, which is not served", strings.ToUpper(method), path)
			}
		}
	}
	// The schemas scripts rely on exist, and every $ref points at something.
	var raw any
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	schemas := raw.(map[string]any)["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range []string{"Mailbox", "MailboxInput", "ValidationError", "TestReport", "Queue", "FromAddress", "FromChoice"} {
		if schemas[name] == nil {
			t.Errorf("openapi.json has no schema %s", name)
		}
	}
	for _, ref := range refs(raw) {
		target := raw
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, _ := target.(map[string]any)
			target = m[part]
		}
		if target == nil {
			t.Errorf("$ref %s points at nothing", ref)
		}
	}
	mailboxProps := schemas["Mailbox"].(map[string]any)["properties"].(map[string]any)
	for _, k := range []string{"name", "direction", "protocol", "host", "port", "security", "login", "max_size_mb", "enabled", "status", "password_set", "queue_id"} {
		if mailboxProps[k] == nil {
			t.Errorf("schema Mailbox lacks %q", k)
		}
	}
	if mailboxProps["password"] != nil {
		t.Error("schema Mailbox has a password: it is write-only (MailboxInput)")
	}
	if resp := f.client(t).get("/api/v1/nothing-here"); resp.status != 404 || !json.Valid(resp.body) {
		t.Errorf("unknown endpoint: %d %s", resp.status, resp.body)
	}
}

// refs returns every "$ref" value in a decoded JSON document.
func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

// With no outbound mailbox enabled the work item is still readable: it has no From
// choices, and a reply says what to set up.
func TestGetWorkItemWithoutOutboundMailbox(t *testing.T) {
	f := newFixture(t)
	if err := f.st.SetMailboxEnabled(context.Background(), f.outbound.ID, false); err != nil {
		t.Fatal(err)
	}
	c := f.signedIn(t, "ana")
	id := f.items["plain.eml"].WorkItemID
	resp := c.get(fmt.Sprintf("/api/v1/workitems/%d", id))
	if resp.status != http.StatusOK {
		t.Fatalf("GET work item without an outbound mailbox: %d %s", resp.status, resp.body)
	}
	var wi struct {
		ID          int64            `json:"id"`
		Messages    []map[string]any `json:"messages"`
		FromChoices []map[string]any `json:"from_choices"`
	}
	if err := json.Unmarshal(resp.body, &wi); err != nil {
		t.Fatal(err)
	}
	if wi.ID != id || len(wi.Messages) != 1 || wi.FromChoices == nil || len(wi.FromChoices) != 0 {
		t.Errorf("work item without an outbound mailbox = %s", resp.body)
	}
	resp = c.postJSON(fmt.Sprintf("/api/v1/workitems/%d/reply", id), `{"text": "Hello"}`)
	if msg, _ := resp.json(t)["error"].(string); resp.status < 400 || !strings.Contains(msg, "outbound mailbox") {
		t.Errorf("reply without an outbound mailbox: %d %s", resp.status, resp.body)
	}
}
