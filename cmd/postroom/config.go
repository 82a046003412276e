package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postroom/postroom/internal/api"
	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Environment variables. Each *_PASSWORD and POSTROOM_DATABASE_URL can also be given as a
// file path in the same name with _FILE appended (for container secrets).
const (
	envListen          = "POSTROOM_LISTEN"         // web UI and API address, default 127.0.0.1:8025
	envData            = "POSTROOM_DATA"           // data folder, default ./postroom-data
	envDatabaseURL     = "POSTROOM_DATABASE_URL"   // postgres://... to use PostgreSQL instead of SQLite
	envAdminPassword   = "POSTROOM_ADMIN_PASSWORD" // password of the first admin, created on an empty database
	envInboundURL      = "POSTROOM_INBOUND_URL"    // e.g. imaps://support%40example.com@mail.example.com/INBOX?address=support@example.com
	envInboundPass     = "POSTROOM_INBOUND_PASSWORD"
	envPublicURL       = "POSTROOM_PUBLIC_URL"
	envOutboundURL     = "POSTROOM_OUTBOUND_URL" // e.g. smtp://support%40example.com@mail.example.com:587?address=support@example.com
	envOutboundPass    = "POSTROOM_OUTBOUND_PASSWORD"
	envLogLevel        = "POSTROOM_LOG_LEVEL"        // debug, info, warn, error
	envMaxConnecting   = "POSTROOM_MAX_CONNECTING"   // mailboxes signing in at the same time, default 32
	envShutdownTimeout = "POSTROOM_SHUTDOWN_TIMEOUT" // bound of a graceful stop, default 20s
	envSecureCookies   = "POSTROOM_SECURE_COOKIES"   // 1: HTTPS is in front (Secure cookie, HSTS), as an https public URL says
	envNodeName        = "POSTROOM_NODE_NAME"        // this node's name among several (default: the data folder's node-id)
	envLeaseSeconds    = "POSTROOM_LEASE_SECONDS"    // how long a node holds a mailbox without renewing, default 6
)

// Defaults.
const (
	defaultListen = "127.0.0.1:8025"
	defaultData   = "postroom-data"
)

// errUsage means the flags were wrong and usage was printed.
var errUsage = errors.New("usage")

// commonFlags are the flags serve, demo and migrate share.
type commonFlags struct {
	listen   string
	dataDir  string
	logLevel string
}

// openApp opens the product for a command line command on the data folder or database of
// the flags and environment (the same as "postroom serve"); the caller closes it. It also
// returns the logger made from -log-level. A data folder without a database is refused:
// only serve, demo and migrate create one.
func (c *commonFlags) openApp(ctx context.Context, getenv func(string) string, stderr io.Writer) (*app.App, *slog.Logger, error) {
	log, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return nil, nil, err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.Open(ctx, app.Config{DataDir: c.dataDir, DatabaseURL: dbURL, Getenv: getenv, Logger: log, Version: version, Existing: true})
	if errors.Is(err, app.ErrNoDatabase) {
		return nil, nil, fmt.Errorf("%w: check -data (or %s); to start a new postroom there, run \"postroom migrate -data %s\" or \"postroom serve -data %s\" first",
			err, envData, c.dataDir, c.dataDir)
	}
	if err != nil {
		return nil, nil, err
	}
	return a, log, nil
}

func (c *commonFlags) register(fs *flag.FlagSet, getenv func(string) string, withListen bool) {
	if withListen {
		fs.StringVar(&c.listen, "listen", envOr(getenv, envListen, defaultListen), "address of the web UI and API (env "+envListen+")")
	}
	fs.StringVar(&c.dataDir, "data", envOr(getenv, envData, defaultData), "data folder: SQLite database and secret key file (env "+envData+")")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, envLogLevel, "info"), "debug, info, warn or error (env "+envLogLevel+")")
}

// parseFlags parses args; -h prints usage and returns errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// secretEnv reads a secret from the environment variable key, or from the file named by
// key+"_FILE" (one trailing newline removed).
func secretEnv(getenv func(string) string, key string) (string, error) {
	if v := getenv(key); v != "" {
		return v, nil
	}
	path := getenv(key + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s_FILE: %w", key, err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// listen opens the TCP listener with a clear error when the port is taken.
func listen(what, addr, flagName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s address %s is in use: stop the other program or pass -%s with another address", what, addr, flagName)
		}
		return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// randomPassword returns a password for a generated first admin.
func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// OAuth query parameters of a mailbox URL, and the store.OAuth member each sets.
var urlOAuthParams = map[string]func(o *store.OAuth) *string{
	"provider":      func(o *store.OAuth) *string { return &o.Provider },
	"cloud":         func(o *store.OAuth) *string { return &o.Cloud },
	"authority_url": func(o *store.OAuth) *string { return &o.AuthorityURL },
	"tenant":        func(o *store.OAuth) *string { return &o.Tenant },
	"client_id":     func(o *store.OAuth) *string { return &o.ClientID },
	"token_url":     func(o *store.OAuth) *string { return &o.TokenURL },
	"authorize_url": func(o *store.OAuth) *string { return &o.AuthorizeURL },
	"scopes":        func(o *store.OAuth) *string { return &o.Scopes },
}

// mailboxFromURL turns a mailbox URL into a Mailbox:
//
//	imaps://LOGIN@HOST[:993]/FOLDER?address=A&poll=60s    implicit TLS
//	imap://LOGIN@HOST[:143]/FOLDER?...                      STARTTLS
//	imap+insecure://LOGIN@HOST:PORT/FOLDER?...              plain text (loopback test servers)
//	smtps://LOGIN@HOST[:465]?address=A                      implicit TLS
//	smtp://LOGIN@HOST[:587]?address=A                       STARTTLS
//	smtp+insecure://[LOGIN@]HOST:PORT?address=A             plain text, STARTTLS if offered
//	graph://USER@DOMAIN[/FOLDER]?tenant=T&client_id=C       Microsoft Graph (inbound;
//	                                                        &direction=outbound to send)
//
// A login containing "@" is written %40; a Graph URL's user and host are the mailbox's
// address. The password never goes in the URL.
//
// Sign-in: auth=password (the default; oauth_app for graph), oauth_app, oauth_delegated or
// oauth_ropc, with the OAuth settings tenant, client_id, cloud, authority_url, scopes,
// provider, token_url, authorize_url, secret_expires=YYYY-MM-DD and, for graph, graph_url.
// An unknown parameter is an error (a typo must not be a silent default).
func mailboxFromURL(name, raw string) (store.Mailbox, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox URL: %w", err)
	}
	if _, set := u.User.Password(); set {
		return store.Mailbox{}, errors.New("mailbox URL: put the password in the *_PASSWORD variable, not in the URL")
	}
	q := u.Query()
	if err := checkURLParams(q, u.Scheme); err != nil {
		return store.Mailbox{}, err
	}
	m := store.Mailbox{Name: name, Host: u.Hostname(), Login: u.User.Username(), MaxSizeMB: 5, Enabled: true}
	if err := oauthFromURL(q, &m); err != nil {
		return store.Mailbox{}, err
	}
	if u.Scheme == "graph" {
		return graphFromURL(u, m)
	}
	defaultPort := 0
	switch u.Scheme {
	case "imaps":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Inbound, "imap", "tls", 993
	case "imap":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Inbound, "imap", "starttls", 143
	case "imap+insecure":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Inbound, "imap", "none", 143
	case "smtps":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Outbound, "smtp", "tls", 465
	case "smtp":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Outbound, "smtp", "starttls", 587
	case "smtp+insecure":
		m.Direction, m.Protocol, m.Security, defaultPort = store.Outbound, "smtp", "none", 25
	default:
		return store.Mailbox{}, fmt.Errorf("mailbox URL scheme %q: use imaps, imap, imap+insecure, smtps, smtp, smtp+insecure or graph", u.Scheme)
	}
	if m.Host == "" {
		return store.Mailbox{}, fmt.Errorf("mailbox URL %q has no host", raw)
	}
	m.Port = defaultPort
	if p := u.Port(); p != "" {
		m.Port, err = strconv.Atoi(p)
		if err != nil || m.Port < 1 || m.Port > 65535 {
			return store.Mailbox{}, fmt.Errorf("mailbox URL port %q: use a number from 1 to 65535", p)
		}
	}
	if m.Direction == store.Inbound {
		m.Folder = strings.TrimPrefix(u.Path, "/")
		if m.Folder == "" {
			m.Folder = "INBOX"
		}
	} else {
		m.IsDefault = true
	}
	m.Address = q.Get("address")
	if m.Address == "" && strings.Contains(m.Login, "@") {
		m.Address = m.Login
	}
	if m.Address == "" {
		return store.Mailbox{}, fmt.Errorf("mailbox URL %q: add ?address=the mailbox's email address", raw)
	}
	if err := pollFromURL(q, &m); err != nil {
		return store.Mailbox{}, err
	}
	return m, nil
}

func pollFromURL(q url.Values, m *store.Mailbox) error {
	if p := q.Get("poll"); p != "" {
		var err error
		m.PollInterval, err = time.ParseDuration(p)
		if err != nil || m.PollInterval < 10*time.Second {
			return fmt.Errorf("mailbox URL poll=%q: use a duration of at least 10s, like 60s", p)
		}
	}
	return nil
}

// checkURLParams refuses query parameters a mailbox URL of scheme does not take.
func checkURLParams(q url.Values, scheme string) error {
	known := []string{"address", "poll", "auth", "secret_expires"}
	for k := range urlOAuthParams {
		known = append(known, k)
	}
	if scheme == "graph" {
		known = append(known, "direction", "graph_url")
	}
	for k := range q {
		if !slices.Contains(known, k) {
			slices.Sort(known)
			return fmt.Errorf("mailbox URL parameter %q: not known here; use %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// oauthFromURL reads the sign-in method and OAuth settings of a mailbox URL into m.
func oauthFromURL(q url.Values, m *store.Mailbox) error {
	m.Auth = q.Get("auth")
	for k, member := range urlOAuthParams {
		*member(&m.OAuth) = q.Get(k)
	}
	if d := q.Get("secret_expires"); d != "" {
		t, err := api.ParseSecretExpiry(d)
		if err != nil {
			return fmt.Errorf("mailbox URL secret_expires=%q: use the date the client secret expires, like 2026-12-31", d)
		}
		m.OAuth.SecretExpiresAt = t
	}
	return nil
}

// graphFromURL fills in a Microsoft Graph mailbox: graph://USER@DOMAIN[/FOLDER]?....
func graphFromURL(u *url.URL, m store.Mailbox) (store.Mailbox, error) {
	q := u.Query()
	if u.Port() != "" {
		return store.Mailbox{}, fmt.Errorf("mailbox URL %q: a Graph URL has no port; give another Graph host as graph_url=https://HOST", u.Redacted())
	}
	m.Address = q.Get("address")
	if m.Address == "" && m.Login != "" && m.Host != "" {
		m.Address = m.Login + "@" + m.Host
	}
	if m.Address == "" {
		return store.Mailbox{}, fmt.Errorf("mailbox URL %q: write the mailbox's address as graph://support@contoso.com", u.Redacted())
	}
	m.Protocol, m.Login, m.Host, m.GraphURL = "graph", m.Address, "", q.Get("graph_url")
	if m.Auth == "" {
		m.Auth = store.AuthOAuthApp
	}
	switch d := q.Get("direction"); d {
	case "", store.Inbound:
		m.Direction = store.Inbound
		m.Folder = strings.TrimPrefix(u.Path, "/")
		if m.Folder == "" {
			m.Folder = "Inbox"
		}
	case store.Outbound:
		if strings.Trim(u.Path, "/") != "" {
			return store.Mailbox{}, fmt.Errorf("mailbox URL %q: a Graph mailbox that sends has no folder", u.Redacted())
		}
		m.Direction, m.IsDefault = store.Outbound, true
	default:
		return store.Mailbox{}, fmt.Errorf("mailbox URL direction=%q: use inbound (the default) or outbound", d)
	}
	if err := pollFromURL(q, &m); err != nil {
		return store.Mailbox{}, err
	}
	return m, nil
}

// mailboxOAuthSecrets reads the OAuth secrets that go with the mailbox URL variable urlKey
// (POSTROOM_INBOUND_URL): <PREFIX>_CLIENT_SECRET and <PREFIX>_CLIENT_CERTIFICATE (a PEM
// bundle), each also as a file named by the same name with _FILE appended. Zero secrets
// are not set.
func mailboxOAuthSecrets(getenv func(string) string, urlKey string) (clientSecret, certificate vault.Secret, err error) {
	prefix := strings.TrimSuffix(urlKey, "_URL")
	if clientSecret, err = mailboxSecret(getenv, prefix+"_CLIENT_SECRET"); err != nil {
		return vault.Secret{}, vault.Secret{}, err
	}
	if certificate, err = mailboxSecret(getenv, prefix+"_CLIENT_CERTIFICATE"); err != nil {
		return vault.Secret{}, vault.Secret{}, err
	}
	return clientSecret, certificate, nil
}

// mailboxSecret reads the password variable for a mailbox URL variable.
func mailboxSecret(getenv func(string) string, key string) (vault.Secret, error) {
	v, err := secretEnv(getenv, key)
	if err != nil {
		return vault.Secret{}, err
	}
	return vault.NewSecret(v), nil
}

// printf writes to w, ignoring errors (a closed stdout must not stop the server).
func printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// parseSecureCookies reads POSTROOM_SECURE_COOKIES / -secure-cookies: 1 or true when TLS
// ends at a proxy in front of postroom; empty, 0 or false otherwise.
func parseSecureCookies(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: use 1 when browsers reach postroom over HTTPS (TLS at a proxy), or 0", envSecureCookies, v)
}
