package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

// Full-text search (migration 0008). Every message has one row in message_search: its
// search document, the distinct words of its subject, sender name and address, To and Cc
// lists and text body (for HTML-only mail the text the parser derived from the HTML).
// SQLite keeps it in an FTS5 table (rowid = message id), PostgreSQL as a tsvector with a
// GIN index; both keep the message's conversation beside it, since a search selects work
// items by conversation.
//
// The words are cut and lowered here, in Go, for both engines, and handed to them as
// words: SQLite's unicode61 tokenizer is told that letters, marks and digits (the
// categories searchTokens keeps) make up words, so it splits a document exactly where
// searchTokens joined it, and PostgreSQL gets the words as lexemes (array_to_tsvector; a
// query is a tsquery literal) without its text parser, which would otherwise keep
// "bob@example.com" as one token and depend on the database's locale for case folding.
// Both engines therefore match the same rows. The choice is language-neutral: no
// stemming and no stop words (PostgreSQL's 'simple' configuration would do the same, but
// through its parser), so a word is found in any language written with spaces between
// words; Chinese, Japanese and Korean text, written without them, is indexed as single
// characters and pairs of adjacent characters (as Lucene's CJK bigrams do), so that a
// word of any length inside a run of such text is found. Accents are kept ("café" does
// not find "cafe").

const (
	// maxTokenBytes bounds one word of the index: longer ones (base64 runs, long
	// identifiers) are cut to their first maxTokenBytes bytes, so that a prefix search
	// still finds them. PostgreSQL refuses lexemes over 2046 bytes.
	maxTokenBytes = 100
	// maxSearchDocBytes bounds a message's search document (its distinct words joined by
	// spaces): the words after it are not indexed. PostgreSQL refuses a tsvector over
	// 1 MiB; 256 KiB of distinct words is far more than any real message has.
	maxSearchDocBytes = 256 << 10
	// searchBatch is how many messages the migration indexes per round trip.
	searchBatch = 500
)

// isWordRune reports whether r belongs to a word: a letter, a mark (the vowel signs of
// Indic scripts are marks), a digit or a private-use character. SQLite's tokenizer is
// configured with the same categories (L* M* N* Co).
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf { // most mail is ASCII: no table lookups for it
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r)
}

// isUnspacedRune reports whether r is of a script written without spaces between words
// (Han, Hiragana, Katakana, Hangul), indexed per character and per pair of characters.
func isUnspacedRune(r rune) bool {
	if r < 0x1100 { // below Hangul Jamo, the first of these scripts
		return false
	}
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// searchTokens calls emit with the lowered words of s in order (repeated words are
// emitted again). A run of unspaced script gives each character and each pair of
// adjacent characters.
func searchTokens(s string, emit func(string)) {
	s = strings.ToLower(clean(s))
	start := -1 // start of the current run of word runes
	unspaced := false
	flush := func(end int) {
		if start < 0 {
			return
		}
		word := s[start:end]
		start = -1
		if !unspaced {
			emit(cutToken(word))
			return
		}
		prev := ""
		for _, r := range word {
			ch := string(r)
			emit(ch)
			if prev != "" {
				emit(prev + ch)
			}
			prev = ch
		}
	}
	for i, r := range s {
		switch {
		case !isWordRune(r):
			flush(i)
		case start < 0:
			start, unspaced = i, isUnspacedRune(r)
		case isUnspacedRune(r) != unspaced && !unicode.IsMark(r):
			// A change of script between spaced and unspaced text ends a word.
			flush(i)
			start, unspaced = i, isUnspacedRune(r)
		}
	}
	flush(len(s))
}

// cutToken shortens a word to maxTokenBytes, at a character boundary.
func cutToken(w string) string {
	if len(w) <= maxTokenBytes {
		return w
	}
	n := maxTokenBytes
	for n > 0 && !utf8.RuneStart(w[n]) {
		n--
	}
	return w[:n]
}

// searchDoc is the search document of m: its distinct words, joined by single spaces, up
// to maxSearchDocBytes.
func searchDoc(m store.Message) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, field := range []string{m.Subject, m.FromName, m.FromAddr, m.To, m.Cc, m.TextBody} {
		searchTokens(field, func(w string) {
			if seen[w] || b.Len()+len(w)+1 > maxSearchDocBytes {
				return
			}
			seen[w] = true
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(w)
		})
	}
	return b.String()
}

// searchQuery turns what a user typed into the engine's query: every word must occur in
// the message (in any field), the last one as a prefix when it has two bytes or more
// (the user may still be typing it). Everything but the words is ignored, so quotes,
// operators (AND, OR, NOT, NEAR, -, *, :, parentheses) and column filters are plain text,
// never syntax. ok is false when q has no word: such a search matches nothing.
func (d Dialect) searchQuery(q string) (query string, ok bool) {
	var words []string
	seen := map[string]bool{}
	searchTokens(q, func(w string) {
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	})
	if len(words) == 0 {
		return "", false
	}
	terms := make([]string, len(words))
	for i, w := range words {
		prefix := i == len(words)-1 && len(w) >= 2
		// Words hold only letters, marks and digits: never a quote of either syntax.
		if d.name == "postgres" {
			// A tsquery literal: 'word' & 'word':* (lexemes as given, no parser).
			terms[i] = "'" + w + "'"
			if prefix {
				terms[i] += ":*"
			}
		} else {
			// An FTS5 query: "word" "word"* (implicit AND of quoted strings).
			terms[i] = `"` + w + `"`
			if prefix {
				terms[i] += "*"
			}
		}
	}
	if d.name == "postgres" {
		return strings.Join(terms, " & "), true
	}
	return strings.Join(terms, " "), true
}

// searchConversations is a subquery that gives the conversations of the messages matching
// the search query bound to its one placeholder (built by searchQuery). The index keeps
// each message's conversation, so that a search that matches most messages does not
// read the messages table once per match.
func (d Dialect) searchConversations() string {
	if d.name == "postgres" {
		return `SELECT conversation_id FROM message_search WHERE doc @@ CAST(? AS tsquery)`
	}
	return `SELECT conversation_id FROM message_search WHERE message_search MATCH ?`
}

// denseMatches is how many matching messages make a search dense (denseSearch).
const denseMatches = 1000

// denseSearch reports whether the search q matches more than denseMatches messages on
// SQLite, whose planner has no statistics to tell. For such a search, a page of the
// newest work items is found fastest by walking the work items newest first and checking
// each (the walk stops after a page); for a rarer one, by reading the matches through
// the conversation index and sorting them. Measured on 100,000 messages with a word in
// every one: about 100 ms instead of 350 ms; a rare word stays under a millisecond.
// PostgreSQL's planner makes this choice itself from the table statistics.
func (s *Store) denseSearch(ctx context.Context, q string) (bool, error) {
	query, ok := s.d.searchQuery(q)
	if !ok || s.d.name == "postgres" {
		return false, nil
	}
	var n int
	err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM message_search WHERE message_search MATCH ? LIMIT ?)`,
		query, denseMatches+1).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count search matches: %w", err)
	}
	return n > denseMatches, nil
}

// indexMessage writes the search document of message id of conversation convID.
func (s *Store) indexMessage(ctx context.Context, tx runner, id, convID int64, doc string) error {
	var err error
	if s.d.name == "postgres" {
		// string_to_array('', ' ') is the empty array: an empty document is an empty
		// tsvector. Words are never empty and hold no space.
		_, err = tx.exec(ctx, `INSERT INTO message_search (message_id, conversation_id, doc)
			VALUES (?, ?, array_to_tsvector(string_to_array(?, ' ')))`, id, convID, doc)
	} else {
		_, err = tx.exec(ctx, `INSERT INTO message_search (rowid, conversation_id, doc) VALUES (?, ?, ?)`, id, convID, doc)
	}
	if err != nil {
		return fmt.Errorf("index message %d for search: %w", id, err)
	}
	return nil
}

// indexAllMessages writes the search document of every message, in batches of
// searchBatch, oldest first: the Go half of migration 0008 (the words are cut in Go, see
// above), run in the migration's transaction. Then the index is made ready for queries:
// SQLite merges the FTS5 segments the batches wrote into one, PostgreSQL gathers the new
// table's statistics, without which its planner can pick a nested loop that rescans the
// index once per work item.
func (s *Store) indexAllMessages(ctx context.Context, tx runner) error {
	if err := s.indexMessagesAfter(ctx, tx, 0); err != nil {
		return err
	}
	finish := `INSERT INTO message_search (message_search) VALUES ('optimize')`
	if s.d.name == "postgres" {
		finish = `ANALYZE message_search`
	}
	if _, err := tx.exec(ctx, finish); err != nil {
		return fmt.Errorf("prepare the search index: %w", err)
	}
	return nil
}

// indexMessagesAfter indexes the messages whose id is above after.
func (s *Store) indexMessagesAfter(ctx context.Context, tx runner, after int64) error {
	for {
		rows, err := tx.query(ctx, `SELECT id, conversation_id, subject, from_name, from_addr, to_list, cc_list, text_body
			FROM messages WHERE id > ? ORDER BY id LIMIT ?`, after, searchBatch)
		if err != nil {
			return fmt.Errorf("read messages to index: %w", err)
		}
		type doc struct {
			id, conv int64
			doc      string
		}
		var docs []doc
		for rows.Next() {
			var m store.Message
			if err := rows.Scan(&m.ID, &m.ConversationID, &m.Subject, &m.FromName, &m.FromAddr, &m.To, &m.Cc, &m.TextBody); err != nil {
				rows.Close()
				return fmt.Errorf("read messages to index: %w", err)
			}
			docs = append(docs, doc{m.ID, m.ConversationID, searchDoc(m)})
		}
		err = rows.Err()
		rows.Close() // a PostgreSQL connection runs one statement at a time
		if err != nil {
			return fmt.Errorf("read messages to index: %w", err)
		}
		if len(docs) == 0 {
			return nil
		}
		for _, d := range docs {
			if err := s.indexMessage(ctx, tx, d.id, d.conv, d.doc); err != nil {
				return err
			}
		}
		after = docs[len(docs)-1].id
	}
}
