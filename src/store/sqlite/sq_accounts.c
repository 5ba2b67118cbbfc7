/*
 * SQLite backend: accounts, API keys and OAuth clients (api_keys rows of
 * kind 'client').
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"

static const char SQL_ACCOUNT_INSERT[] =
    "INSERT INTO accounts (id, name, created_at) VALUES (:id, :name, :at)";
static const char SQL_ACCOUNT_GET[] = "SELECT id, name, created_at FROM accounts WHERE id = :id";
static const char SQL_ACCOUNT_LIST[] =
    "SELECT id, name, created_at FROM accounts WHERE id > :after ORDER BY id LIMIT :limit";
static const char SQL_ACCOUNT_ANY[] = "SELECT 1 FROM accounts LIMIT 1";
static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys (id, account_id, name, admin, hash, created_at, kind, scopes, "
    "expires_at) VALUES (:id, :acct, :name, :admin, :hash, :at, :kind, :scopes, :exp)";
#define KEY_COLS                                                                                   \
    "id, account_id, name, admin, hash, created_at, kind, scopes, expires_at, last_used_at, "      \
    "prev_hash, prev_until"
static const char SQL_KEY_FIND[] =
    "SELECT " KEY_COLS " FROM api_keys WHERE hash = :hash OR prev_hash = :hash";
static const char SQL_KEY_TOUCH[] = "UPDATE api_keys SET last_used_at = :at WHERE id = :id";
static const char SQL_KEY_ROTATE[] =
    "UPDATE api_keys SET prev_hash = hash, prev_until = :until, hash = :hash "
    "WHERE id = :id AND account_id = :acct";
static const char SQL_KEY_DELETE[] = "DELETE FROM api_keys WHERE id = :id AND account_id = :acct";
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS " FROM api_keys WHERE account_id = :acct ORDER BY id";

/* The arguments of one call, handed to its job. */
struct acct_args {
    const struct account *in;
    const struct api_key *key;
    const char *id;
    const char *account_id;
    const char *after;
    const char *hash;
    int64_t at;
    int limit;
    struct account *out;
    struct account *list;
    struct api_key *key_out;
    struct api_key *keys;
    size_t n;
    int found;
};

static int
account_read(sqlite3_stmt *stmt, void *out)
{
    struct account *a = out;

    memset(a, 0, sizeof(*a));
    sq_col_copy(stmt, 0, a->id, sizeof(a->id));
    a->created_at = sqlite3_column_int64(stmt, 2);
    return sq_col_strdup(stmt, 1, &a->name);
}

static int
key_read(sqlite3_stmt *stmt, void *out)
{
    struct api_key *k = out;
    char kind[8];

    memset(k, 0, sizeof(*k));
    sq_col_copy(stmt, 0, k->id, sizeof(k->id));
    sq_col_copy(stmt, 1, k->account_id, sizeof(k->account_id));
    k->admin = sqlite3_column_int(stmt, 3);
    sq_col_copy(stmt, 4, k->hash, sizeof(k->hash));
    k->created_at = sqlite3_column_int64(stmt, 5);
    sq_col_copy(stmt, 6, kind, sizeof(kind));
    k->kind = strcmp(kind, "client") == 0 ? CRED_CLIENT : CRED_KEY;
    sq_col_copy(stmt, 7, k->scopes, sizeof(k->scopes));
    k->expires_at = sqlite3_column_int64(stmt, 8);
    k->last_used_at = sqlite3_column_int64(stmt, 9);
    sq_col_copy(stmt, 10, k->prev_hash, sizeof(k->prev_hash));
    k->prev_until = sqlite3_column_int64(stmt, 11);
    return sq_col_strdup(stmt, 2, &k->name);
}

static int
job_account_insert(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ACCOUNT_INSERT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->in->id);
    sq_bind_text(stmt, ":name", a->in->name != NULL ? a->in->name : "");
    sq_bind_int(stmt, ":at", a->in->created_at != 0 ? a->in->created_at : clock_now_ms());
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "inserting an account");
    sq_done(stmt);
    return err;
}

int
sq_account_insert(struct store *st, const struct account *a)
{
    struct acct_args args = { .in = a };

    if (a == NULL || a->id[0] == '\0')
        return ERR_INVAL;
    return sq_write(st->impl, job_account_insert, &args);
}

static int
job_account_get(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ACCOUNT_GET);
    int err;

    if (stmt != NULL)
        sq_bind_text(stmt, ":id", a->id);
    err = sq_row_one(c, stmt, account_read, a->out, "reading an account");
    sq_done(stmt);
    return err;
}

int
sq_account_get(struct store *st, const char *id, struct account *out)
{
    struct acct_args args = { .id = id, .out = out };
    int err;

    memset(out, 0, sizeof(*out));
    if (id == NULL)
        return ERR_NOTFOUND;
    err = sq_read(st->impl, job_account_get, &args);
    if (err != 0)
        account_cleanup(out);
    return err;
}

static int
job_account_list(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ACCOUNT_LIST);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":after", a->after);
        sq_bind_int(stmt, ":limit", a->limit);
    }
    err = sq_row_all(c, stmt, account_read, &a->list, &a->n, sizeof(*a->list),
                     "listing accounts");
    sq_done(stmt);
    return err;
}

int
sq_account_list(struct store *st, const char *after, int limit, struct account **out, size_t *n)
{
    struct acct_args args = { .after = after, .limit = limit };
    int err;

    err = sq_read(st->impl, job_account_list, &args);
    if (err != 0) {
        account_list_free(args.list, args.n);
        return err;
    }
    *out = args.list;
    *n = args.n;
    return 0;
}

static int
job_is_empty(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ACCOUNT_ANY);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        a->found = 1;
    else if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "counting accounts");
    sq_done(stmt);
    return err;
}

int
sq_is_empty(struct store *st)
{
    struct acct_args args = { 0 };

    /* On a failure say "not empty": never create a second admin key by mistake. */
    if (sq_read(st->impl, job_is_empty, &args) != 0)
        return 0;
    return !args.found;
}

static int
job_key_insert(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_KEY_INSERT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->key->id);
    sq_bind_text(stmt, ":acct", a->key->account_id);
    sq_bind_text(stmt, ":name", a->key->name != NULL ? a->key->name : "");
    sq_bind_int(stmt, ":admin", a->key->admin ? 1 : 0);
    sq_bind_text(stmt, ":hash", a->key->hash);
    sq_bind_int(stmt, ":at", a->key->created_at != 0 ? a->key->created_at : clock_now_ms());
    sq_bind_text(stmt, ":kind", a->key->kind == CRED_CLIENT ? "client" : "key");
    sq_bind_text(stmt, ":scopes", a->key->scopes);
    sq_bind_int(stmt, ":exp", a->key->expires_at);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "inserting an API key");
    sq_done(stmt);
    return err;
}

int
sq_key_insert(struct store *st, const struct api_key *key)
{
    struct acct_args args = { .key = key };

    if (key == NULL || key->id[0] == '\0' || key->hash[0] == '\0')
        return ERR_INVAL;
    return sq_write(st->impl, job_key_insert, &args);
}

static int
job_key_find(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_KEY_FIND);
    int err;

    if (stmt != NULL)
        sq_bind_text(stmt, ":hash", a->id);
    err = sq_row_one(c, stmt, key_read, a->key_out, "finding an API key");
    sq_done(stmt);
    return err;
}

int
sq_key_find(struct store *st, const char *hash_hex, struct api_key *out)
{
    struct acct_args args = { .id = hash_hex, .key_out = out };
    uint64_t stamp;
    int keep, err;

    memset(out, 0, sizeof(*out));
    if (hash_hex == NULL)
        return ERR_NOTFOUND;
    if (sq_cred_key_get(st->impl, hash_hex, out))
        return 0;
    memset(out, 0, sizeof(*out));
    keep = sq_cred_stamp(st->impl, &stamp); /* before the read */
    err = sq_read(st->impl, job_key_find, &args);
    if (err != 0)
        api_key_cleanup(out);
    else if (keep)
        sq_cred_key_put(st->impl, stamp, hash_hex, out);
    return err;
}

static int
job_key_delete(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_KEY_DELETE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_text(stmt, ":acct", a->account_id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "deleting an API key");
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_NOTFOUND;
    sq_done(stmt);
    return err;
}

int
sq_key_delete(struct store *st, const char *account_id, const char *id)
{
    struct acct_args args = { .account_id = account_id, .id = id };

    if (account_id == NULL || id == NULL)
        return ERR_NOTFOUND;
    return sq_write(st->impl, job_key_delete, &args);
}

static int
job_key_list(struct sq_conn *c, void *arg)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_KEY_LIST);
    int err;

    if (stmt != NULL)
        sq_bind_text(stmt, ":acct", a->account_id);
    err = sq_row_all(c, stmt, key_read, &a->keys, &a->n, sizeof(*a->keys), "listing API keys");
    sq_done(stmt);
    return err;
}

int
sq_key_list(struct store *st, const char *account_id, struct api_key **out, size_t *n)
{
    struct acct_args args = { .account_id = account_id };
    int err;

    if (account_id == NULL)
        return ERR_NOTFOUND;
    err = sq_read(st->impl, job_key_list, &args);
    if (err != 0) {
        api_key_list_free(args.keys, args.n);
        return err;
    }
    *out = args.keys;
    *n = args.n;
    return 0;
}

/* Runs an UPDATE of one key (touch or rotate); ERR_NOTFOUND when it changed no row. */
static int
job_key_update(struct sq_conn *c, void *arg, const char *sql, const char *what)
{
    struct acct_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->id);
    sq_bind_int(stmt, ":at", a->at); /* unbound names are skipped: one job for both */
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":hash", a->hash);
    sq_bind_int(stmt, ":until", a->at);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, what);
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_NOTFOUND;
    sq_done(stmt);
    return err;
}

static int
job_key_touch(struct sq_conn *c, void *arg)
{
    int err;

    /* last_used_at is no change for the credential cache: it would be emptied every minute. */
    sq_cache_cred_quiet(c, 1);
    err = job_key_update(c, arg, SQL_KEY_TOUCH, "touching an API key");
    sq_cache_cred_quiet(c, 0);
    return err;
}

int
sq_key_touch(struct store *st, const char *id, int64_t now)
{
    struct acct_args args = {.id = id, .at = now};
    int err;

    if (id == NULL)
        return 0;
    /* A lost touch is harmless: do not wait for the disk. */
    err = sq_write_nosync(st->impl, job_key_touch, &args);
    if (err == 0)
        sq_cred_key_touched(st->impl, id, now);
    return err == ERR_NOTFOUND ? 0 : err;
}

static int
job_key_rotate(struct sq_conn *c, void *arg)
{
    return job_key_update(c, arg, SQL_KEY_ROTATE, "rotating an API key");
}

int
sq_key_rotate(struct store *st, const char *account_id, const char *id, const char *hash_hex,
              int64_t prev_until)
{
    struct acct_args args = {
        .account_id = account_id, .id = id, .hash = hash_hex, .at = prev_until};

    return sq_write(st->impl, job_key_rotate, &args);
}
