package app_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestRotateKey: rotate-key refuses while the app runs on the database, changing nothing;
// once it stopped, every secret is re-encrypted under a new key file, the old key file is
// kept (0600), the app opens with the new key and reads its secrets, and the old key no
// longer opens the data. With the key in the environment the new key goes to a file.
func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	noEnv := func(string) string { return "" }
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	open := func(getenv func(string) string) (*app.App, error) {
		return app.Open(ctx, app.Config{DataDir: dir, Getenv: getenv, Logger: logger, Existing: false})
	}
	a, err := open(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.EnsureMailbox(ctx, "test", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.test",
			Host: "127.0.0.1", Port: 993, Security: "tls", Login: "support@example.test", Folder: "INBOX", MaxSizeMB: 5},
		Password: vault.NewSecret("imap-pw"),
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Auth.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "ana-password-long")
	if err != nil {
		t.Fatal(err)
	}
	totp, _ := a.Vault.Seal([]byte("JBSWY3DPEHPK3PXP"))
	if err := a.Store.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: totp}); err != nil {
		t.Fatal(err)
	}
	oldKey, _ := os.ReadFile(filepath.Join(dir, vault.KeyFileName))

	// Running: refused, nothing changed.
	runCtx, stop := context.WithCancel(ctx)
	wait := a.Start(runCtx)
	waitFor(t, "the heartbeat", func() (bool, string) {
		n, err := a.Store.AliveNodes(ctx, time.Now().Add(-time.Minute))
		return err == nil && len(n) == 1, "no heartbeat yet"
	})
	_, err = app.RotateKey(ctx, dir, "", noEnv, "", logger)
	if !errors.Is(err, store.ErrNodesAlive) || !strings.Contains(err.Error(), "stop every postroom serve") {
		t.Errorf("rotate-key while the app runs: %v; want it refused (ErrNodesAlive) with advice", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, vault.KeyFileName)); string(now) != string(oldKey) {
		t.Errorf("a refused rotation changed the key file")
	}
	if pw, err := a.Passwords.Get(ctx, m.ID); err != nil || pw.Reveal() != "imap-pw" {
		t.Errorf("after a refused rotation the running app reads the password: %v", err)
	}
	stop()
	wait()
	a.Close()

	res, err := app.RotateKey(ctx, dir, "", noEnv, "", logger)
	if err != nil {
		t.Fatalf("rotate-key with the app stopped: %v", err)
	}
	if res.Resealed < 3 { // the key check, the password, the second factor
		t.Errorf("rotate-key re-encrypted %d values; want at least 3", res.Resealed)
	}
	newKey, _ := os.ReadFile(filepath.Join(dir, vault.KeyFileName))
	kept, err := os.ReadFile(res.OldKeyFile)
	if err != nil || string(kept) != string(oldKey) || string(newKey) == string(oldKey) {
		t.Fatalf("key files after the rotation: old kept in %s (%v, same as before: %v), new differs: %v", res.OldKeyFile, err, string(kept) == string(oldKey), string(newKey) != string(oldKey))
	}
	for _, p := range []string{res.OldKeyFile, filepath.Join(dir, vault.KeyFileName)} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", p, fi.Mode().Perm())
		}
	}
	a, err = open(noEnv)
	if err != nil {
		t.Fatalf("open with the new key: %v", err)
	}
	if pw, err := a.Passwords.Get(ctx, m.ID); err != nil || pw.Reveal() != "imap-pw" {
		t.Errorf("the password under the new key: %v", err)
	}
	f, err := a.Store.SecondFactor(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := a.Vault.Open(f.Secret); err != nil || string(plain) != "JBSWY3DPEHPK3PXP" {
		t.Errorf("the second factor under the new key: %v", err)
	}
	a.Close()
	oldEnv := func(k string) string {
		return map[string]string{vault.EnvKey: strings.TrimSpace(string(oldKey))}[k]
	}
	if _, err := open(oldEnv); !errors.Is(err, vault.ErrWrongKey) {
		t.Errorf("open with the old key after the rotation: %v; want ErrWrongKey", err)
	}

	// The key in the environment: the new key goes to a file named by the operator.
	newEnv := func(k string) string {
		return map[string]string{vault.EnvKey: strings.TrimSpace(string(newKey))}[k]
	}
	if _, err := app.RotateKey(ctx, dir, "", newEnv, "", logger); err == nil || !strings.Contains(err.Error(), "-new-key-file") {
		t.Errorf("rotate-key with the key in the environment and no -new-key-file: %v; want advice", err)
	}
	out := filepath.Join(t.TempDir(), "next.key")
	res, err = app.RotateKey(ctx, dir, "", newEnv, out, logger)
	if err != nil || res.KeyFile != out || res.OldKeyFile != "" {
		t.Fatalf("rotate-key with the key in the environment: %+v, %v", res, err)
	}
	next, _ := os.ReadFile(out)
	a, err = open(func(k string) string { return map[string]string{vault.EnvKey: strings.TrimSpace(string(next))}[k] })
	if err != nil {
		t.Fatalf("open with the key written to -new-key-file: %v", err)
	}
	if pw, err := a.Passwords.Get(ctx, m.ID); err != nil || pw.Reveal() != "imap-pw" {
		t.Errorf("the password under the third key: %v", err)
	}
	a.Close()
}
