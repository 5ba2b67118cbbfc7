/*
 * Every route handler of the API, by the file that implements it. routes.c
 * binds them to methods and paths.
 */
#ifndef FLUXHOOK_API_HANDLERS_H
#define FLUXHOOK_API_HANDLERS_H

#include "api/api_int.h"

/* h_meta.c */
api_handler_fn h_healthz;            /* GET /healthz */
api_handler_fn h_metrics;            /* GET /metrics */
api_handler_fn h_openapi;            /* GET /openapi.json */
api_handler_fn h_event_types_list;   /* GET /v1/event-types */

/* h_accounts.c */
api_handler_fn h_accounts_create;    /* POST /v1/accounts */
api_handler_fn h_accounts_list;      /* GET /v1/accounts */
api_handler_fn h_accounts_get;       /* GET /v1/accounts/{id} */
api_handler_fn h_keys_create;        /* POST /v1/accounts/{id}/api-keys */
api_handler_fn h_keys_list;          /* GET /v1/accounts/{id}/api-keys */
api_handler_fn h_keys_delete;        /* DELETE /v1/api-keys/{id} */
api_handler_fn h_keys_rotate;        /* POST /v1/api-keys/{id}/rotate */

/* h_clients.c */
api_handler_fn h_clients_create; /* POST /v1/oauth-clients */
api_handler_fn h_clients_list;   /* GET /v1/oauth-clients */
api_handler_fn h_clients_delete; /* DELETE /v1/oauth-clients/{id} */

/* h_oauth.c: RFC 6749, 7009, 7662, 8414 */
api_handler_fn h_oauth_token;      /* POST /oauth/token */
api_handler_fn h_oauth_revoke;     /* POST /oauth/revoke */
api_handler_fn h_oauth_introspect; /* POST /oauth/introspect */
api_handler_fn h_oauth_metadata;   /* GET /.well-known/oauth-authorization-server */

/* h_portal.c */
api_handler_fn h_portal_links_create;    /* POST /v1/portal-links */
api_handler_fn h_portal_sessions_create; /* POST /v1/portal-sessions */

/* h_events.c */
api_handler_fn h_events_publish;     /* POST /v1/events */
api_handler_fn h_events_publish_batch; /* POST /v1/events/batch */
api_handler_fn h_events_list;        /* GET /v1/events */
api_handler_fn h_events_get;         /* GET /v1/events/{id} */

/* h_endpoints.c */
api_handler_fn h_endpoints_create;   /* POST /v1/endpoints */
api_handler_fn h_endpoints_list;     /* GET /v1/endpoints */
api_handler_fn h_endpoints_get;      /* GET /v1/endpoints/{id} */
api_handler_fn h_endpoints_update;   /* PATCH /v1/endpoints/{id} */
api_handler_fn h_endpoints_delete;   /* DELETE /v1/endpoints/{id} */
api_handler_fn h_endpoints_disable;  /* POST /v1/endpoints/{id}/disable */
api_handler_fn h_endpoints_enable;   /* POST /v1/endpoints/{id}/enable */
api_handler_fn h_endpoints_secret;   /* GET /v1/endpoints/{id}/secret */
api_handler_fn h_endpoints_rotate;   /* POST /v1/endpoints/{id}/secret/rotate */
api_handler_fn h_endpoints_test;     /* POST /v1/endpoints/{id}/test */
api_handler_fn h_endpoints_stats;    /* GET /v1/endpoints/{id}/stats */
api_handler_fn h_endpoints_replay;   /* POST /v1/endpoints/{id}/replay */

/* h_deliveries.c */
api_handler_fn h_deliveries_list;    /* GET /v1/deliveries */
api_handler_fn h_deliveries_get;     /* GET /v1/deliveries/{id} */
api_handler_fn h_deliveries_retry;   /* POST /v1/deliveries/{id}/retry */

/* h_stats.c: for the dashboard's charts */
api_handler_fn h_stats_account;      /* GET /v1/stats: like endpoint stats, whole account */
api_handler_fn h_stats_series;       /* GET /v1/stats/series?endpoint_id=&window=1h|24h */

/* h_audit.c */
api_handler_fn h_audit_list; /* GET /v1/audit-log */

#endif
