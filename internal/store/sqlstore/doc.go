// Package sqlstore is the one implementation of store.Store over database/sql, shared by
// the SQLite engine (internal/store/sqlite) and the PostgreSQL engine
// (internal/store/postgres). The engines differ only in a small Dialect: placeholder style
// (? or $n), how a time is stored, row locking, how a unique violation is recognised, and
// which embedded migrations apply. The SQL is plain and sits beside each method, one file
// per table or entity.
//
// Invariants a change must keep:
//
//   - IngestMessage and CreateReply do all their writes in ONE transaction: the raw message,
//     the parsed message, attachments, the conversation, the work item, the cursor and the
//     auto-reply with its outbox row (or the outbound message, the outbox row, the work
//     item's state and the audit event).
//     Inside a transaction every statement goes through the transaction, never the pool:
//     the SQLite writer pool has exactly one connection and would deadlock.
//   - Times are stored in UTC with microsecond precision on both engines (SQLite: INTEGER
//     unix microseconds; PostgreSQL: timestamptz, which keeps microseconds). A zero
//     time.Time is stored as NULL and read back as the zero time.
//   - Text that comes from outside (parsed email fields, error texts) is made valid UTF-8
//     without NUL bytes before it is stored, because PostgreSQL refuses both; SQLite gets
//     the same cleaned text so that both engines return the same thing.
//   - Every message is indexed for full-text search in the transaction that stores it
//     (insertMessage: inbound messages, auto-replies and agents' replies alike). The words
//     are cut and lowered in Go and given to the engines as words (FTS5 on SQLite, a
//     tsvector with a GIN index on PostgreSQL), and a user's search is turned into a
//     query of its words only, so both engines match exactly the same rows and no input
//     is ever query syntax (search.go).
//   - Missing rows are store.ErrNotFound and unique violations store.ErrConflict, both
//     wrapped with the operation.
//
// Choices documented here because callers see them:
//
//   - DeleteMailbox is a soft delete: the row gets deleted_at (and is disabled, not
//     default, in no queue) so that its messages, conversations, work items and outbox rows
//     keep pointing at it and listings still show its name; its secrets, cursor and From
//     addresses are removed. Every mailbox lookup and listing skips deleted rows (they are
//     store.ErrNotFound), IngestMessage refuses them, and the name is unique only among
//     mailboxes not deleted (a partial unique index on both engines).
//   - UpdatedAt of a mailbox moves on every change of its settings or enabled flag (the
//     ingest supervisor restarts a loop when it does), but not on SetMailboxStatus.
//     SetAllMailboxesEnabled and SetQueueEnabled bump only the mailboxes whose flag changes.
//   - AssignMailbox locks the queue row before the mailbox row, as SetQueueEnabled does.
//   - Migration 0002 creates the Default queue and assigns every existing inbound mailbox
//     to it (enabled flags unchanged), and gives existing IMAP mailboxes the after-action
//     mark_read (what version 1 did). On SQLite it rebuilds the mailboxes table; SQLite
//     migrations therefore run with foreign keys off and PRAGMA foreign_key_check before
//     commit.
//   - From addresses are unique per mailbox by a lowered column written by Go.
//   - An auto-reply (InboundMessage.AutoReply) is an outbound message of the inbound
//     message's conversation with its Message-ID registered for threading, queued due now
//     for the inbound message's work item; the work item's state is not changed.
//   - CountMessagesSince counts inbound messages only (what was ingested).
//   - SessionByTokenHash returns expired sessions too; the caller checks ExpiresAt.
//   - A message whose own Message-ID, In-Reply-To or References names a stored message
//     joins that message's conversation (own Message-ID first, then In-Reply-To, then
//     References from the most recent). The own Message-ID puts a message that reuses a
//     stored Message-ID with other content into the stored one's conversation and work item.
//   - Every (mailbox, source id) a message was fetched through is a row of message_sources
//     (unique per mailbox and source id), with its own acknowledgement flag: the dedup key
//     of DESIGN.md invariant 2. messages.source_id keeps the first one (Message.SourceID).
//   - The second dedup key (DESIGN.md invariants 2 and 8) is the Message-ID plus a content
//     hash, unique among inbound messages (a partial unique index, so two nodes racing
//     to store the same email conflict and the loser links). The hash (contentHash) is
//     SHA-256 over the header fields the sender wrote and the body, NOT over the raw
//     bytes: the copy To one of our mailboxes and the copy Cc another carry different
//     trace fields (Received, Delivered-To, Return-Path, spam verdicts) added by the
//     receiving servers, and a hash of the raw bytes would never match in real life. A
//     message without a Message-ID, with "<>", or with one over 998 octets has no second
//     key and is always stored. A new (mailbox, source id) matching a stored message is
//     linked to it (IngestResult.Linked: a message_sources row and the cursor are written,
//     no message, no work item, no auto-reply).
//   - WorkItem.Mailboxes lists the mailboxes of every source of every message of the work
//     item's conversation: the work item's own mailbox first, then by first arrival.
//   - ingest_failures counts failed attempts per (mailbox, source id); IngestMessage of the
//     source deletes its row (the caller quarantines after a bound, DESIGN.md invariant 7).
//   - Migration 0003 fills message_sources from messages, moves the acknowledgement flag
//     there (messages.acked is dropped) and leaves content_hash empty on older messages
//     (they are not matched by the second key).
//   - When a new message reuses a work item that was "replied", the work item is "new"
//     again and its ReceivedAt is the new message's arrival, so it rises to the top of the
//     listing; a "new" or "open" work item keeps its state and ReceivedAt.
//   - Setting IsDefault on a mailbox clears it on every other mailbox: there is at most one
//     default outbound mailbox.
//   - MarkOutboxSent counts the successful attempt (attempts + 1).
//   - Migration 0009 drops messages.search_text (the LIKE search) and, in Go, indexes
//     every message stored before it; a migration's Go half is found by its file name's
//     description (migrationStep).
//   - A work item matches a search when any message of its conversation matches.
//   - PollInterval is stored in milliseconds.
//   - IngestMessages stores a batch in one transaction, each message as IngestMessage
//     would; each mailbox's cursor is written once, the last message's (they come in
//     source order).
//   - Statements are prepared once per pool and connection and reused (stmtcache.go); a
//     statement first met inside a transaction runs unprepared that once, because
//     preparing needs a free connection and SQLite's writer pool has only the one the
//     transaction holds. Migrations run unprepared, and Migrate drops what was prepared.
//   - Content larger than chunkSize (256 KiB) is written in chunks (migration 0005): the
//     raw source of an inbound message and every attachment, the first chunk in
//     raw_messages.data or attachments.data, the others in raw_message_chunks or
//     attachment_chunks by seq. An outbound message's raw source stays whole in
//     raw_messages.data, where the outbox reads it. An attachment given as a stream
//     (Attachment.Open) is read one chunk at a time into the database, never whole; its
//     stored size is what the stream gave.
//   - Retention and erasure (privacy.go, migration 0013) delete messages but keep their
//     sources: message_sources.message_id becomes NULL (ON DELETE SET NULL), so the
//     (mailbox, source id) stays a duplicate, acknowledgeable and skipped by POP3 and
//     Graph (MessageBySource gives ID 0). The second dedup key of each deleted inbound
//     message stays as SHA-256(Message-ID, content hash) in erased_messages: the same
//     email through a new source identity is linked to nothing and not stored again.
//     Anonymising keeps the rows, Message-IDs and content hashes and sets
//     conversations.anonymised_at.
//   - The audit search (SearchAudit) is a case-insensitive LIKE over action, actor,
//     object, old and new value, with %, _ and \ escaped and the text cut at 200 bytes.
package sqlstore
