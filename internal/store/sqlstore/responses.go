package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

const responseColumns = `id, queue_id, name, body, created_at, updated_at`

func scanResponse(sc scanner) (store.ResponseTemplate, error) {
	var t store.ResponseTemplate
	err := sc.Scan(&t.ID, &t.QueueID, &t.Name, &t.Body, tcol(&t.CreatedAt), tcol(&t.UpdatedAt))
	return t, err
}

// ResponseTemplates lists every canned response, global ones first, then by queue and name.
func (s *Store) ResponseTemplates(ctx context.Context) ([]store.ResponseTemplate, error) {
	const op = "list canned responses"
	rows, err := s.r.query(ctx, `SELECT `+responseColumns+` FROM response_templates ORDER BY queue_id, name_lower, id`)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.ResponseTemplate
	for rows.Next() {
		t, err := scanResponse(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, t)
	}
	return out, s.wrap(op, rows.Err())
}

// ResponseTemplate returns one canned response.
func (s *Store) ResponseTemplate(ctx context.Context, id int64) (store.ResponseTemplate, error) {
	t, err := scanResponse(s.r.queryRow(ctx, `SELECT `+responseColumns+` FROM response_templates WHERE id = ?`, id))
	if err != nil {
		return store.ResponseTemplate{}, s.wrap(fmt.Sprintf("canned response %d", id), err)
	}
	return t, nil
}

// SaveResponseTemplate creates (ID 0) or updates a canned response.
func (s *Store) SaveResponseTemplate(ctx context.Context, t store.ResponseTemplate) (store.ResponseTemplate, error) {
	t.Name, t.Body = clean(strings.TrimSpace(t.Name)), clean(t.Body)
	now := s.now()
	t.UpdatedAt = now
	if t.ID == 0 {
		t.CreatedAt = now
		err := s.w.queryRow(ctx, `INSERT INTO response_templates (queue_id, name, name_lower, body, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, t.QueueID, t.Name, strings.ToLower(t.Name), t.Body,
			s.d.timeArg(now), s.d.timeArg(now)).Scan(&t.ID)
		if err != nil {
			return store.ResponseTemplate{}, s.wrap(fmt.Sprintf("add canned response %q", t.Name), err)
		}
		return t, nil
	}
	op := fmt.Sprintf("save canned response %d", t.ID)
	err := s.w.queryRow(ctx, `UPDATE response_templates SET queue_id = ?, name = ?, name_lower = ?, body = ?, updated_at = ?
		WHERE id = ? RETURNING created_at`, t.QueueID, t.Name, strings.ToLower(t.Name), t.Body, s.d.timeArg(now), t.ID).Scan(tcol(&t.CreatedAt))
	if err != nil {
		return store.ResponseTemplate{}, s.wrap(op, err)
	}
	return t, nil
}

// DeleteResponseTemplate removes a canned response.
func (s *Store) DeleteResponseTemplate(ctx context.Context, id int64) error {
	return s.deleteOne(ctx, fmt.Sprintf("delete canned response %d", id), `DELETE FROM response_templates WHERE id = ?`, id)
}

// deleteOne runs a DELETE of one row; ErrNotFound when it removed none.
func (s *Store) deleteOne(ctx context.Context, op, query string, args ...any) error {
	res, err := s.w.exec(ctx, query, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap(op, err)
	} else if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// Signatures lists the signatures of From addresses by address, then those of queues.
func (s *Store) Signatures(ctx context.Context) ([]store.Signature, error) {
	const op = "list signatures"
	rows, err := s.r.query(ctx, `SELECT id, address, queue_id, body, updated_at FROM signatures
		ORDER BY CASE WHEN address_lower = '' THEN 1 ELSE 0 END, address_lower, queue_id`)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.Signature
	for rows.Next() {
		var g store.Signature
		if err := rows.Scan(&g.ID, &g.Address, &g.QueueID, &g.Body, tcol(&g.UpdatedAt)); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, g)
	}
	return out, s.wrap(op, rows.Err())
}

// SetSignature stores the signature of an address or a queue, replacing the one it had.
func (s *Store) SetSignature(ctx context.Context, g store.Signature) (store.Signature, error) {
	g.Address, g.Body = clean(strings.TrimSpace(g.Address)), clean(g.Body)
	if g.Address != "" {
		g.QueueID = 0
	}
	g.UpdatedAt = s.now()
	err := s.w.queryRow(ctx, `INSERT INTO signatures (address, address_lower, queue_id, body, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (address_lower, queue_id) DO UPDATE SET address = excluded.address, body = excluded.body,
		updated_at = excluded.updated_at RETURNING id`,
		g.Address, strings.ToLower(g.Address), g.QueueID, g.Body, s.d.timeArg(g.UpdatedAt)).Scan(&g.ID)
	if err != nil {
		return store.Signature{}, s.wrap(fmt.Sprintf("save the signature of %q / queue %d", g.Address, g.QueueID), err)
	}
	return g, nil
}

// DeleteSignature removes a signature.
func (s *Store) DeleteSignature(ctx context.Context, id int64) error {
	return s.deleteOne(ctx, fmt.Sprintf("delete signature %d", id), `DELETE FROM signatures WHERE id = ?`, id)
}

// draftList and splitDraftList store a list of recipients one a line.
func draftList(list []string) string {
	var keep []string
	for _, a := range list {
		if a = strings.TrimSpace(strings.ReplaceAll(clean(a), "\n", " ")); a != "" {
			keep = append(keep, a)
		}
	}
	return strings.Join(keep, "\n")
}

func splitDraftList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Draft returns a user's draft on a work item.
func (s *Store) Draft(ctx context.Context, userID, workItemID int64) (store.Draft, error) {
	d := store.Draft{UserID: userID, WorkItemID: workItemID}
	var cc, bcc string
	err := s.r.queryRow(ctx, `SELECT body, cc, bcc, from_address, reply_all, updated_at FROM reply_drafts
		WHERE user_id = ? AND work_item_id = ?`, userID, workItemID).Scan(&d.Text, &cc, &bcc, &d.From, &d.ReplyAll, tcol(&d.UpdatedAt))
	if err != nil {
		return store.Draft{}, s.wrap(fmt.Sprintf("draft of user %d on work item %d", userID, workItemID), err)
	}
	d.Cc, d.Bcc = splitDraftList(cc), splitDraftList(bcc)
	return d, nil
}

// SaveDraft stores a user's draft on a work item, replacing the previous one.
func (s *Store) SaveDraft(ctx context.Context, d store.Draft) (store.Draft, error) {
	op := fmt.Sprintf("save the draft of user %d on work item %d", d.UserID, d.WorkItemID)
	d.Text, d.From = clean(d.Text), clean(strings.TrimSpace(d.From))
	cc, bcc := draftList(d.Cc), draftList(d.Bcc)
	d.Cc, d.Bcc = splitDraftList(cc), splitDraftList(bcc)
	d.UpdatedAt = s.now()
	err := s.inTx(ctx, func(tx runner) error {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM work_items WHERE id = ?`, d.WorkItemID).Scan(&one); err != nil {
			return fmt.Errorf("work item %d: %w", d.WorkItemID, err)
		}
		if err := tx.queryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, d.UserID).Scan(&one); err != nil {
			return fmt.Errorf("user %d: %w", d.UserID, err)
		}
		_, err := tx.exec(ctx, `INSERT INTO reply_drafts (user_id, work_item_id, body, cc, bcc, from_address, reply_all, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, work_item_id) DO UPDATE SET body = excluded.body,
			cc = excluded.cc, bcc = excluded.bcc, from_address = excluded.from_address, reply_all = excluded.reply_all,
			updated_at = excluded.updated_at`,
			d.UserID, d.WorkItemID, d.Text, cc, bcc, d.From, d.ReplyAll, s.d.timeArg(d.UpdatedAt))
		return err
	})
	if err != nil {
		return store.Draft{}, s.wrap(op, err)
	}
	return d, nil
}

// DeleteDraft removes a user's draft on a work item; no draft is no error.
func (s *Store) DeleteDraft(ctx context.Context, userID, workItemID int64) error {
	_, err := s.w.exec(ctx, `DELETE FROM reply_drafts WHERE user_id = ? AND work_item_id = ?`, userID, workItemID)
	return s.wrap(fmt.Sprintf("delete the draft of user %d on work item %d", userID, workItemID), err)
}
