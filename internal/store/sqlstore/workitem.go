package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// defaultWorkItemLimit is the page size of ListWorkItems when the filter sets none
// (store.WorkItemFilter documents 100).
const defaultWorkItemLimit = 100

// workItemSelect reads work items with their listing fields from the triggering message
// and the mailbox; scanWorkItem scans its columns.
const workItemSelect = `SELECT w.id, w.conversation_id, w.mailbox_id, w.message_id, w.state,
	w.unparsed, w.over_size, w.assigned_to, m.subject, m.from_name, m.from_addr, b.name, w.received_at,
	w.updated_at, w.queue_id, COALESCE(q.name, ''), w.category, w.tags, w.priority_adjust, w.skills,
	w.language, w.schema_id, w.sla_policy_id, w.queued_at, w.sla_due_at, w.sla_risk_at,
	w.sla_first_due_at, w.sla_remaining_ms, w.first_response_at, w.offered_to, w.offer_expires_at,
	w.declined_by, w.flag, w.preferred_agent, w.preferred_until, w.overflowed, w.state_reason,
	w.assigned_at, w.done_at, COALESCE(NULLIF(u.display_name, ''), u.username, '')
	FROM work_items w
	JOIN messages m ON m.id = w.message_id
	JOIN mailboxes b ON b.id = w.mailbox_id
	LEFT JOIN queues q ON q.id = w.queue_id
	LEFT JOIN users u ON u.id = w.assigned_to`

func scanWorkItem(sc scanner) (store.WorkItem, error) {
	var w store.WorkItem
	var tags, skills, declined string
	var remaining sql.NullInt64
	err := sc.Scan(&w.ID, &w.ConversationID, &w.MailboxID, &w.MessageID, &w.State,
		&w.Unparsed, &w.OverSize, idCol{&w.AssignedTo}, &w.Subject, &w.FromName, &w.FromAddr,
		&w.MailboxName, tcol(&w.ReceivedAt), tcol(&w.UpdatedAt), idCol{&w.QueueID}, &w.QueueName,
		&w.Category, &tags, &w.PriorityAdjust, &skills, &w.Language, idCol{&w.SchemaID},
		idCol{&w.SLAPolicyID}, tcol(&w.QueuedAt), tcol(&w.SLADueAt), tcol(&w.SLARiskAt),
		tcol(&w.SLAFirstDueAt), &remaining, tcol(&w.FirstResponseAt), idCol{&w.OfferedTo},
		tcol(&w.OfferExpiresAt), &declined, &w.Flag, idCol{&w.PreferredAgent}, tcol(&w.PreferredUntil),
		&w.Overflowed, &w.StateReason, tcol(&w.AssignedAt), tcol(&w.DoneAt), &w.AssignedName)
	if err != nil {
		return w, err
	}
	w.SLARemaining = time.Duration(remaining.Int64) * time.Millisecond
	if w.Tags, err = decodeList(tags); err != nil {
		return w, err
	}
	if w.Skills, err = decodeSkills(skills); err != nil {
		return w, err
	}
	w.DeclinedBy, err = decodeIDs(declined)
	return w, err
}

// workItemWhere builds the WHERE clause of a listing. A Query matches a work item when
// any message of its conversation matches (search.go); a Query without any word matches
// nothing. inOrder makes SQLite walk the work items in the listing's order and check each
// against the matching conversations, instead of reading every match and sorting them
// (see denseSearch).
func (s *Store) workItemWhere(f store.WorkItemFilter, inOrder bool) (string, []any) {
	var where []string
	var args []any
	if f.Query != "" {
		if q, ok := s.d.searchQuery(f.Query); ok {
			col := `w.conversation_id`
			if inOrder {
				col = `+w.conversation_id` // unary +: not through the conversation index
			}
			where = append(where, col+` IN (`+s.d.searchConversations()+`)`)
			args = append(args, q)
		} else {
			where = append(where, `1 = 0`)
		}
	}
	switch {
	case len(f.States) > 0:
		where = append(where, `w.state IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(f.States)), ", ")+`)`)
		for _, st := range f.States {
			args = append(args, st)
		}
	case f.State != "":
		where = append(where, `w.state = ?`)
		args = append(args, f.State)
	}
	if f.QueueID != 0 {
		where = append(where, `w.queue_id = ?`)
		args = append(args, f.QueueID)
	}
	switch {
	case f.Unassigned:
		where = append(where, `w.assigned_to IS NULL`)
	case f.AssignedTo != 0:
		where = append(where, `w.assigned_to = ?`)
		args = append(args, f.AssignedTo)
	}
	if f.OfferedTo != 0 {
		where = append(where, `w.offered_to = ?`)
		args = append(args, f.OfferedTo)
	}
	if len(where) == 0 {
		return "", args
	}
	return ` WHERE ` + strings.Join(where, ` AND `), args
}

// CountWorkItems counts the work items matching f.
func (s *Store) CountWorkItems(ctx context.Context, f store.WorkItemFilter) (int, error) {
	where, args := s.workItemWhere(f, false)
	var n int
	err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM work_items w`+where, args...).Scan(&n)
	return n, s.wrap("count work items", err)
}

// ListWorkItems returns the work items matching f, newest first.
func (s *Store) ListWorkItems(ctx context.Context, f store.WorkItemFilter) ([]store.WorkItem, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultWorkItemLimit
	}
	offset := max(f.Offset, 0)
	inOrder := false
	if f.Query != "" && f.Sort != "oldest" {
		var err error
		if inOrder, err = s.denseSearch(ctx, f.Query); err != nil {
			return nil, s.wrap("list work items", err)
		}
	}
	where, args := s.workItemWhere(f, inOrder)
	query := workItemSelect + where
	if f.Sort == "oldest" {
		query += ` ORDER BY COALESCE(w.queued_at, w.received_at), w.id LIMIT ? OFFSET ?`
	} else {
		query += ` ORDER BY w.received_at DESC, w.id DESC LIMIT ? OFFSET ?`
	}
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
