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
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_target ON audit_log (account_id, target, id);

-- Retention deletes finished deliveries: their counts leave this backend's
-- shard like the status changes of 001's triggers.
CREATE FUNCTION fluxhook_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
BEGIN
    SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'delivering') AS delivering,
           count(*) FILTER (WHERE status = 'delivered') AS delivered,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'held') AS held
    INTO c FROM old_rows;
    IF c.pending = 0 AND c.delivering = 0 AND c.delivered = 0 AND c.failed = 0
       AND c.held = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO delivery_counts AS k (shard, pending, delivering, delivered, failed, held)
    VALUES (pg_backend_pid(), -c.pending, -c.delivering, -c.delivered, -c.failed, -c.held)
    ON CONFLICT (shard) DO UPDATE SET
        pending = k.pending + EXCLUDED.pending,
        delivering = k.delivering + EXCLUDED.delivering,
        delivered = k.delivered + EXCLUDED.delivered,
        failed = k.failed + EXCLUDED.failed,
        held = k.held + EXCLUDED.held;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_counts_delete();
