/*
 * libFuzzer target for what the list routes read from a query string: the
 * page parameters (api_page_params: ?limit= and ?after=), the cursor checks
 * of each list (api_cursor_param with evt_, ep_ and dlv_) and the
 * deliveries' ?status= filter.
 *
 * The input is a raw query string ("limit=5&after=ep_1&status=failed").
 * The server splits and decodes it with api_query_split() (request.c);
 * here api_query() is this file's own over the same split, the first of a
 * repeated name winning. (src/api/server.c, which holds the real api_query(), is not
 * linked in.) Besides crashes it checks that an accepted limit is
 * 1..STORE_MAX_PAGE, a cursor is a valid id of its list, and a refusal
 * answers 400 with the contract's JSON error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/id.h"

#define MAX_PAIRS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct query {
    const char *names[MAX_PAIRS];
    const char *values[MAX_PAIRS];
    int n;
};

const char *
api_query(struct api_req *r, const char *name)
{
    const struct query *q = r->conn;
    int i;

    for (i = 0; i < q->n; i++) {
        if (strcasecmp(q->names[i], name) == 0)
            return q->values[i];
    }
    return NULL;
}

const char *
api_header(struct api_req *r, const char *name)
{
    (void)r;
    (void)name;
    return NULL;
}

/* Splits s (changed in place) into q's pairs as the server does. */
static void
query_split(char *s, struct query *q)
{
    q->n = api_query_split(s, q->names, q->values, MAX_PAIRS);
}

/* A refusal is a 400 with {"error": {"type", "message"}}. */
static void
check_refusal(struct api_req *r)
{
    json_t *j;

    if (r->status != 400)
        abort();
    j = json_loadb(r->out.data, r->out.len, 0, NULL);
    if (j == NULL || !json_is_string(json_object_get(json_object_get(j, "error"), "message")))
        abort();
    json_decref(j);
    buf_reset(&r->out);
    r->status = 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"evt_", "ep_", "dlv_"};
    struct query q;
    struct api_req r;
    enum delivery_status st;
    const char *after, *s;
    char *copy;
    int limit;
    size_t i;

    if (size > 8192)
        return 0;
    copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    query_split(copy, &q);
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.path = "/v1/deliveries";
    r.conn = &q;
    buf_init(&r.out, 1 << 20);

    if (api_page_params(&r, &limit, &after) != 0) {
        check_refusal(&r);
    } else {
        if (limit < 1 || limit > STORE_MAX_PAGE)
            abort();
        if (after != NULL && (after[0] == '\0' || strlen(after) >= ID_MAX))
            abort();
        for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
            s = after;
            if (api_cursor_param(&r, prefixes[i], &s) != 0)
                check_refusal(&r);
            else if (s != NULL && !id_valid(prefixes[i], s))
                abort();
        }
    }
    s = api_query(&r, "status");
    if (s != NULL && s[0] != '\0' && delivery_status_parse(s, &st) == 0 &&
        strcmp(delivery_status_name(st), s) != 0)
        abort(); /* a filter names one status exactly */
    buf_cleanup(&r.out);
    free(copy);
    return 0;
}
