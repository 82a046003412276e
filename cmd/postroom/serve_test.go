package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/testenv"
)

// TestServeFromEnvironment: `postroom serve` configured only by flags and environment
// variables, on PostgreSQL, creates the first admin and the inbound mailbox and ingests
// from a real Dovecot.
func TestServeFromEnvironment(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "support@example.test", "support-pw")
	d.Append(t, "support@example.test", "INBOX", []byte("From: Ana <ana@example.org>\r\nTo: support@example.test\r\nSubject: Serve me\r\nMessage-ID: <serve-1@example.org>\r\n\r\nHello\r\n"))
	env := map[string]string{
		envDatabaseURL:        testenv.Postgres(t),
		"POSTROOM_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		envAdminPassword:      "first-admin-pw",
		envInboundURL:         fmt.Sprintf("imap+insecure://support%%40example.test@%s/INBOX?poll=10s", d.IMAPAddr),
		envInboundPass:        "support-pw",
	}
	base, out, errOut := startServe(t, env)
	if !strings.Contains(out.String(), "PostgreSQL") {
		t.Errorf("serve does not say it uses PostgreSQL: %s", out.String())
	}
	c := apiSignIn(t, base, "admin", "first-admin-pw")
	var found bool
	for deadline := time.Now().Add(waitLimit); !found && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		found = len(listItems(t, c, base, "Serve me").Items) == 1
	}
	if !found {
		t.Fatalf("the message in Dovecot never became a work item; log: %s", errOut.String())
	}
	resp, err := c.Get(base + "/api/v1/mailboxes")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mailboxes: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestServeGraphFromEnvironment: a Microsoft 365 mailbox configured only by environment
// variables (a graph:// URL and its client secret) ingests the stand-in tenant's mail.
func TestServeGraphFromEnvironment(t *testing.T) {
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	sample, err := ms.SampleTenant(mstest.SampleOptions{Messages: 2})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"tenant": {sample.TenantID}, "client_id": {sample.ClientID}, "cloud": {"custom"},
		"authority_url": {ms.LoginURL()}, "graph_url": {ms.GraphURL()}}
	env := map[string]string{
		"POSTROOM_SECRET_KEY":            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		envAdminPassword:                 "first-admin-pw",
		envInboundURL:                    "graph://" + sample.Mailbox + "/Inbox?" + q.Encode(),
		"POSTROOM_INBOUND_CLIENT_SECRET": sample.ClientSecret,
	}
	base, _, errOut := startServe(t, env)
	c := apiSignIn(t, base, "admin", "first-admin-pw")
	n := 0
	for deadline := time.Now().Add(waitLimit); n < 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n = len(listItems(t, c, base, "").Items)
	}
	if n != 2 {
		t.Fatalf("%d work items from the Graph mailbox, want 2; log: %s", n, errOut.String())
	}
	if strings.Contains(errOut.String(), sample.ClientSecret) {
		t.Error("the client secret is in the log")
	}
}

// startServe runs `postroom serve` with env until the test ends (it must then exit 0) and
// returns the address it serves and its output.
func startServe(t *testing.T, env map[string]string) (base string, out, errOut *testenv.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &testenv.LogBuffer{}, &testenv.LogBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-listen", "127.0.0.1:0", "-data", t.TempDir(), "-log-level", "warn"}, out, errOut, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d: %s", code, errOut.String())
		}
	})
	re := regexp.MustCompile(`serving (http://\S+)`)
	for deadline := time.Now().Add(waitLimit); base == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve printed no address: %s %s", out.String(), errOut.String())
	}
	return base, out, errOut
}

// TestServeMaxConnectingRefused: a bad -max-connecting or POSTROOM_MAX_CONNECTING stops
// serve before it opens anything, with the range to use.
func TestServeMaxConnectingRefused(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"zero flag":      {args: []string{"serve", "-max-connecting", "0"}},
		"too many flag":  {args: []string{"serve", "-max-connecting", "5000"}},
		"word from env":  {args: []string{"serve"}, env: map[string]string{envMaxConnecting: "lots"}},
		"negative (env)": {args: []string{"serve"}, env: map[string]string{envMaxConnecting: "-2"}},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			getenv := func(k string) string { return c.env[k] }
			dir := t.TempDir()
			args := append(c.args, "-data", dir)
			if code := run(context.Background(), args, &out, &errOut, getenv); code == 0 {
				t.Fatalf("serve started: %s", out.String())
			}
			if !strings.Contains(errOut.String(), "give a whole number from 1 to 1000") {
				t.Errorf("stderr %q does not give the range", errOut.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("serve wrote %d files to the data folder before refusing", len(entries))
			}
		})
	}
}

// TestServeWeakAdminPasswordRefused: POSTROOM_ADMIN_PASSWORD follows the password rule;
// serve refuses to start with one that is short, common or the user name, and says why.
func TestServeWeakAdminPasswordRefused(t *testing.T) {
	for pw, want := range map[string]string{
		"admin":          "at least 12",
		"password123456": "attackers try",
		"Admin2024!!":    "at least 12",
		"administrator1": "attackers try",
	} {
		var out, errOut bytes.Buffer
		getenv := func(k string) string {
			if k == envAdminPassword {
				return pw
			}
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code := run(ctx, []string{"serve", "-listen", "127.0.0.1:0", "-data", t.TempDir()}, &out, &errOut, getenv)
		cancel()
		if code == 0 {
			t.Fatalf("serve started with %s=%q: %s", envAdminPassword, pw, out.String())
		}
		if msg := errOut.String(); !strings.Contains(msg, envAdminPassword+" is refused") || !strings.Contains(msg, want) {
			t.Errorf("%q: stderr %q does not say why", pw, msg)
		}
	}
}
