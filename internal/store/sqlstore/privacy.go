package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// erasedKey is the hash kept in erased_messages for a deleted inbound message's second
// dedup key (Message-ID and content hash).
func erasedKey(messageID, contentHash string) string {
	h := sha256.Sum256([]byte(messageID + "\n" + contentHash))
	return hex.EncodeToString(h[:])
}

// finishedStates are the work item states retention waits for.
const finishedStates = `('` + store.StateDone + `', '` + store.StateCancelled + `')`

// RetentionDue lists the conversations of a queue that retention may remove.
func (s *Store) RetentionDue(ctx context.Context, queueID int64, before time.Time, anonymise bool, limit int) ([]int64, error) {
	op := fmt.Sprintf("conversations of queue %d due for retention", queueID)
	if limit <= 0 {
		limit = 100
	}
	notAnonymised := ""
	if anonymise {
		// A conversation anonymised and then reopened by a customer's late reply (its
		// latest work item changed since) is due again once done.
		notAnonymised = ` AND (c.anonymised_at IS NULL OR w.updated_at > c.anonymised_at)`
	}
	rows, err := s.r.query(ctx, `SELECT w.conversation_id FROM work_items w
		JOIN conversations c ON c.id = w.conversation_id
		WHERE w.queue_id = ? AND w.state IN `+finishedStates+` AND w.updated_at < ?`+notAnonymised+`
		AND w.id = (SELECT MAX(l.id) FROM work_items l WHERE l.conversation_id = w.conversation_id)
		AND NOT EXISTS (SELECT 1 FROM work_items o WHERE o.conversation_id = w.conversation_id
			AND (o.state NOT IN `+finishedStates+` OR o.updated_at >= ?))
		AND NOT EXISTS (SELECT 1 FROM outbox b JOIN messages m ON m.id = b.message_id
			WHERE m.conversation_id = w.conversation_id AND b.state = ?)
		ORDER BY w.updated_at, w.id LIMIT ?`,
		queueID, s.d.timeArg(before), s.d.timeArg(before), store.OutboxQueued, limit)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(op, err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap(op, rows.Err())
}

// DeleteConversation removes a conversation and everything of it in one transaction.
func (s *Store) DeleteConversation(ctx context.Context, id int64) (store.ErasureCounts, error) {
	var c store.ErasureCounts
	err := s.inTx(ctx, func(tx runner) error {
		var err error
		c, err = s.deleteConversation(ctx, tx, id)
		return err
	})
	return c, s.wrap(fmt.Sprintf("delete conversation %d", id), err)
}

// countConversation counts what a conversation holds.
func countConversation(ctx context.Context, tx runner, id int64) (store.ErasureCounts, error) {
	c := store.ErasureCounts{Conversations: 1}
	err := tx.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM messages WHERE conversation_id = ?),
		(SELECT COUNT(*) FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = ?),
		(SELECT COUNT(*) FROM work_items WHERE conversation_id = ?),
		(SELECT COUNT(*) FROM notes n JOIN work_items w ON w.id = n.work_item_id WHERE w.conversation_id = ?),
		(SELECT COUNT(*) FROM outbox b JOIN messages m ON m.id = b.message_id WHERE m.conversation_id = ?),
		(SELECT COUNT(*) FROM reply_drafts d JOIN work_items w ON w.id = d.work_item_id WHERE w.conversation_id = ?)`,
		id, id, id, id, id, id).Scan(&c.Messages, &c.Attachments, &c.WorkItems, &c.Notes, &c.Outbox, &c.Drafts)
	if err != nil {
		return c, fmt.Errorf("count what conversation %d holds: %w", id, err)
	}
	return c, nil
}

// conversationExists is store.ErrNotFound (through sql.ErrNoRows) when there is no
// conversation id.
func conversationExists(ctx context.Context, tx runner, id int64) error {
	var one int
	return tx.queryRow(ctx, `SELECT 1 FROM conversations WHERE id = ?`, id).Scan(&one)
}

func (s *Store) deleteConversation(ctx context.Context, tx runner, id int64) (store.ErasureCounts, error) {
	if err := conversationExists(ctx, tx, id); err != nil {
		return store.ErasureCounts{}, err
	}
	c, err := countConversation(ctx, tx, id)
	if err != nil {
		return c, err
	}
	// The second dedup key of each inbound message stays, hashed.
	rows, err := tx.query(ctx, `SELECT message_id, content_hash FROM messages
		WHERE conversation_id = ? AND direction = ? AND content_hash <> '' AND message_id <> ''`, id, store.Inbound)
	if err != nil {
		return c, fmt.Errorf("read dedup keys: %w", err)
	}
	var keys []string
	for rows.Next() {
		var mid, hash string
		if err := rows.Scan(&mid, &hash); err != nil {
			rows.Close()
			return c, fmt.Errorf("read dedup keys: %w", err)
		}
		keys = append(keys, erasedKey(mid, hash))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("read dedup keys: %w", err)
	}
	now := s.d.timeArg(s.now())
	for _, k := range keys {
		if _, err := tx.exec(ctx, `INSERT INTO erased_messages (content_key, erased_at) VALUES (?, ?)
			ON CONFLICT (content_key) DO NOTHING`, k, now); err != nil {
			return c, fmt.Errorf("keep dedup key: %w", err)
		}
	}
	steps := []struct {
		what, query string
		args        []any
	}{
		{"outbox", `DELETE FROM outbox WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = ?)
			OR work_item_id IN (SELECT id FROM work_items WHERE conversation_id = ?)`, []any{id, id}},
		// Events, notes, mentions and drafts go with their work items (ON DELETE CASCADE).
		{"work items", `DELETE FROM work_items WHERE conversation_id = ?`, []any{id}},
		// Raw sources, chunks, attachments, search rows and threading ids go with their
		// messages; sources stay with no message (ON DELETE SET NULL).
		{"messages", `DELETE FROM messages WHERE conversation_id = ?`, []any{id}},
		// Automatic-message bookkeeping goes with the conversation (ON DELETE CASCADE).
		{"conversation", `DELETE FROM conversations WHERE id = ?`, []any{id}},
	}
	for _, st := range steps {
		if _, err := tx.exec(ctx, st.query, st.args...); err != nil {
			return c, fmt.Errorf("delete %s: %w", st.what, err)
		}
	}
	return c, nil
}

// AnonymiseConversation removes a conversation's content and keeps its skeleton.
func (s *Store) AnonymiseConversation(ctx context.Context, id int64) (store.ErasureCounts, error) {
	var c store.ErasureCounts
	err := s.inTx(ctx, func(tx runner) error {
		if err := conversationExists(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if c, err = countConversation(ctx, tx, id); err != nil {
			return err
		}
		msgs := `(SELECT id FROM messages WHERE conversation_id = ?)`
		items := `(SELECT id FROM work_items WHERE conversation_id = ?)`
		search := `DELETE FROM message_search WHERE rowid IN ` + msgs
		if s.d.name == "postgres" {
			search = `DELETE FROM message_search WHERE message_id IN ` + msgs
		}
		steps := []struct {
			what, query string
			args        []any
		}{
			{"attachments", `DELETE FROM attachments WHERE message_id IN ` + msgs, []any{id}},
			{"raw sources", `DELETE FROM raw_messages WHERE message_id IN ` + msgs, []any{id}},
			{"raw chunks", `DELETE FROM raw_message_chunks WHERE message_id IN ` + msgs, []any{id}},
			{"search rows", search, []any{id}},
			{"messages", `UPDATE messages SET subject = ?, to_list = ?, cc_list = '', bcc_list = '', reply_to = '',
				text_body = '', html_body = '', parse_error = '',
				from_name = CASE WHEN direction = ? THEN '' ELSE from_name END,
				from_addr = CASE WHEN direction = ? THEN ? ELSE from_addr END
				WHERE conversation_id = ?`, []any{store.Anonymised, store.Anonymised, store.Inbound, store.Inbound, store.Anonymised, id}},
			{"conversation", `UPDATE conversations SET subject = ?, customer_addr = '', anonymised_at = ? WHERE id = ?`,
				[]any{store.Anonymised, s.d.timeArg(s.now()), id}},
			{"notes", `DELETE FROM notes WHERE work_item_id IN ` + items, []any{id}},
			{"drafts", `DELETE FROM reply_drafts WHERE work_item_id IN ` + items, []any{id}},
			{"outbox", `UPDATE outbox SET recipients = '[]', last_error = '' WHERE message_id IN ` + msgs, []any{id}},
			{"automatic-message bookkeeping", `DELETE FROM auto_sent WHERE conversation_id = ?`, []any{id}},
		}
		for _, st := range steps {
			if _, err := tx.exec(ctx, st.query, st.args...); err != nil {
				return fmt.Errorf("anonymise %s: %w", st.what, err)
			}
		}
		return nil
	})
	return c, s.wrap(fmt.Sprintf("anonymise conversation %d", id), err)
}

// normAddress is an address as erasure compares it.
func normAddress(a string) string { return strings.ToLower(strings.TrimSpace(clean(a))) }

// customerConversations lists the conversations whose customer is addr: started by us to
// it, or with an inbound message from it.
func customerConversations(ctx context.Context, tx runner, addr string) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT id FROM conversations WHERE customer_addr = ?
		UNION SELECT conversation_id FROM messages WHERE lower(from_addr) = ? AND direction = ?
		ORDER BY 1`, addr, addr, store.Inbound)
	if err != nil {
		return nil, fmt.Errorf("find the conversations of the address: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find the conversations of the address: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// likeEscape makes s a LIKE pattern matching s anywhere, with \ as the escape.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// addressBookkeeping counts (and with del deletes) the address's bounce record, its
// automatic-message bookkeeping left after its conversations, and the drafts elsewhere
// that name it in Cc or Bcc.
func addressBookkeeping(ctx context.Context, tx runner, addr string, del bool, c *store.ErasureCounts) error {
	pat := likeEscape(addr)
	parts := []struct {
		n           *int
		count, drop string
		args        []any
	}{
		{&c.Bounces, `SELECT COUNT(*) FROM address_bounces WHERE address = ?`, `DELETE FROM address_bounces WHERE address = ?`, []any{addr}},
		{&c.AutoMessages, `SELECT COUNT(*) FROM auto_sent WHERE lower(address) = ?`, `DELETE FROM auto_sent WHERE lower(address) = ?`, []any{addr}},
		{&c.Drafts, `SELECT COUNT(*) FROM reply_drafts WHERE lower(cc) LIKE ? ESCAPE '\' OR lower(bcc) LIKE ? ESCAPE '\'`,
			`DELETE FROM reply_drafts WHERE lower(cc) LIKE ? ESCAPE '\' OR lower(bcc) LIKE ? ESCAPE '\'`, []any{pat, pat}},
	}
	for _, p := range parts {
		var n int
		if err := tx.queryRow(ctx, p.count, p.args...).Scan(&n); err != nil {
			return fmt.Errorf("count the address's bookkeeping: %w", err)
		}
		*p.n += n
		if del && n > 0 {
			if _, err := tx.exec(ctx, p.drop, p.args...); err != nil {
				return fmt.Errorf("erase the address's bookkeeping: %w", err)
			}
		}
	}
	return nil
}

// ErasureOf counts what EraseAddress would remove.
func (s *Store) ErasureOf(ctx context.Context, address string) (store.ErasureCounts, error) {
	addr := normAddress(address)
	// A count only: read from the reader pool, so that the single writer is not held.
	var total store.ErasureCounts
	err := func() error {
		convs, err := customerConversations(ctx, s.r, addr)
		if err != nil {
			return err
		}
		for _, id := range convs {
			c, err := countConversation(ctx, s.r, id)
			if err != nil {
				return err
			}
			total.Add(c)
		}
		return addressBookkeeping(ctx, s.r, addr, false, &total)
	}()
	return total, s.wrap("count the data of an address", err)
}

// EraseAddress removes one customer's data and records the audit event, in one
// transaction.
func (s *Store) EraseAddress(ctx context.Context, address string, fill func(store.ErasureCounts) store.AuditEvent) (store.ErasureCounts, error) {
	addr := normAddress(address)
	var total store.ErasureCounts
	err := s.inTx(ctx, func(tx runner) error {
		total = store.ErasureCounts{}
		convs, err := customerConversations(ctx, tx, addr)
		if err != nil {
			return err
		}
		for _, id := range convs {
			c, err := s.deleteConversation(ctx, tx, id)
			if err != nil {
				return fmt.Errorf("conversation %d: %w", id, err)
			}
			total.Add(c)
		}
		if err := addressBookkeeping(ctx, tx, addr, true, &total); err != nil {
			return err
		}
		if fill == nil {
			return nil
		}
		e := fill(total)
		if e.At.IsZero() {
			e.At = s.now()
		}
		return s.addAudit(ctx, tx, e)
	})
	return total, s.wrap("erase the data of an address", err)
}
