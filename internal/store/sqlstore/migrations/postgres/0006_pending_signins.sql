-- postroom schema, version 6 (PostgreSQL): delegated sign-ins in progress ("Sign in with
-- Microsoft"), between the button and the provider's callback, kept here instead of in the
-- memory of the node that started them, so that any node can finish one (once) and a
-- restart loses none. state_hash is the SHA-256 (hex) of the OAuth state, which travels in
-- URLs; verifier is the PKCE code_verifier sealed by the vault; session_hash is the token
-- hash of the admin's session that started the sign-in. Expired rows are deleted when a
-- sign-in is started.
CREATE TABLE pending_signins (
    state_hash   TEXT        PRIMARY KEY,
    session_hash TEXT        NOT NULL,
    mailbox_id   BIGINT      NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    verifier     BYTEA       NOT NULL,
    redirect_uri TEXT        NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX pending_signins_mailbox ON pending_signins (mailbox_id);
CREATE INDEX pending_signins_expires ON pending_signins (expires_at);
