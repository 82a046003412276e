package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestGoogleServiceAccountMailboxEndToEnd: an IMAP mailbox of provider google signs in to
// real Dovecot (checking tokens at the Google stand-in) with a token its service account
// got by the JWT bearer grant, and ingests; the key file is never returned or logged;
// without domain-wide delegation the mailbox is in error with advice naming the client id
// and the scope.
func TestGoogleServiceAccountMailboxEndToEnd(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@acme.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: g.IntrospectURL()})
	d.Append(t, user, "INBOX", customerMail(1))
	logs := &testenv.LogBuffer{}
	h := startAppLogged(t, t.TempDir(), certPool(t, d.CertPEM), logs)
	defer h.stop()
	ctx := context.Background()
	host, port := hostPort(t, d.IMAPSAddr)
	key := vault.NewSecret(string(sa.KeyJSON()))
	m, err := h.app.Mailboxes.Create(ctx, "admin", mailbox.Input{
		Name: "google_support", Direction: store.Inbound, Protocol: mailbox.IMAP, Address: user,
		Host: host, Port: port, Security: mailbox.SecurityTLS,
		Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle},
		ClientSecret: &key,
	})
	if err != nil {
		t.Fatalf("create the Google mailbox: %v", err)
	}
	if m.OAuth.ClientID != sa.ClientID || m.Login != user {
		t.Errorf("client id %q login %q, want the key file's %q and the address", m.OAuth.ClientID, m.Login, sa.ClientID)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mailbox in error without delegation", func() (bool, string) {
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return got.Status == store.StatusError, got.Status + " " + got.StatusMessage
	})
	got, _ := h.app.Store.Mailbox(ctx, m.ID)
	if !strings.Contains(got.StatusMessage, sa.ClientID) || !strings.Contains(got.StatusMessage, "https://mail.google.com/") {
		t.Errorf("status %q does not name the client id and scope to delegate", got.StatusMessage)
	}

	sa.Delegate(googletest.ScopeMail)
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ingest over XOAUTH2 with a service account token", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 1, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "ya29.") {
		t.Error("the key or a token reached the log")
	}
}
