/*
 * The API's JSON objects, with the field names of CONTRACT §4. Times are
 * RFC 3339 UTC with milliseconds, or null for none.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/clock.h"

json_t *
api_time_json(int64_t ms)
{
    char s[CLOCK_RFC3339_MAX];

    if (ms == 0)
        return json_null();
    clock_format_rfc3339(ms, s);
    return json_string(s);
}

static json_t *
str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when invalid. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    size_t len, i;
    unsigned int cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string of the bytes, each invalid UTF-8 byte replaced with U+FFFD. */
static json_t *
bytes_string(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    struct buf b;
    json_t *s = NULL;
    size_t i = 0, k;

    buf_init(&b, len * 3 + 16);
    while (i < len) {
        k = utf8_seq(p + i, len - i);
        if (k == 0) {
            if (buf_append(&b, "\xef\xbf\xbd", 3) != 0)
                goto out;
            i++;
            continue;
        }
        if (buf_append(&b, p + i, k) != 0)
            goto out;
        i += k;
    }
    s = json_stringn(buf_cstr(&b), b.len);
out:
    buf_cleanup(&b);
    return s;
}

/* Splits "a,b" into ["a","b"]; "" gives []. */
static json_t *
types_array(const char *list)
{
    json_t *arr = json_array();
    const char *p = list, *comma;
    size_t n;

    if (arr == NULL || list == NULL)
        return arr;
    while (*p != '\0') {
        comma = strchr(p, ',');
        n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n > 0 && json_array_append_new(arr, json_stringn(p, n)) != 0) {
            json_decref(arr);
            return NULL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return arr;
}

json_t *
api_endpoint_json(const struct endpoint *ep, int with_secret)
{
    json_t *o;

    o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_string(ep->id));
    json_object_set_new(o, "url", str_or_null(ep->url));
    json_object_set_new(o, "description",
                        json_string(ep->description != NULL ? ep->description : ""));
    if (json_object_set_new(o, "event_types", types_array(ep->event_types)) != 0) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "status", json_string(endpoint_status_name(ep->status)));
    json_object_set_new(o, "disabled_reason", str_or_null(ep->disabled_reason));
    json_object_set_new(o, "disabled_at", api_time_json(ep->disabled_at));
    json_object_set_new(o, "held", json_integer(ep->held));
    json_object_set_new(o, "created_at", api_time_json(ep->created_at));
    json_object_set_new(o, "updated_at", api_time_json(ep->updated_at));
    if (with_secret)
        json_object_set_new(o, "secret", str_or_null(ep->secret));
    return o;
}

json_t *
api_json_raw_object(const char *text, size_t len)
{
    json_t *o = json_object();

    if (o != NULL && json_object_set_new(o, API_RAW_MEMBER, json_stringn(text, len)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* 1 when the envelope text is one JSON object: "{" ... "}" around what the store kept. */
static int
envelope_usable(const struct event *ev)
{
    size_t n = ev->body_len;

    if (ev->body == NULL || n < 2 || ev->body[0] != '{')
        return 0;
    while (n > 0 && (ev->body[n - 1] == '\n' || ev->body[n - 1] == ' '))
        n--;
    return n > 1 && ev->body[n - 1] == '}';
}

json_t *
api_event_json(const struct event *ev)
{
    json_t *o, *env = NULL, *data = NULL;

    /* The envelope as stored and delivered: id, event, timestamp and data, byte for byte. */
    if (envelope_usable(ev)) {
        o = api_json_raw_object(ev->body, ev->body_len);
        if (o != NULL)
            json_object_set_new(o, "created_at", api_time_json(ev->created_at));
        return o;
    }
    o = json_object();
    if (o == NULL)
        return NULL;
    if (ev->body != NULL)
        env = json_loadb(ev->body, ev->body_len, 0, NULL);
    if (env != NULL)
        data = json_object_get(env, "data");
    json_object_set_new(o, "id", json_string(ev->id));
    json_object_set_new(o, "event", json_string(ev->type));
    json_object_set_new(o, "timestamp", json_string(ev->timestamp));
    json_object_set(o, "data", data != NULL ? data : json_null());
    json_object_set_new(o, "created_at", api_time_json(ev->created_at));
    json_decref(env);
    return o;
}

json_t *
api_attempt_json(const struct attempt *a)
{
    json_t *o;

    o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "n", json_integer(a->n));
    json_object_set_new(o, "at", api_time_json(a->at));
    json_object_set_new(o, "status_code",
                        a->status_code != 0 ? json_integer(a->status_code) : json_null());
    json_object_set_new(o, "error", str_or_null(a->error));
    /* CONTRACT §6: absent when an answer came. */
    if (attempt_error_class_name(a->error_class) != NULL)
        json_object_set_new(o, "error_class",
                            json_string(attempt_error_class_name(a->error_class)));
    json_object_set_new(o, "duration_ms", json_integer(a->duration_ms));
    json_object_set_new(o, "response_body",
                        a->response_body != NULL ? bytes_string(a->response_body, a->response_len)
                                                 : json_null());
    return o;
}

json_t *
api_delivery_json(const struct delivery *d, const struct attempt *as, size_t nattempts,
                  int with_attempts)
{
    json_t *o, *arr;
    size_t i;

    o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "event_id", json_string(d->event_id));
    json_object_set_new(o, "endpoint_id", json_string(d->endpoint_id));
    json_object_set_new(o, "event", json_string(d->event_type));
    json_object_set_new(o, "status", json_string(delivery_status_name(d->status)));
    json_object_set_new(o, "attempts_made", json_integer(d->attempts_made));
    json_object_set_new(o, "next_attempt_at",
                        d->status == DELIVERY_PENDING ? api_time_json(d->next_attempt_at)
                                                      : json_null());
    json_object_set_new(o, "last_status_code",
                        d->last_status_code != 0 ? json_integer(d->last_status_code) : json_null());
    json_object_set_new(o, "last_error", str_or_null(d->last_error));
    json_object_set_new(o, "created_at", api_time_json(d->created_at));
    json_object_set_new(o, "updated_at", api_time_json(d->updated_at));
    if (with_attempts) {
        arr = json_array();
        for (i = 0; arr != NULL && i < nattempts; i++) {
            if (json_array_append_new(arr, api_attempt_json(&as[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        /* An attempt left out would misreport the delivery: no object rather than that. */
        if (json_object_set_new(o, "attempts", arr) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *
api_account_json(const struct account *a)
{
    return json_pack("{s:s, s:o, s:o}", "id", a->id, "name", str_or_null(a->name), "created_at",
                     api_time_json(a->created_at));
}

json_t *
api_key_json(const struct api_key *k, const char *secret)
{
    json_t *o;

    o = json_pack(
        "{s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o}", "id", k->id, "account_id", k->account_id,
        "name", str_or_null(k->name), "admin", (api_key_scopes(k) & SCOPE_ADMIN) ? 1 : 0,
        "created_at", api_time_json(k->created_at), "scopes", api_scopes_json(api_key_scopes(k)),
        "expires_at", api_time_json(k->expires_at), "last_used_at", api_time_json(k->last_used_at));
    if (o == NULL)
        return NULL;
    if (k->prev_until != 0)
        json_object_set_new(o, "previous_secret_expires_at", api_time_json(k->prev_until));
    if (k->kind == CRED_CLIENT) {
        json_object_del(o, "admin");
        json_object_set_new(o, "client_id", json_string(k->id));
    }
    if (secret != NULL)
        json_object_set_new(o, k->kind == CRED_CLIENT ? "client_secret" : "secret",
                            json_string(secret));
    return o;
}
