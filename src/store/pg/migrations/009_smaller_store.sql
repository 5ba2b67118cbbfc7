-- A smaller store (issue 9): deliveries_held (endpoint_id) WHERE status =
-- 'held' is covered by deliveries_endpoint_status (endpoint_id, status, id),
-- which an enable's chunks, the held counts and the probe for an enable cut
-- short read in the order they take. deliveries_account stays here: the
-- planner does not merge the per-status ranges of an unfiltered list.
DROP INDEX IF EXISTS deliveries_held;
