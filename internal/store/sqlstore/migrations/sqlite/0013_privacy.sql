-- Data protection: retention per queue, erasure of one customer's data, the audit log as a
-- page.

-- A message deleted by retention or erasure keeps its sources: the (mailbox, source id)
-- stays known, with a NULL message, so that the mailbox does not ingest it again. SQLite
-- cannot change a foreign key in place: the table is made anew.
CREATE TABLE message_sources_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    source_id  TEXT    NOT NULL,
    message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    acked      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL
);
INSERT INTO message_sources_new (id, mailbox_id, source_id, message_id, acked, created_at)
SELECT id, mailbox_id, source_id, message_id, acked, created_at FROM message_sources;
DELETE FROM sqlite_sequence WHERE name = 'message_sources_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'message_sources_new', seq FROM sqlite_sequence WHERE name = 'message_sources';
DROP TABLE message_sources;
ALTER TABLE message_sources_new RENAME TO message_sources;
CREATE UNIQUE INDEX message_sources_source ON message_sources (mailbox_id, source_id);
CREATE INDEX message_sources_message ON message_sources (message_id);
CREATE INDEX message_sources_pending ON message_sources (mailbox_id, id) WHERE acked = FALSE;

-- The second dedup key (Message-ID and content hash) of deleted inbound messages, as one
-- SHA-256 (hex): the same email fetched again through a new source identity (an IMAP
-- UIDVALIDITY change, another of our mailboxes) is recognised without keeping its id.
CREATE TABLE erased_messages (
    content_key TEXT    PRIMARY KEY,
    erased_at   INTEGER NOT NULL
);

-- When retention anonymised a conversation (NULL: never).
ALTER TABLE conversations ADD COLUMN anonymised_at INTEGER;

-- Retention finds the finished conversations of a queue.
CREATE INDEX work_items_retention ON work_items (queue_id, state, updated_at);

-- The audit log page filters by action and actor.
CREATE INDEX audit_events_action ON audit_events (action, at DESC, id DESC);
CREATE INDEX audit_events_actor ON audit_events (actor, at DESC, id DESC);

