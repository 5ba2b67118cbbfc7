#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dispatch/opevents.h"
#include "events/catalog.h"
#include "events/envelope.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/*
 * Publishes own type `type` with data (stolen) for account_id, unless no
 * operational endpoint of the account wants it (then nothing is stored).
 */
static int
publish(struct store *st, const char *account_id, const char *type, json_t *data)
{
    struct store_publish item;
    struct event ev;
    struct endpoint *eps = NULL;
    size_t neps = 0;
    char *text = NULL;
    int err;

    memset(&ev, 0, sizeof(ev));
    if (data == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    err = store_endpoint_subscribed(st, account_id, type, &eps, &neps);
    if (err != 0 || neps == 0)
        goto out;
    text = json_dumps(data, JSON_COMPACT);
    if (text == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    err = envelope_build(type, text, strlen(text), NULL, clock_now_ms(), &ev);
    if (err != 0)
        goto out;
    snprintf(ev.account_id, sizeof(ev.account_id), "%s", account_id);
    memset(&item, 0, sizeof(item));
    item.ev = &ev;
    item.fanout = 1;
    err = store_event_publish_batch(st, &item, 1);
    if (err == 0)
        log_info("opevents: published event=%s type=%s account=%s deliveries=%d", ev.id, type,
                 account_id, ev.deliveries);
out:
    if (err != 0)
        log_warnx("opevents: cannot publish type=%s account=%s: %s", type, account_id,
                  err_str(err));
    endpoint_list_free(eps, neps);
    event_cleanup(&ev);
    free(text);
    json_decref(data);
    return err;
}

int
opevents_disabled(struct store *st, const struct endpoint *ep, int by_dispatcher)
{
    struct audit_entry e;
    json_t *o;
    char *details;
    const char *reason = ep->disabled_reason != NULL ? ep->disabled_reason : "";
    int err;

    if (by_dispatcher) {
        memset(&e, 0, sizeof(e));
        snprintf(e.account_id, sizeof(e.account_id), "%s", ep->account_id);
        snprintf(e.actor, sizeof(e.actor), "%s", OPEVENTS_ACTOR);
        snprintf(e.action, sizeof(e.action), "endpoint.disabled");
        snprintf(e.target, sizeof(e.target), "%s", ep->id);
        o = json_pack("{s:s}", "reason", reason);
        details = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        e.details = details != NULL ? details : "{}";
        err = store_audit_insert(st, &e);
        if (err != 0)
            log_warnx("opevents: cannot record in the audit log action=endpoint.disabled "
                      "target=%s: %s",
                      ep->id, err_str(err));
        free(details);
    }
    if (ep->operational)
        return 0;
    return publish(st, ep->account_id, "endpoint.disabled",
                   json_pack("{s:s, s:s, s:s, s:I}", "endpoint_id", ep->id, "url", ep->url,
                             "reason", reason, "held", (json_int_t)ep->held));
}

int
opevents_enabled(struct store *st, const struct endpoint *ep, int64_t count, int skipped)
{
    if (ep->operational)
        return 0;
    return publish(st, ep->account_id, "endpoint.enabled",
                   json_pack("{s:s, s:s, s:I, s:b}", "endpoint_id", ep->id, "url", ep->url,
                             "resumed", (json_int_t)(skipped ? 0 : count), "skipped", skipped));
}

void
opevents_after_result(struct store *st, const struct claim *c, const struct attempt_result *r,
                      int64_t now)
{
    const struct delivery *d = &c->dlv;
    struct endpoint ep;
    json_t *data;
    int failed_before = d->attempts_made - d->round_start;
    /* Own types go only to operational endpoints: no events about those. */
    int own = catalog_own_find(d->event_type) != NULL;

    if (!own && r->status == DELIVERY_FAILED) {
        data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "delivery_id", d->id, "event_id",
                         d->event_id, "event_type", d->event_type, "endpoint_id", d->endpoint_id,
                         "url", c->url, "attempts", r->attempt.n, "last_status_code",
                         r->attempt.status_code);
        if (data != NULL && r->attempt.error != NULL && r->attempt.error[0] != '\0')
            json_object_set_new(data, "last_error", json_string(r->attempt.error));
        publish(st, d->account_id, "delivery.failed", data);
    } else if (!own && r->status == DELIVERY_DELIVERED && failed_before > 0) {
        publish(st, d->account_id, "endpoint.recovered",
                json_pack("{s:s, s:s, s:s, s:i}", "endpoint_id", d->endpoint_id, "url", c->url,
                          "delivery_id", d->id, "failed_attempts", failed_before));
    }
    if (!r->disable_endpoint)
        return;
    memset(&ep, 0, sizeof(ep));
    if (store_endpoint_get(st, d->account_id, d->endpoint_id, &ep) == 0 &&
        ep.status == ENDPOINT_DISABLED && ep.disabled_at == now)
        opevents_disabled(st, &ep, 1);
    endpoint_cleanup(&ep);
}
