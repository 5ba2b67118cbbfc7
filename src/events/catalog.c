#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/catalog.h"
#include "events/events_int.h"
#include "util/buf.h"
#include "util/err.h"

/* Field constructors, so that each row of the table reads like CONTRACT §1. */
/* clang-format off */
#define STR(n, req) {.name = (n), .kind = CATALOG_STRING, .required = (req), .nonempty = 1}
#define EMAIL(n, req) {.name = (n), .kind = CATALOG_EMAIL, .required = (req), .nonempty = 1}
#define BOOL(n, req) {.name = (n), .kind = CATALOG_BOOL, .required = (req)}
#define INT_MIN_(n, req, lo) \
    {.name = (n), .kind = CATALOG_INT, .required = (req), .has_min = 1, .min = (lo)}
#define INT_RANGE(n, req, lo, hi, null) \
    {.name = (n), .kind = CATALOG_INT, .required = (req), .nullable = (null), .has_min = 1, \
     .has_max = 1, .min = (lo), .max = (hi)}
#define NUM_MIN(n, req, lo) \
    {.name = (n), .kind = CATALOG_NUMBER, .required = (req), .has_min = 1, .min = (lo)}
#define NUM_RANGE(n, req, lo, hi) \
    {.name = (n), .kind = CATALOG_NUMBER, .required = (req), .has_min = 1, .has_max = 1, \
     .min = (lo), .max = (hi)}
#define ENUM(n, req, vals) {.name = (n), .kind = CATALOG_ENUM, .required = (req), .values = (vals)}
#define STRINGS(n, req) {.name = (n), .kind = CATALOG_STRINGS, .required = (req), .nonempty = 1}
/* clang-format on */

#define REQ 1
#define OPT 0
#define NFIELDS(...) (sizeof((struct catalog_field[]){__VA_ARGS__}) / sizeof(struct catalog_field))
#define FIELDS(...) .nfields = NFIELDS(__VA_ARGS__), .fields = {__VA_ARGS__}

static const char *const priorities[] = {"low", "normal", "high", "urgent", NULL};
static const char *const requesters[] = {"user", "agent", "rule", NULL};
static const char *const sync_types[] = {"full", "incremental", NULL};
static const char *const sync_statuses[] = {"success", "partial", "failed", NULL};

/*
 * CONTRACT §1. The samples of conversation.started, conversation.completed,
 * agent.response and integration.sync are the guide's example payloads; the
 * other five follow their style.
 */
static const struct catalog_type types[] = {
    {
        .name = "conversation.started",
        .description = "New conversation initiated",
        .sample = "{\"conversation_id\": \"conv-123\", \"agent_id\": \"agent-123\", "
                  "\"agent_name\": \"Customer Support Agent\", \"channel\": \"chat\", "
                  "\"user_id\": \"user-456\", \"user_email\": \"user@example.com\", "
                  "\"initial_message\": \"Hello, I need help\"}",
        FIELDS(STR("conversation_id", REQ), STR("agent_id", REQ), STR("channel", REQ),
               STR("agent_name", OPT), STR("user_id", OPT), STR("initial_message", OPT),
               EMAIL("user_email", OPT)),
    },
    {
        .name = "conversation.completed",
        .description = "Conversation ended",
        .sample = "{\"conversation_id\": \"conv-123\", \"agent_id\": \"agent-123\", "
                  "\"duration_seconds\": 300, \"messages_count\": 8, \"resolution_rate\": 1.0, "
                  "\"satisfaction_score\": 5, \"was_escalated\": false}",
        FIELDS(STR("conversation_id", REQ), STR("agent_id", REQ),
               INT_MIN_("duration_seconds", REQ, 0), INT_MIN_("messages_count", REQ, 0),
               BOOL("was_escalated", REQ), NUM_RANGE("resolution_rate", OPT, 0, 1),
               INT_RANGE("satisfaction_score", OPT, 1, 5, 1)),
    },
    {
        .name = "conversation.escalated",
        .description = "Conversation escalated to human",
        .sample = "{\"conversation_id\": \"conv-123\", \"agent_id\": \"agent-123\", "
                  "\"escalation_id\": \"esc-321\", \"reason\": \"Customer asked for a human\", "
                  "\"escalated_to\": \"support-team\", \"priority\": \"high\"}",
        FIELDS(STR("conversation_id", REQ), STR("agent_id", REQ), STR("reason", REQ),
               STR("escalation_id", OPT), STR("escalated_to", OPT),
               ENUM("priority", OPT, priorities)),
    },
    {
        .name = "agent.response",
        .description = "Agent generated response",
        .sample = "{\"conversation_id\": \"conv-123\", \"agent_id\": \"agent-123\", "
                  "\"message_id\": \"msg-789\", \"content\": \"I can help you with that...\", "
                  "\"response_time_ms\": 1200, \"confidence_score\": 0.95}",
        FIELDS(STR("conversation_id", REQ), STR("agent_id", REQ), STR("message_id", REQ),
               STR("content", REQ), INT_MIN_("response_time_ms", OPT, 0),
               NUM_RANGE("confidence_score", OPT, 0, 1)),
    },
    {
        .name = "user.message",
        .description = "User sent a message",
        .sample = "{\"conversation_id\": \"conv-123\", \"message_id\": \"msg-456\", "
                  "\"user_id\": \"user-456\", \"content\": \"Hello, I need help\", "
                  "\"channel\": \"chat\"}",
        FIELDS(STR("conversation_id", REQ), STR("message_id", REQ), STR("user_id", REQ),
               STR("content", REQ), STR("channel", OPT)),
    },
    {
        .name = "escalation.triggered",
        .description = "Human escalation requested",
        .sample = "{\"escalation_id\": \"esc-321\", \"conversation_id\": \"conv-123\", "
                  "\"agent_id\": \"agent-123\", \"reason\": \"Customer asked for a human\", "
                  "\"priority\": \"high\", \"requested_by\": \"user\"}",
        FIELDS(STR("escalation_id", REQ), STR("conversation_id", REQ), STR("reason", REQ),
               STR("agent_id", OPT), ENUM("priority", OPT, priorities),
               ENUM("requested_by", OPT, requesters)),
    },
    {
        .name = "integration.sync",
        .description = "Data synchronization completed",
        .sample = "{\"integration_id\": \"int-456\", \"integration_type\": \"salesforce\", "
                  "\"sync_type\": \"full\", \"records_synced\": 150, \"duration_seconds\": 45, "
                  "\"status\": \"success\"}",
        FIELDS(STR("integration_id", REQ), STR("integration_type", REQ),
               ENUM("sync_type", REQ, sync_types), INT_MIN_("records_synced", REQ, 0),
               ENUM("status", REQ, sync_statuses), NUM_MIN("duration_seconds", OPT, 0)),
    },
    {
        .name = "integration.error",
        .description = "Integration error occurred",
        .sample = "{\"integration_id\": \"int-456\", \"integration_type\": \"salesforce\", "
                  "\"error_code\": \"AUTH_EXPIRED\", "
                  "\"error_message\": \"OAuth token expired\", \"retryable\": true}",
        FIELDS(STR("integration_id", REQ), STR("integration_type", REQ), STR("error_code", REQ),
               STR("error_message", REQ), BOOL("retryable", OPT)),
    },
    {
        .name = "agent.updated",
        .description = "Agent configuration updated",
        .sample = "{\"agent_id\": \"agent-123\", \"agent_name\": \"Customer Support Agent\", "
                  "\"updated_fields\": [\"instructions\", \"model\"], "
                  "\"updated_by\": \"user-789\"}",
        FIELDS(STR("agent_id", REQ), STRINGS("updated_fields", REQ), STR("agent_name", OPT),
               STR("updated_by", OPT)),
    },
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

/*
 * fluxhook's own types: what the dispatcher and the API tell an account's
 * operational endpoints about its other endpoints. Never published by a
 * producer, never sent to a customer endpoint.
 */
static const struct catalog_type own_types[] = {
    {
        .name = "endpoint.disabled",
        .description = "fluxhook disabled an endpoint (or its owner did); its deliveries are held",
        .sample = "{\"endpoint_id\": \"ep_2k1Xq\", \"url\": \"https://example.com/hooks\", "
                  "\"reason\": \"retries exhausted\", \"held\": 12}",
        FIELDS(STR("endpoint_id", REQ), STR("url", REQ), STR("reason", REQ),
               INT_MIN_("held", REQ, 0)),
    },
    {
        .name = "endpoint.enabled",
        .description = "An endpoint was enabled again; its held deliveries resume (or are skipped)",
        .sample = "{\"endpoint_id\": \"ep_2k1Xq\", \"url\": \"https://example.com/hooks\", "
                  "\"resumed\": 12, \"skipped\": false}",
        FIELDS(STR("endpoint_id", REQ), STR("url", REQ), INT_MIN_("resumed", REQ, 0),
               BOOL("skipped", REQ)),
    },
    {
        .name = "delivery.failed",
        .description = "A delivery ended failed: retries exhausted or a non-retryable answer",
        .sample = "{\"delivery_id\": \"dlv_2k1Xr\", \"event_id\": \"evt_2k1Xs\", "
                  "\"event_type\": \"conversation.started\", \"endpoint_id\": \"ep_2k1Xq\", "
                  "\"url\": \"https://example.com/hooks\", \"attempts\": 8, "
                  "\"last_status_code\": 500, \"last_error\": \"HTTP 500\"}",
        FIELDS(STR("delivery_id", REQ), STR("event_id", REQ), STR("event_type", REQ),
               STR("endpoint_id", REQ), STR("url", REQ), INT_MIN_("attempts", REQ, 1),
               INT_RANGE("last_status_code", REQ, 0, 599, 0), STR("last_error", OPT)),
    },
    {
        .name = "endpoint.recovered",
        .description = "An endpoint answered 2xx again after failed attempts",
        .sample = "{\"endpoint_id\": \"ep_2k1Xq\", \"url\": \"https://example.com/hooks\", "
                  "\"delivery_id\": \"dlv_2k1Xr\", \"failed_attempts\": 3}",
        FIELDS(STR("endpoint_id", REQ), STR("url", REQ), STR("delivery_id", REQ),
               INT_MIN_("failed_attempts", REQ, 1)),
    },
};

#define NOWN (sizeof(own_types) / sizeof(own_types[0]))

static const struct catalog_type *
find_in(const struct catalog_type *list, size_t n, const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    }
    return NULL;
}

const struct catalog_type *
catalog_type_find(const char *name)
{
    return find_in(types, NTYPES, name);
}

const struct catalog_type *
catalog_own_find(const char *name)
{
    return find_in(own_types, NOWN, name);
}

const struct catalog_type *
catalog_any_find(const char *name)
{
    const struct catalog_type *t = catalog_type_find(name);

    return t != NULL ? t : catalog_own_find(name);
}

size_t
catalog_type_count(void)
{
    return NTYPES;
}

const struct catalog_type *
catalog_type_at(size_t i)
{
    return i < NTYPES ? &types[i] : NULL;
}

static const char *
names_of(const struct catalog_type *list, size_t count, char *out, size_t outlen)
{
    size_t i, used = 0;
    int n;

    if (outlen == 0)
        return out;
    out[0] = '\0';
    for (i = 0; i < count && used < outlen; i++) {
        n = snprintf(out + used, outlen - used, "%s%s", i > 0 ? ", " : "", list[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return out;
}

const char *
catalog_type_names(char *out, size_t outlen)
{
    return names_of(types, NTYPES, out, outlen);
}

const char *
catalog_own_names(char *out, size_t outlen)
{
    return names_of(own_types, NOWN, out, outlen);
}

/* Appends "a, b, c" (the enum values) to out at *used. */
static void
put_values(const char *const *values, char *out, size_t outlen, size_t *used)
{
    size_t i;
    int n;

    for (i = 0; values[i] != NULL && *used < outlen; i++) {
        n = snprintf(out + *used, outlen - *used, "%s%s", i > 0 ? ", " : "", values[i]);
        if (n < 0)
            return;
        *used += (size_t)n;
    }
}

const char *
catalog_field_describe(const struct catalog_field *f, char *out, size_t outlen)
{
    const char *noun = f->kind == CATALOG_INT ? "integer" : "number";
    size_t used;

    if (outlen == 0)
        return out;
    switch (f->kind) {
    case CATALOG_STRING:
        snprintf(out, outlen, "%s", "string");
        break;
    case CATALOG_EMAIL:
        snprintf(out, outlen, "%s", "string containing one @");
        break;
    case CATALOG_BOOL:
        snprintf(out, outlen, "%s", "boolean");
        break;
    case CATALOG_STRINGS:
        snprintf(out, outlen, "%s",
                 f->nonempty ? "non-empty array of strings" : "array of strings");
        break;
    case CATALOG_ENUM:
        used = (size_t)snprintf(out, outlen, "%s", "one of ");
        put_values(f->values, out, outlen, &used);
        break;
    case CATALOG_INT:
    case CATALOG_NUMBER:
        if (f->has_min && f->has_max)
            snprintf(out, outlen, "%s between %g and %g%s", noun, f->min, f->max,
                     f->nullable ? " or null" : "");
        else if (f->has_min)
            snprintf(out, outlen, "%s >= %g%s", noun, f->min, f->nullable ? " or null" : "");
        else if (f->has_max)
            snprintf(out, outlen, "%s <= %g%s", noun, f->max, f->nullable ? " or null" : "");
        else
            snprintf(out, outlen, "%s%s", noun, f->nullable ? " or null" : "");
        break;
    }
    return out;
}

/* {"min"?, "max"?, "nullable"?, "values"?} for f, or NULL when it has none of them. */
static json_t *
field_constraint_json(const struct catalog_field *f)
{
    json_t *c = NULL, *vals = NULL;
    size_t i;
    int bad = 0;

    if (!f->has_min && !f->has_max && !f->nullable && f->values == NULL)
        return NULL;
    c = json_object();
    if (c == NULL)
        return NULL;
    if (f->has_min)
        bad |= json_object_set_new(c, "min",
                                   f->kind == CATALOG_INT ? json_integer((json_int_t)f->min)
                                                          : json_real(f->min));
    if (f->has_max)
        bad |= json_object_set_new(c, "max",
                                   f->kind == CATALOG_INT ? json_integer((json_int_t)f->max)
                                                          : json_real(f->max));
    if (f->nullable)
        bad |= json_object_set_new(c, "nullable", json_true());
    if (f->values != NULL) {
        vals = json_array();
        for (i = 0; vals != NULL && f->values[i] != NULL; i++)
            bad |= json_array_append_new(vals, json_string(f->values[i]));
        bad |= json_object_set_new(c, "values", vals);
    }
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* One entry of the catalog listing, with its sample or not: a new reference or NULL. */
static json_t *
type_json(const struct catalog_type *t, int with_sample)
{
    json_t *o = NULL, *fields = NULL, *f = NULL, *c, *sample = NULL;
    char words[256];
    size_t i;
    int bad = 0;

    o = json_object();
    fields = json_array();
    if (with_sample)
        sample = json_loads(t->sample, 0, NULL);
    if (o == NULL || fields == NULL || (with_sample && sample == NULL)) {
        bad = 1;
        goto out;
    }
    for (i = 0; i < t->nfields && !bad; i++) {
        f = json_object();
        if (f == NULL) {
            bad = 1;
            goto out;
        }
        bad |= json_object_set_new(f, "name", json_string(t->fields[i].name));
        bad |= json_object_set_new(
            f, "type", json_string(catalog_field_describe(&t->fields[i], words, sizeof(words))));
        bad |= json_object_set_new(f, "required", json_boolean(t->fields[i].required));
        c = field_constraint_json(&t->fields[i]);
        if (c != NULL)
            bad |= json_object_set_new(f, "constraint", c);
        bad |= json_array_append_new(fields, f); /* steals f, even on failure */
        f = NULL;
    }
    bad |= json_object_set_new(o, "event", json_string(t->name));
    bad |= json_object_set_new(o, "description", json_string(t->description));
    bad |= json_object_set_new(o, "fields", fields);
    fields = NULL;
    if (t >= own_types && t < own_types + NOWN)
        bad |= json_object_set_new(o, "source", json_string("fluxhook"));
    if (with_sample) {
        bad |= json_object_set_new(o, "sample", sample);
        sample = NULL;
    }
out:
    json_decref(fields);
    json_decref(f);
    json_decref(sample);
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *
catalog_json(void)
{
    json_t *root = NULL, *list = NULL, *t;
    size_t i;
    int bad = 0;

    root = json_object();
    list = json_array();
    if (root == NULL || list == NULL) {
        bad = 1;
        goto out;
    }
    for (i = 0; i < NTYPES + NOWN && !bad; i++) {
        t = type_json(i < NTYPES ? &types[i] : &own_types[i - NTYPES], 1);
        bad = t == NULL || json_array_append_new(list, t) != 0;
    }
    if (!bad) {
        bad = json_object_set_new(root, "data", list) != 0;
        list = NULL; /* set_new steals it, even on failure */
    }
out:
    json_decref(list);
    if (bad) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

char *
catalog_json_text(size_t *len)
{
    struct buf b;
    struct rawjson_span span;
    const struct catalog_type *ct;
    json_t *t = NULL;
    char *text = NULL, *out = NULL;
    size_t i, n;
    int err;

    buf_init(&b, (size_t)1 << 20);
    err = buf_puts(&b, "{\"data\":[");
    for (i = 0; i < NTYPES + NOWN && err == 0; i++) {
        ct = i < NTYPES ? &types[i] : &own_types[i - NTYPES];
        t = type_json(ct, 0);
        text = t != NULL ? json_dumps(t, JSON_COMPACT) : NULL;
        if (text == NULL) {
            err = ERR_NOMEM;
            break;
        }
        /* {"event":...,"fields":[...]} becomes {"event":...,"fields":[...],"sample":<raw>} */
        n = strlen(text);
        err = buf_printf(&b, "%s%.*s,\"sample\":", i > 0 ? "," : "", (int)(n - 1), text);
        span.start = 0;
        span.end = strlen(ct->sample);
        if (err == 0)
            err = rawjson_compact(ct->sample, span, &b);
        if (err == 0)
            err = buf_putc(&b, '}');
        free(text);
        text = NULL;
        json_decref(t);
        t = NULL;
    }
    if (err == 0)
        err = buf_puts(&b, "]}");
    if (err == 0) {
        if (len != NULL)
            *len = b.len;
        out = buf_steal(&b);
    }
    json_decref(t);
    free(text);
    buf_cleanup(&b);
    return out;
}
