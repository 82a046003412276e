package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// messageColumns are the columns scanMessage reads, from messages m.
const messageColumns = `m.id, m.conversation_id, m.mailbox_id, m.direction, m.source_id,
	m.message_id, m.in_reply_to, m.refs, m.subject, m.from_name, m.from_addr, m.to_list,
	m.cc_list, m.reply_to, m.date, m.text_body, m.html_body, m.size, m.unparsed,
	m.parse_error, m.over_size, m.created_at, m.automatic, m.bcc_list, m.author_id,
	COALESCE((SELECT CASE WHEN u.display_name <> '' THEN u.display_name ELSE u.username END
		FROM users u WHERE u.id = m.author_id), '')`

func scanMessage(sc scanner) (store.Message, error) {
	var m store.Message
	var refs string
	err := sc.Scan(&m.ID, &m.ConversationID, &m.MailboxID, &m.Direction, &m.SourceID,
		&m.MessageID, &m.InReplyTo, &refs, &m.Subject, &m.FromName, &m.FromAddr, &m.To,
		&m.Cc, &m.ReplyTo, tcol(&m.Date), &m.TextBody, &m.HTMLBody, &m.Size, &m.Unparsed,
		&m.ParseError, &m.OverSize, tcol(&m.CreatedAt), &m.Automatic, &m.Bcc, idCol{&m.AuthorID}, &m.AuthorName)
	if err != nil {
		return m, err
	}
	m.References, err = decodeList(refs)
	return m, err
}

// insertMessage stores m (parsed form, raw source, attachments with their data, the
// Message-ID row used for threading and the search document) in conversation convID and
// returns its id. hash is
// the content hash of an inbound message with a Message-ID (the second dedup key), ""
// otherwise.
func (s *Store) insertMessage(ctx context.Context, tx runner, m store.Message, raw []byte, convID int64, hash string, now time.Time) (int64, error) {
	id, err := s.insertMessageUnindexed(ctx, tx, m, raw, convID, hash, now)
	if err != nil {
		return 0, err
	}
	return id, s.indexMessage(ctx, tx, id, convID, searchDoc(m))
}

// insertMessageUnindexed is insertMessage without the search index row, which the caller
// writes (ingest writes a batch's rows last, see ingestOnce).
func (s *Store) insertMessageUnindexed(ctx context.Context, tx runner, m store.Message, raw []byte, convID int64, hash string, now time.Time) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `INSERT INTO messages (conversation_id, mailbox_id, direction,
		source_id, message_id, in_reply_to, refs, subject, from_name, from_addr, to_list,
		cc_list, reply_to, date, text_body, html_body, size, unparsed, parse_error, over_size,
		content_hash, created_at, automatic, bcc_list, author_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		convID, m.MailboxID, m.Direction, clean(m.SourceID), clean(m.MessageID),
		clean(m.InReplyTo), encodeList(m.References), clean(m.Subject), clean(m.FromName),
		clean(m.FromAddr), clean(m.To), clean(m.Cc), clean(m.ReplyTo), s.d.timeArg(m.Date),
		clean(m.TextBody), clean(m.HTMLBody), m.Size, m.Unparsed, clean(m.ParseError),
		m.OverSize, hash, s.d.timeArg(now), clean(m.Automatic), clean(m.Bcc), nullID(m.AuthorID)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert message: %w", err)
	}
	if err := s.insertRaw(ctx, tx, id, raw, m.Direction == store.Inbound); err != nil {
		return 0, err
	}
	var buf []byte // the chunk buffer of streamed attachments, shared by them
	for _, a := range m.Attachments {
		if err := s.insertAttachment(ctx, tx, id, a, &buf); err != nil {
			return 0, fmt.Errorf("insert attachment %q: %w", a.Filename, err)
		}
	}
	if m.MessageID != "" && len(m.MessageID) <= maxHeaderIDLen {
		_, err := tx.exec(ctx, `INSERT INTO message_ids (header_id, conversation_id, message_id) VALUES (?, ?, ?)`,
			clean(m.MessageID), convID, id)
		if err != nil {
			return 0, fmt.Errorf("insert message id: %w", err)
		}
	}
	return id, nil
}

// chunkSize is the most bytes of raw source or attachment content one row (and one
// statement) carries: the driver and the engine each copy a bound value and build a
// record from it, so a whole 20 MB message in one statement would cost several times its
// size in memory. Larger content is split: its first chunk in raw_messages.data or
// attachments.data, the rest in raw_message_chunks or attachment_chunks (seq 1, 2, ...).
const chunkSize = 256 << 10

// insertRaw stores the raw source of message id: in chunks when chunked is set (inbound
// messages), else whole in raw_messages (outbound messages, which the outbox reads from
// there in one piece).
func (s *Store) insertRaw(ctx context.Context, tx runner, id int64, raw []byte, chunked bool) error {
	if raw == nil {
		raw = []byte{}
	}
	first := raw
	if chunked {
		first = raw[:min(len(raw), chunkSize)]
	}
	if _, err := tx.exec(ctx, `INSERT INTO raw_messages (message_id, data) VALUES (?, ?)`, id, first); err != nil {
		return fmt.Errorf("insert raw message: %w", err)
	}
	for seq, off := 1, len(first); off < len(raw); seq, off = seq+1, off+chunkSize {
		chunk := raw[off:min(len(raw), off+chunkSize)]
		if _, err := tx.exec(ctx, `INSERT INTO raw_message_chunks (message_id, seq, data) VALUES (?, ?, ?)`, id, seq, chunk); err != nil {
			return fmt.Errorf("insert raw message chunk %d: %w", seq, err)
		}
	}
	return nil
}

// insertAttachment stores one attachment of message msgID: its Data, or what its Open
// gives, read chunkSize at a time into *buf (allocated on first use) and written as it
// comes, so that a large attachment is never whole in memory.
func (s *Store) insertAttachment(ctx context.Context, tx runner, msgID int64, a store.Attachment, buf *[]byte) error {
	data := a.Data
	var src io.Reader
	if a.Open != nil && a.Data == nil {
		r, err := a.Open()
		if err != nil {
			return fmt.Errorf("open content: %w", err)
		}
		if *buf == nil {
			*buf = make([]byte, chunkSize)
		}
		src = r
		n, err := io.ReadFull(r, *buf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read content: %w", err)
		}
		data = (*buf)[:n]
		if n < chunkSize {
			src = nil // all of it is in data
		}
	}
	if data == nil {
		data = []byte{}
	}
	first := data[:min(len(data), chunkSize)]
	size := a.Size
	if size == 0 && a.Open == nil {
		size = int64(len(a.Data))
	}
	var id int64
	err := tx.queryRow(ctx, `INSERT INTO attachments (message_id, filename, content_type,
		content_id, is_inline, size, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		msgID, clean(a.Filename), clean(a.ContentType), clean(a.ContentID), a.Inline, size, first).Scan(&id)
	if err != nil {
		return err
	}
	written := int64(len(first))
	seq := 1
	for off := len(first); off < len(data); off += chunkSize { // Data larger than a chunk
		chunk := data[off:min(len(data), off+chunkSize)]
		if err := insertAttachmentChunk(ctx, tx, id, seq, chunk); err != nil {
			return err
		}
		written += int64(len(chunk))
		seq++
	}
	for src != nil { // the rest of a streamed attachment
		n, err := io.ReadFull(src, *buf)
		if n > 0 {
			if err := insertAttachmentChunk(ctx, tx, id, seq, (*buf)[:n]); err != nil {
				return err
			}
			written += int64(n)
			seq++
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read content: %w", err)
		}
	}
	if a.Open != nil && a.Data == nil && written != size {
		// The stream gave other than the parser counted: the stored size is the truth.
		if _, err := tx.exec(ctx, `UPDATE attachments SET size = ? WHERE id = ?`, written, id); err != nil {
			return fmt.Errorf("correct the size: %w", err)
		}
	}
	return nil
}

func insertAttachmentChunk(ctx context.Context, tx runner, attachmentID int64, seq int, chunk []byte) error {
	_, err := tx.exec(ctx, `INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES (?, ?, ?)`, attachmentID, seq, chunk)
	if err != nil {
		return fmt.Errorf("insert chunk %d: %w", seq, err)
	}
	return nil
}

// Tables of the chunks after the first (migration 0005), and the column naming what they
// belong to.
const (
	rawChunks        = "raw_message_chunks"
	rawChunksKey     = "message_id"
	attachChunks     = "attachment_chunks"
	attachChunksKey  = "attachment_id"
	chunkQueryLength = `SELECT COALESCE(SUM(LENGTH(data)), 0) FROM %s WHERE %s = ?`
	chunkQueryData   = `SELECT data FROM %s WHERE %s = ? ORDER BY seq`
)

// withChunks returns first followed by the chunks of id in table, in one buffer of the
// exact size. Only a full first chunk has others after it.
func (s *Store) withChunks(ctx context.Context, first []byte, table, key string, id int64) ([]byte, error) {
	if len(first) < chunkSize {
		return first, nil
	}
	var rest int64
	if err := s.r.queryRow(ctx, fmt.Sprintf(chunkQueryLength, table, key), id).Scan(&rest); err != nil {
		return nil, err
	}
	if rest == 0 {
		return first, nil
	}
	b := make([]byte, len(first), int64(len(first))+rest)
	copy(b, first)
	rows, err := s.r.query(ctx, fmt.Sprintf(chunkQueryData, table, key), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var chunk sql.RawBytes
		if err := rows.Scan(&chunk); err != nil {
			return nil, err
		}
		b = append(b, chunk...)
	}
	return b, rows.Err()
}

// Message returns a stored message with its attachments' metadata.
func (s *Store) Message(ctx context.Context, id int64) (store.Message, error) {
	op := fmt.Sprintf("message %d", id)
	m, err := scanMessage(s.r.queryRow(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id = ?`, id))
	if err != nil {
		return store.Message{}, s.wrap(op, err)
	}
	atts, err := s.attachments(ctx, `a.message_id = ?`, id)
	if err != nil {
		return store.Message{}, s.wrap(op, err)
	}
	m.Attachments = atts[id]
	return m, nil
}

// MessageBySource finds a stored message by its dedup key: any of its sources, the one it
// was stored through or one linked to it later. The message's MailboxID and SourceID are
// those of the first.
func (s *Store) MessageBySource(ctx context.Context, mailboxID int64, sourceID string) (store.Message, error) {
	op := fmt.Sprintf("message %q of mailbox %d", sourceID, mailboxID)
	m, err := scanMessage(s.r.queryRow(ctx, `SELECT `+messageColumns+` FROM message_sources s
		JOIN messages m ON m.id = s.message_id
		WHERE s.mailbox_id = ? AND s.source_id = ? AND s.source_id <> ''`, mailboxID, sourceID))
	if errors.Is(err, sql.ErrNoRows) {
		// A source whose message retention or erasure deleted: known, with no message.
		var one int
		if err := s.r.queryRow(ctx, `SELECT 1 FROM message_sources WHERE mailbox_id = ? AND source_id = ?
			AND message_id IS NULL AND source_id <> ''`, mailboxID, sourceID).Scan(&one); err != nil {
			return store.Message{}, s.wrap(op, err)
		}
		return store.Message{MailboxID: mailboxID, Direction: store.Inbound, SourceID: sourceID}, nil
	}
	if err != nil {
		return store.Message{}, s.wrap(op, err)
	}
	atts, err := s.attachments(ctx, `a.message_id = ?`, m.ID)
	if err != nil {
		return store.Message{}, s.wrap(op, err)
	}
	m.Attachments = atts[m.ID]
	return m, nil
}

// attachments returns the metadata of the attachments matching where, by message id, in
// storage order.
func (s *Store) attachments(ctx context.Context, where string, args ...any) (map[int64][]store.Attachment, error) {
	rows, err := s.r.query(ctx, `SELECT a.id, a.message_id, a.filename, a.content_type,
		a.content_id, a.is_inline, a.size FROM attachments a
		JOIN messages m ON m.id = a.message_id WHERE `+where+` ORDER BY a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	defer rows.Close()
	byMessage := map[int64][]store.Attachment{}
	for rows.Next() {
		var a store.Attachment
		if err := rows.Scan(&a.ID, &a.MessageID, &a.Filename, &a.ContentType, &a.ContentID, &a.Inline, &a.Size); err != nil {
			return nil, fmt.Errorf("attachments: %w", err)
		}
		byMessage[a.MessageID] = append(byMessage[a.MessageID], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	return byMessage, nil
}

// RawMessage returns the raw MIME source of a stored message.
func (s *Store) RawMessage(ctx context.Context, messageID int64) ([]byte, error) {
	op := fmt.Sprintf("raw message %d", messageID)
	var b []byte
	err := s.r.queryRow(ctx, `SELECT data FROM raw_messages WHERE message_id = ?`, messageID).Scan(&b)
	if err == nil {
		b, err = s.withChunks(ctx, b, rawChunks, rawChunksKey, messageID)
	}
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Attachment returns one attachment with its content.
func (s *Store) Attachment(ctx context.Context, id int64) (store.Attachment, error) {
	var a store.Attachment
	err := s.r.queryRow(ctx, `SELECT id, message_id, filename, content_type, content_id,
		is_inline, size, data FROM attachments WHERE id = ?`, id).
		Scan(&a.ID, &a.MessageID, &a.Filename, &a.ContentType, &a.ContentID, &a.Inline, &a.Size, &a.Data)
	if err != nil {
		return store.Attachment{}, s.wrap(fmt.Sprintf("attachment %d", id), err)
	}
	if a.Data, err = s.withChunks(ctx, a.Data, attachChunks, attachChunksKey, id); err != nil {
		return store.Attachment{}, s.wrap(fmt.Sprintf("attachment %d", id), err)
	}
	if a.Data == nil {
		a.Data = []byte{}
	}
	return a, nil
}

// LatestMessageID reads the largest message id of a conversation from its index.
func (s *Store) LatestMessageID(ctx context.Context, conversationID int64) (int64, error) {
	var id int64
	err := s.r.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = ?`, conversationID).Scan(&id)
	return id, s.wrap(fmt.Sprintf("latest message of conversation %d", conversationID), err)
}

// ConversationMessages returns the messages of a conversation, inbound and outbound,
// oldest first (by Date, then by storage order; a message without a Date counts as
// stored at its arrival). A message we wrote (outbound: a reply, an automatic notice)
// comes after every message stored before it, whatever their Date says: a sender's clock
// ahead of ours must not put our answer above the message it answers.
func (s *Store) ConversationMessages(ctx context.Context, conversationID int64) ([]store.Message, error) {
	op := fmt.Sprintf("messages of conversation %d", conversationID)
	var exists int
	if err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM conversations WHERE id = ?`, conversationID).Scan(&exists); err != nil {
		return nil, s.wrap(op, err)
	}
	if exists == 0 {
		return nil, s.wrap(op, store.ErrNotFound)
	}
	rows, err := s.r.query(ctx, `SELECT `+messageColumns+` FROM messages m
		WHERE m.conversation_id = ? ORDER BY COALESCE(m.date, m.created_at), m.id`, conversationID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	var list []store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrap(op, err)
		}
		list = append(list, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	atts, err := s.attachments(ctx, `m.conversation_id = ?`, conversationID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	for i := range list {
		list[i].Attachments = atts[list[i].ID]
	}
	orderAnswers(list)
	return list, nil
}

// orderAnswers sorts a conversation by time, where the time of an outbound message is at
// least that of every message stored before it (see ConversationMessages).
func orderAnswers(list []store.Message) {
	byStorage := slices.Clone(list)
	slices.SortFunc(byStorage, func(a, b store.Message) int { return cmp.Compare(a.ID, b.ID) })
	at := make(map[int64]time.Time, len(list))
	var latest time.Time
	for _, m := range byStorage {
		t := m.Date
		if t.IsZero() {
			t = m.CreatedAt
		}
		if m.Direction == store.Outbound && t.Before(latest) {
			t = latest
		}
		if t.After(latest) {
			latest = t
		}
		at[m.ID] = t
	}
	slices.SortStableFunc(list, func(a, b store.Message) int {
		return cmp.Or(at[a.ID].Compare(at[b.ID]), cmp.Compare(a.ID, b.ID))
	})
}

// CountMessages counts the stored messages of a mailbox, or of all mailboxes when
// mailboxID is 0.
func (s *Store) CountMessages(ctx context.Context, mailboxID int64) (int, error) {
	var n int
	var err error
	if mailboxID == 0 {
		err = s.r.queryRow(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n)
	} else {
		err = s.r.queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE mailbox_id = ?`, mailboxID).Scan(&n)
	}
	return n, s.wrap(fmt.Sprintf("count messages of mailbox %d", mailboxID), err)
}

// CountMessagesSince counts the inbound messages of a mailbox (of all mailboxes when
// mailboxID is 0) stored at or after since; a zero since counts them all. Outbound
// messages (replies, auto-replies) are not counted: this is what was ingested.
func (s *Store) CountMessagesSince(ctx context.Context, mailboxID int64, since time.Time) (int, error) {
	query := `SELECT COUNT(*) FROM messages WHERE direction = ?`
	args := []any{store.Inbound}
	if mailboxID != 0 {
		query += ` AND mailbox_id = ?`
		args = append(args, mailboxID)
	}
	if !since.IsZero() {
		query += ` AND created_at >= ?`
		args = append(args, s.d.timeArg(since))
	}
	var n int
	err := s.r.queryRow(ctx, query, args...).Scan(&n)
	return n, s.wrap(fmt.Sprintf("count messages of mailbox %d since %s", mailboxID, since.UTC().Format(time.RFC3339)), err)
}

// MarkAcked records that a message was acknowledged at one of its sources.
func (s *Store) MarkAcked(ctx context.Context, mailboxID int64, sourceIDs ...string) error {
	op := fmt.Sprintf("mark %d messages of mailbox %d acknowledged", len(sourceIDs), mailboxID)
	if len(sourceIDs) == 1 {
		op = fmt.Sprintf("mark message %q of mailbox %d acknowledged", sourceIDs[0], mailboxID)
	}
	return s.wrap(op, markAcked(ctx, s.w, mailboxID, sourceIDs))
}

func markAcked(ctx context.Context, r runner, mailboxID int64, sourceIDs []string) error {
	unique := map[string]bool{}
	args := []any{mailboxID}
	for _, id := range sourceIDs {
		if id != "" && !unique[id] {
			unique[id] = true
			args = append(args, id)
		}
	}
	if len(unique) == 0 {
		return nil
	}
	res, err := r.exec(ctx, `UPDATE message_sources SET acked = TRUE
		WHERE mailbox_id = ? AND source_id IN (?`+strings.Repeat(", ?", len(unique)-1)+`)`, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if int(n) < len(unique) {
		return fmt.Errorf("%d of them are not stored: %w", len(unique)-int(n), store.ErrNotFound)
	}
	return nil
}

// PendingAcks lists the mailbox's sources of stored inbound messages that are not yet
// acknowledged, oldest first: those a message was stored through and those linked to a
// stored message later.
func (s *Store) PendingAcks(ctx context.Context, mailboxID int64) ([]string, error) {
	op := fmt.Sprintf("pending acknowledgements of mailbox %d", mailboxID)
	rows, err := s.r.query(ctx, `SELECT source_id FROM message_sources
		WHERE mailbox_id = ? AND acked = FALSE ORDER BY id`, mailboxID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(op, err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap(op, rows.Err())
}
