-- Sessions a user can see and end, with idle and absolute timeouts; API tokens with
-- scopes, an expiry and the time of their last use.

-- A session gets a non-secret id (the token hash is a credential and never leaves the
-- store), the time it was last seen (updated at most once a minute), and where it came
-- from. The table is recreated to give it the id: the sessions open at the upgrade end,
-- and everyone signs in once more.
DROP TABLE sessions;
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    client_addr  TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Scopes: a JSON list ('[]': the owner's full role, as for tokens made before scopes).
-- expires_at NULL: never (tokens made before expiries).
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
