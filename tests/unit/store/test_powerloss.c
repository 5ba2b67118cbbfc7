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
 * A claim is answered at its commit, before any sync: it must never take a
 * delivery whose publish is not synced yet. The shim can hold the WAL's
 * next sync, so a test claims while the sync covering a publish is under
 * way, and cuts the power then.
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
    int hold;                 /* the next sync of a WAL waits while this is set */
    int held;                 /* syncs of a WAL waiting */
    pthread_cond_t hold_cond;
} pl = { .lock = PTHREAD_MUTEX_INITIALIZER, .hold_cond = PTHREAD_COND_INITIALIZER };

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
    if (pl.hold && p->name != NULL && strlen(p->name->name) > 4 &&
        strcmp(p->name->name + strlen(p->name->name) - 4, "-wal") == 0) {
        pl.held++;
        pthread_cond_broadcast(&pl.hold_cond);
        while (pl.hold)
            pthread_cond_wait(&pl.hold_cond, &pl.lock);
        pl.held--;
    }
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

/* A user.message event of acct_a, numbered n. Returns 0 or -1. */
static int
event_make(struct event *ev, int n)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->account_id, sizeof(ev->account_id), "acct_a");
    snprintf(ev->type, sizeof(ev->type), "user.message");
    if (id_new("evt_", ev->id) != 0)
        return -1;
    ev->created_at = clock_now_ms();
    clock_format_rfc3339_s(ev->created_at, ev->timestamp);
    ev->body_len = (size_t)asprintf(&ev->body, "{\"id\":\"%s\",\"event\":\"user.message\","
                                    "\"timestamp\":\"%s\",\"data\":{\"n\":%d}}",
                                    ev->id, ev->timestamp, n);
    return 0;
}

static void *
publisher_main(void *arg)
{
    struct publisher *pub = arg;
    struct event ev;
    int i;

    for (i = 0; i < PL_PUBLISHES; i++) {
        if (event_make(&ev, i) != 0)
            break;
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

/* One life's files: a new directory holding the store. */
struct life {
    char dir[64];
    char path[128];
    char url[160];
};

/*
 * Opens a store on a new file of l with account acct_a and one endpoint
 * (*got, as the store returns it).
 */
static struct store *
life_open(struct life *l, struct endpoint *got)
{
    struct store *st = NULL;
    struct endpoint ep = { 0 };
    struct account a = { 0 };

    snprintf(l->dir, sizeof(l->dir), "/tmp/fluxhook-powerloss-XXXXXX");
    assert_non_null(mkdtemp(l->dir));
    snprintf(l->path, sizeof(l->path), "%s/store.db", l->dir);
    snprintf(l->url, sizeof(l->url), "sqlite:%s", l->path);

    pl_reset();
    assert_int_equal(store_open(l->url, &st), 0);
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
    assert_int_equal(store_endpoint_get(st, "acct_a", ep.id, got), 0);
    return st;
}

/*
 * After the power cut: closes st, brings the power back (the -shm is rebuilt
 * from the WAL) and opens l's store again, checked whole.
 */
static struct store *
life_reopen(struct life *l, struct store *st)
{
    char shm[160];

    store_close(st);
    pl_reset();
    snprintf(shm, sizeof(shm), "%s-shm", l->path);
    unlink(shm);
    integrity_check(l->path);
    st = NULL;
    assert_int_equal(store_open(l->url, &st), 0);
    return st;
}

/* Closes st for good and removes l's files. */
static void
life_end(struct life *l, struct store *st)
{
    char cmd[96];

    store_close(st);
    integrity_check(l->path);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", l->dir);
    assert_int_equal(system(cmd), 0);
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
    struct store *st;
    struct endpoint got = { 0 };
    struct store_writer_stats ws;
    struct event ev;
    struct life l;
    int i, j, lost = 0;

    st = life_open(&l, &got);
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
    endpoint_cleanup(&got);

    st = life_reopen(&l, st);
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
    life_end(&l, st);
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

/* One publish on a thread of its own, which a held sync keeps waiting. */
struct held_publish {
    pthread_t thread;
    struct store *st;
    const struct endpoint *ep;
    struct event ev;
    int err;
};

static void *
held_publish_main(void *arg)
{
    struct held_publish *hp = arg;

    hp->err = event_make(&hp->ev, 0) == 0 ? store_event_publish(hp->st, &hp->ev, hp->ep, 1)
                                          : ERR_NOMEM;
    return NULL;
}

/*
 * Publishes one event to ep on a thread and returns once the WAL sync that
 * covers the publish's commit is under way and held (the publish waits).
 */
static void
held_publish_start(struct held_publish *hp, struct store *st, const struct endpoint *ep)
{
    memset(hp, 0, sizeof(*hp));
    hp->st = st;
    hp->ep = ep;
    pthread_mutex_lock(&pl.lock);
    pl.hold = 1;
    pthread_mutex_unlock(&pl.lock);
    assert_int_equal(pthread_create(&hp->thread, NULL, held_publish_main, hp), 0);
    pthread_mutex_lock(&pl.lock);
    while (!pl.held)
        pthread_cond_wait(&pl.hold_cond, &pl.lock);
    pthread_mutex_unlock(&pl.lock);
}

/* Lets the held sync go on (after a power cut, to fail) and waits for the publish. */
static int
held_publish_end(struct held_publish *hp)
{
    pthread_mutex_lock(&pl.lock);
    pl.hold = 0;
    pthread_cond_broadcast(&pl.hold_cond);
    pthread_mutex_unlock(&pl.lock);
    pthread_join(hp->thread, NULL);
    return hp->err;
}

/* The deliveries a claim takes `later` ms from now (an endpoint's cap of 0: no cap). */
static size_t
claim_now(struct store *st, int64_t later, char ids[][ID_MAX], size_t max)
{
    struct claim *cs = NULL;
    size_t n = 0, i;

    assert_int_equal(
        store_claim(st, clock_now_ms() + later, 60000, (int)max, 0, NULL, 0, &cs, &n), 0);
    for (i = 0; i < n; i++)
        snprintf(ids[i], ID_MAX, "%s", cs[i].dlv.event_id);
    claim_list_free(cs, n);
    return n;
}

/*
 * A claim, answered at its commit, never takes a delivery whose publish is
 * committed but not yet synced: once while the sync is held, it finds
 * nothing, and finds the delivery once the sync is done; again while the
 * sync is held, and then the power goes during that sync: the event is gone
 * after the restart, which a receiver would otherwise have had.
 */
static void
test_claim_waits_for_the_sync_of_its_publish(void **state)
{
    struct held_publish hp;
    struct endpoint got = { 0 };
    struct store *st;
    struct event ev;
    struct life l;
    char ids[4][ID_MAX], kept[ID_MAX], lost[ID_MAX];

    (void)state;
    st = life_open(&l, &got);

    held_publish_start(&hp, st, &got);
    assert_int_equal(claim_now(st, 0, ids, 4), 0);
    assert_int_equal(held_publish_end(&hp), 0);
    assert_int_equal(claim_now(st, 0, ids, 4), 1);
    assert_string_equal(ids[0], hp.ev.id);
    snprintf(kept, sizeof(kept), "%s", hp.ev.id);
    event_cleanup(&hp.ev);

    held_publish_start(&hp, st, &got);
    assert_int_equal(claim_now(st, 0, ids, 4), 0);
    pthread_mutex_lock(&pl.lock);
    power_cut();
    pthread_mutex_unlock(&pl.lock);
    assert_int_not_equal(held_publish_end(&hp), 0);
    snprintf(lost, sizeof(lost), "%s", hp.ev.id);
    event_cleanup(&hp.ev);
    endpoint_cleanup(&got);

    st = life_reopen(&l, st);
    assert_int_equal(store_event_get(st, "acct_a", kept, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_event_get(st, "acct_a", lost, &ev), ERR_NOTFOUND);
    /* What the file held at the open is synced: claimed again once its lease ran out. */
    assert_int_equal(claim_now(st, 120000, ids, 4), 1);
    assert_string_equal(ids[0], kept);
    life_end(&l, st);
}

/* A claim on a thread of its own, which may wait for a held sync. */
struct held_claim {
    pthread_t thread;
    struct store *st;
    char ids[4][ID_MAX]; /* the events of what it took */
    size_t n;
    int err;
    int done;            /* under pl.lock */
};

static void *
held_claim_main(void *arg)
{
    struct held_claim *hc = arg;
    struct claim *cs = NULL;
    size_t i;

    hc->err = store_claim(hc->st, clock_now_ms(), 60000, 4, 0, NULL, 0, &cs, &hc->n);
    for (i = 0; hc->err == 0 && i < hc->n; i++)
        snprintf(hc->ids[i], ID_MAX, "%s", cs[i].dlv.event_id);
    if (hc->err == 0)
        claim_list_free(cs, hc->n);
    pthread_mutex_lock(&pl.lock);
    hc->done = 1;
    pthread_cond_broadcast(&pl.hold_cond);
    pthread_mutex_unlock(&pl.lock);
    return NULL;
}

/*
 * Claims on st from a thread while a sync is held, and returns once the
 * claim has answered or is waiting for a sync (held) of its own.
 */
static void
held_claim_start(struct held_claim *hc, struct store *st)
{
    memset(hc, 0, sizeof(*hc));
    hc->st = st;
    assert_int_equal(pthread_create(&hc->thread, NULL, held_claim_main, hc), 0);
    pthread_mutex_lock(&pl.lock);
    while (!hc->done && pl.held < 2)
        pthread_cond_wait(&pl.hold_cond, &pl.lock);
    pthread_mutex_unlock(&pl.lock);
}

/*
 * The same across two handles on one file (two processes): the claiming
 * one knows nothing of the publishing one's syncs. A claim that takes the
 * delivery of a publish whose sync is held waits for a sync of its own
 * (which covers the whole WAL) before it answers; when the power goes during
 * the held syncs, the claim fails and the event is gone after the restart.
 */
static void
test_claim_of_another_handle_waits_for_a_sync(void **state)
{
    struct held_publish hp;
    struct held_claim hc;
    struct endpoint got = { 0 };
    struct store *st, *other = NULL;
    struct event ev;
    struct life l;
    char kept[ID_MAX], lost[ID_MAX];

    (void)state;
    st = life_open(&l, &got);
    assert_int_equal(store_open(l.url, &other), 0);

    held_publish_start(&hp, st, &got);
    held_claim_start(&hc, other);
    /* Answered before the sync: only with nothing taken. */
    if (hc.done)
        assert_int_equal(hc.n, 0);
    assert_int_equal(held_publish_end(&hp), 0);
    pthread_join(hc.thread, NULL);
    assert_int_equal(hc.err, 0);
    assert_int_equal(hc.n, 1);
    assert_string_equal(hc.ids[0], hp.ev.id);
    snprintf(kept, sizeof(kept), "%s", hp.ev.id);
    event_cleanup(&hp.ev);

    held_publish_start(&hp, st, &got);
    held_claim_start(&hc, other);
    if (hc.done)
        assert_int_equal(hc.n, 0);
    pthread_mutex_lock(&pl.lock);
    power_cut();
    pthread_mutex_unlock(&pl.lock);
    assert_int_not_equal(held_publish_end(&hp), 0);
    pthread_join(hc.thread, NULL);
    if (hc.err == 0)
        assert_int_equal(hc.n, 0);
    snprintf(lost, sizeof(lost), "%s", hp.ev.id);
    event_cleanup(&hp.ev);
    endpoint_cleanup(&got);

    store_close(other);
    st = life_reopen(&l, st);
    assert_int_equal(store_event_get(st, "acct_a", kept, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_event_get(st, "acct_a", lost, &ev), ERR_NOTFOUND);
    life_end(&l, st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_acknowledged_event_lost),
        cmocka_unit_test(test_checkpoints_lose_nothing),
        cmocka_unit_test(test_without_wal_sync_events_are_lost),
        cmocka_unit_test(test_claim_waits_for_the_sync_of_its_publish),
        cmocka_unit_test(test_claim_of_another_handle_waits_for_a_sync),
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
