/*
 * libFuzzer target for what OAuth clients send (src/api/form.c): the input
 * is a form body for api_form_parse() and, as the same bytes after
 * "Basic ", an Authorization value for api_basic_decode(). Besides crashes
 * it checks that a parsed form holds at most API_FORM_MAX_ITEMS pairs whose
 * names and values are NUL-free strings no longer than the body, that a
 * name given twice is reported, and that decoded Basic credentials fit
 * their buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_form(const char *body, size_t size)
{
    struct api_form f;
    int err, i, j, dup = 0;

    err = api_form_parse(body, size, &f);
    if (err == 0) {
        if (f.n < 0 || f.n > API_FORM_MAX_ITEMS)
            abort();
        for (i = 0; i < f.n; i++) {
            if (strlen(f.names[i]) > size || strlen(f.values[i]) > size)
                abort();
            if (api_form_get(&f, f.names[i]) == NULL)
                abort();
            for (j = 0; j < i; j++)
                dup |= strcmp(f.names[i], f.names[j]) == 0;
        }
        if (dup != (f.dup != NULL))
            abort();
    } else if (err != ERR_PARSE && err != ERR_TOOBIG && err != ERR_NOMEM) {
        abort();
    }
    api_form_free(&f);
}

static void
check_basic(const char *value, size_t size)
{
    char *h = malloc(size + 7), id[API_FORM_ID_MAX], secret[API_FORM_ID_MAX];

    if (h == NULL)
        return;
    memcpy(h, "Basic ", 6);
    memcpy(h + 6, value, size);
    h[size + 6] = '\0';
    if (api_basic_decode(h, id, secret) == 0 &&
        (strlen(id) >= API_FORM_ID_MAX || strlen(secret) >= API_FORM_ID_MAX))
        abort();
    free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_form(s, size);
    check_basic(s, strlen(s));
    free(s);
    return 0;
}
