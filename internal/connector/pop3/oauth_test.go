package pop3_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const clientID, clientSecret = "postroom-app", "app-secret"

// oauthSetup starts an authorization server and a Dovecot that checks tokens against it
// (testmail.md §4), and returns a POP3S config for user without a password or token.
func oauthSetup(t *testing.T) (*testenv.Dovecot, *oauthtest.Server, pop3.Config) {
	t.Helper()
	srv := oauthtest.Start(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: srv.IntrospectionURL})
	cfg := tlsConfig(t, d)
	cfg.Password = vault.Secret{}
	return d, srv, cfg
}

func tokenConfig(srv *oauthtest.Server) credential.OAuthConfig {
	return credential.OAuthConfig{TokenURL: srv.TokenURL, ClientID: clientID, ClientSecret: vault.NewSecret(clientSecret)}
}

func dialErr(t *testing.T, cfg pop3.Config) *connector.Error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := pop3.Dial(ctx, cfg)
	if err == nil {
		s.Close()
		t.Fatal("dial succeeded")
	}
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *connector.Error", err, err)
	}
	return ce
}

// TestOAuthTokenLifecycle, against Dovecot's oauth2 passdb: a valid token logs in; a
// token the server no longer accepts is renewed and the login retried once; every
// rotated refresh token is saved; a revoked grant ends in KindAuth saying to sign in again.
func TestOAuthTokenLifecycle(t *testing.T) {
	d, srv, cfg := oauthSetup(t)
	srv.AddClient(clientID, clientSecret, "")
	srv.Rotate(true)
	d.Append(t, user, "INBOX", mail(0))
	var saved []string
	cfg.Token = credential.RefreshToken(tokenConfig(srv), vault.NewSecret(srv.Grant(user)), func(_ context.Context, s vault.Secret) error {
		saved = append(saved, s.Reveal())
		return nil
	})
	cfg.AfterAction = pop3.AfterKeep
	ctx := context.Background()

	got, err := dial(t, cfg).Next(ctx, 10)
	if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Raw), "Subject: message 0") {
		t.Fatalf("after an OAuth login: %v %v", got, err)
	}
	if n := srv.Requests("refresh_token"); n != 1 {
		t.Fatalf("%d token requests for the first login, want 1", n)
	}

	// The server stops accepting the token before it expires at our side: it is renewed
	// once and the login, on the same connection, succeeds.
	srv.ExpireAccessTokens()
	if got, err := dial(t, cfg).Next(ctx, 10); err != nil || len(got) != 1 {
		t.Fatalf("after renewal: %v %v", got, err)
	}
	if n := srv.Requests("refresh_token"); n != 2 {
		t.Fatalf("%d token requests after a refused token, want 2", n)
	}
	d.WaitLog(t, "method=XOAUTH2") // Dovecot logged the login with this mechanism
	if rotated := srv.Rotated(); len(rotated) != 2 || !slices.Equal(saved, rotated) {
		t.Fatalf("saved refresh tokens %q, want every rotated one %q", saved, rotated)
	}

	srv.RevokeGrants(user)
	ce := dialErr(t, cfg)
	if ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "sign in again") {
		t.Fatalf("revoked grant: kind %q advice %q (%v)", ce.Kind, ce.Advice, ce)
	}
}

// TestOAuthTokenRefusedTwice: a token the server refuses even when new (issued for another
// account) is renewed once, then reported with the sign-in advice.
func TestOAuthTokenRefusedTwice(t *testing.T) {
	_, srv, cfg := oauthSetup(t)
	srv.AddClient(clientID, clientSecret, "bob@example.test")
	cfg.Token = credential.ClientCredentials(tokenConfig(srv))
	ce := dialErr(t, cfg)
	if ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "the server refused the OAuth token") {
		t.Fatalf("kind %q advice %q (%v)", ce.Kind, ce.Advice, ce)
	}
	if n := srv.Requests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2 (the first and one renewal)", n)
	}
}

// exchangeLine is Exchange Online's answer to a refused POP3 login (ms365-protocol.md §2.3).
const exchangeLine = "-ERR Authentication failure: unknown user name or bad password."

// exchangeFront puts a fault proxy in front of Dovecot's plain POP3 port that answers a
// refused login with Exchange's line in place of Dovecot's "-ERR [AUTH] Authentication
// failed."; the XOAUTH2 error challenge Dovecot sends first (Exchange sends none) is
// swallowed and answered with the empty response. It returns cfg pointed at the proxy in
// plain text.
func exchangeFront(t *testing.T, d *testenv.Dovecot, cfg pop3.Config) pop3.Config {
	t.Helper()
	p := testenv.StartFaultProxy(t, d.POP3Addr)
	p.RewriteLines(
		testenv.LineRule{Match: regexp.MustCompile(`^\+ eyJ`), Answer: "\r\n"},
		testenv.LineRule{Match: regexp.MustCompile(`^-ERR \[AUTH\]`), Replace: exchangeLine},
	)
	cfg.Host, cfg.Port = hostPort(t, p.Addr)
	cfg.Security, cfg.RootCAs = pop3.SecurityNone, nil
	return cfg
}

// TestExchangeRefusals: Exchange Online's "-ERR Authentication failure: unknown user name or
// bad password." to a token it refuses even when new is explained with what Exchange needs
// (the app's service principal, FullAccess, POP enabled for the mailbox), not with a new
// sign-in; the same line to a password says Exchange Online takes no passwords: use OAuth 2.0.
func TestExchangeRefusals(t *testing.T) {
	d, srv, cfg := oauthSetup(t)
	d.AddUser(t, user, password)

	t.Run("oauth", func(t *testing.T) {
		srv.AddClient(clientID, clientSecret, "bob@example.test") // valid tokens Dovecot refuses for alice
		cfg := exchangeFront(t, d, cfg)
		cfg.Token = credential.ClientCredentials(tokenConfig(srv))
		ce := dialErr(t, cfg)
		if ce.Kind != connector.KindAuth || !strings.Contains(ce.Error(), "unknown user name or bad password") {
			t.Errorf("kind %q, error %v; want KindAuth with Exchange's words", ce.Kind, ce)
		}
		for _, want := range []string{"check the app's permissions in Exchange", "New-ServicePrincipal",
			"Add-MailboxPermission -Identity " + user, "FullAccess", "Set-CASMailbox -Identity " + user + " -PopEnabled $true"} {
			if !strings.Contains(ce.Advice, want) {
				t.Errorf("advice %q\nwant it to contain %q", ce.Advice, want)
			}
		}
		if strings.Contains(ce.Advice, "sign in again") {
			t.Errorf("advice %q asks for a new sign-in, which a token the token endpoint just issued does not need", ce.Advice)
		}
		if n := srv.Requests("client_credentials"); n != 2 {
			t.Errorf("%d token requests, want 2 (Exchange's line covers an expired token too: one renewal)", n)
		}
	})
	t.Run("password", func(t *testing.T) {
		cfg := exchangeFront(t, d, cfg)
		cfg.Password = vault.NewSecret("wrong")
		ce := dialErr(t, cfg)
		if ce.Kind != connector.KindAuth || !strings.Contains(ce.Error(), "unknown user name or bad password") {
			t.Errorf("kind %q, error %v; want KindAuth with Exchange's words", ce.Kind, ce)
		}
		for _, want := range []string{"basic authentication", "use OAuth 2.0"} {
			if !strings.Contains(ce.Advice, want) {
				t.Errorf("advice %q\nwant it to contain %q", ce.Advice, want)
			}
		}
	})
	t.Run("dovecot's words", func(t *testing.T) {
		// The same refusal in Dovecot's words (RFC 3206) keeps the general advice.
		cfg := cfg
		cfg.Host, cfg.Port = hostPort(t, d.POP3Addr)
		cfg.Security, cfg.Password = pop3.SecurityNone, vault.NewSecret("wrong")
		if ce := dialErr(t, cfg); !strings.Contains(ce.Advice, "check the login name and password of this mailbox") || strings.Contains(ce.Advice, "OAuth") {
			t.Errorf("Dovecot's refusal: advice %q", ce.Advice)
		}
	})
}

// TestHungServerDetected: a server that stops sending after the login is detected after
// ReadTimeout; the connection is closed with a network error that says so.
func TestHungServerDetected(t *testing.T) {
	d, cfg := setup(t)
	d.Append(t, user, "INBOX", mail(0))
	proxy := testenv.StartFaultProxy(t, d.POP3SAddr)
	cfg.Host, cfg.Port = hostPort(t, proxy.Addr)
	cfg.ReadTimeout = time.Second
	s := dial(t, cfg)

	proxy.Stall(testenv.Both)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx, 10)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(hangGuard):
		t.Fatal("Next hangs on a stalled server")
	}
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != connector.KindNetwork || !strings.Contains(ce.Advice, "the server stopped answering") ||
		!strings.Contains(ce.Advice, "postroom closed the connection and reconnects") {
		t.Fatalf("stalled server: %v", err)
	}
}
