package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// The demo's Google Workspace mailbox, on the local Google stand-in.
const (
	demoGoogleMailbox = "google_local_support"
	demoGoogleUser    = "support@google.example"
	demoGoogleSamples = 2
)

// googleDemo is the demo's local Google Workspace stand-in and what it holds.
type googleDemo struct {
	srv      *googletest.Server
	clientID string
}

// Close stops the stand-in (nil: nothing).
func (g *googleDemo) Close() {
	if g != nil {
		_ = g.srv.Close()
	}
}

// note is the demo's start-up text about it.
func (g *googleDemo) note() string {
	if g == nil {
		return ""
	}
	return fmt.Sprintf(`  Google Workspace (LOCAL STAND-IN, not Google's cloud): mailbox %q reads %s
                over the Gmail API at %s, signed in as a service account with
                domain-wide delegation (client id %s, scope https://mail.google.com/)
`, demoGoogleMailbox, demoGoogleUser, g.srv.GmailURL(), g.clientID)
}

// startGoogleDemo starts the local Google stand-in on loopback with one Workspace user and
// its sample mail, and creates the inbound Gmail API mailbox that reads it, signing in
// with a service account key as an administrator would. Nothing reaches Google.
func startGoogleDemo(ctx context.Context, a *app.App, log *slog.Logger) (*googleDemo, error) {
	srv, err := googletest.Start(googletest.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start the local Google Workspace stand-in: %w", err)
	}
	g := &googleDemo{srv: srv}
	fail := func(err error) (*googleDemo, error) { g.Close(); return nil, err }
	srv.AddUser(demoGoogleUser, googletest.UserConfig{})
	sa, err := srv.AddServiceAccount("postroom-demo", "postroom")
	if err != nil {
		return fail(err)
	}
	sa.Delegate(googletest.ScopeMail)
	g.clientID = sa.ClientID
	for i, s := range []struct{ from, subject, body string }{
		{"Greta Gruber <greta@kunde.example>", "Rechnung doppelt abgebucht", "Guten Tag, meine Rechnung wurde zweimal abgebucht. Bitte erstatten Sie den Betrag."},
		{"Sam Lee <sam@customer.example>", "Cannot sign in to my account", "Hello, since yesterday I cannot sign in. Could you reset my access?"},
	} {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <google-demo-%d-%d@customer.example>\r\nDate: %s\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", s.from, demoGoogleUser, s.subject, i, time.Now().UnixNano(),
			time.Now().Format(time.RFC1123Z), s.body)
		if _, err := srv.Deliver(demoGoogleUser, []byte(raw)); err != nil {
			return fail(err)
		}
	}
	host, port, err := splitHostPort(srv.GmailURL()[len("http://"):])
	if err != nil {
		return fail(err)
	}
	m := store.Mailbox{
		Name: demoGoogleMailbox, Direction: store.Inbound, Protocol: "gmail", Address: demoGoogleUser, Login: demoGoogleUser,
		Host: host, Port: port, Security: "none", Folder: "INBOX", AfterAction: store.AfterMarkRead,
		MaxSizeMB: 5, PollInterval: 10 * time.Second, Enabled: true,
		Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: "google", ClientID: sa.ClientID},
	}
	saved, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: m, ClientSecret: vault.NewSecret(string(sa.KeyJSON()))})
	if err != nil {
		return fail(fmt.Errorf("create the demo Google Workspace mailbox: %w", err))
	}
	// The stand-in is new at every start (-data keeps the database): its historyIds start
	// again, so read from scratch; dedup keeps it exact.
	if err := a.Store.SetCursor(ctx, store.Cursor{MailboxID: saved.ID}); err != nil {
		return fail(fmt.Errorf("reset the demo Google Workspace mailbox's position: %w", err))
	}
	return g, nil
}
