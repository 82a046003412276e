package credential_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

// TestGoogleServiceAccount: a Google mailbox signing in with a service account's key file
// gets a token for its own address from the token URI of the key file; Google's refusals
// come back as auth errors whose advice names the fix.
func TestGoogleServiceAccount(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.AddUser("support@acme.test", googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	m := store.Mailbox{ID: 1, Name: "support", Protocol: "imap", Address: "support@acme.test", Login: "support@acme.test",
		Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle}}
	sec := credential.MailboxSecrets{ClientSecret: vault.NewSecret(string(sa.KeyJSON()))}
	tokenFor := func(m store.Mailbox) (string, error) {
		fn, err := credential.TokenFuncFor(m, credential.AudienceExchange, sec, credential.TokensOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return fn(context.Background(), true)
	}
	advice := func(err error) string {
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Kind != connector.KindAuth {
			t.Fatalf("want an auth error, got %v", err)
		}
		if strings.Contains(ce.Error(), "PRIVATE KEY") {
			t.Fatal("the error quotes the key")
		}
		return ce.Advice
	}

	_, err = tokenFor(m)
	if a := advice(err); !strings.Contains(a, sa.ClientID) || !strings.Contains(a, credential.GoogleScopeMail) || !strings.Contains(a, "Domain Wide Delegation") {
		t.Errorf("no delegation: advice %q", a)
	}
	sa.Delegate(googletest.ScopeMail)
	if tok, err := tokenFor(m); err != nil || !strings.HasPrefix(tok, "ya29.") {
		t.Fatalf("delegated: %q %v", tok, err)
	}
	wrong := m
	wrong.Address = "nobody@acme.test"
	if _, err := tokenFor(wrong); !strings.Contains(advice(err), "nobody@acme.test") {
		t.Errorf("wrong subject: %v", err)
	}
	g.Advance(-30 * time.Minute)
	if _, err := tokenFor(m); !strings.Contains(advice(err), "clock") {
		t.Errorf("clock skew: %v", err)
	}

	if _, err := credential.ParseServiceAccountKey([]byte(`{"type":"authorized_user"}`)); err == nil {
		t.Error("a user credential file passed as a service account key")
	}
	plan, err := credential.PlanFor(store.Mailbox{Name: "x", Auth: store.AuthOAuthDelegated,
		OAuth: store.OAuth{Provider: credential.ProviderGoogle, ClientID: "web"}}, credential.AudienceExchange)
	if err != nil || plan.TokenURL != credential.GoogleTokenURL || plan.Scopes[0] != credential.GoogleScopeMail {
		t.Errorf("Sign in with Google plan: %+v %v", plan, err)
	}
}

// TestSignInWithGoogle: a person's sign-in at Google (authorization code with PKCE,
// access_type=offline, consent asked again) leaves a refresh token and names the account
// by its email; the refresh grant's rotated tokens are saved every time.
func TestSignInWithGoogle(t *testing.T) {
	g, err := googletest.Start(googletest.Options{RotateRefreshTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@acme.test"
	g.AddUser(user, googletest.UserConfig{})
	g.AddClient("web-client.apps.googleusercontent.com", "GOCSPX-web-secret")
	g.AddRedirectURI("web-client.apps.googleusercontent.com", testRedirect)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, _ := vault.New(key)
	secrets := credential.NewSecrets(st, v)
	m, err := st.CreateMailbox(ctx, store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "imap", Address: user, Login: user, Host: "imap.gmail.com", Port: 993,
		Security: "tls", Folder: "INBOX", AfterAction: store.AfterMarkRead, MaxSizeMB: 5, Auth: store.AuthOAuthDelegated,
		OAuth: store.OAuth{Provider: credential.ProviderGoogle, ClientID: "web-client.apps.googleusercontent.com",
			TokenURL: g.TokenURL(), AuthorizeURL: g.AuthorizeURL()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.Set(ctx, m.ID, store.SecretClientSecret, vault.NewSecret("GOCSPX-web-secret")); err != nil {
		t.Fatal(err)
	}
	start, err := credential.StartSignIn(m, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(start.URL)
	if q := u.Query(); q.Get("access_type") != "offline" || !strings.Contains(q.Get("prompt"), "consent") ||
		!strings.Contains(q.Get("scope"), credential.GoogleScopeMail) || q.Get("login_hint") != user {
		t.Errorf("authorize URL %s", start.URL)
	}
	nofollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nofollow.Get(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if back.Query().Get("state") != start.State || back.Query().Get("code") == "" {
		t.Fatalf("redirect %s", back)
	}
	si := credential.NewSignIn(secrets, credential.TokensOptions{})
	signed, err := si.Redeem(ctx, m, back.Query().Get("code"), start.Verifier, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	if signed.Account != user || signed.RefreshToken.Reveal() == "" {
		t.Fatalf("signed in %+v", signed)
	}
	var saved []string
	fn, err := credential.TokenFuncFor(m, credential.AudienceExchange, credential.MailboxSecrets{
		ClientSecret: vault.NewSecret("GOCSPX-web-secret"), RefreshToken: signed.RefreshToken}, credential.TokensOptions{},
		func(_ context.Context, rt vault.Secret) error { saved = append(saved, rt.Reveal()); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if tok, err := fn(ctx, true); err != nil || !strings.HasPrefix(tok, "ya29.") {
			t.Fatalf("refresh: %q %v", tok, err)
		}
	}
	if len(saved) != 2 || saved[0] == signed.RefreshToken.Reveal() || saved[0] == saved[1] {
		t.Errorf("rotated refresh tokens saved: %d", len(saved))
	}
}
