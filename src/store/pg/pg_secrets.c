/*
 * PostgreSQL backend: endpoint secret columns as stored, and the master key
 * check value, for the sealing passes of store/secrets.c.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/err.h"

static const char SQL_SECRET_SCAN[] =
    "SELECT id, secret, prev_secret FROM endpoints WHERE id > $1 ORDER BY id LIMIT $2";
static const char SQL_SECRET_SWAP[] =
    "UPDATE endpoints SET secret = $4, prev_secret = $5 "
    "WHERE id = $1 AND secret = $2 AND prev_secret IS NOT DISTINCT FROM $3::text";
static const char SQL_CHECK_GET[] = "SELECT value FROM master_key_check WHERE id = 1";
static const char SQL_CHECK_INSERT[] =
    "INSERT INTO master_key_check (id, value) VALUES (1, $1) ON CONFLICT DO NOTHING";
static const char SQL_CHECK_UPDATE[] =
    "UPDATE master_key_check SET value = $1 WHERE id = 1 AND value = $2";

static int
secret_read(const PGresult *res, int row, void *out)
{
    struct store_secret *r = out;
    int err;

    memset(r, 0, sizeof(*r));
    pg_col_copy(res, row, 0, r->id, sizeof(r->id));
    if ((err = pg_col_strdup(res, row, 1, &r->secret)) != 0)
        return err;
    return pg_col_strdup(res, row, 2, &r->prev_secret);
}

int
pg_secret_scan(struct store *st, const char *after, int limit, struct store_secret **out, size_t *n)
{
    struct pg_query q;
    int err;

    *out = NULL;
    *n = 0;
    pg_query_init(&q, SQL_SECRET_SCAN);
    pg_arg_text(&q, after);
    pg_arg_int(&q, limit);
    err = pg_get_all(st->impl, &q, secret_read, out, n, sizeof(**out), "reading endpoint secrets");
    if (err != 0) {
        store_secret_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

int
pg_secret_swap(struct store *st, const struct store_secret *old, const struct store_secret *fresh)
{
    struct pg_query q;
    int64_t rows = 0;
    int err;

    pg_query_init(&q, SQL_SECRET_SWAP);
    pg_arg_text(&q, old->id);
    pg_arg_text(&q, old->secret);
    pg_arg_text(&q, old->prev_secret);
    pg_arg_text(&q, fresh->secret);
    pg_arg_text(&q, fresh->prev_secret);
    err = pg_exec(st->impl, &q, &rows, "sealing an endpoint secret");
    if (err == 0 && rows == 0)
        err = ERR_CONFLICT;
    return err;
}

static int
value_read(const PGresult *res, int row, void *out)
{
    return pg_col_strdup(res, row, 0, out);
}

int
pg_keycheck_get(struct store *st, char **value)
{
    struct pg_query q;
    int err;

    *value = NULL;
    pg_query_init(&q, SQL_CHECK_GET);
    err = pg_get_one(st->impl, &q, value_read, value, "reading the master key check");
    if (err != 0) {
        free(*value);
        *value = NULL;
    }
    return err;
}

int
pg_keycheck_set(struct store *st, const char *old, const char *value)
{
    struct pg_query q;
    int64_t rows = 0;
    int err;

    pg_query_init(&q, old == NULL ? SQL_CHECK_INSERT : SQL_CHECK_UPDATE);
    pg_arg_text(&q, value);
    if (old != NULL)
        pg_arg_text(&q, old);
    err = pg_exec(st->impl, &q, &rows, "writing the master key check");
    if (err == 0 && rows == 0)
        err = ERR_CONFLICT;
    return err;
}
