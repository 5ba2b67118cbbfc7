-- Cheaper hand-offs, claims and results (issue 9): the due indexes hold only
-- pending deliveries (at their next attempt). They held leased ones too (at
-- their lease's end, through the generated column due_at), so every
-- delivery handed off at a publish or an enable entered both and left them at
-- its result, and a claim moved its row within both: four B-tree changes per
-- delivery on the writer. A lease that runs out is found by the claims' sweep
-- of each endpoint's delivering rows instead (sq_dispatch.c). due_at stays in
-- the table (dropping a generated column would rebuild it); nothing reads it.
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_endpoint_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
