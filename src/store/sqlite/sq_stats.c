/*
 * SQLite backend: counts for /metrics and the statistics of the API and the
 * dashboard, read from the rollups (store/rollup.h) that sq_rollup.c keeps:
 * a window costs its minute and hour rows, never its deliveries or attempts.
 * Only a window that starts inside a minute reads that minute's first part
 * from the rows themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "store/sqlite/sq_int.h"
#include "util/err.h"
#include "util/log.h"

static const char SQL_COUNTS[] = "SELECT status, n FROM delivery_counts";
/* The part of a window before its first whole minute. */
/*
 * One range of deliveries_account_status (endpoint_status) per status
 * (migrations 009, 014); an account's deliveries being delivered are a
 * range of each of its endpoints' (migration 018).
 */
static const char SQL_HEAD_DLV[] =
    "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_account_status "
    "WHERE account_id = :acct AND status IN ('pending', 'delivered', 'failed', 'held') "
    "AND status <> 'delivering' AND id >= :lo AND id < :hi GROUP BY status "
    "UNION ALL SELECT 'delivering', count(*) FROM deliveries "
    "INDEXED BY deliveries_endpoint_status WHERE endpoint_id IN (" SQ_ACCOUNT_ENDPOINTS ") "
    "AND status = 'delivering' AND id >= :lo AND id < :hi AND account_id = :acct";
static const char SQL_HEAD_DLV_EP[] =
    "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_endpoint_status "
    "WHERE endpoint_id = :ep AND status IN (" SQ_STATUSES ") AND id >= :lo AND id < :hi "
    "AND account_id = :acct GROUP BY status";
/* An account's: one range per endpoint it has or had (migration 014). */
static const char SQL_HEAD_ATT[] =
    "SELECT duration_ms, status_code BETWEEN 200 AND 299 FROM attempts "
    "INDEXED BY attempts_endpoint_at "
    "WHERE endpoint_id IN (" SQ_ACCOUNT_ENDPOINTS ") "
    "AND at >= :lo AND at < :hi AND account_id = :acct";
static const char SQL_HEAD_ATT_EP[] =
    "SELECT duration_ms, status_code BETWEEN 200 AND 299 FROM attempts "
    "INDEXED BY attempts_endpoint_at "
    "WHERE endpoint_id = :ep AND at >= :lo AND at < :hi AND account_id = :acct";
/* Rollup rows of one span in [lo, hi). */
/*
 * Rollup rows of one span in [lo, hi), of :key: the endpoint, or the
 * account (whose own rows carry its id as their endpoint_id).
 */
static const char SQL_ROLL[] =
    "SELECT coalesce(sum(d_open), 0), coalesce(sum(d_delivered), 0), "
    "coalesce(sum(d_failed), 0), coalesce(sum(d_held), 0), coalesce(sum(a_total), 0), "
    "coalesce(sum(a_ok), 0) FROM stat_rollups "
    "WHERE endpoint_id = :key AND span = :span AND start >= :lo AND start < :hi "
    "AND account_id = :acct";
/* The same rows' latency histograms (sq_lat.c), summed in C. */
static const char SQL_LAT[] =
    "SELECT lat FROM stat_rollups "
    "WHERE endpoint_id = :key AND span = :span AND start >= :lo AND start < :hi "
    "AND account_id = :acct AND lat IS NOT NULL";
/*
 * The rollups count pending and delivering deliveries together (a claim
 * does not touch them); those being delivered are few, under a lease: one
 * range of deliveries_endpoint_status per endpoint.
 */
static const char SQL_DELIVERING[] =
    "SELECT count(*) FROM deliveries INDEXED BY deliveries_endpoint_status "
    "WHERE endpoint_id IN (" SQ_ACCOUNT_ENDPOINTS ") AND status = 'delivering' "
    "AND id >= :lo AND account_id = :acct";
static const char SQL_DELIVERING_EP[] =
    "SELECT count(*) FROM deliveries INDEXED BY deliveries_endpoint_status "
    "WHERE endpoint_id = :ep AND status = 'delivering' AND id >= :lo AND account_id = :acct";
static const char SQL_SERIES[] =
    "SELECT start, a_total, a_ok, a_failed, a_retried FROM stat_rollups "
    "WHERE endpoint_id = :key AND span = :span AND start >= :lo AND start < :hi "
    "AND account_id = :acct";
static const char SQL_SERIES_LAT[] =
    "SELECT start, lat FROM stat_rollups "
    "WHERE endpoint_id = :key AND span = :span AND start >= :lo AND start < :hi "
    "AND account_id = :acct AND lat IS NOT NULL ORDER BY start";

struct stats_args {
    const char *account_id;
    const char *endpoint_id;  /* NULL: the whole account */
    int64_t since;
    int64_t *counts;
    struct stats *out;
    struct rollup_hist *hist;
    struct rollup_series series;
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

/* A cached statement of the account's or the endpoint's variant, bound to both ids. */
static sqlite3_stmt *
stmt_for(struct sq_conn *c, const struct stats_args *a, const char *acct_sql, const char *ep_sql)
{
    sqlite3_stmt *stmt = sq_stmt(c, a->endpoint_id != NULL ? ep_sql : acct_sql);

    if (stmt != NULL) {
        sq_bind_text(stmt, ":acct", a->account_id);
        sq_bind_text(stmt, ":ep", a->endpoint_id);
        sq_bind_text(stmt, ":key", a->endpoint_id != NULL ? a->endpoint_id : a->account_id);
    }
    return stmt;
}

/* Steps stmt to its end; each row goes to row(a, stmt). */
static int
each_row(struct sq_conn *c, sqlite3_stmt *stmt, struct stats_args *a,
         void (*row)(struct stats_args *, sqlite3_stmt *), const char *what)
{
    int rc;

    if (stmt == NULL)
        return ERR_STORE;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        row(a, stmt);
    sq_done(stmt);
    return rc == SQLITE_DONE ? 0 : sq_err(c, rc, what);
}

static void
row_head_dlv(struct stats_args *a, sqlite3_stmt *stmt)
{
    int s = store_status_parse((const char *)sqlite3_column_text(stmt, 0));

    if (s >= 0)
        a->out->by_status[s] += sqlite3_column_int64(stmt, 1);
}

static void
row_head_att(struct stats_args *a, sqlite3_stmt *stmt)
{
    a->out->attempts++;
    a->out->attempts_ok += sqlite3_column_int64(stmt, 1);
    rollup_hist_add(a->hist, rollup_bucket(sqlite3_column_int64(stmt, 0)), 1);
}

/* The window's part before its first whole minute, from the rows. */
static int
stats_head(struct sq_conn *c, struct stats_args *a, const struct rollup_plan *p)
{
    sqlite3_stmt *stmt;
    char lo[ID_MAX], hi[ID_MAX];
    int err;

    if (p->since >= p->minute_lo)
        return 0;
    err = store_id_floor("dlv_", p->since, lo);
    if (err == 0)
        err = store_id_floor("dlv_", p->minute_lo, hi);
    if (err != 0)
        return err;
    stmt = stmt_for(c, a, SQL_HEAD_DLV, SQL_HEAD_DLV_EP);
    if (stmt != NULL) {
        sq_bind_text(stmt, ":lo", lo);
        sq_bind_text(stmt, ":hi", hi);
    }
    err = each_row(c, stmt, a, row_head_dlv, "counting deliveries");
    if (err != 0)
        return err;
    stmt = stmt_for(c, a, SQL_HEAD_ATT, SQL_HEAD_ATT_EP);
    if (stmt != NULL) {
        sq_bind_int(stmt, ":lo", p->since);
        sq_bind_int(stmt, ":hi", p->minute_lo);
    }
    return each_row(c, stmt, a, row_head_att, "counting attempts");
}

static void
row_roll(struct stats_args *a, sqlite3_stmt *stmt)
{
    int64_t d[ROLLUP__CLASSES];
    int i;

    for (i = 0; i < ROLLUP__CLASSES; i++)
        d[i] = sqlite3_column_int64(stmt, i);
    rollup_stats_add(a->out, d, sqlite3_column_int64(stmt, 4), sqlite3_column_int64(stmt, 5));
}

static void
hist_add(void *hist, int bucket, int64_t n)
{
    rollup_hist_add(hist, bucket, n);
}

/* Column i of stmt, a row's latency histogram, to fn; a malformed one is logged. */
static void
lat_each(sqlite3_stmt *stmt, int i, void (*fn)(void *, int, int64_t), void *arg)
{
    const void *blob = sqlite3_column_blob(stmt, i);

    if (sq_lat_each(blob, (size_t)sqlite3_column_bytes(stmt, i), fn, arg) != 0)
        log_warnx("store: a malformed latency histogram in stat_rollups was skipped");
}

static void
row_lat(struct stats_args *a, sqlite3_stmt *stmt)
{
    lat_each(stmt, 0, hist_add, a->hist);
}

/* Rollup rows of one span with start in [lo, hi): counts, then the histogram. */
static int
stats_span(struct sq_conn *c, struct stats_args *a, int64_t span, int64_t lo, int64_t hi)
{
    sqlite3_stmt *stmt;
    int err;

    if (lo >= hi)
        return 0;
    stmt = stmt_for(c, a, SQL_ROLL, SQL_ROLL);
    if (stmt != NULL) {
        sq_bind_int(stmt, ":span", span);
        sq_bind_int(stmt, ":lo", lo);
        sq_bind_int(stmt, ":hi", hi);
    }
    err = each_row(c, stmt, a, row_roll, "reading the statistics");
    if (err != 0)
        return err;
    stmt = stmt_for(c, a, SQL_LAT, SQL_LAT);
    if (stmt != NULL) {
        sq_bind_int(stmt, ":span", span);
        sq_bind_int(stmt, ":lo", lo);
        sq_bind_int(stmt, ":hi", hi);
    }
    return each_row(c, stmt, a, row_lat, "reading the latency");
}

static void
row_delivering(struct stats_args *a, sqlite3_stmt *stmt)
{
    rollup_stats_delivering(a->out, sqlite3_column_int64(stmt, 0));
}

static int
job_stats(struct sq_conn *c, void *arg)
{
    struct stats_args *a = arg;
    struct rollup_plan p;
    sqlite3_stmt *stmt;
    char lo[ID_MAX];
    int err;

    memset(a->out, 0, sizeof(*a->out));
    memset(a->hist, 0, sizeof(*a->hist));
    rollup_plan_make(a->since, &p);
    err = stats_span(c, a, ROLLUP_MINUTE_MS, p.minute_lo, p.hour_lo);
    if (err == 0)
        err = stats_span(c, a, ROLLUP_HOUR_MS, p.hour_lo, INT64_MAX);
    if (err == 0)
        err = store_id_floor("dlv_", p.minute_lo, lo);
    if (err != 0)
        return err;
    stmt = stmt_for(c, a, SQL_DELIVERING, SQL_DELIVERING_EP);
    if (stmt != NULL)
        sq_bind_text(stmt, ":lo", lo);
    err = each_row(c, stmt, a, row_delivering, "counting deliveries");
    if (err == 0)
        err = stats_head(c, a, &p);
    if (err != 0)
        return err;
    rollup_stats_ranks(a->out, a->hist);
    return 0;
}

static const char *
endpoint_or_null(const char *endpoint_id)
{
    return endpoint_id != NULL && endpoint_id[0] != '\0' ? endpoint_id : NULL;
}

int
sq_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
         struct stats *out)
{
    struct stats_args args = { .account_id = account_id,
                               .endpoint_id = endpoint_or_null(endpoint_id),
                               .since = since, .out = out };
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    args.hist = malloc(sizeof(*args.hist));
    if (args.hist == NULL)
        return ERR_NOMEM;
    err = sq_read(st->impl, job_stats, &args);
    free(args.hist);
    return err;
}

static void
row_series(struct stats_args *a, sqlite3_stmt *stmt)
{
    rollup_series_count(&a->series, sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                        sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3),
                        sqlite3_column_int64(stmt, 4));
}

/* The series' latency of one row: its start, then its buckets in ascending order. */
struct series_row {
    struct rollup_series *series;
    int64_t start;
};

static void
series_lat_add(void *arg, int bucket, int64_t n)
{
    struct series_row *r = arg;

    rollup_series_latency(r->series, r->start, bucket, n);
}

static void
row_series_lat(struct stats_args *a, sqlite3_stmt *stmt)
{
    struct series_row r = { .series = &a->series, .start = sqlite3_column_int64(stmt, 0) };

    lat_each(stmt, 1, series_lat_add, &r);
}

/* Binds the span and the range of the series to stmt (may be NULL). */
static sqlite3_stmt *
series_bind(sqlite3_stmt *stmt, const struct rollup_series *s)
{
    if (stmt != NULL) {
        sq_bind_int(stmt, ":span", s->bucket_ms);
        sq_bind_int(stmt, ":lo", s->since);
        sq_bind_int(stmt, ":hi", s->until);
    }
    return stmt;
}

static int
job_series(struct sq_conn *c, void *arg)
{
    struct stats_args *a = arg;
    int err;

    err = each_row(c, series_bind(stmt_for(c, a, SQL_SERIES, SQL_SERIES), &a->series), a,
                   row_series, "reading the series");
    if (err == 0)
        err = each_row(c,
                       series_bind(stmt_for(c, a, SQL_SERIES_LAT, SQL_SERIES_LAT), &a->series),
                       a, row_series_lat, "reading the latency");
    return err;
}

int
sq_stats_series(struct store *st, const char *account_id, const char *endpoint_id,
                int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                size_t *n)
{
    struct stats_args args = { .account_id = account_id,
                               .endpoint_id = endpoint_or_null(endpoint_id) };
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    err = rollup_series_init(&args.series, since, bucket_ms, now);
    if (err == 0)
        err = sq_read(st->impl, job_series, &args);
    if (err != 0) {
        rollup_series_cleanup(&args.series);
        return err;
    }
    rollup_series_take(&args.series, out, n);
    return 0;
}
