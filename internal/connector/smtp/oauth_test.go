package smtp_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// introspection is an RFC 7662 token-introspection endpoint for Dovecot's oauth2 passdb
// (testmail.md §4): "good-*" tokens are active for user, every other one is not.
type introspection struct {
	mu   sync.Mutex
	seen []string
}

func (i *introspection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	i.mu.Lock()
	i.seen = append(i.seen, tok)
	i.mu.Unlock()
	body := map[string]any{"active": false}
	if strings.HasPrefix(tok, "good-") {
		body = map[string]any{"active": true, "email": user, "scope": "mail"}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// tokens is a TokenFunc that hands out first, then renewed on refresh, and counts calls.
type tokens struct {
	first, renewed string
	mu             sync.Mutex
	calls          []bool // the refresh argument of each call
}

func (tk *tokens) get(_ context.Context, refresh bool) (string, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.calls = append(tk.calls, refresh)
	if refresh {
		return tk.renewed, nil
	}
	return tk.first, nil
}

// TestOAuthThroughSubmission: XOAUTH2 against Dovecot submission checking tokens at an
// introspection endpoint; a valid token sends, an expired one is renewed and the login
// retried once, a revoked grant fails with advice and sends nothing.
func TestOAuthThroughSubmission(t *testing.T) {
	intro := &introspection{}
	endpoint := httptest.NewServer(intro)
	defer endpoint.Close()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: endpoint.URL + "/introspect", SubmissionRelay: sink.Addr})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	config := func(tk *tokens) smtp.Config {
		return smtp.Config{Host: "localhost", Port: port(t, d.SubmissionAddr), Security: smtp.SecurityStartTLS,
			Login: user, Token: tk.get, RootCAs: roots}
	}
	send := func(tk *tokens, subject string) error {
		s := smtp.New(config(tk))
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		msg := strings.Replace(raw, "Subject: hello", "Subject: "+subject, 1)
		return s.Send(ctx, user, []string{"bob@example.net"}, []byte(msg))
	}

	valid := &tokens{first: "good-1", renewed: "good-2"}
	if err := send(valid, "valid token"); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if len(valid.calls) != 1 || valid.calls[0] {
		t.Errorf("valid token: TokenFunc calls (refresh) %v, want [false]", valid.calls)
	}
	d.WaitLog(t, "method=XOAUTH2") // Dovecot logged the login with this mechanism

	expired := &tokens{first: "expired-1", renewed: "good-3"}
	if err := send(expired, "renewed token"); err != nil {
		t.Fatalf("expired token: %v", err)
	}
	if len(expired.calls) != 2 || expired.calls[0] || !expired.calls[1] {
		t.Errorf("expired token: TokenFunc calls (refresh) %v, want [false true]", expired.calls)
	}

	revoked := &tokens{first: "revoked-1", renewed: "revoked-2"}
	err := send(revoked, "revoked grant")
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "sign in again") {
		t.Fatalf("revoked grant: %v, want KindAuth with advice to sign in again", err)
	}
	if len(revoked.calls) != 2 {
		t.Errorf("revoked grant: %d TokenFunc calls, want 2 (one renewal, one retry)", len(revoked.calls))
	}
	if strings.Contains(err.Error(), "revoked-") {
		t.Errorf("the error shows the token: %v", err)
	}

	got := sink.Wait(t, 2, time.Minute)
	var subjects []string
	for _, m := range got {
		for _, s := range []string{"valid token", "renewed token", "revoked grant"} {
			if strings.Contains(string(m.Data), "Subject: "+s) {
				subjects = append(subjects, s)
			}
		}
	}
	if strings.Join(subjects, ",") != "valid token,renewed token" {
		t.Errorf("relayed %v, want the valid and the renewed token's messages only", subjects)
	}
	intro.mu.Lock()
	defer intro.mu.Unlock()
	if strings.Join(intro.seen, ",") != "good-1,expired-1,good-3,revoked-1,revoked-2" {
		t.Errorf("Dovecot checked tokens %v", intro.seen)
	}
}

// TestOAuthBearerFallback: a server that offers OAUTHBEARER but not XOAUTH2 gets
// OAUTHBEARER (RFC 7628), renewal included.
func TestOAuthBearerFallback(t *testing.T) {
	p := startPeer(t)
	p.mu.Lock()
	p.oauthToken = "good-bearer"
	p.mu.Unlock()
	cfg := peerConfig(t, p)
	tk := &tokens{first: "stale", renewed: "good-bearer"}
	cfg.Login, cfg.Token = user, tk.get
	s := smtp.New(cfg)
	defer s.Close()
	if err := s.Send(ctxT(t), user, []string{"bob@example.net"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	seen := strings.Join(p.oauthSeen, ",")
	p.mu.Unlock()
	if seen != "stale,good-bearer" || len(p.Transactions()) != 1 {
		t.Errorf("tokens presented %q, %d messages received", seen, len(p.Transactions()))
	}
}

// TestOAuthLongToken: an access token of Microsoft's size (well over a kilobyte) does not
// fit on an AUTH line within the 512 octets Dovecot submission accepts (RFC 5321
// §4.5.3.1.4); the response goes after the server's 334 instead, and the login works.
func TestOAuthLongToken(t *testing.T) {
	intro := &introspection{}
	endpoint := httptest.NewServer(intro)
	defer endpoint.Close()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: endpoint.URL + "/introspect", SubmissionRelay: sink.Addr})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	long := "good-" + strings.Repeat("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9", 40) // ~1.5 KB, like a JWT
	for _, mech := range []string{"XOAUTH2"} {
		tk := &tokens{first: long, renewed: long}
		s := smtp.New(smtp.Config{Host: "localhost", Port: port(t, d.SubmissionAddr), Security: smtp.SecurityStartTLS,
			Login: user, Token: tk.get, RootCAs: roots})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := s.Send(ctx, user, []string{"bob@example.net"}, []byte(strings.Replace(raw, "Subject: hello", "Subject: long token", 1)))
		cancel()
		s.Close()
		if err != nil {
			t.Fatalf("%s with a %d-byte token: %v", mech, len(long), err)
		}
		if len(tk.calls) != 1 {
			t.Errorf("%s: %d token calls, want 1 (no refusal, no renewal)", mech, len(tk.calls))
		}
	}
	sink.Wait(t, 1, time.Minute)
}

// Exchange Online's answers to a refused AUTH (ms365-protocol.md §2.3, §8 item 5).
const (
	exchangeAuthOff  = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0601CA0005.namprd06.prod.outlook.com]"
	exchangeBadCreds = "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0005.namprd06.prod.outlook.com]"
)

// exchangeFront puts a fault proxy in front of Dovecot submission that answers a refused
// AUTH with Exchange's line refusal: Dovecot's XOAUTH2 error challenge (Exchange sends none)
// is swallowed and answered with the empty response, its 535 becomes refusal, and its
// STARTTLS offer is dropped so that the client stays in plain text, where the proxy can
// read the lines. It returns a config for the proxy (security none, loopback).
func exchangeFront(t *testing.T, d *testenv.Dovecot, refusal string) smtp.Config {
	t.Helper()
	p := testenv.StartFaultProxy(t, d.SubmissionAddr)
	p.RewriteLines(
		testenv.LineRule{Match: regexp.MustCompile(`^250-STARTTLS$`)},
		testenv.LineRule{Match: regexp.MustCompile(`^334 eyJ`), Answer: "\r\n"},
		testenv.LineRule{Match: regexp.MustCompile(`^535 `), Replace: refusal},
	)
	return smtp.Config{Host: "127.0.0.1", Port: port(t, p.Addr), Security: smtp.SecurityNone, Login: user}
}

// TestExchangeRefusals: Exchange Online's 535 5.7.139 (SMTP AUTH disabled for the mailbox or
// the organisation) is a setting to change, not a token to renew: no renewal, no retry, and
// the advice names Set-CASMailbox and Set-TransportConfig, never a new sign-in, for OAuth
// and for a password alike. Its 535 5.7.3 (bad credentials) keeps the renewal and the
// sign-in advice.
func TestExchangeRefusals(t *testing.T) {
	intro := &introspection{}
	endpoint := httptest.NewServer(intro)
	defer endpoint.Close()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: endpoint.URL + "/introspect", SubmissionRelay: sink.Addr})
	d.AddUser(t, user, password)
	send := func(cfg smtp.Config) *connector.Error {
		t.Helper()
		s := smtp.New(cfg)
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := s.Send(ctx, user, []string{"bob@example.net"}, []byte(raw))
		var ce *connector.Error
		if !errors.As(err, &ce) {
			t.Fatalf("send: %v, want a *connector.Error", err)
		}
		return ce
	}
	authOff := func(t *testing.T, ce *connector.Error) {
		t.Helper()
		for _, want := range []string{"SMTP AUTH is disabled for " + user,
			"Set-CASMailbox -Identity " + user + " -SmtpClientAuthenticationDisabled $false",
			"Set-TransportConfig -SmtpClientAuthenticationDisabled $false"} {
			if !strings.Contains(ce.Advice, want) {
				t.Errorf("advice %q\nwant it to contain %q", ce.Advice, want)
			}
		}
		if strings.Contains(ce.Advice, "sign in again") || strings.Contains(ce.Advice, "check the login name and password") {
			t.Errorf("advice %q sends the administrator to the credentials", ce.Advice)
		}
		if ce.Kind != connector.KindConfig || !connector.IsPermanent(ce) {
			t.Errorf("kind %q, want %q (permanent: a setting to change)", ce.Kind, connector.KindConfig)
		}
		if !strings.Contains(ce.Error(), "5.7.139") {
			t.Errorf("the error %q does not show Exchange's words", ce.Error())
		}
	}

	t.Run("oauth, SMTP AUTH disabled", func(t *testing.T) {
		cfg := exchangeFront(t, d, exchangeAuthOff)
		tk := &tokens{first: "expired-1", renewed: "expired-2"}
		cfg.Token = tk.get
		authOff(t, send(cfg))
		if !slices.Equal(tk.calls, []bool{false}) {
			t.Errorf("TokenFunc calls (refresh) %v, want [false]: a new token cannot pass a disabled SMTP AUTH", tk.calls)
		}
	})
	t.Run("password, SMTP AUTH disabled", func(t *testing.T) {
		cfg := exchangeFront(t, d, exchangeAuthOff)
		cfg.Password = vault.NewSecret("wrong")
		authOff(t, send(cfg))
	})
	t.Run("oauth, bad credentials", func(t *testing.T) {
		cfg := exchangeFront(t, d, exchangeBadCreds)
		tk := &tokens{first: "revoked-1", renewed: "revoked-2"}
		cfg.Token = tk.get
		ce := send(cfg)
		if ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "sign in again") || !strings.Contains(ce.Error(), "5.7.3") {
			t.Errorf("kind %q advice %q (%v), want KindAuth with advice to sign in again", ce.Kind, ce.Advice, ce)
		}
		if !slices.Equal(tk.calls, []bool{false, true}) {
			t.Errorf("TokenFunc calls (refresh) %v, want [false true] (one renewal)", tk.calls)
		}
	})
	t.Run("password, bad credentials", func(t *testing.T) {
		cfg := exchangeFront(t, d, exchangeBadCreds)
		cfg.Password = vault.NewSecret("wrong")
		if ce := send(cfg); ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "check the login name and password") {
			t.Errorf("kind %q advice %q, want KindAuth saying to check the login and password", ce.Kind, ce.Advice)
		}
	})
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages relayed through refused logins", n)
	}
}
