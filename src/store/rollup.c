/*
 * Statistics rollups: latency buckets, percentiles from histograms and the
 * plan of a window (see rollup.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "store/store.h"
#include "store/store_int.h"
#include "util/err.h"

int
rollup_class(int s)
{
    switch (s) {
    case DELIVERY_PENDING:
    case DELIVERY_DELIVERING:
        return ROLLUP_OPEN;
    case DELIVERY_DELIVERED:
        return ROLLUP_DELIVERED;
    case DELIVERY_FAILED:
        return ROLLUP_FAILED;
    case DELIVERY_HELD:
        return ROLLUP_HELD;
    default:
        return -1;
    }
}

int
rollup_bucket(int64_t ms)
{
    int e;

    if (ms < 0)
        return 0;
    if (ms < ROLLUP_EXACT)
        return (int)ms;
    e = 63 - __builtin_clzll((unsigned long long)ms); /* 7 and up */
    if (e > 31)
        return ROLLUP_BUCKETS - 1;
    return ROLLUP_EXACT + (e - 7) * ROLLUP_SUB + (int)(ms >> (e - 5)) - ROLLUP_SUB;
}

int64_t
rollup_bucket_ms(int b)
{
    int e, sub;

    if (b < ROLLUP_EXACT)
        return b < 0 ? 0 : b;
    e = 7 + (b - ROLLUP_EXACT) / ROLLUP_SUB;
    sub = (b - ROLLUP_EXACT) % ROLLUP_SUB;
    /* The middle of [lower, lower + width). */
    return ((int64_t)(ROLLUP_SUB + sub) << (e - 5)) + ((1LL << (e - 5)) >> 1);
}

void
rollup_hist_add(struct rollup_hist *h, int bucket, int64_t n)
{
    if (bucket < 0 || bucket >= ROLLUP_BUCKETS || n == 0)
        return;
    h->n[bucket] += n;
    h->total += n;
}

void
rollup_ranks_init(struct rollup_ranks *r, const int *ps, int np, int64_t total)
{
    int i;

    memset(r, 0, sizeof(*r));
    r->ps = ps;
    r->np = np > 4 ? 4 : np;
    r->total = total;
    for (i = 0; i < 4; i++)
        r->out[i] = -1;
}

void
rollup_ranks_feed(struct rollup_ranks *r, int bucket, int64_t n)
{
    if (n <= 0 || r->total <= 0)
        return;
    r->seen += n;
    while (r->k < r->np && store_rank(r->ps[r->k], r->total) <= r->seen)
        r->out[r->k++] = rollup_bucket_ms(bucket);
}

void
rollup_hist_ranks(const struct rollup_hist *h, const int *ps, int np, int64_t *out)
{
    struct rollup_ranks r;
    int b, i;

    rollup_ranks_init(&r, ps, np, h->total);
    for (b = 0; b < ROLLUP_BUCKETS && r.k < r.np; b++)
        rollup_ranks_feed(&r, b, h->n[b]);
    for (i = 0; i < np && i < 4; i++)
        out[i] = r.out[i];
}

void
rollup_plan_make(int64_t since, struct rollup_plan *out)
{
    if (since < 0)
        since = 0;
    out->since = since;
    out->minute_lo = (since + ROLLUP_MINUTE_MS - 1) / ROLLUP_MINUTE_MS * ROLLUP_MINUTE_MS;
    out->hour_lo = (since + ROLLUP_HOUR_MS - 1) / ROLLUP_HOUR_MS * ROLLUP_HOUR_MS;
}

void
rollup_stats_add(struct stats *out, const int64_t d[ROLLUP__CLASSES], int64_t attempts,
                 int64_t attempts_ok)
{
    out->by_status[DELIVERY_PENDING] += d[ROLLUP_OPEN];
    out->by_status[DELIVERY_DELIVERED] += d[ROLLUP_DELIVERED];
    out->by_status[DELIVERY_FAILED] += d[ROLLUP_FAILED];
    out->by_status[DELIVERY_HELD] += d[ROLLUP_HELD];
    out->attempts += attempts;
    out->attempts_ok += attempts_ok;
}

void
rollup_stats_delivering(struct stats *out, int64_t n)
{
    out->by_status[DELIVERY_PENDING] -= n;
    out->by_status[DELIVERY_DELIVERING] += n;
}

void
rollup_stats_ranks(struct stats *out, const struct rollup_hist *h)
{
    static const int ps[3] = { 50, 95, 99 };
    int64_t vs[3];

    rollup_hist_ranks(h, ps, 3, vs);
    out->p50_ms = vs[0];
    out->p95_ms = vs[1];
    out->p99_ms = vs[2];
}

int
rollup_series_init(struct rollup_series *s, int64_t since, int64_t bucket_ms, int64_t now)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    s->n = (size_t)((now - since + bucket_ms - 1) / bucket_ms);
    if (s->n == 0)
        s->n = 1;
    s->since = since;
    s->bucket_ms = bucket_ms;
    s->until = since + (int64_t)s->n * bucket_ms;
    s->cur = -1;
    s->buckets = calloc(s->n, sizeof(*s->buckets));
    s->totals = calloc(s->n, sizeof(*s->totals));
    if (s->buckets == NULL || s->totals == NULL) {
        rollup_series_cleanup(s);
        return ERR_NOMEM;
    }
    for (i = 0; i < s->n; i++) {
        s->buckets[i].start = since + (int64_t)i * bucket_ms;
        s->buckets[i].p50_ms = s->buckets[i].p95_ms = -1;
    }
    return 0;
}

/* The index of the bucket holding start, or -1 outside the series. */
static int64_t
series_index(const struct rollup_series *s, int64_t start)
{
    int64_t b;

    if (start < s->since)
        return -1;
    b = (start - s->since) / s->bucket_ms;
    return b < (int64_t)s->n ? b : -1;
}

void
rollup_series_count(struct rollup_series *s, int64_t start, int64_t total, int64_t ok,
                    int64_t failed, int64_t retried)
{
    int64_t b = series_index(s, start);

    if (b < 0)
        return;
    s->totals[b] += total;
    s->buckets[b].delivered += ok;
    s->buckets[b].failed += failed;
    s->buckets[b].retried += retried;
}

/* Sets the percentiles of the bucket whose latency rows were just read. */
static void
series_close(struct rollup_series *s)
{
    if (s->cur < 0)
        return;
    s->buckets[s->cur].p50_ms = s->r.out[0];
    s->buckets[s->cur].p95_ms = s->r.out[1];
}

void
rollup_series_latency(struct rollup_series *s, int64_t start, int bucket, int64_t n)
{
    static const int ps[2] = { 50, 95 };
    int64_t b = series_index(s, start);

    if (b < 0)
        return;
    if (b != s->cur) {
        series_close(s);
        s->cur = b;
        rollup_ranks_init(&s->r, ps, 2, s->totals[b]);
    }
    rollup_ranks_feed(&s->r, bucket, n);
}

void
rollup_series_take(struct rollup_series *s, struct stats_bucket **out, size_t *n)
{
    series_close(s);
    *out = s->buckets;
    *n = s->n;
    s->buckets = NULL;
    rollup_series_cleanup(s);
}

void
rollup_series_cleanup(struct rollup_series *s)
{
    free(s->buckets);
    free(s->totals);
    s->buckets = NULL;
    s->totals = NULL;
}
