package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// SignInThrottles returns the state of the keys that have one.
func (s *Store) SignInThrottles(ctx context.Context, keys ...string) ([]store.SignInThrottle, error) {
	const op = "sign-in throttles"
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.r.query(ctx, `SELECT key, failures, last_failure, locked_until FROM signin_throttle
		WHERE key IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+`)`, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.SignInThrottle
	for rows.Next() {
		var t store.SignInThrottle
		if err := rows.Scan(&t.Key, &t.Failures, tcol(&t.LastFailure), tcol(&t.LockedUntil)); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, t)
	}
	return out, s.wrap(op, rows.Err())
}

// RecordSignInFailure counts one failure in one transaction: the upsert locks the row
// (PostgreSQL) or the database (SQLite) until the lock it implies is written, so that two
// failures at once count two and the later lock is the one kept.
func (s *Store) RecordSignInFailure(ctx context.Context, f store.SignInFailure) (store.SignInThrottle, error) {
	const op = "record sign-in failure"
	if f.Key == "" {
		return store.SignInThrottle{}, fmt.Errorf("%s: no key", op)
	}
	at := f.At
	if at.IsZero() {
		at = s.now()
	}
	t := store.SignInThrottle{Key: f.Key}
	err := s.inTx(ctx, func(tx runner) error {
		err := tx.queryRow(ctx, `INSERT INTO signin_throttle (key, failures, last_failure) VALUES (?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN signin_throttle.last_failure < ? THEN 1 ELSE signin_throttle.failures + 1 END,
				last_failure = excluded.last_failure
			RETURNING failures, locked_until`,
			f.Key, s.d.timeArg(at), s.d.timeArg(at.Add(-f.QuietAfter))).Scan(&t.Failures, tcol(&t.LockedUntil))
		if err != nil {
			return err
		}
		t.LastFailure = at
		if f.LockFor == nil {
			return nil
		}
		if d := f.LockFor(t.Failures); d > 0 {
			if until := at.Add(d); until.After(t.LockedUntil) {
				t.LockedUntil = until
				_, err = tx.exec(ctx, `UPDATE signin_throttle SET locked_until = ? WHERE key = ?`, s.d.timeArg(until), f.Key)
			}
		}
		return err
	})
	if err != nil {
		return store.SignInThrottle{}, s.wrap(op, err)
	}
	t.LastFailure = t.LastFailure.UTC().Truncate(time.Microsecond)
	t.LockedUntil = t.LockedUntil.UTC().Truncate(time.Microsecond)
	return t, nil
}

// ResetSignInThrottle deletes the key's state.
func (s *Store) ResetSignInThrottle(ctx context.Context, key string) error {
	_, err := s.w.exec(ctx, `DELETE FROM signin_throttle WHERE key = ?`, key)
	return s.wrap("reset sign-in throttle", err)
}

// PruneSignInThrottles deletes the keys quiet and unlocked since before.
func (s *Store) PruneSignInThrottles(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.exec(ctx, `DELETE FROM signin_throttle WHERE last_failure < ?
		AND (locked_until IS NULL OR locked_until < ?)`, s.d.timeArg(before), s.d.timeArg(before))
	if err != nil {
		return 0, s.wrap("prune sign-in throttles", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("prune sign-in throttles", err)
}

// SetSecondFactor keeps (replaces) the user's second factor, unconfirmed.
func (s *Store) SetSecondFactor(ctx context.Context, f store.SecondFactor) error {
	op := fmt.Sprintf("set second factor of user %d", f.UserID)
	if len(f.Secret) == 0 {
		return fmt.Errorf("%s: no secret", op)
	}
	created := f.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	err := s.inTx(ctx, func(tx runner) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, f.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err := tx.exec(ctx, `INSERT INTO user_second_factors (user_id, secret, confirmed, last_step, created_at)
			VALUES (?, ?, FALSE, 0, ?) ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,
			confirmed = FALSE, last_step = 0, created_at = excluded.created_at`, f.UserID, f.Secret, s.d.timeArg(created))
		return err
	})
	return s.wrap(op, err)
}

// SecondFactor returns the user's second factor.
func (s *Store) SecondFactor(ctx context.Context, userID int64) (store.SecondFactor, error) {
	f := store.SecondFactor{UserID: userID}
	err := s.r.queryRow(ctx, `SELECT secret, confirmed, last_step, created_at FROM user_second_factors WHERE user_id = ?`, userID).
		Scan(&f.Secret, &f.Confirmed, &f.LastStep, tcol(&f.CreatedAt))
	if err != nil {
		return store.SecondFactor{}, s.wrap(fmt.Sprintf("second factor of user %d", userID), err)
	}
	return f, nil
}

// UseSecondFactorStep moves last_step forward to step, in one conditional statement.
func (s *Store) UseSecondFactorStep(ctx context.Context, userID, step int64) error {
	op := fmt.Sprintf("use second factor of user %d", userID)
	res, err := s.w.exec(ctx, `UPDATE user_second_factors SET last_step = ?, confirmed = TRUE
		WHERE user_id = ? AND last_step < ?`, step, userID, step)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.SecondFactor(ctx, userID); err != nil {
		return err
	}
	return fmt.Errorf("%s: step %d used already: %w", op, step, store.ErrConflict)
}

// DeleteSecondFactor removes the user's second factor.
func (s *Store) DeleteSecondFactor(ctx context.Context, userID int64) error {
	op := fmt.Sprintf("delete second factor of user %d", userID)
	res, err := s.w.exec(ctx, `DELETE FROM user_second_factors WHERE user_id = ?`, userID)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}
