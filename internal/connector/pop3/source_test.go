package pop3_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const user, password = "alice@example.test", "alice-pw"

// hangGuard fails a test whose call does not return: far above any healthy run, below
// DefaultReadTimeout so that a cancellation test cannot pass by timing out instead.
const hangGuard = 20 * time.Second

func setup(t *testing.T) (*testenv.Dovecot, pop3.Config) {
	t.Helper()
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, user, password)
	return d, tlsConfig(t, d)
}

// tlsConfig reaches d over implicit TLS (POP3S), trusting its certificate.
func tlsConfig(t *testing.T, d *testenv.Dovecot) pop3.Config {
	t.Helper()
	host, port := hostPort(t, d.POP3SAddr)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return pop3.Config{Host: host, Port: port, Security: pop3.SecurityTLS, Login: user,
		Password: vault.NewSecret(password), RootCAs: roots}
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

func mail(i int) []byte {
	return fmt.Appendf(nil, "From: c%d@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n", i, i, i, i)
}

// dotMail has lines that start with "." (a lone "." too), which the server byte-stuffs.
func dotMail() []byte {
	return []byte("From: dots@example.org\r\nSubject: dots\r\nMessage-ID: <dots@example.org>\r\n\r\n" +
		".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n. space\r\n...\r\nend\r\n")
}

// bigMail is about size bytes of 76-character lines, every tenth starting with ".".
func bigMail(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: big@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		line := fmt.Sprintf("%08d ", i) + strings.Repeat("x", 67)
		if i%10 == 0 {
			line = "." + line[1:]
		}
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}

func dial(t *testing.T, cfg pop3.Config) *pop3.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := pop3.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func subjects(t *testing.T, d *testenv.Dovecot) []string {
	t.Helper()
	var out []string
	for _, m := range d.Messages(t, user, "INBOX") {
		out = append(out, m.Subject)
	}
	return out
}

// TestSTLSLoginAndList: STLS on the plain port, then login and STAT, LIST, UIDL.
func TestSTLSLoginAndList(t *testing.T) {
	d, cfg := setup(t)
	d.AppendMany(t, user, "INBOX", [][]byte{mail(0), mail(1)})
	cfg.Security = pop3.SecurityStartTLS
	cfg.Host, cfg.Port = hostPort(t, d.POP3Addr)
	ctx := context.Background()

	c, err := pop3.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close()
	if err := c.Greet(ctx); err != nil {
		t.Fatalf("greet: %v", err)
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		t.Fatal("no TLS after STLS")
	}
	if c.Capabilities().Has("STLS") {
		t.Error("capabilities after STLS still offer STLS: CAPA was not asked again")
	}
	if err := c.Login(ctx, user, vault.NewSecret(password)); err != nil {
		t.Fatalf("login: %v", err)
	}
	n, size, err := c.Stat(ctx)
	if err != nil || n != 2 || size != int64(len(mail(0))+len(mail(1))) {
		t.Fatalf("stat = %d messages, %d bytes, %v", n, size, err)
	}
	msgs, err := c.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Number != 1 || msgs[1].Number != 2 || msgs[0].UIDL == "" || msgs[0].UIDL == msgs[1].UIDL ||
		msgs[0].Size != int64(len(mail(0))) {
		t.Fatalf("messages = %+v", msgs)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestImplicitTLS: POP3S with the harness certificate as the only trusted root.
func TestImplicitTLS(t *testing.T) {
	d, cfg := setup(t)
	d.Append(t, user, "INBOX", mail(0))
	ctx := context.Background()
	c, err := pop3.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("no TLS on POP3S")
	}
	if err := c.Login(ctx, user, vault.NewSecret(password)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat(ctx); err != nil || n != 1 {
		t.Fatalf("stat = %d, %v", n, err)
	}
}

// TestLongPasswordWithoutInitialResponse: an AUTH line over 255 octets must not carry the
// initial response (RFC 5034 §4): it goes after the server's empty challenge.
func TestLongPasswordWithoutInitialResponse(t *testing.T) {
	d, cfg := setup(t)
	long := strings.Repeat("p4ss-", 60)
	d.AddUser(t, "bob@example.test", long)
	cfg.Login, cfg.Password = "bob@example.test", vault.NewSecret(long)
	dial(t, cfg)
}

// TestNextReturnsExactBytes: 30 messages, one with dot-stuffed lines and one of 3 MB, come
// back byte for byte, in order, with LIST's size; the same ones come back until acked.
func TestNextReturnsExactBytes(t *testing.T) {
	d, cfg := setup(t)
	var sent [][]byte
	for i := range 28 {
		sent = append(sent, mail(i))
	}
	sent = append(sent, dotMail(), bigMail(3<<20))
	d.AppendMany(t, user, "INBOX", sent)
	cfg.AfterAction = pop3.AfterKeep
	s := dial(t, cfg)
	ctx := context.Background()

	first, err := s.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 10 || len(again) != 10 || first[0].SourceID != again[0].SourceID || first[9].SourceID != again[9].SourceID {
		t.Fatalf("Next without Ack: %d then %d messages, want the same 10 twice", len(first), len(again))
	}
	var got []connector.Incoming
	for batch := first; len(batch) > 0; {
		got = append(got, batch...)
		var ids []string
		for _, in := range batch {
			ids = append(ids, in.SourceID)
		}
		if err := s.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if batch, err = s.Next(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("got %d messages, want %d", len(got), len(sent))
	}
	ids := map[string]bool{}
	for i, in := range got {
		if !bytes.Equal(in.Raw, sent[i]) {
			t.Errorf("message %d: %d bytes differ from the %d appended (first 200: %q)", i, len(in.Raw), len(sent[i]), in.Raw[:min(200, len(in.Raw))])
		}
		if in.Size != int64(len(sent[i])) {
			t.Errorf("message %d: Size %d, want %d", i, in.Size, len(sent[i]))
		}
		if uidl, ok := pop3.ParseSourceID(in.SourceID); !ok || pop3.SourceID(uidl) != in.SourceID || ids[in.SourceID] {
			t.Errorf("message %d: SourceID %q is not a unique pop3:<uidl>", i, in.SourceID)
		}
		ids[in.SourceID] = true
		if in.Cursor != "" || in.OverSize {
			t.Errorf("message %d: Cursor %q OverSize %v", i, in.Cursor, in.OverSize)
		}
	}
}

// TestAckDeleteRemovesAtServer: with AfterDelete, acked messages are gone from the server
// and the others stay; the Source logs in again by itself after the QUIT.
func TestAckDeleteRemovesAtServer(t *testing.T) {
	d, cfg := setup(t)
	d.AppendMany(t, user, "INBOX", [][]byte{mail(0), mail(1), mail(2)})
	s := dial(t, cfg) // AfterAction "" is delete
	ctx := context.Background()
	got, err := s.Next(ctx, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("next: %d, %v", len(got), err)
	}
	if subj := subjects(t, d); len(subj) != 3 {
		t.Fatalf("before ack the server holds %v, want all 3", subj)
	}
	if err := s.Ack(ctx, []string{got[0].SourceID, got[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	if subj := subjects(t, d); !slices.Equal(subj, []string{"message 2"}) {
		t.Fatalf("after ack of 0 and 1 the server holds %v", subj)
	}
	rest, err := s.Next(ctx, 10)
	if err != nil || len(rest) != 1 || !bytes.Equal(rest[0].Raw, mail(2)) {
		t.Fatalf("next after ack: %d messages, %v", len(rest), err)
	}
	// An id already deleted (a second ack after a crash) is ignored.
	if err := s.Ack(ctx, []string{got[0].SourceID, rest[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	if subj := subjects(t, d); len(subj) != 0 {
		t.Fatalf("after acking all the server holds %v", subj)
	}
	if more, err := s.Next(ctx, 10); err != nil || len(more) != 0 {
		t.Fatalf("next on an empty maildrop: %d, %v", len(more), err)
	}
}

// TestAckKeepLeavesAndSkipAvoidsRetr: with AfterKeep, acked messages stay on the server
// and are not returned again; new mail shows in the next session; a Source whose Skip
// knows the stored ones does not download them (Dovecot marks only retrieved messages
// \Seen at QUIT).
func TestAckKeepLeavesAndSkipAvoidsRetr(t *testing.T) {
	d, cfg := setup(t)
	d.AppendMany(t, user, "INBOX", [][]byte{mail(0), mail(1)})
	cfg.AfterAction = pop3.AfterKeep
	s := dial(t, cfg)
	ctx := context.Background()
	got, err := s.Next(ctx, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("next: %d, %v", len(got), err)
	}
	stored := map[string]bool{got[0].SourceID: true, got[1].SourceID: true}
	if err := s.Ack(ctx, []string{got[0].SourceID, got[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	if more, err := s.Next(ctx, 10); err != nil || len(more) != 0 {
		t.Fatalf("next after ack: %d, %v", len(more), err)
	}
	if subj := subjects(t, d); len(subj) != 2 {
		t.Fatalf("keep: the server holds %v, want both", subj)
	}
	d.Append(t, user, "INBOX", mail(2))
	more, err := s.Next(ctx, 10)
	if err != nil || len(more) != 1 || !bytes.Equal(more[0].Raw, mail(2)) {
		t.Fatalf("next after new mail: %d, %v", len(more), err)
	}
	stored[more[0].SourceID] = true
	if err := s.Ack(ctx, []string{more[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reset \Seen so that a retrieval shows, then read with a Skip that knows 0 and 1.
	d.AppendMany(t, user, "INBOX", [][]byte{mail(3)})
	var asked []string
	var mu sync.Mutex
	cfg.Skip = func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, id)
		return stored[id] && id != more[0].SourceID
	}
	seenBefore := seen(t, d)
	s2 := dial(t, cfg)
	got2, err := s2.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got2) != 2 || !bytes.Equal(got2[0].Raw, mail(2)) || !bytes.Equal(got2[1].Raw, mail(3)) {
		t.Fatalf("with Skip: %d messages", len(got2))
	}
	if len(asked) != 4 {
		t.Errorf("Skip was asked about %v, want all 4 messages", asked)
	}
	if err := s2.Ack(ctx, []string{got2[0].SourceID, got2[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	after := seen(t, d)
	if !after["message 3"] {
		t.Fatalf("Dovecot did not mark the retrieved message \\Seen (%v): this test cannot tell a skip from a RETR", after)
	}
	for _, subj := range []string{"message 0", "message 1"} {
		if after[subj] != seenBefore[subj] {
			t.Errorf("%s changed \\Seen from %v to %v: it was downloaded although Skip said stored", subj, seenBefore[subj], after[subj])
		}
	}
}

// seen maps subject to whether the message is \Seen at the server.
func seen(t *testing.T, d *testenv.Dovecot) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range d.Messages(t, user, "INBOX") {
		out[m.Subject] = slices.Contains(m.Flags, `\Seen`)
	}
	return out
}

// TestOverSizeHeaderOnlyAndKept: a message over MaxSize comes back as its header with
// OverSize set; neither SetAside nor Ack deletes it.
func TestOverSizeHeaderOnlyAndKept(t *testing.T) {
	d, cfg := setup(t)
	big := bigMail(3 << 20)
	d.AppendMany(t, user, "INBOX", [][]byte{big, mail(1)})
	cfg.MaxSize = 1 << 20
	s := dial(t, cfg)
	ctx := context.Background()
	got, err := s.Next(ctx, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("next: %d, %v", len(got), err)
	}
	header := big[:bytes.Index(big, []byte("\r\n\r\n"))+4]
	if !got[0].OverSize || got[0].Size != int64(len(big)) || !bytes.Equal(got[0].Raw, header) {
		t.Fatalf("over-size message: OverSize %v, Size %d, Raw %q", got[0].OverSize, got[0].Size, got[0].Raw[:min(300, len(got[0].Raw))])
	}
	if got[1].OverSize || !bytes.Equal(got[1].Raw, mail(1)) {
		t.Fatalf("small message: OverSize %v, %d bytes", got[1].OverSize, len(got[1].Raw))
	}
	if err := s.SetAside(ctx, []string{got[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	// Even an Ack (a caller's mistake) must not delete the original.
	if err := s.Ack(ctx, []string{got[0].SourceID, got[1].SourceID}); err != nil {
		t.Fatal(err)
	}
	if subj := subjects(t, d); !slices.Equal(subj, []string{"big"}) {
		t.Fatalf("the server holds %v, want only the over-size message", subj)
	}
	if more, err := s.Next(ctx, 10); err != nil || len(more) != 0 {
		t.Fatalf("next after set aside: %d, %v", len(more), err)
	}
}

// TestDialErrorsCarryAdvice: what an administrator reads for each mistake.
func TestDialErrorsCarryAdvice(t *testing.T) {
	d, cfg := setup(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	plainHost, plainPort := hostPort(t, d.POP3Addr)
	imapHost, imapPort := hostPort(t, d.IMAPAddr)

	tests := []struct {
		name   string
		edit   func(c *pop3.Config)
		kind   connector.Kind
		advice string
	}{
		{"wrong password", func(c *pop3.Config) { c.Password = vault.NewSecret("nope") }, connector.KindAuth, `the server refused the login "alice@example.test": check the login name and password`},
		{"port closed", func(c *pop3.Config) { c.Port = closedPort }, connector.KindNetwork, "check the host and port"},
		{"untrusted certificate", func(c *pop3.Config) { c.RootCAs = x509.NewCertPool() }, connector.KindTLS, "not signed by a trusted authority"},
		{"tls on the plain port", func(c *pop3.Config) { c.Host, c.Port = plainHost, plainPort }, connector.KindTLS, "does not speak TLS on this port: use security starttls or none here, or the server's POP3 TLS port (995)"},
		{"starttls on the TLS port", func(c *pop3.Config) { c.Security = pop3.SecurityStartTLS }, connector.KindNetwork, "a TLS port used without TLS"},
		{"imap port", func(c *pop3.Config) { c.Security, c.Host, c.Port = pop3.SecurityNone, imapHost, imapPort }, connector.KindConfig, "does not speak POP3: check the port"},
		{"bad after action", func(c *pop3.Config) { c.AfterAction = "move" }, connector.KindConfig, "delete or keep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.edit(&c)
			// The TLS port waits for a ClientHello and never greets a plain client: a short
			// deadline stands in for the 20 s greeting timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s, err := pop3.Dial(ctx, c)
			if err == nil {
				s.Close()
				t.Fatal("dial succeeded")
			}
			t.Logf("%v", err)
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
			if strings.Contains(err.Error(), "nope") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// stallProxy forwards one connection to target and stops passing the server's bytes on
// once after bytes have gone through: a server that hangs in the middle of a message.
// stalled is closed when that happens.
type stallProxy struct {
	addr    string
	stalled chan struct{}
}

func startStallProxy(t *testing.T, target string, after int64) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: ln.Addr().String(), stalled: make(chan struct{})}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		client, err := ln.Accept()
		if err != nil {
			return
		}
		defer client.Close()
		server, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer server.Close()
		go io.Copy(server, client)
		io.CopyN(client, server, after)
		close(p.stalled)
		<-done
	}()
	return p
}

// TestCancelDuringRetr: a download that hangs ends promptly when ctx is cancelled, with
// the cancellation as the cause.
func TestCancelDuringRetr(t *testing.T) {
	d, cfg := setup(t)
	d.Append(t, user, "INBOX", bigMail(3<<20))
	proxy := startStallProxy(t, d.POP3Addr, 1<<20)
	cfg.Security = pop3.SecurityNone
	cfg.Host, cfg.Port = hostPort(t, proxy.addr)
	s := dial(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-proxy.stalled
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx, 10)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next returned %v, want the cancellation", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Next did not return after ctx was cancelled during RETR")
	}
}

// TestInUse: Dovecot answers "-ERR [IN-USE]" (RFC 2449 §8.1.1) when the user already has
// mail_max_userip_connections (100 in the harness) sessions from this address.
func TestInUse(t *testing.T) {
	d, cfg := setup(t)
	// Plain connections: a TLS session keeps a pop3-login process busy, and those are
	// limited to 100 too.
	cfg.Security = pop3.SecurityNone
	cfg.Host, cfg.Port = hostPort(t, d.POP3Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const holders, workers = 100, 10
	var (
		mu      sync.Mutex
		clients []*pop3.Client
		errs    []error
		wg      sync.WaitGroup
	)
	next := make(chan struct{}, holders)
	for range holders {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for range next {
				c, err := pop3.Open(ctx, cfg)
				if err == nil {
					err = c.Login(ctx, cfg.Login, cfg.Password)
				}
				mu.Lock()
				if c != nil {
					clients = append(clients, c)
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if len(errs) > 0 {
		t.Fatalf("%d of %d holding sessions failed, first: %v", len(errs), holders, errs[0])
	}

	// Each session's pop3 process tells Dovecot's anvil of itself after the login has been
	// answered, so on a busy machine the count can lag: a dial that still gets in is closed
	// and tried again, for up to 10 seconds.
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var s *pop3.Source
		s, err = pop3.Dial(ctx, cfg)
		if err != nil {
			break
		}
		s.Close()
		if time.Now().After(deadline) {
			t.Fatal("dial succeeded past the connection limit")
		}
	}
	var ce *connector.Error
	var pe *pop3.Error
	if !errors.As(err, &ce) || !errors.As(err, &pe) {
		t.Fatalf("error %T %v: want a *connector.Error around a *pop3.Error", err, err)
	}
	if pe.Code != pop3.CodeInUse || ce.Kind != connector.KindServer || !strings.Contains(ce.Advice, "another client holds the mailbox") {
		t.Fatalf("code %q kind %q advice %q", pe.Code, ce.Kind, ce.Advice)
	}
}
