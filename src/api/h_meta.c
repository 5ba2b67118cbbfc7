/*
 * The meta routes: /healthz, /metrics, /openapi.json and the event catalog.
 *
 * /openapi.json walks the route table (routes.c), so every route is in the
 * document; the table below only adds what the route table cannot say:
 * query parameters, the request body's schema and the success answer.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "events/catalog.h"
#include "util/clock.h"
#include "util/err.h"

/* --- /healthz --- */

int
h_healthz(struct api_req *r)
{
    int rc;

    rc = store_ping(r->ctx->store);
    if (rc < 0) {
        snprintf(r->retry_after, sizeof(r->retry_after), "%s", API_RETRY_AFTER_S);
        return api_reply_json(
            r, 503, json_pack("{s:s, s:s}", "status", "unavailable", "store", err_str(rc)));
    }
    return api_reply_json(r, 200,
                          json_pack("{s:s, s:s, s:s, s:I}", "status", "ok", "store", "ok",
                                    "version", FLUXHOOK_VERSION, "uptime_seconds",
                                    (json_int_t)((clock_now_ms() - r->ctx->started_at) / 1000)));
}

/* --- /metrics --- */

int
h_metrics(struct api_req *r)
{
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int64_t counts[DELIVERY__COUNT];
    struct api_guard_stats gs;
    struct store_writer_stats ws;
    struct buf b;
    int i, err;

    buf_init(&b, 4 * 1024 * 1024);
    err = store_count_by_status(r->ctx->store, counts);
    if (err != 0) {
        buf_cleanup(&b);
        return api_reply_error(r, err, NULL, "cannot count deliveries: %s", err_str(err));
    }
    buf_puts(&b, "# HELP fluxhook_deliveries Deliveries in the store by status.\n"
                 "# TYPE fluxhook_deliveries gauge\n");
    for (i = 0; i < DELIVERY__COUNT; i++)
        buf_printf(&b, "fluxhook_deliveries{status=\"%s\"} %lld\n",
                   delivery_status_name((enum delivery_status)i), (long long)counts[i]);
    buf_printf(&b,
               "# HELP fluxhook_results_fenced_total Attempt results discarded because their "
               "lease was taken over (stale results of a paused or cut-off worker).\n"
               "# TYPE fluxhook_results_fenced_total counter\n"
               "fluxhook_results_fenced_total %llu\n",
               (unsigned long long)store_fenced_count(r->ctx->store));
    store_writer_stats(r->ctx->store, &ws);
    buf_printf(&b,
               "# HELP fluxhook_store_commits_total Write transactions the store committed.\n"
               "# TYPE fluxhook_store_commits_total counter\n"
               "fluxhook_store_commits_total %llu\n"
               "# HELP fluxhook_store_syncs_total Syncs that made commits durable (one may "
               "cover several).\n"
               "# TYPE fluxhook_store_syncs_total counter\n"
               "fluxhook_store_syncs_total %llu\n"
               "# HELP fluxhook_store_writes_total Write calls the commits carried.\n"
               "# TYPE fluxhook_store_writes_total counter\n"
               "fluxhook_store_writes_total %llu\n"
               "# HELP fluxhook_store_checkpoints_total WAL checkpoints, by the thread that "
               "made them.\n"
               "# TYPE fluxhook_store_checkpoints_total counter\n"
               "fluxhook_store_checkpoints_total{by=\"checkpointer\"} %llu\n"
               "fluxhook_store_checkpoints_total{by=\"writer\"} %llu\n",
               (unsigned long long)ws.commits, (unsigned long long)ws.syncs,
               (unsigned long long)ws.writes, (unsigned long long)ws.checkpoints,
               (unsigned long long)ws.writer_checkpoints);
    if (ws.waits) {
        buf_puts(&b, "# HELP fluxhook_store_sync_seconds WAL syncs, each making every commit "
                     "before it durable.\n"
                     "# TYPE fluxhook_store_sync_seconds histogram\n");
        lathist_print(&b, "fluxhook_store_sync_seconds", "", &ws.sync);
        buf_puts(&b, "# HELP fluxhook_store_wait_seconds Where a durable write (a publish) "
                     "waited: queued until its transaction committed (stage=commit), then "
                     "until the WAL sync covering it ended (stage=sync).\n"
                     "# TYPE fluxhook_store_wait_seconds histogram\n");
        lathist_print(&b, "fluxhook_store_wait_seconds", "stage=\"commit\",", &ws.wait_commit);
        lathist_print(&b, "fluxhook_store_wait_seconds", "stage=\"sync\",", &ws.wait_sync);
    }
    buf_puts(&b, "# HELP fluxhook_http_requests_total HTTP requests answered, by status class.\n"
                 "# TYPE fluxhook_http_requests_total counter\n");
    for (i = 1; i <= 5; i++)
        buf_printf(&b, "fluxhook_http_requests_total{code=\"%s\"} %lld\n", classes[i],
                   (long long)__atomic_load_n(&r->ctx->counters->by_class[i], __ATOMIC_RELAXED));
    if (r->ctx->guard != NULL) {
        api_guard_stats_get(r->ctx->guard, &gs);
        buf_printf(&b,
                   "# HELP fluxhook_http_connections HTTP connections open now.\n"
                   "# TYPE fluxhook_http_connections gauge\n"
                   "fluxhook_http_connections{state=\"all\"} %lld\n"
                   "fluxhook_http_connections{state=\"idle\"} %lld\n"
                   "# HELP fluxhook_http_connections_closed_total HTTP connections the server "
                   "closed: idle ones shed near the connection limit, and those whose request "
                   "head or body came too late.\n"
                   "# TYPE fluxhook_http_connections_closed_total counter\n"
                   "fluxhook_http_connections_closed_total{reason=\"shed\"} %lld\n"
                   "fluxhook_http_connections_closed_total{reason=\"head_timeout\"} %lld\n"
                   "fluxhook_http_connections_closed_total{reason=\"body_timeout\"} %lld\n",
                   (long long)gs.open, (long long)gs.idle, (long long)gs.shed,
                   (long long)gs.head_timeouts, (long long)gs.body_timeouts);
    }
    buf_puts(&b, "# HELP fluxhook_uptime_seconds Seconds since this process started serving.\n"
                 "# TYPE fluxhook_uptime_seconds gauge\n");
    buf_printf(&b, "fluxhook_uptime_seconds %lld\n",
               (long long)((clock_now_ms() - r->ctx->started_at) / 1000));
    if (r->ctx->cfg->metrics_fn != NULL)
        r->ctx->cfg->metrics_fn(&b, r->ctx->cfg->metrics_arg);
    api_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf_cstr(&b), b.len);
    buf_cleanup(&b);
    return 0;
}

/* --- /v1/event-types --- */

int
h_event_types_list(struct api_req *r)
{
    json_t *cat = catalog_json();

    if (cat == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    return api_reply_json(r, 200, cat);
}

/* --- /openapi.json --- */

/* What the route table cannot say about a route. */
struct route_doc {
    const char *method;
    const char *pattern;
    const char *query;    /* "name:type:description;..." or NULL; type is a JSON Schema type */
    const char *request;  /* schema name of the body, or NULL */
    int status;           /* the success status */
    const char *response; /* schema name of the answer, NULL for none, "text" for text */
};

static const struct route_doc route_docs[] = {
    {"GET", "/healthz", NULL, NULL, 200, "Health"},
    {"GET", "/metrics", NULL, NULL, 200, "text"},
    {"GET", "/openapi.json", NULL, NULL, 200, "Object"},
    {"GET", "/v1/event-types", NULL, NULL, 200, "EventTypeList"},
    {"POST", "/v1/events", NULL, "EventPublish", 202, "EventPublished"},
    {"POST", "/v1/events/batch", NULL, "EventBatch", 200, "EventBatchResults"},
    {"GET", "/v1/events",
     "event:string:only events of this type;limit:integer:page size, 1..500 (default 50);"
     "after:string:the next cursor of the previous page",
     NULL, 200, "EventList"},
    {"GET", "/v1/events/{id}", NULL, NULL, 200, "Event"},
    {"POST", "/v1/endpoints", NULL, "EndpointCreate", 201, "EndpointWithSecret"},
    {"GET", "/v1/endpoints",
     "limit:integer:page size, 1..500 (default 50);after:string:the next cursor of the "
     "previous page",
     NULL, 200, "EndpointList"},
    {"GET", "/v1/endpoints/{id}", NULL, NULL, 200, "Endpoint"},
    {"PATCH", "/v1/endpoints/{id}", NULL, "EndpointUpdate", 200, "Endpoint"},
    {"DELETE", "/v1/endpoints/{id}", NULL, NULL, 204, NULL},
    {"POST", "/v1/endpoints/{id}/disable", NULL, "EndpointDisable", 200, "Endpoint"},
    {"POST", "/v1/endpoints/{id}/enable", NULL, "EndpointEnable", 200, "Endpoint"},
    {"GET", "/v1/endpoints/{id}/secret", NULL, NULL, 200, "Secret"},
    {"POST", "/v1/endpoints/{id}/secret/rotate", NULL, "SecretRotate", 200, "Secret"},
    {"POST", "/v1/endpoints/{id}/test", NULL, "EndpointTest", 202, "TestSent"},
    {"GET", "/v1/endpoints/{id}/stats", NULL, NULL, 200, "Stats"},
    {"POST", "/v1/endpoints/{id}/replay", NULL, "Replay", 202, "Replayed"},
    {"POST", "/v1/operational-endpoints", NULL, "EndpointCreate", 201, "EndpointWithSecret"},
    {"GET", "/v1/operational-endpoints",
     "limit:integer:page size, 1..500 (default 50);after:string:the next cursor of the "
     "previous page",
     NULL, 200, "EndpointList"},
    {"GET", "/v1/operational-endpoints/{id}", NULL, NULL, 200, "Endpoint"},
    {"PATCH", "/v1/operational-endpoints/{id}", NULL, "EndpointUpdate", 200, "Endpoint"},
    {"DELETE", "/v1/operational-endpoints/{id}", NULL, NULL, 204, NULL},
    {"GET", "/v1/operational-endpoints/{id}/secret", NULL, NULL, 200, "Secret"},
    {"GET", "/v1/deliveries",
     "endpoint_id:string:only deliveries to this endpoint;event_id:string:only deliveries of "
     "this event;event:string:only deliveries of this event type;status:string:pending, "
     "delivering, delivered, failed or held;since:string:only deliveries created then or later "
     "(RFC 3339);until:string:only deliveries created before then (RFC 3339);"
     "limit:integer:page size, 1..500 (default 50);after:string:the next cursor of the previous "
     "page",
     NULL, 200, "DeliveryList"},
    {"GET", "/v1/deliveries/{id}", NULL, NULL, 200, "DeliveryWithAttempts"},
    {"POST", "/v1/deliveries/{id}/retry", NULL, NULL, 202, "Delivery"},
    {"GET", "/v1/stats", NULL, NULL, 200, "Stats"},
    {"GET", "/v1/stats/series", "endpoint_id:string:only this endpoint;window:string:1h or 24h",
     NULL, 200, "Series"},
    {"POST", "/v1/accounts", NULL, "AccountCreate", 201, "Account"},
    {"GET", "/v1/accounts",
     "limit:integer:page size, 1..500 (default 50);after:string:the next cursor of the "
     "previous page",
     NULL, 200, "AccountList"},
    {"GET", "/v1/accounts/{id}", NULL, NULL, 200, "Account"},
    {"POST", "/v1/accounts/{id}/api-keys", NULL, "ApiKeyCreate", 201, "ApiKeyWithSecret"},
    {"GET", "/v1/accounts/{id}/api-keys", NULL, NULL, 200, "ApiKeyList"},
    {"DELETE", "/v1/api-keys/{id}", NULL, NULL, 204, NULL},
    {"POST", "/v1/api-keys/{id}/rotate", NULL, "ApiKeyRotate", 200, "ApiKeyWithSecret"},
    {"POST", "/v1/oauth-clients", NULL, "OAuthClientCreate", 201, "OAuthClientWithSecret"},
    {"GET", "/v1/oauth-clients", NULL, NULL, 200, "OAuthClientList"},
    {"DELETE", "/v1/oauth-clients/{id}", NULL, NULL, 204, NULL},
    {"POST", "/oauth/token", NULL, "form:TokenRequest", 200, "TokenResponse"},
    {"POST", "/oauth/revoke", NULL, "form:TokenRevoke", 200, NULL},
    {"POST", "/oauth/introspect", NULL, "form:TokenRevoke", 200, "Introspection"},
    {"GET", "/.well-known/oauth-authorization-server", NULL, NULL, 200, "ServerMetadata"},
    {"POST", "/v1/portal-links", NULL, "PortalLinkCreate", 201, "PortalLink"},
    {"POST", "/v1/portal-sessions", NULL, "PortalSessionCreate", 201, "PortalSession"},
    {"GET", "/v1/audit-log",
     "action:string:only entries of this action, such as endpoint.updated;target:string:only "
     "entries about this object id;actor:string:only changes made by this credential id;"
     "since:string:only entries at or after this RFC 3339 time;until:string:only entries "
     "before this RFC 3339 time;limit:integer:page size, 1..500 (default 50);"
     "after:string:the next cursor of the previous page",
     NULL, 200, "AuditLog"},
    {NULL, NULL, NULL, NULL, 0, NULL},
};

/* The schemas; "$ref" targets of route_docs. */
static const char openapi_components[] =
    "{"
    "\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\","
    "\"description\":\"An API key (fhk_...), an OAuth access token (fha_...) or a portal "
    "session (fhs_...). Each operation needs the scope named in x-fluxhook-scope (admin "
    "covers every scope); without it the answer is 403 naming the scope.\"},"
    "\"oauth2\":{\"type\":\"oauth2\",\"flows\":{\"clientCredentials\":{"
    "\"tokenUrl\":\"/oauth/token\",\"refreshUrl\":\"/oauth/token\",\"scopes\":{"
    "\"events:write\":\"publish events\",\"events:read\":\"read events and the event catalog\","
    "\"endpoints:read\":\"read endpoints and the account\","
    "\"endpoints:write\":\"create, change, delete, test endpoints; read and rotate secrets; "
    "make portal links\","
    "\"deliveries:read\":\"read deliveries, attempts and statistics\","
    "\"deliveries:write\":\"retry and replay deliveries\","
    "\"admin\":\"everything, for every account: accounts, keys, OAuth clients\"}}}}},"
    "\"schemas\":{"
    "\"Object\":{\"type\":\"object\"},"
    "\"OAuthError\":{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{"
    "\"error\":{\"type\":\"string\",\"example\":\"invalid_grant\"},"
    "\"error_description\":{\"type\":\"string\"}}},"
    "\"Time\":{\"type\":\"string\",\"format\":\"date-time\",\"nullable\":true},"
    "\"Error\":{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{"
    "\"type\":\"object\",\"required\":[\"type\",\"message\"],\"properties\":{"
    "\"type\":{\"type\":\"string\",\"example\":\"not_found\"},"
    "\"message\":{\"type\":\"string\"},"
    "\"fields\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"path\","
    "\"problem\"],\"properties\":{\"path\":{\"type\":\"string\",\"example\":\"data.agent_id\"},"
    "\"problem\":{\"type\":\"string\"}}}}}}}},"
    "\"Health\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"},"
    "\"store\":{\"type\":\"string\"},\"version\":{\"type\":\"string\"},"
    "\"uptime_seconds\":{\"type\":\"integer\"}}},"
    "\"EventTypeList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"event\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"},\"fields\":{\"type\":\"array\",\"items\":{"
    "\"type\":\"object\"}},\"sample\":{\"type\":\"object\"},"
    "\"source\":{\"type\":\"string\",\"enum\":[\"fluxhook\"],\"description\":\"present on "
    "fluxhook's own types, sent only to operational endpoints\"}}}}}},"
    "\"EventPublish\":{\"type\":\"object\",\"required\":[\"event\",\"data\"],\"properties\":{"
    "\"event\":{\"type\":\"string\",\"example\":\"conversation.started\"},"
    "\"data\":{\"type\":\"object\"},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"EventBatch\":{\"type\":\"object\",\"required\":[\"events\"],\"properties\":{"
    "\"events\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":500,\"items\":{"
    "\"allOf\":[{\"$ref\":\"#/components/schemas/EventPublish\"},{\"type\":\"object\","
    "\"properties\":{\"idempotency_key\":{\"type\":\"string\",\"maxLength\":255,"
    "\"description\":\"like the Idempotency-Key header of a single publish\"}}}]}}}},"
    "\"EventBatchResults\":{\"type\":\"object\",\"properties\":{\"results\":{"
    "\"type\":\"array\",\"description\":\"one per event, in order: the published event "
    "(status 202, or 200 for a repeated idempotency_key) or why it was refused (status and "
    "error, as the single publish would answer)\",\"items\":{\"type\":\"object\","
    "\"properties\":{\"status\":{\"type\":\"integer\"},\"id\":{\"type\":\"string\"},"
    "\"event\":{\"type\":\"string\"},\"timestamp\":{\"type\":\"string\"},"
    "\"deliveries\":{\"type\":\"integer\"},\"error\":{\"type\":\"object\"}}}}}},"
    "\"EventPublished\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"event\":{\"type\":\"string\"},\"timestamp\":{\"type\":\"string\"},"
    "\"deliveries\":{\"type\":\"integer\"}}},"
    "\"Event\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\","
    "\"example\":\"evt_01JD...\"},\"event\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"string\"},\"data\":{\"type\":\"object\"},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"deliveries\":{\"type\":\"integer\",\"description\":\"endpoints it fanned out to\"}}},"
    "\"EventList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Event\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"EndpointCreate\":{\"type\":\"object\",\"required\":[\"url\"],\"properties\":{"
    "\"url\":{\"type\":\"string\",\"format\":\"uri\"},\"description\":{\"type\":\"string\"},"
    "\"event_types\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
    "\"description\":\"absent or empty: every type\"},"
    "\"secret\":{\"type\":\"string\",\"description\":\"whsec_ + base64 of 24 or more bytes\"},"
    "\"enabled\":{\"type\":\"boolean\"}}},"
    "\"EndpointUpdate\":{\"type\":\"object\",\"properties\":{"
    "\"url\":{\"type\":\"string\",\"format\":\"uri\"},\"description\":{\"type\":\"string\"},"
    "\"event_types\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"EndpointDisable\":{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"}}},"
    "\"EndpointEnable\":{\"type\":\"object\",\"properties\":{\"skip_held\":{\"type\":"
    "\"boolean\"}}},"
    "\"Endpoint\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"url\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},"
    "\"event_types\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"status\":{\"type\":\"string\",\"enum\":[\"enabled\",\"disabled\"]},"
    "\"disabled_reason\":{\"type\":\"string\",\"nullable\":true},"
    "\"disabled_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"held\":{\"type\":\"integer\"},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"updated_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"EndpointWithSecret\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Endpoint\"},"
    "{\"type\":\"object\",\"properties\":{\"secret\":{\"type\":\"string\"}}}]},"
    "\"EndpointList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Endpoint\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"Secret\":{\"type\":\"object\",\"properties\":{\"secret\":{\"type\":\"string\"},"
    "\"previous\":{\"type\":\"object\",\"nullable\":true,\"description\":\"the secret before "
    "the last rotation, while it still signs\",\"properties\":{\"secret\":{\"type\":\"string\"},"
    "\"expires_at\":{\"$ref\":\"#/components/schemas/Time\"}}}}},"
    "\"SecretRotate\":{\"type\":\"object\",\"properties\":{\"grace_seconds\":{\"type\":"
    "\"integer\",\"default\":86400}}},"
    "\"EndpointTest\":{\"type\":\"object\",\"required\":[\"event\"],\"properties\":{"
    "\"event\":{\"type\":\"string\"},\"data\":{\"type\":\"object\",\"description\":"
    "\"the event's data instead of the catalog sample; checked against the catalog as at "
    "publish (422 with field paths)\"}}},"
    "\"TestSent\":{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},"
    "\"delivery_id\":{\"type\":\"string\"}}},"
    "\"Replay\":{\"type\":\"object\",\"required\":[\"since\"],\"properties\":{"
    "\"since\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"until\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"status\":{\"type\":\"string\",\"enum\":[\"delivered\",\"failed\"],\"description\":"
    "\"absent: both\"},"
    "\"dry_run\":{\"type\":\"boolean\",\"default\":false,\"description\":\"true: answer "
    "200 with how many deliveries the replay would take (counted, not listed) and the first "
    "ids, and change nothing\"}}},"
    "\"Replayed\":{\"type\":\"object\",\"properties\":{\"replayed\":{\"type\":\"integer\"}}},"
    "\"ReplayPreview\":{\"type\":\"object\",\"properties\":{"
    "\"dry_run\":{\"type\":\"boolean\"},"
    "\"would_replay\":{\"type\":\"integer\",\"description\":\"exactly how many\"},"
    "\"ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":"
    "\"the first (oldest) of them, up to 10\"}}},"
    "\"StatsWindow\":{\"type\":\"object\",\"properties\":{"
    "\"since\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"counts\":{\"type\":\"object\",\"description\":\"deliveries created in the window, "
    "by status\",\"additionalProperties\":{\"type\":\"integer\"}},"
    "\"deliveries\":{\"type\":\"integer\"},\"attempts\":{\"type\":\"integer\"},"
    "\"attempts_ok\":{\"type\":\"integer\"},"
    "\"success_rate\":{\"type\":\"number\",\"nullable\":true,\"description\":\"delivered "
    "/ (delivered + failed) of the window's deliveries, 0..1; null when none has ended\"},"
    "\"latency_ms\":{\"type\":\"object\",\"nullable\":true,\"properties\":{"
    "\"p50\":{\"type\":\"integer\"},\"p95\":{\"type\":\"integer\"},"
    "\"p99\":{\"type\":\"integer\"}}}}},"
    "\"Stats\":{\"type\":\"object\",\"properties\":{"
    "\"hour\":{\"$ref\":\"#/components/schemas/StatsWindow\"},"
    "\"day\":{\"$ref\":\"#/components/schemas/StatsWindow\"}}},"
    "\"Series\":{\"type\":\"object\",\"properties\":{\"window\":{\"type\":\"string\"},"
    "\"bucket_seconds\":{\"type\":\"integer\"},"
    "\"since\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"endpoint_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"data\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"start\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"delivered\":{\"type\":\"integer\"},\"failed\":{\"type\":\"integer\"},"
    "\"retried\":{\"type\":\"integer\"},"
    "\"p50_ms\":{\"type\":\"integer\",\"nullable\":true},"
    "\"p95_ms\":{\"type\":\"integer\",\"nullable\":true}}}}}},"
    "\"Attempt\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},"
    "\"at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"status_code\":{\"type\":\"integer\",\"nullable\":true},"
    "\"error\":{\"type\":\"string\",\"nullable\":true},"
    "\"error_class\":{\"type\":\"string\",\"enum\":[\"dns\",\"connect\",\"tls\",\"timeout\","
    "\"protocol\",\"reset\",\"blocked\"],\"description\":\"why no HTTP answer came; absent "
    "when one came. blocked fails the delivery at once, every other class is retried\"},"
    "\"duration_ms\":{\"type\":\"integer\"},"
    "\"response_body\":{\"type\":\"string\",\"nullable\":true},"
    "\"request_headers\":{\"type\":\"array\",\"nullable\":true,\"description\":\"the "
    "headers the attempt was sent with, signatures included, in order; null for attempts "
    "recorded before they were kept\",\"items\":{\"$ref\":\"#/components/schemas/Header\"}},"
    "\"response_headers\":{\"type\":\"array\",\"nullable\":true,\"description\":\"the "
    "header lines of the receiver's answer, the first 4 KiB; null without an answer\","
    "\"items\":{\"$ref\":\"#/components/schemas/Header\"}}}},"
    "\"Header\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"value\":{\"type\":\"string\"}}},"
    "\"Delivery\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"event_id\":{\"type\":\"string\"},\"endpoint_id\":{\"type\":\"string\"},"
    "\"event\":{\"type\":\"string\"},\"status\":{\"type\":\"string\",\"enum\":[\"pending\","
    "\"delivering\",\"delivered\",\"failed\",\"held\"]},"
    "\"attempts_made\":{\"type\":\"integer\"},"
    "\"max_attempts\":{\"type\":\"integer\",\"description\":\"attempts in a round: the length of "
    "the server's retry schedule\"},"
    "\"round_attempts\":{\"type\":\"integer\",\"description\":\"attempts of the current "
    "round; a retry, a replay or enabling the endpoint starts a new round\"},"
    "\"next_attempt_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"last_status_code\":{\"type\":\"integer\",\"nullable\":true},"
    "\"last_error\":{\"type\":\"string\",\"nullable\":true},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"updated_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"DeliveryWithAttempts\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Delivery\"},"
    "{\"type\":\"object\",\"properties\":{\"attempts\":{\"type\":\"array\",\"items\":{"
    "\"$ref\":\"#/components/schemas/Attempt\"}},"
    "\"headers\":{\"type\":\"object\",\"description\":\"the request headers every attempt "
    "carried, besides X-Workflux-Attempt, webhook-timestamp and the signatures\","
    "\"additionalProperties\":{\"type\":\"string\"}}}}]},"
    "\"DeliveryList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Delivery\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"AccountCreate\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"}}},"
    "\"Account\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"name\":{\"type\":\"string\"},\"created_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"AccountList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Account\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"Scopes\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":["
    "\"events:write\",\"events:read\",\"endpoints:read\",\"endpoints:write\","
    "\"deliveries:read\",\"deliveries:write\",\"admin\"]}},"
    "\"ApiKeyCreate\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"admin\":{\"type\":\"boolean\",\"default\":false},"
    "\"scopes\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Scopes\"}],"
    "\"description\":\"default: every scope of the account (and admin with admin: true)\"},"
    "\"expires_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"ApiKeyRotate\":{\"type\":\"object\",\"properties\":{\"grace_seconds\":{"
    "\"type\":\"integer\",\"minimum\":0,\"maximum\":2592000,\"default\":86400,"
    "\"description\":\"how long the old secret keeps working\"}}},"
    "\"ApiKey\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"account_id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"admin\":{\"type\":\"boolean\"},\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"},"
    "\"expires_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"last_used_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"previous_secret_expires_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"OAuthClientCreate\":{\"type\":\"object\",\"properties\":{\"name\":{"
    "\"type\":\"string\"},\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"}}},"
    "\"OAuthClient\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"client_id\":{\"type\":\"string\"},\"account_id\":{\"type\":\"string\"},"
    "\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"OAuthClientWithSecret\":{\"allOf\":[{\"$ref\":\"#/components/schemas/OAuthClient\"},"
    "{\"type\":\"object\",\"properties\":{\"client_secret\":{\"type\":\"string\","
    "\"description\":\"shown only in this answer\"}}}]},"
    "\"OAuthClientList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/OAuthClient\"}}}},"
    "\"TokenRequest\":{\"type\":\"object\",\"required\":[\"grant_type\"],\"properties\":{"
    "\"grant_type\":{\"type\":\"string\",\"enum\":[\"client_credentials\","
    "\"refresh_token\"]},\"scope\":{\"type\":\"string\"},"
    "\"refresh_token\":{\"type\":\"string\"},\"client_id\":{\"type\":\"string\"},"
    "\"client_secret\":{\"type\":\"string\"}}},"
    "\"TokenRevoke\":{\"type\":\"object\",\"required\":[\"token\"],\"properties\":{"
    "\"token\":{\"type\":\"string\"},\"token_type_hint\":{\"type\":\"string\"},"
    "\"client_id\":{\"type\":\"string\"},\"client_secret\":{\"type\":\"string\"}}},"
    "\"TokenResponse\":{\"type\":\"object\",\"properties\":{"
    "\"access_token\":{\"type\":\"string\"},\"token_type\":{\"type\":\"string\"},"
    "\"expires_in\":{\"type\":\"integer\"},\"refresh_token\":{\"type\":\"string\"},"
    "\"scope\":{\"type\":\"string\"}}},"
    "\"Introspection\":{\"type\":\"object\",\"required\":[\"active\"],\"properties\":{"
    "\"active\":{\"type\":\"boolean\"},\"scope\":{\"type\":\"string\"},"
    "\"client_id\":{\"type\":\"string\"},\"token_type\":{\"type\":\"string\"},"
    "\"exp\":{\"type\":\"integer\"},\"iat\":{\"type\":\"integer\"},"
    "\"sub\":{\"type\":\"string\"},\"jti\":{\"type\":\"string\"}}},"
    "\"ServerMetadata\":{\"type\":\"object\",\"properties\":{\"issuer\":{"
    "\"type\":\"string\"},\"token_endpoint\":{\"type\":\"string\"},"
    "\"revocation_endpoint\":{\"type\":\"string\"},"
    "\"introspection_endpoint\":{\"type\":\"string\"},"
    "\"grant_types_supported\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"scopes_supported\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"PortalLinkCreate\":{\"type\":\"object\",\"properties\":{"
    "\"account_id\":{\"type\":\"string\",\"description\":\"default: the caller's account; "
    "another one needs admin\"},\"expires_in\":{\"type\":\"integer\",\"minimum\":60,"
    "\"maximum\":86400,\"default\":3600},\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"}}},"
    "\"PortalLink\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"url\":{\"type\":\"string\"},\"expires_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"account_id\":{\"type\":\"string\"},\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"}}},"
    "\"PortalSessionCreate\":{\"type\":\"object\",\"required\":[\"token\"],\"properties\":{"
    "\"token\":{\"type\":\"string\",\"description\":\"the fhl_ token of a portal link\"}}},"
    "\"PortalSession\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"access_token\":{\"type\":\"string\"},\"token_type\":{\"type\":\"string\"},"
    "\"account_id\":{\"type\":\"string\"},\"scopes\":{\"$ref\":\"#/components/schemas/Scopes\"},"
    "\"expires_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"ApiKeyWithSecret\":{\"allOf\":[{\"$ref\":\"#/components/schemas/ApiKey\"},"
    "{\"type\":\"object\",\"properties\":{\"secret\":{\"type\":\"string\","
    "\"description\":\"the key itself, shown only in this answer\"}}}]},"
    "\"ApiKeyList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/ApiKey\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"AuditEntry\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"account_id\":{\"type\":\"string\"},\"actor\":{\"type\":\"string\","
    "\"description\":\"the id of the credential that made the change (API key, token or "
    "portal session)\"},\"action\":{\"type\":\"string\",\"description\":\"endpoint.created, "
    "endpoint.updated, endpoint.deleted, endpoint.enabled, endpoint.disabled, "
    "endpoint.secret_revealed, endpoint.secret_rotated, endpoint.replayed, delivery.retried, "
    "account.created, api_key.created, api_key.rotated, api_key.deleted, oauth_client.created, "
    "oauth_client.deleted, portal_link.issued\"},\"target\":{\"type\":"
    "\"string\",\"nullable\":true},\"details\":{\"type\":\"object\",\"description\":"
    "\"the changed fields; never a secret\"},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"AuditLog\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/AuditEntry\"}},\"next\":{\"type\":\"string\","
    "\"nullable\":true}}}"
    "}}";

static const struct route_doc *
doc_find(const struct route *rt)
{
    const struct route_doc *d;

    for (d = route_docs; d->method != NULL; d++) {
        if (strcmp(d->method, rt->method) == 0 && strcmp(d->pattern, rt->pattern) == 0)
            return d;
    }
    return NULL;
}

static json_t *
schema_ref(const char *name)
{
    char ref[128];

    snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", ref);
}

static json_t *
json_content(const char *schema)
{
    return json_pack("{s:{s:o}}", "application/json", "schema", schema_ref(schema));
}

/* The parameters of a route: its {x} path segments, then the documented query ones. */
static json_t *
op_parameters(const struct route *rt, const struct route_doc *d)
{
    json_t *params = json_array();
    const char *p, *end, *item, *c1, *c2;
    char name[64], type[32], desc[256];
    size_t n;

    for (p = strchr(rt->pattern, '{'); p != NULL; p = strchr(end, '{')) {
        end = strchr(p, '}');
        if (end == NULL)
            break;
        n = (size_t)(end - p - 1);
        snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in",
                                                "path", "required", 1, "schema", "type", "string"));
    }
    for (item = d != NULL ? d->query : NULL; item != NULL && *item != '\0';) {
        end = strchr(item, ';');
        if (end == NULL)
            end = item + strlen(item);
        c1 = memchr(item, ':', (size_t)(end - item));
        c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
        if (c1 != NULL && c2 != NULL) {
            snprintf(name, sizeof(name), "%.*s", (int)(c1 - item), item);
            snprintf(type, sizeof(type), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
            snprintf(desc, sizeof(desc), "%.*s", (int)(end - c2 - 1), c2 + 1);
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name", name,
                                                    "in", "query", "required", 0, "description",
                                                    desc, "schema", "type", type));
        }
        item = *end == ';' ? end + 1 : end;
    }
    return params;
}

static void
op_error(json_t *responses, const char *status, const char *desc)
{
    json_object_set_new(
        responses, status,
        json_pack("{s:s, s:o}", "description", desc, "content", json_content("Error")));
}

static json_t *
op_json(const struct route *rt, const struct route_doc *d)
{
    json_t *op, *responses, *ok, *params;
    char status[8], opid[160];
    const char *p, *scope;
    size_t n = 0;
    int first = 1;

    /* operationId: method and path in camel case, "getV1EndpointsIdSecret". */
    for (p = rt->method; *p != '\0' && n + 1 < sizeof(opid); p++)
        opid[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    for (p = rt->pattern; *p != '\0' && n + 1 < sizeof(opid); p++) {
        if (*p == '/' || *p == '-' || *p == '.' || *p == '{' || *p == '}' || *p == '_') {
            first = 1;
            continue;
        }
        opid[n++] = (char)(first && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        first = 0;
    }
    opid[n] = '\0';

    op = json_pack("{s:s, s:s}", "summary", rt->summary, "operationId", opid);
    params = op_parameters(rt, d);
    if (json_array_size(params) > 0)
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    if (rt->flags & ROUTE_PUBLIC) {
        json_object_set_new(op, "security", json_array());
    } else {
        scope = api_scope_name(rt->scope != 0 ? rt->scope : SCOPE_ADMIN);
        json_object_set_new(op, "security",
                            json_pack("[{s:[]}, {s:[s]}]", "bearer", "oauth2", scope));
        json_object_set_new(op, "x-fluxhook-scope", json_string(scope));
    }
    if (d != NULL && d->request != NULL && strncmp(d->request, "form:", 5) == 0)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                                      "application/x-www-form-urlencoded", "schema",
                                      schema_ref(d->request + 5)));
    else if (d != NULL && d->request != NULL)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:o}", "required", (rt->flags & ROUTE_JSON) ? 1 : 0,
                                      "content", json_content(d->request)));
    responses = json_object();
    snprintf(status, sizeof(status), "%d", d != NULL ? d->status : 200);
    ok = json_pack("{s:s}", "description", "success");
    if (d != NULL && d->response != NULL && strcmp(d->response, "text") == 0)
        json_object_set_new(ok, "content",
                            json_pack("{s:{s:{s:s}}}", "text/plain", "schema", "type", "string"));
    else if (d == NULL || d->response != NULL)
        json_object_set_new(ok, "content", json_content(d != NULL ? d->response : "Object"));
    json_object_set_new(responses, status, ok);
    if (d != NULL && d->request != NULL && strcmp(d->request, "Replay") == 0)
        json_object_set_new(responses, "200",
                            json_pack("{s:s, s:o}", "description",
                                      "dry_run: what the replay would take; nothing changed",
                                      "content", json_content("ReplayPreview")));
    if (rt->flags & (ROUTE_JSON | ROUTE_JSON_OPT) || (d != NULL && d->query != NULL))
        op_error(responses, "400", "malformed JSON or an invalid parameter");
    if (!(rt->flags & ROUTE_PUBLIC)) {
        op_error(responses, "401", "no credential, or an invalid, expired or revoked one");
        op_error(responses, "403", "the credential lacks the scope in x-fluxhook-scope");
        op_error(responses, "429",
                 "over the rate limit (RateLimit-* headers; Retry-After says when to retry)");
    } else if (strncmp(rt->pattern, "/oauth/", 7) == 0) {
        json_object_set_new(responses, "400",
                            json_pack("{s:s, s:{s:{s:o}}}", "description",
                                      "an RFC 6749 §5.2 error: invalid_request, invalid_grant, "
                                      "invalid_scope, unsupported_grant_type",
                                      "content", "application/json", "schema",
                                      schema_ref("OAuthError")));
        json_object_set_new(responses, "401",
                            json_pack("{s:s, s:{s:{s:o}}}", "description",
                                      "invalid_client (with WWW-Authenticate: Basic)", "content",
                                      "application/json", "schema", schema_ref("OAuthError")));
    }
    if (strchr(rt->pattern, '{') != NULL)
        op_error(responses, "404", "no such object in this account");
    if (rt->flags & (ROUTE_JSON | ROUTE_JSON_OPT)) {
        op_error(responses, "413",
                 (rt->flags & ROUTE_BULK) ? "the body is larger than 8 MiB"
                                          : "the body is larger than 256 KiB");
        op_error(responses, "415", "the body is not application/json");
        op_error(responses, "422", "valid JSON that breaks the rules; every problem listed");
    }
    op_error(responses, "default", "an error");
    json_object_set_new(op, "responses", responses);
    return op;
}

/* The document, built once: it depends only on the tables above. */
static char *openapi_text;
static size_t openapi_len;
static pthread_once_t openapi_once = PTHREAD_ONCE_INIT;

static json_t *openapi_build(void);

static void
openapi_init(void)
{
    json_t *doc = openapi_build();

    if (doc == NULL)
        return;
    openapi_text = json_dumps(doc, JSON_COMPACT);
    openapi_len = openapi_text != NULL ? strlen(openapi_text) : 0;
    json_decref(doc);
}

int
h_openapi(struct api_req *r)
{
    pthread_once(&openapi_once, openapi_init);
    if (openapi_text == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "cannot build the OpenAPI document");
    return api_reply_raw(r, 200, "application/json", openapi_text, openapi_len);
}

static json_t *
openapi_build(void)
{
    const struct route *rt;
    json_t *doc, *paths, *item, *comp;
    char method[16];
    size_t i;

    comp = json_loads(openapi_components, 0, NULL);
    paths = json_object();
    for (rt = api_routes; rt->method != NULL; rt++) {
        item = json_object_get(paths, rt->pattern);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, rt->pattern, item);
        }
        for (i = 0; rt->method[i] != '\0' && i + 1 < sizeof(method); i++)
            method[i] = (char)(rt->method[i] - 'A' + 'a');
        method[i] = '\0';
        json_object_set_new(item, method, op_json(rt, doc_find(rt)));
    }
    doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o, s:[{s:[]}]}", "openapi", "3.0.3",
                    "info", "title", "fluxhook", "version", FLUXHOOK_VERSION, "description",
                    "The fluxhook webhook delivery API: publish events, manage endpoints, "
                    "inspect and replay deliveries.",
                    "servers", "url", "/", "paths", paths, "components",
                    comp != NULL ? comp : json_object(), "security", "bearer");
    return doc;
}
