-- Microsoft Graph change-notification subscriptions, kept in the database so that any node
-- can check a notification (POST /graph/notify/<mailbox id>) and hand it on with a wake-up
-- to the node that runs the mailbox's ingest loop, which makes and renews them.
--
-- id: Graph's subscription id; client_state_hash: the SHA-256 (hex) of the subscription's
-- random clientState, which itself is never stored; expires_at: when Graph ends it.
CREATE TABLE graph_subscriptions (
    id                TEXT        PRIMARY KEY,
    mailbox_id        BIGINT      NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    client_state_hash TEXT        NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX graph_subscriptions_mailbox ON graph_subscriptions (mailbox_id);
