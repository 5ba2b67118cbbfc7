/*
 * The dashboard: HTML, CSS and JavaScript modules built into the binary
 * (tools/embed_assets.py turns src/web/assets/ into a generated assets.c).
 * The api layer serves them through web_asset_find, passed as its static_fn.
 */
#ifndef FLUXHOOK_WEB_WEB_H
#define FLUXHOOK_WEB_WEB_H

#include "util/http_static.h"

/*
 * Finds the asset for a request path without its query: "/" and paths that
 * look like the dashboard's own routes ("/deliveries/dlv_1": no dot in the
 * last segment, outside /v1/) give index.html; "/app.js" gives that file.
 * Fills *out with borrowed, static data (content type, bytes, and headers:
 * Cache-Control for every asset, plus Content-Security-Policy,
 * X-Content-Type-Options, Referrer-Policy and X-Frame-Options for HTML).
 * Returns 0, or ERR_NOTFOUND (also for NULL, relative or ".." paths).
 * Matches api_static_fn.
 */
int web_asset_find(const char *path, struct api_static *out);

/*
 * Lets the origins of list (space- or comma-separated, such as
 * "https://app.example.com 'self'") embed the dashboard in a frame: its
 * pages then send CSP frame-ancestors with them and no X-Frame-Options.
 * NULL or "" keeps the default, frame-ancestors 'none' and DENY. Call before
 * serving. Returns 0, or ERR_INVAL with err saying what was expected.
 */
int web_frame_ancestors_set(const char *list, char *err, size_t errlen);

#endif
