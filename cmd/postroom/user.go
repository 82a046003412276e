package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

const userUsage = `Usage: postroom user COMMAND [flags] [NAME]

Administer the users in the configured database (the same -data folder, or
POSTROOM_DATABASE_URL, as "postroom serve"), with the rules of the web pages and the API.

Commands:
  list                    the users as a table (-json)
  add NAME [flags]        create a user (-role, -name, -email; the password from
                          -password-stdin or -password-file PATH)
  edit NAME [flags]       change the flags given (-role, -name, -email, -enable or -disable)
  enable NAME             let a disabled user sign in again
  disable NAME            stop a user signing in; ends their sessions and revokes their API tokens
  delete NAME             delete a user (their work items stay, unassigned)
  passwd NAME             set a user's password from -password-stdin or -password-file PATH
  unlock NAME             forget a user's failed sign-ins and lock (when no admin can sign in)
  remove-second-factor NAME
                          remove a user's second factor (a lost phone)

Passwords are read from standard input or a file, never from a flag value, which other users
could see in the process list. They need at least 12 characters. The last enabled admin
cannot be disabled, demoted or deleted.

Run "postroom user COMMAND -h" for the flags of a command.
`

// userCommand describes one user subcommand.
type userCommand struct {
	args     string
	help     string
	nargs    int  // positional arguments: 0 or 1 (NAME)
	profile  bool // takes -role, -name, -email
	toggle   bool // takes -enable and -disable
	password bool // takes -password-stdin and -password-file
	output   bool // takes -json
	run      func(c *userCLI, ctx context.Context, name string) error
}

var userCommands = map[string]userCommand{
	"list": {args: "[flags]", help: "List the users.", output: true, run: (*userCLI).list},
	"add": {args: "NAME [flags]", help: "Create a user; -password-stdin or -password-file is required.",
		nargs: 1, profile: true, password: true, run: (*userCLI).add},
	"edit": {args: "NAME [flags]", help: "Change the settings given as flags; the others keep their value.",
		nargs: 1, profile: true, toggle: true, run: (*userCLI).edit},
	"enable":  {args: "NAME", help: "Let a disabled user sign in again.", nargs: 1, run: (*userCLI).enable},
	"disable": {args: "NAME", help: "Stop a user signing in; their sessions end and their API tokens are revoked.", nargs: 1, run: (*userCLI).disable},
	"delete":  {args: "NAME", help: "Delete a user; their work items stay, unassigned.", nargs: 1, run: (*userCLI).delete},
	"passwd": {args: "NAME [flags]", help: "Set a user's password from -password-stdin or -password-file.",
		nargs: 1, password: true, run: (*userCLI).passwd},
	"unlock": {args: "NAME", help: "Forget a user's failed sign-ins and lock, so that they can sign in at once.", nargs: 1, run: (*userCLI).unlock},
	"remove-second-factor": {args: "NAME", help: "Remove a user's second factor: they sign in with the password alone until they set up a new one.",
		nargs: 1, run: (*userCLI).removeSecondFactor},
}

// userFlags are the flags of the user commands.
type userFlags struct {
	role, name, email string
	enable, disable   bool
	passwordStdin     bool
	passwordFile      string
	asJSON            bool
}

// userCLI runs one user command against the opened store.
type userCLI struct {
	st       store.Store
	users    *auth.Users
	auth     *auth.Service
	actor    string
	out      io.Writer
	opts     *userFlags
	set      map[string]bool
	password string
}

// runUser runs `postroom user ...`. stdin is read only for -password-stdin.
func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" || cmd == "-h" || cmd == "-help" || cmd == "--help" {
		fmt.Fprint(stdout, userUsage)
		return nil
	}
	spec, ok := userCommands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "unknown user command %q\n\n%s", cmd, userUsage)
		return errUsage
	}
	if err := refuseSecretFlags(args); err != nil {
		return err
	}
	fs := flag.NewFlagSet("postroom user "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs, getenv, false)
	if getenv(envLogLevel) == "" {
		common.logLevel = "warn"
		fs.Lookup("log-level").DefValue = "warn"
	}
	var o userFlags
	if spec.profile {
		fs.StringVar(&o.role, "role", "", "agent, supervisor or admin (add: agent when left out)")
		fs.StringVar(&o.name, "name", "", "display name, e.g. \"Ana Agent\" (add: the user name when left out)")
		fs.StringVar(&o.email, "email", "", "email address (optional)")
	}
	if spec.toggle {
		fs.BoolVar(&o.enable, "enable", false, "let the user sign in again")
		fs.BoolVar(&o.disable, "disable", false, "stop the user signing in")
	}
	if spec.password {
		fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input")
		fs.StringVar(&o.passwordFile, "password-file", "", "read the password from this file")
	}
	if spec.output {
		fs.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom user %s %s\n\n%s\n\nFlags:\n", cmd, spec.args, spec.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != spec.nargs {
		fmt.Fprintf(stderr, "postroom user %s takes %s\n", cmd, spec.args)
		fs.Usage()
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.enable && o.disable {
		return errors.New("give -enable or -disable, not both")
	}
	var password string
	if spec.password {
		src := secretSource{"the password", "password-stdin", "password-file", o.passwordStdin, o.passwordFile, maxPasswordBytes, nil}
		s, err := src.read(stdin)
		if err != nil {
			return err
		}
		if s == nil {
			return errors.New("no password: give it with -password-stdin (printf '%s' \"$PW\" | postroom user ...) or -password-file PATH; " + secretFlagsExplained + ", so there is no -password flag")
		}
		password = s.Reveal()
	}

	a, log, err := common.openApp(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	c := &userCLI{st: a.Store, users: auth.NewUsers(a.Store, log), auth: a.Auth, actor: cliActor(getenv), out: stdout, opts: &o, set: set, password: password}
	name := ""
	if len(pos) > 0 {
		name = pos[0]
	}
	return userError(spec.run(c, ctx, name))
}

// flagOfUserField names the flag of each user field, for error messages.
var flagOfUserField = map[string]string{
	"username": "NAME", "name": "-name", "email": "-email", "role": "-role",
	"password": "-password-stdin or -password-file", "teams": "", "time_zone": "",
}

// userError words the rules' errors for the command line: each field with its flag.
func userError(err error) error {
	var ve *auth.ValidationError
	if !errors.As(err, &ve) {
		if errors.Is(err, store.ErrLastAdmin) {
			return store.ErrLastAdmin
		}
		return err
	}
	keys := make([]string, 0, len(ve.Fields))
	for k := range ve.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		label := k
		if f := flagOfUserField[k]; f != "" {
			label += " (" + f + ")"
		}
		parts = append(parts, label+": "+ve.Fields[k])
	}
	return errors.New(strings.Join(parts, "; "))
}

func (c *userCLI) byName(ctx context.Context, name string) (store.User, error) {
	u, err := c.st.UserByUsername(ctx, name)
	if store.IsNotFound(err) {
		return store.User{}, fmt.Errorf("there is no user %q: postroom user list shows the users", name)
	}
	return u, err
}

// cliUser is the actor of changes: no user of the database, so never "yourself".
func (c *userCLI) cliUser() store.User { return store.User{Username: c.actor} }

type userListJSON struct {
	Username string  `json:"username"`
	Name     string  `json:"name"`
	Email    string  `json:"email"`
	Role     string  `json:"role"`
	Disabled bool    `json:"disabled"`
	Teams    []int64 `json:"teams"`
	ID       int64   `json:"id"`
}

func (c *userCLI) list(ctx context.Context, _ string) error {
	users, err := c.st.ListUsers(ctx)
	if err != nil {
		return err
	}
	if c.opts.asJSON {
		out := struct {
			Items []userListJSON `json:"items"`
		}{Items: []userListJSON{}}
		for _, u := range users {
			teams := u.Teams
			if teams == nil {
				teams = []int64{}
			}
			out.Items = append(out.Items, userListJSON{ID: u.ID, Username: u.Username, Name: u.DisplayName, Email: u.Email, Role: u.Role, Disabled: u.Disabled, Teams: teams})
		}
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(users) == 0 {
		fmt.Fprintln(c.out, "no users: add one with postroom user add NAME -role admin -password-file PATH")
		return nil
	}
	teams, err := c.st.ListTeams(ctx)
	if err != nil {
		return err
	}
	teamNames := map[int64]string{}
	for _, t := range teams {
		teamNames[t.ID] = t.Name
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tNAME\tEMAIL\tROLE\tENABLED\tTEAMS")
	for _, u := range users {
		enabled := "yes"
		if u.Disabled {
			enabled = "no"
		}
		var ts []string
		for _, id := range u.Teams {
			ts = append(ts, teamNames[id])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.DisplayName, dash(u.Email), u.Role, enabled, dash(strings.Join(ts, ",")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *userCLI) add(ctx context.Context, name string) error {
	role := c.opts.role
	if !c.set["role"] {
		role = store.RoleAgent
	}
	u, err := c.users.Create(ctx, c.actor, auth.NewUser{Username: name, DisplayName: c.opts.name, Email: c.opts.email, Role: role, Password: c.password})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "created %s %q (%s)\n", u.Role, u.Username, u.DisplayName)
	return nil
}

func (c *userCLI) edit(ctx context.Context, name string) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	var ch auth.UserChange
	if c.set["role"] {
		ch.Role = &c.opts.role
	}
	if c.set["name"] {
		ch.DisplayName = &c.opts.name
	}
	if c.set["email"] {
		ch.Email = &c.opts.email
	}
	if c.opts.enable || c.opts.disable {
		d := c.opts.disable
		ch.Disabled = &d
	}
	if ch == (auth.UserChange{}) {
		return errors.New("nothing to change: give -role, -name, -email, -enable or -disable")
	}
	nu, err := c.users.Update(ctx, c.cliUser(), u.ID, ch)
	if err != nil {
		return err
	}
	state := "enabled"
	if nu.Disabled {
		state = "disabled"
	}
	fmt.Fprintf(c.out, "saved %s %q (%s, %s)\n", nu.Role, nu.Username, nu.DisplayName, state)
	return nil
}

func (c *userCLI) setDisabled(ctx context.Context, name string, disabled bool) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	if _, err := c.users.Update(ctx, c.cliUser(), u.ID, auth.UserChange{Disabled: &disabled}); err != nil {
		return err
	}
	if disabled {
		fmt.Fprintf(c.out, "disabled %q: signed out everywhere, API tokens revoked\n", u.Username)
	} else {
		fmt.Fprintf(c.out, "enabled %q\n", u.Username)
	}
	return nil
}

func (c *userCLI) enable(ctx context.Context, name string) error {
	return c.setDisabled(ctx, name, false)
}
func (c *userCLI) disable(ctx context.Context, name string) error {
	return c.setDisabled(ctx, name, true)
}

func (c *userCLI) delete(ctx context.Context, name string) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	if err := c.users.Delete(ctx, c.cliUser(), u.ID); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "deleted %q\n", u.Username)
	return nil
}

func (c *userCLI) passwd(ctx context.Context, name string) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	if err := c.users.SetPassword(ctx, c.actor, u.ID, c.password); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "password of %q set\n", u.Username)
	return nil
}

func (c *userCLI) unlock(ctx context.Context, name string) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	if _, err := c.auth.Unlock(ctx, c.actor, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "unlocked %q: its failed sign-ins are forgotten\n", u.Username)
	return nil
}

func (c *userCLI) removeSecondFactor(ctx context.Context, name string) error {
	u, err := c.byName(ctx, name)
	if err != nil {
		return err
	}
	err = c.auth.RemoveSecondFactor(ctx, c.actor, u.ID)
	if store.IsNotFound(err) {
		return fmt.Errorf("%q has no second factor: nothing to remove", u.Username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "removed the second factor of %q\n", u.Username)
	return nil
}
