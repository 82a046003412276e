package imap_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const user, password = "alice@example.test", "alice-pw"

func setup(t *testing.T) (*testenv.Dovecot, imap.Config) {
	t.Helper()
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, user, password)
	host, p, _ := net.SplitHostPort(d.IMAPSAddr)
	port, _ := strconv.Atoi(p)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return d, imap.Config{Host: host, Port: port, Security: imap.SecurityTLS, Login: user,
		Password: vault.NewSecret(password), RootCAs: roots}
}

func mail(i int) []byte {
	return fmt.Appendf(nil, "From: c%d@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n", i, i, i, i)
}

func dial(t *testing.T, cfg imap.Config) *imap.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := imap.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flagsOf(t *testing.T, d *testenv.Dovecot) map[string]string {
	out := map[string]string{}
	for _, m := range d.Messages(t, user, "INBOX") {
		out[m.Subject] = strings.Join(m.Flags, " ")
	}
	return out
}

// TestNextPeeksAckMarksSeen: Next fetches without setting \Seen; Ack sets it; the cursor
// resumes after the last message in a new session.
func TestNextPeeksAckMarksSeen(t *testing.T) {
	d, cfg := setup(t)
	for i := range 3 {
		d.Append(t, user, "INBOX", mail(i))
	}
	s := dial(t, cfg)
	ctx := context.Background()
	got, err := s.Next(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.Contains(string(got[0].Raw), "Subject: message 0") || !strings.Contains(string(got[1].Raw), "Subject: message 1") {
		t.Fatalf("first batch: %d messages %v", len(got), got)
	}
	for subj, flags := range flagsOf(t, d) {
		if strings.Contains(flags, `\Seen`) {
			t.Fatalf("%q is \\Seen after a fetch, before any ack", subj)
		}
	}
	if err := s.Ack(ctx, []string{got[0].SourceID, got[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	flags := flagsOf(t, d)
	if !strings.Contains(flags["message 0"], `\Seen`) || !strings.Contains(flags["message 1"], `\Seen`) || strings.Contains(flags["message 2"], `\Seen`) {
		t.Fatalf("after ack of 0 and 1: %v", flags)
	}

	// A new session from the cursor of message 1 sees only message 2.
	cfg.Cursor = got[1].Cursor
	s2 := dial(t, cfg)
	rest, err := s2.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || !strings.Contains(string(rest[0].Raw), "Subject: message 2") {
		t.Fatalf("after the cursor: %v", rest)
	}
	if more, _ := s2.Next(ctx, 10); len(more) != 0 {
		t.Fatalf("Next returned %d messages again", len(more))
	}
}

// TestWaitWakesOnNewMail: IDLE returns when a message arrives.
func TestWaitWakesOnNewMail(t *testing.T) {
	d, cfg := setup(t)
	d.Append(t, user, "INBOX", mail(0))
	s := dial(t, cfg)
	ctx := context.Background()
	if got, err := s.Next(ctx, 10); err != nil || len(got) != 1 {
		t.Fatalf("first: %v %v", got, err)
	}
	woke := make(chan error, 1)
	go func() { woke <- s.Wait(ctx, time.Minute) }()
	time.Sleep(300 * time.Millisecond)
	d.Append(t, user, "INBOX", mail(1))
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return after new mail arrived")
	}
	got, err := s.Next(ctx, 10)
	if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Raw), "message 1") {
		t.Fatalf("after wake: %v %v", got, err)
	}
}

// TestDialErrorsCarryAdvice: what an administrator reads for each mistake.
func TestDialErrorsCarryAdvice(t *testing.T) {
	d, cfg := setup(t)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	plainHost, plainPort, _ := net.SplitHostPort(d.IMAPAddr)
	pp, _ := strconv.Atoi(plainPort)

	tests := []struct {
		name   string
		edit   func(c *imap.Config)
		kind   connector.Kind
		advice string
	}{
		{"wrong password", func(c *imap.Config) { c.Password = vault.NewSecret("nope") }, connector.KindAuth, "check the login name and password"},
		{"missing folder", func(c *imap.Config) { c.Folder = "Nonexistent" }, connector.KindConfig, `folder "Nonexistent" cannot be opened`},
		{"port closed", func(c *imap.Config) { c.Port = closedPort }, connector.KindNetwork, "check the host and port"},
		{"untrusted certificate", func(c *imap.Config) { c.RootCAs = x509.NewCertPool() }, connector.KindTLS, "not signed by a trusted authority"},
		{"tls on a plain port", func(c *imap.Config) { c.Host, c.Port = plainHost, pp }, connector.KindTLS, "does not speak TLS on this port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.edit(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := imap.Dial(ctx, c)
			if err == nil {
				s.Close()
				t.Fatal("dial succeeded")
			}
			ce, ok := err.(*connector.Error)
			if !ok {
				t.Fatalf("error %T %v is not a *connector.Error", err, err)
			}
			if ce.Kind != tt.kind {
				t.Errorf("kind %q, want %q (%v)", ce.Kind, tt.kind, err)
			}
			if !strings.Contains(ce.Advice, tt.advice) {
				t.Errorf("advice %q, want it to contain %q", ce.Advice, tt.advice)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	v, u, ok := imap.ParseCursor(imap.FormatCursor(1795499821, 42))
	if !ok || v != 1795499821 || u != 42 {
		t.Fatalf("round trip: %d %d %v", v, u, ok)
	}
	for _, bad := range []string{"", "12", "a:b", "1:-2", "99999999999:1"} {
		if _, _, ok := imap.ParseCursor(bad); ok {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

// TestAfterActions: Ack moves (creating the folder) or deletes as configured; SetAside
// moves over-size messages to Oversize, unread.
func TestAfterActions(t *testing.T) {
	d, cfg := setup(t)
	for i := range 4 {
		d.Append(t, user, "INBOX", mail(i))
	}
	cfg.AfterAction, cfg.MoveFolder = store.AfterMove, "Done"
	s := dial(t, cfg)
	ctx := context.Background()
	got, err := s.Next(ctx, 10)
	if err != nil || len(got) != 4 {
		t.Fatalf("next: %d %v", len(got), err)
	}
	if err := s.Ack(ctx, []string{got[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAside(ctx, []string{got[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	done := d.Messages(t, user, "Done")
	over := d.Messages(t, user, imap.OversizeFolder)
	if len(done) != 1 || done[0].Subject != "message 0" || len(over) != 1 || over[0].Subject != "message 1" {
		t.Fatalf("Done %v, Oversize %v", done, over)
	}
	for _, f := range over[0].Flags {
		if f == `\Seen` {
			t.Error("a set-aside message was marked read; a person should find it unread")
		}
	}

	cfg.AfterAction = store.AfterDelete
	cfg.Cursor = got[1].Cursor
	s2 := dial(t, cfg)
	rest, err := s2.Next(ctx, 10)
	if err != nil || len(rest) != 2 {
		t.Fatalf("next after cursor: %d %v", len(rest), err)
	}
	if err := s2.Ack(ctx, []string{rest[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	inbox := d.Messages(t, user, "INBOX")
	if len(inbox) != 1 || inbox[0].Subject != "message 3" {
		t.Fatalf("INBOX after deleting message 2: %v", inbox)
	}
}

// TestOverSizeFetchesHeaderOnly: a message over MaxSize comes back as its header.
func TestOverSizeFetchesHeaderOnly(t *testing.T) {
	d, cfg := setup(t)
	big := append(mail(7), []byte(strings.Repeat("x", 4000)+"\r\n")...)
	d.Append(t, user, "INBOX", big)
	d.Append(t, user, "INBOX", mail(8))
	cfg.MaxSize = 1000
	got, err := dial(t, cfg).Next(context.Background(), 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("next: %d %v", len(got), err)
	}
	if !got[0].OverSize || got[0].Size < 4000 || strings.Contains(string(got[0].Raw), "xxxx") || !strings.Contains(string(got[0].Raw), "Subject: message 7") {
		t.Errorf("over-size message: OverSize %t size %d raw %q", got[0].OverSize, got[0].Size, got[0].Raw)
	}
	if got[1].OverSize || !strings.Contains(string(got[1].Raw), "body 8") {
		t.Errorf("small message: %+v", got[1])
	}
}
