/*
 * SQLite backend: publishing (the event and its fan-out in one transaction),
 * reading events, deliveries and attempts, and delivering again (retry,
 * replay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"
#include "util/log.h"

#define EV_COLS "id, account_id, type, timestamp, body, idempotency_key, created_at, deliveries"

static const char SQL_EV_IDEMPOTENT[] =
    "SELECT " EV_COLS " FROM events WHERE account_id = :acct AND idempotency_key = :key "
    "AND created_at > :since ORDER BY created_at DESC LIMIT 1";
/*
 * The two inserts of every publish take their parameters by number (the
 * enums below): a bind by name looks the name up in a list, about a tenth of
 * the writer's work for an event and its delivery.
 */
static const char SQL_EV_INSERT[] =
    "INSERT INTO events (id, account_id, type, timestamp, body, idempotency_key, created_at, "
    "deliveries) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
enum { EV_ID = 1, EV_ACCT, EV_TYPE, EV_TS, EV_BODY, EV_KEY, EV_AT, EV_N };
static const char SQL_DLV_INSERT[] =
    "INSERT INTO deliveries (id, account_id, event_id, endpoint_id, event_type, status, "
    "next_attempt_at, lease_until, lease_token, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)";
enum {
    DLV_ID = 1,
    DLV_ACCT,
    DLV_EVENT,
    DLV_EP,
    DLV_TYPE,
    DLV_STATUS,
    DLV_NEXT,
    DLV_LEASE,
    DLV_TOKEN,
    DLV_CREATED,
};
/* The fan-out of a publish, inside its transaction: ids and status only. */
static const char SQL_EV_FANOUT[] =
    "SELECT e.id, e.status FROM endpoint_types t JOIN endpoints e ON e.id = t.endpoint_id "
    "WHERE t.account_id = :acct AND t.event_type IN (:type, '') AND e.deleted_at = 0 "
    "AND e.kind = :kind ORDER BY e.id";
/* An endpoint a caller names (migration 020: deliveries no longer check it). */
static const char SQL_EV_EP_EXISTS[] = "SELECT 1 FROM endpoints WHERE id = ?1";
static const char SQL_EV_GET[] =
    "SELECT " EV_COLS " FROM events WHERE id = :id AND account_id = :acct";
static const char SQL_EV_LIST[] = "SELECT " EV_COLS " FROM events WHERE account_id = :acct "
                                  "AND id < :before ORDER BY id DESC LIMIT :limit";
static const char SQL_EV_LIST_TYPE[] =
    "SELECT " EV_COLS " FROM events WHERE account_id = :acct AND type = :type "
    "AND id < :before ORDER BY id DESC LIMIT :limit";
static const char SQL_DLV_GET[] =
    "SELECT " SQ_DELIVERY_COLS " FROM deliveries WHERE id = :id AND account_id = :acct";
static const char SQL_ATT_LIST[] =
    "SELECT delivery_id, n, at, status_code, error, duration_ms, response_body, error_class, "
    "request_headers, response_headers FROM attempts WHERE delivery_id = :id ORDER BY n";
static const char SQL_DLV_RETRY_READ[] =
    "SELECT d.status, e.status, e.deleted_at, d.endpoint_id FROM deliveries d "
    "JOIN endpoints e ON e.id = d.endpoint_id WHERE d.id = :id AND d.account_id = :acct";
static const char SQL_DLV_AGAIN[] =
    "UPDATE deliveries SET status = :status, next_attempt_at = :now, lease_until = 0, "
    "round_start = attempts_made, updated_at = :now WHERE id = :id";
static const char SQL_EP_STATUS[] =
    "SELECT status FROM endpoints WHERE id = :ep AND account_id = :acct AND deleted_at = 0";
static const char SQL_REPLAY[] =
    "UPDATE deliveries SET status = :status, next_attempt_at = :now, lease_until = 0, "
    "round_start = attempts_made, updated_at = :now "
    "WHERE endpoint_id = :ep AND id >= :lo AND id < :hi AND status = :from "
    "RETURNING created_at";
/* A replay's record (010_replays.sql): what it takes and the ids still to go. */
static const char SQL_REPLAY_RECORD[] =
    "INSERT INTO replays (endpoint_id, from_status, from_status2, next_id, until_id, created_at) "
    "VALUES (:ep, :s1, :s2, :lo, :hi, :now)";
static const char SQL_REPLAY_READ[] =
    "SELECT r.endpoint_id, r.from_status, r.from_status2, r.next_id, r.until_id, e.status "
    "FROM replays r LEFT JOIN endpoints e ON e.id = r.endpoint_id AND e.deleted_at = 0 "
    "WHERE r.id = :r";
/*
 * An endpoint's deliveries of one status in [:lo, :hi), in id order: one
 * range of deliveries_endpoint_status. Those of every status are the five
 * ranges merged (UNION ALL ... ORDER BY id: each arm is read in id order).
 */
#define EP_RANGE(status)                                                                   \
    "SELECT id FROM deliveries INDEXED BY deliveries_endpoint_status "                     \
    "WHERE endpoint_id = :ep AND status = " status " AND id >= :lo AND id < :hi"
/* Where the chunk of :n deliveries from :lo ends: the id after them, if any before :hi. */
static const char SQL_REPLAY_CHUNK_END[] =
    EP_RANGE("'pending'") " UNION ALL " EP_RANGE("'delivering'") " UNION ALL "
    EP_RANGE("'delivered'") " UNION ALL " EP_RANGE("'failed'") " UNION ALL "
    EP_RANGE("'held'") " ORDER BY id LIMIT 1 OFFSET :n";
static const char SQL_REPLAY_ADVANCE[] = "UPDATE replays SET next_id = :lo WHERE id = :r";
static const char SQL_REPLAY_DONE[] = "DELETE FROM replays WHERE id = :r";
static const char SQL_REPLAY_NEXT[] = "SELECT id FROM replays ORDER BY id LIMIT 1";
/* What a replay would take (:s1, :s2: its statuses), counted and the first few. */
static const char SQL_REPLAY_COUNT[] =
    "SELECT count(*) FROM deliveries "
    "WHERE endpoint_id = :ep AND id >= :lo AND id < :hi AND status IN (:s1, :s2)";
static const char SQL_REPLAY_IDS[] =
    EP_RANGE(":s1") " UNION ALL " EP_RANGE(":s2") " AND :s2 <> :s1 ORDER BY id LIMIT :n";

struct ev_args {
    struct store_publish *items;
    struct sq_handoff ho; /* publish: deliveries leased to this process's dispatcher */
    struct event *ev;
    const struct endpoint *eps;
    size_t neps;
    const char *account_id;
    const char *id;
    const char *type;
    const char *before;
    int limit;
    const struct delivery_filter *filter;
    int64_t now, since, until;
    int status;
    int64_t count;
    int64_t replay;  /* a replay's record; 0 once it is done */
    int64_t chunk;   /* most deliveries a chunk of the replay looks at */
    struct replay_preview *preview;
    struct event *events;
    struct delivery *dlv;
    struct delivery *dlvs;
    struct attempt *attempts;
    size_t n;
};

static int
event_read(sqlite3_stmt *stmt, void *out)
{
    struct event *ev = out;

    memset(ev, 0, sizeof(*ev));
    sq_col_copy(stmt, 0, ev->id, sizeof(ev->id));
    sq_col_copy(stmt, 1, ev->account_id, sizeof(ev->account_id));
    sq_col_copy(stmt, 2, ev->type, sizeof(ev->type));
    sq_col_copy(stmt, 3, ev->timestamp, sizeof(ev->timestamp));
    sq_col_copy(stmt, 5, ev->idempotency_key, sizeof(ev->idempotency_key));
    ev->created_at = sqlite3_column_int64(stmt, 6);
    ev->deliveries = sqlite3_column_int(stmt, 7);
    return sq_col_bytes(stmt, 4, &ev->body, &ev->body_len);
}

int
sq_delivery_read(sqlite3_stmt *stmt, void *out)
{
    struct delivery *d = out;
    int status;

    memset(d, 0, sizeof(*d));
    sq_col_copy(stmt, 0, d->id, sizeof(d->id));
    sq_col_copy(stmt, 1, d->event_id, sizeof(d->event_id));
    sq_col_copy(stmt, 2, d->endpoint_id, sizeof(d->endpoint_id));
    sq_col_copy(stmt, 3, d->account_id, sizeof(d->account_id));
    sq_col_copy(stmt, 4, d->event_type, sizeof(d->event_type));
    status = store_status_parse((const char *)sqlite3_column_text(stmt, 5));
    d->status = status < 0 ? DELIVERY_FAILED : (enum delivery_status)status;
    d->attempts_made = sqlite3_column_int(stmt, 6);
    d->round_start = sqlite3_column_int(stmt, 7);
    d->next_attempt_at = sqlite3_column_int64(stmt, 8);
    d->lease_until = sqlite3_column_int64(stmt, 9);
    d->created_at = sqlite3_column_int64(stmt, 10);
    d->updated_at = sqlite3_column_int64(stmt, 11);
    d->last_status_code = sqlite3_column_int(stmt, 12);
    d->lease_token = sqlite3_column_int64(stmt, 14);
    return sq_col_strdup(stmt, 13, &d->last_error);
}

/* --- publish --- */

static int
idempotent_find(struct sq_conn *c, struct event *ev)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EV_IDEMPOTENT);
    struct event earlier;
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":acct", ev->account_id);
    sq_bind_text(stmt, ":key", ev->idempotency_key);
    sq_bind_int(stmt, ":since", ev->created_at - STORE_IDEMPOTENCY_MS);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        err = event_read(stmt, &earlier);
        if (err == 0) {
            event_cleanup(ev);
            *ev = earlier;
            err = ERR_CONFLICT;
        } else {
            event_cleanup(&earlier);
        }
    } else if (rc != SQLITE_DONE) {
        err = sq_err(c, rc, "checking an idempotency key");
    }
    sq_done(stmt);
    return err;
}

/*
 * The endpoints of the account subscribed to ev's type, as endpoints with
 * only id and status set, in *eps (a new array, free() it; NULL when none).
 */
/* Reads the fan-out of (acct, type) from the store into *eps (malloc'd), *n of them. */
static int
fanout_read(struct sq_conn *c, const char *acct, const char *type, struct sq_cache_fan **eps,
            size_t *n)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EV_FANOUT);
    struct sq_cache_fan *list = NULL, *more;
    size_t cap = 0;
    int rc, err = 0;

    *eps = NULL;
    *n = 0;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":acct", acct);
    sq_bind_text(stmt, ":type", type);
    sq_bind_text(stmt, ":kind", store_fanout_kind(type));
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap == 0 ? 4 : cap * 2;
            more = realloc(list, cap * sizeof(*list));
            if (more == NULL) {
                err = ERR_NOMEM;
                break;
            }
            list = more;
        }
        sq_col_copy(stmt, 0, list[*n].id, sizeof(list[*n].id));
        list[*n].status = strcmp((const char *)sqlite3_column_text(stmt, 1), "disabled") == 0
                              ? ENDPOINT_DISABLED
                              : ENDPOINT_ENABLED;
        (*n)++;
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = sq_err(c, rc, "selecting subscribed endpoints");
    sq_done(stmt);
    if (err != 0) {
        free(list);
        *eps = NULL;
        *n = 0;
        return err;
    }
    *eps = list;
    return 0;
}

/*
 * The endpoints ev goes to (ids and status only) into *eps (malloc'd),
 * from the writer's cache, else read and kept there.
 */
static int
fanout_find(struct sq_conn *c, const struct event *ev, struct endpoint **eps, size_t *neps)
{
    struct sq_cache_fan *fan = NULL, *read = NULL;
    struct endpoint *list = NULL;
    size_t n = 0, i;
    int err = 0;

    *eps = NULL;
    *neps = 0;
    if (!sq_cache_fanout_get(c, ev->account_id, ev->type, &fan, &n)) {
        err = fanout_read(c, ev->account_id, ev->type, &read, &n);
        if (err != 0)
            return err;
        sq_cache_fanout_put(c, ev->account_id, ev->type, read, n);
        fan = read;
    }
    if (n > 0) {
        list = calloc(n, sizeof(*list));
        if (list == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        memcpy(list[i].id, fan[i].id, sizeof(list[i].id));
        list[i].status = fan[i].status;
    }
    *eps = list;
    *neps = n;
out:
    free(read);
    return err;
}

/* A row that only has to be there. */
static int
row_seen(sqlite3_stmt *stmt, void *out)
{
    (void)stmt;
    (void)out;
    return 0;
}

/*
 * ERR_NOTFOUND unless endpoint id is stored. A fan-out reads its endpoints
 * in the publish's own job; those a caller names are checked here, as the
 * deliveries' foreign key did before migration 020.
 */
static int
endpoint_exists(struct sq_conn *c, const char *id)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EV_EP_EXISTS);
    int err;

    if (stmt != NULL)
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    err = sq_row_one(c, stmt, row_seen, NULL, "reading an endpoint");
    sq_done(stmt);
    return err;
}

/*
 * Inserts one event and its fan-out (its idempotency key already checked),
 * handing what this process's dispatcher takes to it (ho); *handed gets how many,
 * *waiting how many it declined as STORE_HANDOFF_FULL. named: the caller
 * named eps (not a fan-out), so each is checked first.
 */
static int
publish_insert(struct sq_conn *c, struct event *ev, const struct endpoint *eps, size_t neps,
               int named, struct sq_handoff *ho, int *handed, int *waiting)
{
    enum delivery_status status;
    sqlite3_stmt *stmt;
    char did[ID_MAX];
    int64_t lease_until, created;
    size_t i;
    int rc, err = 0;

    stmt = sq_stmt(c, SQL_EV_INSERT);
    if (stmt == NULL)
        return ERR_STORE;
    sqlite3_bind_text(stmt, EV_ID, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, EV_ACCT, ev->account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, EV_TYPE, ev->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, EV_TS, ev->timestamp, -1, SQLITE_STATIC);
    if (ev->body != NULL) /* else NULL: refused by the column's NOT NULL */
        sqlite3_bind_blob64(stmt, EV_BODY, ev->body, ev->body_len, SQLITE_STATIC);
    if (ev->idempotency_key[0] != '\0')
        sqlite3_bind_text(stmt, EV_KEY, ev->idempotency_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, EV_AT, ev->created_at);
    sqlite3_bind_int64(stmt, EV_N, (sqlite3_int64)neps);
    rc = sqlite3_step(stmt);
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "inserting an event");

    stmt = sq_stmt(c, SQL_DLV_INSERT);
    if (stmt == NULL)
        return ERR_STORE;
    for (i = 0; i < neps; i++) {
        err = named ? endpoint_exists(c, eps[i].id) : 0;
        if (err == 0)
            err = id_new("dlv_", did);
        if (err != 0)
            return err;
        status = eps[i].status == ENDPOINT_DISABLED ? DELIVERY_HELD : DELIVERY_PENDING;
        lease_until = 0;
        if (status == DELIVERY_PENDING) {
            err = sq_handoff_try(c, ho, ev, eps[i].id, did, &lease_until);
            if (err < 0)
                return err;
            if (err == 1)
                status = DELIVERY_DELIVERING;
            *handed += err == 1;
            *waiting += err == STORE_HANDOFF_FULL;
        }
        sqlite3_bind_text(stmt, DLV_ID, did, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, DLV_ACCT, ev->account_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, DLV_EVENT, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, DLV_EP, eps[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, DLV_TYPE, ev->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, DLV_STATUS, sq_status(status), -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, DLV_NEXT, ev->created_at);
        sqlite3_bind_int64(stmt, DLV_LEASE, lease_until);
        sqlite3_bind_int64(stmt, DLV_TOKEN, status == DELIVERY_DELIVERING);
        created = id_time_ms(did); /* decoded once: the rollup's minute needs it too */
        sqlite3_bind_int64(stmt, DLV_CREATED, created);
        rc = sqlite3_step(stmt);
        sq_done(stmt);
        if (rc != SQLITE_DONE)
            return sq_err(c, rc, "inserting a delivery");
        sq_count_move(c, -1, status, 1);
        sq_roll_move(c, eps[i].id, created, -1, status, 1);
    }
    ev->deliveries = (int)neps;
    return 0;
}

/* Every event of a batch in the writer's one transaction; sets each err afresh. */
static int
job_publish(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    struct store_publish *it;
    struct endpoint *found;
    size_t i, nfound;
    int err;

    /* A run again after a neighbour failed: the last run's reservations are void. */
    sq_handoff_reset(&a->ho);
    for (i = 0; i < a->n; i++) {
        it = &a->items[i];
        it->err = 0;
        it->handed = 0;
        it->waiting = 0;
        if (it->ev->idempotency_key[0] != '\0') {
            /* A live key: ev becomes the earlier event and nothing is stored. */
            err = idempotent_find(c, it->ev);
            if (err == ERR_CONFLICT) {
                it->err = err;
                continue;
            }
            if (err != 0)
                return err;
        }
        if (it->fanout) {
            err = fanout_find(c, it->ev, &found, &nfound);
            if (err == 0)
                err = publish_insert(c, it->ev, found, nfound, 0, &a->ho, &it->handed,
                                     &it->waiting);
            free(found);
        } else {
            err = publish_insert(c, it->ev, it->eps, it->neps, 1, &a->ho, &it->handed,
                                 &it->waiting);
        }
        if (err != 0)
            return err;
    }
    return 0;
}

/* The publish is answered: durable (0), its hand-offs go to the dispatcher; else back. */
static void
publish_after(void *arg, int result)
{
    struct ev_args *a = arg;

    sq_handoff_finish(&a->ho, result);
}

int
sq_event_publish(struct store *st, struct store_publish *items, size_t n)
{
    struct ev_args args = {.items = items, .n = n, .ho = {.st = st}};
    int err;

    err = sq_write_after(st->impl, job_publish, publish_after, &args);
    sq_handoff_reset(&args.ho); /* nothing, unless the job never ran */
    return err;
}

/* One sq_event_publish_async() under way: job_publish's arguments and the caller's end. */
struct publish_async {
    struct ev_args args;
    store_publish_done_fn *done;
    void *arg;
};

/* sq_done_fn of an asynchronous publish. */
static void
publish_async_done(void *arg, int err)
{
    struct publish_async *pa = arg;

    sq_handoff_reset(&pa->args.ho); /* nothing: publish_after has handed or given back */
    pa->done(pa->arg, err);
    free(pa);
}

int
sq_event_publish_async(struct store *st, struct store_publish *items, size_t n,
                       store_publish_done_fn *done, void *arg)
{
    struct publish_async *pa;
    int err;

    pa = calloc(1, sizeof(*pa));
    if (pa == NULL)
        return ERR_NOMEM;
    pa->args.items = items;
    pa->args.n = n;
    pa->done = done;
    pa->arg = arg;
    pa->args.ho.st = st;
    err = sq_write_async(st->impl, job_publish, publish_after, &pa->args, publish_async_done, pa);
    if (err != 0)
        free(pa);
    return err;
}

/* --- events --- */

static int
job_event_get(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EV_GET);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":id", a->id);
        sq_bind_text(stmt, ":acct", a->account_id);
    }
    err = sq_row_one(c, stmt, event_read, a->ev, "reading an event");
    sq_done(stmt);
    return err;
}

int
sq_event_get(struct store *st, const char *account_id, const char *id, struct event *out)
{
    struct ev_args args = { .account_id = account_id, .id = id, .ev = out };
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    err = sq_read(st->impl, job_event_get, &args);
    if (err != 0)
        event_cleanup(out);
    return err;
}

static int
job_event_list(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, a->type != NULL ? SQL_EV_LIST_TYPE : SQL_EV_LIST);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":acct", a->account_id);
        sq_bind_text(stmt, ":type", a->type);
        sq_bind_text(stmt, ":before", a->before);
        sq_bind_int(stmt, ":limit", a->limit);
    }
    err = sq_row_all(c, stmt, event_read, &a->events, &a->n, sizeof(*a->events),
                     "listing events");
    sq_done(stmt);
    return err;
}

int
sq_event_list(struct store *st, const char *account_id, const char *type, const char *after,
              int limit, struct event **out, size_t *n)
{
    /* "~" sorts after every id, so no cursor means "from the newest". */
    struct ev_args args = { .account_id = account_id,
                            .type = type != NULL && type[0] != '\0' ? type : NULL,
                            .before = after != NULL && after[0] != '\0' ? after : "~",
                            .limit = limit };
    int err;

    if (account_id == NULL)
        return 0;
    err = sq_read(st->impl, job_event_list, &args);
    if (err != 0) {
        event_list_free(args.events, args.n);
        return err;
    }
    *out = args.events;
    *n = args.n;
    return 0;
}

/* --- deliveries and attempts --- */

static int
job_delivery_get(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_DLV_GET);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":id", a->id);
        sq_bind_text(stmt, ":acct", a->account_id);
    }
    err = sq_row_one(c, stmt, sq_delivery_read, a->dlv, "reading a delivery");
    sq_done(stmt);
    return err;
}

int
sq_delivery_get(struct store *st, const char *account_id, const char *id, struct delivery *out)
{
    struct ev_args args = { .account_id = account_id, .id = id, .dlv = out };
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    err = sq_read(st->impl, job_delivery_get, &args);
    if (err != 0)
        delivery_cleanup(out);
    return err;
}

static int
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* The list's conditions after the account's, by the filters that are set (status spelled). */
static int
delivery_list_where(struct buf *sql, const struct delivery_filter *f, const char *status)
{
    int err = 0;

    if (nonempty(f->endpoint_id))
        err = buf_puts(sql, " AND endpoint_id = :ep");
    if (err == 0 && nonempty(f->event_id))
        err = buf_puts(sql, " AND event_id = :event");
    if (err == 0 && nonempty(f->event_type))
        err = buf_puts(sql, " AND event_type = :type");
    if (err == 0 && status != NULL)
        err = buf_printf(sql, " AND status = %s", status);
    if (err == 0 && f->created_from > 0)
        err = buf_puts(sql, " AND id >= :from");
    if (err == 0 && f->created_before > 0)
        err = buf_puts(sql, " AND id < :before");
    if (err == 0 && nonempty(f->after))
        err = buf_puts(sql, f->descending ? " AND id < :after" : " AND id > :after");
    return err;
}

/*
 * The index a list reads, named so that the planner cannot take one that
 * serves fewer of its filters. Each holds the filters' columns, then (but
 * for the first) the status, then the id: a list without a status filter
 * merges one range per status (delivery_list_sql).
 */
static const char *
delivery_list_index(const struct delivery_filter *f, int *by_status)
{
    *by_status = 0;
    if (nonempty(f->event_id))
        return "deliveries_event"; /* an event's few deliveries, sorted */
    *by_status = 1;
    if (nonempty(f->endpoint_id))
        return nonempty(f->event_type) ? "deliveries_endpoint_type_status"
                                       : "deliveries_endpoint_status";
    return nonempty(f->event_type) ? "deliveries_account_type_status"
                                   : "deliveries_account_status";
}

/* 1 when index leaves out the deliveries being delivered (migrations 013, 018). */
static int
index_settled(const char *index)
{
    return strstr(index, "_type_status") != NULL ||
           strcmp(index, "deliveries_account_status") == 0;
}

/*
 * One SELECT of a list: its rows of status s (-1: any) read through index.
 * The type indexes and the account's status index leave out deliveries
 * being delivered: those come from the 'delivering' range of
 * deliveries_endpoint_status, a few per endpoint (its leases), of the one
 * endpoint filtered or of each endpoint the account has or had, filtered
 * by type when the list is.
 */
static int
delivery_list_arm(struct buf *sql, const struct delivery_filter *f, const char *index, int s)
{
    int settled = index_settled(index), every_endpoint = 0, err;
    char status[32];

    if (settled && s == DELIVERY_DELIVERING) {
        index = "deliveries_endpoint_status";
        every_endpoint = !nonempty(f->endpoint_id);
        settled = 0;
    }
    err = buf_printf(sql, "SELECT " SQ_DELIVERY_COLS " FROM deliveries INDEXED BY %s "
                          "WHERE account_id = :acct", index);
    if (err == 0 && settled)
        err = buf_puts(sql, " AND status <> 'delivering'"); /* the index's own condition */
    if (err == 0 && every_endpoint)
        err = buf_puts(sql, " AND endpoint_id IN (" SQ_ACCOUNT_ENDPOINTS ")");
    if (s >= 0)
        snprintf(status, sizeof(status), "'%s'", sq_status((enum delivery_status)s));
    if (err == 0)
        err = delivery_list_where(sql, f, s >= 0 ? status : NULL);
    return err;
}

/*
 * The list's SQL depends on which filters are set; it is prepared per call.
 * Every filter has an index whose rows sort by id after it (migration 013).
 * A list without a status filter on an index that holds the status before
 * the id (an account's or an endpoint's list, with or without a type)
 * merges one range per status, each in id order, so a page costs five
 * seeks and its rows.
 */
static int
delivery_list_sql(struct buf *sql, const struct delivery_filter *f)
{
    const char *index;
    int s, by_status, err = 0;

    index = delivery_list_index(f, &by_status);
    if (!by_status || f->status >= 0) {
        err = delivery_list_arm(sql, f, index, f->status);
    } else {
        for (s = 0; err == 0 && s < DELIVERY__COUNT; s++) {
            if (s > 0)
                err = buf_puts(sql, " UNION ALL ");
            if (err == 0)
                err = delivery_list_arm(sql, f, index, s);
        }
    }
    if (err == 0)
        err = buf_printf(sql, " ORDER BY id%s LIMIT :limit", f->descending ? " DESC" : "");
    return err;
}

static int
job_delivery_list(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    const struct delivery_filter *f = a->filter;
    sqlite3_stmt *stmt = NULL;
    struct buf sql;
    /* The date range as ids: they sort by creation time (util/id.h). */
    char from[ID_MAX], before[ID_MAX];
    int rc, err = 0;

    buf_init(&sql, 4096);
    err = delivery_list_sql(&sql, f);
    if (err != 0)
        goto out;
    rc = sqlite3_prepare_v2(c->db, buf_cstr(&sql), -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        err = sq_err(c, rc, "preparing a delivery list");
        goto out;
    }
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":ep", f->endpoint_id);
    sq_bind_text(stmt, ":event", f->event_id);
    sq_bind_text(stmt, ":type", f->event_type);
    sq_bind_text(stmt, ":after", f->after);
    if (f->created_from > 0 && id_floor("dlv_", f->created_from, from) == 0)
        sq_bind_text(stmt, ":from", from);
    if (f->created_before > 0 && id_floor("dlv_", f->created_before, before) == 0)
        sq_bind_text(stmt, ":before", before);
    sq_bind_int(stmt, ":limit", f->limit);
    err = sq_row_all(c, stmt, sq_delivery_read, &a->dlvs, &a->n, sizeof(*a->dlvs),
                     "listing deliveries");
out:
    sqlite3_finalize(stmt);
    buf_cleanup(&sql);
    return err;
}

int
sq_delivery_list(struct store *st, const char *account_id, const struct delivery_filter *f,
                 struct delivery **out, size_t *n)
{
    struct ev_args args = { .account_id = account_id, .filter = f };
    int err;

    if (account_id == NULL)
        return 0;
    err = sq_read(st->impl, job_delivery_list, &args);
    if (err != 0) {
        delivery_list_free(args.dlvs, args.n);
        return err;
    }
    *out = args.dlvs;
    *n = args.n;
    return 0;
}

static int
attempt_read(sqlite3_stmt *stmt, void *out)
{
    struct attempt *at = out;
    int err;

    memset(at, 0, sizeof(*at));
    sq_col_copy(stmt, 0, at->delivery_id, sizeof(at->delivery_id));
    at->n = sqlite3_column_int(stmt, 1);
    at->at = sqlite3_column_int64(stmt, 2);
    at->status_code = sqlite3_column_int(stmt, 3);
    at->duration_ms = sqlite3_column_int64(stmt, 5);
    /* A class this version does not know (written by a newer one) reads as none. */
    (void)attempt_error_class_parse((const char *)sqlite3_column_text(stmt, 7), &at->error_class);
    err = sq_col_strdup(stmt, 4, &at->error);
    if (err == 0)
        err = sq_col_bytes(stmt, 6, &at->response_body, &at->response_len);
    if (err == 0)
        err = sq_col_strdup(stmt, 8, &at->request_headers);
    if (err == 0)
        err = sq_col_strdup(stmt, 9, &at->response_headers);
    return err;
}

static int
job_attempt_list(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ATT_LIST);
    int err;

    if (stmt != NULL)
        sq_bind_text(stmt, ":id", a->id);
    err = sq_row_all(c, stmt, attempt_read, &a->attempts, &a->n, sizeof(*a->attempts),
                     "listing attempts");
    sq_done(stmt);
    return err;
}

int
sq_attempt_list(struct store *st, const char *delivery_id, struct attempt **out, size_t *n)
{
    struct ev_args args = { .id = delivery_id };
    int err;

    if (delivery_id == NULL)
        return 0;
    err = sq_read(st->impl, job_attempt_list, &args);
    if (err != 0) {
        attempt_list_free(args.attempts, args.n);
        return err;
    }
    *out = args.attempts;
    *n = args.n;
    return 0;
}

/* --- delivering again --- */

static int
job_retry(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_DLV_RETRY_READ);
    char ep[ID_MAX] = "";
    int disabled = 0, old = -1, rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(stmt, 0);
        const char *ep_status = (const char *)sqlite3_column_text(stmt, 1);

        old = store_status_parse(status);
        /* Being delivered, or its endpoint is gone: nothing to send it to now. */
        if (strcmp(status, "delivering") == 0 || sqlite3_column_int64(stmt, 2) != 0)
            err = ERR_CONFLICT;
        disabled = strcmp(ep_status, "disabled") == 0;
        sq_col_copy(stmt, 3, ep, sizeof(ep));
    } else if (rc == SQLITE_DONE) {
        err = ERR_NOTFOUND;
    } else {
        err = sq_err(c, rc, "reading a delivery");
    }
    sq_done(stmt);
    if (err != 0)
        return err;
    stmt = sq_stmt(c, SQL_DLV_AGAIN);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":status", disabled ? "held" : "pending");
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":id", a->id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "retrying a delivery");
    if (err == 0) {
        sq_count_move(c, old, disabled ? DELIVERY_HELD : DELIVERY_PENDING, 1);
        sq_roll_move(c, ep, id_time_ms(a->id), old, disabled ? DELIVERY_HELD : DELIVERY_PENDING,
                     1);
    }
    sq_done(stmt);
    return err;
}

int
sq_delivery_retry(struct store *st, const char *account_id, const char *id, int64_t now)
{
    struct ev_args args = { .account_id = account_id, .id = id, .now = now };

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return sq_write(st->impl, job_retry, &args);
}

/*
 * What a replay covers: whether its endpoint is disabled, the statuses it
 * takes (*s1, *s2; the same one twice for one status) and its ids [lo, hi).
 * 1 when it takes none (deliveries under way cannot start again before they
 * end), 0, or an error.
 */
static int
replay_range(struct sq_conn *c, const struct ev_args *a, int *disabled, const char **s1,
             const char **s2, char lo[ID_MAX], char hi[ID_MAX])
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_STATUS);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *disabled = strcmp((const char *)sqlite3_column_text(stmt, 0), "disabled") == 0;
    else if (rc == SQLITE_DONE)
        err = ERR_NOTFOUND;
    else
        err = sq_err(c, rc, "reading an endpoint");
    sq_done(stmt);
    if (err != 0)
        return err;
    if (a->status == DELIVERY_DELIVERING)
        return 1;
    if (a->status < 0) {
        *s1 = "delivered";
        *s2 = "failed";
    } else {
        *s1 = *s2 = sq_status((enum delivery_status)a->status);
    }
    err = store_id_floor("dlv_", a->since, lo);
    if (err == 0 && a->until > 0)
        err = store_id_floor("dlv_", a->until, hi);
    else if (err == 0)
        snprintf(hi, ID_MAX, "dlv_~");
    return err;
}

/* Copies column i of stmt (a row) to out (ID_MAX); ERR_STORE when it is NULL. */
static int
col_id(sqlite3_stmt *stmt, int i, char out[ID_MAX])
{
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return ERR_STORE;
    sq_col_copy(stmt, i, out, ID_MAX);
    return 0;
}

/* Advances the record of replay a->replay to lo (SQL_REPLAY_ADVANCE), or deletes it. */
static int
replay_record_set(struct sq_conn *c, const struct ev_args *a, const char *sql, const char *lo)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":r", a->replay);
    sq_bind_text(stmt, ":lo", lo);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "recording a replay's progress");
    sq_done(stmt);
    return err;
}

/*
 * Where the chunk from lo ends: *end gets the id of the delivery after the
 * next a->chunk of the endpoint's (by id, whatever their status), or hi when
 * the chunk reaches it; *last says which.
 */
static int
replay_chunk_end(struct sq_conn *c, const struct ev_args *a, const char *ep, const char *lo,
                 const char *hi, char end[ID_MAX], int *last)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_REPLAY_CHUNK_END);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", ep);
    sq_bind_text(stmt, ":lo", lo);
    sq_bind_text(stmt, ":hi", hi);
    sq_bind_int(stmt, ":n", a->chunk);
    rc = sqlite3_step(stmt);
    *last = rc != SQLITE_ROW;
    if (rc == SQLITE_ROW)
        sq_col_copy(stmt, 0, end, ID_MAX);
    else if (rc == SQLITE_DONE)
        snprintf(end, ID_MAX, "%s", hi);
    else
        err = sq_err(c, rc, "finding a replay's next chunk");
    sq_done(stmt);
    return err;
}

/* Moves the deliveries of ep in [lo, end) with status `from` to `to` (pending or held). */
static int
replay_move(struct sq_conn *c, struct ev_args *a, const char *ep, const char *from,
            enum delivery_status to, const char *lo, const char *end)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_REPLAY);
    int64_t changed = 0;
    int err;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":status", sq_status(to));
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":ep", ep);
    sq_bind_text(stmt, ":lo", lo);
    sq_bind_text(stmt, ":hi", end);
    sq_bind_text(stmt, ":from", from);
    err = sq_roll_update(c, stmt, ep, store_status_parse(from), to, &changed,
                         "replaying deliveries");
    a->count += changed;
    sq_done(stmt);
    return err;
}

/*
 * One chunk of replay a->replay: the next a->chunk deliveries of its
 * endpoint (by id) are looked at and those with its statuses move (held
 * instead of pending while the endpoint is disabled); its record advances
 * past them, or goes after the last chunk (or when the endpoint is gone),
 * and a->replay becomes 0. a->count gets how many moved.
 */
static int
job_replay_chunk(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_REPLAY_READ);
    char ep[ID_MAX], s1[16], s2[16], lo[ID_MAX], hi[ID_MAX], end[ID_MAX] = "";
    int gone = 0, disabled = 0, last = 1, rc, err = 0;

    a->count = 0;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":r", a->replay);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        sq_col_copy(stmt, 0, ep, sizeof(ep));
        sq_col_copy(stmt, 1, s1, sizeof(s1));
        sq_col_copy(stmt, 2, s2, sizeof(s2));
        err = col_id(stmt, 3, lo);
        if (err == 0)
            err = col_id(stmt, 4, hi);
        gone = sqlite3_column_type(stmt, 5) == SQLITE_NULL;
        disabled = !gone && strcmp((const char *)sqlite3_column_text(stmt, 5), "disabled") == 0;
    } else if (rc == SQLITE_DONE) {
        gone = 1; /* finished meanwhile (another open's sweep) */
    } else {
        err = sq_err(c, rc, "reading a replay");
    }
    sq_done(stmt);
    if (err == 0 && !gone)
        err = replay_chunk_end(c, a, ep, lo, hi, end, &last);
    if (err == 0 && !gone)
        err = replay_move(c, a, ep, s1, disabled ? DELIVERY_HELD : DELIVERY_PENDING, lo, end);
    if (err == 0 && !gone && strcmp(s1, s2) != 0)
        err = replay_move(c, a, ep, s2, disabled ? DELIVERY_HELD : DELIVERY_PENDING, lo, end);
    if (err == 0)
        err = replay_record_set(c, a, last ? SQL_REPLAY_DONE : SQL_REPLAY_ADVANCE, end);
    if (err == 0 && last)
        a->replay = 0;
    return err;
}

/* Records the replay a describes and moves its first chunk. */
static int
job_replay(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    sqlite3_stmt *stmt;
    char lo[ID_MAX], hi[ID_MAX];
    const char *s1 = NULL, *s2 = NULL;
    int disabled = 0, rc, err;

    a->count = 0;
    a->replay = 0;
    err = replay_range(c, a, &disabled, &s1, &s2, lo, hi);
    if (err != 0)
        return err > 0 ? 0 : err;
    stmt = sq_stmt(c, SQL_REPLAY_RECORD);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", a->id);
    sq_bind_text(stmt, ":s1", s1);
    sq_bind_text(stmt, ":s2", s2);
    sq_bind_text(stmt, ":lo", lo);
    sq_bind_text(stmt, ":hi", hi);
    sq_bind_int(stmt, ":now", a->now);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "recording a replay");
    sq_done(stmt);
    if (err != 0)
        return err;
    a->replay = sqlite3_last_insert_rowid(c->db);
    return job_replay_chunk(c, a);
}

/* A replay's first chunk (account_id set) or a later one. */
static int
job_replay_any(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;

    return a->account_id != NULL ? job_replay(c, a) : job_replay_chunk(c, a);
}

/*
 * Runs a replay's first chunk (account_id set) or a later one, as ck says,
 * durable as an enable's (sq_endpoints.c): a crash before the sync leaves
 * the record where the last durable chunk left it, to go on from there.
 */
static int
replay_write(struct store *st, struct ev_args *args, struct store_chunk *ck)
{
    int err;

    args->now = ck->now;
    args->chunk = ck->limit;
    args->replay = ck->replay;
    ck->moved = 0;
    err = sq_chunk_write(st, job_replay_any, args, &ck->took_us);
    if (err == 0) {
        ck->moved = args->count;
        ck->replay = args->replay;
    }
    if (err == 0 && ck->replay == 0)
        err = sq_sync_wait(st);
    return err;
}

int
sq_replay_chunk(struct store *st, struct store_chunk *ck)
{
    struct ev_args args = { 0 };

    return replay_write(st, &args, ck);
}

static int
job_replay_next(struct sq_conn *c, void *arg)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_REPLAY_NEXT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *(int64_t *)arg = sqlite3_column_int64(stmt, 0);
    else if (rc == SQLITE_DONE)
        err = ERR_NOTFOUND;
    else
        err = sq_err(c, rc, "finding a replay to go on with");
    sq_done(stmt);
    return err;
}

int
sq_replay_next(struct store *st, int64_t *replay)
{
    return sq_read(st->impl, job_replay_next, replay);
}

/* Binds what both preview statements share. */
static void
replay_bind(sqlite3_stmt *stmt, const struct ev_args *a, const char *s1, const char *s2,
            const char *lo, const char *hi)
{
    sq_bind_text(stmt, ":ep", a->id);
    sq_bind_text(stmt, ":lo", lo);
    sq_bind_text(stmt, ":hi", hi);
    sq_bind_text(stmt, ":s1", s1);
    sq_bind_text(stmt, ":s2", s2);
}

static int
job_replay_preview(struct sq_conn *c, void *arg)
{
    struct ev_args *a = arg;
    struct replay_preview *p = a->preview;
    sqlite3_stmt *stmt;
    char lo[ID_MAX], hi[ID_MAX];
    const char *s1 = NULL, *s2 = NULL;
    int disabled = 0, rc, err;

    err = replay_range(c, a, &disabled, &s1, &s2, lo, hi);
    if (err != 0)
        return err > 0 ? 0 : err;
    stmt = sq_stmt(c, SQL_REPLAY_COUNT);
    if (stmt == NULL)
        return ERR_STORE;
    replay_bind(stmt, a, s1, s2, lo, hi);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        p->count = sqlite3_column_int64(stmt, 0);
    else
        err = sq_err(c, rc, "counting deliveries to replay");
    sq_done(stmt);
    if (err != 0 || p->count == 0)
        return err;
    stmt = sq_stmt(c, SQL_REPLAY_IDS);
    if (stmt == NULL)
        return ERR_STORE;
    replay_bind(stmt, a, s1, s2, lo, hi);
    sq_bind_int(stmt, ":n", STORE_REPLAY_PREVIEW_IDS);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && p->nids < STORE_REPLAY_PREVIEW_IDS)
        sq_col_copy(stmt, 0, p->ids[p->nids++], ID_MAX);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sq_err(c, rc, "listing deliveries to replay");
    sq_done(stmt);
    return err;
}

int
sq_endpoint_replay_preview(struct store *st, const char *account_id, const char *endpoint_id,
                           int64_t since, int64_t until, int status, struct replay_preview *out)
{
    struct ev_args args = { .account_id = account_id, .id = endpoint_id, .since = since,
                            .until = until, .status = status, .preview = out };

    return sq_read(st->impl, job_replay_preview, &args);
}

int
sq_endpoint_replay(struct store *st, const char *account_id, const char *endpoint_id,
                   int64_t since, int64_t until, int status, struct store_chunk *ck)
{
    struct ev_args args = { .account_id = account_id, .id = endpoint_id, .since = since,
                            .until = until, .status = status };

    ck->replay = 0;
    return replay_write(st, &args, ck);
}
