-- Statistics rollups (src/store/rollup.h): per endpoint, one row per minute
-- and one per hour (span, in ms; start is a multiple of it), and the same
-- for the whole account under endpoint_id = its account id. d_* count the
-- deliveries created in the span by the class of their status now (open:
-- pending or delivering), a_* the attempts made in it. The writer adds each
-- transaction's changes before it commits, as it does for delivery_counts.
-- Rows outlive the deliveries and attempts they count.
CREATE TABLE stat_rollups (
    endpoint_id TEXT NOT NULL,
    span INTEGER NOT NULL,
    start INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    d_open INTEGER NOT NULL DEFAULT 0,
    d_delivered INTEGER NOT NULL DEFAULT 0,
    d_failed INTEGER NOT NULL DEFAULT 0,
    d_held INTEGER NOT NULL DEFAULT 0,
    a_total INTEGER NOT NULL DEFAULT 0,
    a_ok INTEGER NOT NULL DEFAULT 0,      -- answered 2xx
    a_failed INTEGER NOT NULL DEFAULT 0,  -- the delivery failed for good
    a_retried INTEGER NOT NULL DEFAULT 0, -- the delivery was rescheduled or held
    PRIMARY KEY (endpoint_id, span, start)
) WITHOUT ROWID;

-- The attempts' latency histogram of each rollup row: n attempts in bucket.
CREATE TABLE stat_latency (
    endpoint_id TEXT NOT NULL,
    span INTEGER NOT NULL,
    start INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, span, start, bucket)
) WITHOUT ROWID;

-- What the store already holds.
INSERT INTO stat_rollups (endpoint_id, span, start, account_id, d_open, d_delivered, d_failed,
                          d_held)
SELECT CASE l.level WHEN 0 THEN d.endpoint_id ELSE d.account_id END,
       s.span, d.created_at - d.created_at % s.span, min(d.account_id),
       sum(d.status = 'pending' OR d.status = 'delivering'), sum(d.status = 'delivered'),
       sum(d.status = 'failed'), sum(d.status = 'held')
FROM deliveries d, (SELECT 60000 AS span UNION ALL SELECT 3600000) s,
     (SELECT 0 AS level UNION ALL SELECT 1) l
GROUP BY 1, 2, 3;
INSERT INTO stat_rollups (endpoint_id, span, start, account_id, a_total, a_ok, a_failed,
                          a_retried)
SELECT CASE l.level WHEN 0 THEN a.endpoint_id ELSE a.account_id END,
       s.span, a.at - a.at % s.span, min(a.account_id), count(*),
       sum(a.status_code BETWEEN 200 AND 299), sum(a.outcome = 'failed'),
       sum(a.outcome = 'pending' OR a.outcome = 'held')
FROM attempts a, (SELECT 60000 AS span UNION ALL SELECT 3600000) s,
     (SELECT 0 AS level UNION ALL SELECT 1) l
WHERE true
GROUP BY 1, 2, 3
ON CONFLICT (endpoint_id, span, start) DO UPDATE SET
    a_total = excluded.a_total, a_ok = excluded.a_ok, a_failed = excluded.a_failed,
    a_retried = excluded.a_retried;
-- rollup_bucket() of src/store/rollup.c.
INSERT INTO stat_latency (endpoint_id, span, start, bucket, account_id, n)
SELECT CASE l.level WHEN 0 THEN a.endpoint_id ELSE a.account_id END,
       s.span, a.at - a.at % s.span,
       CASE WHEN a.duration_ms < 0 THEN 0 WHEN a.duration_ms < 128 THEN a.duration_ms
            WHEN a.duration_ms < 256 THEN 96 + (a.duration_ms >> 2)
            WHEN a.duration_ms < 512 THEN 128 + (a.duration_ms >> 3)
            WHEN a.duration_ms < 1024 THEN 160 + (a.duration_ms >> 4)
            WHEN a.duration_ms < 2048 THEN 192 + (a.duration_ms >> 5)
            WHEN a.duration_ms < 4096 THEN 224 + (a.duration_ms >> 6)
            WHEN a.duration_ms < 8192 THEN 256 + (a.duration_ms >> 7)
            WHEN a.duration_ms < 16384 THEN 288 + (a.duration_ms >> 8)
            WHEN a.duration_ms < 32768 THEN 320 + (a.duration_ms >> 9)
            WHEN a.duration_ms < 65536 THEN 352 + (a.duration_ms >> 10)
            WHEN a.duration_ms < 131072 THEN 384 + (a.duration_ms >> 11)
            WHEN a.duration_ms < 262144 THEN 416 + (a.duration_ms >> 12)
            WHEN a.duration_ms < 524288 THEN 448 + (a.duration_ms >> 13)
            WHEN a.duration_ms < 1048576 THEN 480 + (a.duration_ms >> 14)
            WHEN a.duration_ms < 2097152 THEN 512 + (a.duration_ms >> 15)
            WHEN a.duration_ms < 4194304 THEN 544 + (a.duration_ms >> 16)
            WHEN a.duration_ms < 8388608 THEN 576 + (a.duration_ms >> 17)
            WHEN a.duration_ms < 16777216 THEN 608 + (a.duration_ms >> 18)
            WHEN a.duration_ms < 33554432 THEN 640 + (a.duration_ms >> 19)
            WHEN a.duration_ms < 67108864 THEN 672 + (a.duration_ms >> 20)
            WHEN a.duration_ms < 134217728 THEN 704 + (a.duration_ms >> 21)
            WHEN a.duration_ms < 268435456 THEN 736 + (a.duration_ms >> 22)
            WHEN a.duration_ms < 536870912 THEN 768 + (a.duration_ms >> 23)
            WHEN a.duration_ms < 1073741824 THEN 800 + (a.duration_ms >> 24)
            WHEN a.duration_ms < 2147483648 THEN 832 + (a.duration_ms >> 25)
            WHEN a.duration_ms < 4294967296 THEN 864 + (a.duration_ms >> 26)
            ELSE 927 END,
       min(a.account_id), count(*)
FROM attempts a, (SELECT 60000 AS span UNION ALL SELECT 3600000) s,
     (SELECT 0 AS level UNION ALL SELECT 1) l
GROUP BY 1, 2, 3, 4;

-- Every filter of GET /v1/deliveries reads a page through an index, even
-- when it finds nothing: status and event type per account (005), and per
-- endpoint here.
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_endpoint_type ON deliveries (endpoint_id, event_type, id);
