-- Fencing: every claim gives its delivery a greater lease token, and a result
-- is recorded only while its token is still the delivery's current one.
ALTER TABLE deliveries ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
-- The in-flight cap counts an endpoint's deliveries under a live lease.
CREATE INDEX deliveries_in_flight ON deliveries (endpoint_id, lease_until)
    WHERE status = 'delivering';
