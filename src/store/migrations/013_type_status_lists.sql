-- Lists by event type and status (issue 9). A list filtered by type and
-- status (GET /v1/deliveries?event=&status=, with or without endpoint_id)
-- had no index of its own: it read one index by type or by status and
-- filtered every row of that range, all of it when the pair is rare. The
-- type indexes now carry the status before the id and serve both filters:
-- a list by type alone merges one range per status in id order, as the
-- account's unfiltered list merges deliveries_account_status (sq_events.c).
-- They leave out the deliveries being delivered, so that the hot path
-- writes no more than before: a hand-off inserts its delivery 'delivering'
-- (no entry) and its result adds the one entry the insert used to add; a
-- claim removes it and its result puts it back. A list of a type's
-- deliveries being delivered reads deliveries_in_flight (a few per
-- endpoint, under their leases). IF NOT EXISTS: bench/store_reads.c
-- applies 006 again, then this one.
DROP INDEX IF EXISTS deliveries_account_type;
DROP INDEX IF EXISTS deliveries_endpoint_type;
CREATE INDEX IF NOT EXISTS deliveries_account_type_status
    ON deliveries (account_id, event_type, status, id) WHERE status <> 'delivering';
CREATE INDEX IF NOT EXISTS deliveries_endpoint_type_status
    ON deliveries (endpoint_id, event_type, status, id) WHERE status <> 'delivering';
