/*
 * store_event_publish_async() on the SQLite store: every completion runs
 * exactly once, in the order the publishes were queued, after the commit is
 * durable; a write that fails answers its error; closing the store with
 * publishes queued answers every one of them. A thread that must not wait
 * (an HTTP loop) is refused a read when every read connection is busy. A VFS shim over the unix
 * VFS, the default VFS of this program only, can make every write and sync fail (a disk gone bad)
 * until it is told to stop. The writer's caches forget a change to endpoint_types alone and
 * what a transaction that failed at its commit read. While publishes keep the writer busy,
 * the WAL stays within its bound: its checkpoints run on the checkpointer's thread and the
 * writer copies only what a pass left. A commit's WAL frames reach the file in a few writes.
 * What is queued during a sync runs while the syncer hands the synced batch over, and
 * commits after it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/sqlite/sq_int.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define PA_MANY 400 /* publishes queued at once */
#define PA_CHAINS 8         /* publishes in flight at once, each queueing the next */
#define PA_LINKS 400        /* publishes per chain */
#define PA_CKPT_BYTES 65536 /* checkpoints of that test: every 8 pages of 8 KiB */
#define PA_BODY 600         /* the bodies of pub_fill_wide() */
#define PA_SLOW 6           /* publishes made one at a time over slow syncs */
#define PA_SLOW_MS 20       /* how slow */

/* --- the shim: writes and syncs fail while fw_failing is set --- */

#define FW_TABLES 4 /* tables of methods the unix VFS gives its files (one per kind) */

static sqlite3_vfs fw_vfs;
static sqlite3_vfs *fw_real;
static struct {
    const sqlite3_io_methods *real;
    sqlite3_io_methods ours; /* real's, with xWrite and xSync wrapped */
} fw_tables[FW_TABLES];
static pthread_mutex_t fw_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fw_failing;
static atomic_int fw_sync_ms; /* every sync first sleeps this long */
static atomic_int fw_sync_gate;   /* while set, a sync waits (at most 10 s) */
static atomic_int fw_syncs_begun; /* syncs that reached the shim */
#define FW_WALS 8
static sqlite3_file *fw_wals[FW_WALS]; /* the WAL files opened (under fw_mu) */
static atomic_long fw_wal_writes, fw_wal_bytes; /* writes that reached the WALs */

/* The unix VFS's methods behind f's. */
static const sqlite3_io_methods *
fw_real_of(sqlite3_file *f)
{
    size_t i;

    for (i = 0; i < FW_TABLES; i++) {
        if (f->pMethods == &fw_tables[i].ours)
            return fw_tables[i].real;
    }
    return f->pMethods;
}

static int
fw_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    size_t i;

    if (atomic_load(&fw_failing))
        return SQLITE_IOERR_WRITE;
    pthread_mutex_lock(&fw_mu);
    for (i = 0; i < FW_WALS; i++) {
        if (fw_wals[i] == f) {
            atomic_fetch_add(&fw_wal_writes, 1);
            atomic_fetch_add(&fw_wal_bytes, n);
        }
    }
    pthread_mutex_unlock(&fw_mu);
    return fw_real_of(f)->xWrite(f, p, n, off);
}

static int
fw_sync(sqlite3_file *f, int flags)
{
    int64_t until = clock_mono_ms() + 10000;

    if (atomic_load(&fw_failing))
        return SQLITE_IOERR_FSYNC;
    atomic_fetch_add(&fw_syncs_begun, 1);
    while (atomic_load(&fw_sync_gate) && clock_mono_ms() < until)
        clock_sleep_ms(1);
    clock_sleep_ms(atomic_load(&fw_sync_ms));
    return fw_real_of(f)->xSync(f, flags);
}

static int
fw_close(sqlite3_file *f)
{
    size_t i;

    pthread_mutex_lock(&fw_mu);
    for (i = 0; i < FW_WALS; i++) {
        if (fw_wals[i] == f)
            fw_wals[i] = NULL;
    }
    pthread_mutex_unlock(&fw_mu);
    return fw_real_of(f)->xClose(f);
}

static int
fw_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    size_t i;
    int rc;

    (void)vfs;
    rc = fw_real->xOpen(fw_real, name, f, flags, out_flags);
    if (rc != SQLITE_OK || f->pMethods == NULL)
        return rc;
    pthread_mutex_lock(&fw_mu);
    for (i = 0; (flags & SQLITE_OPEN_WAL) && i < FW_WALS; i++) {
        if (fw_wals[i] == NULL) {
            fw_wals[i] = f;
            break;
        }
    }
    for (i = 0; i < FW_TABLES; i++) {
        if (fw_tables[i].real == NULL) {
            fw_tables[i].real = f->pMethods;
            fw_tables[i].ours = *f->pMethods;
            fw_tables[i].ours.xWrite = fw_write;
            fw_tables[i].ours.xSync = fw_sync;
            fw_tables[i].ours.xClose = fw_close;
        }
        if (fw_tables[i].real == f->pMethods) {
            f->pMethods = &fw_tables[i].ours;
            break;
        }
    }
    pthread_mutex_unlock(&fw_mu);
    return rc;
}

static int
fw_register(void)
{
    fw_real = sqlite3_vfs_find(NULL);
    if (fw_real == NULL)
        return -1;
    fw_vfs = *fw_real;
    fw_vfs.zName = "failwrite";
    fw_vfs.xOpen = fw_open;
    return sqlite3_vfs_register(&fw_vfs, 1) == SQLITE_OK ? 0 : -1;
}

/* --- the fixture --- */

struct fx {
    char dir[64];
    char url[128];
    struct store *st;
};

/* One publish and what its completion saw. */
struct pub {
    struct event ev;
    struct store_publish it;
    int calls;     /* completions run */
    int err;       /* the last one's err */
    int seq;       /* the order its completion ran in (from 1) */
    int chain;     /* its completion queues another publish into next */
    int chain_err; /* what that store_event_publish_async() returned */
    struct pub *next;
    struct fx *fx;
};

static pthread_mutex_t pa_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pa_cv = PTHREAD_COND_INITIALIZER;
static int pa_seq; /* completions so far */

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct account a = {0};
    const char *tmp = getenv("TMPDIR");

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/fluxhook-async-XXXXXX",
             tmp != NULL && tmp[0] != '\0' && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->url, sizeof(fx->url), "sqlite:%s/store.db", fx->dir);
    if (store_open(fx->url, &fx->st) != 0)
        return -1;
    a.name = "A";
    snprintf(a.id, sizeof(a.id), "acct_a");
    if (store_account_insert(fx->st, &a) != 0)
        return -1;
    pa_seq = 0;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[128];

    atomic_store(&fw_failing, 0);
    atomic_store(&fw_sync_ms, 0);
    atomic_store(&fw_sync_gate, 0);
    store_close(fx->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* Fills p's event as a publisher would (key may be NULL). */
static void
pub_fill(struct pub *p, struct fx *fx, const char *key)
{
    int len;

    memset(&p->ev, 0, sizeof(p->ev));
    snprintf(p->ev.account_id, sizeof(p->ev.account_id), "acct_a");
    snprintf(p->ev.type, sizeof(p->ev.type), "user.message");
    if (key != NULL)
        snprintf(p->ev.idempotency_key, sizeof(p->ev.idempotency_key), "%s", key);
    len = asprintf(&p->ev.body, "{\"event\":\"user.message\",\"data\":{\"n\":1}}");
    assert_true(len > 0);
    p->ev.body_len = (size_t)len;
    p->it = (struct store_publish){.ev = &p->ev, .fanout = 1};
    p->calls = p->err = p->seq = 0;
    p->fx = fx;
}

/* Fills p as pub_fill() does, with a body of PA_BODY bytes. */
static void
pub_fill_wide(struct pub *p, struct fx *fx)
{
    pub_fill(p, fx, NULL);
    free(p->ev.body);
    p->ev.body = malloc(PA_BODY + 1);
    assert_non_null(p->ev.body);
    memset(p->ev.body, ' ', PA_BODY);
    memcpy(p->ev.body, "{\"n\":1}", 7);
    p->ev.body[PA_BODY] = '\0';
    p->ev.body_len = PA_BODY;
}

static void pub_done(void *arg, int err);

static int
pub_start(struct pub *p)
{
    return store_event_publish_async(p->fx->st, &p->it, 1, pub_done, p);
}

/* store_publish_done_fn: records the call, and chains the next publish if asked. */
static void
pub_done(void *arg, int err)
{
    struct pub *p = arg;

    if (p->chain && p->next != NULL)
        p->chain_err = pub_start(p->next);
    pthread_mutex_lock(&pa_mu);
    p->calls++;
    p->err = err;
    p->seq = ++pa_seq;
    pthread_cond_broadcast(&pa_cv);
    pthread_mutex_unlock(&pa_mu);
}

/* Waits until n completions ran in all (bounded: fails after 30 s). */
static void
wait_calls(int n)
{
    int64_t until = clock_mono_ms() + 30000;
    struct timespec ts;

    pthread_mutex_lock(&pa_mu);
    while (pa_seq < n && clock_mono_ms() < until) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pa_cv, &pa_mu, &ts);
    }
    pthread_mutex_unlock(&pa_mu);
    assert_int_equal(pa_seq, n);
}

static void
pubs_free(struct pub *ps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        event_cleanup(&ps[i].ev);
    free(ps);
}

/* --- the tests --- */

/*
 * store_writer_stats()'s waits are the time a publish spent: with every
 * sync made PA_SLOW_MS slow, each publish, made alone, is counted once in
 * each stage, its sync and its wait for it above 10 ms, and their sums are
 * at least the syncs' sleep.
 */
static void
test_writer_waits(void **state)
{
    struct fx *fx = *state;
    struct store_writer_stats a, b;
    struct pub ps[PA_SLOW];
    int i;

    memset(ps, 0, sizeof(ps)); /* no chains */
    store_writer_stats(fx->st, &a);
    assert_int_equal(a.waits, 1);
    atomic_store(&fw_sync_ms, PA_SLOW_MS);
    for (i = 0; i < PA_SLOW; i++) {
        pub_fill(&ps[i], fx, NULL);
        assert_int_equal(pub_start(&ps[i]), 0);
        wait_calls(i + 1); /* alone: its own commit and sync */
        assert_int_equal(ps[i].err, 0);
    }
    atomic_store(&fw_sync_ms, 0);
    store_writer_stats(fx->st, &b);
    assert_int_equal(lathist_count(&b.wait_commit) - lathist_count(&a.wait_commit), PA_SLOW);
    assert_int_equal(lathist_count(&b.wait_sync) - lathist_count(&a.wait_sync), PA_SLOW);
    assert_int_equal(lathist_count(&b.sync) - lathist_count(&a.sync), b.syncs - a.syncs);
    assert_true(b.syncs - a.syncs >= PA_SLOW);
    assert_int_equal(lathist_count_upto(&b.wait_sync, 10000),
                     lathist_count_upto(&a.wait_sync, 10000));
    assert_int_equal(lathist_count_upto(&b.sync, 10000), lathist_count_upto(&a.sync, 10000));
    assert_true(b.wait_sync.sum_us - a.wait_sync.sum_us >= (uint64_t)PA_SLOW * PA_SLOW_MS * 1000);
    assert_true(b.sync.sum_us - a.sync.sum_us >= (uint64_t)PA_SLOW * PA_SLOW_MS * 1000);
    for (i = 0; i < PA_SLOW; i++)
        event_cleanup(&ps[i].ev);
}

static void
test_async_supported(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(store_publish_async_supported(fx->st), 1);
}

/* Many publishes queued at once: each completes once, in order, and is stored. */
static void
test_async_once_in_order(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(PA_MANY, sizeof(*ps));
    struct event got;
    size_t i;

    assert_non_null(ps);
    for (i = 0; i < PA_MANY; i++) {
        pub_fill(&ps[i], fx, NULL);
        assert_int_equal(pub_start(&ps[i]), 0);
    }
    wait_calls(PA_MANY);
    for (i = 0; i < PA_MANY; i++) {
        assert_int_equal(ps[i].calls, 1);
        assert_int_equal(ps[i].err, 0);
        assert_int_equal(ps[i].it.err, 0);
        assert_int_equal(ps[i].seq, (int)i + 1);
        assert_int_equal(store_event_get(fx->st, "acct_a", ps[i].ev.id, &got), 0);
        assert_string_equal(got.type, "user.message");
        event_cleanup(&got);
    }
    pubs_free(ps, PA_MANY);
}

/* A repeated idempotency key answers the first event, as the blocking publish does. */
static void
test_async_idempotent_repeat(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(2, sizeof(*ps));
    char first[ID_MAX];

    assert_non_null(ps);
    pub_fill(&ps[0], fx, "key-1");
    pub_fill(&ps[1], fx, "key-1");
    assert_int_equal(pub_start(&ps[0]), 0);
    assert_int_equal(pub_start(&ps[1]), 0);
    wait_calls(2);
    snprintf(first, sizeof(first), "%s", ps[0].ev.id);
    assert_int_equal(ps[0].err, 0);
    assert_int_equal(ps[0].it.err, 0);
    assert_int_equal(ps[1].err, 0);
    assert_int_equal(ps[1].it.err, ERR_CONFLICT);
    assert_string_equal(ps[1].ev.id, first);
    pubs_free(ps, 2);
}

/*
 * Writes fail: the completion answers the store's error once and nothing is
 * stored; once the disk is back, the next publish succeeds.
 */
static void
test_async_write_fails(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(3, sizeof(*ps));
    struct event got;

    assert_non_null(ps);
    pub_fill(&ps[0], fx, NULL);
    pub_fill(&ps[1], fx, NULL);
    pub_fill(&ps[2], fx, NULL);
    atomic_store(&fw_failing, 1);
    assert_int_equal(pub_start(&ps[0]), 0);
    assert_int_equal(pub_start(&ps[1]), 0);
    wait_calls(2);
    atomic_store(&fw_failing, 0);
    assert_int_equal(ps[0].calls, 1);
    assert_int_equal(ps[1].calls, 1);
    assert_int_equal(ps[0].err, ERR_UNAVAILABLE);
    assert_int_equal(ps[1].err, ERR_UNAVAILABLE);
    assert_int_equal(store_event_get(fx->st, "acct_a", ps[0].ev.id, &got), ERR_NOTFOUND);
    assert_int_equal(store_event_get(fx->st, "acct_a", ps[1].ev.id, &got), ERR_NOTFOUND);

    assert_int_equal(pub_start(&ps[2]), 0);
    wait_calls(3);
    assert_int_equal(ps[2].err, 0);
    assert_int_equal(store_event_get(fx->st, "acct_a", ps[2].ev.id, &got), 0);
    event_cleanup(&got);
    pubs_free(ps, 3);
}

/* A publish the store refuses (no such account) answers ERR_NOTFOUND; its neighbours stand. */
static void
test_async_refused_alone(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(3, sizeof(*ps));
    size_t i;

    assert_non_null(ps);
    for (i = 0; i < 3; i++)
        pub_fill(&ps[i], fx, NULL);
    snprintf(ps[1].ev.account_id, sizeof(ps[1].ev.account_id), "acct_zz");
    for (i = 0; i < 3; i++)
        assert_int_equal(pub_start(&ps[i]), 0);
    wait_calls(3);
    assert_int_equal(ps[0].err, 0);
    assert_int_equal(ps[1].err, ERR_NOTFOUND);
    assert_int_equal(ps[2].err, 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(ps[i].calls, 1);
    pubs_free(ps, 3);
}

/* Bad items are refused at once, without a completion. */
static void
test_async_invalid(void **state)
{
    struct fx *fx = *state;
    struct pub p;

    memset(&p, 0, sizeof(p));
    pub_fill(&p, fx, NULL);
    assert_int_equal(store_event_publish_async(fx->st, &p.it, 0, pub_done, &p), ERR_INVAL);
    p.ev.type[0] = '\0';
    assert_int_equal(pub_start(&p), ERR_INVAL);
    assert_int_equal(p.calls, 0);
    event_cleanup(&p.ev);
}

/*
 * The store closes with publishes queued, and completions queueing more:
 * every queued one completes exactly once, each 0 stored durably, and one
 * queued while it closes is refused with ERR_SHUTDOWN.
 */
static void
test_async_close_queued(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(PA_MANY + 1000, sizeof(*ps));
    struct pub *chain;
    struct event got;
    size_t i, nchain = 1000;
    int started = PA_MANY, refused = 0;

    assert_non_null(ps);
    chain = ps + PA_MANY;
    for (i = 0; i < nchain; i++) {
        pub_fill(&chain[i], fx, NULL);
        chain[i].chain = 1;
        chain[i].next = i + 1 < nchain ? &chain[i + 1] : NULL;
    }
    assert_int_equal(pub_start(&chain[0]), 0);
    for (i = 0; i < PA_MANY; i++) {
        pub_fill(&ps[i], fx, NULL);
        assert_int_equal(pub_start(&ps[i]), 0);
    }
    store_close(fx->st);
    fx->st = NULL;
    /* Closed: every completion has run. Count the chain's links that were queued. */
    started++;
    for (i = 0; i + 1 < nchain; i++) {
        if (chain[i].calls == 0)
            break;
        if (chain[i].chain_err == ERR_SHUTDOWN) {
            refused = 1;
            break;
        }
        assert_int_equal(chain[i].chain_err, 0);
        started++;
    }
    assert_int_equal(pa_seq, started);
    assert_true(refused || i + 1 == nchain);
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    for (i = 0; i < PA_MANY + nchain; i++) {
        if (ps[i].calls == 0)
            continue;
        assert_int_equal(ps[i].calls, 1);
        assert_int_equal(ps[i].err, 0);
        assert_int_equal(store_event_get(fx->st, "acct_a", ps[i].ev.id, &got), 0);
        event_cleanup(&got);
    }
    pubs_free(ps, PA_MANY + nchain);
}

/* The in-memory store has no syncer: the writer answers at commit. */
static void
test_async_memory(void **state)
{
    struct fx *fx = *state;
    struct store *mem = NULL;
    struct account a = {0};
    struct pub *ps = calloc(10, sizeof(*ps));
    size_t i;

    assert_non_null(ps);
    assert_int_equal(store_open("sqlite::memory:", &mem), 0);
    a.name = "A";
    snprintf(a.id, sizeof(a.id), "acct_a");
    assert_int_equal(store_account_insert(mem, &a), 0);
    for (i = 0; i < 10; i++) {
        pub_fill(&ps[i], fx, NULL);
        assert_int_equal(store_event_publish_async(mem, &ps[i].it, 1, pub_done, &ps[i]), 0);
    }
    wait_calls(10);
    for (i = 0; i < 10; i++) {
        assert_int_equal(ps[i].calls, 1);
        assert_int_equal(ps[i].err, 0);
        assert_int_equal(ps[i].seq, (int)i + 1);
    }
    store_close(mem);
    pubs_free(ps, 10);
}

/*
 * Publishes keep the writer busy without a pause (PA_CHAINS in flight, each
 * completion queueing the next): the WAL, checkpointed every PA_CKPT_BYTES,
 * never grows past its bound (SQ_CKPT_MAX x PA_CKPT_BYTES, plus what one transaction
 * adds before its commit), though the publishes write ten times that and more;
 * the checkpointer and the writer both checkpointed; every event is stored.
 */
static void
test_wal_bounded_while_busy(void **state)
{
    struct fx *fx = *state;
    size_t n = PA_CHAINS * PA_LINKS, i;
    struct pub *ps = calloc(n, sizeof(*ps));
    struct store_writer_stats ws;
    struct event got;
    struct stat sb;
    char wal[160];
    off_t most = 0, bound;
    int64_t until = clock_mono_ms() + 60000;
    int done;

    assert_non_null(ps);
    store_close(fx->st);
    sq_wal_ckpt_bytes = PA_CKPT_BYTES;
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    sq_wal_ckpt_bytes = SQ_WAL_CKPT_BYTES;
    for (i = 0; i < n; i++) {
        pub_fill_wide(&ps[i], fx);
        ps[i].chain = 1;
        ps[i].next = i + PA_CHAINS < n ? &ps[i + PA_CHAINS] : NULL;
    }
    for (i = 0; i < PA_CHAINS; i++)
        assert_int_equal(pub_start(&ps[i]), 0);
    snprintf(wal, sizeof(wal), "%s/store.db-wal", fx->dir);
    do {
        if (stat(wal, &sb) == 0 && sb.st_size > most)
            most = sb.st_size;
        pthread_mutex_lock(&pa_mu);
        done = pa_seq;
        pthread_mutex_unlock(&pa_mu);
        usleep(500);
    } while (done < (int)n && clock_mono_ms() < until);
    wait_calls((int)n);

    store_writer_stats(fx->st, &ws);
    /* The bound, and one transaction's frames (at most PA_CHAINS events) past it. */
    bound = SQ_CKPT_MAX * PA_CKPT_BYTES + 64 * (8192 + 24);
    print_message("wal: at most %lld bytes (bound %lld) over %zu publishes of %d bytes; "
                  "checkpoints %llu, by the writer %llu, commits %llu\n",
                  (long long)most, (long long)bound, n, PA_BODY,
                  (unsigned long long)ws.checkpoints, (unsigned long long)ws.writer_checkpoints,
                  (unsigned long long)ws.commits);
    assert_true(most > 0);
    assert_true(most <= bound);
    assert_true(ws.checkpoints > 0);
    assert_true(ws.writer_checkpoints > 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(ps[i].err, 0);
        assert_int_equal(ps[i].chain_err, 0);
        assert_int_equal(store_event_get(fx->st, "acct_a", ps[i].ev.id, &got), 0);
        event_cleanup(&got);
    }
    pubs_free(ps, n);
}

/*
 * A commit's WAL frames reach the file in a few writes (sq_walbuf.c), not
 * two per frame (its header, its page), and every event is there for the
 * readers once answered, and again after the store is opened anew.
 */
static void
test_wal_frames_together(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(PA_MANY, sizeof(*ps));
    struct sq_walbuf_stats ws;
    struct event got;
    long writes, frames;
    size_t i;

    assert_non_null(ps);
    atomic_store(&fw_wal_writes, 0);
    atomic_store(&fw_wal_bytes, 0);
    for (i = 0; i < PA_MANY; i++) {
        pub_fill_wide(&ps[i], fx);
        assert_int_equal(pub_start(&ps[i]), 0);
    }
    wait_calls(PA_MANY);
    writes = atomic_load(&fw_wal_writes);
    frames = atomic_load(&fw_wal_bytes) / (8192 + 24);
    assert_int_equal(sq_walbuf_stats(((struct sq *)fx->st->impl)->wal_file, &ws), 1);
    print_message("wal: %ld frames in %ld writes; gathered %llu, written %llu times, "
                  "%llu through\n", frames, writes, (unsigned long long)ws.gathered,
                  (unsigned long long)ws.flushes, (unsigned long long)ws.through);
    assert_true(frames >= 20);
    /* Two writes a frame without the gathering. */
    assert_true(writes * 3 <= frames);
    assert_true(ws.gathered > 0);
    for (i = 0; i < PA_MANY; i++) {
        assert_int_equal(ps[i].err, 0);
        assert_int_equal(store_event_get(fx->st, "acct_a", ps[i].ev.id, &got), 0);
        event_cleanup(&got);
    }
    store_close(fx->st);
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    for (i = 0; i < PA_MANY; i++) {
        assert_int_equal(store_event_get(fx->st, "acct_a", ps[i].ev.id, &got), 0);
        assert_int_equal(got.body_len, PA_BODY);
        event_cleanup(&got);
    }
    pubs_free(ps, PA_MANY);
}

/* --- a thread that must not wait for a read connection --- */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_in;      /* readers held */
static int hold_release; /* let them go */

/* sq_job_fn: holds its read connection until hold_release. */
static int
job_hold(struct sq_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    pthread_mutex_lock(&hold_mu);
    hold_in++;
    pthread_cond_broadcast(&hold_cv);
    while (!hold_release)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    return 0;
}

static void *
hold_main(void *arg)
{
    struct fx *fx = arg;

    return (void *)(intptr_t)sq_read(fx->st->impl, job_hold, NULL);
}

/*
 * Every read connection is busy: a thread marked with store_thread_nowait()
 * is refused at once (ERR_TIMEOUT), where another would wait; once one is
 * free, reads answer again.
 */
static void
test_nowait_read(void **state)
{
    struct fx *fx = *state;
    pthread_t th[SQ_READERS];
    struct api_key k;
    void *rc;
    int i;

    memset(&k, 0, sizeof(k));
    hold_in = hold_release = 0;
    for (i = 0; i < SQ_READERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hold_main, fx), 0);
    pthread_mutex_lock(&hold_mu);
    while (hold_in < SQ_READERS)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);

    store_thread_nowait(1);
    assert_int_equal(store_key_find(fx->st, "no such hash", &k), ERR_TIMEOUT);
    store_thread_nowait(0);

    pthread_mutex_lock(&hold_mu);
    hold_release = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    for (i = 0; i < SQ_READERS; i++) {
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_int_equal((int)(intptr_t)rc, 0);
    }
    store_thread_nowait(1);
    assert_int_equal(store_key_find(fx->st, "no such hash", &k), ERR_NOTFOUND);
    store_thread_nowait(0);
    api_key_cleanup(&k);
}

/* --- the writer's caches: changes no cache may outlive --- */

/* sq_job_fn: runs the SQL text arg (one change) on the writer's connection. */
static int
job_sql(struct sq_conn *c, void *arg)
{
    return sq_exec(c, arg);
}

/* sq_done_fn: records a writer job's answer as a completion. */
static void
sql_done(void *arg, int err)
{
    pthread_mutex_lock(&pa_mu);
    *(int *)arg = err;
    ++pa_seq;
    pthread_cond_broadcast(&pa_cv);
    pthread_mutex_unlock(&pa_mu);
}

static void *
hold_writer_main(void *arg)
{
    struct fx *fx = arg;

    return (void *)(intptr_t)sq_write(fx->st->impl, job_hold, NULL);
}

/* A subscribed endpoint of acct_a, for every type. */
static void
cache_endpoint(struct fx *fx, struct endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    assert_int_equal(id_new("ep_", ep->id), 0);
    snprintf(ep->account_id, sizeof(ep->account_id), "acct_a");
    ep->url = "https://example.test/hook";
    ep->description = "";
    ep->event_types = "";
    ep->secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    assert_int_equal(store_endpoint_insert(fx->st, ep), 0);
}

/* Publishes p (fanned out by the store) and returns the status of its one delivery. */
static enum delivery_status
cache_publish(struct pub *p, int calls)
{
    struct delivery_filter f = {.status = -1, .limit = 10};
    struct delivery *ds = NULL;
    enum delivery_status s;
    size_t n = 0;

    assert_int_equal(pub_start(p), 0);
    wait_calls(calls);
    assert_int_equal(p->err, 0);
    assert_int_equal(p->ev.deliveries, 1);
    f.event_id = p->ev.id;
    assert_int_equal(store_delivery_list(p->fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 1);
    s = ds[0].status;
    delivery_list_free(ds, n);
    return s;
}

/*
 * A change to endpoint_types alone (a WITHOUT ROWID table, which SQLite's
 * update hook does not report) is seen by the next publish.
 */
static void
test_cache_types_alone(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(3, sizeof(*ps));
    struct endpoint ep;
    char *sql;

    assert_non_null(ps);
    cache_endpoint(fx, &ep);
    pub_fill(&ps[0], fx, NULL);
    assert_int_equal(cache_publish(&ps[0], 1), DELIVERY_PENDING);

    sql = sqlite3_mprintf("DELETE FROM endpoint_types WHERE endpoint_id = %Q", ep.id);
    assert_int_equal(sq_write(fx->st->impl, job_sql, sql), 0);
    sqlite3_free(sql);
    pub_fill(&ps[1], fx, NULL);
    assert_int_equal(pub_start(&ps[1]), 0);
    wait_calls(2);
    assert_int_equal(ps[1].err, 0);
    assert_int_equal(ps[1].ev.deliveries, 0);

    sql = sqlite3_mprintf("INSERT INTO endpoint_types (account_id, event_type, endpoint_id) "
                          "VALUES ('acct_a', 'user.message', %Q)",
                          ep.id);
    assert_int_equal(sq_write(fx->st->impl, job_sql, sql), 0);
    sqlite3_free(sql);
    pub_fill(&ps[2], fx, NULL);
    assert_int_equal(cache_publish(&ps[2], 3), DELIVERY_PENDING);
    pubs_free(ps, 3);
}

/* test_run_beside_handover: the second write, queued during the first one's sync. */
static struct fx *bh_fx;
static atomic_int bh_ran;     /* the second write's job ran */
static int bh_ran_in_after;   /* it had run before the first one's hand-over returned */
static int bh_commits_in_after; /* commits made while that hand-over waited */

/* sq_job_fn of the second write: notes that it ran, then runs its SQL. */
static int
job_sql_noted(struct sq_conn *c, void *arg)
{
    atomic_store(&bh_ran, 1);
    return sq_exec(c, arg);
}

/*
 * sq_job_after_fn of the first write, called on the syncer once its sync
 * ended: waits (bounded) for the writer to have run the second write.
 */
static void
bh_after(void *arg, int result)
{
    struct store_writer_stats a, b;
    int64_t until = clock_mono_ms() + 5000;

    (void)arg;
    if (result != 0)
        return;
    store_writer_stats(bh_fx->st, &a);
    while (!atomic_load(&bh_ran) && clock_mono_ms() < until)
        clock_sleep_ms(1);
    bh_ran_in_after = atomic_load(&bh_ran);
    store_writer_stats(bh_fx->st, &b);
    bh_commits_in_after = (int)(b.commits - a.commits);
}

/*
 * Holds every sync from now on (fw_sync_gate) and queues a write (after:
 * its after hook, may be NULL; sql_done() records its answer in *err), then
 * waits (bounded) until its sync reached the shim and is held.
 */
static void
write_sync_held(struct fx *fx, sq_job_after_fn *after, int *err)
{
    int64_t until;
    int begun;

    atomic_store(&fw_sync_gate, 1);
    begun = atomic_load(&fw_syncs_begun);
    assert_int_equal(sq_write_async(fx->st->impl, job_sql, after,
                                    "UPDATE accounts SET name = 'B' WHERE id = 'acct_a'", sql_done,
                                    err),
                     0);
    until = clock_mono_ms() + 10000;
    while (atomic_load(&fw_syncs_begun) == begun && clock_mono_ms() < until)
        clock_sleep_ms(1);
    assert_true(atomic_load(&fw_syncs_begun) > begun);
}

/*
 * A write queued while a sync is under way runs as soon as that sync ends,
 * while the syncer still hands the synced batch over (it used to wait for
 * the hand-over to end), and commits only after it, so that the callers
 * the syncer answers can still join that commit; both writes are answered,
 * durable.
 */
static void
test_run_beside_handover(void **state)
{
    struct fx *fx = *state;
    int first_err = -1, second_err = -1;

    bh_fx = fx;
    atomic_store(&bh_ran, 0);
    bh_ran_in_after = 0;
    bh_commits_in_after = -1;
    pa_seq = 0;
    write_sync_held(fx, bh_after, &first_err);
    /* The first write's sync is held: the second is queued during it. */
    assert_int_equal(sq_write_async(fx->st->impl, job_sql_noted, NULL,
                                    "UPDATE accounts SET name = 'C' WHERE id = 'acct_a'", sql_done,
                                    &second_err),
                     0);
    atomic_store(&fw_sync_gate, 0);
    wait_calls(2);
    assert_int_equal(first_err, 0);
    assert_int_equal(second_err, 0);
    assert_int_equal(bh_ran_in_after, 1);
    assert_int_equal(bh_commits_in_after, 0);
}

/* test_chunk_*: what a publish-like write and a chunk saw as they ran. */
static atomic_int ck_order;        /* jobs of these two run so far */
static atomic_int ck_pub_ran;      /* the write's turn among them (0: not yet) */
static atomic_int ck_chunk_ran;    /* the chunk's */
static atomic_llong ck_pub_commits, ck_chunk_commits; /* the writer's commits as each ran */
static struct fx *ck_fx;

/* sq_job_fn: notes its turn and the commits so far, then runs the SQL text arg. */
static int
job_noted(struct sq_conn *c, void *arg, atomic_int *ran, atomic_llong *commits)
{
    struct store_writer_stats ws;

    store_writer_stats(ck_fx->st, &ws);
    atomic_store(commits, (long long)ws.commits);
    atomic_store(ran, atomic_fetch_add(&ck_order, 1) + 1);
    return sq_exec(c, arg);
}

static int
job_pub_noted(struct sq_conn *c, void *arg)
{
    return job_noted(c, arg, &ck_pub_ran, &ck_pub_commits);
}

static int
job_chunk_noted(struct sq_conn *c, void *arg)
{
    return job_noted(c, arg, &ck_chunk_ran, &ck_chunk_commits);
}

static void *
chunk_main(void *arg)
{
    struct fx *fx = arg;

    return (void *)(intptr_t)sq_write_chunk(fx->st->impl, job_chunk_noted,
                                            "UPDATE accounts SET name = 'D' WHERE id = 'acct_a'");
}

/* A write that waits for its sync, as a publish does (sq_write(): its wake-up is not lazy). */
static void *
pub_main(void *arg)
{
    struct fx *fx = arg;

    return (void *)(intptr_t)sq_write(fx->st->impl, job_pub_noted,
                                      "UPDATE accounts SET name = 'C' WHERE id = 'acct_a'");
}

/* Joins th, which must have returned 0. */
static void
ck_join(pthread_t th)
{
    void *rc;

    assert_int_equal(pthread_join(th, &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
}

static void
ck_reset(struct fx *fx)
{
    ck_fx = fx;
    atomic_store(&ck_order, 0);
    atomic_store(&ck_pub_ran, 0);
    atomic_store(&ck_chunk_ran, 0);
    pa_seq = 0;
}

/* Waits (bounded: 10 s) until *flag is set. */
static void
ck_wait(atomic_int *flag)
{
    int64_t until = clock_mono_ms() + 10000;

    while (!atomic_load(flag) && clock_mono_ms() < until)
        clock_sleep_ms(1);
    assert_true(atomic_load(flag));
}

/* Waits (bounded: 10 s) until the writer's queue holds n jobs. */
static void
ck_queued(struct sq *s, size_t n)
{
    int64_t until = clock_mono_ms() + 10000;
    size_t queued = 0;

    while (queued < n && clock_mono_ms() < until) {
        pthread_mutex_lock(&s->lock);
        queued = s->queued;
        pthread_mutex_unlock(&s->lock);
        if (queued < n)
            clock_sleep_ms(1);
    }
    assert_int_equal(queued, n);
}

/*
 * A chunk (sq_write_chunk()) queued while a write waiting for its sync is
 * held in the writer's open transaction (the sync before it under way) does
 * not join that transaction: the writer commits the write first, so that
 * its sync never waits for the chunk.
 */
static void
test_chunk_not_in_sync_txn(void **state)
{
    struct fx *fx = *state;
    int first_err = -1;
    pthread_t pub, th;

    ck_reset(fx);
    write_sync_held(fx, NULL, &first_err);
    /* The first write's sync is held: the second runs in a transaction kept open meanwhile. */
    assert_int_equal(pthread_create(&pub, NULL, pub_main, fx), 0);
    ck_wait(&ck_pub_ran);
    assert_int_equal(pthread_create(&th, NULL, chunk_main, fx), 0);
    ck_wait(&ck_chunk_ran);
    atomic_store(&fw_sync_gate, 0);
    ck_join(th);
    ck_join(pub);
    wait_calls(1);
    assert_int_equal(first_err, 0);
    assert_true(atomic_load(&ck_chunk_commits) > atomic_load(&ck_pub_commits));
}

/*
 * A chunk queued before a write waiting for its sync, both while the writer
 * is busy, runs after it, and after its commit.
 */
static void
test_chunk_after_queued(void **state)
{
    struct fx *fx = *state;
    struct sq *s = fx->st->impl;
    pthread_t hold, th, pub;

    ck_reset(fx);
    hold_in = hold_release = 0;
    assert_int_equal(pthread_create(&hold, NULL, hold_writer_main, fx), 0);
    pthread_mutex_lock(&hold_mu);
    while (hold_in < 1)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    /* The writer is held in a job: the chunk, then the write, wait in its queue. */
    assert_int_equal(pthread_create(&th, NULL, chunk_main, fx), 0);
    ck_queued(s, 1);
    assert_int_equal(pthread_create(&pub, NULL, pub_main, fx), 0);
    ck_queued(s, 2);
    pthread_mutex_lock(&hold_mu);
    hold_release = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    ck_join(hold);
    ck_join(th);
    ck_join(pub);
    assert_int_equal(atomic_load(&ck_pub_ran), 1);
    assert_int_equal(atomic_load(&ck_chunk_ran), 2);
    assert_true(atomic_load(&ck_chunk_commits) > atomic_load(&ck_pub_commits));
}

/*
 * A transaction that disabled an endpoint and then published to it (the
 * fan-out read inside it) fails at its commit: the disable never happened,
 * and the next publish finds the endpoint enabled.
 */
static void
test_cache_rolled_back(void **state)
{
    struct fx *fx = *state;
    struct pub *ps = calloc(3, sizeof(*ps));
    struct endpoint ep, got;
    pthread_t th;
    char *sql;
    void *rc;
    int disable_err = 0;

    assert_non_null(ps);
    cache_endpoint(fx, &ep);
    pub_fill(&ps[0], fx, NULL);
    assert_int_equal(cache_publish(&ps[0], 1), DELIVERY_PENDING);

    /* The writer is held: what is queued meanwhile runs in one transaction. */
    hold_in = hold_release = 0;
    assert_int_equal(pthread_create(&th, NULL, hold_writer_main, fx), 0);
    pthread_mutex_lock(&hold_mu);
    while (hold_in < 1)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    sql = sqlite3_mprintf("UPDATE endpoints SET status = 'disabled' WHERE id = %Q", ep.id);
    assert_int_equal(sq_write_async(fx->st->impl, job_sql, NULL, sql, sql_done, &disable_err),
                     0);
    pub_fill(&ps[1], fx, NULL);
    assert_int_equal(pub_start(&ps[1]), 0);
    atomic_store(&fw_failing, 1);
    pthread_mutex_lock(&hold_mu);
    hold_release = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    assert_int_equal(pthread_join(th, &rc), 0);
    wait_calls(3);
    atomic_store(&fw_failing, 0);
    sqlite3_free(sql);
    assert_int_equal(disable_err, ERR_UNAVAILABLE);
    assert_int_equal(ps[1].err, ERR_UNAVAILABLE);

    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    assert_int_equal(got.status, ENDPOINT_ENABLED);
    endpoint_cleanup(&got);
    pub_fill(&ps[2], fx, NULL);
    assert_int_equal(cache_publish(&ps[2], 4), DELIVERY_PENDING);
    pubs_free(ps, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_async_supported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_idempotent_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_write_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_refused_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_close_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_bounded_while_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_frames_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nowait_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_types_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_beside_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_not_in_sync_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_after_queued, setup, teardown),
    };

    if (fw_register() != 0) {
        fprintf(stderr, "cannot register the VFS shim\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
