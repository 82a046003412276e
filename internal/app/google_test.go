package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestGmailMailboxEndToEnd: a Gmail API mailbox (provider google, service account) on
// the stand-in ingests the unread INBOX mail, marks it read after commit, follows the
// history from the saved historyId, reads the label again when Gmail forgot the history
// (nothing twice).
func TestGmailMailboxEndToEnd(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@example.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	sa.Delegate(googletest.ScopeMail)
	for i := range 3 {
		if _, err := g.Deliver(user, customerMail(i)); err != nil {
			t.Fatal(err)
		}
	}
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	host, port := hostPort(t, strings.TrimPrefix(g.GmailURL(), "http://"))
	key := vault.NewSecret(string(sa.KeyJSON()))
	in := mailbox.Input{
		Name: "google_support", Direction: store.Inbound, Protocol: mailbox.Gmail, Address: user,
		Host: host, Port: port, Security: mailbox.SecurityNone, PollInterval: 10 * time.Second,
		Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle},
		ClientSecret: &key,
	}
	m, err := h.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatalf("create the Gmail mailbox: %v", err)
	}
	if m.Folder != "INBOX" || m.AfterAction != store.AfterMarkRead {
		t.Errorf("defaults: folder %q after %q", m.Folder, m.AfterAction)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	count := func(want int, what string) {
		waitFor(t, what, func() (bool, string) {
			c, _ := h.app.Store.CountMessages(ctx, m.ID)
			got, _ := h.app.Store.Mailbox(ctx, m.ID)
			return c == want, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
		})
	}
	count(3, "the first sync")
	waitFor(t, "UNREAD removed after commit", func() (bool, string) {
		for _, msg := range g.Messages(user) {
			if slices.Contains(msg.Labels, "UNREAD") {
				return false, msg.ID + " unread"
			}
		}
		return true, ""
	})
	_, _ = g.Deliver(user, customerMail(3))
	count(4, "a message from the history")
	g.ExpireHistory(user)
	_, _ = g.Deliver(user, customerMail(4))
	count(5, "a message after a full resync")

	c, _ := h.app.Store.CountMessages(ctx, m.ID)
	if c != 5 {
		t.Errorf("%d stored in the end, want 5 (none twice)", c)
	}
}

// TestGmailReply: an agent's reply goes out through an outbound Gmail mailbox
// (messages.send raw), threaded to the customer's email.
func TestGmailReply(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@example.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	sa.Delegate(googletest.ScopeMail)
	_, _ = g.Deliver(user, customerMail(1))
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	host, port := hostPort(t, strings.TrimPrefix(g.GmailURL(), "http://"))
	key := vault.NewSecret(string(sa.KeyJSON()))
	in := mailbox.Input{
		Name: "google_support", Direction: store.Inbound, Protocol: mailbox.Gmail, Address: user,
		Host: host, Port: port, Security: mailbox.SecurityNone, PollInterval: 10 * time.Second,
		Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle},
		ClientSecret: &key,
	}
	m, err := h.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}

	out := in
	out.PollInterval = 0
	out.Name, out.Direction = "google_out", store.Outbound
	o, err := h.app.Mailboxes.Create(ctx, "admin", out)
	if err != nil {
		t.Fatalf("create the outbound Gmail mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", o.ID); err != nil {
		t.Fatal(err)
	}
	h.replyAsAgent("Your parcel left our warehouse today.")
	waitFor(t, "the reply at Gmail", func() (bool, string) {
		n := len(g.Sent(user))
		return n == 1, fmt.Sprintf("%d sent", n)
	})
	raw := string(g.Sent(user)[0])
	if !strings.Contains(raw, "In-Reply-To: <order-") || !strings.Contains(raw, "parcel left our warehouse") {
		t.Errorf("sent:\n%s", raw)
	}
}

// TestGoogleServiceAccountSMTPReply: a reply leaves through an outbound SMTP mailbox of
// provider google (submission with STARTTLS, XOAUTH2 with the service account's token,
// checked by real Dovecot at the stand-in), after the customer's email came in over IMAP
// the same way.
func TestGoogleServiceAccountSMTPReply(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@example.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	sa.Delegate(googletest.ScopeMail)
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: g.IntrospectURL(), SubmissionRelay: sink.Addr})
	d.Append(t, user, "INBOX", customerMail(7))
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	key := vault.NewSecret(string(sa.KeyJSON()))
	host, port := hostPort(t, d.IMAPSAddr)
	_, subPort := hostPort(t, d.SubmissionAddr)
	for _, in := range []mailbox.Input{
		{Name: "google_in", Direction: store.Inbound, Protocol: mailbox.IMAP, Address: user, Host: host, Port: port,
			Security: mailbox.SecurityTLS, Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle}, ClientSecret: &key},
		{Name: "google_out", Direction: store.Outbound, Protocol: mailbox.SMTP, Address: user, Host: "localhost", Port: subPort,
			Security: mailbox.SecurityStartTLS, Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: credential.ProviderGoogle}, ClientSecret: &key},
	} {
		m, err := h.app.Mailboxes.Create(ctx, "admin", in)
		if err != nil {
			t.Fatalf("create %s: %v", in.Name, err)
		}
		if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.replyAsAgent("Your parcel left our warehouse today.")
	got := sink.Wait(t, 1, waitLimit)[0]
	if got.MailFrom != user || len(got.Rcpts) != 1 || got.Rcpts[0] != "customer7@example.org" ||
		!strings.Contains(string(got.Data), "In-Reply-To: <order-7@example.org>") {
		t.Errorf("relayed: from %q to %v\n%s", got.MailFrom, got.Rcpts, got.Data)
	}
}
