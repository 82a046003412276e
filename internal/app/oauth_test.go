package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestOAuthMailboxEndToEnd: an IMAP mailbox whose sign-in is an OAuth 2.0 setting
// (custom provider, a refresh token) ingests from real Dovecot checking tokens with its
// oauth2 passdb; every rotated refresh token is saved encrypted; after the grant is
// revoked (a password reset), the next login puts the mailbox in error with advice to
// sign in again, and neither token reaches the log.
func TestOAuthMailboxEndToEnd(t *testing.T) {
	srv := oauthtest.Start(t)
	srv.AddClient("postroom-app", "app-secret", "")
	srv.Rotate(true)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: srv.IntrospectionURL})
	user := "support@example.test"
	d.Append(t, user, "INBOX", customerMail(1))
	dir := t.TempDir()
	logs := &testenv.LogBuffer{}
	h := startAppLogged(t, dir, certPool(t, d.CertPEM), logs)
	ctx := context.Background()
	host, port := hostPort(t, d.IMAPSAddr)
	grant := srv.Grant(user)
	refresh, secret := vault.NewSecret(grant), vault.NewSecret("app-secret")
	m, err := h.app.Mailboxes.Create(ctx, "admin", mailbox.Input{
		Name: "support", Direction: store.Inbound, Protocol: mailbox.IMAP, Address: user,
		Host: host, Port: port, Security: mailbox.SecurityTLS, Login: user,
		Auth: store.AuthOAuthDelegated,
		OAuth: store.OAuth{Provider: credential.ProviderCustom, TokenURL: srv.TokenURL, ClientID: "postroom-app",
			Scopes: "https://mail.example.test/"},
		ClientSecret: &secret, RefreshToken: &refresh,
	})
	if err != nil {
		t.Fatalf("create the OAuth mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ingest over XOAUTH2", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 1, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	rotated := srv.Rotated()
	if len(rotated) == 0 {
		t.Fatal("the provider never rotated the refresh token")
	}
	stored, err := h.app.Passwords.Secrets().Get(ctx, m.ID, store.SecretRefreshToken)
	if err != nil || stored.Reveal() != rotated[len(rotated)-1] {
		t.Fatalf("stored refresh token is not the newest one the provider issued (err %v)", err)
	}
	h.stop()

	// A password reset revokes the grant; the next start signs in again and fails.
	srv.RevokeGrants(user)
	h = startAppLogged(t, dir, certPool(t, d.CertPEM), logs)
	waitFor(t, "the mailbox in error", func() (bool, string) {
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return got.Status == store.StatusError, got.Status + " " + got.StatusMessage
	})
	got, _ := h.app.Store.Mailbox(ctx, m.ID)
	if !strings.Contains(got.StatusMessage, "sign in again") {
		t.Errorf("status message %q does not tell the admin to sign in again", got.StatusMessage)
	}
	st, err := h.app.Mailboxes.Status(ctx, got)
	if err != nil || st.State != mailbox.StateError {
		t.Errorf("mailboxes page state %q (%v), want error", st.State, err)
	}
	h.stop()
	for _, tok := range append(rotated, grant, "app-secret") {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("a token or secret is in the log")
		}
	}
}
