/*
 * The REST API server (CONTRACT §4) on libmicrohttpd: /v1/..., /healthz,
 * /metrics, /openapi.json, and whatever the static handler serves (the
 * dashboard at /).
 */
#ifndef FLUXHOOK_API_API_H
#define FLUXHOOK_API_API_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* A static file (the dashboard's assets), served for GET outside /v1. */
struct api_static {
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

/* Finds the asset for a path ("/" or "/app.js"); returns 0 or ERR_NOTFOUND. */
typedef int api_static_fn(const char *path, struct api_static *out);

/* Fills /metrics lines owned by other modules (the dispatcher's counters). */
struct buf;
typedef void api_metrics_fn(struct buf *out, void *arg);

struct api_config {
    const char *listen;            /* "127.0.0.1:8080", "[::1]:0" */
    int allow_http;                /* accept http:// endpoint URLs */
    const char *allow_networks;    /* CIDRs allowed although private, or NULL (for messages) */
    api_static_fn *static_fn;      /* may be NULL */
    api_metrics_fn *metrics_fn;    /* may be NULL */
    void *metrics_arg;
    int threads;                   /* 0: one per core */
};

struct api_server;

/*
 * Starts serving on cfg->listen with st (borrowed; must outlive the server).
 * Returns 0 and *out, or ERR_INVAL (bad address) / ERR_IO (cannot bind, logged).
 */
int api_server_start(const struct api_config *cfg, struct store *st, struct api_server **out);

/* The port actually bound (useful with port 0). */
int api_server_port(const struct api_server *srv);

/* Stops accepting, finishes requests under way, frees; NULL is a no-op. */
void api_server_stop(struct api_server *srv);

#endif
