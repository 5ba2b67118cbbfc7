-- Endpoint secrets are sealed at rest with a master key kept outside the
-- database (AES-256-GCM, "fhk1.<key id>.<base64>"); the server seals the
-- clear-text ones of older versions at its first start with a key. This one
-- row holds a value sealed with the master key, so that a server given a
-- wrong key refuses to start instead of failing at each delivery.
CREATE TABLE master_key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value TEXT NOT NULL
);

-- The audit log: who changed what, and when. actor is the credential's id
-- (key_..., or a token's or portal session's); details a small JSON object of
-- the changed fields, never a secret.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY, -- "aud_...", sorts by time
    account_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_target ON audit_log (account_id, target, id);
