package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// defaultHistoryLimit is how many conversations CustomerHistory lists when asked for none.
const defaultHistoryLimit = 20

// CreateForward records a forwarded message in one transaction: the outbound message in
// the work item's conversation, its queued outbox row, a "forward" event and an audit
// event. The work item's state, assignment and SLA clock stay as they are: a forward
// goes to someone else and does not answer the customer.
func (s *Store) CreateForward(ctx context.Context, in store.ForwardInput) (store.OutboxItem, error) {
	op := fmt.Sprintf("create forward from work item %d", in.WorkItemID)
	now := s.now()
	m := outboundMessage(in.Message, in.Raw, now)
	out := queuedOutbox(m.MailboxID, in.WorkItemID, in.From, in.Recipients, in.Raw, now)
	err := s.inTx(ctx, func(tx runner) error {
		var state string
		err := tx.queryRow(ctx, `SELECT conversation_id, state FROM work_items WHERE id = ?`+s.d.forUpdate,
			in.WorkItemID).Scan(&m.ConversationID, &state)
		if err != nil {
			return s.wrap("load work item", err)
		}
		actor, err := s.actorName(ctx, tx, in.UserID)
		if err != nil {
			return err
		}
		if out.MessageID, err = s.insertMessage(ctx, tx, m, in.Raw, m.ConversationID, "", now); err != nil {
			return err
		}
		if out.ID, err = s.insertOutbox(ctx, tx, out, now); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE work_items SET updated_at = ? WHERE id = ?`, s.d.timeArg(now), in.WorkItemID); err != nil {
			return fmt.Errorf("touch work item: %w", err)
		}
		if _, err := tx.exec(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`, s.d.timeArg(now), m.ConversationID); err != nil {
			return fmt.Errorf("touch conversation: %w", err)
		}
		to := strings.Join(in.Recipients, ", ")
		if err := s.insertEvent(ctx, tx, store.Event{WorkItemID: in.WorkItemID, At: now, ActorID: in.UserID, Actor: actor,
			Kind: "forward", Reason: "forwarded to " + to}); err != nil {
			return err
		}
		return s.addAudit(ctx, tx, store.AuditEvent{At: now, Actor: actor, Action: "workitem.forward",
			Object: fmt.Sprintf("workitem:%d", in.WorkItemID), Old: state, New: fmt.Sprintf("forwarded (outbox:%d)", out.ID)})
	})
	if err != nil {
		return store.OutboxItem{}, s.wrap(op, err)
	}
	return out, nil
}

// CreateOutbound records a new email to a customer in one transaction: a conversation of
// its own (with the customer's address), its work item assigned to the sender in
// in.State, the outbound message, its queued outbox row, a "created" event and an audit
// event.
func (s *Store) CreateOutbound(ctx context.Context, in store.NewConversationInput) (store.NewConversation, error) {
	const op = "create outbound conversation"
	state := in.State
	if state == "" {
		state = store.StatePending
	}
	switch state {
	case store.StatePending, store.StateAssigned, store.StateDone:
	default:
		return store.NewConversation{}, fmt.Errorf("%s: a new email leaves its item pending, assigned or done, not %q", op, state)
	}
	if in.UserID == 0 {
		return store.NewConversation{}, fmt.Errorf("%s: the sending user is missing", op)
	}
	now := s.now()
	m := outboundMessage(in.Message, in.Raw, now)
	res := store.NewConversation{Outbox: queuedOutbox(m.MailboxID, 0, in.From, in.Recipients, in.Raw, now)}
	err := s.inTx(ctx, func(tx runner) error {
		actor, err := s.actorName(ctx, tx, in.UserID)
		if err != nil {
			return err
		}
		err = tx.queryRow(ctx, `INSERT INTO conversations (mailbox_id, subject, created_at, updated_at, customer_addr)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, m.MailboxID, clean(m.Subject), s.d.timeArg(now), s.d.timeArg(now),
			strings.ToLower(strings.TrimSpace(clean(in.Customer)))).Scan(&res.ConversationID)
		if err != nil {
			return fmt.Errorf("insert conversation: %w", err)
		}
		msgID, err := s.insertMessage(ctx, tx, m, in.Raw, res.ConversationID, "", now)
		if err != nil {
			return err
		}
		var doneAt any
		if state == store.StateDone {
			doneAt = s.d.timeArg(now)
		}
		// The email is our first response: no SLA clock runs until the customer answers
		// (their answer reopens a pending item, as any answer does).
		err = tx.queryRow(ctx, `INSERT INTO work_items (conversation_id, mailbox_id, message_id, state,
			received_at, updated_at, queue_id, queued_at, first_response_at, assigned_to, assigned_at, done_at, state_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			res.ConversationID, m.MailboxID, msgID, state, s.d.timeArg(now), s.d.timeArg(now), nullID(in.QueueID),
			s.d.timeArg(now), s.d.timeArg(now), in.UserID, s.d.timeArg(now), doneAt, "new email").Scan(&res.WorkItemID)
		if err != nil {
			return s.wrap("insert work item", err)
		}
		res.Outbox.MessageID, res.Outbox.WorkItemID = msgID, res.WorkItemID
		if res.Outbox.ID, err = s.insertOutbox(ctx, tx, res.Outbox, now); err != nil {
			return err
		}
		if err := s.insertEvent(ctx, tx, store.Event{WorkItemID: res.WorkItemID, At: now, ActorID: in.UserID, Actor: actor,
			Kind: "created", From: store.StateNew, To: state, AgentID: in.UserID, QueueID: in.QueueID,
			Reason: "new email to " + strings.Join(in.Recipients, ", ")}); err != nil {
			return err
		}
		return s.addAudit(ctx, tx, store.AuditEvent{At: now, Actor: actor, Action: "workitem.create_outbound",
			Object: fmt.Sprintf("workitem:%d", res.WorkItemID), New: fmt.Sprintf("%s (outbox:%d)", state, res.Outbox.ID)})
	})
	if err != nil {
		return store.NewConversation{}, s.wrap(op, err)
	}
	return res, nil
}

// actorName is the username of user id for events and audit, "system" for 0.
func (s *Store) actorName(ctx context.Context, tx runner, id int64) (string, error) {
	if id == 0 {
		return "system", nil
	}
	var name string
	if err := tx.queryRow(ctx, `SELECT username FROM users WHERE id = ?`, id).Scan(&name); err != nil {
		return "", s.wrap(fmt.Sprintf("load user %d", id), err)
	}
	return name, nil
}

// CustomerHistory lists the customer's other conversations, newest activity first: those
// with a message from the address and those postroom started to it, each with its
// latest work item.
func (s *Store) CustomerHistory(ctx context.Context, address string, exceptConversation int64, limit int) ([]store.HistoryItem, error) {
	addr := strings.ToLower(strings.TrimSpace(address))
	if addr == "" {
		return nil, nil
	}
	if limit <= 0 {
		limit = defaultHistoryLimit
	}
	rows, err := s.r.query(ctx, `SELECT w.id, w.conversation_id, c.subject, w.state, c.updated_at
		FROM conversations c
		JOIN work_items w ON w.id = (SELECT MAX(w2.id) FROM work_items w2 WHERE w2.conversation_id = c.id)
		WHERE c.id <> ? AND (c.customer_addr = ? OR c.id IN (SELECT conversation_id FROM messages WHERE lower(from_addr) = ?))
		ORDER BY c.updated_at DESC, c.id DESC LIMIT ?`, exceptConversation, addr, addr, limit)
	if err != nil {
		return nil, s.wrap("customer history", err)
	}
	defer rows.Close()
	var out []store.HistoryItem
	for rows.Next() {
		var h store.HistoryItem
		if err := rows.Scan(&h.WorkItemID, &h.ConversationID, &h.Subject, &h.State, tcol(&h.UpdatedAt)); err != nil {
			return nil, s.wrap("customer history", err)
		}
		out = append(out, h)
	}
	return out, s.wrap("customer history", rows.Err())
}
