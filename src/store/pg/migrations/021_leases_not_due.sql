-- SQLite's migration 021 keeps leased deliveries out of its due indexes
-- (found by a sweep instead). PostgreSQL keeps its own schema and claim
-- path: nothing to change here.
SELECT 1;
