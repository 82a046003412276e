package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

// maxHeaderIDLen bounds the Message-ID used as the second dedup key and for threading:
// no valid id is longer than a header line may be (RFC 5322 §2.1.1: 998 octets), and a
// longer one would not fit PostgreSQL's B-tree index entries (about 2.7 kB).
const maxHeaderIDLen = 998

// maxFailureText bounds the last error kept per failing message.
const maxFailureText = 2000

// hashedField ranks the header fields the content hash covers, -1 for the others. Only
// fields the sender wrote are covered (RFC 5322 §3.6 originator, destination, identification
// and informational fields, and the MIME fields that say how to read the body, RFC 2045
// §3). Trace fields and other fields that servers add on the way (Received, Return-Path,
// Delivered-To, X-Original-To, Authentication-Results, spam verdicts: RFC 5321 §4.4)
// differ between two deliveries of one email and are left out, so the copy To one of our
// mailboxes and the copy Cc another hash the same.
func hashedField(name string) int {
	switch name {
	case "from":
		return 0
	case "sender":
		return 1
	case "reply-to":
		return 2
	case "to":
		return 3
	case "cc":
		return 4
	case "subject":
		return 5
	case "date":
		return 6
	case "message-id":
		return 7
	case "in-reply-to":
		return 8
	case "references":
		return 9
	case "mime-version":
		return 10
	case "content-type":
		return 11
	case "content-transfer-encoding":
		return 12
	}
	return -1
}

// hashedFieldCount is the number of ranks hashedField returns.
const hashedFieldCount = 13

// contentHash is the hex SHA-256 of what the sender wrote: the header fields hashedField
// names (unfolded, whitespace runs collapsed, in a fixed order) and the body (line ends
// normalised to LF). Together with the Message-ID it is the second dedup key.
func contentHash(raw []byte) string {
	header, body := splitHeader(raw)
	fields := make([][]string, hashedFieldCount)
	var name string
	var value strings.Builder
	flush := func() {
		if name == "" {
			return
		}
		if i := hashedField(name); i >= 0 {
			fields[i] = append(fields[i], strings.Join(strings.Fields(value.String()), " "))
		}
		name = ""
		value.Reset()
	}
	for line := range bytes.SplitSeq(header, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if name != "" { // RFC 5322 §2.2.3: a folded continuation
				value.WriteByte(' ')
				value.Write(line)
			}
			continue
		}
		flush()
		n, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(string(n)))
		value.Write(v)
	}
	flush()

	h := sha256.New()
	for i, values := range fields {
		for _, v := range values {
			fmt.Fprintf(h, "%d:%s\n", i, v)
		}
	}
	h.Write([]byte("\n"))
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\r\n"))
		if i < 0 {
			h.Write(body)
			break
		}
		h.Write(body[:i])
		h.Write([]byte("\n"))
		body = body[i+2:]
	}
	return hex.EncodeToString(h.Sum(nil))
}

// splitHeader splits raw at the empty line that ends the header (RFC 5322 §2.1); without
// one, all of raw is header.
func splitHeader(raw []byte) (header, body []byte) {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return nil, raw[2:]
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return nil, raw[1:]
	}
	crlf := bytes.Index(raw, []byte("\n\r\n"))
	lf := bytes.Index(raw, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return raw[:crlf+1], raw[crlf+3:]
	case lf >= 0:
		return raw[:lf+1], raw[lf+2:]
	}
	return raw, nil
}

// secondKey returns the Message-ID (cleaned, as stored) and content hash of an inbound
// message, or "", "" when the second dedup key does not apply: no Message-ID (or an
// empty one, "<>"), or one too long to be real.
func secondKey(m store.Message, raw []byte) (messageID, hash string) {
	id := clean(m.MessageID)
	if id == "" || len(id) > maxHeaderIDLen {
		return "", ""
	}
	return id, contentHash(raw)
}

// sameEmail looks up the stored inbound message with the same Message-ID and content hash
// and returns the ids of it, its conversation and the conversation's latest work item.
func (s *Store) sameEmail(ctx context.Context, tx runner, messageID, hash string) (store.IngestResult, bool, error) {
	res := store.IngestResult{Duplicate: true}
	err := tx.queryRow(ctx, `SELECT id, conversation_id FROM messages
		WHERE message_id = ? AND content_hash = ? AND content_hash <> ''`, messageID, hash).
		Scan(&res.MessageID, &res.ConversationID)
	if errors.Is(err, sql.ErrNoRows) {
		// Deleted by retention or erasure: the same email is not stored again. Its new
		// source is recorded with no message.
		var one int
		err = tx.queryRow(ctx, `SELECT 1 FROM erased_messages WHERE content_key = ?`, erasedKey(messageID, hash)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.IngestResult{}, false, nil
		}
		if err != nil {
			return store.IngestResult{}, false, fmt.Errorf("look up the same email among the erased: %w", err)
		}
		return store.IngestResult{Duplicate: true}, true, nil
	}
	if err != nil {
		return store.IngestResult{}, false, fmt.Errorf("look up the same email: %w", err)
	}
	if err := latestWorkItem(ctx, tx, &res); err != nil {
		return store.IngestResult{}, false, err
	}
	return res, true, nil
}

// latestWorkItem fills res.WorkItemID with the latest work item of res.ConversationID.
func latestWorkItem(ctx context.Context, tx runner, res *store.IngestResult) error {
	err := tx.queryRow(ctx, `SELECT id FROM work_items WHERE conversation_id = ? ORDER BY id DESC LIMIT 1`,
		res.ConversationID).Scan(&res.WorkItemID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("look up work item of stored copy: %w", err)
	}
	return nil
}

// addSource records (mailboxID, sourceID) as a source of message msgID, not yet
// acknowledged. A source recorded already is a unique violation (store.ErrConflict).
func (s *Store) addSource(ctx context.Context, tx runner, mailboxID int64, sourceID string, msgID int64, now time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO message_sources (mailbox_id, source_id, message_id, acked, created_at)
		VALUES (?, ?, ?, FALSE, ?)`, mailboxID, clean(sourceID), nullID(msgID), s.d.timeArg(now))
	return s.wrap(fmt.Sprintf("record source %q of mailbox %d", sourceID, mailboxID), err)
}

// forgetFailures removes the failure count of a source that is now stored.
func forgetFailures(ctx context.Context, tx runner, mailboxID int64, sourceID string) error {
	_, err := tx.exec(ctx, `DELETE FROM ingest_failures WHERE mailbox_id = ? AND source_id = ?`, mailboxID, clean(sourceID))
	if err != nil {
		return fmt.Errorf("forget failures of %q: %w", sourceID, err)
	}
	return nil
}

// RecordIngestFailure counts one more failed attempt to store (mailboxID, sourceID) and
// returns the count so far.
func (s *Store) RecordIngestFailure(ctx context.Context, mailboxID int64, sourceID, lastError string) (int, error) {
	if len(lastError) > maxFailureText {
		cut := maxFailureText
		for cut > 0 && !utf8.RuneStart(lastError[cut]) {
			cut--
		}
		lastError = lastError[:cut] + "…"
	}
	now := s.d.timeArg(s.now())
	var tries int
	err := s.w.queryRow(ctx, `INSERT INTO ingest_failures (mailbox_id, source_id, tries, last_error, first_at, last_at)
		VALUES (?, ?, 1, ?, ?, ?)
		ON CONFLICT (mailbox_id, source_id) DO UPDATE SET tries = ingest_failures.tries + 1,
			last_error = excluded.last_error, last_at = excluded.last_at
		RETURNING tries`, mailboxID, clean(sourceID), clean(lastError), now, now).Scan(&tries)
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("record failure to store %q of mailbox %d", sourceID, mailboxID), err)
	}
	return tries, nil
}
