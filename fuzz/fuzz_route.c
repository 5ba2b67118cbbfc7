/*
 * libFuzzer target for the route matcher, which sees every request path.
 * The input is "METHOD\nPATH". Besides looking for crashes it checks that a
 * match is exact: putting the captured parameters back into the route's
 * pattern gives the path again, and api_route_allow() agrees that the path
 * exists.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
rebuild(const struct route *rt, const struct api_req *r, char *out, size_t outlen)
{
    const char *p = rt->pattern;
    size_t n = 0;
    int i = 0;

    while (*p != '\0' && n + 1 < outlen) {
        if (*p == '{') {
            n += (size_t)snprintf(out + n, outlen - n, "%s", r->params[i++]);
            while (*p != '\0' && *p != '}')
                p++;
            if (*p == '}')
                p++;
            continue;
        }
        out[n++] = *p++;
    }
    out[n < outlen ? n : outlen - 1] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_req r;
    const struct route *rt;
    char *in, *nl, allow[64], back[4096];
    int matched, i;

    if (size > 2048)
        return 0;
    in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    nl = strchr(in, '\n');
    if (nl == NULL) {
        free(in);
        return 0;
    }
    *nl = '\0';
    memset(&r, 0, sizeof(r));
    rt = api_route_find(in, nl + 1, &r, &matched);
    if (rt != NULL) {
        for (i = 0; i < r.nparams; i++) {
            if (r.params[i][0] == '\0' || strchr(r.params[i], '/') != NULL)
                abort();
        }
        rebuild(rt, &r, back, sizeof(back));
        if (strcmp(back, nl + 1) != 0)
            abort();
        if (strcmp(rt->method, in) != 0)
            abort();
    }
    if ((rt != NULL || matched) && api_route_allow(nl + 1, allow, sizeof(allow)) == 0)
        abort();
    free(in);
    return 0;
}
