-- Cheaper hand-offs and results (issue 9): the account's status index leaves
-- out the deliveries being delivered, as the type indexes do (migration 013).
-- A delivery handed off at its publish is inserted 'delivering' and its
-- result makes it 'delivered': the entry the insert added and the result
-- removed is no longer written (a claim removes the entry of the row it
-- takes, and the result adds it back). The deliveries of an account being
-- delivered are the 'delivering' range of deliveries_endpoint_status of
-- each endpoint it has or had, a few per endpoint (its leases):
-- endpoints_account_any finds those endpoints, deleted ones included.
DROP INDEX IF EXISTS deliveries_account_status;
CREATE INDEX IF NOT EXISTS deliveries_account_status
    ON deliveries (account_id, status, id) WHERE status <> 'delivering';
CREATE INDEX IF NOT EXISTS endpoints_account_any ON endpoints (account_id, id);
