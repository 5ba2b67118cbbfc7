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

int
rollup_buckets_new(int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                   size_t *n)
{
    struct stats_bucket *bs;
    size_t nb, i;

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
    *out = bs;
    *n = nb;
    return 0;
}
