-- Automatic messages (the acknowledgement of a new conversation, the over-size notice):
-- the templates an admin edits, and what was sent, for the rate limit that stops two
-- programs from answering each other for ever.

-- A template: queue_id 0 for a global one (the over-size notice), a queue's id for its
-- acknowledgements (one for open hours, one for closed hours, one for holidays).
CREATE TABLE auto_templates (
    queue_id   INTEGER NOT NULL DEFAULT 0,
    name       TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    subject    TEXT    NOT NULL DEFAULT '',
    body       TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, name)
);

-- One row per automatic message and recipient address.
CREATE TABLE auto_sent (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    address         TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,
    sent_at         INTEGER NOT NULL
);
CREATE INDEX auto_sent_address ON auto_sent (address, sent_at);
CREATE INDEX auto_sent_conversation ON auto_sent (conversation_id);
