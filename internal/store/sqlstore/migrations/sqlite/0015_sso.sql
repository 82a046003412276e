-- postroom schema (SQLite): single sign-on for staff (internal/sso).
-- sso_signins are OpenID Connect sign-ins between the "Sign in with ..." button and the
-- provider's callback, kept here so that any node can finish one, once. state_hash and
-- nonce_hash are SHA-256 (hex) of the state and nonce, which travel in URLs; browser_hash
-- is the SHA-256 of the random value in the browser's cookie that binds the sign-in to the
-- browser that started it; verifier is the PKCE code_verifier sealed by the vault.
CREATE TABLE sso_signins (
    state_hash   TEXT    PRIMARY KEY,
    browser_hash TEXT    NOT NULL,
    nonce_hash   TEXT    NOT NULL,
    verifier     BLOB    NOT NULL,
    issuer       TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    next         TEXT    NOT NULL DEFAULT '',
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX sso_signins_expires ON sso_signins (expires_at);
-- user_identities links a user to their account at an identity provider: the issuer and
-- the provider's stable id of the person (Entra ID: the object id oid; others: sub).
CREATE TABLE user_identities (
    issuer     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);
