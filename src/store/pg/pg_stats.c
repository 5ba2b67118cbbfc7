/*
 * PostgreSQL backend: counts for /metrics and the statistics of the API and
 * the dashboard, read from the rollups (store/rollup.h) that the triggers of
 * migration 006 keep: a window costs its minute and hour rows (summed over
 * the shards), never its deliveries or attempts. Only a window that starts
 * inside a minute reads that minute's first part from the rows themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "store/rollup.h"
#include "util/err.h"

/* The shards of every backend, summed (see delivery_counts in the migrations). */
static const char SQL_COUNTS[] =
    "SELECT coalesce(sum(pending), 0), coalesce(sum(delivering), 0), "
    "coalesce(sum(delivered), 0), coalesce(sum(failed), 0), coalesce(sum(held), 0) "
    "FROM delivery_counts";
/*
 * The rollup rows of a window (store/rollup.h): $1 the account, $2 the
 * endpoint or NULL, $3 the first whole minute, $4 the first whole hour;
 * minute rows before $4, hour rows from it. The account's own rows carry
 * its id as their endpoint_id. A NULL $2 folds away when the statement is
 * planned.
 */
#define ROLL_WHERE                                                                      \
    "endpoint_id = coalesce($2, $1) AND account_id = $1 "                               \
    "AND ((span = 60000 AND start >= $3 AND start < $4) OR (span = 3600000 AND start >= $4))"
/* The part of the window before $3, from the rows: deliveries from id $6, attempts from $7. */
#define HEAD_WHERE "account_id = $1 AND ($2::text IS NULL OR endpoint_id = $2) "
/* The head's attempts: one range of attempts_endpoint_at per endpoint (migration 014). */
#define HEAD_ATT_WHERE                                                                  \
    "account_id = $1 AND endpoint_id IN (SELECT e.id FROM endpoints e "                 \
    "WHERE e.account_id = $1 AND ($2::text IS NULL OR e.id = $2)) "
/*
 * One snapshot: the rollup sums, the deliveries of the rollups' part being
 * delivered ($5 the first delivery id of minute $3; the rollups count them
 * as open), and the head's deliveries by status and attempts.
 */
static const char SQL_STATS[] =
    "WITH r AS (SELECT coalesce(sum(d_open), 0) AS o, coalesce(sum(d_delivered), 0) AS dd, "
    "coalesce(sum(d_failed), 0) AS df, coalesce(sum(d_held), 0) AS dh, "
    "coalesce(sum(a_total), 0) AS t, coalesce(sum(a_ok), 0) AS ok "
    "FROM stat_rollups WHERE " ROLL_WHERE "), "
    "l AS (SELECT count(*) AS n FROM deliveries WHERE status = 'delivering' AND endpoint_id IN ("
    "SELECT e.id FROM endpoints e WHERE e.account_id = $1 AND ($2::text IS NULL OR e.id = $2)) "
    "AND id >= $5), "
    "h AS (SELECT count(*) FILTER (WHERE status = 'pending') AS p, "
    "count(*) FILTER (WHERE status = 'delivering') AS dl, "
    "count(*) FILTER (WHERE status = 'delivered') AS dd, "
    "count(*) FILTER (WHERE status = 'failed') AS df, "
    "count(*) FILTER (WHERE status = 'held') AS dh "
    "FROM deliveries WHERE " HEAD_WHERE "AND id >= $6 AND id < $5), "
    "ha AS (SELECT count(*) AS t, count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS ok "
    "FROM attempts WHERE " HEAD_ATT_WHERE "AND at >= $7 AND at < $3) "
    "SELECT r.o, r.dd, r.df, r.dh, r.t, r.ok, l.n, h.p, h.dl, h.dd, h.df, h.dh, ha.t, ha.ok "
    "FROM r, l, h, ha";
/*
 * The window's latency histogram: rollup buckets and the head's attempts.
 * Each span's rows are one range of stat_latency_pkey, which holds n: read
 * apart, each is an index-only scan. ROLL_WHERE's OR of the two would be a
 * bitmap scan of the table, whose rows of one key lie one per page (they are
 * written minute by minute for every key): 124 ms for a day at 1M
 * deliveries, against 11 ms this way (bench/store_reads.c, a busy machine).
 */
#define LAT_KEY "endpoint_id = coalesce($2, $1) AND account_id = $1 "
static const char SQL_LATENCY[] =
    "SELECT b, sum(n) FROM (SELECT bucket AS b, n FROM stat_latency WHERE " LAT_KEY
    "AND span = 60000 AND start >= $3 AND start < $4 "
    "UNION ALL SELECT bucket, n FROM stat_latency WHERE " LAT_KEY
    "AND span = 3600000 AND start >= $4 "
    "UNION ALL SELECT fluxhook_latency_bucket(duration_ms), 1 FROM attempts "
    "WHERE " HEAD_ATT_WHERE "AND at >= $5 AND at < $3) x GROUP BY b";
/*
 * $3 the span, $4 since, $5 the end. The counts of each start first, then
 * its latency rows by (start, bucket), in one snapshot.
 */
static const char SQL_SERIES[] =
    "SELECT * FROM (SELECT start, -1 AS bucket, sum(a_total) AS n, sum(a_ok) AS ok, "
    "sum(a_failed) AS failed, sum(a_retried) AS retried "
    "FROM stat_rollups WHERE endpoint_id = coalesce($2, $1) AND account_id = $1 "
    "AND span = $3 AND start >= $4 AND start < $5 GROUP BY start "
    "UNION ALL SELECT start, bucket, sum(n), 0, 0, 0 "
    "FROM stat_latency WHERE endpoint_id = coalesce($2, $1) AND account_id = $1 "
    "AND span = $3 AND start >= $4 AND start < $5 GROUP BY start, bucket "
    ") x ORDER BY bucket >= 0, start, bucket";

int
pg_count_by_status(struct store *st, int64_t out[DELIVERY__COUNT])
{
    static const enum delivery_status cols[DELIVERY__COUNT] = {
        DELIVERY_PENDING, DELIVERY_DELIVERING, DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_HELD,
    };
    struct pg_query q;
    PGresult *res = NULL;
    int i, err;

    pg_query_init(&q, SQL_COUNTS);
    err = pg_run(st->impl, &q, PG_READ, &res, "counting deliveries");
    for (i = 0; err == 0 && i < DELIVERY__COUNT; i++)
        out[cols[i]] = pg_col_int(res, 0, i);
    PQclear(res);
    return err;
}

static const char *
endpoint_or_null(const char *endpoint_id)
{
    return endpoint_id != NULL && endpoint_id[0] != '\0' ? endpoint_id : NULL;
}

/* Binds the window's parameters $1..$4 (and $5 for the head's attempts, latency). */
static void
window_args(struct pg_query *q, const char *account_id, const char *endpoint_id,
            const struct rollup_plan *p)
{
    pg_arg_text(q, account_id);
    pg_arg_text(q, endpoint_or_null(endpoint_id));
    pg_arg_int(q, p->minute_lo);
    pg_arg_int(q, p->hour_lo);
}

static int
stats_latency(struct store *st, const char *account_id, const char *endpoint_id,
              const struct rollup_plan *p, struct stats *out)
{
    struct rollup_hist *h;
    struct pg_query q;
    PGresult *res = NULL;
    int row, err;

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ERR_NOMEM;
    pg_query_init(&q, SQL_LATENCY);
    window_args(&q, account_id, endpoint_id, p);
    pg_arg_int(&q, p->since);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading the latency");
    for (row = 0; err == 0 && row < PQntuples(res); row++)
        rollup_hist_add(h, (int)pg_col_int(res, row, 0), pg_col_int(res, row, 1));
    PQclear(res);
    if (err == 0)
        rollup_stats_ranks(out, h);
    free(h);
    return err;
}

int
pg_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
         struct stats *out)
{
    struct rollup_plan p;
    struct pg_query q;
    PGresult *res = NULL;
    int64_t d[ROLLUP__CLASSES];
    char lo[ID_MAX], head[ID_MAX];
    int i, err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    rollup_plan_make(since, &p);
    err = store_id_floor("dlv_", p.minute_lo, lo);
    if (err == 0)
        err = store_id_floor("dlv_", p.since, head);
    if (err != 0)
        return err;
    pg_query_init(&q, SQL_STATS);
    window_args(&q, account_id, endpoint_id, &p);
    pg_arg_text(&q, lo);
    pg_arg_text(&q, head);
    pg_arg_int(&q, p.since);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading statistics");
    if (err == 0) {
        for (i = 0; i < ROLLUP__CLASSES; i++)
            d[i] = pg_col_int(res, 0, i);
        rollup_stats_add(out, d, pg_col_int(res, 0, 4), pg_col_int(res, 0, 5));
        rollup_stats_delivering(out, pg_col_int(res, 0, 6));
        out->by_status[DELIVERY_PENDING] += pg_col_int(res, 0, 7);
        out->by_status[DELIVERY_DELIVERING] += pg_col_int(res, 0, 8);
        out->by_status[DELIVERY_DELIVERED] += pg_col_int(res, 0, 9);
        out->by_status[DELIVERY_FAILED] += pg_col_int(res, 0, 10);
        out->by_status[DELIVERY_HELD] += pg_col_int(res, 0, 11);
        out->attempts += pg_col_int(res, 0, 12);
        out->attempts_ok += pg_col_int(res, 0, 13);
    }
    PQclear(res);
    if (err == 0)
        err = stats_latency(st, account_id, endpoint_id, &p, out);
    return err;
}

int
pg_stats_series(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
                int64_t bucket_ms, int64_t now, struct stats_bucket **out, size_t *n)
{
    struct rollup_series s;
    struct pg_query q;
    PGresult *res = NULL;
    int row, err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    err = rollup_series_init(&s, since, bucket_ms, now);
    if (err != 0)
        return err;
    pg_query_init(&q, SQL_SERIES);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, endpoint_or_null(endpoint_id));
    pg_arg_int(&q, bucket_ms);
    pg_arg_int(&q, s.since);
    pg_arg_int(&q, s.until);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading the series");
    for (row = 0; err == 0 && row < PQntuples(res); row++) {
        int64_t start = pg_col_int(res, row, 0);
        int bucket = (int)pg_col_int(res, row, 1);

        if (bucket < 0)
            rollup_series_count(&s, start, pg_col_int(res, row, 2), pg_col_int(res, row, 3),
                                pg_col_int(res, row, 4), pg_col_int(res, row, 5));
        else
            rollup_series_latency(&s, start, bucket, pg_col_int(res, row, 2));
    }
    PQclear(res);
    if (err != 0) {
        rollup_series_cleanup(&s);
        return err;
    }
    rollup_series_take(&s, out, n);
    return 0;
}
