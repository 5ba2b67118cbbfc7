-- Operational endpoints: an account's endpoints that receive fluxhook's own
-- events about its other endpoints (endpoint.disabled, delivery.failed, ...).
-- Those types fan out only to them, the producers' types never do.
ALTER TABLE endpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer'
    CHECK (kind IN ('customer', 'operational'));
