/*
 * GET /v1/stats and GET /v1/stats/series: the account's delivery statistics
 * and the time series behind the dashboard's charts.
 */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "util/err.h"

int
h_stats_account(struct api_req *r)
{
    return api_stats_reply(r, NULL);
}

/* A latency in ms, or null for -1 (no attempt). */
static json_t *
ms_json(int64_t ms)
{
    return ms >= 0 ? json_integer(ms) : json_null();
}

int
h_stats_series(struct api_req *r)
{
    struct endpoint ep;
    struct stats_bucket *bs = NULL;
    size_t n = 0, i, j;
    const char *window, *endpoint_id;
    int64_t now = clock_now_ms(), bucket_ms, nbuckets, since, start;
    json_t *data = NULL, *item;
    int err;

    memset(&ep, 0, sizeof(ep));
    window = api_query(r, "window");
    if (window == NULL || *window == '\0' || strcmp(window, "1h") == 0) {
        window = "1h";
        bucket_ms = 60 * 1000;
        nbuckets = 60;
    } else if (strcmp(window, "24h") == 0) {
        bucket_ms = 3600 * 1000;
        nbuckets = 24;
    } else {
        return api_reply_error(r, ERR_INVAL, NULL, "window: expected '1h' or '24h'");
    }
    endpoint_id = api_query(r, "endpoint_id");
    if (endpoint_id != NULL && *endpoint_id == '\0')
        endpoint_id = NULL;
    if (endpoint_id != NULL) {
        /* Another account's endpoint, or none at all, is not found. */
        err = id_valid("ep_", endpoint_id)
                  ? store_endpoint_get(r->ctx->store, r->account_id, endpoint_id, &ep)
                  : ERR_NOTFOUND;
        if (err != 0)
            return api_reply_error(r, err, NULL, "no endpoint with id '%.64s'", endpoint_id);
    }
    /* Aligned buckets, the last one holding now. */
    since = (now / bucket_ms - (nbuckets - 1)) * bucket_ms;
    err = store_stats_series(r->ctx->store, r->account_id, endpoint_id, since, bucket_ms, now, &bs,
                             &n);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot read the statistics");
        goto out;
    }
    data = json_array();
    if (data == NULL) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    /* Every bucket appears, empty ones included, whatever the store returns. */
    for (j = 0, i = 0; (int64_t)j < nbuckets; j++) {
        start = since + (int64_t)j * bucket_ms;
        while (i < n && bs[i].start < start)
            i++;
        if (i < n && bs[i].start == start)
            item = json_pack("{s:o, s:I, s:I, s:I, s:o, s:o}", "start", api_time_json(start),
                             "delivered", (json_int_t)bs[i].delivered, "failed",
                             (json_int_t)bs[i].failed, "retried", (json_int_t)bs[i].retried,
                             "p50_ms", ms_json(bs[i].p50_ms), "p95_ms", ms_json(bs[i].p95_ms));
        else
            item = json_pack("{s:o, s:i, s:i, s:i, s:n, s:n}", "start", api_time_json(start),
                             "delivered", 0, "failed", 0, "retried", 0, "p50_ms", "p95_ms");
        if (item == NULL || json_array_append_new(data, item) != 0) {
            err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    err = api_reply_json(
        r, 200,
        json_pack("{s:s, s:I, s:o, s:o, s:o}", "window", window, "bucket_seconds",
                  (json_int_t)(bucket_ms / 1000), "since", api_time_json(since), "endpoint_id",
                  endpoint_id != NULL ? json_string(endpoint_id) : json_null(), "data", data));
    data = NULL;
out:
    json_decref(data);
    free(bs); /* buckets own no strings */
    endpoint_cleanup(&ep);
    return err;
}
