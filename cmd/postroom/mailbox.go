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
	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// maxPasswordBytes bounds a password read from standard input or a file: real mailbox
// passwords are far shorter, and a wrong path (a large file) must not be read whole.
const maxPasswordBytes = 4096

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
  copy NAME NEWNAME       copy every setting but the name and the password (disabled)

Passwords are read from standard input (-password-stdin) or a file (-password-file PATH),
never from a flag value, which other users could see in the process list.

Run "postroom mailbox COMMAND -h" for the flags of a command.
`

// runMailbox runs `postroom mailbox ...`. stdin is read only for -password-stdin.
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
	if err := refusePasswordFlag(args); err != nil {
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
	var password *vault.Secret
	if spec.settings {
		if password, err = opts.password(stdin); err != nil {
			return err
		}
	}

	log, err := newLogger(stderr, common.logLevel)
	if err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, app.Config{DataDir: common.dataDir, DatabaseURL: dbURL, Getenv: getenv, Logger: log, Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	c := &mailboxCLI{
		st: a.Store, svc: a.Mailboxes, actor: cliActor(getenv),
		out: stdout, opts: &opts, set: set, password: password,
	}
	return spec.run(c, ctx, pos)
}

// mailboxCommand describes one subcommand.
type mailboxCommand struct {
	args             string // for usage: "NAME [flags]"
	help             string
	minArgs, maxArgs int
	settings         bool // takes the mailbox setting flags and a password
	output           bool // takes -json
	filter           bool // takes -direction and -q as filters (list)
	run              func(c *mailboxCLI, ctx context.Context, pos []string) error
}

var mailboxCommands = map[string]mailboxCommand{
	"list": {args: "[flags]", help: "List the mailboxes.", maxArgs: 0, output: true, filter: true, run: (*mailboxCLI).list},
	"show": {args: "NAME [flags]", help: "Show every setting of a mailbox and its live status.", minArgs: 1, maxArgs: 1, output: true, run: (*mailboxCLI).show},
	"add": {args: "NAME [flags]", help: "Create a mailbox, disabled. Flags left out take their defaults.",
		minArgs: 0, maxArgs: 1, settings: true, run: (*mailboxCLI).add},
	"edit": {args: "NAME [flags]", help: "Change the settings given as flags; the others, and the password unless a new one is given, keep their value.",
		minArgs: 1, maxArgs: 1, settings: true, run: (*mailboxCLI).edit},
	"enable":  {args: "NAME", help: "Enable a mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).enable},
	"disable": {args: "NAME", help: "Disable a mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).disable},
	"delete":  {args: "NAME", help: "Delete a disabled mailbox.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).delete},
	"test":    {args: "NAME", help: "Test the connection of a mailbox with its stored settings and password.", minArgs: 1, maxArgs: 1, run: (*mailboxCLI).test},
	"copy":    {args: "NAME NEWNAME", help: "Copy a mailbox's settings, but not its name and password, to a new disabled mailbox.", minArgs: 2, maxArgs: 2, run: (*mailboxCLI).copy},
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
	fs.StringVar(&o.protocol, "protocol", "", "inbound: imap (default) or pop3; outbound: smtp")
	fs.StringVar(&o.address, "address", "", "the email address (inbound default: the login when it is an address)")
	fs.StringVar(&o.host, "host", "", "mail server host name")
	fs.IntVar(&o.port, "port", 0, "port (default: 993/143 IMAP, 995/110 POP3, 465/587/25 SMTP by security)")
	fs.StringVar(&o.security, "security", "", "tls, starttls or none (none only for a server on this machine)")
	fs.StringVar(&o.login, "login", "", "login name")
	fs.StringVar(&o.folder, "folder", "", "IMAP folder to read (default INBOX)")
	fs.StringVar(&o.afterAction, "after-action", "", "after a message is stored: IMAP mark_read (default), move or delete; POP3 delete (default) or keep")
	fs.StringVar(&o.moveFolder, "move-folder", "", "folder for -after-action move")
	fs.DurationVar(&o.poll, "poll", 0, "poll interval, 10s to 1h (default 60s)")
	fs.IntVar(&o.maxSize, "max-size", 0, "largest message in whole MB, 5 to 20 (default 5)")
	fs.BoolVar(&o.isDefault, "default", false, "outbound: make this the default outbound mailbox")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input")
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from this file")
}

// password reads the password from stdin or the file, if asked to; nil when neither.
// One trailing line break is removed (echo and editors add it).
func (o *mailboxFlags) password(stdin io.Reader) (*vault.Secret, error) {
	var r io.Reader
	var from string
	switch {
	case o.passwordStdin && o.passwordFile != "":
		return nil, errors.New("give -password-stdin or -password-file, not both")
	case o.passwordStdin:
		r, from = stdin, "standard input"
	case o.passwordFile != "":
		f, err := os.Open(o.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		r, from = f, o.passwordFile
	default:
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPasswordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the password from %s: %w", from, err)
	}
	if len(b) > maxPasswordBytes {
		return nil, fmt.Errorf("the password in %s is longer than %d bytes: is it the right file?", from, maxPasswordBytes)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return nil, fmt.Errorf("no password in %s", from)
	}
	pw := vault.NewSecret(s)
	return &pw, nil
}

// refusePasswordFlag gives a clear error for -password VALUE, without echoing the value.
func refusePasswordFlag(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "password" {
			return errors.New("there is no -password flag: a password on the command line is visible to other users and kept in the shell history; use -password-stdin or -password-file PATH")
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
	st       store.Store
	svc      *mailbox.Service
	actor    string
	out      io.Writer
	opts     *mailboxFlags
	set      map[string]bool // flags given on the command line
	password *vault.Secret
}

// flagOfField names the flag of each API field, for error messages.
var flagOfField = map[string]string{
	"name": "-name", "direction": "-direction", "protocol": "-protocol", "address": "-address", "host": "-host",
	"port": "-port", "security": "-security", "login": "-login", "password": "-password-stdin or -password-file",
	"folder": "-folder", "after_action": "-after-action", "move_folder": "-move-folder",
	"poll_interval_seconds": "-poll", "max_size_mb": "-max-size", "is_default": "-default",
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
		"address": {&in.Address, &o.address}, "host": {&in.Host, &o.host}, "security": {&in.Security, &o.security},
		"login": {&in.Login, &o.login}, "folder": {&in.Folder, &o.folder}, "after-action": {&in.AfterAction, &o.afterAction},
		"move-folder": {&in.MoveFolder, &o.moveFolder},
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
	in.Password = c.password
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%d\t%s\t%s\n", v.Name, v.Direction, v.Protocol, v.Host, v.Port, yesNo(v.Enabled), status)
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
	password := "not set"
	if v.PasswordSet {
		password = "set"
	}
	queue := "(none)"
	if v.Queue != "" {
		queue = v.Queue
	}
	rows := [][2]string{
		{"name", v.Name}, {"direction", v.Direction}, {"protocol", v.Protocol}, {"address", v.Address},
		{"host", v.Host}, {"port", fmt.Sprint(v.Port)}, {"security", v.Security}, {"login", v.Login},
		{"password", password}, {"folder", v.Folder}, {"after_action", v.AfterAction}, {"move_folder", v.MoveFolder},
		{"poll_interval", (time.Duration(v.PollIntervalSeconds) * time.Second).String()},
		{"max_size", fmt.Sprintf("%d MB", v.MaxSizeMB)}, {"enabled", yesNo(v.Enabled)}, {"default", yesNo(v.IsDefault)},
		{"queue", queue}, {"status", v.Status}, {"status_message", v.StatusMessage},
		{"status_at", timeText(v.StatusAt)}, {"last_ok_at", timeText(v.LastOKAt)},
		{"ingested_today", fmt.Sprint(v.IngestedToday)},
		{"created_at", v.CreatedAt.Local().Format(time.DateTime)}, {"updated_at", v.UpdatedAt.Local().Format(time.DateTime)},
	}
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
	printf(c.out, "copied mailbox %q to %q (disabled, no password: set one with postroom mailbox edit %s -password-stdin)\n", m.Name, cp.Name, cp.Name)
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
