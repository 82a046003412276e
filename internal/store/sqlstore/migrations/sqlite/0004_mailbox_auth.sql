-- postroom schema, version 4 (SQLite): how a mailbox signs in.
-- auth_method is 'password' (every mailbox before version 4) or an OAuth 2.0 method
-- ('oauth_app', 'oauth_delegated', 'oauth_ropc'); the oauth_* columns hold the settings of
-- those methods (the secrets themselves live encrypted in credentials: client_secret,
-- client_certificate, refresh_token). graph_url is the Microsoft Graph host of a Graph
-- mailbox; secret_expires_at the client secret's expiry date the administrator recorded.
ALTER TABLE mailboxes ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE mailboxes ADD COLUMN oauth_provider TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_cloud TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_authority_url TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_token_url TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_authorize_url TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN oauth_account TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN graph_url TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN secret_expires_at INTEGER;
