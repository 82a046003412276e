package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// waitLimit bounds every wait for the loop to catch up; a deadline, not a goal.
const waitLimit = 90 * time.Second

// testEnv is a real Dovecot with one user, a real SQLite store and a metrics registry.
type testEnv struct {
	t         *testing.T
	d         *testenv.Dovecot
	st        store.Store
	passwords *credential.Passwords
	reg       *metrics.Registry
	roots     *x509.CertPool
	user      string
	password  string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	d := testenv.StartDovecot(t, nil)
	e := &testEnv{t: t, d: d, reg: metrics.New(), user: "support@example.test", password: "support-pw"}
	d.AddUser(t, e.user, e.password)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.st = st
	v, err := vault.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	e.passwords = credential.NewPasswords(st, v)
	e.roots = x509.NewCertPool()
	if !e.roots.AppendCertsFromPEM(d.CertPEM) {
		t.Fatal("dovecot certificate is not PEM")
	}
	return e
}

// mailbox configures an enabled IMAP mailbox over implicit TLS on folder.
func (e *testEnv) mailbox(name, folder, password string) store.Mailbox {
	e.t.Helper()
	host, p, _ := net.SplitHostPort(e.d.IMAPSAddr)
	port, _ := strconv.Atoi(p)
	m, err := e.st.CreateMailbox(context.Background(), store.Mailbox{
		Name: name, Direction: store.Inbound, Protocol: "imap", Address: e.user,
		Host: host, Port: port, Security: "tls", Login: e.user, Folder: folder,
		AfterAction: store.AfterMarkRead, MaxSizeMB: 50, PollInterval: 2 * time.Second, Enabled: true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.passwords.Set(context.Background(), m.ID, vault.NewSecret(password)); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// run starts a Runner (opts fills in what the environment provides) until the test ends.
func (e *testEnv) run(opts Options) {
	e.t.Helper()
	opts.Store = e.st
	opts.Passwords = e.passwords
	opts.RootCAs = e.roots
	opts.Metrics = e.reg
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = 100 * time.Millisecond
	}
	opts.Logger = slog.New(slog.NewTextHandler(testLog{e.t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = NewRunner(opts).Run(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}

// testLog writes log lines to the test log; silent once the test is over.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a line logged after the test ended
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// seen counts the \Seen messages of folder and all of them.
func (e *testEnv) seen(folder string) (seen, total int) {
	for _, m := range e.d.Messages(e.t, e.user, folder) {
		total++
		for _, f := range m.Flags {
			if f == `\Seen` {
				seen++
			}
		}
	}
	return seen, total
}

// waitAllSeen waits until folder holds n messages, all \Seen (acknowledged after commit).
func (e *testEnv) waitAllSeen(folder string, n int) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d messages \\Seen in %s", n, folder), func() (bool, string) {
		s, total := e.seen(folder)
		return s == n && total == n, fmt.Sprintf("%d of %d seen", s, total)
	})
}

func (e *testEnv) workItems() []store.WorkItem {
	e.t.Helper()
	list, err := e.st.ListWorkItems(context.Background(), store.WorkItemFilter{Limit: 10000})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// messages returns the stored messages of every work item's conversation, by subject.
func (e *testEnv) messagesBySubject() map[string][]store.Message {
	e.t.Helper()
	out := map[string][]store.Message{}
	for _, w := range e.workItems() {
		msgs, err := e.st.ConversationMessages(context.Background(), w.ConversationID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range msgs {
			out[m.Subject] = append(out[m.Subject], m)
		}
	}
	return out
}

func (e *testEnv) count(mailboxID int64) int {
	e.t.Helper()
	n, err := e.st.CountMessages(context.Background(), mailboxID)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *testEnv) metricsText() string {
	var b strings.Builder
	if err := e.reg.WriteText(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

// orderMail is a customer message with a Message-ID.
func orderMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <customer%d@example.org>\r\n"+
		"To: support@example.test\r\n"+
		"Subject: Order %d has not arrived\r\n"+
		"Message-ID: <order-%d@example.org>\r\n"+
		"Date: Mon, 23 Nov 2026 10:%02d:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Hello, my order %d has not arrived yet. Can you help?\r\n", i, i, i, i, i%60, i)
}

// imapLogin opens an IMAP session as the test user, for changes a mail client or a server
// admin would make.
func (e *testEnv) imapLogin() *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialTLS(e.d.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.roots}})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Login(e.user, e.password).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestUIDValidityChange: the watched folder is deleted and created again at the server
// (new UIDVALIDITY) while the loop runs, and the same five messages plus one new one are
// put back. The loop reads them again (Dovecot keeps the running session on the old folder,
// so the next session does): the five are recognised by the second dedup key (Message-ID
// and content) and acknowledged, the new one is stored, and the admin finds the change in
// the audit log.
func TestUIDValidityChange(t *testing.T) {
	e := newTestEnv(t)
	const folder = "Support"
	raws := make([][]byte, 5)
	for i := range raws {
		raws[i] = orderMail(i)
	}
	e.d.AppendMany(t, e.user, folder, raws)
	m := e.mailbox("support", folder, e.password)
	e.run(Options{MaxSession: 2 * time.Second})
	e.waitAllSeen(folder, 5)
	if n := e.count(m.ID); n != 5 {
		t.Fatalf("%d messages stored, want 5", n)
	}
	before, err := e.st.Cursor(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}

	c := e.imapLogin()
	if err := c.Delete(folder).Wait(); err != nil {
		t.Fatalf("delete folder: %v", err)
	}
	if err := c.Create(folder, nil).Wait(); err != nil {
		t.Fatalf("create folder: %v", err)
	}
	c.Logout().Wait()
	e.d.AppendMany(t, e.user, folder, append(raws, orderMail(5)))

	e.waitAllSeen(folder, 6)
	waitFor(t, "the new message", func() (bool, string) {
		n := e.count(m.ID)
		return n == 6, fmt.Sprintf("%d stored", n)
	})
	after, err := e.st.Cursor(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	oldV, _ := uidValidityOf(before.Value)
	newV, _ := uidValidityOf(after.Value)
	if oldV == newV {
		t.Fatalf("UIDVALIDITY did not change (%s, then %s): the test did not recreate the folder", before.Value, after.Value)
	}
	if n := e.count(m.ID); n != 6 {
		t.Errorf("%d messages stored, want 6 (5 recognised, 1 new)", n)
	}
	items := e.workItems()
	if len(items) != 6 {
		t.Errorf("%d work items, want 6", len(items))
	}
	for subject, msgs := range e.messagesBySubject() {
		if len(msgs) != 1 {
			t.Errorf("%q stored %d times, want once", subject, len(msgs))
		}
	}
	if p, err := e.st.PendingAcks(context.Background(), m.ID); err != nil || len(p) != 0 {
		t.Errorf("PendingAcks = %v, %v; want none", p, err)
	}
	events, err := e.st.ListAuditFor(context.Background(), fmt.Sprintf("mailbox:%d", m.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	var found []store.AuditEvent
	for _, ev := range events {
		if ev.Action == "mailbox.uidvalidity_changed" {
			found = append(found, ev)
		}
	}
	if len(found) != 1 || found[0].Actor != "system" ||
		!strings.Contains(found[0].Old, fmt.Sprintf("uidvalidity=%d", oldV)) ||
		!strings.Contains(found[0].New, fmt.Sprintf("uidvalidity=%d", newV)) {
		t.Errorf("audit events = %+v, want one mailbox.uidvalidity_changed by system from %d to %d", events, oldV, newV)
	}
	// At least 5: a source read again before its acknowledgement (a dropped session) counts too.
	if text := e.metricsText(); metricValue(text, `postroom_ingest_duplicates_total{mailbox="support"}`) < 5 {
		t.Errorf("metrics do not count the 5 duplicates:\n%s", text)
	}
}

// TestPoisonMessageQuarantined: one message fails to be stored every time. The mailbox
// does not stall on it: after three tries it is kept raw as an unparsed work item,
// acknowledged, never fetched again, and the messages after it are ingested.
func TestPoisonMessageQuarantined(t *testing.T) {
	e := newTestEnv(t)
	raws := [][]byte{orderMail(0), orderMail(1),
		[]byte("From: Poison <poison@example.org>\r\nSubject: Poison\r\n pill\r\nMessage-ID: <poison@example.org>\r\n\r\nI break things.\r\n"),
		orderMail(3), orderMail(4)}
	e.d.AppendMany(t, e.user, "INBOX", raws)
	m := e.mailbox("support", "INBOX", e.password)
	var mu sync.Mutex
	poisonTries := 0
	e.run(Options{beforeStore: func(in connector.Incoming) error {
		if bytes.Contains(in.Raw, []byte("I break things.")) {
			mu.Lock()
			poisonTries++
			mu.Unlock()
			return errors.New("injected: the database refuses this message")
		}
		return nil
	}})
	e.waitAllSeen("INBOX", 5)
	tries := func() int { mu.Lock(); defer mu.Unlock(); return poisonTries }
	if n := tries(); n != maxTries {
		t.Errorf("the poison message was tried %d times, want %d", n, maxTries)
	}
	if n := e.count(m.ID); n != 5 {
		t.Fatalf("%d messages stored, want 5 (4 normal, 1 quarantined)", n)
	}
	bySubject := e.messagesBySubject()
	poison := bySubject["Poison pill"]
	if len(poison) != 1 {
		t.Fatalf("quarantined message stored %d times under its subject (subjects: %v)", len(poison), keys(bySubject))
	}
	q := poison[0]
	if !q.Unparsed || q.ParseError != "could not be stored after 3 tries: store message "+q.SourceID+": injected: the database refuses this message" ||
		q.FromName != "Poison" || q.FromAddr != "poison@example.org" || len(q.Attachments) != 0 {
		t.Errorf("quarantined message = unparsed %v, error %q, from %q <%s>; want unparsed with the reason", q.Unparsed, q.ParseError, q.FromName, q.FromAddr)
	}
	raw, err := e.st.RawMessage(context.Background(), q.ID)
	if err != nil || !bytes.Equal(raw, raws[2]) {
		t.Errorf("quarantined raw = %q, %v; want the original byte for byte", raw, err)
	}
	for _, w := range e.workItems() {
		if w.MessageID == q.ID && !w.Unparsed {
			t.Error("the quarantined message's work item is not flagged unparsed")
		}
	}
	for _, i := range []int{0, 1, 3, 4} {
		subject := fmt.Sprintf("Order %d has not arrived", i)
		if msgs := bySubject[subject]; len(msgs) != 1 || msgs[0].Unparsed {
			t.Errorf("%q: %d stored, want 1 normal", subject, len(msgs))
		}
	}

	// The loop is live and does not come back to the poison message.
	e.d.Append(t, e.user, "INBOX", orderMail(5))
	e.waitAllSeen("INBOX", 6)
	waitFor(t, "the message after the quarantine", func() (bool, string) {
		n := e.count(m.ID)
		return n == 6, fmt.Sprintf("%d stored", n)
	})
	if n := tries(); n != maxTries {
		t.Errorf("the poison message was tried %d times in all, want %d: it was fetched again after the quarantine", n, maxTries)
	}
	text := e.metricsText()
	for _, want := range []string{
		`postroom_messages_quarantined_total{mailbox="support"} 1`,
		`postroom_messages_ingested_total{mailbox="support"} 5`,
		`postroom_mailbox_errors_total{kind="store",mailbox="support"} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
}

// metricValue returns the value of series in the exposition text, -1 when it is missing.
func metricValue(text, series string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMissingMessageIDs: messages without a Message-ID, or with an empty one, never stall
// the mailbox and are each stored once, even when their content is the same.
func TestMissingMessageIDs(t *testing.T) {
	e := newTestEnv(t)
	noID := func(subject, body string) []byte {
		return []byte("From: a@example.org\r\nTo: support@example.test\r\nSubject: " + subject + "\r\n\r\n" + body + "\r\n")
	}
	raws := [][]byte{
		noID("No id one", "first"),
		noID("No id twin", "same"),
		noID("No id twin", "same"),
		[]byte("From: a@example.org\r\nSubject: Empty id\r\nMessage-ID: <>\r\n\r\nempty id\r\n"),
	}
	e.d.AppendMany(t, e.user, "INBOX", raws)
	m := e.mailbox("support", "INBOX", e.password)
	e.run(Options{})
	e.waitAllSeen("INBOX", 4)
	e.d.Append(t, e.user, "INBOX", orderMail(1))
	e.waitAllSeen("INBOX", 5)
	waitFor(t, "five messages stored", func() (bool, string) {
		n := e.count(m.ID)
		return n == 5, fmt.Sprintf("%d stored", n)
	})
	bySubject := e.messagesBySubject()
	for subject, want := range map[string]int{"No id one": 1, "No id twin": 2, "Empty id": 1, "Order 1 has not arrived": 1} {
		if got := len(bySubject[subject]); got != want {
			t.Errorf("%q stored %d times, want %d", subject, got, want)
		}
	}
	if n := len(e.workItems()); n != 5 {
		t.Errorf("%d work items, want 5", n)
	}
}

// TestMalformedCorpus: broken and extreme messages through the real loop: each is stored
// (raw byte for byte), flagged unparsed where it could not be parsed, and the mailbox
// keeps going: a normal message after them is ingested.
func TestMalformedCorpus(t *testing.T) {
	e := newTestEnv(t)
	var many strings.Builder
	many.WriteString("From: a@example.org\r\nSubject: A thousand attachments\r\nMessage-ID: <many@example.org>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n")
	for i := range 1000 {
		fmt.Fprintf(&many, "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f%d.bin\"\r\n\r\nfile %d\r\n", i, i)
	}
	many.WriteString("--b--\r\n")
	longLine := "From: a@example.org\r\nSubject: One long line\r\nMessage-ID: <long@example.org>\r\n\r\n" +
		strings.Repeat("x", 20<<20) + "\r\n"
	corpus := []struct {
		subject  string
		raw      string
		unparsed bool // what a supervisor must see; nil-able cases are checked loosely
		loose    bool // the parser may or may not flag it: only consistency is checked
	}{
		{"Bad boundary", "From: a@example.org\r\nSubject: Bad boundary\r\nMessage-ID: <bb@example.org>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"never-used\"\r\n\r\n--other\r\nContent-Type: text/plain\r\n\r\ntext\r\n--other--\r\n", true, false},
		{"No boundary", "From: a@example.org\r\nSubject: No boundary\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nhello\r\n", true, false},
		{"Wrong charset", "From: a@example.org\r\nSubject: Wrong charset\r\nMessage-ID: <wc@example.org>\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\nCaf\xe9 cr\xe8me\r\n", false, false},
		{"Unknown charset", "From: a@example.org\r\nSubject: Unknown charset\r\nMessage-ID: <uc@example.org>\r\n" +
			"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello\r\n", false, false},
		{"8-bit header", "From: J\xfcrgen <j@example.org>\r\nSubject: 8-bit header \xe2\x82\xac \xe9\r\nMessage-ID: <8bit@example.org>\r\n\r\nbody\r\n", false, true},
		{"No date no id", "From: a@example.org\r\nSubject: No date no id\r\n\r\nbody\r\n", false, false},
		{"A thousand attachments", many.String(), false, true},
		{"One long line", longLine, false, false},
	}
	raws := make([][]byte, 0, len(corpus)+1)
	for _, c := range corpus {
		raws = append(raws, []byte(c.raw))
	}
	raws = append(raws, orderMail(1))
	e.d.AppendMany(t, e.user, "INBOX", raws)
	m := e.mailbox("support", "INBOX", e.password)
	e.run(Options{})
	e.waitAllSeen("INBOX", len(raws))
	waitFor(t, "every message stored", func() (bool, string) {
		n := e.count(m.ID)
		return n == len(raws), fmt.Sprintf("%d stored", n)
	})

	items := e.workItems()
	if len(items) != len(raws) {
		t.Errorf("%d work items, want %d", len(items), len(raws))
	}
	unparsedItem := map[int64]bool{}
	for _, w := range items {
		unparsedItem[w.MessageID] = w.Unparsed
	}
	stored := map[string]store.Message{}
	for _, msgs := range e.messagesBySubject() {
		for _, msg := range msgs {
			raw, err := e.st.RawMessage(context.Background(), msg.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range raws {
				if bytes.Equal(raw, r) {
					stored[strconv.Itoa(i)] = msg
				}
			}
		}
	}
	for i, c := range corpus {
		msg, ok := stored[strconv.Itoa(i)]
		if !ok {
			t.Errorf("%s: no stored message has its raw source byte for byte", c.subject)
			continue
		}
		if msg.Unparsed != (msg.ParseError != "") {
			t.Errorf("%s: unparsed %v but parse error %q", c.subject, msg.Unparsed, msg.ParseError)
		}
		if unparsedItem[msg.ID] != msg.Unparsed {
			t.Errorf("%s: work item unparsed %v, message unparsed %v", c.subject, unparsedItem[msg.ID], msg.Unparsed)
		}
		if !c.loose && msg.Unparsed != c.unparsed {
			t.Errorf("%s: unparsed %v (%s), want %v", c.subject, msg.Unparsed, msg.ParseError, c.unparsed)
		}
		t.Logf("%s: unparsed %v %q, %d attachments, text %d bytes", c.subject, msg.Unparsed, msg.ParseError, len(msg.Attachments), len(msg.TextBody))
	}
	if msg := stored["6"]; !msg.Unparsed && len(msg.Attachments) != 1000 {
		t.Errorf("a thousand attachments: %d stored and not flagged unparsed", len(msg.Attachments))
	}
	if msg := stored["7"]; len(msg.TextBody) > 2<<20 || !strings.HasPrefix(msg.TextBody, "xxxx") ||
		!strings.Contains(msg.TextBody, "the whole text is attached as full-text.txt") ||
		len(msg.Attachments) != 1 || msg.Attachments[0].Size != 20<<20+2 {
		t.Errorf("one long line: text of %d bytes, attachments %+v; want its first MB shown and the whole line attached", len(msg.TextBody), msg.Attachments)
	} else if a, err := e.st.Attachment(context.Background(), msg.Attachments[0].ID); err != nil || string(a.Data) != longLine[strings.Index(longLine, "\r\n\r\n")+4:] {
		t.Errorf("one long line: the attached text (%d bytes, %v) is not the line as sent", len(a.Data), err)
	}
	if msg, ok := stored[strconv.Itoa(len(corpus))]; !ok || msg.Subject != "Order 1 has not arrived" || msg.Unparsed {
		t.Errorf("the normal message after the corpus = %+v, want it stored and parsed", msg.Subject)
	}
}

// TestFailingMailboxMetrics: a mailbox with a wrong password shows as down, with its
// failures counted, within one poll interval (set far longer than the test's wait); the
// other mailbox stays up.
func TestFailingMailboxMetrics(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"x", "good"} {
		password := e.password
		if name == "x" {
			password = "wrong-password"
		}
		m := e.mailbox(name, "INBOX", password)
		m.PollInterval = 2 * waitLimit
		if err := e.st.UpdateMailbox(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	e.run(Options{})
	waitFor(t, "x down and good up in the metrics", func() (bool, string) {
		text := e.metricsText()
		return metricValue(text, `postroom_mailbox_up{mailbox="x"}`) == 0 &&
			metricValue(text, `postroom_mailbox_errors_total{kind="auth",mailbox="x"}`) > 0 &&
			metricValue(text, `postroom_mailbox_up{mailbox="good"}`) == 1, text
	})
}

// TestPanicWhileStoring: a message that panics the pipeline (a parser bug) does not take
// the process down: it counts as a failure and ends quarantined like any poison message.
func TestPanicWhileStoring(t *testing.T) {
	e := newTestEnv(t)
	e.d.AppendMany(t, e.user, "INBOX", [][]byte{
		[]byte("From: x@example.org\r\nSubject: Crasher\r\n\r\nboom\r\n"), orderMail(1)})
	m := e.mailbox("support", "INBOX", e.password)
	e.run(Options{beforeStore: func(in connector.Incoming) error {
		if bytes.Contains(in.Raw, []byte("Crasher")) {
			var parts []int
			_ = parts[len(in.Raw)] // index out of range: a runtime panic
		}
		return nil
	}})
	e.waitAllSeen("INBOX", 2)
	waitFor(t, "both messages stored", func() (bool, string) {
		n := e.count(m.ID)
		return n == 2, fmt.Sprintf("%d stored", n)
	})
	msgs := e.messagesBySubject()["Crasher"]
	if len(msgs) != 1 || !msgs[0].Unparsed || !strings.Contains(msgs[0].ParseError, "could not be stored after 3 tries") ||
		!strings.Contains(msgs[0].ParseError, "panic") {
		t.Errorf("crasher = %+v, want one quarantined message naming the panic", msgs)
	}
}
