package outbound_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

// shownStatus is the outbound mailbox's status as the Mailboxes page shows it.
func (f *fixture) shownStatus(t *testing.T) mailbox.Status {
	t.Helper()
	ctx := context.Background()
	boxes, err := f.st.ListMailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range boxes {
		if m.Direction == store.Outbound {
			st, err := mailbox.NewService(f.st, f.passwords, slog.New(slog.DiscardHandler)).Status(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
	t.Fatal("no outbound mailbox")
	return mailbox.Status{}
}

// TestSendRecordsMailboxStatus: a reply sent makes the outbound mailbox "connected" with
// its last OK time (it said "idle · last OK never" however many replies went out); a
// refused login makes it "error" with the advice.
func TestSendRecordsMailboxStatus(t *testing.T) {
	t.Run("sent", func(t *testing.T) {
		f := newFixture(t)
		_, port, roots := submission(t)
		f.addOutbound(t, "localhost", port, "starttls", "support@example.test", "support-pw")
		if st := f.shownStatus(t); st.State != mailbox.StateIdle || !st.LastOK.IsZero() {
			t.Fatalf("before any reply: %+v, want idle and never OK", st)
		}
		ctx := context.Background()
		if _, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "We are sending a new lid today."}); err != nil {
			t.Fatal(err)
		}
		s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, RootCAs: roots})
		defer s.Close()
		if n, err := s.SendDue(ctx); err != nil || n != 1 {
			t.Fatalf("SendDue: %d %v", n, err)
		}
		if st := f.shownStatus(t); st.State != mailbox.StateConnected || st.LastOK.IsZero() {
			t.Errorf("after a reply was sent: %+v, want connected with a last OK time", st)
		}
	})
	t.Run("login refused", func(t *testing.T) {
		f := newFixture(t)
		_, port, roots := submission(t)
		f.addOutbound(t, "localhost", port, "starttls", "support@example.test", "wrong-pw")
		ctx := context.Background()
		if _, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hello"}); err != nil {
			t.Fatal(err)
		}
		s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, RootCAs: roots})
		defer s.Close()
		if _, err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		if st := f.shownStatus(t); st.State != mailbox.StateError || !strings.Contains(st.Message, "check the login name and password") || !st.LastOK.IsZero() {
			t.Errorf("after a refused login: %+v, want error with the advice", st)
		}
	})
}
