-- Each attempt keeps the request headers it was sent with, the signatures
-- included, and the final header block of the receiver's answer (at most
-- 4 KiB), both as "Name: value" lines separated by CRLF. NULL for attempts
-- recorded before this version.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN response_headers TEXT;

-- The delivery log's filters by status and by event type, newest first,
-- without scanning the account's other deliveries. The date range uses the
-- ids (they sort by creation time), so deliveries_account and
-- deliveries_endpoint serve it.
CREATE INDEX deliveries_account_status ON deliveries (account_id, status, id);
CREATE INDEX deliveries_account_type ON deliveries (account_id, event_type, id);
