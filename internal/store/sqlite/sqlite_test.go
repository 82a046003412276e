package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "data", "postroom.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}

// TestOpenCreatesWALFile checks what an operator finds on disk: the data directory is
// created, and the database file is in WAL mode (a property of the file, so a plain
// connection sees it too).
func TestOpenCreatesWALFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "postroom.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b.db")} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// TestConcurrentMigrate opens the same file twice, as `postroom migrate` beside a
// starting `postroom serve` would, and migrates from both at once.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "postroom.db")
	var stores []store.Store
	for range 3 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if err := stores[0].SetSetting(t.Context(), "k", "v"); err != nil {
		t.Errorf("SetSetting after concurrent migrations: %v", err)
	}
}
