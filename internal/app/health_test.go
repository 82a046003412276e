package app_test

import (
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/testenv"
)

// TestHealthAndReadiness: /healthz and /readyz answer without a session; /readyz says 503
// "not ready" without details when the cluster hook says no, when a migration is missing
// and when the database is gone, and the reason is in the log only.
func TestHealthAndReadiness(t *testing.T) {
	var logs testenv.LogBuffer
	h := startAppLogged(t, t.TempDir(), nil, &logs)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz without a session = %d %q; want 200 \"ok\"", status, body)
	}
	// The node is ready once its first lease round is done, a moment after the start.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := get("/readyz")
		if status == http.StatusOK && body == "ok\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz without a session = %d %q 10 s after the start; want 200 \"ok\"", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	notReady := func(why string) {
		t.Helper()
		status, body := get("/readyz")
		if status != http.StatusServiceUnavailable || body != "not ready\n" {
			t.Errorf("GET /readyz when %s = %d %q; want 503 \"not ready\" and nothing more", why, status, body)
		}
		if status, _ := get("/healthz"); status != http.StatusOK {
			t.Errorf("GET /healthz when %s = %d; want 200 (the process runs)", why, status)
		}
	}

	h.app.SetClusterReady(func() bool { return false })
	notReady("the cluster gives no leases")
	h.app.SetClusterReady(func() bool { return true })
	if status, _ := get("/readyz"); status != http.StatusOK {
		t.Errorf("GET /readyz with the cluster ready again = %d; want 200", status)
	}

	db, err := sql.Open("sqlite", filepath.Join(h.dir, "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	notReady("a migration is missing")
	if !strings.Contains(logs.String(), "run postroom migrate") {
		t.Errorf("the log does not say why the node is not ready:\n%s", logs.String())
	}
	if _, err := db.Exec(`DROP TABLE schema_migrations`); err != nil {
		t.Fatal(err)
	}
	notReady("the database does not answer")
}
