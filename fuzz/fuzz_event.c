/*
 * libFuzzer target for the publish body parser (envelope_parse_publish).
 * Invariants checked on every input:
 *   - it never answers ERR_INTERNAL (the raw scanner agrees with jansson);
 *   - on success the envelope starts with {"id":"evt_, is JSON with exactly
 *     id, event, timestamp and data, matches ev, and its data equals the
 *     input's data under jansson;
 *   - publishing the envelope's own data again gives the same data bytes;
 *   - on a validation failure every path and problem is valid UTF-8;
 *   - the quick path (quick_publish) takes a body only when the jansson path
 *     takes it too, and then builds the same envelope but for the id;
 *   - read as a batch, a body the quick batch path takes gives the same items
 *     through both paths.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/envelope.h"
#include "events/events_int.h"
#include "events/schema.h"
#include "util/buf.h"
#include "util/err.h"

#define NOW 1704110400000LL
#define FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
    if (!ok)
        abort();
}

/* Parses both texts with the same flags: integers as reals if either needs it. */
static void
load_pair(const char *a, size_t alen, const char *b, size_t blen, json_t **ja, json_t **jb)
{
    *ja = json_loadb(a, alen, FLAGS, NULL);
    *jb = json_loadb(b, blen, FLAGS, NULL);
    if (*ja == NULL || *jb == NULL) {
        json_decref(*ja);
        json_decref(*jb);
        *ja = json_loadb(a, alen, FLAGS | JSON_DECODE_INT_AS_REAL, NULL);
        *jb = json_loadb(b, blen, FLAGS | JSON_DECODE_INT_AS_REAL, NULL);
    }
    check(*ja != NULL && *jb != NULL);
}

/* The data bytes of an envelope: after "data": up to the final }. */
static const char *
data_of(const struct event *ev, size_t *len)
{
    const char *p = strstr(ev->body, "\",\"data\":");

    check(p != NULL);
    p += strlen("\",\"data\":");
    *len = (size_t)(ev->body + ev->body_len - 1 - p);
    return p;
}

static void
check_success(const char *in, size_t size, const struct event *ev)
{
    static struct schema_report rep2;
    json_t *env, *src;
    struct event again;
    const char *d, *d2;
    size_t dlen, d2len, n;
    char *body2;

    check(ev->body != NULL && strlen(ev->body) == ev->body_len);
    check(strncmp(ev->body, "{\"id\":\"evt_", 11) == 0);
    check(ev->body[ev->body_len - 1] == '}');
    check(schema_timestamp_ok(ev->timestamp, NULL));
    check(ev->created_at == NOW);

    load_pair(ev->body, ev->body_len, in, size, &env, &src);
    check(json_object_size(env) == 4);
    check(strcmp(json_string_value(json_object_get(env, "id")), ev->id) == 0);
    check(strcmp(json_string_value(json_object_get(env, "event")), ev->type) == 0);
    check(strcmp(json_string_value(json_object_get(env, "timestamp")), ev->timestamp) == 0);
    check(json_equal(json_object_get(env, "data"), json_object_get(src, "data")));
    json_decref(env);
    json_decref(src);

    /* Compaction is idempotent: the envelope's data, published again, comes back the same. */
    d = data_of(ev, &dlen);
    check(envelope_data(ev->body, ev->body_len, &n) == d && n == dlen);
    n = dlen + 128;
    body2 = malloc(n);
    check(body2 != NULL);
    memcpy(body2, "{\"event\":\"", 10);
    n = 10;
    memcpy(body2 + n, ev->type, strlen(ev->type));
    n += strlen(ev->type);
    memcpy(body2 + n, "\",\"data\":", 9);
    n += 9;
    memcpy(body2 + n, d, dlen);
    n += dlen;
    body2[n++] = '}';
    memset(&again, 0, sizeof(again));
    check(envelope_parse_publish(body2, n, NOW, &again, &rep2, NULL, 0) == 0);
    d2 = data_of(&again, &d2len);
    check(d2len == dlen && memcmp(d, d2, dlen) == 0);
    event_cleanup(&again);
    free(body2);
}

/* The quick path agrees with the jansson path wherever it takes a body. */
static void
check_quick(const char *in, size_t size)
{
    static struct schema_report rep;
    struct event q, j;
    size_t idlen;

    memset(&q, 0, sizeof(q));
    memset(&j, 0, sizeof(j));
    if (quick_publish(in, size, NOW, &q) == 0) {
        check(envelope_publish_jansson(in, size, NOW, &j, &rep, NULL, 0) == 0);
        idlen = strlen(q.id);
        check(strlen(j.id) == idlen && q.body_len == j.body_len);
        check(strcmp(q.type, j.type) == 0 && strcmp(q.timestamp, j.timestamp) == 0);
        check(memcmp(q.body, j.body, 7) == 0);
        check(strcmp(q.body + 7 + idlen, j.body + 7 + idlen) == 0);
    } else {
        check(q.body == NULL);
    }
    event_cleanup(&q);
    event_cleanup(&j);
}

/* envelope_item_fn: each item as one line of a transcript (the struct buf in ctx), id left out. */
static int
transcript_item(void *ctx, size_t i, struct event *ev, int err, const struct schema_report *rep,
                const char *why)
{
    struct buf *t = ctx;

    (void)rep;
    (void)why;
    check(ev != NULL && err == 0);
    check(buf_printf(t, "%zu|%s|%s|%s|%s\n", i, ev->type, ev->timestamp, ev->idempotency_key,
                     ev->body + 7 + strlen(ev->id)) == 0);
    return 0;
}

/* The same body as a batch of at most 8: where the quick path takes it, both paths agree. */
static void
check_quick_batch(const char *in, size_t size)
{
    static struct schema_report rep;
    struct buf q, j;

    if (quick_batch_check(in, size, 8) != 0)
        return;
    buf_init(&q, 1 << 24);
    buf_init(&j, 1 << 24);
    check(quick_batch(in, size, 8, NOW, transcript_item, &q, &rep) == 0);
    check(envelope_batch_jansson(in, size, 8, NOW, transcript_item, &j, &rep, NULL, 0) == 0);
    check(q.len == j.len && q.len > 0 && memcmp(q.data, j.data, q.len) == 0);
    buf_cleanup(&q);
    buf_cleanup(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct schema_report rep;
    struct event ev;
    char err[256];
    json_t *s;
    int rc, i;

    memset(&ev, 0, sizeof(ev));
    rc = envelope_parse_publish((const char *)data, size, NOW, &ev, &rep, err, sizeof(err));
    switch (rc) {
    case 0:
        check_success((const char *)data, size, &ev);
        break;
    case ERR_VALIDATION:
        check(rep.n >= 1 && rep.n <= SCHEMA_MAX_PROBLEMS);
        for (i = 0; i < rep.n; i++) {
            s = json_string(rep.items[i].path);
            check(s != NULL);
            json_decref(s);
            s = json_string(rep.items[i].problem);
            check(s != NULL);
            json_decref(s);
        }
        /* FALLTHROUGH */
    case ERR_PARSE:
        check(ev.body == NULL);
        check(err[0] != '\0');
        break;
    case ERR_NOMEM:
        break;
    default:
        abort();
    }
    event_cleanup(&ev);
    check_quick((const char *)data, size);
    check_quick_batch((const char *)data, size);
    return 0;
}
