-- postroom schema, version 5 (SQLite): large inbound messages and attachments are written
-- in chunks, so that no statement carries a whole 20 MB message (the driver and the engine
-- each copy a bound value and the record built from it). The first chunk stays where the
-- whole content was before (raw_messages.data, attachments.data); the others follow here
-- in order of seq, from 1. Rows written before version 5 have no chunks.
CREATE TABLE raw_message_chunks (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BLOB    NOT NULL
);
CREATE UNIQUE INDEX raw_message_chunks_seq ON raw_message_chunks (message_id, seq);

CREATE TABLE attachment_chunks (
    id            INTEGER PRIMARY KEY,
    attachment_id INTEGER NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    data          BLOB    NOT NULL
);
CREATE UNIQUE INDEX attachment_chunks_seq ON attachment_chunks (attachment_id, seq);
