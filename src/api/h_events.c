/*
 * POST /v1/events, GET /v1/events, GET /v1/events/{id}: publishing with
 * idempotency keys and fan-out, and reading events back.
 */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "events/catalog.h"
#include "events/envelope.h"
#include "events/schema.h"
#include "util/err.h"
#include "util/log.h"

#define IDEMPOTENCY_MAX (EVENT_IDEMPOTENCY_MAX - 1)

/* Answers a publish that ended with err (the store's, else the item's). */
static int
publish_answer(struct api_req *r, struct event *ev, int err)
{
    int status;

    if (err == ERR_CONFLICT) {
        /* A repeated key: ev now holds the first event; nothing was published. */
        status = 200;
        log_debug("api: idempotent repeat event=%s account=%s", ev->id, r->account_id);
    } else if (err != 0) {
        return api_reply_error(r, err, NULL, "cannot store the event");
    } else {
        status = 202;
        log_debug("api: published event=%s type=%s deliveries=%d", ev->id, ev->type,
                  ev->deliveries);
    }
    snprintf(r->location, sizeof(r->location), "/v1/events/%s", ev->id);
    return api_reply_published(r, status, ev);
}

/* A publish under way on the loop (asynchronous store). */
struct publish_wait {
    struct api_req *r;
    struct event ev;
    struct store_publish it;
    int err; /* the store's answer */
};

/* store_publish_done_fn, on a store thread: hands the request back to its loop. */
static void
publish_done(void *arg, int err)
{
    struct publish_wait *pw = arg;

    pw->err = err;
    api_resume(pw->r);
}

/* api_resume_fn, on the loop: answers the publish. */
static int
publish_resumed(struct api_req *r, void *arg)
{
    struct publish_wait *pw = arg;
    int err;

    err = publish_answer(r, &pw->ev, pw->err != 0 ? pw->err : pw->it.err);
    event_cleanup(&pw->ev);
    free(pw);
    return err;
}

/*
 * Publishes ev (taken) without waiting: the request is suspended and the
 * store's completion answers it. Returns 0, or what answering an error gave.
 */
static int
publish_async(struct api_req *r, struct event *ev)
{
    struct publish_wait *pw;
    int err;

    pw = calloc(1, sizeof(*pw));
    if (pw == NULL) {
        event_cleanup(ev);
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    }
    pw->r = r;
    pw->ev = *ev;
    memset(ev, 0, sizeof(*ev));
    /* The store fans out in the publish's own transaction. */
    pw->it = (struct store_publish){.ev = &pw->ev, .fanout = 1};
    err = store_event_publish_async(r->ctx->store, &pw->it, 1, publish_done, pw);
    if (err != 0) {
        event_cleanup(&pw->ev);
        free(pw);
        return api_reply_error(r, err, NULL, "cannot store the event");
    }
    /* The completion may already be on its way: it is answered on this loop, after we return. */
    api_suspend(r, publish_resumed, pw);
    return 0;
}

int
h_events_publish(struct api_req *r)
{
    struct schema_report rep;
    struct event ev;
    struct store_publish it = {.ev = &ev, .fanout = 1};
    const char *key;
    char errbuf[256];
    int err;

    memset(&ev, 0, sizeof(ev));
    key = api_header(r, "Idempotency-Key");
    if (key != NULL && strlen(key) > IDEMPOTENCY_MAX) {
        err = api_reply_error(r, ERR_INVAL, NULL,
                              "Idempotency-Key: expected at most %d characters, got %zu",
                              IDEMPOTENCY_MAX, strlen(key));
        goto out;
    }
    errbuf[0] = '\0';
    err = envelope_parse_publish(r->body.data != NULL ? r->body.data : "", r->body.len,
                                 clock_now_ms(), &ev, &rep, errbuf, sizeof(errbuf));
    if (err == ERR_VALIDATION) {
        err = api_reply_report(r, &rep);
        goto out;
    }
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "%s", errbuf[0] != '\0' ? errbuf : err_str(err));
        goto out;
    }
    /* Both are ID_MAX arrays holding a string: a copy, no printf on every publish. */
    _Static_assert(sizeof(ev.account_id) == sizeof(r->account_id), "account id sizes");
    memcpy(ev.account_id, r->account_id, sizeof(ev.account_id));
    if (key != NULL)
        snprintf(ev.idempotency_key, sizeof(ev.idempotency_key), "%s", key);
    if (r->on_loop) {
        err = publish_async(r, &ev);
        goto out;
    }
    /* The store fans out in the publish's own transaction. */
    err = store_event_publish_batch(r->ctx->store, &it, 1);
    if (err == 0)
        err = it.err;
    err = publish_answer(r, &ev, err);
out:
    event_cleanup(&ev);
    return err;
}

int
h_events_get(struct api_req *r)
{
    struct event ev;
    const char *id;
    json_t *o;
    int err;

    memset(&ev, 0, sizeof(ev));
    if (api_path_id(r, 0, "evt_", "event", &id) != 0)
        return 0;
    err = store_event_get(r->ctx->store, r->account_id, id, &ev);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "no event with id '%s'", id);
        goto out;
    }
    o = api_event_json(&ev);
    if (o != NULL && json_object_get(o, "deliveries") == NULL)
        json_object_set_new(o, "deliveries", json_integer(ev.deliveries));
    err = api_reply_json(r, 200, o);
out:
    event_cleanup(&ev);
    return err;
}

/* api_item_fn of a page of events. */
static const char *
event_item(const void *items, size_t i, json_t **json)
{
    const struct event *ev = (const struct event *)items + i;

    if (json != NULL)
        *json = api_event_json(ev);
    return ev->id;
}

int
h_events_list(struct api_req *r)
{
    struct event *evs = NULL;
    size_t n = 0;
    const char *after = NULL, *type;
    char names[512];
    int limit, err;

    if (api_page_params(r, &limit, &after) != 0)
        return 0;
    if (api_cursor_param(r, "evt_", &after) != 0)
        return 0;
    type = api_query(r, "event");
    if (type != NULL && *type == '\0')
        type = NULL;
    if (type != NULL && catalog_any_find(type) == NULL)
        return api_reply_error(r, ERR_INVAL, NULL, "event: expected one of %s",
                               catalog_type_names(names, sizeof(names)));
    err = store_event_list(r->ctx->store, r->account_id, type, after, api_page_fetch(limit), &evs,
                           &n);
    if (err != 0)
        err = api_reply_error(r, err, NULL, "cannot list events");
    else
        err = api_page_reply(r, limit, evs, n, event_item);
    event_list_free(evs, n);
    return err;
}
