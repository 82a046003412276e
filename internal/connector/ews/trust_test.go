package ews_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/vault"
)

// credRecorder is an https server on a new loopback port, with a certificate the test
// client trusts for its hosts, that answers every request 401 (Basic, Bearer) and keeps
// every byte it received after TLS: what a host outside the mailbox's domain would learn.
type credRecorder struct {
	addr string
	leaf *x509.Certificate
	mu   sync.Mutex
	got  []byte
}

type recordingConn struct {
	net.Conn
	r *credRecorder
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.got = append(c.r.got, p[:n]...)
	c.r.mu.Unlock()
	return n, err
}

type recordingListener struct {
	net.Listener
	r *credRecorder
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{c, l.r}, nil
}

func newCredRecorder(t *testing.T, hosts ...string) *credRecorder {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: hosts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	r := &credRecorder{leaf: leaf}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Add("WWW-Authenticate", "Basic")
		w.Header().Add("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go func() { _ = srv.Serve(recordingListener{tl, r}) }()
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *credRecorder) bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// leaked reports whether secret arrived, as it is or inside base64 (a Basic header).
func (r *credRecorder) leaked(secret string) bool {
	r.mu.Lock()
	s := string(r.got)
	r.mu.Unlock()
	if strings.Contains(s, secret) {
		return true
	}
	for _, w := range strings.Fields(s) {
		if b, err := base64.StdEncoding.DecodeString(w); err == nil && strings.Contains(string(b), secret) {
			return true
		}
	}
	return false
}

// trustClient is loopbackClient with the hosts in recHosts sent to the recorder (whose
// certificate it trusts) and the hosts in down refused.
func trustClient(s *ewstest.Server, rec *credRecorder, recHosts []string, down ...string) *http.Client {
	tr := loopbackClient(s, down...).Transport.(*http.Transport).Clone()
	pool := s.CertPool().Clone()
	pool.AddCert(rec.leaf)
	tr.TLSClientConfig.RootCAs = pool
	dial := tr.DialContext
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		for _, h := range recHosts {
			if strings.EqualFold(h, host) {
				return d.DialContext(ctx, network, rec.addr)
			}
		}
		return dial(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

// TestCredentialsOnlyToTheDomain: the plain http redirect and the SRV record are not
// authenticated, so a host they name outside the mailbox's domain (or one that only looks
// like it: evilcontoso.local, contoso.local.hoster.local) is not asked, with the password
// or a token; the failure names the host and how to use it. The same host named as the
// autodiscover host does receive the sign-in (the recorder sees it).
func TestCredentialsOnlyToTheDomain(t *testing.T) {
	s := adSetup(t)
	outside := []string{"mail.hoster.local", "evilcontoso.local", "contoso.local.hoster.local", "mail.xn--cntoso-i0e.local"}
	const canary = "Canary-pw-Zr81q"
	ctx := context.Background()
	noSRV := func(context.Context, string, string, string) (string, []*net.SRV, error) {
		return "", nil, &net.DNSError{Err: "no such host", IsNotFound: true}
	}
	for _, tc := range []struct {
		name   string
		target string // what the unauthenticated source names
		srv    bool
		token  bool
	}{
		{"302", "https://mail.hoster.local/autodiscover/autodiscover.xml", false, false},
		{"302 bearer", "https://mail.hoster.local/autodiscover/autodiscover.svc", false, true},
		{"302 suffix", "https://evilcontoso.local/autodiscover/autodiscover.xml", false, false},
		{"SRV", "mail.hoster.local", true, false},
		{"SRV bearer", "mail.hoster.local", true, true},
		{"SRV suffix", "contoso.local.hoster.local", true, false},
		{"SRV lookalike", "mail.xn--cntoso-i0e.local", true, false}, // mail.cοntoso.local, Greek omicron
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newCredRecorder(t, outside...)
			cfg := adConfig(s, trustClient(s, rec, outside, "contoso.local", "autodiscover.contoso.local"))
			cfg.Password = vault.NewSecret(canary)
			if tc.token {
				cfg.Login, cfg.Password = "", vault.Secret{}
				cfg.Token = func(context.Context, bool) (string, error) { return canary, nil }
			}
			named := tc.target
			s.RedirectHTTP("")
			cfg.LookupSRV = noSRV
			if tc.srv {
				cfg.LookupSRV = func(context.Context, string, string, string) (string, []*net.SRV, error) {
					return "", []*net.SRV{{Target: tc.target + ".", Port: 443}}, nil
				}
			} else {
				s.RedirectHTTP(tc.target)
				named = strings.Split(strings.TrimPrefix(tc.target, "https://"), "/")[0]
			}
			_, err := ews.Discover(ctx, cfg)
			if n := rec.bytes(); n != 0 || rec.leaked(canary) {
				t.Fatalf("%s received %d bytes (credentials: %v)", named, n, rec.leaked(canary))
			}
			secret := "the password"
			if tc.token {
				secret = "the OAuth token"
			}
			adError(t, err, connector.KindConfig, "not asked: "+named,
				"autodiscover for contoso.local points to "+named+", outside contoso.local: postroom does not send "+secret+" there unasked; if that is your Exchange server, type "+named+" as the autodiscover host (or as the host)")
		})
	}

	// The recorder would have seen it: named as the autodiscover host, it is asked.
	rec := newCredRecorder(t, outside...)
	cfg := adConfig(s, trustClient(s, rec, outside))
	cfg.Password = vault.NewSecret(canary)
	cfg.Host = "mail.hoster.local"
	_, err := ews.Discover(ctx, cfg)
	if !rec.leaked(canary) {
		t.Fatalf("the autodiscover host named did not receive the sign-in (err %v): the recorder sees nothing", err)
	}
	adError(t, err, connector.KindAuth, "401", "it offers: Basic, Bearer")
}

// TestTrustedAnswersAreFollowed: what a trusted autodiscover server names is followed
// with the credentials, outside the domain too: a RedirectUrl to another host, and the
// domain of a RedirectAddr. In-domain 302 and SRV targets are asked
// (TestAutodiscoverHTTPRedirectAndSRV).
func TestTrustedAnswersAreFollowed(t *testing.T) {
	s := adSetup(t)
	ctx := context.Background()
	s.RedirectURL("https://exchange.hoster.local/autodiscover/autodiscover.svc")
	got, err := ews.Discover(ctx, adConfig(s, loopbackClient(s)))
	if err != nil || got.URL != mailEWS || got.Endpoint != "https://exchange.hoster.local/autodiscover/autodiscover.svc" {
		t.Fatalf("RedirectUrl outside the domain from a trusted server: %+v %v", got, err)
	}
	s.RedirectURL("")

	s.AddMailbox("support@hoster.local")
	s.RedirectAddress(box, "support@hoster.local")
	// hoster.local itself is down: its autodiscover.hoster.local answers.
	got, err = ews.Discover(ctx, adConfig(s, loopbackClient(s, "hoster.local")))
	if err != nil || got.URL != mailEWS || got.Address != "support@hoster.local" || got.Endpoint != "https://autodiscover.hoster.local/autodiscover/autodiscover.svc" {
		t.Fatalf("RedirectAddr to another domain from a trusted server: %+v %v", got, err)
	}
	s.RedirectAddress(box, "")

	// A domain in Unicode is compared in the form DNS uses: the SRV record's
	// mail.xn--kln-sna.local is in köln.local.
	s.AddMailbox("support@köln.local")
	cfg := adConfig(s, loopbackClient(s, "xn--kln-sna.local", "autodiscover.xn--kln-sna.local"))
	cfg.Address = "support@Köln.local"
	cfg.LookupSRV = func(context.Context, string, string, string) (string, []*net.SRV, error) {
		return "", []*net.SRV{{Target: "mail.xn--kln-sna.local.", Port: 443}}, nil
	}
	got, err = ews.Discover(ctx, cfg)
	if err != nil || got.Endpoint != "https://mail.xn--kln-sna.local/autodiscover/autodiscover.svc" {
		t.Fatalf("SRV target in the Unicode domain: %+v %v", got, err)
	}
}
