package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// AddSSOSignIn deletes the sign-ins expired at now and keeps p, unless limit unexpired
// ones are kept already (on PostgreSQL, adds at the same moment on several nodes may each
// pass the check).
func (s *Store) AddSSOSignIn(ctx context.Context, p store.SSOSignIn, limit int, now time.Time) error {
	const op = "keep single sign-on sign-in"
	if p.State == "" || p.BrowserHash == "" || p.NonceHash == "" {
		return fmt.Errorf("%s: state, browser or nonce missing", op)
	}
	if len(p.Verifier) == 0 {
		return fmt.Errorf("%s: no verifier", op)
	}
	created := p.CreatedAt
	if created.IsZero() {
		created = now
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.pruneSignIns(ctx, tx, "sso_signins", limit, now); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO sso_signins (state_hash, browser_hash, nonce_hash, verifier, issuer,
			redirect_uri, next, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			stateHash(p.State), p.BrowserHash, p.NonceHash, p.Verifier, clean(p.Issuer), clean(p.RedirectURI), clean(p.Next),
			s.d.timeArg(p.ExpiresAt), s.d.timeArg(created))
		return err
	})
	if errors.Is(err, store.ErrTooManySignIns) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.wrap(op, err)
}

// TakeSSOSignIn deletes the sign-in of state and returns it (DELETE ... RETURNING: of two
// takes at once, the second finds no row).
func (s *Store) TakeSSOSignIn(ctx context.Context, state string, now time.Time) (store.SSOSignIn, error) {
	const op = "take single sign-on sign-in" // the state is a credential: not in the error
	if state == "" {
		return store.SSOSignIn{}, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	p := store.SSOSignIn{State: state}
	err := s.w.queryRow(ctx, `DELETE FROM sso_signins WHERE state_hash = ?
		RETURNING browser_hash, nonce_hash, verifier, issuer, redirect_uri, next, expires_at, created_at`, stateHash(state)).
		Scan(&p.BrowserHash, &p.NonceHash, &p.Verifier, &p.Issuer, &p.RedirectURI, &p.Next, tcol(&p.ExpiresAt), tcol(&p.CreatedAt))
	if err != nil {
		return store.SSOSignIn{}, s.wrap(op, err)
	}
	if !now.Before(p.ExpiresAt) {
		return store.SSOSignIn{}, fmt.Errorf("%s: expired at %s: %w", op, p.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	return p, nil
}

// LinkIdentity links (issuer, subject) to a user.
func (s *Store) LinkIdentity(ctx context.Context, id store.ExternalIdentity) error {
	op := fmt.Sprintf("link identity of %s to user %d", id.Issuer, id.UserID)
	if id.Issuer == "" || id.Subject == "" {
		return fmt.Errorf("%s: issuer or subject missing", op)
	}
	created := id.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	err := s.inTx(ctx, func(tx runner) error {
		var owner int64
		err := tx.queryRow(ctx, `SELECT user_id FROM user_identities WHERE issuer = ? AND subject = ?`, id.Issuer, id.Subject).Scan(&owner)
		switch {
		case err == nil && owner == id.UserID:
			return nil
		case err == nil:
			return fmt.Errorf("linked to user %d already: %w", owner, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, id.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("user %d: %w", id.UserID, store.ErrNotFound)
		}
		_, err = tx.exec(ctx, `INSERT INTO user_identities (issuer, subject, user_id, created_at) VALUES (?, ?, ?, ?)`,
			clean(id.Issuer), clean(id.Subject), id.UserID, s.d.timeArg(created))
		return err
	})
	return s.wrap(op, err)
}

// UserByIdentity returns the user linked to (issuer, subject).
func (s *Store) UserByIdentity(ctx context.Context, issuer, subject string) (store.User, error) {
	var id int64
	err := s.r.queryRow(ctx, `SELECT user_id FROM user_identities WHERE issuer = ? AND subject = ?`, issuer, subject).Scan(&id)
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("user of identity at %s", issuer), err)
	}
	return s.UserByID(ctx, id)
}

// IdentitiesOf lists a user's identities, oldest first.
func (s *Store) IdentitiesOf(ctx context.Context, userID int64) ([]store.ExternalIdentity, error) {
	op := fmt.Sprintf("identities of user %d", userID)
	rows, err := s.r.query(ctx, `SELECT issuer, subject, user_id, created_at FROM user_identities
		WHERE user_id = ? ORDER BY created_at, issuer, subject`, userID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.ExternalIdentity
	for rows.Next() {
		var e store.ExternalIdentity
		if err := rows.Scan(&e.Issuer, &e.Subject, &e.UserID, tcol(&e.CreatedAt)); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, e)
	}
	return out, s.wrap(op, rows.Err())
}
