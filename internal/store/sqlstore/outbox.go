package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// defaultClaimLimit is how many outbox items ClaimOutbox returns when the caller asks
// for none or a negative number.
const defaultClaimLimit = 10

// outboxSelect reads outbox items with the raw message to send; scanOutbox scans it.
const outboxSelect = `SELECT o.id, o.mailbox_id, o.work_item_id, o.message_id, o.from_addr,
	o.recipients, r.data, o.state, o.attempts, o.next_attempt_at, o.last_error, o.created_at,
	o.sent_at, o.claim_node, o.claim_instance, o.graph_draft_id
	FROM outbox o
	JOIN raw_messages r ON r.message_id = o.message_id`

func scanOutbox(sc scanner) (store.OutboxItem, error) {
	var o store.OutboxItem
	var recipients string
	err := sc.Scan(&o.ID, &o.MailboxID, idCol{&o.WorkItemID}, &o.MessageID, &o.From,
		&recipients, &o.Raw, &o.State, &o.Attempts, tcol(&o.NextAttemptAt), &o.LastError,
		tcol(&o.CreatedAt), tcol(&o.SentAt), &o.Claim.Node, &o.Claim.Instance, &o.GraphDraftID)
	if err != nil {
		return o, err
	}
	o.Recipients, err = decodeList(recipients)
	return o, err
}

// CreateReply records a reply in one transaction: the outbound message (raw, parsed and
// its Message-ID for threading), the queued outbox row, the work item's new state and an
// audit event.
func (s *Store) CreateReply(ctx context.Context, in store.ReplyInput) (store.OutboxItem, error) {
	op := fmt.Sprintf("create reply to work item %d", in.WorkItemID)
	newState := in.NewState
	if newState == "" {
		newState = store.StateDone
	}
	switch newState {
	case store.StateDone, store.StatePending, store.StateAssigned:
	default:
		return store.OutboxItem{}, fmt.Errorf("%s: a reply leaves the item done, pending or assigned, not %q", op, newState)
	}
	now := s.now()
	m := outboundMessage(in.Message, in.Raw, now)
	out := queuedOutbox(m.MailboxID, in.WorkItemID, in.From, in.Recipients, in.Raw, now)
	err := s.inTx(ctx, func(tx runner) error {
		var oldState string
		err := tx.queryRow(ctx, `SELECT conversation_id, state FROM work_items WHERE id = ?`+s.d.forUpdate,
			in.WorkItemID).Scan(&m.ConversationID, &oldState)
		if err != nil {
			return s.wrap("load work item", err)
		}
		actor, err := s.actorName(ctx, tx, in.UserID)
		if err != nil {
			return err
		}
		out.MessageID, err = s.insertMessage(ctx, tx, m, in.Raw, m.ConversationID, "", now)
		if err != nil {
			return err
		}
		out.ID, err = s.insertOutbox(ctx, tx, out, now)
		if err != nil {
			return err
		}
		// The reply answers the customer: the SLA clock stops (the first response is
		// recorded once), and the item takes its new state.
		var doneAt any
		if newState == store.StateDone {
			doneAt = s.d.timeArg(now)
		}
		if _, err := tx.exec(ctx, `UPDATE work_items SET state = ?, updated_at = ?,
			first_response_at = COALESCE(first_response_at, ?), sla_due_at = NULL, sla_risk_at = NULL,
			sla_remaining_ms = NULL, done_at = ?, offered_to = NULL, offer_expires_at = NULL,
			assigned_to = COALESCE(assigned_to, ?) WHERE id = ?`,
			newState, s.d.timeArg(now), s.d.timeArg(now), doneAt, nullID(in.UserID), in.WorkItemID); err != nil {
			return fmt.Errorf("set work item state: %w", err)
		}
		if err := s.insertEvent(ctx, tx, store.Event{WorkItemID: in.WorkItemID, At: now, ActorID: in.UserID,
			Actor: actor, Kind: "reply", From: oldState, To: newState, AgentID: in.UserID, Reason: "replied"}); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`,
			s.d.timeArg(now), m.ConversationID); err != nil {
			return fmt.Errorf("touch conversation: %w", err)
		}
		return s.addAudit(ctx, tx, store.AuditEvent{
			At:     now,
			Actor:  actor,
			Action: "workitem.reply",
			Object: fmt.Sprintf("workitem:%d", in.WorkItemID),
			Old:    oldState,
			New:    fmt.Sprintf("%s (outbox:%d)", newState, out.ID),
		})
	})
	if err != nil {
		return store.OutboxItem{}, s.wrap(op, err)
	}
	return out, nil
}

// outboundMessage is m as stored for sending: outbound, dated now and as large as raw
// unless it says otherwise.
func outboundMessage(m store.Message, raw []byte, now time.Time) store.Message {
	m.Direction = store.Outbound
	if m.Date.IsZero() {
		m.Date = now
	}
	if m.Size == 0 {
		m.Size = int64(len(raw))
	}
	return m
}

// queuedOutbox is the outbox row, due now, that sends raw from the address to the
// recipients through the mailbox for the work item; insertOutbox gives it its id, and
// the caller its message id. Its Raw is never nil.
func queuedOutbox(mailboxID, workItemID int64, from string, recipients []string, raw []byte, now time.Time) store.OutboxItem {
	if raw == nil {
		raw = []byte{}
	}
	return store.OutboxItem{
		MailboxID:     mailboxID,
		WorkItemID:    workItemID,
		From:          from,
		Recipients:    recipients,
		Raw:           raw,
		State:         store.OutboxQueued,
		NextAttemptAt: now,
		CreatedAt:     now,
	}
}

// insertOutbox queues o (its mailbox, work item, message, sender and recipients) for
// delivery now and returns its id.
func (s *Store) insertOutbox(ctx context.Context, tx runner, o store.OutboxItem, now time.Time) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `INSERT INTO outbox (mailbox_id, work_item_id, message_id, from_addr,
		recipients, state, attempts, next_attempt_at, last_error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, '', ?) RETURNING id`,
		o.MailboxID, nullID(o.WorkItemID), o.MessageID, clean(o.From), encodeList(o.Recipients),
		store.OutboxQueued, s.d.timeArg(now), s.d.timeArg(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert outbox item: %w", err)
	}
	return id, nil
}

// ClaimOutbox claims as ClaimOutboxAs with no claimant: the claim is known by its lease
// only.
func (s *Store) ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.OutboxItem, error) {
	return s.ClaimOutboxAs(ctx, store.Claimant{}, now, leaseUntil, limit)
}

// ClaimOutboxAs returns up to limit queued items due at now, oldest first, moves their
// NextAttemptAt to leaseUntil so that no other worker takes them until then, and records
// by as their claimant, so that by's node releases them at once when it restarts
// (ReleaseOutboxClaims). On PostgreSQL rows another node is claiming are skipped (FOR
// UPDATE SKIP LOCKED); on SQLite the single writer serialises claims.
func (s *Store) ClaimOutboxAs(ctx context.Context, by store.Claimant, now, leaseUntil time.Time, limit int) ([]store.OutboxItem, error) {
	if limit <= 0 {
		limit = defaultClaimLimit
	}
	var items []store.OutboxItem
	err := s.inTx(ctx, func(tx runner) error {
		items = nil
		rows, err := tx.query(ctx, `SELECT id FROM outbox WHERE state = ? AND next_attempt_at <= ?
			ORDER BY id LIMIT ?`+s.d.skipLocked, store.OutboxQueued, s.d.timeArg(now), limit)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.exec(ctx, `UPDATE outbox SET next_attempt_at = ?, claim_node = ?, claim_instance = ?
				WHERE id = ?`, s.d.timeArg(leaseUntil), clean(by.Node), clean(by.Instance), id); err != nil {
				return err
			}
			o, err := scanOutbox(tx.queryRow(ctx, outboxSelect+` WHERE o.id = ?`, id))
			if err != nil {
				return err
			}
			items = append(items, o)
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("claim outbox", err)
	}
	return items, nil
}

// ReleaseOutboxClaims makes the queued items claimed by another instance of by.Node (on
// SQLite, one node: by any other instance) due at now and unclaimed.
func (s *Store) ReleaseOutboxClaims(ctx context.Context, by store.Claimant, now time.Time) (int, error) {
	op := "release the outbox claims of earlier instances"
	if by.Instance == "" {
		return 0, fmt.Errorf("%s: the claimant has no instance id", op)
	}
	q := `UPDATE outbox SET next_attempt_at = ?, claim_node = '', claim_instance = ''
		WHERE state = ? AND claim_instance <> '' AND claim_instance <> ?`
	args := []any{s.d.timeArg(now), store.OutboxQueued, clean(by.Instance)}
	if !s.SingleNode() {
		q += ` AND claim_node = ?`
		args = append(args, clean(by.Node))
	}
	n, err := s.w.exec(ctx, q, args...)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	released, err := n.RowsAffected()
	return int(released), s.wrap(op, err)
}

// SetOutboxDraft records the Microsoft Graph draft a queued item is sent through.
func (s *Store) SetOutboxDraft(ctx context.Context, id int64, draftID string) error {
	err := s.w.execOne(ctx, `UPDATE outbox SET graph_draft_id = ? WHERE id = ? AND state = ?`,
		clean(draftID), id, store.OutboxQueued)
	return s.wrap(fmt.Sprintf("record the Graph draft of outbox item %d", id), err)
}

// MarkOutboxSent records the delivery of an outbox item; the successful attempt counts.
func (s *Store) MarkOutboxSent(ctx context.Context, id int64, at time.Time) error {
	err := s.w.execOne(ctx, `UPDATE outbox SET state = ?, attempts = attempts + 1, sent_at = ?,
		claim_node = '', claim_instance = '' WHERE id = ?`, store.OutboxSent, s.d.timeArg(at), id)
	return s.wrap(fmt.Sprintf("mark outbox item %d sent", id), err)
}

// MarkOutboxRetry keeps an outbox item queued, unclaimed, for another attempt at next.
func (s *Store) MarkOutboxRetry(ctx context.Context, id int64, attempts int, next time.Time, lastError string) error {
	err := s.w.execOne(ctx, `UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?,
		last_error = ?, claim_node = '', claim_instance = '' WHERE id = ?`,
		store.OutboxQueued, attempts, s.d.timeArg(next), clean(lastError), id)
	return s.wrap(fmt.Sprintf("mark outbox item %d for retry", id), err)
}

// MarkOutboxFailed gives up on an outbox item.
func (s *Store) MarkOutboxFailed(ctx context.Context, id int64, attempts int, lastError string) error {
	err := s.w.execOne(ctx, `UPDATE outbox SET state = ?, attempts = ?, last_error = ?,
		claim_node = '', claim_instance = '' WHERE id = ?`,
		store.OutboxFailed, attempts, clean(lastError), id)
	return s.wrap(fmt.Sprintf("mark outbox item %d failed", id), err)
}

// RecordOutboxOutcome writes a per-recipient outcome: the item keeps one group (deferred,
// else delivered, else failed) and each other group becomes a new row of the same reply.
// The item is read FOR UPDATE (PostgreSQL) so that a concurrent change waits; on SQLite
// the single writer serialises.
func (s *Store) RecordOutboxOutcome(ctx context.Context, id int64, o store.OutboxOutcome) error {
	op := fmt.Sprintf("record the outcome of outbox item %d", id)
	at := o.At
	if at.IsZero() {
		at = s.now()
	}
	if len(o.Deferred) > 0 && o.NextAttemptAt.IsZero() {
		return fmt.Errorf("%s: deferred recipients need a next attempt time", op)
	}
	type group struct {
		state     string
		rcpts     []string
		lastError string
		sentAt    time.Time
	}
	var groups []group
	for _, g := range []group{
		{store.OutboxQueued, o.Deferred, o.DeferredError, time.Time{}},
		{store.OutboxSent, o.Delivered, "", at},
		{store.OutboxFailed, o.Failed, o.FailedError, time.Time{}},
	} {
		if len(g.rcpts) > 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return fmt.Errorf("%s: the outcome names no recipient", op)
	}
	err := s.inTx(ctx, func(tx runner) error {
		var row store.OutboxItem
		var recipients string
		err := tx.queryRow(ctx, `SELECT mailbox_id, work_item_id, message_id, from_addr, recipients,
			state, next_attempt_at, created_at FROM outbox WHERE id = ?`+s.d.forUpdate, id).Scan(
			&row.MailboxID, idCol{&row.WorkItemID}, &row.MessageID, &row.From, &recipients,
			&row.State, tcol(&row.NextAttemptAt), tcol(&row.CreatedAt))
		if err != nil {
			return err
		}
		if row.State != store.OutboxQueued {
			return fmt.Errorf("the item is %s, not queued: another sender finished it", row.State)
		}
		if row.Recipients, err = decodeList(recipients); err != nil {
			return err
		}
		if !splits(row.Recipients, o.Deferred, o.Delivered, o.Failed) {
			return fmt.Errorf("delivered %q, deferred %q and failed %q do not split the item's recipients %q",
				o.Delivered, o.Deferred, o.Failed, row.Recipients)
		}
		keep := groups[0]
		next := row.NextAttemptAt
		if keep.state == store.OutboxQueued {
			next = o.NextAttemptAt
		}
		if _, err := tx.exec(ctx, `UPDATE outbox SET recipients = ?, state = ?, attempts = ?,
			next_attempt_at = ?, last_error = ?, sent_at = ?, claim_node = '', claim_instance = '' WHERE id = ?`,
			encodeList(keep.rcpts), keep.state, o.Attempts, s.d.timeArg(next), clean(keep.lastError),
			s.d.timeArg(keep.sentAt), id); err != nil {
			return fmt.Errorf("narrow the item to its %s recipients: %w", keep.state, err)
		}
		for _, g := range groups[1:] {
			if _, err := tx.exec(ctx, `INSERT INTO outbox (mailbox_id, work_item_id, message_id,
				from_addr, recipients, state, attempts, next_attempt_at, last_error, created_at, sent_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				row.MailboxID, nullID(row.WorkItemID), row.MessageID, clean(row.From), encodeList(g.rcpts),
				g.state, o.Attempts, s.d.timeArg(at), clean(g.lastError), s.d.timeArg(row.CreatedAt),
				s.d.timeArg(g.sentAt)); err != nil {
				return fmt.Errorf("record the %s recipients: %w", g.state, err)
			}
		}
		return nil
	})
	return s.wrap(op, err)
}

// splits reports whether the groups together hold each of all exactly once.
func splits(all []string, groups ...[]string) bool {
	count := make(map[string]int, len(all))
	for _, r := range all {
		count[r]++
	}
	for _, g := range groups {
		for _, r := range g {
			if count[r] == 0 {
				return false
			}
			count[r]--
		}
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// OutboxItem returns one outbox item with its raw message.
func (s *Store) OutboxItem(ctx context.Context, id int64) (store.OutboxItem, error) {
	o, err := scanOutbox(s.r.queryRow(ctx, outboxSelect+` WHERE o.id = ?`, id))
	if err != nil {
		return store.OutboxItem{}, s.wrap(fmt.Sprintf("outbox item %d", id), err)
	}
	return o, nil
}

// OutboxForWorkItem returns the outbox items of a work item, oldest first.
func (s *Store) OutboxForWorkItem(ctx context.Context, workItemID int64) ([]store.OutboxItem, error) {
	op := fmt.Sprintf("outbox of work item %d", workItemID)
	rows, err := s.r.query(ctx, outboxSelect+` WHERE o.work_item_id = ? ORDER BY o.id`, workItemID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.OutboxItem
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, o)
	}
	return list, s.wrap(op, rows.Err())
}

// CountOutbox counts the outbox items in a state.
func (s *Store) CountOutbox(ctx context.Context, state string) (int, error) {
	var n int
	err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE state = ?`, state).Scan(&n)
	return n, s.wrap(fmt.Sprintf("count outbox items %q", state), err)
}

// SingleNode reports whether the engine serves one node only (SQLite), where every claim
// another instance holds is a dead one's.
func (s *Store) SingleNode() bool { return s.d.name == "sqlite" }
