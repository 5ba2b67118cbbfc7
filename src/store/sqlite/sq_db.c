/*
 * SQLite backend: connections, migrations, the group-commit writer thread,
 * the reader pool and the helpers the other sq_*.c files share.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT job";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO job";
static const char SQL_RELEASE[] = "RELEASE job";

/* --- small helpers --- */

int
sq_err(struct sq_conn *c, int rc, const char *what)
{
    int ext = sqlite3_extended_errcode(c->db);

    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
            return ERR_CONFLICT;
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return ERR_NOTFOUND;
        log_warnx("store: %s refused: %s", what, sqlite3_errmsg(c->db));
        return ERR_INVAL;
    }
    if ((rc & 0xff) == SQLITE_NOMEM)
        return ERR_NOMEM;
    log_warnx("store: %s failed: %s", what, sqlite3_errmsg(c->db));
    return ERR_STORE;
}

sqlite3_stmt *
sq_stmt(struct sq_conn *c, const char *sql)
{
    size_t h = (size_t)(((uintptr_t)sql >> 3) % SQ_STMT_CACHE);
    size_t i;
    int rc;

    for (i = 0; i < SQ_STMT_CACHE; i++) {
        struct sq_stmt_slot *slot = &c->cache[(h + i) % SQ_STMT_CACHE];
        if (slot->sql == sql)
            return slot->stmt;
        if (slot->sql == NULL) {
            rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->stmt,
                                    NULL);
            if (rc != SQLITE_OK) {
                log_warnx("store: cannot prepare '%.60s': %s", sql, sqlite3_errmsg(c->db));
                sqlite3_finalize(slot->stmt);
                slot->stmt = NULL;
                return NULL;
            }
            slot->sql = sql;
            return slot->stmt;
        }
    }
    log_warnx("store: statement cache full");
    return NULL;
}

void
sq_done(sqlite3_stmt *stmt)
{
    if (stmt == NULL)
        return;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

int
sq_exec(struct sq_conn *c, const char *sql)
{
    char *msg = NULL;
    int rc;

    rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_warnx("store: '%.40s' failed: %s", sql, msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return ERR_STORE;
    }
    return 0;
}

/* Runs a cached statement that returns no rows. */
static int
exec_cached(struct sq_conn *c, const char *sql)
{
    sqlite3_stmt *stmt = sq_stmt(c, sql);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, sql);
    sq_done(stmt);
    return err;
}

void
sq_bind_text(sqlite3_stmt *stmt, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(stmt, name);

    if (i == 0)
        return;
    if (v == NULL)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC);
}

void
sq_bind_int(sqlite3_stmt *stmt, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(stmt, name);

    if (i != 0)
        sqlite3_bind_int64(stmt, i, v);
}

void
sq_bind_blob(sqlite3_stmt *stmt, const char *name, const void *p, size_t len)
{
    int i = sqlite3_bind_parameter_index(stmt, name);

    if (i == 0)
        return;
    if (p == NULL)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_blob64(stmt, i, p, len, SQLITE_STATIC);
}

int
sq_col_strdup(sqlite3_stmt *stmt, int col, char **out)
{
    const unsigned char *v = sqlite3_column_text(stmt, col);

    *out = NULL;
    if (v == NULL)
        return sqlite3_column_type(stmt, col) == SQLITE_NULL ? 0 : ERR_NOMEM;
    *out = strdup((const char *)v);
    return *out == NULL ? ERR_NOMEM : 0;
}

void
sq_col_copy(sqlite3_stmt *stmt, int col, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(stmt, col);
    size_t len;

    if (v == NULL) {
        out[0] = '\0';
        return;
    }
    len = strlen((const char *)v);
    if (len >= size)
        len = size - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

int
sq_col_bytes(sqlite3_stmt *stmt, int col, char **out, size_t *len)
{
    const void *p;
    int n;

    *out = NULL;
    *len = 0;
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return 0;
    p = sqlite3_column_blob(stmt, col);
    n = sqlite3_column_bytes(stmt, col);
    *out = malloc((size_t)n + 1);
    if (*out == NULL)
        return ERR_NOMEM;
    if (n > 0)
        memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int
sq_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    void **p = arr;
    size_t ncap;
    void *nv;

    if (need <= *cap)
        return 0;
    ncap = *cap == 0 ? 16 : *cap;
    while (ncap < need)
        ncap *= 2;
    nv = realloc(*p, ncap * elem);
    if (nv == NULL)
        return ERR_NOMEM;
    memset((char *)nv + *cap * elem, 0, (ncap - *cap) * elem);
    *p = nv;
    *cap = ncap;
    return 0;
}

const char *
sq_status(enum delivery_status s)
{
    return delivery_status_name(s);
}

int
sq_status_parse(const char *s)
{
    enum delivery_status v;

    if (delivery_status_parse(s, &v) != 0)
        return -1;
    return (int)v;
}

/* --- connections --- */

static void
conn_close(struct sq_conn *c)
{
    size_t i;

    for (i = 0; i < SQ_STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        c->cache[i].stmt = NULL;
        c->cache[i].sql = NULL;
    }
    if (c->db != NULL)
        sqlite3_close(c->db);
    c->db = NULL;
}

static int
conn_open(struct sq_conn *c, const char *path, int writer)
{
    int rc, err = 0;

    memset(c, 0, sizeof(*c));
    rc = sqlite3_open_v2(path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        log_warnx("store: cannot open '%s': %s", path,
                  c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        err = ERR_STORE;
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    if (writer) {
        /* WAL lets readers run beside the writer; FULL syncs the WAL at every commit. */
        err = sq_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                         "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                         "PRAGMA cache_size=-16384");
    } else {
        err = sq_exec(c, "PRAGMA query_only=ON; PRAGMA temp_store=MEMORY; "
                         "PRAGMA cache_size=-4096");
    }
out:
    if (err != 0)
        conn_close(c);
    return err;
}

static int
migrate(struct sq_conn *c)
{
    const struct sq_migration *m;
    sqlite3_stmt *stmt = NULL;
    int64_t newest = 0;
    int known = 0, rc, err;

    err = sq_exec(c, "CREATE TABLE IF NOT EXISTS schema_version ("
                     "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at INTEGER NOT NULL)");
    if (err != 0)
        goto out;
    for (m = sq_migrations; m->version != 0; m++)
        known = m->version;
    rc = sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
                            &stmt, NULL);
    if (rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_ROW) {
        err = sq_err(c, rc, "reading schema_version");
        goto out;
    }
    newest = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (newest > known) {
        log_warnx("store: database schema version %lld is newer than this fluxhook knows (%d)",
                  (long long)newest, known);
        err = ERR_STORE;
        goto out;
    }
    for (m = sq_migrations; m->version != 0; m++) {
        int applied;

        err = sq_exec(c, "BEGIN IMMEDIATE");
        if (err != 0)
            goto out;
        rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM schema_version WHERE version = ?",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(stmt, 1, m->version);
            rc = sqlite3_step(stmt);
        }
        if (rc != SQLITE_ROW) {
            err = sq_err(c, rc, "reading schema_version");
            sq_exec(c, "ROLLBACK");
            goto out;
        }
        applied = sqlite3_column_int(stmt, 0) > 0;
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (!applied) {
            err = sq_exec(c, m->sql);
            if (err == 0) {
                rc = sqlite3_prepare_v2(c->db,
                                        "INSERT INTO schema_version (version, name, applied_at) "
                                        "VALUES (?, ?, ?)",
                                        -1, &stmt, NULL);
                if (rc == SQLITE_OK) {
                    sqlite3_bind_int(stmt, 1, m->version);
                    sqlite3_bind_text(stmt, 2, m->name, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(stmt, 3, clock_now_ms());
                    rc = sqlite3_step(stmt);
                }
                if (rc != SQLITE_DONE)
                    err = sq_err(c, rc, "recording a migration");
                sqlite3_finalize(stmt);
                stmt = NULL;
            }
            if (err != 0) {
                log_warnx("store: migration %03d_%s failed", m->version, m->name);
                sq_exec(c, "ROLLBACK");
                goto out;
            }
            log_info("store: applied migration %03d_%s", m->version, m->name);
        }
        err = sq_exec(c, "COMMIT");
        if (err != 0)
            goto out;
    }
out:
    sqlite3_finalize(stmt);
    return err;
}

/* --- the writer --- */

/* Fails jobs [from, to) that had succeeded: their transaction is gone. */
static void
jobs_lost(struct sq_job *from, struct sq_job *to)
{
    for (; from != to; from = from->next) {
        if (from->result == 0)
            from->result = ERR_STORE;
    }
}

/* Runs a batch of jobs in one transaction, each in its own savepoint. */
static void
batch_run(struct sq *s, struct sq_job *batch)
{
    struct sq_conn *c = &s->writer;
    struct sq_job *j, *first = batch;
    int in_txn = 0;

    for (j = batch; j != NULL; j = j->next) {
        if (!in_txn) {
            if (exec_cached(c, SQL_BEGIN_IMMEDIATE) != 0) {
                j->result = ERR_STORE;
                continue;
            }
            in_txn = 1;
            first = j;
        }
        if (exec_cached(c, SQL_SAVEPOINT) != 0) {
            j->result = ERR_STORE;
            continue;
        }
        j->result = j->fn(c, j->arg);
        if (sqlite3_get_autocommit(c->db)) {
            /* A hard error (I/O, full disk) rolled the whole transaction back. */
            if (j->result == 0)
                j->result = ERR_STORE;
            jobs_lost(first, j->next);
            in_txn = 0;
            continue;
        }
        if (j->result != 0 && exec_cached(c, SQL_ROLLBACK_TO) != 0) {
            /* The savepoint cannot be undone: give up on the whole transaction. */
            jobs_lost(first, j->next);
            exec_cached(c, SQL_ROLLBACK);
            in_txn = 0;
            continue;
        }
        exec_cached(c, SQL_RELEASE);
    }
    if (in_txn) {
        if (exec_cached(c, SQL_COMMIT) != 0) {
            jobs_lost(first, NULL);
            if (!sqlite3_get_autocommit(c->db))
                exec_cached(c, SQL_ROLLBACK);
        } else {
            s->commits++;
        }
    }
}

static void *
writer_main(void *arg)
{
    struct sq *s = arg;
    struct sq_job *batch, *j;
    uint64_t n;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->head == NULL && !s->stopping)
            pthread_cond_wait(&s->queue_cond, &s->lock);
        if (s->head == NULL)
            break;
        batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);

        batch_run(s, batch);

        pthread_mutex_lock(&s->lock);
        n = 0;
        for (j = batch; j != NULL;) {
            /* After done is set the waiter may free j: read next first. */
            struct sq_job *next = j->next;
            j->done = 1;
            j = next;
            n++;
        }
        s->jobs += n;
        pthread_cond_broadcast(&s->done_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int
sq_write(struct sq *s, sq_job_fn *fn, void *arg)
{
    struct sq_job job = { .fn = fn, .arg = arg };

    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return ERR_SHUTDOWN;
    }
    if (s->tail != NULL)
        s->tail->next = &job;
    else
        s->head = &job;
    s->tail = &job;
    pthread_cond_signal(&s->queue_cond);
    while (!job.done)
        pthread_cond_wait(&s->done_cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return job.result;
}

int
sq_read(struct sq *s, sq_job_fn *fn, void *arg)
{
    struct sq_conn *c = NULL;
    int i, err;

    if (s->nreaders == 0)
        return sq_write(s, fn, arg);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (i = 0; i < s->nreaders && c == NULL; i++) {
            if (!s->readers[i].busy)
                c = &s->readers[i];
        }
        if (c != NULL)
            break;
        pthread_cond_wait(&s->reader_cond, &s->lock);
    }
    c->busy = 1;
    pthread_mutex_unlock(&s->lock);

    err = exec_cached(c, SQL_BEGIN);
    if (err == 0) {
        err = fn(c, arg);
        if (!sqlite3_get_autocommit(c->db))
            exec_cached(c, SQL_COMMIT);
    }

    pthread_mutex_lock(&s->lock);
    c->busy = 0;
    pthread_cond_signal(&s->reader_cond);
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* --- open and close --- */

static void
sq_free(struct sq *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nreaders; i++)
        conn_close(&s->readers[i]);
    conn_close(&s->writer);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->queue_cond);
    pthread_cond_destroy(&s->done_cond);
    pthread_cond_destroy(&s->reader_cond);
    free(s->path);
    free(s);
}

static int
sq_open(struct store *st, const char *rest)
{
    struct sq *s = NULL;
    int i, err;

    if (rest == NULL || rest[0] == '\0') {
        log_warnx("store: sqlite URL without a path: expected sqlite:PATH");
        return ERR_INVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->queue_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    pthread_cond_init(&s->reader_cond, NULL);
    s->path = strdup(rest);
    if (s->path == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    s->memory = strcmp(rest, ":memory:") == 0;
    err = conn_open(&s->writer, s->path, 1);
    if (err != 0)
        goto out;
    err = migrate(&s->writer);
    if (err != 0)
        goto out;
    if (!s->memory) {
        for (i = 0; i < SQ_READERS; i++) {
            err = conn_open(&s->readers[i], s->path, 0);
            if (err != 0)
                goto out;
            s->nreaders++;
        }
    }
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        log_warn("store: cannot start the writer thread");
        err = ERR_STORE;
        goto out;
    }
    s->thread_started = 1;
    st->impl = s;
    log_debug("store: opened sqlite path='%s'", s->path);
out:
    if (err != 0)
        sq_free(s);
    return err;
}

static void
sq_close(struct store *st)
{
    struct sq *s = st->impl;

    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_signal(&s->queue_cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    log_debug("store: closed sqlite commits=%llu jobs=%llu", (unsigned long long)s->commits,
              (unsigned long long)s->jobs);
    sq_free(s);
    st->impl = NULL;
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .account_insert = sq_account_insert,
    .account_get = sq_account_get,
    .account_list = sq_account_list,
    .is_empty = sq_is_empty,
    .key_insert = sq_key_insert,
    .key_find = sq_key_find,
    .key_delete = sq_key_delete,
    .key_list = sq_key_list,
    .endpoint_insert = sq_endpoint_insert,
    .endpoint_get = sq_endpoint_get,
    .endpoint_list = sq_endpoint_list,
    .endpoint_subscribed = sq_endpoint_subscribed,
    .endpoint_update = sq_endpoint_update,
    .endpoint_delete = sq_endpoint_delete,
    .endpoint_disable = sq_endpoint_disable,
    .endpoint_enable = sq_endpoint_enable,
    .event_publish = sq_event_publish,
    .event_get = sq_event_get,
    .event_list = sq_event_list,
    .delivery_get = sq_delivery_get,
    .delivery_list = sq_delivery_list,
    .attempt_list = sq_attempt_list,
    .delivery_retry = sq_delivery_retry,
    .endpoint_replay = sq_endpoint_replay,
    .claim = sq_claim,
    .results_apply = sq_results_apply,
    .release = sq_release,
    .next_due = sq_next_due,
    .count_by_status = sq_count_by_status,
    .stats = sq_stats,
    .stats_series = sq_stats_series,
};
