package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

const userColumns = `id, username, display_name, role, password_hash, created_at`

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.PasswordHash, tcol(&u.CreatedAt))
	return u, err
}

// CreateUser stores a new user; a username in use is store.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u.CreatedAt = s.now()
	err := s.w.queryRow(ctx, `INSERT INTO users (username, display_name, role, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		u.Username, u.DisplayName, u.Role, u.PasswordHash, s.d.timeArg(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("create user %q", u.Username), err)
	}
	return u, nil
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (store.User, error) {
	u, err := scanUser(s.r.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("user %d", id), err)
	}
	return u, nil
}

// UserByUsername returns the user named username (exact match).
func (s *Store) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.r.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("user %q", username), err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username, id`)
	if err != nil {
		return nil, s.wrap("list users", err)
	}
	defer rows.Close()
	var list []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap("list users", err)
		}
		list = append(list, u)
	}
	return list, s.wrap("list users", rows.Err())
}

// SetUserPassword replaces a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, id int64, passwordHash string) error {
	err := s.w.execOne(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, id)
	return s.wrap(fmt.Sprintf("set password of user %d", id), err)
}
