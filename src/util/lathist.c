/*
 * Latency histograms for /metrics (lathist.h).
 */
#include <string.h>

#include "util/lathist.h"

static const int64_t bounds_us[LATHIST_N] = {100,   250,   500,    1000,   2500,   5000,
                                             10000, 25000, 50000, 100000, 250000, 1000000};

void
lathist_add(struct lathist *h, int64_t us)
{
    size_t i = 0;

    if (us < 0)
        us = 0;
    while (i < LATHIST_N && us > bounds_us[i])
        i++;
    h->in[i]++;
    h->sum_us += (uint64_t)us;
}

uint64_t
lathist_count_upto(const struct lathist *h, int64_t us)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < LATHIST_N && bounds_us[i] <= us; i++)
        n += h->in[i];
    return n;
}

uint64_t
lathist_count(const struct lathist *h)
{
    return lathist_count_upto(h, bounds_us[LATHIST_N - 1]) + h->in[LATHIST_N];
}

void
lathist_print(struct buf *b, const char *name, const char *labels, const struct lathist *h)
{
    unsigned long long below = 0;
    size_t i;

    for (i = 0; i < LATHIST_N; i++) {
        below += h->in[i];
        buf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)bounds_us[i] / 1e6,
                   below);
    }
    below += h->in[LATHIST_N];
    buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, below);
    /* The labels without their trailing comma, for _sum and _count. */
    if (labels[0] != '\0') {
        int len = (int)strlen(labels) - 1;

        buf_printf(b, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, len, labels,
                   (double)h->sum_us / 1e6, name, len, labels, below);
    } else {
        buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name, below);
    }
}
