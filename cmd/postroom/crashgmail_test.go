package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/googletest"
)

// TestCrashGmail: `postroom serve` ingesting 500 messages through the Gmail API (provider
// google, a service account, created with `postroom mailbox add`) from the Google stand-in
// is killed 10 times; every message ends up stored exactly once and without UNREAD at the
// stand-in.
func TestCrashGmail(t *testing.T) {
	n, kills := 500, 10
	if testing.Short() {
		n, kills = 150, 4
	}
	bin := buildPostroom(t)
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@example.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("crash", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	sa.Delegate(googletest.ScopeMail)
	for _, m := range crashMails(n) {
		if _, err := g.Deliver(user, m); err != nil {
			t.Fatal(err)
		}
	}
	c := newCrashRun(t, bin, nil)
	keyFile := filepath.Join(t.TempDir(), "sa-key.json")
	if err := os.WriteFile(keyFile, sa.KeyJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, strings.TrimPrefix(g.GmailURL(), "http://"))
	c.cli("migrate")
	c.cli("mailbox", "add", "gmail", "-direction", "inbound", "-protocol", "gmail", "-host", host, "-port", port,
		"-security", "none", "-address", user, "-auth", "oauth_app", "-oauth-provider", "google", "-client-secret-file", keyFile)
	c.cli("mailbox", "enable", "gmail")

	c.killRepeatedly(kills, n)
	c.runUntil("every message read at the stand-in", func() (bool, string) {
		unread := 0
		for _, m := range g.Messages(user) {
			if slices.Contains(m.Labels, "UNREAD") {
				unread++
			}
		}
		return unread == 0, fmt.Sprintf("%d unread", unread)
	})
	c.checkExactlyOnce("gmail", n)
}
