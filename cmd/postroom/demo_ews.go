package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// The demo's Exchange Server mailbox, read over EWS from the local stand-in.
const (
	demoEWSMailbox  = "ews_local_support"
	demoEWSAddress  = "support@exchange.contoso.local"
	demoEWSMessages = 4
)

// startEWSDemo starts the local EWS stand-in (an Exchange Server on loopback; nothing
// reaches a real Exchange) with a sample mailbox holding a few customer messages.
func startEWSDemo(log *slog.Logger) (*ewstest.Server, ewstest.Sample, error) {
	srv, err := ewstest.Start(ewstest.Options{Logger: log})
	if err != nil {
		return nil, ewstest.Sample{}, fmt.Errorf("start the local EWS stand-in: %w", err)
	}
	sample, err := srv.SampleSetup(demoEWSAddress, demoEWSMessages)
	if err != nil {
		srv.Close()
		return nil, ewstest.Sample{}, fmt.Errorf("local EWS sample mailbox: %w", err)
	}
	return srv, sample, nil
}

// seedEWSDemo creates the inbound EWS mailbox on the stand-in, signing in with Basic as
// its service account (Full Access to the mailbox), as an administrator would.
func seedEWSDemo(ctx context.Context, a *app.App, s ewstest.Sample) error {
	m := store.Mailbox{
		Name: demoEWSMailbox, Direction: store.Inbound, Protocol: "ews", Address: s.Mailbox,
		Host: s.Host, Port: s.Port, Security: "none", Login: s.Login, Folder: "inbox",
		MaxSizeMB: 5, PollInterval: 10 * time.Second, Enabled: true, Auth: store.AuthPassword,
	}
	saved, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: m, Password: vault.NewSecret(s.Password)})
	if err != nil {
		return fmt.Errorf("create the demo EWS mailbox: %w", err)
	}
	// The stand-in is new at every start: its sync states of the last run mean nothing.
	if err := a.Store.SetCursor(ctx, store.Cursor{MailboxID: saved.ID}); err != nil {
		return fmt.Errorf("reset the demo EWS mailbox's position: %w", err)
	}
	return nil
}

// ewsBanner is the demo banner's lines about the EWS mailbox.
func ewsBanner(srv *ewstest.Server, s ewstest.Sample) string {
	return fmt.Sprintf("  Exchange Server (LOCAL EWS STAND-IN, not a real Exchange): mailbox %q reads %s\n"+
		"                over EWS at %s, signed in (Basic) as %s / %s\n", demoEWSMailbox, s.Mailbox, srv.URL(), s.Login, s.Password)
}
