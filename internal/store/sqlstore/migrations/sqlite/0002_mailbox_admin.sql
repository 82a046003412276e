-- postroom schema, version 2 (SQLite): mailbox administration.
-- Queues, From addresses, after-processing actions, over-size messages and soft-deleted
-- mailboxes. SQLite cannot drop the inline UNIQUE on mailboxes.name, so the table is
-- rebuilt (https://sqlite.org/lang_altertable.html#otheralter); the migration runner turns
-- foreign keys off around this transaction and runs PRAGMA foreign_key_check before it
-- commits.

CREATE TABLE queues (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at INTEGER NOT NULL
);
-- The queue that always exists; existing inbound mailboxes are assigned to it below, so
-- that what ran before the upgrade keeps running (enabled iff assigned to an enabled queue).
INSERT INTO queues (name, enabled, created_at) VALUES ('Default', TRUE, unixepoch() * 1000000);

CREATE TABLE mailboxes_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    direction        TEXT    NOT NULL,
    protocol         TEXT    NOT NULL,
    address          TEXT    NOT NULL DEFAULT '',
    host             TEXT    NOT NULL DEFAULT '',
    port             INTEGER NOT NULL DEFAULT 0,
    security         TEXT    NOT NULL DEFAULT '',
    login            TEXT    NOT NULL DEFAULT '',
    folder           TEXT    NOT NULL DEFAULT '',
    after_action     TEXT    NOT NULL DEFAULT '',
    move_folder      TEXT    NOT NULL DEFAULT '',
    queue_id         INTEGER REFERENCES queues (id),
    max_size_mb      INTEGER NOT NULL DEFAULT 0,
    poll_interval_ms INTEGER NOT NULL DEFAULT 0,
    enabled          BOOLEAN NOT NULL DEFAULT FALSE,
    is_default       BOOLEAN NOT NULL DEFAULT FALSE,
    status           TEXT    NOT NULL DEFAULT 'unknown',
    status_message   TEXT    NOT NULL DEFAULT '',
    status_at        INTEGER,
    last_ok_at       INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- set by DeleteMailbox: the row stays for the messages and work items that name it
    deleted_at       INTEGER
);
INSERT INTO mailboxes_new (id, name, direction, protocol, address, host, port, security,
    login, folder, after_action, queue_id, max_size_mb, poll_interval_ms, enabled,
    is_default, status, status_message, status_at, last_ok_at, created_at, updated_at)
SELECT id, name, direction, protocol, address, host, port, security, login, folder,
    -- version 1 marked ingested IMAP messages \Seen
    CASE WHEN direction = 'inbound' AND protocol = 'imap' THEN 'mark_read' ELSE '' END,
    CASE WHEN direction = 'inbound' THEN (SELECT id FROM queues WHERE name = 'Default') END,
    max_size_mb, poll_interval_ms, enabled, is_default, status, status_message, status_at,
    last_ok_at, created_at, updated_at
FROM mailboxes;
-- Keep the AUTOINCREMENT high-water mark: ids of deleted mailboxes are never reused.
DELETE FROM sqlite_sequence WHERE name = 'mailboxes_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'mailboxes_new', seq FROM sqlite_sequence WHERE name = 'mailboxes';
DROP TABLE mailboxes;
ALTER TABLE mailboxes_new RENAME TO mailboxes;
-- A deleted mailbox's name is free for a new one.
CREATE UNIQUE INDEX mailboxes_name ON mailboxes (name) WHERE deleted_at IS NULL;
CREATE INDEX mailboxes_queue ON mailboxes (queue_id);

CREATE TABLE from_addresses (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    address       TEXT    NOT NULL,
    -- lower(address), written by the application (strings.ToLower) for uniqueness
    address_lower TEXT    NOT NULL,
    display_name  TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX from_addresses_address ON from_addresses (mailbox_id, address_lower);

ALTER TABLE messages ADD COLUMN over_size BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE work_items ADD COLUMN over_size BOOLEAN NOT NULL DEFAULT FALSE;
-- CountMessagesSince (messages ingested today).
CREATE INDEX messages_mailbox_created ON messages (mailbox_id, created_at);
-- ListAuditFor.
CREATE INDEX audit_events_object ON audit_events (object, at DESC, id DESC);
