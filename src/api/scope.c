/*
 * Scopes: what a key, OAuth token or portal session may do. Every route of
 * routes.c names the one scope it needs; admin covers them all, for every
 * account. Stored as space-separated names (the OAuth form, RFC 6749 §3.3).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "util/err.h"
#include "util/strlist.h"

static const char *const scope_names[] = {
    "events:write",    "events:read",      "endpoints:read", "endpoints:write",
    "deliveries:read", "deliveries:write", "admin",
};
#define SCOPE_COUNT (sizeof(scope_names) / sizeof(scope_names[0]))

const char *
api_scope_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < SCOPE_COUNT; i++) {
        if (bit == 1u << i)
            return scope_names[i];
    }
    return NULL;
}

int
api_scopes_parse(const char *list, unsigned *out, char *bad, size_t badlen)
{
    const char *p = list != NULL ? list : "", *start;
    size_t len, i;
    unsigned bits = 0;

    while (strlist_next_word(&p, &start, &len)) {
        for (i = 0; i < SCOPE_COUNT; i++) {
            if (strlen(scope_names[i]) == len && strncmp(scope_names[i], start, len) == 0)
                break;
        }
        if (i == SCOPE_COUNT) {
            snprintf(bad, badlen, "%.*s", (int)(len > 64 ? 64 : len), start);
            return ERR_INVAL;
        }
        bits |= 1u << i;
    }
    *out = bits;
    return 0;
}

void
api_scopes_format(unsigned bits, char *out, size_t outlen)
{
    size_t i, n = 0;

    if (outlen > 0)
        out[0] = '\0';
    for (i = 0; i < SCOPE_COUNT; i++) {
        if ((bits & (1u << i)) && n < outlen)
            n += (size_t)snprintf(out + n, outlen - n, "%s%s", n > 0 ? " " : "", scope_names[i]);
    }
}

unsigned
api_key_scopes(const struct api_key *k)
{
    unsigned bits = 0;
    char bad[8];

    if (k->scopes[0] == '\0')
        return SCOPE_ACCOUNT | (k->admin ? SCOPE_ADMIN : 0);
    /* The store holds what this code wrote; an unknown name grants nothing. */
    if (api_scopes_parse(k->scopes, &bits, bad, sizeof(bad)) != 0)
        return 0;
    return bits;
}

int
api_scopes_cover(unsigned have, unsigned need)
{
    if (have & SCOPE_ADMIN)
        return 1;
    return (have & need) == need;
}

json_t *
api_scopes_json(unsigned bits)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; arr != NULL && i < SCOPE_COUNT; i++) {
        if (bits & (1u << i))
            json_array_append_new(arr, json_string(scope_names[i]));
    }
    return arr;
}

int
api_scopes_read(struct api_req *r, const char *name, unsigned *out, json_t *fields)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, name) : NULL;
    json_t *item;
    unsigned bits = 0, one;
    char bad[72];
    size_t i;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        if (api_scopes_parse(json_string_value(v), &bits, bad, sizeof(bad)) != 0)
            return api_field_add(fields, name, "unknown scope '%s'", bad);
        *out = bits;
        return 0;
    }
    if (!json_is_array(v))
        return api_field_add(fields, name,
                             "expected an array of scope names such as "
                             "[\"events:write\", \"deliveries:read\"]");
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || strchr(json_string_value(item), ' ') != NULL ||
            strchr(json_string_value(item), ',') != NULL ||
            api_scopes_parse(json_string_value(item), &one, bad, sizeof(bad)) != 0 || one == 0)
            return api_field_add(fields, name,
                                 "item %zu: expected one of events:write, "
                                 "events:read, endpoints:read, endpoints:write, "
                                 "deliveries:read, deliveries:write, admin",
                                 i);
        bits |= one;
    }
    *out = bits;
    return 0;
}

int
api_scope_check(struct api_req *r, const struct route *rt)
{
    unsigned need = rt->scope != 0 ? rt->scope : SCOPE_ADMIN;
    char have[STORE_SCOPES_MAX];
    const char *name;

    if ((rt->flags & ROUTE_ADMIN) && !(r->scopes & SCOPE_ADMIN))
        need = SCOPE_ADMIN;
    if (api_scopes_cover(r->scopes, need))
        return 0;
    name = api_scope_name(need);
    api_scopes_format(r->scopes, have, sizeof(have));
    api_header_add(r, "WWW-Authenticate",
                   "Bearer realm=\"fluxhook\", error=\"insufficient_scope\", scope=\"%s\"", name);
    if (need == SCOPE_ADMIN)
        api_reply_error(r, ERR_FORBIDDEN, NULL,
                        "%s %s needs an admin key (scope 'admin'); this credential has: %s",
                        rt->method, rt->pattern, have[0] != '\0' ? have : "none");
    else
        api_reply_error(r, ERR_FORBIDDEN, NULL,
                        "%s %s needs the scope '%s', which this credential lacks", rt->method,
                        rt->pattern, name);
    return ERR_FORBIDDEN;
}

int
api_header_add(struct api_req *r, const char *name, const char *fmt, ...)
{
    va_list ap;

    if (r->nheaders >= API_MAX_HEADERS)
        return ERR_TOOBIG;
    r->headers[r->nheaders].name = name;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->nheaders].value, sizeof(r->headers[r->nheaders].value), fmt, ap);
    va_end(ap);
    r->nheaders++;
    return 0;
}

int
api_header_add_int(struct api_req *r, const char *name, long long v)
{
    char d[1 + BUF_DEC_U64], *p;
    size_t n;

    if (r->nheaders >= API_MAX_HEADERS)
        return ERR_TOOBIG;
    p = buf_dec_u64(d + 1, v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    n = (size_t)(d + sizeof(d) - p);
    r->headers[r->nheaders].name = name;
    memcpy(r->headers[r->nheaders].value, p, n);
    r->headers[r->nheaders].value[n] = '\0';
    r->nheaders++;
    return 0;
}
