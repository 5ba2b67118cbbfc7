/*
 * Helpers shared inside src/events: a small scanner over JSON text that
 * jansson has already accepted. It finds the raw bytes of values, so the
 * envelope can carry the producer's own tokens (0.95 stays 0.95). Every
 * function checks its bounds and returns ERR_PARSE, never reads past len,
 * if the text turns out not to be valid JSON after all.
 */
#ifndef FLUXHOOK_EVENTS_EVENTS_INT_H
#define FLUXHOOK_EVENTS_EVENTS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "events/envelope.h"
#include "events/event.h"
#include "events/schema.h"
#include "util/buf.h"

/* A byte range [start, end) of some text. */
struct rawjson_span {
    size_t start;
    size_t end;
};

/* Called once per member of an object: key and value are spans of the text. */
typedef int rawjson_member_fn(const char *s, struct rawjson_span key, struct rawjson_span value,
                              void *ctx);

/*
 * Calls fn for each member of the object that starts at s[obj.start] (after
 * optional whitespace) in document order; stops at the first non-zero return
 * and returns it. Returns 0 or ERR_PARSE.
 */
int rawjson_members(const char *s, struct rawjson_span obj, rawjson_member_fn *fn, void *ctx);

/* Called once per element of an array: value is a span of the text. */
typedef int rawjson_element_fn(const char *s, struct rawjson_span value, void *ctx);

/*
 * Calls fn for each element of the array that starts at s[arr.start] (after
 * optional whitespace), in order; stops at the first non-zero return and
 * returns it. Returns 0 or ERR_PARSE.
 */
int rawjson_elements(const char *s, struct rawjson_span arr, rawjson_element_fn *fn, void *ctx);

/*
 * The decoded text of the JSON string token s[key] as a new jansson string,
 * or NULL (invalid token or out of memory).
 */
json_t *rawjson_string_decode(const char *s, struct rawjson_span key);

/* 1 when the JSON string token s[key] decodes to exactly name, else 0. */
int rawjson_string_equals(const char *s, struct rawjson_span key, const char *name);

/*
 * Finds the member called name in the object at s[obj] and sets *value to
 * the span of its value (no surrounding whitespace). Returns 0, ERR_NOTFOUND
 * or ERR_PARSE. With duplicate keys, the first wins.
 */
int rawjson_member_find(const char *s, struct rawjson_span obj, const char *name,
                        struct rawjson_span *value);

/*
 * Appends s[v] to out without the whitespace between tokens: bytes inside
 * strings are copied untouched. Returns 0, ERR_PARSE, ERR_TOOBIG or ERR_NOMEM.
 */
int rawjson_compact(const char *s, struct rawjson_span v, struct buf *out);

/*
 * Writes the path ("data.meta.x", "data.items[2].k") of the object key whose
 * token ends at byte pos of the document s[0, len) to out. Used to name the
 * key that jansson reports as duplicate. Returns 0, ERR_NOTFOUND or ERR_PARSE.
 */
int rawjson_path_at(const char *s, size_t len, size_t pos, char *out, size_t outlen);

/*
 * Copies src to out (size outlen) like snprintf("%s"), but cuts only at a
 * UTF-8 character boundary so a truncated copy stays valid UTF-8. Stops at a
 * NUL in src. Returns the bytes written without the NUL.
 */
size_t rawjson_utf8_copy(char *out, size_t outlen, const char *src, size_t srclen);

/*
 * Fills ev's id (a new "evt_" id), type, timestamp (ts, or now_ms formatted
 * when ts is NULL), created_at and body: the envelope around the data token
 * s[data], compacted. Returns 0, ERR_NOMEM or ERR_INTERNAL (envelope.c).
 */
int envelope_body_build(struct event *ev, const char *type, const char *ts, int64_t now_ms,
                        const char *s, struct rawjson_span data);

/*
 * envelope_parse_publish() without the quick path: jansson parses, the
 * catalog judges, every problem is reported (envelope.c).
 */
int envelope_publish_jansson(const char *body, size_t len, int64_t now_ms, struct event *ev,
                             struct schema_report *rep, char *err, size_t errlen);

/*
 * The quick path of a publish (quick.c): when s (len bytes) is a JSON object
 * that jansson accepts with the publish's flags and that passes the catalog,
 * and has nothing the quick path leaves to jansson, builds ev like
 * envelope_parse_publish() and returns 0 (or ERR_NOMEM, ERR_INTERNAL).
 * Returns ERR_PARSE, touching nothing, for every other text: the jansson
 * path then decides.
 */
int quick_publish(const char *s, size_t len, int64_t now_ms, struct event *ev);

/*
 * The quick path of a batch (quick.c): 0 when s (len bytes) is
 * {"events": [...]} with nothing else, 1 to max items, each of which
 * quick_publish() would take (idempotency_key allowed, a plain string of 1
 * to EVENT_IDEMPOTENCY_MAX - 1 bytes or null); ERR_PARSE for anything else,
 * which the jansson path then judges as a whole.
 */
int quick_batch_check(const char *s, size_t len, size_t max);

/*
 * After quick_batch_check() said 0 on the same text: builds each item and
 * hands it to fn as envelope_parse_batch() does (rep reset for each).
 * Returns 0, what fn returned, ERR_NOMEM or ERR_INTERNAL.
 */
int quick_batch(const char *s, size_t len, size_t max, int64_t now_ms, envelope_item_fn *fn,
                void *ctx, struct schema_report *rep);

/*
 * envelope_parse_batch() without the quick path: jansson parses the whole
 * body, each item is judged and reported on its own (envelope.c).
 */
int envelope_batch_jansson(const char *body, size_t len, size_t max, int64_t now_ms,
                           envelope_item_fn *fn, void *ctx, struct schema_report *rep, char *err,
                           size_t errlen);

#endif
