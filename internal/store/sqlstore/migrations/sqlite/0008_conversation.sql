-- The conversation beyond one reply: automatic mail marked on its message, Bcc and the
-- author of sent messages, internal notes with mentions, and addresses that bounce.

-- Why a program wrote the message (message.Automatic), '' when a person did.
ALTER TABLE messages ADD COLUMN automatic TEXT NOT NULL DEFAULT '';
-- Blind copies of an outbound message: kept for the agent, never in the sent header.
ALTER TABLE messages ADD COLUMN bcc_list TEXT NOT NULL DEFAULT '';
-- The agent who wrote an outbound message (NULL: postroom itself).
ALTER TABLE messages ADD COLUMN author_id INTEGER REFERENCES users (id) ON DELETE SET NULL;

-- Internal notes on a work item's conversation: never sent.
CREATE TABLE notes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    work_item_id INTEGER NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    author_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX notes_work_item ON notes (work_item_id, id);

-- The colleagues a note mentions (@username): they see it in My work.
CREATE TABLE note_mentions (
    note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (note_id, user_id)
);
CREATE INDEX note_mentions_user ON note_mentions (user_id, note_id);

-- Addresses a delivery status notification reported as failing.
CREATE TABLE address_bounces (
    address    TEXT    PRIMARY KEY,
    status     TEXT    NOT NULL DEFAULT '',
    diagnostic TEXT    NOT NULL DEFAULT '',
    bounces    INTEGER NOT NULL DEFAULT 0,
    last_at    INTEGER NOT NULL
);
