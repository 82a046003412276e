package sqlstore

import (
	"context"
	"fmt"
)

// Setting returns the value stored under key.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if err != nil {
		return "", s.wrap(fmt.Sprintf("setting %q", key), err)
	}
	return v, nil
}

// SetSetting stores value under key, replacing any previous value.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.w.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, clean(value))
	return s.wrap(fmt.Sprintf("set setting %q", key), err)
}
