package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// AutoTemplates lists the stored templates of a queue (0: the global ones), by name.
func (s *Store) AutoTemplates(ctx context.Context, queueID int64) ([]store.AutoTemplate, error) {
	rows, err := s.r.query(ctx, `SELECT queue_id, name, enabled, subject, body, updated_at FROM auto_templates
		WHERE queue_id = ? ORDER BY name`, queueID)
	if err != nil {
		return nil, fmt.Errorf("list automatic message templates of queue %d: %w", queueID, err)
	}
	defer rows.Close()
	var out []store.AutoTemplate
	for rows.Next() {
		var t store.AutoTemplate
		if err := rows.Scan(&t.QueueID, &t.Name, &t.Enabled, &t.Subject, &t.Body, tcol(&t.UpdatedAt)); err != nil {
			return nil, fmt.Errorf("read automatic message template: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list automatic message templates of queue %d: %w", queueID, err)
	}
	return out, nil
}

// SetAutoTemplate stores a template, replacing the one of the same queue and name.
func (s *Store) SetAutoTemplate(ctx context.Context, t store.AutoTemplate) error {
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.now()
	}
	_, err := s.w.exec(ctx, `INSERT INTO auto_templates (queue_id, name, enabled, subject, body, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (queue_id, name) DO UPDATE SET enabled = excluded.enabled,
		subject = excluded.subject, body = excluded.body, updated_at = excluded.updated_at`,
		t.QueueID, clean(t.Name), t.Enabled, clean(t.Subject), clean(t.Body), s.d.timeArg(t.UpdatedAt))
	return s.wrap(fmt.Sprintf("save automatic message template %q of queue %d", t.Name, t.QueueID), err)
}

// AutoSentCount counts the automatic messages sent to address since since.
func (s *Store) AutoSentCount(ctx context.Context, address string, since time.Time) (int, error) {
	var n int
	err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM auto_sent WHERE address = ? AND sent_at >= ?`,
		autoAddress(address), s.d.timeArg(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count automatic messages to %s: %w", address, err)
	}
	return n, nil
}

// autoAddress is the form an address is counted under: trimmed, lower case.
func autoAddress(a string) string { return strings.ToLower(strings.TrimSpace(clean(a))) }

// autoReplyAllowed applies the rate limit of an automatic message: it returns the
// recipients still under the limit (in the window, fewer than PerAddress automatic
// messages to the address and fewer than PerConversation in conversation convID).
func (s *Store) autoReplyAllowed(ctx context.Context, tx runner, a store.AutoReply, convID int64, now time.Time) ([]string, error) {
	var since any
	if a.Limit.Window > 0 {
		since = s.d.timeArg(now.Add(-a.Limit.Window))
	} else {
		since = s.d.timeArg(time.Unix(0, 0))
	}
	var out []string
	for _, r := range a.Recipients {
		addr := autoAddress(r)
		if addr == "" {
			continue
		}
		if a.Limit.PerAddress > 0 {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM auto_sent WHERE address = ? AND sent_at >= ?`, addr, since).Scan(&n); err != nil {
				return nil, fmt.Errorf("count automatic messages to %s: %w", addr, err)
			}
			if n >= a.Limit.PerAddress {
				continue
			}
		}
		if a.Limit.PerConversation > 0 {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM auto_sent WHERE address = ? AND conversation_id = ? AND sent_at >= ?`,
				addr, convID, since).Scan(&n); err != nil {
				return nil, fmt.Errorf("count automatic messages to %s in conversation %d: %w", addr, convID, err)
			}
			if n >= a.Limit.PerConversation {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// recordAutoSent counts an automatic message to each recipient.
func (s *Store) recordAutoSent(ctx context.Context, tx runner, kind string, recipients []string, convID int64, now time.Time) error {
	for _, r := range recipients {
		_, err := tx.exec(ctx, `INSERT INTO auto_sent (address, conversation_id, kind, sent_at) VALUES (?, ?, ?, ?)`,
			autoAddress(r), convID, kind, s.d.timeArg(now))
		if err != nil {
			return fmt.Errorf("count automatic message to %s: %w", r, err)
		}
	}
	return nil
}
