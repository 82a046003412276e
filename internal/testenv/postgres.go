package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultPostgresURL is the maintenance database of the test server that ./scripts/test
// starts (trust authentication on loopback, user postgres). POSTROOM_TEST_PG_URL
// overrides it.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres"

// postgresURLEnv names the variable that overrides defaultPostgresURL.
const postgresURLEnv = "POSTROOM_TEST_PG_URL"

// postgresTimeout bounds connecting to the test server and creating or dropping a
// database.
const postgresTimeout = 30 * time.Second

// Postgres creates a fresh, empty database on the test PostgreSQL server and returns its
// URL. The database is dropped (closing any connection still open) at t.Cleanup. A server
// that does not answer fails the test; it is never skipped.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(postgresURLEnv)
	if base == "" {
		base = defaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: %s=%q is not a postgres:// URL", postgresURLEnv, base)
	}
	shown := u.Redacted()

	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL not reachable at %s: %v: run ./scripts/test (it starts one) or start it", shown, err)
	}
	defer conn.Close(ctx)

	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random database name: %v", err)
	}
	name := "postroom_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s at %s: %v", name, shown, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop database %s: PostgreSQL not reachable at %s: %v", name, shown, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	db := *u
	db.Path = "/" + name
	return db.String()
}
