-- SQLite's migration 020 drops the foreign keys of deliveries and attempts
-- (what they checked, the writer guarantees). PostgreSQL keeps its own:
-- nothing to change here.
SELECT 1;
