/*
 * /v1/deliveries: the delivery log (filtered pages, one delivery with every
 * attempt and the headers it was sent with) and manual retries.
 */
#include <stdatomic.h>
#include <string.h>

#include "api/handlers.h"
#include "events/catalog.h"
#include "util/err.h"
#include "util/log.h"

#ifndef FLUXHOOK_VERSION
#define FLUXHOOK_VERSION "0"
#endif

#define STATUS_NAMES "pending, delivering, delivered, failed, held"

/* A page of deliveries and what each of its objects adds from the configuration. */
struct delivery_page {
    const struct delivery *ds;
    int max_attempts;
};

/*
 * Adds to a delivery object what the server's configuration says about it:
 * max_attempts, the attempts of a round (so a reader can say "attempt 3 of
 * 5"). o may be NULL. Returns o.
 */
static json_t *
with_config(json_t *o, int max_attempts)
{
    if (o != NULL && max_attempts > 0)
        json_object_set_new(o, "max_attempts", json_integer(max_attempts));
    return o;
}

/* api_item_fn of a page of deliveries (items is a struct delivery_page). */
static const char *
delivery_item(const void *items, size_t i, json_t **json)
{
    const struct delivery_page *pg = items;
    const struct delivery *d = pg->ds + i;

    if (json != NULL)
        *json = with_config(api_delivery_json(d, NULL, 0, 0), pg->max_attempts);
    return d->id;
}

/* Reads the RFC 3339 query parameter name into *ms (0 when absent); 0 or -1 (answered). */
static int
time_param(struct api_req *r, const char *name, int64_t *ms)
{
    const char *s = api_query(r, name);

    *ms = 0;
    if (s == NULL || *s == '\0')
        return 0;
    if (clock_parse_rfc3339(s, ms) != 0 || *ms <= 0) {
        api_reply_error(r, ERR_INVAL, NULL,
                        "%s: expected an RFC 3339 time such as '2024-01-01T12:00:00Z'", name);
        return -1;
    }
    return 0;
}

int
h_deliveries_list(struct api_req *r)
{
    struct delivery_filter f;
    struct delivery_page pg;
    struct delivery *ds = NULL;
    size_t n = 0;
    enum delivery_status st;
    const char *after = NULL, *s;
    char names[512];
    int limit, err;

    memset(&f, 0, sizeof(f));
    f.status = -1;
    if (api_page_params(r, &limit, &after) != 0)
        return 0;
    if (time_param(r, "since", &f.created_from) != 0 ||
        time_param(r, "until", &f.created_before) != 0)
        return 0;
    if (f.created_from > 0 && f.created_before > 0 && f.created_before <= f.created_from)
        return api_reply_error(r, ERR_INVAL, NULL, "until: expected a time after 'since'");
    if (api_cursor_param(r, "dlv_", &after) != 0)
        return 0;
    s = api_query(r, "status");
    if (s != NULL && *s != '\0') {
        if (delivery_status_parse(s, &st) != 0)
            return api_reply_error(r, ERR_INVAL, NULL, "status: expected one of " STATUS_NAMES);
        f.status = (int)st;
    }
    f.endpoint_id = api_query(r, "endpoint_id");
    f.event_id = api_query(r, "event_id");
    f.event_type = api_query(r, "event");
    if (f.event_type != NULL && *f.event_type != '\0' && catalog_any_find(f.event_type) == NULL)
        return api_reply_error(r, ERR_INVAL, NULL, "event: expected one of %s",
                               catalog_type_names(names, sizeof(names)));
    f.after = after;
    f.descending = 1;
    f.limit = api_page_fetch(limit);
    err = store_delivery_list(r->ctx->store, r->account_id, &f, &ds, &n);
    pg.ds = ds;
    pg.max_attempts = r->ctx->cfg->max_attempts;
    if (err != 0)
        err = api_reply_error(r, err, NULL, "cannot list deliveries");
    else
        err = api_page_reply(r, limit, &pg, n, delivery_item);
    delivery_list_free(ds, n);
    return err;
}

/*
 * The headers every attempt of d carried apart from the per-attempt ones
 * (X-Workflux-Attempt, webhook-timestamp) and the signatures, which depend on
 * the secret: what the dashboard shows as "request headers".
 */
static json_t *
headers_json(const struct delivery *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "Content-Type", "application/json",
                     "User-Agent", "fluxhook/" FLUXHOOK_VERSION, "X-Workflux-Event", d->event_type,
                     "X-Workflux-Event-Id", d->event_id, "X-Workflux-Delivery", d->id, "webhook-id",
                     d->event_id);
}

int
h_deliveries_get(struct api_req *r)
{
    struct delivery d;
    struct attempt *as = NULL;
    size_t n = 0;
    const char *id;
    json_t *o;
    int err;

    memset(&d, 0, sizeof(d));
    if (api_path_id(r, 0, "dlv_", "delivery", &id) != 0)
        return 0;
    err = store_delivery_get(r->ctx->store, r->account_id, id, &d);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "no delivery with id '%s'", id);
        goto out;
    }
    err = store_attempt_list(r->ctx->store, d.id, &as, &n);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot read the attempts of '%s'", id);
        goto out;
    }
    o = with_config(api_delivery_json(&d, as, n, 1), r->ctx->cfg->max_attempts);
    if (o != NULL)
        json_object_set_new(o, "headers", headers_json(&d));
    err = api_reply_json(r, 200, o);
out:
    attempt_list_free(as, n);
    delivery_cleanup(&d);
    return err;
}

/* Answers 409 for a delivery that cannot be retried now, saying why. */
static int
reply_conflict(struct api_req *r, const char *id)
{
    struct delivery d;
    struct endpoint ep;
    int err;

    memset(&d, 0, sizeof(d));
    memset(&ep, 0, sizeof(ep));
    err = store_delivery_get(r->ctx->store, r->account_id, id, &d);
    if (err == 0 && d.status != DELIVERY_DELIVERING &&
        store_endpoint_get(r->ctx->store, r->account_id, d.endpoint_id, &ep) == ERR_NOTFOUND)
        err = api_reply_error(r, ERR_CONFLICT, NULL,
                              "delivery '%s' cannot be retried: its endpoint '%s' was deleted", id,
                              d.endpoint_id);
    else
        err = api_reply_error(r, ERR_CONFLICT, NULL,
                              "delivery '%s' is being delivered now: retry once the attempt ends",
                              id);
    endpoint_cleanup(&ep);
    delivery_cleanup(&d);
    return err;
}

int
h_deliveries_retry(struct api_req *r)
{
    struct delivery d;
    const char *id;
    int err;

    memset(&d, 0, sizeof(d));
    if (api_path_id(r, 0, "dlv_", "delivery", &id) != 0)
        return 0;
    err = store_delivery_retry(r->ctx->store, r->account_id, id, clock_now_ms());
    if (err == ERR_CONFLICT) {
        err = reply_conflict(r, id);
        goto out;
    }
    if (err != 0) {
        err = api_reply_error(
            r, err, NULL,
            err == ERR_NOTFOUND ? "no delivery with id '%s'" : "cannot retry delivery '%s'", id);
        goto out;
    }
    err = store_delivery_get(r->ctx->store, r->account_id, id, &d);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "no delivery with id '%s'", id);
        goto out;
    }
    log_info("api: retry delivery=%s status=%s", id, delivery_status_name(d.status));
    api_audit(r, NULL, "delivery.retried", id,
              json_pack("{s:s, s:s}", "endpoint_id", d.endpoint_id, "status",
                        delivery_status_name(d.status)));
    err = api_reply_json(r, 202,
                         with_config(api_delivery_json(&d, NULL, 0, 0), r->ctx->cfg->max_attempts));
out:
    delivery_cleanup(&d);
    return err;
}
