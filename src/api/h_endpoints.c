/*
 * /v1/endpoints and everything under one endpoint: create, list, read,
 * change, delete, the manual switch, secrets and their rotation, test
 * events, statistics and replay. /v1/operational-endpoints are endpoints too
 * (kind operational: they receive fluxhook's own types, and only those); the
 * same handlers serve them, each path seeing only its own kind.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/handlers.h"
#include "dispatch/opevents.h"
#include "events/catalog.h"
#include "events/envelope.h"
#include "events/schema.h"
#include "sign/sign.h"
#include "util/err.h"
#include "util/log.h"
#include "util/url.h"

#define DESCRIPTION_MAX 1024  /* characters */
#define REASON_MAX 1024       /* characters of a disable reason */
#define GRACE_DEFAULT_S 86400 /* a rotation's grace period unless asked otherwise */
#define GRACE_MAX_S (7 * 86400)
#define USER_DISABLED_REASON "disabled by user"

static json_t *
member(struct api_req *r, const char *name)
{
    return r->json != NULL ? json_object_get(r->json, name) : NULL;
}

/* Characters (UTF-8 code points) of s. */
static size_t
utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* 1 for a request under /v1/operational-endpoints, 0 under /v1/endpoints. */
static int
operational(const struct api_req *r)
{
    static const char prefix[] = "/v1/operational-endpoints";

    return strncmp(r->path, prefix, sizeof(prefix) - 1) == 0;
}

/* The audit action "endpoint.<what>", or "operational_endpoint.<what>", into buf. */
static const char *
action(const struct api_req *r, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", operational(r) ? "operational_endpoint" : "endpoint", what);
    return buf;
}

/*
 * Reads event_types (an array of catalog types, or null) into a comma list
 * without repeats, adding a problem per bad item to fields. own: the types
 * are fluxhook's own (an operational endpoint's), else the producers'.
 */
static int
read_event_types(json_t *v, int own, json_t *fields, char **out)
{
    struct buf b;
    size_t i;
    json_t *item;
    char path[64], names[512];
    const char *s;
    int err = 0, bad = 0;

    buf_init(&b, 4096);
    if (!json_is_array(v)) {
        err = api_field_add(fields, "event_types",
                            "expected an array of event types (empty for every type)");
        goto out;
    }
    json_array_foreach(v, i, item)
    {
        snprintf(path, sizeof(path), "event_types[%zu]", i);
        s = json_string_value(item);
        if (s == NULL || (own ? catalog_own_find(s) : catalog_type_find(s)) == NULL) {
            err = api_field_add(fields, path, "expected one of %s",
                                own ? catalog_own_names(names, sizeof(names))
                                    : catalog_type_names(names, sizeof(names)));
            if (err != 0)
                goto out;
            bad = 1;
            continue;
        }
        if (bad)
            continue;
        /* Skip a type listed twice. */
        if (strstr(buf_cstr(&b), s) != NULL) {
            const char *p = buf_cstr(&b);
            size_t sl = strlen(s);
            int dup = 0;

            while ((p = strstr(p, s)) != NULL) {
                if ((p == buf_cstr(&b) || p[-1] == ',') && (p[sl] == ',' || p[sl] == '\0'))
                    dup = 1;
                p += sl;
            }
            if (dup)
                continue;
        }
        if ((b.len > 0 && buf_putc(&b, ',') != 0) || buf_puts(&b, s) != 0) {
            err = ERR_NOMEM;
            goto out;
        }
    }
    if (!bad) {
        *out = b.len > 0 ? buf_steal(&b) : strdup("");
        if (*out == NULL)
            err = ERR_NOMEM;
    }
out:
    buf_cleanup(&b);
    return err;
}

int
api_endpoint_input_read(struct api_req *r, int creating, struct api_endpoint_input *in,
                        json_t *fields)
{
    char errbuf[256];
    json_t *v;
    int err = 0;

    memset(in, 0, sizeof(*in));
    in->enabled = -1;

    v = member(r, "url");
    if (v == NULL || json_is_null(v)) {
        if (creating)
            err = api_field_add(fields, "url", "required: the https:// URL to deliver to");
    } else if (!json_is_string(v)) {
        err = api_field_add(fields, "url", "expected a string");
    } else {
        errbuf[0] = '\0';
        if (url_check(json_string_value(v), r->ctx->cfg->allow_http, errbuf, sizeof(errbuf)) != 0 ||
            (r->ctx->cfg->url_address_fn != NULL &&
             r->ctx->cfg->url_address_fn(json_string_value(v), r->ctx->cfg->allow_networks, errbuf,
                                         sizeof(errbuf)) != 0)) {
            in->url_bad = 1;
            /* url_check() words start with "url: ", which the path already says. */
            err = api_field_add(fields, "url", "%s",
                                strncmp(errbuf, "url: ", 5) == 0 ? errbuf + 5
                                : errbuf[0] != '\0'              ? errbuf
                                                                 : "invalid URL");
        } else {
            in->url = json_string_value(v);
        }
    }
    if (err != 0)
        goto out;

    v = member(r, "description");
    if (v != NULL && json_is_null(v)) {
        in->description = "";
    } else if (v != NULL && !json_is_string(v)) {
        err = api_field_add(fields, "description", "expected a string");
    } else if (v != NULL && utf8_chars(json_string_value(v)) > DESCRIPTION_MAX) {
        err =
            api_field_add(fields, "description", "expected at most %d characters", DESCRIPTION_MAX);
    } else if (v != NULL) {
        in->description = json_string_value(v);
    }
    if (err != 0)
        goto out;

    v = member(r, "event_types");
    if (v != NULL && json_is_null(v)) {
        in->event_types = strdup("");
        if (in->event_types == NULL)
            err = ERR_NOMEM;
    } else if (v != NULL) {
        err = read_event_types(v, operational(r), fields, &in->event_types);
    }
    if (err != 0)
        goto out;

    v = member(r, "secret");
    if (v != NULL && !json_is_null(v)) {
        if (!creating) {
            err = api_field_add(fields, "secret",
                                "cannot be changed here: use POST "
                                "/v1/endpoints/{id}/secret/rotate");
        } else if (!json_is_string(v)) {
            err = api_field_add(fields, "secret", "expected a string 'whsec_<base64>'");
        } else if (sign_secret_check(json_string_value(v), errbuf, sizeof(errbuf)) != 0) {
            err = api_field_add(fields, "secret", "%s", errbuf);
        } else {
            in->secret = json_string_value(v);
        }
    }
    if (err != 0)
        goto out;

    v = member(r, "enabled");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v))
            err = api_field_add(fields, "enabled", "expected true or false");
        else
            in->enabled = json_is_true(v);
    }
out:
    return err;
}

/* Answers the problems in fields: 400 for a bad URL (CONTRACT §4), else 422. */
static int
reply_problems(struct api_req *r, const struct api_endpoint_input *in, json_t *fields)
{
    size_t n = json_array_size(fields);

    if (in->url_bad)
        return api_reply_error(
            r, ERR_INVAL, fields, "bad URL: %s",
            json_string_value(json_object_get(json_array_get(fields, 0), "problem")));
    return api_reply_error(r, ERR_VALIDATION, fields, "invalid endpoint: %zu problem%s", n,
                           n == 1 ? "" : "s");
}

/*
 * Reads endpoint {id} (params[0]) of the caller's account into ep; answers
 * 404 itself. held 0 leaves its held deliveries uncounted (ep->held -1):
 * for a change that moves them anyway (enable, replay), whose first
 * delivery would wait for the count.
 */
static int
load_held(struct api_req *r, struct endpoint *ep, int held)
{
    const char *id;
    int err;

    if (api_path_id(r, 0, "ep_", "endpoint", &id) != 0)
        return ERR_NOTFOUND;
    err = held ? store_endpoint_get(r->ctx->store, r->account_id, id, ep)
               : store_endpoint_find(r->ctx->store, r->account_id, id, ep);
    if (err == 0 && ep->operational != operational(r)) {
        endpoint_cleanup(ep);
        err = ERR_NOTFOUND;
    }
    if (err != 0) {
        api_reply_error(r, err, NULL, "no endpoint with id '%s'", id);
        return err;
    }
    return 0;
}

static int
load(struct api_req *r, struct endpoint *ep)
{
    return load_held(r, ep, 1);
}

/* Reads the endpoint again and answers it with status (and extra members, stolen). */
static int
reply_endpoint(struct api_req *r, const char *id, int status, json_t *extra)
{
    struct endpoint ep;
    json_t *o;
    int err;

    memset(&ep, 0, sizeof(ep));
    err = store_endpoint_get(r->ctx->store, r->account_id, id, &ep);
    if (err != 0) {
        json_decref(extra);
        return api_reply_error(r, err, NULL, "no endpoint with id '%s'", id);
    }
    o = api_endpoint_json(&ep, 0);
    if (o != NULL && json_object_get(o, "held") == NULL)
        json_object_set_new(o, "held", json_integer(ep.held));
    if (o != NULL && extra != NULL)
        json_object_update(o, extra);
    json_decref(extra);
    endpoint_cleanup(&ep);
    return api_reply_json(r, status, o);
}

int
h_endpoints_create(struct api_req *r)
{
    struct api_endpoint_input in;
    struct endpoint ep;
    char secret[SIGN_SECRET_MAX], act[AUDIT_ACTION_MAX];
    int64_t now = clock_now_ms();
    json_t *fields = NULL, *o;
    int err;

    memset(&ep, 0, sizeof(ep));
    memset(&in, 0, sizeof(in));
    secret[0] = '\0';
    fields = json_array();
    if (fields == NULL || api_endpoint_input_read(r, 1, &in, fields) != 0) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (json_array_size(fields) > 0) {
        err = reply_problems(r, &in, fields);
        fields = NULL;
        goto out;
    }
    if (in.secret != NULL) {
        snprintf(secret, sizeof(secret), "%s", in.secret);
    } else if ((err = sign_secret_new(secret)) != 0) {
        err = api_reply_error(r, err, NULL, "cannot make a secret");
        goto out;
    }
    if ((err = id_new("ep_", ep.id)) != 0) {
        err = api_reply_error(r, err, NULL, "cannot make an id");
        goto out;
    }
    snprintf(ep.account_id, sizeof(ep.account_id), "%s", r->account_id);
    /* Borrowed strings: ep is not cleaned up with endpoint_cleanup(). */
    ep.url = (char *)in.url;
    ep.description = (char *)(in.description != NULL ? in.description : "");
    ep.event_types = in.event_types != NULL ? in.event_types : "";
    ep.status = ENDPOINT_ENABLED;
    ep.secret = secret;
    ep.operational = operational(r);
    ep.created_at = now;
    ep.updated_at = now;
    if (in.enabled == 0) {
        ep.status = ENDPOINT_DISABLED;
        ep.disabled_reason = USER_DISABLED_REASON;
        ep.disabled_at = now;
    }
    err = store_endpoint_insert(r->ctx->store, &ep);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot store the endpoint");
        goto out;
    }
    log_info("api: endpoint created endpoint=%s account=%s operational=%d", ep.id, r->account_id,
             ep.operational);
    api_audit(r, NULL, action(r, "created", act, sizeof(act)), ep.id,
              json_pack("{s:s, s:s, s:s, s:b}", "url", ep.url, "description", ep.description,
                        "event_types", ep.event_types, "enabled", ep.status == ENDPOINT_ENABLED));
    o = api_endpoint_json(&ep, 1);
    if (o != NULL && json_object_get(o, "held") == NULL)
        json_object_set_new(o, "held", json_integer(0));
    snprintf(r->location, sizeof(r->location), "%s/%s",
             ep.operational ? "/v1/operational-endpoints" : "/v1/endpoints", ep.id);
    err = api_reply_json(r, 201, o);
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    free(in.event_types);
    json_decref(fields);
    return err;
}

/* api_item_fn of a page of endpoints, each with its count of held deliveries. */
static const char *
endpoint_item(const void *items, size_t i, json_t **json)
{
    const struct endpoint *ep = (const struct endpoint *)items + i;
    json_t *o;

    if (json != NULL) {
        o = api_endpoint_json(ep, 0);
        if (o != NULL && json_object_get(o, "held") == NULL &&
            json_object_set_new(o, "held", json_integer(ep->held)) != 0) {
            json_decref(o);
            o = NULL;
        }
        *json = o;
    }
    return ep->id;
}

int
h_endpoints_list(struct api_req *r)
{
    struct endpoint *eps = NULL;
    size_t n = 0;
    const char *after = NULL;
    int limit, err;

    if (api_page_params(r, &limit, &after) != 0)
        return 0;
    if (api_cursor_param(r, "ep_", &after) != 0)
        return 0;
    err = store_endpoint_list_kind(r->ctx->store, r->account_id, operational(r),
                                   after != NULL ? after : "", api_page_fetch(limit), &eps, &n);
    if (err != 0)
        err = api_reply_error(r, err, NULL, "cannot list endpoints");
    else
        err = api_page_reply(r, limit, eps, n, endpoint_item);
    endpoint_list_free(eps, n);
    return err;
}

int
h_endpoints_get(struct api_req *r)
{
    struct endpoint ep;
    json_t *o;
    int err;

    memset(&ep, 0, sizeof(ep));
    if (load(r, &ep) != 0)
        return 0;
    o = api_endpoint_json(&ep, 0);
    if (o != NULL && json_object_get(o, "held") == NULL)
        json_object_set_new(o, "held", json_integer(ep.held));
    err = api_reply_json(r, 200, o);
    endpoint_cleanup(&ep);
    return err;
}

/* The fields a PATCH named, for the audit log: a new reference. */
static json_t *
patch_details(const struct endpoint_patch *p, int enabled)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    if (p->url != NULL)
        json_object_set_new(o, "url", json_string(p->url));
    if (p->description != NULL)
        json_object_set_new(o, "description", json_string(p->description));
    if (p->event_types != NULL)
        json_object_set_new(o, "event_types", json_string(p->event_types));
    if (enabled >= 0)
        json_object_set_new(o, "enabled", json_boolean(enabled));
    return o;
}

/*
 * After the caller enabled or disabled endpoint id: endpoint.enabled or
 * endpoint.disabled for the account's operational endpoints, with the
 * endpoint as it now is. count: the held deliveries resumed, or, below 0,
 * -count - 1 skipped.
 */
static void
switched(struct api_req *r, const char *id, int enabled, int64_t count)
{
    struct endpoint ep;

    memset(&ep, 0, sizeof(ep));
    if (store_endpoint_get(r->ctx->store, r->account_id, id, &ep) != 0)
        return;
    if (enabled)
        opevents_enabled(r->ctx->store, &ep, count < 0 ? -count - 1 : count, count < 0);
    else
        opevents_disabled(r->ctx->store, &ep, 0);
    endpoint_cleanup(&ep);
}

int
h_endpoints_update(struct api_req *r)
{
    struct api_endpoint_input in;
    struct endpoint ep;
    struct endpoint_patch patch;
    json_t *fields = NULL;
    int64_t now = clock_now_ms(), count = 0;
    char act[AUDIT_ACTION_MAX];
    int err;

    memset(&ep, 0, sizeof(ep));
    memset(&in, 0, sizeof(in));
    if (load(r, &ep) != 0) {
        err = 0;
        goto out;
    }
    fields = json_array();
    if (fields == NULL || api_endpoint_input_read(r, 0, &in, fields) != 0) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (json_array_size(fields) > 0) {
        err = reply_problems(r, &in, fields);
        fields = NULL;
        goto out;
    }
    /* Only the fields given change, so concurrent changes of the others stand. */
    patch.url = in.url;
    patch.description = in.description;
    patch.event_types = in.event_types;
    err = store_endpoint_update(r->ctx->store, r->account_id, ep.id, &patch, now);
    if (err == 0 && in.enabled == 0 && ep.status == ENDPOINT_ENABLED)
        err =
            store_endpoint_disable(r->ctx->store, r->account_id, ep.id, USER_DISABLED_REASON, now);
    else if (err == 0 && in.enabled == 1 && ep.status == ENDPOINT_DISABLED)
        err = store_endpoint_enable(r->ctx->store, r->account_id, ep.id, 0, now, &count);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot update endpoint '%s'", ep.id);
        goto out;
    }
    log_info("api: endpoint updated endpoint=%s", ep.id);
    api_audit(r, NULL, action(r, "updated", act, sizeof(act)), ep.id,
              patch_details(&patch, in.enabled));
    if (in.enabled >= 0 && in.enabled != (ep.status == ENDPOINT_ENABLED))
        switched(r, ep.id, in.enabled, count);
    err = reply_endpoint(r, ep.id, 200, NULL);
out:
    free(in.event_types);
    json_decref(fields);
    endpoint_cleanup(&ep);
    return err;
}

int
h_endpoints_delete(struct api_req *r)
{
    struct endpoint ep;
    char act[AUDIT_ACTION_MAX];
    int err;

    memset(&ep, 0, sizeof(ep));
    if (load(r, &ep) != 0)
        return 0;
    err = store_endpoint_delete(r->ctx->store, r->account_id, ep.id);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "no endpoint with id '%s'", ep.id);
        goto out;
    }
    log_info("api: endpoint deleted endpoint=%s", ep.id);
    api_audit(r, NULL, action(r, "deleted", act, sizeof(act)), ep.id, NULL);
    err = api_reply_raw(r, 204, "application/json", "", 0);
out:
    endpoint_cleanup(&ep);
    return err;
}

int
h_endpoints_disable(struct api_req *r)
{
    struct endpoint ep;
    const char *reason = USER_DISABLED_REASON;
    json_t *v, *fields = NULL;
    int err;

    memset(&ep, 0, sizeof(ep));
    if (load(r, &ep) != 0)
        return 0;
    v = member(r, "reason");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            utf8_chars(json_string_value(v)) > REASON_MAX) {
            fields = json_array();
            if (fields != NULL)
                api_field_add(fields, "reason", "expected a string of 1 to %d characters",
                              REASON_MAX);
            err = api_reply_error(r, ERR_VALIDATION, fields,
                                  "reason: expected a string of 1 "
                                  "to %d characters",
                                  REASON_MAX);
            goto out;
        }
        reason = json_string_value(v);
    }
    err = store_endpoint_disable(r->ctx->store, r->account_id, ep.id, reason, clock_now_ms());
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot disable endpoint '%s'", ep.id);
        goto out;
    }
    log_info("api: endpoint disabled endpoint=%s by=user", ep.id);
    api_audit(r, NULL, "endpoint.disabled", ep.id, json_pack("{s:s}", "reason", reason));
    switched(r, ep.id, 0, 0);
    err = reply_endpoint(r, ep.id, 200, NULL);
out:
    endpoint_cleanup(&ep);
    return err;
}

int
h_endpoints_enable(struct api_req *r)
{
    struct endpoint ep;
    int64_t count = 0;
    int skip = 0, err;

    memset(&ep, 0, sizeof(ep));
    if (load_held(r, &ep, 0) != 0)
        return 0;
    if (api_json_bool(r, "skip_held", &skip) != 0) {
        err = 0;
        goto out;
    }
    err = store_endpoint_enable(r->ctx->store, r->account_id, ep.id, skip, clock_now_ms(), &count);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot enable endpoint '%s'", ep.id);
        goto out;
    }
    log_info("api: endpoint enabled endpoint=%s %s=%lld", ep.id, skip ? "skipped" : "resumed",
             (long long)count);
    api_audit(r, NULL, "endpoint.enabled", ep.id,
              json_pack("{s:b, s:I}", "skip_held", skip, skip ? "skipped" : "resumed",
                        (json_int_t)count));
    switched(r, ep.id, 1, skip ? -count - 1 : count);
    err = reply_endpoint(r, ep.id, 200,
                         json_pack("{s:I, s:I}", "resumed", (json_int_t)(skip ? 0 : count),
                                   "skipped", (json_int_t)(skip ? count : 0)));
out:
    endpoint_cleanup(&ep);
    return err;
}

/* {secret, previous: {secret, expires_at} or null}, a new reference. */
static json_t *
secret_json(const struct endpoint *ep, int64_t now)
{
    json_t *prev;

    if (ep->prev_secret != NULL && ep->prev_secret_until > now)
        prev = json_pack("{s:s, s:o}", "secret", ep->prev_secret, "expires_at",
                         api_time_json(ep->prev_secret_until));
    else
        prev = json_null();
    return json_pack("{s:s, s:o}", "secret", ep->secret != NULL ? ep->secret : "", "previous",
                     prev);
}

int
h_endpoints_secret(struct api_req *r)
{
    struct endpoint ep;
    int err;

    memset(&ep, 0, sizeof(ep));
    if (load(r, &ep) != 0)
        return 0;
    err = api_reply_json(r, 200, secret_json(&ep, clock_now_ms()));
    api_audit(r, NULL, "endpoint.secret_revealed", ep.id, NULL);
    endpoint_cleanup(&ep);
    return err;
}

int
api_rotate_input_read(struct api_req *r, const char *current, int64_t *grace, char *secret,
                      json_t *fields)
{
    char errbuf[256];
    json_t *v;
    int err = 0;

    v = member(r, "grace_seconds");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > GRACE_MAX_S)
            err = api_field_add(fields, "grace_seconds",
                                "expected an integer from 0 to %d (7 days)", GRACE_MAX_S);
        else
            *grace = json_integer_value(v);
    }
    v = member(r, "secret");
    if (err == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_string(v))
            err = api_field_add(fields, "secret", "expected a string 'whsec_<base64>'");
        else if (sign_secret_check(json_string_value(v), errbuf, sizeof(errbuf)) != 0)
            err = api_field_add(fields, "secret", "%s", errbuf);
        else if (current != NULL && strcmp(current, json_string_value(v)) == 0)
            err = api_field_add(fields, "secret", "expected a secret other than the current one");
        else
            snprintf(secret, SIGN_SECRET_MAX, "%s", json_string_value(v));
    }
    return err;
}

int
h_endpoints_rotate(struct api_req *r)
{
    struct endpoint ep;
    char secret[SIGN_SECRET_MAX], id[ID_MAX];
    int64_t grace = GRACE_DEFAULT_S, now = clock_now_ms();
    json_t *fields = NULL;
    int err;

    memset(&ep, 0, sizeof(ep));
    secret[0] = '\0';
    if (load(r, &ep) != 0)
        return 0;
    fields = json_array();
    if (fields == NULL) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (api_rotate_input_read(r, ep.secret, &grace, secret, fields) != 0) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (json_array_size(fields) > 0) {
        err = api_reply_error(r, ERR_VALIDATION, fields, "invalid rotation");
        fields = NULL;
        goto out;
    }
    if (secret[0] == '\0' && (err = sign_secret_new(secret)) != 0) {
        err = api_reply_error(r, err, NULL, "cannot make a secret");
        goto out;
    }
    /* One atomic change in the store: a concurrent PATCH or rotation is never undone. */
    snprintf(id, sizeof(id), "%s", ep.id);
    endpoint_cleanup(&ep);
    err = store_endpoint_rotate(r->ctx->store, r->account_id, id, secret,
                                grace > 0 ? now + grace * 1000 : 0, now, &ep);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot store the new secret");
        goto out;
    }
    log_info("api: secret rotated endpoint=%s grace_s=%lld", ep.id, (long long)grace);
    api_audit(r, NULL, "endpoint.secret_rotated", ep.id,
              json_pack("{s:I}", "grace_seconds", (json_int_t)grace));
    err = api_reply_json(r, 200, secret_json(&ep, now));
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    json_decref(fields);
    endpoint_cleanup(&ep);
    return err;
}

int
h_endpoints_test(struct api_req *r)
{
    struct endpoint ep;
    struct event ev;
    struct delivery_filter f;
    struct delivery *ds = NULL;
    size_t nds = 0;
    const struct catalog_type *ct = NULL;
    struct schema_report rep;
    const char *type = NULL;
    char names[512];
    char *data = NULL;
    json_t *v, *fields;
    int err;

    memset(&ep, 0, sizeof(ep));
    memset(&ev, 0, sizeof(ev));
    if (load(r, &ep) != 0)
        return 0;
    v = member(r, "event");
    if (v != NULL)
        type = json_string_value(v);
    if (type != NULL)
        ct = catalog_type_find(type);
    if (ct == NULL) {
        fields = json_array();
        if (fields != NULL)
            api_field_add(fields, "event", "%s one of %s", v == NULL ? "required:" : "expected",
                          catalog_type_names(names, sizeof(names)));
        err = api_reply_error(r, ERR_VALIDATION, fields, "event: expected one of %s",
                              catalog_type_names(names, sizeof(names)));
        goto out;
    }
    /* data, when given, replaces the sample and must pass the catalog as a publish would. */
    v = member(r, "data");
    if (v != NULL && !json_is_null(v)) {
        schema_report_init(&rep);
        if (schema_data_check(ct, v, "data", &rep) != 0) {
            err = api_reply_report(r, &rep);
            goto out;
        }
        data = json_dumps(v, JSON_COMPACT);
        if (data == NULL) {
            err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    err = envelope_build(ct->name, data != NULL ? data : ct->sample,
                         strlen(data != NULL ? data : ct->sample), NULL, clock_now_ms(), &ev);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot build the test event");
        goto out;
    }
    snprintf(ev.account_id, sizeof(ev.account_id), "%s", r->account_id);
    ev.idempotency_key[0] = '\0';
    err = store_event_publish(r->ctx->store, &ev, &ep, 1);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot store the test event");
        goto out;
    }
    memset(&f, 0, sizeof(f));
    f.event_id = ev.id;
    f.endpoint_id = ep.id;
    f.status = -1;
    f.limit = 1;
    err = store_delivery_list(r->ctx->store, r->account_id, &f, &ds, &nds);
    if (err != 0 || nds == 0) {
        err = api_reply_error(r, err != 0 ? err : ERR_INTERNAL, NULL,
                              "cannot find the test delivery");
        goto out;
    }
    log_info("api: test event=%s endpoint=%s delivery=%s type=%s", ev.id, ep.id, ds[0].id,
             ct->name);
    err = api_reply_json(r, 202,
                         json_pack("{s:s, s:s, s:s}", "event_id", ev.id, "delivery_id", ds[0].id,
                                   "event", ct->name));
out:
    free(data);
    delivery_list_free(ds, nds);
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
    return err;
}

int
h_endpoints_stats(struct api_req *r)
{
    struct endpoint ep;
    int err;

    memset(&ep, 0, sizeof(ep));
    if (load(r, &ep) != 0)
        return 0;
    err = api_stats_reply(r, ep.id);
    endpoint_cleanup(&ep);
    return err;
}

/* Reads an RFC 3339 member into *ms, adding a problem when it is not one. */
static int
read_time(struct api_req *r, const char *name, int required, json_t *fields, int64_t *ms)
{
    json_t *v = member(r, name);

    if (v == NULL || json_is_null(v)) {
        if (required)
            return api_field_add(fields, name,
                                 "required: an RFC 3339 time such as "
                                 "'2024-01-01T12:00:00Z'");
        return 0;
    }
    if (!json_is_string(v) || clock_parse_rfc3339(json_string_value(v), ms) != 0)
        return api_field_add(fields, name,
                             "expected an RFC 3339 UTC time such as "
                             "'2024-01-01T12:00:00Z'");
    return 0;
}

int
api_replay_input_read(struct api_req *r, int64_t *since, int64_t *until, int *status,
                      json_t *fields)
{
    enum delivery_status st;
    json_t *v;
    int err;

    err = read_time(r, "since", 1, fields, since);
    if (err == 0)
        err = read_time(r, "until", 0, fields, until);
    if (err == 0 && json_array_size(fields) == 0 && *until != 0 && *until <= *since)
        err = api_field_add(fields, "until", "expected a time after 'since'");
    v = member(r, "status");
    if (err == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || delivery_status_parse(json_string_value(v), &st) != 0 ||
            (st != DELIVERY_DELIVERED && st != DELIVERY_FAILED))
            err =
                api_field_add(fields, "status", "expected 'delivered' or 'failed' (absent: both)");
        else
            *status = (int)st;
    }
    return err;
}

/* "dry_run": true: how many deliveries the replay would take and the first of them. */
static int
replay_preview_reply(struct api_req *r, const struct endpoint *ep, int64_t since, int64_t until,
                     int status)
{
    struct replay_preview p;
    json_t *ids;
    size_t i;
    int err;

    err = store_endpoint_replay_preview(r->ctx->store, r->account_id, ep->id, since, until, status,
                                        &p);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot count the replay of endpoint '%s'", ep->id);
    ids = json_array();
    for (i = 0; ids != NULL && i < p.nids; i++)
        if (json_array_append_new(ids, json_string(p.ids[i])) != 0) {
            json_decref(ids);
            ids = NULL;
        }
    if (ids == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    return api_reply_json(r, 200,
                          json_pack("{s:b, s:I, s:o}", "dry_run", 1, "would_replay",
                                    (json_int_t)p.count, "ids", ids));
}

int
h_endpoints_replay(struct api_req *r)
{
    struct endpoint ep;
    int64_t since = 0, until = 0, count = 0, now = clock_now_ms();
    int status = -1, dry_run = 0, err;
    json_t *fields = NULL, *v;

    memset(&ep, 0, sizeof(ep));
    if (load_held(r, &ep, 0) != 0)
        return 0;
    fields = json_array();
    v = member(r, "dry_run");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v) && fields != NULL &&
        api_field_add(fields, "dry_run", "expected true or false") != 0) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    dry_run = json_is_true(v);
    if (fields == NULL || api_replay_input_read(r, &since, &until, &status, fields) != 0) {
        err = api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (json_array_size(fields) > 0) {
        err = api_reply_error(r, ERR_VALIDATION, fields, "invalid replay");
        fields = NULL;
        goto out;
    }
    if (dry_run) {
        err = replay_preview_reply(r, &ep, since, until, status);
        goto out;
    }
    err = store_endpoint_replay(r->ctx->store, r->account_id, ep.id, since, until, status, now,
                                &count);
    if (err != 0) {
        err = api_reply_error(r, err, NULL, "cannot replay endpoint '%s'", ep.id);
        goto out;
    }
    log_info("api: replay endpoint=%s count=%lld", ep.id, (long long)count);
    api_audit(r, NULL, "endpoint.replayed", ep.id,
              json_pack("{s:o, s:o, s:s?, s:I}", "since", api_time_json(since), "until",
                        api_time_json(until), "status",
                        status >= 0 ? delivery_status_name(status) : NULL, "replayed",
                        (json_int_t)count));
    err = api_reply_json(r, 202, json_pack("{s:I}", "replayed", (json_int_t)count));
out:
    json_decref(fields);
    endpoint_cleanup(&ep);
    return err;
}
