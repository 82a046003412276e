package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// Bounds of -max-connecting. The default starts a thousand mailboxes on one Dovecot
// without a login timing out (README, Performance).
const (
	defaultMaxConnecting = 32
	minMaxConnecting     = 1
	maxMaxConnecting     = 1000
)

// parseMaxConnecting reads -max-connecting / POSTROOM_MAX_CONNECTING; empty is the default.
func parseMaxConnecting(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultMaxConnecting, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minMaxConnecting || n > maxMaxConnecting {
		return 0, fmt.Errorf("-max-connecting (%s) %q: give a whole number from %d to %d, or leave it empty for %d",
			envMaxConnecting, v, minMaxConnecting, maxMaxConnecting, defaultMaxConnecting)
	}
	return n, nil
}

// Bounds of -lease-seconds (README, Several nodes): a node renews its leases every third of
// it, so that two renewals may fail before a lease is lost; the default lets another node
// take over a killed node's mailboxes within 10 s.
const (
	defaultLeaseSeconds = 6
	minLeaseSeconds     = 3
	maxLeaseSeconds     = 600
)

// parseLeaseSeconds reads -lease-seconds / POSTROOM_LEASE_SECONDS; empty is the default.
func parseLeaseSeconds(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultLeaseSeconds * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minLeaseSeconds || n > maxLeaseSeconds {
		return 0, fmt.Errorf("-lease-seconds (%s) %q: give a whole number of seconds from %d to %d, or leave it empty for %d",
			envLeaseSeconds, v, minLeaseSeconds, maxLeaseSeconds, defaultLeaseSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

// maxNodeName bounds -node-name.
const maxNodeName = 100

// parseNodeName reads -node-name / POSTROOM_NODE_NAME: empty keeps the data folder's name.
func parseNodeName(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > maxNodeName || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f || r == '/' }) {
		return "", fmt.Errorf("-node-name (%s) %q: give one line of at most %d characters without '/', or leave it empty for the data folder's node name",
			envNodeName, v, maxNodeName)
	}
	return v, nil
}

// Bounds of -shutdown-timeout.
const (
	minShutdownTimeout = time.Second
	maxShutdownTimeout = 10 * time.Minute
)

// parseShutdownTimeout reads -shutdown-timeout / POSTROOM_SHUTDOWN_TIMEOUT; empty is the
// default.
func parseShutdownTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return app.DefaultShutdownTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minShutdownTimeout || d > maxShutdownTimeout {
		return 0, fmt.Errorf("-shutdown-timeout (%s) %q: give a duration from %s to %s such as 20s, or leave it empty for %s",
			envShutdownTimeout, v, minShutdownTimeout, maxShutdownTimeout, app.DefaultShutdownTimeout)
	}
	return d, nil
}

// runServe runs the product against real mail servers.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, true)
	publicURL := fs.String("public-url", getenv(envPublicURL), "the URL at which Microsoft Graph's change notifications and sign-in redirects reach this postroom, e.g. https://postroom.example.org (env "+envPublicURL+"); empty: Graph mailboxes are polled")
	secureCookies := fs.String("secure-cookies", getenv(envSecureCookies), "1 when browsers reach postroom over HTTPS through a proxy that ends TLS: the session cookie is Secure and every answer carries Strict-Transport-Security (env "+envSecureCookies+"); an https public URL does the same")
	maxConnecting := fs.String("max-connecting", getenv(envMaxConnecting), fmt.Sprintf("how many mailboxes may be signing in to their servers at the same time, %d to %d (env %s); the others wait their turn; empty: %d", minMaxConnecting, maxMaxConnecting, envMaxConnecting, defaultMaxConnecting))
	nodeName := fs.String("node-name", getenv(envNodeName), "this node's name among several nodes on one PostgreSQL database, shown on the Nodes page (env "+envNodeName+"); empty: the name kept in the data folder (host name and a random suffix)")
	leaseSeconds := fs.String("lease-seconds", getenv(envLeaseSeconds), fmt.Sprintf("how long a node holds a mailbox without renewing its lease, %d to %d (env %s): another node takes over a dead node's mailboxes after about that long; empty: %d", minLeaseSeconds, maxLeaseSeconds, envLeaseSeconds, defaultLeaseSeconds))
	shutdownTimeout := fs.String("shutdown-timeout", getenv(envShutdownTimeout), fmt.Sprintf("how long a graceful stop (SIGTERM, SIGINT) may take before what is in flight is cut off and handed back, e.g. 20s (env %s); empty: %s", envShutdownTimeout, app.DefaultShutdownTimeout))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom serve [flags]\n\nEnvironment: %s, %s (and _FILE), %s, %s, %s, %s, %s, %s, %s; for OAuth mailboxes %s and %s (and _FILE, also for OUTBOUND).\n\nFlags:\n",
			envDatabaseURL, envDatabaseURL, "POSTROOM_SECRET_KEY", envAdminPassword, envInboundURL, envInboundPass, envOutboundURL, envOutboundPass, envPublicURL,
			"POSTROOM_INBOUND_CLIENT_SECRET", "POSTROOM_INBOUND_CLIENT_CERTIFICATE")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	connecting, err := parseMaxConnecting(*maxConnecting)
	if err != nil {
		return err
	}
	stopWithin, err := parseShutdownTimeout(*shutdownTimeout)
	if err != nil {
		return err
	}
	secure, err := parseSecureCookies(*secureCookies)
	if err != nil {
		return err
	}
	node, err := parseNodeName(*nodeName)
	if err != nil {
		return err
	}
	lease, err := parseLeaseSeconds(*leaseSeconds)
	if err != nil {
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
	log.Info("postroom serve starting", slog.String("version", version), slog.String("data", c.dataDir),
		slog.String("database", databaseKind(dbURL)))

	// A signal (ctx) during start-up stops it cleanly. Opening and migrating the database
	// stay cancellable (they may wait on the network or on another node's migration); each
	// of their steps is one transaction, so a cancelled one leaves nothing behind and the
	// next start does it again. The first admin and the configured mailboxes take several
	// store calls each (a mailbox, then its password, then enabling it), so they are not
	// cut short: they finish, within bootstrapTimeout, and serve stops after them.
	a, err := app.Open(ctx, app.Config{DataDir: c.dataDir, DatabaseURL: dbURL, Getenv: getenv, Logger: log, Version: version, PublicURL: *publicURL,
		MaxConnecting: connecting, SecureCookies: secure, NodeName: node, LeaseTime: lease, ShutdownTimeout: stopWithin})
	if err != nil {
		return stoppedDuringStartup(ctx, log, "open and migrate the database", err)
	}
	defer a.Close()
	if ctx.Err() != nil {
		return stoppedDuringStartup(ctx, log, "open and migrate the database", ctx.Err())
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bootstrapTimeout)
	defer cancel()
	if err := bootstrapAdmin(bctx, a, getenv, stdout); err != nil {
		return err
	}
	if err := bootstrapMailboxes(bctx, a, getenv); err != nil {
		return err
	}
	cancel()
	if ctx.Err() != nil {
		return stoppedDuringStartup(ctx, log, "create the first admin and the configured mailboxes", ctx.Err())
	}
	ln, err := listen("web UI", c.listen, "listen")
	if err != nil {
		return err
	}
	printf(stdout, "postroom %s serving http://%s (data folder %s, database %s)\n", version, ln.Addr(), c.dataDir, databaseKind(dbURL))
	if err := a.Run(ctx, ln); err != nil {
		return err
	}
	log.Info("stopped by a signal")
	return nil
}

// bootstrapTimeout bounds writing the first admin and the configured mailboxes, which a
// signal does not interrupt.
const bootstrapTimeout = 30 * time.Second

// stoppedDuringStartup returns err from the start-up step doing, unless ctx was cancelled
// (SIGTERM or SIGINT): then start-up stopped because it was asked to, which is not a
// failure, and it logs that instead.
func stoppedDuringStartup(ctx context.Context, log *slog.Logger, doing string, err error) error {
	if ctx.Err() == nil {
		return err
	}
	log.Info("stopped by a signal during start-up", slog.String("step", doing))
	log.Debug("start-up step interrupted", slog.String("step", doing), slog.Any("error", err))
	return nil
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
	} else if msg := auth.ValidatePassword(password, "admin"); msg != "" {
		return fmt.Errorf("%s is refused: %s (the first admin's password follows the rule of every password: at least %d characters, not a common one, not the user name); set another, or leave it empty to have one generated", envAdminPassword, msg, auth.MinPasswordLen)
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
		clientSecret, cert, err := mailboxOAuthSecrets(getenv, b.urlKey)
		if err != nil {
			return err
		}
		in := app.MailboxInput{Mailbox: m, Password: pw, ClientSecret: clientSecret, Certificate: cert}
		if _, err := a.EnsureMailbox(ctx, "system", in); err != nil {
			return fmt.Errorf("%s: %w", b.urlKey, err)
		}
	}
	return nil
}
