-- A smaller store (issue 9): two indexes of deliveries that others cover.
-- deliveries_held (endpoint_id) WHERE status = 'held': an enable's chunks,
-- the held counts of endpoint reads and the probe for an enable cut short
-- read deliveries_endpoint_status (endpoint_id, status, id), which holds the
-- same rows in the order the chunks take them.
-- deliveries_account (account_id, id): a list of an account's deliveries
-- without a filter merges five ranges of deliveries_account_status
-- (account_id, status, id), one per status, in id order (sq_events.c); the
-- statistics' head of a window counts the same five ranges (sq_stats.c).
-- Each was about 60 to 75 bytes per delivery.
DROP INDEX IF EXISTS deliveries_held;
DROP INDEX IF EXISTS deliveries_account;
