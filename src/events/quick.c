/*
 * The quick path of a publish: one strict pass over the body, without
 * jansson, for the body that is plainly valid (the usual one). It accepts
 * only text that jansson accepts with the publish's flags and that passes
 * the catalog, and declines anything else (a problem, or anything it does not
 * handle: escapes in keys or in strings the catalog reads, surrogate escapes,
 * integers beyond 18 digits, nesting past QUICK_DEPTH, objects past
 * QUICK_KEYS members) so that envelope.c's jansson path decides with its own
 * words. Both paths build the envelope with envelope_body_build().
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/catalog.h"
#include "events/envelope.h"
#include "events/events_int.h"
#include "events/schema.h"
#include "util/err.h"

#define QUICK_DEPTH 10      /* deeper bodies take the jansson path */
#define QUICK_KEYS 64       /* members one object may have here */
#define QUICK_NUMBER_MAX 64 /* longest number token read here */
#define QUICK_INT_DIGITS 18 /* an integer of more digits may not fit 64 bits */

/* What an object's members are, as spans of the text. */
struct quick_obj {
    size_t n;
    struct rawjson_span key[QUICK_KEYS];   /* the key tokens, quotes included */
    struct rawjson_span value[QUICK_KEYS]; /* the value tokens */
};

static int scan_value(const char *s, size_t i, size_t end, int depth, size_t *out);

static size_t
ws(const char *s, size_t i, size_t end)
{
    while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/*
 * Length of the well-formed UTF-8 character at s[i] (2 to 4 bytes: no
 * overlong form, no surrogate, nothing past U+10FFFF), or 0.
 */
static size_t
utf8_len(const unsigned char *s, size_t i, size_t end)
{
    unsigned char c = s[i], lo = 0x80, hi = 0xBF;
    size_t n, k;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    if (end - i < n || s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (k = 2; k < n; k++) {
        if (s[i + k] < 0x80 || s[i + k] > 0xBF)
            return 0;
    }
    return n;
}

#define QUICK_ONES 0x0101010101010101ULL
#define QUICK_HIGHS 0x8080808080808080ULL

/*
 * 1 when none of the 8 bytes at p ends a run of plain string bytes: each is
 * printable ASCII (0x20 to 0x7f), neither a quote nor a backslash. A byte
 * below 0x20, a quote or a backslash borrows into its high bit; one past
 * 0x7f has it set. A borrow may only flag bytes after a flagged one, so the
 * answer for the word as a whole is exact, in either byte order.
 */
static int
word_plain(const unsigned char *p)
{
    uint64_t w, q, b;

    memcpy(&w, p, sizeof(w));
    q = w ^ (QUICK_ONES * '"');
    b = w ^ (QUICK_ONES * '\\');
    return (((w - QUICK_ONES * 0x20) | (q - QUICK_ONES) | (b - QUICK_ONES) | w) & QUICK_HIGHS) == 0;
}

/* A string token at s[i]: sets *out past its closing quote and *escaped. */
static int
scan_string(const char *s, size_t i, size_t end, size_t *out, int *escaped)
{
    const unsigned char *u = (const unsigned char *)s;
    char code[5];
    size_t n;
    long v;
    int k;

    *escaped = 0;
    for (i++; i < end; i++) {
        /* Most bytes are printable ASCII with nothing to say: 8 at a time. */
        while (end - i >= 8 && word_plain(u + i))
            i += 8;
        while (i < end && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\')
            i++;
        if (i >= end)
            break;
        if (u[i] == '"') {
            *out = i + 1;
            return 0;
        }
        if (u[i] < 0x20)
            return ERR_PARSE;
        if (u[i] >= 0x80) {
            n = utf8_len(u, i, end);
            if (n == 0)
                return ERR_PARSE;
            i += n - 1;
            continue;
        }
        if (u[i] != '\\')
            continue;
        *escaped = 1;
        if (++i >= end)
            return ERR_PARSE;
        if (strchr("\"\\/bfnrt", s[i]) != NULL && s[i] != '\0')
            continue;
        if (s[i] != 'u' || end - i < 5)
            return ERR_PARSE;
        for (k = 1; k <= 4; k++) {
            if (!isxdigit(u[i + k]))
                return ERR_PARSE;
            code[k - 1] = s[i + k];
        }
        code[4] = '\0';
        v = strtol(code, NULL, 16);
        if (v >= 0xD800 && v <= 0xDFFF)
            return ERR_PARSE; /* pairs are jansson's to judge */
        i += 4;
    }
    return ERR_PARSE;
}

/* A number token at s[i] (RFC 8259's grammar): sets *out past it and *is_int. */
static int
scan_number(const char *s, size_t i, size_t end, size_t *out, int *is_int)
{
    char tmp[QUICK_NUMBER_MAX + 1];
    size_t start = i, digits;
    double x;

    *is_int = 1;
    if (i < end && s[i] == '-')
        i++;
    if (i < end && s[i] == '0') {
        i++;
    } else {
        for (digits = 0; i < end && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == 0)
            return ERR_PARSE;
    }
    if (i < end && s[i] == '.') {
        *is_int = 0;
        for (i++, digits = 0; i < end && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == 0)
            return ERR_PARSE;
    }
    if (i < end && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < end && (s[i] == '+' || s[i] == '-'))
            i++;
        for (digits = 0; i < end && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == 0)
            return ERR_PARSE;
    }
    if (i - start > QUICK_NUMBER_MAX)
        return ERR_PARSE;
    if (*is_int) {
        if (i - start - (s[start] == '-') > QUICK_INT_DIGITS)
            return ERR_PARSE; /* jansson's overflow handling */
    } else {
        memcpy(tmp, s + start, i - start);
        tmp[i - start] = '\0';
        x = strtod(tmp, NULL);
        if (isinf(x))
            return ERR_PARSE; /* jansson refuses a real that overflows */
    }
    *out = i;
    return 0;
}

/*
 * An object at s[i]: every member's key (no escapes: they are compared as
 * bytes) distinct. Fills o when it is not NULL. With sub_name, the member of
 * that name whose value is an object fills sub too, in the same pass (the
 * caller reads both levels without scanning the inner one twice).
 */
static int
scan_object_sub(const char *s, size_t i, size_t end, int depth, size_t *out, struct quick_obj *o,
                const char *sub_name, struct quick_obj *sub)
{
    struct rawjson_span keys[QUICK_KEYS];
    struct rawjson_span *key = o != NULL ? o->key : keys;
    size_t n = 0, k, klen;
    int escaped, err;

    if (depth > QUICK_DEPTH)
        return ERR_PARSE;
    i = ws(s, i + 1, end);
    if (i < end && s[i] == '}') {
        *out = i + 1;
        if (o != NULL)
            o->n = 0;
        return 0;
    }
    for (;;) {
        if (n >= QUICK_KEYS || i >= end || s[i] != '"')
            return ERR_PARSE;
        key[n].start = i;
        err = scan_string(s, i, end, &key[n].end, &escaped);
        if (err != 0 || escaped)
            return ERR_PARSE;
        klen = key[n].end - key[n].start;
        for (k = 0; k < n; k++) {
            if (key[k].end - key[k].start == klen &&
                memcmp(s + key[k].start, s + key[n].start, klen) == 0)
                return ERR_PARSE; /* a duplicate: jansson names it */
        }
        i = ws(s, key[n].end, end);
        if (i >= end || s[i] != ':')
            return ERR_PARSE;
        i = ws(s, i + 1, end);
        if (o != NULL)
            o->value[n].start = i;
        if (sub_name != NULL && i < end && s[i] == '{' && klen == strlen(sub_name) + 2 &&
            memcmp(s + key[n].start + 1, sub_name, klen - 2) == 0)
            err = scan_object_sub(s, i, end, depth + 1, &i, sub, NULL, NULL);
        else
            err = scan_value(s, i, end, depth, &i);
        if (err != 0)
            return err;
        if (o != NULL)
            o->value[n].end = i;
        n++;
        i = ws(s, i, end);
        if (i < end && s[i] == '}')
            break;
        if (i >= end || s[i] != ',')
            return ERR_PARSE;
        i = ws(s, i + 1, end);
    }
    if (o != NULL)
        o->n = n;
    *out = i + 1;
    return 0;
}

static int
scan_object(const char *s, size_t i, size_t end, int depth, size_t *out, struct quick_obj *o)
{
    return scan_object_sub(s, i, end, depth, out, o, NULL, NULL);
}

static int
scan_array(const char *s, size_t i, size_t end, int depth, size_t *out)
{
    int err;

    if (depth > QUICK_DEPTH)
        return ERR_PARSE;
    i = ws(s, i + 1, end);
    if (i < end && s[i] == ']') {
        *out = i + 1;
        return 0;
    }
    for (;;) {
        err = scan_value(s, i, end, depth, &i);
        if (err != 0)
            return err;
        i = ws(s, i, end);
        if (i < end && s[i] == ']')
            break;
        if (i >= end || s[i] != ',')
            return ERR_PARSE;
        i = ws(s, i + 1, end);
    }
    *out = i + 1;
    return 0;
}

static int
literal(const char *s, size_t i, size_t end, const char *word, size_t *out)
{
    size_t n = strlen(word);

    if (end - i < n || memcmp(s + i, word, n) != 0)
        return ERR_PARSE;
    *out = i + n;
    return 0;
}

/* Any value at s[i] (no leading whitespace): sets *out past it. */
static int
scan_value(const char *s, size_t i, size_t end, int depth, size_t *out)
{
    int flag;

    if (i >= end)
        return ERR_PARSE;
    switch (s[i]) {
    case '{':
        return scan_object(s, i, end, depth + 1, out, NULL);
    case '[':
        return scan_array(s, i, end, depth + 1, out);
    case '"':
        return scan_string(s, i, end, out, &flag);
    case 't':
        return literal(s, i, end, "true", out);
    case 'f':
        return literal(s, i, end, "false", out);
    case 'n':
        return literal(s, i, end, "null", out);
    default:
        if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))
            return scan_number(s, i, end, out, &flag);
        return ERR_PARSE;
    }
}

/* The member of o whose key is name, or NULL. */
static const struct rawjson_span *
member(const char *s, const struct quick_obj *o, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < o->n; i++) {
        if (o->key[i].end - o->key[i].start == n + 2 &&
            memcmp(s + o->key[i].start + 1, name, n) == 0)
            return &o->value[i];
    }
    return NULL;
}

/* The content of a string token without escapes into out (outlen bytes); 0 or ERR_PARSE. */
static int
plain_string(const char *s, const struct rawjson_span *v, char *out, size_t outlen)
{
    size_t n;

    if (s[v->start] != '"')
        return ERR_PARSE;
    n = v->end - v->start - 2;
    if (n >= outlen || memchr(s + v->start + 1, '\\', n) != NULL)
        return ERR_PARSE;
    memcpy(out, s + v->start + 1, n);
    out[n] = '\0';
    return 0;
}

static int
is_int_token(const char *s, const struct rawjson_span *v)
{
    return (s[v->start] == '-' || (s[v->start] >= '0' && s[v->start] <= '9')) &&
           memchr(s + v->start, '.', v->end - v->start) == NULL &&
           memchr(s + v->start, 'e', v->end - v->start) == NULL &&
           memchr(s + v->start, 'E', v->end - v->start) == NULL;
}

/* The value of a number token (already checked), as jansson gives it. */
static double
number_value(const char *s, const struct rawjson_span *v)
{
    char tmp[QUICK_NUMBER_MAX + 1];
    size_t n = v->end - v->start;

    memcpy(tmp, s + v->start, n);
    tmp[n] = '\0';
    return is_int_token(s, v) ? (double)strtoll(tmp, NULL, 10) : strtod(tmp, NULL);
}

static int
in_range(const struct catalog_field *f, double x)
{
    return (!f->has_min || x >= f->min) && (!f->has_max || x <= f->max);
}

/* rawjson_element_fn: 1 (stop) at an element that is not a non-empty string. */
static int
not_nonempty_string(const char *s, struct rawjson_span v, void *ctx)
{
    (void)ctx;
    return s[v.start] != '"' || v.end - v.start <= 2;
}

/* 1 when v (NULL: absent) passes f, as schema.c's field_check() would say. */
static int
field_ok(const struct catalog_field *f, const char *s, const struct rawjson_span *v)
{
    char text[256];
    char c;
    size_t i, ats;

    if (v == NULL)
        return !f->required;
    c = s[v->start];
    if (f->nullable && c == 'n')
        return 1;
    switch (f->kind) {
    case CATALOG_STRING:
        /* Any token with content decodes to at least one byte. */
        return c == '"' && (!f->nonempty || v->end - v->start > 2);
    case CATALOG_EMAIL:
        if (plain_string(s, v, text, sizeof(text)) != 0 || text[0] == '\0')
            return 0;
        for (i = 0, ats = 0; text[i] != '\0'; i++)
            ats += text[i] == '@';
        return ats == 1;
    case CATALOG_BOOL:
        return c == 't' || c == 'f';
    case CATALOG_INT:
        return is_int_token(s, v) && in_range(f, number_value(s, v));
    case CATALOG_NUMBER:
        return (c == '-' || (c >= '0' && c <= '9')) && in_range(f, number_value(s, v));
    case CATALOG_ENUM:
        if (plain_string(s, v, text, sizeof(text)) != 0)
            return 0;
        for (i = 0; f->values[i] != NULL; i++) {
            if (strcmp(f->values[i], text) == 0)
                return 1;
        }
        return 0;
    case CATALOG_STRINGS:
        if (c != '[')
            return 0;
        if (f->nonempty && s[ws(s, v->start + 1, v->end)] == ']')
            return 0;
        return rawjson_elements(s, *v, not_nonempty_string, NULL) == 0;
    }
    return 0;
}

/* A publish object that passes: what building its event needs. */
struct quick_item {
    const struct catalog_type *t;
    char ts[CLOCK_RFC3339_MAX]; /* "" when the producer sent none (or null) */
    struct rawjson_span data;
    char key[EVENT_IDEMPOTENCY_MAX]; /* a batch item's idempotency_key, "" when none */
};

/*
 * Checks the publish object at s[i] (up to end) at nesting depth: only
 * event, data, timestamp and, with with_key, idempotency_key, passing the
 * catalog. Fills it and sets *out past the object; else ERR_PARSE.
 */
static int
item_check(const char *s, size_t i, size_t end, int depth, int with_key, struct quick_item *it,
           size_t *out)
{
    struct quick_obj top, data;
    const struct rawjson_span *type_v, *data_v, *ts_v, *key_v = NULL;
    char type[EVENT_TYPE_MAX];
    size_t k;

    /* data, when it is an object, is read into data by the same pass. */
    if (i >= end || s[i] != '{' || scan_object_sub(s, i, end, depth, out, &top, "data", &data) != 0)
        return ERR_PARSE;
    type_v = member(s, &top, "event");
    data_v = member(s, &top, "data");
    ts_v = member(s, &top, "timestamp");
    if (with_key)
        key_v = member(s, &top, "idempotency_key");
    if (top.n != (size_t)(type_v != NULL) + (data_v != NULL) + (ts_v != NULL) + (key_v != NULL))
        return ERR_PARSE; /* an unknown member */
    if (type_v == NULL || plain_string(s, type_v, type, sizeof(type)) != 0 ||
        (it->t = catalog_type_find(type)) == NULL)
        return ERR_PARSE;
    it->ts[0] = '\0';
    if (ts_v != NULL && s[ts_v->start] != 'n' &&
        (plain_string(s, ts_v, it->ts, sizeof(it->ts)) != 0 || !schema_timestamp_ok(it->ts, NULL)))
        return ERR_PARSE;
    it->key[0] = '\0';
    if (key_v != NULL && s[key_v->start] != 'n' &&
        (plain_string(s, key_v, it->key, sizeof(it->key)) != 0 || it->key[0] == '\0'))
        return ERR_PARSE;
    if (data_v == NULL || s[data_v->start] != '{')
        return ERR_PARSE;
    for (k = 0; k < it->t->nfields; k++) {
        if (!field_ok(&it->t->fields[k], s, member(s, &data, it->t->fields[k].name)))
            return ERR_PARSE;
    }
    it->data = *data_v;
    return 0;
}

/*
 * Builds ev from a checked item (its idempotency key is the caller's to
 * take). Returns 0, ERR_NOMEM or ERR_INTERNAL.
 */
static int
item_build(const char *s, const struct quick_item *it, int64_t now_ms, struct event *ev)
{
    return envelope_body_build(ev, it->t->name, it->ts[0] != '\0' ? it->ts : NULL, now_ms, s,
                               it->data);
}

int
quick_publish(const char *s, size_t len, int64_t now_ms, struct event *ev)
{
    struct quick_item it;
    size_t end;

    if (item_check(s, ws(s, 0, len), len, 1, 0, &it, &end) != 0 || ws(s, end, len) != len)
        return ERR_PARSE;
    return item_build(s, &it, now_ms, ev);
}

/*
 * Walks a batch body {"events": [item, ...]} (nothing else, 1 to max items):
 * with fn NULL only checks it (0 or ERR_PARSE), else builds each item and
 * hands it to fn like envelope_parse_batch() (0, what fn returned, or
 * ERR_NOMEM / ERR_INTERNAL).
 */
static int
batch_walk(const char *s, size_t len, size_t max, int64_t now_ms, envelope_item_fn *fn, void *ctx,
           struct schema_report *rep)
{
    static const char events_key[] = "\"events\"";
    struct quick_item it;
    struct event ev;
    size_t i, n = 0;
    int rc;

    i = ws(s, 0, len);
    if (i >= len || s[i] != '{')
        return ERR_PARSE;
    i = ws(s, i + 1, len);
    if (len - i < sizeof(events_key) - 1 || memcmp(s + i, events_key, sizeof(events_key) - 1) != 0)
        return ERR_PARSE;
    i = ws(s, i + sizeof(events_key) - 1, len);
    if (i >= len || s[i] != ':')
        return ERR_PARSE;
    i = ws(s, i + 1, len);
    if (i >= len || s[i] != '[')
        return ERR_PARSE;
    for (;;) {
        i = ws(s, i + 1, len);
        if (n >= max || item_check(s, i, len, 3, 1, &it, &i) != 0)
            return ERR_PARSE;
        if (fn != NULL) {
            memset(&ev, 0, sizeof(ev));
            memcpy(ev.idempotency_key, it.key, sizeof(ev.idempotency_key));
            schema_report_init(rep);
            rc = item_build(s, &it, now_ms, &ev);
            if (rc == 0)
                rc = fn(ctx, n, &ev, 0, rep, NULL);
            event_cleanup(&ev);
            if (rc != 0)
                return rc;
        }
        n++;
        i = ws(s, i, len);
        if (i < len && s[i] == ']')
            break;
        if (i >= len || s[i] != ',')
            return ERR_PARSE;
    }
    i = ws(s, i + 1, len);
    if (i >= len || s[i] != '}' || ws(s, i + 1, len) != len)
        return ERR_PARSE;
    return 0;
}

int
quick_batch_check(const char *s, size_t len, size_t max)
{
    return batch_walk(s, len, max, 0, NULL, NULL, NULL);
}

int
quick_batch(const char *s, size_t len, size_t max, int64_t now_ms, envelope_item_fn *fn, void *ctx,
            struct schema_report *rep)
{
    return batch_walk(s, len, max, now_ms, fn, ctx, rep);
}
