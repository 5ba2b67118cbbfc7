#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/envelope.h"
#include "events/events_int.h"
#include "util/buf.h"
#include "util/err.h"

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)
#define ENVELOPE_OVERHEAD 256 /* bytes the envelope adds around data, with room to spare */

/*
 * Parses s with jansson. An integer beyond 64 bits is valid JSON that jansson
 * refuses; then the text is parsed again with every integer as a real, and
 * *as_real says so (retype_integers() repairs the fields that matter).
 */
static json_t *
load(const char *s, size_t len, int *as_real, json_error_t *e)
{
    json_t *v;

    *as_real = 0;
    v = json_loadb(s, len, LOAD_FLAGS, e);
    if (v == NULL && json_error_code(e) == json_error_numeric_overflow) {
        *as_real = 1;
        v = json_loadb(s, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, e);
    }
    return v;
}

/*
 * A raw NUL byte is never valid JSON, but jansson 2.14 skips one that follows
 * a number ("[1\0,2]" loads); the envelope must not carry it. Returns its
 * offset, or -1 when there is none, and sets *line and *column (1-based).
 */
static long
nul_find(const char *s, size_t len, int *line, int *column)
{
    const char *nul = memchr(s, '\0', len);
    size_t i;

    if (nul == NULL)
        return -1;
    *line = 1;
    *column = 1;
    for (i = 0; s + i < nul; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
    return (long)(nul - s);
}

/* 1 when s[v] is a JSON number token without fraction or exponent. */
static int
integer_token(const char *s, struct rawjson_span v)
{
    size_t i = v.start;

    if (i < v.end && s[i] == '-')
        i++;
    if (i >= v.end)
        return 0;
    for (; i < v.end; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/*
 * The value of an integer token, clamped to the int64 range: the catalog's
 * bounds are all small, so a clamped value is in range exactly when the true
 * one is.
 */
static json_int_t
integer_clamped(const char *s, struct rawjson_span v)
{
    char tmp[32];
    size_t n = v.end - v.start;
    long long x;

    if (n >= sizeof(tmp))
        return s[v.start] == '-' ? INT64_MIN : INT64_MAX;
    memcpy(tmp, s + v.start, n);
    tmp[n] = '\0';
    errno = 0;
    x = strtoll(tmp, NULL, 10); /* saturates at the limits with ERANGE */
    return (json_int_t)x;
}

/* Puts back as integers the members of data (ctx) whose tokens are integers. */
static int
retype_member(const char *s, struct rawjson_span key, struct rawjson_span value, void *ctx)
{
    json_t *data = ctx, *k;
    int err = 0;

    if (!integer_token(s, value))
        return 0;
    k = rawjson_string_decode(s, key);
    if (k == NULL)
        return ERR_NOMEM;
    if (json_object_set_new(data, json_string_value(k), json_integer(integer_clamped(s, value))))
        err = ERR_NOMEM;
    json_decref(k);
    return err;
}

/*
 * After a parse with every integer as a real, makes the top-level members of
 * data (the only numbers the catalog looks at) integers again where the
 * producer wrote integers, so that 5 and 5.0 stay different.
 */
static int
retype_integers(const char *s, struct rawjson_span span, json_t *data)
{
    return rawjson_members(s, span, retype_member, data);
}

int
envelope_body_build(struct event *ev, const char *type, const char *ts, int64_t now_ms,
                    const char *s, struct rawjson_span data)
{
    static const char p_id[] = "{\"id\":\"", p_event[] = "\",\"event\":\"",
                      p_ts[] = "\",\"timestamp\":\"", p_data[] = "\",\"data\":";
    struct buf b;
    int err;

    buf_init(&b, (data.end - data.start) + ENVELOPE_OVERHEAD);
    err = id_new("evt_", ev->id);
    if (err != 0)
        goto out;
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    if (ts != NULL)
        snprintf(ev->timestamp, sizeof(ev->timestamp), "%s", ts);
    else
        clock_format_rfc3339_s(now_ms, ev->timestamp);
    ev->created_at = now_ms;
    /*
     * One allocation: the data only loses whitespace. id, type and timestamp
     * hold no character that JSON must escape.
     */
    err = buf_reserve(&b, b.max);
    if (err == 0)
        err = buf_append(&b, p_id, sizeof(p_id) - 1);
    if (err == 0)
        err = buf_puts(&b, ev->id);
    if (err == 0)
        err = buf_append(&b, p_event, sizeof(p_event) - 1);
    if (err == 0)
        err = buf_puts(&b, ev->type);
    if (err == 0)
        err = buf_append(&b, p_ts, sizeof(p_ts) - 1);
    if (err == 0)
        err = buf_puts(&b, ev->timestamp);
    if (err == 0)
        err = buf_append(&b, p_data, sizeof(p_data) - 1);
    if (err == 0)
        err = rawjson_compact(s, data, &b);
    if (err == 0)
        err = buf_putc(&b, '}');
    if (err != 0)
        goto out;
    ev->body_len = b.len;
    ev->body = buf_steal(&b);
out:
    buf_cleanup(&b);
    /* The scanner only sees text jansson accepted: a failure there is a bug. */
    return err == ERR_TOOBIG || err == ERR_PARSE ? ERR_INTERNAL : err;
}

/*
 * Checks one publish object, root, whose text is s[span], and builds ev from
 * it. *why gets a one-line reason on failure.
 */
static int
publish_build(const char *s, struct rawjson_span span, json_t *root, int as_real, int64_t now_ms,
              struct event *ev, struct schema_report *rep, const char **why)
{
    struct rawjson_span data_span = {0, 0};
    json_t *data, *ts;
    int rc;

    data = json_object_get(root, "data");
    if (json_is_object(data)) {
        rc = rawjson_member_find(s, span, "data", &data_span);
        if (rc == 0 && as_real)
            rc = retype_integers(s, data_span, data);
        if (rc != 0) {
            *why = "cannot read the data member";
            return rc == ERR_NOMEM ? ERR_NOMEM : ERR_INTERNAL;
        }
    }
    rc = schema_publish_check(root, rep);
    if (rc != 0) {
        *why = "the event breaks the catalog";
        return rc;
    }
    ts = json_object_get(root, "timestamp");
    rc = envelope_body_build(
        ev, catalog_type_find(json_string_value(json_object_get(root, "event")))->name,
        json_is_string(ts) ? json_string_value(ts) : NULL, now_ms, s, data_span);
    if (rc != 0)
        *why = err_str(rc);
    return rc;
}

/*
 * Loads a whole request body (*body, len bytes; NULL becomes "") that must be
 * a JSON object, after resetting rep and err: sets *root (a new reference)
 * and *as_real, or returns ERR_PARSE or ERR_VALIDATION (a duplicate key, in
 * rep) with a reason in err or *why.
 */
static int
body_load(const char **body, size_t len, json_t **root, int *as_real, struct schema_report *rep,
          char *err, size_t errlen, const char **why)
{
    char path[SCHEMA_PATH_MAX];
    const char *s;
    json_error_t je;
    int line, column;

    schema_report_init(rep);
    if (*body == NULL)
        *body = "";
    s = *body;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    *root = NULL;
    if (nul_find(s, len, &line, &column) >= 0) {
        if (err != NULL)
            snprintf(err, errlen, "malformed JSON at line %d column %d: NUL byte", line, column);
        return ERR_PARSE;
    }
    *root = load(s, len, as_real, &je);
    if (*root == NULL && json_error_code(&je) == json_error_duplicate_key) {
        if (rawjson_path_at(s, len, (size_t)je.position, path, sizeof(path)) != 0)
            snprintf(path, sizeof(path), "%s", "body");
        schema_report_add(rep, path, "duplicate key");
        *why = "a key appears twice in one object";
        return ERR_VALIDATION;
    }
    if (*root == NULL && json_error_code(&je) == json_error_out_of_memory) {
        /* Not the client's fault: no "malformed JSON" for it. */
        *why = "out of memory reading the body";
        return ERR_NOMEM;
    }
    if (*root == NULL && len == 0) {
        *why = "request body is empty; expected a JSON object";
        return ERR_PARSE;
    }
    if (*root == NULL) {
        if (err != NULL)
            snprintf(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
        return ERR_PARSE;
    }
    if (!json_is_object(*root)) {
        *why = "request body must be a JSON object";
        return ERR_PARSE;
    }
    return 0;
}

int
envelope_parse_publish(const char *body, size_t len, int64_t now_ms, struct event *ev,
                       struct schema_report *rep, char *err, size_t errlen)
{
    int rc;

    /* The usual body needs no jansson; anything else is judged below. */
    rc = quick_publish(body != NULL ? body : "", len, now_ms, ev);
    if (rc != ERR_PARSE) {
        schema_report_init(rep);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", rc == 0 ? "" : err_str(rc));
        return rc;
    }
    return envelope_publish_jansson(body, len, now_ms, ev, rep, err, errlen);
}

int
envelope_publish_jansson(const char *body, size_t len, int64_t now_ms, struct event *ev,
                         struct schema_report *rep, char *err, size_t errlen)
{
    struct rawjson_span whole = {0, len};
    json_t *root = NULL;
    const char *why = NULL;
    int rc, as_real;

    rc = body_load(&body, len, &root, &as_real, rep, err, errlen, &why);
    if (rc == 0)
        rc = publish_build(body, whole, root, as_real, now_ms, ev, rep, &why);
    if (why != NULL && err != NULL)
        snprintf(err, errlen, "%s", why);
    json_decref(root);
    return rc;
}

/* The walk over a batch's events: the parsed array beside the raw text. */
struct batch_walk {
    json_t *events;
    int as_real;
    int64_t now_ms;
    size_t i;
    struct schema_report *rep;
    envelope_item_fn *fn;
    void *ctx;
};

/*
 * Takes the item's idempotency_key out of item (schema_publish_check()
 * knows only the members of a single publish) into ev. Returns 0 or
 * ERR_VALIDATION (in rep).
 */
static int
item_key_take(json_t *item, struct event *ev, struct schema_report *rep)
{
    json_t *key = json_object_get(item, "idempotency_key");
    size_t n;

    if (key == NULL || json_is_null(key)) {
        json_object_del(item, "idempotency_key");
        return 0;
    }
    n = json_is_string(key) ? json_string_length(key) : 0;
    if (n == 0 || n >= sizeof(ev->idempotency_key) ||
        strlen(json_string_value(key)) != n) {
        schema_report_add(rep, "idempotency_key", "must be a string of 1 to %zu characters",
                          sizeof(ev->idempotency_key) - 1);
        return ERR_VALIDATION;
    }
    memcpy(ev->idempotency_key, json_string_value(key), n + 1);
    json_object_del(item, "idempotency_key");
    return 0;
}

/* rawjson_element_fn over the events array: builds and hands out one event. */
static int
batch_item(const char *s, struct rawjson_span span, void *ctx)
{
    struct batch_walk *w = ctx;
    json_t *item = json_array_get(w->events, w->i);
    const char *why = NULL;
    struct event ev;
    int rc;

    memset(&ev, 0, sizeof(ev));
    schema_report_init(w->rep);
    if (!json_is_object(item)) {
        why = "an event must be a JSON object";
        rc = ERR_INVAL;
    } else {
        rc = item_key_take(item, &ev, w->rep);
        if (rc != 0)
            why = "the event breaks the catalog";
        else
            rc = publish_build(s, span, item, w->as_real, w->now_ms, &ev, w->rep, &why);
    }
    if (rc == ERR_NOMEM || rc == ERR_INTERNAL) {
        event_cleanup(&ev);
        return rc;
    }
    rc = w->fn(w->ctx, w->i++, rc == 0 ? &ev : NULL, rc, w->rep, why);
    event_cleanup(&ev);
    return rc;
}

int
envelope_parse_batch(const char *body, size_t len, size_t max, int64_t now_ms,
                     envelope_item_fn *fn, void *ctx, struct schema_report *rep, char *err,
                     size_t errlen)
{
    if (body == NULL)
        body = "";
    /* A batch of usual items needs no jansson; any other is judged below, as a whole. */
    if (quick_batch_check(body, len, max) == 0) {
        schema_report_init(rep);
        if (err != NULL && errlen > 0)
            err[0] = '\0';
        return quick_batch(body, len, max, now_ms, fn, ctx, rep);
    }
    return envelope_batch_jansson(body, len, max, now_ms, fn, ctx, rep, err, errlen);
}

int
envelope_batch_jansson(const char *body, size_t len, size_t max, int64_t now_ms,
                       envelope_item_fn *fn, void *ctx, struct schema_report *rep, char *err,
                       size_t errlen)
{
    struct rawjson_span whole = {0, len}, span;
    struct batch_walk w;
    json_t *root = NULL, *events;
    const char *why = NULL, *key;
    json_t *v;
    int rc, as_real;

    memset(&w, 0, sizeof(w));
    rc = body_load(&body, len, &root, &as_real, rep, err, errlen, &why);
    if (rc != 0)
        goto out;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "events") != 0)
            schema_report_add(rep, key, "unknown field; expected events");
    }
    events = json_object_get(root, "events");
    if (!json_is_array(events) || json_array_size(events) == 0 ||
        json_array_size(events) > max)
        schema_report_add(rep, "events", "must be an array of 1 to %zu events", max);
    if (rep->n > 0) {
        why = "the batch is not {\"events\": [...]}";
        rc = ERR_VALIDATION;
        goto out;
    }
    rc = rawjson_member_find(body, whole, "events", &span);
    if (rc != 0) {
        rc = rc == ERR_NOMEM ? ERR_NOMEM : ERR_INTERNAL;
        why = "cannot read the events member";
        goto out;
    }
    w.rep = malloc(sizeof(*w.rep));
    if (w.rep == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    w.events = events;
    w.as_real = as_real;
    w.now_ms = now_ms;
    w.fn = fn;
    w.ctx = ctx;
    rc = rawjson_elements(body, span, batch_item, &w);
    if (rc == 0 && w.i != json_array_size(events))
        rc = ERR_PARSE; /* the scanner disagreed with jansson */
    if (rc == ERR_PARSE) {
        rc = ERR_INTERNAL;
        why = "cannot read the events array";
    }
out:
    if (why != NULL && err != NULL)
        snprintf(err, errlen, "%s", why);
    free(w.rep);
    json_decref(root);
    return rc;
}

int
envelope_build(const char *type, const char *data_json, size_t data_len,
               const char *timestamp_or_null, int64_t now_ms, struct event *ev)
{
    const struct catalog_type *t;
    struct schema_report *rep = NULL;
    struct rawjson_span span;
    json_t *data = NULL;
    json_error_t je;
    int rc, as_real, line, column;

    t = catalog_any_find(type);
    if (t == NULL) {
        rc = ERR_INVAL;
        goto out;
    }
    if (data_json == NULL) {
        data_json = t->sample;
        data_len = strlen(t->sample);
    }
    if (timestamp_or_null != NULL && !schema_timestamp_ok(timestamp_or_null, NULL)) {
        rc = ERR_INVAL;
        goto out;
    }
    span.start = 0;
    span.end = data_len;
    if (nul_find(data_json, data_len, &line, &column) >= 0) {
        rc = ERR_INVAL;
        goto out;
    }
    data = load(data_json, data_len, &as_real, &je);
    if (!json_is_object(data)) {
        rc = ERR_INVAL;
        goto out;
    }
    rc = as_real ? retype_integers(data_json, span, data) : 0;
    if (rc != 0) {
        rc = rc == ERR_NOMEM ? ERR_NOMEM : ERR_INTERNAL;
        goto out;
    }
    rep = malloc(sizeof(*rep));
    if (rep == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    schema_report_init(rep);
    rc = schema_data_check(t, data, "data", rep);
    if (rc != 0)
        goto out;
    rc = envelope_body_build(ev, t->name, timestamp_or_null, now_ms, data_json, span);
out:
    free(rep);
    json_decref(data);
    return rc;
}

const char *
envelope_data(const char *body, size_t len, size_t *data_len)
{
    static const char mark[] = "\",\"data\":";
    const char *p;

    /* id, event and timestamp hold no quote, so the first mark is the one. */
    if (body == NULL || len < sizeof(mark) + 1 || body[len - 1] != '}' ||
        strncmp(body, "{\"id\":\"", 7) != 0)
        return NULL;
    p = memmem(body, len, mark, sizeof(mark) - 1);
    if (p == NULL)
        return NULL;
    p += sizeof(mark) - 1;
    if (p >= body + len - 1)
        return NULL;
    *data_len = (size_t)(body + len - 1 - p);
    return p;
}
