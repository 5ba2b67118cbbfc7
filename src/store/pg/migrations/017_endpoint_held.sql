-- Each endpoint's count of held deliveries, kept as they change, so that an
-- endpoint's object (its `held`, on every GET and in every page of
-- GET /v1/endpoints) costs a few rows, not a count of the endpoint's held
-- deliveries (a million of them while it stayed disabled). As for
-- delivery_counts (001), each server backend adds to its own rows (shard:
-- its pid), so concurrent transactions never wait for each other here; a
-- read sums the endpoint's rows, and the rows of backends that are gone are
-- folded into shard 0 at start (fluxhook_held_fold()).
CREATE TABLE endpoint_held (
    endpoint_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, shard)
);

INSERT INTO endpoint_held (endpoint_id, shard, n)
SELECT endpoint_id, 0, count(*) FROM deliveries WHERE status = 'held' GROUP BY endpoint_id;

-- Adds the held deliveries one statement on deliveries made or ended, by
-- endpoint, to this backend's rows: once per statement, from its transition
-- tables. A statement that touches no held delivery writes nothing.
CREATE FUNCTION fluxhook_held_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO endpoint_held AS h (endpoint_id, shard, n)
        SELECT endpoint_id, pg_backend_pid(), count(*) FROM new_rows
        WHERE status = 'held' GROUP BY endpoint_id
        ON CONFLICT (endpoint_id, shard) DO UPDATE SET n = h.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO endpoint_held AS h (endpoint_id, shard, n)
        SELECT x.endpoint_id, pg_backend_pid(), sum(x.d)
        FROM (SELECT endpoint_id, 1 AS d FROM new_rows WHERE status = 'held'
              UNION ALL SELECT endpoint_id, -1 FROM old_rows WHERE status = 'held') x
        GROUP BY x.endpoint_id HAVING sum(x.d) <> 0
        ON CONFLICT (endpoint_id, shard) DO UPDATE SET n = h.n + EXCLUDED.n;
    ELSE
        INSERT INTO endpoint_held AS h (endpoint_id, shard, n)
        SELECT endpoint_id, pg_backend_pid(), -count(*) FROM old_rows
        WHERE status = 'held' GROUP BY endpoint_id
        ON CONFLICT (endpoint_id, shard) DO UPDATE SET n = h.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_held_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_held_add();
CREATE TRIGGER deliveries_held_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_held_add();
CREATE TRIGGER deliveries_held_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxhook_held_add();

-- Folds the rows of backends that are gone into shard 0 (run at start,
-- under the migration lock, with fluxhook_counts_fold()).
CREATE FUNCTION fluxhook_held_fold() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM endpoint_held
        WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING endpoint_id, n)
    INSERT INTO endpoint_held AS h (endpoint_id, shard, n)
    SELECT endpoint_id, 0, sum(n) FROM gone GROUP BY endpoint_id
    ON CONFLICT (endpoint_id, shard) DO UPDATE SET n = h.n + EXCLUDED.n;
$$;
