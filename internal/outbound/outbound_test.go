package outbound_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const customerMail = "From: Ana Customer <ana@example.org>\r\nTo: support@example.test\r\nSubject: Broken lid\r\n" +
	"Message-ID: <lid-1@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nThe lid of my kettle is broken.\r\n"

type fixture struct {
	path      string // the SQLite file, to reopen the store as a restarted process does
	st        store.Store
	passwords *credential.Passwords
	svc       *outbound.Service
	agent     store.User
	workItem  int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.CreateMailbox(ctx, store.Mailbox{Name: "in", Direction: store.Inbound, Protocol: "imap", Address: "support@example.test",
		Host: "127.0.0.1", Port: 143, Security: "none", MaxSizeMB: 5})
	if err != nil {
		t.Fatal(err)
	}
	parsed := message.Parse([]byte(customerMail))
	parsed.MailboxID, parsed.Direction, parsed.SourceID = in.ID, store.Inbound, "imap:1:1"
	res, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: in.ID, Raw: []byte(customerMail), Message: parsed})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := st.CreateUser(ctx, store.User{Username: "agent", DisplayName: "Alex", Role: store.RoleAgent, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{path: path, st: st, passwords: credential.NewPasswords(st, v), svc: outbound.NewService(st, nil), agent: agent, workItem: res.WorkItemID}
}

func (f *fixture) addOutbound(t *testing.T, host string, port int, security, login, password string) {
	t.Helper()
	m, err := f.st.CreateMailbox(context.Background(), store.Mailbox{Name: "out", Direction: store.Outbound, Protocol: "smtp",
		Address: "support@example.test", Host: host, Port: port, Security: security, Login: login, MaxSizeMB: 5, IsDefault: true, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		if err := f.passwords.Set(context.Background(), m.ID, vault.NewSecret(password)); err != nil {
			t.Fatal(err)
		}
	}
}

func portOf(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func submission(t *testing.T) (*testenv.SMTPSink, int, *x509.CertPool) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	d.AddUser(t, "support@example.test", "support-pw")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return sink, portOf(t, d.SubmissionAddr), roots
}

func TestReplyIsSent(t *testing.T) {
	f := newFixture(t)
	sink, port, roots := submission(t)
	f.addOutbound(t, "localhost", port, "starttls", "support@example.test", "support-pw")
	ctx := context.Background()
	item, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "We are sending a new lid today."})
	if err != nil {
		t.Fatal(err)
	}
	if item.State != store.OutboxQueued || strings.Join(item.Recipients, ",") != "ana@example.org" {
		t.Fatalf("queued item: %+v", item)
	}
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, RootCAs: roots})
	if n, err := s.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("SendDue: %d %v", n, err)
	}
	got := sink.Wait(t, 1, time.Minute)[0]
	if !strings.Contains(string(got.Data), "Subject: Re: Broken lid") || !strings.Contains(string(got.Data), "In-Reply-To: <lid-1@example.org>") {
		t.Errorf("sent message lacks the reply headers:\n%s", got.Data)
	}
	after, _ := f.st.OutboxItem(ctx, item.ID)
	if after.State != store.OutboxSent || after.SentAt.IsZero() {
		t.Errorf("outbox row after sending: %+v", after)
	}
	// Nothing left to send.
	if n, _ := s.SendDue(ctx); n != 0 {
		t.Errorf("sent %d more", n)
	}
}

// TestServerDownIsRetried: a server that does not answer leaves the reply queued with the
// reason and a later attempt time; the attempt count grows on each try.
func TestServerDownIsRetried(t *testing.T) {
	f := newFixture(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := portOf(t, ln.Addr().String())
	ln.Close()
	f.addOutbound(t, "127.0.0.1", port, "none", "", "")
	ctx := context.Background()
	item, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := now
	clock := func() time.Time { return now }
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, Now: clock})
	if _, err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := f.st.OutboxItem(ctx, item.ID)
	if got.State != store.OutboxQueued || got.Attempts != 1 || !got.NextAttemptAt.After(now) || !strings.Contains(got.LastError, "check the host and port") {
		t.Fatalf("after one failed attempt: state %s attempts %d next %v error %q", got.State, got.Attempts, got.NextAttemptAt, got.LastError)
	}
	// Not due yet: nothing is tried.
	if _, err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.st.OutboxItem(ctx, item.ID); again.Attempts != 1 {
		t.Fatalf("retried before it was due: %d attempts", again.Attempts)
	}
	now = got.NextAttemptAt.Add(time.Second)
	if _, err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := f.st.OutboxItem(ctx, item.ID)
	if second.Attempts != 2 || second.State != store.OutboxQueued {
		t.Fatalf("second attempt: state %s attempts %d", second.State, second.Attempts)
	}
	if d1, d2 := got.NextAttemptAt.Sub(first), second.NextAttemptAt.Sub(now); d2 <= d1 {
		t.Errorf("backoff did not grow: first wait %v, second wait %v", d1, d2)
	}
}

// TestRefusedLoginFailsForGood: wrong credentials are not retried forever; the reply is
// failed with the advice the agent and the supervisor see.
func TestRefusedLoginFailsForGood(t *testing.T) {
	f := newFixture(t)
	sink, port, roots := submission(t)
	f.addOutbound(t, "localhost", port, "starttls", "support@example.test", "wrong-pw")
	ctx := context.Background()
	item, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, RootCAs: roots})
	if _, err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := f.st.OutboxItem(ctx, item.ID)
	if got.State != store.OutboxFailed || !strings.Contains(got.LastError, "check the login name and password") {
		t.Fatalf("after a refused login: state %s error %q", got.State, got.LastError)
	}
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages went out with a refused login", n)
	}
}

func TestReplyRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "  \n "}); !errors.Is(err, outbound.ErrEmptyReply) {
		t.Errorf("empty reply: %v", err)
	}
	if _, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hello"}); !errors.Is(err, outbound.ErrNoOutboundMailbox) {
		t.Errorf("no outbound mailbox: %v", err)
	}
	f.addOutbound(t, "127.0.0.1", 25, "none", "", "")
	if _, err := f.svc.Reply(ctx, f.agent, 9999, outbound.ReplyRequest{Text: "Hello"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown work item: %v", err)
	}
	if wi, _ := f.st.WorkItem(ctx, f.workItem); wi.State != store.StateQueued {
		t.Errorf("refused replies changed the work item to %s", wi.State)
	}
}

// TestFromChoices: agents pick among the From addresses of enabled outbound mailboxes; the
// address the customer wrote to is preselected; anything else is refused.
func TestFromChoices(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addOutbound(t, "127.0.0.1", 25, "none", "", "")
	out, _ := f.st.MailboxByName(ctx, "out")
	if _, err := f.st.AddFromAddress(ctx, store.FromAddress{MailboxID: out.ID, Address: "sales@example.test", DisplayName: "Example Sales"}); err != nil {
		t.Fatal(err)
	}
	billing, err := f.st.CreateMailbox(ctx, store.Mailbox{Name: "billing", Direction: store.Outbound, Protocol: "smtp",
		Address: "billing@example.test", Host: "127.0.0.1", Port: 25, Security: "none", MaxSizeMB: 5, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.CreateMailbox(ctx, store.Mailbox{Name: "old", Direction: store.Outbound, Protocol: "smtp",
		Address: "old@example.test", Host: "127.0.0.1", Port: 25, Security: "none", MaxSizeMB: 5}); err != nil {
		t.Fatal(err)
	}

	choices, err := f.svc.FromChoices(ctx, f.workItem)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]outbound.FromChoice{}
	var def string
	for _, c := range choices {
		got[c.Address] = c
		if c.Default {
			def = c.Address
		}
	}
	if len(got) != 3 || got["sales@example.test"].DisplayName != "Example Sales" || got["billing@example.test"].MailboxID != billing.ID {
		t.Errorf("choices %+v, want support, sales (Example Sales) and billing; not the disabled old@", choices)
	}
	if def != "support@example.test" {
		t.Errorf("default %q, want the address the customer wrote to (support@example.test)", def)
	}

	if _, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hi", From: "old@example.test"}); !errors.Is(err, outbound.ErrUnknownFrom) {
		t.Errorf("reply from a disabled mailbox's address: %v, want ErrUnknownFrom", err)
	}
	item, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: "Hi", From: "sales@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if item.MailboxID != out.ID || item.From != "sales@example.test" || !strings.Contains(string(item.Raw), "From: \"Example Sales\" <sales@example.test>") {
		t.Errorf("reply from sales: mailbox %d from %q\n%s", item.MailboxID, item.From, item.Raw)
	}
}
