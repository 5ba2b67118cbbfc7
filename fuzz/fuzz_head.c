/*
 * libFuzzer target for the request-head parser of the HTTP server
 * (http_head_parse in src/api/http.c), which sees every byte a client sends
 * before anything else does. The input is a request head. Besides crashes it
 * checks what an accepted head promises the server: a token method, a path
 * starting with '/', HTTP/1.0 or 1.1, field names that are tokens and values
 * without CR, LF or NUL, Host present on 1.1, one framing at most; and that a
 * refusal is one of 400, 414, 431 and 505 with an error type and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s <= 0x20 || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s) != NULL)
            return 0;
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_head *h;
    const char *type = NULL;
    char err[256], *buf;
    int st, i;

    if (size > HTTP_MAX_HEAD + 64)
        return 0;
    buf = malloc(size + 1);
    h = malloc(sizeof(*h));
    if (buf == NULL || h == NULL)
        goto out;
    memcpy(buf, data, size);
    buf[size] = '\0';
    err[0] = '\0';
    st = http_head_parse(buf, size, h, &type, err, sizeof(err));
    if (st != 0) {
        if ((st != 400 && st != 414 && st != 431 && st != 505) || type == NULL || err[0] == '\0')
            abort();
        goto out;
    }
    if (!token(h->method) || h->path[0] != '/' || (h->minor != 0 && h->minor != 1))
        abort();
    if (strchr(h->path, '?') != NULL || strpbrk(h->query, " \r\n") != NULL)
        abort();
    if (h->nfields > HTTP_MAX_FIELDS)
        abort();
    for (i = 0; i < h->nfields; i++) {
        if (!token(h->fields[i].name) || strpbrk(h->fields[i].value, "\r\n") != NULL)
            abort();
    }
    if (h->minor == 1 && http_head_field(h, "Host") == NULL)
        abort();
    if (h->chunked && (http_head_field(h, "Content-Length") != NULL || h->minor == 0))
        abort();
    if (!h->chunked && h->length > 0 && http_head_field(h, "Content-Length") == NULL)
        abort();
out:
    free(h);
    free(buf);
    return 0;
}
