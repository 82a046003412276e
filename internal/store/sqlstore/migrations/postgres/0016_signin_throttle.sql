-- postroom schema, version 13 (PostgreSQL): sign-in throttling and second factors.
--
-- signin_throttle counts the failed sign-ins of one key ("account:<name>" or
-- "address:<ip>") since its last quiet period, and holds the instant before which the
-- key's sign-ins are refused (the back-off and the lock). It is kept here, not in one
-- process's memory, so that a restart does not forgive an attacker and several nodes on one
-- database share it. Rows of names that do not exist are kept like the others (so that a
-- refusal does not tell whether a user exists) and pruned when quiet.
CREATE TABLE signin_throttle (
    key          TEXT        PRIMARY KEY,
    failures     INTEGER     NOT NULL,
    last_failure TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);
CREATE INDEX signin_throttle_last_failure ON signin_throttle (last_failure);

-- user_second_factors holds a user's TOTP secret (RFC 6238), sealed by the vault;
-- confirmed is false until the user entered a first code; last_step is the last 30-second
-- step whose code was accepted, so that a code is not accepted twice.
CREATE TABLE user_second_factors (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     BYTEA       NOT NULL,
    confirmed  BOOLEAN     NOT NULL DEFAULT FALSE,
    last_step  BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);
