package imap_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const clientID, clientSecret = "postroom-app", "app-secret"

// oauthSetup starts an authorization server and a Dovecot that checks tokens against it
// (testmail.md §4), and returns a config for user without a password or token.
func oauthSetup(t *testing.T) (*testenv.Dovecot, *oauthtest.Server, imap.Config) {
	t.Helper()
	srv := oauthtest.Start(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: srv.IntrospectionURL})
	host, p, _ := net.SplitHostPort(d.IMAPSAddr)
	port, _ := strconv.Atoi(p)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return d, srv, imap.Config{Host: host, Port: port, Security: imap.SecurityTLS, Login: user, RootCAs: roots}
}

func tokenConfig(srv *oauthtest.Server) credential.OAuthConfig {
	return credential.OAuthConfig{TokenURL: srv.TokenURL, ClientID: clientID, ClientSecret: vault.NewSecret(clientSecret)}
}

// dialErr dials and returns the error as a *connector.Error.
func dialErr(t *testing.T, cfg imap.Config) *connector.Error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := imap.Dial(ctx, cfg)
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
	ctx := context.Background()

	// A valid token logs in, and the folder reads.
	got, err := dial(t, cfg).Next(ctx, 10)
	if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Raw), "Subject: message 0") {
		t.Fatalf("after an OAuth login: %v %v", got, err)
	}
	if n := srv.Requests("refresh_token"); n != 1 {
		t.Fatalf("%d token requests for the first login, want 1", n)
	}

	// The server stops accepting the token before it expires at our side: it is renewed
	// once and the login succeeds.
	srv.ExpireAccessTokens()
	if _, err := dial(t, cfg).Next(ctx, 10); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	if n := srv.Requests("refresh_token"); n != 2 {
		t.Fatalf("%d token requests after a refused token, want 2", n)
	}
	d.WaitLog(t, "method=XOAUTH2") // Dovecot logged the login with this mechanism

	// Each renewal rotated the refresh token, and each new one was saved.
	if rotated := srv.Rotated(); len(rotated) != 2 || !slices.Equal(saved, rotated) {
		t.Fatalf("saved refresh tokens %q, want every rotated one %q", saved, rotated)
	}

	// The grant is revoked: the token is refused, the renewal answers invalid_grant.
	srv.RevokeGrants(user)
	ce := dialErr(t, cfg)
	if ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "sign in again") {
		t.Fatalf("revoked grant: kind %q advice %q (%v)", ce.Kind, ce.Advice, ce)
	}
	if strings.Contains(ce.Error(), saved[1]) {
		t.Error("the error shows the refresh token")
	}
}

// TestOAuthTokenRefusedTwice: a token the server refuses even when new (here: issued for
// another account) is renewed once, then reported with the sign-in advice.
func TestOAuthTokenRefusedTwice(t *testing.T) {
	_, srv, cfg := oauthSetup(t)
	srv.AddClient(clientID, clientSecret, "bob@example.test")
	cfg.Token = credential.ClientCredentials(tokenConfig(srv))
	ce := dialErr(t, cfg)
	if ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "the server refused the OAuth token") ||
		!strings.Contains(ce.Advice, "sign in again") {
		t.Fatalf("kind %q advice %q (%v)", ce.Kind, ce.Advice, ce)
	}
	if n := srv.Requests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2 (the first and one renewal)", n)
	}
}

// exchangeFront puts a fault proxy in front of Dovecot's plain IMAP port that answers a
// refused login with Exchange's words, refusal ("NO AUTHENTICATE failed." or "NO LOGIN
// failed."), in place of Dovecot's "NO [AUTHENTICATIONFAILED] Authentication failed."; the
// XOAUTH2 error challenge Dovecot sends first (Exchange sends none) is swallowed and
// answered with the empty response. It returns cfg pointed at the proxy in plain text.
func exchangeFront(t *testing.T, d *testenv.Dovecot, cfg imap.Config, refusal string) imap.Config {
	t.Helper()
	p := testenv.StartFaultProxy(t, d.IMAPAddr)
	p.RewriteLines(
		testenv.LineRule{Match: regexp.MustCompile(`^\+ eyJ`), Answer: "\r\n"},
		testenv.LineRule{Match: regexp.MustCompile(`^(\S+) NO \[AUTHENTICATIONFAILED\]`), Replace: "$1 NO " + refusal},
	)
	host, port, _ := net.SplitHostPort(p.Addr)
	cfg.Host, cfg.Security = host, imap.SecurityNone
	cfg.Port, _ = strconv.Atoi(port)
	return cfg
}

// TestExchangeRefusals: Exchange Online's "NO AUTHENTICATE failed." to a token it refuses
// even when new is explained with what Exchange needs (the app's service principal,
// FullAccess, IMAP enabled for the mailbox), not with a new sign-in; its "NO LOGIN failed."
// to a password says Exchange Online takes no passwords: use OAuth 2.0.
func TestExchangeRefusals(t *testing.T) {
	d, srv, cfg := oauthSetup(t)
	d.AddUser(t, user, password)

	t.Run("oauth", func(t *testing.T) {
		srv.AddClient(clientID, clientSecret, "bob@example.test") // valid tokens Dovecot refuses for alice
		cfg := exchangeFront(t, d, cfg, "AUTHENTICATE failed.")
		cfg.Token = credential.ClientCredentials(tokenConfig(srv))
		ce := dialErr(t, cfg)
		if ce.Kind != connector.KindAuth || !strings.Contains(ce.Error(), "AUTHENTICATE failed.") {
			t.Errorf("kind %q, error %v; want KindAuth with Exchange's words", ce.Kind, ce)
		}
		for _, want := range []string{"check the app's permissions in Exchange", "New-ServicePrincipal",
			"Add-MailboxPermission -Identity " + user, "FullAccess", "Set-CASMailbox -Identity " + user + " -ImapEnabled $true"} {
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
		cfg := exchangeFront(t, d, cfg, "LOGIN failed.")
		cfg.Password = vault.NewSecret("wrong")
		ce := dialErr(t, cfg)
		if ce.Kind != connector.KindAuth || !strings.Contains(ce.Error(), "LOGIN failed.") {
			t.Errorf("kind %q, error %v; want KindAuth with Exchange's words", ce.Kind, ce)
		}
		for _, want := range []string{"basic authentication", "use OAuth 2.0"} {
			if !strings.Contains(ce.Advice, want) {
				t.Errorf("advice %q\nwant it to contain %q", ce.Advice, want)
			}
		}
	})
	t.Run("dovecot's words", func(t *testing.T) {
		// The same refusal in Dovecot's words (RFC 5530) keeps the general advice.
		host, p, _ := net.SplitHostPort(d.IMAPAddr)
		cfg := cfg
		cfg.Host, cfg.Security, cfg.Password = host, imap.SecurityNone, vault.NewSecret("wrong")
		cfg.Port, _ = strconv.Atoi(p)
		if ce := dialErr(t, cfg); !strings.Contains(ce.Advice, "check the login name and password of this mailbox") || strings.Contains(ce.Advice, "OAuth") {
			t.Errorf("Dovecot's refusal: advice %q", ce.Advice)
		}
	})
}

// TestHungServerDetected: a server that stops sending in the middle of a session is
// detected after ReadTimeout and the connection closed with a network error; the quiet
// of IDLE is not taken for a hang.
func TestHungServerDetected(t *testing.T) {
	d, cfg := setup(t)
	d.Append(t, user, "INBOX", mail(0))
	proxy := testenv.StartFaultProxy(t, d.IMAPSAddr)
	host, p, _ := net.SplitHostPort(proxy.Addr)
	cfg.Host = host
	cfg.Port, _ = strconv.Atoi(p)
	cfg.ReadTimeout = time.Second
	s := dial(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// IDLE for longer than ReadTimeout: quiet, not hung.
	if err := s.Wait(ctx, 2500*time.Millisecond); err != nil {
		t.Fatalf("IDLE longer than ReadTimeout: %v", err)
	}
	if got, err := s.Next(ctx, 10); err != nil || len(got) != 1 {
		t.Fatalf("after IDLE: %v %v", got, err)
	}

	proxy.Stall(testenv.Both)
	done := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx, 10)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Next hangs on a stalled server")
	}
	if ctx.Err() != nil {
		t.Fatalf("Next returned only when the test's context ended: %v", err)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != connector.KindNetwork || !strings.Contains(ce.Advice, "the server stopped answering") ||
		!strings.Contains(ce.Advice, "postroom closed the connection and reconnects") {
		t.Fatalf("stalled server: %v", err)
	}
}

// TestNonASCIIFolders: folder names outside ASCII go to Dovecot in modified UTF-7
// (RFC 3501 §5.1.3): the folder is read and the move target created under the right name.
func TestNonASCIIFolders(t *testing.T) {
	d, cfg := setup(t)
	const folder, done = "Réclamations", "Erledigt-Überprüft"
	d.Append(t, user, folder, mail(0))
	d.Append(t, user, folder, mail(1))
	cfg.Folder, cfg.AfterAction, cfg.MoveFolder = folder, store.AfterMove, done
	s := dial(t, cfg)
	ctx := context.Background()
	got, err := s.Next(ctx, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("next in %q: %d %v", folder, len(got), err)
	}
	if err := s.Ack(ctx, []string{got[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	moved, left := d.Messages(t, user, done), d.Messages(t, user, folder)
	if len(moved) != 1 || moved[0].Subject != "message 0" || len(left) != 1 || left[0].Subject != "message 1" {
		t.Fatalf("%q holds %v, %q holds %v", done, moved, folder, left)
	}
	// A second session finds the folders again by the same names.
	cfg.Cursor = got[1].Cursor
	if more, err := dial(t, cfg).Next(ctx, 10); err != nil || len(more) != 0 {
		t.Fatalf("second session: %v %v", more, err)
	}
}
