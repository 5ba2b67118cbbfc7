/*
 * Reading what OAuth clients send: application/x-www-form-urlencoded bodies
 * and HTTP Basic credentials (RFC 6749 §2.3.1, RFC 7617). Both come from
 * outside: every length is checked, a %00 escape or a bad one is refused,
 * and fuzz/fuzz_form.c drives both.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api/api_int.h"
#include "util/err.h"
#include "util/secret.h"

int
api_hexval(char c)
{
    static const char digits[] = "0123456789abcdef";
    const char *d = c != '\0' ? strchr(digits, tolower((unsigned char)c)) : NULL;

    return d != NULL ? (int)(d - digits) : -1;
}

/* Decodes s (len bytes of form encoding) into out, NUL-terminated. Returns 0 or ERR_PARSE. */
static int
form_decode(const char *s, size_t len, char *out)
{
    size_t i, n = 0;
    int hi, lo;

    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            hi = i + 1 < len ? api_hexval(s[i + 1]) : -1;
            lo = i + 2 < len ? api_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return ERR_PARSE;
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return 0;
}

void
api_form_free(struct api_form *f)
{
    secret_heap_free(f->buf); /* client_secret, refresh tokens, codes */
    memset(f, 0, sizeof(*f));
}

int
api_form_parse(const char *body, size_t len, struct api_form *f)
{
    const char *p = body != NULL ? body : "", *end = p + (body != NULL ? len : 0), *amp, *eq;
    char *w;
    int i;

    memset(f, 0, sizeof(*f));
    f->buf = malloc(2 * len + 2);
    if (f->buf == NULL)
        return ERR_NOMEM;
    w = f->buf;
    while (p < end) {
        amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL)
            amp = end;
        if (amp == p) {
            p++;
            continue;
        }
        if (f->n == API_FORM_MAX_ITEMS)
            return ERR_TOOBIG;
        eq = memchr(p, '=', (size_t)(amp - p));
        if (eq == NULL)
            eq = amp;
        if (form_decode(p, (size_t)(eq - p), w) != 0)
            return ERR_PARSE;
        f->names[f->n] = w;
        w += strlen(w) + 1;
        if (form_decode(eq < amp ? eq + 1 : amp, eq < amp ? (size_t)(amp - eq - 1) : 0, w) != 0)
            return ERR_PARSE;
        f->values[f->n] = w;
        w += strlen(w) + 1;
        for (i = 0; i < f->n && f->dup == NULL; i++) {
            if (strcmp(f->names[i], f->names[f->n]) == 0)
                f->dup = f->names[i];
        }
        f->n++;
        p = amp + 1;
    }
    return 0;
}

const char *
api_form_get(const struct api_form *f, const char *name)
{
    int i;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    }
    return NULL;
}

int
api_basic_decode(const char *h, char id[API_FORM_ID_MAX], char secret[API_FORM_ID_MAX])
{
    unsigned char raw[3 * API_FORM_ID_MAX];
    const char *b64 = h + 6, *colon;
    size_t len;
    int n, pad = 0;

    while (*b64 == ' ')
        b64++;
    len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len / 4 * 3 >= sizeof(raw))
        return ERR_PARSE;
    n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return ERR_PARSE;
    if (b64[len - 1] == '=')
        pad++;
    if (b64[len - 2] == '=')
        pad++;
    n -= pad;
    raw[n] = '\0';
    if (memchr(raw, '\0', (size_t)n) != NULL)
        return ERR_PARSE;
    colon = strchr((const char *)raw, ':');
    if (colon == NULL || colon - (const char *)raw >= API_FORM_ID_MAX ||
        strlen(colon + 1) >= API_FORM_ID_MAX)
        return ERR_PARSE;
    if (form_decode((const char *)raw, (size_t)(colon - (const char *)raw), id) != 0 ||
        form_decode(colon + 1, strlen(colon + 1), secret) != 0)
        return ERR_PARSE;
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}
