package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// defaultWorkItemLimit is the page size of ListWorkItems when the filter sets none
// (store.WorkItemFilter documents 100).
const defaultWorkItemLimit = 100

// workItemSelect reads work items with their listing fields from the triggering message
// and the mailbox; scanWorkItem scans its columns.
const workItemSelect = `SELECT w.id, w.conversation_id, w.mailbox_id, w.message_id, w.state,
	w.unparsed, w.over_size, w.assigned_to, m.subject, m.from_name, m.from_addr, b.name, w.received_at,
	w.updated_at
	FROM work_items w
	JOIN messages m ON m.id = w.message_id
	JOIN mailboxes b ON b.id = w.mailbox_id`

func scanWorkItem(sc scanner) (store.WorkItem, error) {
	var w store.WorkItem
	err := sc.Scan(&w.ID, &w.ConversationID, &w.MailboxID, &w.MessageID, &w.State,
		&w.Unparsed, &w.OverSize, idCol{&w.AssignedTo}, &w.Subject, &w.FromName, &w.FromAddr,
		&w.MailboxName, tcol(&w.ReceivedAt), tcol(&w.UpdatedAt))
	return w, err
}

// ListWorkItems returns the work items matching f, newest first.
func (s *Store) ListWorkItems(ctx context.Context, f store.WorkItemFilter) ([]store.WorkItem, error) {
	var where []string
	var args []any
	if f.Query != "" {
		where = append(where, `m.search_text LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(f.Query))
	}
	if f.State != "" {
		where = append(where, `w.state = ?`)
		args = append(args, f.State)
	}
	query := workItemSelect
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultWorkItemLimit
	}
	offset := max(f.Offset, 0)
	query += ` ORDER BY w.received_at DESC, w.id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, offset)

	rows, err := s.r.query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap("list work items", err)
	}
	defer rows.Close()
	var list []store.WorkItem
	for rows.Next() {
		w, err := scanWorkItem(rows)
		if err != nil {
			return nil, s.wrap("list work items", err)
		}
		list = append(list, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list work items", err)
	}
	rows.Close()
	if err := s.fillMailboxes(ctx, list); err != nil {
		return nil, s.wrap("list work items", err)
	}
	return list, nil
}

// WorkItem returns one work item with its listing fields.
func (s *Store) WorkItem(ctx context.Context, id int64) (store.WorkItem, error) {
	w, err := scanWorkItem(s.r.queryRow(ctx, workItemSelect+` WHERE w.id = ?`, id))
	if err != nil {
		return store.WorkItem{}, s.wrap(fmt.Sprintf("work item %d", id), err)
	}
	list := []store.WorkItem{w}
	if err := s.fillMailboxes(ctx, list); err != nil {
		return store.WorkItem{}, s.wrap(fmt.Sprintf("work item %d", id), err)
	}
	return list[0], nil
}

// mailboxesChunk bounds the conversation ids in one IN (...) list of fillMailboxes, far
// below the engines' limits on bound parameters (SQLite 32766, PostgreSQL 65535).
const mailboxesChunk = 500

// fillMailboxes sets Mailboxes of each work item: its own mailbox first, then every other
// mailbox that a message of its conversation was fetched through, in the order they
// received it.
func (s *Store) fillMailboxes(ctx context.Context, list []store.WorkItem) error {
	type box struct {
		id   int64
		name string
	}
	byConv := map[int64][]box{}
	var convs []any
	for _, w := range list {
		if _, ok := byConv[w.ConversationID]; !ok {
			byConv[w.ConversationID] = nil
			convs = append(convs, w.ConversationID)
		}
	}
	for len(convs) > 0 {
		chunk := convs[:min(len(convs), mailboxesChunk)]
		convs = convs[len(chunk):]
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		rows, err := s.r.query(ctx, `SELECT m.conversation_id, s.mailbox_id, b.name, MIN(s.id) AS first_id
			FROM message_sources s
			JOIN messages m ON m.id = s.message_id
			JOIN mailboxes b ON b.id = s.mailbox_id
			WHERE m.conversation_id IN (`+marks+`)
			GROUP BY m.conversation_id, s.mailbox_id, b.name
			ORDER BY first_id`, chunk...)
		if err != nil {
			return fmt.Errorf("mailboxes of work items: %w", err)
		}
		for rows.Next() {
			var conv, firstID int64
			var b box
			if err := rows.Scan(&conv, &b.id, &b.name, &firstID); err != nil {
				rows.Close()
				return fmt.Errorf("mailboxes of work items: %w", err)
			}
			byConv[conv] = append(byConv[conv], b)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("mailboxes of work items: %w", err)
		}
	}
	for i := range list {
		w := &list[i]
		w.Mailboxes = []string{w.MailboxName}
		for _, b := range byConv[w.ConversationID] {
			if b.id != w.MailboxID {
				w.Mailboxes = append(w.Mailboxes, b.name)
			}
		}
	}
	return nil
}

// validState reports whether state is one of the work item states.
func validState(state string) bool {
	switch state {
	case store.StateNew, store.StateOpen, store.StateReplied, store.StateClosed:
		return true
	}
	return false
}

// SetWorkItemState changes the state of a work item.
func (s *Store) SetWorkItemState(ctx context.Context, id int64, state string) error {
	op := fmt.Sprintf("set state of work item %d to %q", id, state)
	if !validState(state) {
		return fmt.Errorf("%s: unknown state (want new, open, replied or closed)", op)
	}
	err := s.w.execOne(ctx, `UPDATE work_items SET state = ?, updated_at = ? WHERE id = ?`,
		state, s.d.timeArg(s.now()), id)
	return s.wrap(op, err)
}
