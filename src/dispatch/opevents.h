/*
 * Operational events: fluxhook's own event types (endpoint.disabled,
 * endpoint.enabled, delivery.failed, endpoint.recovered) about an account's
 * customer endpoints, published through the normal publish path (durable,
 * fanned out by the store to the account's operational endpoints only) and
 * delivered by the dispatcher like any other event. Nothing here is
 * published about an operational endpoint, so their own failures never make
 * more events.
 */
#ifndef FLUXHOOK_DISPATCH_OPEVENTS_H
#define FLUXHOOK_DISPATCH_OPEVENTS_H

#include <stdint.h>

#include "store/store.h"

/* The audit log's actor of the changes the dispatcher makes (disabling an endpoint). */
#define OPEVENTS_ACTOR "dispatcher"

/*
 * endpoint.disabled about ep (as read after the change: reason and held
 * count), and, when by_dispatcher, the audit entry of the disable with
 * actor OPEVENTS_ACTOR. Returns 0 or an ERR_* (logged).
 */
int opevents_disabled(struct store *st, const struct endpoint *ep, int by_dispatcher);

/* endpoint.enabled about ep: resumed held deliveries, or skipped them. */
int opevents_enabled(struct store *st, const struct endpoint *ep, int64_t count, int skipped);

/*
 * What one recorded result of claim c tells the operational endpoints:
 * delivery.failed when it ended failed, endpoint.recovered when it was
 * delivered after failed attempts of its round, and endpoint.disabled when
 * this result disabled the endpoint (its disabled_at is now, the time the
 * result was recorded at).
 */
void opevents_after_result(struct store *st, const struct claim *c, const struct attempt_result *r,
                           int64_t now);

#endif
