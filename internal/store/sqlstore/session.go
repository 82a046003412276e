package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// maxClientInfo bounds the client address and user agent kept with a session: they are
// for people to recognise a session, and a client chooses its User-Agent freely.
const maxClientInfo = 512

// clip cuts s to at most n bytes on a rune boundary and makes it storable.
func clip(s string, n int) string {
	s = clean(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// CreateSession stores a session under its token hash. It first deletes the sessions that
// have expired (nobody can use them), so that the table holds about the sessions in use
// without a cleaning job.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	now := s.now()
	created := se.CreatedAt
	if created.IsZero() {
		created = now
	}
	seen := se.LastSeenAt
	if seen.IsZero() {
		seen = created
	}
	err := s.inTx(ctx, func(tx runner) error {
		if _, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, s.d.timeArg(now)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at,
			last_seen_at, client_addr, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			se.TokenHash, se.UserID, se.CSRFToken, s.d.timeArg(created), s.d.timeArg(se.ExpiresAt),
			s.d.timeArg(seen), clip(se.ClientAddr, maxClientInfo), clip(se.UserAgent, maxClientInfo))
		return err
	})
	return s.wrap(fmt.Sprintf("create session of user %d", se.UserID), err)
}

// SessionByTokenHash returns the session with the token hash, expired or not: the caller
// checks ExpiresAt.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string) (store.Session, error) {
	var se store.Session
	err := s.r.queryRow(ctx, `SELECT id, token_hash, user_id, csrf_token, created_at, expires_at,
		last_seen_at, client_addr, user_agent
		FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&se.ID, &se.TokenHash, &se.UserID, &se.CSRFToken, tcol(&se.CreatedAt), tcol(&se.ExpiresAt),
			tcol(&se.LastSeenAt), &se.ClientAddr, &se.UserAgent)
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

// ListSessions lists a user's unexpired sessions, the most recently seen first. Neither
// the token hash nor the CSRF token is read.
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]store.Session, error) {
	op := fmt.Sprintf("list sessions of user %d", userID)
	rows, err := s.r.query(ctx, `SELECT id, user_id, created_at, expires_at, last_seen_at, client_addr, user_agent
		FROM sessions WHERE user_id = ? AND expires_at > ?
		ORDER BY last_seen_at DESC, id DESC`, userID, s.d.timeArg(now))
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.Session
	for rows.Next() {
		var se store.Session
		if err := rows.Scan(&se.ID, &se.UserID, tcol(&se.CreatedAt), tcol(&se.ExpiresAt), tcol(&se.LastSeenAt),
			&se.ClientAddr, &se.UserAgent); err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, se)
	}
	return list, s.wrap(op, rows.Err())
}

// DeleteSessionOf deletes one session of a user and returns what it was.
func (s *Store) DeleteSessionOf(ctx context.Context, userID, id int64) (store.Session, error) {
	var se store.Session
	err := s.w.queryRow(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?
		RETURNING id, user_id, created_at, expires_at, last_seen_at, client_addr, user_agent`, id, userID).
		Scan(&se.ID, &se.UserID, tcol(&se.CreatedAt), tcol(&se.ExpiresAt), tcol(&se.LastSeenAt),
			&se.ClientAddr, &se.UserAgent)
	if err != nil {
		return store.Session{}, s.wrap(fmt.Sprintf("delete session %d of user %d", id, userID), err)
	}
	return se, nil
}

// DeleteSessionsOf deletes every session of a user.
func (s *Store) DeleteSessionsOf(ctx context.Context, userID int64) (int, error) {
	op := fmt.Sprintf("delete sessions of user %d", userID)
	res, err := s.w.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap(op, err)
}

// TouchSession records that the session was used at at.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	err := s.w.execOne(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, s.d.timeArg(at), id)
	return s.wrap(fmt.Sprintf("touch session %d", id), err)
}

// CreateAPIToken stores an API token under its hash.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) (store.APIToken, error) {
	t.CreatedAt = s.now()
	err := s.w.queryRow(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, created_at, scopes, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		t.UserID, clean(t.Name), t.TokenHash, s.d.timeArg(t.CreatedAt), encodeList(t.Scopes), s.d.timeArg(t.ExpiresAt)).Scan(&t.ID)
	if err != nil {
		return store.APIToken{}, s.wrap(fmt.Sprintf("create API token %q of user %d", t.Name, t.UserID), err)
	}
	t.ExpiresAt = truncTime(t.ExpiresAt)
	return t, nil
}

// truncTime is t as the store gives it back: UTC, microseconds.
func truncTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// scanAPIToken scans the columns of apiTokenColumns (listing form: no hash).
func scanAPIToken(sc scanner, t *store.APIToken) error {
	var scopes string
	if err := sc.Scan(&t.ID, &t.UserID, &t.Username, &t.Name, tcol(&t.CreatedAt), &scopes,
		tcol(&t.ExpiresAt), tcol(&t.LastUsedAt)); err != nil {
		return err
	}
	list, err := decodeList(scopes)
	t.Scopes = list
	return err
}

const apiTokenColumns = `t.id, t.user_id, u.username, t.name, t.created_at, t.scopes, t.expires_at, t.last_used_at`

// APITokenByHash returns the API token with the hash.
func (s *Store) APITokenByHash(ctx context.Context, tokenHash string) (store.APIToken, error) {
	var t store.APIToken
	err := scanAPIToken(s.r.queryRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ?`, tokenHash), &t)
	if err != nil {
		return store.APIToken{}, s.wrap("API token", err)
	}
	t.TokenHash = tokenHash
	return t, nil
}

// APIToken returns the API token with the id, without its hash.
func (s *Store) APIToken(ctx context.Context, id int64) (store.APIToken, error) {
	var t store.APIToken
	err := scanAPIToken(s.r.queryRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.id = ?`, id), &t)
	if err != nil {
		return store.APIToken{}, s.wrap(fmt.Sprintf("API token %d", id), err)
	}
	return t, nil
}

// ListAPITokens lists every API token, newest first, with its owner's username. The hash
// is not read: a listing is shown to people and has no use for the credential.
func (s *Store) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	return s.listAPITokens(ctx, "list API tokens", ``)
}

// ListAPITokensOf lists the API tokens of one user, newest first, without their hashes.
func (s *Store) ListAPITokensOf(ctx context.Context, userID int64) ([]store.APIToken, error) {
	return s.listAPITokens(ctx, fmt.Sprintf("list API tokens of user %d", userID), `WHERE t.user_id = ?`, userID)
}

func (s *Store) listAPITokens(ctx context.Context, op, where string, args ...any) ([]store.APIToken, error) {
	rows, err := s.r.query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		`+where+` ORDER BY t.created_at DESC, t.id DESC`, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.APIToken
	for rows.Next() {
		var t store.APIToken
		if err := scanAPIToken(rows, &t); err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, t)
	}
	return list, s.wrap(op, rows.Err())
}

// TouchAPIToken records that the token was used at at.
func (s *Store) TouchAPIToken(ctx context.Context, id int64, at time.Time) error {
	err := s.w.execOne(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, s.d.timeArg(at), id)
	return s.wrap(fmt.Sprintf("touch API token %d", id), err)
}

// DeleteAPIToken deletes the API token with the id (revocation): the next request that
// presents it is refused.
func (s *Store) DeleteAPIToken(ctx context.Context, id int64) error {
	err := s.w.execOne(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	return s.wrap(fmt.Sprintf("delete API token %d", id), err)
}
