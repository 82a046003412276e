package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

// savedViewSelect reads saved views with their owner's name; scanSavedView scans it.
const savedViewSelect = `SELECT v.id, v.user_id, v.name, v.filter, v.shared, v.created_at,
	COALESCE(NULLIF(u.display_name, ''), u.username)
	FROM saved_views v JOIN users u ON u.id = v.user_id`

func scanSavedView(sc scanner) (store.SavedView, error) {
	var v store.SavedView
	err := sc.Scan(&v.ID, &v.UserID, &v.Name, &v.Filter, &v.Shared, tcol(&v.CreatedAt), &v.OwnerName)
	return v, err
}

// CreateSavedView stores a saved view; a name its owner uses already is store.ErrConflict.
func (s *Store) CreateSavedView(ctx context.Context, v store.SavedView) (store.SavedView, error) {
	v.CreatedAt = s.now()
	v.Name, v.Filter = clean(v.Name), clean(v.Filter)
	err := s.inTx(ctx, func(tx runner) error {
		// The owner must exist (a foreign key error would not say so on both engines).
		if err := tx.queryRow(ctx, `SELECT COALESCE(NULLIF(display_name, ''), username) FROM users WHERE id = ?`,
			v.UserID).Scan(&v.OwnerName); err != nil {
			return err
		}
		return tx.queryRow(ctx, `INSERT INTO saved_views (user_id, name, filter, shared, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`,
			v.UserID, v.Name, v.Filter, v.Shared, s.d.timeArg(v.CreatedAt)).Scan(&v.ID)
	})
	if err != nil {
		return store.SavedView{}, s.wrap(fmt.Sprintf("create saved view %q of user %d", v.Name, v.UserID), err)
	}
	return v, nil
}

// ListSavedViews lists the user's own views and the shared ones, by name.
func (s *Store) ListSavedViews(ctx context.Context, userID int64) ([]store.SavedView, error) {
	rows, err := s.r.query(ctx, savedViewSelect+` WHERE v.user_id = ? OR v.shared ORDER BY v.name, v.id`, userID)
	if err != nil {
		return nil, s.wrap("list saved views", err)
	}
	defer rows.Close()
	var list []store.SavedView
	for rows.Next() {
		v, err := scanSavedView(rows)
		if err != nil {
			return nil, s.wrap("list saved views", err)
		}
		list = append(list, v)
	}
	return list, s.wrap("list saved views", rows.Err())
}

// SavedView returns one saved view.
func (s *Store) SavedView(ctx context.Context, id int64) (store.SavedView, error) {
	v, err := scanSavedView(s.r.queryRow(ctx, savedViewSelect+` WHERE v.id = ?`, id))
	if err != nil {
		return store.SavedView{}, s.wrap(fmt.Sprintf("saved view %d", id), err)
	}
	return v, nil
}

// DeleteSavedView deletes one saved view.
func (s *Store) DeleteSavedView(ctx context.Context, id int64) error {
	return s.wrap(fmt.Sprintf("delete saved view %d", id), s.w.execOne(ctx, `DELETE FROM saved_views WHERE id = ?`, id))
}
