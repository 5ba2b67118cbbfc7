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

int
api_reply_json(struct api_req *r, int status, json_t *obj)
{
    char *s;

    buf_reset(&r->out);
    r->status = status;
    r->content_type = "application/json";
    if (obj == NULL) {
        r->status = 500;
        buf_puts(&r->out,
                 "{\"error\":{\"type\":\"internal_error\",\"message\":\"out of memory\"}}");
        return 0;
    }
    s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s == NULL || buf_puts(&r->out, s) != 0 || buf_putc(&r->out, '\n') != 0) {
        buf_reset(&r->out);
        r->status = 500;
        buf_puts(&r->out,
                 "{\"error\":{\"type\":\"internal_error\",\"message\":\"out of memory\"}}");
    }
    free(s);
    return 0;
}

__attribute__((format(printf, 5, 0))) static int
reply_error_v(struct api_req *r, int status, const char *type, json_t *fields, const char *fmt,
              va_list ap)
{
    char msg[1024];
    json_t *err, *body;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    err = json_pack("{s:s, s:s}", "type", type, "message", msg);
    if (err != NULL && fields != NULL && json_is_array(fields) && json_array_size(fields) > 0)
        json_object_set(err, "fields", fields);
    json_decref(fields);
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
