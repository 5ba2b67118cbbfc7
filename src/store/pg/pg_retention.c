/*
 * PostgreSQL backend: retention, deleting old events whose deliveries are all
 * finished, with their deliveries, attempts and idempotency keys.
 */
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/clock.h"
#include "util/err.h"

/*
 * One statement. The events are locked (SKIP LOCKED: two hosts purging take
 * different ones), then their deliveries in id order, as every other writer
 * locks deliveries. A delivery moved back to work meanwhile (a replay that
 * committed first) is no longer finished when its lock is re-checked: it is
 * not deleted, its event's delete then breaks the foreign key and the whole
 * statement is undone, to be tried again at the next round. An event whose
 * idempotency key still holds stays. Tokens that expired before the
 * window go in the same statement.
 */
static const char SQL_PURGE[] =
    "WITH ev AS ("
    " SELECT e.id FROM events e WHERE e.id < $1 AND e.created_at < $2"
    " AND (e.idempotency_key IS NULL OR e.created_at < $3)"
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id"
    " AND d.status NOT IN ('delivered', 'failed'))"
    " ORDER BY e.id LIMIT $4 FOR UPDATE SKIP LOCKED),"
    " dl AS (SELECT d.id FROM deliveries d WHERE d.event_id IN (SELECT id FROM ev)"
    " AND d.status IN ('delivered', 'failed') ORDER BY d.id FOR UPDATE),"
    " a AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM dl) RETURNING 1),"
    " k AS (DELETE FROM idempotency_keys WHERE event_id IN (SELECT id FROM ev) RETURNING 1),"
    " d AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM dl) RETURNING 1),"
    " e AS (DELETE FROM events WHERE id IN (SELECT id FROM ev) RETURNING 1),"
    " t AS (DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE expires_at > 0"
    " AND expires_at < $2 ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING 1)"
    " SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM d), (SELECT count(*) FROM a),"
    " (SELECT count(*) FROM t)";

static void
report_read(const PGresult *res, int row, struct store_purge_report *r)
{
    r->events = pg_col_int(res, row, 0);
    r->deliveries = pg_col_int(res, row, 1);
    r->attempts = pg_col_int(res, row, 2);
    r->tokens = pg_col_int(res, row, 3);
}

int
pg_purge(struct store *st, int64_t before, int limit, struct store_purge_report *out)
{
    struct pg_query q;
    PGresult *res = NULL;
    char floor[ID_MAX];
    int err;

    err = store_id_floor("evt_", before, floor);
    if (err != 0)
        return err;
    pg_query_init(&q, SQL_PURGE);
    pg_arg_text(&q, floor);
    pg_arg_int(&q, before);
    pg_arg_int(&q, clock_now_ms() - STORE_IDEMPOTENCY_MS);
    pg_arg_int(&q, limit);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "deleting old events");
    if (err == 0 && PQntuples(res) == 1)
        report_read(res, 0, out);
    PQclear(res);
    return err;
}
