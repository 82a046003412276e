package mstest

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/testenv"
)

// imapXOAUTH2 logs in to addr with SASL XOAUTH2 (SASL-IR, reference §2.3) and returns the
// tagged answer line; after a successful login it opens INBOX. A refusal makes Dovecot send a JSON challenge first; the client
// answers it with an empty line, as the protocol wants.
func imapXOAUTH2(t *testing.T, addr, user, token string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if greeting, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q: %v", greeting, err)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	if _, err := conn.Write([]byte("a AUTHENTICATE XOAUTH2 " + ir + "\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch {
		case strings.HasPrefix(line, "+"):
			_, _ = conn.Write([]byte("\r\n"))
		case strings.HasPrefix(line, "a OK"):
			// Logged in: the mailbox opens.
			if _, err := conn.Write([]byte("b SELECT INBOX\r\n")); err != nil {
				t.Fatal(err)
			}
			for {
				sel, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("SELECT: %v", err)
				}
				if strings.HasPrefix(sel, "b ") {
					if !strings.HasPrefix(sel, "b OK") {
						t.Errorf("SELECT INBOX after login: %q", sel)
					}
					return strings.TrimSpace(line)
				}
			}
		case strings.HasPrefix(line, "a "):
			return strings.TrimSpace(line)
		}
	}
}

// TestDovecotAcceptsExchangeTokens: real Dovecot, checking tokens at the stand-in's
// introspection endpoint, lets an app with IMAP.AccessAsApp and FullAccess into the shared
// mailbox with an Exchange Online token, and refuses a Graph token of the same app, an
// expired token and an app without FullAccess.
func TestDovecotAcceptsExchangeTokens(t *testing.T) {
	f := newFixture(t, Options{})
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: f.s.IntrospectURL()})

	exch := f.appToken(t, ExchangeAudience+"/.default")
	if got := imapXOAUTH2(t, d.IMAPAddr, testShared, exch); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("Exchange app token: %q\n%s", got, d.Log())
	}
	graph := f.appToken(t, GraphAudience+"/.default")
	if got := imapXOAUTH2(t, d.IMAPAddr, testShared, graph); !strings.HasPrefix(got, "a NO") {
		t.Errorf("Graph token: %q, want NO", got)
	}
	// Another mailbox than the one the app holds FullAccess on.
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, exch); !strings.HasPrefix(got, "a NO") {
		t.Errorf("token for a mailbox without FullAccess: %q, want NO", got)
	}
	// Delegated: the user's own mailbox.
	del := f.userToken(t, ScopeIMAP).AccessToken
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, del); !strings.HasPrefix(got, "a OK") {
		t.Errorf("delegated IMAP token: %q\n%s", got, d.Log())
	}
	// Dovecot names the protocol it checks (send_auth_headers), so turning SMTP AUTH off
	// for the mailbox leaves IMAP open, and turning IMAP off closes it.
	f.shared.Update(func(c *UserConfig) { c.SMTPAuthDisabled = true })
	if got := imapXOAUTH2(t, d.IMAPAddr, testShared, exch); !strings.HasPrefix(got, "a OK") {
		t.Errorf("IMAP with SMTP AUTH disabled for the mailbox: %q, want OK", got)
	}
	f.shared.Update(func(c *UserConfig) { c.SMTPAuthDisabled, c.IMAPDisabled = false, true })
	if got := imapXOAUTH2(t, d.IMAPAddr, testShared, exch); !strings.HasPrefix(got, "a NO") {
		t.Errorf("IMAP disabled for the mailbox: %q, want NO", got)
	}
	f.shared.Update(func(c *UserConfig) { c.IMAPDisabled = false })
	f.s.Advance(DefaultAccessTokenLifetime + time.Second)
	if got := imapXOAUTH2(t, d.IMAPAddr, testShared, exch); !strings.HasPrefix(got, "a NO") {
		t.Errorf("expired token: %q, want NO", got)
	}
}
