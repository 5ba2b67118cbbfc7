-- Cheaper results (issue 9): two indexes that every delivery's life wrote
-- and that others serve. An update that changes a delivery's status adds
-- an entry to every index of the row, so each index dropped is one entry
-- fewer at the publish, the claim and the result.
-- deliveries_live (endpoint_id, lease_until) WHERE status = 'delivering':
-- the claims' count of live leases and the statistics' count of the
-- deliveries being delivered read the 'delivering' range of
-- deliveries_endpoint_status, a few per endpoint (its leases).
-- attempts_account_at (account_id, at): the statistics' head of an
-- account's window (the part before its first whole minute) reads
-- attempts_endpoint_at once per endpoint of the account.
DROP INDEX IF EXISTS deliveries_live;
DROP INDEX IF EXISTS attempts_account_at;
