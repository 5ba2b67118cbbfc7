/*
 * SQLite backend: the dispatcher's side. Claims take due work with leases,
 * results record attempts and move deliveries on, releases give claims back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/secret.h"

#define CLAIM_SCAN_MIN 256          /* due rows the first pass looks at, at least */
#define CLAIM_MAX_ENDPOINTS 10000   /* endpoints the second pass visits, at most */
#define CLAIM_SKIP_RUN 32           /* rows in a row the first pass skips before it gives up */
#define SWEEP_MAX_MS 1000           /* expired leases are looked for at least this often */

/*
 * The indexes are named so that a claim never walks rows that are not due:
 * they hold pending deliveries only (migration 021), at their next attempt.
 * A delivery above :synced may have a publish not yet durable (sq_synced.c);
 * the indexes hold the id, so it is left out without reading its row.
 */
static const char SQL_DUE_SCAN[] =
    "SELECT id, endpoint_id, next_attempt_at, status FROM deliveries INDEXED BY deliveries_due "
    "WHERE status = 'pending' AND next_attempt_at <= :now AND id <= :synced "
    "ORDER BY next_attempt_at LIMIT :limit";
static const char SQL_DUE_NEXT_EP[] =
    "SELECT endpoint_id FROM deliveries INDEXED BY deliveries_endpoint_due "
    "WHERE status = 'pending' AND endpoint_id > :after ORDER BY endpoint_id LIMIT 1";
static const char SQL_DUE_OF_EP[] =
    "SELECT id, endpoint_id, next_attempt_at, status FROM deliveries "
    "INDEXED BY deliveries_endpoint_due WHERE endpoint_id = :ep AND status = 'pending' "
    "AND next_attempt_at <= :now AND id <= :synced ORDER BY next_attempt_at LIMIT :limit";
/*
 * Leased deliveries are in no due index: those whose lease ran out are found
 * through each endpoint's delivering rows (deliveries_endpoint_status, any
 * process's) and made pending at their lease's end, so that they keep their
 * place in due order. The token goes one up: the late result of the holder
 * is fenced (it is no longer the delivery's), not taken for one recorded.
 */
static const char SQL_SWEEP[] =
    "UPDATE deliveries SET status = 'pending', next_attempt_at = lease_until, lease_until = 0, "
    "lease_token = lease_token + 1, updated_at = :now WHERE id IN (SELECT d.id "
    "FROM endpoints e CROSS JOIN deliveries d INDEXED BY deliveries_endpoint_status "
    "WHERE d.endpoint_id = e.id AND d.status = 'delivering' AND d.lease_until <= :now)";
static const char SQL_LEASED[] = "SELECT n FROM delivery_counts WHERE status = 'delivering'";
static const char SQL_CLAIM_EP[] =
    "SELECT status, deleted_at, url, secret, prev_secret, prev_secret_until "
    "FROM endpoints WHERE id = :ep";
static const char SQL_CLAIM_SET[] =
    "UPDATE deliveries SET status = 'delivering', lease_until = :lease, "
    "lease_token = lease_token + 1, updated_at = :now WHERE id = :id";
static const char SQL_CLAIM_SET_OTHER[] =
    "UPDATE deliveries SET status = :status, lease_until = 0, last_error = "
    "coalesce(:why, last_error), updated_at = :now WHERE id = :id";
static const char SQL_CLAIM_READ[] =
    "SELECT d.id, d.event_id, d.endpoint_id, d.account_id, d.event_type, d.status, "
    "d.attempts_made, d.round_start, d.next_attempt_at, d.lease_until, d.created_at, "
    "d.updated_at, d.last_status_code, d.last_error, d.lease_token, e.body "
    "FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = :id";
/* The endpoint's state comes from res_ep_state(), read once per batch. */
static const char SQL_RES_READ[] =
    "SELECT status, attempts_made, account_id, endpoint_id, lease_token FROM deliveries "
    "WHERE id = ?1";
static const char SQL_RES_DISABLE[] =
    "UPDATE endpoints SET status = 'disabled', disabled_reason = :reason, disabled_at = :now, "
    "updated_at = :now WHERE id = :ep AND status = 'enabled' AND deleted_at = 0";
static const char SQL_RES_UPDATE[] =
    "UPDATE deliveries SET status = ?1, attempts_made = ?2, next_attempt_at = ?3, "
    "lease_until = 0, last_status_code = ?4, last_error = ?5, updated_at = ?6 "
    "WHERE id = ?7 AND status = 'delivering' AND lease_token = ?8";
static const char SQL_RES_EP_STATE[] = "SELECT status, deleted_at FROM endpoints WHERE id = ?1";
static const char SQL_RES_ATTEMPT[] =
    "INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, error, "
    "error_class, duration_ms, response_body, outcome, request_headers, response_headers) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char SQL_RELEASE[] =
    "UPDATE deliveries SET status = 'pending', next_attempt_at = :now, lease_until = 0, "
    "updated_at = :now WHERE id = :id AND status = 'delivering' AND lease_token = :token";
static const char SQL_NEXT_DUE[] =
    "SELECT next_attempt_at FROM deliveries INDEXED BY deliveries_due "
    "WHERE status = 'pending' ORDER BY next_attempt_at LIMIT 1";

/* A due delivery the claim may take. */
struct cand {
    char id[ID_MAX];
    char ep[ID_MAX];
    int64_t due;
    int status;  /* pending: expired leases are swept to pending first */
};

/* An endpoint met during one claim: how many were taken from it, and how to send. */
struct ep_info {
    char id[ID_MAX];
    int taken;          /* in flight under a live lease, plus those this claim took */
    int counted;        /* taken holds the in-flight count read from the store */
    int loaded;
    int state;          /* 0 enabled, 1 disabled, 2 deleted */
    char *url;
    char *secret;
    char *prev_secret;  /* only while its grace period runs */
};

struct claim_args {
    struct sq *s;
    struct sq_synced synced; /* which deliveries it may take and answer at once */
    int wait;                /* it took one that a WAL sync must cover first */
    int swept;               /* this job swept expired leases (leases_sweep()) */
    int64_t now, lease_ms;
    int max, per_endpoint;
    const char *const *exclude;
    size_t nexclude;
    struct claim *out;
    size_t n, cap;
    struct ep_info *eps;
    size_t neps, capeps;
    struct cand *cands;
    size_t ncands;
};

static int
excluded(const struct claim_args *a, const char *ep)
{
    size_t i;

    for (i = 0; i < a->nexclude; i++) {
        if (a->exclude[i] != NULL && strcmp(a->exclude[i], ep) == 0)
            return 1;
    }
    return 0;
}

/*
 * How many deliveries of info's endpoint are delivering under a live lease
 * (any process's): the writer's cached count, which is never below the
 * store's, while it leaves room under the cap; counted again when it says
 * full (it may be stale) or is not known.
 */
static int
ep_count(struct sq_conn *c, const struct claim_args *a, struct ep_info *info)
{
    struct sq_cache_ep row = {.live = -1}, *e;
    /* The cache counts at the clock's now: a claim as of later counts for itself. */
    int current = a->now <= clock_now_ms();
    int err;

    info->counted = 1;
    err = sq_cache_ep_get(c, info->id, &row, &e);
    if (err == 0 && current && e->live >= 0 && e->live < a->per_endpoint) {
        info->taken = e->live;
    } else if (err == 0) {
        err = sq_live_count(c, info->id, a->now, &info->taken);
        if (err == 0 && current)
            e->live = info->taken;
    }
    sq_cache_ep_clear(&row);
    return err;
}

/*
 * The claim's record of endpoint ep, added (with its in-flight count) when
 * new. Returns 0 and *out, or ERR_*.
 */
static int
ep_find(struct sq_conn *c, struct claim_args *a, const char *ep, struct ep_info **out)
{
    struct ep_info *info;
    size_t i;

    for (i = 0; i < a->neps; i++) {
        if (strcmp(a->eps[i].id, ep) == 0) {
            *out = &a->eps[i];
            return 0;
        }
    }
    if (store_grow(&a->eps, &a->capeps, a->neps + 1, sizeof(*a->eps)) != 0)
        return ERR_NOMEM;
    info = &a->eps[a->neps++];
    memset(info, 0, sizeof(*info));
    snprintf(info->id, ID_MAX, "%s", ep);
    *out = info;
    return a->per_endpoint > 0 ? ep_count(c, a, info) : 0;
}

static void
eps_free(struct claim_args *a)
{
    size_t i;

    for (i = 0; i < a->neps; i++) {
        free(a->eps[i].url);
        secret_free(a->eps[i].secret);
        secret_free(a->eps[i].prev_secret);
    }
    free(a->eps);
    a->eps = NULL;
    a->neps = a->capeps = 0;
}

/* Room left for endpoint ep in this claim. */
static int
quota(const struct claim_args *a, const struct ep_info *info)
{
    int left = a->max - (int)a->ncands;
    int room;

    if (a->per_endpoint <= 0)
        return left;
    room = a->per_endpoint - info->taken;
    return room < left ? room : left;
}

/* Inserts c into the candidates, kept sorted by due time and at most max - n long. */
static int
cand_offer(struct claim_args *a, const struct cand *c, size_t limit)
{
    size_t pos;

    if (limit == 0)
        return 0;
    if (a->ncands == limit && a->cands[a->ncands - 1].due <= c->due)
        return 0;
    pos = a->ncands;
    while (pos > 0 && a->cands[pos - 1].due > c->due)
        pos--;
    if (a->ncands == limit)
        a->ncands--;
    memmove(&a->cands[pos + 1], &a->cands[pos], (a->ncands - pos) * sizeof(*a->cands));
    a->cands[pos] = *c;
    a->ncands++;
    return 1;
}

static int
dup_or_null(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = strdup(s);
    return *out == NULL ? ERR_NOMEM : 0;
}

/* Fills info's sending fields from the writer's cache when it holds them enabled; 1 if so. */
static int
ep_load_cached(struct sq_conn *c, struct claim_args *a, struct ep_info *info, int *err)
{
    struct sq_cache_ep row = {.live = -1}, *e;
    int done = 0;

    *err = sq_cache_ep_get(c, info->id, &row, &e);
    if (*err == 0 && e->sendable) {
        done = 1;
        info->state = 0;
        *err = dup_or_null(e->url, &info->url);
        if (*err == 0)
            *err = dup_or_null(e->secret, &info->secret);
        if (*err == 0 && e->prev_until > a->now)
            *err = dup_or_null(e->prev_secret, &info->prev_secret);
        info->loaded = 1;
    }
    sq_cache_ep_clear(&row);
    return done || *err != 0;
}

static int
ep_load(struct sq_conn *c, struct claim_args *a, struct ep_info *info)
{
    sqlite3_stmt *stmt;
    int rc, err = 0;

    /* Disabled and deleted endpoints are told apart by their row. */
    if (ep_load_cached(c, a, info, &err))
        return err;
    stmt = sq_stmt(c, SQL_CLAIM_EP);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", info->id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(stmt, 0);

        info->state = sqlite3_column_int64(stmt, 1) != 0    ? 2
                      : strcmp(status, "disabled") == 0 ? 1
                                                        : 0;
        err = sq_col_strdup(stmt, 2, &info->url);
        if (err == 0)
            err = sq_col_strdup(stmt, 3, &info->secret);
        if (err == 0 && sqlite3_column_int64(stmt, 5) > a->now)
            err = sq_col_strdup(stmt, 4, &info->prev_secret);
    } else if (rc == SQLITE_DONE) {
        info->state = 2;
    } else {
        err = sq_err(c, rc, "reading a claimed endpoint");
    }
    sq_done(stmt);
    info->loaded = 1;
    return err;
}

/* Moves one candidate to delivering and appends its claim. */
static int
claim_one(struct sq_conn *c, struct claim_args *a, const struct cand *cd, struct ep_info *info)
{
    sqlite3_stmt *stmt;
    struct claim *cl;
    int rc, err = 0;

    stmt = sq_stmt(c, SQL_CLAIM_SET);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":lease", a->now + a->lease_ms);
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":id", cd->id);
    rc = sqlite3_step(stmt);
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "claiming a delivery");
    sq_count_move(c, cd->status, DELIVERY_DELIVERING, 1);
    sq_cache_lease_add(c, info->id, 1);

    err = store_grow(&a->out, &a->cap, a->n + 1, sizeof(*a->out));
    if (err != 0)
        return err;
    stmt = sq_stmt(c, SQL_CLAIM_READ);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", cd->id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        err = rc == SQLITE_DONE ? ERR_STORE : sq_err(c, rc, "reading a claimed delivery");
        goto out;
    }
    cl = &a->out[a->n];
    memset(cl, 0, sizeof(*cl));
    a->n++; /* counted now so that claim_list_free() frees what is filled so far */
    err = sq_delivery_read(stmt, &cl->dlv);
    if (err == 0)
        err = sq_col_bytes(stmt, 15, &cl->body, &cl->body_len);
    if (err == 0)
        err = dup_or_null(info->url, &cl->url);
    if (err == 0)
        err = dup_or_null(info->secret, &cl->secret);
    if (err == 0)
        err = dup_or_null(info->prev_secret, &cl->prev_secret);
out:
    sq_done(stmt);
    return err;
}

/* A due delivery whose endpoint was disabled or deleted since it was queued. */
static int
claim_divert(struct sq_conn *c, struct claim_args *a, const struct cand *cd, int state)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_CLAIM_SET_OTHER);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":status", state == 1 ? "held" : "failed");
    sq_bind_text(stmt, ":why", state == 1 ? NULL : "endpoint deleted");
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":id", cd->id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "diverting a delivery");
    else {
        sq_count_move(c, cd->status, state == 1 ? DELIVERY_HELD : DELIVERY_FAILED, 1);
        sq_roll_move(c, cd->ep, id_time_ms(cd->id), cd->status,
                     state == 1 ? DELIVERY_HELD : DELIVERY_FAILED, 1);
    }
    sq_done(stmt);
    return err;
}

static int
cands_take(struct sq_conn *c, struct claim_args *a)
{
    size_t i;
    int err = 0;

    for (i = 0; i < a->ncands && err == 0; i++) {
        struct ep_info *info;

        err = ep_find(c, a, a->cands[i].ep, &info);
        if (err != 0)
            break;
        if (!info->loaded) {
            err = ep_load(c, a, info);
            if (err != 0)
                break;
        }
        if (info->state != 0)
            err = claim_divert(c, a, &a->cands[i], info->state);
        else
            err = claim_one(c, a, &a->cands[i], info);
    }
    a->ncands = 0;
    return err;
}

/*
 * First pass: the oldest due rows in time order, skipping excluded endpoints
 * and those at their share. *more is set when rows were left unread. A run
 * of CLAIM_SKIP_RUN skipped rows (a long queue of an endpoint at its cap, the
 * usual case of a drain) ends it early: the second pass reaches the other
 * endpoints' work through their own index for far fewer reads.
 */
static int
claim_scan(struct sq_conn *c, struct claim_args *a, int *more)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_DUE_SCAN);
    int scan = a->max * 4 > CLAIM_SCAN_MIN ? a->max * 4 : CLAIM_SCAN_MIN;
    int rows = 0, skipped = 0, rc = SQLITE_DONE, err = 0;

    *more = 0;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":now", a->now);
    sq_bind_text(stmt, ":synced", a->synced.bound);
    sq_bind_int(stmt, ":limit", scan);
    while ((int)a->ncands < a->max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct cand cd;
        struct ep_info *info;

        rows++;
        sq_col_copy(stmt, 0, cd.id, sizeof(cd.id));
        sq_col_copy(stmt, 1, cd.ep, sizeof(cd.ep));
        cd.due = sqlite3_column_int64(stmt, 2);
        cd.status = store_status_parse((const char *)sqlite3_column_text(stmt, 3));
        if (excluded(a, cd.ep)) {
            if (++skipped == CLAIM_SKIP_RUN)
                break;
            continue;
        }
        err = ep_find(c, a, cd.ep, &info);
        if (err != 0)
            goto out;
        if (quota(a, info) <= 0) {
            if (++skipped == CLAIM_SKIP_RUN)
                break;
            continue;
        }
        skipped = 0;
        info->taken++;
        a->cands[a->ncands++] = cd;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sq_err(c, rc, "scanning due deliveries");
    if (rows == scan || skipped == CLAIM_SKIP_RUN)
        *more = 1;
out:
    sq_done(stmt);
    return err;
}

/*
 * Second pass, when the first one met only endpoints it had to skip: visit
 * each endpoint with due work through its own index and keep the oldest
 * rows that fit, so a long queue of one endpoint never starves the others.
 */
static int
claim_by_endpoint(struct sq_conn *c, struct claim_args *a)
{
    sqlite3_stmt *next = sq_stmt(c, SQL_DUE_NEXT_EP);
    sqlite3_stmt *rows = sq_stmt(c, SQL_DUE_OF_EP);
    char ep[ID_MAX] = "";
    size_t limit = (size_t)(a->max - (int)a->n);
    int visited = 0, rc, err = 0;

    if (next == NULL || rows == NULL)
        return ERR_STORE;
    while (visited++ < CLAIM_MAX_ENDPOINTS) {
        struct ep_info *info;
        int q;

        sq_bind_text(next, ":after", ep);
        rc = sqlite3_step(next);
        if (rc != SQLITE_ROW) {
            if (rc != SQLITE_DONE)
                err = sq_err(c, rc, "finding endpoints with due work");
            sq_done(next);
            break;
        }
        sq_col_copy(next, 0, ep, sizeof(ep));
        sq_done(next);
        if (excluded(a, ep))
            continue;
        err = ep_find(c, a, ep, &info);
        if (err != 0)
            break;
        q = a->per_endpoint > 0 ? a->per_endpoint - info->taken : (int)limit;
        if (q > (int)limit)
            q = (int)limit;
        if (q <= 0)
            continue;
        sq_bind_text(rows, ":ep", ep);
        sq_bind_int(rows, ":now", a->now);
        sq_bind_text(rows, ":synced", a->synced.bound);
        sq_bind_int(rows, ":limit", q);
        while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
            struct cand cd;

            sq_col_copy(rows, 0, cd.id, sizeof(cd.id));
            sq_col_copy(rows, 1, cd.ep, sizeof(cd.ep));
            cd.due = sqlite3_column_int64(rows, 2);
            cd.status = store_status_parse((const char *)sqlite3_column_text(rows, 3));
            cand_offer(a, &cd, limit);
        }
        sq_done(rows);
        if (rc != SQLITE_DONE) {
            err = sq_err(c, rc, "reading due deliveries");
            break;
        }
    }
    if (err == 0)
        err = cands_take(c, a);
    return err;
}

/* How often expired leases are looked for under leases of lease_ms: a quarter of one, at most SWEEP_MAX_MS. */
static int64_t
sweep_period(int64_t lease_ms)
{
    int64_t p = lease_ms / 4;

    return p > SWEEP_MAX_MS ? SWEEP_MAX_MS : p < 1 ? 1 : p;
}

/* Sets *n to the deliveries delivering in the store, this transaction's changes included. */
static int
leased_count(struct sq_conn *c, int64_t *n)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_LEASED);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    *n = c->delta[DELIVERY_DELIVERING];
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *n += sqlite3_column_int64(stmt, 0);
    else if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "counting leased deliveries");
    sq_done(stmt);
    return err;
}

/*
 * Makes the deliveries whose lease ran out by the claim's now pending
 * (SQL_SWEEP), once per sweep period of the claims' time: when the last
 * sweep is a period away from this claim's now, either way (a claim made as
 * of a time before the last sweep's by less than that, as another thread's
 * may be, does not sweep again). None is looked for while no delivery is
 * leased.
 */
static int
leases_sweep(struct sq_conn *c, struct claim_args *a)
{
    struct sq *s = a->s;
    int64_t period = sweep_period(a->lease_ms), leased = 0;
    sqlite3_stmt *stmt;
    int rc, err;

    if (s->sweep_at != 0 && a->now < s->sweep_at + period && a->now > s->sweep_at - period)
        return 0;
    err = leased_count(c, &leased);
    if (err != 0 || leased <= 0)
        goto out;
    stmt = sq_stmt(c, SQL_SWEEP);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":now", a->now);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "sweeping expired leases");
    else
        sq_count_move(c, DELIVERY_DELIVERING, DELIVERY_PENDING, sqlite3_changes(c->db));
    sq_done(stmt);
out:
    if (err == 0) {
        a->swept = 1;
        s->sweep_at = a->now;
        pthread_mutex_lock(&s->lock);
        s->sweep_next = a->now + period;
        pthread_mutex_unlock(&s->lock);
    }
    return err;
}

static int
job_claim(struct sq_conn *c, void *arg)
{
    struct claim_args *a = arg;
    size_t i;
    int more = 0, err;

    /* A second run of the job (see batch_run()) starts from nothing. */
    claim_list_free(a->out, a->n);
    a->out = NULL;
    a->n = a->cap = 0;
    a->ncands = 0;
    a->wait = 0;
    eps_free(a);
    if (a->swept)
        a->s->sweep_at = 0; /* its sweep was undone with the rest: sweep again */
    a->swept = 0;
    err = sq_synced_view(a->s, c, &a->synced);
    if (err == 0)
        err = leases_sweep(c, a);
    if (err == 0)
        err = claim_scan(c, a, &more);
    if (err == 0)
        err = cands_take(c, a);
    if (err == 0 && (int)a->n < a->max && more)
        err = claim_by_endpoint(c, a);
    for (i = 0; err == 0 && i < a->n && !a->wait; i++)
        a->wait = !sq_synced_vouches(&a->synced, a->out[i].dlv.id);
    eps_free(a);
    return err;
}

int
sq_claim(struct store *st, int64_t now, int64_t lease_ms, int max, int per_endpoint,
         const char *const *exclude, size_t nexclude, struct claim **out, size_t *n)
{
    struct claim_args args = { .s = st->impl, .now = now, .lease_ms = lease_ms, .max = max,
                               .per_endpoint = per_endpoint, .exclude = exclude,
                               .nexclude = nexclude };
    int err;

    args.cands = calloc((size_t)max, sizeof(*args.cands));
    if (args.cands == NULL)
        return ERR_NOMEM;
    err = sq_write_nosync(st->impl, job_claim, &args);
    if (err == 0 && args.wait)
        err = sq_sync_wait(st);
    free(args.cands);
    eps_free(&args);
    if (err != 0) {
        claim_list_free(args.out, args.n);
        return err;
    }
    *out = args.out;
    *n = args.n;
    return 0;
}

/* --- results --- */

enum { EP_ENABLED, EP_DISABLED, EP_DELETED };

/* An endpoint's state as one batch of results met it. */
struct res_ep {
    char id[ID_MAX];
    int state; /* EP_* */
};

struct results_args {
    const struct attempt_result *rs;
    size_t n;
    int64_t now;
    size_t fenced;      /* results discarded as stale */
    struct res_ep *eps; /* the endpoints the batch met, each read once */
    size_t neps, capeps;
};

/*
 * The record of endpoint ep in this batch, read from the store the first
 * time. Returns 0 and *out, or ERR_*.
 */
static int
res_ep_find(struct sq_conn *c, struct results_args *a, const char *ep, struct res_ep **out)
{
    sqlite3_stmt *stmt;
    struct res_ep *e;
    size_t i;
    int rc, err = 0;

    for (i = 0; i < a->neps; i++) {
        if (strcmp(a->eps[i].id, ep) == 0) {
            *out = &a->eps[i];
            return 0;
        }
    }
    if (store_grow(&a->eps, &a->capeps, a->neps + 1, sizeof(*a->eps)) != 0)
        return ERR_NOMEM;
    e = &a->eps[a->neps];
    snprintf(e->id, sizeof(e->id), "%s", ep);
    stmt = sq_stmt(c, SQL_RES_EP_STATE);
    if (stmt == NULL)
        return ERR_STORE;
    sqlite3_bind_text(stmt, 1, ep, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        e->state = sqlite3_column_int64(stmt, 1) != 0 ? EP_DELETED
                   : strcmp((const char *)sqlite3_column_text(stmt, 0), "disabled") == 0
                       ? EP_DISABLED
                       : EP_ENABLED;
    else if (rc == SQLITE_DONE)
        e->state = EP_DELETED;
    else
        err = sq_err(c, rc, "reading an endpoint");
    sq_done(stmt);
    if (err != 0)
        return err;
    a->neps++;
    *out = e;
    return 0;
}

static int
endpoint_disable_auto(struct sq_conn *c, const char *ep, const char *reason, int64_t now)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_RES_DISABLE);
    int rc, changed = 0, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":reason", reason != NULL ? reason : "retries exhausted");
    sq_bind_int(stmt, ":now", now);
    sq_bind_text(stmt, ":ep", ep);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "disabling an endpoint");
    else
        changed = sqlite3_changes(c->db);
    sq_done(stmt);
    /* Its pending deliveries are held in chunks after this job (store_results_apply()). */
    if (err == 0 && changed > 0)
        log_info("store: endpoint disabled endpoint=%s", ep);
    return err;
}

/* Binds text or NULL at position i. */
static void
bind_text_at(sqlite3_stmt *stmt, int i, const char *v)
{
    if (v == NULL)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC);
}

/* Appends r's attempt (its n-th) to the log and notes it in the rollups. */
static int
attempt_record(struct sq_conn *c, const struct attempt_result *r, int n, const char *acct,
               const char *ep, enum delivery_status status, int64_t now)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_RES_ATTEMPT);
    int64_t at = r->attempt.at != 0 ? r->attempt.at : now;
    int rc;

    if (stmt == NULL)
        return ERR_STORE;
    bind_text_at(stmt, 1, r->attempt.delivery_id);
    sqlite3_bind_int64(stmt, 2, n);
    bind_text_at(stmt, 3, acct);
    bind_text_at(stmt, 4, ep);
    sqlite3_bind_int64(stmt, 5, at);
    sqlite3_bind_int64(stmt, 6, r->attempt.status_code);
    bind_text_at(stmt, 7, r->attempt.error);
    bind_text_at(stmt, 8, attempt_error_class_name(r->attempt.error_class));
    sqlite3_bind_int64(stmt, 9, r->attempt.duration_ms);
    if (r->attempt.response_body != NULL)
        sqlite3_bind_blob64(stmt, 10, r->attempt.response_body, r->attempt.response_len,
                            SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 10);
    bind_text_at(stmt, 11, sq_status(status));
    bind_text_at(stmt, 12, r->attempt.request_headers);
    bind_text_at(stmt, 13, r->attempt.response_headers);
    rc = sqlite3_step(stmt);
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "recording an attempt");
    sq_roll_attempt(c, ep, at, r->attempt.status_code, status, r->attempt.duration_ms);
    return 0;
}

/*
 * Moves r's delivery on from delivering under r's lease token and records
 * its n-th attempt; *moved is 0 when the delivery no longer is (nothing
 * written). The fence is the UPDATE's own condition, so a caller that knows
 * the delivery's account and endpoint need not read it first.
 */
static int
result_move(struct sq_conn *c, struct results_args *a, const struct attempt_result *r, int n,
            const char *acct, const char *ep, int *moved)
{
    sqlite3_stmt *stmt;
    enum delivery_status status = r->status;
    const char *last_error = r->attempt.error;
    struct res_ep *e = NULL;
    int rc, err;

    *moved = 0;
    if (status == DELIVERY_DELIVERING)
        status = DELIVERY_PENDING;
    /* Only a retry or a disable depends on the endpoint's state. */
    if (status == DELIVERY_PENDING || r->disable_endpoint) {
        err = res_ep_find(c, a, ep, &e);
        if (err != 0)
            return err;
    }
    if (r->disable_endpoint && e->state == EP_ENABLED) {
        err = endpoint_disable_auto(c, ep, r->disable_reason, a->now);
        if (err != 0)
            return err;
        e->state = EP_DISABLED;
    }
    if (status == DELIVERY_PENDING && e->state == EP_DELETED) {
        status = DELIVERY_FAILED;
        last_error = "endpoint deleted";
    } else if (status == DELIVERY_PENDING && e->state == EP_DISABLED) {
        status = DELIVERY_HELD;
    }

    stmt = sq_stmt(c, SQL_RES_UPDATE);
    if (stmt == NULL)
        return ERR_STORE;
    bind_text_at(stmt, 1, sq_status(status));
    sqlite3_bind_int64(stmt, 2, n);
    sqlite3_bind_int64(stmt, 3, status == DELIVERY_PENDING ? r->next_attempt_at : 0);
    sqlite3_bind_int64(stmt, 4, r->attempt.status_code);
    bind_text_at(stmt, 5, status == DELIVERY_DELIVERED ? NULL : last_error);
    sqlite3_bind_int64(stmt, 6, a->now);
    bind_text_at(stmt, 7, r->attempt.delivery_id);
    sqlite3_bind_int64(stmt, 8, r->lease_token);
    rc = sqlite3_step(stmt);
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "updating a delivery");
    if (sqlite3_changes(c->db) == 0)
        return 0;
    *moved = 1;
    sq_count_move(c, DELIVERY_DELIVERING, status, 1);
    sq_roll_move(c, ep, id_time_ms(r->attempt.delivery_id), DELIVERY_DELIVERING, status, 1);
    return attempt_record(c, r, n, acct, ep, status, a->now);
}

/*
 * Applies one result; a stale one (its lease token is no longer the
 * delivery's, or the delivery is no longer delivering) is logged and
 * counted in a->fenced instead.
 *
 * A result that names its delivery's account and endpoint (the claim's)
 * and disables nothing is written at once: under its lease the delivery's
 * attempts_made is the claim's, so its attempt is r's n. The read below
 * runs for the rest, and to tell why a fenced write changed nothing.
 */
static int
result_apply(struct sq_conn *c, struct results_args *a, const struct attempt_result *r)
{
    sqlite3_stmt *stmt;
    char acct[ID_MAX], ep[ID_MAX];
    int64_t token;
    int cur, n, rc, moved, err = 0;

    if (r->endpoint_id != NULL && r->account_id != NULL && !r->disable_endpoint) {
        err = result_move(c, a, r, r->attempt.n, r->account_id, r->endpoint_id, &moved);
        if (err != 0 || moved)
            return err;
    }
    stmt = sq_stmt(c, SQL_RES_READ);
    if (stmt == NULL)
        return ERR_STORE;
    sqlite3_bind_text(stmt, 1, r->attempt.delivery_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            log_warnx("store: result for an unknown delivery=%s", r->attempt.delivery_id);
        err = rc == SQLITE_DONE ? 0 : sq_err(c, rc, "reading a delivery");
        sq_done(stmt);
        return err;
    }
    cur = store_status_parse((const char *)sqlite3_column_text(stmt, 0));
    n = sqlite3_column_int(stmt, 1) + 1;
    sq_col_copy(stmt, 2, acct, sizeof(acct));
    sq_col_copy(stmt, 3, ep, sizeof(ep));
    token = sqlite3_column_int64(stmt, 4);
    sq_done(stmt);
    if (token == r->lease_token && cur != DELIVERY_DELIVERING) {
        /* Its own claim's result, recorded before: an answer lost, the batch sent again. */
        log_info("store: result already recorded delivery=%s token=%lld",
                 r->attempt.delivery_id, (long long)token);
        return 0;
    }
    if (cur != DELIVERY_DELIVERING || token != r->lease_token) {
        log_warnx("store: stale result fenced delivery=%s token=%lld current=%lld status=%s",
                  r->attempt.delivery_id, (long long)r->lease_token, (long long)token,
                  sq_status(cur));
        a->fenced++;
        return 0;
    }
    if (r->attempt.n > n)
        n = r->attempt.n;
    err = result_move(c, a, r, n, acct, ep, &moved);
    if (err == 0 && !moved) {
        /* The row just read is the writer's own: it cannot have moved since. */
        log_warnx("store: delivery=%s changed between its read and its update",
                  r->attempt.delivery_id);
        err = ERR_STORE;
    }
    return err;
}

static int
job_results(struct sq_conn *c, void *arg)
{
    struct results_args *a = arg;
    size_t i;
    int err = 0;

    /* A second run of the job (see batch_run()) starts from nothing. */
    a->fenced = 0;
    a->neps = 0;
    for (i = 0; i < a->n && err == 0; i++)
        err = result_apply(c, a, &a->rs[i]);
    return err;
}

int
sq_results_apply(struct store *st, const struct attempt_result *rs, size_t n, int64_t now,
                 size_t *fenced)
{
    struct results_args args = { .rs = rs, .n = n, .now = now };
    int err;

    /*
     * Like a claim, a result need not be durable: one lost in a crash leaves
     * its delivery delivering until the lease runs out, and it is delivered
     * again (at least once). So the dispatcher never waits for a WAL sync.
     */
    err = sq_write_nosync(st->impl, job_results, &args);
    free(args.eps);
    *fenced = err == 0 ? args.fenced : 0;
    return err;
}

struct release_args {
    const char *const *ids;
    const int64_t *tokens;
    size_t n;
    int64_t now;
};

static int
job_release(struct sq_conn *c, void *arg)
{
    struct release_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_RELEASE);
    size_t i;
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    for (i = 0; i < a->n && err == 0; i++) {
        sq_bind_int(stmt, ":now", a->now);
        sq_bind_text(stmt, ":id", a->ids[i]);
        sq_bind_int(stmt, ":token", a->tokens[i]);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
            err = sq_err(c, rc, "releasing a delivery");
        else
            sq_count_move(c, DELIVERY_DELIVERING, DELIVERY_PENDING, sqlite3_changes(c->db));
        sq_done(stmt);
    }
    return err;
}

int
sq_release(struct store *st, const char *const *delivery_ids, const int64_t *tokens, size_t n)
{
    struct release_args args = { .ids = delivery_ids, .tokens = tokens, .n = n,
                                 .now = clock_now_ms() };

    return sq_write(st->impl, job_release, &args);
}

struct due_args {
    int64_t when;
    int64_t leased;
};

/*
 * The next pending delivery's due time and the count of leased ones. A
 * reader's transaction: delivery_counts as last committed.
 */
static int
job_next_due(struct sq_conn *c, void *arg)
{
    struct due_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_NEXT_DUE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        a->when = sqlite3_column_int64(stmt, 0);
    else if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "reading the next due time");
    sq_done(stmt);
    if (err == 0)
        err = leased_count(c, &a->leased);
    return err;
}

/*
 * While a delivery is leased, the next sweep of expired leases is due work
 * too (at once when this process has not swept yet): a dispatcher waiting
 * for the next due time wakes for it, and its claim sweeps.
 */
int
sq_next_due(struct store *st, int64_t *when)
{
    struct sq *s = st->impl;
    struct due_args args = { 0 };
    int64_t sweep;
    int err;

    err = sq_read(s, job_next_due, &args);
    if (err != 0)
        return err;
    if (args.leased > 0) {
        pthread_mutex_lock(&s->lock);
        sweep = s->sweep_next;
        pthread_mutex_unlock(&s->lock);
        if (sweep == 0)
            sweep = clock_now_ms();
        if (args.when == 0 || sweep < args.when)
            args.when = sweep;
    }
    *when = args.when;
    return 0;
}
