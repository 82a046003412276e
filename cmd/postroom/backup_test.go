package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/app"
)

// runCmd runs postroom with args and returns the exit code and what it printed.
func runCmd(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, getenv)
	return code, out.String(), errOut.String()
}

// TestBackupAndRestoreCommands: `postroom migrate -data B && postroom backup -data B
// copy.db` writes a private SQLite file and reminds of the key; backup never overwrites;
// restore fills a new data folder and refuses one with a database, a file that is not a
// SQLite database, and a SQLite database that is not postroom's; PostgreSQL is sent to
// pg_dump and pg_restore.
func TestBackupAndRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	b, copyDB := filepath.Join(dir, "B"), filepath.Join(dir, "copy.db")
	if code, _, errOut := runCmd(t, noEnv, "migrate", "-data", b); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCmd(t, noEnv, "backup", "-data", b, copyDB)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "secret.key") || !strings.Contains(out, "NOT in this copy") {
		t.Errorf("backup does not remind that the key file is not in the copy:\n%s", out)
	}
	raw, err := os.ReadFile(copyDB)
	if err != nil || !bytes.HasPrefix(raw, []byte("SQLite format 3")) {
		t.Fatalf("copy.db: %v; starts with %q, want \"SQLite format 3\"", err, raw[:min(len(raw), 16)])
	}
	if fi, _ := os.Stat(copyDB); fi.Mode().Perm() != 0o600 {
		t.Errorf("copy.db has mode %v; want 0600 (it holds all customer mail)", fi.Mode().Perm())
	}
	if code, _, errOut := runCmd(t, noEnv, "backup", "-data", b, copyDB); code != 1 || !strings.Contains(errOut, "exists already") {
		t.Errorf("backup onto an existing file: exit %d: %s; want it refused", code, errOut)
	}
	if code, _, errOut := runCmd(t, noEnv, "backup", "-data", filepath.Join(dir, "none"), filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("backup of a folder without a database: exit %d: %s", code, errOut)
	}

	c := filepath.Join(dir, "C")
	if code, out, errOut := runCmd(t, noEnv, "restore", "-data", c, copyDB); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, noEnv, "migrate", "-data", c); code != 0 {
		t.Errorf("migrate the restored folder: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, noEnv, "restore", "-data", c, copyDB); code != 1 || !strings.Contains(errOut, "without a database") {
		t.Errorf("restore into a folder with a database: exit %d: %s", code, errOut)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello, not a database"), 0o600)
	if code, _, errOut := runCmd(t, noEnv, "restore", "-data", filepath.Join(dir, "D"), text); code != 1 || !strings.Contains(errOut, "not a SQLite database") {
		t.Errorf("restore of a text file: exit %d: %s", code, errOut)
	}
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code, _, errOut := runCmd(t, noEnv, "restore", "-data", filepath.Join(dir, "E"), other); code != 1 || !strings.Contains(errOut, "not a postroom database") {
		t.Errorf("restore of another program's SQLite database: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "E", "postroom.db")); err == nil {
		t.Errorf("a refused restore left a database behind")
	}
	pg := func(k string) string {
		return map[string]string{"POSTROOM_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postroom"}[k]
	}
	for _, cmd := range []string{"backup", "restore"} {
		if code, _, errOut := runCmd(t, pg, cmd, filepath.Join(dir, "pg.db")); code != 1 || !strings.Contains(errOut, "pg_dump") || !strings.Contains(errOut, "pg_restore") {
			t.Errorf("%s with PostgreSQL: exit %d: %s; want the pg_dump/pg_restore advice", cmd, code, errOut)
		}
	}
}

// TestRotateKeyCommand: `postroom rotate-key` on a data folder with its key file says how
// many secrets it re-encrypted and where the old key is kept; without a key it refuses.
func TestRotateKeyCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, noEnv, "rotate-key", "-data", dir); code != 1 || !strings.Contains(errOut, "no key") && !strings.Contains(errOut, "does not exist") {
		t.Errorf("rotate-key without a data folder: exit %d: %s", code, errOut)
	}
	a, err := app.Open(context.Background(), app.Config{DataDir: dir, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, errOut := runCmd(t, noEnv, "rotate-key", "-data", dir)
	if code != 0 || !strings.Contains(out, "re-encrypted 1 stored secrets") || !strings.Contains(out, "old key kept as "+filepath.Join(dir, "secret.key.old-")) {
		t.Fatalf("rotate-key: exit %d\n%s%s", code, out, errOut)
	}
	a, err = app.Open(context.Background(), app.Config{DataDir: dir, Getenv: noEnv})
	if err != nil {
		t.Fatalf("open with the rotated key file: %v", err)
	}
	a.Close()
}
