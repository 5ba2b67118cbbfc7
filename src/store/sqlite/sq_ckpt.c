/*
 * SQLite backend: the WAL's checkpoints, run by a thread of their own.
 *
 * SQLite's automatic checkpoint runs inside the commit that takes the WAL
 * past its size: on the writer thread, which then copies every page the WAL
 * holds into the database file and syncs both files while no publish,
 * claim or result can be written. Here the writer's connection checkpoints
 * nothing by itself (its WAL hook only counts frames); the checkpointer, on
 * its own connection, copies the WAL into the database each time
 * sq_wal_ckpt_bytes were added to it (a PASSIVE checkpoint: the writer keeps
 * committing meanwhile).
 *
 * The WAL starts over from its beginning only at a write transaction that
 * begins while every frame of it is in the database. Commits made during
 * the checkpointer's pass keep it from that, so after a pass that found the
 * WAL at least SQ_CKPT_RESET times sq_wal_ckpt_bytes long, the writer copies
 * what those commits added itself, between two transactions (a few frames,
 * and the two syncs every checkpoint makes: those, not the frames, are its
 * cost, so the writer does it once per SQ_CKPT_RESET passes, not after each
 * one); its next transaction then writes the WAL from its start. The WAL
 * never grows past SQ_CKPT_MAX times sq_wal_ckpt_bytes while the writer is
 * busy: there the writer waits for a pass under way to end and checkpoints
 * itself, as SQLite's automatic checkpoint would; a chunk of a big move
 * (an enable, a replay) waits for the pass before that (sq_ckpt_yield()).
 * A reader holding an old snapshot can still keep the WAL from starting
 * over, as it always could.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* In sq_wal_ckpt_bytes (a pass's step), like SQ_CKPT_MAX (sq_int.h), the WAL's bound: */
#define SQ_CKPT_RESET 16 /* the writer copies what a pass left once the WAL is this long */
#define SQ_CKPT_LATE 20 /* with no WAL sync under way, only once it is this long */
#define SQ_CKPT_NEAR 2  /* a chunk waits for a pass with the WAL this close to its bound */
#define SQ_CKPT_YIELD_MS 250 /* the longest a chunk waits for a pass near the bound */

int64_t sq_wal_ckpt_bytes = SQ_WAL_CKPT_BYTES;

struct sq_ckpt {
    sqlite3 *db;             /* the checkpointer's own connection */
    sqlite3 *writer;         /* the writer's, whose WAL hook is ours */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* the thread waits for a pass to run, the writer for one to end */
    int pass_frames;         /* a pass runs each time this many frames were added */
    int reset_frames;        /* after a pass over this many, the writer copies the rest */
    int max_frames;          /* the WAL's bound */
    int frames;              /* the WAL's frames after the writer's last commit */
    int copied;              /* frames in the database after the last pass (0: the WAL started over) */
    int wanted;              /* a pass is to run */
    int running;             /* a pass (or the writer's checkpoint) is under way */
    int reset;               /* a pass ended on a long WAL: the writer copies the rest */
    int stop;
    int failing;             /* the last checkpoint failed (logged once) */
    struct sq_ckpt_stats stats;
};

/* Under k->lock: logs the first failure of a spell of failing checkpoints. */
static void
ckpt_note(struct sq_ckpt *k, sqlite3 *db, int rc, const char *who)
{
    if (rc == SQLITE_OK) {
        if (k->failing)
            log_info("store: %s checkpoints the WAL again", who);
        k->failing = 0;
        return;
    }
    if (rc == SQLITE_BUSY || k->failing)
        return;
    k->failing = 1;
    log_warnx("store: %s cannot checkpoint the WAL: %s", who, sqlite3_errmsg(db));
}

/*
 * The writer's WAL hook, called after each of its commits with the frames
 * the WAL holds: starts a pass when enough were added since the last one.
 */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct sq_ckpt *k = arg;

    (void)db;
    (void)name;
    pthread_mutex_lock(&k->lock);
    if (frames < k->frames)
        k->copied = 0; /* the WAL started over */
    k->frames = frames;
    if (!k->running && !k->wanted && frames - k->copied >= k->pass_frames) {
        k->wanted = 1;
        pthread_cond_broadcast(&k->cond);
    }
    pthread_mutex_unlock(&k->lock);
    return SQLITE_OK;
}

static void *
ckpt_main(void *arg)
{
    struct sq_ckpt *k = arg;
    int rc, log_frames, done;

    (void)pthread_setname_np(pthread_self(), "fh-checkpoint");
    pthread_mutex_lock(&k->lock);
    for (;;) {
        while (!k->wanted && !k->stop)
            pthread_cond_wait(&k->cond, &k->lock);
        if (k->stop)
            break;
        k->wanted = 0;
        k->running = 1;
        pthread_mutex_unlock(&k->lock);

        log_frames = done = 0;
        rc = sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &done);

        pthread_mutex_lock(&k->lock);
        k->running = 0;
        k->stats.passes++;
        ckpt_note(k, k->db, rc, "the checkpointer");
        if (rc == SQLITE_OK) {
            if (done > k->copied)
                k->copied = done;
            /* Commits during the pass left frames behind (else the WAL starts over alone). */
            if (log_frames >= k->reset_frames && k->frames > done)
                k->reset = 1;
        }
        pthread_cond_broadcast(&k->cond);
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

/*
 * After each commit of the writer: waits for a pass at the WAL's bound, and
 * copies what a pass left (or, at the bound, everything) when it is time.
 * The copy's syncs are its cost, and publishes queued behind it wait for
 * them: it is made while a WAL sync is under way or queued (beside_sync),
 * which overlaps them with one its callers wait for anyway, or once the WAL
 * holds SQ_CKPT_LATE steps (nothing but claims, results or chunks are being
 * written).
 */
void
sq_ckpt_commit(struct sq_ckpt *k, int beside_sync)
{
    int rc, log_frames = 0, done = 0, before;

    if (k == NULL)
        return;
    pthread_mutex_lock(&k->lock);
    while (k->running && k->frames >= k->max_frames)
        pthread_cond_wait(&k->cond, &k->lock);
    if (k->running || !(k->reset || k->frames >= k->max_frames) ||
        (!beside_sync && k->frames < SQ_CKPT_LATE * k->pass_frames)) {
        pthread_mutex_unlock(&k->lock);
        return;
    }
    k->reset = 0;
    k->wanted = 0;
    k->running = 1; /* the thread starts no pass meanwhile */
    before = k->copied;
    pthread_mutex_unlock(&k->lock);

    rc = sqlite3_wal_checkpoint_v2(k->writer, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                   &done);

    pthread_mutex_lock(&k->lock);
    k->running = 0;
    k->stats.catchups++;
    ckpt_note(k, k->writer, rc, "the writer");
    if (rc == SQLITE_OK && done > before)
        k->stats.catchup_frames += (uint64_t)(done - before);
    if (rc == SQLITE_OK && done > k->copied)
        k->copied = done;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
}

void
sq_ckpt_yield(struct sq_ckpt *k)
{
    struct timespec by;

    if (k == NULL)
        return;
    clock_mono_deadline(&by, SQ_CKPT_YIELD_MS);
    pthread_mutex_lock(&k->lock);
    while (k->running && k->frames >= k->max_frames - SQ_CKPT_NEAR * k->pass_frames && !k->stop) {
        if (pthread_cond_timedwait(&k->cond, &k->lock, &by) != 0)
            break;
    }
    pthread_mutex_unlock(&k->lock);
}

int
sq_ckpt_start(const char *path, sqlite3 *writer, struct sq_ckpt **out)
{
    struct sq_ckpt *k;
    int64_t page;
    int rc;

    *out = NULL;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return ERR_NOMEM;
    page = sq_page_size(writer);
    if (page <= 0) {
        free(k);
        return ERR_STORE;
    }
    k->pass_frames = (int)(sq_wal_ckpt_bytes / page > 0 ? sq_wal_ckpt_bytes / page : 1);
    k->reset_frames = SQ_CKPT_RESET * k->pass_frames;
    k->max_frames = SQ_CKPT_MAX * k->pass_frames;
    k->writer = writer;
    rc = sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /* A connection learns that the database is in WAL mode at its first read. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(k->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_warnx("store: cannot open '%s' for checkpoints: %s", path,
                  k->db != NULL ? sqlite3_errmsg(k->db) : sqlite3_errstr(rc));
        sqlite3_close(k->db);
        free(k);
        return ERR_STORE;
    }
    pthread_mutex_init(&k->lock, NULL);
    clock_mono_cond_init(&k->cond);
    if (pthread_create(&k->thread, NULL, ckpt_main, k) != 0) {
        log_warn("store: cannot start the checkpointer thread");
        pthread_cond_destroy(&k->cond);
        pthread_mutex_destroy(&k->lock);
        sqlite3_close(k->db);
        free(k);
        return ERR_STORE;
    }
    /* Replaces SQLite's automatic checkpoint (wal_autocheckpoint) on the writer. */
    sqlite3_wal_hook(writer, ckpt_hook, k);
    *out = k;
    return 0;
}

void
sq_ckpt_stop(struct sq_ckpt *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->lock);
    k->stop = 1;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->thread, NULL);
    sqlite3_wal_hook(k->writer, NULL, NULL);
    log_debug("store: checkpointer done passes=%llu writer_checkpoints=%llu writer_frames=%llu",
              (unsigned long long)k->stats.passes, (unsigned long long)k->stats.catchups,
              (unsigned long long)k->stats.catchup_frames);
    sqlite3_close(k->db);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

void
sq_ckpt_stats(struct sq_ckpt *k, struct sq_ckpt_stats *out)
{
    pthread_mutex_lock(&k->lock);
    *out = k->stats;
    pthread_mutex_unlock(&k->lock);
}
