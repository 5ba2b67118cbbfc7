-- Each endpoint's count of held deliveries, kept as they change, so that an
-- endpoint's object (its `held`, on every GET and in every page of
-- GET /v1/endpoints) costs one row, not a count of the endpoint's held
-- deliveries (a million of them while it stayed disabled took ~70 ms of CPU
-- per endpoint). The writer adds each transaction's changes before it
-- commits, from the rollups' notes (sq_rollup.c), as it does for
-- delivery_counts and stat_rollups; a transaction that makes or ends no held
-- delivery writes nothing here. WITHOUT ROWID: no update hook, so these
-- writes do not empty the writer's caches (sq_cache.c).
CREATE TABLE endpoint_held (
    endpoint_id TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO endpoint_held (endpoint_id, n)
SELECT endpoint_id, count(*) FROM deliveries WHERE status = 'held' GROUP BY endpoint_id;
