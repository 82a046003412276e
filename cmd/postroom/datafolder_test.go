package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminCommandsRefuseFolderWithoutDatabase: a mistyped -data is refused with the path
// and how to create a database there, and nothing is created (no folder, no database, no
// key); serve, demo and migrate are the commands that create one.
func TestAdminCommandsRefuseFolderWithoutDatabase(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "mistyped", "path")
	empty := t.TempDir()
	commands := [][]string{
		{"mailbox", "list"}, {"user", "list"}, {"queue", "list"}, {"rule", "list"},
		{"agent", "list"}, {"routing", "export"},
	}
	for _, dir := range []string{missing, empty} {
		for _, cmd := range commands {
			var out, errOut bytes.Buffer
			args := append(append([]string{}, cmd...), "-data", dir)
			code := run(context.Background(), args, &out, &errOut, noEnv)
			msg := errOut.String()
			if code != 1 || !strings.Contains(msg, "no postroom database") || !strings.Contains(msg, filepath.Join(dir, "postroom.db")) ||
				!strings.Contains(msg, "postroom migrate -data "+dir) {
				t.Errorf("postroom %s -data %s: exit %d, stderr %q; want 1 naming the path and how to create a database", strings.Join(cmd, " "), dir, code, msg)
			}
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the mistyped folder was created: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("the empty folder got %d files (a new database or key)", len(entries))
	}

	// After postroom migrate the same commands work.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "-data", empty}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("migrate: exit %d %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"mailbox", "list", "-data", empty}, &out, &errOut, noEnv); code != 0 {
		t.Errorf("mailbox list after migrate: exit %d %s", code, errOut.String())
	}
}
