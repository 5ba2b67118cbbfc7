/*
 * PostgreSQL backend: OAuth tokens, portal links and portal sessions.
 */
#include <string.h>

#include "store/pg/pg_int.h"
#include "store/store_int.h"
#include "util/err.h"

#define TOKEN_COLS                                                                                 \
    "id, kind, hash, account_id, client_id, family, scopes, created_at, expires_at, used_at, "     \
    "revoked_at"

static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO tokens (" TOKEN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0)";
static const char SQL_TOKEN_FIND[] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1";
/* One statement: whether this call spent it, and whether the token exists at all. */
static const char SQL_TOKEN_USE[] =
    "WITH u AS (UPDATE tokens SET used_at = $2 WHERE id = $1 AND used_at = 0 "
    "AND revoked_at = 0 RETURNING id) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM tokens WHERE id = $1)";
static const char SQL_TOKEN_REVOKE_ID[] =
    "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0";
static const char SQL_TOKEN_REVOKE_FAMILY[] =
    "UPDATE tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at = 0";
static const char SQL_TOKEN_REVOKE_CLIENT[] =
    "UPDATE tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at = 0";

static int
token_read(const PGresult *res, int row, void *out)
{
    struct token *t = out;

    memset(t, 0, sizeof(*t));
    pg_col_copy(res, row, 0, t->id, sizeof(t->id));
    t->kind = store_token_kind_parse(PQgetvalue(res, row, 1));
    pg_col_copy(res, row, 2, t->hash, sizeof(t->hash));
    pg_col_copy(res, row, 3, t->account_id, sizeof(t->account_id));
    pg_col_copy(res, row, 4, t->client_id, sizeof(t->client_id));
    pg_col_copy(res, row, 5, t->family, sizeof(t->family));
    pg_col_copy(res, row, 6, t->scopes, sizeof(t->scopes));
    t->created_at = pg_col_int(res, row, 7);
    t->expires_at = pg_col_int(res, row, 8);
    t->used_at = pg_col_int(res, row, 9);
    t->revoked_at = pg_col_int(res, row, 10);
    return 0;
}

int
pg_token_insert(struct store *st, const struct token *t)
{
    struct pg_query q;

    pg_query_init(&q, SQL_TOKEN_INSERT);
    pg_arg_text(&q, t->id);
    pg_arg_text(&q, store_token_kind_name(t->kind));
    pg_arg_text(&q, t->hash);
    pg_arg_text(&q, t->account_id);
    pg_arg_text(&q, t->client_id);
    pg_arg_text(&q, t->family);
    pg_arg_text(&q, t->scopes);
    pg_arg_int(&q, t->created_at);
    pg_arg_int(&q, t->expires_at);
    return pg_exec(st->impl, &q, NULL, "inserting a token");
}

int
pg_token_find(struct store *st, const char *hash_hex, struct token *out)
{
    struct pg_query q;

    pg_query_init(&q, SQL_TOKEN_FIND);
    pg_arg_text(&q, hash_hex);
    return pg_get_one(st->impl, &q, token_read, out, "finding a token");
}

int
pg_token_use(struct store *st, const char *id, int64_t now)
{
    struct pg_query q;
    PGresult *res = NULL;
    int err;

    pg_query_init(&q, SQL_TOKEN_USE);
    pg_arg_text(&q, id);
    pg_arg_int(&q, now);
    err = pg_run(st->impl, &q, PG_WRITE, &res, "spending a token");
    if (err == 0 && pg_col_int(res, 0, 0) != 1)
        err = pg_col_int(res, 0, 1) > 0 ? ERR_CONFLICT : ERR_NOTFOUND;
    PQclear(res);
    return err;
}

int
pg_token_revoke(struct store *st, enum token_by by, const char *key, int64_t now)
{
    struct pg_query q;

    pg_query_init(&q, by == TOKEN_BY_FAMILY   ? SQL_TOKEN_REVOKE_FAMILY
                      : by == TOKEN_BY_CLIENT ? SQL_TOKEN_REVOKE_CLIENT
                                              : SQL_TOKEN_REVOKE_ID);
    pg_arg_text(&q, key);
    pg_arg_int(&q, now);
    return pg_exec(st->impl, &q, NULL, "revoking tokens");
}
