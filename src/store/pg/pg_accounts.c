/*
 * PostgreSQL backend: accounts, API keys and OAuth clients (api_keys rows
 * of kind 'client').
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/clock.h"
#include "util/err.h"

#define ACCOUNT_COLS "id, name, created_at"
#define KEY_COLS                                                                                   \
    "id, account_id, name, admin, hash, created_at, kind, scopes, expires_at, last_used_at, "      \
    "prev_hash, prev_until"

static const char SQL_ACCOUNT_INSERT[] =
    "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)";
static const char SQL_ACCOUNT_GET[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = $1";
static const char SQL_ACCOUNT_LIST[] =
    "SELECT " ACCOUNT_COLS " FROM accounts WHERE id > $1 ORDER BY id LIMIT $2";
static const char SQL_ACCOUNT_ANY[] = "SELECT EXISTS (SELECT 1 FROM accounts)";
static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys (id, account_id, name, admin, hash, created_at, kind, scopes, "
    "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
static const char SQL_KEY_FIND[] = "SELECT " KEY_COLS " FROM api_keys WHERE hash = $1 UNION ALL "
                                   "SELECT " KEY_COLS " FROM api_keys WHERE prev_hash = $1 LIMIT 1";
static const char SQL_KEY_TOUCH[] = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";
static const char SQL_KEY_ROTATE[] =
    "UPDATE api_keys SET prev_hash = hash, prev_until = $4, hash = $3 "
    "WHERE id = $1 AND account_id = $2";
static const char SQL_KEY_DELETE[] = "DELETE FROM api_keys WHERE id = $1 AND account_id = $2";
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS " FROM api_keys WHERE account_id = $1 ORDER BY id";

static int
account_read(const PGresult *res, int row, void *out)
{
    struct account *a = out;

    memset(a, 0, sizeof(*a));
    pg_col_copy(res, row, 0, a->id, sizeof(a->id));
    a->created_at = pg_col_int(res, row, 2);
    return pg_col_strdup(res, row, 1, &a->name);
}

static int
key_read(const PGresult *res, int row, void *out)
{
    struct api_key *k = out;

    memset(k, 0, sizeof(*k));
    pg_col_copy(res, row, 0, k->id, sizeof(k->id));
    pg_col_copy(res, row, 1, k->account_id, sizeof(k->account_id));
    k->admin = strcmp(PQgetvalue(res, row, 3), "t") == 0;
    pg_col_copy(res, row, 4, k->hash, sizeof(k->hash));
    k->created_at = pg_col_int(res, row, 5);
    k->kind = strcmp(PQgetvalue(res, row, 6), "client") == 0 ? CRED_CLIENT : CRED_KEY;
    pg_col_copy(res, row, 7, k->scopes, sizeof(k->scopes));
    k->expires_at = pg_col_int(res, row, 8);
    k->last_used_at = pg_col_int(res, row, 9);
    pg_col_copy(res, row, 10, k->prev_hash, sizeof(k->prev_hash));
    k->prev_until = pg_col_int(res, row, 11);
    return pg_col_strdup(res, row, 2, &k->name);
}

int
pg_account_insert(struct store *st, const struct account *a)
{
    struct pg_query q;

    if (a == NULL || a->id[0] == '\0')
        return ERR_INVAL;
    pg_query_init(&q, SQL_ACCOUNT_INSERT);
    pg_arg_text(&q, a->id);
    pg_arg_text(&q, a->name != NULL ? a->name : "");
    pg_arg_int(&q, a->created_at != 0 ? a->created_at : clock_now_ms());
    return pg_exec(st->impl, &q, NULL, "inserting an account");
}

int
pg_account_get(struct store *st, const char *id, struct account *out)
{
    struct pg_query q;
    int err;

    memset(out, 0, sizeof(*out));
    if (id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_ACCOUNT_GET);
    pg_arg_text(&q, id);
    err = pg_get_one(st->impl, &q, account_read, out, "reading an account");
    if (err != 0)
        account_cleanup(out);
    return err;
}

int
pg_account_list(struct store *st, const char *after, int limit, struct account **out, size_t *n)
{
    struct account *list = NULL;
    struct pg_query q;
    size_t count = 0;
    int err;

    pg_query_init(&q, SQL_ACCOUNT_LIST);
    pg_arg_text(&q, after);
    pg_arg_int(&q, limit);
    err = pg_get_all(st->impl, &q, account_read, &list, &count, sizeof(*list), "listing accounts");
    if (err != 0) {
        account_list_free(list, count);
        return err;
    }
    *out = list;
    *n = count;
    return 0;
}

int
pg_is_empty(struct store *st)
{
    struct pg_query q;
    PGresult *res = NULL;
    int empty = 0;

    pg_query_init(&q, SQL_ACCOUNT_ANY);
    /* On a failure say "not empty": never create a second admin key by mistake. */
    if (pg_run(st->impl, &q, PG_READ, &res, "counting accounts") == 0)
        empty = strcmp(PQgetvalue(res, 0, 0), "f") == 0;
    PQclear(res);
    return empty;
}

int
pg_key_insert(struct store *st, const struct api_key *key)
{
    struct pg_query q;

    if (key == NULL || key->id[0] == '\0' || key->hash[0] == '\0')
        return ERR_INVAL;
    pg_query_init(&q, SQL_KEY_INSERT);
    pg_arg_text(&q, key->id);
    pg_arg_text(&q, key->account_id);
    pg_arg_text(&q, key->name != NULL ? key->name : "");
    pg_arg_text(&q, key->admin ? "true" : "false");
    pg_arg_text(&q, key->hash);
    pg_arg_int(&q, key->created_at != 0 ? key->created_at : clock_now_ms());
    pg_arg_text(&q, key->kind == CRED_CLIENT ? "client" : "key");
    pg_arg_text(&q, key->scopes);
    pg_arg_int(&q, key->expires_at);
    return pg_exec(st->impl, &q, NULL, "inserting an API key");
}

int
pg_key_find(struct store *st, const char *hash_hex, struct api_key *out)
{
    struct pg_query q;
    int err;

    memset(out, 0, sizeof(*out));
    if (hash_hex == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_KEY_FIND);
    pg_arg_text(&q, hash_hex);
    err = pg_get_one(st->impl, &q, key_read, out, "finding an API key");
    if (err != 0)
        api_key_cleanup(out);
    return err;
}

int
pg_key_delete(struct store *st, const char *account_id, const char *id)
{
    struct pg_query q;
    int64_t rows = 0;
    int err;

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_KEY_DELETE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    err = pg_exec(st->impl, &q, &rows, "deleting an API key");
    if (err == 0 && rows == 0)
        err = ERR_NOTFOUND;
    return err;
}

int
pg_key_list(struct store *st, const char *account_id, struct api_key **out, size_t *n)
{
    struct api_key *keys = NULL;
    struct pg_query q;
    size_t count = 0;
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    pg_query_init(&q, SQL_KEY_LIST);
    pg_arg_text(&q, account_id);
    err = pg_get_all(st->impl, &q, key_read, &keys, &count, sizeof(*keys), "listing API keys");
    if (err != 0) {
        api_key_list_free(keys, count);
        return err;
    }
    *out = keys;
    *n = count;
    return 0;
}

int
pg_key_touch(struct store *st, const char *id, int64_t now)
{
    struct pg_query q;

    if (id == NULL)
        return 0;
    pg_query_init(&q, SQL_KEY_TOUCH);
    pg_arg_text(&q, id);
    pg_arg_int(&q, now);
    return pg_exec(st->impl, &q, NULL, "touching an API key");
}

int
pg_key_rotate(struct store *st, const char *account_id, const char *id, const char *hash_hex,
              int64_t prev_until)
{
    struct pg_query q;
    int64_t rows = 0;
    int err;

    pg_query_init(&q, SQL_KEY_ROTATE);
    pg_arg_text(&q, id);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, hash_hex);
    pg_arg_int(&q, prev_until);
    err = pg_exec(st->impl, &q, &rows, "rotating an API key");
    if (err == 0 && rows == 0)
        err = ERR_NOTFOUND;
    return err;
}
