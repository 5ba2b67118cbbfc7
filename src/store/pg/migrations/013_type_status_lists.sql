-- Lists by event type and status (issue 9). A list filtered by type and
-- status (GET /v1/deliveries?event=&status=, with or without endpoint_id)
-- had no index of its own: it read one index by type or by status and
-- filtered every row of that range, all of it when the pair is rare. The
-- type indexes now carry the status before the id and serve both filters:
-- a list by type alone merges one range per status in id order, as the
-- account's unfiltered list merges deliveries_account_status
-- (pg_events.c).
DROP INDEX IF EXISTS deliveries_account_type;
DROP INDEX IF EXISTS deliveries_endpoint_type;
CREATE INDEX deliveries_account_type_status
    ON deliveries (account_id, event_type, status, id);
CREATE INDEX deliveries_endpoint_type_status
    ON deliveries (endpoint_id, event_type, status, id);
