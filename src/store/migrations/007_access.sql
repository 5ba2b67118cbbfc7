-- Access (issue 11): keys gain a kind (an API key, or an OAuth client whose
-- secret authenticates only at /oauth/token), scopes ('' = every scope of
-- the account, as for the keys made before this version), an expiry, when
-- they were last used, and the hash of the secret they replaced during a
-- rotation's grace period.
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'key'
    CHECK (kind IN ('key', 'client'));
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN prev_hash TEXT;
ALTER TABLE api_keys ADD COLUMN prev_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX api_keys_prev_hash ON api_keys (prev_hash) WHERE prev_hash IS NOT NULL;

-- OAuth access and refresh tokens, portal links and portal sessions; only
-- the hex SHA-256 of a token is kept. A family is every token issued from
-- one grant (a client-credentials grant and its refreshes, or one portal
-- link): a refresh token used twice revokes its whole family.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh', 'portal_link', 'portal_session')),
    hash TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    client_id TEXT NOT NULL DEFAULT '', -- '' for portal tokens
    family TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER NOT NULL DEFAULT 0,   -- a refresh token or portal link: when spent
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_family ON tokens (family);
CREATE INDEX tokens_client ON tokens (client_id) WHERE client_id <> '';
