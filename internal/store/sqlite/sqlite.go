// Package sqlite opens postroom's embedded SQLite store (modernc.org/sqlite, pure Go), the
// default engine: one database file under the data directory, nothing else to run.
//
// The file runs in WAL mode with synchronous=NORMAL (a committed transaction survives a
// crash of the process; only a power loss can take back the last ones), foreign keys on
// and a busy timeout. SQLite has a single writer, so the store writes through a pool of
// exactly one connection whose transactions start IMMEDIATE, and reads through a separate
// pool of read-only connections: concurrent ingest, web requests and the outbox queue up
// for the writer instead of failing with "database is locked", and readers never wait for
// it.
//
// Open does not migrate: callers call Migrate.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlstore"
)

// busyTimeout is how long a connection waits for a lock held by another connection (in
// this process the writer pool makes that rare; another process, e.g. `postroom migrate`
// next to `serve`, can hold it for a moment).
const busyTimeout = 10 * time.Second

// readConns is the size of the read-only pool. WAL lets readers run beside the writer; a
// handful covers the web UI and API of one node.
const readConns = 8

// Open opens (creating it if needed, with its parent directory) the SQLite database at
// path. The file and its -wal and -shm files are readable by their owner only (0600): Open
// creates the file so and takes group and other permissions off existing ones.
func Open(ctx context.Context, path string) (store.Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite %q: want the path of a database file", path)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite %q: the path must not contain '?' or '#'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %q: create directory: %w", path, err)
	}
	if err := private(abs); err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")

	wq := url.Values{}
	wq.Add("_pragma", "journal_mode(WAL)")
	// Commits do not checkpoint (its fsyncs would stall the ingest): a background
	// goroutine does, every checkpointEvery; this cap only bounds the WAL if it falls behind.
	wq.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutoCheckpointPages))
	for _, v := range common["_pragma"] {
		wq.Add("_pragma", v)
	}
	// IMMEDIATE takes the write lock at BEGIN, so a transaction never fails half-way when
	// it upgrades from reading to writing.
	wq.Set("_txlock", "immediate")
	writeDB, err := sql.Open("sqlite", abs+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)
	writeDB.SetConnMaxIdleTime(0)

	var mode string
	if err := writeDB.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		writeDB.Close()
		return nil, fmt.Errorf("open sqlite %q: journal mode is %q, not WAL: is the file on a network file system? put it on a local disk", path, mode)
	}

	rq := url.Values{}
	for _, v := range common["_pragma"] {
		rq.Add("_pragma", v)
	}
	rq.Add("_pragma", "query_only(1)")
	readDB, err := sql.Open("sqlite", abs+"?"+rq.Encode())
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	readDB.SetMaxOpenConns(readConns)
	readDB.SetMaxIdleConns(readConns)
	if err := readDB.PingContext(ctx); err != nil {
		writeDB.Close()
		readDB.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	cpDB, err := sql.Open("sqlite", abs+"?"+url.Values{"_pragma": common["_pragma"]}.Encode())
	if err != nil {
		writeDB.Close()
		readDB.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	cpDB.SetMaxOpenConns(1)
	bg, stop := context.WithCancel(context.Background())
	c := &checkpointed{Store: sqlstore.New(sqlstore.SQLite(isUniqueViolation), writeDB, readDB), db: cpDB, stop: stop, done: make(chan struct{})}
	go c.run(bg)
	return c, nil
}

// private creates the database file readable and writable by its owner only (0600) before
// the driver opens it, and takes the group's and others' permissions off an existing one
// and its -wal and -shm files: the file holds all customer mail. SQLite on unix creates the
// -wal and -shm files with the database file's permissions, so new ones are 0600 too.
func private(db string) error {
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create the database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create the database file: %w", err)
	}
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check the permissions of %s: %w", p, err)
		}
		if fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&^0o077); err != nil {
			return fmt.Errorf("make %s readable by its owner only (it holds customer mail): %w; run chmod 600 on it as its owner", p, err)
		}
	}
	return nil
}

// Background WAL checkpoints.
const (
	checkpointEvery        = 200 * time.Millisecond
	walAutoCheckpointPages = 16384 // 64 MB of 4 KB pages
)

// checkpointed is the store with a goroutine that copies the WAL back into the database
// file (PRAGMA wal_checkpoint(PASSIVE): it never blocks writers or readers), so that no
// commit pays for a checkpoint.
type checkpointed struct {
	store.Store
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// SingleNode is true: a SQLite database serves one node (see sqlstore.Store.SingleNode).
func (c *checkpointed) SingleNode() bool { return true }

func (c *checkpointed) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed checkpoint is retried at the next tick; the cap above bounds the WAL.
			_, _ = c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close stops the checkpoints and closes the database.
func (c *checkpointed) Close() error {
	c.stop()
	<-c.done
	c.db.Close()
	return c.Store.Close()
}

// isUniqueViolation reports whether err is SQLite's UNIQUE or PRIMARY KEY constraint
// error.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
