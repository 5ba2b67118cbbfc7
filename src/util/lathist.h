/*
 * Latency histograms for /metrics: counts of observations at fixed bounds,
 * from 100 us to 1 s, printed as a Prometheus histogram in seconds. The
 * caller serializes lathist_add() and reads a copy.
 */
#ifndef FLUXHOOK_UTIL_LATHIST_H
#define FLUXHOOK_UTIL_LATHIST_H

#include <stdint.h>

#include "util/buf.h"

#define LATHIST_N 12 /* finite bounds; one more count holds what is above the last */

struct lathist {
    uint64_t in[LATHIST_N + 1]; /* in[i]: observations in (bound i-1, bound i]; in[N]: above */
    uint64_t sum_us;
};

/* Counts one observation of us microseconds (negative counts as 0). */
void lathist_add(struct lathist *h, int64_t us);

/* The observations of h at most us microseconds (exact when us is a bound), and all of them. */
uint64_t lathist_count_upto(const struct lathist *h, int64_t us);
uint64_t lathist_count(const struct lathist *h);

/*
 * Appends h as the Prometheus histogram name (in seconds) to b, its buckets'
 * labels preceded by labels ("" or `stage="x",`). The HELP and TYPE lines
 * are the caller's, once per name.
 */
void lathist_print(struct buf *b, const char *name, const char *labels, const struct lathist *h);

#endif
