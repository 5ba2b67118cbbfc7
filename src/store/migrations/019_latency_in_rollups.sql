-- The latency histogram in the rollup row (issue 9): stat_latency held one
-- row per endpoint (or account), span, start and latency bucket, so each
-- commit wrote one statement per bucket its attempts fell in, per span and
-- per endpoint and account, beside the row of counts. stat_rollups.lat now
-- holds the same histogram as one blob (src/store/sqlite/sq_lat.c: for each
-- bucket used, ascending, the bucket and its count as varints), added to in
-- the UPDATE that adds the counts: lat_add() and lat_agg() are functions of
-- the writer's connection, which runs the migrations.
ALTER TABLE stat_rollups ADD COLUMN lat BLOB;
-- Every latency row has its row of counts (both are written for an
-- attempt); one without is given an empty one rather than dropped.
INSERT OR IGNORE INTO stat_rollups (endpoint_id, span, start, account_id)
    SELECT endpoint_id, span, start, account_id FROM stat_latency;
UPDATE stat_rollups SET lat = (
    SELECT lat_agg(l.bucket, l.n) FROM stat_latency l
    WHERE l.endpoint_id = stat_rollups.endpoint_id AND l.span = stat_rollups.span
      AND l.start = stat_rollups.start);
DROP TABLE stat_latency;
