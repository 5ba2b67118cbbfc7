/*
 * The event envelope (CONTRACT §2): the exact bytes every endpoint receives,
 *
 *   {"id":"evt_…","event":"<type>","timestamp":"<RFC 3339>","data":<data>}
 *
 * compact, members in that order, where <data> is the producer's own bytes of
 * the data value with only the whitespace between tokens removed: numbers,
 * string escapes, raw UTF-8 and key order stay exactly as sent (0.95 stays
 * 0.95, 1e3 stays 1e3, -0 stays -0, 12345678901234567890 stays as is).
 * The envelope is built once, at publish, and never re-serialized.
 */
#ifndef FLUXHOOK_EVENTS_ENVELOPE_H
#define FLUXHOOK_EVENTS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "events/event.h"
#include "events/schema.h"

/*
 * Parses a POST /v1/events body (len bytes, need not be NUL-terminated):
 * a JSON object {"event": type, "data": object, "timestamp"?: string or null}
 * checked against the catalog with schema_publish_check().
 *
 * On success fills ev->id (a new "evt_" id), ev->type, ev->timestamp (the
 * producer's, as sent, or now_ms formatted as "2024-01-01T12:00:00Z" when it
 * sent none or null), ev->created_at (now_ms) and ev->body/ev->body_len (the
 * envelope, owned by ev: free with event_cleanup()); other members of ev are
 * left alone, and ev->body must be NULL on entry.
 *
 * Returns:
 *   0               done
 *   ERR_PARSE       not JSON, or JSON that is not an object (also a number
 *                   too large for a double, or a key holding \u0000); err
 *                   gets "malformed JSON at line L column C: <why>" or
 *                   "request body must be a JSON object"
 *   ERR_VALIDATION  rep holds every problem (path + text); also for a key
 *                   repeated in one object ("duplicate key" at its path)
 *   ERR_NOMEM
 *   ERR_INTERNAL    a bug: the raw scanner disagreed with jansson
 * err (errlen bytes, may be NULL) gets a one-line reason on any failure.
 * rep is always reset first.
 */
int envelope_parse_publish(const char *body, size_t len, int64_t now_ms, struct event *ev,
                           struct schema_report *rep, char *err, size_t errlen);

/*
 * Called once per item of a batch, in order, with its index i: on success
 * ev is the event (its body is the callee's to take: copy *ev and clear
 * ev->body), else ev is NULL and err says why: ERR_VALIDATION (rep holds
 * every problem, paths relative to the item) or ERR_INVAL (not an object),
 * with a one-line reason in why. A non-zero return stops the walk and is
 * returned by envelope_parse_batch().
 */
typedef int envelope_item_fn(void *ctx, size_t i, struct event *ev, int err,
                             const struct schema_report *rep, const char *why);

/*
 * Parses a POST /v1/events/batch body (len bytes), {"events": [item, ...]}
 * with 1 to max items, each a publish object as above that may also hold
 * "idempotency_key" (a string of 1 to EVENT_IDEMPOTENCY_MAX - 1 bytes, set
 * in ev->idempotency_key). The body is parsed once; each item is checked on
 * its own and handed to fn, in order.
 *
 * Returns 0 when every item went to fn; for the body as a whole ERR_PARSE
 * (err says why), ERR_VALIDATION (rep: a duplicate key, an unknown member,
 * events missing, empty or longer than max), ERR_NOMEM, ERR_INTERNAL, or
 * what fn returned.
 */
int envelope_parse_batch(const char *body, size_t len, size_t max, int64_t now_ms,
                         envelope_item_fn *fn, void *ctx, struct schema_report *rep, char *err,
                         size_t errlen);

/*
 * Builds the envelope of a test event (POST /v1/endpoints/{id}/test) the same
 * way: type must be in the catalog (or one of fluxhook's own types); data_json
 * (data_len bytes) must be a JSON
 * object that passes the catalog, or NULL for the type's catalog sample;
 * timestamp_or_null must pass schema_timestamp_ok() or be NULL for now_ms.
 * Fills ev like envelope_parse_publish(). Returns 0, ERR_INVAL (unknown
 * type, data not a JSON object, bad timestamp), ERR_VALIDATION (data breaks
 * the catalog), ERR_NOMEM or ERR_INTERNAL.
 */
int envelope_build(const char *type, const char *data_json, size_t data_len,
                   const char *timestamp_or_null, int64_t now_ms, struct event *ev);

/*
 * The data bytes inside an envelope built here (body, len bytes): sets
 * *data_len and returns a pointer into body, so that readers can show data
 * exactly as delivered without re-serializing it. Returns NULL when body does
 * not have the envelope's shape.
 */
const char *envelope_data(const char *body, size_t len, size_t *data_len);

#endif
