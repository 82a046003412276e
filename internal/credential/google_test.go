package credential_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/store"
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
