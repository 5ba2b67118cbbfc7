-- Statistics rollups (src/store/rollup.h): per endpoint, one row per minute
-- and one per hour (span, in ms; start is a multiple of it), and the same
-- for the whole account under endpoint_id = its account id. d_* count the
-- deliveries created in the span by the class of their status now (open:
-- pending or delivering), a_* the attempts made in it. Statement triggers
-- keep them in the transaction that changes deliveries or adds attempts.
-- Each server backend adds to its own rows (shard: its pid, as for
-- delivery_counts), so concurrent transactions never wait for each other
-- here; a read sums the shards. Rows outlive what they count.
CREATE TABLE stat_rollups (
    endpoint_id TEXT NOT NULL,
    span BIGINT NOT NULL,
    start BIGINT NOT NULL,
    shard INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    d_open BIGINT NOT NULL DEFAULT 0,
    d_delivered BIGINT NOT NULL DEFAULT 0,
    d_failed BIGINT NOT NULL DEFAULT 0,
    d_held BIGINT NOT NULL DEFAULT 0,
    a_total BIGINT NOT NULL DEFAULT 0,
    a_ok BIGINT NOT NULL DEFAULT 0,      -- answered 2xx
    a_failed BIGINT NOT NULL DEFAULT 0,  -- the delivery failed for good
    a_retried BIGINT NOT NULL DEFAULT 0, -- the delivery was rescheduled or held
    PRIMARY KEY (endpoint_id, span, start, shard)
);

-- The attempts' latency histogram of each rollup row: n attempts in bucket.
CREATE TABLE stat_latency (
    endpoint_id TEXT NOT NULL,
    span BIGINT NOT NULL,
    start BIGINT NOT NULL,
    bucket INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    -- A window's histogram rows are read from the index alone.
    PRIMARY KEY (endpoint_id, span, start, bucket, shard) INCLUDE (account_id, n)
);

-- rollup_bucket() of src/store/rollup.c.
CREATE FUNCTION fluxhook_latency_bucket(v BIGINT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE WHEN v < 0 THEN 0 WHEN v < 128 THEN v
                 WHEN v < 256 THEN 96 + (v >> 2)
                 WHEN v < 512 THEN 128 + (v >> 3)
                 WHEN v < 1024 THEN 160 + (v >> 4)
                 WHEN v < 2048 THEN 192 + (v >> 5)
                 WHEN v < 4096 THEN 224 + (v >> 6)
                 WHEN v < 8192 THEN 256 + (v >> 7)
                 WHEN v < 16384 THEN 288 + (v >> 8)
                 WHEN v < 32768 THEN 320 + (v >> 9)
                 WHEN v < 65536 THEN 352 + (v >> 10)
                 WHEN v < 131072 THEN 384 + (v >> 11)
                 WHEN v < 262144 THEN 416 + (v >> 12)
                 WHEN v < 524288 THEN 448 + (v >> 13)
                 WHEN v < 1048576 THEN 480 + (v >> 14)
                 WHEN v < 2097152 THEN 512 + (v >> 15)
                 WHEN v < 4194304 THEN 544 + (v >> 16)
                 WHEN v < 8388608 THEN 576 + (v >> 17)
                 WHEN v < 16777216 THEN 608 + (v >> 18)
                 WHEN v < 33554432 THEN 640 + (v >> 19)
                 WHEN v < 67108864 THEN 672 + (v >> 20)
                 WHEN v < 134217728 THEN 704 + (v >> 21)
                 WHEN v < 268435456 THEN 736 + (v >> 22)
                 WHEN v < 536870912 THEN 768 + (v >> 23)
                 WHEN v < 1073741824 THEN 800 + (v >> 24)
                 WHEN v < 2147483648 THEN 832 + (v >> 25)
                 WHEN v < 4294967296 THEN 864 + (v >> 26)
                 ELSE 927 END)::INTEGER
$$;

-- The rollup class of a delivery status: 0 open, 1 delivered, 2 failed, 3 held.
CREATE FUNCTION fluxhook_status_class(s TEXT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE s WHEN 'delivered' THEN 1 WHEN 'failed' THEN 2 WHEN 'held' THEN 3 ELSE 0 END
$$;

-- Adds the class changes of one statement on deliveries, grouped by
-- endpoint and creation minute and hour: +1 for each new row, -1 for each
-- old one (a claim's pending to delivering adds nothing).
CREATE FUNCTION fluxhook_rollup_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stat_rollups AS r (endpoint_id, span, start, shard, account_id, d_open,
                                       d_delivered, d_failed, d_held)
        SELECT CASE lv.level WHEN 0 THEN x.endpoint_id ELSE x.account_id END,
       s.span, x.created_at - x.created_at % s.span, pg_backend_pid(),
               min(x.account_id),
               count(*) FILTER (WHERE fluxhook_status_class(x.status) = 0),
               count(*) FILTER (WHERE fluxhook_status_class(x.status) = 1),
               count(*) FILTER (WHERE fluxhook_status_class(x.status) = 2),
               count(*) FILTER (WHERE fluxhook_status_class(x.status) = 3)
        FROM new_rows x CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
        GROUP BY 1, 2, 3
        ON CONFLICT (endpoint_id, span, start, shard) DO UPDATE SET
            d_open = r.d_open + EXCLUDED.d_open,
            d_delivered = r.d_delivered + EXCLUDED.d_delivered,
            d_failed = r.d_failed + EXCLUDED.d_failed, d_held = r.d_held + EXCLUDED.d_held;
        RETURN NULL;
    END IF;
    INSERT INTO stat_rollups AS r (endpoint_id, span, start, shard, account_id, d_open,
                                   d_delivered, d_failed, d_held)
    SELECT g.* FROM (
        SELECT CASE lv.level WHEN 0 THEN x.endpoint_id ELSE x.account_id END,
       s.span, x.created_at - x.created_at % s.span, pg_backend_pid(),
               min(x.account_id),
               coalesce(sum(x.d) FILTER (WHERE x.k = 0), 0) AS d0,
               coalesce(sum(x.d) FILTER (WHERE x.k = 1), 0) AS d1,
               coalesce(sum(x.d) FILTER (WHERE x.k = 2), 0) AS d2,
               coalesce(sum(x.d) FILTER (WHERE x.k = 3), 0) AS d3
        FROM (SELECT n.endpoint_id, n.account_id, n.created_at,
                     fluxhook_status_class(n.status) AS k, 1 AS d FROM new_rows n
              UNION ALL
              SELECT o.endpoint_id, o.account_id, o.created_at,
                     fluxhook_status_class(o.status), -1 FROM old_rows o) x
        CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
        GROUP BY 1, 2, 3) g
    WHERE g.d0 <> 0 OR g.d1 <> 0 OR g.d2 <> 0 OR g.d3 <> 0
    ON CONFLICT (endpoint_id, span, start, shard) DO UPDATE SET
        d_open = r.d_open + EXCLUDED.d_open,
        d_delivered = r.d_delivered + EXCLUDED.d_delivered,
        d_failed = r.d_failed + EXCLUDED.d_failed, d_held = r.d_held + EXCLUDED.d_held;
    RETURN NULL;
END $$;

-- Adds one statement's new attempts: counts by outcome and latency buckets.
CREATE FUNCTION fluxhook_rollup_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_rollups AS r (endpoint_id, span, start, shard, account_id, a_total, a_ok,
                                   a_failed, a_retried)
    SELECT CASE lv.level WHEN 0 THEN x.endpoint_id ELSE x.account_id END,
       s.span, x.at - x.at % s.span, pg_backend_pid(), min(x.account_id),
           count(*), count(*) FILTER (WHERE x.status_code BETWEEN 200 AND 299),
           count(*) FILTER (WHERE x.outcome = 'failed'),
           count(*) FILTER (WHERE x.outcome IN ('pending', 'held'))
    FROM new_rows x CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
    GROUP BY 1, 2, 3
    ON CONFLICT (endpoint_id, span, start, shard) DO UPDATE SET
        a_total = r.a_total + EXCLUDED.a_total, a_ok = r.a_ok + EXCLUDED.a_ok,
        a_failed = r.a_failed + EXCLUDED.a_failed, a_retried = r.a_retried + EXCLUDED.a_retried;
    INSERT INTO stat_latency AS r (endpoint_id, span, start, bucket, shard, account_id, n)
    SELECT CASE lv.level WHEN 0 THEN x.endpoint_id ELSE x.account_id END,
       s.span, x.at - x.at % s.span, fluxhook_latency_bucket(x.duration_ms),
           pg_backend_pid(), min(x.account_id), count(*)
    FROM new_rows x CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (endpoint_id, span, start, bucket, shard) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

-- What the store already holds, in shard 0.
INSERT INTO stat_rollups (endpoint_id, span, start, shard, account_id, d_open, d_delivered,
                          d_failed, d_held)
SELECT CASE lv.level WHEN 0 THEN d.endpoint_id ELSE d.account_id END,
       s.span, d.created_at - d.created_at % s.span, 0, min(d.account_id),
       count(*) FILTER (WHERE fluxhook_status_class(d.status) = 0),
       count(*) FILTER (WHERE fluxhook_status_class(d.status) = 1),
       count(*) FILTER (WHERE fluxhook_status_class(d.status) = 2),
       count(*) FILTER (WHERE fluxhook_status_class(d.status) = 3)
FROM deliveries d CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
GROUP BY 1, 2, 3;
INSERT INTO stat_rollups AS r (endpoint_id, span, start, shard, account_id, a_total, a_ok,
                               a_failed, a_retried)
SELECT CASE lv.level WHEN 0 THEN a.endpoint_id ELSE a.account_id END,
       s.span, a.at - a.at % s.span, 0, min(a.account_id), count(*),
       count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299),
       count(*) FILTER (WHERE a.outcome = 'failed'),
       count(*) FILTER (WHERE a.outcome IN ('pending', 'held'))
FROM attempts a CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
GROUP BY 1, 2, 3
ON CONFLICT (endpoint_id, span, start, shard) DO UPDATE SET
    a_total = EXCLUDED.a_total, a_ok = EXCLUDED.a_ok, a_failed = EXCLUDED.a_failed,
    a_retried = EXCLUDED.a_retried;
INSERT INTO stat_latency (endpoint_id, span, start, bucket, shard, account_id, n)
SELECT CASE lv.level WHEN 0 THEN a.endpoint_id ELSE a.account_id END,
       s.span, a.at - a.at % s.span, fluxhook_latency_bucket(a.duration_ms), 0,
       min(a.account_id), count(*)
FROM attempts a CROSS JOIN (VALUES (60000::BIGINT), (3600000::BIGINT)) s (span)
        CROSS JOIN (VALUES (0), (1)) lv (level)
GROUP BY 1, 2, 3, 4;

CREATE TRIGGER deliveries_rollup_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_rollup_deliveries();
CREATE TRIGGER deliveries_rollup_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_rollup_deliveries();
CREATE TRIGGER attempts_rollup_insert AFTER INSERT ON attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_rollup_attempts();

-- Every filter of GET /v1/deliveries reads a page through an index, even
-- when it finds nothing: status and event type per account (005), and per
-- endpoint here.
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_endpoint_type ON deliveries (endpoint_id, event_type, id);
