/*
 * SQLite backend: the latency histogram of a rollup row (migration 019),
 * kept in the row itself as one blob (stat_rollups.lat): for each bucket
 * used, in ascending order, the bucket and its count, each an unsigned
 * LEB128 varint. The writer adds a commit's attempts to a row in the same
 * UPDATE that adds its counts, with the SQL function lat_add(lat, delta); the
 * migration built the blobs from the rows of stat_latency (one row per
 * bucket, which cost a statement per bucket used in each commit) with the
 * aggregate lat_agg(bucket, n). The reads decode the blobs (sq_lat_each).
 */
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "store/sqlite/sq_int.h"
#include "util/err.h"
#include "util/log.h"

/* Appends v as a varint at p; returns the bytes written (at most 10). */
static size_t
varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Reads a varint at p[*i], before n; 0 and *v, or -1 when it runs past n or 64 bits. */
static int
varint_get(const unsigned char *p, size_t n, size_t *i, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (*i < n && shift < 64) {
        unsigned char b = p[(*i)++];

        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return 0;
        shift += 7;
    }
    return -1;
}

size_t
sq_lat_put(unsigned char *p, int bucket, int64_t n)
{
    size_t len;

    if (bucket < 0 || bucket >= ROLLUP_BUCKETS || n <= 0)
        return 0;
    len = varint_put(p, (uint64_t)bucket);
    return len + varint_put(p + len, (uint64_t)n);
}

/* A cursor over a blob's (bucket, count) pairs. */
struct lat_cur {
    const unsigned char *p;
    size_t len, i;
    int bucket;    /* of the pair read last; -1 at the end */
    int64_t n;
    int bad;       /* the blob is malformed */
};

static void
cur_next(struct lat_cur *c)
{
    uint64_t b, n;
    int prev = c->bucket;

    c->bucket = -1;
    if (c->i >= c->len || c->bad)
        return;
    if (varint_get(c->p, c->len, &c->i, &b) != 0 || varint_get(c->p, c->len, &c->i, &n) != 0 ||
        b >= ROLLUP_BUCKETS || (int)b <= prev || n == 0 || n > INT64_MAX) {
        c->bad = 1;
        return;
    }
    c->bucket = (int)b;
    c->n = (int64_t)n;
}

static void
cur_init(struct lat_cur *c, const void *blob, size_t len)
{
    c->p = blob;
    c->len = blob != NULL ? len : 0;
    c->i = 0;
    c->bucket = -1;
    c->bad = 0;
    cur_next(c);
}

int
sq_lat_each(const void *blob, size_t len, void (*fn)(void *arg, int bucket, int64_t n),
            void *arg)
{
    struct lat_cur c;

    for (cur_init(&c, blob, len); c.bucket >= 0; cur_next(&c))
        fn(arg, c.bucket, c.n);
    return c.bad ? ERR_STORE : 0;
}

/*
 * lat_add(lat, delta): the histogram lat with the counts of delta added
 * (either may be NULL: no attempts). A merged pair is never longer than the
 * two it sums, so the result fits in the length of both.
 */
static void
fn_lat_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct lat_cur a, b;
    unsigned char *out;
    size_t la, lb, n = 0;

    (void)argc;
    if (sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    la = (size_t)sqlite3_value_bytes(argv[0]);
    cur_init(&a, sqlite3_value_blob(argv[0]), la);
    lb = (size_t)sqlite3_value_bytes(argv[1]);
    cur_init(&b, sqlite3_value_blob(argv[1]), lb);
    out = sqlite3_malloc64(la + lb);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    while (a.bucket >= 0 || b.bucket >= 0) {
        if (b.bucket < 0 || (a.bucket >= 0 && a.bucket < b.bucket)) {
            n += sq_lat_put(out + n, a.bucket, a.n);
            cur_next(&a);
        } else if (a.bucket < 0 || b.bucket < a.bucket) {
            n += sq_lat_put(out + n, b.bucket, b.n);
            cur_next(&b);
        } else {
            n += sq_lat_put(out + n, a.bucket, a.n + b.n);
            cur_next(&a);
            cur_next(&b);
        }
    }
    if (a.bad || b.bad) {
        sqlite3_free(out);
        sqlite3_result_error(ctx, "lat_add: malformed latency histogram", -1);
        return;
    }
    sqlite3_result_blob64(ctx, out, n, sqlite3_free);
}

/* lat_agg(bucket, n): the histogram of a group of (bucket, count) rows, in any order. */
static void
fn_lat_agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct rollup_hist *h = sqlite3_aggregate_context(ctx, sizeof(*h));
    sqlite3_int64 b = sqlite3_value_int64(argv[0]);

    (void)argc;
    if (h == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (b < 0 || b >= ROLLUP_BUCKETS) {
        sqlite3_result_error(ctx, "lat_agg: latency bucket out of range", -1);
        return;
    }
    rollup_hist_add(h, (int)b, sqlite3_value_int64(argv[1]));
}

static void
fn_lat_agg_final(sqlite3_context *ctx)
{
    struct rollup_hist *h = sqlite3_aggregate_context(ctx, 0);
    unsigned char *out;
    size_t n = 0;
    int b;

    if (h == NULL || h->total == 0) {
        sqlite3_result_null(ctx);
        return;
    }
    out = sqlite3_malloc64(SQ_LAT_MAX);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (b = 0; b < ROLLUP_BUCKETS; b++)
        n += sq_lat_put(out + n, b, h->n[b]);
    sqlite3_result_blob64(ctx, out, n, sqlite3_free);
}

int
sq_lat_functions(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
    int rc;

    rc = sqlite3_create_function_v2(db, "lat_add", 2, flags, NULL, fn_lat_add, NULL, NULL,
                                    NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "lat_agg", 2, flags, NULL, NULL, fn_lat_agg_step,
                                        fn_lat_agg_final, NULL);
    if (rc != SQLITE_OK) {
        log_warnx("store: cannot add the latency functions: %s", sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? ERR_NOMEM : ERR_STORE;
    }
    return 0;
}
