/*
 * Answers: JSON bodies, raw bodies and errors. The one table below maps
 * every ERR_* to its HTTP status and error type, so handlers never pick
 * statuses for errors themselves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/err.h"
#include "util/log.h"

struct err_http {
    int err;
    int status;
    const char *type;
};

static const struct err_http err_table[] = {
    {ERR_PARSE, 400, "invalid_request"},
    {ERR_INVAL, 400, "invalid_request"},
    {ERR_AUTH, 401, "unauthorized"},
    {ERR_FORBIDDEN, 403, "forbidden"},
    {ERR_NOTFOUND, 404, "not_found"},
    {ERR_CONFLICT, 409, "conflict"},
    {ERR_TOOBIG, 413, "payload_too_large"},
    {ERR_MEDIA, 415, "unsupported_media_type"},
    {ERR_VALIDATION, 422, "validation_failed"},
    {ERR_RATE, 429, "rate_limited"},
    {ERR_SHUTDOWN, 503, "unavailable"},
    {ERR_UNAVAILABLE, 503, "unavailable"},
};


int
api_err_status(int err)
{
    size_t i;

    for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        if (err_table[i].err == err)
            return err_table[i].status;
    }
    return 500;
}

const char *
api_err_type(int err)
{
    size_t i;

    for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        if (err_table[i].err == err)
            return err_table[i].type;
    }
    return "internal_error";
}

static int dump_value(json_t *v, struct buf *out);

/* json_dump_callback_t: appends to the struct buf in data; -1 stops the dump. */
static int
dump_append(const char *p, size_t n, void *data)
{
    return buf_append(data, p, n) == 0 ? 0 : -1;
}

/*
 * A scalar or a container without raw parts, as compact JSON written
 * straight into out: no string of its own to allocate, copy and free.
 */
static int
dump_plain(json_t *v, struct buf *out)
{
    size_t before = out->len;

    if (json_dump_callback(v, dump_append, out, JSON_COMPACT | JSON_ENCODE_ANY) == 0)
        return 0;
    out->len = before; /* what a failed dump left behind is not an answer */
    if (out->data != NULL)
        out->data[before] = '\0';
    return ERR_NOMEM;
}

/* An object: its raw text first (api_json_raw_object), then its other members. */
static int
dump_object(json_t *o, struct buf *out)
{
    json_t *raw = json_object_get(o, API_RAW_MEMBER), *v, *k;
    const char *key, *text;
    size_t len;
    int first = 1, err;

    if (raw != NULL && json_is_string(raw)) {
        text = json_string_value(raw);
        len = json_string_length(raw);
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        /* Everything but the closing brace; raw texts are made from "{...}". */
        if (len < 2 || text[0] != '{' || text[len - 1] != '}')
            return ERR_INTERNAL;
        err = buf_append(out, text, len - 1);
        if (err != 0)
            return err;
        first = (len == 2);
    } else {
        err = buf_putc(out, '{');
        if (err != 0)
            return err;
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, API_RAW_MEMBER) == 0)
            continue;
        if (!first && (err = buf_putc(out, ',')) != 0)
            return err;
        first = 0;
        k = json_string(key);
        err = k != NULL ? dump_plain(k, out) : ERR_NOMEM;
        json_decref(k);
        if (err != 0 || (err = buf_putc(out, ':')) != 0 || (err = dump_value(v, out)) != 0)
            return err;
    }
    return buf_putc(out, '}');
}

/* 1 when v holds an api_json_raw_object() somewhere. */
static int
has_raw(json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, m)
        {
            if (strcmp(key, API_RAW_MEMBER) == 0 || has_raw(m))
                return 1;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (has_raw(m))
                return 1;
        }
    }
    return 0;
}

static int
dump_value(json_t *v, struct buf *out)
{
    json_t *m;
    size_t i;
    int err;

    if (!has_raw(v))
        return dump_plain(v, out);
    if (json_is_object(v))
        return dump_object(v, out);
    err = buf_putc(out, '[');
    json_array_foreach(v, i, m)
    {
        if (err == 0 && i > 0)
            err = buf_putc(out, ',');
        if (err == 0)
            err = dump_value(m, out);
    }
    return err != 0 ? err : buf_putc(out, ']');
}

int
api_reply_json(struct api_req *r, int status, json_t *obj)
{
    int err = ERR_NOMEM;

    buf_reset(&r->out);
    r->status = status;
    r->content_type = "application/json";
    if (obj != NULL)
        err = dump_value(obj, &r->out);
    json_decref(obj);
    if (err == 0)
        err = buf_putc(&r->out, '\n');
    if (err != 0) {
        buf_reset(&r->out);
        r->status = 500;
        buf_puts(&r->out,
                 "{\"error\":{\"type\":\"internal_error\",\"message\":\"out of memory\"}}");
    }
    return 0;
}

/* 1 when s holds no byte that JSON must escape (a quote, a backslash, a control byte). */
static int
json_plain(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return 0;
    }
    return 1;
}

/* Appends "name":"value" (value needs no escaping) and sep. */
static int
put_member(struct buf *out, const char *name, const char *value, char sep)
{
    int err = buf_putc(out, '"');

    if (err == 0)
        err = buf_puts(out, name);
    if (err == 0)
        err = buf_append(out, "\":\"", 3);
    if (err == 0)
        err = buf_puts(out, value);
    if (err == 0)
        err = buf_putc(out, '"');
    return err == 0 ? buf_putc(out, sep) : err;
}

int
api_reply_published(struct api_req *r, int status, const struct event *ev)
{
    long long v = ev->deliveries;
    int err;

    if (!json_plain(ev->id) || !json_plain(ev->type) || !json_plain(ev->timestamp))
        return api_reply_json(r, status,
                              json_pack("{s:s, s:s, s:s, s:i}", "id", ev->id, "event", ev->type,
                                        "timestamp", ev->timestamp, "deliveries", ev->deliveries));
    buf_reset(&r->out);
    r->status = status;
    r->content_type = "application/json";
    err = buf_putc(&r->out, '{');
    if (err == 0)
        err = put_member(&r->out, "id", ev->id, ',');
    if (err == 0)
        err = put_member(&r->out, "event", ev->type, ',');
    if (err == 0)
        err = put_member(&r->out, "timestamp", ev->timestamp, ',');
    if (err == 0)
        err = buf_puts(&r->out, "\"deliveries\":");
    if (err == 0 && v < 0)
        err = buf_putc(&r->out, '-');
    if (err == 0)
        err = buf_put_u64(&r->out, v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v);
    if (err == 0)
        err = buf_append(&r->out, "}\n", 2);
    if (err != 0)
        api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    return 0;
}

json_t *
api_error_json(const char *type, json_t *fields, const char *msg)
{
    json_t *err;

    err = json_pack("{s:s, s:s}", "type", type, "message", msg);
    if (err != NULL && fields != NULL && json_is_array(fields) && json_array_size(fields) > 0)
        json_object_set(err, "fields", fields);
    json_decref(fields);
    return err;
}

__attribute__((format(printf, 5, 0))) static int
reply_error_v(struct api_req *r, int status, const char *type, json_t *fields, const char *fmt,
              va_list ap)
{
    char msg[1024];
    json_t *err, *body;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    err = api_error_json(type, fields, msg);
    body = err != NULL ? json_pack("{s:o}", "error", err) : NULL;
    if (status >= 500)
        log_warnx("api: answered %d method=%s path=%.200s: %s", status, r->method, r->path, msg);
    return api_reply_json(r, status, body);
}

int
api_reply_error(struct api_req *r, int err, json_t *fields, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = reply_error_v(r, api_err_status(err), api_err_type(err), fields, fmt, ap);
    va_end(ap);
    /* The store will be back (a database restarting): say when to try again. */
    if (r->status == 503 && r->retry_after[0] == '\0')
        snprintf(r->retry_after, sizeof(r->retry_after), "%s", API_RETRY_AFTER_S);
    return ret;
}

int
api_reply_error_status(struct api_req *r, int status, const char *type, json_t *fields,
                       const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = reply_error_v(r, status, type, fields, fmt, ap);
    va_end(ap);
    return ret;
}

int
api_reply_raw(struct api_req *r, int status, const char *content_type, const void *body, size_t len)
{
    buf_reset(&r->out);
    r->status = status;
    r->content_type = content_type;
    if (len > 0 && buf_append(&r->out, body, len) != 0) {
        api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        return 0;
    }
    return 0;
}
