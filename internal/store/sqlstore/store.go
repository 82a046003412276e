package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

// Store implements store.Store over database/sql.
type Store struct {
	d Dialect
	// w runs writes and transactions; r runs reads outside transactions. They are the same
	// pool on PostgreSQL; on SQLite w has one connection (the single writer) and r several
	// read-only ones, so readers never wait for a writer (WAL).
	w  runner
	r  runner
	wd *sql.DB
	rd *sql.DB
	// ws and rs are the prepared statements of wd and rd (stmtcache.go).
	ws *stmtCache
	rs *stmtCache
}

var _ store.Store = (*Store)(nil)

// New returns a Store that writes through writeDB and reads through readDB (readDB may be
// nil or the same pool as writeDB). The Store owns both pools: Close closes them.
func New(d Dialect, writeDB, readDB *sql.DB) *Store {
	if readDB == nil {
		readDB = writeDB
	}
	ws := newStmtCache(writeDB, d)
	rs := ws
	if readDB != writeDB {
		rs = newStmtCache(readDB, d)
	}
	return &Store{
		d:  d,
		w:  runner{q: writeDB, d: d, stmts: ws},
		r:  runner{q: readDB, d: d, stmts: rs},
		wd: writeDB,
		rd: readDB,
		ws: ws,
		rs: rs,
	}
}

// WriteConcurrency is how many write transactions are worth running at once: one on
// SQLite (a single writer), several on PostgreSQL.
func (s *Store) WriteConcurrency() int {
	if s.d.forUpdate == "" {
		return 1
	}
	return 4
}

// Close closes the connection pools.
func (s *Store) Close() error {
	s.ws.reset()
	s.rs.reset()
	err := s.wd.Close()
	if s.rd != s.wd {
		err = errors.Join(err, s.rd.Close())
	}
	if err != nil {
		return fmt.Errorf("close %s store: %w", s.d.name, err)
	}
	return nil
}

// now is the store's clock: UTC, truncated to the precision both engines keep.
func (s *Store) now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs SQL written with ? placeholders on a pool or a transaction, rebinding the
// placeholders for the dialect, through the pool's prepared statements when it has them.
type runner struct {
	q querier
	d Dialect
	// stmts caches prepared statements of the pool (nil: every query runs unprepared, as
	// the multi-statement scripts of migrations must).
	stmts *stmtCache
	// tx is q when q is a transaction on that pool.
	tx *sql.Tx
}

// stmt returns the prepared statement to run query with, or nil to run it unprepared.
func (r runner) stmt(ctx context.Context, query string) *sql.Stmt {
	switch {
	case r.stmts == nil:
		return nil
	case r.tx != nil:
		st := r.stmts.lookup(query, true)
		if st == nil {
			return nil
		}
		return r.tx.StmtContext(ctx, st)
	default:
		return r.stmts.get(ctx, query)
	}
}

func (r runner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return r.q.ExecContext(ctx, r.d.rebind(query), args...)
}

func (r runner) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.q.QueryContext(ctx, r.d.rebind(query), args...)
}

func (r runner) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.q.QueryRowContext(ctx, r.d.rebind(query), args...)
}

// execOne runs an UPDATE or DELETE that must touch a row; none is store.ErrNotFound.
func (r runner) execOne(ctx context.Context, query string, args ...any) error {
	res, err := r.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// inTx runs fn in a transaction on the writer pool, committing when fn returns nil and
// rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx runner) error) error {
	defer s.ws.preparePending(ctx) // the writer's connection is free again
	return s.inTxOn(ctx, s.wd, s.ws, fn)
}

// txBeginner is what *sql.DB and *sql.Conn have in common.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// inTxOn is inTx on a given pool or pinned connection; stmts are the pool's prepared
// statements, nil to run every statement unprepared.
func (s *Store) inTxOn(ctx context.Context, b txBeginner, stmts *stmtCache, fn func(tx runner) error) error {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(runner{q: tx, d: s.d, stmts: stmts, tx: tx}); err != nil {
		_ = tx.Rollback() // the error that matters is fn's
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// wrap adds the operation to err and maps sql.ErrNoRows to store.ErrNotFound and unique
// violations to store.ErrConflict.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%s: %w", op, err)
	case s.d.isConflict(err):
		return fmt.Errorf("%s: %w: %w", op, store.ErrConflict, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// timeCol scans a stored time (NULL, unix microseconds or a timestamp) into a UTC
// time.Time; NULL becomes the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// tcol returns a scan destination for a stored time.
func tcol(t *time.Time) timeCol { return timeCol{t: t} }

// idCol scans an optional reference; NULL becomes 0.
type idCol struct{ id *int64 }

func (c idCol) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.id = n.Int64
	return nil
}

// clean makes text storable on both engines: valid UTF-8, no NUL bytes (PostgreSQL
// refuses both in text columns).
func clean(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// encodeList stores a list of strings as JSON text.
func encodeList(list []string) string {
	if len(list) == 0 {
		return "[]"
	}
	cleaned := make([]string, len(list))
	for i, v := range list {
		cleaned[i] = clean(v)
	}
	b, _ := json.Marshal(cleaned) // a []string always marshals
	return string(b)
}

// decodeList reads a list written by encodeList; an empty list is nil.
func decodeList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	return list, nil
}

// encodeSkills stores a skill map as JSON text.
func encodeSkills(m map[string]int) string {
	if len(m) == 0 {
		return "{}"
	}
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[clean(k)] = v
	}
	b, _ := json.Marshal(c) // a map[string]int always marshals
	return string(b)
}

// decodeSkills reads a map written by encodeSkills; an empty one is nil.
func decodeSkills(s string) (map[string]int, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]int
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode skills: %w", err)
	}
	return m, nil
}

// encodeIDs stores a list of ids as JSON text.
func encodeIDs(ids []int64) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids) // an []int64 always marshals
	return string(b)
}

// decodeIDs reads a list written by encodeIDs; an empty list is nil.
func decodeIDs(s string) ([]int64, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var ids []int64
	if err := json.Unmarshal([]byte(s), &ids); err != nil {
		return nil, fmt.Errorf("decode ids: %w", err)
	}
	return ids, nil
}
