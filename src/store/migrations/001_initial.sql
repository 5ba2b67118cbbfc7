-- The first schema. Ids are TEXT, times INTEGER milliseconds since the epoch
-- (0: none), bodies BLOB, statuses TEXT names, so PostgreSQL can hold the
-- same tables. Rows are never deleted: an endpoint is deleted by setting
-- deleted_at, so its deliveries keep their history.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    hash TEXT NOT NULL UNIQUE, -- hex SHA-256 of the secret; the secret is never stored
    created_at INTEGER NOT NULL
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
    disabled_at INTEGER NOT NULL DEFAULT 0,
    secret TEXT NOT NULL,
    prev_secret TEXT,
    prev_secret_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX endpoints_account ON endpoints (account_id, id) WHERE deleted_at = 0;

-- Fan-out: one row per endpoint and subscribed type; '' subscribes to every
-- type. Rows of a deleted endpoint are removed.
CREATE TABLE endpoint_types (
    account_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id),
    PRIMARY KEY (account_id, event_type, endpoint_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    body BLOB NOT NULL, -- the envelope, exactly as sent on every attempt
    idempotency_key TEXT, -- NULL when none
    created_at INTEGER NOT NULL,
    deliveries INTEGER NOT NULL
);
CREATE INDEX events_account ON events (account_id, id);
CREATE INDEX events_account_type ON events (account_id, type, id);
CREATE INDEX events_idempotency ON events (account_id, idempotency_key, created_at)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY, -- its time part is created_at
    account_id TEXT NOT NULL REFERENCES accounts (id),
    event_id TEXT NOT NULL REFERENCES events (id),
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id),
    event_type TEXT NOT NULL,
    -- Spelled with OR: an IN list here would build a temporary table per row.
    status TEXT NOT NULL
        CHECK (status = 'pending' OR status = 'delivering' OR status = 'delivered'
               OR status = 'failed' OR status = 'held'),
    attempts_made INTEGER NOT NULL DEFAULT 0,
    round_start INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    -- When a claim may take it: a pending one at its next attempt, a
    -- delivering one when its lease runs out; NULL for the rest.
    due_at INTEGER GENERATED ALWAYS AS (
        CASE status WHEN 'pending' THEN next_attempt_at
                    WHEN 'delivering' THEN lease_until END) VIRTUAL
) WITHOUT ROWID;
-- Claims walk due work in time order; only due rows are in these indexes.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, due_at)
    WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_held ON deliveries (endpoint_id) WHERE status = 'held';
CREATE INDEX deliveries_account ON deliveries (account_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    n INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    response_body BLOB,
    outcome TEXT NOT NULL, -- the delivery status the attempt led to
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX attempts_account_at ON attempts (account_id, at);
CREATE INDEX attempts_endpoint_at ON attempts (endpoint_id, at);

-- Deliveries by status over all accounts, kept by triggers so /metrics
-- never counts the whole table.
CREATE TABLE delivery_counts (
    status TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO delivery_counts (status, n) VALUES
    ('pending', 0), ('delivering', 0), ('delivered', 0), ('failed', 0), ('held', 0);
CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
BEGIN
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF status ON deliveries
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;
