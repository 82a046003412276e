package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// The fault scenarios put testenv.FaultProxy between postroom and real Dovecot (IMAP) or
// real Dovecot submission relaying to smtp-sink (SMTP), break the connection in the middle
// of the traffic, take the fault away, and check what a user would see: every message
// stored exactly once, every message acknowledged at the server, the mailbox connected.
const (
	// faultMessages is how many messages each IMAP scenario ingests: six batches of 50
	// (ingest.defaultBatchSize), about 110 KB through the proxy.
	faultMessages = 300
	// faultAt is where in the server's data the fault lands: in the FETCH of the second
	// batch, mid-message, with 50 messages stored and more to come.
	faultAt = 30_000
	// faultHold is how long a stall or a slow link lasts before it is taken away.
	faultHold = 4 * time.Second
)

// faultEnv is one IMAP scenario: Dovecot holding faultMessages customer mails, a fault
// proxy before its plain IMAP port, and an app whose mailbox goes through the proxy.
type faultEnv struct {
	t     *testing.T
	d     *testenv.Dovecot
	proxy *testenv.FaultProxy
	h     *harness
	user  string
	box   store.Mailbox
}

// startFaultEnv starts the scenario; tweak, when not nil, adjusts the app's Config.
func startFaultEnv(t *testing.T, tweak func(*app.Config)) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, user: "support@example.test"}
	e.d = testenv.StartDovecot(t, nil)
	e.d.AddUser(t, e.user, "support-pw")
	raws := make([][]byte, faultMessages)
	for i := range raws {
		raws[i] = customerMail(i)
	}
	e.d.AppendMany(t, e.user, "INBOX", raws)
	// Plain IMAP (security none, allowed on 127.0.0.1): a cut or slowed response reaches
	// the IMAP parser itself rather than ending in a TLS record error.
	e.proxy = testenv.StartFaultProxy(t, e.d.IMAPAddr)
	e.h = startFaultApp(t, tweak)
	return e
}

// startFaultApp is startApp on SQLite with a hook on the Config (startAppIn has none).
func startFaultApp(t *testing.T, tweak func(*app.Config)) *harness {
	t.Helper()
	cfg := app.Config{
		DataDir:      t.TempDir(),
		Getenv:       func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		IngestReload: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("open app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	wait := a.Start(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx, ln)
	}()
	h := &harness{t: t, app: a, cancel: cancel, url: "http://" + ln.Addr().String()}
	h.wait = func() { wait(); <-served }
	t.Cleanup(h.stop)
	return h
}

// addMailbox adds the enabled inbound mailbox; its loop connects at the next reload.
func (e *faultEnv) addMailbox() {
	e.t.Helper()
	host, port := hostPort(e.t, e.proxy.Addr)
	m, err := e.h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "support", Direction: store.Inbound, Protocol: "imap", Address: e.user,
			Host: host, Port: port, Security: "none", Login: e.user, Folder: "INBOX",
			MaxSizeMB: 5, Enabled: true,
		},
		Password: vault.NewSecret("support-pw"),
	})
	if err != nil {
		e.t.Fatalf("add inbound mailbox: %v", err)
	}
	e.box = m
}

// injectAt arms fault to land at byte faultAt of Dovecot's data, adds the mailbox, and
// waits until the fault has landed. It checks that the ingest was under way then: some
// messages stored, not all.
func (e *faultEnv) injectAt(fault func()) {
	e.t.Helper()
	fired := make(chan int, 1)
	e.proxy.OnBytesToClient(faultAt, func() {
		fault()
		// All mailboxes (0): e.box is written by addMailbox on the test's goroutine.
		c, _ := e.h.app.Store.CountMessages(context.Background(), 0)
		fired <- c
	})
	e.addMailbox()
	select {
	case stored := <-fired:
		if stored >= faultMessages {
			e.t.Fatalf("the fault landed after the ingest had finished (%d stored)", stored)
		}
		e.t.Logf("fault landed with %d of %d messages stored", stored, faultMessages)
	case <-time.After(waitLimit):
		e.t.Fatalf("the ingest never sent %d bytes through the proxy: %+v", faultAt, e.proxy.Stats())
	}
}

// checkRecovered waits until every message is \Seen at the server, then checks that each
// was stored exactly once (count, subject and Message-ID) and that the mailbox shows
// connected.
func (e *faultEnv) checkRecovered() {
	e.t.Helper()
	waitFor(e.t, "every message \\Seen at the server", func() (bool, string) {
		seen, total := seenCount(e.t, e.d, e.user)
		return seen == faultMessages, fmt.Sprintf("%d of %d seen; proxy %+v", seen, total, e.proxy.Stats())
	})
	checkExactlyOnce(e.t, e.h.app.Store, e.box.ID, faultMessages)
	checkMessageIDsOnce(e.t, e.h.app.Store, faultMessages)
	waitFor(e.t, "the mailbox to show connected", func() (bool, string) {
		mb, err := e.h.app.Store.Mailbox(context.Background(), e.box.ID)
		return err == nil && mb.Status == store.StatusConnected, fmt.Sprintf("%s %s", mb.Status, mb.StatusMessage)
	})
	e.t.Logf("proxy after recovery: %+v", e.proxy.Stats())
}

// waitStatus waits until the mailbox shows status with a message containing want (for
// StatusError, a message that is not empty).
func (e *faultEnv) waitStatus(status, want string) {
	e.t.Helper()
	waitFor(e.t, "the mailbox to show "+status, func() (bool, string) {
		mb, err := e.h.app.Store.Mailbox(context.Background(), e.box.ID)
		ok := err == nil && mb.Status == status && strings.Contains(mb.StatusMessage, want)
		if status == store.StatusError {
			ok = ok && mb.StatusMessage != ""
		}
		return ok, fmt.Sprintf("%s %q", mb.Status, mb.StatusMessage)
	})
}

// checkMessageIDsOnce reads every stored message through the work items' conversations and
// checks that each customer mail's Message-ID is there once and nothing else is.
func checkMessageIDsOnce(t *testing.T, st store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	seen := map[string]int{}
	for _, wi := range allWorkItems(t, st) {
		msgs, err := st.ConversationMessages(ctx, wi.ConversationID)
		if err != nil {
			t.Fatalf("messages of conversation %d: %v", wi.ConversationID, err)
		}
		for _, m := range msgs {
			seen[m.MessageID]++
		}
	}
	for i := range n {
		id := fmt.Sprintf("order-%d@example.org", i)
		if seen[id] != 1 {
			t.Errorf("Message-ID <%s> stored %d times, want 1", id, seen[id])
		}
		delete(seen, id)
	}
	for id, c := range seen {
		t.Errorf("unexpected stored message <%s> (%d times)", id, c)
	}
}

// TestFaultIMAPReset: connections reset (RST) in the middle of a FETCH, three times, then
// a server that resets every new connection for a while. The mailbox shows the failure,
// recovers once the resets stop, and every message is stored exactly once.
func TestFaultIMAPReset(t *testing.T) {
	t.Parallel()
	e := startFaultEnv(t, nil)
	e.injectAt(func() { e.proxy.ResetAll() })
	for range 2 {
		fired := make(chan struct{})
		e.proxy.OnBytesToClient(faultAt, func() { e.proxy.ResetAll(); close(fired) })
		select {
		case <-fired:
		case <-time.After(waitLimit):
			t.Fatalf("the reconnected ingest never sent %d more bytes: %+v", faultAt, e.proxy.Stats())
		}
	}
	// The loop reconnects (a fourth connection, after the third reset's error) ...
	waitFor(t, "the mailbox to reconnect after the resets", func() (bool, string) {
		s := e.proxy.Stats()
		mb, _ := e.h.app.Store.Mailbox(context.Background(), e.box.ID)
		return s.Accepted >= 4 && mb.Status == store.StatusConnected, fmt.Sprintf("%s; proxy %+v", mb.Status, s)
	})
	// ... and then the peer resets that connection and every new one: the mailbox must
	// show as failing, and retry.
	e.proxy.Reject()
	waitFor(t, "a new connection refused while the peer resets", func() (bool, string) {
		s := e.proxy.Stats()
		return s.Reset >= 5, fmt.Sprintf("%+v", s)
	})
	e.waitStatus(store.StatusError, "")
	e.proxy.Pass()
	e.checkRecovered()
}

// TestFaultIMAPTruncated: Dovecot's answer is cut in the middle of a FETCH (the proxy
// closes the connection), and for a while every new connection is cut after 2,000 bytes,
// in its first FETCH; the ingest stores only whole messages and recovers.
func TestFaultIMAPTruncated(t *testing.T) {
	t.Parallel()
	e := startFaultEnv(t, nil)
	e.injectAt(func() { e.proxy.Truncate(0) })
	waitFor(t, "two more connections cut short", func() (bool, string) {
		s := e.proxy.Stats()
		return s.Truncated >= 3, fmt.Sprintf("%+v", s)
	})
	e.proxy.Pass()
	e.checkRecovered()
}

// TestFaultIMAPStall: both directions stop in the middle of a FETCH (a hung server, a dead
// link TCP has not noticed) and resume after a few seconds: nothing is lost or doubled.
func TestFaultIMAPStall(t *testing.T) {
	t.Parallel()
	e := startFaultEnv(t, nil)
	e.injectAt(func() { e.proxy.Stall(testenv.Both) })
	time.Sleep(faultHold)
	e.proxy.Pass()
	e.checkRecovered()
}

// TestFaultIMAPStallReplaced: a server that stops answering in the middle of a FETCH, for
// good, is detected (no byte for the read timeout), the mailbox shows the failure and the
// connection is replaced; once the server answers again the ingest completes exactly once.
func TestFaultIMAPStallReplaced(t *testing.T) {
	e := startFaultEnv(t, func(c *app.Config) { c.ReadTimeout = stallReadTimeout })
	e.injectAt(func() { e.proxy.Stall(testenv.Both) })
	// The hung connection stays open at the proxy; its replacement is a new connection
	// (stalled too, until Pass: its greeting does not arrive either).
	waitFor(t, "the hung connection to be replaced", func() (bool, string) {
		s := e.proxy.Stats()
		return s.Accepted >= 2, fmt.Sprintf("%+v", s)
	})
	e.waitStatus(store.StatusError, "")
	e.proxy.Pass()
	e.checkRecovered()
}

// stallReadTimeout is the read timeout TestFaultIMAPStallReplaced gives the app, well
// under waitLimit.
const stallReadTimeout = 3 * time.Second

// TestFaultIMAPSlow: the link slows to 1 byte/s both ways in the middle of a FETCH for a
// few seconds; the ingest goes on once it is fast again, exactly once.
func TestFaultIMAPSlow(t *testing.T) {
	t.Parallel()
	e := startFaultEnv(t, nil)
	e.injectAt(func() { e.proxy.Slow(testenv.Both, 1) })
	time.Sleep(faultHold)
	if s := e.proxy.Stats(); s.BytesToClient <= faultAt {
		t.Errorf("no byte passed the slow link in %v: %+v", faultHold, s)
	}
	e.proxy.Pass()
	e.checkRecovered()
}

// TestFaultSMTPReset: an agent's reply is queued while the SMTP peer resets every
// connection. The outbox shows the failure and keeps the reply queued; once the peer is
// back the reply is delivered exactly once and marked sent.
func TestFaultSMTPReset(t *testing.T) {
	t.Parallel()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.Append(t, user, "INBOX", customerMail(1))
	proxy := testenv.StartFaultProxy(t, d.SubmissionAddr)
	proxy.Reject()

	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	h.addInbound(d, user, "support-pw")
	host, port := hostPort(t, proxy.Addr)
	h.addOutbound(host, port, user, "support-pw")
	item := h.replyAsAgent("Your order ships today.")
	waitFor(t, "the failed attempt recorded in the outbox", func() (bool, string) {
		ob, _ := h.app.Store.OutboxForWorkItem(context.Background(), item.ID)
		return len(ob) == 1 && ob[0].State == store.OutboxQueued && ob[0].Attempts >= 1 && ob[0].LastError != "",
			fmt.Sprintf("outbox %+v; proxy %+v", ob, proxy.Stats())
	})
	if got := len(sink.Messages(t)); got != 0 {
		t.Fatalf("smtp-sink got %d messages while every connection was reset", got)
	}

	proxy.Pass()
	// The retry comes after the outbox's first backoff (outbound.firstRetry, 30 s ±20%).
	waitFor(t, "the reply marked sent", func() (bool, string) {
		ob, _ := h.app.Store.OutboxForWorkItem(context.Background(), item.ID)
		return len(ob) == 1 && ob[0].State == store.OutboxSent, fmt.Sprintf("outbox %+v", ob)
	})
	msgs := sink.Wait(t, 1, waitLimit)
	if len(msgs) != 1 {
		t.Fatalf("smtp-sink got %d messages, want the reply exactly once", len(msgs))
	}
	if !strings.Contains(string(msgs[0].Data), "Your order ships today.") {
		t.Errorf("the delivered message is not the reply:\n%s", msgs[0].Data)
	}
}
