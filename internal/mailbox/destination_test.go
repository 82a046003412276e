package mailbox_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// recorder is a server on a new loopback port that plays a mail server far enough for a
// client to log in (IMAP: any command is OK, AUTHENTICATE gets a continuation) and keeps
// every byte it received.
type recorder struct {
	port int
	mu   sync.Mutex
	got  []byte
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer c.Close()
	_, _ = io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
	br := bufio.NewReader(c)
	pending := ""
	for {
		line, err := br.ReadString('\n')
		r.mu.Lock()
		r.got = append(r.got, line...)
		r.mu.Unlock()
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		switch {
		case pending != "":
			_, _ = io.WriteString(c, pending+" OK done\r\n")
			pending = ""
		case len(fields) >= 2 && strings.EqualFold(fields[1], "AUTHENTICATE"):
			pending = fields[0]
			_, _ = io.WriteString(c, "+ \r\n")
		case len(fields) >= 2 && strings.EqualFold(fields[1], "CAPABILITY"):
			_, _ = io.WriteString(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"+fields[0]+" OK done\r\n")
		case len(fields) >= 1:
			_, _ = io.WriteString(c, fields[0]+" OK done\r\n")
		}
	}
}

// leaked reports whether secret arrived, as it is, URL-encoded or inside base64.
func leaked(got []byte, secret string) bool {
	s := string(got)
	if strings.Contains(s, secret) || strings.Contains(s, strings.ReplaceAll(secret, "~", "%7E")) {
		return true
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\r' || r == '\n' || r == '"' }) {
		if b, err := base64.StdEncoding.DecodeString(w); err == nil && strings.Contains(string(b), secret) {
			return true
		}
	}
	return false
}

func (r *recorder) leaked(secret string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return leaked(r.got, secret)
}

// TestSecretStaysWithItsDestination: a stored password or client secret is only sent where
// it was entered for. An admin who points the mailbox elsewhere (host, port, security,
// token URL, tenant) must enter the secret again: Test and Save refuse with a field error
// on the secret, and the new destination receives nothing.
func TestSecretStaysWithItsDestination(t *testing.T) {
	svc, st, passwords := newService(t)
	ctx := context.Background()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	oldPort := free.Addr().(*net.TCPAddr).Port
	free.Close()

	const canary = "Canary-pw-7q2Xv9"
	m, err := svc.Create(ctx, "admin", mailbox.Input{Name: "support", Direction: store.Inbound, Protocol: mailbox.IMAP,
		Host: "127.0.0.1", Port: oldPort, Security: mailbox.SecurityNone, Login: "support", Password: pw(canary)})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	// The fake server works: with the password typed again, the test logs in there.
	in := mailbox.FromMailbox(m)
	in.Port = rec.port
	in.Password = pw("typed-again-pw")
	if _, err := svc.TestInput(ctx, m.ID, in); err != nil {
		t.Fatal(err)
	}
	if !rec.leaked("typed-again-pw") {
		t.Fatalf("the recorder did not see a login with the typed password: %q", rec.got)
	}

	for _, tc := range []struct {
		name string
		edit func(*mailbox.Input)
		what string
	}{
		{"port", func(in *mailbox.Input) { in.Port = rec.port }, "the port"},
		{"host", func(in *mailbox.Input) { in.Host, in.Port = "localhost", rec.port }, "the host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mailbox.FromMailbox(m)
			tc.edit(&in)
			_, err := svc.TestInput(ctx, m.ID, in)
			if rec.leaked(canary) {
				t.Errorf("test with %s changed: the stored password reached the new destination", tc.what)
			}
			msg := fieldErr(t, err)["password"]
			if !strings.Contains(msg, "you changed "+tc.what) || !strings.Contains(msg, "enter the password again") ||
				!strings.Contains(msg, "127.0.0.1:"+strconv.Itoa(oldPort)) {
				t.Errorf("test with %s changed: password error %q, want it to say to enter the password again and where the stored one goes", tc.what, msg)
			}
			_, err = svc.Update(ctx, "admin", m.ID, in)
			if msg := fieldErr(t, err)["password"]; !strings.Contains(msg, "enter the password again") {
				t.Errorf("save with %s changed: password error %q", tc.what, msg)
			}
			if rec.leaked(canary) {
				t.Fatalf("the stored password reached the new destination")
			}
		})
	}
	if got, _ := st.Mailbox(ctx, m.ID); got.Port != oldPort {
		t.Errorf("a refused save changed the port to %d", got.Port)
	}
	// With the password entered again, the change is saved and the new password kept.
	in = mailbox.FromMailbox(m)
	in.Port, in.Password = rec.port, pw("new-pw-for-new-port")
	if _, err := svc.Update(ctx, "admin", m.ID, in); err != nil {
		t.Fatal(err)
	}
	if p, _ := passwords.Get(ctx, m.ID); p.Reveal() != "new-pw-for-new-port" {
		t.Errorf("stored password after the save is not the one typed")
	}
	// Unchanged destination: the stored password is used as before, no need to type it.
	in = mailbox.FromMailbox(m)
	in.Port, in.Folder = rec.port, "Archive"
	if _, err := svc.Update(ctx, "admin", m.ID, in); err != nil {
		t.Errorf("save without a change of destination: %v", err)
	}

	// OAuth: a client secret goes to the token URL; a new token URL needs it again.
	var mu sync.Mutex
	var bodies []byte
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b...)
		bodies = append(bodies, r.Header.Get("Authorization")...)
		mu.Unlock()
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
	}))
	defer tokenSrv.Close()
	const clientSecret = "Client~secret-canary-Q8"
	app, err := svc.Create(ctx, "admin", mailbox.Input{Name: "app", Direction: store.Inbound, Protocol: mailbox.IMAP,
		Host: "127.0.0.1", Port: oldPort, Security: mailbox.SecurityNone, Login: "support@example.test", Auth: store.AuthOAuthApp,
		OAuth:        store.OAuth{Provider: "custom", TokenURL: "http://127.0.0.1:" + strconv.Itoa(oldPort) + "/token", ClientID: "postroom"},
		ClientSecret: func() *vault.Secret { s := vault.NewSecret(clientSecret); return &s }()})
	if err != nil {
		t.Fatal(err)
	}
	in = mailbox.FromMailbox(app)
	in.OAuth.TokenURL = tokenSrv.URL + "/token"
	_, err = svc.TestInput(ctx, app.ID, in)
	mu.Lock()
	if leaked(bodies, clientSecret) {
		t.Errorf("test with a new token URL: the stored client secret reached it")
	}
	mu.Unlock()
	if msg := fieldErr(t, err)["client_secret"]; !strings.Contains(msg, "you changed the token URL") || !strings.Contains(msg, "enter the client secret again") {
		t.Errorf("test with a new token URL: client_secret error %q", msg)
	}
	_, err = svc.Update(ctx, "admin", app.ID, in)
	if msg := fieldErr(t, err)["client_secret"]; !strings.Contains(msg, "enter the client secret again") {
		t.Errorf("save with a new token URL: client_secret error %q", msg)
	}
	mu.Lock()
	if leaked(bodies, clientSecret) {
		t.Errorf("the stored client secret reached the new token URL")
	}
	mu.Unlock()
}

// TestAutodiscoverHostIsADestination: an EWS mailbox without a host sends its password to
// the hosts autodiscover asks: the autodiscover host named, or the address's domain's. A
// change of either needs the password again; other changes keep the stored one.
func TestAutodiscoverHostIsADestination(t *testing.T) {
	svc, _, passwords := newService(t)
	ctx := context.Background()
	m, err := svc.Create(ctx, "admin", mailbox.Input{Name: "exchange", Direction: store.Inbound, Protocol: mailbox.EWS,
		Address: "support@contoso.com", Login: "svc@contoso.com", Password: pw("Canary-ad-pw"), AutodiscoverHost: "Autodiscover.Contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	if m.AutodiscoverHost != "autodiscover.contoso.com" {
		t.Fatalf("AutodiscoverHost = %q, want it stored in lower case", m.AutodiscoverHost)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*mailbox.Input)
		what  string
		where string
	}{
		{"new autodiscover host", func(in *mailbox.Input) { in.AutodiscoverHost = "mail.hoster.net" }, "the autodiscover host", "autodiscover.contoso.com"},
		{"autodiscover host cleared", func(in *mailbox.Input) { in.AutodiscoverHost = "" }, "the autodiscover host", "autodiscover.contoso.com"},
		{"host typed instead", func(in *mailbox.Input) { in.AutodiscoverHost, in.Host = "", "mail.hoster.net" }, "the host", "autodiscover.contoso.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mailbox.FromMailbox(m)
			tc.edit(&in)
			_, err := svc.TestInput(ctx, m.ID, in)
			msg := fieldErr(t, err)["password"]
			if !strings.Contains(msg, "you changed "+tc.what) || !strings.Contains(msg, "enter the password again") || !strings.Contains(msg, tc.where) {
				t.Errorf("test: password error %q, want it to say %s changed, to enter the password again, and where the stored one goes (%s)", msg, tc.what, tc.where)
			}
			_, err = svc.Update(ctx, "admin", m.ID, in)
			if msg := fieldErr(t, err)["password"]; !strings.Contains(msg, "enter the password again") {
				t.Errorf("save: password error %q", msg)
			}
		})
	}
	// Unchanged destination: another poll interval keeps the stored password.
	in := mailbox.FromMailbox(m)
	in.PollInterval = 2 * in.PollInterval
	if _, err := svc.Update(ctx, "admin", m.ID, in); err != nil {
		t.Fatalf("save without a change of destination: %v", err)
	}
	// Typed again, the new autodiscover host is saved with the new password.
	in = mailbox.FromMailbox(m)
	in.AutodiscoverHost, in.Password = "mail.hoster.net:8443", pw("new-pw-for-hoster")
	got, err := svc.Update(ctx, "admin", m.ID, in)
	if err != nil || got.AutodiscoverHost != "mail.hoster.net:8443" {
		t.Fatalf("save with the password typed again: %+v %v", got, err)
	}
	if p, _ := passwords.Get(ctx, m.ID); p.Reveal() != "new-pw-for-hoster" {
		t.Errorf("stored password after the save is not the one typed")
	}

	// Autodiscover from the address: a new domain is a new destination.
	d, err := svc.Create(ctx, "admin", mailbox.Input{Name: "exchange2", Direction: store.Inbound, Protocol: mailbox.EWS,
		Address: "help@contoso.com", Login: "svc@contoso.com", Password: pw("Canary-ad-pw")})
	if err != nil {
		t.Fatal(err)
	}
	in = mailbox.FromMailbox(d)
	in.Address = "help@fabrikam.com"
	_, err = svc.TestInput(ctx, d.ID, in)
	if msg := fieldErr(t, err)["password"]; !strings.Contains(msg, "you changed the address's domain") || !strings.Contains(msg, "contoso.com") {
		t.Errorf("new address domain: password error %q", msg)
	}
	in.Address = "other@contoso.com" // the same domain: the same hosts
	if _, err := svc.Update(ctx, "admin", d.ID, in); err != nil {
		t.Errorf("another address in the same domain: %v", err)
	}
}
