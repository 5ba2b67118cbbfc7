-- Cheaper publishes and results (issue 9): the foreign keys of deliveries
-- (account, event, endpoint) and of attempts (delivery) are dropped. With
-- foreign_keys on, each delivery inserted at a publish sought its three
-- parent rows and each attempt its delivery, and every delete of a delivery
-- or an event sought its children; the writer already guarantees what they
-- checked: a publish inserts its event and its deliveries in one job, for
-- endpoints it read in that job (an endpoint's row, like an account's, is
-- never deleted: deletion marks it); a result inserts its attempt after it
-- updated the delivery in the same job; retention deletes an event's
-- attempts, then its deliveries, then the event.
--
-- A foreign key changes nothing on disk, so the tables keep their rows and
-- only their definitions change (SQLite's documented way to remove one:
-- PRAGMA writable_schema and an UPDATE of sqlite_schema). The rename of a
-- scratch table makes SQLite read the whole schema again, on this connection
-- and, through the schema cookie it changes, on every other: statements are
-- prepared again from the new definitions.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(replace(replace(sql,
        ' REFERENCES accounts (id)', ''), ' REFERENCES events (id)', ''),
        ' REFERENCES endpoints (id)', '')
    WHERE type = 'table' AND name = 'deliveries';
UPDATE sqlite_schema
    SET sql = replace(sql, ' REFERENCES deliveries (id)', '')
    WHERE type = 'table' AND name = 'attempts';
PRAGMA writable_schema = OFF;
CREATE TABLE migration_020 (x);
ALTER TABLE migration_020 RENAME TO migration_020_done;
DROP TABLE migration_020_done;
