-- Each attempt keeps the request headers it was sent with, the signatures
-- included, and the final header block of the receiver's answer (at most
-- 4 KiB), both as "Name: value" lines separated by CRLF. NULL for attempts
-- recorded before this version.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN response_headers TEXT;

-- The delivery log's filters by status and by event type, newest first,
-- without scanning the account's other deliveries. The date range uses the
-- ids (they sort by creation time), so deliveries_account and
-- deliveries_endpoint serve it.
CREATE INDEX deliveries_account_status ON deliveries (account_id, status, id);
CREATE INDEX deliveries_account_type ON deliveries (account_id, event_type, id);

-- Applies attempt results as in 004, and records each one's headers: its
-- "reqh" and "resh" keys, NULL when absent (as from a process still running an
-- older fluxhook during an upgrade).
CREATE OR REPLACE FUNCTION fluxhook_results(p_now BIGINT, p_results JSON)
RETURNS TABLE (kind TEXT, id TEXT, token BIGINT, current_token BIGINT, current_status TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ok INTEGER[];     -- the results that count, by position
    v_disabled TEXT[];  -- endpoints this call disabled
BEGIN
    PERFORM 1 FROM deliveries d
    WHERE d.id IN (SELECT r.id FROM json_to_recordset(p_results) AS r (id TEXT))
      AND d.status = 'delivering'
    ORDER BY d.id FOR UPDATE;
    -- The first result of each delivery under its current lease.
    SELECT array_agg(s.i) INTO v_ok
    FROM (SELECT DISTINCT ON (r.id) r.i
          FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, token BIGINT)
          JOIN deliveries d ON d.id = r.id
          WHERE d.status = 'delivering' AND d.lease_token = r.token
          ORDER BY r.id, r.i) s;
    v_ok := coalesce(v_ok, '{}');

    IF EXISTS (SELECT 1 FROM json_to_recordset(p_results) AS r (i INTEGER, disable BOOLEAN)
               WHERE r.i = ANY (v_ok) AND r.disable) THEN
        PERFORM 1 FROM endpoints e
        WHERE e.id IN (SELECT d.endpoint_id
                       FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT,
                                                               disable BOOLEAN)
                       JOIN deliveries d ON d.id = r.id
                       WHERE r.i = ANY (v_ok) AND r.disable)
          AND e.status = 'enabled' AND e.deleted_at = 0
        ORDER BY e.id FOR UPDATE;
        WITH x AS (
            SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, r.reason
            FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, disable BOOLEAN,
                                                    reason TEXT)
            JOIN deliveries d ON d.id = r.id
            WHERE r.i = ANY (v_ok) AND r.disable
            ORDER BY d.endpoint_id, r.i),
        y AS (
            UPDATE endpoints e SET status = 'disabled',
                disabled_reason = coalesce(x.reason, 'retries exhausted'),
                disabled_at = p_now, updated_at = p_now
            FROM x WHERE e.id = x.endpoint_id AND e.status = 'enabled' AND e.deleted_at = 0
            RETURNING e.id)
        SELECT array_agg(y.id) INTO v_disabled FROM y;
        UPDATE deliveries d SET status = 'held', updated_at = p_now
        WHERE d.endpoint_id = ANY (v_disabled) AND d.status = 'pending';
    END IF;

    WITH r AS (
        SELECT j.*, d.attempts_made, e.deleted_at, e.status AS ep_status,
               CASE j.status WHEN 'delivering' THEN 'pending' ELSE j.status END AS s0
        FROM json_to_recordset(p_results) AS j (i INTEGER, id TEXT, status TEXT, next BIGINT,
                                                n INTEGER, at BIGINT, code INTEGER,
                                                error TEXT, eclass TEXT, ms BIGINT,
                                                body TEXT, reqh TEXT, resh TEXT)
        JOIN deliveries d ON d.id = j.id
        JOIN endpoints e ON e.id = d.endpoint_id
        WHERE j.i = ANY (v_ok)),
    f AS (
        SELECT r.*, greatest(r.attempts_made + 1, r.n) AS nn,
               CASE WHEN r.s0 = 'pending' AND r.deleted_at <> 0 THEN 'failed'
                    WHEN r.s0 = 'pending' AND r.ep_status = 'disabled' THEN 'held'
                    ELSE r.s0 END AS fin
        FROM r),
    u AS (
        UPDATE deliveries d SET status = f.fin, attempts_made = f.nn,
            next_attempt_at = CASE WHEN f.fin = 'pending' THEN f.next ELSE 0 END,
            lease_until = 0, last_status_code = f.code,
            last_error = CASE WHEN f.fin = 'delivered' THEN NULL
                              WHEN f.fin = 'failed' AND f.s0 = 'pending' THEN 'endpoint deleted'
                              ELSE f.error END,
            updated_at = p_now
        FROM f WHERE d.id = f.id
        RETURNING d.id, d.account_id, d.endpoint_id)
    INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, error,
                          error_class, duration_ms, response_body, outcome,
                          request_headers, response_headers)
    SELECT f.id, f.nn, u.account_id, u.endpoint_id,
           CASE WHEN f.at <> 0 THEN f.at ELSE p_now END, f.code, f.error, f.eclass, f.ms,
           decode(f.body, 'hex'), f.fin, f.reqh, f.resh
    FROM f JOIN u ON u.id = f.id;

    RETURN QUERY
    SELECT CASE WHEN d.id IS NULL THEN 'unknown' ELSE 'fenced' END, r.id, r.token,
           d.lease_token, d.status
    FROM json_to_recordset(p_results) AS r (i INTEGER, id TEXT, token BIGINT)
    LEFT JOIN deliveries d ON d.id = r.id
    WHERE r.i <> ALL (v_ok)
    UNION ALL
    SELECT 'disabled', x, NULL, NULL, NULL FROM unnest(v_disabled) x;
END $$;
