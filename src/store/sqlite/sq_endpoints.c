/*
 * SQLite backend: endpoints, their subscriptions (fan-out) and the switches
 * that hold, resume or end their deliveries.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"

#define EP_COLS                                                                                    \
    "e.id, e.account_id, e.url, e.description, e.event_types, e.status, e.disabled_reason, "       \
    "e.disabled_at, e.secret, e.prev_secret, e.prev_secret_until, e.created_at, e.updated_at, "    \
    "e.kind"
/* Kept by triggers as deliveries become or stop being held (migration 017). */
#define EP_HELD "(SELECT coalesce(max(n), 0) FROM endpoint_held h WHERE h.endpoint_id = e.id)"

static const char SQL_EP_INSERT[] =
    "INSERT INTO endpoints (id, account_id, url, description, event_types, status, "
    "disabled_reason, disabled_at, secret, prev_secret, prev_secret_until, created_at, "
    "updated_at, kind) VALUES (:id, :acct, :url, :desc, :types, :status, :reason, :disabled_at, "
    ":secret, :prev, :prev_until, :created, :updated, :kind)";
static const char SQL_EP_TYPE_INSERT[] =
    "INSERT INTO endpoint_types (account_id, event_type, endpoint_id) VALUES (:acct, :type, :id)";
static const char SQL_EP_TYPE_DELETE[] =
    "DELETE FROM endpoint_types WHERE account_id = :acct AND endpoint_id = :id";
static const char SQL_EP_GET[] = "SELECT " EP_COLS ", " EP_HELD " FROM endpoints e "
                                 "WHERE e.id = :id AND e.account_id = :acct AND e.deleted_at = 0";
static const char SQL_EP_FIND[] = "SELECT " EP_COLS ", -1 FROM endpoints e "
                                  "WHERE e.id = :id AND e.account_id = :acct AND e.deleted_at = 0";
static const char SQL_EP_LIST[] = "SELECT " EP_COLS ", " EP_HELD " FROM endpoints e "
                                  "WHERE e.account_id = :acct AND e.deleted_at = 0 "
                                  "AND e.kind = :kind AND e.id > :after "
                                  "ORDER BY e.id LIMIT :limit";
static const char SQL_EP_SUBSCRIBED[] =
    "SELECT " EP_COLS ", 0 FROM endpoint_types t JOIN endpoints e ON e.id = t.endpoint_id "
    "WHERE t.account_id = :acct AND t.event_type IN (:type, '') AND e.deleted_at = 0 "
    "AND e.kind = :kind ORDER BY e.id";
/* A NULL parameter leaves its column as it is: a PATCH changes only what it names. */
static const char SQL_EP_UPDATE[] =
    "UPDATE endpoints SET url = coalesce(:url, url), description = coalesce(:desc, description), "
    "event_types = coalesce(:types, event_types), updated_at = :now "
    "WHERE id = :id AND account_id = :acct AND deleted_at = 0";
static const char SQL_EP_ROTATE[] =
    "UPDATE endpoints SET prev_secret = CASE WHEN :prev_until > 0 THEN secret END, "
    "prev_secret_until = :prev_until, secret = :secret, updated_at = :now "
    "WHERE id = :id AND account_id = :acct AND deleted_at = 0";
static const char SQL_EP_DELETE[] =
    "UPDATE endpoints SET deleted_at = :now, updated_at = :now "
    "WHERE id = :id AND account_id = :acct AND deleted_at = 0";
/*
 * A chunk of a disable or a delete cut in chunks (store.c's hold loop): the
 * :limit oldest deliveries of :id in one status, moved only while the
 * endpoint is in the state the move is for.
 */
#define CUT_CHUNK(status)                                                                         \
    "id IN (SELECT id FROM deliveries WHERE endpoint_id = :id AND status = " status " "          \
    "ORDER BY id LIMIT :limit) AND EXISTS (SELECT 1 FROM endpoints WHERE id = :id AND "           \
    "deleted_at "
static const char SQL_EP_END_PENDING[] =
    "UPDATE deliveries SET status = 'failed', last_error = :why, updated_at = :now "
    "WHERE " CUT_CHUNK("'pending'") "<> 0) RETURNING created_at";
static const char SQL_EP_END_HELD[] =
    "UPDATE deliveries SET status = 'failed', last_error = :why, updated_at = :now "
    "WHERE " CUT_CHUNK("'held'") "<> 0) RETURNING created_at";
static const char SQL_EP_HOLD_PENDING[] =
    "UPDATE deliveries SET status = 'held', updated_at = :now "
    "WHERE " CUT_CHUNK("'pending'") "= 0 AND status = 'disabled') RETURNING created_at";
static const char SQL_EP_STATE[] = "SELECT status, deleted_at FROM endpoints WHERE id = :id";
static const char SQL_EP_DISABLE[] =
    "UPDATE endpoints SET status = 'disabled', disabled_reason = :reason, disabled_at = :now, "
    "updated_at = :now WHERE id = :id AND account_id = :acct AND deleted_at = 0";
static const char SQL_EP_ENABLE[] =
    "UPDATE endpoints SET status = 'enabled', disabled_reason = NULL, disabled_at = 0, "
    "updated_at = :now WHERE id = :id AND account_id = :acct AND deleted_at = 0";
/* A chunk of held deliveries, the :limit oldest, of :id while it is enabled. */
#define HELD_CHUNK                                                                         \
    "id IN (SELECT id FROM deliveries WHERE endpoint_id = :id AND status = 'held' "        \
    "ORDER BY id LIMIT :limit) AND EXISTS (SELECT 1 FROM endpoints "                       \
    "WHERE id = :id AND status = 'enabled' AND deleted_at = 0) "
static const char SQL_EP_SKIP_HELD[] =
    "UPDATE deliveries SET status = 'failed', last_error = :why, updated_at = :now "
    "WHERE " HELD_CHUNK "RETURNING created_at";
static const char SQL_EP_RESUME_HELD[] =
    "UPDATE deliveries SET status = 'pending', next_attempt_at = :now, lease_until = 0, "
    "round_start = attempts_made, updated_at = :now WHERE " HELD_CHUNK "RETURNING created_at";

/* An enable cut short (a crash between its chunks) left these held. */
static const char SQL_EP_HELD_NEXT[] =
    "SELECT e.id FROM endpoints e WHERE e.status = 'enabled' AND e.deleted_at = 0 AND EXISTS "
    "(SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'held') LIMIT 1";
/* A disable or a delete cut short left these pending (or held, for a delete). */
static const char SQL_EP_CUT_NEXT[] =
    "SELECT e.id FROM endpoints e WHERE (e.deleted_at = 0 AND e.status = 'disabled' AND EXISTS "
    "(SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending')) OR "
    "(e.deleted_at <> 0 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id "
    "AND d.status IN ('pending', 'held'))) LIMIT 1";

struct ep_args {
    const struct endpoint *in;
    const char *account_id;
    const char *id;
    const char *after;
    const char *type;
    const char *reason;
    const char *kind;
    int limit;
    int skip_held;
    int count_held; /* a get counts the endpoint's held deliveries */
    int64_t now;
    int64_t count;
    int64_t chunk; /* rows a chunk of held deliveries may move */
    struct endpoint *out;
    struct endpoint *list;
    size_t n;
};

static int
endpoint_read(sqlite3_stmt *stmt, void *out)
{
    struct endpoint *ep = out;
    const unsigned char *status;
    int err = 0;

    memset(ep, 0, sizeof(*ep));
    sq_col_copy(stmt, 0, ep->id, sizeof(ep->id));
    sq_col_copy(stmt, 1, ep->account_id, sizeof(ep->account_id));
    status = sqlite3_column_text(stmt, 5);
    ep->status = status != NULL && strcmp((const char *)status, "disabled") == 0
                     ? ENDPOINT_DISABLED
                     : ENDPOINT_ENABLED;
    ep->disabled_at = sqlite3_column_int64(stmt, 7);
    ep->prev_secret_until = sqlite3_column_int64(stmt, 10);
    ep->created_at = sqlite3_column_int64(stmt, 11);
    ep->updated_at = sqlite3_column_int64(stmt, 12);
    status = sqlite3_column_text(stmt, 13);
    ep->operational = status != NULL && strcmp((const char *)status, "operational") == 0;
    ep->held = sqlite3_column_int64(stmt, 14);
    if ((err = sq_col_strdup(stmt, 2, &ep->url)) != 0 ||
        (err = sq_col_strdup(stmt, 3, &ep->description)) != 0 ||
        (err = sq_col_strdup(stmt, 4, &ep->event_types)) != 0 ||
        (err = sq_col_strdup(stmt, 6, &ep->disabled_reason)) != 0 ||
        (err = sq_col_strdup(stmt, 8, &ep->secret)) != 0 ||
        (err = sq_col_strdup(stmt, 9, &ep->prev_secret)) != 0)
        return err;
    return 0;
}

/* Runs a cached UPDATE/INSERT/DELETE bound by bind(); *changes gets the row count. */
static int
run(struct sq_conn *c, const char *sql, const struct ep_args *a, int64_t *changes,
    const char *what)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":reason", a->reason);
    sq_bind_text(stmt, ":why", a->reason);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, what);
    else if (changes != NULL)
        *changes = sqlite3_changes64(c->db);
    sq_done(stmt);
    return err;
}

/*
 * Runs a cached UPDATE of the deliveries of endpoint a->id that returns
 * their created_at, moving them from status `from` to `to`; *changes gets
 * the row count.
 */
static int
run_moving(struct sq_conn *c, const char *sql, const struct ep_args *a, int from, int to,
           int64_t *changes, const char *what)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int err;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":why", a->reason);
    sq_bind_int(stmt, ":limit", a->chunk);
    err = sq_roll_update(c, stmt, a->id, from, to, changes, what);
    sq_done(stmt);
    return err;
}

/* Writes the endpoint_types rows of ep (after deleting the old ones). */
/* Replaces the fan-out rows of endpoint id with those of the comma list `list`. */
static int
types_write(struct sq_conn *c, const char *account_id, const char *id, const char *list)
{
    sqlite3_stmt *stmt;
    char **types = NULL;
    size_t ntypes = 0, i;
    struct ep_args del = { .id = id, .account_id = account_id };
    int rc, err;

    err = store_types_split(list, &types, &ntypes);
    if (err != 0)
        goto out;
    err = run(c, SQL_EP_TYPE_DELETE, &del, NULL, "replacing endpoint types");
    if (err != 0)
        goto out;
    stmt = sq_stmt(c, SQL_EP_TYPE_INSERT);
    if (stmt == NULL) {
        err = ERR_STORE;
        goto out;
    }
    for (i = 0; i < (ntypes == 0 ? 1 : ntypes); i++) {
        sq_bind_text(stmt, ":acct", account_id);
        sq_bind_text(stmt, ":type", ntypes == 0 ? "" : types[i]);
        sq_bind_text(stmt, ":id", id);
        rc = sqlite3_step(stmt);
        sq_done(stmt);
        if (rc != SQLITE_DONE) {
            err = sq_err(c, rc, "inserting endpoint types");
            goto out;
        }
    }
out:
    store_types_free(types, ntypes);
    return err;
}

static void
endpoint_bind(sqlite3_stmt *stmt, const struct endpoint *ep, int64_t now)
{
    sq_bind_text(stmt, ":id", ep->id);
    sq_bind_text(stmt, ":acct", ep->account_id);
    sq_bind_text(stmt, ":url", ep->url);
    sq_bind_text(stmt, ":desc", ep->description != NULL ? ep->description : "");
    sq_bind_text(stmt, ":types", ep->event_types != NULL ? ep->event_types : "");
    sq_bind_text(stmt, ":status", endpoint_status_name(ep->status));
    sq_bind_text(stmt, ":reason", ep->status == ENDPOINT_DISABLED
                                      ? (ep->disabled_reason != NULL ? ep->disabled_reason : "")
                                      : NULL);
    sq_bind_int(stmt, ":disabled_at",
                ep->status == ENDPOINT_DISABLED ? (ep->disabled_at != 0 ? ep->disabled_at : now)
                                                : 0);
    sq_bind_text(stmt, ":secret", ep->secret);
    sq_bind_text(stmt, ":prev", ep->prev_secret);
    sq_bind_int(stmt, ":prev_until", ep->prev_secret != NULL ? ep->prev_secret_until : 0);
    sq_bind_int(stmt, ":created", ep->created_at != 0 ? ep->created_at : now);
    sq_bind_int(stmt, ":updated", ep->updated_at != 0 ? ep->updated_at : now);
    sq_bind_text(stmt, ":kind", ep->operational ? "operational" : "customer");
}

static int
job_endpoint_insert(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_INSERT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    endpoint_bind(stmt, a->in, a->now);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "inserting an endpoint");
    sq_done(stmt);
    if (err == 0)
        err = types_write(c, a->in->account_id, a->in->id, a->in->event_types);
    return err;
}

int
sq_endpoint_insert(struct store *st, const struct endpoint *ep)
{
    struct ep_args args = { .in = ep, .now = clock_now_ms() };

    if (ep == NULL || ep->id[0] == '\0' || ep->url == NULL || ep->secret == NULL)
        return ERR_INVAL;
    return sq_write(st->impl, job_endpoint_insert, &args);
}

static int
job_endpoint_get(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, a->count_held ? SQL_EP_GET : SQL_EP_FIND);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":id", a->id);
        sq_bind_text(stmt, ":acct", a->account_id);
    }
    err = sq_row_one(c, stmt, endpoint_read, a->out, "reading an endpoint");
    sq_done(stmt);
    return err;
}

int
sq_endpoint_get(struct store *st, const char *account_id, const char *id, struct endpoint *out,
                int held)
{
    struct ep_args args = { .account_id = account_id, .id = id, .out = out, .count_held = held };
    int err;

    memset(out, 0, sizeof(*out));
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    err = sq_read(st->impl, job_endpoint_get, &args);
    if (err != 0)
        endpoint_cleanup(out);
    return err;
}

static int
job_endpoint_rows(struct sq_conn *c, void *arg, const char *sql, const char *what)
{
    struct ep_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":acct", a->account_id);
        sq_bind_text(stmt, ":after", a->after);
        sq_bind_int(stmt, ":limit", a->limit);
        sq_bind_text(stmt, ":type", a->type);
        sq_bind_text(stmt, ":kind", a->kind);
    }
    err = sq_row_all(c, stmt, endpoint_read, &a->list, &a->n, sizeof(*a->list), what);
    sq_done(stmt);
    return err;
}

static int
job_endpoint_list(struct sq_conn *c, void *arg)
{
    return job_endpoint_rows(c, arg, SQL_EP_LIST, "listing endpoints");
}

static int
job_endpoint_subscribed(struct sq_conn *c, void *arg)
{
    return job_endpoint_rows(c, arg, SQL_EP_SUBSCRIBED, "selecting subscribed endpoints");
}

int
sq_endpoint_list(struct store *st, const char *account_id, int operational, const char *after,
                 int limit, struct endpoint **out, size_t *n)
{
    struct ep_args args = {.account_id = account_id,
                           .after = after,
                           .limit = limit,
                           .kind = operational ? "operational" : "customer"};
    int err;

    if (account_id == NULL)
        return 0;
    err = sq_read(st->impl, job_endpoint_list, &args);
    if (err != 0) {
        endpoint_list_free(args.list, args.n);
        return err;
    }
    *out = args.list;
    *n = args.n;
    return 0;
}

int
sq_endpoint_subscribed(struct store *st, const char *account_id, const char *type,
                       struct endpoint **out, size_t *n)
{
    struct ep_args args = {.account_id = account_id, .type = type, .kind = store_fanout_kind(type)};
    int err;

    if (account_id == NULL || type == NULL || type[0] == '\0')
        return ERR_INVAL;
    err = sq_read(st->impl, job_endpoint_subscribed, &args);
    if (err != 0) {
        endpoint_list_free(args.list, args.n);
        return err;
    }
    *out = args.list;
    *n = args.n;
    return 0;
}

struct patch_args {
    const char *account_id;
    const char *id;
    const struct endpoint_patch *p;
    const char *secret;
    int64_t prev_until;
    int64_t now;
};

static int
job_endpoint_update(struct sq_conn *c, void *arg)
{
    struct patch_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_UPDATE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":url", a->p->url);
    sq_bind_text(stmt, ":desc", a->p->description);
    sq_bind_text(stmt, ":types", a->p->event_types);
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "updating an endpoint");
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_NOTFOUND;
    sq_done(stmt);
    if (err == 0 && a->p->event_types != NULL)
        err = types_write(c, a->account_id, a->id, a->p->event_types);
    return err;
}

int
sq_endpoint_update(struct store *st, const char *account_id, const char *id,
                   const struct endpoint_patch *p, int64_t now)
{
    struct patch_args args = { .account_id = account_id, .id = id, .p = p, .now = now };

    return sq_write(st->impl, job_endpoint_update, &args);
}

static int
job_endpoint_rotate(struct sq_conn *c, void *arg)
{
    struct patch_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_ROTATE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":secret", a->secret);
    sq_bind_int(stmt, ":prev_until", a->prev_until);
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "rotating a secret");
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_NOTFOUND;
    sq_done(stmt);
    return err;
}

int
sq_endpoint_rotate(struct store *st, const char *account_id, const char *id, const char *secret,
                   int64_t prev_until, int64_t now)
{
    struct patch_args args = { .account_id = account_id, .id = id, .secret = secret,
                               .prev_until = prev_until, .now = now };

    return sq_write(st->impl, job_endpoint_rotate, &args);
}

static int
job_endpoint_delete(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    int64_t changed = 0;
    int err;

    err = run(c, SQL_EP_DELETE, a, &changed, "deleting an endpoint");
    if (err == 0 && changed == 0)
        err = ERR_NOTFOUND;
    if (err == 0)
        err = run(c, SQL_EP_TYPE_DELETE, a, NULL, "deleting endpoint types");
    return err;
}

int
sq_endpoint_delete(struct store *st, const char *account_id, const char *id)
{
    struct ep_args args = { .account_id = account_id, .id = id, .now = clock_now_ms() };

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return sq_write(st->impl, job_endpoint_delete, &args);
}

static int
job_endpoint_disable(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    int64_t changed = 0;
    int err;

    err = run(c, SQL_EP_DISABLE, a, &changed, "disabling an endpoint");
    if (err == 0 && changed == 0)
        err = ERR_NOTFOUND;
    return err;
}

int
sq_endpoint_disable(struct store *st, const char *account_id, const char *id,
                    const char *reason, int64_t now)
{
    struct ep_args args = { .account_id = account_id, .id = id, .reason = reason, .now = now };

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return sq_write(st->impl, job_endpoint_disable, &args);
}

/* Resumes (or with skip_held fails) one chunk of held deliveries; a->count gets how many. */
static int
job_held_chunk(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;

    if (a->skip_held) {
        a->reason = "skipped";
        return run_moving(c, SQL_EP_SKIP_HELD, a, DELIVERY_HELD, DELIVERY_FAILED, &a->count,
                          "skipping held deliveries");
    }
    return run_moving(c, SQL_EP_RESUME_HELD, a, DELIVERY_HELD, DELIVERY_PENDING, &a->count,
                      "resuming held deliveries");
}

static int
job_endpoint_enable(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    int64_t changed = 0;
    int err;

    err = run(c, SQL_EP_ENABLE, a, &changed, "enabling an endpoint");
    if (err == 0 && changed == 0)
        err = ERR_NOTFOUND;
    if (err != 0)
        return err;
    return job_held_chunk(c, a);
}

/* The enable (account_id set) or a later chunk of it. */
static int
job_enable_chunk(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;

    return a->account_id != NULL ? job_endpoint_enable(c, a) : job_held_chunk(c, a);
}

static int
job_nothing(struct sq_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    return 0;
}

int
sq_sync_wait(struct store *st)
{
    return sq_write(st->impl, job_nothing, NULL);
}

/* A chunk's job and how long it took in the writer. */
struct timed_job {
    sq_job_fn *fn;
    void *arg;
    int64_t took_us;
};

static int
job_timed(struct sq_conn *c, void *arg)
{
    struct timed_job *t = arg;
    int64_t t0 = clock_mono_us();
    int err;

    err = t->fn(c, t->arg);
    t->took_us = clock_mono_us() - t0;
    return err;
}

int
sq_chunk_write(struct store *st, sq_job_fn *fn, void *arg, int64_t *took_us)
{
    struct sq *s = st->impl;
    struct timed_job t = { .fn = fn, .arg = arg };
    int err;

    sq_ckpt_yield(s->ckpt); /* a pass near the WAL's bound goes first */
    err = sq_write_chunk(s, job_timed, &t);
    *took_us = t.took_us;
    return err;
}

/*
 * Runs the enable (account_id set) or a later chunk of it, as ck says. The
 * chunks commit without waiting for their sync (a crash before it leaves
 * them held, to be resumed at the next open: nothing is lost); the last
 * waits until all of them are durable, before the enable answers.
 */
static int
held_chunk_write(struct store *st, const char *account_id, const char *id, int skip_held,
                 struct store_chunk *ck)
{
    struct ep_args args = { .account_id = account_id, .id = id, .skip_held = skip_held,
                            .now = ck->now, .chunk = ck->limit };
    int64_t handed = 0, took = 0;
    int err = 0;

    ck->moved = 0;
    ck->took_us = 0;
    if (!skip_held && !ck->queue && store_handoff_active(st)) {
        /* The flip alone, then the held deliveries straight to the dispatcher. */
        args.chunk = 0;
        if (account_id != NULL)
            err = sq_chunk_write(st, job_enable_chunk, &args, &took);
        args.account_id = NULL;
        if (err == 0)
            err = sq_held_hand(st, id, ck);
        handed = ck->moved;
        took += ck->took_us;
        ck->took_us = 0;
        if (ck->queue)
            args.chunk = ck->limit - handed;
    }
    if (err == 0 && args.chunk > 0)
        err = sq_chunk_write(st, job_enable_chunk, &args, &ck->took_us);
    ck->took_us += took;
    if (err == 0)
        ck->moved = handed + args.count;
    if (err == 0 && ck->moved < ck->limit)
        err = sq_sync_wait(st);
    return err;
}

int
sq_endpoint_enable(struct store *st, const char *account_id, const char *id, int skip_held,
                   struct store_chunk *ck)
{
    ck->moved = 0;
    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return held_chunk_write(st, account_id, id, skip_held, ck);
}

int
sq_endpoint_held_chunk(struct store *st, const char *id, int skip_held, struct store_chunk *ck)
{
    return held_chunk_write(st, NULL, id, skip_held, ck);
}

/* Endpoint a->id's state: 0 enabled, 1 disabled, 2 deleted (or gone). */
static int
cut_state(struct sq_conn *c, const struct ep_args *a, int *state)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_STATE);
    int rc, err = 0;

    *state = 2;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_int64(stmt, 1) == 0)
        *state = strcmp((const char *)sqlite3_column_text(stmt, 0), "disabled") == 0 ? 1 : 0;
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sq_err(c, rc, "reading an endpoint");
    sq_done(stmt);
    return err;
}

/*
 * One chunk of a disable (pending to held) or a delete (pending, then held,
 * to failed), as the endpoint's state asks; a->count gets how many moved.
 * An enabled endpoint has nothing to move: an enable came in between.
 */
static int
job_cut_chunk(struct sq_conn *c, void *arg)
{
    struct ep_args *a = arg;
    int64_t limit = a->chunk, moved = 0;
    int state, err;

    a->count = 0; /* a job may run twice */
    err = cut_state(c, a, &state);
    if (err != 0 || state == 0)
        return err;
    if (state == 1)
        return run_moving(c, SQL_EP_HOLD_PENDING, a, DELIVERY_PENDING, DELIVERY_HELD, &a->count,
                          "holding deliveries");
    a->reason = "endpoint deleted";
    err = run_moving(c, SQL_EP_END_PENDING, a, DELIVERY_PENDING, DELIVERY_FAILED, &moved,
                     "ending deliveries");
    if (err == 0 && moved < limit) {
        a->chunk = limit - moved;
        err = run_moving(c, SQL_EP_END_HELD, a, DELIVERY_HELD, DELIVERY_FAILED, &a->count,
                         "ending deliveries");
        a->chunk = limit;
    }
    a->count += moved;
    return err;
}

/*
 * As enable's chunks: each commits without waiting for its sync (a crash
 * leaves the rest to sq_endpoint_cut_next() at the next open); the last
 * waits until all of them are durable.
 */
int
sq_endpoint_cut_chunk(struct store *st, const char *id, struct store_chunk *ck)
{
    struct ep_args args = { .id = id, .now = ck->now, .chunk = ck->limit };
    int err;

    ck->moved = 0;
    ck->took_us = 0;
    err = sq_chunk_write(st, job_cut_chunk, &args, &ck->took_us);
    if (err == 0)
        ck->moved = args.count;
    if (err == 0 && ck->moved < ck->limit)
        err = sq_sync_wait(st);
    return err;
}

static int
id_read(sqlite3_stmt *stmt, void *out)
{
    sq_col_copy(stmt, 0, out, ID_MAX);
    return 0;
}

static int
job_held_next(struct sq_conn *c, void *arg)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_HELD_NEXT);
    int err;

    err = sq_row_one(c, stmt, id_read, arg, "finding held deliveries to resume");
    sq_done(stmt);
    return err;
}

int
sq_endpoint_held_next(struct store *st, char *id)
{
    return sq_read(st->impl, job_held_next, id);
}

static int
job_cut_next(struct sq_conn *c, void *arg)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_CUT_NEXT);
    int err;

    err = sq_row_one(c, stmt, id_read, arg, "finding a disable or delete cut short");
    sq_done(stmt);
    return err;
}

int
sq_endpoint_cut_next(struct store *st, char *id)
{
    return sq_read(st->impl, job_cut_next, id);
}
