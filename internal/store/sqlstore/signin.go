package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// stateHash is what pending_signins keeps of a sign-in's state: its SHA-256, in hex. The
// state travels in URLs (and so in browser histories and proxy logs); the hash alone
// cannot be used to finish a sign-in.
func stateHash(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// AddPendingSignIn deletes the sign-ins expired at now and keeps p, unless limit unexpired
// ones are kept already. On SQLite the one writer makes the check exact; on PostgreSQL
// adds at the same moment on several nodes may each pass it.
func (s *Store) AddPendingSignIn(ctx context.Context, p store.PendingSignIn, limit int, now time.Time) error {
	op := fmt.Sprintf("keep sign-in of mailbox %d", p.MailboxID)
	if p.State == "" {
		return fmt.Errorf("%s: no state", op)
	}
	if len(p.Verifier) == 0 {
		return fmt.Errorf("%s: no verifier", op)
	}
	created := p.CreatedAt
	if created.IsZero() {
		created = now
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.pruneSignIns(ctx, tx, "pending_signins", limit, now); err != nil {
			return err
		}
		if err := mailboxExists(ctx, tx, p.MailboxID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO pending_signins (state_hash, session_hash, mailbox_id, verifier,
			redirect_uri, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			stateHash(p.State), p.SessionHash, p.MailboxID, p.Verifier, p.RedirectURI,
			s.d.timeArg(p.ExpiresAt), s.d.timeArg(created))
		return err
	})
	if errors.Is(err, store.ErrTooManySignIns) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.wrap(op, err)
}

// TakePendingSignIn deletes the sign-in of state and returns it. DELETE ... RETURNING is
// one statement: of two takes at once, the second finds no row (PostgreSQL makes it wait
// for the first and then sees the row gone; SQLite has one writer).
func (s *Store) TakePendingSignIn(ctx context.Context, state string, now time.Time) (store.PendingSignIn, error) {
	const op = "take sign-in" // the state is a credential: it is not part of the error
	if state == "" {
		return store.PendingSignIn{}, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	p := store.PendingSignIn{State: state}
	err := s.w.queryRow(ctx, `DELETE FROM pending_signins WHERE state_hash = ?
		RETURNING session_hash, mailbox_id, verifier, redirect_uri, expires_at, created_at`, stateHash(state)).
		Scan(&p.SessionHash, &p.MailboxID, &p.Verifier, &p.RedirectURI, tcol(&p.ExpiresAt), tcol(&p.CreatedAt))
	if err != nil {
		return store.PendingSignIn{}, s.wrap(op, err)
	}
	if !now.Before(p.ExpiresAt) {
		return store.PendingSignIn{}, fmt.Errorf("%s: expired at %s: %w", op, p.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	return p, nil
}

// pruneSignIns deletes the expired rows of a table of sign-ins in progress (pending_signins,
// sso_signins) and refuses with ErrTooManySignIns when limit unexpired ones are kept.
func (s *Store) pruneSignIns(ctx context.Context, tx runner, table string, limit int, now time.Time) error {
	if _, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE expires_at <= ?`, s.d.timeArg(now)); err != nil {
		return err
	}
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return err
	}
	if n >= limit {
		return fmt.Errorf("%d kept: %w", n, store.ErrTooManySignIns)
	}
	return nil
}
