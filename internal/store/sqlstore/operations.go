package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// SchemaVersion returns the newest applied migration (0 when none is) and the newest this
// binary embeds.
func (s *Store) SchemaVersion(ctx context.Context) (applied, known int, err error) {
	list, err := s.d.migrations()
	if err != nil {
		return 0, 0, err
	}
	known = len(list)
	err = s.r.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied)
	if err != nil {
		return 0, known, fmt.Errorf("schema version: %w", err)
	}
	return applied, known, nil
}

// Backup copies the database into path with SQLite's VACUUM INTO: one read transaction,
// so the copy is the database as of one commit, while the writers of this and other
// processes go on (WAL). path must not exist or be empty (SQLite refuses anything else).
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.d.name != "sqlite" {
		return fmt.Errorf("backup: %w: use pg_dump", store.ErrUnsupported)
	}
	// On the writer pool: the read pool is query_only, and VACUUM INTO writes a file.
	// It only reads the database, so writers of other processes are not held up.
	if _, err := s.wd.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("backup into %s: %w", path, err)
	}
	return nil
}

// aliveSetting is the settings key prefix of the nodes' heartbeats (SetAlive); the value
// is the time in aliveFormat, whose fixed width makes text order time order.
const (
	aliveSetting = "ops.alive."
	aliveFormat  = "2006-01-02T15:04:05.000000Z"
)

// SetAlive records node's heartbeat (store.Operations).
func (s *Store) SetAlive(ctx context.Context, node string, at time.Time) error {
	v := ""
	if !at.IsZero() {
		v = at.UTC().Format(aliveFormat)
	}
	if err := s.SetSetting(ctx, aliveSetting+node, v); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// AliveNodes lists the nodes whose heartbeat is at or after since (store.Operations).
func (s *Store) AliveNodes(ctx context.Context, since time.Time) ([]string, error) {
	return aliveNodes(ctx, s.r, since)
}

func aliveNodes(ctx context.Context, q runner, since time.Time) ([]string, error) {
	rows, err := q.query(ctx, `SELECT key FROM settings WHERE key LIKE ? AND value <> '' AND value >= ? ORDER BY key`,
		aliveSetting+"%", since.UTC().Format(aliveFormat))
	if err != nil {
		return nil, fmt.Errorf("alive nodes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("alive nodes: %w", err)
		}
		out = append(out, strings.TrimPrefix(k, aliveSetting))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alive nodes: %w", err)
	}
	return out, nil
}

// sealedColumns are the tables and columns that hold values sealed by the vault, with the
// columns that identify a row.
var sealedColumns = []struct{ table, column, key string }{
	{"credentials", "secret", "mailbox_id || ':' || name"},
	{"pending_signins", "verifier", "state_hash"},
	{"sso_signins", "verifier", "state_hash"},
	{"user_second_factors", "secret", "user_id"},
}

// ResealSecrets rewrites every sealed value in one transaction (store.Operations).
func (s *Store) ResealSecrets(ctx context.Context, r store.Reseal) (int, error) {
	settings, reseal := r.Settings, r.Seal
	n := 0
	err := s.inTx(ctx, func(tx runner) error {
		if !r.RefuseAliveSince.IsZero() {
			alive, err := aliveNodes(ctx, tx, r.RefuseAliveSince)
			if err != nil {
				return err
			}
			if len(alive) > 0 {
				return fmt.Errorf("%w: %s", store.ErrNodesAlive, strings.Join(alive, ", "))
			}
		}
		for _, c := range sealedColumns {
			type row struct {
				key    string
				sealed []byte
			}
			rows, err := tx.query(ctx, `SELECT CAST(`+c.key+` AS TEXT), `+c.column+` FROM `+c.table)
			if err != nil {
				return fmt.Errorf("read %s: %w", c.table, err)
			}
			var list []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.key, &r.sealed); err != nil {
					rows.Close()
					return fmt.Errorf("read %s: %w", c.table, err)
				}
				list = append(list, r)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("read %s: %w", c.table, err)
			}
			for _, r := range list {
				out, err := reseal(r.sealed)
				if err != nil {
					return fmt.Errorf("%s %s of %s: %w", c.table, c.column, r.key, err)
				}
				if err := tx.execOne(ctx, `UPDATE `+c.table+` SET `+c.column+` = ? WHERE CAST(`+c.key+` AS TEXT) = ?`, out, r.key); err != nil {
					return fmt.Errorf("rewrite %s %s of %s: %w", c.table, c.column, r.key, err)
				}
				n++
			}
		}
		for _, key := range settings {
			var value string
			err := tx.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read setting %s: %w", key, err)
			}
			if value == "" {
				continue
			}
			sealed, err := base64.StdEncoding.DecodeString(value)
			if err != nil {
				return fmt.Errorf("setting %s is not base64 (was it edited by hand?): %w", key, err)
			}
			out, err := reseal(sealed)
			if err != nil {
				return fmt.Errorf("setting %s: %w", key, err)
			}
			if err := tx.execOne(ctx, `UPDATE settings SET value = ? WHERE key = ?`, base64.StdEncoding.EncodeToString(out), key); err != nil {
				return fmt.Errorf("rewrite setting %s: %w", key, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reseal secrets: %w", err)
	}
	return n, nil
}
