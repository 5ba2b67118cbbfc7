/*
 * SQLite backend: retention, deleting old events whose deliveries are all
 * finished, with their deliveries and attempts.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"

/*
 * Old events none of whose deliveries may still run. One whose idempotency
 * key still holds (younger than STORE_IDEMPOTENCY_MS) stays, so that a short
 * retention never lets a duplicate through.
 */
static const char SQL_PURGE_PICK[] =
    "SELECT e.id FROM events e WHERE e.id < :floor AND e.created_at < :before "
    "AND (e.idempotency_key IS NULL OR e.created_at < :idem) "
    "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id "
    "AND d.status <> 'delivered' AND d.status <> 'failed') ORDER BY e.id LIMIT :limit";
static const char SQL_PURGE_COUNT[] =
    "SELECT count(*) FILTER (WHERE status = 'delivered'), "
    "count(*) FILTER (WHERE status = 'failed') FROM deliveries WHERE event_id = :id";
static const char SQL_PURGE_ATTEMPTS[] =
    "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = :id)";
static const char SQL_PURGE_DELIVERIES[] = "DELETE FROM deliveries WHERE event_id = :id";
static const char SQL_PURGE_EVENT[] = "DELETE FROM events WHERE id = :id";
static const char SQL_PURGE_TOKENS[] =
    "DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE expires_at > 0 "
    "AND expires_at < :before ORDER BY expires_at LIMIT :limit)";

struct purge_args {
    char floor[ID_MAX];
    int64_t before;
    int64_t idem;
    int limit;
    struct store_purge_report r;
};

static int
id_read(sqlite3_stmt *stmt, void *out)
{
    sq_col_copy(stmt, 0, out, ID_MAX);
    return 0;
}

/* Runs one DELETE of event id's rows; *n gets how many it deleted. */
static int
purge_del(struct sq_conn *c, const char *sql, const char *id, int64_t *n)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "deleting old events");
    else
        *n += sqlite3_changes64(c->db);
    sq_done(stmt);
    return err;
}

static int
job_purge(struct sq_conn *c, void *arg)
{
    struct purge_args *a = arg;
    char(*ids)[ID_MAX] = NULL;
    sqlite3_stmt *stmt;
    size_t n = 0, i;
    int rc, err;

    memset(&a->r, 0, sizeof(a->r)); /* a job may run twice */
    stmt = sq_stmt(c, SQL_PURGE_PICK);
    if (stmt != NULL) {
        sq_bind_text(stmt, ":floor", a->floor);
        sq_bind_int(stmt, ":before", a->before);
        sq_bind_int(stmt, ":idem", a->idem);
        sq_bind_int(stmt, ":limit", a->limit);
    }
    err = sq_row_all(c, stmt, id_read, &ids, &n, ID_MAX, "picking old events");
    sq_done(stmt);
    for (i = 0; err == 0 && i < n; i++) {
        stmt = sq_stmt(c, SQL_PURGE_COUNT);
        if (stmt == NULL) {
            err = ERR_STORE;
            break;
        }
        sq_bind_text(stmt, ":id", ids[i]);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            sq_count_move(c, DELIVERY_DELIVERED, -1, sqlite3_column_int64(stmt, 0));
            sq_count_move(c, DELIVERY_FAILED, -1, sqlite3_column_int64(stmt, 1));
        } else {
            err = sq_err(c, rc, "counting old deliveries");
        }
        sq_done(stmt);
        if (err == 0)
            err = purge_del(c, SQL_PURGE_ATTEMPTS, ids[i], &a->r.attempts);
        if (err == 0)
            err = purge_del(c, SQL_PURGE_DELIVERIES, ids[i], &a->r.deliveries);
        if (err == 0)
            err = purge_del(c, SQL_PURGE_EVENT, ids[i], &a->r.events);
    }
    free(ids);
    if (err == 0 && (stmt = sq_stmt(c, SQL_PURGE_TOKENS)) == NULL)
        err = ERR_STORE;
    if (err == 0) {
        sq_bind_int(stmt, ":before", a->before);
        sq_bind_int(stmt, ":limit", a->limit);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
            err = sq_err(c, rc, "deleting expired tokens");
        else
            a->r.tokens = sqlite3_changes64(c->db);
        sq_done(stmt);
    }
    return err;
}

int
sq_purge(struct store *st, int64_t before, int limit, struct store_purge_report *out)
{
    struct purge_args a;
    int err;

    memset(&a, 0, sizeof(a));
    a.before = before;
    a.idem = clock_now_ms() - STORE_IDEMPOTENCY_MS;
    a.limit = limit;
    /* Ids sort by time: the primary key finds the old ones without a scan of new ones. */
    err = store_id_floor("evt_", before, a.floor);
    if (err == 0)
        err = sq_write(st->impl, job_purge, &a);
    if (err == 0)
        *out = a.r;
    return err;
}
