#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/secret.h"

#define BUF_WIPE_FIRST 1024 /* the first allocation of a wiping buffer */

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->wipe = 0;
}

void
buf_init_wipe(struct buf *b, size_t max)
{
    buf_init(b, max);
    b->wipe = 1;
}

void
buf_stolen_free(const struct buf *b, void *p)
{
    if (b->wipe)
        secret_heap_free(p);
    else
        free(p);
}

void
buf_cleanup(struct buf *b)
{
    int wipe = b->wipe;

    buf_stolen_free(b, b->data);
    buf_init(b, b->max);
    b->wipe = wipe;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int
grow(struct buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (extra > b->max || b->len > b->max - extra)
        return ERR_TOOBIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    /*
     * A wiping buffer (a request or an answer) starts larger: each of its
     * growths is a copy and a clear, not a realloc.
     */
    cap = b->cap ? b->cap : b->wipe ? BUF_WIPE_FIRST : 64;
    while (cap < need)
        cap *= 2;
    if (!b->wipe) {
        p = realloc(b->data, cap);
    } else {
        /* realloc would leave the old block behind as it was. */
        p = malloc(cap);
        if (p != NULL && b->data != NULL) {
            memcpy(p, b->data, b->len + 1);
            secret_heap_free(b->data);
        }
    }
    if (p == NULL)
        return ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
    return n > b->len ? grow(b, n - b->len) : 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    int err;

    /* What fits (with the NUL) goes in without grow()'s checks. */
    if (n < b->cap - b->len && b->len + n <= b->max) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    err = grow(b, n);
    if (err != 0)
        return err;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, char c)
{
    /* Callers append byte by byte (header lines, escapes): no memcpy for one. */
    if (b->cap - b->len > 1 && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append(b, &c, 1);
}

char *
buf_dec_u64(char d[BUF_DEC_U64], uint64_t v)
{
    char *p = d + BUF_DEC_U64;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return p;
}

int
buf_put_u64(struct buf *b, uint64_t v)
{
    char d[BUF_DEC_U64], *p = buf_dec_u64(d, v);

    return buf_append(b, p, (size_t)(d + BUF_DEC_U64 - p));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    int n;
    int err;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return ERR_INVAL;
    err = grow(b, (size_t)n);
    if (err != 0)
        return err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

const char *
buf_cstr(const struct buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *
buf_steal(struct buf *b)
{
    char *p = b->data;
    int wipe = b->wipe;

    if (p == NULL)
        p = calloc(1, 1);
    buf_init(b, b->max);
    b->wipe = wipe;
    return p;
}

int
buf_file_read(struct buf *b, const char *path)
{
    char chunk[16384];
    FILE *f;
    size_t n;
    int err = 0;

    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return ERR_NOTFOUND;
    while (err == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        err = buf_append(b, chunk, n);
    if (err == 0 && ferror(f))
        err = ERR_IO;
    if (f != stdin)
        fclose(f);
    return err;
}
