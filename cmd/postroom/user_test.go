package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// user runs `postroom user ...` on the data folder of c.
func (c *cli) user(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"user"}, args...)
	full = append(full, "-data", c.dir)
	code = run(context.Background(), full, &out, &errOut, noEnv)
	c.output.Write(out.Bytes())
	c.output.Write(errOut.Bytes())
	return code, out.String(), errOut.String()
}

func (c *cli) userOK(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.user(args...)
	if code != 0 {
		c.t.Fatalf("postroom user %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *cli) userFails(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.user(args...)
	if code != 1 {
		c.t.Fatalf("postroom user %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return errOut
}

func TestUserCLI(t *testing.T) {
	const pw = "cli user password never printed"
	c := newCLI(t)
	pwFile := c.passwordFile(pw)

	if out := c.userOK("list"); !strings.Contains(out, "no users") {
		t.Errorf("list of an empty database: %q", out)
	}
	c.userOK("add", "boss", "-role", "admin", "-name", "The Boss", "-password-file", pwFile)
	out := c.userOK("add", "ana", "-name", "Ana Agent", "-email", "ana@example.com", "-password-file", pwFile)
	if !strings.Contains(out, `created agent "ana"`) {
		t.Errorf("add printed %q", out)
	}
	// Standard input.
	var so, se bytes.Buffer
	if err := runUser(context.Background(), []string{"add", "sam", "-role", "supervisor", "-password-stdin", "-data", c.dir},
		strings.NewReader("sam's password from stdin\n"), &so, &se, noEnv); err != nil {
		t.Fatalf("add -password-stdin: %v\n%s", err, se.String())
	}
	c.output.Write(so.Bytes())

	table := c.userOK("list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^USERNAME\s+NAME\s+EMAIL\s+ROLE\s+ENABLED\s+TEAMS$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", table)
	}
	if !regexp.MustCompile(`(?m)^ana\s+Ana Agent\s+ana@example\.com\s+agent\s+yes\s+-$`).MatchString(table) {
		t.Errorf("ana's row:\n%s", table)
	}
	var listed struct {
		Items []struct {
			Username string `json:"username"`
			Role     string `json:"role"`
			Disabled bool   `json:"disabled"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.userOK("list", "-json")), &listed); err != nil || len(listed.Items) != 3 {
		t.Fatalf("list -json: %+v %v", listed, err)
	}

	// Refusals: a password flag, a short password, bad fields, no password, unknown user.
	if msg := c.userFails("add", "eve", "-password", "x"); !strings.Contains(msg, "-password-stdin or -password-file") {
		t.Errorf("-password: %s", msg)
	}
	if msg := c.userFails("add", "eve", "-password-file", c.passwordFile("short")); !strings.Contains(msg, "password (-password-stdin or -password-file): use at least 12") {
		t.Errorf("short password: %s", msg)
	}
	if msg := c.userFails("add", "eve ve", "-role", "boss", "-email", "x@", "-password-file", pwFile); !strings.Contains(msg, "username (NAME)") ||
		!strings.Contains(msg, "role (-role)") || !strings.Contains(msg, "email (-email)") {
		t.Errorf("bad fields: %s", msg)
	}
	if msg := c.userFails("add", "eve"); !strings.Contains(msg, "no password") {
		t.Errorf("no password: %s", msg)
	}
	if msg := c.userFails("disable", "nobody"); !strings.Contains(msg, `there is no user "nobody"`) {
		t.Errorf("unknown user: %s", msg)
	}

	// Edit, disable, enable.
	if out := c.userOK("edit", "ana", "-role", "supervisor", "-name", "Ana A."); !strings.Contains(out, `saved supervisor "ana" (Ana A., enabled)`) {
		t.Errorf("edit: %q", out)
	}
	if out := c.userOK("disable", "ana"); !strings.Contains(out, `disabled "ana"`) {
		t.Errorf("disable: %q", out)
	}
	if !regexp.MustCompile(`(?m)^ana\s+Ana A\.\s+ana@example\.com\s+supervisor\s+no\s+-$`).MatchString(c.userOK("list")) {
		t.Errorf("list after disable:\n%s", c.userOK("list"))
	}
	c.userOK("edit", "ana", "-enable")
	if msg := c.userFails("edit", "ana"); !strings.Contains(msg, "nothing to change") {
		t.Errorf("edit without flags: %s", msg)
	}

	// The last admin.
	if msg := c.userFails("disable", "boss"); !strings.Contains(msg, "last enabled admin") {
		t.Errorf("disable the last admin: %s", msg)
	}
	if msg := c.userFails("edit", "boss", "-role", "agent"); !strings.Contains(msg, "last enabled admin") {
		t.Errorf("demote the last admin: %s", msg)
	}

	// passwd, delete.
	if out := c.userOK("passwd", "ana", "-password-file", c.passwordFile("a new password for ana")); !strings.Contains(out, `password of "ana" set`) {
		t.Errorf("passwd: %q", out)
	}
	c.userOK("delete", "sam")
	if strings.Contains(c.userOK("list"), "sam") {
		t.Error("sam listed after delete")
	}
	if strings.Contains(c.output.String(), pw) || strings.Contains(c.output.String(), "a new password for ana") || strings.Contains(c.output.String(), "from stdin") {
		t.Errorf("a password was printed:\n%s", c.output.String())
	}
}

// TestUserUnlockCLI: the break-glass when no admin can sign in: `postroom user unlock`
// forgets a locked user's failures (audited), and remove-second-factor says when there is
// nothing to remove.
func TestUserUnlockCLI(t *testing.T) {
	c := newCLI(t)
	c.userOK("add", "boss", "-role", "admin", "-password-file", c.passwordFile("cli user password never printed"))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(c.dir, "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.RecordSignInFailure(ctx, store.SignInFailure{Key: auth.AccountKey("boss"), At: time.Now(), QuietAfter: time.Hour,
		LockFor: func(int) time.Duration { return 15 * time.Minute }})
	if err != nil {
		t.Fatal(err)
	}
	if out := c.userOK("unlock", "boss"); !strings.Contains(out, `unlocked "boss"`) {
		t.Errorf("unlock: %q", out)
	}
	if list, _ := st.SignInThrottles(ctx, auth.AccountKey("boss")); len(list) != 0 {
		t.Errorf("still locked after unlock: %+v", list)
	}
	events, _ := st.ListAudit(ctx, 10)
	if len(events) == 0 || events[0].Action != "user.unlock" {
		t.Errorf("the unlock is not audited: %+v", events)
	}
	if msg := c.userFails("remove-second-factor", "boss"); !strings.Contains(msg, "no second factor") {
		t.Errorf("remove-second-factor without one: %s", msg)
	}
	if msg := c.userFails("unlock", "nobody"); !strings.Contains(msg, "there is no user") {
		t.Errorf("unlock of an unknown user: %s", msg)
	}
}
