package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

// CreateSession stores a session under its token hash. It first deletes the sessions that
// have expired (nobody can use them), so that the table holds about the sessions in use
// without a cleaning job.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	now := s.now()
	created := se.CreatedAt
	if created.IsZero() {
		created = now
	}
	err := s.inTx(ctx, func(tx runner) error {
		if _, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, s.d.timeArg(now)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`,
			se.TokenHash, se.UserID, se.CSRFToken, s.d.timeArg(created), s.d.timeArg(se.ExpiresAt))
		return err
	})
	return s.wrap(fmt.Sprintf("create session of user %d", se.UserID), err)
}

// SessionByTokenHash returns the session with the token hash, expired or not: the caller
// checks ExpiresAt.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string) (store.Session, error) {
	var se store.Session
	err := s.r.queryRow(ctx, `SELECT token_hash, user_id, csrf_token, created_at, expires_at
		FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&se.TokenHash, &se.UserID, &se.CSRFToken, tcol(&se.CreatedAt), tcol(&se.ExpiresAt))
	if err != nil {
		// The token hash is a credential: it is not part of the error.
		return store.Session{}, s.wrap("session", err)
	}
	return se, nil
}

// DeleteSession removes the session with the token hash.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	err := s.w.execOne(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return s.wrap("delete session", err)
}

// CreateAPIToken stores an API token under its hash.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) (store.APIToken, error) {
	t.CreatedAt = s.now()
	err := s.w.queryRow(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, created_at)
		VALUES (?, ?, ?, ?) RETURNING id`,
		t.UserID, t.Name, t.TokenHash, s.d.timeArg(t.CreatedAt)).Scan(&t.ID)
	if err != nil {
		return store.APIToken{}, s.wrap(fmt.Sprintf("create API token %q of user %d", t.Name, t.UserID), err)
	}
	return t, nil
}

// APITokenByHash returns the API token with the hash.
func (s *Store) APITokenByHash(ctx context.Context, tokenHash string) (store.APIToken, error) {
	var t store.APIToken
	err := s.r.queryRow(ctx, `SELECT id, user_id, name, token_hash, created_at FROM api_tokens
		WHERE token_hash = ?`, tokenHash).Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, tcol(&t.CreatedAt))
	if err != nil {
		return store.APIToken{}, s.wrap("API token", err)
	}
	return t, nil
}

// ListAPITokens lists every API token, newest first, with its owner's username. The hash
// is not read: a listing is shown to people and has no use for the credential.
func (s *Store) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	rows, err := s.r.query(ctx, `SELECT t.id, t.user_id, u.username, t.name, t.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		ORDER BY t.created_at DESC, t.id DESC`)
	if err != nil {
		return nil, s.wrap("list API tokens", err)
	}
	defer rows.Close()
	var list []store.APIToken
	for rows.Next() {
		var t store.APIToken
		if err := rows.Scan(&t.ID, &t.UserID, &t.Username, &t.Name, tcol(&t.CreatedAt)); err != nil {
			return nil, s.wrap("list API tokens", err)
		}
		list = append(list, t)
	}
	return list, s.wrap("list API tokens", rows.Err())
}

// DeleteAPIToken deletes the API token with the id (revocation): the next request that
// presents it is refused.
func (s *Store) DeleteAPIToken(ctx context.Context, id int64) error {
	err := s.w.execOne(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	return s.wrap(fmt.Sprintf("delete API token %d", id), err)
}
