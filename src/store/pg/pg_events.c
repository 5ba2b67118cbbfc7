/*
 * PostgreSQL backend: publishing (fluxhook_publish(): the event, its
 * deliveries and its idempotency key in one statement), reading events,
 * deliveries and attempts, and delivering again (retry, replay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define EV_COLS "id, account_id, type, timestamp, body, idempotency_key, created_at, deliveries"
#define ARRAY_MAX (64u << 20) /* the longest array literal a call builds */

/*
 * A batch of events in one statement, so in one transaction: fluxhook_publish()
 * for each item in order ($3.. side by side; item i's deliveries are the
 * slice [first, first + count) of $11..$14). Each call takes its own
 * snapshot, so a key repeated inside the batch finds the earlier item. Rows
 * come back only for items whose idempotency key was live: the earlier event
 * and the item's number (from 1).
 */
static const char SQL_PUBLISH[] =
    "SELECT f.id, f.account_id, f.type, f.timestamp, f.body, f.idempotency_key, f.created_at, "
    "f.deliveries, u.i FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[], "
    "$7::text[], $8::bigint[], $9::int[], $10::int[]) WITH ORDINALITY "
    "AS u (id, type, ts, body, key, at, first, cnt, i) "
    "CROSS JOIN LATERAL fluxhook_publish(u.id, $1, u.type, u.ts, u.body, u.key, u.at, $2, "
    "($11::text[])[u.first:u.first + u.cnt - 1], ($12::text[])[u.first:u.first + u.cnt - 1], "
    "($13::text[])[u.first:u.first + u.cnt - 1], ($14::bigint[])[u.first:u.first + u.cnt - 1]) AS f "
    "ORDER BY u.i";
static const char SQL_EV_GET[] = "SELECT " EV_COLS " FROM events WHERE id = $1 AND account_id = $2";
/* $2: the type, or NULL for every type. */
static const char SQL_EV_LIST[] =
    "SELECT " EV_COLS " FROM events WHERE account_id = $1 AND ($2::text IS NULL OR type = $2) "
    "AND id < $3 ORDER BY id DESC LIMIT $4";
static const char SQL_DLV_GET[] =
    "SELECT " PG_DELIVERY_COLS " FROM deliveries WHERE id = $1 AND account_id = $2";
static const char SQL_ATT_LIST[] =
    "SELECT delivery_id, n, at, status_code, error, duration_ms, response_body, error_class, "
    "request_headers, response_headers "
    "FROM attempts WHERE delivery_id = $1 ORDER BY n";
/*
 * A new round, due now (held while its endpoint is disabled); not while it
 * is being delivered or when its endpoint is gone. Answers whether the
 * delivery exists, whether it changed, and whether it became due.
 */
static const char SQL_RETRY[] =
    "WITH u AS (UPDATE deliveries d SET "
    "status = CASE WHEN e.status = 'disabled' THEN 'held' ELSE 'pending' END, "
    "next_attempt_at = $3, lease_until = 0, round_start = d.attempts_made, updated_at = $3 "
    "FROM endpoints e WHERE d.id = $1 AND d.account_id = $2 AND e.id = d.endpoint_id "
    "AND d.status <> 'delivering' AND e.deleted_at = 0 RETURNING d.status) "
    "SELECT (SELECT count(*) FROM deliveries WHERE id = $1 AND account_id = $2), "
    "(SELECT count(*) FROM u), (SELECT count(*) FROM u WHERE status = 'pending')";
/*
 * A replay's record (010_replays.sql), made when endpoint $1 is account $2's:
 * the statuses $3 to deliver again, the ids [$4, $5) still to go.
 */
static const char SQL_REPLAY_RECORD[] =
    "INSERT INTO replays (endpoint_id, statuses, next_id, until_id, created_at) "
    "SELECT id, $3::text[], $4, $5, $6 FROM endpoints "
    "WHERE id = $1 AND account_id = $2 AND deleted_at = 0 RETURNING id";
/*
 * One chunk of replay $1: of the next $2 deliveries of its endpoint (by id),
 * those with its statuses are delivered again at $3 (held while the endpoint
 * is disabled, whose row is locked FOR SHARE as an enable's chunk does); the
 * record advances past them, or goes after the last chunk or with the
 * endpoint. Answers how many moved, how many became due, and whether more remain.
 */
static const char SQL_REPLAY_CHUNK[] =
    "WITH r AS (SELECT id, endpoint_id, statuses, next_id, until_id FROM replays "
    "WHERE id = $1 FOR UPDATE), "
    "e AS (SELECT p.id, p.status FROM endpoints p JOIN r ON p.id = r.endpoint_id "
    "WHERE p.deleted_at = 0 FOR SHARE OF p), "
    "b AS (SELECT coalesce((SELECT d.id FROM deliveries d, r WHERE d.endpoint_id = r.endpoint_id "
    "AND d.id >= r.next_id AND d.id < r.until_id ORDER BY d.id OFFSET $2 LIMIT 1), "
    "(SELECT until_id FROM r)) AS end_id), "
    "u AS (UPDATE deliveries d SET "
    "status = CASE WHEN e.status = 'disabled' THEN 'held' ELSE 'pending' END, "
    "next_attempt_at = $3, lease_until = 0, round_start = d.attempts_made, updated_at = $3 "
    "FROM e, r, b WHERE d.endpoint_id = e.id AND d.id >= r.next_id AND d.id < b.end_id "
    "AND d.status = ANY (r.statuses) RETURNING d.status), "
    "a AS (UPDATE replays p SET next_id = b.end_id FROM r, b, e "
    "WHERE p.id = r.id AND b.end_id < r.until_id RETURNING 1), "
    "x AS (DELETE FROM replays p USING r, b WHERE p.id = r.id "
    "AND (b.end_id >= r.until_id OR NOT EXISTS (SELECT 1 FROM e))) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM u WHERE status = 'pending'), "
    "(SELECT count(*) FROM a)";
static const char SQL_REPLAY_NEXT[] = "SELECT id FROM replays ORDER BY id LIMIT 1";
/*
 * What SQL_REPLAY would take ($3, $4: the id range; $5: the statuses),
 * changing nothing: whether the endpoint exists, how many, and the first $6
 * ids joined by commas.
 */
static const char SQL_REPLAY_PREVIEW[] =
    "SELECT (SELECT count(*) FROM endpoints WHERE id = $1 AND account_id = $2 AND deleted_at = 0), "
    "(SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND account_id = $2 "
    "AND id >= $3 AND id < $4 AND status = ANY ($5::text[])), "
    "array_to_string(ARRAY(SELECT id FROM deliveries WHERE endpoint_id = $1 AND account_id = $2 "
    "AND id >= $3 AND id < $4 AND status = ANY ($5::text[]) ORDER BY id LIMIT $6), ',')";

static int
event_read(const PGresult *res, int row, void *out)
{
    struct event *ev = out;

    memset(ev, 0, sizeof(*ev));
    pg_col_copy(res, row, 0, ev->id, sizeof(ev->id));
    pg_col_copy(res, row, 1, ev->account_id, sizeof(ev->account_id));
    pg_col_copy(res, row, 2, ev->type, sizeof(ev->type));
    pg_col_copy(res, row, 3, ev->timestamp, sizeof(ev->timestamp));
    pg_col_copy(res, row, 5, ev->idempotency_key, sizeof(ev->idempotency_key));
    ev->created_at = pg_col_int(res, row, 6);
    ev->deliveries = (int)pg_col_int(res, row, 7);
    return pg_col_bytes(res, row, 4, &ev->body, &ev->body_len);
}

/* --- publish --- */

/* A batch as array literals, side by side: one entry per event, one per delivery. */
struct batch_arrays {
    struct buf ids, types, ts, bodies, keys, at, first, count; /* per event */
    struct buf dlv, eps, statuses, created;                    /* per delivery */
    size_t pending; /* deliveries pending (due now), not held */
};

#define BATCH_BUFS(a)                                                                           \
    {&(a)->ids, &(a)->types, &(a)->ts, &(a)->bodies, &(a)->keys, &(a)->at, &(a)->first,        \
     &(a)->count, &(a)->dlv, &(a)->eps, &(a)->statuses, &(a)->created}

static void
batch_cleanup(struct batch_arrays *a)
{
    struct buf *bufs[] = BATCH_BUFS(a);
    size_t i;

    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_cleanup(bufs[i]);
}

/* Appends the integer v to the array literal b. */
static int
array_int(struct buf *b, int64_t v)
{
    return buf_printf(b, "%s%lld", b->len > 1 ? "," : "", (long long)v);
}

/* Appends body as a bytea element ("\\x" and hex digits) to the array literal b. */
static int
array_bytea(struct buf *b, const char *body, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    int err;

    err = buf_puts(b, b->len > 1 ? ",\"\\\\x" : "\"\\\\x");
    for (i = 0; i < len && err == 0; i++) {
        err = buf_putc(b, hex[(unsigned char)body[i] >> 4]);
        if (err == 0)
            err = buf_putc(b, hex[(unsigned char)body[i] & 15]);
    }
    return err != 0 ? err : buf_putc(b, '"');
}

/* One event of a batch and its new deliveries, appended to a. */
static int
batch_add(struct batch_arrays *a, const struct store_publish *it, size_t *ndlv)
{
    const struct event *ev = it->ev;
    char did[ID_MAX];
    size_t i;
    int err;

    err = pg_array_add(&a->ids, ev->id);
    if (err == 0)
        err = pg_array_add(&a->types, ev->type);
    if (err == 0)
        err = pg_array_add(&a->ts, ev->timestamp);
    if (err == 0)
        err = array_bytea(&a->bodies, ev->body, ev->body_len);
    if (err == 0)
        err = pg_array_add(&a->keys, ev->idempotency_key[0] != '\0' ? ev->idempotency_key : NULL);
    if (err == 0)
        err = array_int(&a->at, ev->created_at);
    if (err == 0)
        err = array_int(&a->first, (int64_t)*ndlv + 1);
    if (err == 0)
        err = array_int(&a->count, (int64_t)it->neps);
    for (i = 0; i < it->neps && err == 0; i++) {
        err = id_new("dlv_", did);
        if (err == 0)
            err = pg_array_add(&a->dlv, did);
        if (err == 0)
            err = pg_array_add(&a->eps, it->eps[i].id);
        if (err == 0)
            err = pg_array_add(&a->statuses,
                               it->eps[i].status == ENDPOINT_DISABLED ? "held" : "pending");
        if (err == 0)
            err = array_int(&a->created, id_time_ms(did));
        a->pending += it->eps[i].status != ENDPOINT_DISABLED;
    }
    *ndlv += it->neps;
    return err;
}

static int
batch_build(struct batch_arrays *a, const struct store_publish *items, size_t n)
{
    struct buf *bufs[] = BATCH_BUFS(a);
    size_t i, ndlv = 0;
    int err = 0;

    a->pending = 0;
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_init(bufs[i], ARRAY_MAX);
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]) && err == 0; i++)
        err = pg_array_begin(bufs[i]);
    for (i = 0; i < n && err == 0; i++)
        err = batch_add(a, &items[i], &ndlv);
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]) && err == 0; i++)
        err = pg_array_end(bufs[i]);
    return err;
}

/*
 * Looks up the fan-out of the items that leave it to the store (once per
 * event type), before the statement: fanout[] gets what to free after.
 */
static int
fanout_resolve(struct store *st, struct store_publish *items, size_t n, struct endpoint **fanout,
               size_t *nfanout)
{
    size_t i, k;
    int err;

    for (i = 0; i < n; i++) {
        if (!items[i].fanout)
            continue;
        for (k = 0; k < i; k++) {
            if (items[k].fanout && strcmp(items[k].ev->type, items[i].ev->type) == 0)
                break;
        }
        if (k < i) {
            items[i].eps = items[k].eps;
            items[i].neps = items[k].neps;
            continue;
        }
        err = pg_endpoint_subscribed(st, items[i].ev->account_id, items[i].ev->type, &fanout[i],
                                     &nfanout[i]);
        if (err != 0)
            return err;
        items[i].eps = fanout[i];
        items[i].neps = nfanout[i];
    }
    return 0;
}

int
pg_event_publish(struct store *st, struct store_publish *items, size_t n)
{
    struct endpoint *fanout[STORE_MAX_BATCH] = {0};
    size_t nfanout[STORE_MAX_BATCH] = {0};
    struct batch_arrays a;
    struct pg_query q;
    struct event earlier;
    PGresult *res = NULL;
    int64_t item;
    size_t i;
    int err, row;

    memset(&a, 0, sizeof(a));
    err = fanout_resolve(st, items, n, fanout, nfanout);
    if (err == 0)
        err = batch_build(&a, items, n);
    if (err != 0)
        goto out;
    pg_query_init(&q, SQL_PUBLISH);
    pg_arg_text(&q, items[0].ev->account_id);
    pg_arg_int(&q, STORE_IDEMPOTENCY_MS);
    pg_arg_text(&q, buf_cstr(&a.ids));
    pg_arg_text(&q, buf_cstr(&a.types));
    pg_arg_text(&q, buf_cstr(&a.ts));
    pg_arg_text(&q, buf_cstr(&a.bodies));
    pg_arg_text(&q, buf_cstr(&a.keys));
    pg_arg_text(&q, buf_cstr(&a.at));
    pg_arg_text(&q, buf_cstr(&a.first));
    pg_arg_text(&q, buf_cstr(&a.count));
    pg_arg_text(&q, buf_cstr(&a.dlv));
    pg_arg_text(&q, buf_cstr(&a.eps));
    pg_arg_text(&q, buf_cstr(&a.statuses));
    pg_arg_text(&q, buf_cstr(&a.created));
    err = pg_run(st->impl, &q, PG_WRITE, &res, "publishing events");
    if (err != 0)
        goto out;
    for (i = 0; i < n; i++) {
        items[i].err = 0;
        items[i].ev->deliveries = (int)items[i].neps;
    }
    /* A live duplicate of its idempotency key: nothing was stored for that item. */
    for (row = 0; row < PQntuples(res) && err == 0; row++) {
        item = pg_col_int(res, row, 8);
        if (item < 1 || (size_t)item > n) {
            err = ERR_STORE;
            break;
        }
        err = event_read(res, row, &earlier);
        if (err == 0) {
            event_cleanup(items[item - 1].ev);
            *items[item - 1].ev = earlier;
            items[item - 1].err = ERR_CONFLICT;
        } else {
            event_cleanup(&earlier);
        }
    }
    if (a.pending > 0)
        pg_due_mark(st->impl);
out:
    PQclear(res);
    batch_cleanup(&a);
    for (i = 0; i < n; i++) {
        endpoint_list_free(fanout[i], nfanout[i]);
        if (items[i].fanout) {
            items[i].eps = NULL;
            items[i].neps = 0;
        }
    }
    return err;
}

/* --- events --- */

int
pg_event_get(struct store *st, const char *account_id, const char *id, struct event *out)
{
    struct pg_query q;
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_EV_GET);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    err = pg_get_one(st->impl, &q, event_read, out, "reading an event");
    if (err != 0)
        event_cleanup(out);
    return err;
}

int
pg_event_list(struct store *st, const char *account_id, const char *type, const char *after,
              int limit, struct event **out, size_t *n)
{
    struct event *list = NULL;
    struct pg_query q;
    size_t count = 0;
    int err;

    if (account_id == NULL)
        return 0;
    pg_query_init(&q, SQL_EV_LIST);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, type != NULL && type[0] != '\0' ? type : NULL);
    /* "~" sorts after every id, so no cursor means "from the newest". */
    pg_arg_text(&q, after != NULL && after[0] != '\0' ? after : "~");
    pg_arg_int(&q, limit);
    err = pg_get_all(st->impl, &q, event_read, &list, &count, sizeof(*list), "listing events");
    if (err != 0) {
        event_list_free(list, count);
        return err;
    }
    *out = list;
    *n = count;
    return 0;
}

/* --- deliveries and attempts --- */

int
pg_delivery_get(struct store *st, const char *account_id, const char *id, struct delivery *out)
{
    struct pg_query q;
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_DLV_GET);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    err = pg_get_one(st->impl, &q, pg_delivery_read, out, "reading a delivery");
    if (err != 0)
        delivery_cleanup(out);
    return err;
}

static int
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Appends " AND <cond> $N" with the next parameter v to sql and q. */
static int
filter_add(struct buf *sql, struct pg_query *q, const char *cond, const char *v)
{
    pg_arg_text(q, v);
    return buf_printf(sql, " AND %s $%d", cond, q->n);
}

/*
 * The conditions of a delivery list on the columns of the index that serves
 * it: the endpoint (else the account), the event type and the status when
 * with_status, then the id bounds; each with its parameter added to q. An
 * event id's list adds the rest as filters of its few rows.
 */
static int
delivery_list_where(struct buf *sql, struct pg_query *q, const struct delivery_filter *f,
                    int with_status, char from[ID_MAX], char before[ID_MAX])
{
    int err;

    if (nonempty(f->endpoint_id) && !nonempty(f->event_id)) {
        pg_arg_text(q, f->endpoint_id);
        err = buf_printf(sql, "endpoint_id = $%d", q->n);
    } else {
        err = buf_puts(sql, "account_id = $1");
        if (err == 0 && nonempty(f->event_id))
            err = filter_add(sql, q, "event_id =", f->event_id);
        if (err == 0 && nonempty(f->endpoint_id))
            err = filter_add(sql, q, "endpoint_id =", f->endpoint_id);
    }
    if (err == 0 && nonempty(f->event_type))
        err = filter_add(sql, q, "event_type =", f->event_type);
    if (err == 0 && with_status)
        err = filter_add(sql, q, "status =", delivery_status_name((enum delivery_status)f->status));
    if (err == 0 && f->created_from > 0)
        err = id_floor("dlv_", f->created_from, from);
    if (err == 0 && f->created_from > 0)
        err = filter_add(sql, q, "id >=", from);
    if (err == 0 && f->created_before > 0)
        err = id_floor("dlv_", f->created_before, before);
    if (err == 0 && f->created_before > 0)
        err = filter_add(sql, q, "id <", before);
    if (err == 0 && nonempty(f->after))
        err = filter_add(sql, q, f->descending ? "id <" : "id >", f->after);
    return err;
}

/*
 * A list finds the ids of its page first, from the index of its filters
 * (migration 013: the endpoint or the account, the type, the status, then
 * the id), which holds them: an index-only scan, so the planner has no
 * reason to read deliveries_pkey in id order and filter each row instead,
 * a bet on the rows being common that costs every row of the window when
 * they are not (179 ms for ?status=held&since&until at 1M deliveries). A
 * list by type without a status merges one range per status, each cut at
 * the page's size. The rows of those ids are read last, with the account's
 * check (an endpoint's index does not hold the account; all of an
 * endpoint's deliveries are one account's). A list of an event's few
 * deliveries reads them all through deliveries_event.
 */
int
pg_delivery_list(struct store *st, const char *account_id, const struct delivery_filter *f,
                 struct delivery **out, size_t *n)
{
    struct delivery *list = NULL;
    struct pg_query q;
    struct buf sql, where;
    /* The date range as ids: they sort by creation time (util/id.h). */
    char from[ID_MAX], before[ID_MAX];
    const char *order = f->descending ? "DESC" : "ASC";
    size_t count = 0;
    int s, limit, merge, err;

    if (account_id == NULL)
        return 0;
    buf_init(&sql, 4096);
    buf_init(&where, 1024);
    pg_query_init(&q, NULL);
    pg_arg_text(&q, account_id);
    pg_arg_int(&q, f->limit);
    limit = q.n;
    merge = nonempty(f->event_type) && f->status < 0 && !nonempty(f->event_id);
    err = delivery_list_where(&where, &q, f, f->status >= 0, from, before);
    if (err == 0 && nonempty(f->event_id))
        err = buf_printf(&sql, "SELECT " PG_DELIVERY_COLS " FROM deliveries WHERE %s",
                         buf_cstr(&where));
    else if (err == 0)
        err = buf_puts(&sql, "SELECT " PG_DELIVERY_COLS " FROM deliveries WHERE id IN (");
    for (s = 0; err == 0 && !nonempty(f->event_id) && s < (merge ? DELIVERY__COUNT : 1); s++) {
        /* Parentheses only around the arms of a merge, each with its own ORDER BY. */
        err = buf_printf(&sql, "%s%sSELECT id FROM deliveries WHERE %s", s > 0 ? " UNION ALL " : "",
                         merge ? "(" : "", buf_cstr(&where));
        if (err == 0 && merge)
            err = buf_printf(&sql, " AND status = '%s'",
                             delivery_status_name((enum delivery_status)s));
        if (err == 0)
            err = buf_printf(&sql, " ORDER BY id %s LIMIT $%d%s", order, limit, merge ? ")" : "");
    }
    if (err == 0 && !nonempty(f->event_id))
        err = buf_puts(&sql, ") AND account_id = $1");
    if (err == 0)
        err = buf_printf(&sql, " ORDER BY id %s LIMIT $%d", order, limit);
    if (err != 0)
        goto out;
    q.sql = buf_cstr(&sql);
    err = pg_get_all(st->impl, &q, pg_delivery_read, &list, &count, sizeof(*list),
                     "listing deliveries");
    if (err != 0) {
        delivery_list_free(list, count);
        goto out;
    }
    *out = list;
    *n = count;
out:
    buf_cleanup(&where);
    buf_cleanup(&sql);
    return err;
}

static int
attempt_read(const PGresult *res, int row, void *out)
{
    struct attempt *at = out;
    int err;

    memset(at, 0, sizeof(*at));
    pg_col_copy(res, row, 0, at->delivery_id, sizeof(at->delivery_id));
    at->n = (int)pg_col_int(res, row, 1);
    at->at = pg_col_int(res, row, 2);
    at->status_code = (int)pg_col_int(res, row, 3);
    at->duration_ms = pg_col_int(res, row, 5);
    /* A class this version does not know (written by a newer one) reads as none. */
    (void)attempt_error_class_parse(PQgetisnull(res, row, 7) ? NULL : PQgetvalue(res, row, 7),
                                    &at->error_class);
    err = pg_col_strdup(res, row, 4, &at->error);
    if (err == 0)
        err = pg_col_bytes(res, row, 6, &at->response_body, &at->response_len);
    if (err == 0)
        err = pg_col_strdup(res, row, 8, &at->request_headers);
    if (err == 0)
        err = pg_col_strdup(res, row, 9, &at->response_headers);
    return err;
}

int
pg_attempt_list(struct store *st, const char *delivery_id, struct attempt **out, size_t *n)
{
    struct attempt *list = NULL;
    struct pg_query q;
    size_t count = 0;
    int err;

    if (delivery_id == NULL)
        return 0;
    pg_query_init(&q, SQL_ATT_LIST);
    pg_arg_text(&q, delivery_id);
    err = pg_get_all(st->impl, &q, attempt_read, &list, &count, sizeof(*list), "listing attempts");
    if (err != 0) {
        attempt_list_free(list, count);
        return err;
    }
    *out = list;
    *n = count;
    return 0;
}

/* --- delivering again --- */

int
pg_delivery_retry(struct store *st, const char *account_id, const char *id, int64_t now)
{
    struct pg_query q;
    PGresult *res = NULL;
    int err;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_RETRY);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_int(&q, now);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "retrying a delivery");
    if (err == 0 && pg_col_int(res, 0, 0) == 0)
        err = ERR_NOTFOUND;
    else if (err == 0 && pg_col_int(res, 0, 1) == 0)
        err = ERR_CONFLICT; /* being delivered, or its endpoint is gone */
    else if (err == 0 && pg_col_int(res, 0, 2) > 0)
        pg_due_mark(st->impl);
    PQclear(res);
    return err;
}

/* A replay's statuses as an array literal, and its ids as [lo, hi). */
static int
replay_range(int64_t since, int64_t until, int status, char from[32], char lo[ID_MAX],
             char hi[ID_MAX])
{
    int err;

    /* Deliveries under way cannot start again before they end. */
    if (status < 0)
        snprintf(from, 32, "{delivered,failed}");
    else if (status == DELIVERY_DELIVERING)
        snprintf(from, 32, "{}");
    else
        snprintf(from, 32, "{%s}", delivery_status_name((enum delivery_status)status));
    err = store_id_floor("dlv_", since, lo);
    if (err == 0 && until > 0)
        err = store_id_floor("dlv_", until, hi);
    else if (err == 0)
        snprintf(hi, ID_MAX, "dlv_~");
    return err;
}

int
pg_replay_chunk(struct store *st, struct store_chunk *ck)
{
    struct pg_query q;
    PGresult *res = NULL;
    int64_t t0 = clock_mono_us();
    int err;

    ck->moved = 0;
    pg_query_init(&q, SQL_REPLAY_CHUNK);
    pg_arg_int(&q, ck->replay);
    pg_arg_int(&q, ck->limit);
    pg_arg_int(&q, ck->now);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "replaying deliveries");
    ck->took_us = clock_mono_us() - t0;
    if (err == 0) {
        ck->moved = pg_col_int(res, 0, 0);
        if (pg_col_int(res, 0, 1) > 0)
            pg_due_mark(st->impl);
        if (pg_col_int(res, 0, 2) == 0)
            ck->replay = 0;
    }
    pg_result_clear(res);
    return err;
}

static int
replay_id_read(const PGresult *res, int row, void *out)
{
    *(int64_t *)out = pg_col_int(res, row, 0);
    return 0;
}

int
pg_replay_next(struct store *st, int64_t *replay)
{
    struct pg_query q;

    pg_query_init(&q, SQL_REPLAY_NEXT);
    return pg_get_one(st->impl, &q, replay_id_read, replay, "finding a replay to go on with");
}

int
pg_endpoint_replay(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
                   int64_t until, int status, struct store_chunk *ck)
{
    struct pg_query q;
    PGresult *res = NULL;
    char lo[ID_MAX], hi[ID_MAX], from[32];
    int err;

    ck->moved = 0;
    ck->replay = 0;
    err = replay_range(since, until, status, from, lo, hi);
    if (err != 0)
        return err;
    /* Deliveries under way cannot start again before they end: an empty replay. */
    if (status == DELIVERY_DELIVERING)
        memcpy(hi, lo, ID_MAX);
    pg_query_init(&q, SQL_REPLAY_RECORD);
    pg_arg_text(&q, endpoint_id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, from);
    pg_arg_text(&q, lo);
    pg_arg_text(&q, hi);
    pg_arg_int(&q, ck->now);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "recording a replay");
    if (err == 0 && PQntuples(res) != 1)
        err = ERR_NOTFOUND;
    else if (err == 0)
        ck->replay = pg_col_int(res, 0, 0);
    pg_result_clear(res);
    return err == 0 ? pg_replay_chunk(st, ck) : err;
}

int
pg_endpoint_replay_preview(struct store *st, const char *account_id, const char *endpoint_id,
                           int64_t since, int64_t until, int status, struct replay_preview *out)
{
    struct pg_query q;
    PGresult *res = NULL;
    char lo[ID_MAX], hi[ID_MAX], from[32];
    const char *ids, *end;
    size_t len;
    int err;

    err = replay_range(since, until, status, from, lo, hi);
    if (err != 0)
        return err;
    pg_query_init(&q, SQL_REPLAY_PREVIEW);
    pg_arg_text(&q, endpoint_id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, lo);
    pg_arg_text(&q, hi);
    pg_arg_text(&q, from);
    pg_arg_int(&q, STORE_REPLAY_PREVIEW_IDS);
    err = pg_run(st->impl, &q, PG_READ, &res, "counting deliveries to replay");
    if (err == 0 && pg_col_int(res, 0, 0) == 0)
        err = ERR_NOTFOUND;
    if (err == 0) {
        out->count = pg_col_int(res, 0, 1);
        for (ids = PQgetvalue(res, 0, 2); *ids != '\0' && out->nids < STORE_REPLAY_PREVIEW_IDS;
             ids = *end == ',' ? end + 1 : end) {
            end = ids + strcspn(ids, ",");
            len = (size_t)(end - ids) < ID_MAX - 1 ? (size_t)(end - ids) : ID_MAX - 1;
            memcpy(out->ids[out->nids], ids, len);
            out->ids[out->nids++][len] = '\0';
        }
    }
    PQclear(res);
    return err;
}
