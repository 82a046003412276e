package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/demo"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
	"github.com/postroom/postroom/internal/web"
	"github.com/postroom/postroom/internal/workitem"
)

// demoIngestWait bounds how long the demo waits for the sample emails to become work
// items before it opens the web UI.
const demoIngestWait = 20 * time.Second

// runDemo runs the whole product on SQLite with an in-process demo IMAP and SMTP server
// preloaded with sample customer emails.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listenAddr := fs.String("listen", defaultListen, "address of the web UI and API")
	imapAddr := fs.String("imap-addr", demo.DefaultIMAPAddr, "address of the demo IMAP server")
	smtpAddr := fs.String("smtp-addr", demo.DefaultSMTPAddr, "address of the demo SMTP server (send mail here)")
	password := fs.String("password", "demo", "password of the admin and agent accounts and of the demo mail logins")
	dataDir := fs.String("data", "", "data folder to keep (default: a new temporary folder, deleted at exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	traffic := fs.String("traffic", "", "keep customers writing: a rate such as 30/min or 1/s (default: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	every, err := parseRate(*traffic)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if *password == "" {
		return fmt.Errorf("-password must not be empty")
	}
	dir := *dataDir
	if dir == "" {
		dir, err = os.MkdirTemp("", "postroom-demo-")
		if err != nil {
			return fmt.Errorf("create a temporary data folder: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	// Take the web port first, so that a taken port fails before anything else starts.
	ln, err := listen("web UI", *listenAddr, "listen")
	if err != nil {
		return err
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mail, err := demo.Start(ctx, demo.Options{IMAPAddr: *imapAddr, SMTPAddr: *smtpAddr, Password: *password, Logger: log})
	if err != nil {
		return err
	}
	defer mail.Close()
	// A local stand-in for Microsoft 365 (login and Graph hosts on loopback) with a sample
	// tenant, so the demo shows a Microsoft 365 mailbox working. Nothing reaches Microsoft.
	ms, err := mstest.Start(mstest.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("start the local Microsoft 365 stand-in: %w", err)
	}
	defer ms.Close()
	tenant, err := ms.SampleTenant(mstest.SampleOptions{})
	if err != nil {
		return fmt.Errorf("local Microsoft 365 sample tenant: %w", err)
	}
	ewsSrv, ewsSample, err := startEWSDemo(log)
	if err != nil {
		return err
	}
	defer ewsSrv.Close()

	// The demo's own key is kept in its data folder; never take a production key from the
	// environment into a throwaway folder.
	noEnv := func(string) string { return "" }
	a, err := app.Open(ctx, app.Config{DataDir: dir, Getenv: noEnv, Logger: log, Version: version, IngestReload: time.Second,
		Demo: &web.DemoMicrosoft{LoginURL: ms.LoginURL(), GraphURL: ms.GraphURL(), TenantID: tenant.TenantID,
			ClientID: tenant.ClientID, ClientSecret: tenant.ClientSecret, Mailbox: tenant.Mailbox}})
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C during start-up: not a failure
			return nil
		}
		return err
	}
	defer a.Close()
	// The accounts and mailboxes are written whole even when Ctrl-C comes meanwhile (as
	// `serve` does); then the demo stops.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), bootstrapTimeout)
	err = seedDemo(sctx, a, mail, *password)
	if err == nil {
		err = seedRouting(sctx, a, *password)
	}
	if err == nil {
		err = seedMicrosoftDemo(sctx, a, ms, tenant)
	}
	if err == nil {
		err = seedEWSDemo(sctx, a, ewsSample)
	}
	var google *googleDemo
	if err == nil {
		google, err = startGoogleDemo(sctx, a, log)
	}
	defer google.Close()
	var single demoSSO
	if err == nil {
		single, err = seedSSODemo(sctx, a, ms, tenant, ln.Addr())
	}
	scancel()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	wait := a.Start(ctx)
	defer wait()
	if every > 0 {
		go mail.Traffic(ctx, every)
	}
	waitForSamples(ctx, a.Store, len(demo.Samples(time.Now()))+len(tenant.MessageIDs)+demoEWSMessages+demoGoogleSamples)
	noteDemo(ctx, a.Store, log)

	printf(stdout, `postroom demo is running

  Web UI:       http://%s
  Sign in:      admin / %s   (administrator)
                agent / %s   (agent; bea, chen and dana too, with other skills and languages)
                supervisor / %s   (supervisor: the board at /board)
  Send mail:    SMTP %s, no login needed, to support@example.com
                e.g. swaks --server %s --to support@example.com --from you@example.org
  Demo IMAP:    %s  (support@example.com / %s; replies to customers land in "customers" / %s)
  Microsoft 365 (LOCAL STAND-IN, not Microsoft's cloud): mailbox %q reads %s
                over Microsoft Graph at %s
                tenant %s, app (client) id %s, signed in with a client secret
                To add a Graph mailbox or try Migrate to OAuth 2.0 against it (admin, Mailboxes page):
                Microsoft cloud "Another authority URL" %s, client secret %s
  Single sign-on ("Sign in with Microsoft" on the sign-in page, through the stand-in):
                %s / %s   (group Supervisors: supervisor; anyone else in the tenant: agent)
%s%s  Data folder:  %s

Press Ctrl-C to stop.
`, ln.Addr(), *password, *password, *password, mail.SMTPAddr, mail.SMTPAddr, mail.IMAPAddr, *password, *password,
		demoGraphMailbox, tenant.Mailbox, ms.GraphURL(), tenant.TenantID, tenant.ClientID, ms.LoginURL(), tenant.ClientSecret,
		single.Person, single.Password, ewsBanner(ewsSrv, ewsSample), google.note(), dir)
	return a.Serve(ctx, ln)
}

// seedDemo creates the admin and agent accounts and the inbound and outbound mailboxes.
func seedDemo(ctx context.Context, a *app.App, mail *demo.Server, password string) error {
	if _, err := a.Auth.EnsureSampleUser(ctx, "admin", "Ada Admin", store.RoleAdmin, password); err != nil {
		return fmt.Errorf("create demo admin: %w", err)
	}
	if _, err := a.Auth.EnsureSampleUser(ctx, "agent", "Alex Agent", store.RoleAgent, password); err != nil {
		return fmt.Errorf("create demo agent: %w", err)
	}
	imapHost, imapPort, err := splitHostPort(mail.IMAPAddr)
	if err != nil {
		return err
	}
	smtpHost, smtpPort, err := splitHostPort(mail.SMTPAddr)
	if err != nil {
		return err
	}
	in := store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "imap", Address: demo.SupportAddress,
		Host: imapHost, Port: imapPort, Security: "none", Login: demo.SupportLogin, Folder: "INBOX",
		MaxSizeMB: 5, PollInterval: 10 * time.Second, Enabled: true,
	}
	if _, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: in, Password: vault.NewSecret(password)}); err != nil {
		return fmt.Errorf("create demo inbound mailbox: %w", err)
	}
	out := store.Mailbox{
		Name: "support_replies", Direction: store.Outbound, Protocol: "smtp", Address: demo.SupportAddress,
		Host: smtpHost, Port: smtpPort, Security: "none", MaxSizeMB: 5, Enabled: true, IsDefault: true,
	}
	if _, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: out}); err != nil {
		return fmt.Errorf("create demo outbound mailbox: %w", err)
	}
	return nil
}

// demoGraphMailbox is the name of the demo's Microsoft 365 mailbox.
const demoGraphMailbox = "m365_local_support"

// seedMicrosoftDemo creates the inbound Graph mailbox of the local Microsoft 365 sample
// tenant, signing in as its app with a client secret, as an administrator would.
func seedMicrosoftDemo(ctx context.Context, a *app.App, ms *mstest.Server, t *mstest.Sample) error {
	m := store.Mailbox{
		Name: demoGraphMailbox, Direction: store.Inbound, Protocol: "graph", Address: t.Mailbox,
		Folder: "Inbox", MaxSizeMB: 5, PollInterval: 10 * time.Second, Enabled: true,
		Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Provider: "microsoft", Cloud: "custom", AuthorityURL: ms.LoginURL(),
			Tenant: t.TenantID, ClientID: t.ClientID},
		GraphURL: ms.GraphURL(),
	}
	saved, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: m, ClientSecret: vault.NewSecret(t.ClientSecret)})
	if err != nil {
		return fmt.Errorf("create the demo Microsoft 365 mailbox: %w", err)
	}
	// The stand-in is new at every start (-data keeps the database): a delta link of the
	// last run points at its old address, so sync from scratch; dedup keeps it exact.
	if err := a.Store.SetCursor(ctx, store.Cursor{MailboxID: saved.ID}); err != nil {
		return fmt.Errorf("reset the demo Microsoft 365 mailbox's position: %w", err)
	}
	return nil
}

// waitForSamples waits until the sample emails are stored, so that the first page shows
// them, or until demoIngestWait has passed.
func waitForSamples(ctx context.Context, st store.Store, want int) {
	deadline := time.Now().Add(demoIngestWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, err := st.CountMessages(ctx, 0); err == nil && n >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: port: %w", addr, err)
	}
	return h, n, nil
}

// parseRate reads -traffic: N/min, N/s or N/h, from one an hour to 100 a second; "" is none.
func parseRate(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	bad := fmt.Errorf("-traffic %q: write a rate such as 30/min, 2/s or 100/h (1/h to 100/s)", v)
	num, unit, ok := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n < 1 {
		return 0, bad
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s", "sec":
		per = time.Second
	case "min", "m":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return 0, bad
	}
	every := per / time.Duration(n)
	if every < 10*time.Millisecond || every > time.Hour {
		return 0, bad
	}
	return every, nil
}

// noteDemo puts the supervisor's internal note, mentioning the agent, on the oldest sample
// item, so that a newcomer sees notes and mentions (the agent's My work lists it). A demo
// whose data folder has notes already gets no second one.
func noteDemo(ctx context.Context, st store.Store, log *slog.Logger) {
	items, err := st.ListWorkItems(ctx, store.WorkItemFilter{Sort: "oldest", Limit: 1})
	if err != nil || len(items) == 0 {
		return
	}
	if notes, err := st.Notes(ctx, items[0].ID); err != nil || len(notes) > 0 {
		return
	}
	sup, err := st.UserByUsername(ctx, "supervisor")
	if err != nil {
		return
	}
	if _, err := workitem.AddNote(ctx, st, sup, items[0].ID,
		"@agent this customer wrote twice already: please answer today. (An internal note: customers never see it.)"); err != nil {
		log.Warn("demo: no sample note", slog.Any("error", err))
	}
}
