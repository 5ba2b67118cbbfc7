/*
 * libFuzzer target for url_check(), which judges endpoint URLs users send.
 * Besides looking for crashes it checks that an accepted URL is what the
 * rules say: http(s)://, no fragment, at most URL_MAX_LEN characters, and
 * that whatever https-only accepts, the --allow-http mode accepts too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    char *u;
    int strict, loose;

    if (size > URL_MAX_LEN + 16)
        return 0;
    u = malloc(size + 1);
    if (u == NULL)
        return 0;
    memcpy(u, data, size);
    u[size] = '\0';
    strict = url_check(u, 0, err, sizeof(err));
    loose = url_check(u, 1, err, sizeof(err));
    if (strict == 0 && loose != 0)
        abort();
    if (loose == 0) {
        if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
            abort();
        if (strchr(u, '#') != NULL || strlen(u) > URL_MAX_LEN)
            abort();
    }
    if (strict == 0 && strncasecmp(u, "https://", 8) != 0)
        abort();
    free(u);
    return 0;
}
