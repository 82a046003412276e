package diag_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const (
	user     = "alice@example.test"
	password = "alice-Secret-pw-93"
)

// env is one Dovecot (IMAP, POP3, submission relaying to smtp-sink) shared by the cases.
type env struct {
	d     *testenv.Dovecot
	sink  *testenv.SMTPSink
	roots *x509.CertPool
}

func start(t *testing.T) *env {
	t.Helper()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	d.AddUser(t, user, password)
	msg := func(i int) []byte {
		return fmt.Appendf(nil, "From: c%d@example.org\r\nSubject: m%d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody\r\n", i, i, i)
	}
	d.Append(t, user, "INBOX", msg(1))
	d.Append(t, user, "INBOX", msg(2))
	d.Append(t, user, "Archive", msg(3))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return &env{d: d, sink: sink, roots: roots}
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

func inbound(t *testing.T, protocol, addr, security string) store.Mailbox {
	h, p := hostPort(t, addr)
	return store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: protocol, Host: h, Port: p,
		Security: security, Login: user, Folder: "INBOX", AfterAction: store.AfterMarkRead}
}

func outbound(t *testing.T, addr, security, login string) store.Mailbox {
	h, p := hostPort(t, addr)
	return store.Mailbox{Name: "smtp-client", Direction: store.Outbound, Protocol: "smtp", Host: h, Port: p,
		Security: security, Login: login}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// want describes the checklist a user must see: the step names in order; all pass, or the
// last one fails with advice containing advice (and detail containing detail).
type want struct {
	steps  []string
	fail   bool
	advice []string // substrings of the failed step's Advice
	detail []string // substrings of the last step's Detail
}

func check(t *testing.T, rep diag.Report, w want) {
	t.Helper()
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	dump := func() string {
		var b strings.Builder
		for _, s := range rep.Steps {
			fmt.Fprintf(&b, "\n  %-40q ok=%v detail=%q advice=%q", s.Name, s.OK, s.Detail, s.Advice)
		}
		return b.String()
	}
	t.Logf("report:%s", dump())
	if strings.Join(names, " | ") != strings.Join(w.steps, " | ") {
		t.Fatalf("steps:%s\nwant names %q", dump(), w.steps)
	}
	if rep.OK == w.fail {
		t.Fatalf("report OK = %v, want %v:%s", rep.OK, !w.fail, dump())
	}
	for i, s := range rep.Steps {
		last := i == len(rep.Steps)-1
		if wantOK := !(last && w.fail); s.OK != wantOK {
			t.Fatalf("step %q OK = %v, want %v:%s", s.Name, s.OK, wantOK, dump())
		}
		if s.OK && s.Advice != "" {
			t.Errorf("passing step %q has advice %q", s.Name, s.Advice)
		}
		if !s.OK && (s.Advice == "" || s.Detail == "") {
			t.Errorf("failed step %q lacks detail or advice:%s", s.Name, dump())
		}
		if strings.Contains(s.Detail+s.Advice, password) {
			t.Fatalf("step %q shows the password", s.Name)
		}
	}
	lastStep := rep.Steps[len(rep.Steps)-1]
	for _, a := range w.advice {
		if !strings.Contains(lastStep.Advice, a) {
			t.Errorf("advice of %q = %q, want it to contain %q", lastStep.Name, lastStep.Advice, a)
		}
	}
	for _, d := range w.detail {
		if !strings.Contains(lastStep.Detail, d) {
			t.Errorf("detail of %q = %q, want it to contain %q", lastStep.Name, lastStep.Detail, d)
		}
	}
}

func TestMailboxes(t *testing.T) {
	e := start(t)
	closed := closedPort(t)
	imapsHost, imapsPort := hostPort(t, e.d.IMAPSAddr)
	_, imapPort := hostPort(t, e.d.IMAPAddr)
	imapsAt := func(s string) []string {
		return []string{"Resolve " + imapsHost, "Connect to " + e.d.IMAPSAddr, s}
	}
	imapOK := func(addr string, extra ...string) []string {
		s := []string{"Resolve 127.0.0.1", "Connect to " + addr, "TLS", "Log in as " + user, "Open folder INBOX"}
		return append(s, extra...)
	}
	smtpOK := func(addr, auth string) []string {
		return []string{"Resolve 127.0.0.1", "Connect to " + addr, "TLS", "EHLO", auth}
	}

	cases := []struct {
		name     string
		m        store.Mailbox
		password string
		emptyCAs bool
		want     want
	}{
		{name: "imap tls", m: inbound(t, "imap", e.d.IMAPSAddr, "tls"),
			want: want{steps: imapOK(e.d.IMAPSAddr), detail: []string{"2 messages"}}},
		{name: "imap starttls", m: inbound(t, "imap", e.d.IMAPAddr, "starttls"),
			want: want{steps: imapOK(e.d.IMAPAddr), detail: []string{"2 messages"}}},
		{name: "imap none on loopback", m: inbound(t, "imap", e.d.IMAPAddr, "none"),
			want: want{steps: imapOK(e.d.IMAPAddr)}},
		{name: "imap host name localhost", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.Host = "localhost"
			return m
		}(), want: want{steps: []string{"Resolve localhost", "Connect to localhost:" + strconv.Itoa(imapsPort), "TLS", "Log in as " + user, "Open folder INBOX"}}},
		{name: "imap move folder exists", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.AfterAction, m.MoveFolder = store.AfterMove, "Archive"
			return m
		}(), want: want{steps: imapOK(e.d.IMAPSAddr, "Move folder Archive")}},
		{name: "imap move folder missing is created later", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.AfterAction, m.MoveFolder = store.AfterMove, "Done"
			return m
		}(), want: want{steps: imapOK(e.d.IMAPSAddr, "Move folder Done"),
			detail: []string{"postroom creates it when it moves the first message", "Archive", "INBOX"}}},
		{name: "imap move folder in the wrong case", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.AfterAction, m.MoveFolder = store.AfterMove, "ARCHIVE"
			return m
		}(), want: want{steps: imapOK(e.d.IMAPSAddr, "Move folder ARCHIVE"), fail: true,
			advice: []string{"use Archive"}}},
		{name: "imap move into the watched folder", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.AfterAction, m.MoveFolder = store.AfterMove, "INBOX"
			return m
		}(), want: want{steps: imapOK(e.d.IMAPSAddr, "Move folder INBOX"), fail: true,
			advice: []string{"choose another folder"}}},
		{name: "imap wrong password", m: inbound(t, "imap", e.d.IMAPSAddr, "tls"), password: "wrong",
			want: want{steps: imapOK(e.d.IMAPSAddr)[:4], fail: true,
				advice: []string{"the server refused the login name or password: check both"}, detail: []string{"AUTHENTICATIONFAILED"}}},
		{name: "imap wrong folder lists the folders", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.Folder = "archive"
			return m
		}(), want: want{steps: append(imapOK(e.d.IMAPSAddr)[:4], "Open folder archive"), fail: true,
			advice: []string{"the folder archive does not exist: check its name (case matters)", "(the server has Archive)", "the server's folders are: "}}},
		{name: "imap closed port", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.Port = closed
			return m
		}(), want: want{steps: []string{"Resolve 127.0.0.1", "Connect to 127.0.0.1:" + strconv.Itoa(closed)}, fail: true,
			advice: []string{"nothing accepts connections on 127.0.0.1:" + strconv.Itoa(closed), "check the host and port"}}},
		{name: "imap tls on the plain port", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.Port = imapPort
			return m
		}(), want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.IMAPAddr, "TLS"}, fail: true,
			advice: []string{"does not speak TLS on this port"}}},
		{name: "imap untrusted certificate", m: inbound(t, "imap", e.d.IMAPSAddr, "tls"), emptyCAs: true,
			want: want{steps: imapsAt("TLS"), fail: true, advice: []string{"not signed by a trusted authority"}}},
		{name: "imap starttls untrusted certificate", m: inbound(t, "imap", e.d.IMAPAddr, "starttls"), emptyCAs: true,
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.IMAPAddr, "TLS"}, fail: true,
				advice: []string{"not signed by a trusted authority"}}},
		{name: "unknown host", m: func() store.Mailbox {
			m := inbound(t, "imap", e.d.IMAPSAddr, "tls")
			m.Host = "no-such-host.invalid"
			return m
		}(), want: want{steps: []string{"Resolve no-such-host.invalid"}, fail: true}},

		{name: "pop3 tls", m: inbound(t, "pop3", e.d.POP3SAddr, "tls"),
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3SAddr, "TLS", "Log in as " + user, "List messages"},
				detail: []string{"2 messages"}}},
		{name: "pop3 starttls", m: inbound(t, "pop3", e.d.POP3Addr, "starttls"),
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3Addr, "TLS", "Log in as " + user, "List messages"},
				detail: []string{"2 messages"}}},
		{name: "pop3 wrong password", m: inbound(t, "pop3", e.d.POP3SAddr, "tls"), password: "wrong",
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3SAddr, "TLS", "Log in as " + user}, fail: true,
				advice: []string{"the server refused the login name or password: check both"}}},
		{name: "pop3 none on loopback", m: inbound(t, "pop3", e.d.POP3Addr, "none"),
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3Addr, "TLS", "Log in as " + user, "List messages"},
				detail: []string{"2 messages"}}},
		{name: "pop3 untrusted certificate", m: inbound(t, "pop3", e.d.POP3SAddr, "tls"), emptyCAs: true,
			want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3SAddr, "TLS"}, fail: true,
				advice: []string{"not signed by a trusted authority"}}},
		{name: "pop3 closed port", m: func() store.Mailbox {
			m := inbound(t, "pop3", e.d.POP3SAddr, "tls")
			m.Port = closed
			return m
		}(), want: want{steps: []string{"Resolve 127.0.0.1", "Connect to 127.0.0.1:" + strconv.Itoa(closed)}, fail: true,
			advice: []string{"nothing accepts connections on 127.0.0.1:" + strconv.Itoa(closed)}}},
		{name: "pop3 tls on the plain port", m: func() store.Mailbox {
			m := inbound(t, "pop3", e.d.POP3SAddr, "tls")
			_, m.Port = hostPort(t, e.d.POP3Addr)
			return m
		}(), want: want{steps: []string{"Resolve 127.0.0.1", "Connect to " + e.d.POP3Addr, "TLS"}, fail: true,
			advice: []string{"does not speak TLS on this port"}}},

		{name: "smtp submission starttls", m: outbound(t, e.d.SubmissionAddr, "starttls", user),
			want: want{steps: smtpOK(e.d.SubmissionAddr, "Authenticate as "+user), detail: []string{"accepted (AUTH PLAIN)"}}},
		{name: "smtp submission without login", m: outbound(t, e.d.SubmissionAddr, "starttls", ""),
			want: want{steps: smtpOK(e.d.SubmissionAddr, "Authenticate"), detail: []string{"no login configured: the server must relay without authentication"}}},
		{name: "smtp wrong password", m: outbound(t, e.d.SubmissionAddr, "starttls", user), password: "wrong",
			want: want{steps: smtpOK(e.d.SubmissionAddr, "Authenticate as "+user), fail: true,
				advice: []string{"the server refused the login name or password: check both"}, detail: []string{"535"}}},
		{name: "smtp tls on the plain port", m: outbound(t, e.d.SubmissionAddr, "tls", user),
			want: want{steps: smtpOK(e.d.SubmissionAddr, "")[:3], fail: true, advice: []string{"does not speak TLS on this port"}}},
		{name: "smtp untrusted certificate", m: outbound(t, e.d.SubmissionAddr, "starttls", user), emptyCAs: true,
			want: want{steps: smtpOK(e.d.SubmissionAddr, "")[:3], fail: true, advice: []string{"not signed by a trusted authority"}}},
		{name: "smtp closed port", m: func() store.Mailbox {
			m := outbound(t, e.d.SubmissionAddr, "starttls", user)
			m.Port = closed
			return m
		}(), want: want{steps: []string{"Resolve 127.0.0.1", "Connect to 127.0.0.1:" + strconv.Itoa(closed)}, fail: true,
			advice: []string{"nothing accepts connections on"}}},
		{name: "smtp relay without tls or auth", m: outbound(t, e.sink.Addr, "none", ""),
			want: want{steps: smtpOK(e.sink.Addr, "Authenticate"), detail: []string{"no login configured"}}},
		{name: "smtp login where the server offers no auth", m: outbound(t, e.sink.Addr, "none", user),
			want: want{steps: smtpOK(e.sink.Addr, "Authenticate as "+user), fail: true, advice: []string{"leave the login empty"}}},
		{name: "smtp starttls where the server has none", m: outbound(t, e.sink.Addr, "starttls", ""),
			want: want{steps: smtpOK(e.sink.Addr, "")[:3], fail: true, advice: []string{"does not offer STARTTLS"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pw := password
			if tc.password != "" {
				pw = tc.password
			}
			opts := &diag.Options{RootCAs: e.roots}
			if tc.emptyCAs {
				opts.RootCAs = x509.NewCertPool()
			}
			rep := diag.Test(context.Background(), tc.m, vault.NewSecret(pw), opts)
			check(t, rep, tc.want)
		})
	}
}

// TestCertificateProblems: an expired certificate and one for another name fail the TLS
// step with their own advice. The server is a TLS listener in the test (Dovecot's
// certificate is always fresh and names localhost).
func TestCertificateProblems(t *testing.T) {
	caCert, caKey := newCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	cases := []struct {
		name   string
		leaf   x509.Certificate
		advice string
	}{
		{"expired", x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)},
			"the server's TLS certificate has expired"},
		{"another name", x509.Certificate{DNSNames: []string{"mail.other.test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)},
			"the server's TLS certificate is for another name"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveTLS(t, issue(t, caCert, caKey, &tc.leaf, int64(i+2)))
			h, p := hostPort(t, addr)
			m := store.Mailbox{Protocol: "imap", Host: h, Port: p, Security: "tls", Login: user}
			rep := diag.Test(context.Background(), m, vault.NewSecret(password), &diag.Options{RootCAs: roots})
			check(t, rep, want{steps: []string{"Resolve 127.0.0.1", "Connect to " + addr, "TLS"}, fail: true, advice: []string{tc.advice}})
		})
	}
}

// TestTimeout: a server that accepts but never greets fails the TLS step within the test's
// time limit, with the advice for a server that does not answer.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	h, p := hostPort(t, l.Addr().String())
	m := store.Mailbox{Protocol: "imap", Host: h, Port: p, Security: "starttls", Login: user}
	rep := diag.Test(context.Background(), m, vault.NewSecret(password), &diag.Options{Timeout: time.Second})
	check(t, rep, want{steps: []string{"Resolve 127.0.0.1", "Connect to " + l.Addr().String(), "TLS"}, fail: true,
		advice: []string{"did not answer in time"}, detail: []string{"no answer within"}})
}

// TestSettings: settings no server could accept fail before any connection.
func TestSettings(t *testing.T) {
	cases := []struct {
		name   string
		m      store.Mailbox
		advice string
	}{
		{"protocol", store.Mailbox{Protocol: "jmap", Host: "x", Security: "tls", Login: user}, "IMAP, POP3, SMTP, Microsoft Graph and EWS"},
		{"graph with a password", store.Mailbox{Protocol: "graph", Auth: store.AuthPassword, Login: user}, "Microsoft Graph takes only OAuth 2.0"},
		{"graph without an address", store.Mailbox{Protocol: "graph", Auth: store.AuthOAuthApp,
			OAuth: store.OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}}, "enter the address of the Microsoft 365 mailbox"},
		{"oauth without a client id", store.Mailbox{Protocol: "imap", Host: "x", Security: "tls", Login: user, Auth: store.AuthOAuthApp,
			OAuth: store.OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com"}}, "Application (client) ID"},
		{"oauth without a token source", store.Mailbox{Protocol: "imap", Host: "x", Security: "tls", Login: user, Auth: store.AuthOAuthApp,
			OAuth: store.OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}}, "save the mailbox's OAuth settings"},
		{"password grant without a login", store.Mailbox{Protocol: "imap", Host: "x", Security: "tls", Auth: store.AuthOAuthROPC,
			OAuth: store.OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}}, "user principal name"},
		{"security", store.Mailbox{Protocol: "imap", Host: "x", Security: "ssl", Login: user}, "tls, starttls or none"},
		{"host", store.Mailbox{Protocol: "imap", Security: "tls", Login: user}, "host name"},
		{"login", store.Mailbox{Protocol: "pop3", Host: "x", Security: "tls"}, "login name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := diag.Test(context.Background(), tc.m, vault.Secret{}, nil)
			check(t, rep, want{steps: []string{"Check settings"}, fail: true, advice: []string{tc.advice}})
		})
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "diag test CA"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, leaf *x509.Certificate, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf.SerialNumber = big.NewInt(serial)
	leaf.Subject = pkix.Name{CommonName: "diag test server"}
	leaf.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveTLS accepts TLS connections with cert and greets as IMAP after the handshake.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("* OK ready\r\n"))
				}
			}()
		}
	}()
	return l.Addr().String()
}
