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

const struct route api_routes[] = {
    {"GET", "/healthz", h_healthz, PUB, "Liveness and store reachability"},
    {"GET", "/metrics", h_metrics, PUB, "Prometheus metrics"},
    {"GET", "/openapi.json", h_openapi, PUB, "This API as an OpenAPI 3.0 document"},
    {"GET", "/v1/event-types", h_event_types_list, 0,
     "The event catalog: each type with its fields and sample"},

    {"POST", "/v1/events", h_events_publish, JSN, "Publish an event"},
    {"GET", "/v1/events", h_events_list, 0, "List events, newest first"},
    {"GET", "/v1/events/{id}", h_events_get, 0, "Read one event"},

    {"POST", "/v1/endpoints", h_endpoints_create, JSN, "Create an endpoint"},
    {"GET", "/v1/endpoints", h_endpoints_list, 0, "List endpoints"},
    {"GET", "/v1/endpoints/{id}", h_endpoints_get, 0, "Read one endpoint"},
    {"PATCH", "/v1/endpoints/{id}", h_endpoints_update, JSN, "Change an endpoint"},
    {"DELETE", "/v1/endpoints/{id}", h_endpoints_delete, 0, "Delete an endpoint"},
    {"POST", "/v1/endpoints/{id}/disable", h_endpoints_disable, OPT,
     "Disable an endpoint: its deliveries are held"},
    {"POST", "/v1/endpoints/{id}/enable", h_endpoints_enable, OPT,
     "Enable an endpoint: its held deliveries resume unless skip_held"},
    {"GET", "/v1/endpoints/{id}/secret", h_endpoints_secret, 0, "Read an endpoint's secret"},
    {"POST", "/v1/endpoints/{id}/secret/rotate", h_endpoints_rotate, OPT,
     "Rotate an endpoint's secret; the old one keeps signing for grace_seconds"},
    {"POST", "/v1/endpoints/{id}/test", h_endpoints_test, JSN,
     "Send an event type's sample to the endpoint as a real delivery"},
    {"GET", "/v1/endpoints/{id}/stats", h_endpoints_stats, 0,
     "Delivery counts, success rate and latency of an endpoint"},
    {"POST", "/v1/endpoints/{id}/replay", h_endpoints_replay, JSN,
     "Deliver again every matching delivery of an endpoint"},

    {"GET", "/v1/deliveries", h_deliveries_list, 0, "List deliveries, newest first"},
    {"GET", "/v1/deliveries/{id}", h_deliveries_get, 0, "Read one delivery with its attempts"},
    {"POST", "/v1/deliveries/{id}/retry", h_deliveries_retry, OPT, "Deliver again now"},

    {"GET", "/v1/stats", h_stats_account, 0, "Delivery counts and latency of the account"},
    {"GET", "/v1/stats/series", h_stats_series, 0, "Per-minute delivery series for charts"},

    {"POST", "/v1/accounts", h_accounts_create, ADM | JSN, "Create an account (admin)"},
    {"GET", "/v1/accounts", h_accounts_list, ADM, "List accounts (admin)"},
    {"GET", "/v1/accounts/{id}", h_accounts_get, 0, "Read an account"},
    {"POST", "/v1/accounts/{id}/api-keys", h_keys_create, ADM | OPT,
     "Create an API key for an account; its secret is shown once (admin)"},
    {"GET", "/v1/accounts/{id}/api-keys", h_keys_list, ADM, "List an account's API keys (admin)"},
    {"DELETE", "/v1/api-keys/{id}", h_keys_delete, ADM, "Delete an API key (admin)"},
    {"GET", "/v1/audit-log", h_audit_list, 0,
     "List the account's audit log, newest first: who changed what, and when"},
    {NULL, NULL, NULL, 0, NULL},
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
