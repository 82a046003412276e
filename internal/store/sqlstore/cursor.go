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

// SetCursor saves the source position of a mailbox, replacing the previous one; with a
// Fence, only while the lease is the fence's (store.ErrLeaseLost).
func (s *Store) SetCursor(ctx context.Context, c store.Cursor) error {
	op := fmt.Sprintf("set cursor of mailbox %d", c.MailboxID)
	if c.Fence.IsZero() {
		return s.wrap(op, setCursor(ctx, s.w, c, s.d.timeArg(s.now())))
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.checkFence(ctx, tx, c.Fence); err != nil {
			return err
		}
		return setCursor(ctx, tx, c, s.d.timeArg(s.now()))
	})
	return s.wrap(op, err)
}

func setCursor(ctx context.Context, r runner, c store.Cursor, now any) error {
	_, err := r.exec(ctx, `INSERT INTO cursors (mailbox_id, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		c.MailboxID, c.Value, now)
	return err
}
