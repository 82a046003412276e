package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// bouncedMessage finds the outbound message a DSN reports on by its Message-ID: its
// conversation and message ids, 0 when the reported message is not one we sent.
func (s *Store) bouncedMessage(ctx context.Context, tx runner, headerID string) (convID, msgID int64, err error) {
	headerID = clean(headerID)
	if headerID == "" {
		return 0, 0, nil
	}
	err = tx.queryRow(ctx, `SELECT i.conversation_id, i.message_id FROM message_ids i
		JOIN messages m ON m.id = i.message_id
		WHERE i.header_id = ? AND m.direction = ? ORDER BY i.id DESC LIMIT 1`, headerID, store.Outbound).Scan(&convID, &msgID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("find the message a bounce reports on: %w", err)
	}
	return convID, msgID, nil
}

// recordBounce marks the outbox items of the bounced message that went to a failed
// recipient as bounced, with the report's diagnostic, and remembers each failed address.
// When no item names a failed recipient (a forwarding address reported under its final
// name), every item of the message is marked: the report is about that message.
func (s *Store) recordBounce(ctx context.Context, tx runner, msgID int64, b store.Bounce, now time.Time) error {
	rows, err := tx.query(ctx, `SELECT id, recipients FROM outbox WHERE message_id = ? AND state = ?`,
		msgID, store.OutboxSent)
	if err != nil {
		return fmt.Errorf("outbox of the bounced message: %w", err)
	}
	type row struct {
		id    int64
		rcpts []string
	}
	var items []row
	for rows.Next() {
		var r row
		var list string
		if err := rows.Scan(&r.id, &list); err != nil {
			rows.Close()
			return fmt.Errorf("outbox of the bounced message: %w", err)
		}
		if r.rcpts, err = decodeList(list); err != nil {
			rows.Close()
			return fmt.Errorf("outbox of the bounced message: %w", err)
		}
		items = append(items, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox of the bounced message: %w", err)
	}
	marked := map[int64]string{}
	var firstWhy string
	for _, rc := range b.Recipients {
		if !rc.Failed() || rc.Address == "" {
			continue
		}
		why := bounceText(rc)
		if firstWhy == "" {
			firstWhy = why
		}
		for _, it := range items {
			if containsFold(it.rcpts, rc.Address) && marked[it.id] == "" {
				marked[it.id] = why
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO address_bounces (address, status, diagnostic, bounces, last_at)
			VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (address) DO UPDATE SET status = excluded.status, diagnostic = excluded.diagnostic,
			bounces = address_bounces.bounces + 1, last_at = excluded.last_at`,
			strings.ToLower(clean(rc.Address)), clean(rc.Status), clean(rc.Diagnostic), s.d.timeArg(now)); err != nil {
			return fmt.Errorf("record bouncing address: %w", err)
		}
	}
	if len(marked) == 0 && firstWhy != "" {
		for _, it := range items {
			marked[it.id] = firstWhy
		}
	}
	for id, why := range marked {
		if _, err := tx.exec(ctx, `UPDATE outbox SET state = ?, last_error = ? WHERE id = ?`,
			store.OutboxBounced, clean(why), id); err != nil {
			return fmt.Errorf("mark outbox item %d bounced: %w", id, err)
		}
	}
	return nil
}

// bounceText is what the agent reads on the bounced reply: the server's diagnostic, else
// the status code.
func bounceText(rc store.BounceRecipient) string {
	d := strings.TrimSpace(rc.Diagnostic)
	if d == "" {
		d = "status " + rc.Status
	}
	return "bounced: " + d
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(s)) {
			return true
		}
	}
	return false
}

// AddNote records a note and its mentions in one transaction.
func (s *Store) AddNote(ctx context.Context, n store.Note) (store.Note, error) {
	op := fmt.Sprintf("add a note to work item %d", n.WorkItemID)
	n.CreatedAt = s.now()
	err := s.inTx(ctx, func(tx runner) error {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM work_items WHERE id = ?`, n.WorkItemID).Scan(&one); err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `INSERT INTO notes (work_item_id, author_id, body, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			n.WorkItemID, nullID(n.AuthorID), clean(n.Text), s.d.timeArg(n.CreatedAt)).Scan(&n.ID); err != nil {
			return fmt.Errorf("insert note: %w", err)
		}
		for _, u := range n.Mentions {
			if _, err := tx.exec(ctx, `INSERT INTO note_mentions (note_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, n.ID, u); err != nil {
				return fmt.Errorf("insert mention: %w", err)
			}
		}
		return nil
	})
	return n, s.wrap(op, err)
}

const noteColumns = `n.id, n.work_item_id, n.author_id, n.body, n.created_at,
	COALESCE((SELECT CASE WHEN u.display_name <> '' THEN u.display_name ELSE u.username END FROM users u WHERE u.id = n.author_id), '')`

func scanNote(sc scanner) (store.Note, error) {
	var n store.Note
	err := sc.Scan(&n.ID, &n.WorkItemID, idCol{&n.AuthorID}, &n.Text, tcol(&n.CreatedAt), &n.AuthorName)
	return n, err
}

// Notes lists a work item's notes, oldest first, with whom each mentions.
func (s *Store) Notes(ctx context.Context, workItemID int64) ([]store.Note, error) {
	op := fmt.Sprintf("notes of work item %d", workItemID)
	rows, err := s.r.query(ctx, `SELECT `+noteColumns+` FROM notes n WHERE n.work_item_id = ? ORDER BY n.id`, workItemID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	var out []store.Note
	for rows.Next() {
		n, err := scanNote(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrap(op, err)
		}
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	mrows, err := s.r.query(ctx, `SELECT m.note_id, m.user_id FROM note_mentions m JOIN notes n ON n.id = m.note_id
		WHERE n.work_item_id = ? ORDER BY m.note_id, m.user_id`, workItemID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer mrows.Close()
	idx := map[int64]int{}
	for i, n := range out {
		idx[n.ID] = i
	}
	for mrows.Next() {
		var noteID, userID int64
		if err := mrows.Scan(&noteID, &userID); err != nil {
			return nil, s.wrap(op, err)
		}
		if i, ok := idx[noteID]; ok {
			out[i].Mentions = append(out[i].Mentions, userID)
		}
	}
	return out, s.wrap(op, mrows.Err())
}

// Mentions lists the newest notes that mention the user, with their work item.
func (s *Store) Mentions(ctx context.Context, userID int64, limit int) ([]store.Mention, error) {
	op := fmt.Sprintf("mentions of user %d", userID)
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.r.query(ctx, `SELECT `+noteColumns+`, COALESCE(c.subject, ''), w.state FROM note_mentions mn
		JOIN notes n ON n.id = mn.note_id
		JOIN work_items w ON w.id = n.work_item_id
		LEFT JOIN conversations c ON c.id = w.conversation_id
		WHERE mn.user_id = ? ORDER BY n.id DESC LIMIT ?`, userID, limit)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.Mention
	for rows.Next() {
		var m store.Mention
		if err := rows.Scan(&m.Note.ID, &m.Note.WorkItemID, idCol{&m.Note.AuthorID}, &m.Note.Text, tcol(&m.Note.CreatedAt),
			&m.Note.AuthorName, &m.Subject, &m.State); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, m)
	}
	return out, s.wrap(op, rows.Err())
}

// AddressBounce reads what the last DSN said of an address.
func (s *Store) AddressBounce(ctx context.Context, address string) (store.AddressBounce, error) {
	var b store.AddressBounce
	err := s.r.queryRow(ctx, `SELECT address, status, diagnostic, bounces, last_at FROM address_bounces WHERE address = ?`,
		strings.ToLower(strings.TrimSpace(address))).Scan(&b.Address, &b.Status, &b.Diagnostic, &b.Bounces, tcol(&b.LastAt))
	return b, s.wrap("bounces of "+address, err)
}
