package privacy_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// fixture is a queue with a mailbox and one finished conversation from kim@example.org.
type fixture struct {
	st    store.Store
	queue store.Queue
	mb    store.Mailbox
	res   store.IngestResult
}

func newFixture(t *testing.T, days int, mode string) fixture {
	t.Helper()
	ctx := t.Context()
	f := fixture{st: openStore(t)}
	var err error
	if f.queue, err = f.st.EnsureDefaultQueue(ctx); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(routing.QueueSettings{RetentionDays: days, RetentionMode: mode})
	if err := f.st.SetQueueSpec(ctx, f.queue.ID, f.queue.Name, spec); err != nil {
		t.Fatal(err)
	}
	f.mb, err = f.st.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.com",
		Host: "mail.example.com", Port: 993, Security: "tls", Login: "support", Folder: "INBOX", MaxSizeMB: 25, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.AssignMailbox(ctx, f.mb.ID, f.queue.ID); err != nil {
		t.Fatal(err)
	}
	f.res = f.ingest(t, "imap:1:1", "q1@example.org", "Kim@Example.org", "Where is my order?")
	if _, err := f.st.ApplyChanges(ctx, []store.Change{{WorkItemID: f.res.WorkItemID, From: []string{store.StateQueued}, To: store.StateDone,
		Event: store.Event{Kind: "close"}}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) ingest(t *testing.T, source, id, from, subject string) store.IngestResult {
	t.Helper()
	raw := fmt.Sprintf("Message-ID: <%s>\r\nFrom: %s\r\nSubject: %s\r\n\r\nHello.\r\n", id, from, subject)
	res, err := f.st.IngestMessage(t.Context(), store.InboundMessage{MailboxID: f.mb.ID, Raw: []byte(raw),
		Message: store.Message{SourceID: source, MessageID: id, Subject: subject, FromName: "Kim", FromAddr: from, TextBody: "Hello."}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f fixture) run(t *testing.T, after time.Duration) []privacy.QueueResult {
	t.Helper()
	r := &privacy.Retention{Store: f.st, Now: func() time.Time { return time.Now().Add(after) }}
	res, err := r.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

// TestRetentionDelete: nothing happens before the queue's days are up; then the done
// conversation is deleted, an open one stays, and the run is audited as "system".
func TestRetentionDelete(t *testing.T) {
	f := newFixture(t, 30, store.RetentionDelete)
	open := f.ingest(t, "imap:1:2", "q2@example.org", "ana@example.org", "Still open")
	if res := f.run(t, 29*24*time.Hour); len(res) != 0 {
		t.Errorf("after 29 days: %+v, want nothing removed", res)
	}
	res := f.run(t, 31*24*time.Hour)
	if len(res) != 1 || res[0].Counts.Conversations != 1 || res[0].Counts.Messages != 1 || res[0].Mode != store.RetentionDelete {
		t.Fatalf("after 31 days: %+v, want one conversation with one message deleted", res)
	}
	if _, err := f.st.WorkItem(t.Context(), f.res.WorkItemID); !store.IsNotFound(err) {
		t.Errorf("the done work item after retention: %v, want not found", err)
	}
	if _, err := f.st.WorkItem(t.Context(), open.WorkItemID); err != nil {
		t.Errorf("the open work item after retention: %v", err)
	}
	ev, err := f.st.SearchAudit(t.Context(), store.AuditFilter{Action: "retention.delete"})
	if err != nil || len(ev) != 1 {
		t.Fatalf("audit: %+v, %v", ev, err)
	}
	if ev[0].Actor != "system" || ev[0].Object != fmt.Sprintf("queue:%d", f.queue.ID) ||
		!strings.Contains(ev[0].New, `"conversations":1`) || !strings.Contains(ev[0].New, `"days":30`) {
		t.Errorf("audit event %+v", ev[0])
	}
	// A second run finds nothing and audits nothing.
	if res := f.run(t, 31*24*time.Hour); len(res) != 0 {
		t.Errorf("second run: %+v", res)
	}
	if n, _ := f.st.CountAudit(t.Context(), store.AuditFilter{Action: "retention.delete"}); n != 1 {
		t.Errorf("retention audit events after a second run: %d, want 1", n)
	}
}

// TestRetentionAnonymise: the work item stays with its state and queue; its subject and
// sender are gone.
func TestRetentionAnonymise(t *testing.T) {
	f := newFixture(t, 1, store.RetentionAnonymise)
	res := f.run(t, 25*time.Hour)
	if len(res) != 1 || res[0].Counts.Conversations != 1 {
		t.Fatalf("RunOnce: %+v", res)
	}
	wi, err := f.st.WorkItem(t.Context(), f.res.WorkItemID)
	if err != nil {
		t.Fatal(err)
	}
	if wi.State != store.StateDone || wi.QueueID != f.queue.ID || wi.Subject != store.Anonymised || wi.FromAddr != store.Anonymised {
		t.Errorf("anonymised work item: %s in queue %d, subject %q from %q", wi.State, wi.QueueID, wi.Subject, wi.FromAddr)
	}
	if res := f.run(t, 25*time.Hour); len(res) != 0 {
		t.Errorf("second run anonymised again: %+v", res)
	}
}

// TestRetentionOff: a queue without retention keeps everything.
func TestRetentionOff(t *testing.T) {
	f := newFixture(t, 0, "")
	if res := f.run(t, 10*365*24*time.Hour); len(res) != 0 {
		t.Errorf("RunOnce without retention: %+v", res)
	}
}

// TestErase: an erasure removes the customer's conversations, and its audit event holds
// the address's hash and the counts, never the address.
func TestErase(t *testing.T) {
	f := newFixture(t, 0, "")
	for _, bad := range []string{"", "kim", "Kim <kim@example.org>", "a@b, c@d", strings.Repeat("a", 400) + "@x.org"} {
		if _, err := privacy.ErasurePreview(t.Context(), f.st, bad); !errors.Is(err, privacy.ErrBadAddress) {
			t.Errorf("ErasurePreview(%.20q): %v, want ErrBadAddress", bad, err)
		}
	}
	p, err := privacy.ErasurePreview(t.Context(), f.st, " KIM@example.org")
	if err != nil || p.Conversations != 1 || p.Messages != 1 {
		t.Fatalf("ErasurePreview = %+v, %v", p, err)
	}
	c, err := privacy.Erase(t.Context(), f.st, "ana", "kim@example.org")
	if err != nil || c != p {
		t.Fatalf("Erase = %+v, %v; want %+v", c, err, p)
	}
	ev, err := f.st.SearchAudit(t.Context(), store.AuditFilter{Action: "erasure"})
	if err != nil || len(ev) != 1 {
		t.Fatalf("audit: %+v, %v", ev, err)
	}
	e := ev[0]
	if e.Actor != "ana" || e.Object != "address-sha256:"+privacy.AddressHash("kim@example.org") || !strings.Contains(e.New, `"conversations":1`) {
		t.Errorf("erasure audit %+v", e)
	}
	if all := strings.ToLower(e.Object + e.Old + e.New); strings.Contains(all, "kim") {
		t.Errorf("the audit event keeps the address: %+v", e)
	}
}

// TestAuditCSV: a header row, RFC 4180 quoting, CRLF line ends, and no cell that a
// spreadsheet would read as a formula.
func TestAuditCSV(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for _, e := range []store.AuditEvent{
		{Actor: "=cmd|' /C calc'!A0", Action: "login.failure", Object: "user:x", New: "a, \"quoted\"\nline"},
		{Actor: "+1", Action: "-x", Object: "@y", Old: "\tz"},
	} {
		if err := st.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := privacy.WriteAuditCSV(ctx, st, store.AuditFilter{}, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "id,at,actor,action,object,old,new\r\n") {
		t.Errorf("CSV starts %q", b.String()[:min(60, b.Len())])
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows: %q", rows)
	}
	for _, r := range rows[1:] {
		for _, c := range r[2:] {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q could be read as a formula", c)
			}
		}
	}
	if rows[1][2] != "'+1" || rows[1][3] != "'-x" || rows[1][4] != "'@y" || rows[2][2] != "'=cmd|' /C calc'!A0" || rows[2][6] != "a, \"quoted\"\nline" {
		t.Errorf("rows: %q", rows)
	}
}

// TestParseAuditQuery: dates, limits and bad values with advice.
func TestParseAuditQuery(t *testing.T) {
	q, errs := privacy.ParseAuditQuery(map[string][]string{"q": {" login.failure "}, "from": {"2026-05-01"}, "to": {"2026-05-01"}, "limit": {"20"}})
	if len(errs) != 0 || q.Filter.Query != "login.failure" || q.Filter.Limit != 20 ||
		!q.Filter.From.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) || !q.Filter.To.Equal(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseAuditQuery = %+v, %v", q.Filter, errs)
	}
	_, errs = privacy.ParseAuditQuery(map[string][]string{"from": {"yesterday"}, "limit": {"0"}, "offset": {"-1"}, "q": {strings.Repeat("x", 50000)}})
	for _, k := range []string{"from", "limit", "offset", "q"} {
		if errs[k] == "" {
			t.Errorf("no advice for bad %s: %v", k, errs)
		}
	}
}
