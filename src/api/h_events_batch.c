/*
 * POST /v1/events/batch: up to STORE_MAX_BATCH events in one body, each
 * checked and answered on its own, in order, and all the valid ones
 * published in one durable commit.
 */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "events/envelope.h"
#include "util/err.h"
#include "util/log.h"

struct batch {
    struct api_req *r;
    struct event evs[STORE_MAX_BATCH];        /* the events that passed their checks */
    json_t *results[STORE_MAX_BATCH];         /* an error result, or NULL */
    struct store_publish items[STORE_MAX_BATCH];
    size_t item_of[STORE_MAX_BATCH];          /* items[k] is event item_of[k] of the body */
    size_t n, nitems;
    int err; /* the store's answer (asynchronous publish) */
};

/* envelope_item_fn: keeps a valid event, or the error result of an invalid one. */
static int
batch_take(void *ctx, size_t i, struct event *ev, int err, const struct schema_report *rep,
           const char *why)
{
    struct batch *b = ctx;
    json_t *fields = NULL;

    b->n = i + 1;
    if (ev != NULL) {
        b->evs[i] = *ev;
        ev->body = NULL; /* ours now */
        snprintf(b->evs[i].account_id, sizeof(b->evs[i].account_id), "%s", b->r->account_id);
        return 0;
    }
    if (err == ERR_VALIDATION) {
        fields = schema_report_json(rep);
        if (fields == NULL)
            return ERR_NOMEM;
    }
    b->results[i] = json_pack("{s:i, s:o*}", "status", api_err_status(err), "error",
                              api_error_json(api_err_type(err), fields,
                                             why != NULL ? why : err_str(err)));
    return b->results[i] != NULL ? 0 : ERR_NOMEM;
}

/* Answers the results, in order: each published event or its error. */
static int
batch_reply(struct batch *b)
{
    json_t *results, *o;
    size_t i, k;
    int err;

    results = json_array();
    for (i = 0; i < b->n && results != NULL; i++) {
        o = b->results[i];
        b->results[i] = NULL;
        if (o == NULL) {
            for (k = 0; k < b->nitems && b->item_of[k] != i; k++)
                ;
            err = b->items[k].err;
            o = json_pack("{s:i, s:s, s:s, s:s, s:i}", "status", err == ERR_CONFLICT ? 200 : 202,
                          "id", b->evs[i].id, "event", b->evs[i].type, "timestamp",
                          b->evs[i].timestamp, "deliveries", b->evs[i].deliveries);
        }
        if (o == NULL || json_array_append_new(results, o) != 0) {
            json_decref(results);
            results = NULL;
        }
    }
    if (results == NULL)
        return api_reply_error(b->r, ERR_NOMEM, NULL, "out of memory");
    return api_reply_json(b->r, 200, json_pack("{s:o}", "results", results));
}

static void
batch_free(struct batch *b)
{
    size_t i;

    for (i = 0; i < STORE_MAX_BATCH; i++) {
        event_cleanup(&b->evs[i]);
        json_decref(b->results[i]);
    }
    free(b);
}

/* Answers the batch once the store has answered err. */
static int
batch_answer(struct batch *b, int err)
{
    if (err != 0)
        return api_reply_error(b->r, err, NULL, "cannot store the events");
    log_debug("api: published batch events=%zu valid=%zu account=%s", b->n, b->nitems,
              b->r->account_id);
    return batch_reply(b);
}

/* store_publish_done_fn, on a store thread: hands the request back to its loop. */
static void
batch_done(void *arg, int err)
{
    struct batch *b = arg;

    b->err = err;
    api_resume(b->r);
}

/* api_resume_fn, on the loop: answers the batch. */
static int
batch_resumed(struct api_req *r, void *arg)
{
    struct batch *b = arg;
    int err;

    (void)r;
    err = batch_answer(b, b->err);
    batch_free(b);
    return err;
}

int
h_events_publish_batch(struct api_req *r)
{
    struct schema_report rep;
    struct batch *b;
    char errbuf[256];
    size_t i;
    int err;

    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    b->r = r;
    err = envelope_parse_batch(r->body.data != NULL ? r->body.data : "", r->body.len,
                               STORE_MAX_BATCH, clock_now_ms(), batch_take, b, &rep, errbuf,
                               sizeof(errbuf));
    if (err == ERR_VALIDATION) {
        err = api_reply_error(r, ERR_VALIDATION, schema_report_json(&rep),
                              "%s", errbuf[0] != '\0' ? errbuf : "the batch breaks the rules");
        goto out;
    }
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "%s", errbuf[0] != '\0' ? errbuf : err_str(err));
        goto out;
    }
    for (i = 0; i < b->n; i++) {
        if (b->results[i] != NULL)
            continue;
        /* The store fans out in the batch's own transaction. */
        b->items[b->nitems] = (struct store_publish){.ev = &b->evs[i], .fanout = 1};
        b->item_of[b->nitems++] = i;
    }
    if (b->nitems > 0 && r->on_loop) {
        err = store_event_publish_async(r->ctx->store, b->items, b->nitems, batch_done, b);
        if (err == 0) {
            /* Answered on this loop once the store's completion hands it back. */
            api_suspend(r, batch_resumed, b);
            return 0;
        }
    } else if (b->nitems > 0) {
        err = store_event_publish_batch(r->ctx->store, b->items, b->nitems);
    }
    err = batch_answer(b, err);
out:
    batch_free(b);
    return err;
}
