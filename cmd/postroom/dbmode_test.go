package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMigrateCreatesPrivateDatabase: `postroom migrate -data DIR` into an existing folder
// open to everyone (0755) creates postroom.db, which holds all customer mail, readable by its
// owner only (0600), and so its -wal and -shm files; a database left 0644 by an older
// version is made 0600 at the next open.
func TestMigrateCreatesPrivateDatabase(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	migrate := func() {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"migrate", "-data", dir}, &out, &errOut, noEnv); code != 0 {
			t.Fatalf("postroom migrate -data %s: exit %d %s", dir, code, errOut.String())
		}
	}
	checkModes := func(when string) {
		t.Helper()
		db := filepath.Join(dir, "postroom.db")
		for _, p := range []string{db, db + "-wal", db + "-shm"} {
			fi, err := os.Stat(p)
			if os.IsNotExist(err) && p != db {
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: %s has mode %#o, want 0600", when, filepath.Base(p), m)
			}
		}
	}
	migrate()
	checkModes("after postroom migrate into a 0755 folder")

	// A database an older version left open to everyone.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		p := filepath.Join(dir, "postroom.db"+suffix)
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	migrate()
	checkModes("after postroom migrate on a 0644 database")
}
