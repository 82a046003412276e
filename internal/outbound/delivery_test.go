package outbound_test

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// peer is a real SMTP server (go-smtp's server side) on 127.0.0.1 that refuses chosen
// recipients, records accepted messages and counts connections.
type peer struct {
	Addr string
	srv  *gosmtp.Server
	done chan struct{}

	mu       sync.Mutex
	refuse   map[string]*gosmtp.SMTPError
	received [][]string // recipients of each accepted message
	conns    int
}

// startPeer listens on addr ("127.0.0.1:0" for any port).
func startPeer(t *testing.T, addr string) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{Addr: ln.Addr().String(), refuse: map[string]*gosmtp.SMTPError{}, done: make(chan struct{})}
	p.srv = gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		return &peerSession{p: p}, nil
	}))
	p.srv.Domain = "peer.example.test"
	p.srv.ReadTimeout, p.srv.WriteTimeout = time.Minute, time.Minute
	p.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = p.srv.Serve(ln); close(p.done) }()
	t.Cleanup(p.Stop)
	return p
}

// Stop closes the listener and every connection.
func (p *peer) Stop() {
	p.srv.Close()
	<-p.done
}

func (p *peer) Refuse(rcpt string, code int, enhanced gosmtp.EnhancedCode, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse[rcpt] = &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

func (p *peer) Received() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

func (p *peer) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

type peerSession struct {
	p     *peer
	rcpts []string
}

func (s *peerSession) Mail(string, *gosmtp.MailOptions) error { return nil }

func (s *peerSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if err := s.p.refuse[to]; err != nil {
		return err
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *peerSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.received = append(s.p.received, s.rcpts)
	return nil
}

func (s *peerSession) Reset()        { s.rcpts = nil }
func (s *peerSession) Logout() error { return nil }

// groupReply records a reply to the fixture's work item addressed to several people
// (ana, bob and carol when none are given), as an agent's reply-all would be.
func (f *fixture) groupReply(t *testing.T, rcpts ...string) store.OutboxItem {
	t.Helper()
	ctx := context.Background()
	out, err := f.st.MailboxByName(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	if len(rcpts) == 0 {
		rcpts = []string{"ana@example.org", "bob@example.org", "carol@example.org"}
	}
	var to []mail.Address
	for _, r := range rcpts {
		to = append(to, mail.Address{Address: r})
	}
	raw, parsed, err := message.Compose(message.Draft{From: mail.Address{Address: "support@example.test"}, To: to,
		Subject: "Re: Broken lid", Text: "It ships today.", Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	parsed.MailboxID, parsed.Direction = out.ID, store.Outbound
	item, err := f.st.CreateReply(ctx, store.ReplyInput{WorkItemID: f.workItem, UserID: f.agent.ID, Message: parsed, Raw: raw,
		From: "support@example.test", Recipients: rcpts, NewState: store.StateDone})
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// passwordsFor reads the passwords of st with the fixture's vault key.
func passwordsFor(t *testing.T, st store.Store) *credential.Passwords {
	v, err := vault.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return credential.NewPasswords(st, v)
}

func (f *fixture) reply(t *testing.T, workItem int64) store.OutboxItem {
	t.Helper()
	item, err := f.svc.Reply(context.Background(), f.agent, workItem, outbound.ReplyRequest{Text: "It ships today."})
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// TestSomeRecipientsRefused: the reply reaches the accepted recipients and is never sent
// to them again; the refused one gets a failed row of its own with the server's words.
func TestSomeRecipientsRefused(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, "127.0.0.1:0")
	p.Refuse("bob@example.org", 550, gosmtp.EnhancedCode{5, 1, 1}, "no such user")
	f.addOutbound(t, "127.0.0.1", portOf(t, p.Addr), "none", "", "")
	item := f.groupReply(t)
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords})
	defer s.Close()
	ctx := context.Background()
	if n, err := s.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("SendDue: %d %v", n, err)
	}
	rows, err := f.st.OutboxForWorkItem(ctx, f.workItem)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != item.ID || rows[0].State != store.OutboxSent ||
		strings.Join(rows[0].Recipients, ",") != "ana@example.org,carol@example.org" ||
		rows[1].State != store.OutboxFailed || strings.Join(rows[1].Recipients, ",") != "bob@example.org" ||
		rows[1].LastError != "bob@example.org: 550 5.1.1 no such user" {
		t.Errorf("outbox rows of the work item:\n%s", describeRows(rows))
	}
	if r := p.Received(); len(r) != 1 || strings.Join(r[0], ",") != "ana@example.org,carol@example.org" {
		t.Errorf("peer received %v", r)
	}
	if n, _ := s.SendDue(ctx); n != 0 || len(p.Received()) != 1 {
		t.Errorf("sent again: %d", n)
	}
}

// TestEveryRecipientRefused: all 5xx fails the reply with the server's words; a 4xx keeps
// it queued for a retry.
func TestEveryRecipientRefused(t *testing.T) {
	for _, tt := range []struct {
		name  string
		code  int
		enh   gosmtp.EnhancedCode
		state string
		text  string
	}{
		{"5xx", 550, gosmtp.EnhancedCode{5, 7, 1}, store.OutboxFailed, "ana@example.org: 550 5.7.1 relaying denied"},
		{"4xx", 450, gosmtp.EnhancedCode{4, 2, 1}, store.OutboxQueued, "ana@example.org: 450 4.2.1 relaying denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := startPeer(t, "127.0.0.1:0")
			p.Refuse("ana@example.org", tt.code, tt.enh, "relaying denied")
			f.addOutbound(t, "127.0.0.1", portOf(t, p.Addr), "none", "", "")
			item := f.reply(t, f.workItem)
			s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords})
			defer s.Close()
			if _, err := s.SendDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, _ := f.st.OutboxItem(context.Background(), item.ID)
			if got.State != tt.state || got.Attempts != 1 || !strings.Contains(got.LastError, tt.text) {
				t.Errorf("state %s attempts %d error %q, want %s with %q", got.State, got.Attempts, got.LastError, tt.state, tt.text)
			}
		})
	}
}

// TestDeferredReplySentAfterRestart: a reply the server deferred (4xx) is kept in the
// outbox; after postroom restarts (store reopened, a new Sender) and the server is back,
// it is sent, once.
func TestDeferredReplySentAfterRestart(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, "127.0.0.1:0")
	p.Refuse("ana@example.org", 451, gosmtp.EnhancedCode{4, 3, 2}, "system not accepting network messages")
	f.addOutbound(t, "127.0.0.1", portOf(t, p.Addr), "none", "", "")
	item := f.reply(t, f.workItem)
	ctx := context.Background()
	first := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords})
	if _, err := first.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	deferred, _ := f.st.OutboxItem(ctx, item.ID)
	if deferred.State != store.OutboxQueued || deferred.Attempts != 1 || !strings.Contains(deferred.LastError, "ana@example.org: 451 4.3.2 system not accepting network messages") {
		t.Fatalf("after the 4xx: state %s attempts %d error %q", deferred.State, deferred.Attempts, deferred.LastError)
	}
	// postroom stops; the server goes down and comes back on the same address.
	first.Close()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	back := startPeer(t, p.Addr)

	st, err := sqlite.Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	later := func() time.Time { return deferred.NextAttemptAt.Add(time.Second) }
	second := outbound.NewSender(outbound.SenderOptions{Store: st, Passwords: passwordsFor(t, st), Now: later})
	defer second.Close()
	if n, err := second.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("after the restart: sent %d, %v", n, err)
	}
	got, _ := st.OutboxItem(ctx, item.ID)
	if got.State != store.OutboxSent || got.Attempts != 2 {
		t.Errorf("after the restart: state %s attempts %d", got.State, got.Attempts)
	}
	if r := back.Received(); len(r) != 1 || strings.Join(r[0], ",") != "ana@example.org" {
		t.Errorf("the server received %v", r)
	}
}

// TestSenderKeepsConnection: replies through one mailbox share one SMTP connection; a
// change of the mailbox's settings makes the Sender connect anew, to the new server.
func TestSenderKeepsConnection(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, "127.0.0.1:0")
	f.addOutbound(t, "127.0.0.1", portOf(t, p.Addr), "none", "", "")
	ctx := context.Background()
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords})
	defer s.Close()
	for range 3 {
		f.reply(t, f.workItem)
		if n, err := s.SendDue(ctx); err != nil || n != 1 {
			t.Fatalf("SendDue: %d %v", n, err)
		}
	}
	if n, m := p.Connections(), len(p.Received()); n != 1 || m != 3 {
		t.Errorf("%d connections for %d replies, want 1 for 3", n, m)
	}

	moved := startPeer(t, "127.0.0.1:0")
	out, err := f.st.MailboxByName(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	out.Port = portOf(t, moved.Addr)
	if err := f.st.UpdateMailbox(ctx, out); err != nil {
		t.Fatal(err)
	}
	f.reply(t, f.workItem)
	if n, err := s.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("SendDue after the change: %d %v", n, err)
	}
	if n, m := moved.Connections(), len(moved.Received()); n != 1 || m != 1 {
		t.Errorf("new server: %d connections, %d messages; want 1 and 1", n, m)
	}
	if m := len(p.Received()); m != 3 {
		t.Errorf("the old server received %d messages, want still 3", m)
	}
}

// TestOAuthMailbox: a mailbox whose Tokens source hands out OAuth tokens signs in with
// XOAUTH2 at Dovecot submission (checked against an introspection endpoint) and sends.
func TestOAuthMailbox(t *testing.T) {
	f := newFixture(t)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"active": false}`
		if r.PostFormValue("token") == "token-for-support" {
			body = `{"active": true, "email": "support@example.test"}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	defer endpoint.Close()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: endpoint.URL + "/introspect", SubmissionRelay: sink.Addr})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	f.addOutbound(t, "localhost", portOf(t, d.SubmissionAddr), "starttls", "support@example.test", "")
	item := f.reply(t, f.workItem)

	tokens := func(m store.Mailbox) connector.TokenFunc {
		return func(context.Context, bool) (string, error) { return "token-for-" + strings.Split(m.Login, "@")[0], nil }
	}
	s := outbound.NewSender(outbound.SenderOptions{Store: f.st, Passwords: f.passwords, Tokens: tokens, RootCAs: roots})
	defer s.Close()
	if n, err := s.SendDue(context.Background()); err != nil || n != 1 {
		got, _ := f.st.OutboxItem(context.Background(), item.ID)
		t.Fatalf("SendDue: %d %v; row error %q", n, err, got.LastError)
	}
	if got := sink.Wait(t, 1, time.Minute); len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "ana@example.org" {
		t.Errorf("relayed %+v", got)
	}
	d.WaitLog(t, "method=XOAUTH2") // Dovecot logged the login with this mechanism
}
