/*
 * The cache of SQLite's small blocks (src/store/sqlite/sq_mem.c), in front
 * of a counting allocator that stands for SQLite's own: a block freed is
 * handed out again on its thread, a thread keeps a bounded number of them
 * and gives them back when it ends, sizes and reallocations keep SQLite's
 * contract, and SQLite runs on it from several threads at once (the ASan
 * build checks that no block is lost or used after it is given back).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/sqlite/sq_int.h"

#define MT_THREADS 4  /* threads running SQLite at once */
#define MT_ROWS 2000  /* rows each of them writes */
#define MT_MANY 100   /* small blocks one thread frees at once */
#define MT_KEPT 32    /* of which it keeps (sq_mem.c's MEM_KEEP) */

static sqlite3_mem_methods mt_real; /* SQLite's default allocator */
static atomic_long mt_live;         /* blocks the counting allocator has out */

static void *
mt_malloc(int n)
{
    void *p = mt_real.xMalloc(n);

    if (p != NULL)
        atomic_fetch_add(&mt_live, 1);
    return p;
}

static void
mt_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&mt_live, 1);
    mt_real.xFree(p);
}

static void *
mt_realloc(void *p, int n)
{
    void *q = mt_real.xRealloc(p, n);

    if (p == NULL && q != NULL)
        atomic_fetch_add(&mt_live, 1);
    return q;
}

static int
mt_size(void *p)
{
    return mt_real.xSize(p);
}

static int
mt_roundup(int n)
{
    return mt_real.xRoundup(n);
}

static int
mt_init(void *app)
{
    (void)app;
    return mt_real.xInit(mt_real.pAppData);
}

static void
mt_shutdown(void *app)
{
    (void)app;
    mt_real.xShutdown(mt_real.pAppData);
}

/* A freed block comes back on the same thread; sizes round up as xSize says. */
static void
test_block_reused(void **state)
{
    unsigned char *p, *q;

    (void)state;
    p = sqlite3_malloc(100);
    assert_non_null(p);
    assert_int_equal(sqlite3_msize(p), 128);
    memset(p, 0xab, 128);
    sqlite3_free(p);
    q = sqlite3_malloc(120);
    assert_ptr_equal(q, p);
    sqlite3_free(q);
    /* A large block is not kept, and is the size asked, rounded to 8. */
    p = sqlite3_malloc(5000);
    assert_non_null(p);
    assert_int_equal(sqlite3_msize(p), 5000);
    sqlite3_free(p);
}

/* Growing keeps the content; shrinking keeps the block. */
static void
test_block_resize(void **state)
{
    unsigned char *p, *q;
    int i;

    (void)state;
    p = sqlite3_malloc(60);
    assert_non_null(p);
    for (i = 0; i < 60; i++)
        p[i] = (unsigned char)i;
    q = sqlite3_realloc(p, 700);
    assert_non_null(q);
    assert_int_equal(sqlite3_msize(q), 704);
    for (i = 0; i < 60; i++)
        assert_int_equal(q[i], i);
    memset(q + 60, 0xcd, 640);
    p = sqlite3_realloc(q, 3000);
    assert_non_null(p);
    for (i = 0; i < 60; i++)
        assert_int_equal(p[i], i);
    assert_int_equal(p[699], 0xcd);
    q = sqlite3_realloc(p, 10);
    assert_ptr_equal(q, p);
    sqlite3_free(q);
}

struct mt_counts {
    long before, kept, after_all;
};

/* Frees MT_MANY small blocks at once: how many the thread kept. */
static void *
many_main(void *arg)
{
    struct mt_counts *mc = arg;
    void *ps[MT_MANY];
    int i;

    mc->before = atomic_load(&mt_live);
    for (i = 0; i < MT_MANY; i++)
        ps[i] = sqlite3_malloc(40);
    for (i = 0; i < MT_MANY; i++)
        sqlite3_free(ps[i]);
    mc->kept = atomic_load(&mt_live) - mc->before;
    /* Taken again: the kept ones first, so the allocator sees only the rest. */
    for (i = 0; i < MT_MANY; i++)
        ps[i] = sqlite3_malloc(50);
    mc->after_all = atomic_load(&mt_live) - mc->before;
    for (i = 0; i < MT_MANY; i++)
        sqlite3_free(ps[i]);
    return NULL;
}

/* A thread keeps MT_KEPT blocks of a size, and gives them back when it ends. */
static void
test_thread_bound_and_exit(void **state)
{
    struct mt_counts mc;
    pthread_t t;
    long before;

    (void)state;
    before = atomic_load(&mt_live);
    assert_int_equal(pthread_create(&t, NULL, many_main, &mc), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(mc.kept, MT_KEPT);
    assert_int_equal(mc.after_all, MT_MANY);
    assert_int_equal(atomic_load(&mt_live), before);
}

/* One thread's work: a database of its own, written, read back and closed. */
static void *
sql_main(void *arg)
{
    long *sum = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char blob[300];
    int i;

    *sum = -1;
    memset(blob, 'x', sizeof(blob));
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB) WITHOUT ROWID;"
                     "CREATE INDEX t_n ON t (n); BEGIN",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t VALUES (printf('k%08d', ?1), ?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    for (i = 0; i < MT_ROWS; i++) {
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_blob(st, 2, blob, (int)(sizeof(blob) - (size_t)(i % 200)), SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto out;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT sum(n) + sum(length(b)) FROM t WHERE n >= 0", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *sum = (long)sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
}

/* SQLite on the cache from several threads at once: right answers, nothing left out. */
static void
test_sqlite_threads(void **state)
{
    pthread_t ts[MT_THREADS];
    long sums[MT_THREADS], want = 0, before;
    int i;

    (void)state;
    for (i = 0; i < MT_ROWS; i++)
        want += i + 300 - i % 200;
    before = atomic_load(&mt_live);
    for (i = 0; i < MT_THREADS; i++)
        assert_int_equal(pthread_create(&ts[i], NULL, sql_main, &sums[i]), 0);
    for (i = 0; i < MT_THREADS; i++)
        assert_int_equal(pthread_join(ts[i], NULL), 0);
    for (i = 0; i < MT_THREADS; i++)
        assert_int_equal(sums[i], want);
    /* Every block the threads took is back: their own databases are closed. */
    assert_int_equal(atomic_load(&mt_live), before);
}

int
main(void)
{
    static const sqlite3_mem_methods counting = {
        mt_malloc, mt_free, mt_realloc, mt_size, mt_roundup, mt_init, mt_shutdown, NULL,
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_reused),
        cmocka_unit_test(test_block_resize),
        cmocka_unit_test(test_thread_bound_and_exit),
        cmocka_unit_test(test_sqlite_threads),
    };

    /* Before SQLite starts: the counting allocator, then the cache in front of it. */
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &mt_real) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MALLOC, &counting) != SQLITE_OK)
        return 1;
    sq_mem_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
