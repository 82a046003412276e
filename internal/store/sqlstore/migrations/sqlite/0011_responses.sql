-- What agents write replies with: canned responses, signatures and drafts saved on the
-- server.

-- A canned response: queue_id 0 for a global one, else offered on that queue's items.
CREATE TABLE response_templates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id   INTEGER NOT NULL DEFAULT 0,
    name       TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (queue_id, name_lower)
);

-- A signature of a From address (address_lower set, queue_id 0) or of a queue
-- (queue_id set, address_lower '').
CREATE TABLE signatures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL DEFAULT '',
    address_lower TEXT NOT NULL DEFAULT '',
    queue_id      INTEGER NOT NULL DEFAULT 0,
    body          TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (address_lower, queue_id)
);

-- The reply a user is writing on a work item (cc and bcc: one entry a line).
CREATE TABLE reply_drafts (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    work_item_id INTEGER NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    body         TEXT NOT NULL DEFAULT '',
    cc           TEXT NOT NULL DEFAULT '',
    bcc          TEXT NOT NULL DEFAULT '',
    from_address TEXT NOT NULL DEFAULT '',
    reply_all    BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, work_item_id)
);
CREATE INDEX reply_drafts_work_item ON reply_drafts (work_item_id);
