-- The store's multi-step writes as functions, so that each one is a single
-- statement: one round trip, one transaction, and (in READ COMMITTED) a fresh
-- snapshot for each statement inside, which the claim needs after it waits
-- for a lock.

-- Publishes one event and its deliveries (p_dlv, p_eps, p_status and
-- p_created side by side). With p_key set and a live key of the account
-- (younger than p_window ms), stores nothing and returns the earlier event;
-- else returns no row. A missing account or endpoint raises
-- foreign_key_violation and stores nothing.
CREATE FUNCTION fluxhook_publish(p_id TEXT, p_acct TEXT, p_type TEXT, p_ts TEXT, p_body BYTEA,
                                 p_key TEXT, p_at BIGINT, p_window BIGINT, p_dlv TEXT[],
                                 p_eps TEXT[], p_status TEXT[], p_created BIGINT[])
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
    PERFORM fluxhook_due((SELECT count(*) FROM unnest(p_status) s WHERE s = 'pending'));
    RETURN;
END $$;

-- Claims up to p_max due deliveries in due-time order (see store_claim()),
-- none of the endpoints in p_exclude. With p_per_ep > 0 no endpoint ends up
-- with more than p_per_ep deliveries under a live lease, counted over every
-- process: the endpoints' transaction-scoped advisory locks, taken in sorted
-- order, serialize the count and the claim per endpoint. Rows of a disabled
-- endpoint become held, of a deleted one failed; the claimed ones come back
-- with their body and the endpoint's URL and secrets. No row lock is ever
-- waited for (SKIP LOCKED), and endpoint rows are not locked at all.
CREATE FUNCTION fluxhook_claim(p_now BIGINT, p_lease BIGINT, p_max INTEGER, p_per_ep INTEGER,
                               p_exclude TEXT[], p_scan INTEGER, p_max_eps INTEGER)
RETURNS TABLE (id TEXT, event_id TEXT, endpoint_id TEXT, account_id TEXT, event_type TEXT,
               status TEXT, attempts_made INTEGER, round_start INTEGER,
               next_attempt_at BIGINT, lease_until BIGINT, lease_token BIGINT,
               created_at BIGINT, updated_at BIGINT, last_status_code INTEGER,
               last_error TEXT, body BYTEA, url TEXT, secret TEXT, prev_secret TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids TEXT[];   -- candidates, then the claimed rows, in due order
    v_eps TEXT[];   -- the endpoint of each candidate
    v_lock TEXT[];  -- the endpoints whose cap this claim checks
    v_rows INTEGER;
    v_key INTEGER;
BEGIN
    -- A claim lost in a crash is only a lease that runs out: no need to wait
    -- for its commit to reach the disk.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF p_per_ep <= 0 THEN
        SELECT array_agg(s.id ORDER BY s.due_at) INTO v_ids
        FROM (SELECT d.id, d.due_at FROM deliveries d
              WHERE d.due_at <= p_now AND d.endpoint_id <> ALL (p_exclude)
              ORDER BY d.due_at LIMIT p_max FOR UPDATE SKIP LOCKED) s;
    ELSE
        -- Candidates, not locked yet: the oldest due rows, at most p_per_ep
        -- of one endpoint (no claim could take more).
        SELECT array_agg(w.id ORDER BY w.due_at) FILTER (WHERE w.rn <= p_per_ep),
               array_agg(w.endpoint_id ORDER BY w.due_at) FILTER (WHERE w.rn <= p_per_ep),
               count(*)
        INTO v_ids, v_eps, v_rows
        FROM (SELECT d.id, d.endpoint_id, d.due_at,
                     row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.due_at) AS rn
              FROM (SELECT d0.id, d0.endpoint_id, d0.due_at FROM deliveries d0
                    WHERE d0.due_at <= p_now AND d0.endpoint_id <> ALL (p_exclude)
                    ORDER BY d0.due_at LIMIT p_scan) d) w;
        IF v_rows >= p_scan AND coalesce(cardinality(v_ids), 0) < p_max THEN
            -- The window was full of a few endpoints' queues: visit every
            -- endpoint with due work instead, so none hides the others.
            SELECT array_agg(c.id ORDER BY c.due_at), array_agg(c.endpoint_id ORDER BY c.due_at)
            INTO v_ids, v_eps
            FROM (SELECT c0.id, c0.endpoint_id, c0.due_at
                  FROM fluxhook_claim_by_endpoint(p_now, p_per_ep, p_exclude) c0
                  ORDER BY c0.due_at LIMIT p_scan) c;
        END IF;
        -- The endpoints of the earliest candidates, as many as one claim locks.
        SELECT array_agg(s.ep) INTO v_lock
        FROM (SELECT u.ep FROM unnest(v_eps) WITH ORDINALITY AS u (ep, i)
              GROUP BY u.ep ORDER BY min(u.i) LIMIT p_max_eps) s;
        FOR v_key IN SELECT DISTINCT hashtext(e) FROM unnest(v_lock) e ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(1718384744, v_key);
        END LOOP;
        -- Under the locks, with a snapshot taken after them: each endpoint's
        -- room is its cap minus the live leases committed on any host.
        SELECT array_agg(s.id ORDER BY s.due_at) INTO v_ids
        FROM (SELECT d.id, d.due_at FROM deliveries d
              WHERE d.id IN (
                  SELECT r.id FROM (
                      SELECT c.id, c.due_at,
                             row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.due_at)
                                 AS rn,
                             p_per_ep - coalesce(l.n, 0) AS room
                      FROM deliveries c
                      LEFT JOIN (SELECT x.endpoint_id, count(*) AS n FROM deliveries x
                                 WHERE x.status = 'delivering' AND x.lease_until > p_now
                                   AND x.endpoint_id = ANY (v_lock)
                                 GROUP BY x.endpoint_id) l ON l.endpoint_id = c.endpoint_id
                      WHERE c.id = ANY (v_ids) AND c.endpoint_id = ANY (v_lock)
                        AND c.due_at <= p_now) r
                  WHERE r.rn <= r.room ORDER BY r.due_at LIMIT p_max)
                AND d.due_at <= p_now
              ORDER BY d.due_at FOR UPDATE SKIP LOCKED) s;
    END IF;
    RETURN QUERY
    WITH u AS (
        UPDATE deliveries d SET
            status = CASE WHEN e.deleted_at <> 0 THEN 'failed'
                          WHEN e.status = 'disabled' THEN 'held' ELSE 'delivering' END,
            lease_until = CASE WHEN e.deleted_at = 0 AND e.status = 'enabled'
                               THEN p_now + p_lease ELSE 0 END,
            lease_token = d.lease_token + CASE WHEN e.deleted_at = 0 AND e.status = 'enabled'
                                               THEN 1 ELSE 0 END,
            last_error = CASE WHEN e.deleted_at <> 0 THEN 'endpoint deleted'
                              ELSE d.last_error END,
            updated_at = p_now
        FROM endpoints e
        WHERE d.id = ANY (v_ids) AND e.id = d.endpoint_id
        RETURNING d.id, d.event_id, d.endpoint_id, d.account_id, d.event_type, d.status,
                  d.attempts_made, d.round_start, d.next_attempt_at, d.lease_until,
                  d.lease_token, d.created_at, d.updated_at, d.last_status_code, d.last_error,
                  e.url, e.secret,
                  CASE WHEN e.prev_secret_until > p_now THEN e.prev_secret END AS prev)
    SELECT u.id, u.event_id, u.endpoint_id, u.account_id, u.event_type, u.status,
           u.attempts_made, u.round_start, u.next_attempt_at, u.lease_until, u.lease_token,
           u.created_at, u.updated_at, u.last_status_code, u.last_error, ev.body, u.url,
           u.secret, u.prev
    FROM u JOIN events ev ON ev.id = u.event_id
    JOIN unnest(v_ids) WITH ORDINALITY AS o (id, pos) ON o.id = u.id
    WHERE u.status = 'delivering'
    ORDER BY o.pos;
END $$;

-- For each endpoint with due work (at most 10000 of them, in id order, found
-- by skipping through deliveries_endpoint_due), its oldest p_per_ep due rows.
CREATE FUNCTION fluxhook_claim_by_endpoint(p_now BIGINT, p_per_ep INTEGER, p_exclude TEXT[])
RETURNS TABLE (id TEXT, endpoint_id TEXT, due_at BIGINT) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE eps (ep, k) AS (
        (SELECT d.endpoint_id, 1 FROM deliveries d WHERE d.due_at IS NOT NULL
         ORDER BY d.endpoint_id LIMIT 1)
        UNION ALL
        SELECT (SELECT d.endpoint_id FROM deliveries d
                WHERE d.due_at IS NOT NULL AND d.endpoint_id > eps.ep
                ORDER BY d.endpoint_id LIMIT 1), eps.k + 1
        FROM eps WHERE eps.ep IS NOT NULL AND eps.k < 10000)
    SELECT c.id, c.endpoint_id, c.due_at
    FROM eps, LATERAL (SELECT d.id, d.endpoint_id, d.due_at FROM deliveries d
                       WHERE d.endpoint_id = eps.ep AND d.due_at <= p_now
                       ORDER BY d.due_at LIMIT p_per_ep) c
    WHERE eps.ep IS NOT NULL AND eps.ep <> ALL (p_exclude);
$$;

-- Applies attempt results (a JSON array of objects, see pg_dispatch.c) in
-- one transaction. A result counts only when its lease_token is its
-- delivery's current one and the delivery is still delivering; the others
-- come back as 'fenced' with the delivery's current token and status (or
-- 'unknown' for a delivery that does not exist).
-- Endpoints that a result disabled come back as 'disabled'. Locks are taken
-- in id order: the deliveries first, then the endpoints to disable.
CREATE FUNCTION fluxhook_results(p_now BIGINT, p_results JSON)
RETURNS TABLE (kind TEXT, id TEXT, token BIGINT, current_token BIGINT, current_status TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ok INTEGER[];     -- the results that count, by position
    v_disabled TEXT[];  -- endpoints this call disabled
BEGIN
    PERFORM 1 FROM deliveries d
    WHERE d.id IN (SELECT r.id FROM json_to_recordset(p_results) AS r (id TEXT))
      AND d.status = 'delivering'
    ORDER BY d.id FOR UPDATE;
    -- The first result of each delivery under its current lease.
    SELECT array_agg(s.i) INTO v_ok
    FROM (SELECT DISTINCT ON (r.id) r.i
          FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, token BIGINT)
          JOIN deliveries d ON d.id = r.id
          WHERE d.status = 'delivering' AND d.lease_token = r.token
          ORDER BY r.id, r.i) s;
    v_ok := coalesce(v_ok, '{}');

    IF EXISTS (SELECT 1 FROM json_to_recordset(p_results) AS r (i INTEGER, disable BOOLEAN)
               WHERE r.i = ANY (v_ok) AND r.disable) THEN
        PERFORM 1 FROM endpoints e
        WHERE e.id IN (SELECT d.endpoint_id
                       FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT,
                                                               disable BOOLEAN)
                       JOIN deliveries d ON d.id = r.id
                       WHERE r.i = ANY (v_ok) AND r.disable)
          AND e.status = 'enabled' AND e.deleted_at = 0
        ORDER BY e.id FOR UPDATE;
        WITH x AS (
            SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, r.reason
            FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, disable BOOLEAN,
                                                    reason TEXT)
            JOIN deliveries d ON d.id = r.id
            WHERE r.i = ANY (v_ok) AND r.disable
            ORDER BY d.endpoint_id, r.i),
        y AS (
            UPDATE endpoints e SET status = 'disabled',
                disabled_reason = coalesce(x.reason, 'retries exhausted'),
                disabled_at = p_now, updated_at = p_now
            FROM x WHERE e.id = x.endpoint_id AND e.status = 'enabled' AND e.deleted_at = 0
            RETURNING e.id)
        SELECT array_agg(y.id) INTO v_disabled FROM y;
        UPDATE deliveries d SET status = 'held', updated_at = p_now
        WHERE d.endpoint_id = ANY (v_disabled) AND d.status = 'pending';
    END IF;

    WITH r AS (
        SELECT j.*, d.attempts_made, e.deleted_at, e.status AS ep_status,
               CASE j.status WHEN 'delivering' THEN 'pending' ELSE j.status END AS s0
        FROM json_to_recordset(p_results) AS j (i INTEGER, id TEXT, status TEXT, next BIGINT,
                                                n INTEGER, at BIGINT, code INTEGER,
                                                error TEXT, ms BIGINT, body TEXT)
        JOIN deliveries d ON d.id = j.id
        JOIN endpoints e ON e.id = d.endpoint_id
        WHERE j.i = ANY (v_ok)),
    f AS (
        SELECT r.*, greatest(r.attempts_made + 1, r.n) AS nn,
               CASE WHEN r.s0 = 'pending' AND r.deleted_at <> 0 THEN 'failed'
                    WHEN r.s0 = 'pending' AND r.ep_status = 'disabled' THEN 'held'
                    ELSE r.s0 END AS fin
        FROM r),
    u AS (
        UPDATE deliveries d SET status = f.fin, attempts_made = f.nn,
            next_attempt_at = CASE WHEN f.fin = 'pending' THEN f.next ELSE 0 END,
            lease_until = 0, last_status_code = f.code,
            last_error = CASE WHEN f.fin = 'delivered' THEN NULL
                              WHEN f.fin = 'failed' AND f.s0 = 'pending' THEN 'endpoint deleted'
                              ELSE f.error END,
            updated_at = p_now
        FROM f WHERE d.id = f.id
        RETURNING d.id, d.account_id, d.endpoint_id)
    INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, error,
                          duration_ms, response_body, outcome)
    SELECT f.id, f.nn, u.account_id, u.endpoint_id,
           CASE WHEN f.at <> 0 THEN f.at ELSE p_now END, f.code, f.error, f.ms,
           decode(f.body, 'hex'), f.fin
    FROM f JOIN u ON u.id = f.id;

    RETURN QUERY
    SELECT CASE WHEN d.id IS NULL THEN 'unknown' ELSE 'fenced' END, r.id, r.token,
           d.lease_token, d.status
    FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, token BIGINT)
    LEFT JOIN deliveries d ON d.id = r.id
    WHERE r.i <> ALL (v_ok)
    UNION ALL
    SELECT 'disabled', x, NULL, NULL, NULL FROM unnest(v_disabled) x;
END $$;
