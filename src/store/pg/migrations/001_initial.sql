-- The PostgreSQL schema: the same tables as the SQLite one (ids TEXT, times
-- BIGINT milliseconds since the epoch, 0 for none, bodies BYTEA, statuses
-- TEXT names), so both backends hold the same data in the same shape. Rows
-- are never deleted: an endpoint is deleted by setting deleted_at.
--
-- Several fluxhook processes on several hosts share these tables. Rows that
-- every transaction would write (a global counter, a parent row locked by
-- foreign-key checks) are avoided: deliveries and events do not reference
-- their account or endpoint by a foreign key, since every insert would lock
-- that hot row; fluxhook_publish() checks that they exist instead (neither is
-- ever removed, so the check cannot go stale).

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    admin BOOLEAN NOT NULL DEFAULT false,
    hash TEXT NOT NULL UNIQUE, -- hex SHA-256 of the secret; the secret is never stored
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_id, id);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    event_types TEXT NOT NULL DEFAULT '', -- comma list as given; '' = every type
    status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason TEXT,
    disabled_at BIGINT NOT NULL DEFAULT 0,
    secret TEXT NOT NULL,
    prev_secret TEXT,
    prev_secret_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX endpoints_account ON endpoints (account_id, id) WHERE deleted_at = 0;

-- Fan-out: one row per endpoint and subscribed type; '' subscribes to every
-- type. Rows of a deleted endpoint are removed.
CREATE TABLE endpoint_types (
    account_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id),
    PRIMARY KEY (account_id, event_type, endpoint_id)
);
CREATE INDEX endpoint_types_endpoint ON endpoint_types (endpoint_id);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    body BYTEA NOT NULL, -- the envelope, exactly as sent on every attempt
    idempotency_key TEXT, -- NULL when none
    created_at BIGINT NOT NULL,
    deliveries INTEGER NOT NULL
);
CREATE INDEX events_account ON events (account_id, id);
CREATE INDEX events_account_type ON events (account_id, type, id);

-- An idempotency key is unique per account for STORE_IDEMPOTENCY_MS: a
-- constraint, so that concurrent publishes on different hosts cannot both
-- pass a check. An expired key is taken over by the next event that uses it.
CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    key TEXT NOT NULL,
    -- Checked at commit: fluxhook_publish() claims the key before it inserts the event.
    event_id TEXT NOT NULL REFERENCES events (id) DEFERRABLE INITIALLY DEFERRED,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY, -- its time part is created_at
    account_id TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id),
    endpoint_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'delivering', 'delivered', 'failed', 'held')),
    attempts_made INTEGER NOT NULL DEFAULT 0,
    round_start INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0,
    lease_token BIGINT NOT NULL DEFAULT 0, -- grows with every claim; fences stale results
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    -- When a claim may take it: a pending one at its next attempt, a
    -- delivering one when its lease runs out; NULL for the rest.
    due_at BIGINT GENERATED ALWAYS AS (
        CASE status WHEN 'pending' THEN next_attempt_at
                    WHEN 'delivering' THEN lease_until END) STORED
);
-- Claims walk due work in time order; only rows that may become due are in these.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, due_at)
    WHERE due_at IS NOT NULL;
-- The per-endpoint cap counts the live leases of one endpoint through this.
CREATE INDEX deliveries_live ON deliveries (endpoint_id, lease_until)
    WHERE status = 'delivering';
CREATE INDEX deliveries_held ON deliveries (endpoint_id) WHERE status = 'held';
CREATE INDEX deliveries_account ON deliveries (account_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    n INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    response_body BYTEA,
    outcome TEXT NOT NULL, -- the delivery status the attempt led to
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX attempts_account_at ON attempts (account_id, at);
CREATE INDEX attempts_endpoint_at ON attempts (endpoint_id, at);

-- Deliveries by status over all accounts, so /metrics never counts the whole
-- table. One row per server backend (its pid: no two live connections share
-- one), so concurrent transactions never wait for each other here; a read
-- sums the rows. Rows of backends that are gone are folded into shard 0 at
-- start (fluxhook_counts_fold()).
CREATE TABLE delivery_counts (
    shard INTEGER PRIMARY KEY,
    pending BIGINT NOT NULL DEFAULT 0,
    delivering BIGINT NOT NULL DEFAULT 0,
    delivered BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    held BIGINT NOT NULL DEFAULT 0
);
INSERT INTO delivery_counts (shard) VALUES (0);

-- Adds the status changes of one statement on deliveries to this backend's
-- shard: once per statement, from its transition tables, whatever wrote them.
CREATE FUNCTION fluxhook_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'delivering') AS delivering,
               count(*) FILTER (WHERE status = 'delivered') AS delivered,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'held') AS held
        INTO c FROM new_rows;
    ELSE
        SELECT coalesce(sum(x.d) FILTER (WHERE x.status = 'pending'), 0) AS pending,
               coalesce(sum(x.d) FILTER (WHERE x.status = 'delivering'), 0) AS delivering,
               coalesce(sum(x.d) FILTER (WHERE x.status = 'delivered'), 0) AS delivered,
               coalesce(sum(x.d) FILTER (WHERE x.status = 'failed'), 0) AS failed,
               coalesce(sum(x.d) FILTER (WHERE x.status = 'held'), 0) AS held
        INTO c
        FROM (SELECT n.status, 1 AS d FROM new_rows n
              UNION ALL SELECT o.status, -1 FROM old_rows o) x;
    END IF;
    IF c.pending = 0 AND c.delivering = 0 AND c.delivered = 0 AND c.failed = 0
       AND c.held = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO delivery_counts AS k (shard, pending, delivering, delivered, failed, held)
    VALUES (pg_backend_pid(), c.pending, c.delivering, c.delivered, c.failed, c.held)
    ON CONFLICT (shard) DO UPDATE SET
        pending = k.pending + EXCLUDED.pending,
        delivering = k.delivering + EXCLUDED.delivering,
        delivered = k.delivered + EXCLUDED.delivered,
        failed = k.failed + EXCLUDED.failed,
        held = k.held + EXCLUDED.held;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_counts_add();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_counts_add();

-- Folds the shards of backends that are gone into shard 0 (run at start,
-- under the migration lock, so two folds never meet).
CREATE FUNCTION fluxhook_counts_fold() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM delivery_counts
        WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING *)
    UPDATE delivery_counts k SET
        pending = k.pending + g.pending, delivering = k.delivering + g.delivering,
        delivered = k.delivered + g.delivered, failed = k.failed + g.failed,
        held = k.held + g.held
    FROM (SELECT coalesce(sum(pending), 0) AS pending,
                 coalesce(sum(delivering), 0) AS delivering,
                 coalesce(sum(delivered), 0) AS delivered,
                 coalesce(sum(failed), 0) AS failed, coalesce(sum(held), 0) AS held
          FROM gone) g
    WHERE k.shard = 0;
$$;

-- Wakes the dispatchers of every process (their listeners) when n > 0
-- deliveries became due; the notification is sent when the transaction
-- commits. Returns n.
CREATE FUNCTION fluxhook_due(n BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF n > 0 THEN
        PERFORM pg_notify('fluxhook_due', '');
    END IF;
    RETURN n;
END $$;
