package credential_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/vault"
)

const (
	clientID, clientSecret = "postroom-app", "s3cret-value-never-shown"
	email                  = "alice@example.test"
)

func oauthConfig(srv *oauthtest.Server, log *slog.Logger) credential.OAuthConfig {
	return credential.OAuthConfig{TokenURL: srv.TokenURL, ClientID: clientID, ClientSecret: vault.NewSecret(clientSecret),
		Scopes: []string{"https://outlook.office365.com/.default"}, Logger: log}
}

// capture returns a logger that writes every level to the returned buffer.
func capture() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// TestClientCredentialsReusesUntilRefresh: a token is fetched once and reused; refresh
// asks the endpoint for a new one.
func TestClientCredentialsReusesUntilRefresh(t *testing.T) {
	srv := oauthtest.Start(t)
	srv.AddClient(clientID, clientSecret, email)
	tok := credential.ClientCredentials(oauthConfig(srv, nil))
	ctx := context.Background()
	a, err := tok(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok(ctx, false)
	if err != nil || b != a {
		t.Fatalf("second call: %q %v, want the same token %q", b, err, a)
	}
	if n := srv.Requests("client_credentials"); n != 1 {
		t.Fatalf("%d token requests for two calls, want 1", n)
	}
	c, err := tok(ctx, true)
	if err != nil || c == a {
		t.Fatalf("refresh: %q %v, want a new token", c, err)
	}
	if n := srv.Requests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests after a refresh, want 2", n)
	}
}

// TestRefreshTokenRotationSavedEveryTime: each rotated refresh token is saved, in order,
// and the next renewal uses it (the old one is revoked by the endpoint).
func TestRefreshTokenRotationSavedEveryTime(t *testing.T) {
	srv := oauthtest.Start(t)
	srv.AddClient(clientID, clientSecret, "")
	srv.Rotate(true)
	first := srv.Grant(email)
	var saved []string
	tok := credential.RefreshToken(oauthConfig(srv, nil), vault.NewSecret(first), func(_ context.Context, s vault.Secret) error {
		saved = append(saved, s.Reveal())
		return nil
	})
	ctx := context.Background()
	for i := range 3 {
		if _, err := tok(ctx, i > 0); err != nil {
			t.Fatalf("renewal %d: %v", i, err)
		}
	}
	if rotated := srv.Rotated(); len(rotated) != 3 || !slices.Equal(saved, rotated) {
		t.Fatalf("saved %q, want every rotated refresh token %q", saved, rotated)
	}
	// Without rotation nothing is saved.
	srv.Rotate(false)
	if _, err := tok(ctx, true); err != nil {
		t.Fatal(err)
	}
	if len(saved) != 3 {
		t.Fatalf("saved %d times after a renewal without rotation, want 3", len(saved))
	}
}

// TestRefreshTokenSaveFailureRetried: when saving fails the call fails; the next call
// saves the same new refresh token without spending another renewal.
func TestRefreshTokenSaveFailureRetried(t *testing.T) {
	srv := oauthtest.Start(t)
	srv.AddClient(clientID, clientSecret, "")
	srv.Rotate(true)
	fail := true
	var saved []string
	tok := credential.RefreshToken(oauthConfig(srv, nil), vault.NewSecret(srv.Grant(email)), func(_ context.Context, s vault.Secret) error {
		if fail {
			return errors.New("database is locked")
		}
		saved = append(saved, s.Reveal())
		return nil
	})
	ctx := context.Background()
	_, err := tok(ctx, false)
	var ce *connector.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Advice, "could not save the renewed sign-in") {
		t.Fatalf("save failure: %v, want a connector error about saving", err)
	}
	fail = false
	if _, err := tok(ctx, false); err != nil {
		t.Fatal(err)
	}
	if rotated := srv.Rotated(); len(rotated) != 1 || !slices.Equal(saved, rotated) {
		t.Fatalf("saved %q, want the one rotated token %q", saved, rotated)
	}
	if n := srv.Requests("refresh_token"); n != 1 {
		t.Fatalf("%d renewals, want 1", n)
	}
}

// TestTokenEndpointErrorsCarryAdvice: what an administrator reads for each refusal.
func TestTokenEndpointErrorsCarryAdvice(t *testing.T) {
	tests := []struct {
		name   string
		answer oauthtest.ErrorAnswer
		kind   connector.Kind
		advice string
	}{
		{"revoked grant", oauthtest.ErrorAnswer{Code: "invalid_grant", Description: "grant revoked"},
			connector.KindAuth, "the sign-in has expired or was revoked: sign in again"},
		{"wrong secret", oauthtest.ErrorAnswer{Status: 401, Code: "invalid_client"},
			connector.KindAuth, "the client secret is wrong or expired: create a new one"},
		{"expired secret (Entra ID)", oauthtest.ErrorAnswer{Status: 401, Code: "invalid_client",
			Description: "AADSTS7000222: The provided client secret keys for app 'x' are expired. Trace ID: 1"},
			connector.KindAuth, "the client secret has expired: create a new one"},
		{"revoked refresh token (Entra ID)", oauthtest.ErrorAnswer{Code: "invalid_grant",
			Description: "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed."},
			connector.KindAuth, "sign in again"},
		{"refresh token expired by inactivity (Entra ID)", oauthtest.ErrorAnswer{Code: "invalid_grant",
			Description: "AADSTS700082: The refresh token has expired due to inactivity."},
			connector.KindAuth, "sign in again"},
		{"consent missing (Entra ID)", oauthtest.ErrorAnswer{Code: "invalid_grant",
			Description: "AADSTS65001: The user or administrator has not consented to use the application."},
			connector.KindAuth, "an administrator must grant consent"},
		{"endpoint down for a while", oauthtest.ErrorAnswer{Status: 503, Code: "temporarily_unavailable"},
			connector.KindServer, "tries again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.Start(t)
			srv.AddClient(clientID, clientSecret, email)
			refresh := srv.Grant(email)
			log, logged := capture()
			for _, tok := range []connector.TokenFunc{
				credential.ClientCredentials(oauthConfig(srv, log)),
				credential.RefreshToken(oauthConfig(srv, log), vault.NewSecret(refresh), nil),
			} {
				srv.FailNext(tt.answer)
				_, err := tok(context.Background(), false)
				var ce *connector.Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %T %v is not a *connector.Error", err, err)
				}
				if ce.Kind != tt.kind || !strings.Contains(ce.Advice, tt.advice) {
					t.Errorf("got %q %q, want kind %q and advice containing %q", ce.Kind, ce.Advice, tt.kind, tt.advice)
				}
				for _, secret := range []string{clientSecret, refresh} {
					if strings.Contains(err.Error(), secret) || strings.Contains(logged.String(), secret) {
						t.Errorf("a secret shows in the error %q or the log %q", err, logged)
					}
				}
			}
		})
	}
}

// TestTokenEndpointUnreachable: a token URL where nothing listens is a network error
// naming the endpoint, retried.
func TestTokenEndpointUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/token"
	ln.Close()
	tok := credential.ClientCredentials(credential.OAuthConfig{TokenURL: url, ClientID: clientID, ClientSecret: vault.NewSecret(clientSecret)})
	_, err = tok(context.Background(), false)
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != connector.KindNetwork || !strings.Contains(ce.Advice, url) {
		t.Fatalf("unreachable endpoint: %v", err)
	}
	if strings.Contains(err.Error(), clientSecret) {
		t.Errorf("the client secret shows in %q", err)
	}
}

// TestTokensNeverLogged: a full flow with rotation logs no token and no secret.
func TestTokensNeverLogged(t *testing.T) {
	srv := oauthtest.Start(t)
	srv.AddClient(clientID, clientSecret, email)
	srv.Rotate(true)
	refresh := srv.Grant(email)
	log, logged := capture()
	var secrets []string
	tok := credential.RefreshToken(oauthConfig(srv, log), vault.NewSecret(refresh), func(_ context.Context, s vault.Secret) error {
		secrets = append(secrets, s.Reveal())
		return nil
	})
	cc := credential.ClientCredentials(oauthConfig(srv, log))
	for i := range 2 {
		for _, f := range []connector.TokenFunc{tok, cc} {
			at, err := f(context.Background(), i > 0)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, at)
		}
	}
	if logged.Len() == 0 {
		t.Fatal("nothing logged: the test would not catch a leak")
	}
	for _, s := range append(secrets, clientSecret, refresh) {
		if strings.Contains(logged.String(), s) {
			t.Errorf("the log shows a secret:\n%s", logged)
		}
	}
}
