#include <string.h>

#include "util/err.h"
#include "web/web.h"
#include "web/web_int.h"

#define WEB_INDEX "/index.html"

/*
 * Every asset may change with the binary, so browsers revalidate; HTML also
 * gets the headers that keep the dashboard from being framed, sniffed or
 * fed from other origins.
 */
static const char *const headers_asset[] = {
    "Cache-Control", "no-cache",
    "X-Content-Type-Options", "nosniff",
    NULL,
};

static const char *const headers_html[] = {
    "Cache-Control", "no-cache",
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options", "nosniff",
    "Referrer-Policy", "no-referrer",
    "X-Frame-Options", "DENY",
    NULL,
};

static const struct web_file *
file_find(const char *path)
{
    size_t i;

    for (i = 0; i < web_files_count; i++) {
        if (strcmp(web_files[i].path, path) == 0)
            return &web_files[i];
    }
    return NULL;
}

/*
 * 1 when path names one of the dashboard's own pages rather than a file:
 * not under the API, no dot in its last segment.
 */
static int
is_app_route(const char *path)
{
    const char *last;

    if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0)
        return 0;
    last = strrchr(path, '/');
    return strchr(last, '.') == NULL;
}

int
web_asset_find(const char *path, struct api_static *out)
{
    const struct web_file *f;
    const char *p;

    if (path == NULL || path[0] != '/' || strstr(path, "..") != NULL)
        return ERR_NOTFOUND;
    for (p = path; *p != '\0'; p++) {
        /* Only the characters our file names and routes use. */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '.' || *p == '_' || *p == '-'))
            return ERR_NOTFOUND;
    }
    f = file_find(path);
    if (f == NULL && is_app_route(path))
        f = file_find(WEB_INDEX);
    if (f == NULL)
        return ERR_NOTFOUND;
    out->content_type = f->content_type;
    out->data = f->data;
    out->len = f->len;
    out->headers = strncmp(f->content_type, "text/html", 9) == 0 ? headers_html : headers_asset;
    return 0;
}
