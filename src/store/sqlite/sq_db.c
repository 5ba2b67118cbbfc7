/*
 * SQLite backend: connections, migrations, the group-commit writer thread,
 * the reader pool and the helpers the other sq_*.c files share.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/wakeup.h"

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT job";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO job";
static const char SQL_RELEASE[] = "RELEASE job";
static const char SQL_PROBE[] = "UPDATE schema_version SET applied_at = applied_at "
                                "WHERE version = (SELECT max(version) FROM schema_version)";
static const char SQL_DATA_VERSION[] = "PRAGMA data_version";
static const char SQL_COUNTS_ADD[] = "UPDATE delivery_counts SET n = n + :d WHERE status = :s";

/* --- small helpers --- */

/*
 * 1 when rc says the storage failed (a full disk, an I/O error, a file that
 * cannot be opened) rather than the statement: the store is unavailable
 * until the disk recovers, and a later try may succeed.
 */
static int
sq_rc_fault(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN;
}

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
    return sq_rc_fault(rc) ? ERR_UNAVAILABLE : ERR_STORE;
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
        return sq_rc_fault(rc) ? ERR_UNAVAILABLE : ERR_STORE;
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
sq_row_one(struct sq_conn *c, sqlite3_stmt *stmt, sq_row_read_fn *read, void *out,
           const char *what)
{
    int rc;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return read(stmt, out);
    if (rc == SQLITE_DONE)
        return ERR_NOTFOUND;
    return sq_err(c, rc, what);
}

int
sq_row_all(struct sq_conn *c, sqlite3_stmt *stmt, sq_row_read_fn *read, void *items,
           size_t *n, size_t elem, const char *what)
{
    char **arr = items;
    size_t cap = *n;
    int rc, err;

    if (stmt == NULL)
        return ERR_STORE;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        err = store_grow(arr, &cap, *n + 1, elem);
        if (err != 0)
            return err;
        /* Counted before it is read, so a half-read row is freed with the rest. */
        err = read(stmt, *arr + (*n)++ * elem);
        if (err != 0)
            return err;
    }
    return rc == SQLITE_DONE ? 0 : sq_err(c, rc, what);
}

void
sq_count_move(struct sq_conn *c, int from, int to, int64_t n)
{
    if (from == to || n == 0)
        return;
    if (from >= 0 && from < DELIVERY__COUNT)
        c->delta[from] -= n;
    if (to >= 0 && to < DELIVERY__COUNT)
        c->delta[to] += n;
}

/* Adds the open transaction's status changes to delivery_counts. */
static int
counts_flush(struct sq_conn *c)
{
    sqlite3_stmt *stmt;
    int i, rc, err = 0;

    for (i = 0; i < DELIVERY__COUNT && err == 0; i++) {
        if (c->delta[i] == 0)
            continue;
        stmt = sq_stmt(c, SQL_COUNTS_ADD);
        if (stmt == NULL)
            return ERR_STORE;
        sq_bind_int(stmt, ":d", c->delta[i]);
        sq_bind_text(stmt, ":s", delivery_status_name((enum delivery_status)i));
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
            err = sq_err(c, rc, "counting deliveries");
        sq_done(stmt);
    }
    memset(c->delta, 0, sizeof(c->delta));
    return err;
}

const char *
sq_status(enum delivery_status s)
{
    return delivery_status_name(s);
}

/* --- connections --- */

/*
 * Pages of a new database: an event of a few hundred bytes leaves about half
 * its size unused at the end of each page, and a page of 8 KiB holds twice
 * the events of one of 4 KiB (docs/internals/store.md, "Size on disk").
 */
#define SQ_PAGE_SIZE "8192"

int64_t
sq_page_size(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int64_t page = 0;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &stmt, NULL);
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        page = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (page <= 0)
        log_warnx("store: cannot read the page size: %s", sqlite3_errmsg(db));
    return page;
}

/*
 * PRAGMA data_version of c into *v: it changes when another connection
 * (another process, for the writer) committed since c's last look.
 */
int
sq_data_version(struct sq_conn *c, int64_t *v)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_DATA_VERSION);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(stmt, 0);
    else
        err = sq_err(c, rc, "reading the data version");
    sq_done(stmt);
    return err;
}

/*
 * Checkpoints every `step` bytes added to the WAL (SQLite's automatic
 * checkpoint counts pages: this makes it count bytes; the checkpointer,
 * sq_ckpt.c, replaces it on the writer) and cuts a WAL longer than `limit`
 * back to that at its next reset.
 */
static int
wal_limits(struct sq_conn *c, int64_t step, int64_t limit)
{
    int64_t page = sq_page_size(c->db);
    char sql[128];

    if (page <= 0)
        return ERR_STORE;
    snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint=%lld; PRAGMA journal_size_limit=%lld",
             (long long)(step / page), (long long)limit);
    return sq_exec(c, sql);
}

/*
 * Takes every group and other permission from one existing file, or says
 * why not (a file of another owner still opens). By path, never by opening it: closing
 * a descriptor of a file drops every POSIX lock this process holds on it,
 * SQLite's included (another handle may have it open).
 */
static void
file_restrict(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0 || (st.st_mode & 077) == 0)
        return;
    if (chmod(path, st.st_mode & 0700) != 0) {
        log_warn("store: cannot narrow the mode of '%s'", path);
        return;
    }
    log_info("store: mode of '%s' narrowed from 0%o to 0%o", path,
             (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
}

/*
 * Makes the database, its -wal, -shm and -cred SQ_FILE_MODE whatever the umask:
 * creates the database file itself when missing (SQLite would create it
 * 0644 less the umask) and takes group and other bits from the ones that
 * exist. SQLite
 * gives a -wal or -shm it creates the mode of the database file. Returns 0,
 * ERR_INVAL (path too long) or ERR_STORE (cannot create the database).
 */
static int
files_restrict(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-cred"};
    char name[PATH_MAX];
    size_t i;
    int fd, err = 0;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, SQ_FILE_MODE);
    if (fd >= 0) {
        /* A umask may have taken the owner's bits too. */
        if (fchmod(fd, SQ_FILE_MODE) != 0)
            log_warn("store: cannot set the mode of '%s'", path);
        close(fd);
    } else if (errno != EEXIST) {
        log_warn("store: cannot create '%s'", path);
        err = ERR_STORE;
        goto out;
    }
    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (snprintf(name, sizeof(name), "%s%s", path, suffixes[i]) >= (int)sizeof(name)) {
            err = ERR_INVAL;
            goto out;
        }
        file_restrict(name);
    }
out:
    return err;
}

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
    sq_cache_free(c->wcache);
    c->wcache = NULL;
    free(c->roll);
    c->roll = NULL;
    c->roll_n = c->roll_cap = c->roll_mark = 0;
    free(c->roll_accts);
    c->roll_accts = NULL;
}

static int
conn_open(struct sq_conn *c, const char *path, int writer)
{
    int rc, err = 0;

    memset(c, 0, sizeof(*c));
    /* The writer's commits write their WAL frames in one call (sq_walbuf.c). */
    rc = sqlite3_open_v2(path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         writer ? sq_walbuf_vfs() : NULL);
    if (rc != SQLITE_OK) {
        log_warnx("store: cannot open '%s': %s", path,
                  c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        err = ERR_STORE;
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    if (writer) {
        /*
         * WAL lets readers run beside the writer. Commits are not synced by
         * SQLite (NORMAL) but by the syncer thread before any caller is
         * answered, which is as durable as FULL and lets the next batch run
         * during the sync. The migrations at open run with FULL, before the
         * syncer starts. secure_delete zeroes what a change frees, so a
         * secret sealed over its clear text (an upgrade) leaves no copy in
         * the file (Debian's SQLite does so by default; other builds may not).
         * A new database gets 8 KiB pages (SQ_PAGE_SIZE; one that exists keeps
         * its own); the WAL is checkpointed at every 4 MiB, whatever the page,
         * and a WAL grown past its bound (sq_ckpt.c) is cut back at its reset.
         */
        err = sq_exec(c, "PRAGMA page_size=" SQ_PAGE_SIZE "; PRAGMA journal_mode=WAL; "
                         "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                         "PRAGMA secure_delete=ON; PRAGMA cache_size=-8192");
        if (err == 0)
            err = wal_limits(c, SQ_WAL_CKPT_BYTES, (SQ_CKPT_MAX + 4) * (int64_t)SQ_WAL_CKPT_BYTES);
        if (err == 0)
            err = sq_lat_functions(c->db); /* the rollups' latency (sq_lat.c) */
    } else {
        /*
         * Page caches are bounded (8 MiB + 4 x 2 MiB) and temporary data (sorts,
         * statement journals of large updates) spills to files: memory never
         * grows with the backlog.
         */
        err = sq_exec(c, "PRAGMA query_only=ON; "
                         "PRAGMA cache_size=-2048");
    }
out:
    if (err != 0)
        conn_close(c);
    return err;
}

int
store_sqlite_schema_version(void)
{
    const struct sq_migration *m;
    int newest = 0;

    for (m = sq_migrations; m->version != 0; m++)
        newest = m->version;
    return newest;
}

/*
 * Applies the migrations the database lacks, each in its own transaction.
 * Sets *version to the schema version reached and *applied to how many ran.
 */
static int
migrate(struct sq_conn *c, int *version, int *applied_now)
{
    const struct sq_migration *m;
    sqlite3_stmt *stmt = NULL;
    int64_t newest = 0;
    int known = 0, rc, err;

    *version = 0;
    *applied_now = 0;
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
            (*applied_now)++;
        }
        err = sq_exec(c, "COMMIT");
        if (err != 0)
            goto out;
        *version = m->version;
    }
out:
    sqlite3_finalize(stmt);
    return err;
}

/* --- the writer --- */

/*
 * How long a job answered at its commit (a claim, a result: sq_write_nosync)
 * waits in the open transaction for the syncer to be free before it is
 * committed anyway. Committing each one at once made several commits per
 * sync, each writing the same hot pages of every index to the WAL again;
 * waiting for the sync without a bound starved the dispatcher behind
 * publishes while syncs were slow.
 */
#define SQ_NOSYNC_WAIT_MS 2

/*
 * The writer's open transaction: the jobs run in it so far, oldest first.
 * It stays open while the syncer is busy, since a commit could not become
 * durable before the sync under way ends anyway: every job arriving
 * meanwhile joins it, and it commits once, when the syncer is free, or
 * SQ_NOSYNC_WAIT_MS after the first job that needs no sync joined it.
 */
struct txn {
    struct sq_job *head, *tail;
    size_t count;
    int open;      /* BEGIN done, not committed or rolled back */
    int safe;      /* jobs run inside savepoints (after a job failed halfway) */
    int nosync;    /* jobs that are answered at commit, without a sync (claims, results) */
    struct timespec nosync_by; /* CLOCK_MONOTONIC: when those are committed at the latest */
};

/* 1 when t holds a job needing no sync that has waited its while. */
static int
txn_nosync_due(const struct txn *t)
{
    struct timespec now;

    if (t->nosync == 0)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->nosync_by.tv_sec ||
           (now.tv_sec == t->nosync_by.tv_sec && now.tv_nsec >= t->nosync_by.tv_nsec);
}

/* Adds the jobs from `fresh` on to t's count of jobs needing no sync. */
static void
txn_count_nosync(struct txn *t, const struct sq_job *fresh)
{
    const struct sq_job *j;
    int before = t->nosync;

    for (j = fresh; j != NULL; j = j->next)
        t->nosync += j->nosync;
    if (before > 0 || t->nosync == 0)
        return;
    clock_mono_deadline(&t->nosync_by, SQ_NOSYNC_WAIT_MS);
}

/* Fails every job of the transaction whose answer depended on its commit. */
static void
txn_fail(struct txn *t, int err)
{
    struct sq_job *j;

    for (j = t->head; j != NULL; j = j->next) {
        if (j->state != SQ_JOB_KEPT)
            j->result = err;
    }
}

/*
 * Runs the jobs from `from` to the end of t inside t's transaction.
 *
 * Jobs first run back to back without savepoints, which would copy every
 * page they touch. A job that fails before writing anything (a conflict, a
 * missing row: nearly every failure) simply keeps its answer. A job that
 * fails after writing undoes the whole transaction; its jobs then run again
 * with each one inside its own savepoint, so that failure never fails its
 * neighbours. Jobs that wrote nothing keep their answers; the others run
 * again, which is why a job must set its outputs from scratch each time.
 * Returns 0, or ERR_STORE when the transaction was lost (every job failed).
 */
static int
txn_run(struct sq *s, struct txn *t, struct sq_job *from)
{
    struct sq_conn *c = &s->writer;
    struct sq_job *j;
    int err;

again:
    if (!t->open) {
        err = exec_cached(c, SQL_BEGIN_IMMEDIATE);
        if (err != 0)
            goto lost;
        t->open = 1;
        err = sq_cache_txn_begin(c);
        if (err != 0)
            goto lost;
        sq_cred_txn_begin(s);
    }
    for (j = from; j != NULL; j = j->next) {
        int64_t delta[DELIVERY__COUNT];
        sqlite3_int64 before;

        if (j->state != SQ_JOB_TODO)
            continue;
        if (t->safe) {
            err = exec_cached(c, SQL_SAVEPOINT);
            if (err != 0)
                goto lost;
        }
        before = sqlite3_total_changes64(c->db);
        memcpy(delta, c->delta, sizeof(delta));
        sq_roll_mark(c);
        j->result = j->fn(c, j->arg);
        if (j->result != 0) {
            /* Whatever it counted is undone below, with its writes. */
            memcpy(c->delta, delta, sizeof(delta));
            sq_roll_undo(c);
        }
        if (sqlite3_get_autocommit(c->db)) {
            /* A hard error (I/O, full disk) rolled the whole transaction back. */
            log_warnx("store: transaction lost: %s", sqlite3_errmsg(c->db));
            err = j->result == ERR_UNAVAILABLE || sq_rc_fault(sqlite3_extended_errcode(c->db))
                      ? ERR_UNAVAILABLE
                      : ERR_STORE;
            goto lost;
        }
        if (t->safe) {
            if (j->result != 0) {
                sq_cache_drop(c); /* what it wrote, and what was read after, is undone */
                err = exec_cached(c, SQL_ROLLBACK_TO);
            } else {
                err = 0;
            }
            if (err == 0)
                err = exec_cached(c, SQL_RELEASE);
            if (err != 0)
                goto lost;
            j->state = j->result != 0 || sqlite3_total_changes64(c->db) == before ? SQ_JOB_KEPT
                                                                                 : SQ_JOB_WROTE;
            continue;
        }
        if (sqlite3_total_changes64(c->db) == before) {
            j->state = SQ_JOB_KEPT;
            continue;
        }
        if (j->result != 0) {
            log_debug("store: a write failed halfway, running its transaction again");
            err = exec_cached(c, SQL_ROLLBACK);
            if (err != 0)
                goto lost;
            memset(c->delta, 0, sizeof(c->delta));
            sq_roll_reset(c);
            t->open = 0;
            t->safe = 1;
            from = t->head;
            goto again;
        }
    }
    return 0;
lost:
    txn_fail(t, err);
    if (!sqlite3_get_autocommit(c->db))
        exec_cached(c, SQL_ROLLBACK);
    memset(c->delta, 0, sizeof(c->delta));
    sq_roll_reset(c);
    t->open = 0;
    return err;
}

/*
 * Commits t, setting *committed to 1 when it did. Returns 0 (also when t
 * was no longer open), or ERR_UNAVAILABLE or ERR_STORE when the commit
 * failed: t is then rolled back and its jobs that wrote failed with it.
 */
static int
txn_commit(struct sq *s, struct txn *t, int *committed)
{
    struct sq_conn *c = &s->writer;
    uint64_t cred;
    int err = 0;

    *committed = 0;
    if (!t->open)
        goto out;
    t->open = 0;
    err = counts_flush(c);
    if (err == 0)
        err = sq_roll_flush(c);
    else
        sq_roll_reset(c);
    /* Before COMMIT, still holding the write lock: no reader sees the change first. */
    cred = sq_cred_commit_begin(s);
    if (err == 0)
        err = exec_cached(c, SQL_COMMIT);
    sq_cred_commit_end(s, cred);
    if (err == 0) {
        *committed = 1;
        goto out;
    }
    txn_fail(t, err);
    if (!sqlite3_get_autocommit(c->db))
        exec_cached(c, SQL_ROLLBACK);
out:
    return err;
}

/*
 * Under s->lock: remembers that a write failed (err, from a transaction, a
 * commit or a WAL sync) after `commits` commits, for sq_ping(). Logs the
 * start of a failing spell once.
 */
static void
fault_note(struct sq *s, int err, uint64_t commits)
{
    if (err == 0 || err == ERR_NOMEM)
        return;
    if (s->fault == 0) {
        log_warnx("store: writes to '%s' failing: %s", s->path, err_str(err));
        s->fault_since = clock_now_ms();
    }
    s->fault = err;
    s->fault_commits = commits;
}

/*
 * Under s->lock: the first `commits` commits are durable now. One made after
 * the last failure ends the failing spell.
 */
static void
fault_clear(struct sq *s, uint64_t commits)
{
    if (s->fault == 0 || commits <= s->fault_commits)
        return;
    log_info("store: writes to '%s' succeed again after %lld ms", s->path,
             (long long)(clock_now_ms() - s->fault_since));
    s->fault = 0;
}

/*
 * Gives the jobs of list their final result (err unless they failed on
 * their own) and returns list, for jobs_complete() to answer once the
 * store's lock is released: a caller woken under it would preempt this
 * thread only to wait for the lock.
 */
static struct sq_job *
jobs_done(struct sq_job *list, int err)
{
    struct sq_job *j;

    for (j = list; j != NULL; j = j->next) {
        if (err != 0 && j->result == 0)
            j->result = err;
    }
    return list;
}

/*
 * Takes the jobs of *list that `is` says yes to out of it and returns them,
 * in order; the others stay in *list, in order.
 */
static struct sq_job *
jobs_take(struct sq_job **list, int (*is)(const struct sq_job *))
{
    struct sq_job *taken = NULL, **tlink = &taken, **link = list, *j;

    while ((j = *link) != NULL) {
        if (!is(j)) {
            link = &j->next;
            continue;
        }
        *link = j->next;
        j->next = NULL;
        *tlink = j;
        tlink = &j->next;
    }
    return taken;
}

/* The asynchronous jobs (sq_write_async()), for jobs_take(); a thread waits for the others. */
static int
job_is_async(const struct sq_job *j)
{
    return j->done_fn != NULL;
}

/*
 * Without the store's lock: answers the jobs of list (from jobs_done()), in
 * order: wakes the thread that waits for one, calls the completion of an
 * asynchronous one (sq_write_async()) and frees it. A completion may queue
 * new jobs. The wake-ups the completions make (an HTTP loop per suspended
 * publish) are made once per woken thread, after the last (util/wakeup.h).
 */
static void
jobs_complete(struct sq_job *list)
{
    struct sq_job *j, *next;

    wakeup_hold();
    for (j = list; j != NULL; j = next) {
        /* Once answered a waiting caller returns and frees j: read next first. */
        next = j->next;
        if (j->done_fn == NULL) {
            sem_post(&j->answered);
            continue;
        }
        j->done_fn(j->done_arg, j->result);
        free(j);
    }
    wakeup_release();
}

/*
 * Takes the jobs of list that need no sync out of it, in order, into
 * *answered for jobs_complete() (never asynchronous: sq_write_async() jobs
 * sync), and returns the others, in order, setting *tail to the last of
 * them (NULL when none is left).
 */
static struct sq_job *
jobs_nosync_done(struct sq_job *list, struct sq_job **tail, struct sq_job **answered)
{
    struct sq_job *keep = NULL, **link = &keep, **alink = answered, *j, *next;

    *tail = *answered = NULL;
    for (j = list; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->nosync) {
            *alink = j;
            alink = &j->next;
            continue;
        }
        *link = j;
        link = &j->next;
        *tail = j;
    }
    return keep;
}

/* Stamps the jobs of a transaction just committed (or lost), for waits_note(). */
static void
jobs_stamp_commit(struct sq_job *list)
{
    int64_t now = clock_mono_us();

    for (; list != NULL; list = list->next)
        list->committed_us = now;
}

/*
 * Under s->lock: counts a WAL sync that took from sync_us to now_us, and the
 * waits of the jobs it answers (before jobs_complete(): a waiting caller may
 * free its job once answered).
 */
static void
waits_note(struct sq *s, const struct sq_job *list, int64_t sync_us, int64_t now_us)
{
    lathist_add(&s->h_sync, now_us - sync_us);
    for (; list != NULL; list = list->next) {
        lathist_add(&s->h_wait_commit, list->committed_us - list->queued_us);
        lathist_add(&s->h_wait_sync, now_us - list->committed_us);
    }
}

/* 1 when no sync is under way or waiting (always, without a syncer). */
static int
syncer_idle(const struct sq *s)
{
    return !s->syncer_started || (s->sync_head == NULL && !s->syncing);
}

/* 1 when t holds a job answered only once a WAL sync covers its commit. */
static int
txn_waits_sync(const struct txn *t)
{
    return t->count > (size_t)t->nosync;
}

/* Appends the jobs of fresh to t and runs them in its transaction. */
static void
writer_run(struct sq *s, struct txn *t, struct sq_job *fresh)
{
    struct sq_job *last = fresh;
    size_t n = 1;
    int err;

    while (last->next != NULL) {
        last = last->next;
        n++;
    }
    for (struct sq_job *j = fresh; j != NULL; j = j->next)
        j->state = SQ_JOB_TODO;
    txn_count_nosync(t, fresh);
    if (t->tail != NULL)
        t->tail->next = fresh;
    else
        t->head = fresh;
    t->tail = last;
    t->count += n;
    err = txn_run(s, t, fresh);
    if (err != 0) {
        t->open = 0;
        pthread_mutex_lock(&s->lock);
        fault_note(s, err, s->commits);
        pthread_mutex_unlock(&s->lock);
    }
}

/*
 * Commits t and hands its jobs on: those that need no sync are answered,
 * the others go to the syncer (or, without one, are answered). Then what
 * a checkpoint pass left is copied, when it is time. Called and returns
 * with s->lock held; releases it meanwhile.
 */
static void
writer_commit(struct sq *s, struct txn *t)
{
    struct sq_job *answered = NULL;
    int committed, wake_syncer = 0, beside_sync, err;

    pthread_mutex_unlock(&s->lock);
    err = txn_commit(s, t, &committed);
    if (!s->syncer_started)
        sq_jobs_after(t->head, 0);
    jobs_stamp_commit(t->head);

    pthread_mutex_lock(&s->lock);
    s->commits += (uint64_t)committed;
    if (committed)
        sq_synced_commit(s);
    s->jobs += t->count;
    fault_note(s, err, s->commits);
    if (!s->syncer_started) {
        fault_clear(s, s->commits);
        answered = jobs_done(t->head, 0);
    } else if ((t->head = jobs_nosync_done(t->head, &t->tail, &answered)) != NULL) {
        /* The syncer answers them once the WAL holding the commit is on disk. */
        if (s->sync_tail != NULL)
            s->sync_tail->next = t->head;
        else
            s->sync_head = t->head;
        s->sync_tail = t->tail;
        wake_syncer = 1;
    }
    memset(t, 0, sizeof(*t));
    /* Once the syncer has the commit: what a checkpoint pass left, at most. */
    beside_sync = !s->syncer_started || !syncer_idle(s);
    pthread_mutex_unlock(&s->lock);
    /*
     * The syncer and the callers are woken once the lock is released:
     * woken under it, each preempted this thread only to wait for it.
     */
    if (wake_syncer)
        pthread_cond_signal(&s->sync_cond);
    jobs_complete(answered);
    if (committed)
        sq_ckpt_commit(s->ckpt, beside_sync);
    pthread_mutex_lock(&s->lock);
}

/* The chunks of big moves (sq_write_chunk()), for jobs_take(). */
static int
job_is_chunk(const struct sq_job *j)
{
    return j->chunk;
}

static void *
writer_main(void *arg)
{
    struct sq *s = arg;
    struct txn t = { 0 };
    struct sq_job *fresh, *chunks;

    (void)pthread_setname_np(pthread_self(), "fh-writer");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->head == NULL && !s->stopping &&
               !(t.head != NULL && (syncer_idle(s) || txn_nosync_due(&t)))) {
            if (t.nosync > 0)
                pthread_cond_timedwait(&s->queue_cond, &s->lock, &t.nosync_by);
            else
                pthread_cond_wait(&s->queue_cond, &s->lock);
        }
        if (s->head == NULL && t.head == NULL)
            break;
        fresh = s->head;
        s->head = s->tail = NULL;
        s->queued = 0;
        pthread_mutex_unlock(&s->lock);

        /*
         * A chunk of a big move holds the writer for milliseconds: the jobs
         * queued with it run first, and those waiting for a sync are
         * committed (and their sync started) before it runs, not after.
         */
        chunks = jobs_take(&fresh, job_is_chunk);
        if (fresh != NULL)
            writer_run(s, &t, fresh);
        pthread_mutex_lock(&s->lock);
        if (chunks != NULL) {
            if (txn_waits_sync(&t))
                writer_commit(s, &t);
            pthread_mutex_unlock(&s->lock);
            writer_run(s, &t, chunks);
            pthread_mutex_lock(&s->lock);
        }
        /*
         * A transaction holding a claim or a result commits within
         * SQ_NOSYNC_WAIT_MS: they need no sync, and the dispatcher must not
         * wait for one (under full ingest that starved delivery behind
         * publishes).
         */
        if (syncer_idle(s) || s->stopping || t.count >= SQ_MAX_TXN_JOBS || !t.open ||
            txn_nosync_due(&t))
            writer_commit(s, &t);
    }
    s->writer_done = 1;
    pthread_cond_signal(&s->sync_cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int sq_wal_sync_skip;

/*
 * Makes the WAL durable: syncs it through SQLite's own file object (the VFS's
 * xSync: fdatasync() for the unix VFS, which also syncs the directory the
 * first time after creating the WAL). It flushes every commit written to the
 * WAL so far. Going through the VFS keeps one path for every byte and every
 * sync SQLite's files see, so a VFS (a test's power-loss shim) sees this
 * sync too. Returns 0 or ERR_UNAVAILABLE (logged).
 */
static int
wal_sync(struct sq *s)
{
    int rc;

    if (sq_wal_sync_skip)
        return 0;
    rc = s->wal_file->pMethods->xSync(s->wal_file, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
        log_warnx("store: cannot sync the WAL of '%s': %s", s->path, sqlite3_errstr(rc));
        return ERR_UNAVAILABLE;
    }
    return 0;
}

/*
 * The syncer: while the writer runs the next transaction, it syncs the WAL
 * once for everything committed since its last sync, then answers the jobs.
 * Commits are written with synchronous=NORMAL (no sync of their own); no
 * caller hears "done" before the sync that covers its commit.
 */
static void *
syncer_main(void *arg)
{
    struct sq *s = arg;
    struct sq_job *list, *answered;
    uint64_t commits;
    int64_t sync_us, done_us;
    char mark[ID_MAX];
    int queued, err;

    (void)pthread_setname_np(pthread_self(), "fh-syncer");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->sync_head == NULL && !s->writer_done)
            pthread_cond_wait(&s->sync_cond, &s->lock);
        if (s->sync_head == NULL)
            break;
        list = s->sync_head;
        s->sync_head = s->sync_tail = NULL;
        s->syncing = 1;
        /* Every commit counted so far is in the WAL: the sync covers it. */
        commits = s->commits;
        memcpy(mark, s->mark_committed, ID_MAX);
        pthread_mutex_unlock(&s->lock);

        sync_us = clock_mono_us();
        err = wal_sync(s);
        done_us = clock_mono_us();
        /*
         * Jobs queued during the sync (a lazy wake-up left them waiting: see
         * job_queue()) run now, while this thread hands the batch over, so
         * that the writer can commit as soon as it is told below. It commits
         * only then: a caller answered below that writes again at once still
         * joins that commit, and the syncer is ready for it.
         */
        pthread_mutex_lock(&s->lock);
        queued = s->head != NULL;
        pthread_mutex_unlock(&s->lock);
        if (queued)
            pthread_cond_signal(&s->queue_cond);
        /*
         * The batch's hand-offs are made ready (bodies copied out of the
         * callers' events, secrets opened) but kept by this hold until the
         * asynchronous callers (the HTTP loops' publishes) are answered:
         * their answers no longer wait for the dispatcher's wake-up. A
         * thread waiting for its job is still answered after the hand-over.
         */
        store_handoff_hold();
        sq_jobs_after(list, err);

        pthread_mutex_lock(&s->lock);
        s->syncing = 0;
        s->syncs++;
        waits_note(s, list, sync_us, done_us);
        sq_synced_done(s, mark, commits, err);
        if (err != 0)
            fault_note(s, err, commits);
        else
            fault_clear(s, commits);
        answered = jobs_done(jobs_take(&list, job_is_async), err);
        pthread_mutex_unlock(&s->lock);
        /* The writer may hold a transaction open for this moment. */
        pthread_cond_signal(&s->queue_cond);
        jobs_complete(answered);
        store_handoff_release();
        jobs_complete(jobs_done(list, err)); /* none asynchronous left */
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* wakeup_fn: the writer has jobs. */
static void
writer_wake(void *arg)
{
    struct sq *s = arg;

    pthread_cond_signal(&s->queue_cond);
}

/*
 * Under s->lock: appends j to the writer's queue. Returns 1 when the writer
 * must be woken (it sleeps only on an empty queue), which the caller does
 * once it has released the lock (woken under it, the writer would wait for
 * it at once): at once for a job its thread waits for, with wakeup_post()
 * for a lazy one (a job no thread waits for). While a sync is under way a
 * lazy job wakes the writer once per SQ_WAKE_JOBS jobs instead of once per
 * job: none of them can be durable before the syncer is done, and the
 * syncer wakes the writer then. A lazy job's wake-up waits for the end of
 * its thread's wakeup_hold() (an HTTP loop's round of requests), so the
 * round's publishes reach the writer together.
 */
static int
job_queue(struct sq *s, struct sq_job *j, int lazy)
{
    if (s->tail != NULL)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    j->queued_us = clock_mono_us();
    s->queued++;
    return !lazy || s->queued >= SQ_WAKE_JOBS || syncer_idle(s);
}

void
sq_jobs_after(struct sq_job *list, int sync_err)
{
    struct sq_job *j;

    store_handoff_hold(); /* the group's hand-offs go to the dispatcher together */
    for (j = list; j != NULL; j = j->next) {
        if (j->after != NULL)
            j->after(j->arg, j->result != 0 ? j->result : sync_err);
    }
    store_handoff_release();
}

static int
write_job(struct sq *s, sq_job_fn *fn, sq_job_after_fn *after, void *arg, int nosync, int chunk)
{
    struct sq_job job = {.fn = fn, .after = after, .arg = arg, .nosync = nosync, .chunk = chunk};
    int wake;

    if (sem_init(&job.answered, 0, 0) != 0)
        return ERR_NOMEM; /* cannot happen: sem_init() fails only above SEM_VALUE_MAX */
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        sem_destroy(&job.answered);
        return ERR_SHUTDOWN;
    }
    wake = job_queue(s, &job, 0);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        pthread_cond_signal(&s->queue_cond);
    /* Answered by jobs_complete(), which reads nothing of job after the post. */
    while (sem_wait(&job.answered) != 0)
        ; /* EINTR: a signal handler ran */
    sem_destroy(&job.answered);
    return job.result;
}

int
sq_write_async(struct sq *s, sq_job_fn *fn, sq_job_after_fn *after, void *arg, sq_done_fn *done,
               void *done_arg)
{
    struct sq_job *j;
    int wake;

    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return ERR_NOMEM;
    j->fn = fn;
    j->after = after;
    j->arg = arg;
    j->done_fn = done;
    j->done_arg = done_arg;
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        free(j);
        return ERR_SHUTDOWN;
    }
    wake = job_queue(s, j, 1);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        wakeup_post(writer_wake, s);
    return 0;
}

int
sq_write(struct sq *s, sq_job_fn *fn, void *arg)
{
    return write_job(s, fn, NULL, arg, 0, 0);
}

int
sq_write_after(struct sq *s, sq_job_fn *fn, sq_job_after_fn *after, void *arg)
{
    return write_job(s, fn, after, arg, 0, 0);
}

int
sq_write_nosync(struct sq *s, sq_job_fn *fn, void *arg)
{
    return write_job(s, fn, NULL, arg, 1, 0);
}

int
sq_write_chunk(struct sq *s, sq_job_fn *fn, void *arg)
{
    return write_job(s, fn, NULL, arg, 1, 1);
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
        if (!store_thread_may_wait()) {
            pthread_mutex_unlock(&s->lock);
            return ERR_TIMEOUT;
        }
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

static int
job_ping(struct sq_conn *c, void *arg)
{
    (void)arg;
    return sq_exec(c, "SELECT 1");
}

/*
 * The probe: a durable write as small as a commit gets, rewriting one row
 * with its own value. It needs WAL space (one frame) and a WAL sync like
 * any write, and changes nothing.
 */
static int
job_probe(struct sq_conn *c, void *arg)
{
    (void)arg;
    return exec_cached(c, SQL_PROBE);
}

/*
 * SQLite's store_ops.ping: a read transaction answers, unless the last
 * write failed. Then the file system must have SQ_PROBE_FREE bytes free
 * (the space a failed commit took while failing may hold the probe's one
 * frame but not the next real write), and a probe write runs through the
 * writer like any write and answers: its success (a commit made durable)
 * ends the failing spell.
 */
static int
sq_ping(struct store *st)
{
    struct sq *s = st->impl;
    struct statvfs fs;
    int fault;

    pthread_mutex_lock(&s->lock);
    fault = s->fault;
    pthread_mutex_unlock(&s->lock);
    if (fault == 0)
        return sq_read(s, job_ping, NULL);
    if (!s->memory && statvfs(s->path, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < SQ_PROBE_FREE)
        return fault;
    return sq_write(s, job_probe, NULL);
}

static void
sq_free(struct sq *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nreaders; i++)
        conn_close(&s->readers[i]);
    conn_close(&s->writer);
    sq_cred_close(s);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->queue_cond);
    pthread_cond_destroy(&s->reader_cond);
    pthread_cond_destroy(&s->sync_cond);
    free(s->path);
    free(s);
}

static void
sqlite_configure(void)
{
    /* Memory statistics take a global mutex on every allocation; we never read them. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sq_mem_install();
}

/* Stops the threads (the writer answers what is queued first). */
static void
threads_stop(struct sq *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->queue_cond);
    pthread_mutex_unlock(&s->lock);
    if (s->writer_started)
        pthread_join(s->writer_thread, NULL);
    sq_ckpt_stop(s->ckpt);
    s->ckpt = NULL;
    pthread_mutex_lock(&s->lock);
    s->writer_done = 1;
    pthread_cond_signal(&s->sync_cond);
    pthread_mutex_unlock(&s->lock);
    if (s->syncer_started)
        pthread_join(s->syncer_thread, NULL);
    s->writer_started = s->syncer_started = 0;
}

static int
sq_open(struct store *st, const char *url)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const char *rest = url + strlen("sqlite:");
    struct sq *s = NULL;
    int i, err;

    if (rest[0] == '\0') {
        log_warnx("store: sqlite URL without a path: expected sqlite:PATH");
        return ERR_INVAL;
    }
    pthread_once(&once, sqlite_configure);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    clock_mono_cond_init(&s->queue_cond); /* the writer's bounded waits are monotonic */
    pthread_cond_init(&s->reader_cond, NULL);
    pthread_cond_init(&s->sync_cond, NULL);
    s->path = strdup(rest);
    if (s->path == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    s->memory = strcmp(rest, ":memory:") == 0;
    if (!s->memory) {
        err = files_restrict(s->path);
        if (err != 0)
            goto out;
    }
    err = conn_open(&s->writer, s->path, 1);
    if (err != 0)
        goto out;
    err = migrate(&s->writer, &st->schema_version, &st->migrations_applied);
    if (err != 0)
        goto out;
    err = sq_cache_attach(&s->writer);
    if (err == 0)
        err = sq_cred_open(s);
    if (err != 0)
        goto out;
    if (!s->memory) {
        for (i = 0; i < SQ_READERS; i++) {
            err = conn_open(&s->readers[i], s->path, 0);
            if (err != 0)
                goto out;
            s->nreaders++;
        }
        /*
         * The WAL is open now (the migrations wrote it): the syncer takes
         * over, syncing it through the writer's own file object, which
         * stays open as long as the writer connection does.
         */
        if (sqlite3_file_control(s->writer.db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
                                 &s->wal_file) != SQLITE_OK ||
            s->wal_file == NULL || s->wal_file->pMethods == NULL) {
            log_warnx("store: no WAL file to sync for '%s'", s->path);
            err = ERR_STORE;
            goto out;
        }
        err = sq_synced_init(s);
        if (err == 0)
            err = wal_sync(s);
        if (err == 0)
            err = sq_exec(&s->writer, "PRAGMA synchronous=NORMAL");
        if (err != 0)
            goto out;
        if (pthread_create(&s->syncer_thread, NULL, syncer_main, s) != 0) {
            log_warn("store: cannot start the syncer thread");
            err = ERR_STORE;
            goto out;
        }
        s->syncer_started = 1;
        err = sq_ckpt_start(s->path, s->writer.db, &s->ckpt);
        if (err != 0)
            goto out;
    }
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        log_warn("store: cannot start the writer thread");
        err = ERR_STORE;
        goto out;
    }
    s->writer_started = 1;
    st->impl = s;
    log_debug("store: opened sqlite path='%s'", s->path);
out:
    if (err != 0 && s != NULL) {
        threads_stop(s);
        sq_free(s);
    }
    return err;
}

static void
sq_close(struct store *st)
{
    struct sq *s = st->impl;

    if (s == NULL)
        return;
    threads_stop(s);
    log_debug("store: closed sqlite commits=%llu syncs=%llu writes=%llu",
              (unsigned long long)s->commits, (unsigned long long)s->syncs,
              (unsigned long long)s->jobs);
    sq_free(s);
    st->impl = NULL;
}

static void
sq_writer_stats(struct store *st, struct store_writer_stats *out)
{
    struct sq *s = st->impl;

    pthread_mutex_lock(&s->lock);
    out->commits = s->commits;
    out->syncs = s->syncs;
    out->writes = s->jobs;
    out->waits = s->syncer_started; /* measured by the syncer */
    out->sync = s->h_sync;
    out->wait_commit = s->h_wait_commit;
    out->wait_sync = s->h_wait_sync;
    pthread_mutex_unlock(&s->lock);
    if (s->ckpt != NULL) {
        struct sq_ckpt_stats k;

        sq_ckpt_stats(s->ckpt, &k);
        out->checkpoints = k.passes;
        out->writer_checkpoints = k.catchups;
    }
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .account_insert = sq_account_insert,
    .account_get = sq_account_get,
    .account_list = sq_account_list,
    .is_empty = sq_is_empty,
    .key_insert = sq_key_insert,
    .key_find = sq_key_find,
    .key_delete = sq_key_delete,
    .key_list = sq_key_list,
    .key_touch = sq_key_touch,
    .key_rotate = sq_key_rotate,
    .token_insert = sq_token_insert,
    .token_find = sq_token_find,
    .token_use = sq_token_use,
    .token_revoke = sq_token_revoke,
    .endpoint_insert = sq_endpoint_insert,
    .endpoint_get = sq_endpoint_get,
    .endpoint_list = sq_endpoint_list,
    .endpoint_subscribed = sq_endpoint_subscribed,
    .endpoint_update = sq_endpoint_update,
    .endpoint_rotate = sq_endpoint_rotate,
    .endpoint_delete = sq_endpoint_delete,
    .endpoint_disable = sq_endpoint_disable,
    .endpoint_enable = sq_endpoint_enable,
    .endpoint_held_chunk = sq_endpoint_held_chunk,
    .endpoint_held_next = sq_endpoint_held_next,
    .endpoint_cut_chunk = sq_endpoint_cut_chunk,
    .endpoint_cut_next = sq_endpoint_cut_next,
    .event_publish = sq_event_publish,
    .event_publish_async = sq_event_publish_async,
    .event_get = sq_event_get,
    .event_list = sq_event_list,
    .delivery_get = sq_delivery_get,
    .delivery_list = sq_delivery_list,
    .attempt_list = sq_attempt_list,
    .delivery_retry = sq_delivery_retry,
    .endpoint_replay = sq_endpoint_replay,
    .replay_chunk = sq_replay_chunk,
    .replay_next = sq_replay_next,
    .endpoint_replay_preview = sq_endpoint_replay_preview,
    .claim = sq_claim,
    .results_apply = sq_results_apply,
    .release = sq_release,
    .next_due = sq_next_due,
    .writer_stats = sq_writer_stats,
    .count_by_status = sq_count_by_status,
    .stats = sq_stats,
    .stats_series = sq_stats_series,
    .secret_scan = sq_secret_scan,
    .secret_swap = sq_secret_swap,
    .keycheck_get = sq_keycheck_get,
    .keycheck_set = sq_keycheck_set,
    .audit_insert = sq_audit_insert,
    .audit_list = sq_audit_list,
    .purge = sq_purge,
};
