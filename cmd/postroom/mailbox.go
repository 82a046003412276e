package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postroom/postroom/internal/api"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Bounds of the secrets read from standard input or a file: real ones are far shorter, and
// a wrong path (a large file) must not be read whole. A certificate bundle (PEM certificate,
// maybe its chain, and private key) is the largest.
const (
	maxPasswordBytes     = 4096
	maxTokenBytes        = 16 << 10
	maxCertificateBytes  = 64 << 10
	secretExpiresNone    = "none"
	secretFlagsExplained = "a secret on the command line is visible to other users and kept in the shell history"
)

// maxListMessage bounds the error message shown in the status column of `mailbox list`
// (`mailbox show` prints it whole).
const maxListMessage = 60

const mailboxUsage = `Usage: postroom mailbox COMMAND [flags] [NAME]

Administer the mailboxes in the configured database (the same -data folder, or
POSTROOM_DATABASE_URL, and POSTROOM_SECRET_KEY as "postroom serve"), with the rules of the
web pages and the API.

Commands:
  list                    the mailboxes as a table (-direction, -q, -json)
  show NAME               every setting and the live status (-json)
  add NAME [flags]        create a mailbox; it starts disabled (-direction is required)
  edit NAME [flags]       change the settings given as flags; the others keep their value
  enable NAME             enable (an inbound mailbox without a queue joins the Default queue)
  disable NAME            disable
  delete NAME             delete a disabled mailbox (its messages and work items stay)
  test NAME               test the connection with the stored settings, step by step
  copy NAME NEWNAME       copy every setting but the name and the secrets (disabled)

Sign-in (-auth): password (the default), or OAuth 2.0: oauth_app (an app registration
signs in as itself with a client secret or certificate: Microsoft Graph, or IMAP, POP3 and
SMTP at Exchange Online), oauth_delegated (a person signs in once, in the web pages),
oauth_ropc (login and password traded for a token; fails with MFA). A Microsoft 365
mailbox through Graph:

  postroom mailbox add support -direction inbound -protocol graph \
      -address support@contoso.com -oauth-tenant contoso.onmicrosoft.com \
      -oauth-client-id 11111111-2222-3333-4444-555555555555 \
      -client-secret-file secret.txt -secret-expires 2026-12-31

IMAP, POP3 or SMTP with -auth oauth_app and no -host get Exchange Online's hosts
(outlook.office365.com 993/995, smtp.office365.com 587).

Secrets are read from standard input or a file, never from a flag value, which other users
could see in the process list: -password-stdin or -password-file PATH, -client-secret-stdin
or -client-secret-file PATH, -client-certificate-file PATH (PEM: the certificate and its
private key), -refresh-token-stdin or -refresh-token-file PATH. Only one of them can use
standard input.

Run "postroom mailbox COMMAND -h" for the flags of a command.
`

// runMailbox runs `postroom mailbox ...`. stdin is read only for one -*-stdin flag.
func runMailbox(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mailboxUsage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" || cmd == "-h" || cmd == "-help" || cmd == "--help" {
		fmt.Fprint(stdout, mailboxUsage)
		return nil
	}
	spec, ok := mailboxCommands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "unknown mailbox command %q\n\n%s", cmd, mailboxUsage)
		return errUsage
	}
	if err := refuseSecretFlags(args); err != nil {
		return err
	}
	fs := flag.NewFlagSet("postroom mailbox "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs, getenv, false)
	if getenv(envLogLevel) == "" {
		// A command line tool prints its result; info lines would only be noise.
		common.logLevel = "warn"
		fs.Lookup("log-level").DefValue = "warn"
	}
	var opts mailboxFlags
	opts.register(fs, spec)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom mailbox %s %s\n\n%s\n\nFlags:\n", cmd, spec.args, spec.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < spec.minArgs || len(pos) > spec.maxArgs {
		fmt.Fprintf(stderr, "postroom mailbox %s takes %s\n", cmd, spec.args)
		fs.Usage()
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var secrets cliSecrets
	if spec.settings {
		if secrets, err = opts.secrets(stdin); err != nil {
			return err
		}
		if set["secret-expires"] {
			if opts.secretExpiresAt, err = parseSecretExpires(opts.secretExpires); err != nil {
				return err
			}
		}
	}

	a, _, err := common.openApp(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	c := &mailboxCLI{
		st: a.Store, svc: a.Mailboxes, actor: cliActor(getenv),
		out: stdout, opts: &opts, set: set, secrets: secrets,
	}
	return spec.run(c, ctx, pos)
}

// mailboxCommand describes one subcommand.
type mailboxCommand struct {
	args             string // for usage: "NAME [flags]"
	help             string
	minArgs, maxArgs int
	settings         bool // takes the mailbox setting flags and secrets
	output           bool // takes -json
	filter           bool // takes -direction and -q as filters (list)
	run              func(c *mailboxCLI, ctx context.Context, pos []string) error
}

var mailboxCommands = map[string]mailboxCommand{
	"list": {args: "[flags]", help: "List the mailboxes.", maxArgs: 0, output: true, filter: true, run: (*mailboxCLI).list},
	"show": {args: "NAME [flags]", help: "Show every setting of a mailbox and its live status.", minArgs: 1, maxArgs: 1, output: true, run: (*mailboxCLI).show},
	"add": {args: "NAME [flags]", help: "Create a mailbox, disabled. Flags left out take their defaults.",
		minArgs: 0, maxArgs: 1, settings: true, run: (*mailboxCLI).add},
	"edit": {args: "NAME [flags]", help: "Change the settings given as flags; the others, and each secret unless a new one is given, keep their value.",
		minArgs: 1, maxArgs: 1, settings: true, run: (*mailboxCLI).edit},
	"enable":  {args: "NAME", help: "Enable a mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).enable},
	"disable": {args: "NAME", help: "Disable a mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).disable},
	"delete":  {args: "NAME", help: "Delete a disabled mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).delete},
	"test":    {args: "NAME", help: "Test the connection of a mailbox with its stored settings and secrets.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).test},
	"copy":    {args: "NAME NEWNAME", help: "Copy a mailbox's settings, but not its name and secrets, to a new disabled mailbox.", minArgs: 2, maxArgs: 2, run: (*mailboxCLI).copy},
}

// mailboxFlags are the flags of the mailbox commands; the settings mirror the API fields.
type mailboxFlags struct {
	name, direction, protocol, host, security, login, folder, afterAction, moveFolder, address string
	port, maxSize                                                                              int
	poll                                                                                       time.Duration
	isDefault                                                                                  bool
	passwordStdin                                                                              bool
	passwordFile                                                                               string
	json                                                                                       bool
	query                                                                                      string

	// Sign-in settings (the API's auth, oauth.* and graph_url).
	auth, oauthProvider, oauthCloud, oauthAuthorityURL, oauthTenant, oauthClientID string
	oauthTokenURL, oauthAuthorizeURL, oauthScopes, graphURL, secretExpires         string
	autodiscoverHost                                                               string
	secretExpiresAt                                                                time.Time // secretExpires parsed
	clientSecretStdin, refreshTokenStdin                                           bool
	clientSecretFile, certificateFile, refreshTokenFile                            string
}

func (o *mailboxFlags) register(fs *flag.FlagSet, spec mailboxCommand) {
	if spec.output {
		fs.BoolVar(&o.json, "json", false, "print JSON (the fields of GET /api/v1/mailboxes) instead of text")
	}
	if spec.filter {
		fs.StringVar(&o.direction, "direction", "", "only inbound or only outbound mailboxes")
		fs.StringVar(&o.query, "q", "", "only mailboxes whose name, address, host or login contains this text")
	}
	if !spec.settings {
		return
	}
	fs.StringVar(&o.name, "name", "", "mailbox name: letters, digits, @, _ and ., at most 40 characters (also the NAME argument)")
	fs.StringVar(&o.direction, "direction", "", "inbound or outbound")
	fs.StringVar(&o.protocol, "protocol", "", "inbound: imap (default), pop3, graph (Microsoft Graph) or ews (Exchange Server); outbound: smtp (default), graph or ews")
	fs.StringVar(&o.address, "address", "", "the email address (inbound default: the login when it is an address); for graph the mailbox opened")
	fs.StringVar(&o.host, "host", "", "mail server host name (with -auth oauth_* at Microsoft, left out: Exchange Online's)")
	fs.StringVar(&o.autodiscoverHost, "autodiscover-host", "", "ews without -host: the only host autodiscover asks (host or host:port, https); empty: the address's domain")
	fs.IntVar(&o.port, "port", 0, "port (default: 993/143 IMAP, 995/110 POP3, 465/587/25 SMTP by security)")
	fs.StringVar(&o.security, "security", "", "tls, starttls or none (none only for a server on this machine)")
	fs.StringVar(&o.login, "login", "", "login name")
	fs.StringVar(&o.folder, "folder", "", "IMAP or Graph folder to read (default INBOX, Graph Inbox)")
	fs.StringVar(&o.afterAction, "after-action", "", "after a message is stored: IMAP mark_read (default), move or delete; POP3 delete (default) or keep; Graph mark_read (default), move or keep")
	fs.StringVar(&o.moveFolder, "move-folder", "", "folder for -after-action move")
	fs.DurationVar(&o.poll, "poll", 0, "poll interval, 10s to 1h (default 60s)")
	fs.IntVar(&o.maxSize, "max-size", 0, "largest message in whole MB, 5 to 20 (default 5)")
	fs.BoolVar(&o.isDefault, "default", false, "outbound: make this the default outbound mailbox")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input")
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from this file")

	fs.StringVar(&o.auth, "auth", "", "sign-in: password (default; oauth_app for graph), oauth_app, oauth_delegated or oauth_ropc")
	fs.StringVar(&o.graphURL, "graph-url", "", "graph: the Microsoft Graph host (default: the cloud's, https://graph.microsoft.com)")
	fs.StringVar(&o.oauthProvider, "oauth-provider", "", "OAuth provider: microsoft (default), google (Google Workspace: -client-secret-file is the service account key file) or custom (give -oauth-token-url)")
	fs.StringVar(&o.oauthCloud, "oauth-cloud", "", "Microsoft cloud: global (default), usgov, usgov-dod, china, or custom (give -oauth-authority-url)")
	fs.StringVar(&o.oauthAuthorityURL, "oauth-authority-url", "", "-oauth-cloud custom: the login host, e.g. https://login.microsoftonline.com (the tenant-authority)")
	fs.StringVar(&o.oauthTenant, "oauth-tenant", "", "directory (tenant) id: a GUID or contoso.onmicrosoft.com (Entra admin center > Overview > Tenant ID)")
	fs.StringVar(&o.oauthClientID, "oauth-client-id", "", "application (client) id (App registrations > your app > Overview)")
	fs.StringVar(&o.oauthTokenURL, "oauth-token-url", "", "-oauth-provider custom: the token endpoint URL")
	fs.StringVar(&o.oauthAuthorizeURL, "oauth-authorize-url", "", "-oauth-provider custom: the authorization endpoint URL")
	fs.StringVar(&o.oauthScopes, "oauth-scopes", "", "space-separated scopes (default: the provider's for the protocol)")
	fs.StringVar(&o.secretExpires, "secret-expires", "", "the client secret's expiry date, YYYY-MM-DD (postroom warns 14 days ahead); none removes it")
	fs.BoolVar(&o.clientSecretStdin, "client-secret-stdin", false, "read the app's client secret from standard input")
	fs.StringVar(&o.clientSecretFile, "client-secret-file", "", "read the app's client secret from this file")
	fs.StringVar(&o.certificateFile, "client-certificate-file", "", "read the app's certificate and its RSA private key (PEM) from this file")
	fs.BoolVar(&o.refreshTokenStdin, "refresh-token-stdin", false, "-oauth-provider custom: read a refresh token from standard input")
	fs.StringVar(&o.refreshTokenFile, "refresh-token-file", "", "-oauth-provider custom: read a refresh token from this file")
}

// cliSecrets are the secrets given to add or edit; nil keeps the stored one.
type cliSecrets struct {
	password, clientSecret, certificate, refreshToken *vault.Secret
}

// secretSource is where one secret may come from.
type secretSource struct {
	what      string // "the password"
	stdinFlag string // "password-stdin"; "" when it cannot come from standard input
	fileFlag  string
	stdin     bool
	file      string
	limit     int
	dst       **vault.Secret
}

// secrets reads each secret whose -*-stdin or -*-file flag was given. Standard input can
// give only one of them.
func (o *mailboxFlags) secrets(stdin io.Reader) (cliSecrets, error) {
	var out cliSecrets
	sources := []secretSource{
		{"the password", "password-stdin", "password-file", o.passwordStdin, o.passwordFile, maxPasswordBytes, &out.password},
		{"the client secret", "client-secret-stdin", "client-secret-file", o.clientSecretStdin, o.clientSecretFile, maxPasswordBytes, &out.clientSecret},
		{"the certificate", "", "client-certificate-file", false, o.certificateFile, maxCertificateBytes, &out.certificate},
		{"the refresh token", "refresh-token-stdin", "refresh-token-file", o.refreshTokenStdin, o.refreshTokenFile, maxTokenBytes, &out.refreshToken},
	}
	var fromStdin []string
	for _, src := range sources {
		if src.stdin {
			fromStdin = append(fromStdin, "-"+src.stdinFlag)
		}
	}
	if len(fromStdin) > 1 {
		return cliSecrets{}, fmt.Errorf("%s all read standard input, which holds one secret: give the others as files (-*-file PATH)", strings.Join(fromStdin, " and "))
	}
	for _, src := range sources {
		s, err := src.read(stdin)
		if err != nil {
			return cliSecrets{}, err
		}
		*src.dst = s
	}
	return out, nil
}

// read reads the secret from stdin or the file, if asked to; nil when neither. One
// trailing line break is removed (echo and editors add it).
func (src secretSource) read(stdin io.Reader) (*vault.Secret, error) {
	var r io.Reader
	var from string
	switch {
	case src.stdin && src.file != "":
		return nil, fmt.Errorf("give -%s or -%s, not both", src.stdinFlag, src.fileFlag)
	case src.stdin:
		r, from = stdin, "standard input"
	case src.file != "":
		f, err := os.Open(src.file)
		if err != nil {
			return nil, fmt.Errorf("%s file (-%s): %w", strings.TrimPrefix(src.what, "the "), src.fileFlag, err)
		}
		defer f.Close()
		r, from = f, src.file
	default:
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(src.limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", src.what, from, err)
	}
	if len(b) > src.limit {
		return nil, fmt.Errorf("%s in %s is longer than %d bytes: is it the right file?", src.what, from, src.limit)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no %s in %s", strings.TrimPrefix(src.what, "the "), from)
	}
	v := vault.NewSecret(s)
	return &v, nil
}

// parseSecretExpires reads -secret-expires: a date, or "none" (no date).
func parseSecretExpires(s string) (time.Time, error) {
	if strings.EqualFold(strings.TrimSpace(s), secretExpiresNone) {
		return time.Time{}, nil
	}
	if strings.TrimSpace(s) == "" {
		return time.Time{}, errors.New("-secret-expires is empty: give the date the client secret expires, like 2026-12-31, or none to remove it")
	}
	t, err := api.ParseSecretExpiry(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-secret-expires %q: give the date the client secret expires, like 2026-12-31 (YYYY-MM-DD), or none to remove it", s)
	}
	return t, nil
}

// secretFlags are the flags that do not exist because their value would be a secret on the
// command line, and what to use instead.
var secretFlags = map[string]string{
	"password":           "-password-stdin or -password-file PATH",
	"client-secret":      "-client-secret-stdin or -client-secret-file PATH",
	"client-certificate": "-client-certificate-file PATH",
	"refresh-token":      "-refresh-token-stdin or -refresh-token-file PATH",
}

// refuseSecretFlags gives a clear error for -password VALUE (or -client-secret VALUE, ...),
// without echoing the value.
func refuseSecretFlags(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if use, ok := secretFlags[name]; ok && strings.HasPrefix(a, "-") {
			return fmt.Errorf("there is no -%s flag: %s; use %s", name, secretFlagsExplained, use)
		}
	}
	return nil
}

// parseInterspersed parses flags before and after the positional arguments
// ("edit support -port 993" and "edit -port 993 support").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// cliActor names the person running the command in audit events: "cli:<os user>".
func cliActor(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if u := getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli:unknown"
}

// mailboxCLI runs one mailbox command against the opened store.
type mailboxCLI struct {
	st      store.Store
	svc     *mailbox.Service
	actor   string
	out     io.Writer
	opts    *mailboxFlags
	set     map[string]bool // flags given on the command line
	secrets cliSecrets
}

// flagOfField names the flag of each API field, for error messages.
var flagOfField = map[string]string{
	"name": "-name", "direction": "-direction", "protocol": "-protocol", "address": "-address", "host": "-host",
	"autodiscover_host": "-autodiscover-host",
	"port":              "-port", "security": "-security", "login": "-login", "password": "-password-stdin or -password-file",
	"folder": "-folder", "after_action": "-after-action", "move_folder": "-move-folder",
	"poll_interval_seconds": "-poll", "max_size_mb": "-max-size", "is_default": "-default",
	"auth": "-auth", "graph_url": "-graph-url", "oauth_provider": "-oauth-provider", "oauth_cloud": "-oauth-cloud",
	"oauth_authority_url": "-oauth-authority-url", "oauth_tenant": "-oauth-tenant", "oauth_client_id": "-oauth-client-id",
	"oauth_token_url": "-oauth-token-url", "oauth_authorize_url": "-oauth-authorize-url", "oauth_scopes": "-oauth-scopes",
	"oauth_secret_expires_at": "-secret-expires", "client_secret": "-client-secret-stdin or -client-secret-file",
	"client_certificate": "-client-certificate-file", "refresh_token": "-refresh-token-stdin or -refresh-token-file",
}

// explain turns a validation error into one line per field, naming its flag.
func explain(err error) error {
	var verr *mailbox.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	var b strings.Builder
	b.WriteString("the mailbox has errors:")
	for _, field := range slices.Sorted(maps.Keys(verr.Fields)) {
		b.WriteString("\n  " + field)
		if fl := flagOfField[field]; fl != "" {
			b.WriteString(" (" + fl + ")")
		}
		b.WriteString(": " + verr.Fields[field])
	}
	return errors.New(b.String())
}

// byName finds a mailbox by its name.
func (c *mailboxCLI) byName(ctx context.Context, name string) (store.Mailbox, error) {
	m, err := c.st.MailboxByName(ctx, name)
	if store.IsNotFound(err) {
		return store.Mailbox{}, fmt.Errorf("no mailbox named %q: see postroom mailbox list", name)
	}
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("look up mailbox %q: %w", name, err)
	}
	return m, nil
}

// apply overlays the setting flags that were given on in.
func (c *mailboxCLI) apply(in mailbox.Input) mailbox.Input {
	o := c.opts
	for flagName, pair := range map[string]struct{ dst, v *string }{
		"name": {&in.Name, &o.name}, "direction": {&in.Direction, &o.direction}, "protocol": {&in.Protocol, &o.protocol},
		"address": {&in.Address, &o.address}, "host": {&in.Host, &o.host},
		"autodiscover-host": {&in.AutodiscoverHost, &o.autodiscoverHost}, "security": {&in.Security, &o.security},
		"login": {&in.Login, &o.login}, "folder": {&in.Folder, &o.folder}, "after-action": {&in.AfterAction, &o.afterAction},
		"move-folder": {&in.MoveFolder, &o.moveFolder}, "auth": {&in.Auth, &o.auth}, "graph-url": {&in.GraphURL, &o.graphURL},
		"oauth-provider": {&in.OAuth.Provider, &o.oauthProvider}, "oauth-cloud": {&in.OAuth.Cloud, &o.oauthCloud},
		"oauth-authority-url": {&in.OAuth.AuthorityURL, &o.oauthAuthorityURL}, "oauth-tenant": {&in.OAuth.Tenant, &o.oauthTenant},
		"oauth-client-id": {&in.OAuth.ClientID, &o.oauthClientID}, "oauth-token-url": {&in.OAuth.TokenURL, &o.oauthTokenURL},
		"oauth-authorize-url": {&in.OAuth.AuthorizeURL, &o.oauthAuthorizeURL}, "oauth-scopes": {&in.OAuth.Scopes, &o.oauthScopes},
	} {
		if c.set[flagName] {
			*pair.dst = *pair.v
		}
	}
	if c.set["port"] {
		in.Port = o.port
	}
	if c.set["max-size"] {
		in.MaxSizeMB = o.maxSize
	}
	if c.set["poll"] {
		in.PollInterval = o.poll
	}
	if c.set["default"] {
		in.IsDefault = o.isDefault
	}
	if c.set["secret-expires"] {
		in.OAuth.SecretExpiresAt = o.secretExpiresAt
	}
	in.Password = c.secrets.password
	in.ClientSecret = c.secrets.clientSecret
	in.Certificate = c.secrets.certificate
	in.RefreshToken = c.secrets.refreshToken
	return in
}

// view is the API's view of m.
func (c *mailboxCLI) view(ctx context.Context, m store.Mailbox, queues map[int64]string) (api.MailboxView, error) {
	st, err := c.svc.Status(ctx, m)
	if err != nil {
		return api.MailboxView{}, err
	}
	return api.NewMailboxView(m, st, queues[m.QueueID]), nil
}

func (c *mailboxCLI) queueNames(ctx context.Context) (map[int64]string, error) {
	qs, err := c.st.ListQueues(ctx)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	names := map[int64]string{}
	for _, q := range qs {
		names[q.ID] = q.Name
	}
	return names, nil
}

func (c *mailboxCLI) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *mailboxCLI) list(ctx context.Context, _ []string) error {
	direction := strings.ToLower(c.opts.direction)
	if direction != "" && direction != store.Inbound && direction != store.Outbound {
		return fmt.Errorf("-direction %q: use inbound or outbound", c.opts.direction)
	}
	mbs, err := c.st.ListMailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list mailboxes: %w", err)
	}
	queues, err := c.queueNames(ctx)
	if err != nil {
		return err
	}
	views := []api.MailboxView{}
	for _, m := range mbs {
		if direction != "" && m.Direction != direction || !api.MatchMailbox(m, c.opts.query) {
			continue
		}
		v, err := c.view(ctx, m, queues)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	if c.opts.json {
		return c.printJSON(struct {
			Items []api.MailboxView `json:"items"`
		}{views})
	}
	if len(views) == 0 {
		printf(c.out, "no mailboxes: add one with postroom mailbox add NAME -direction inbound|outbound ...\n")
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIRECTION\tPROTOCOL\tHOST:PORT\tENABLED\tSTATUS")
	for _, v := range views {
		status := v.Status
		if v.Status == mailbox.StateError && v.StatusMessage != "" {
			status += ": " + shorten(v.StatusMessage, maxListMessage)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Direction, v.Protocol, serverText(v), yesNo(v.Enabled), status)
	}
	return tw.Flush()
}

func (c *mailboxCLI) show(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	queues, err := c.queueNames(ctx)
	if err != nil {
		return err
	}
	v, err := c.view(ctx, m, queues)
	if err != nil {
		return err
	}
	if c.opts.json {
		return c.printJSON(v)
	}
	queue := "(none)"
	if v.Queue != "" {
		queue = v.Queue
	}
	rows := [][2]string{{"name", v.Name}, {"direction", v.Direction}, {"protocol", v.Protocol}, {"address", v.Address}}
	if v.Protocol == mailbox.Graph {
		rows = append(rows, [2]string{"graph_url", serverText(v)})
	} else {
		rows = append(rows, [][2]string{{"host", v.Host}, {"port", fmt.Sprint(v.Port)}, {"security", v.Security}}...)
		if v.Protocol == mailbox.EWS {
			rows = append(rows, [2]string{"autodiscover_host", v.AutodiscoverHost})
		}
	}
	rows = append(rows, [2]string{"login", v.Login})
	rows = append(rows, signInRows(m, v, time.Now())...)
	rows = append(rows, [][2]string{
		{"folder", v.Folder}, {"after_action", v.AfterAction}, {"move_folder", v.MoveFolder},
		{"poll_interval", (time.Duration(v.PollIntervalSeconds) * time.Second).String()},
		{"max_size", fmt.Sprintf("%d MB", v.MaxSizeMB)}, {"enabled", yesNo(v.Enabled)}, {"default", yesNo(v.IsDefault)},
		{"queue", queue}, {"status", v.Status}, {"status_message", v.StatusMessage},
		{"status_at", timeText(v.StatusAt)}, {"last_ok_at", timeText(v.LastOKAt)},
		{"ingested_today", fmt.Sprint(v.IngestedToday)},
		{"created_at", v.CreatedAt.Local().Format(time.DateTime)}, {"updated_at", v.UpdatedAt.Local().Format(time.DateTime)},
	}...)
	if m.Direction == store.Outbound {
		froms, err := c.st.ListFromAddresses(ctx, m.ID)
		if err != nil {
			return fmt.Errorf("list the From addresses of %q: %w", m.Name, err)
		}
		for _, f := range froms {
			rows = append(rows, [2]string{"from_address", fmt.Sprintf("%s (%s)", f.Address, f.DisplayName)})
		}
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func (c *mailboxCLI) add(ctx context.Context, pos []string) error {
	name := c.opts.name
	if len(pos) == 1 {
		if c.set["name"] && c.opts.name != pos[0] {
			return fmt.Errorf("the name is given twice (%q and -name %q): give it once", pos[0], c.opts.name)
		}
		name = pos[0]
	}
	in := c.apply(mailbox.Input{})
	in.Name = name
	m, err := c.svc.Create(ctx, c.actor, in)
	if err != nil {
		return explain(err)
	}
	printf(c.out, "created %s mailbox %q (disabled: enable it with postroom mailbox enable %s)\n", m.Direction, m.Name, m.Name)
	return nil
}

func (c *mailboxCLI) edit(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	if _, err := c.svc.Update(ctx, c.actor, m.ID, c.apply(mailbox.FromMailbox(m))); err != nil {
		return explain(err)
	}
	printf(c.out, "updated mailbox %q\n", m.Name)
	return nil
}

func (c *mailboxCLI) enable(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := c.svc.Enable(ctx, c.actor, m.ID); err != nil {
		return err
	}
	printf(c.out, "enabled mailbox %q\n", m.Name)
	return nil
}

func (c *mailboxCLI) disable(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := c.svc.Disable(ctx, c.actor, m.ID); err != nil {
		return err
	}
	printf(c.out, "disabled mailbox %q\n", m.Name)
	return nil
}

func (c *mailboxCLI) delete(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := c.svc.Delete(ctx, c.actor, m.ID); err != nil {
		return err
	}
	printf(c.out, "deleted mailbox %q\n", m.Name)
	return nil
}

func (c *mailboxCLI) copy(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	cp, err := c.svc.Copy(ctx, c.actor, m.ID, pos[1])
	if err != nil {
		return explain(err)
	}
	printf(c.out, "copied mailbox %q to %q (disabled, without secrets: %s)\n", m.Name, cp.Name, secretsHint(cp))
	return nil
}

// test prints each step of the connection test; a failed test is an error (exit 1).
func (c *mailboxCLI) test(ctx context.Context, pos []string) error {
	m, err := c.byName(ctx, pos[0])
	if err != nil {
		return err
	}
	rep, err := c.svc.Test(ctx, m.ID)
	if err != nil {
		return explain(err)
	}
	for _, s := range rep.Steps {
		mark := "✓"
		if !s.OK {
			mark = "✗"
		}
		line := mark + " " + s.Name
		if s.Detail != "" {
			line += ": " + s.Detail
		}
		printf(c.out, "%s\n", line)
		if !s.OK && s.Advice != "" {
			printf(c.out, "  what to do: %s\n", s.Advice)
		}
	}
	if !rep.OK {
		return fmt.Errorf("the connection test of %q failed", m.Name)
	}
	printf(c.out, "mailbox %q: connection test passed\n", m.Name)
	return nil
}

// secretsHint says how to give a copied mailbox the secrets its sign-in needs.
func secretsHint(m store.Mailbox) string {
	edit := "postroom mailbox edit " + m.Name
	switch m.Auth {
	case store.AuthOAuthApp:
		return "give the client secret with " + edit + " -client-secret-stdin, or the certificate with -client-certificate-file PATH"
	case store.AuthOAuthDelegated:
		if m.OAuth.Provider == credential.ProviderCustom {
			return "give a refresh token with " + edit + " -refresh-token-stdin"
		}
		return "sign in with Microsoft on the mailbox's page in the web pages"
	}
	return "set the password with " + edit + " -password-stdin"
}

// serverText is where a mailbox connects, for the list and show: host:port, or the Graph
// host of a Graph mailbox.
func serverText(v api.MailboxView) string {
	if v.Protocol != mailbox.Graph {
		return fmt.Sprintf("%s:%d", v.Host, v.Port)
	}
	if v.GraphURL != "" {
		return v.GraphURL
	}
	if cloud, ok := credential.CloudByName(v.OAuth.Cloud); ok {
		return cloud.GraphURL
	}
	return "(the cloud's Graph host)"
}

// signInRows are show's rows for the sign-in method and its settings; secrets only say
// whether they are stored.
func signInRows(m store.Mailbox, v api.MailboxView, now time.Time) [][2]string {
	setText := func(b bool) string {
		if b {
			return "set"
		}
		return "not set"
	}
	orDefault := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	rows := [][2]string{{"auth", v.Auth}}
	if v.Auth == store.AuthPassword || v.Auth == store.AuthOAuthROPC {
		rows = append(rows, [2]string{"password", setText(v.PasswordSet)})
	}
	if v.Auth == store.AuthPassword {
		return rows
	}
	o := v.OAuth
	rows = append(rows, [2]string{"oauth_provider", o.Provider})
	if o.Provider == credential.ProviderCustom {
		rows = append(rows, [][2]string{{"oauth_token_url", o.TokenURL}, {"oauth_authorize_url", o.AuthorizeURL}}...)
	} else {
		rows = append(rows, [2]string{"oauth_cloud", o.Cloud})
		if o.Cloud == credential.CloudCustom {
			rows = append(rows, [2]string{"oauth_authority_url", o.AuthorityURL})
		}
		rows = append(rows, [2]string{"oauth_tenant", orDefault(o.Tenant, "(organizations)")})
	}
	rows = append(rows, [][2]string{{"oauth_client_id", o.ClientID}, {"oauth_scopes", orDefault(o.Scopes, "(the default for the protocol)")}}...)
	if v.Auth == store.AuthOAuthDelegated {
		rows = append(rows, [][2]string{{"account", orDefault(o.Account, "(nobody signed in yet)")}, {"refresh_token", setText(v.RefreshTokenSet)}}...)
	}
	// An app signs in with a secret or a certificate; a person's sign-in may use a secret
	// too (a confidential client), shown when one is stored.
	if v.Auth == store.AuthOAuthApp || v.ClientSecretSet {
		rows = append(rows, [2]string{"client_secret", setText(v.ClientSecretSet)})
	}
	if v.Auth == store.AuthOAuthApp || v.ClientCertificateSet {
		rows = append(rows, [2]string{"client_certificate", setText(v.ClientCertificateSet)})
	}
	if v.Auth == store.AuthOAuthApp || v.ClientSecretSet || v.OAuth.SecretExpiresAt != nil {
		rows = append(rows, [2]string{"secret_expires", expiryText(m, now)})
	}
	return rows
}

// expiryText is a client secret's expiry date and how far off it is.
func expiryText(m store.Mailbox, now time.Time) string {
	e := mailbox.SecretExpiry(m, now)
	if e.At.IsZero() {
		return "(not recorded: add it with -secret-expires YYYY-MM-DD to be warned 14 days ahead)"
	}
	date := e.At.UTC().Format(time.DateOnly)
	switch {
	case e.Expired:
		return date + " (EXPIRED: create a new secret in the app registration, Certificates & secrets, and give it with -client-secret-stdin)"
	case e.Warn && e.DaysLeft == 0:
		return date + " (expires within a day: create a new secret in the app registration now)"
	case e.Warn:
		return fmt.Sprintf("%s (expires in %d days: create a new secret in the app registration soon)", date, e.DaysLeft)
	}
	return fmt.Sprintf("%s (in %d days)", date, e.DaysLeft)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func timeText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format(time.DateTime)
}

// shorten cuts s to at most n runes, marking the cut with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
