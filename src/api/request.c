/*
 * Reading a request: page parameters and the members of the JSON body, each
 * answering a clear 400 when wrong. The query parameters and headers they
 * read come from api_query() and api_header() in server.c: this file never
 * touches a connection, so that fuzz/fuzz_query.c can put its own lookup
 * behind it. api_query_split() is how server.c splits a query string.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/err.h"

/* Decodes %XX in s in place (a malformed escape is kept as it is). */
static void
unescape(char *s)
{
    char *w = s;

    for (; *s != '\0'; s++) {
        if (*s == '%' && api_hexval(s[1]) >= 0 && api_hexval(s[2]) >= 0) {
            *w++ = (char)(api_hexval(s[1]) * 16 + api_hexval(s[2]));
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

int
api_query_split(char *s, const char **names, const char **values, int max)
{
    char *pair, *save = NULL, *eq;
    int n = 0;

    for (pair = strtok_r(s, "&", &save); pair != NULL && n < max;
         pair = strtok_r(NULL, "&", &save)) {
        eq = strchr(pair, '=');
        if (eq != NULL)
            *eq++ = '\0';
        else
            eq = pair + strlen(pair);
        unescape(pair);
        unescape(eq);
        names[n] = pair;
        values[n] = eq;
        n++;
    }
    return n;
}

int
api_page_params(struct api_req *r, int *limit, const char **after)
{
    const char *v;
    char *end;
    long n;

    *limit = API_DEFAULT_LIMIT;
    *after = NULL;
    v = api_query(r, "limit");
    if (v != NULL && v[0] != '\0') {
        errno = 0;
        n = strtol(v, &end, 10);
        if (*end != '\0' || errno != 0 || n < 1 || n > STORE_MAX_PAGE) {
            api_reply_error(r, ERR_INVAL, NULL, "limit: expected an integer from 1 to %d",
                            STORE_MAX_PAGE);
            return ERR_INVAL;
        }
        *limit = (int)n;
    }
    v = api_query(r, "after");
    if (v != NULL && v[0] != '\0') {
        if (strlen(v) >= ID_MAX) {
            api_reply_error(r, ERR_INVAL, NULL,
                            "after: expected an id (the 'next' of the previous page)");
            return ERR_INVAL;
        }
        *after = v;
    }
    return 0;
}

json_t *
api_list_json(json_t *items, const char *next)
{
    if (items == NULL)
        return NULL;
    return json_pack("{s:o, s:o}", "data", items, "next",
                     next != NULL && next[0] != '\0' ? json_string(next) : json_null());
}

static int
wrong_type(struct api_req *r, const char *name, const char *expected)
{
    json_t *fields;

    fields = json_pack("[{s:s, s:s}]", "path", name, "problem", expected);
    api_reply_error(r, ERR_INVAL, fields, "%s: %s", name, expected);
    return ERR_INVAL;
}

int
api_json_str(struct api_req *r, const char *name, const char **out)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, name) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return wrong_type(r, name, "expected a string");
    *out = json_string_value(v);
    return 0;
}

int
api_json_bool(struct api_req *r, const char *name, int *out)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, name) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return wrong_type(r, name, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

int
api_json_int(struct api_req *r, const char *name, int64_t *out)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, name) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return wrong_type(r, name, "expected an integer");
    *out = (int64_t)json_integer_value(v);
    return 0;
}
