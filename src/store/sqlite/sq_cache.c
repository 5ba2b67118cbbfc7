/*
 * SQLite backend: the writer's caches of what every publish reads (the
 * fan-out of an account's event type, an endpoint's sending fields and its
 * count of live leases), kept on the writer connection and emptied by a
 * write generation (docs/internals/store.md, "Writer caches").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/secret.h"

#define CACHE_SLOTS 512  /* buckets of each table (a power of two) */
#define CACHE_MAX 4096   /* entries of each table; the next one empties it first */

/* Every change through the writer connection to a table the caches copy. */
static const char SQL_CACHE_TRIGGERS[] =
    "CREATE TEMP TRIGGER IF NOT EXISTS fh_cache_types_ins AFTER INSERT ON main.endpoint_types "
    "BEGIN SELECT fh_cache_drop(); END; "
    "CREATE TEMP TRIGGER IF NOT EXISTS fh_cache_types_upd AFTER UPDATE ON main.endpoint_types "
    "BEGIN SELECT fh_cache_drop(); END; "
    "CREATE TEMP TRIGGER IF NOT EXISTS fh_cache_types_del AFTER DELETE ON main.endpoint_types "
    "BEGIN SELECT fh_cache_drop(); END";
/* An endpoint's sending fields, if it is enabled. */
static const char SQL_EP_SENDABLE[] =
    "SELECT url, secret, prev_secret, prev_secret_until "
    "FROM endpoints WHERE id = :ep AND status = 'enabled' AND deleted_at = 0";
/*
 * Its deliveries under a live lease, any process's: the 'delivering' range
 * of the endpoint's status index (a few rows, its leases; migration 014).
 */
static const char SQL_EP_LIVE[] =
    "SELECT count(*) FROM deliveries INDEXED BY deliveries_endpoint_status "
    "WHERE endpoint_id = :ep AND status = 'delivering' AND lease_until > :now";

/* One fan-out: the endpoints an account's event type goes to, as fanout_find() reads them. */
struct fan_entry {
    struct fan_entry *next;
    char *key; /* account id, '\n', event type */
    struct sq_cache_fan *eps;
    size_t n;
};

struct sq_cache {
    uint64_t gen;          /* bumped by every change the tables may copy */
    uint64_t built;        /* gen the tables hold; they are emptied when it moves */
    int64_t data_version;  /* PRAGMA data_version at the open transaction's start */
    struct sq_cache_ep *eps[CACHE_SLOTS];
    size_t neps;
    struct fan_entry *fans[CACHE_SLOTS];
    size_t nfans;
    int cred_changed; /* the open transaction changed api_keys or tokens (sq_cred.c) */
    int cred_quiet;   /* a change now is only last_used_at's: not one */
};

static uint64_t
hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *a != '\0'; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
    for (; b != NULL && *b != '\0'; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

static void
ep_entry_free(struct sq_cache_ep *e)
{
    free(e->url);
    secret_free(e->secret);
    secret_free(e->prev_secret);
    free(e);
}

static void
eps_empty(struct sq_cache *k)
{
    struct sq_cache_ep *e, *next;
    size_t i;

    for (i = 0; i < CACHE_SLOTS; i++) {
        for (e = k->eps[i]; e != NULL; e = next) {
            next = e->next;
            ep_entry_free(e);
        }
        k->eps[i] = NULL;
    }
    k->neps = 0;
}

static void
fans_empty(struct sq_cache *k)
{
    struct fan_entry *f, *next;
    size_t i;

    for (i = 0; i < CACHE_SLOTS; i++) {
        for (f = k->fans[i]; f != NULL; f = next) {
            next = f->next;
            free(f->key);
            free(f->eps);
            free(f);
        }
        k->fans[i] = NULL;
    }
    k->nfans = 0;
}

/* The tables of c, emptied first if anything they copy may have changed; NULL when none. */
static struct sq_cache *
cache_of(struct sq_conn *c)
{
    struct sq_cache *k = c->wcache;

    if (k != NULL && k->built != k->gen) {
        eps_empty(k);
        fans_empty(k);
        k->built = k->gen;
    }
    return k;
}

void
sq_cache_drop(struct sq_conn *c)
{
    if (c->wcache != NULL)
        c->wcache->gen++;
}

/* fh_cache_drop(), run by the temporary triggers on endpoint_types. */
static void
fn_cache_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct sq_cache *k = sqlite3_user_data(ctx);

    (void)argc;
    (void)argv;
    k->gen++;
    sqlite3_result_null(ctx);
}

/*
 * The update hook sees rows of tables with a rowid only: endpoints here.
 * endpoint_types (WITHOUT ROWID) has its temporary triggers instead.
 * Changes to api_keys and tokens are noted for the credential cache.
 */
static void
on_update(void *arg, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
    struct sq_cache *k = arg;

    (void)op;
    (void)db;
    (void)rowid;
    if (strcmp(table, "endpoints") == 0)
        k->gen++;
    else if (!k->cred_quiet && (strcmp(table, "api_keys") == 0 || strcmp(table, "tokens") == 0))
        k->cred_changed = 1;
}

/* Whatever the transaction (or its statement) wrote is gone, and what was read from it. */
static void
on_rollback(void *arg)
{
    struct sq_cache *k = arg;

    k->gen++;
}

int
sq_cache_attach(struct sq_conn *c)
{
    struct sq_cache *k;
    int err;

    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return ERR_NOMEM;
    if (sqlite3_create_function(c->db, "fh_cache_drop", 0, SQLITE_UTF8, k, fn_cache_drop, NULL,
                                NULL) != SQLITE_OK) {
        log_warnx("store: cannot register the writer's cache function: %s",
                  sqlite3_errmsg(c->db));
        free(k);
        return ERR_STORE;
    }
    err = sq_exec(c, SQL_CACHE_TRIGGERS);
    if (err == 0)
        err = sq_data_version(c, &k->data_version);
    if (err != 0) {
        free(k);
        return err;
    }
    sqlite3_update_hook(c->db, on_update, k);
    sqlite3_rollback_hook(c->db, on_rollback, k);
    c->wcache = k;
    return 0;
}

void
sq_cache_free(struct sq_cache *k)
{
    if (k == NULL)
        return;
    eps_empty(k);
    fans_empty(k);
    free(k);
}

int
sq_cache_txn_begin(struct sq_conn *c)
{
    int64_t v = 0;
    int err;

    if (c->wcache == NULL)
        return 0;
    err = sq_data_version(c, &v);
    if (err != 0)
        return err;
    if (v != c->wcache->data_version) {
        c->wcache->data_version = v;
        c->wcache->gen++;
    }
    return 0;
}

int
sq_cache_cred_take(struct sq_conn *c)
{
    int changed;

    if (c->wcache == NULL)
        return 1; /* nothing watches the changes: say there was one */
    changed = c->wcache->cred_changed;
    c->wcache->cred_changed = 0;
    return changed;
}

void
sq_cache_cred_quiet(struct sq_conn *c, int quiet)
{
    if (c->wcache != NULL)
        c->wcache->cred_quiet = quiet;
}

/* --- endpoints: sending fields and live leases --- */

struct sq_cache_ep *
sq_cache_ep_find(struct sq_conn *c, const char *id)
{
    struct sq_cache *k = cache_of(c);
    struct sq_cache_ep *e;

    if (k == NULL)
        return NULL;
    for (e = k->eps[hash(id, NULL) & (CACHE_SLOTS - 1)]; e != NULL; e = e->next) {
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

struct sq_cache_ep *
sq_cache_ep_add(struct sq_conn *c, struct sq_cache_ep *row)
{
    struct sq_cache *k = cache_of(c);
    struct sq_cache_ep *e;
    size_t slot;

    if (k == NULL)
        return NULL;
    e = malloc(sizeof(*e));
    if (e == NULL)
        return NULL;
    if (k->neps >= CACHE_MAX)
        eps_empty(k);
    *e = *row;
    memset(row, 0, sizeof(*row));
    slot = hash(e->id, NULL) & (CACHE_SLOTS - 1);
    e->next = k->eps[slot];
    k->eps[slot] = e;
    k->neps++;
    return e;
}

void
sq_cache_ep_clear(struct sq_cache_ep *row)
{
    free(row->url);
    secret_free(row->secret);
    secret_free(row->prev_secret);
    memset(row, 0, sizeof(*row));
}

/* Reads endpoint ep into row (uncounted). */
static int
ep_read(struct sq_conn *c, const char *ep, struct sq_cache_ep *row)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_SENDABLE);
    int rc, err = 0;

    memset(row, 0, sizeof(*row));
    snprintf(row->id, sizeof(row->id), "%s", ep);
    row->live = -1;
    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", ep);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        row->sendable = 1;
        row->prev_until = sqlite3_column_int64(stmt, 3);
        err = sq_col_strdup(stmt, 0, &row->url);
        if (err == 0)
            err = sq_col_strdup(stmt, 1, &row->secret);
        if (err == 0)
            err = sq_col_strdup(stmt, 2, &row->prev_secret);
    } else if (rc != SQLITE_DONE) {
        err = sq_err(c, rc, "reading an endpoint");
    }
    sq_done(stmt);
    if (err != 0)
        sq_cache_ep_clear(row);
    return err;
}

int
sq_cache_ep_get(struct sq_conn *c, const char *id, struct sq_cache_ep *row,
                struct sq_cache_ep **out)
{
    struct sq_cache_ep *e = sq_cache_ep_find(c, id);
    int err;

    if (e == NULL) {
        err = ep_read(c, id, row);
        if (err != 0)
            return err;
        e = sq_cache_ep_add(c, row);
        if (e == NULL)
            e = row; /* not kept: for this caller only */
    }
    *out = e;
    return 0;
}

int
sq_live_count(struct sq_conn *c, const char *id, int64_t now, int *live)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_EP_LIVE);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":ep", id);
    sq_bind_int(stmt, ":now", now);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *live = sqlite3_column_int(stmt, 0);
    else
        err = sq_err(c, rc, "counting an endpoint's live leases");
    sq_done(stmt);
    return err;
}

void
sq_cache_lease_add(struct sq_conn *c, const char *id, int n)
{
    struct sq_cache_ep *e = sq_cache_ep_find(c, id);

    if (e != NULL && e->live >= 0)
        e->live += n;
}

/* --- fan-out --- */

static struct fan_entry *
fan_find(struct sq_cache *k, const char *acct, const char *type, size_t *slot)
{
    struct fan_entry *f;
    size_t alen = strlen(acct);

    *slot = hash(acct, type) & (CACHE_SLOTS - 1);
    for (f = k->fans[*slot]; f != NULL; f = f->next) {
        if (strncmp(f->key, acct, alen) == 0 && f->key[alen] == '\n' &&
            strcmp(f->key + alen + 1, type) == 0)
            return f;
    }
    return NULL;
}

int
sq_cache_fanout_get(struct sq_conn *c, const char *acct, const char *type,
                    struct sq_cache_fan **eps, size_t *n)
{
    struct sq_cache *k = cache_of(c);
    struct fan_entry *f;
    size_t slot;

    if (k == NULL)
        return 0;
    f = fan_find(k, acct, type, &slot);
    if (f == NULL)
        return 0;
    *eps = f->eps;
    *n = f->n;
    return 1;
}

void
sq_cache_fanout_put(struct sq_conn *c, const char *acct, const char *type,
                    const struct sq_cache_fan *eps, size_t n)
{
    struct sq_cache *k = cache_of(c);
    struct fan_entry *f;
    size_t slot, alen, tlen;

    if (k == NULL || fan_find(k, acct, type, &slot) != NULL)
        return;
    if (k->nfans >= CACHE_MAX)
        fans_empty(k);
    alen = strlen(acct);
    tlen = strlen(type);
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return; /* not kept: the next publish reads it again */
    f->key = malloc(alen + tlen + 2);
    f->eps = malloc(n > 0 ? n * sizeof(*eps) : 1);
    if (f->key == NULL || f->eps == NULL) {
        free(f->key);
        free(f->eps);
        free(f);
        return;
    }
    memcpy(f->key, acct, alen);
    f->key[alen] = '\n';
    memcpy(f->key + alen + 1, type, tlen + 1);
    if (n > 0)
        memcpy(f->eps, eps, n * sizeof(*eps));
    f->n = n;
    f->next = k->fans[slot];
    k->fans[slot] = f;
    k->nfans++;
}
