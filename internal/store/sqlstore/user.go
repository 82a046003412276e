package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

const userColumns = `id, username, display_name, role, password_hash, created_at, email, disabled, time_zone`

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.PasswordHash, tcol(&u.CreatedAt),
		&u.Email, &u.Disabled, &u.TimeZone)
	return u, err
}

// CreateUser stores a new user; a username in use is store.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u.CreatedAt = s.now()
	err := s.inTx(ctx, func(tx runner) error {
		err := tx.queryRow(ctx, `INSERT INTO users (username, display_name, role, password_hash, created_at,
			email, disabled, time_zone) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			clean(u.Username), clean(u.DisplayName), u.Role, u.PasswordHash, s.d.timeArg(u.CreatedAt),
			clean(u.Email), u.Disabled, u.TimeZone).Scan(&u.ID)
		if err != nil {
			return err
		}
		return setTeams(ctx, tx, u.ID, u.Teams)
	})
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("create user %q", u.Username), err)
	}
	return u, nil
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (store.User, error) {
	u, err := scanUser(s.r.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err == nil {
		err = s.fillTeams(ctx, []*store.User{&u})
	}
	if err != nil {
		return store.User{}, s.wrap(fmt.Sprintf("user %d", id), err)
	}
	return u, nil
}

// UserByUsername returns the user named username (exact match).
func (s *Store) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.r.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err == nil {
		err = s.fillTeams(ctx, []*store.User{&u})
	}
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
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list users", err)
	}
	rows.Close()
	ptrs := make([]*store.User, len(list))
	for i := range list {
		ptrs[i] = &list[i]
	}
	return list, s.wrap("list users", s.fillTeams(ctx, ptrs))
}

// fillTeams sets the Teams of each user.
func (s *Store) fillTeams(ctx context.Context, users []*store.User) error {
	rows, err := s.r.query(ctx, `SELECT user_id, team_id FROM team_members ORDER BY team_id`)
	if err != nil {
		return fmt.Errorf("teams of users: %w", err)
	}
	defer rows.Close()
	byUser := map[int64][]int64{}
	for rows.Next() {
		var u, t int64
		if err := rows.Scan(&u, &t); err != nil {
			return fmt.Errorf("teams of users: %w", err)
		}
		byUser[u] = append(byUser[u], t)
	}
	for _, u := range users {
		u.Teams = byUser[u.ID]
	}
	return rows.Err()
}

// SetUserPassword replaces a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, id int64, passwordHash string) error {
	err := s.w.execOne(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, id)
	return s.wrap(fmt.Sprintf("set password of user %d", id), err)
}

// guardLastAdmin returns store.ErrLastAdmin when no enabled admin is left (run after the
// change, inside its transaction; PostgreSQL locks the admins' rows first).
func (s *Store) guardLastAdmin(ctx context.Context, tx runner) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM users WHERE role = ? AND NOT disabled`,
		store.RoleAdmin).Scan(&n); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return store.ErrLastAdmin
	}
	return nil
}

// lockAdmins serialises changes that may remove an admin (PostgreSQL; SQLite has one writer).
func (s *Store) lockAdmins(ctx context.Context, tx runner) error {
	if s.d.forUpdate == "" {
		return nil
	}
	rows, err := tx.query(ctx, `SELECT id FROM users WHERE role = ? ORDER BY id`+s.d.forUpdate, store.RoleAdmin)
	if err != nil {
		return fmt.Errorf("lock admins: %w", err)
	}
	return rows.Close()
}

// UpdateUser saves a user's profile fields and teams.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	op := fmt.Sprintf("update user %d", u.ID)
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.lockAdmins(ctx, tx); err != nil {
			return err
		}
		if err := tx.execOne(ctx, `UPDATE users SET display_name = ?, email = ?, role = ?, disabled = ?,
			time_zone = ? WHERE id = ?`, clean(u.DisplayName), clean(u.Email), u.Role, u.Disabled,
			u.TimeZone, u.ID); err != nil {
			return err
		}
		if err := s.guardLastAdmin(ctx, tx); err != nil {
			return err
		}
		if u.Disabled {
			if _, err := tx.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
				return fmt.Errorf("end sessions: %w", err)
			}
			if _, err := tx.exec(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, u.ID); err != nil {
				return fmt.Errorf("revoke tokens: %w", err)
			}
		}
		if u.Teams != nil {
			return setTeams(ctx, tx, u.ID, u.Teams)
		}
		return nil
	})
	return s.wrap(op, err)
}

// DeleteUser deletes a user; their work items stay, unassigned.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.lockAdmins(ctx, tx); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE work_items SET assigned_to = NULL WHERE assigned_to = ?`,
			`UPDATE work_items SET offered_to = NULL WHERE offered_to = ?`,
			`UPDATE work_items SET preferred_agent = NULL WHERE preferred_agent = ?`,
		} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return err
			}
		}
		if err := tx.execOne(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		return s.guardLastAdmin(ctx, tx)
	})
	return s.wrap(fmt.Sprintf("delete user %d", id), err)
}

// setTeams replaces the teams of a user (nil or empty: none).
func setTeams(ctx context.Context, tx runner, userID int64, teams []int64) error {
	if _, err := tx.exec(ctx, `DELETE FROM team_members WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("clear teams: %w", err)
	}
	for _, t := range teams {
		if _, err := tx.exec(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (?, ?)
			ON CONFLICT DO NOTHING`, t, userID); err != nil {
			return fmt.Errorf("add to team %d: %w", t, err)
		}
	}
	return nil
}

// SetUserTeams replaces the teams of a user.
func (s *Store) SetUserTeams(ctx context.Context, userID int64, teamIDs []int64) error {
	err := s.inTx(ctx, func(tx runner) error { return setTeams(ctx, tx, userID, teamIDs) })
	return s.wrap(fmt.Sprintf("set teams of user %d", userID), err)
}

// CreateTeam stores a team; a name in use is store.ErrConflict.
func (s *Store) CreateTeam(ctx context.Context, name string) (store.Team, error) {
	t := store.Team{Name: strings.TrimSpace(clean(name)), CreatedAt: s.now()}
	err := s.w.queryRow(ctx, `INSERT INTO teams (name, created_at) VALUES (?, ?) RETURNING id`,
		t.Name, s.d.timeArg(t.CreatedAt)).Scan(&t.ID)
	if err != nil {
		return store.Team{}, s.wrap(fmt.Sprintf("create team %q", name), err)
	}
	return t, nil
}

// ListTeams lists the teams by name.
func (s *Store) ListTeams(ctx context.Context) ([]store.Team, error) {
	rows, err := s.r.query(ctx, `SELECT id, name, created_at FROM teams ORDER BY name, id`)
	if err != nil {
		return nil, s.wrap("list teams", err)
	}
	defer rows.Close()
	var list []store.Team
	for rows.Next() {
		var t store.Team
		if err := rows.Scan(&t.ID, &t.Name, tcol(&t.CreatedAt)); err != nil {
			return nil, s.wrap("list teams", err)
		}
		list = append(list, t)
	}
	return list, s.wrap("list teams", rows.Err())
}

// DeleteTeam deletes a team and its memberships.
func (s *Store) DeleteTeam(ctx context.Context, id int64) error {
	return s.wrap(fmt.Sprintf("delete team %d", id), s.w.execOne(ctx, `DELETE FROM teams WHERE id = ?`, id))
}
