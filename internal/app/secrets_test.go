package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestWrongKeyRefusedAtStart: data encrypted with one key cannot be opened with another;
// the error says what to do instead of yielding garbage later.
func TestWrongKeyRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func(key string) (*app.App, error) {
		return app.Open(ctx, app.Config{DataDir: dir, Getenv: func(k string) string {
			if k == vault.EnvKey {
				return key
			}
			return ""
		}})
	}
	a, err := open(testKey)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	_, err = open("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	if err == nil {
		t.Fatal("opened the data with another key")
	}
	if !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), vault.EnvKey) {
		t.Errorf("error %q does not say the key is wrong and what to set", err)
	}
	// The right key still works.
	a, err = open(testKey)
	if err != nil {
		t.Fatalf("the original key no longer opens the data: %v", err)
	}
	a.Close()
}

// TestSecretsNeverLeak: a mailbox password is not in the log (even at debug level and
// while the login fails), not in any API answer, and not in the database file.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "Tr0ub4dor-and-3-zebras"
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "support@example.test", "another-password")
	dir := t.TempDir()
	var logs testenv.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{
		DataDir: dir,
		Getenv:  func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RootCAs: certPool(t, d.CertPEM), IngestReload: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := a.Start(ctx)
	defer func() { cancel(); wait(); a.Close() }()
	host, port := hostPort(t, d.IMAPSAddr)
	m, err := a.EnsureMailbox(ctx, "admin", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.test",
			Host: host, Port: port, Security: "tls", Login: "support@example.test", Folder: "INBOX", MaxSizeMB: 5, Enabled: true},
		Password: vault.NewSecret(secret),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.PasswordSet {
		t.Error("mailbox does not report that a password is set")
	}
	waitFor(t, "the login failure", func() (bool, string) {
		mb, _ := a.Store.Mailbox(ctx, m.ID)
		return mb.Status == store.StatusError, mb.Status
	})
	if _, err := a.Auth.EnsureUser(ctx, "boss", "Boss", store.RoleAdmin, "boss-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	srvURL := serveHandler(t, a)
	c := newAPIClient(t, srvURL, "boss", "boss-pw-for-tests")
	for _, path := range []string{"/api/v1/mailboxes", fmt.Sprintf("/api/v1/mailboxes/%d", m.ID), "/api/v1/workitems", "/api/v1/me",
		"/mailboxes", fmt.Sprintf("/mailboxes?selected=%d", m.ID), fmt.Sprintf("/mailboxes/%d/edit", m.ID), "/queues"} {
		status, body := c.do("GET", path, nil)
		if status != 200 {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("GET %s returns the mailbox password", path)
		}
		if strings.HasPrefix(path, "/mailboxes?selected") && !bytes.Contains(body, []byte("support")) {
			t.Errorf("GET %s does not show the mailbox", path)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the log contains the mailbox password")
	}
	if !strings.Contains(logs.String(), "check the login name and password") {
		t.Error("the log does not carry the advice for the failing mailbox")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "postroom.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the password in plain text", filepath.Base(f))
		}
	}
	audit, _ := a.Store.ListAudit(ctx, 100)
	for _, e := range audit {
		if strings.Contains(e.Old+e.New, secret) {
			t.Errorf("audit event %s holds the password", e.Action)
		}
	}
}
