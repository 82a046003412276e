package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

// Cursor returns the saved source position of a mailbox.
func (s *Store) Cursor(ctx context.Context, mailboxID int64) (store.Cursor, error) {
	c := store.Cursor{MailboxID: mailboxID}
	err := s.r.queryRow(ctx, `SELECT value FROM cursors WHERE mailbox_id = ?`, mailboxID).Scan(&c.Value)
	if err != nil {
		return store.Cursor{}, s.wrap(fmt.Sprintf("cursor of mailbox %d", mailboxID), err)
	}
	return c, nil
}

// SetCursor saves the source position of a mailbox, replacing the previous one.
func (s *Store) SetCursor(ctx context.Context, c store.Cursor) error {
	err := setCursor(ctx, s.w, c, s.d.timeArg(s.now()))
	return s.wrap(fmt.Sprintf("set cursor of mailbox %d", c.MailboxID), err)
}

func setCursor(ctx context.Context, r runner, c store.Cursor, now any) error {
	_, err := r.exec(ctx, `INSERT INTO cursors (mailbox_id, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		c.MailboxID, c.Value, now)
	return err
}
