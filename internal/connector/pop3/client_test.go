package pop3

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// recorder is a TCP proxy in front of a real server that keeps what the client sent.
type recorder struct {
	addr string
	mu   sync.Mutex
	sent bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent.Write(p)
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Split(r.sent.String(), "\r\n")
}

func startRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
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
		go io.Copy(client, server)
		io.Copy(io.MultiWriter(server, rec), client)
	})
	return rec
}

// plainClient logs in to Dovecot's plain POP3 port through a recorder.
func plainClient(t *testing.T, d *testenv.Dovecot) (*Client, *recorder) {
	t.Helper()
	rec := startRecorder(t, d.POP3Addr)
	host, p, _ := net.SplitHostPort(rec.addr)
	port, _ := strconv.Atoi(p)
	c, err := Open(context.Background(), Config{Host: host, Port: port, Security: SecurityNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rec
}

// TestAuthInitialResponseRule: AUTH PLAIN carries the initial response on its line when
// the line fits in 255 octets, and sends it after the empty challenge otherwise
// (RFC 5034 §4); both log in at real Dovecot.
func TestAuthInitialResponseRule(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	long := strings.Repeat("p4ss-", 60)
	d.AddUser(t, "short@example.test", "pw")
	d.AddUser(t, "long@example.test", long)
	ctx := context.Background()

	c, rec := plainClient(t, d)
	if err := c.Login(ctx, "short@example.test", vault.NewSecret("pw")); err != nil {
		t.Fatal(err)
	}
	if l := rec.lines(); !strings.HasPrefix(l[1], "AUTH PLAIN ") || len(l[1])+2 > maxCommandLength {
		t.Errorf("short credentials: sent %q, want the initial response on the AUTH line", l)
	}

	c, rec = plainClient(t, d)
	if err := c.Login(ctx, "long@example.test", vault.NewSecret(long)); err != nil {
		t.Fatal(err)
	}
	if l := rec.lines(); l[1] != "AUTH PLAIN" || len(l[2]) < maxCommandLength {
		t.Errorf("long credentials: sent %q, want AUTH PLAIN alone, then the response", l)
	}
}

// TestUserPassWithoutSASL: a server that announces no SASL gets USER and PASS (RFC 1939
// §7); a password with spaces passes whole.
func TestUserPassWithoutSASL(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "carol@example.test", "a pass phrase")
	d.Append(t, "carol@example.test", "INBOX", []byte("Subject: x\r\n\r\ny\r\n"))
	ctx := context.Background()
	c, rec := plainClient(t, d)
	c.caps = Capabilities{}
	if err := c.Login(ctx, "carol@example.test", vault.NewSecret("a pass phrase")); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat(ctx); err != nil || n != 1 {
		t.Fatalf("stat after USER/PASS: %d %v", n, err)
	}
	if l := rec.lines(); l[1] != "USER carol@example.test" || l[2] != "PASS a pass phrase" {
		t.Errorf("sent %q, want USER then PASS", l)
	}
	// A wrong one is refused with the login named in the advice.
	c2, _ := plainClient(t, d)
	c2.caps = Capabilities{}
	err := c2.Login(ctx, "carol@example.test", vault.NewSecret("wrong"))
	if err == nil || !strings.Contains(err.Error(), `the server refused the login "carol@example.test": check the login name and password`) {
		t.Fatalf("wrong password: %v", err)
	}
}
