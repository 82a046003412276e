package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// AddFromAddress stores a From address of a mailbox. The address is unique per mailbox
// regardless of case (store.ErrConflict); a missing or deleted mailbox is
// store.ErrNotFound.
func (s *Store) AddFromAddress(ctx context.Context, f store.FromAddress) (store.FromAddress, error) {
	op := fmt.Sprintf("add From address %q to mailbox %d", f.Address, f.MailboxID)
	f.Address = clean(f.Address)
	f.DisplayName = clean(f.DisplayName)
	f.CreatedAt = s.now()
	err := s.inTx(ctx, func(tx runner) error {
		if err := mailboxExists(ctx, tx, f.MailboxID); err != nil {
			return err
		}
		return tx.queryRow(ctx, `INSERT INTO from_addresses (mailbox_id, address, address_lower,
			display_name, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			f.MailboxID, f.Address, strings.ToLower(f.Address), f.DisplayName,
			s.d.timeArg(f.CreatedAt)).Scan(&f.ID)
	})
	if err != nil {
		return store.FromAddress{}, s.wrap(op, err)
	}
	return f, nil
}

// ListFromAddresses returns the From addresses of a mailbox, or of every mailbox when
// mailboxID is 0, ordered by mailbox and address.
func (s *Store) ListFromAddresses(ctx context.Context, mailboxID int64) ([]store.FromAddress, error) {
	op := fmt.Sprintf("list From addresses of mailbox %d", mailboxID)
	query := `SELECT id, mailbox_id, address, display_name, created_at FROM from_addresses`
	var args []any
	if mailboxID != 0 {
		query += ` WHERE mailbox_id = ?`
		args = append(args, mailboxID)
	}
	rows, err := s.r.query(ctx, query+` ORDER BY mailbox_id, address_lower, id`, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.FromAddress
	for rows.Next() {
		var f store.FromAddress
		if err := rows.Scan(&f.ID, &f.MailboxID, &f.Address, &f.DisplayName, tcol(&f.CreatedAt)); err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, f)
	}
	return list, s.wrap(op, rows.Err())
}

// DeleteFromAddress removes a From address.
func (s *Store) DeleteFromAddress(ctx context.Context, id int64) error {
	err := s.w.execOne(ctx, `DELETE FROM from_addresses WHERE id = ?`, id)
	return s.wrap(fmt.Sprintf("delete From address %d", id), err)
}
