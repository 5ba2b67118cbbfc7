/*
 * PostgreSQL backend: counts for /metrics and the statistics of the API and
 * the dashboard. Percentiles are nearest-rank (store_rank()), computed by the
 * server in the same pass that counts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/err.h"

/* The shards of every backend, summed (see delivery_counts in the migrations). */
static const char SQL_COUNTS[] =
    "SELECT coalesce(sum(pending), 0), coalesce(sum(delivering), 0), "
    "coalesce(sum(delivered), 0), coalesce(sum(failed), 0), coalesce(sum(held), 0) "
    "FROM delivery_counts";
/*
 * $1 the account, $2 the endpoint or NULL, $3 the first delivery id of the
 * window, $4 its start. Deliveries by status, then attempts, 2xx and the
 * latency percentiles: the row whose rank is (p * cnt + 99) / 100, as
 * store_rank() computes it. A NULL $2 folds away when the statement is planned.
 */
static const char SQL_STATS[] =
    "WITH d AS (SELECT count(*) FILTER (WHERE status = 'pending') AS pending, "
    "count(*) FILTER (WHERE status = 'delivering') AS delivering, "
    "count(*) FILTER (WHERE status = 'delivered') AS delivered, "
    "count(*) FILTER (WHERE status = 'failed') AS failed, "
    "count(*) FILTER (WHERE status = 'held') AS held FROM deliveries "
    "WHERE account_id = $1 AND ($2::text IS NULL OR endpoint_id = $2) AND id >= $3), "
    "a AS (SELECT count(*) AS attempts, "
    "count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS ok, "
    "coalesce(min(duration_ms) FILTER (WHERE rn = (50 * cnt + 99) / 100), -1) AS p50, "
    "coalesce(min(duration_ms) FILTER (WHERE rn = (95 * cnt + 99) / 100), -1) AS p95, "
    "coalesce(min(duration_ms) FILTER (WHERE rn = (99 * cnt + 99) / 100), -1) AS p99 "
    "FROM (SELECT status_code, duration_ms, row_number() OVER (ORDER BY duration_ms) AS rn, "
    "count(*) OVER () AS cnt FROM attempts "
    "WHERE account_id = $1 AND ($2::text IS NULL OR endpoint_id = $2) AND at >= $4) x) "
    "SELECT d.pending, d.delivering, d.delivered, d.failed, d.held, "
    "a.attempts, a.ok, a.p50, a.p95, a.p99 FROM d, a";
/* $3 since, $4 the bucket width, $5 the end: one row per bucket with attempts. */
static const char SQL_SERIES[] =
    "SELECT b, count(*) FILTER (WHERE status_code BETWEEN 200 AND 299), "
    "count(*) FILTER (WHERE outcome = 'failed'), "
    "count(*) FILTER (WHERE outcome IN ('pending', 'held')), "
    "coalesce(min(duration_ms) FILTER (WHERE rn = (50 * cnt + 99) / 100), -1), "
    "coalesce(min(duration_ms) FILTER (WHERE rn = (95 * cnt + 99) / 100), -1) "
    "FROM (SELECT (at - $3) / $4 AS b, status_code, outcome, duration_ms, "
    "row_number() OVER (PARTITION BY (at - $3) / $4 ORDER BY duration_ms) AS rn, "
    "count(*) OVER (PARTITION BY (at - $3) / $4) AS cnt FROM attempts "
    "WHERE account_id = $1 AND ($2::text IS NULL OR endpoint_id = $2) "
    "AND at >= $3 AND at < $5) x GROUP BY b";

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

int
pg_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
         struct stats *out)
{
    struct pg_query q;
    PGresult *res = NULL;
    char lo[ID_MAX];
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    err = store_id_floor("dlv_", since, lo);
    if (err != 0)
        return err;
    pg_query_init(&q, SQL_STATS);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, endpoint_or_null(endpoint_id));
    pg_arg_text(&q, lo);
    pg_arg_int(&q, since);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading statistics");
    if (err == 0) {
        out->by_status[DELIVERY_PENDING] = pg_col_int(res, 0, 0);
        out->by_status[DELIVERY_DELIVERING] = pg_col_int(res, 0, 1);
        out->by_status[DELIVERY_DELIVERED] = pg_col_int(res, 0, 2);
        out->by_status[DELIVERY_FAILED] = pg_col_int(res, 0, 3);
        out->by_status[DELIVERY_HELD] = pg_col_int(res, 0, 4);
        out->attempts = pg_col_int(res, 0, 5);
        out->attempts_ok = pg_col_int(res, 0, 6);
        out->p50_ms = pg_col_int(res, 0, 7);
        out->p95_ms = pg_col_int(res, 0, 8);
        out->p99_ms = pg_col_int(res, 0, 9);
    }
    PQclear(res);
    return err;
}

int
pg_stats_series(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
                int64_t bucket_ms, int64_t now, struct stats_bucket **out, size_t *n)
{
    struct stats_bucket *bs;
    struct pg_query q;
    PGresult *res = NULL;
    size_t nb, i;
    int row, err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    nb = (size_t)((now - since + bucket_ms - 1) / bucket_ms);
    if (nb == 0)
        nb = 1;
    bs = calloc(nb, sizeof(*bs));
    if (bs == NULL)
        return ERR_NOMEM;
    for (i = 0; i < nb; i++) {
        bs[i].start = since + (int64_t)i * bucket_ms;
        bs[i].p50_ms = bs[i].p95_ms = -1;
    }
    pg_query_init(&q, SQL_SERIES);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, endpoint_or_null(endpoint_id));
    pg_arg_int(&q, since);
    pg_arg_int(&q, bucket_ms);
    pg_arg_int(&q, since + (int64_t)nb * bucket_ms);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading the series");
    for (row = 0; err == 0 && row < PQntuples(res); row++) {
        int64_t b = pg_col_int(res, row, 0);

        if (b < 0 || b >= (int64_t)nb)
            continue;
        bs[b].delivered = pg_col_int(res, row, 1);
        bs[b].failed = pg_col_int(res, row, 2);
        bs[b].retried = pg_col_int(res, row, 3);
        bs[b].p50_ms = pg_col_int(res, row, 4);
        bs[b].p95_ms = pg_col_int(res, row, 5);
    }
    PQclear(res);
    if (err != 0) {
        free(bs);
        return err;
    }
    *out = bs;
    *n = nb;
    return 0;
}
