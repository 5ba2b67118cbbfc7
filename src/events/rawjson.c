#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events_int.h"
#include "util/err.h"

#define PATH_WORK 512 /* bytes of path kept while walking; out is usually smaller */

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
skip_ws(const char *s, size_t i, size_t end)
{
    while (i < end && is_ws(s[i]))
        i++;
    return i;
}

/* s[i] is the opening quote; sets *out past the closing one. */
static int
scan_string(const char *s, size_t i, size_t end, size_t *out)
{
    const char *quote, *esc;

    if (i >= end || s[i] != '"')
        return ERR_PARSE;
    /* memchr, not a loop per byte: strings are most of a publish's bytes. */
    for (i++; i < end; i = (size_t)(esc - s) + 2) {
        quote = memchr(s + i, '"', end - i);
        if (quote == NULL)
            return ERR_PARSE;
        esc = memchr(s + i, '\\', (size_t)(quote - (s + i)));
        if (esc == NULL) {
            *out = (size_t)(quote - s) + 1;
            return 0;
        }
        /* the escaped byte cannot close the string, nor can the four hex digits of a \u escape */
    }
    return ERR_PARSE;
}

/* Sets *out past the value that starts at s[i]. */
static int
scan_value(const char *s, size_t i, size_t end, size_t *out)
{
    size_t depth = 0, j;
    int err;

    if (i >= end)
        return ERR_PARSE;
    if (s[i] == '"')
        return scan_string(s, i, end, out);
    if (s[i] == '{' || s[i] == '[') {
        for (j = i; j < end; j++) {
            if (s[j] == '"') {
                err = scan_string(s, j, end, &j);
                if (err != 0)
                    return err;
                j--; /* the loop steps past the closing quote again */
            } else if (s[j] == '{' || s[j] == '[') {
                depth++;
            } else if (s[j] == '}' || s[j] == ']') {
                if (--depth == 0) {
                    *out = j + 1;
                    return 0;
                }
            }
        }
        return ERR_PARSE;
    }
    for (j = i; j < end && !is_ws(s[j]) && s[j] != ',' && s[j] != '}' && s[j] != ']'; j++)
        ;
    if (j == i)
        return ERR_PARSE;
    *out = j;
    return 0;
}

int
rawjson_members(const char *s, struct rawjson_span obj, rawjson_member_fn *fn, void *ctx)
{
    struct rawjson_span key, value;
    size_t i, end = obj.end;
    int err;

    i = skip_ws(s, obj.start, end);
    if (i >= end || s[i] != '{')
        return ERR_PARSE;
    i = skip_ws(s, i + 1, end);
    if (i < end && s[i] == '}')
        return 0;
    for (;;) {
        key.start = i;
        err = scan_string(s, i, end, &key.end);
        if (err != 0)
            return err;
        i = skip_ws(s, key.end, end);
        if (i >= end || s[i] != ':')
            return ERR_PARSE;
        value.start = skip_ws(s, i + 1, end);
        err = scan_value(s, value.start, end, &value.end);
        if (err != 0)
            return err;
        err = fn(s, key, value, ctx);
        if (err != 0)
            return err;
        i = skip_ws(s, value.end, end);
        if (i < end && s[i] == '}')
            return 0;
        if (i >= end || s[i] != ',')
            return ERR_PARSE;
        i = skip_ws(s, i + 1, end);
    }
}

int
rawjson_elements(const char *s, struct rawjson_span arr, rawjson_element_fn *fn, void *ctx)
{
    struct rawjson_span value;
    size_t i, end = arr.end;
    int err;

    i = skip_ws(s, arr.start, end);
    if (i >= end || s[i] != '[')
        return ERR_PARSE;
    i = skip_ws(s, i + 1, end);
    if (i < end && s[i] == ']')
        return 0;
    for (;;) {
        value.start = i;
        err = scan_value(s, value.start, end, &value.end);
        if (err != 0)
            return err;
        err = fn(s, value, ctx);
        if (err != 0)
            return err;
        i = skip_ws(s, value.end, end);
        if (i < end && s[i] == ']')
            return 0;
        if (i >= end || s[i] != ',')
            return ERR_PARSE;
        i = skip_ws(s, i + 1, end);
    }
}

json_t *
rawjson_string_decode(const char *s, struct rawjson_span key)
{
    json_t *v;

    if (key.end <= key.start)
        return NULL;
    v = json_loadb(s + key.start, key.end - key.start, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v != NULL && !json_is_string(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int
rawjson_string_equals(const char *s, struct rawjson_span key, const char *name)
{
    size_t n = strlen(name), inner;
    json_t *v;
    int eq;

    if (key.end < key.start + 2)
        return 0;
    inner = key.end - key.start - 2;
    if (memchr(s + key.start + 1, '\\', inner) == NULL)
        return inner == n && memcmp(s + key.start + 1, name, n) == 0;
    v = rawjson_string_decode(s, key);
    eq = v != NULL && json_string_length(v) == n && memcmp(json_string_value(v), name, n) == 0;
    json_decref(v);
    return eq;
}

struct find_ctx {
    const char *name;
    struct rawjson_span value;
};

/* Stops the walk with 1 at the member called ctx->name. */
static int
find_member(const char *s, struct rawjson_span key, struct rawjson_span value, void *ctx)
{
    struct find_ctx *fc = ctx;

    if (!rawjson_string_equals(s, key, fc->name))
        return 0;
    fc->value = value;
    return 1;
}

int
rawjson_member_find(const char *s, struct rawjson_span obj, const char *name,
                    struct rawjson_span *value)
{
    struct find_ctx fc = {.name = name};
    int err;

    err = rawjson_members(s, obj, find_member, &fc);
    if (err == 1) {
        *value = fc.value;
        return 0;
    }
    return err == 0 ? ERR_NOTFOUND : err;
}

int
rawjson_compact(const char *s, struct rawjson_span v, struct buf *out)
{
    size_t i = v.start, from = v.start, end;
    int err;

    /* What lies between two runs of white space goes in with one append. */
    while (i < v.end) {
        if (s[i] == '"') {
            err = scan_string(s, i, v.end, &end);
            if (err != 0)
                return err;
            i = end;
        } else if (is_ws(s[i])) {
            err = buf_append(out, s + from, i - from);
            if (err != 0)
                return err;
            while (i < v.end && is_ws(s[i]))
                i++;
            from = i;
        } else {
            i++;
        }
    }
    return buf_append(out, s + from, i - from);
}

size_t
rawjson_utf8_copy(char *out, size_t outlen, const char *src, size_t srclen)
{
    const char *nul;
    size_t n;

    if (outlen == 0)
        return 0;
    nul = memchr(src, '\0', srclen);
    n = nul != NULL ? (size_t)(nul - src) : srclen;
    if (n >= outlen) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, src, n);
    out[n] = '\0';
    return n;
}

/* A container being walked by rawjson_path_at. */
struct frame {
    int is_object;
    int expect_key; /* object: the next string is a key */
    size_t base;    /* path length of the container itself */
    size_t index;   /* array: current element */
};

/* Sets the path to path[0, base) followed by the formatted suffix, clamped to PATH_WORK. */
static size_t
path_set(char *path, size_t base, const char *suffix, size_t suflen)
{
    return base + rawjson_utf8_copy(path + base, PATH_WORK - base, suffix, suflen);
}

/* Sets the path of the current object member from the key token s[key]. */
static size_t
path_key(char *path, size_t base, const char *s, struct rawjson_span key)
{
    char tmp[PATH_WORK];
    json_t *k;
    size_t n = 0;

    if (base > 0)
        tmp[n++] = '.';
    k = rawjson_string_decode(s, key);
    if (k != NULL)
        n += rawjson_utf8_copy(tmp + n, sizeof(tmp) - n, json_string_value(k),
                               json_string_length(k));
    json_decref(k);
    return path_set(path, base, tmp, n);
}

static size_t
path_index(char *path, size_t base, size_t index)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);

    return path_set(path, base, tmp, (size_t)n);
}

int
rawjson_path_at(const char *s, size_t len, size_t pos, char *out, size_t outlen)
{
    struct frame *frames = NULL, *top = NULL, *grown;
    size_t depth = 0, cap = 0, plen = 0, i = 0, end;
    char path[PATH_WORK];
    struct rawjson_span key;
    int err = ERR_NOTFOUND;

    path[0] = '\0';
    while (i < len) {
        switch (s[i]) {
        case '"':
            err = scan_string(s, i, len, &end);
            if (err != 0)
                goto out;
            err = ERR_NOTFOUND;
            if (top != NULL && top->is_object && top->expect_key) {
                key.start = i;
                key.end = end;
                plen = path_key(path, top->base, s, key);
                top->expect_key = 0;
                if (end == pos) {
                    rawjson_utf8_copy(out, outlen, path, plen);
                    err = 0;
                    goto out;
                }
            }
            i = end;
            continue;
        case '{':
        case '[':
            if (depth == cap) {
                cap = cap == 0 ? 16 : cap * 2;
                grown = realloc(frames, cap * sizeof(*frames));
                if (grown == NULL) {
                    err = ERR_NOMEM;
                    goto out;
                }
                frames = grown;
            }
            top = &frames[depth++];
            top->is_object = s[i] == '{';
            top->expect_key = top->is_object;
            top->base = plen;
            top->index = 0;
            if (!top->is_object)
                plen = path_index(path, top->base, 0);
            break;
        case ',':
            if (top == NULL)
                break;
            if (top->is_object) {
                top->expect_key = 1;
                plen = top->base;
            } else {
                plen = path_index(path, top->base, ++top->index);
            }
            break;
        case '}':
        case ']':
            if (top == NULL) {
                err = ERR_PARSE;
                goto out;
            }
            plen = top->base;
            depth--;
            top = depth > 0 ? &frames[depth - 1] : NULL;
            break;
        default:
            break;
        }
        path[plen] = '\0';
        i++;
    }
out:
    free(frames);
    return err;
}
