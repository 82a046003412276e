package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema migrations of each dialect: migrations/<dialect>/
// NNNN_name.sql. Order is the number; never edit a released migration, add a new one.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the dialect's migrations in order.
func (d Dialect) migrations() ([]migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", d.name, err)
	}
	var list []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s/%s: name must be NNNN_description.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		list = append(list, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })
	for i, m := range list {
		if m.version != i+1 {
			return nil, fmt.Errorf("%s migrations: expected version %d, found %s", d.name, i+1, m.name)
		}
	}
	return list, nil
}

// Migrate applies the missing migrations, each in its own transaction, and records each
// version in schema_migrations. On PostgreSQL an advisory lock makes nodes that start
// together apply them one after the other; on SQLite the single writer does.
func (s *Store) Migrate(ctx context.Context) error {
	list, err := s.d.migrations()
	if err != nil {
		return err
	}
	// Statements prepared before may no longer fit the schema; migrations themselves run
	// unprepared (their scripts hold several statements).
	defer s.ws.reset()
	defer s.rs.reset()
	err = s.inTxOn(ctx, s.wd, nil, func(tx runner) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", s.d.name, err)
	}
	for _, m := range list {
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("migrate %s: apply %s: %w", s.d.name, m.name, err)
		}
	}
	return nil
}

// applyMigration applies m in its own transaction unless it is recorded as applied. When
// the dialect asks for it, the transaction runs on a pinned connection with foreign keys
// off and fails if any foreign key is left dangling (SQLite's procedure for schema changes
// that rebuild a table).
func (s *Store) applyMigration(ctx context.Context, m migration) error {
	apply := func(tx runner) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		var applied int
		err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&applied)
		if err != nil || applied > 0 {
			return err
		}
		if _, err := tx.exec(ctx, m.sql); err != nil {
			return err
		}
		if step := s.migrationStep(m.name); step != nil {
			if err := step(ctx, tx); err != nil {
				return err
			}
		}
		if s.d.foreignKeysOffToMigrate {
			if err := checkForeignKeys(ctx, tx); err != nil {
				return err
			}
		}
		_, err = tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, s.now().Format("2006-01-02T15:04:05.000000Z"))
		return err
	}
	if !s.d.foreignKeysOffToMigrate {
		return s.inTxOn(ctx, s.wd, nil, apply)
	}
	conn, err := s.wd.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pin connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("turn foreign keys off: %w", err)
	}
	err = s.inTxOn(ctx, conn, nil, apply)
	// The connection goes back to the pool: foreign keys must be on again even when ctx
	// was cancelled.
	if _, onErr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); onErr != nil {
		// A connection without foreign keys must not serve anyone: drop it.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		if err == nil {
			err = fmt.Errorf("turn foreign keys on: %w", onErr)
		}
	}
	return err
}

// migrationStep is the Go half of a migration, run after its SQL in the same
// transaction, or nil. It is found by the description in the file name (what follows
// NNNN_), so that a migration renumbered before release keeps its step. A step reads and
// writes only what exists at its version.
func (s *Store) migrationStep(name string) func(ctx context.Context, tx runner) error {
	_, desc, _ := strings.Cut(name, "_")
	switch desc {
	case "search.sql":
		// The search documents are cut in Go (search.go): index what is stored already.
		return s.indexAllMessages
	}
	return nil
}

// checkForeignKeys fails when a row references a missing one (SQLite's PRAGMA
// foreign_key_check, run before a migration made with foreign keys off commits).
func checkForeignKeys(ctx context.Context, tx runner) error {
	rows, err := tx.query(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table string
		var rowid sql.NullInt64
		var parent string
		var fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		return fmt.Errorf("foreign key check: row %d of %s references a missing %s row", rowid.Int64, table, parent)
	}
	return rows.Err()
}

// lockMigrations takes the dialect's migration lock for the rest of the transaction.
func (s *Store) lockMigrations(ctx context.Context, tx runner) error {
	if s.d.migrationLock == "" {
		return nil
	}
	if _, err := tx.exec(ctx, s.d.migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}
