-- The writer now keeps delivery_counts itself, adding each transaction's
-- changes before it commits: the triggers cost a fifth of publish time.
DROP TRIGGER IF EXISTS deliveries_count_insert;
DROP TRIGGER IF EXISTS deliveries_count_update;
UPDATE delivery_counts
    SET n = (SELECT count(*) FROM deliveries d WHERE d.status = delivery_counts.status);
