-- postroom schema, version 1 (SQLite).
-- Times are INTEGER unix microseconds in UTC, NULL for "never". Booleans are 0/1.
-- AUTOINCREMENT keeps ids from being reused after a delete (audit events name objects by id).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE mailboxes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    direction        TEXT    NOT NULL,
    protocol         TEXT    NOT NULL,
    address          TEXT    NOT NULL DEFAULT '',
    host             TEXT    NOT NULL DEFAULT '',
    port             INTEGER NOT NULL DEFAULT 0,
    security         TEXT    NOT NULL DEFAULT '',
    login            TEXT    NOT NULL DEFAULT '',
    folder           TEXT    NOT NULL DEFAULT '',
    max_size_mb      INTEGER NOT NULL DEFAULT 0,
    poll_interval_ms INTEGER NOT NULL DEFAULT 0,
    enabled          BOOLEAN NOT NULL DEFAULT FALSE,
    is_default       BOOLEAN NOT NULL DEFAULT FALSE,
    status           TEXT    NOT NULL DEFAULT 'unknown',
    status_message   TEXT    NOT NULL DEFAULT '',
    status_at        INTEGER,
    last_ok_at       INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE credentials (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    secret     BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, name)
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    subject    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_mailbox ON conversations (mailbox_id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id),
    direction       TEXT    NOT NULL,
    source_id       TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL DEFAULT '',
    in_reply_to     TEXT    NOT NULL DEFAULT '',
    refs            TEXT    NOT NULL DEFAULT '[]',
    subject         TEXT    NOT NULL DEFAULT '',
    from_name       TEXT    NOT NULL DEFAULT '',
    from_addr       TEXT    NOT NULL DEFAULT '',
    to_list         TEXT    NOT NULL DEFAULT '',
    cc_list         TEXT    NOT NULL DEFAULT '',
    reply_to        TEXT    NOT NULL DEFAULT '',
    date            INTEGER,
    text_body       TEXT    NOT NULL DEFAULT '',
    html_body       TEXT    NOT NULL DEFAULT '',
    size            INTEGER NOT NULL DEFAULT 0,
    unparsed        BOOLEAN NOT NULL DEFAULT FALSE,
    parse_error     TEXT    NOT NULL DEFAULT '',
    acked           BOOLEAN NOT NULL DEFAULT FALSE,
    -- lower(subject + from name + from address), written by the application for search
    search_text     TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
-- The dedup key (DESIGN.md invariant 2); outbound messages have no source id.
CREATE UNIQUE INDEX messages_source ON messages (mailbox_id, source_id) WHERE source_id <> '';
CREATE INDEX messages_conversation ON messages (conversation_id);
CREATE INDEX messages_pending_ack ON messages (mailbox_id, id) WHERE acked = FALSE AND source_id <> '';

CREATE TABLE raw_messages (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    data       BLOB    NOT NULL
);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    filename     TEXT    NOT NULL DEFAULT '',
    content_type TEXT    NOT NULL DEFAULT '',
    content_id   TEXT    NOT NULL DEFAULT '',
    is_inline    BOOLEAN NOT NULL DEFAULT FALSE,
    size         INTEGER NOT NULL DEFAULT 0,
    data         BLOB    NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Message-ID header -> conversation, for threading; inbound and outbound messages.
CREATE TABLE message_ids (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    header_id       TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE
);
CREATE INDEX message_ids_header ON message_ids (header_id, id);

CREATE TABLE work_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id),
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    state           TEXT    NOT NULL,
    unparsed        BOOLEAN NOT NULL DEFAULT FALSE,
    assigned_to     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    received_at     INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX work_items_received ON work_items (received_at DESC, id DESC);
CREATE INDEX work_items_conversation ON work_items (conversation_id, id);
CREATE INDEX work_items_state ON work_items (state, received_at DESC);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id),
    work_item_id    INTEGER REFERENCES work_items (id),
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    from_addr       TEXT    NOT NULL,
    recipients      TEXT    NOT NULL DEFAULT '[]',
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_work_item ON outbox (work_item_id);

CREATE TABLE cursors (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    object    TEXT    NOT NULL DEFAULT '',
    old_value TEXT    NOT NULL DEFAULT '',
    new_value TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at DESC, id DESC);
