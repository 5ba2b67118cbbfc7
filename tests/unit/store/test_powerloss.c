/*
 * Power loss under the SQLite store. A VFS shim over the unix VFS, made the
 * default VFS of this program only, keeps for each database and WAL file the
 * pre-image of every write and truncation since that file's last sync. At a
 * sync point chosen at random (seeded) it loses power: it puts every such
 * file back as it was at its last sync, and from then on fails every read,
 * write, sync and delete, as a machine that is off would. Publishing threads
 * stop at their first failure; the store is closed, opened again with the
 * shim passing everything through, and must pass PRAGMA integrity_check and
 * hold every event store_event_publish() acknowledged (returned 0) before
 * the cut.
 *
 * The same run without the store's WAL sync (sq_wal_sync_skip: plain
 * synchronous=NORMAL) must lose acknowledged events, which shows the test
 * sees what it is meant to. A third run checkpoints the WAL every few pages
 * (sq_wal_ckpt_bytes), so the cuts also fall in checkpoints, on the
 * checkpointer's thread and the writer's, and in the WAL's starts over.
 *
 * The model: writes not synced are all lost, synced ones all kept; the
 * -shm file is thrown away (SQLite rebuilds it from the WAL); a file's
 * creation or deletion counts at once (directories are not modelled).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/sqlite/sq_int.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"
#include "util/log.h"

#define PL_ITERATIONS 100     /* power cuts with the store as it is */
#define PL_ITERATIONS_NOSYNC 10 /* power cuts without the store's WAL sync */
#define PL_THREADS 4          /* publishing at once */
#define PL_PUBLISHES 40       /* per thread and iteration, at most */
#define PL_MAX_CUT 30         /* the cut comes at sync 1..PL_MAX_CUT (or after the last) */
#define PL_SEED 20261130u
#define PL_CKPT_BYTES (16 * 1024) /* the third run's checkpoints: every two 8 KiB pages */

/* --- the shim --- */

/* One write or truncation not synced yet: what to put back. */
struct pl_undo {
    sqlite3_int64 off;         /* where the pre-image goes */
    sqlite3_int64 size_before; /* the file's size before */
    unsigned char *pre;        /* the bytes it overwrote (len of them) */
    size_t len;
    struct pl_undo *next;      /* older */
};

/* A database or WAL file, by name: its handles may be several. */
struct pl_name {
    char *name;
    struct pl_undo *undo;     /* newest first */
    struct pl_file *files;    /* open handles */
    struct pl_name *next;
};

struct pl_file {
    sqlite3_file base;
    struct pl_name *name;     /* NULL: not tracked (a temporary file, the -shm) */
    struct pl_file *next;     /* in name->files */
    sqlite3_file *real;       /* the unix VFS's file, right after this struct */
};

static struct {
    pthread_mutex_t lock;
    sqlite3_vfs *real;
    struct pl_name *names;
    int armed;                /* counting syncs towards cut_at */
    int syncs;                /* syncs seen since armed */
    int cut_at;
    uint64_t ckpts;           /* checkpoints the stores made */
    int dead;                 /* power lost: I/O fails */
    uint64_t undone;          /* writes and truncations thrown away, all iterations */
} pl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct pl_name *
name_get(const char *name)
{
    struct pl_name *n;

    for (n = pl.names; n != NULL; n = n->next) {
        if (strcmp(n->name, name) == 0)
            return n;
    }
    n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->name = strdup(name);
    assert_non_null(n->name);
    n->next = pl.names;
    pl.names = n;
    return n;
}

static void
undo_free(struct pl_name *n)
{
    struct pl_undo *u, *next;

    for (u = n->undo; u != NULL; u = next) {
        next = u->next;
        free(u->pre);
        free(u);
    }
    n->undo = NULL;
}

/* Under pl.lock: records what a write or truncation of [off, off + len) will change. */
static int
undo_record(struct pl_file *p, sqlite3_int64 off, sqlite3_int64 len)
{
    struct pl_undo *u;
    sqlite3_int64 size;
    int rc;

    rc = p->real->pMethods->xFileSize(p->real, &size);
    if (rc != SQLITE_OK)
        return rc;
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return SQLITE_NOMEM;
    u->off = off;
    u->size_before = size;
    if (off < size) {
        u->len = (size_t)(off + len < size ? len : size - off);
        u->pre = malloc(u->len);
        if (u->pre == NULL) {
            free(u);
            return SQLITE_NOMEM;
        }
        rc = p->real->pMethods->xRead(p->real, u->pre, (int)u->len, off);
        if (rc != SQLITE_OK) {
            free(u->pre);
            free(u);
            return rc;
        }
    }
    u->next = p->name->undo;
    p->name->undo = u;
    return SQLITE_OK;
}

/* Under pl.lock: the power goes. Every tracked file goes back to its last sync. */
static void
power_cut(void)
{
    struct pl_name *n;
    struct pl_undo *u;
    sqlite3_file *f;

    for (n = pl.names; n != NULL; n = n->next) {
        if (n->undo == NULL)
            continue;
        /* Any handle writes the same file (they are all open while the store is). */
        assert_non_null(n->files);
        f = n->files->real;
        for (u = n->undo; u != NULL; u = u->next) {
            if (u->len > 0)
                assert_int_equal(f->pMethods->xWrite(f, u->pre, (int)u->len, u->off), SQLITE_OK);
            assert_int_equal(f->pMethods->xTruncate(f, u->size_before), SQLITE_OK);
            pl.undone++;
        }
        undo_free(n);
    }
    pl.dead = 1;
}

static int
pl_close(sqlite3_file *f)
{
    struct pl_file *p = (struct pl_file *)f, **link;
    int rc;

    pthread_mutex_lock(&pl.lock);
    if (p->name != NULL) {
        for (link = &p->name->files; *link != p; link = &(*link)->next)
            ;
        *link = p->next;
    }
    rc = p->real->pMethods->xClose(p->real);
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

static int
pl_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct pl_file *p = (struct pl_file *)f;
    int rc;

    pthread_mutex_lock(&pl.lock);
    rc = pl.dead ? SQLITE_IOERR_READ : p->real->pMethods->xRead(p->real, buf, amt, off);
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

static int
pl_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    struct pl_file *p = (struct pl_file *)f;
    int rc = SQLITE_IOERR_WRITE;

    pthread_mutex_lock(&pl.lock);
    if (pl.dead)
        goto out;
    rc = p->name != NULL ? undo_record(p, off, amt) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
out:
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

static int
pl_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct pl_file *p = (struct pl_file *)f;
    sqlite3_int64 cur = 0;
    int rc = SQLITE_IOERR_TRUNCATE;

    pthread_mutex_lock(&pl.lock);
    if (pl.dead)
        goto out;
    rc = p->real->pMethods->xFileSize(p->real, &cur);
    if (rc == SQLITE_OK && p->name != NULL)
        rc = undo_record(p, size < cur ? size : cur, size < cur ? cur - size : 0);
    if (rc == SQLITE_OK)
        rc = p->real->pMethods->xTruncate(p->real, size);
out:
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

/*
 * A sync makes the file's writes so far survive. Nothing here needs the real
 * disk to keep anything, so the real file is not synced (which keeps 100
 * iterations fast).
 */
static int
pl_sync(sqlite3_file *f, int flags)
{
    struct pl_file *p = (struct pl_file *)f;
    int rc = SQLITE_IOERR_FSYNC;

    (void)flags;
    pthread_mutex_lock(&pl.lock);
    if (pl.dead)
        goto out;
    if (pl.armed && ++pl.syncs == pl.cut_at) {
        power_cut();
        goto out;
    }
    if (p->name != NULL)
        undo_free(p->name);
    rc = SQLITE_OK;
out:
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

static int
pl_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xFileSize(p->real, size);
}

static int
pl_lock(sqlite3_file *f, int level)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xLock(p->real, level);
}

static int
pl_unlock(sqlite3_file *f, int level)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xUnlock(p->real, level);
}

static int
pl_check_reserved(sqlite3_file *f, int *out)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int
pl_file_control(sqlite3_file *f, int op, void *arg)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int
pl_sector_size(sqlite3_file *f)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xSectorSize(p->real);
}

static int
pl_device(sqlite3_file *f)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int
pl_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xShmMap(p->real, region, size, extend, out);
}

static int
pl_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void
pl_shm_barrier(sqlite3_file *f)
{
    struct pl_file *p = (struct pl_file *)f;

    p->real->pMethods->xShmBarrier(p->real);
}

static int
pl_shm_unmap(sqlite3_file *f, int del)
{
    struct pl_file *p = (struct pl_file *)f;

    return p->real->pMethods->xShmUnmap(p->real, del);
}

/* Version 2: shared memory for WAL, and no xFetch, so SQLite never writes through mmap. */
static const sqlite3_io_methods pl_io = {
    .iVersion = 2,
    .xClose = pl_close,
    .xRead = pl_read,
    .xWrite = pl_write,
    .xTruncate = pl_truncate,
    .xSync = pl_sync,
    .xFileSize = pl_file_size,
    .xLock = pl_lock,
    .xUnlock = pl_unlock,
    .xCheckReservedLock = pl_check_reserved,
    .xFileControl = pl_file_control,
    .xSectorSize = pl_sector_size,
    .xDeviceCharacteristics = pl_device,
    .xShmMap = pl_shm_map,
    .xShmLock = pl_shm_lock,
    .xShmBarrier = pl_shm_barrier,
    .xShmUnmap = pl_shm_unmap,
};

static int
pl_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    struct pl_file *p = (struct pl_file *)f;
    int rc;

    (void)vfs;
    memset(p, 0, sizeof(*p));
    p->real = (sqlite3_file *)(p + 1);
    rc = pl.real->xOpen(pl.real, name, p->real, flags, out_flags);
    if (rc != SQLITE_OK)
        return rc;
    p->base.pMethods = &pl_io;
    if (name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0) {
        pthread_mutex_lock(&pl.lock);
        p->name = name_get(name);
        p->next = p->name->files;
        p->name->files = p;
        pthread_mutex_unlock(&pl.lock);
    }
    return SQLITE_OK;
}

static int
pl_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    struct pl_name *n;
    int rc = SQLITE_IOERR_DELETE;

    (void)vfs;
    pthread_mutex_lock(&pl.lock);
    if (pl.dead)
        goto out;
    rc = pl.real->xDelete(pl.real, name, sync_dir);
    for (n = pl.names; n != NULL && rc == SQLITE_OK; n = n->next) {
        if (strcmp(n->name, name) == 0)
            undo_free(n);
    }
out:
    pthread_mutex_unlock(&pl.lock);
    return rc;
}

static int
pl_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return pl.real->xAccess(pl.real, name, flags, out);
}

static int
pl_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return pl.real->xFullPathname(pl.real, name, n, out);
}

static void *
pl_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return pl.real->xDlOpen(pl.real, name);
}

static void
pl_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    pl.real->xDlError(pl.real, n, msg);
}

static void (*pl_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return pl.real->xDlSym(pl.real, h, sym);
}

static void
pl_dl_close(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    pl.real->xDlClose(pl.real, h);
}

static int
pl_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return pl.real->xRandomness(pl.real, n, out);
}

static int
pl_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return pl.real->xSleep(pl.real, us);
}

static int
pl_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return pl.real->xCurrentTime(pl.real, out);
}

static int
pl_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return pl.real->xGetLastError(pl.real, n, out);
}

static int
pl_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return pl.real->xCurrentTimeInt64(pl.real, out);
}

static sqlite3_vfs pl_vfs = {
    .iVersion = 2,
    .mxPathname = 512,
    .zName = "powerloss",
    .xOpen = pl_open,
    .xDelete = pl_delete,
    .xAccess = pl_access,
    .xFullPathname = pl_full_pathname,
    .xDlOpen = pl_dl_open,
    .xDlError = pl_dl_error,
    .xDlSym = pl_dl_sym,
    .xDlClose = pl_dl_close,
    .xRandomness = pl_randomness,
    .xSleep = pl_sleep,
    .xCurrentTime = pl_current_time,
    .xGetLastError = pl_last_error,
    .xCurrentTimeInt64 = pl_current_time64,
};

/* Forgets every file (between iterations: none is open then). */
static void
pl_reset(void)
{
    struct pl_name *n, *next;

    pthread_mutex_lock(&pl.lock);
    for (n = pl.names; n != NULL; n = next) {
        next = n->next;
        assert_null(n->files);
        undo_free(n);
        free(n->name);
        free(n);
    }
    pl.names = NULL;
    pl.armed = pl.dead = pl.syncs = 0;
    pthread_mutex_unlock(&pl.lock);
}

/* --- the store under it --- */

struct publisher {
    pthread_t thread;
    struct store *st;
    const struct endpoint *ep;
    char acked[PL_PUBLISHES][ID_MAX]; /* the events store_event_publish() answered 0 */
    int nacked;
};

static void *
publisher_main(void *arg)
{
    struct publisher *pub = arg;
    struct event ev;
    int i;

    for (i = 0; i < PL_PUBLISHES; i++) {
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.account_id, sizeof(ev.account_id), "acct_a");
        snprintf(ev.type, sizeof(ev.type), "user.message");
        if (id_new("evt_", ev.id) != 0)
            break;
        ev.created_at = clock_now_ms();
        clock_format_rfc3339_s(ev.created_at, ev.timestamp);
        ev.body_len = (size_t)asprintf(&ev.body, "{\"id\":\"%s\",\"event\":\"user.message\","
                                       "\"timestamp\":\"%s\",\"data\":{\"n\":%d}}",
                                       ev.id, ev.timestamp, i);
        if (store_event_publish(pub->st, &ev, pub->ep, 1) != 0) {
            /* The power is off: nothing more will be acknowledged. */
            event_cleanup(&ev);
            break;
        }
        snprintf(pub->acked[pub->nacked++], ID_MAX, "%s", ev.id);
        event_cleanup(&ev);
    }
    return NULL;
}

/* xorshift32: the cut points come from PL_SEED, so a failure replays. */
static uint32_t
rnd_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
integrity_check(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/*
 * One life of a store: opened on a new file, publishing from PL_THREADS
 * threads until the power goes at sync cut_at (or after the last publish),
 * then opened again. Returns how many acknowledged events are missing and
 * adds the acknowledged ones to *acked.
 */
static int
one_life(int cut_at, int *acked)
{
    struct publisher pubs[PL_THREADS];
    struct store *st = NULL;
    struct endpoint ep = { 0 }, got = { 0 };
    struct account a = { 0 };
    struct store_writer_stats ws;
    struct event ev;
    char dir[64], path[128], url[160];
    int i, j, lost = 0;

    snprintf(dir, sizeof(dir), "/tmp/fluxhook-powerloss-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/store.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", path);

    pl_reset();
    assert_int_equal(store_open(url, &st), 0);
    snprintf(a.id, sizeof(a.id), "acct_a");
    a.name = "A";
    assert_int_equal(store_account_insert(st, &a), 0);
    assert_int_equal(id_new("ep_", ep.id), 0);
    snprintf(ep.account_id, sizeof(ep.account_id), "acct_a");
    ep.url = "https://example.test/hook";
    ep.description = "";
    ep.event_types = (char *)"";
    ep.secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    assert_int_equal(store_endpoint_insert(st, &ep), 0);
    assert_int_equal(store_endpoint_get(st, "acct_a", ep.id, &got), 0);

    pthread_mutex_lock(&pl.lock);
    pl.syncs = 0;
    pl.cut_at = cut_at;
    pl.armed = 1;
    pthread_mutex_unlock(&pl.lock);
    memset(pubs, 0, sizeof(pubs));
    for (i = 0; i < PL_THREADS; i++) {
        pubs[i].st = st;
        pubs[i].ep = &got;
        assert_int_equal(pthread_create(&pubs[i].thread, NULL, publisher_main, &pubs[i]), 0);
    }
    for (i = 0; i < PL_THREADS; i++)
        pthread_join(pubs[i].thread, NULL);
    store_writer_stats(st, &ws);
    pthread_mutex_lock(&pl.lock);
    pl.ckpts += ws.checkpoints + ws.writer_checkpoints;
    if (!pl.dead)
        power_cut(); /* the cut point never came: the power goes now */
    pthread_mutex_unlock(&pl.lock);
    store_close(st);
    endpoint_cleanup(&got);

    /* The power is back; the -shm is rebuilt from the WAL. */
    pl_reset();
    snprintf(url, sizeof(url), "%s-shm", path);
    unlink(url);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    integrity_check(path);
    assert_int_equal(store_open(url, &st), 0);
    for (i = 0; i < PL_THREADS; i++) {
        for (j = 0; j < pubs[i].nacked; j++) {
            if (store_event_get(st, "acct_a", pubs[i].acked[j], &ev) != 0) {
                lost++;
                continue;
            }
            event_cleanup(&ev);
        }
        *acked += pubs[i].nacked;
    }
    store_close(st);
    integrity_check(path);

    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    assert_int_equal(system(url), 0);
    return lost;
}

/*
 * `iterations` lives with cut points drawn from PL_SEED, with the store's WAL
 * sync skipped or not. Returns how many acknowledged events were lost and
 * sets *acked to how many there were.
 */
static int
cuts_run(int iterations, int skip_wal_sync, int *acked)
{
    uint32_t seed = PL_SEED;
    int i, lost = 0;

    *acked = 0;
    sq_wal_sync_skip = skip_wal_sync;
    for (i = 0; i < iterations; i++)
        lost += one_life(1 + (int)(rnd_next(&seed) % PL_MAX_CUT), acked);
    sq_wal_sync_skip = 0;
    print_message("powerloss%s: %d cuts, %d events acknowledged, %d lost, %llu unsynced "
                  "writes thrown away so far\n",
                  skip_wal_sync ? " without the WAL sync" : "", iterations, *acked, lost,
                  (unsigned long long)pl.undone);
    return lost;
}

static void
test_no_acknowledged_event_lost(void **state)
{
    int acked;

    (void)state;
    assert_int_equal(cuts_run(PL_ITERATIONS, 0, &acked), 0);
    assert_true(acked > 0);
}

/*
 * The WAL checkpointed every two pages: the cuts fall in checkpoints too,
 * and no acknowledged event is lost.
 */
static void
test_checkpoints_lose_nothing(void **state)
{
    int acked;

    (void)state;
    pl.ckpts = 0;
    sq_wal_ckpt_bytes = PL_CKPT_BYTES;
    assert_int_equal(cuts_run(PL_ITERATIONS / 2, 0, &acked), 0);
    sq_wal_ckpt_bytes = SQ_WAL_CKPT_BYTES;
    assert_true(acked > 0);
    print_message("powerloss with checkpoints every %d bytes: %llu checkpoints\n", PL_CKPT_BYTES,
                  (unsigned long long)pl.ckpts);
    assert_true(pl.ckpts > 0);
}

/* Without the store's WAL sync, acknowledged events die with the power: the test sees it. */
static void
test_without_wal_sync_events_are_lost(void **state)
{
    int acked;

    (void)state;
    assert_true(cuts_run(PL_ITERATIONS_NOSYNC, 1, &acked) > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_acknowledged_event_lost),
        cmocka_unit_test(test_checkpoints_lose_nothing),
        cmocka_unit_test(test_without_wal_sync_events_are_lost),
    };

    /* The failures after each cut are expected: only errors are worth printing. */
    log_level_set("error");
    pl.real = sqlite3_vfs_find(NULL);
    assert_non_null(pl.real);
    pl_vfs.szOsFile = (int)sizeof(struct pl_file) + pl.real->szOsFile;
    if (sqlite3_vfs_register(&pl_vfs, 1) != SQLITE_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
