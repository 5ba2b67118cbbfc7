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

struct stats;
struct stats_bucket;

/*
 * Adds one rollup sum to *out: deliveries by class (open ones as pending)
 * and attempts. Then rollup_stats_delivering() moves the n of them being
 * delivered (counted from their rows) from pending to delivering.
 */
void rollup_stats_add(struct stats *out, const int64_t d[ROLLUP__CLASSES], int64_t attempts,
                      int64_t attempts_ok);
void rollup_stats_delivering(struct stats *out, int64_t n);
/* Sets out's percentiles from h. */
void rollup_stats_ranks(struct stats *out, const struct rollup_hist *h);

/* A series being read from rollup rows of span bucket_ms. */
struct rollup_series {
    struct stats_bucket *buckets;
    int64_t *totals;   /* attempts of each bucket */
    size_t n;
    int64_t since, bucket_ms, until;
    int64_t cur;       /* the bucket whose latency rows are being read, -1 before */
    struct rollup_ranks r;
};

/*
 * The empty buckets from since to now (at least one), latencies -1.
 * Returns 0 or ERR_NOMEM; rollup_series_take() or _cleanup() frees them.
 */
int rollup_series_init(struct rollup_series *s, int64_t since, int64_t bucket_ms, int64_t now);
/* One rollup row (or the sum of a start's rows): its attempts by outcome. */
void rollup_series_count(struct rollup_series *s, int64_t start, int64_t total, int64_t ok,
                         int64_t failed, int64_t retried);
/* One latency row; after every count, in ascending (start, bucket) order. */
void rollup_series_latency(struct rollup_series *s, int64_t start, int bucket, int64_t n);
/* Hands the buckets over (the caller frees *out) and frees the rest. */
void rollup_series_take(struct rollup_series *s, struct stats_bucket **out, size_t *n);
void rollup_series_cleanup(struct rollup_series *s);

#endif
