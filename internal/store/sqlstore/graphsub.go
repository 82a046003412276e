package sqlstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

// PutGraphSubscription records a Graph subscription (or its new expiry) and forgets the
// mailbox's expired ones, in one transaction.
func (s *Store) PutGraphSubscription(ctx context.Context, g store.GraphSubscription) error {
	const op = "record Graph subscription"
	if g.ID == "" || g.MailboxID <= 0 || g.ExpiresAt.IsZero() {
		return fmt.Errorf("%s: %w", op, errors.New("the id, mailbox and expiry are required"))
	}
	err := s.inTx(ctx, func(tx runner) error {
		if _, err := tx.exec(ctx, `DELETE FROM graph_subscriptions WHERE mailbox_id = ? AND expires_at < ? AND id <> ?`,
			g.MailboxID, s.d.timeArg(s.now()), g.ID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO graph_subscriptions (id, mailbox_id, client_state_hash, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET mailbox_id = excluded.mailbox_id, client_state_hash = excluded.client_state_hash,
				expires_at = excluded.expires_at`,
			g.ID, g.MailboxID, hex.EncodeToString(g.ClientStateHash[:]), s.d.timeArg(g.ExpiresAt))
		return err
	})
	return s.wrap(op, err)
}

// GraphSubscriptionsOf lists a mailbox's Graph subscriptions, soonest expiry first.
func (s *Store) GraphSubscriptionsOf(ctx context.Context, mailboxID int64) ([]store.GraphSubscription, error) {
	const op = "Graph subscriptions"
	rows, err := s.r.query(ctx, `SELECT id, mailbox_id, client_state_hash, expires_at FROM graph_subscriptions
		WHERE mailbox_id = ? ORDER BY expires_at, id`, mailboxID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.GraphSubscription
	for rows.Next() {
		var g store.GraphSubscription
		var h string
		if err := rows.Scan(&g.ID, &g.MailboxID, &h, tcol(&g.ExpiresAt)); err != nil {
			return nil, s.wrap(op, err)
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(g.ClientStateHash) {
			return nil, fmt.Errorf("%s: subscription %s has a damaged hash", op, g.ID)
		}
		copy(g.ClientStateHash[:], b)
		out = append(out, g)
	}
	return out, s.wrap(op, rows.Err())
}

// DeleteGraphSubscription forgets a Graph subscription.
func (s *Store) DeleteGraphSubscription(ctx context.Context, id string) error {
	_, err := s.w.exec(ctx, `DELETE FROM graph_subscriptions WHERE id = ?`, id)
	return s.wrap("forget Graph subscription", err)
}
