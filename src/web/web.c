#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/strlist.h"
#include "web/web.h"
#include "web/web_int.h"

#define WEB_INDEX "/index.html"

/*
 * Every asset may change with the binary, so browsers revalidate; HTML also
 * gets the headers that keep the dashboard from being framed, sniffed or
 * fed from other origins. Name, value pairs, one pair a line.
 */
/* clang-format off */
static const char *const headers_asset[] = {
    "Cache-Control", "no-cache",
    "X-Content-Type-Options", "nosniff",
    NULL,
};

#define WEB_CSP_BASE                                                                               \
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "                   \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
#define WEB_ANCESTORS_MAX 1024

/*
 * The headers of HTML pages when --portal-frame-ancestors allows embedding:
 * the CSP names the allowed origins and X-Frame-Options is left out (it
 * cannot name them). Set once, before serving.
 */
static char csp_embed[sizeof(WEB_CSP_BASE) + WEB_ANCESTORS_MAX + 32];
static const char *headers_html_embed[] = {
    "Cache-Control", "no-cache",
    "Content-Security-Policy", csp_embed,
    "X-Content-Type-Options", "nosniff",
    "Referrer-Policy", "no-referrer",
    NULL,
};
static int embed_allowed;

/* 1 when s (len bytes) is 'self' or an origin: scheme://host[:port], no path. */
static int
origin_ok(const char *s, size_t len)
{
    const char *p = s, *end = s + len, *host;

    if (len == 6 && strncmp(s, "'self'", 6) == 0)
        return 1;
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
                       *p == '-' || *p == '.'))
        p++;
    if (p == s || end - p < 4 || strncmp(p, "://", 3) != 0)
        return 0;
    host = p += 3;
    for (; p < end; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == ':' || *p == '*' || *p == '[' || *p == ']'))
            return 0;
    }
    return p > host;
}

int
web_frame_ancestors_set(const char *list, char *err, size_t errlen)
{
    const char *p = list, *start;
    size_t n = 0, len;

    embed_allowed = 0;
    if (list == NULL || list[0] == '\0')
        return 0;
    if (strlen(list) > WEB_ANCESTORS_MAX) {
        snprintf(err, errlen, "expected at most %d characters", WEB_ANCESTORS_MAX);
        return ERR_INVAL;
    }
    n = (size_t)snprintf(csp_embed, sizeof(csp_embed), "%sframe-ancestors", WEB_CSP_BASE);
    while (strlist_next_word(&p, &start, &len)) {
        if (!origin_ok(start, len)) {
            snprintf(err, errlen,
                     "expected origins such as https://app.example.com or 'self', got '%.*s'",
                     (int)(len > 100 ? 100 : len), start);
            return ERR_INVAL;
        }
        n += (size_t)snprintf(csp_embed + n, sizeof(csp_embed) - n, " %.*s", (int)len, start);
    }
    embed_allowed = 1;
    return 0;
}

static const char *const headers_html[] = {
    "Cache-Control", "no-cache",
    "Content-Security-Policy",
        /* One value, split over lines. NOLINTNEXTLINE(bugprone-suspicious-missing-comma) */
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'",
    "X-Content-Type-Options", "nosniff",
    "Referrer-Policy", "no-referrer",
    "X-Frame-Options", "DENY",
    NULL,
};
/* clang-format on */

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

/* 1 when every character is one that our file names and routes use. */
static int
path_chars_ok(const char *path)
{
    const char *p;

    for (p = path; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '.' || *p == '_' || *p == '-'))
            return 0;
    }
    return 1;
}

int
web_asset_find(const char *path, struct api_static *out)
{
    const struct web_file *f = NULL;

    if (path == NULL || path[0] != '/' || strstr(path, "..") != NULL || !path_chars_ok(path))
        goto out;
    f = file_find(path);
    if (f == NULL && is_app_route(path))
        f = file_find(WEB_INDEX);
    if (f == NULL)
        goto out;
    out->content_type = f->content_type;
    out->data = f->data;
    out->len = f->len;
    out->headers = strncmp(f->content_type, "text/html", 9) != 0 ? headers_asset
                   : embed_allowed                               ? headers_html_embed
                                                                 : headers_html;
out:
    return f != NULL ? 0 : ERR_NOTFOUND;
}
