package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
)

// runServe runs the product against real mail servers.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, true)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom serve [flags]\n\nEnvironment: %s, %s (and _FILE), %s, %s, %s, %s, %s, %s.\n\nFlags:\n",
			envDatabaseURL, envDatabaseURL, "POSTROOM_SECRET_KEY", envAdminPassword, envInboundURL, envInboundPass, envOutboundURL, envOutboundPass)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, app.Config{DataDir: c.dataDir, DatabaseURL: dbURL, Getenv: getenv, Logger: log, Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := bootstrapAdmin(ctx, a, getenv, stdout); err != nil {
		return err
	}
	if err := bootstrapMailboxes(ctx, a, getenv); err != nil {
		return err
	}
	ln, err := listen("web UI", c.listen, "listen")
	if err != nil {
		return err
	}
	printf(stdout, "postroom %s serving http://%s (data folder %s, database %s)\n", version, ln.Addr(), c.dataDir, databaseKind(dbURL))
	return a.Run(ctx, ln)
}

func databaseKind(url string) string {
	if url != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// bootstrapAdmin creates the first admin on an empty database, with the password from
// POSTROOM_ADMIN_PASSWORD or a generated one printed once.
func bootstrapAdmin(ctx context.Context, a *app.App, getenv func(string) string, stdout io.Writer) error {
	users, err := a.Store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if len(users) > 0 {
		return nil
	}
	password, err := secretEnv(getenv, envAdminPassword)
	if err != nil {
		return err
	}
	generated := password == ""
	if generated {
		password = randomPassword()
	}
	if _, err := a.Auth.CreateUser(ctx, "admin", "Administrator", store.RoleAdmin, password); err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	if generated {
		printf(stdout, "created user admin with password %s (shown once: sign in and keep it safe, or set %s before the first start)\n", password, envAdminPassword)
	}
	return nil
}

// bootstrapMailboxes creates or updates the mailboxes named "inbound" and "outbound" from
// POSTROOM_INBOUND_URL and POSTROOM_OUTBOUND_URL, when set.
func bootstrapMailboxes(ctx context.Context, a *app.App, getenv func(string) string) error {
	for _, b := range []struct{ name, urlKey, passKey string }{
		{"inbound", envInboundURL, envInboundPass},
		{"outbound", envOutboundURL, envOutboundPass},
	} {
		raw := getenv(b.urlKey)
		if raw == "" {
			continue
		}
		m, err := mailboxFromURL(b.name, raw)
		if err != nil {
			return fmt.Errorf("%s: %w", b.urlKey, err)
		}
		pw, err := mailboxSecret(getenv, b.passKey)
		if err != nil {
			return err
		}
		if _, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: m, Password: pw}); err != nil {
			return fmt.Errorf("%s: %w", b.urlKey, err)
		}
	}
	return nil
}
