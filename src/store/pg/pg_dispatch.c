/*
 * PostgreSQL backend: the dispatcher's side. A claim is one call of
 * fluxhook_claim() (FOR UPDATE SKIP LOCKED in batches, the per-endpoint cap
 * checked under advisory locks), a batch of results one call of
 * fluxhook_results() (fenced by lease token), both in the migrations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/pg/pg_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define CLAIM_SCAN_MIN 256      /* due rows a capped claim looks at, at least */
#define CLAIM_MAX_ENDPOINTS 128 /* endpoints one claim locks, at most */
#define ARRAY_MAX (64u << 20)   /* the longest array literal a call builds */

static const char SQL_CLAIM[] = "SELECT * FROM fluxhook_claim($1, $2, $3, $4, $5::text[], $6, $7)";
static const char SQL_RESULTS[] =
    "SELECT kind, id, token, current_token, current_status FROM fluxhook_results($1, $2::json)";
/* Locks in id order (as results do) before it changes anything. */
static const char SQL_RELEASE[] =
    "WITH r AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS r (id, token)), "
    "l AS (SELECT d.id FROM deliveries d JOIN r ON r.id = d.id "
    "WHERE d.status = 'delivering' AND d.lease_token = r.token ORDER BY d.id FOR UPDATE), "
    "u AS (UPDATE deliveries d SET status = 'pending', next_attempt_at = $3, lease_until = 0, "
    "updated_at = $3 FROM l WHERE d.id = l.id AND d.status = 'delivering' RETURNING 1) "
    "SELECT count(*) FROM u";
static const char SQL_NEXT_DUE[] =
    "SELECT due_at FROM deliveries WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 1";

/* --- claims --- */

/* Reads a row of fluxhook_claim(): the delivery, its body, the endpoint's URL and secrets. */
static int
claim_read(const PGresult *res, int row, void *out)
{
    struct claim *cl = out;
    int err;

    memset(cl, 0, sizeof(*cl));
    err = pg_delivery_read(res, row, &cl->dlv);
    if (err == 0)
        err = pg_col_bytes(res, row, PG_DELIVERY_NCOLS, &cl->body, &cl->body_len);
    if (err == 0)
        err = pg_col_strdup(res, row, PG_DELIVERY_NCOLS + 1, &cl->url);
    if (err == 0)
        err = pg_col_strdup(res, row, PG_DELIVERY_NCOLS + 2, &cl->secret);
    if (err == 0)
        err = pg_col_strdup(res, row, PG_DELIVERY_NCOLS + 3, &cl->prev_secret);
    return err;
}

/* The n ids of exclude (NULLs skipped) as a text[] literal into b. */
static int
exclude_array(const char *const *exclude, size_t n, struct buf *b)
{
    size_t i;
    int err;

    err = pg_array_begin(b);
    for (i = 0; i < n && err == 0; i++) {
        if (exclude[i] != NULL)
            err = pg_array_add(b, exclude[i]);
    }
    return err != 0 ? err : pg_array_end(b);
}

int
pg_claim(struct store *st, int64_t now, int64_t lease_ms, int max, int per_endpoint,
         const char *const *exclude, size_t nexclude, struct claim **out, size_t *n)
{
    struct claim *list = NULL;
    struct pg_query q;
    struct buf excl;
    PGresult *res = NULL;
    size_t count = 0, cap = 0;
    int row, err;

    buf_init(&excl, ARRAY_MAX);
    err = exclude_array(exclude, nexclude, &excl);
    if (err != 0)
        goto out;
    pg_query_init(&q, SQL_CLAIM);
    pg_arg_int(&q, now);
    pg_arg_int(&q, lease_ms);
    pg_arg_int(&q, max);
    pg_arg_int(&q, per_endpoint);
    pg_arg_text(&q, buf_cstr(&excl));
    pg_arg_int(&q, max * 4 > CLAIM_SCAN_MIN ? max * 4 : CLAIM_SCAN_MIN);
    pg_arg_int(&q, CLAIM_MAX_ENDPOINTS);
    /*
     * A write, so never run twice: if the answer is lost, the claims it made
     * are leases that run out.
     */
    err = pg_run(st->impl, &q, PG_WRITE, &res, "claiming deliveries");
    if (err == 0)
        err = store_grow(&list, &cap, (size_t)PQntuples(res), sizeof(*list));
    for (row = 0; err == 0 && row < PQntuples(res); row++)
        err = claim_read(res, row, &list[count++]);
out:
    pg_result_clear(res);
    buf_cleanup(&excl);
    if (err != 0) {
        claim_list_free(list, count);
        return err;
    }
    *out = list;
    *n = count;
    return 0;
}

/* --- results --- */

/* A JSON string of s; bytes that are not UTF-8 become '?' (PostgreSQL text must be UTF-8). */
static json_t *
json_text(const char *s)
{
    json_t *v;
    char *copy;
    size_t i;

    if (s == NULL)
        return json_null();
    v = json_string(s);
    if (v != NULL)
        return v;
    copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (i = 0; copy[i] != '\0'; i++) {
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    }
    v = json_string(copy);
    free(copy);
    return v;
}

/* The response body as hex (decoded into bytea by fluxhook_results()), or null. */
static json_t *
json_hex(const char *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    json_t *v;
    char *hex;
    size_t i;

    if (p == NULL)
        return json_null();
    hex = malloc(len * 2 + 1);
    if (hex == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        hex[2 * i] = digits[(unsigned char)p[i] >> 4];
        hex[2 * i + 1] = digits[(unsigned char)p[i] & 0xf];
    }
    hex[2 * len] = '\0';
    v = json_string(hex);
    free(hex);
    return v;
}

/* One result as the JSON object fluxhook_results() reads; NULL when out of memory. */
static json_t *
result_json(const struct attempt_result *r, size_t i)
{
    const struct attempt *a = &r->attempt;
    json_t *o = json_object();
    int bad = o == NULL;

    bad |= json_object_set_new(o, "i", json_integer((json_int_t)i));
    bad |= json_object_set_new(o, "id", json_text(a->delivery_id));
    bad |= json_object_set_new(o, "token", json_integer(r->lease_token));
    bad |= json_object_set_new(o, "status", json_string(delivery_status_name(r->status)));
    bad |= json_object_set_new(o, "next", json_integer(r->next_attempt_at));
    bad |= json_object_set_new(o, "n", json_integer(a->n));
    bad |= json_object_set_new(o, "at", json_integer(a->at));
    bad |= json_object_set_new(o, "code", json_integer(a->status_code));
    bad |= json_object_set_new(o, "error", json_text(a->error));
    bad |= json_object_set_new(o, "eclass", json_text(attempt_error_class_name(a->error_class)));
    bad |= json_object_set_new(o, "ms", json_integer(a->duration_ms));
    bad |= json_object_set_new(o, "body", json_hex(a->response_body, a->response_len));
    bad |= json_object_set_new(o, "reqh", json_text(a->request_headers));
    bad |= json_object_set_new(o, "resh", json_text(a->response_headers));
    bad |= json_object_set_new(o, "disable", json_boolean(r->disable_endpoint));
    bad |= json_object_set_new(o, "reason", json_text(r->disable_reason));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The n results as a JSON array (caller frees); NULL when out of memory. */
static char *
results_json(const struct attempt_result *rs, size_t n)
{
    json_t *arr = json_array();
    char *text = NULL;
    size_t i;

    if (arr == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (json_array_append_new(arr, result_json(&rs[i], i)) != 0)
            goto out;
    }
    text = json_dumps(arr, JSON_COMPACT);
out:
    json_decref(arr);
    return text;
}

/* Logs what fluxhook_results() set aside; returns how many results were fenced. */
static size_t
results_report(const PGresult *res)
{
    size_t fenced = 0;
    int row;

    for (row = 0; row < PQntuples(res); row++) {
        const char *kind = PQgetvalue(res, row, 0);
        const char *id = PQgetvalue(res, row, 1);

        if (strcmp(kind, "fenced") == 0 &&
            pg_col_int(res, row, 2) == pg_col_int(res, row, 3)) {
            /* Its own claim's result, recorded before: an answer lost, the batch sent again. */
            log_info("store: result already recorded delivery=%s token=%lld", id,
                     (long long)pg_col_int(res, row, 2));
        } else if (strcmp(kind, "fenced") == 0) {
            log_warnx("store: stale result fenced delivery=%s token=%lld current=%lld status=%s",
                      id, (long long)pg_col_int(res, row, 2), (long long)pg_col_int(res, row, 3),
                      PQgetvalue(res, row, 4));
            fenced++;
        } else if (strcmp(kind, "unknown") == 0) {
            log_warnx("store: result for an unknown delivery=%s", id);
        } else {
            log_info("store: endpoint disabled endpoint=%s", id);
        }
    }
    return fenced;
}

int
pg_results_apply(struct store *st, const struct attempt_result *rs, size_t n, int64_t now,
                 size_t *fenced)
{
    struct pg_query q;
    PGresult *res = NULL;
    char *json;
    int err;

    *fenced = 0;
    json = results_json(rs, n);
    if (json == NULL)
        return ERR_NOMEM;
    pg_query_init(&q, SQL_RESULTS);
    pg_arg_int(&q, now);
    pg_arg_text(&q, json);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "recording attempt results");
    if (err == 0)
        *fenced = results_report(res);
    pg_result_clear(res);
    free(json);
    return err;
}

/* --- releases and the next due time --- */

int
pg_release(struct store *st, const char *const *delivery_ids, const int64_t *tokens, size_t n)
{
    struct pg_query q;
    struct buf ids, toks;
    PGresult *res = NULL;
    size_t i;
    int err;

    buf_init(&ids, ARRAY_MAX);
    buf_init(&toks, ARRAY_MAX);
    err = pg_array_begin(&ids);
    if (err == 0)
        err = pg_array_begin(&toks);
    for (i = 0; i < n && err == 0; i++) {
        err = pg_array_add(&ids, delivery_ids[i]);
        if (err == 0)
            err = buf_printf(&toks, "%s%lld", i > 0 ? "," : "", (long long)tokens[i]);
    }
    if (err == 0)
        err = pg_array_end(&ids);
    if (err == 0)
        err = pg_array_end(&toks);
    if (err != 0)
        goto out;
    pg_query_init(&q, SQL_RELEASE);
    pg_arg_text(&q, buf_cstr(&ids));
    pg_arg_text(&q, buf_cstr(&toks));
    pg_arg_int(&q, clock_now_ms());
    err = pg_run(st->impl, &q, PG_WRITE, &res, "releasing deliveries");
    if (err == 0 && pg_col_int(res, 0, 0) > 0)
        pg_due_mark(st->impl); /* other hosts' dispatchers take them now */
out:
    pg_result_clear(res);
    buf_cleanup(&ids);
    buf_cleanup(&toks);
    return err;
}

int
pg_next_due(struct store *st, int64_t *when)
{
    struct pg_query q;
    PGresult *res = NULL;
    int err;

    pg_query_init(&q, SQL_NEXT_DUE);
    err = pg_run(st->impl, &q, PG_READ, &res, "reading the next due time");
    if (err == 0 && PQntuples(res) > 0)
        *when = pg_col_int(res, 0, 0);
    pg_result_clear(res);
    return err;
}
