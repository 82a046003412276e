package storetest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testSchemaVersion: a migrated store has every migration of the binary applied.
func testSchemaVersion(t *testing.T, s store.Store) {
	applied, known, err := s.SchemaVersion(t.Context())
	must(t, "SchemaVersion", err)
	if known < 17 || applied != known {
		t.Errorf("SchemaVersion = applied %d, known %d; want every known migration applied", applied, known)
	}
}

// testBackup: SQLite writes a copy that is a SQLite database with the data; PostgreSQL
// says it does not (pg_dump does).
func testBackup(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "SetSetting", s.SetSetting(ctx, "backup.test", "kept"))
	path := filepath.Join(t.TempDir(), "copy.db")
	err := s.Backup(ctx, path)
	if sn, ok := s.(interface{ SingleNode() bool }); !ok || !sn.SingleNode() {
		wantErr(t, "Backup on PostgreSQL", err, store.ErrUnsupported)
		return
	}
	must(t, "Backup", err)
	b, err := os.ReadFile(path)
	must(t, "read the copy", err)
	if !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) || !bytes.Contains(b, []byte("backup.test")) {
		t.Errorf("the copy (%d bytes) is not a SQLite database holding the setting", len(b))
	}
	if err := s.Backup(ctx, path); err == nil {
		t.Errorf("Backup over an existing copy succeeded; want it refused")
	}
}

// testResealSecrets: every sealed value is rewritten in one transaction, and one failure
// rewrites nothing.
func testResealSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "shared", store.Inbound)
	must(t, "SetSecret", s.SetSecret(ctx, mb.ID, "password", []byte("sealed-password")))
	must(t, "SetSecret", s.SetSecret(ctx, mb.ID, "client_secret", []byte("sealed-client")))
	must(t, "AddPendingSignIn", s.AddPendingSignIn(ctx, pendingSignIn(mb, "state-1"), 10, signInAt))
	must(t, "AddSSOSignIn", s.AddSSOSignIn(ctx, ssoSignIn("state-2"), 10, signInAt))
	u, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser", err)
	must(t, "SetSecondFactor", s.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: []byte("sealed-totp"), CreatedAt: signInAt}))
	must(t, "SetSetting", s.SetSetting(ctx, "vault.check", base64.StdEncoding.EncodeToString([]byte("sealed-check"))))
	must(t, "SetSetting", s.SetSetting(ctx, "sso.client_secret", ""))
	settings := []string{"vault.check", "sso.client_secret", "not.there"}

	boom := errors.New("boom")
	calls := 0
	_, err = s.ResealSecrets(ctx, store.Reseal{Settings: settings, Seal: func(b []byte) ([]byte, error) {
		calls++
		if calls == 4 {
			return nil, boom
		}
		return append([]byte("new:"), b...), nil
	}})
	wantErr(t, "ResealSecrets failing at the fourth value", err, boom)
	got, err := s.Secret(ctx, mb.ID, "password")
	must(t, "Secret", err)
	if string(got) != "sealed-password" {
		t.Fatalf("after a failed reseal the password is %q; want it unchanged", got)
	}

	newSeal := func(b []byte) ([]byte, error) { return append([]byte("new:"), b...), nil }
	// A node whose heartbeat is recent makes the reseal refuse, changing nothing.
	now := time.Now()
	must(t, "SetAlive", s.SetAlive(ctx, "node-a", now))
	_, err = s.ResealSecrets(ctx, store.Reseal{Settings: settings, Seal: newSeal, RefuseAliveSince: now.Add(-30 * time.Second)})
	wantErr(t, "ResealSecrets with a node alive", err, store.ErrNodesAlive)
	if got, _ := s.Secret(ctx, mb.ID, "password"); string(got) != "sealed-password" {
		t.Fatalf("after a refused reseal the password is %q; want it unchanged", got)
	}
	must(t, "SetAlive stopped", s.SetAlive(ctx, "node-a", time.Time{}))
	n, err := s.ResealSecrets(ctx, store.Reseal{Settings: settings, Seal: newSeal, RefuseAliveSince: now.Add(-30 * time.Second)})
	must(t, "ResealSecrets", err)
	if n != 6 {
		t.Errorf("ResealSecrets rewrote %d values; want 6 (2 mailbox secrets, 2 sign-ins, 1 second factor, 1 setting)", n)
	}
	for _, name := range []string{"password", "client_secret"} {
		got, err := s.Secret(ctx, mb.ID, name)
		must(t, "Secret", err)
		if string(got) != "new:sealed-"+map[string]string{"password": "password", "client_secret": "client"}[name] {
			t.Errorf("secret %s = %q after reseal", name, got)
		}
	}
	f, err := s.SecondFactor(ctx, u.ID)
	must(t, "SecondFactor", err)
	if string(f.Secret) != "new:sealed-totp" {
		t.Errorf("second factor = %q after reseal", f.Secret)
	}
	p, err := s.TakePendingSignIn(ctx, "state-1", signInAt)
	must(t, "TakePendingSignIn", err)
	if string(p.Verifier) != "new:sealed verifier of state-1" {
		t.Errorf("pending sign-in verifier = %q after reseal", p.Verifier)
	}
	o, err := s.TakeSSOSignIn(ctx, "state-2", signInAt)
	must(t, "TakeSSOSignIn", err)
	if string(o.Verifier) != "new:sealed verifier of state-2" {
		t.Errorf("SSO sign-in verifier = %q after reseal", o.Verifier)
	}
	v, err := s.Setting(ctx, "vault.check")
	must(t, "Setting", err)
	if b, _ := base64.StdEncoding.DecodeString(v); string(b) != "new:sealed-check" {
		t.Errorf("vault.check = %q after reseal", b)
	}
	if v, _ := s.Setting(ctx, "sso.client_secret"); v != "" {
		t.Errorf("an empty sealed setting became %q; want it left empty", v)
	}
	if _, err := s.Setting(ctx, "not.there"); !store.IsNotFound(err) {
		t.Errorf("a missing setting was created by the reseal: %v", err)
	}
}

// testAliveNodes: a heartbeat makes a node alive from its time on; a stopped node and a
// heartbeat before since are not alive.
func testAliveNodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	must(t, "SetAlive a", s.SetAlive(ctx, "a", now))
	must(t, "SetAlive b", s.SetAlive(ctx, "b", now.Add(-time.Minute)))
	must(t, "SetAlive c", s.SetAlive(ctx, "c", now))
	must(t, "SetAlive c stopped", s.SetAlive(ctx, "c", time.Time{}))
	got, err := s.AliveNodes(ctx, now.Add(-30*time.Second))
	must(t, "AliveNodes", err)
	if len(got) != 1 || got[0] != "a" {
		t.Errorf("AliveNodes = %v; want [a] (b is stale, c stopped)", got)
	}
}
