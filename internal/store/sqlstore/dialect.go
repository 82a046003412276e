package sqlstore

import (
	"strconv"
	"strings"
	"time"
)

// Dialect is what differs between the SQL engines. Build one with SQLite or Postgres.
type Dialect struct {
	// name selects the embedded migrations (migrations/<name>/*.sql).
	name string
	// numbered is true when placeholders are $1, $2, ... instead of ?.
	numbered bool
	// unixMicros is true when times are stored as INTEGER unix microseconds.
	unixMicros bool
	// forUpdate locks the selected rows for the transaction ("" when the engine has a
	// single writer and needs no row locks).
	forUpdate string
	// fenceLock locks a lease row for a lease holder's write (its fence check) until the
	// transaction ends ("" with a single writer). On PostgreSQL it is FOR KEY SHARE: it
	// holds off a change of the row's holder (node_id and generation are key columns,
	// through the unique index mailbox_leases_holding), but not the holder's own renewal
	// of expires_at, which takes renewLock.
	fenceLock string
	// renewLock locks the node's own lease rows for its round's renewal (FOR NO KEY
	// UPDATE on PostgreSQL, so that the round does not wait for the node's own ingest
	// transactions; "" with a single writer).
	renewLock string
	// skipLocked locks the selected rows and skips rows another transaction locked.
	skipLocked string
	// migrationLock is run first in every migration transaction so that nodes starting
	// at the same time apply migrations one after the other ("" for none).
	migrationLock string
	// foreignKeysOffToMigrate is true when migrations run with foreign keys turned off and
	// checked before commit (SQLite: a table rebuild must not cascade, and PRAGMA
	// foreign_keys cannot change inside a transaction).
	foreignKeysOffToMigrate bool
	// isUniqueViolation recognises the driver's unique-constraint error.
	isUniqueViolation func(error) bool
}

// SQLite returns the dialect of SQLite (3.35 or later, for RETURNING). isUnique reports
// whether a driver error is a unique or primary key constraint violation.
func SQLite(isUnique func(error) bool) Dialect {
	return Dialect{
		name:                    "sqlite",
		unixMicros:              true,
		foreignKeysOffToMigrate: true,
		isUniqueViolation:       isUnique,
	}
}

// postgresMigrationLockKey is an arbitrary constant that names postroom's advisory lock for
// migrations (pg_advisory_xact_lock takes a bigint key).
const postgresMigrationLockKey = 7_236_110_385

// Postgres returns the dialect of PostgreSQL. isUnique reports whether a driver error is a
// unique violation (SQLSTATE 23505).
func Postgres(isUnique func(error) bool) Dialect {
	return Dialect{
		name:              "postgres",
		numbered:          true,
		forUpdate:         " FOR UPDATE",
		fenceLock:         " FOR KEY SHARE",
		renewLock:         " FOR NO KEY UPDATE",
		skipLocked:        " FOR UPDATE SKIP LOCKED",
		migrationLock:     "SELECT pg_advisory_xact_lock(" + strconv.Itoa(postgresMigrationLockKey) + ")",
		isUniqueViolation: isUnique,
	}
}

// Name is "sqlite" or "postgres".
func (d Dialect) Name() string { return d.name }

// rebind rewrites ? placeholders to $1, $2, ... for engines that number them. A ? inside
// a quoted string literal or identifier is left alone.
func (d Dialect) rebind(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// timeArg converts t to the stored form: nil for the zero time, unix microseconds for
// SQLite, a UTC time truncated to microseconds for PostgreSQL.
func (d Dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.unixMicros {
		return t.UnixMicro()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// isConflict reports whether err is a unique violation.
func (d Dialect) isConflict(err error) bool {
	return err != nil && d.isUniqueViolation != nil && d.isUniqueViolation(err)
}
