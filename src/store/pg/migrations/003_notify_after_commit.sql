-- Wake-ups leave the writing transactions. A transaction that NOTIFYs
-- takes a cluster-wide lock at commit and holds it through its WAL flush,
-- so publishes that notified could no longer share flushes. The store now
-- sends one NOTIFY fluxhook_due on its own after the commits it made (see
-- pg_db.c, the listener), and no statement of ours notifies any more.

-- Publishes as in 002, without notifying.
CREATE OR REPLACE FUNCTION fluxhook_publish(p_id TEXT, p_acct TEXT, p_type TEXT, p_ts TEXT,
                                            p_body BYTEA, p_key TEXT, p_at BIGINT,
                                            p_window BIGINT, p_dlv TEXT[], p_eps TEXT[],
                                            p_status TEXT[], p_created BIGINT[])
RETURNS SETOF events LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = p_acct) THEN
        RAISE foreign_key_violation USING MESSAGE = 'no such account';
    END IF;
    IF (SELECT count(*) FROM endpoints e WHERE e.id = ANY (p_eps))
       <> (SELECT count(DISTINCT x) FROM unnest(p_eps) x) THEN
        RAISE foreign_key_violation USING MESSAGE = 'no such endpoint';
    END IF;
    IF p_key IS NOT NULL THEN
        -- Waits for a concurrent insert of the same key; a live key returns no row.
        INSERT INTO idempotency_keys AS k (account_id, key, event_id, created_at)
        VALUES (p_acct, p_key, p_id, p_at)
        ON CONFLICT (account_id, key) DO UPDATE
            SET event_id = EXCLUDED.event_id, created_at = EXCLUDED.created_at
            WHERE k.created_at <= EXCLUDED.created_at - p_window;
        IF NOT FOUND THEN
            -- A new statement, so it sees the event committed with the key.
            RETURN QUERY SELECT ev.* FROM idempotency_keys k JOIN events ev ON ev.id = k.event_id
                         WHERE k.account_id = p_acct AND k.key = p_key;
            RETURN;
        END IF;
    END IF;
    INSERT INTO events (id, account_id, type, timestamp, body, idempotency_key, created_at,
                        deliveries)
    VALUES (p_id, p_acct, p_type, p_ts, p_body, p_key, p_at, cardinality(p_eps));
    INSERT INTO deliveries (id, account_id, event_id, endpoint_id, event_type, status,
                            next_attempt_at, created_at, updated_at)
    SELECT u.dlv, p_acct, p_id, u.ep, p_type, u.status, p_at, u.created, u.created
    FROM unnest(p_dlv, p_eps, p_status, p_created) AS u (dlv, ep, status, created);
    RETURN;
END $$;

-- No longer called by this fluxhook. Kept, as a no-op, for the statements of
-- a process still running an older one during an upgrade: their changes are
-- then found by the other hosts' next poll instead of a notification.
CREATE OR REPLACE FUNCTION fluxhook_due(n BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT n;
$$;
