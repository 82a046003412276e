-- postroom schema, version 5 (PostgreSQL): large inbound messages and attachments are
-- written in chunks, so that no statement carries a whole 20 MB message. The first chunk
-- stays where the whole content was before (raw_messages.data, attachments.data); the
-- others follow here in order of seq, from 1. Rows written before version 5 have no chunks.
CREATE TABLE raw_message_chunks (
    message_id BIGINT  NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BYTEA   NOT NULL,
    PRIMARY KEY (message_id, seq)
);

CREATE TABLE attachment_chunks (
    attachment_id BIGINT  NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    data          BYTEA   NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);
