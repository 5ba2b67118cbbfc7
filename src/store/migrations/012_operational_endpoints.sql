-- Operational endpoints: an account's endpoints that receive fluxhook's own
-- events about its other endpoints (endpoint.disabled, delivery.failed, ...).
-- Those types fan out only to them, the producers' types never do.
ALTER TABLE endpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer'
    CHECK (kind IN ('customer', 'operational'));

-- Retention deletes tokens that expired before its window, oldest first.
CREATE INDEX tokens_expires ON tokens (expires_at) WHERE expires_at > 0;
