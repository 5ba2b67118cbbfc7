/*
 * SQLite backend: OAuth tokens, portal links and portal sessions.
 */
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "store/store_int.h"
#include "util/err.h"

#define TOKEN_COLS                                                                                 \
    "id, kind, hash, account_id, client_id, family, scopes, created_at, expires_at, used_at, "     \
    "revoked_at"

static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO tokens (" TOKEN_COLS ") VALUES (:id, :kind, :hash, :acct, :client, :family, "
    ":scopes, :at, :exp, 0, 0)";
static const char SQL_TOKEN_FIND[] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = :hash";
static const char SQL_TOKEN_USE[] =
    "UPDATE tokens SET used_at = :at WHERE id = :id AND used_at = 0 AND revoked_at = 0";
static const char SQL_TOKEN_EXISTS[] = "SELECT 1 FROM tokens WHERE id = :id";
static const char SQL_TOKEN_REVOKE_ID[] =
    "UPDATE tokens SET revoked_at = :at WHERE id = :key AND revoked_at = 0";
static const char SQL_TOKEN_REVOKE_FAMILY[] =
    "UPDATE tokens SET revoked_at = :at WHERE family = :key AND revoked_at = 0";
static const char SQL_TOKEN_REVOKE_CLIENT[] =
    "UPDATE tokens SET revoked_at = :at WHERE client_id = :key AND revoked_at = 0";

/* The arguments of one call, handed to its job. */
struct token_args {
    const struct token *in;
    struct token *out;
    const char *key; /* a hash, an id, a family or a client id */
    const char *sql;
    int64_t at;
    int changed; /* rows an UPDATE changed */
};

static int
token_read(sqlite3_stmt *stmt, void *out)
{
    struct token *t = out;
    char kind[16];

    memset(t, 0, sizeof(*t));
    sq_col_copy(stmt, 0, t->id, sizeof(t->id));
    sq_col_copy(stmt, 1, kind, sizeof(kind));
    t->kind = store_token_kind_parse(kind);
    sq_col_copy(stmt, 2, t->hash, sizeof(t->hash));
    sq_col_copy(stmt, 3, t->account_id, sizeof(t->account_id));
    sq_col_copy(stmt, 4, t->client_id, sizeof(t->client_id));
    sq_col_copy(stmt, 5, t->family, sizeof(t->family));
    sq_col_copy(stmt, 6, t->scopes, sizeof(t->scopes));
    t->created_at = sqlite3_column_int64(stmt, 7);
    t->expires_at = sqlite3_column_int64(stmt, 8);
    t->used_at = sqlite3_column_int64(stmt, 9);
    t->revoked_at = sqlite3_column_int64(stmt, 10);
    return 0;
}

static int
job_token_insert(struct sq_conn *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_TOKEN_INSERT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->in->id);
    sq_bind_text(stmt, ":kind", store_token_kind_name(a->in->kind));
    sq_bind_text(stmt, ":hash", a->in->hash);
    sq_bind_text(stmt, ":acct", a->in->account_id);
    sq_bind_text(stmt, ":client", a->in->client_id);
    sq_bind_text(stmt, ":family", a->in->family);
    sq_bind_text(stmt, ":scopes", a->in->scopes);
    sq_bind_int(stmt, ":at", a->in->created_at);
    sq_bind_int(stmt, ":exp", a->in->expires_at);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "inserting a token");
    sq_done(stmt);
    return err;
}

int
sq_token_insert(struct store *st, const struct token *t)
{
    struct token_args args = {.in = t};

    return sq_write(st->impl, job_token_insert, &args);
}

static int
job_token_find(struct sq_conn *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_TOKEN_FIND);
    int err;

    if (stmt != NULL)
        sq_bind_text(stmt, ":hash", a->key);
    err = sq_row_one(c, stmt, token_read, a->out, "finding a token");
    sq_done(stmt);
    return err;
}

int
sq_token_find(struct store *st, const char *hash_hex, struct token *out)
{
    struct token_args args = {.key = hash_hex, .out = out};
    uint64_t stamp;
    int keep, err;

    if (sq_cred_token_get(st->impl, hash_hex, out))
        return 0;
    keep = sq_cred_stamp(st->impl, &stamp); /* before the read */
    err = sq_read(st->impl, job_token_find, &args);
    if (err == 0 && keep)
        sq_cred_token_put(st->impl, stamp, hash_hex, out);
    return err;
}

/*
 * Runs sql, an UPDATE of tokens binding :at and :id or :key; sets a->changed
 * to the rows it changed.
 */
static int
token_update(struct sq_conn *c, struct token_args *a, const char *sql, const char *what)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_int(stmt, ":at", a->at);
    sq_bind_text(stmt, ":id", a->key); /* unbound names are skipped */
    sq_bind_text(stmt, ":key", a->key);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, what);
    else
        a->changed = sqlite3_changes(c->db);
    sq_done(stmt);
    return err;
}

static int
job_token_use(struct sq_conn *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *stmt;
    int rc, err;

    err = token_update(c, a, SQL_TOKEN_USE, "spending a token");
    if (err != 0 || a->changed == 1)
        return err;
    /* Not spent by this call: already spent or revoked, or no such token. */
    stmt = sq_stmt(c, SQL_TOKEN_EXISTS);
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->key);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        err = ERR_CONFLICT;
    else if (rc == SQLITE_DONE)
        err = ERR_NOTFOUND;
    else
        err = sq_err(c, rc, "reading a token");
    sq_done(stmt);
    return err;
}

int
sq_token_use(struct store *st, const char *id, int64_t now)
{
    struct token_args args = {.key = id, .at = now};

    return sq_write(st->impl, job_token_use, &args);
}

static int
job_token_revoke(struct sq_conn *c, void *arg)
{
    struct token_args *a = arg;

    return token_update(c, a, a->sql, "revoking tokens");
}

int
sq_token_revoke(struct store *st, enum token_by by, const char *key, int64_t now)
{
    struct token_args args = {.key = key, .at = now};

    args.sql = by == TOKEN_BY_FAMILY   ? SQL_TOKEN_REVOKE_FAMILY
               : by == TOKEN_BY_CLIENT ? SQL_TOKEN_REVOKE_CLIENT
                                       : SQL_TOKEN_REVOKE_ID;
    return sq_write(st->impl, job_token_revoke, &args);
}
