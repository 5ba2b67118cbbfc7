/*
 * Helpers shared by the resource handlers (h_events.c, h_endpoints.c,
 * h_deliveries.c, h_stats.c): ids in paths, problem lists, stats objects.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "util/err.h"

int
api_path_id(struct api_req *r, int i, const char *prefix, const char *what, const char **out)
{
    const char *id;

    id = (i >= 0 && i < r->nparams) ? r->params[i] : NULL;
    /* A malformed id is answered like an unknown one: it names nothing. */
    if (id == NULL || !id_valid(prefix, id)) {
        api_reply_error(r, ERR_NOTFOUND, NULL, "no %s with id '%.64s'", what, id != NULL ? id : "");
        return ERR_NOTFOUND;
    }
    *out = id;
    return 0;
}

int
api_items_json(const void *items, size_t n, api_item_fn *item, json_t **out)
{
    json_t *arr;
    json_t *o;
    size_t i;
    int err = 0;

    arr = json_array();
    if (arr == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        o = NULL;
        item(items, i, &o);
        /* json_array_append_new() steals o, also when it fails; NULL fails it. */
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            err = ERR_NOMEM;
            goto out;
        }
    }
out:
    if (err != 0) {
        json_decref(arr);
        arr = NULL;
    }
    *out = arr;
    return err;
}

int
api_page_fetch(int limit)
{
    return limit < STORE_MAX_PAGE ? limit + 1 : limit;
}

int
api_page_reply(struct api_req *r, int limit, const void *items, size_t n, api_item_fn *item)
{
    json_t *arr = NULL;
    const char *next = NULL;
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    int err;

    err = api_items_json(items, shown, item, &arr);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot build the list: out of memory");
    /*
     * More than limit came back: another page follows. Exactly limit came back
     * when no more could be asked for (limit is STORE_MAX_PAGE): one may follow.
     */
    if (shown > 0 && (n > (size_t)limit || (api_page_fetch(limit) == limit && n == (size_t)limit)))
        next = item(items, shown - 1, NULL);
    return api_reply_json(r, 200, api_list_json(arr, next));
}

int
api_field_add(json_t *fields, const char *path, const char *fmt, ...)
{
    char problem[512];
    va_list ap;
    json_t *item;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    item = json_pack("{s:s, s:s}", "path", path, "problem", problem);
    if (item == NULL || json_array_append_new(fields, item) != 0)
        return ERR_NOMEM;
    return 0;
}

int
api_cursor_param(struct api_req *r, const char *prefix, const char **after)
{
    if (*after != NULL && **after == '\0')
        *after = NULL;
    if (*after != NULL && !id_valid(prefix, *after)) {
        api_reply_error(r, ERR_INVAL, NULL,
                        "after: expected an id starting with '%s' (the 'next' of a page)", prefix);
        return ERR_INVAL;
    }
    return 0;
}

json_t *
api_stats_json(const struct stats *s, int64_t since)
{
    json_t *o = NULL, *counts = NULL, *lat = NULL, *rate;
    int64_t total = 0;
    int i;

    counts = json_object();
    if (counts == NULL)
        goto fail;
    for (i = 0; i < DELIVERY__COUNT; i++) {
        total += s->by_status[i];
        if (json_object_set_new(counts, delivery_status_name((enum delivery_status)i),
                                json_integer(s->by_status[i])) != 0)
            goto fail;
    }
    if (s->attempts > 0 && s->p50_ms >= 0) {
        lat = json_pack("{s:I, s:I, s:I}", "p50", (json_int_t)s->p50_ms, "p95",
                        (json_int_t)s->p95_ms, "p99", (json_int_t)s->p99_ms);
        if (lat == NULL)
            goto fail;
    } else {
        lat = json_null();
    }
    rate = s->attempts > 0 ? json_real((double)s->attempts_ok / (double)s->attempts) : json_null();
    o = json_pack("{s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "since", api_time_json(since), "counts",
                  counts, "deliveries", (json_int_t)total, "attempts", (json_int_t)s->attempts,
                  "attempts_ok", (json_int_t)s->attempts_ok, "success_rate", rate, "latency_ms",
                  lat);
    /* json_pack's "o" steals even on failure. */
    return o;
fail:
    json_decref(counts);
    json_decref(lat);
    return NULL;
}

int
api_stats_reply(struct api_req *r, const char *endpoint_id)
{
    struct stats hour, day;
    int64_t now = clock_now_ms();
    json_t *o;
    int err;

    memset(&hour, 0, sizeof(hour));
    memset(&day, 0, sizeof(day));
    err = store_stats(r->ctx->store, r->account_id, endpoint_id, now - 3600 * 1000LL, &hour);
    if (err == 0)
        err = store_stats(r->ctx->store, r->account_id, endpoint_id, now - 86400 * 1000LL, &day);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot read the statistics");
    o = json_pack("{s:o, s:o}", "hour", api_stats_json(&hour, now - 3600 * 1000LL), "day",
                  api_stats_json(&day, now - 86400 * 1000LL));
    if (o == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    return api_reply_json(r, 200, o);
}

int
api_problems_reply(struct api_req *r, const char *what, json_t **fields)
{
    if (*fields == NULL || json_array_size(*fields) == 0)
        return 0;
    api_reply_error(r, ERR_VALIDATION, *fields, "cannot %s: %s: %s", what,
                    json_string_value(json_object_get(json_array_get(*fields, 0), "path")),
                    json_string_value(json_object_get(json_array_get(*fields, 0), "problem")));
    *fields = NULL;
    return ERR_VALIDATION;
}
