/*
 * libFuzzer target for the API's readers of request bodies that are not
 * events: endpoint create and change, secret rotation and replay
 * (src/api/h_endpoints.c). Byte 0 picks the reader (bits 0-1) and
 * --allow-http (bit 2); the rest is the body, parsed as the server parses
 * it, then read into a struct api_req as a handler gets it. The problems
 * found are answered as the handlers answer them.
 *
 * Besides crashes it checks what an accepted body means: a create has a
 * URL, a change never carries a secret, event types are catalog types
 * listed once, a grace period is 0..7 days, a new secret is valid and not
 * the current one, a replay's until follows its since, and every answer
 * with problems is a JSON error naming them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "events/catalog.h"
#include "sign/sign.h"
#include "util/err.h"
#include "util/url.h"

#define CURRENT_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The comma list of event types holds catalog types, each once. */
static void
check_event_types(const char *list)
{
    char *copy, *item, *save = NULL, *rest;

    copy = strdup(list);
    if (copy == NULL)
        return;
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (catalog_type_find(item) == NULL)
            abort();
        for (rest = save; rest != NULL && (rest = strstr(rest, item)) != NULL;
             rest += strlen(item)) {
            if (rest[-1] == ',' && (rest[strlen(item)] == ',' || rest[strlen(item)] == '\0'))
                abort();
        }
    }
    free(copy);
}

static void
read_endpoint(struct api_req *r, int creating, json_t *fields)
{
    struct api_endpoint_input in;
    char err[256];

    if (api_endpoint_input_read(r, creating, &in, fields) != 0) {
        free(in.event_types);
        return;
    }
    if (in.url_bad && json_array_size(fields) == 0)
        abort(); /* a refused URL is a problem named */
    if (in.url != NULL && url_check(in.url, r->ctx->cfg->allow_http, err, sizeof(err)) != 0)
        abort();
    if (creating && json_array_size(fields) == 0 && in.url == NULL)
        abort();
    if (!creating && in.secret != NULL)
        abort();
    if (in.secret != NULL && sign_secret_check(in.secret, err, sizeof(err)) != 0)
        abort();
    if (in.enabled < -1 || in.enabled > 1)
        abort();
    if (in.event_types != NULL)
        check_event_types(in.event_types);
    free(in.event_types);
}

static void
read_rotation(struct api_req *r, json_t *fields)
{
    char secret[SIGN_SECRET_MAX], err[256];
    int64_t grace = 86400;

    secret[0] = '\0';
    if (api_rotate_input_read(r, CURRENT_SECRET, &grace, secret, fields) != 0)
        return;
    if (grace < 0 || grace > 7 * 86400)
        abort();
    if (secret[0] != '\0' &&
        (sign_secret_check(secret, err, sizeof(err)) != 0 || strcmp(secret, CURRENT_SECRET) == 0))
        abort();
}

static void
read_replay(struct api_req *r, json_t *fields)
{
    int64_t since = 0, until = 0;
    int status = -1;

    if (api_replay_input_read(r, &since, &until, &status, fields) != 0)
        return;
    if (json_array_size(fields) == 0 && until != 0 && until <= since)
        abort();
    if (status != -1 && status != DELIVERY_DELIVERED && status != DELIVERY_FAILED)
        abort();
}

/* Answers the problems as the handlers do, and checks the answer names them all. */
static void
answer(struct api_req *r, json_t *fields)
{
    size_t n = json_array_size(fields);
    json_t *j;

    buf_init(&r->out, 1 << 20);
    api_reply_error(r, ERR_VALIDATION, fields, "invalid: %zu problems", n);
    if (r->status != 422)
        abort();
    j = json_loadb(r->out.data, r->out.len, 0, NULL);
    if (j == NULL || json_array_size(json_object_get(json_object_get(j, "error"), "fields")) != n)
        abort();
    json_decref(j);
    buf_cleanup(&r->out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_config cfg;
    struct api_server_ctx sctx;
    struct api_req r;
    json_t *fields;

    if (size < 1 || size > API_MAX_BODY)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.allow_http = (data[0] & 4) != 0;
    memset(&sctx, 0, sizeof(sctx));
    sctx.cfg = &cfg;
    memset(&r, 0, sizeof(r));
    r.ctx = &sctx;
    r.method = "POST";
    r.path = "/v1/endpoints";
    /* As server.c parses a body; only an object reaches a handler. */
    r.json = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                        NULL);
    if (r.json == NULL || !json_is_object(r.json)) {
        json_decref(r.json);
        return 0;
    }
    fields = json_array();
    if (fields == NULL) {
        json_decref(r.json);
        return 0;
    }
    switch (data[0] & 3) {
    case 0:
    case 1:
        read_endpoint(&r, (data[0] & 3) == 0, fields);
        break;
    case 2:
        read_rotation(&r, fields);
        break;
    default:
        read_replay(&r, fields);
        break;
    }
    if (json_array_size(fields) > 0)
        answer(&r, fields); /* steals fields */
    else
        json_decref(fields);
    json_decref(r.json);
    return 0;
}
