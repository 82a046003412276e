package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/store/storetest"
	"github.com/postroom/postroom/internal/testenv"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), testenv.Postgres(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}

// TestOpenUnreachable checks the message an administrator gets for a wrong URL: where it
// tried, what to check, and never the password.
func TestOpenUnreachable(t *testing.T) {
	const password = "s3cret-pw"
	_, err := postgres.Open(t.Context(), "postgres://postroom:"+password+"@127.0.0.1:1/postroom")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach PostgreSQL at", "127.0.0.1:1", "POSTROOM_DATABASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, password) {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestConcurrentMigrate starts several nodes on one empty database at once: the
// migrations are applied once, and every node starts.
func TestConcurrentMigrate(t *testing.T) {
	url := testenv.Postgres(t)
	var stores []store.Store
	for range 4 {
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
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
			t.Errorf("Migrate on node %d: %v", i, err)
		}
	}
	if err := stores[0].SetSetting(t.Context(), "k", "v"); err != nil {
		t.Errorf("SetSetting after concurrent migrations: %v", err)
	}
}
