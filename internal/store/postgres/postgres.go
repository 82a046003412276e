// Package postgres opens postroom's PostgreSQL store, the engine for several nodes sharing
// one database. It uses pgx v5 through database/sql (github.com/jackc/pgx/v5/stdlib); the
// SQL itself is shared with SQLite in internal/store/sqlstore. Rows that nodes compete for
// (outbox items, work items being updated) are taken with SELECT ... FOR UPDATE [SKIP
// LOCKED], and migrations are serialised across nodes with an advisory lock.
//
// Open does not migrate: callers call Migrate.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlstore"
)

// pingTimeout bounds the first connection attempt, so that a wrong URL fails the start
// quickly with advice instead of hanging.
const pingTimeout = 10 * time.Second

// Pool sizes: one node's ingest loops, outbox workers and web requests; well below
// PostgreSQL's default max_connections (100) so that several nodes fit.
const (
	maxOpenConns    = 20
	maxIdleConns    = 5
	connMaxIdleTime = 5 * time.Minute
)

// idleInTransactionTimeout ends a transaction whose client stopped talking in the middle
// of it (PostgreSQL's idle_in_transaction_session_timeout): a node paused (SIGSTOP, a VM
// frozen, a long GC stall) inside an ingest transaction holds its FOR SHARE lock on the
// mailbox lease, and the nodes taking expired leases with SKIP LOCKED would skip that
// mailbox for as long as the pause lasts. Shorter than the shortest lease (3 s), so the
// lock is gone by the time the lease expires; no postroom transaction waits on anything
// outside the database in the middle. A connection string that sets it wins.
const idleInTransactionTimeout = "2500ms"

// uniqueViolation is the SQLSTATE of a unique constraint violation.
const uniqueViolation = "23505"

// Open connects to the PostgreSQL database at url (a postgres:// URL or a key=value
// connection string) and checks that it answers.
func Open(ctx context.Context, url string) (store.Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: invalid database URL (check POSTROOM_DATABASE_URL): %w", err)
	}
	if _, set := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = idleInTransactionTimeout
	}
	where := describe(cfg)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)

	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s: %w; check POSTROOM_DATABASE_URL and that the server runs", where, err)
	}
	return sqlstore.New(sqlstore.Postgres(isUniqueViolation), db, nil), nil
}

// describe names the server and database of cfg for messages, without the password.
func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// isUniqueViolation reports whether err is PostgreSQL's unique violation.
func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation
}
