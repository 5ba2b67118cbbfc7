/*
 * Statistics rollups, shared by both backends (inside src/store only). Each
 * endpoint has one row per minute and one per hour (span) holding the
 * deliveries created in it by the class of their status now, the attempts
 * made in it by outcome, and a latency histogram of those attempts. Both
 * backends keep them in the transaction that changes deliveries or records
 * attempts, so the statistics read a few rows per bucket and never the
 * deliveries or attempts of a window. Rows are never deleted with the rows
 * they count: a retention that removes old deliveries leaves them as they are.
 */
#ifndef FLUXHOOK_STORE_ROLLUP_H
#define FLUXHOOK_STORE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#define ROLLUP_MINUTE_MS 60000LL
#define ROLLUP_HOUR_MS 3600000LL

/*
 * Latency buckets: a duration below ROLLUP_EXACT ms is its own bucket; above,
 * each doubling splits into ROLLUP_SUB buckets (width under 3.2 %, read as
 * their middle). The migrations spell rollup_bucket() in SQL for the
 * backfill and PostgreSQL's trigger; keep them in step.
 */
#define ROLLUP_EXACT 128
#define ROLLUP_SUB 32
#define ROLLUP_BUCKETS (ROLLUP_EXACT + 25 * ROLLUP_SUB) /* up to 2^32 ms */

/* Classes of a delivery's status in the rollup. */
enum rollup_class {
    ROLLUP_OPEN,      /* pending or delivering: a claim does not touch the rollup */
    ROLLUP_DELIVERED,
    ROLLUP_FAILED,
    ROLLUP_HELD,
    ROLLUP__CLASSES
};

/* The rollup class of delivery status s (an enum delivery_status), -1 for none. */
int rollup_class(int s);

/* The bucket of a duration in ms, and the value a bucket reads as. */
int rollup_bucket(int64_t ms);
int64_t rollup_bucket_ms(int b);

/* A latency histogram: counts by bucket. */
struct rollup_hist {
    int64_t n[ROLLUP_BUCKETS];
    int64_t total;
};

void rollup_hist_add(struct rollup_hist *h, int bucket, int64_t n);

/*
 * The nearest-rank percentiles ps[0..np) (ascending, 1..100) of h into
 * out[], each as its bucket's value; -1 when h is empty.
 */
void rollup_hist_ranks(const struct rollup_hist *h, const int *ps, int np, int64_t *out);

/*
 * Percentiles of a histogram read bucket by bucket in ascending order,
 * when its total is known before (the series reads them this way).
 */
struct rollup_ranks {
    const int *ps;
    int np;
    int k;          /* percentiles found so far */
    int64_t total;  /* values in the histogram */
    int64_t seen;   /* values fed so far */
    int64_t out[4]; /* the percentiles, -1 until found */
};

void rollup_ranks_init(struct rollup_ranks *r, const int *ps, int np, int64_t total);
void rollup_ranks_feed(struct rollup_ranks *r, int bucket, int64_t n);

/*
 * How a window from `since` to now reads: raw rows in [since, minute_lo)
 * (less than a minute, none when since is on a minute), minute rows in
 * [minute_lo, hour_lo), hour rows from hour_lo on.
 */
struct rollup_plan {
    int64_t since;
    int64_t minute_lo;
    int64_t hour_lo;
};

void rollup_plan_make(int64_t since, struct rollup_plan *out);

/*
 * The empty buckets of a series from since to now (at least one), each
 * bucket_ms long, latencies -1: a new array into *out, its length into *n.
 * Returns 0 or ERR_NOMEM.
 */
struct stats_bucket;
int rollup_buckets_new(int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                       size_t *n);

#endif
