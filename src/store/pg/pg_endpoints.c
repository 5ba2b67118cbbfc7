/*
 * PostgreSQL backend: endpoints, their subscriptions (fan-out) and the
 * switches that hold, resume or end their deliveries. Each change is one
 * statement (data-modifying CTEs), so it is atomic on any number of hosts.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/clock.h"
#include "util/err.h"

#define EP_COLS                                                                                    \
    "e.id, e.account_id, e.url, e.description, e.event_types, e.status, e.disabled_reason, "       \
    "e.disabled_at, e.secret, e.prev_secret, e.prev_secret_until, e.created_at, e.updated_at, "    \
    "e.kind"
/* Kept by a trigger as deliveries become or stop being held, a row per backend (017). */
#define EP_HELD "(SELECT coalesce(sum(n), 0) FROM endpoint_held h WHERE h.endpoint_id = e.id)"

/* The endpoint and its fan-out rows ($14: the types, '' for every type). */
static const char SQL_EP_INSERT[] =
    "WITH e AS (INSERT INTO endpoints (id, account_id, url, description, event_types, status, "
    "disabled_reason, disabled_at, secret, prev_secret, prev_secret_until, created_at, "
    "updated_at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15) "
    "RETURNING id, account_id) "
    "INSERT INTO endpoint_types (account_id, event_type, endpoint_id) "
    "SELECT e.account_id, t, e.id FROM e, unnest($14::text[]) t";
static const char SQL_EP_GET[] = "SELECT " EP_COLS ", " EP_HELD " FROM endpoints e "
                                 "WHERE e.id = $1 AND e.account_id = $2 AND e.deleted_at = 0";
static const char SQL_EP_FIND[] = "SELECT " EP_COLS ", -1 FROM endpoints e "
                                  "WHERE e.id = $1 AND e.account_id = $2 AND e.deleted_at = 0";
static const char SQL_EP_LIST[] = "SELECT " EP_COLS ", " EP_HELD " FROM endpoints e "
                                  "WHERE e.account_id = $1 AND e.deleted_at = 0 "
                                  "AND e.id > $2 AND e.kind = $4 ORDER BY e.id LIMIT $3";
static const char SQL_EP_SUBSCRIBED[] =
    "SELECT " EP_COLS ", 0 FROM endpoint_types t JOIN endpoints e ON e.id = t.endpoint_id "
    "WHERE t.account_id = $1 AND t.event_type IN ($2, '') AND e.deleted_at = 0 "
    "AND e.kind = $3 ORDER BY e.id";
/*
 * A NULL parameter leaves its column as it is: a PATCH changes only what it
 * names. New types ($6, an array; NULL when unchanged) replace the fan-out
 * rows: the ones no longer named go, the new ones come (disjoint rows, so
 * the two parts of the statement never meet).
 */
static const char SQL_EP_UPDATE[] =
    "WITH e AS (UPDATE endpoints SET url = coalesce($3, url), "
    "description = coalesce($4, description), event_types = coalesce($5, event_types), "
    "updated_at = $7 WHERE id = $1 AND account_id = $2 AND deleted_at = 0 "
    "RETURNING id, account_id), "
    "gone AS (DELETE FROM endpoint_types t USING e WHERE $6::text[] IS NOT NULL "
    "AND t.endpoint_id = e.id AND t.event_type <> ALL ($6::text[])), "
    "added AS (INSERT INTO endpoint_types (account_id, event_type, endpoint_id) "
    "SELECT e.account_id, x, e.id FROM e, unnest($6::text[]) x ON CONFLICT DO NOTHING) "
    "SELECT count(*) FROM e";
static const char SQL_EP_ROTATE[] =
    "UPDATE endpoints SET prev_secret = CASE WHEN $4::bigint > 0 THEN secret END, "
    "prev_secret_until = $4, secret = $3, updated_at = $5 "
    "WHERE id = $1 AND account_id = $2 AND deleted_at = 0";
static const char SQL_EP_DELETE[] =
    "WITH e AS (UPDATE endpoints SET deleted_at = $3, updated_at = $3 "
    "WHERE id = $1 AND account_id = $2 AND deleted_at = 0 RETURNING id), "
    "t AS (DELETE FROM endpoint_types t USING e WHERE t.endpoint_id = e.id), "
    "d AS (UPDATE deliveries d SET status = 'failed', last_error = 'endpoint deleted', "
    "updated_at = $3 FROM e WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'held')) "
    "SELECT count(*) FROM e";
static const char SQL_EP_DISABLE[] =
    "WITH e AS (UPDATE endpoints SET status = 'disabled', disabled_reason = $3, "
    "disabled_at = $4, updated_at = $4 "
    "WHERE id = $1 AND account_id = $2 AND deleted_at = 0 RETURNING id), "
    "h AS (UPDATE deliveries d SET status = 'held', updated_at = $4 FROM e "
    "WHERE d.endpoint_id = e.id AND d.status = 'pending') "
    "SELECT count(*) FROM e";
/*
 * One chunk of the held deliveries of endpoint $1, the $5 oldest: $3 skips
 * them (they fail), else resumes them in a new round, due now ($4).
 */
#define HELD_CHUNK_SET                                                                     \
    "UPDATE deliveries d SET "                                                             \
    "status = CASE WHEN $3::boolean THEN 'failed' ELSE 'pending' END, "                    \
    "last_error = CASE WHEN $3::boolean THEN 'skipped' ELSE d.last_error END, "            \
    "next_attempt_at = CASE WHEN $3::boolean THEN d.next_attempt_at ELSE $4 END, "         \
    "round_start = CASE WHEN $3::boolean THEN d.round_start ELSE d.attempts_made END, "    \
    "lease_until = 0, updated_at = $4 "                                                    \
    "WHERE d.status = 'held' AND d.id IN (SELECT id FROM deliveries WHERE endpoint_id = $1 " \
    "AND status = 'held' ORDER BY id LIMIT $5 FOR UPDATE) "
static const char SQL_EP_ENABLE[] =
    "WITH e AS (UPDATE endpoints SET status = 'enabled', disabled_reason = NULL, "
    "disabled_at = 0, updated_at = $4 "
    "WHERE id = $1 AND account_id = $2 AND deleted_at = 0 RETURNING id), "
    "r AS (" HELD_CHUNK_SET "AND EXISTS (SELECT 1 FROM e) RETURNING 1) "
    "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM r)";
/*
 * The endpoint's row is locked (FOR SHARE) so a disable waits for the chunk,
 * or stops it. $2 (the enable's account id) is unused: always NULL.
 */
static const char SQL_EP_HELD_CHUNK[] =
    "WITH e AS (SELECT id FROM endpoints WHERE id = $1 AND status = 'enabled' "
    "AND deleted_at = 0 AND $2::text IS NULL FOR SHARE), "
    "r AS (" HELD_CHUNK_SET "AND EXISTS (SELECT 1 FROM e) RETURNING 1) "
    "SELECT count(*) FROM r";

/* An enable cut short (a crash between its chunks) left these held. */
static const char SQL_EP_HELD_NEXT[] =
    "SELECT e.id FROM endpoints e WHERE e.status = 'enabled' AND e.deleted_at = 0 AND EXISTS "
    "(SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'held') LIMIT 1";

static int
endpoint_read(const PGresult *res, int row, void *out)
{
    struct endpoint *ep = out;
    int err;

    memset(ep, 0, sizeof(*ep));
    pg_col_copy(res, row, 0, ep->id, sizeof(ep->id));
    pg_col_copy(res, row, 1, ep->account_id, sizeof(ep->account_id));
    ep->status =
        strcmp(PQgetvalue(res, row, 5), "disabled") == 0 ? ENDPOINT_DISABLED : ENDPOINT_ENABLED;
    ep->disabled_at = pg_col_int(res, row, 7);
    ep->prev_secret_until = pg_col_int(res, row, 10);
    ep->created_at = pg_col_int(res, row, 11);
    ep->updated_at = pg_col_int(res, row, 12);
    ep->operational = strcmp(PQgetvalue(res, row, 13), "operational") == 0;
    ep->held = pg_col_int(res, row, 14);
    if ((err = pg_col_strdup(res, row, 2, &ep->url)) != 0 ||
        (err = pg_col_strdup(res, row, 3, &ep->description)) != 0 ||
        (err = pg_col_strdup(res, row, 4, &ep->event_types)) != 0 ||
        (err = pg_col_strdup(res, row, 6, &ep->disabled_reason)) != 0 ||
        (err = pg_col_strdup(res, row, 8, &ep->secret)) != 0 ||
        (err = pg_col_strdup(res, row, 9, &ep->prev_secret)) != 0)
        return err;
    return 0;
}

/*
 * The comma list of event types as a text[] literal into b ({""}: every
 * type). Returns 0, ERR_INVAL for an over-long type, or ERR_NOMEM.
 */
static int
types_array(const char *list, struct buf *b)
{
    char **types = NULL;
    size_t ntypes = 0, i;
    int err;

    err = store_types_split(list, &types, &ntypes);
    if (err == 0)
        err = pg_array_begin(b);
    for (i = 0; i < (ntypes == 0 ? 1 : ntypes) && err == 0; i++)
        err = pg_array_add(b, ntypes == 0 ? "" : types[i]);
    if (err == 0)
        err = pg_array_end(b);
    store_types_free(types, ntypes);
    return err;
}

int
pg_endpoint_insert(struct store *st, const struct endpoint *ep)
{
    struct pg_query q;
    struct buf types;
    int64_t now = clock_now_ms();
    int disabled, err;

    if (ep == NULL || ep->id[0] == '\0' || ep->url == NULL || ep->secret == NULL)
        return ERR_INVAL;
    buf_init(&types, 1 << 20);
    err = types_array(ep->event_types, &types);
    if (err != 0)
        goto out;
    disabled = ep->status == ENDPOINT_DISABLED;
    pg_query_init(&q, SQL_EP_INSERT);
    pg_arg_text(&q, ep->id);
    pg_arg_text(&q, ep->account_id);
    pg_arg_text(&q, ep->url);
    pg_arg_text(&q, ep->description != NULL ? ep->description : "");
    pg_arg_text(&q, ep->event_types != NULL ? ep->event_types : "");
    pg_arg_text(&q, endpoint_status_name(ep->status));
    pg_arg_text(&q, disabled ? (ep->disabled_reason != NULL ? ep->disabled_reason : "") : NULL);
    pg_arg_int(&q, disabled ? (ep->disabled_at != 0 ? ep->disabled_at : now) : 0);
    pg_arg_text(&q, ep->secret);
    pg_arg_text(&q, ep->prev_secret);
    pg_arg_int(&q, ep->prev_secret != NULL ? ep->prev_secret_until : 0);
    pg_arg_int(&q, ep->created_at != 0 ? ep->created_at : now);
    pg_arg_int(&q, ep->updated_at != 0 ? ep->updated_at : now);
    pg_arg_text(&q, buf_cstr(&types));
    pg_arg_text(&q, ep->operational ? "operational" : "customer");
    err = pg_exec(st->impl, &q, NULL, "inserting an endpoint");
out:
    buf_cleanup(&types);
    return err;
}

int
pg_endpoint_get(struct store *st, const char *account_id, const char *id, struct endpoint *out,
                int held)
{
    struct pg_query q;
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, held ? SQL_EP_GET : SQL_EP_FIND);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    err = pg_get_one(st->impl, &q, endpoint_read, out, "reading an endpoint");
    if (err != 0)
        endpoint_cleanup(out);
    return err;
}

/* Runs a query of endpoint rows into *out and *n. */
static int
endpoint_rows(struct store *st, const struct pg_query *q, struct endpoint **out, size_t *n,
              const char *what)
{
    struct endpoint *list = NULL;
    size_t count = 0;
    int err;

    err = pg_get_all(st->impl, q, endpoint_read, &list, &count, sizeof(*list), what);
    if (err != 0) {
        endpoint_list_free(list, count);
        return err;
    }
    *out = list;
    *n = count;
    return 0;
}

int
pg_endpoint_list(struct store *st, const char *account_id, int operational, const char *after,
                 int limit, struct endpoint **out, size_t *n)
{
    struct pg_query q;

    if (account_id == NULL)
        return 0;
    pg_query_init(&q, SQL_EP_LIST);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, after);
    pg_arg_int(&q, limit);
    pg_arg_text(&q, operational ? "operational" : "customer");
    return endpoint_rows(st, &q, out, n, "listing endpoints");
}

int
pg_endpoint_subscribed(struct store *st, const char *account_id, const char *type,
                       struct endpoint **out, size_t *n)
{
    struct pg_query q;

    if (account_id == NULL || type == NULL || type[0] == '\0')
        return ERR_INVAL;
    pg_query_init(&q, SQL_EP_SUBSCRIBED);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, type);
    pg_arg_text(&q, store_fanout_kind(type));
    return endpoint_rows(st, &q, out, n, "selecting subscribed endpoints");
}

/*
 * Runs a statement of this file whose one row starts with how many
 * endpoints it changed; ERR_NOTFOUND when none. *res (may be NULL) keeps
 * the row for the caller to read more.
 */
static int
endpoint_change(struct store *st, const struct pg_query *q, PGresult **res, const char *what)
{
    PGresult *r = NULL;
    int err;

    err = pg_run(st->impl, q, PG_WRITE, &r, what);
    if (err == 0 && (PQntuples(r) < 1 || pg_col_int(r, 0, 0) == 0))
        err = ERR_NOTFOUND;
    if (err == 0 && res != NULL) {
        *res = r;
        r = NULL;
    }
    pg_result_clear(r);
    return err;
}

int
pg_endpoint_update(struct store *st, const char *account_id, const char *id,
                   const struct endpoint_patch *p, int64_t now)
{
    struct pg_query q;
    struct buf types;
    int err = 0;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    buf_init(&types, 1 << 20);
    if (p->event_types != NULL)
        err = types_array(p->event_types, &types);
    if (err != 0)
        goto out;
    pg_query_init(&q, SQL_EP_UPDATE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, p->url);
    pg_arg_text(&q, p->description);
    pg_arg_text(&q, p->event_types);
    pg_arg_text(&q, p->event_types != NULL ? buf_cstr(&types) : NULL);
    pg_arg_int(&q, now);
    err = endpoint_change(st, &q, NULL, "updating an endpoint");
out:
    buf_cleanup(&types);
    return err;
}

int
pg_endpoint_rotate(struct store *st, const char *account_id, const char *id, const char *secret,
                   int64_t prev_until, int64_t now)
{
    struct pg_query q;
    int64_t rows = 0;
    int err;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_EP_ROTATE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, secret);
    pg_arg_int(&q, prev_until);
    pg_arg_int(&q, now);
    err = pg_exec(st->impl, &q, &rows, "rotating a secret");
    if (err == 0 && rows == 0)
        err = ERR_NOTFOUND;
    return err;
}

int
pg_endpoint_delete(struct store *st, const char *account_id, const char *id)
{
    struct pg_query q;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_EP_DELETE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_int(&q, clock_now_ms());
    return endpoint_change(st, &q, NULL, "deleting an endpoint");
}

int
pg_endpoint_disable(struct store *st, const char *account_id, const char *id, const char *reason,
                    int64_t now)
{
    struct pg_query q;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_EP_DISABLE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, reason);
    pg_arg_int(&q, now);
    return endpoint_change(st, &q, NULL, "disabling an endpoint");
}

/*
 * The enable (account_id set: SQL_EP_ENABLE, ERR_NOTFOUND for no such
 * endpoint) or a later chunk of it, as ck says; times the statement.
 */
static int
held_chunk_run(struct store *st, const char *account_id, const char *id, int skip_held,
               struct store_chunk *ck)
{
    struct pg_query q;
    PGresult *res = NULL;
    int64_t t0 = clock_mono_us();
    int err;

    ck->moved = 0;
    pg_query_init(&q, account_id != NULL ? SQL_EP_ENABLE : SQL_EP_HELD_CHUNK);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, skip_held ? "true" : "false");
    pg_arg_int(&q, ck->now);
    pg_arg_int(&q, ck->limit);
    if (account_id != NULL) {
        err = endpoint_change(st, &q, &res, "enabling an endpoint");
        if (err == 0)
            ck->moved = pg_col_int(res, 0, 1);
    } else {
        err = pg_run(st->impl, &q, PG_WRITE, &res, "moving held deliveries");
        if (err == 0 && PQntuples(res) == 1)
            ck->moved = pg_col_int(res, 0, 0);
    }
    ck->took_us = clock_mono_us() - t0;
    pg_result_clear(res);
    if (ck->moved > 0 && !skip_held)
        pg_due_mark(st->impl);
    return err;
}

int
pg_endpoint_enable(struct store *st, const char *account_id, const char *id, int skip_held,
                   struct store_chunk *ck)
{
    ck->moved = 0;
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return held_chunk_run(st, account_id, id, skip_held, ck);
}

int
pg_endpoint_held_chunk(struct store *st, const char *id, int skip_held, struct store_chunk *ck)
{
    return held_chunk_run(st, NULL, id, skip_held, ck);
}

static int
id_read(const PGresult *res, int row, void *out)
{
    pg_col_copy(res, row, 0, out, ID_MAX);
    return 0;
}

int
pg_endpoint_held_next(struct store *st, char *id)
{
    struct pg_query q;

    pg_query_init(&q, SQL_EP_HELD_NEXT);
    return pg_get_one(st->impl, &q, id_read, id, "finding held deliveries to resume");
}
