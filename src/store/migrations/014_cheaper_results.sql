-- Cheaper results (issue 9): three indexes that every delivery's life wrote
-- and that others serve.
-- deliveries_in_flight (endpoint_id, lease_until) WHERE status = 'delivering'
-- took an entry at each hand-off or claim and gave it up at the result.
-- The deliveries being delivered are one range of each status index
-- (deliveries_endpoint_status, deliveries_account_status), a few per
-- endpoint (its leases): the live-lease count, the statistics' count of
-- them and the lists of a type's deliveries being delivered read those.
-- attempts_account_at (account_id, at) took an entry per attempt for the
-- statistics' head of an account's window (the part before its first whole
-- minute): that reads attempts_endpoint_at once per endpoint of the account.
-- deliveries_endpoint (endpoint_id, id) took an entry per delivery for an
-- endpoint's list without a status, the statistics' head of an endpoint's
-- window and a replay's ranges: deliveries_endpoint_status holds the same
-- rows, one range per status, which those read and merge in id order, as
-- an account's list merges deliveries_account_status (migration 009).
DROP INDEX IF EXISTS deliveries_in_flight;
DROP INDEX IF EXISTS deliveries_endpoint;
DROP INDEX IF EXISTS attempts_account_at;
