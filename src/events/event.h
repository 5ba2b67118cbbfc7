/*
 * The event model: one published event, with the exact bytes of its envelope
 * as stored and as sent to every endpoint on every attempt.
 */
#ifndef FLUXHOOK_EVENTS_EVENT_H
#define FLUXHOOK_EVENTS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/clock.h"
#include "util/id.h"

#define EVENT_TYPE_MAX 64       /* longest event type name with its NUL */
#define EVENT_IDEMPOTENCY_MAX 256 /* longest Idempotency-Key accepted, with its NUL */

struct event {
    char id[ID_MAX];                      /* "evt_..." */
    char account_id[ID_MAX];              /* owner */
    char type[EVENT_TYPE_MAX];            /* "conversation.started" */
    char timestamp[CLOCK_RFC3339_MAX];    /* RFC 3339 UTC, as in the envelope */
    char *body;                           /* the envelope, owned; NUL-terminated */
    size_t body_len;                      /* bytes of body without the NUL */
    char idempotency_key[EVENT_IDEMPOTENCY_MAX]; /* "" when none */
    int64_t created_at;                   /* ms since the epoch, when accepted */
    int deliveries;                       /* how many endpoints it fanned out to */
};

/* Frees what ev owns and zeroes it; NULL is a no-op. */
void event_cleanup(struct event *ev);

#endif
