/*
 * SQLite backend: a commit's WAL frames written in one call.
 *
 * SQLite writes each frame of a commit to the WAL with two calls, its
 * 24-byte header and then its page: about 80 pwrite()s for a commit of 40
 * pages, each taking the kernel's buffered-write path for the page cache
 * folios it touches. The writer's connection opens its files through a VFS
 * of our own over the default one, whose WAL files gather the frames SQLite
 * writes in order (header, page, header, page ...) in memory and write
 * them with one call when the commit frame's header comes: that header and
 * everything after it (the commit frame's page, the WAL's own header, a
 * frame written anywhere else) are written through at once, after what was
 * gathered. So when SQLite writes a commit frame, every frame before it is
 * in the file, and the commit frame itself is written by SQLite's own calls,
 * before the commit is published to readers in the WAL index: no reader and
 * no other process ever sees a commit whose frames are not in the file, and
 * a failing write fails the commit that made it, as before. Frames gathered
 * without a commit (SQLite spilling its cache in a large transaction) are
 * written when a commit, a read, a sync, a truncation, a size or a close of
 * the file comes, or when the buffer is full. Other files open straight
 * through the default VFS's own methods.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/log.h"

#define WB_FRAME_HDR 24          /* a WAL frame's header */
/* The most gathered: the unix VFS writes at most 128 KiB - 1 in one call. */
#define WB_CAP (124 * 1024)

/* The VFS over one default VFS (tests put their own under the store). */
struct wb_vfs {
    sqlite3_vfs base;
    sqlite3_vfs *real;
    char name[64];
    struct wb_vfs *next;
};

/* A WAL file: the default VFS's file object follows it (real). */
struct wb_file {
    sqlite3_file base;
    sqlite3_file *real;
    pthread_mutex_t lock;      /* the syncer syncs while the writer writes */
    unsigned char *buf;        /* gathered frames, to be written at off */
    size_t len;
    sqlite3_int64 off;
    int page_next;             /* the last write gathered was a frame's header */
    int page;                  /* the size of the last page gathered (0: none yet) */
    struct sq_walbuf_stats stats;
};

static pthread_mutex_t wb_vfs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wb_vfs *wb_vfs_list; /* kept for the life of the process, like SQLite's */
static int wb_vfs_made;
static const sqlite3_io_methods wb_methods;

/*
 * Under f->lock: writes what was gathered. Returns an SQLite result code.
 * What could not be written stays gathered: SQLite was told its writes
 * succeeded, so every later read, sync or commit frame tries it again and
 * fails while it cannot be written (a commit frame is never written with
 * frames missing before it).
 */
static int
wb_flush(struct wb_file *f)
{
    int rc;

    if (f->len == 0)
        return SQLITE_OK;
    rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->stats.flushes++;
    if (rc != SQLITE_OK)
        return rc;
    f->len = 0;
    f->page_next = 0;
    return rc;
}

/* Gathers a frame's header or the page that follows it. */
static void
wb_gather(struct wb_file *f, const void *p, int amt, sqlite3_int64 off)
{
    if (f->len == 0)
        f->off = off;
    memcpy(f->buf + f->len, p, (size_t)amt);
    f->len += (size_t)amt;
    f->stats.gathered++;
}

/* 1 when a header written at off with this content starts a frame to gather. */
static int
wb_header_gathers(const struct wb_file *f, const unsigned char *h, sqlite3_int64 off)
{
    /* Bytes 4-7: the database's size after a commit frame, 0 in any other. */
    if (h[4] != 0 || h[5] != 0 || h[6] != 0 || h[7] != 0)
        return 0;
    return f->len == 0 || (!f->page_next && off == f->off + (sqlite3_int64)f->len);
}

static int
wb_write(sqlite3_file *file, const void *p, int amt, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = SQLITE_OK;

    pthread_mutex_lock(&f->lock);
    if (f->buf == NULL)
        f->buf = malloc(WB_CAP);
    if (f->buf != NULL && amt == WB_FRAME_HDR && wb_header_gathers(f, p, off)) {
        /* A frame is gathered whole: write what is there first if it would not fit. */
        if (f->len + WB_FRAME_HDR + (size_t)(f->page > 0 ? f->page : 65536) > WB_CAP) {
            rc = wb_flush(f);
            if (rc != SQLITE_OK)
                goto out;
        }
        wb_gather(f, p, amt, off);
        f->page_next = 1;
        goto out;
    }
    if (f->page_next && off == f->off + (sqlite3_int64)f->len &&
        f->len + (size_t)amt <= WB_CAP) {
        wb_gather(f, p, amt, off);
        f->page_next = 0;
        f->page = amt;
        goto out;
    }
    rc = wb_flush(f);
    f->page_next = 0;
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xWrite(f->real, p, amt, off);
    f->stats.through++;
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int
wb_close(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc, rc2;

    pthread_mutex_lock(&f->lock);
    rc = wb_flush(f); /* what still cannot be written is dropped with the file */
    pthread_mutex_unlock(&f->lock);
    rc2 = f->real->pMethods->xClose(f->real);
    pthread_mutex_destroy(&f->lock);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

/* Under nothing: writes what was gathered before an operation that must see it. */
static int
wb_settle(struct wb_file *f)
{
    int rc;

    pthread_mutex_lock(&f->lock);
    rc = wb_flush(f);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int
wb_read(sqlite3_file *file, void *p, int amt, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = wb_settle(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, amt, off);
}

static int
wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = wb_settle(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
wb_sync(sqlite3_file *file, int flags)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = wb_settle(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = wb_settle(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
wb_lock(sqlite3_file *file, int level)
{
    struct wb_file *f = (struct wb_file *)file;

    return f->real->pMethods->xLock(f->real, level);
}

static int
wb_unlock(sqlite3_file *file, int level)
{
    struct wb_file *f = (struct wb_file *)file;

    return f->real->pMethods->xUnlock(f->real, level);
}

static int
wb_check_reserved(sqlite3_file *file, int *out)
{
    struct wb_file *f = (struct wb_file *)file;

    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
wb_file_control(sqlite3_file *file, int op, void *arg)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = wb_settle(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
wb_sector_size(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;

    return f->real->pMethods->xSectorSize(f->real);
}

static int
wb_device_characteristics(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;

    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* A WAL file uses no shared memory or memory mapping of its own: version 1. */
static const sqlite3_io_methods wb_methods = {
    .iVersion = 1,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
};

/* Where the default VFS's file object starts inside a wb_file. */
static size_t
wb_real_at(void)
{
    return (sizeof(struct wb_file) + 15) & ~(size_t)15;
}

static int
wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    struct wb_vfs *v = (struct wb_vfs *)vfs;
    struct wb_file *f = (struct wb_file *)file;
    int rc;

    /* Anything but a WAL is the default VFS's own file object, methods and all. */
    if (!(flags & SQLITE_OPEN_WAL))
        return v->real->xOpen(v->real, name, file, flags, out_flags);
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)((char *)file + wb_real_at());
    rc = v->real->xOpen(v->real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    pthread_mutex_init(&f->lock, NULL);
    f->base.pMethods = &wb_methods;
    return SQLITE_OK;
}

/* The rest of the VFS is the default one's. */
#define WB_REAL(vfs) (((struct wb_vfs *)(vfs))->real)

static int
wb_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return WB_REAL(vfs)->xDelete(WB_REAL(vfs), name, sync_dir);
}

static int
wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return WB_REAL(vfs)->xAccess(WB_REAL(vfs), name, flags, out);
}

static int
wb_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return WB_REAL(vfs)->xFullPathname(WB_REAL(vfs), name, n, out);
}

static void *
wb_dl_open(sqlite3_vfs *vfs, const char *name)
{
    return WB_REAL(vfs)->xDlOpen(WB_REAL(vfs), name);
}

static void
wb_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    WB_REAL(vfs)->xDlError(WB_REAL(vfs), n, out);
}

static void (*wb_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    return WB_REAL(vfs)->xDlSym(WB_REAL(vfs), h, sym);
}

static void
wb_dl_close(sqlite3_vfs *vfs, void *h)
{
    WB_REAL(vfs)->xDlClose(WB_REAL(vfs), h);
}

static int
wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return WB_REAL(vfs)->xRandomness(WB_REAL(vfs), n, out);
}

static int
wb_sleep(sqlite3_vfs *vfs, int us)
{
    return WB_REAL(vfs)->xSleep(WB_REAL(vfs), us);
}

static int
wb_current_time(sqlite3_vfs *vfs, double *out)
{
    return WB_REAL(vfs)->xCurrentTime(WB_REAL(vfs), out);
}

static int
wb_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    return WB_REAL(vfs)->xGetLastError(WB_REAL(vfs), n, out);
}

static int
wb_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *real = WB_REAL(vfs);
    double d;
    int rc;

    if (real->iVersion >= 2 && real->xCurrentTimeInt64 != NULL)
        return real->xCurrentTimeInt64(real, out);
    rc = real->xCurrentTime(real, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

const char *
sq_walbuf_vfs(void)
{
    sqlite3_vfs *real;
    struct wb_vfs *v;
    const char *name = NULL;

    pthread_mutex_lock(&wb_vfs_lock);
    real = sqlite3_vfs_find(NULL);
    if (real == NULL)
        goto out;
    for (v = wb_vfs_list; v != NULL; v = v->next) {
        if (v->real == real || &v->base == real) {
            name = v->name;
            goto out;
        }
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        goto out;
    /* Numbered: two default VFSes in turn may share a name. */
    snprintf(v->name, sizeof(v->name), "fluxhook-walbuf-%d-%s", ++wb_vfs_made, real->zName);
    v->real = real;
    v->base = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)wb_real_at() + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = v->name,
        .xOpen = wb_open,
        .xDelete = wb_delete,
        .xAccess = wb_access,
        .xFullPathname = wb_full_pathname,
        .xDlOpen = wb_dl_open,
        .xDlError = wb_dl_error,
        .xDlSym = wb_dl_sym,
        .xDlClose = wb_dl_close,
        .xRandomness = wb_randomness,
        .xSleep = wb_sleep,
        .xCurrentTime = wb_current_time,
        .xGetLastError = wb_last_error,
        .xCurrentTimeInt64 = wb_current_time_int64,
    };
    if (sqlite3_vfs_register(&v->base, 0) != SQLITE_OK) {
        log_warnx("store: cannot register the WAL's VFS; frames are written one by one");
        free(v);
        goto out;
    }
    v->next = wb_vfs_list;
    wb_vfs_list = v;
    name = v->name;
out:
    pthread_mutex_unlock(&wb_vfs_lock);
    return name;
}

int
sq_walbuf_stats(sqlite3_file *wal, struct sq_walbuf_stats *out)
{
    struct wb_file *f = (struct wb_file *)wal;

    memset(out, 0, sizeof(*out));
    if (wal == NULL || wal->pMethods != &wb_methods)
        return 0;
    pthread_mutex_lock(&f->lock);
    *out = f->stats;
    pthread_mutex_unlock(&f->lock);
    return 1;
}
