package main

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// The reply crash test: `postroom serve` sending queued replies through real SMTP (Dovecot
// submission relaying to Postfix's smtp-sink, which keeps every message it accepts) is
// killed with SIGKILL at random moments and started again on the same data folder.
// SMTP cannot be exactly-once (DESIGN.md invariant 11): a kill between the server's 250
// and the commit that records it repeats that one reply. At the end every reply is
// delivered, at most one per kill twice, and no reply waited for the 10-minute claim
// lease: the restarted process releases its dead predecessor's claims at once.
const (
	crashReplies     = 300
	crashReplyKills  = 5
	crashReplyMaxLag = time.Minute // far under the 10-minute lease
	// crashReplyJitter is the most a kill waits after the chosen "reply sent" line: a
	// reply takes a few milliseconds on loopback, so the kill lands anywhere in the next
	// one (claim, SMTP transaction, commit).
	crashReplyJitter = 6 * time.Millisecond
)

// TestCrashReplies: 300 replies, 5 kills.
func TestCrashReplies(t *testing.T) {
	n, kills := crashReplies, crashReplyKills
	if testing.Short() {
		n, kills = 100, 3
	}
	bin := buildPostroom(t)
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")

	// The child trusts Dovecot's test CA through SSL_CERT_FILE (Go's system roots).
	caFile := filepath.Join(t.TempDir(), "dovecot-ca.pem")
	if err := os.WriteFile(caFile, d.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCrashRun(t, bin, map[string]string{"SSL_CERT_FILE": caFile})
	c.progress = `msg="reply sent"`
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte("support-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port := splitAddr(t, d.SubmissionAddr)
	c.cli("migrate")
	c.cli("mailbox", "add", "out", "-direction", "outbound", "-protocol", "smtp", "-host", "localhost", "-port", port,
		"-security", "starttls", "-login", user, "-address", user, "-password-file", pwFile, "-default")
	c.cli("mailbox", "enable", "out")
	wi := c.queueReplies(n)

	type restart struct {
		at      time.Time
		claimed []int64 // rows the killed process held claimed
	}
	var restarts []restart
	prevSent := 0
	for k := 1; k <= kills; k++ {
		ch := c.start()
		select {
		case <-ch.serving:
		case <-ch.exited:
			t.Fatalf("run %d: postroom serve exited before serving: %v", c.runs, ch.err)
		case <-time.After(crashRunLimit):
			t.Fatalf("run %d: postroom serve did not start serving within %v", c.runs, crashRunLimit)
		}
		if len(restarts) > 0 {
			restarts[len(restarts)-1].at = time.Now()
		}
		share := (n - prevSent) / (kills - k + 2)
		target := 1 + c.rng.IntN(max(1, 2*share))
		jitter := time.Duration(c.rng.Int64N(int64(crashReplyJitter)))
		if !c.waitIngested(ch, target) {
			t.Logf("run %d ran out of replies first", c.runs)
		}
		time.Sleep(jitter)
		ch.kill()
		sent, claimed := c.outboxState(wi)
		t.Logf("kill %d, %v after reply %d of the run: %d sent (+%d), %d claimed by the dead process %v",
			k, jitter.Round(time.Microsecond), target, sent, sent-prevSent, len(claimed), claimed)
		if len(claimed) > 1 {
			t.Errorf("kill %d: the dead process held %d rows claimed, want at most the one in flight", k, len(claimed))
		}
		restarts = append(restarts, restart{claimed: claimed})
		prevSent = sent
	}
	final := time.Now()
	restarts[len(restarts)-1].at = final
	c.runUntil("every reply at smtp-sink", func() (bool, string) {
		got := distinctMessageIDs(sink.Messages(t))
		return len(got) == n, fmt.Sprintf("%d of %d replies delivered", len(got), n)
	})
	t.Logf("final run: every reply delivered %v after its start", time.Since(final).Round(time.Millisecond))

	// Every reply delivered; twice at most one per kill; every row recorded sent.
	counts := map[string]int{}
	for _, m := range sink.Messages(t) {
		counts[messageID(m.Data)]++
	}
	dups := 0
	for i := range n {
		id := fmt.Sprintf("<crash-reply-%d@example.test>", i)
		switch counts[id] {
		case 0:
			t.Errorf("reply %s never delivered", id)
		case 1:
		default:
			dups += counts[id] - 1
		}
	}
	st := c.openStore()
	defer st.Close()
	ctx := context.Background()
	if q, _ := st.CountOutbox(ctx, store.OutboxQueued); q != 0 {
		t.Errorf("%d rows still queued", q)
	}
	// No reply waited for the lease: each row the dead process held was sent soon after
	// the restart.
	maxLag := time.Duration(0)
	for _, r := range restarts {
		for _, id := range r.claimed {
			it, err := st.OutboxItem(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			lag := it.SentAt.Sub(r.at)
			maxLag = max(maxLag, lag)
			if it.State != store.OutboxSent || lag > crashReplyMaxLag {
				t.Errorf("row %d claimed at a kill: %s %v after the restart, want sent within %v", id, it.State, lag, crashReplyMaxLag)
			}
		}
	}
	t.Logf("%d replies, %d kills: %d delivered twice; the dead processes' claimed rows sent at most %v after the restart",
		n, kills, dups, maxLag.Round(time.Millisecond))
	if dups > kills {
		t.Errorf("%d replies delivered twice after %d kills: want at most one per kill", dups, kills)
	}
}

// queueReplies records n replies (each its own Message-ID and customer) to one work item
// while no child runs, as agents answering would.
func (c *crashRun) queueReplies(n int) (workItemID int64) {
	c.t.Helper()
	ctx := context.Background()
	st := c.openStore()
	defer st.Close()
	out, err := st.MailboxByName(ctx, "out")
	if err != nil {
		c.t.Fatal(err)
	}
	agent, err := st.CreateUser(ctx, store.User{Username: "agent", DisplayName: "Alex Agent", Role: store.RoleAgent, PasswordHash: "x"})
	if err != nil {
		c.t.Fatal(err)
	}
	first := "Message-ID: <crash-first@example.test>\r\nFrom: " + out.Address + "\r\nTo: customer@example.org\r\nSubject: Your order\r\n\r\nHello.\r\n"
	conv, err := st.CreateOutbound(ctx, store.NewConversationInput{
		UserID: agent.ID, Raw: []byte(first), From: out.Address, Recipients: []string{"customer@example.org"}, Customer: "customer@example.org",
		Message: store.Message{MailboxID: out.ID, MessageID: "crash-first@example.test", Subject: "Your order",
			FromAddr: out.Address, To: "customer@example.org", TextBody: "Hello."},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	// The conversation's first email is not part of the count: recorded sent already.
	if err := st.MarkOutboxSent(ctx, conv.Outbox.ID, time.Now()); err != nil {
		c.t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("crash-reply-%d@example.test", i)
		rcpt := fmt.Sprintf("customer%d@example.org", i)
		raw := fmt.Sprintf("Message-ID: <%s>\r\nFrom: %s\r\nTo: %s\r\nSubject: Re: Your order\r\n"+
			"In-Reply-To: <crash-first@example.test>\r\n\r\nReply %d.\r\n", id, out.Address, rcpt, i)
		if _, err := st.CreateReply(ctx, store.ReplyInput{
			WorkItemID: conv.WorkItemID, UserID: agent.ID, Raw: []byte(raw), From: out.Address, Recipients: []string{rcpt},
			NewState: store.StatePending,
			Message: store.Message{MailboxID: out.ID, MessageID: id, Subject: "Re: Your order", FromAddr: out.Address,
				To: rcpt, InReplyTo: "crash-first@example.test", TextBody: fmt.Sprintf("Reply %d.", i)},
		}); err != nil {
			c.t.Fatalf("queue reply %d: %v", i, err)
		}
	}
	return conv.WorkItemID
}

// outboxState reads, while no child runs, how many replies of work item wi are sent and
// which queued rows a process holds claimed.
func (c *crashRun) outboxState(wi int64) (sent int, claimed []int64) {
	c.t.Helper()
	st := c.openStore()
	defer st.Close()
	rows, err := st.OutboxForWorkItem(context.Background(), wi)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, o := range rows[1:] { // rows[0] is the conversation's first email
		switch {
		case o.State == store.OutboxSent:
			sent++
		case o.State == store.OutboxQueued && o.Claim.Instance != "":
			claimed = append(claimed, o.ID)
		}
	}
	return sent, claimed
}

func messageID(raw []byte) string {
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(m.Header.Get("Message-ID"))
}

func distinctMessageIDs(msgs []testenv.SinkMessage) []string {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, messageID(m.Data))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// TestCrashGraphReplies: `postroom serve` sending two replies through an outbound
// Microsoft Graph mailbox (the stand-in, in this process) is killed with SIGKILL twice:
// first after it committed the first reply's draft id while /send is on its way (it never
// reaches Microsoft), then, after the restart sent that same draft, while Microsoft's 202
// is on its way back (the window between the server's acceptance and the commit). The
// third run records the first reply sent without sending it again, and sends the second:
// exactly two messages in Sent Items, no draft left.
func TestCrashGraphReplies(t *testing.T) {
	bin := buildPostroom(t)
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatalf("start the Microsoft stand-in: %v", err)
	}
	t.Cleanup(func() { ms.Close() })
	sample, err := ms.SampleTenant(mstest.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCrashRun(t, bin, nil)
	secretFile := filepath.Join(t.TempDir(), "graph-secret")
	if err := os.WriteFile(secretFile, []byte(sample.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cli("migrate")
	c.cli("mailbox", "add", "out", "-direction", "outbound", "-protocol", "graph", "-address", sample.Mailbox,
		"-oauth-cloud", "custom", "-oauth-authority-url", ms.LoginURL(), "-graph-url", ms.GraphURL(),
		"-oauth-tenant", sample.TenantID, "-oauth-client-id", sample.ClientID, "-client-secret-file", secretFile, "-default")
	c.cli("mailbox", "enable", "out")
	wi := c.queueReplies(2)
	folders := func() (sent, drafts int) {
		s, err := ms.Messages(sample.Mailbox, "sentitems")
		if err != nil {
			t.Fatal(err)
		}
		d, err := ms.Messages(sample.Mailbox, "drafts")
		if err != nil {
			t.Fatal(err)
		}
		return len(s), len(d)
	}
	runUntilThenKill := func(what string, cond func() bool) {
		t.Helper()
		ch := c.start()
		deadline := time.After(crashRunLimit)
		for !cond() {
			select {
			case <-ch.exited:
				t.Fatalf("run %d: postroom serve exited by itself: %v", c.runs, ch.err)
			case <-deadline:
				t.Fatalf("run %d: timed out waiting for %s", c.runs, what)
			case <-time.After(20 * time.Millisecond):
			}
		}
		ch.kill()
	}

	// Run 1: the draft is made and its id committed; /send waits at Microsoft; kill.
	ms.FailNext(mstest.Fault{PathContains: "/send", Delay: time.Minute})
	runUntilThenKill("the first draft", func() bool {
		_, drafts := folders()
		if drafts == 1 {
			time.Sleep(300 * time.Millisecond) // its id committed, /send waiting at Microsoft
		}
		return drafts == 1
	})
	if sent, drafts := folders(); len(ms.Sent(sample.Mailbox)) != 0 || sent != 0 || drafts != 1 {
		t.Fatalf("after kill 1: %d sent, Sent Items %d, drafts %d; want nothing sent, the draft kept", len(ms.Sent(sample.Mailbox)), sent, drafts)
	}
	_, claimed := c.outboxState(wi)
	first := c.outboxRow(wi, 1)
	if first.GraphDraftID == "" || len(claimed) != 1 {
		t.Fatalf("after kill 1: row %+v, claimed %v; want the draft id committed and the row claimed", first, claimed)
	}

	// Run 2: the same draft is sent, Microsoft sends it and its 202 is held; kill.
	ms.FailNext(mstest.Fault{PathContains: "/send", DropAfterServing: true, Delay: time.Minute})
	runUntilThenKill("the first reply sent at Microsoft", func() bool { return len(ms.Sent(sample.Mailbox)) == 1 })
	if got := c.outboxRow(wi, 1); got.State != store.OutboxQueued || got.GraphDraftID != first.GraphDraftID {
		t.Fatalf("after kill 2: row %+v; want still queued (the 202 never arrived), the same draft id %q", got, first.GraphDraftID)
	}

	// Run 3: the first is recognised as sent, the second is sent.
	c.runUntil("both replies recorded sent", func() (bool, string) {
		n := len(ms.Sent(sample.Mailbox))
		return n >= 2 && strings.Count(c.log(), `msg="reply sent"`) >= 2, fmt.Sprintf("%d sent at Microsoft", n)
	})
	sent, drafts := folders()
	if n := len(ms.Sent(sample.Mailbox)); n != 2 || sent != 2 || drafts != 0 {
		t.Errorf("at the end: %d sent, Sent Items %d, drafts %d; want exactly the two replies, no draft", n, sent, drafts)
	}
	for i := 1; i <= 2; i++ {
		if row := c.outboxRow(wi, i); row.State != store.OutboxSent {
			t.Errorf("reply %d: %s, want sent", i, row.State)
		}
	}
	logs := c.log()
	if n := strings.Count(logs, "released the claims of a previous process"); n != 2 {
		t.Errorf("the restarts released a dead process's claims %d times, want 2 (each at once)", n)
	}
	if n := strings.Count(logs, "sent by an earlier attempt whose answer was lost"); n != 1 {
		t.Errorf("a sent draft was recognised %d times, want once", n)
	}
	t.Logf("2 Graph replies, 2 kills (before /send, and between Microsoft's send and the commit): %d messages in Sent Items", sent)
}

// log returns every child's output so far.
func (c *crashRun) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// outboxRow reads row i of work item wi (0 is the conversation's first email) while no
// child runs.
func (c *crashRun) outboxRow(wi int64, i int) store.OutboxItem {
	c.t.Helper()
	st := c.openStore()
	defer st.Close()
	rows, err := st.OutboxForWorkItem(context.Background(), wi)
	if err != nil || len(rows) <= i {
		c.t.Fatalf("outbox of work item %d: %d rows, %v", wi, len(rows), err)
	}
	return rows[i]
}
