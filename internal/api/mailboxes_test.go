package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// secretPassword is the mailbox password the tests set; no response may contain it.
const secretPassword = "Tr0ub4dor&3-never-shown"

func (c *client) putJSON(path, body string) response {
	c.t.Helper()
	return c.do("PUT", path, "application/json", body)
}

func (c *client) del(path string) response {
	c.t.Helper()
	return c.do("DELETE", path, "application/json", "")
}

// want fails the test unless resp has the status; it returns the body as a JSON object
// (nil for an empty body).
func want(t *testing.T, what string, resp response, status int) map[string]any {
	t.Helper()
	if resp.status != status {
		t.Fatalf("%s: %d %s, want %d", what, resp.status, resp.body, status)
	}
	if len(resp.body) == 0 {
		return nil
	}
	return resp.json(t)
}

// mailboxView decodes a mailbox response.
func mailboxView(t *testing.T, resp response) MailboxView {
	t.Helper()
	var v MailboxView
	if err := json.Unmarshal(resp.body, &v); err != nil {
		t.Fatalf("not a mailbox (%v): %s", err, resp.body)
	}
	return v
}

// inboundBody is a valid inbound mailbox body with some fields replaced (a nil value
// removes the field).
func inboundBody(t *testing.T, name string, change map[string]any) string {
	t.Helper()
	b := map[string]any{
		"name": name, "direction": "inbound", "protocol": "imap", "host": "imap.example.com", "port": 993,
		"security": "tls", "login": "help@example.com", "password": secretPassword, "folder": "INBOX",
		"max_size_mb": 5, "poll_interval_seconds": 60,
	}
	for k, v := range change {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestMailboxValidation(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	tests := []struct {
		name   string
		change map[string]any
		body   string // instead of inboundBody(change)
		field  string
		msg    string // part of the field's message, when it matters
	}{
		{name: "41-character name", change: map[string]any{"name": strings.Repeat("a", 41)}, field: "name", msg: "40"},
		{name: "space in name", change: map[string]any{"name": "a b"}, field: "name"},
		{name: "# in name", change: map[string]any{"name": "bad#name"}, field: "name"},
		{name: "empty name", change: map[string]any{"name": ""}, field: "name"},
		{name: "max size 4", change: map[string]any{"max_size_mb": 4}, field: "max_size_mb", msg: "from 5 to 20"},
		{name: "max size 21", change: map[string]any{"max_size_mb": 21}, field: "max_size_mb", msg: "from 5 to 20"},
		{name: "max size 5.5", change: map[string]any{"max_size_mb": 5.5}, field: "max_size_mb", msg: "a whole number of MB from 5 to 20"},
		{name: "max size as text", change: map[string]any{"max_size_mb": "five"}, field: "max_size_mb", msg: "a whole number of MB from 5 to 20"},
		{name: "security none on a remote host", change: map[string]any{"security": "none", "port": 143}, field: "security", msg: "127.0.0.1"},
		{name: "unknown security", change: map[string]any{"security": "ssl"}, field: "security"},
		{name: "missing host", change: map[string]any{"host": nil}, field: "host"},
		{name: "host with a scheme", change: map[string]any{"host": "imaps://imap.example.com"}, field: "host"},
		{name: "port 0 is the default, 70000 is not a port", change: map[string]any{"port": 70000}, field: "port"},
		{name: "port as text", change: map[string]any{"port": "imaps"}, field: "port"},
		{name: "bad address", change: map[string]any{"address": "help at example.com"}, field: "address"},
		{name: "move without a folder", change: map[string]any{"after_action": "move"}, field: "move_folder"},
		{name: "unknown after action", change: map[string]any{"after_action": "archive"}, field: "after_action"},
		{name: "pop3 with a folder", change: map[string]any{"protocol": "pop3", "port": 995}, field: "folder"},
		{name: "pop3 with mark_read", change: map[string]any{"protocol": "pop3", "folder": nil, "after_action": "mark_read"}, field: "after_action"},
		{name: "inbound smtp", change: map[string]any{"protocol": "smtp"}, field: "protocol"},
		{name: "unknown direction", change: map[string]any{"direction": "sideways"}, field: "direction"},
		{name: "poll every 5 seconds", change: map[string]any{"poll_interval_seconds": 5}, field: "poll_interval_seconds"},
		{name: "poll overflowing a duration", change: map[string]any{"poll_interval_seconds": int64(1) << 62}, field: "poll_interval_seconds"},
		{name: "login without a password", change: map[string]any{"password": nil}, field: "password"},
		{name: "inbound without a login", change: map[string]any{"login": nil, "password": nil}, field: "login"},
		{name: "is_default as text", change: map[string]any{"is_default": "yes"}, field: "is_default"},
		{name: "unknown field", change: map[string]any{"colour": "blue"}, field: "colour", msg: "unknown field"},
		{name: "ews with a host and an autodiscover host", change: map[string]any{"protocol": "ews", "folder": nil, "port": nil, "autodiscover_host": "autodiscover.example.com"},
			field: "autodiscover_host", msg: "leave the host empty to find the server through the autodiscover host, or clear the autodiscover host"},
		{name: "ews autodiscover host with a path", change: map[string]any{"protocol": "ews", "folder": nil, "port": nil, "host": "", "autodiscover_host": "https://autodiscover.example.com/autodiscover"},
			field: "autodiscover_host", msg: "without scheme or path"},
		{name: "imap with an autodiscover host", change: map[string]any{"autodiscover_host": "autodiscover.example.com"}, field: "autodiscover_host", msg: "only an EWS mailbox"},
		{name: "autodiscover host as a number", change: map[string]any{"autodiscover_host": 443}, field: "autodiscover_host"},
		{name: "outbound without an address", body: `{"name":"out2","direction":"outbound","host":"smtp.example.com","login":"x","password":"y"}`, field: "address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == "" {
				body = inboundBody(t, "valid", tc.change)
			}
			resp := c.postJSON("/api/v1/mailboxes", body)
			out := want(t, "create", resp, http.StatusBadRequest)
			fields, _ := out["fields"].(map[string]any)
			msg, _ := fields[tc.field].(string)
			if msg == "" {
				t.Fatalf("no error for field %q: %s", tc.field, resp.body)
			}
			if tc.msg != "" && !strings.Contains(msg, tc.msg) {
				t.Errorf("fields.%s = %q, want it to say %q", tc.field, msg, tc.msg)
			}
			errText, _ := out["error"].(string)
			if !strings.HasPrefix(errText, "the mailbox has errors: ") || !strings.Contains(errText, tc.field+": ") {
				t.Errorf("error %q does not name the field %q", errText, tc.field)
			}
		})
	}
	mbs, err := f.st.ListMailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(mbs) != 2 {
		t.Errorf("refused bodies created mailboxes: %d mailboxes, want the fixture's 2", len(mbs))
	}

	// The limits themselves are accepted.
	for _, tc := range []struct {
		name   string
		change map[string]any
	}{
		{strings.Repeat("x", 40), map[string]any{"max_size_mb": 5}},
		{"help@example.com", map[string]any{"max_size_mb": 20}},
		{"a_b.c", map[string]any{"max_size_mb": nil, "port": nil, "security": nil, "folder": nil, "poll_interval_seconds": nil}},
		{"loopback", map[string]any{"security": "none", "host": "127.0.0.1", "port": 143}},
		{"pop", map[string]any{"protocol": "pop3", "folder": nil, "port": nil, "after_action": "keep"}},
		{"mover", map[string]any{"after_action": "move", "move_folder": "Done"}},
	} {
		resp := c.postJSON("/api/v1/mailboxes", inboundBody(t, tc.name, tc.change))
		want(t, "create "+tc.name, resp, http.StatusCreated)
		v := mailboxView(t, resp)
		if v.Name != tc.name || v.Enabled || v.Status != "disabled" {
			t.Errorf("created %+v: want name %q, disabled", v, tc.name)
		}
		if tc.name == "a_b.c" && (v.MaxSizeMB != 5 || v.Port != 993 || v.Security != "tls" || v.Folder != "INBOX" || v.PollIntervalSeconds != 60 || v.AfterAction != "mark_read") {
			t.Errorf("defaults not applied: %+v", v)
		}
		if tc.name == "pop" && (v.Port != 995 || v.AfterAction != "keep" || v.Folder != "") {
			t.Errorf("pop3 mailbox: %+v", v)
		}
	}
	// A name is unique.
	resp := c.postJSON("/api/v1/mailboxes", inboundBody(t, "loopback", nil))
	if fields, _ := want(t, "duplicate name", resp, http.StatusBadRequest)["fields"].(map[string]any); fields["name"] == nil {
		t.Errorf("duplicate name: %s", resp.body)
	}
	// Not an object, not JSON.
	for _, body := range []string{`[1,2]`, `null`, `{"name": "x"`, `"x"`} {
		if resp := c.postJSON("/api/v1/mailboxes", body); resp.status != http.StatusBadRequest || !json.Valid(resp.body) {
			t.Errorf("body %s: %d %s, want 400", body, resp.status, resp.body)
		}
	}
}

func TestMailboxLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signedIn(t, "admin")

	resp := c.postJSON("/api/v1/mailboxes", inboundBody(t, "help", nil))
	want(t, "create", resp, http.StatusCreated)
	v := mailboxView(t, resp)
	if v.ID == 0 || v.Enabled || v.Status != "disabled" || !v.PasswordSet || v.QueueID != nil || v.Address != "help@example.com" {
		t.Fatalf("new mailbox %+v: want disabled, password set, no queue, address from the login", v)
	}
	if loc := resp.header.Get("Location"); loc != fmt.Sprintf("/api/v1/mailboxes/%d", v.ID) {
		t.Errorf("Location %q", loc)
	}
	path := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)
	if got := mailboxView(t, c.get(path)); got.Name != "help" || got.Host != "imap.example.com" || got.MaxSizeMB != 5 {
		t.Errorf("GET %s: %+v", path, got)
	}

	// Enable: assigned to the Default queue.
	v = mailboxView(t, c.postJSON(path+"/enable", ""))
	if !v.Enabled || v.Queue != store.DefaultQueue || v.QueueID == nil || v.Status != "idle" {
		t.Fatalf("after enable: %+v, want enabled in the Default queue, idle", v)
	}
	// Delete refused while enabled, with the words the brief gives.
	out := want(t, "delete enabled", c.del(path), http.StatusConflict)
	if out["error"] != "the mailbox is enabled: disable it before deleting it" {
		t.Errorf("409 error = %q", out["error"])
	}
	// Disable, then delete.
	if v = mailboxView(t, c.postJSON(path+"/disable", "")); v.Enabled || v.Status != "disabled" {
		t.Fatalf("after disable: %+v", v)
	}
	want(t, "delete disabled", c.del(path), http.StatusNoContent)
	want(t, "GET deleted", c.get(path), http.StatusNotFound)
	want(t, "delete again", c.del(path), http.StatusNotFound)
	for _, p := range []string{"/api/v1/mailboxes/0", "/api/v1/mailboxes/x", "/api/v1/mailboxes/99999"} {
		if resp := c.postJSON(p+"/enable", ""); resp.status != http.StatusNotFound {
			t.Errorf("enable %s: %d %s", p, resp.status, resp.body)
		}
	}

	// Every change was audited under the admin's name, without the password.
	events, err := f.st.ListAuditFor(ctx, fmt.Sprintf("mailbox:%d", v.ID), 50)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range events {
		actions[e.Action] = true
		if e.Actor != "admin" {
			t.Errorf("event %s by %q, want admin", e.Action, e.Actor)
		}
		if strings.Contains(e.Old+e.New, secretPassword) {
			t.Errorf("audit event %s shows the password", e.Action)
		}
	}
	for _, a := range []string{"mailbox.create", "mailbox.enable", "mailbox.disable", "mailbox.delete"} {
		if !actions[a] {
			t.Errorf("no audit event %s in %v", a, actions)
		}
	}
}

func TestQueues(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "billing", nil)))
	path := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)

	resp := c.postJSON("/api/v1/queues", `{"name": "Billing"}`)
	want(t, "create queue", resp, http.StatusCreated)
	var q queueJSON
	if err := json.Unmarshal(resp.body, &q); err != nil || q.ID == 0 || q.Name != "Billing" || !q.Enabled {
		t.Fatalf("queue %s", resp.body)
	}
	if resp := c.postJSON("/api/v1/queues", `{"name": ""}`); resp.status != 400 || !strings.Contains(string(resp.body), `"name"`) {
		t.Errorf("queue without a name: %d %s", resp.status, resp.body)
	}
	if resp := c.postJSON("/api/v1/queues", `{"name": "Billing"}`); resp.status != 400 {
		t.Errorf("second queue Billing: %d %s", resp.status, resp.body)
	}

	// Assignment enables; the queue lists the mailbox.
	v = mailboxView(t, c.putJSON(path+"/queue", fmt.Sprintf(`{"queue_id": %d}`, q.ID)))
	if !v.Enabled || v.QueueID == nil || *v.QueueID != q.ID || v.Queue != "Billing" {
		t.Fatalf("after assignment: %+v", v)
	}
	var list struct{ Items []queueJSON }
	if err := json.Unmarshal(c.get("/api/v1/queues").body, &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range list.Items {
		if it.ID == q.ID {
			found = len(it.MailboxIDs) == 1 && it.MailboxIDs[0] == v.ID
		}
	}
	if !found {
		t.Errorf("queue list %+v does not show mailbox %d in Billing", list.Items, v.ID)
	}

	// Disabling the queue disables the mailbox; enabling the mailbox is then refused.
	want(t, "disable queue", c.postJSON(fmt.Sprintf("/api/v1/queues/%d/disable", q.ID), ""), http.StatusOK)
	if v = mailboxView(t, c.get(path)); v.Enabled {
		t.Errorf("mailbox of a disabled queue is enabled")
	}
	want(t, "enable in a disabled queue", c.postJSON(path+"/enable", ""), http.StatusConflict)
	want(t, "enable queue", c.postJSON(fmt.Sprintf("/api/v1/queues/%d/enable", q.ID), ""), http.StatusOK)
	if v = mailboxView(t, c.get(path)); !v.Enabled {
		t.Errorf("mailbox stays disabled after its queue was enabled")
	}

	// Unassigning disables it.
	v = mailboxView(t, c.putJSON(path+"/queue", `{"queue_id": null}`))
	if v.Enabled || v.QueueID != nil || v.Queue != "" {
		t.Errorf("after unassignment: %+v", v)
	}
	for _, bad := range []struct{ path, body string }{
		{path + "/queue", `{}`},
		{path + "/queue", `{"queue_id": "Billing"}`},
		{path + "/queue", `{"queue_id": 99999}`},
		{path + "/queue", `{"queue_id": -1}`},
		{fmt.Sprintf("/api/v1/mailboxes/%d/queue", f.outbound.ID), fmt.Sprintf(`{"queue_id": %d}`, q.ID)},
	} {
		resp := c.putJSON(bad.path, bad.body)
		fields, _ := want(t, "assign "+bad.body, resp, http.StatusBadRequest)["fields"].(map[string]any)
		if fields["queue_id"] == nil {
			t.Errorf("assign %s: %s, want fields.queue_id", bad.body, resp.body)
		}
	}
	want(t, "unknown queue", c.postJSON("/api/v1/queues/99999/enable", ""), http.StatusNotFound)
}

func TestMailboxUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signedIn(t, "admin")
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "sales", nil)))
	path := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)

	// Partial: only max_size_mb changes; the password is kept.
	v = mailboxView(t, c.putJSON(path, `{"max_size_mb": 10}`))
	if v.MaxSizeMB != 10 || v.Host != "imap.example.com" || v.Login != "help@example.com" || !v.PasswordSet {
		t.Fatalf("after partial update: %+v", v)
	}
	// The full object as GET returns it, read-only fields included, is accepted back;
	// "password": null keeps the password.
	var obj map[string]any
	if err := json.Unmarshal(c.get(path).body, &obj); err != nil {
		t.Fatal(err)
	}
	obj["host"] = "mail.example.org"
	obj["password"] = nil
	b, _ := json.Marshal(obj)
	// A new host needs the password again: the stored one only goes to the old host.
	resp := c.putJSON(path, string(b))
	if fields, _ := want(t, "new host without password", resp, http.StatusBadRequest)["fields"].(map[string]any); !strings.Contains(fmt.Sprint(fields["password"]), "you changed the host: enter the password again; the stored one is only sent to imap.example.com:993") {
		t.Errorf("new host without password: %s, want fields.password asking for it again", resp.body)
	}
	obj["password"] = secretPassword
	b, _ = json.Marshal(obj)
	v = mailboxView(t, c.putJSON(path, string(b)))
	if v.Host != "mail.example.org" || v.MaxSizeMB != 10 || !v.PasswordSet {
		t.Errorf("after full update: %+v", v)
	}
	pw, err := f.passwords.Get(ctx, v.ID)
	if err != nil || pw.Reveal() != secretPassword {
		t.Errorf("stored password changed by an update without one (err %v)", err)
	}
	// A new password replaces it.
	want(t, "new password", c.putJSON(path, `{"password": "another-one"}`), http.StatusOK)
	if pw, _ := f.passwords.Get(ctx, v.ID); pw.Reveal() != "another-one" {
		t.Error("new password not stored")
	}
	// The name: the same is fine, another is a field error; so are the range rules.
	want(t, "same name", c.putJSON(path, `{"name": "sales"}`), http.StatusOK)
	for _, tc := range []struct{ body, field string }{
		{`{"name": "sales2"}`, "name"},
		{`{"direction": "outbound"}`, "direction"},
		{`{"max_size_mb": 21}`, "max_size_mb"},
		{`{"max_size_mb": 5.5}`, "max_size_mb"},
		{`{"security": "none"}`, "security"},
		{`{"host": ""}`, "host"},
		{`{"nickname": "x"}`, "nickname"},
	} {
		resp := c.putJSON(path, tc.body)
		fields, _ := want(t, "update "+tc.body, resp, http.StatusBadRequest)["fields"].(map[string]any)
		if fields[tc.field] == nil {
			t.Errorf("update %s: %s, want fields.%s", tc.body, resp.body, tc.field)
		}
	}
	if got := mailboxView(t, c.get(path)); got.Name != "sales" || got.MaxSizeMB != 10 || got.Host != "mail.example.org" {
		t.Errorf("refused updates changed the mailbox: %+v", got)
	}
	want(t, "update unknown", c.putJSON("/api/v1/mailboxes/99999", `{"max_size_mb": 6}`), http.StatusNotFound)
}

func TestMailboxCopyAndDefaultOutbound(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	src := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "orders", map[string]any{"max_size_mb": 12, "after_action": "move", "move_folder": "Done"})))
	resp := c.postJSON(fmt.Sprintf("/api/v1/mailboxes/%d/copy", src.ID), `{"name": "orders2"}`)
	want(t, "copy", resp, http.StatusCreated)
	cp := mailboxView(t, resp)
	if cp.ID == src.ID || cp.Name != "orders2" || cp.Enabled || cp.PasswordSet ||
		cp.Host != src.Host || cp.Port != src.Port || cp.Login != src.Login || cp.MaxSizeMB != 12 || cp.AfterAction != "move" || cp.MoveFolder != "Done" {
		t.Errorf("copy %+v of %+v: want the same settings, another name, no password, disabled", cp, src)
	}
	for _, body := range []string{`{"name": "orders"}`, `{"name": "a b"}`, `{"name": 7}`, `{}`} {
		resp := c.postJSON(fmt.Sprintf("/api/v1/mailboxes/%d/copy", src.ID), body)
		if fields, _ := want(t, "copy "+body, resp, http.StatusBadRequest)["fields"].(map[string]any); fields["name"] == nil {
			t.Errorf("copy %s: %s, want fields.name", body, resp.body)
		}
	}

	// The default outbound mailbox cannot be deleted while another outbound one exists.
	out2 := mailboxView(t, c.postJSON("/api/v1/mailboxes", `{"name":"out2","direction":"outbound","host":"smtp.example.com","address":"sales@example.com","login":"sales","password":"`+secretPassword+`"}`))
	if out2.IsDefault || out2.Protocol != "smtp" || out2.Security != "starttls" || out2.Port != 587 {
		t.Errorf("second outbound mailbox: %+v", out2)
	}
	def := fmt.Sprintf("/api/v1/mailboxes/%d", f.outbound.ID)
	want(t, "disable default", c.postJSON(def+"/disable", ""), http.StatusOK)
	out := want(t, "delete default", c.del(def), http.StatusConflict)
	if msg, _ := out["error"].(string); !strings.Contains(msg, "default") {
		t.Errorf("409 error %q does not say it is the default", msg)
	}
	want(t, "delete the other", c.del(fmt.Sprintf("/api/v1/mailboxes/%d", out2.ID)), http.StatusNoContent)
}

func TestMailboxListAndRoles(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	sup := f.signedIn(t, "sam")
	agent := f.signedIn(t, "ana")
	extra := mailboxView(t, admin.postJSON("/api/v1/mailboxes", inboundBody(t, "returns", map[string]any{"host": "pop.shop.example", "protocol": "pop3", "folder": nil, "port": nil})))

	names := func(c *client, query string) []string {
		t.Helper()
		resp := c.get("/api/v1/mailboxes" + query)
		var out struct{ Items []MailboxView }
		if err := json.Unmarshal(resp.body, &out); err != nil || resp.status != 200 {
			t.Fatalf("list %s: %d %s", query, resp.status, resp.body)
		}
		var n []string
		for _, m := range out.Items {
			n = append(n, m.Name)
		}
		slices.Sort(n)
		return n
	}
	for _, tc := range []struct{ query, want string }{
		{"", "returns support support-out"},
		{"?direction=inbound", "returns support"},
		{"?direction=outbound", "support-out"},
		{"?q=SHOP.example", "returns"},
		{"?q=out&direction=outbound", "support-out"},
		{"?q=nothing-matches", ""},
	} {
		if got := strings.Join(names(sup, tc.query), " "); got != tc.want {
			t.Errorf("list%s = %q, want %q", tc.query, got, tc.want)
		}
	}
	if resp := sup.get("/api/v1/mailboxes?direction=sideways"); resp.status != 400 || !strings.Contains(string(resp.body), `"direction"`) {
		t.Errorf("bad direction: %d %s", resp.status, resp.body)
	}

	id := strconv.FormatInt(extra.ID, 10)
	requests := []struct{ method, path, body string }{
		{"GET", "/api/v1/mailboxes", ""},
		{"GET", "/api/v1/mailboxes/" + id, ""},
		{"GET", "/api/v1/queues", ""},
		{"GET", fmt.Sprintf("/api/v1/mailboxes/%d/from-addresses", f.outbound.ID), ""},
		{"POST", "/api/v1/mailboxes", inboundBody(t, "x1", nil)},
		{"PUT", "/api/v1/mailboxes/" + id, `{"max_size_mb": 6}`},
		{"DELETE", "/api/v1/mailboxes/" + id, ""},
		{"POST", "/api/v1/mailboxes/" + id + "/enable", ""},
		{"POST", "/api/v1/mailboxes/" + id + "/disable", ""},
		{"POST", "/api/v1/mailboxes/" + id + "/copy", `{"name": "x2"}`},
		{"POST", "/api/v1/mailboxes/" + id + "/test", ""},
		{"POST", "/api/v1/mailboxes/test", inboundBody(t, "x3", nil)},
		{"POST", "/api/v1/mailboxes/enable-all", ""},
		{"POST", "/api/v1/mailboxes/disable-all", ""},
		{"PUT", "/api/v1/mailboxes/" + id + "/queue", `{"queue_id": null}`},
		{"POST", "/api/v1/queues", `{"name": "Q"}`},
		{"POST", "/api/v1/queues/1/disable", ""},
		{"POST", fmt.Sprintf("/api/v1/mailboxes/%d/from-addresses", f.outbound.ID), `{"address": "a@example.com", "display_name": "A"}`},
		{"DELETE", "/api/v1/from-addresses/1", ""},
	}
	for _, rq := range requests {
		read := rq.method == "GET"
		if resp := agent.do(rq.method, rq.path, "application/json", rq.body); resp.status != http.StatusForbidden {
			t.Errorf("agent %s %s: %d, want 403", rq.method, rq.path, resp.status)
		}
		resp := sup.do(rq.method, rq.path, "application/json", rq.body)
		if read && resp.status != http.StatusOK {
			t.Errorf("supervisor %s %s: %d %s, want 200", rq.method, rq.path, resp.status, resp.body)
		}
		if !read && resp.status != http.StatusForbidden {
			t.Errorf("supervisor %s %s: %d, want 403", rq.method, rq.path, resp.status)
		}
	}
	if v := mailboxView(t, admin.get("/api/v1/mailboxes/"+id)); v.MaxSizeMB != 5 || v.Enabled {
		t.Errorf("refused requests changed the mailbox: %+v", v)
	}
}

func TestEnableDisableAll(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "second", nil)))
	states := func() map[string]bool {
		var out struct{ Items []MailboxView }
		if err := json.Unmarshal(c.get("/api/v1/mailboxes").body, &out); err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, v := range out.Items {
			m[v.Name] = v.Enabled
		}
		return m
	}
	resp := c.postJSON("/api/v1/mailboxes/disable-all", `{"direction": "inbound"}`)
	want(t, "disable inbound", resp, http.StatusOK)
	if s := states(); s["support"] || s["second"] || !s["support-out"] {
		t.Errorf("after disable-all inbound: %v", s)
	}
	want(t, "enable all", c.postJSON("/api/v1/mailboxes/enable-all", ""), http.StatusOK)
	if s := states(); !s["support"] || !s["second"] || !s["support-out"] {
		t.Errorf("after enable-all: %v", s)
	}
	want(t, "disable all", c.postJSON("/api/v1/mailboxes/disable-all", `{}`), http.StatusOK)
	if s := states(); s["support"] || s["second"] || s["support-out"] {
		t.Errorf("after disable-all: %v", s)
	}
	if resp := c.postJSON("/api/v1/mailboxes/enable-all", `{"direction": "up"}`); resp.status != 400 {
		t.Errorf("enable-all direction up: %d %s", resp.status, resp.body)
	}
}

func TestFromAddressesAndReplyFrom(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.signedIn(t, "admin")
	agent := f.signedIn(t, "ana")
	base := fmt.Sprintf("/api/v1/mailboxes/%d/from-addresses", f.outbound.ID)

	resp := admin.postJSON(base, `{"address": "billing@example.com", "display_name": "Example Billing"}`)
	want(t, "add From address", resp, http.StatusCreated)
	var fa fromAddressJSON
	if err := json.Unmarshal(resp.body, &fa); err != nil || fa.ID == 0 || fa.MailboxID != f.outbound.ID || fa.DisplayName != "Example Billing" {
		t.Fatalf("From address %s", resp.body)
	}
	for _, tc := range []struct{ path, body, field string }{
		{base, `{"address": "billing@example.com", "display_name": "Again"}`, "address"},
		{base, `{"address": "not an address", "display_name": "X"}`, "address"},
		{base, `{"address": "x@example.com", "display_name": ""}`, "display_name"},
		{base, `{"address": "x@example.com", "display_name": "X", "note": "hi"}`, "note"},
		{fmt.Sprintf("/api/v1/mailboxes/%d/from-addresses", f.inbound.ID), `{"address": "x@example.com", "display_name": "X"}`, "address"},
	} {
		resp := admin.postJSON(tc.path, tc.body)
		if fields, _ := want(t, "add "+tc.body, resp, http.StatusBadRequest)["fields"].(map[string]any); fields[tc.field] == nil {
			t.Errorf("add %s: %s, want fields.%s", tc.body, resp.body, tc.field)
		}
	}
	var list struct{ Items []fromAddressJSON }
	if err := json.Unmarshal(admin.get(base).body, &list); err != nil || len(list.Items) != 1 || list.Items[0].Address != "billing@example.com" {
		t.Errorf("From addresses: %+v (%v)", list, err)
	}
	want(t, "list of unknown mailbox", admin.get("/api/v1/mailboxes/99999/from-addresses"), http.StatusNotFound)

	// The agent sees the choices, the address the customer wrote to preselected.
	id := f.items["plain.eml"].WorkItemID
	var wi struct {
		FromChoices []fromChoiceJSON `json:"from_choices"`
	}
	if err := json.Unmarshal(agent.get(fmt.Sprintf("/api/v1/workitems/%d", id)).body, &wi); err != nil {
		t.Fatal(err)
	}
	choices := map[string]bool{}
	for _, ch := range wi.FromChoices {
		choices[ch.Address] = ch.Default
	}
	if len(choices) != 2 || !choices["support@example.com"] || choices["billing@example.com"] {
		t.Errorf("from_choices %+v: want support@example.com (default) and billing@example.com", wi.FromChoices)
	}
	reply := fmt.Sprintf("/api/v1/workitems/%d/reply", id)
	resp = agent.postJSON(reply, `{"text": "Hello", "from": "ceo@elsewhere.example"}`)
	if fields, _ := want(t, "reply from unknown", resp, http.StatusBadRequest)["fields"].(map[string]any); fields["from"] == nil {
		t.Errorf("reply from an unknown address: %s, want fields.from", resp.body)
	}
	want(t, "reply from billing", agent.postJSON(reply, `{"text": "Hello", "from": "billing@example.com"}`), http.StatusAccepted)
	msgs, err := f.st.ConversationMessages(ctx, f.items["plain.eml"].ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if last.Direction != store.Outbound || last.FromAddr != "billing@example.com" || last.FromName != "Example Billing" {
		t.Errorf("reply sent as %q <%s>, want Example Billing <billing@example.com>", last.FromName, last.FromAddr)
	}

	want(t, "delete From address", admin.del(fmt.Sprintf("/api/v1/from-addresses/%d", fa.ID)), http.StatusNoContent)
	want(t, "delete again", admin.del(fmt.Sprintf("/api/v1/from-addresses/%d", fa.ID)), http.StatusNotFound)
}

// TestConnectionTest runs the connection test against a real Dovecot.
func TestConnectionTest(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	const user = "help@example.test"
	d.AddUser(t, user, secretPassword)
	host, port, err := net.SplitHostPort(d.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	body := fmt.Sprintf(`{"name": "dove", "direction": "inbound", "host": %q, "port": %s, "security": "none", "login": %q, "password": %q}`, host, port, user, secretPassword)
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", body))
	path := fmt.Sprintf("/api/v1/mailboxes/%d/test", v.ID)

	report := func(resp response) testReportJSON {
		t.Helper()
		want(t, "test", resp, http.StatusOK)
		var r testReportJSON
		if err := json.Unmarshal(resp.body, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	check := func(what string, r testReportJSON, ok bool, adviceWords ...string) {
		t.Helper()
		if r.OK != ok || len(r.Steps) == 0 {
			t.Fatalf("%s: ok=%v, want %v: %+v", what, r.OK, ok, r.Steps)
		}
		for i, s := range r.Steps {
			last := i == len(r.Steps)-1
			if s.Name == "" || s.OK != (ok || !last) {
				t.Errorf("%s: step %d %+v", what, i, s)
			}
		}
		if ok {
			return
		}
		failed := r.Steps[len(r.Steps)-1]
		if failed.Advice == "" {
			t.Errorf("%s: failed step %+v gives no advice", what, failed)
		}
		for _, w := range adviceWords {
			if !strings.Contains(strings.ToLower(failed.Advice+" "+failed.Detail), w) {
				t.Errorf("%s: failed step %+v does not mention %q", what, failed, w)
			}
		}
	}
	check("stored settings", report(c.postJSON(path, "")), true)
	// Unsaved changes are tested without being saved.
	check("wrong password", report(c.postJSON(path, `{"password": "wrong-password"}`)), false, "password")
	check("missing folder", report(c.postJSON(path, `{"folder": "NoSuchFolder"}`)), false, "folder")
	if pw, _ := f.passwords.Get(context.Background(), v.ID); pw.Reveal() != secretPassword {
		t.Error("a test with a password saved it")
	}
	check("stored settings again", report(c.postJSON(path, "")), true)
	// A new mailbox's form, before Save.
	check("unsaved", report(c.postJSON("/api/v1/mailboxes/test", strings.Replace(body, `"dove"`, `"dove2"`, 1))), true)
	check("unsaved, wrong password", report(c.postJSON("/api/v1/mailboxes/test", strings.Replace(body, secretPassword, "nope", 1))), false, "password")
	if _, err := f.st.MailboxByName(context.Background(), "dove2"); !store.IsNotFound(err) {
		t.Errorf("testing unsaved settings saved a mailbox (err %v)", err)
	}
	if resp := c.postJSON(path, `{"max_size_mb": 99}`); resp.status != http.StatusBadRequest {
		t.Errorf("test with invalid settings: %d %s, want 400", resp.status, resp.body)
	}
	want(t, "test unknown", c.postJSON("/api/v1/mailboxes/99999/test", ""), http.StatusNotFound)
}

// TestPasswordNeverShown drives every mailbox endpoint with a password set and searches
// each response, the audit events and the database file for it.
func TestPasswordNeverShown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signedIn(t, "admin")
	sup := f.signedIn(t, "sam")
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "secretive", map[string]any{"host": "127.0.0.1", "port": testenv.FreePort(t), "security": "none"})))
	p := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)
	c.get("/api/v1/mailboxes")
	sup.get("/api/v1/mailboxes")
	sup.get(p)
	c.putJSON(p, `{"max_size_mb": 7, "password": "`+secretPassword+`"}`)
	c.putJSON(p, `{"max_size_mb": 70, "password": "`+secretPassword+`"}`) // refused: the error must not echo it
	c.postJSON(p+"/test", "")
	c.postJSON(p+"/test", `{"password": "`+secretPassword+`"}`)
	c.postJSON("/api/v1/mailboxes/test", inboundBody(t, "other", map[string]any{"host": "127.0.0.1", "port": testenv.FreePort(t), "security": "none"}))
	c.postJSON(p+"/copy", `{"name": "secretive2"}`)
	c.postJSON(p+"/enable", "")
	c.postJSON("/api/v1/mailboxes/enable-all", "")
	c.postJSON("/api/v1/mailboxes", inboundBody(t, "bad name", nil))
	c.del(p)

	if len(f.responses) < 14 {
		t.Fatalf("only %d responses recorded", len(f.responses))
	}
	for _, b := range f.responses {
		if bytes.Contains(b, []byte(secretPassword)) {
			t.Errorf("a response shows the password: %s", b)
		}
	}
	events, err := f.st.ListAudit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no audit events")
	}
	for _, e := range events {
		if strings.Contains(e.Old+e.New, secretPassword) {
			t.Errorf("audit event %s shows the password", e.Action)
		}
	}
	if err := f.st.Close(); err != nil { // flush the WAL into the file
		t.Fatal(err)
	}
	files, _ := filepath.Glob(f.dbPath + "*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secretPassword)) {
			t.Errorf("%s holds the password in plain text", filepath.Base(name))
		}
	}
}

// TestMailboxChangesNeedTheService: an id that is not a number is a 404 that names the
// kind of object; a server built without the mailbox service answers every change to the
// set-up with 503 and says so, and still serves the reads.
func TestMailboxChangesNeedTheService(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	for path, want := range map[string]string{
		"/api/v1/mailboxes/x/enable":           `mailbox \"x\" not found: ids are positive whole numbers`,
		"/api/v1/queues/0/disable":             `queue \"0\" not found`,
		"/api/v1/mailboxes/-3/test":            `mailbox \"-3\" not found`,
		"/api/v1/mailboxes/1.5/from-addresses": `mailbox \"1.5\" not found`,
	} {
		if resp := admin.postJSON(path, `{}`); resp.status != http.StatusNotFound || !strings.Contains(string(resp.body), want) {
			t.Errorf("POST %s: %d %s, want 404 with %s", path, resp.status, resp.body, want)
		}
	}
	if resp := admin.do("DELETE", "/api/v1/from-addresses/none", "application/json", ""); resp.status != http.StatusNotFound || !strings.Contains(string(resp.body), `From address \"none\" not found`) {
		t.Errorf("DELETE a From address by a bad id: %d %s", resp.status, resp.body)
	}

	bare := httptest.NewServer(New(Options{Store: f.st, Auth: f.auth}))
	t.Cleanup(bare.Close)
	admin.base = bare.URL
	if resp := admin.postJSON("/api/v1/session", fmt.Sprintf(`{"user": "admin", "password": %q}`, testPassword)); resp.status != http.StatusOK {
		t.Fatalf("sign in: %d %s", resp.status, resp.body)
	}
	for _, path := range []string{"/api/v1/mailboxes", fmt.Sprintf("/api/v1/mailboxes/%d/disable", f.inbound.ID), "/api/v1/queues", "/api/v1/mailboxes/disable-all"} {
		if resp := admin.postJSON(path, `{"name": "x"}`); resp.status != http.StatusServiceUnavailable || !strings.Contains(string(resp.body), "mailbox administration is not configured on this server") {
			t.Errorf("POST %s without the service: %d %s", path, resp.status, resp.body)
		}
	}
	if resp := admin.get("/api/v1/mailboxes"); resp.status != http.StatusOK {
		t.Errorf("GET mailboxes without the service: %d %s", resp.status, resp.body)
	}
}

// TestMailboxAutodiscoverHost: an EWS mailbox without a host takes an autodiscover host,
// which the view returns and an update changes or clears; typing a host beside it is
// refused with what to do.
func TestMailboxAutodiscoverHost(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	body := inboundBody(t, "exchange", map[string]any{"protocol": "ews", "host": nil, "port": nil, "folder": nil,
		"address": "help@example.com", "autodiscover_host": "Autodiscover.Example.com:8443"})
	resp := c.postJSON("/api/v1/mailboxes", body)
	want(t, "create", resp, http.StatusCreated)
	v := mailboxView(t, resp)
	if v.AutodiscoverHost != "autodiscover.example.com:8443" || v.Host != "" {
		t.Fatalf("created %+v: want the autodiscover host, no host", v)
	}
	path := "/api/v1/mailboxes/" + strconv.FormatInt(v.ID, 10)
	if got := mailboxView(t, c.get(path)); got.AutodiscoverHost != "autodiscover.example.com:8443" {
		t.Errorf("GET: autodiscover_host %q", got.AutodiscoverHost)
	}
	// A host beside it: 400 naming the field and the fix; nothing saved.
	resp = c.putJSON(path, `{"host":"mail.example.com"}`)
	out := want(t, "host beside the autodiscover host", resp, http.StatusBadRequest)
	fields, _ := out["fields"].(map[string]any)
	if msg, _ := fields["autodiscover_host"].(string); !strings.Contains(msg, "leave the host empty") {
		t.Errorf("fields.autodiscover_host = %q", msg)
	}
	// Another autodiscover host sends the password elsewhere: it must be typed again.
	resp = c.putJSON(path, `{"autodiscover_host":"mail.hoster.example"}`)
	out = want(t, "new autodiscover host without the password", resp, http.StatusBadRequest)
	fields, _ = out["fields"].(map[string]any)
	if msg, _ := fields["password"].(string); !strings.Contains(msg, "you changed the autodiscover host") {
		t.Errorf("fields.password = %q", msg)
	}
	resp = c.putJSON(path, `{"autodiscover_host":"mail.hoster.example","password":"typed-again"}`)
	want(t, "new autodiscover host", resp, http.StatusOK)
	if got := mailboxView(t, c.get(path)); got.AutodiscoverHost != "mail.hoster.example" {
		t.Errorf("after PUT: autodiscover_host %q", got.AutodiscoverHost)
	}
	// Cleared, with a host typed instead.
	resp = c.putJSON(path, `{"autodiscover_host":"","host":"mail.example.com","password":"typed-again"}`)
	want(t, "host instead", resp, http.StatusOK)
	if got := mailboxView(t, c.get(path)); got.AutodiscoverHost != "" || got.Host != "mail.example.com" {
		t.Errorf("after clearing: %+v", got)
	}
}
