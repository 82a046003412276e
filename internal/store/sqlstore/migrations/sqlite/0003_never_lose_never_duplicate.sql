-- postroom schema, version 3 (SQLite): never lose, never duplicate.
-- The second dedup key (Message-ID plus a content hash), the sources of each message (one
-- email may arrive through several mailboxes, or again after an IMAP UIDVALIDITY change)
-- and the count of failed attempts to store a message (poison messages are quarantined
-- after a few).

-- Hex SHA-256 of the message's content (sqlstore's contentHash); '' for outbound messages,
-- quarantined ones and messages stored before version 3.
ALTER TABLE messages ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
-- The second dedup key (DESIGN.md invariants 2 and 8): one stored inbound message per
-- Message-ID and content.
CREATE UNIQUE INDEX messages_content ON messages (message_id, content_hash) WHERE content_hash <> '';

-- Every (mailbox, source id) a message was fetched through: the first one (also in
-- messages.source_id) and those linked to it later. The dedup key of DESIGN.md invariant 2,
-- and the acknowledgement state of each source.
CREATE TABLE message_sources (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    source_id  TEXT    NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    acked      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_sources_source ON message_sources (mailbox_id, source_id);
CREATE INDEX message_sources_message ON message_sources (message_id);
CREATE INDEX message_sources_pending ON message_sources (mailbox_id, id) WHERE acked = FALSE;
INSERT INTO message_sources (mailbox_id, source_id, message_id, acked, created_at)
SELECT mailbox_id, source_id, id, acked, created_at FROM messages
WHERE source_id <> '' ORDER BY id;
-- The acknowledgement state moved to message_sources.
DROP INDEX messages_pending_ack;
ALTER TABLE messages DROP COLUMN acked;

-- Failed attempts to store a message; the row goes when the message is stored (or
-- quarantined after too many tries).
CREATE TABLE ingest_failures (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    source_id  TEXT    NOT NULL,
    tries      INTEGER NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, source_id)
);
