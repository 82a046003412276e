package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// maxThreadCandidates bounds how many message ids (own Message-ID, In-Reply-To and the
// most recent References) are looked up to thread a message. Long References chains keep
// the thread's root first and the recent ancestors last (RFC 5322 §3.6.4), and the most
// recent ones decide.
const maxThreadCandidates = 20

// ingestAttempts is how often IngestMessage runs its transaction when it loses a race on
// the dedup key: the second run finds the stored copy and reports a duplicate.
const ingestAttempts = 2

// IngestMessage stores an inbound message, its raw source, its attachments, its
// conversation, its work item, its source, the source cursor and the auto-reply (an
// outbound message of the same conversation and its queued outbox row) in one transaction.
// A message whose (mailbox, source id) is stored already is a duplicate: nothing is
// written, so an auto-reply is queued at most once. A message whose (mailbox, source id)
// is new but whose Message-ID and content hash match a stored inbound message is a linked
// duplicate: only its source and the cursor are written. A deleted mailbox ingests
// nothing (store.ErrNotFound).
func (s *Store) IngestMessage(ctx context.Context, in store.InboundMessage) (store.IngestResult, error) {
	op := fmt.Sprintf("ingest message %q into mailbox %d", in.Message.SourceID, in.MailboxID)
	res, err := s.ingest(ctx, []store.InboundMessage{in})
	if err != nil {
		return store.IngestResult{}, fmt.Errorf("%s: %w", op, err)
	}
	return res[0], nil
}

// IngestMessages stores several inbound messages, in order, in ONE transaction: each as
// IngestMessage would, a later one seeing the earlier ones (a second copy in the same call
// is a duplicate, a reply joins its parent's conversation). One commit for many messages
// is what makes a busy mailbox fast: on SQLite the commit (writing the WAL) cost as much
// as everything else of a small message together. When any message fails, nothing is
// stored.
func (s *Store) IngestMessages(ctx context.Context, in []store.InboundMessage) ([]store.IngestResult, error) {
	if len(in) == 0 {
		return nil, nil
	}
	res, err := s.ingest(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("ingest %d messages (sources %q to %q): %w", len(in), in[0].Message.SourceID, in[len(in)-1].Message.SourceID, err)
	}
	return res, nil
}

// ingest runs the transaction of IngestMessages; when it loses a race on a dedup key
// (store.ErrConflict from another node) it runs once more, and the second run finds the
// stored copy.
func (s *Store) ingest(ctx context.Context, in []store.InboundMessage) ([]store.IngestResult, error) {
	var res []store.IngestResult
	var err error
	docs := searchDocs(in)
	for range ingestAttempts {
		res, err = s.ingestOnce(ctx, in, docs)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	return res, err
}

// searchDocs makes the search documents of a batch before its transaction, on every
// core: cutting 10 KB of text into words is work the single writer need not wait for, and
// it was a sixth of the CPU of a bulk ingest done on one core.
func searchDocs(in []store.InboundMessage) []string {
	docs := make([]string, len(in))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(in)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(in); i = int(next.Add(1)) - 1 {
				docs[i] = searchDoc(in[i].Message)
			}
		})
	}
	wg.Wait()
	return docs
}

// ingestOnce stores the batch in one transaction; docs are its search documents.
func (s *Store) ingestOnce(ctx context.Context, in []store.InboundMessage, docs []string) ([]store.IngestResult, error) {
	now := s.now()
	res := make([]store.IngestResult, len(in))
	err := s.inTx(ctx, func(tx runner) error {
		st := ingestTx{failures: map[int64]bool{}, index: &[]searchRow{}}
		// The cursor of each mailbox is written once, after its last message: the messages
		// come in source order, so the last cursor is the position after all of them.
		var cursors []store.Cursor
		// The fences first: a loop whose lease moved writes nothing (store.ErrLeaseLost).
		var fences []store.Fence
		for i := range in {
			if f := in[i].Fence; !f.IsZero() && !slices.Contains(fences, f) {
				if err := s.checkFence(ctx, tx, f); err != nil {
					return err
				}
				fences = append(fences, f)
			}
		}
		for i := range in {
			if _, checked := st.failures[in[i].MailboxID]; !checked {
				if err := mailboxExists(ctx, tx, in[i].MailboxID); err != nil {
					return err
				}
				var n int
				err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ingest_failures WHERE mailbox_id = ?`, in[i].MailboxID).Scan(&n)
				if err != nil {
					return fmt.Errorf("look up failed messages of mailbox %d: %w", in[i].MailboxID, err)
				}
				st.failures[in[i].MailboxID] = n > 0
			}
			r, cursor, err := s.ingestOne(ctx, tx, in[i], now, st, docs[i])
			if err != nil {
				if len(in) > 1 {
					return fmt.Errorf("message %q: %w", in[i].Message.SourceID, err)
				}
				return err
			}
			res[i] = r
			if cursor == nil {
				continue
			}
			if j := slices.IndexFunc(cursors, func(c store.Cursor) bool { return c.MailboxID == cursor.MailboxID }); j >= 0 {
				cursors[j] = *cursor
			} else {
				cursors = append(cursors, *cursor)
			}
		}
		// The search rows come after every other write of the batch: SQLite's FTS5 keeps
		// them in memory until a statement opens a savepoint (any INSERT of a work item
		// does), and each flush writes a segment of its own.
		for _, r := range *st.index {
			if err := s.indexMessage(ctx, tx, r.id, r.convID, r.doc); err != nil {
				return err
			}
		}
		for _, c := range cursors {
			if err := setCursor(ctx, tx, c, s.d.timeArg(now)); err != nil {
				return fmt.Errorf("save cursor of mailbox %d: %w", c.MailboxID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ingestTx is what one ingest transaction knows of the mailboxes it writes to.
type ingestTx struct {
	// failures tells, for each mailbox checked to exist, whether it had failed messages
	// (ingest_failures) when the transaction began: only then may a message stored now
	// have a failure count to forget.
	failures map[int64]bool
	// index collects the search rows of the messages stored, written at the end.
	index *[]searchRow
}

// searchRow is one message's row of the search index.
type searchRow struct {
	id, convID int64
	doc        string
}

// ingestOne writes one inbound message inside the transaction tx (the mailbox is known to
// exist) and returns the cursor to save for it: in.Cursor, or nil when nothing was written
// (a duplicate of the same source).
func (s *Store) ingestOne(ctx context.Context, tx runner, in store.InboundMessage, now time.Time, st ingestTx, doc string) (store.IngestResult, *store.Cursor, error) {
	m := in.Message
	m.MailboxID = in.MailboxID
	m.Direction = store.Inbound
	if m.Size == 0 {
		m.Size = int64(len(in.Raw))
	}
	var res store.IngestResult
	if m.SourceID != "" {
		dup, found, err := s.storedCopy(ctx, tx, m.MailboxID, m.SourceID)
		if err != nil {
			return res, nil, err
		}
		if found {
			return dup, nil, nil
		}
	}
	headerID, hash := secondKey(m, in.Raw)
	if hash != "" {
		same, found, err := s.sameEmail(ctx, tx, headerID, hash)
		if err != nil {
			return res, nil, err
		}
		if found {
			res = same
			res.Linked = m.SourceID != ""
			return res, in.Cursor, s.linkSource(ctx, tx, in, res.MessageID, now, st.failures[in.MailboxID])
		}
	}

	// A bounce joins the conversation of the message it reports on, whatever its own
	// threading headers say (an MTA's report usually has none).
	var convID, bouncedID int64
	var err error
	if in.Bounce != nil {
		if convID, bouncedID, err = s.bouncedMessage(ctx, tx, in.Bounce.OriginalMessageID); err != nil {
			return res, nil, err
		}
	}
	if convID == 0 {
		if convID, err = s.findThread(ctx, tx, m); err != nil {
			return res, nil, err
		}
	}
	if convID != 0 {
		res.Threaded = true
		if _, err := tx.exec(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`, s.d.timeArg(now), convID); err != nil {
			return res, nil, fmt.Errorf("touch conversation %d: %w", convID, err)
		}
	} else {
		err := tx.queryRow(ctx, `INSERT INTO conversations (mailbox_id, subject, created_at, updated_at)
			VALUES (?, ?, ?, ?) RETURNING id`,
			m.MailboxID, clean(m.Subject), s.d.timeArg(now), s.d.timeArg(now)).Scan(&convID)
		if err != nil {
			return res, nil, fmt.Errorf("insert conversation: %w", err)
		}
	}
	res.ConversationID = convID

	msgID, err := s.insertMessageUnindexed(ctx, tx, m, in.Raw, convID, hash, now)
	if err != nil {
		return res, nil, s.wrap("store message", err)
	}
	res.MessageID = msgID
	*st.index = append(*st.index, searchRow{id: msgID, convID: convID, doc: doc})
	if m.SourceID != "" {
		if err := s.addSource(ctx, tx, m.MailboxID, m.SourceID, msgID, now); err != nil {
			return res, nil, err
		}
		if st.failures[m.MailboxID] {
			if err := forgetFailures(ctx, tx, m.MailboxID, m.SourceID); err != nil {
				return res, nil, err
			}
		}
	}

	if bouncedID != 0 {
		// The report is about our reply: it marks the reply, and the work item stays as it
		// is (never a new item, never reopened: nobody answers a bounce).
		if err := s.recordBounce(ctx, tx, bouncedID, *in.Bounce, now); err != nil {
			return res, nil, err
		}
		err := tx.queryRow(ctx, `SELECT id FROM work_items WHERE conversation_id = ? ORDER BY id DESC LIMIT 1`, convID).Scan(&res.WorkItemID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return res, nil, fmt.Errorf("work item of the bounced conversation: %w", err)
		}
		if err == nil {
			return res, in.Cursor, nil
		}
	}

	received := now
	if !in.ReceivedAt.IsZero() && in.ReceivedAt.Before(now) {
		received = in.ReceivedAt.UTC()
	}
	res.WorkItemID, err = s.routeWorkItem(ctx, tx, m, in.Classification, msgID, convID, !res.Threaded, received, now)
	if err != nil {
		return res, nil, err
	}

	if in.AutoReply != nil && m.Automatic == "" && !(in.AutoReply.NewConversationOnly && res.Threaded) {
		// Never an answer to a program (an auto-reply, a bounce, a list): two programs
		// answering each other would never stop. The rate limit is the second guard.
		if err := s.queueAutoReply(ctx, tx, *in.AutoReply, convID, res.WorkItemID, now); err != nil {
			return res, nil, err
		}
	}
	return res, in.Cursor, nil
}

// queueAutoReply stores an automatic reply as an outbound message of conversation convID
// and queues it in the outbox, due now, for work item workItemID.
func (s *Store) queueAutoReply(ctx context.Context, tx runner, a store.AutoReply, convID, workItemID int64, now time.Time) error {
	rcpts, err := s.autoReplyAllowed(ctx, tx, a, convID, now)
	if err != nil {
		return err
	}
	if len(rcpts) == 0 {
		return nil // over the limit for every recipient
	}
	a.Recipients = rcpts
	if a.Compose != nil {
		if a.Message, a.Raw, err = a.Compose(workItemID); err != nil {
			return fmt.Errorf("compose auto-reply: %w", err)
		}
		if a.Raw == nil {
			return nil
		}
	}
	if err := s.recordAutoSent(ctx, tx, a.Kind, rcpts, convID, now); err != nil {
		return err
	}
	m := outboundMessage(a.Message, a.Raw, now)
	m.SourceID = ""
	msgID, err := s.insertMessage(ctx, tx, m, a.Raw, convID, "", now)
	if err != nil {
		return fmt.Errorf("store auto-reply: %w", err)
	}
	_, err = s.insertOutbox(ctx, tx, store.OutboxItem{
		MailboxID:  m.MailboxID,
		WorkItemID: workItemID,
		MessageID:  msgID,
		From:       a.From,
		Recipients: a.Recipients,
	}, now)
	if err != nil {
		return fmt.Errorf("queue auto-reply: %w", err)
	}
	return nil
}

// linkSource records in's (mailbox, source id), when it has one, as another source of the
// stored message msgID and forgets the source's failures (when its mailbox has any): what
// a linked duplicate writes, with its cursor (saved by the caller).
func (s *Store) linkSource(ctx context.Context, tx runner, in store.InboundMessage, msgID int64, now time.Time, failures bool) error {
	sourceID := in.Message.SourceID
	if sourceID == "" {
		return nil
	}
	if err := s.addSource(ctx, tx, in.MailboxID, sourceID, msgID, now); err != nil {
		return err
	}
	if !failures {
		return nil
	}
	return forgetFailures(ctx, tx, in.MailboxID, sourceID)
}

// storedCopy looks up a stored message by its dedup key (any of its sources) and returns
// the ids of it, its conversation and the conversation's latest work item.
func (s *Store) storedCopy(ctx context.Context, tx runner, mailboxID int64, sourceID string) (store.IngestResult, bool, error) {
	res := store.IngestResult{Duplicate: true}
	// A source whose message retention or erasure deleted has no message: it is a
	// duplicate with no ids, stored once and not again.
	err := tx.queryRow(ctx, `SELECT s.message_id, m.conversation_id FROM message_sources s
		LEFT JOIN messages m ON m.id = s.message_id WHERE s.mailbox_id = ? AND s.source_id = ?`,
		mailboxID, clean(sourceID)).Scan(idCol{&res.MessageID}, idCol{&res.ConversationID})
	if errors.Is(err, sql.ErrNoRows) {
		return store.IngestResult{}, false, nil
	}
	if err != nil {
		return store.IngestResult{}, false, fmt.Errorf("look up stored copy: %w", err)
	}
	if res.ConversationID == 0 {
		return res, true, nil
	}
	if err := latestWorkItem(ctx, tx, &res); err != nil {
		return store.IngestResult{}, false, err
	}
	return res, true, nil
}

// findThread returns the conversation the message belongs to, or 0 for a new one. It
// tries In-Reply-To, then References from the most recent.
//
// The message's own Message-ID threads it only when that id is one of ours: a message we
// sent, delivered back to an inbound mailbox (a copy to ourselves), joins its
// conversation. Any other stored message with that id had other content (the same email
// again is found by the second dedup key, Message-ID and content hash, before threading),
// and a Message-ID is only the sender's claim: a stranger's mail, or a careless program's
// fixed id, must not land in a customer's conversation. It is a new message in a
// conversation of its own, unless its references thread it. An id that several
// conversations carry (such a collision) belongs to the one that stored it first.
func (s *Store) findThread(ctx context.Context, tx runner, m store.Message) (int64, error) {
	if own := clean(m.MessageID); own != "" {
		var convID int64
		err := tx.queryRow(ctx, `SELECT i.conversation_id FROM message_ids i JOIN messages m ON m.id = i.message_id
			WHERE i.header_id = ? AND m.direction = ? ORDER BY i.id LIMIT 1`, own, store.Outbound).Scan(&convID)
		switch {
		case err == nil:
			return convID, nil
		case !errors.Is(err, sql.ErrNoRows):
			return 0, fmt.Errorf("thread by own message id: %w", err)
		}
	}
	candidates := make([]string, 0, 1+len(m.References))
	seen := map[string]bool{"": true, clean(m.MessageID): true}
	add := func(id string) {
		id = clean(id)
		if !seen[id] && len(candidates) < maxThreadCandidates {
			seen[id] = true
			candidates = append(candidates, id)
		}
	}
	add(m.InReplyTo)
	for i := len(m.References) - 1; i >= 0; i-- {
		add(m.References[i])
	}
	for _, id := range candidates {
		var convID int64
		err := tx.queryRow(ctx, `SELECT conversation_id FROM message_ids WHERE header_id = ?
			ORDER BY id LIMIT 1`, id).Scan(&convID)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("thread by message id: %w", err)
		}
		return convID, nil
	}
	return 0, nil
}

// routeWorkItem writes the work item of an inbound message as classification decided
// (the store makes no routing decision): a new conversation gets a new item, queued (or
// done at once when a rule closed it); a message in a conversation whose item is open
// joins it; a pending, done or cancelled item is reopened (queued, first offered to the
// agent who had it) unless the message must not reopen it (automatic mail).
func (s *Store) routeWorkItem(ctx context.Context, tx runner, m store.Message, c *store.Classification, msgID, convID int64, newConv bool, received, now time.Time) (int64, error) {
	if c == nil {
		c = &store.Classification{}
	}
	var id, assigned, queueID int64
	var state string
	var firstResponse time.Time
	var due sql.NullInt64
	err := sql.ErrNoRows
	if !newConv {
		err = tx.queryRow(ctx, `SELECT id, state, assigned_to, queue_id, first_response_at,
			CASE WHEN sla_due_at IS NULL THEN 0 ELSE 1 END FROM work_items WHERE conversation_id = ?
			ORDER BY id DESC LIMIT 1`+s.d.forUpdate, convID).Scan(&id, &state, idCol{&assigned}, idCol{&queueID},
			tcol(&firstResponse), &due)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.insertWorkItem(ctx, tx, m, c, msgID, convID, received, now)
	case err != nil:
		return 0, fmt.Errorf("look up work item of conversation %d: %w", convID, err)
	}
	if m.Automatic != "" && !c.RouteAutomatic {
		// A program wrote it: it joins the conversation, and the item stays as it is (its
		// latest inbound message stays the customer's).
		_, err := tx.exec(ctx, `UPDATE work_items SET updated_at = ? WHERE id = ?`, s.d.timeArg(now), id)
		if err != nil {
			return 0, fmt.Errorf("update work item %d: %w", id, err)
		}
		return id, nil
	}
	reopen := false
	switch state {
	case store.StatePending, store.StateDone, store.StateCancelled:
		reopen = !c.NoReopen && c.Close == ""
	}
	if !reopen {
		// The customer wrote again before the answer: the item takes the new message; a
		// clock that stopped with the first response starts for the next one.
		q := `UPDATE work_items SET message_id = ?, unparsed = ?, over_size = ?, updated_at = ? WHERE id = ?`
		args := []any{msgID, m.Unparsed, m.OverSize, s.d.timeArg(now), id}
		if due.Int64 == 0 && !firstResponse.IsZero() && !c.NextDue.IsZero() && !c.NoReopen && state != store.StatePending &&
			state != store.StateDone && state != store.StateCancelled {
			q = `UPDATE work_items SET message_id = ?, unparsed = ?, over_size = ?, updated_at = ?, sla_due_at = ?,
				sla_risk_at = ?, sla_risk_noted = FALSE, sla_breach_noted = FALSE WHERE id = ?`
			args = []any{msgID, m.Unparsed, m.OverSize, s.d.timeArg(now), s.d.timeArg(c.NextDue), s.d.timeArg(c.NextRisk), id}
		}
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("update work item %d: %w", id, err)
		}
		return id, nil
	}
	if queueID == 0 {
		queueID = c.QueueID
	}
	// The agent who had the item is preferred for the classification's PreferredWait;
	// with no wait, nobody is (never a preferred agent without its PreferredUntil).
	var preferredAgent, preferredUntil any
	if assigned != 0 && c.PreferredWait > 0 {
		preferredAgent, preferredUntil = assigned, s.d.timeArg(now.Add(c.PreferredWait))
	}
	if _, err := tx.exec(ctx, `UPDATE work_items SET message_id = ?, unparsed = ?, over_size = ?, updated_at = ?,
		state = ?, queue_id = ?, queued_at = ?, received_at = ?, assigned_to = NULL, offered_to = NULL,
		offer_expires_at = NULL, declined_by = '[]', preferred_agent = ?, preferred_until = ?, sla_due_at = ?,
		sla_risk_at = ?, sla_remaining_ms = NULL, sla_risk_noted = FALSE, sla_breach_noted = FALSE, done_at = NULL, state_reason = '', overflowed = FALSE
		WHERE id = ?`, msgID, m.Unparsed, m.OverSize, s.d.timeArg(now), store.StateQueued, nullID(queueID),
		s.d.timeArg(received), s.d.timeArg(received), preferredAgent, preferredUntil,
		s.d.timeArg(c.NextDue), s.d.timeArg(c.NextRisk), id); err != nil {
		return 0, fmt.Errorf("reopen work item %d: %w", id, err)
	}
	return id, s.insertEvent(ctx, tx, store.Event{WorkItemID: id, At: now, Kind: "reopen", From: state,
		To: store.StateQueued, QueueID: queueID, Reason: "the customer wrote again"})
}

// insertWorkItem creates the work item of a new conversation.
func (s *Store) insertWorkItem(ctx context.Context, tx runner, m store.Message, c *store.Classification, msgID, convID int64, received, now time.Time) (int64, error) {
	state, reason := store.StateQueued, ""
	var doneAt any
	switch {
	case c.Close != "":
		state, reason, doneAt = store.StateDone, c.Close, s.d.timeArg(now)
	case m.Automatic != "" && !c.RouteAutomatic:
		// Nobody answers a program: the item is recorded as done so that the message stays
		// findable, unless a rule routed it.
		state, reason, doneAt = store.StateDone, store.CloseAutomatic, s.d.timeArg(now)
	}
	firstDue, firstRisk := c.FirstDue, c.FirstRisk
	if state == store.StateDone {
		firstDue, firstRisk = time.Time{}, time.Time{} // no answer is due
	}
	queue := nullID(c.QueueID)
	queueSQL := `?`
	if c.QueueID == 0 {
		queueSQL = `(SELECT queue_id FROM mailboxes WHERE id = ?)`
		queue = m.MailboxID
	}
	// queueID is where the item went (the mailbox's queue without a classification), for
	// its creation event.
	var id, queueID int64
	err := tx.queryRow(ctx, `INSERT INTO work_items (conversation_id, mailbox_id, message_id,
		state, unparsed, over_size, received_at, updated_at, queue_id, category, tags, priority_adjust, skills,
		language, schema_id, sla_policy_id, queued_at, sla_due_at, sla_risk_at, sla_first_due_at, state_reason,
		done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, `+queueSQL+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, queue_id`,
		convID, m.MailboxID, msgID, state, m.Unparsed, m.OverSize, s.d.timeArg(received), s.d.timeArg(now),
		queue, clean(c.Category), encodeList(c.Tags), c.PriorityAdjust, encodeSkills(c.Skills), c.Language,
		nullID(c.SchemaID), nullID(c.SLAPolicyID), s.d.timeArg(received), s.d.timeArg(firstDue),
		s.d.timeArg(firstRisk), s.d.timeArg(firstDue), reason, doneAt).Scan(&id, idCol{&queueID})
	if err != nil {
		return 0, fmt.Errorf("insert work item: %w", err)
	}
	why := "arrived"
	switch {
	case c.Close != "":
		why = "closed by a rule: " + reason
	case reason == store.CloseAutomatic:
		why = "automatic mail (" + m.Automatic + "): nobody answers a program"
	}
	return id, s.insertEvent(ctx, tx, store.Event{WorkItemID: id, At: now, Kind: "created", From: store.StateNew,
		To: state, QueueID: queueID, Reason: why})
}
