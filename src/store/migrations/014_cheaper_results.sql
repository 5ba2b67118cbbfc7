-- Cheaper results (issue 9): two indexes that every delivery's life wrote
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
DROP INDEX IF EXISTS deliveries_in_flight;
DROP INDEX IF EXISTS attempts_account_at;
