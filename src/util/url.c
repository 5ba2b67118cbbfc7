/*
 * Endpoint URL syntax, on libcurl's URL parser (the same parser that later
 * sends to the URL, so what passes here is what curl will connect to).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/err.h"
#include "util/url.h"

/* 1 when s holds a byte that has no place in a URL (space, control, non-ASCII). */
static int
has_bad_byte(const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return 1;
    }
    return 0;
}

int
url_check(const char *url, int allow_http, char *err, size_t errlen)
{
    CURLU *u = NULL;
    CURLUcode uc;
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *frag = NULL;
    char *port = NULL, *end;
    long p;
    int ret = ERR_INVAL;
    int is_http;

    if (url == NULL || url[0] == '\0') {
        snprintf(err, errlen,
                 "url: is empty; expected an absolute URL such as "
                 "https://example.com/webhooks");
        goto out;
    }
    if (strlen(url) > URL_MAX_LEN) {
        snprintf(err, errlen, "url: is longer than %d characters", URL_MAX_LEN);
        goto out;
    }
    if (has_bad_byte(url)) {
        snprintf(err, errlen,
                 "url: contains a space, a control character or a non-ASCII "
                 "character; percent-encode it");
        goto out;
    }
    is_http = strncasecmp(url, "http://", 7) == 0;
    if (!is_http && strncasecmp(url, "https://", 8) != 0) {
        if (allow_http)
            snprintf(err, errlen, "url: must start with https:// or http://");
        else
            snprintf(err, errlen, "url: must start with https://");
        goto out;
    }
    if (is_http && !allow_http) {
        snprintf(err, errlen,
                 "url: must start with https:// (the server runs without --allow-http)");
        goto out;
    }
    /* curl reads "https:///x" as host "x"; a user who typed it meant something else. */
    if (url[is_http ? 7 : 8] == '/' || url[is_http ? 7 : 8] == '\0') {
        snprintf(err, errlen, "url: has no host; expected https://HOST/PATH");
        goto out;
    }
    u = curl_url();
    if (u == NULL) {
        snprintf(err, errlen, "url: out of memory");
        ret = ERR_NOMEM;
        goto out;
    }
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        if (uc == CURLUE_BAD_PORT_NUMBER)
            snprintf(err, errlen, "url: the port must be a number from 1 to 65535");
        else if (uc == CURLUE_NO_HOST || uc == CURLUE_BAD_HOSTNAME || uc == CURLUE_MALFORMED_INPUT)
            snprintf(err, errlen,
                     "url: expected https://HOST[:PORT]/PATH with a valid host "
                     "(%s)",
                     curl_url_strerror(uc));
        else
            snprintf(err, errlen, "url: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL || host[0] == '\0') {
        snprintf(err, errlen, "url: has no host; expected https://HOST/PATH");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        snprintf(err, errlen,
                 "url: must not contain a user name or password (user@host); "
                 "use the endpoint's signing secret to authenticate");
        goto out;
    }
    /* curl reports no fragment for a bare "#", so look at the text itself too. */
    if (strchr(url, '#') != NULL || curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
        snprintf(err, errlen, "url: must not contain a fragment ('#...')");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port != NULL) {
        p = strtol(port, &end, 10);
        if (*end != '\0' || p < 1 || p > 65535) {
            snprintf(err, errlen, "url: the port must be a number from 1 to 65535");
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == NULL ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
        snprintf(err, errlen, "url: must start with https://");
        goto out;
    }
    ret = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_free(frag);
    curl_free(port);
    curl_url_cleanup(u);
    return ret;
}
