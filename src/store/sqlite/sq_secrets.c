/*
 * SQLite backend: endpoint secret columns as stored, and the master key check
 * value, for the sealing passes of store/secrets.c.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/err.h"

static const char SQL_SECRET_SCAN[] =
    "SELECT id, secret, prev_secret FROM endpoints WHERE id > :after ORDER BY id LIMIT :limit";
static const char SQL_SECRET_SWAP[] = "UPDATE endpoints SET secret = :ns, prev_secret = :np "
                                      "WHERE id = :id AND secret = :os AND prev_secret IS :op";
static const char SQL_CHECK_GET[] = "SELECT value FROM master_key_check WHERE id = 1";
static const char SQL_CHECK_INSERT[] =
    "INSERT INTO master_key_check (id, value) VALUES (1, :new) ON CONFLICT DO NOTHING";
static const char SQL_CHECK_UPDATE[] =
    "UPDATE master_key_check SET value = :new WHERE id = 1 AND value = :old";

struct secret_args {
    const char *after;
    int limit;
    const struct store_secret *old, *fresh;
    struct store_secret *rows;
    size_t n;
    const char *old_value, *new_value;
    char *value;
};

static int
secret_read(sqlite3_stmt *stmt, void *out)
{
    struct store_secret *r = out;
    int err;

    memset(r, 0, sizeof(*r));
    sq_col_copy(stmt, 0, r->id, sizeof(r->id));
    if ((err = sq_col_strdup(stmt, 1, &r->secret)) != 0)
        return err;
    return sq_col_strdup(stmt, 2, &r->prev_secret);
}

static int
job_scan(struct sq_conn *c, void *arg)
{
    struct secret_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_SECRET_SCAN);
    int err;

    if (stmt != NULL) {
        sq_bind_text(stmt, ":after", a->after);
        sq_bind_int(stmt, ":limit", a->limit);
    }
    err = sq_row_all(c, stmt, secret_read, &a->rows, &a->n, sizeof(*a->rows),
                     "reading endpoint secrets");
    sq_done(stmt);
    return err;
}

int
sq_secret_scan(struct store *st, const char *after, int limit, struct store_secret **out, size_t *n)
{
    struct secret_args a = {.after = after, .limit = limit};
    int err;

    *out = NULL;
    *n = 0;
    err = sq_read(st->impl, job_scan, &a);
    if (err != 0) {
        store_secret_list_free(a.rows, a.n);
        return err;
    }
    *out = a.rows;
    *n = a.n;
    return 0;
}

static int
job_swap(struct sq_conn *c, void *arg)
{
    struct secret_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_SECRET_SWAP);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", a->old->id);
    sq_bind_text(stmt, ":os", a->old->secret);
    sq_bind_text(stmt, ":op", a->old->prev_secret);
    sq_bind_text(stmt, ":ns", a->fresh->secret);
    sq_bind_text(stmt, ":np", a->fresh->prev_secret);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "sealing an endpoint secret");
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_CONFLICT;
    sq_done(stmt);
    return err;
}

int
sq_secret_swap(struct store *st, const struct store_secret *old, const struct store_secret *fresh)
{
    struct secret_args a = {.old = old, .fresh = fresh};

    return sq_write(st->impl, job_swap, &a);
}

static int
value_read(sqlite3_stmt *stmt, void *out)
{
    return sq_col_strdup(stmt, 0, out);
}

static int
job_check_get(struct sq_conn *c, void *arg)
{
    struct secret_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_CHECK_GET);
    int err;

    free(a->value);
    a->value = NULL;
    err = sq_row_one(c, stmt, value_read, &a->value, "reading the master key check");
    sq_done(stmt);
    return err;
}

int
sq_keycheck_get(struct store *st, char **value)
{
    struct secret_args a = {0};
    int err;

    *value = NULL;
    err = sq_read(st->impl, job_check_get, &a);
    if (err != 0) {
        free(a.value);
        return err;
    }
    *value = a.value;
    return 0;
}

static int
job_check_set(struct sq_conn *c, void *arg)
{
    struct secret_args *a = arg;
    sqlite3_stmt *stmt = sq_stmt(c, a->old_value == NULL ? SQL_CHECK_INSERT : SQL_CHECK_UPDATE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":new", a->new_value);
    sq_bind_text(stmt, ":old", a->old_value);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "writing the master key check");
    else if (sqlite3_changes(c->db) == 0)
        err = ERR_CONFLICT;
    sq_done(stmt);
    return err;
}

int
sq_keycheck_set(struct store *st, const char *old, const char *value)
{
    struct secret_args a = {.old_value = old, .new_value = value};

    return sq_write(st->impl, job_check_set, &a);
}
