/*
 * The route table of the API and its matcher. /openapi.json is generated
 * from this table, so a route added here is documented there too.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "api/handlers.h"

#define PUB ROUTE_PUBLIC
#define ADM ROUTE_ADMIN
#define JSN ROUTE_JSON
#define OPT ROUTE_JSON_OPT
#define RAW ROUTE_RAW
#define BLK ROUTE_BULK
#define LOOP ROUTE_LOOP

/* The scope each route needs (routes without one need admin). */
#define EW SCOPE_EVENTS_WRITE
#define ER SCOPE_EVENTS_READ
#define NR SCOPE_ENDPOINTS_READ
#define NW SCOPE_ENDPOINTS_WRITE
#define DR SCOPE_DELIVERIES_READ
#define DW SCOPE_DELIVERIES_WRITE
#define AD SCOPE_ADMIN

const struct route api_routes[] = {
    {"GET", "/healthz", h_healthz, PUB, "Liveness and store reachability", 0},
    {"GET", "/metrics", h_metrics, PUB, "Prometheus metrics", 0},
    {"GET", "/openapi.json", h_openapi, PUB, "This API as an OpenAPI 3.0 document", 0},
    {"GET", "/v1/event-types", h_event_types_list, 0,
     "The event catalog: each type with its fields and sample", ER},

    {"POST", "/v1/events", h_events_publish, JSN | RAW | LOOP, "Publish an event", EW},
    {"POST", "/v1/events/batch", h_events_publish_batch, JSN | RAW | BLK | LOOP,
     "Publish up to 500 events in one durable commit, each answered on its own", EW},
    {"GET", "/v1/events", h_events_list, 0, "List events, newest first", ER},
    {"GET", "/v1/events/{id}", h_events_get, 0, "Read one event", ER},

    {"POST", "/v1/endpoints", h_endpoints_create, JSN, "Create an endpoint", NW},
    {"GET", "/v1/endpoints", h_endpoints_list, 0, "List endpoints", NR},
    {"GET", "/v1/endpoints/{id}", h_endpoints_get, 0, "Read one endpoint", NR},
    {"PATCH", "/v1/endpoints/{id}", h_endpoints_update, JSN, "Change an endpoint", NW},
    {"DELETE", "/v1/endpoints/{id}", h_endpoints_delete, 0, "Delete an endpoint", NW},
    {"POST", "/v1/endpoints/{id}/disable", h_endpoints_disable, OPT,
     "Disable an endpoint: its deliveries are held", NW},
    {"POST", "/v1/endpoints/{id}/enable", h_endpoints_enable, OPT,
     "Enable an endpoint: its held deliveries resume unless skip_held", NW},
    {"GET", "/v1/endpoints/{id}/secret", h_endpoints_secret, 0, "Read an endpoint's secret", NW},
    {"POST", "/v1/endpoints/{id}/secret/rotate", h_endpoints_rotate, OPT,
     "Rotate an endpoint's secret; the old one keeps signing for grace_seconds", NW},
    {"POST", "/v1/endpoints/{id}/test", h_endpoints_test, JSN,
     "Send an event type's sample to the endpoint as a real delivery", NW},
    {"GET", "/v1/endpoints/{id}/stats", h_endpoints_stats, 0,
     "Delivery counts, success rate and latency of an endpoint", DR},
    {"POST", "/v1/endpoints/{id}/replay", h_endpoints_replay, JSN,
     "Deliver again every matching delivery of an endpoint", DW},

    {"POST", "/v1/operational-endpoints", h_endpoints_create, JSN,
     "Create an operational endpoint: it receives fluxhook's own events about the account's "
     "endpoints",
     NW},
    {"GET", "/v1/operational-endpoints", h_endpoints_list, 0, "List operational endpoints", NR},
    {"GET", "/v1/operational-endpoints/{id}", h_endpoints_get, 0, "Read one operational endpoint",
     NR},
    {"PATCH", "/v1/operational-endpoints/{id}", h_endpoints_update, JSN,
     "Change an operational endpoint", NW},
    {"DELETE", "/v1/operational-endpoints/{id}", h_endpoints_delete, 0,
     "Delete an operational endpoint", NW},
    {"GET", "/v1/operational-endpoints/{id}/secret", h_endpoints_secret, 0,
     "Read an operational endpoint's secret", NW},

    {"GET", "/v1/deliveries", h_deliveries_list, 0, "List deliveries, newest first", DR},
    {"GET", "/v1/deliveries/{id}", h_deliveries_get, 0, "Read one delivery with its attempts", DR},
    {"POST", "/v1/deliveries/{id}/retry", h_deliveries_retry, OPT, "Deliver again now", DW},

    {"GET", "/v1/stats", h_stats_account, 0, "Delivery counts and latency of the account", DR},
    {"GET", "/v1/stats/series", h_stats_series, 0, "Per-minute delivery series for charts", DR},

    {"POST", "/v1/accounts", h_accounts_create, ADM | JSN, "Create an account (admin)", AD},
    {"GET", "/v1/accounts", h_accounts_list, ADM, "List accounts (admin)", AD},
    {"GET", "/v1/accounts/{id}", h_accounts_get, 0, "Read an account", NR},
    {"POST", "/v1/accounts/{id}/api-keys", h_keys_create, ADM | OPT,
     "Create an API key for an account, with scopes and expires_at; its secret is shown once "
     "(admin)",
     AD},
    {"GET", "/v1/accounts/{id}/api-keys", h_keys_list, ADM, "List an account's API keys (admin)",
     AD},
    {"DELETE", "/v1/api-keys/{id}", h_keys_delete, ADM, "Delete an API key (admin)", AD},
    {"POST", "/v1/api-keys/{id}/rotate", h_keys_rotate, ADM | OPT,
     "Rotate an API key: a new secret, shown once; the old one works for grace_seconds (admin)",
     AD},

    {"POST", "/v1/oauth-clients", h_clients_create, ADM | OPT,
     "Create an OAuth client of the account; its client_secret is shown once (admin)", AD},
    {"GET", "/v1/oauth-clients", h_clients_list, ADM, "List the account's OAuth clients (admin)",
     AD},
    {"DELETE", "/v1/oauth-clients/{id}", h_clients_delete, ADM,
     "Delete an OAuth client and revoke its tokens (admin)", AD},
    {"POST", "/oauth/token", h_oauth_token, PUB,
     "OAuth 2.0 token endpoint: client_credentials and refresh_token grants (RFC 6749)", 0},
    {"POST", "/oauth/revoke", h_oauth_revoke, PUB, "Revoke a token (RFC 7009)", 0},
    {"POST", "/oauth/introspect", h_oauth_introspect, PUB, "Describe a token (RFC 7662)", 0},
    {"GET", "/.well-known/oauth-authorization-server", h_oauth_metadata, PUB,
     "OAuth 2.0 authorization server metadata (RFC 8414)", 0},

    {"POST", "/v1/portal-links", h_portal_links_create, OPT,
     "Make a dashboard sign-in link limited to one account and some scopes", NW},
    {"POST", "/v1/portal-sessions", h_portal_sessions_create, PUB | JSN,
     "Exchange a portal link's token for a dashboard session (once)", 0},
    {"GET", "/v1/audit-log", h_audit_list, 0,
     "List the account's audit log, newest first: who changed what, and when", NR},
    {NULL, NULL, NULL, 0, NULL, 0},
};

/*
 * Matches path against pattern; on success copies the {x} segments into r's
 * params (when r is not NULL). Returns 1 on a match.
 */
static int
pattern_match(const char *pattern, const char *path, struct api_req *r)
{
    const char *p = pattern, *s = path;
    const char *seg;
    size_t used = 0, len;
    int np = 0;

    while (*p != '\0' && *s != '\0') {
        if (*p == '{') {
            seg = s;
            while (*s != '\0' && *s != '/')
                s++;
            len = (size_t)(s - seg);
            if (len == 0)
                return 0;
            while (*p != '\0' && *p != '}')
                p++;
            if (*p == '}')
                p++;
            if (r != NULL) {
                if (np == API_MAX_PARAMS || used + len + 1 > sizeof(r->params_buf))
                    return 0;
                memcpy(r->params_buf + used, seg, len);
                r->params_buf[used + len] = '\0';
                r->params[np] = r->params_buf + used;
                used += len + 1;
            }
            np++;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p != '\0' || *s != '\0')
        return 0;
    if (r != NULL)
        r->nparams = np;
    return 1;
}

const struct route *
api_route_find(const char *method, const char *path, struct api_req *r, int *path_matched)
{
    const struct route *rt;

    *path_matched = 0;
    for (rt = api_routes; rt->method != NULL; rt++) {
        if (!pattern_match(rt->pattern, path, NULL))
            continue;
        if (strcmp(rt->method, method) != 0) {
            *path_matched = 1;
            continue;
        }
        if (r != NULL && !pattern_match(rt->pattern, path, r))
            return NULL; /* parameters too long to hold: no such path */
        return rt;
    }
    return NULL;
}

size_t
api_body_cap(const char *method, const char *path)
{
    const struct route *rt;
    int matched;

    rt = api_route_find(method, path, NULL, &matched);
    return rt != NULL && (rt->flags & ROUTE_BULK) ? API_MAX_BULK_BODY : API_MAX_BODY;
}

int
api_route_allow(const char *path, char *out, size_t outlen)
{
    const struct route *rt;
    size_t n = 0;
    int count = 0;

    if (outlen > 0)
        out[0] = '\0';
    for (rt = api_routes; rt->method != NULL; rt++) {
        if (!pattern_match(rt->pattern, path, NULL))
            continue;
        if (n < outlen)
            n += (size_t)snprintf(out + n, outlen - n, "%s%s", count > 0 ? ", " : "", rt->method);
        count++;
    }
    return count;
}
