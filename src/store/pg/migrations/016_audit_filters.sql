-- The audit log's filters by action and by actor get an index each, as the
-- one by target has (008): a filtered page costs its rows, not a walk of
-- every entry of the account. The log is written a few times per change an
-- operator makes, never on the delivery path. IF NOT EXISTS, as 013.
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (account_id, action, id);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (account_id, actor, id);
