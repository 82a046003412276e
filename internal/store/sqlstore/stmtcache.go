package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache of one pool. The store's SQL is a fixed set of
// strings plus a few built per call (an IN list of n placeholders, optional filters); the
// bound only matters should a caller build unboundedly many, and then the rest simply run
// unprepared.
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text for a pool, so that the engine
// parses and plans each of the store's statements once per connection instead of on every
// call (on SQLite, parsing was a fifth of the ingest's CPU time).
//
// database/sql prepares a pool-level *sql.Stmt on each connection the first time it runs
// there, and Tx.StmtContext reuses the connection's copy inside a transaction. Preparing a
// pool-level statement needs a free connection, though, and inside a transaction on
// SQLite's one-connection writer pool none is free: a statement first seen inside a
// transaction runs unprepared that time and is prepared when the transaction has ended
// (preparePending).
type stmtCache struct {
	db *sql.DB
	d  Dialect

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt // by query as written (with ? placeholders)
	pending map[string]bool      // seen inside a transaction, to prepare after it
	failed  map[string]bool      // could not be prepared: always run unprepared
}

func newStmtCache(db *sql.DB, d Dialect) *stmtCache {
	return &stmtCache{db: db, d: d, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}, failed: map[string]bool{}}
}

// lookup returns the prepared statement of query, or nil when there is none yet (then,
// with inTx, it is noted for preparePending).
func (c *stmtCache) lookup(query string, inTx bool) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if inTx && !c.failed[query] && len(c.stmts)+len(c.pending) < maxCachedStmts {
		c.pending[query] = true
	}
	return nil
}

// get returns the prepared statement of query, preparing it on the pool when needed; nil
// when it cannot be prepared (the caller runs the query unprepared, which reports any
// error in the query itself). Never call it inside a transaction: preparing takes a
// connection from the pool.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	skip := c.failed[query] || len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if ok {
		return st
	}
	if skip {
		return nil
	}
	return c.prepare(ctx, query)
}

// prepare prepares query on the pool and caches it; nil when that failed.
func (c *stmtCache) prepare(ctx context.Context, query string) *sql.Stmt {
	st, err := c.db.PrepareContext(ctx, c.d.rebind(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, query)
	if err != nil {
		if ctx.Err() == nil { // a cancelled prepare says nothing about the query
			c.failed[query] = true
		}
		return nil
	}
	if old, ok := c.stmts[query]; ok { // prepared meanwhile by another goroutine
		st.Close()
		return old
	}
	if len(c.stmts) >= maxCachedStmts {
		st.Close()
		return nil
	}
	c.stmts[query] = st
	return st
}

// preparePending prepares the statements that were first seen inside a transaction. It is
// called once the transaction has ended and its connection is back in the pool.
func (c *stmtCache) preparePending(ctx context.Context) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		if ctx.Err() != nil {
			return
		}
		c.prepare(ctx, q)
	}
}

// reset closes and forgets every prepared statement (after a schema change: PostgreSQL
// refuses a prepared statement whose result columns changed).
func (c *stmtCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
	clear(c.pending)
	clear(c.failed)
}
