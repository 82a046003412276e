package app_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// testKey is the vault key of every test app (base64 of 32 bytes).
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// waitLimit bounds every wait for the product to catch up; it is a deadline, not a goal.
const waitLimit = 60 * time.Second

type harness struct {
	t      *testing.T
	app    *app.App
	cancel context.CancelFunc
	wait   func()
	url    string
	dir    string // the data directory
}

// startApp opens an App on the given store kind ("sqlite" or "postgres") and starts its
// background loops and its HTTP server on a free loopback port.
func startApp(t *testing.T, kind string, roots *x509.CertPool, afterCommit func(int64, string) error) *harness {
	t.Helper()
	dir := t.TempDir()
	return startAppIn(t, dir, kind, "", roots, afterCommit)
}

func startAppIn(t *testing.T, dir, kind, pgURL string, roots *x509.CertPool, afterCommit func(int64, string) error) *harness {
	t.Helper()
	return startAppLogs(t, dir, kind, pgURL, roots, afterCommit, nil)
}

// startAppLogged starts an App on SQLite in dir whose log also goes to logs.
func startAppLogged(t *testing.T, dir string, roots *x509.CertPool, logs io.Writer) *harness {
	t.Helper()
	return startAppLogs(t, dir, "sqlite", "", roots, nil, logs)
}

func startAppLogs(t *testing.T, dir, kind, pgURL string, roots *x509.CertPool, afterCommit func(int64, string) error, logs io.Writer) *harness {
	t.Helper()
	return startAppEdit(t, dir, kind, pgURL, roots, afterCommit, logs, nil)
}

// startAppEdit is startAppLogs whose Config edit may change first (test-only seams such as
// Config.HTTPClient).
func startAppEdit(t *testing.T, dir, kind, pgURL string, roots *x509.CertPool, afterCommit func(int64, string) error, logs io.Writer, edit func(*app.Config)) *harness {
	t.Helper()
	if kind == "postgres" && pgURL == "" {
		pgURL = testenv.Postgres(t)
	}
	var logTo io.Writer = testWriter{t}
	if logs != nil {
		logTo = io.MultiWriter(logTo, logs)
	}
	// Listen first: the app's public URL (where Microsoft Graph's notifications go) is its
	// own address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := app.Config{
		PublicURL:    "http://" + ln.Addr().String(),
		DataDir:      dir,
		DatabaseURL:  pgURL,
		Getenv:       func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:       slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RootCAs:      roots,
		IngestReload: 200 * time.Millisecond,
		AfterCommit:  afterCommit,
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("open app: %v", err)
	}
	wait := a.Start(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx, ln)
	}()
	h := &harness{t: t, app: a, cancel: cancel, url: "http://" + ln.Addr().String(), dir: dir}
	h.wait = func() { wait(); <-served }
	t.Cleanup(h.stop)
	return h
}

// crash stops the app as the process's death would (App.Abandon): nothing in flight
// finishes, nothing is handed back.
func (h *harness) crash() {
	if h.cancel != nil {
		h.app.Abandon()
	}
	h.stop()
}

// stop stops the loops and closes the store; safe to call twice.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.wait()
	h.app.Close()
	h.cancel = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func certPool(t *testing.T, pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("dovecot certificate is not PEM")
	}
	return p
}

func hostPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// addInbound configures an enabled IMAP mailbox over implicit TLS against Dovecot.
func (h *harness) addInbound(d *testenv.Dovecot, user, password string) store.Mailbox {
	h.t.Helper()
	host, port := hostPort(h.t, d.IMAPSAddr)
	m, err := h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "support", Direction: store.Inbound, Protocol: "imap", Address: user,
			Host: host, Port: port, Security: "tls", Login: user, Folder: "INBOX",
			MaxSizeMB: 5, Enabled: true,
		},
		Password: vault.NewSecret(password),
	})
	if err != nil {
		h.t.Fatalf("add inbound mailbox: %v", err)
	}
	return m
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

func customerMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <customer%d@example.org>\r\n"+
		"To: support@example.test\r\n"+
		"Subject: Order %d has not arrived\r\n"+
		"Message-ID: <order-%d@example.org>\r\n"+
		"Date: Mon, 23 Nov 2026 10:%02d:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Hello, my order %d has not arrived yet. Can you help?\r\n", i, i, i, i, i%60, i)
}

func allWorkItems(t *testing.T, st store.Store) []store.WorkItem {
	t.Helper()
	var out []store.WorkItem
	for off := 0; ; off += 100 {
		page, err := st.ListWorkItems(context.Background(), store.WorkItemFilter{Limit: 100, Offset: off})
		if err != nil {
			t.Fatalf("list work items: %v", err)
		}
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
	}
}

// checkExactlyOnce asserts that each of the n customer mails is one work item and one
// stored message.
func checkExactlyOnce(t *testing.T, st store.Store, mailboxID int64, n int) {
	t.Helper()
	items := allWorkItems(t, st)
	if len(items) != n {
		t.Fatalf("got %d work items, want %d", len(items), n)
	}
	seen := map[string]int{}
	for _, wi := range items {
		seen[wi.Subject]++
	}
	for i := range n {
		subj := fmt.Sprintf("Order %d has not arrived", i)
		if seen[subj] != 1 {
			t.Errorf("work items with subject %q: %d, want 1", subj, seen[subj])
		}
	}
	count, err := st.CountMessages(context.Background(), mailboxID)
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("stored messages: %d, want %d", count, n)
	}
}

func seenCount(t *testing.T, d *testenv.Dovecot, user string) (seen, total int) {
	for _, m := range d.Messages(t, user, "INBOX") {
		total++
		for _, f := range m.Flags {
			if f == `\Seen` {
				seen++
			}
		}
	}
	return seen, total
}

// TestIngestFromDovecot: 200 messages in a real Dovecot INBOX become exactly 200 work
// items, all are \Seen at the server afterwards, and another pass adds nothing. On both
// stores.
func TestIngestFromDovecot(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			const n = 200
			d := testenv.StartDovecot(t, nil)
			user := "support@example.test"
			d.AddUser(t, user, "support-pw")
			raws := make([][]byte, n)
			for i := range raws {
				raws[i] = customerMail(i)
			}
			d.AppendMany(t, user, "INBOX", raws)

			dir := t.TempDir()
			pgURL := ""
			if kind == "postgres" {
				pgURL = testenv.Postgres(t)
			}
			h := startAppIn(t, dir, kind, pgURL, certPool(t, d.CertPEM), nil)
			m := h.addInbound(d, user, "support-pw")
			waitFor(t, "all messages \\Seen at the server", func() (bool, string) {
				seen, total := seenCount(t, d, user)
				return seen == n, fmt.Sprintf("%d of %d seen", seen, total)
			})
			checkExactlyOnce(t, h.app.Store, m.ID, n)
			mb, err := h.app.Store.Mailbox(context.Background(), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if mb.Status != store.StatusConnected {
				t.Errorf("mailbox status %q (%s), want connected", mb.Status, mb.StatusMessage)
			}

			// A second pass: restart the whole app on the same data; nothing new appears.
			h.stop()
			h2 := startAppIn(t, dir, kind, pgURL, certPool(t, d.CertPEM), nil)
			waitFor(t, "the restarted mailbox to connect", func() (bool, string) {
				mb, err := h2.app.Store.Mailbox(context.Background(), m.ID)
				return err == nil && mb.Status == store.StatusConnected && mb.StatusAt.After(mb.CreatedAt), mb.Status
			})
			// One more message proves the loop is live; it must be the only addition.
			d.Append(t, user, "INBOX", customerMail(n))
			waitFor(t, "the extra message", func() (bool, string) {
				c, _ := h2.app.Store.CountMessages(context.Background(), m.ID)
				return c == n+1, fmt.Sprintf("%d stored", c)
			})
			checkExactlyOnce(t, h2.app.Store, m.ID, n+1)
		})
	}
}

// TestCrashBetweenCommitAndSeen: the ingest dies after the 50th commit, before \Seen; a
// restart acknowledges the stored message and stores nothing twice.
func TestCrashBetweenCommitAndSeen(t *testing.T) {
	const n = 120
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = customerMail(i)
	}
	d.AppendMany(t, user, "INBOX", raws)

	dir := t.TempDir()
	var commits atomic.Int64
	crashed := make(chan struct{})
	crash := func(int64, string) error {
		if commits.Add(1) == 50 {
			close(crashed)
			return errors.New("injected crash between commit and ack")
		}
		return nil
	}
	h := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), crash)
	m := h.addInbound(d, user, "support-pw")
	select {
	case <-crashed:
	case <-time.After(waitLimit):
		t.Fatal("the injected crash never happened")
	}
	// Stop at once, as a killed process would: whatever was not acknowledged stays so.
	h.stop()
	seen, _ := seenCount(t, d, user)
	if seen >= 50 {
		t.Fatalf("%d messages \\Seen right after the crash at commit 50; the 50th must not be acknowledged yet", seen)
	}

	h2 := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), nil)
	waitFor(t, "all messages \\Seen after the restart", func() (bool, string) {
		seen, total := seenCount(t, d, user)
		return seen == n, fmt.Sprintf("%d of %d seen", seen, total)
	})
	checkExactlyOnce(t, h2.app.Store, m.ID, n)
}

// TestBadPasswordAndServerDown: a wrong password and a server that is down put the
// mailbox in error with a message that says what to check; the loop keeps retrying and
// recovers once the password is fixed, and the web server keeps answering.
func TestBadPasswordAndServerDown(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "right-pw")
	d.Append(t, user, "INBOX", customerMail(1))
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	m := h.addInbound(d, user, "wrong-pw")

	waitFor(t, "the mailbox to show the login error", func() (bool, string) {
		mb, _ := h.app.Store.Mailbox(context.Background(), m.ID)
		return mb.Status == store.StatusError && strings.Contains(mb.StatusMessage, "check the login name and password"), mb.StatusMessage
	})
	if resp, err := http.Get(h.url + "/login"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("web UI stopped answering while the mailbox fails: %v", err)
	}
	// The admin fixes the password: the loop picks it up and ingests.
	m.Enabled = true
	if _, err := h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{Mailbox: m, Password: vault.NewSecret("right-pw")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ingest after the password fix", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(context.Background(), m.ID)
		mb, _ := h.app.Store.Mailbox(context.Background(), m.ID)
		return c == 1 && mb.Status == store.StatusConnected, fmt.Sprintf("%d stored, status %s %s", c, mb.Status, mb.StatusMessage)
	})

	// The server goes down: the mailbox shows it, with what to check.
	d.Stop()
	waitFor(t, "the mailbox to show the server is down", func() (bool, string) {
		mb, _ := h.app.Store.Mailbox(context.Background(), m.ID)
		return mb.Status == store.StatusError && strings.Contains(mb.StatusMessage, "check the host and port"), mb.StatusMessage
	})
}

// addOutbound configures the default outbound mailbox: SMTP with STARTTLS and AUTH.
func (h *harness) addOutbound(host string, port int, user, password string) {
	h.t.Helper()
	if _, err := h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "replies", Direction: store.Outbound, Protocol: "smtp", Address: user,
			Host: host, Port: port, Security: "starttls", Login: user, MaxSizeMB: 5, Enabled: true, IsDefault: true,
		},
		Password: vault.NewSecret(password),
	}); err != nil {
		h.t.Fatal(err)
	}
}

// replyAsAgent waits for the one work item and replies to it through the API as an agent;
// it returns the work item.
func (h *harness) replyAsAgent(text string) store.WorkItem {
	h.t.Helper()
	if _, err := h.app.Auth.EnsureUser(context.Background(), "agent", "Alex Agent", store.RoleAgent, "agent-pw-for-tests"); err != nil {
		h.t.Fatal(err)
	}
	var items []store.WorkItem
	waitFor(h.t, "the work item", func() (bool, string) {
		items = allWorkItems(h.t, h.app.Store)
		return len(items) == 1, fmt.Sprintf("%d work items", len(items))
	})
	c := newAPIClient(h.t, h.url, "agent", "agent-pw-for-tests")
	status, body := c.do("POST", fmt.Sprintf("/api/v1/workitems/%d/reply", items[0].ID), map[string]string{"text": text, "then": "done"})
	if status != http.StatusAccepted {
		h.t.Fatalf("reply: %d %s", status, body)
	}
	return items[0]
}

// apiClient signs in through POST /api/v1/session and keeps the cookie.
type apiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newAPIClient(t *testing.T, base, user, password string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &apiClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	status, body := a.do("POST", "/api/v1/session", map[string]string{"user": user, "password": password})
	if status != http.StatusOK {
		t.Fatalf("sign in as %s: %d %s", user, status, body)
	}
	return a
}

func (a *apiClient) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestReplyReachesSMTPPeer: a reply sent through the API leaves through the outbound
// mailbox (Dovecot submission with STARTTLS and AUTH PLAIN, relaying to smtp-sink) with the
// right envelope, From, To, Subject, In-Reply-To, References and body.
func TestReplyReachesSMTPPeer(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	first := []byte("From: =?UTF-8?Q?Zo=C3=AB_M=C3=BCller?= <zoe@example.org>\r\n" +
		"To: support@example.test\r\n" +
		"Subject: =?UTF-8?Q?Colis_endommag=C3=A9?=\r\n" +
		"Message-ID: <parcel-1@example.org>\r\n" +
		"References: <older@example.org>\r\n" +
		"Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"My parcel arrived damaged.\r\n")
	d.Append(t, user, "INBOX", first)

	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	h.addInbound(d, user, "support-pw")
	_, subPort := hostPort(t, d.SubmissionAddr)
	h.addOutbound("localhost", subPort, user, "support-pw")
	item := h.replyAsAgent("Sorry about that! A new parcel is on its way.")
	got := sink.Wait(t, 1, waitLimit)[0]
	if got.MailFrom != user || len(got.Rcpts) != 1 || got.Rcpts[0] != "zoe@example.org" {
		t.Errorf("envelope: from %q to %v, want %s to [zoe@example.org]", got.MailFrom, got.Rcpts, user)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatalf("the relayed reply is not a message: %v\n%s", err, got.Data)
	}
	dec := new(mimeDecoder)
	checks := map[string]string{
		"From":        "<" + user + ">",
		"To":          "Zoë Müller <zoe@example.org>",
		"Subject":     "Re: Colis endommagé",
		"In-Reply-To": "<parcel-1@example.org>",
		"References":  "<older@example.org> <parcel-1@example.org>",
	}
	for k, want := range checks {
		if v := dec.header(msg.Header.Get(k)); !strings.Contains(v, want) {
			t.Errorf("%s: %q, want it to contain %q", k, v, want)
		}
	}
	bodyBytes, _ := io.ReadAll(msg.Body)
	if !strings.Contains(decodeQP(bodyBytes), "A new parcel is on its way.") {
		t.Errorf("body does not carry the reply:\n%s", bodyBytes)
	}
	waitFor(t, "the outbox row marked sent and the work item replied", func() (bool, string) {
		wi, _ := h.app.Store.WorkItem(context.Background(), item.ID)
		ob, _ := h.app.Store.OutboxForWorkItem(context.Background(), item.ID)
		return wi.State == store.StateDone && len(ob) == 1 && ob[0].State == store.OutboxSent,
			fmt.Sprintf("work item %s, %d outbox items", wi.State, len(ob))
	})
	var metricsText bytes.Buffer
	if err := h.app.Metrics.WriteText(context.Background(), &metricsText); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metricsText.String(), `postroom_outbox_deliveries_total{outcome="sent"} 1`) {
		t.Errorf("/metrics does not count the delivery:\n%s", metricsText.String())
	}
}

// mimeDecoder decodes RFC 2047 words with the standard library, independent of our parser.
type mimeDecoder struct{ mime.WordDecoder }

func (d *mimeDecoder) header(v string) string {
	s, err := d.DecodeHeader(v)
	if err != nil {
		return v
	}
	return s
}

func decodeQP(b []byte) string {
	out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	if err != nil {
		return string(b)
	}
	return string(out)
}

// serveHandler serves a's handler on a free loopback port until the test ends.
func serveHandler(t *testing.T, a *app.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
