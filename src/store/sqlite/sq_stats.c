/*
 * SQLite backend: counts for /metrics and the statistics of the API and the
 * dashboard. Percentiles are nearest-rank over the attempts in the window.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/err.h"

static const char SQL_COUNTS[] = "SELECT status, n FROM delivery_counts";
static const char SQL_DLV_BY_STATUS[] =
    "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_account "
    "WHERE account_id = :acct AND id >= :lo GROUP BY status";
static const char SQL_DLV_BY_STATUS_EP[] =
    "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_endpoint "
    "WHERE endpoint_id = :ep AND id >= :lo AND account_id = :acct GROUP BY status";
static const char SQL_ATT_COUNT[] =
    "SELECT count(*), coalesce(sum(status_code BETWEEN 200 AND 299), 0) "
    "FROM attempts INDEXED BY attempts_account_at WHERE account_id = :acct AND at >= :since";
static const char SQL_ATT_COUNT_EP[] =
    "SELECT count(*), coalesce(sum(status_code BETWEEN 200 AND 299), 0) "
    "FROM attempts INDEXED BY attempts_endpoint_at "
    "WHERE endpoint_id = :ep AND at >= :since AND account_id = :acct";
static const char SQL_ATT_RANK[] =
    "SELECT duration_ms FROM attempts INDEXED BY attempts_account_at "
    "WHERE account_id = :acct AND at >= :since AND at < :until "
    "ORDER BY duration_ms LIMIT :limit";
static const char SQL_ATT_RANK_EP[] =
    "SELECT duration_ms FROM attempts INDEXED BY attempts_endpoint_at "
    "WHERE endpoint_id = :ep AND at >= :since AND at < :until AND account_id = :acct "
    "ORDER BY duration_ms LIMIT :limit";
static const char SQL_SERIES[] =
    "SELECT (at - :since) / :bucket, count(*), sum(status_code BETWEEN 200 AND 299), "
    "sum(outcome = 'failed'), sum(outcome IN ('pending', 'held')) "
    "FROM attempts INDEXED BY attempts_account_at "
    "WHERE account_id = :acct AND at >= :since AND at < :until GROUP BY 1";
static const char SQL_SERIES_EP[] =
    "SELECT (at - :since) / :bucket, count(*), sum(status_code BETWEEN 200 AND 299), "
    "sum(outcome = 'failed'), sum(outcome IN ('pending', 'held')) "
    "FROM attempts INDEXED BY attempts_endpoint_at "
    "WHERE endpoint_id = :ep AND at >= :since AND at < :until AND account_id = :acct "
    "GROUP BY 1";

struct stats_args {
    const char *account_id;
    const char *endpoint_id;  /* NULL: the whole account */
    int64_t since, bucket, now;
    int64_t *counts;
    struct stats *out;
    struct stats_bucket *buckets;
    size_t n;
};

static int
job_counts(struct sq_conn *c, void *arg)
{
    struct stats_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_COUNTS);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int s = store_status_parse((const char *)sqlite3_column_text(stmt, 0));
        if (s >= 0)
            a->counts[s] = sqlite3_column_int64(stmt, 1);
    }
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "counting deliveries");
    sq_done(stmt);
    return err;
}

int
sq_count_by_status(struct store *st, int64_t out[DELIVERY__COUNT])
{
    struct stats_args args = { .counts = out };

    return sq_read(st->impl, job_counts, &args);
}

/*
 * The nearest-rank percentiles ps[0..np) (ascending) of the n attempt
 * durations in [since, until), into out[], from one sorted pass.
 */
static int
rank_values(struct sq_conn *c, const struct stats_args *a, int64_t since, int64_t until,
            int64_t n, const int *ps, int np, int64_t *out)
{
    sqlite3_stmt *stmt = sq_stmt(c, a->endpoint_id != NULL ? SQL_ATT_RANK_EP : SQL_ATT_RANK);
    int64_t row = 0;
    int k = 0, rc = SQLITE_DONE, err = 0;

    for (k = 0; k < np; k++)
        out[k] = -1;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":ep", a->endpoint_id);
    sq_bind_int(stmt, ":since", since);
    sq_bind_int(stmt, ":until", until);
    sq_bind_int(stmt, ":limit", store_rank(ps[np - 1], n));
    k = 0;
    while (k < np && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        row++;
        while (k < np && store_rank(ps[k], n) == row)
            out[k++] = sqlite3_column_int64(stmt, 0);
    }
    if (k < np && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sq_err(c, rc, "reading attempt latency");
    sq_done(stmt);
    return err;
}

static int
job_stats(struct sq_conn *c, void *arg)
{
    struct stats_args *a = arg;
    static const int ps[3] = { 50, 95, 99 };
    struct stats *out = a->out;
    sqlite3_stmt *stmt;
    int64_t vs[3];
    char lo[ID_MAX];
    int rc, err;

    err = store_id_floor("dlv_", a->since, lo);
    if (err != 0)
        return err;
    stmt = sq_stmt(c, a->endpoint_id != NULL ? SQL_DLV_BY_STATUS_EP : SQL_DLV_BY_STATUS);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":ep", a->endpoint_id);
    sq_bind_text(stmt, ":lo", lo);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int s = store_status_parse((const char *)sqlite3_column_text(stmt, 0));
        if (s >= 0)
            out->by_status[s] = sqlite3_column_int64(stmt, 1);
    }
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "counting deliveries");

    stmt = sq_stmt(c, a->endpoint_id != NULL ? SQL_ATT_COUNT_EP : SQL_ATT_COUNT);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":ep", a->endpoint_id);
    sq_bind_int(stmt, ":since", a->since);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->attempts = sqlite3_column_int64(stmt, 0);
        out->attempts_ok = sqlite3_column_int64(stmt, 1);
    }
    sq_done(stmt);
    if (rc != SQLITE_ROW)
        return sq_err(c, rc, "counting attempts");
    if (out->attempts == 0)
        return 0;
    err = rank_values(c, a, a->since, INT64_MAX, out->attempts, ps, 3, vs);
    out->p50_ms = vs[0];
    out->p95_ms = vs[1];
    out->p99_ms = vs[2];
    return err;
}

int
sq_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
         struct stats *out)
{
    struct stats_args args = { .account_id = account_id,
                               .endpoint_id =
                                   endpoint_id != NULL && endpoint_id[0] != '\0' ? endpoint_id
                                                                                 : NULL,
                               .since = since, .out = out };

    if (account_id == NULL)
        return ERR_NOTFOUND;
    return sq_read(st->impl, job_stats, &args);
}

static int
job_series(struct sq_conn *c, void *arg)
{
    struct stats_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, a->endpoint_id != NULL ? SQL_SERIES_EP : SQL_SERIES);
    int64_t *counts = NULL;
    int64_t until = a->since + (int64_t)a->n * a->bucket;
    size_t i;
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    counts = calloc(a->n, sizeof(*counts));
    if (counts == NULL)
        return ERR_NOMEM;
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":ep", a->endpoint_id);
    sq_bind_int(stmt, ":since", a->since);
    sq_bind_int(stmt, ":bucket", a->bucket);
    sq_bind_int(stmt, ":until", until);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(stmt, 0);
        if (b < 0 || b >= (int64_t)a->n)
            continue;
        counts[b] = sqlite3_column_int64(stmt, 1);
        a->buckets[b].delivered = sqlite3_column_int64(stmt, 2);
        a->buckets[b].failed = sqlite3_column_int64(stmt, 3);
        a->buckets[b].retried = sqlite3_column_int64(stmt, 4);
    }
    sq_done(stmt);
    if (rc != SQLITE_DONE) {
        err = sq_err(c, rc, "reading the series");
        goto out;
    }
    for (i = 0; i < a->n && err == 0; i++) {
        static const int ps[2] = { 50, 95 };
        int64_t start = a->buckets[i].start, vs[2];

        if (counts[i] == 0)
            continue;
        err = rank_values(c, a, start, start + a->bucket, counts[i], ps, 2, vs);
        a->buckets[i].p50_ms = vs[0];
        a->buckets[i].p95_ms = vs[1];
    }
out:
    free(counts);
    return err;
}

int
sq_stats_series(struct store *st, const char *account_id, const char *endpoint_id,
                int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                size_t *n)
{
    struct stats_args args = { .account_id = account_id,
                               .endpoint_id =
                                   endpoint_id != NULL && endpoint_id[0] != '\0' ? endpoint_id
                                                                                 : NULL,
                               .since = since, .bucket = bucket_ms, .now = now };
    size_t i;
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    args.n = (size_t)((now - since + bucket_ms - 1) / bucket_ms);
    if (args.n == 0)
        args.n = 1;
    args.buckets = calloc(args.n, sizeof(*args.buckets));
    if (args.buckets == NULL)
        return ERR_NOMEM;
    for (i = 0; i < args.n; i++) {
        args.buckets[i].start = since + (int64_t)i * bucket_ms;
        args.buckets[i].p50_ms = args.buckets[i].p95_ms = -1;
    }
    err = sq_read(st->impl, job_series, &args);
    if (err != 0) {
        free(args.buckets);
        return err;
    }
    *out = args.buckets;
    *n = args.n;
    return 0;
}
