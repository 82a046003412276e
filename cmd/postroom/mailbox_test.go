package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/api"
	"github.com/postroom/postroom/internal/testenv"
)

// cliPassword is the mailbox password of the CLI tests; no output may contain it.
const cliPassword = "cli-Secret-9f3k-never-printed"

// cli runs `postroom mailbox ...` on one data folder.
type cli struct {
	t   *testing.T
	dir string
	// output collects everything any command printed, to search for the password.
	output bytes.Buffer
}

// newCLI returns a cli on a new data folder with an empty database (postroom migrate):
// the administration commands refuse a folder without one.
func newCLI(t *testing.T) *cli {
	t.Helper()
	c := &cli{t: t, dir: t.TempDir()}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "-data", c.dir}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("postroom migrate: exit %d\n%s", code, errOut.String())
	}
	return c
}

// run runs `postroom mailbox args... -data DIR` through run(), as the binary does.
func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"mailbox"}, args...)
	full = append(full, "-data", c.dir)
	code = run(context.Background(), full, &out, &errOut, noEnv)
	c.output.Write(out.Bytes())
	c.output.Write(errOut.Bytes())
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its standard output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("postroom mailbox %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must exit 1 and returns its standard error.
func (c *cli) fails(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 1 {
		c.t.Fatalf("postroom mailbox %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return errOut
}

// passwordFile writes a password file (with the newline an editor adds).
func (c *cli) passwordFile(pw string) string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func (c *cli) show(name string) api.MailboxView {
	c.t.Helper()
	var v api.MailboxView
	if err := json.Unmarshal([]byte(c.ok("show", name, "-json")), &v); err != nil {
		c.t.Fatal(err)
	}
	return v
}

func TestMailboxCLILifecycle(t *testing.T) {
	c := newCLI(t)
	pwFile := c.passwordFile(cliPassword)

	if out := c.ok("list"); !strings.Contains(out, "no mailboxes") {
		t.Errorf("list of an empty database: %q", out)
	}
	out := c.ok("add", "support", "-direction", "inbound", "-host", "imap.example.com", "-login", "support@example.com", "-password-file", pwFile, "-max-size", "10")
	if !strings.Contains(out, `created inbound mailbox "support" (disabled`) {
		t.Errorf("add printed %q", out)
	}
	// Flags after or before the name, and -name instead of the argument.
	c.ok("add", "-direction", "outbound", "-name", "out", "-host", "smtp.example.com", "-address", "support@example.com", "-login", "support", "-password-file", pwFile)

	table := c.ok("list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^NAME\s+DIRECTION\s+PROTOCOL\s+HOST:PORT\s+ENABLED\s+STATUS$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", table)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^support\s+inbound\s+imap\s+imap\.example\.com:993\s+no\s+disabled$`),
		regexp.MustCompile(`(?m)^out\s+outbound\s+smtp\s+smtp\.example\.com:587\s+no\s+disabled$`),
	} {
		if !want.MatchString(table) {
			t.Errorf("list does not match %s:\n%s", want, table)
		}
	}
	if out := c.ok("list", "-direction", "outbound"); strings.Contains(out, "support ") || !strings.Contains(out, "out ") {
		t.Errorf("list -direction outbound:\n%s", out)
	}
	var listed struct{ Items []api.MailboxView }
	if err := json.Unmarshal([]byte(c.ok("list", "-json", "-q", "IMAP.example")), &listed); err != nil || len(listed.Items) != 1 || listed.Items[0].Name != "support" {
		t.Errorf("list -json -q IMAP.example: %+v (%v)", listed, err)
	}

	text := c.ok("show", "support")
	for _, want := range []string{"name:", "support", "password:", "set", "max_size:", "10 MB", "folder:", "INBOX", "status:", "disabled", "queue:", "(none)", "after_action:", "mark_read"} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}
	v := c.show("support")
	if v.Name != "support" || v.Port != 993 || v.Security != "tls" || !v.PasswordSet || v.Enabled || v.MaxSizeMB != 10 || v.Address != "support@example.com" {
		t.Errorf("show -json: %+v", v)
	}

	// Edit changes only the flags given and keeps the password; a new port needs the
	// password again (the stored one only goes to the server it was entered for).
	c.ok("edit", "support", "-poll", "30s")
	v = c.show("support")
	if v.Port != 993 || v.PollIntervalSeconds != 30 || v.Host != "imap.example.com" || v.MaxSizeMB != 10 || !v.PasswordSet {
		t.Errorf("after edit: %+v", v)
	}
	if msg := c.fails("edit", "support", "-port", "1993"); !strings.Contains(msg, "you changed the port: enter the password again") {
		t.Errorf("edit -port without the password: %s", msg)
	}
	if msg := c.fails("edit", "support", "-name", "other"); !strings.Contains(msg, "name (-name):") {
		t.Errorf("rename: %s", msg)
	}

	// Enable; delete is refused while enabled; disable; delete.
	c.ok("enable", "support")
	if v := c.show("support"); !v.Enabled || v.Queue != "Default" {
		t.Errorf("after enable: %+v", v)
	}
	if msg := c.fails("delete", "support"); !strings.Contains(msg, "the mailbox is enabled: disable it before deleting it") {
		t.Errorf("delete while enabled: %s", msg)
	}
	c.ok("disable", "support")

	// Copy: everything but the name and the password.
	c.ok("copy", "support", "support2")
	cp := c.show("support2")
	if cp.Host != "imap.example.com" || cp.Port != 993 || cp.PollIntervalSeconds != 30 || cp.PasswordSet || cp.Enabled {
		t.Errorf("copy: %+v", cp)
	}
	if msg := c.fails("copy", "support", "support2"); !strings.Contains(msg, "name (-name):") {
		t.Errorf("copy to a taken name: %s", msg)
	}

	c.ok("delete", "support")
	if msg := c.fails("show", "support"); !strings.Contains(msg, `no mailbox named "support"`) {
		t.Errorf("show deleted: %s", msg)
	}

	if strings.Contains(c.output.String(), cliPassword) {
		t.Errorf("the password was printed:\n%s", c.output.String())
	}
	db, err := os.ReadFile(filepath.Join(c.dir, "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(cliPassword)) {
		t.Error("the database holds the password in plain text")
	}
}

func TestMailboxCLIValidation(t *testing.T) {
	c := newCLI(t)
	pwFile := c.passwordFile(cliPassword)
	tests := []struct {
		args  []string
		field string
	}{
		{[]string{"add", "a b", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile}, "name (-name): "},
		{[]string{"add", strings.Repeat("n", 41), "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile}, "name (-name): "},
		{[]string{"add", "m4", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-max-size", "4"}, "max_size_mb (-max-size): "},
		{[]string{"add", "ad", "-direction", "inbound", "-protocol", "ews", "-host", "h.example.com", "-autodiscover-host", "ad.example.com",
			"-address", "a@example.com", "-login", "x", "-password-file", pwFile}, "autodiscover_host (-autodiscover-host): a typed host is the EWS server itself"},
		{[]string{"add", "m21", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-max-size", "21"}, "max_size_mb (-max-size): "},
		{[]string{"add", "plain", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-security", "none"}, "security (-security): "},
		{[]string{"add", "nohost", "-direction", "inbound", "-login", "x", "-password-file", pwFile}, "host (-host): "},
		{[]string{"add", "nopw", "-direction", "inbound", "-host", "h.example.com", "-login", "x"}, "password (-password-stdin or -password-file): "},
		{[]string{"add", "pop", "-direction", "inbound", "-protocol", "pop3", "-folder", "INBOX", "-host", "h.example.com", "-login", "x", "-password-file", pwFile}, "folder (-folder): "},
		{[]string{"add", "mv", "-direction", "inbound", "-after-action", "move", "-host", "h.example.com", "-login", "x", "-password-file", pwFile}, "move_folder (-move-folder): "},
		{[]string{"add", "nodir", "-host", "h.example.com"}, "direction (-direction): "},
	}
	for _, tc := range tests {
		msg := c.fails(tc.args...)
		if !strings.Contains(msg, "the mailbox has errors:") || !strings.Contains(msg, "\n  "+tc.field) {
			t.Errorf("%v: stderr %q does not name %q", tc.args, msg, tc.field)
		}
	}
	// Several errors are listed, one a line.
	msg := c.fails("add", "a b", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-max-size", "4")
	if !strings.Contains(msg, "\n  max_size_mb (-max-size): ") || !strings.Contains(msg, "\n  name (-name): ") {
		t.Errorf("two errors: %q", msg)
	}
	// The limits are accepted.
	c.ok("add", "m5", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-max-size", "5")
	c.ok("add", "m20", "-direction", "inbound", "-host", "h.example.com", "-login", "x", "-password-file", pwFile, "-max-size", "20")

	// No -password flag: a clear refusal that does not echo the value.
	for _, args := range [][]string{
		{"add", "p", "-direction", "inbound", "-password", cliPassword},
		{"edit", "m5", "--password=" + cliPassword},
	} {
		code, out, errOut := c.run(args...)
		if code == 0 || !strings.Contains(errOut, "there is no -password flag") || strings.Contains(out+errOut, cliPassword) {
			t.Errorf("%v: exit %d, stderr %q", args[:2], code, errOut)
		}
	}
	if code, _, errOut := c.run("add", "p", "-password-stdin", "-password-file", pwFile, "-direction", "inbound"); code != 1 || !strings.Contains(errOut, "not both") {
		t.Errorf("both password flags: %d %q", code, errOut)
	}
	if code, _, errOut := c.run("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown mailbox command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := c.run("show"); code != 2 {
		t.Errorf("show without a name: exit %d, want 2", code)
	}
	if strings.Contains(c.output.String(), cliPassword) {
		t.Errorf("the password was printed:\n%s", c.output.String())
	}
}

// TestMailboxCLITest tests connections against a real Dovecot, with the password given on
// standard input.
func TestMailboxCLITest(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	const user = "cli@example.test"
	d.AddUser(t, user, cliPassword)
	host, port, err := net.SplitHostPort(d.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	stdinRun := func(stdin string, args ...string) error {
		var out, errOut bytes.Buffer
		err := runMailbox(context.Background(), append(args, "-data", c.dir), strings.NewReader(stdin), &out, &errOut, noEnv)
		c.output.Write(out.Bytes())
		c.output.Write(errOut.Bytes())
		return err
	}
	if err := stdinRun(cliPassword+"\n", "add", "dove", "-direction", "inbound", "-host", host, "-port", port, "-security", "none", "-login", user, "-password-stdin"); err != nil {
		t.Fatal(err)
	}
	if err := stdinRun("", "edit", "dove", "-password-stdin"); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("empty standard input: %v", err)
	}

	out := c.ok("test", "dove")
	if !strings.Contains(out, "✓ ") || strings.Contains(out, "✗") || !strings.Contains(out, "connection test passed") {
		t.Errorf("test with the right password:\n%s", out)
	}

	if err := stdinRun("wrong-password", "edit", "dove", "-password-stdin"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := c.run("test", "dove")
	if code != 1 || !strings.Contains(out, "✓ ") || !strings.Contains(out, "✗ ") || !strings.Contains(out, "what to do: ") || !strings.Contains(strings.ToLower(out), "password") {
		t.Errorf("test with a wrong password: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, `the connection test of "dove" failed`) {
		t.Errorf("stderr %q", errOut)
	}
	if strings.Contains(c.output.String(), cliPassword) {
		t.Errorf("the password was printed:\n%s", c.output.String())
	}
}
