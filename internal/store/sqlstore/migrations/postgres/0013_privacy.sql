-- Data protection: retention per queue, erasure of one customer's data, the audit log as a
-- page.

-- A message deleted by retention or erasure keeps its sources: the (mailbox, source id)
-- stays known, with a NULL message, so that the mailbox does not ingest it again.
ALTER TABLE message_sources ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE message_sources DROP CONSTRAINT message_sources_message_id_fkey;
ALTER TABLE message_sources ADD CONSTRAINT message_sources_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE SET NULL;

-- The second dedup key (Message-ID and content hash) of deleted inbound messages, as one
-- SHA-256 (hex): the same email fetched again through a new source identity (an IMAP
-- UIDVALIDITY change, another of our mailboxes) is recognised without keeping its id.
CREATE TABLE erased_messages (
    content_key TEXT        PRIMARY KEY,
    erased_at   TIMESTAMPTZ NOT NULL
);

-- When retention anonymised a conversation (NULL: never).
ALTER TABLE conversations ADD COLUMN anonymised_at TIMESTAMPTZ;

-- Retention finds the finished conversations of a queue.
CREATE INDEX work_items_retention ON work_items (queue_id, state, updated_at);

-- The audit log page filters by action and actor.
CREATE INDEX audit_events_action ON audit_events (action, at DESC, id DESC);
CREATE INDEX audit_events_actor ON audit_events (actor, at DESC, id DESC);
