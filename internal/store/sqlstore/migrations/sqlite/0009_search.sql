-- postroom schema, version 9 (SQLite): full-text search and saved views.
--
-- message_search is the search index of messages: one row per message (rowid = the
-- message's id) holding its search document, the distinct lowered words of its subject,
-- sender, To and Cc lists and text body, cut by the application (sqlstore/search.go),
-- which also fills it for the messages stored before this version, in this migration's
-- transaction. Contentless (the words are not stored twice), with deletes allowed; the
-- message's conversation is kept beside the words (UNINDEXED, stored), so that a search
-- gives conversations without reading the messages table. (SQLite 3.54 leaves the
-- shadow table message_search_content behind when such a table is dropped: a later
-- migration that drops message_search must drop message_search_content too.)
-- The tokenizer splits only where the application joined: words are letters, marks and
-- digits, nothing is folded further (no diacritics removed), so that SQLite and
-- PostgreSQL match the same rows.
CREATE VIRTUAL TABLE message_search USING fts5 (
    doc,
    conversation_id UNINDEXED,
    content = '',
    contentless_delete = 1,
    contentless_unindexed = 1,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* M* N* Co'"
);
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;

-- The LIKE search of version 1 (lowered subject and sender) is replaced by the index.
ALTER TABLE messages DROP COLUMN search_text;

-- A user's saved work item list filters; shared ones are listed for everyone.
CREATE TABLE saved_views (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    filter     TEXT    NOT NULL DEFAULT '',
    shared     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX saved_views_name ON saved_views (user_id, name);
CREATE INDEX saved_views_shared ON saved_views (shared) WHERE shared;
