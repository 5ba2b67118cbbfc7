/*
 * The audit log: api_audit() records a change the API made, and
 * GET /v1/audit-log lists them.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

void
api_audit(struct api_req *r, const char *account_id, const char *action, const char *target,
          json_t *details)
{
    struct audit_entry e;
    char *text = NULL;
    int err;

    memset(&e, 0, sizeof(e));
    snprintf(e.account_id, sizeof(e.account_id), "%s",
             account_id != NULL ? account_id : r->account_id);
    snprintf(e.actor, sizeof(e.actor), "%s", r->key.id);
    snprintf(e.action, sizeof(e.action), "%s", action);
    snprintf(e.target, sizeof(e.target), "%s", target != NULL ? target : "");
    if (details != NULL)
        text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    e.details = text != NULL ? text : "{}";
    e.created_at = clock_now_ms();
    err = store_audit_insert(r->ctx->store, &e);
    if (err != 0)
        log_warnx("api: cannot record in the audit log action=%s target=%s actor=%s: %s", action,
                  e.target, e.actor, err_str(err));
    free(text);
    json_decref(details);
}

static json_t *
entry_json(const struct audit_entry *e)
{
    json_t *o, *details;

    details = json_loads(e->details != NULL ? e->details : "{}", 0, NULL);
    o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", e->id, "account_id", e->account_id,
                  "actor", e->actor, "action", e->action, "target",
                  e->target[0] != '\0' ? json_string(e->target) : json_null(), "details",
                  details != NULL ? details : json_object(), "created_at",
                  api_time_json(e->created_at));
    return o;
}

static const char *
entry_item(const void *items, size_t i, json_t **json)
{
    const struct audit_entry *e = (const struct audit_entry *)items + i;

    if (json != NULL)
        *json = entry_json(e);
    return e->id;
}

/* Reads an RFC 3339 query parameter into *ms (left alone when absent); answers 400 when bad. */
static int
time_param(struct api_req *r, const char *name, int64_t *ms)
{
    const char *v = api_query(r, name);

    if (v == NULL || v[0] == '\0')
        return 0;
    if (clock_parse_rfc3339(v, ms) != 0) {
        api_reply_error(r, ERR_INVAL, NULL,
                        "%s: expected an RFC 3339 UTC time such as 2024-01-01T12:00:00Z, got '%s'",
                        name, v);
        return ERR_INVAL;
    }
    return 0;
}

int
h_audit_list(struct api_req *r)
{
    struct audit_filter f;
    struct audit_entry *es = NULL;
    size_t n = 0;
    int limit, err;

    memset(&f, 0, sizeof(f));
    if (api_page_params(r, &limit, &f.after) != 0 || api_cursor_param(r, "aud_", &f.after) != 0 ||
        time_param(r, "since", &f.since) != 0 || time_param(r, "until", &f.until) != 0)
        return 0;
    f.action = api_query(r, "action");
    f.target = api_query(r, "target");
    f.actor = api_query(r, "actor");
    f.limit = api_page_fetch(limit);
    err = store_audit_list(r->ctx->store, r->account_id, &f, &es, &n);
    if (err != 0)
        err = api_reply_error(r, err, NULL, "cannot list the audit log");
    else
        err = api_page_reply(r, limit, es, n, entry_item);
    audit_entry_list_free(es, n);
    return err;
}
