/*
 * The REST API server (CONTRACT §4) on http.c: /v1/..., /healthz,
 * /metrics, /openapi.json, and whatever the static handler serves (the
 * dashboard at /).
 */
#ifndef FLUXHOOK_API_API_H
#define FLUXHOOK_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "util/http_static.h" /* struct api_static, api_static_fn (shared with web) */

struct store;

/* Fills /metrics lines owned by other modules (the dispatcher's counters). */
struct buf;
typedef void api_metrics_fn(struct buf *out, void *arg);

/*
 * Judges an endpoint URL's literal address against the address rules and
 * allow_networks: 0, or ERR_INVAL with err saying why, starting "url: "
 * (dispatch_url_address_check).
 */
typedef int api_url_address_fn(const char *url, const char *allow_networks, char *err,
                               size_t errlen);

struct api_config {
    const char *listen;            /* "127.0.0.1:8080", "[::1]:0" */
    int allow_http;                /* accept http:// endpoint URLs */
    const char *allow_networks;    /* CIDRs allowed although private, or NULL (for messages) */
    api_static_fn *static_fn;      /* may be NULL */
    api_metrics_fn *metrics_fn;    /* may be NULL */
    api_url_address_fn *url_address_fn; /* refuses literal private addresses; may be NULL */
    int max_attempts; /* attempts in a round (the retry schedule's length), or 0 */
    void *metrics_arg;
    int threads;                   /* 0: one thread per connection; N: N epoll loop threads + workers */
    int max_conns;                 /* connections at once; 0: from the open-file limit */
    int per_ip;                    /* connections at once from one client address; 0: no cap */
    int head_timeout_ms;           /* a request head must arrive within this after its first byte */
    int body_timeout_ms;           /* a request body must arrive within this after its head */
    int meta_only;                 /* 1: only /healthz, /metrics, /openapi.json (--role worker) */
    int rate_limit;                /* requests per second per credential; 0: no limit */
    int rate_limit_account;        /* requests per second per account; 0: no limit */
    int64_t token_ttl_ms;          /* lifetime of OAuth access tokens */
    int64_t refresh_ttl_ms;        /* lifetime of OAuth refresh tokens */
    const char *public_url;        /* base URL for portal links and OAuth metadata, or NULL */
};

struct api_server;

/*
 * Starts serving on cfg->listen with st (borrowed; must outlive the server).
 * Returns 0 and *out, or ERR_INVAL (bad address) / ERR_IO (cannot bind, logged).
 */
int api_server_start(const struct api_config *cfg, struct store *st, struct api_server **out);

/*
 * Checks a listen address ("HOST:PORT", "[V6]:PORT") without binding.
 * Returns 0, or ERR_INVAL with err (errlen bytes) saying what was expected.
 */
int api_listen_check(const char *listen, char *err, size_t errlen);

/*
 * Checks that listen can be bound now (binds a socket and closes it), so
 * that serve can refuse to start before it creates anything. Returns 0, or
 * ERR_INVAL / ERR_IO with err saying in plain words why and what to do.
 */
int api_listen_probe(const char *listen, char *err, size_t errlen);

#define API_KEY_MAX 64 /* "fhk_" + 43 base64url characters + NUL, rounded up */

/* A new API key: "fhk_" + base64url of 32 random bytes. Returns 0 or ERR_INTERNAL. */
int api_key_new(char out[API_KEY_MAX]);

/* The hex SHA-256 of key, as the store keeps it (struct api_key.hash). */
void api_key_hash(const char *key, char out[65]);

/* The port actually bound (useful with port 0). */
int api_server_port(const struct api_server *srv);

/* Stops accepting, finishes requests under way, frees; NULL is a no-op. */
void api_server_stop(struct api_server *srv);

#endif
