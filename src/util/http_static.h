/*
 * The shape of a static file served over HTTP (the dashboard's assets). It
 * lives in util so that the api layer, which serves it, and the web layer,
 * which owns the files, share one type without including each other.
 */
#ifndef FLUXHOOK_UTIL_HTTP_STATIC_H
#define FLUXHOOK_UTIL_HTTP_STATIC_H

#include <stddef.h>

/* A static file (the dashboard's assets), served for GET outside /v1. */
struct api_static {
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *const *headers; /* extra response headers: name, value, ..., NULL; or NULL */
};

/* Finds the asset for a path ("/" or "/app.js"); returns 0 or ERR_NOTFOUND. */
typedef int api_static_fn(const char *path, struct api_static *out);

#endif
