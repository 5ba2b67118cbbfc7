-- A replay under way: the statuses it takes and the ids of its endpoint's
-- deliveries still to go, [next_id, until_id). Each chunk of the replay moves
-- some and advances next_id in its own transaction; the last deletes the row.
-- A replay a crash cut short goes on at the next open.
CREATE TABLE replays (
    id INTEGER PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    from_status TEXT NOT NULL,
    from_status2 TEXT NOT NULL, -- the same as from_status when it takes one status
    next_id TEXT NOT NULL,
    until_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
