package outbound_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
)

// describeRows lists outbox rows as an agent sees them on the work item.
func describeRows(rows []store.OutboxItem) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  #%d %s to %s, %d attempts, error %q\n", r.ID, r.State, strings.Join(r.Recipients, ","), r.Attempts, r.LastError)
	}
	return b.String()
}

// partialServer is a real SMTP server that answers recipients one by one: smtp-sink behind
// the RCPT gate, reached directly or through Dovecot's submission service (STARTTLS,
// login) relaying to it.
type partialServer struct {
	sink  *testenv.SMTPSink
	gate  *testenv.RcptGate
	host  string
	port  int
	sec   string
	login string
	pw    string
	roots *x509.CertPool
}

func startPartialServer(t *testing.T, viaDovecot bool) *partialServer {
	t.Helper()
	p := &partialServer{sink: testenv.StartSMTPSink(t)}
	p.gate = p.sink.StartRcptGate(t)
	if !viaDovecot {
		p.host, p.port, p.sec = "127.0.0.1", portOf(t, p.gate.Addr), "none"
		return p
	}
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: p.gate.Addr})
	d.AddUser(t, "support@example.test", "support-pw")
	p.roots = x509.NewCertPool()
	p.roots.AppendCertsFromPEM(d.CertPEM)
	p.host, p.port, p.sec, p.login, p.pw = "localhost", portOf(t, d.SubmissionAddr), "starttls", "support@example.test", "support-pw"
	return p
}

// TestSomeRecipientsDeferred: in one SMTP transaction the server accepts ana and carol,
// defers dave (452) and refuses bob for good (550). Ana and carol get the reply once; bob
// is failed with the server's words; dave stays in the outbox, across a restart, and gets
// the reply alone when the backoff is over and his mailbox has room again.
func TestSomeRecipientsDeferred(t *testing.T) {
	for _, tt := range []struct {
		name       string
		viaDovecot bool
	}{
		{"smtp-sink", false},
		{"Dovecot submission", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			srv := startPartialServer(t, tt.viaDovecot)
			srv.gate.Answer(t, "bob@example.org", "550 5.1.1 No such user")
			srv.gate.Answer(t, "dave@example.org", "452 4.2.2 Mailbox full")
			f.addOutbound(t, srv.host, srv.port, srv.sec, srv.login, srv.pw)
			item := f.groupReply(t, "ana@example.org", "bob@example.org", "carol@example.org", "dave@example.org")
			ctx := context.Background()

			first := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, RootCAs: srv.roots})
			if n, err := first.SendDue(ctx); err != nil || n != 1 {
				t.Fatalf("SendDue: %d %v", n, err)
			}
			msgs := srv.sink.Wait(t, 1, time.Minute)
			if len(msgs) != 1 || strings.Join(msgs[0].Rcpts, ",") != "ana@example.org,carol@example.org" {
				t.Fatalf("the server received %d messages, the first for %v; want one for ana and carol", len(msgs), msgs[0].Rcpts)
			}
			rows, err := f.st.OutboxForWorkItem(ctx, f.workItem)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 3 {
				t.Fatalf("the work item shows %d outbox rows, want 3 (dave queued, ana and carol sent, bob failed):\n%s", len(rows), describeRows(rows))
			}
			deferred, sent, failed := rows[0], rows[1], rows[2]
			if deferred.ID != item.ID || deferred.State != store.OutboxQueued || strings.Join(deferred.Recipients, ",") != "dave@example.org" ||
				deferred.Attempts != 1 || !strings.Contains(deferred.LastError, "dave@example.org: 452 4.2.2") || !strings.Contains(deferred.LastError, "Mailbox full") {
				t.Errorf("the reply's row is not narrowed to dave, queued with the server's 452:\n%s", describeRows(rows))
			}
			if sent.State != store.OutboxSent || strings.Join(sent.Recipients, ",") != "ana@example.org,carol@example.org" || sent.SentAt.IsZero() {
				t.Errorf("no sent row for ana and carol:\n%s", describeRows(rows))
			}
			if failed.State != store.OutboxFailed || strings.Join(failed.Recipients, ",") != "bob@example.org" ||
				!strings.Contains(failed.LastError, "bob@example.org: 550 5.1.1") || !strings.Contains(failed.LastError, "No such user") {
				t.Errorf("no failed row for bob with the server's words:\n%s", describeRows(rows))
			}
			if !deferred.NextAttemptAt.After(time.Now()) {
				t.Errorf("dave is retried at %v, want a later time (backoff)", deferred.NextAttemptAt)
			}
			// Nothing is due until the backoff is over.
			if n, err := first.SendDue(ctx); err != nil || n != 0 {
				t.Errorf("SendDue right after the deferral: %d %v, want nothing sent", n, err)
			}

			// postroom restarts; dave's mailbox has room again.
			first.Close()
			if err := f.st.Close(); err != nil {
				t.Fatal(err)
			}
			srv.gate.Answer(t, "dave@example.org", "")
			st, err := sqlite.Open(ctx, f.path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			later := func() time.Time { return deferred.NextAttemptAt.Add(time.Second) }
			second := outbound.NewSender(outbound.SenderOptions{Store: st, Passwords: passwordsFor(t, st), RootCAs: srv.roots, Now: later})
			defer second.Close()
			if n, err := second.SendDue(ctx); err != nil || n != 1 {
				t.Fatalf("after the restart: sent %d, %v", n, err)
			}
			msgs = srv.sink.Wait(t, 2, time.Minute)
			if len(msgs) != 2 || strings.Join(msgs[1].Rcpts, ",") != "dave@example.org" {
				t.Errorf("after the restart the server received %d messages, the last for %v; want a second one for dave only", len(msgs), msgs[len(msgs)-1].Rcpts)
			}
			rows, err = st.OutboxForWorkItem(ctx, f.workItem)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 3 || rows[0].State != store.OutboxSent || rows[0].Attempts != 2 || rows[1].State != store.OutboxSent || rows[2].State != store.OutboxFailed {
				t.Errorf("after the retry, want dave's row sent after 2 attempts, ana and carol sent, bob failed:\n%s", describeRows(rows))
			}
			if n, _ := second.SendDue(ctx); n != 0 {
				t.Errorf("sent %d more", n)
			}
			if got := srv.sink.Messages(t); len(got) != 2 {
				t.Errorf("the server received %d messages in all, want 2", len(got))
			}
		})
	}
}

// TestDeferredRecipientGivenUp: a recipient the server defers on every attempt is failed
// after the last one, with the server's words and the attempt count; the recipient who got
// the reply on the first attempt never gets it again.
func TestDeferredRecipientGivenUp(t *testing.T) {
	f := newFixture(t)
	srv := startPartialServer(t, false)
	srv.gate.Answer(t, "bob@example.org", "451 4.3.0 Try again later")
	f.addOutbound(t, srv.host, srv.port, srv.sec, "", "")
	item := f.groupReply(t, "ana@example.org", "bob@example.org")
	ctx := context.Background()
	clock := time.Now()
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, Now: func() time.Time { return clock }})
	defer s.Close()
	for attempt := 1; ; attempt++ {
		if attempt > 20 {
			t.Fatalf("bob is still queued after %d attempts", attempt-1)
		}
		if _, err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		row, err := f.st.OutboxItem(ctx, item.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.State != store.OutboxQueued {
			break
		}
		clock = row.NextAttemptAt.Add(time.Second)
	}
	rows, err := f.st.OutboxForWorkItem(ctx, f.workItem)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].State != store.OutboxFailed || strings.Join(rows[0].Recipients, ",") != "bob@example.org" ||
		rows[0].Attempts != 10 || rows[0].LastError != "gave up after 10 attempts: bob@example.org: 451 4.3.0 Try again later" ||
		rows[1].State != store.OutboxSent || strings.Join(rows[1].Recipients, ",") != "ana@example.org" {
		t.Errorf("after giving up, want bob failed after 10 attempts with the server's words and ana sent:\n%s", describeRows(rows))
	}
	msgs := srv.sink.Messages(t)
	if len(msgs) != 1 || strings.Join(msgs[0].Rcpts, ",") != "ana@example.org" {
		t.Errorf("the server received %d messages; want one, for ana", len(msgs))
	}
}

// TestRefusedAndDeferredNobodySent: the server refuses one recipient for good and defers
// the other; nobody gets the reply yet. The refused one is failed at once (not tried nine
// more times), the deferred one alone is retried and gets it.
func TestRefusedAndDeferredNobodySent(t *testing.T) {
	f := newFixture(t)
	srv := startPartialServer(t, false)
	srv.gate.Answer(t, "ana@example.org", "550 5.7.1 Relaying denied")
	srv.gate.Answer(t, "bob@example.org", "450 4.2.1 Mailbox busy")
	f.addOutbound(t, srv.host, srv.port, srv.sec, "", "")
	item := f.groupReply(t, "ana@example.org", "bob@example.org")
	ctx := context.Background()
	clock := time.Now()
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, Now: func() time.Time { return clock }})
	defer s.Close()
	if n, err := s.SendDue(ctx); err != nil || n != 0 {
		t.Fatalf("SendDue: %d %v, want nothing sent", n, err)
	}
	rows, err := f.st.OutboxForWorkItem(ctx, f.workItem)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != item.ID || rows[0].State != store.OutboxQueued || strings.Join(rows[0].Recipients, ",") != "bob@example.org" ||
		!strings.Contains(rows[0].LastError, "bob@example.org: 450 4.2.1 Mailbox busy") ||
		rows[1].State != store.OutboxFailed || strings.Join(rows[1].Recipients, ",") != "ana@example.org" ||
		rows[1].LastError != "ana@example.org: 550 5.7.1 Relaying denied" {
		t.Fatalf("want bob queued with the 450 and ana failed with the 550:\n%s", describeRows(rows))
	}
	srv.gate.Answer(t, "bob@example.org", "")
	clock = rows[0].NextAttemptAt.Add(time.Second)
	if n, err := s.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
	msgs := srv.sink.Wait(t, 1, time.Minute)
	if len(msgs) != 1 || strings.Join(msgs[0].Rcpts, ",") != "bob@example.org" {
		t.Errorf("the server received %d messages, the first for %v; want one for bob", len(msgs), msgs[0].Rcpts)
	}
}
