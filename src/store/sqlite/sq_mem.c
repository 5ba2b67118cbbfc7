/*
 * SQLite backend: a cache of small blocks in front of SQLite's allocator.
 *
 * Debian's SQLite is built without lookaside (SQLITE_OMIT_LOOKASIDE), so
 * every run of a statement allocates its cursors, keys and record buffers
 * from the heap and frees them when it ends: about 30 pairs for each result
 * and 26 for each publish on the writer, many of them past glibc's own small
 * per-thread cache (7 blocks a size) and into its locked arena.
 *
 * Here each thread keeps up to MEM_KEEP freed blocks of each size class
 * (multiples of MEM_STEP up to MEM_STEP * MEM_CLASSES bytes) and hands them
 * out again; larger blocks, and blocks past the bound, go to the allocator
 * SQLite had (its default, or a test's, which then still sees every block
 * that is made or given back). A thread's blocks are given back when it
 * ends. A kept block is at most MEM_STEP - 1 bytes larger than asked, as
 * lookaside slots are; SQLite learns its true size from xSize.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/log.h"

/*
 * Under ASan a kept block is poisoned but for its link: LeakSanitizer does
 * not read poisoned memory, and the blocks behind it would look lost.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MEM_POISON(p, n) ASAN_POISON_MEMORY_REGION((char *)(p) + MEM_LINK, (n) - MEM_LINK)
#define MEM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((char *)(p) + MEM_LINK, (n) - MEM_LINK)
#else
#define MEM_POISON(p, n) ((void)(p), (void)(n))
#define MEM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MEM_STEP 64    /* bytes between size classes */
#define MEM_CLASSES 16 /* blocks up to 1 KiB are kept */
#define MEM_KEEP 32    /* blocks kept per class and thread: at most 272 KiB */
#define MEM_LINK 8     /* the kept block's link, at its start */
#define MEM_HEAD 8     /* the block's size, before what SQLite sees; keeps 8-byte alignment */

/* A kept block: the link sits where SQLite's data was. */
struct mem_free {
    struct mem_free *next;
};

/* One thread's kept blocks. */
struct mem_cache {
    struct mem_free *head[MEM_CLASSES];
    int n[MEM_CLASSES];
    struct mem_cache *prev, *next; /* in mem_all */
};

static sqlite3_mem_methods mem_base; /* the allocator SQLite had */
static pthread_key_t mem_key;
/*
 * Every thread's cache, made at its first free, so that what a cache keeps
 * is reachable from here (LeakSanitizer does not look into thread-local
 * storage) and not taken for lost.
 */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mem_cache *mem_all;
static _Thread_local struct mem_cache *mem_mine;

/* The size of the block SQLite gets for n bytes. */
static int
mem_roundup(int n)
{
    if (n <= 0)
        return MEM_STEP;
    if (n <= MEM_STEP * MEM_CLASSES)
        return (n + MEM_STEP - 1) / MEM_STEP * MEM_STEP;
    return (n + 7) & ~7;
}

/* The class of a block of size cap, or -1 for one that is never kept. */
static int
mem_class(int64_t cap)
{
    return cap <= MEM_STEP * MEM_CLASSES && cap % MEM_STEP == 0 ? (int)(cap / MEM_STEP) - 1
                                                                  : -1;
}

static int64_t *
mem_head(void *p)
{
    return (int64_t *)((char *)p - MEM_HEAD);
}

static void *
mem_malloc(int n)
{
    struct mem_cache *mc = mem_mine;
    int cap = mem_roundup(n), k = mem_class(cap);
    int64_t *h;

    if (k >= 0 && mc != NULL && mc->head[k] != NULL) {
        struct mem_free *f = mc->head[k];

        MEM_UNPOISON(f, cap);
        mc->head[k] = f->next;
        mc->n[k]--;
        return f;
    }
    h = mem_base.xMalloc(cap + MEM_HEAD);
    if (h == NULL)
        return NULL;
    *h = cap;
    return h + 1;
}

/* Gives back what cache mc keeps. */
static void
mem_cache_empty(struct mem_cache *mc)
{
    struct mem_free *f;
    int k;

    for (k = 0; k < MEM_CLASSES; k++) {
        while ((f = mc->head[k]) != NULL) {
            MEM_UNPOISON(f, (k + 1) * MEM_STEP);
            mc->head[k] = f->next;
            mem_base.xFree(mem_head(f));
        }
        mc->n[k] = 0;
    }
}

/* A thread ends: its cache goes (the key's destructor). */
static void
mem_cache_drop(void *arg)
{
    struct mem_cache *mc = arg;

    mem_cache_empty(mc);
    pthread_mutex_lock(&mem_lock);
    if (mc->prev != NULL)
        mc->prev->next = mc->next;
    else
        mem_all = mc->next;
    if (mc->next != NULL)
        mc->next->prev = mc->prev;
    pthread_mutex_unlock(&mem_lock);
    if (mem_mine == mc)
        mem_mine = NULL;
    free(mc);
}

/* The calling thread's cache, made now if it has none; NULL without memory. */
static struct mem_cache *
mem_cache_mine(void)
{
    struct mem_cache *mc = mem_mine;

    if (mc != NULL)
        return mc;
    mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return NULL;
    if (pthread_setspecific(mem_key, mc) != 0) {
        free(mc);
        return NULL;
    }
    pthread_mutex_lock(&mem_lock);
    mc->next = mem_all;
    if (mem_all != NULL)
        mem_all->prev = mc;
    mem_all = mc;
    pthread_mutex_unlock(&mem_lock);
    mem_mine = mc;
    return mc;
}

static void
mem_free(void *p)
{
    struct mem_cache *mc;
    struct mem_free *f = p;
    int64_t cap;
    int k;

    if (p == NULL)
        return;
    cap = *mem_head(p);
    k = mem_class(cap);
    if (k >= 0 && (mc = mem_cache_mine()) != NULL && mc->n[k] < MEM_KEEP) {
        f->next = mc->head[k];
        mc->head[k] = f;
        mc->n[k]++;
        MEM_POISON(f, cap);
        return;
    }
    mem_base.xFree(mem_head(p));
}

/* At exit: gives back the exiting thread's blocks, which no destructor sees. */
static void
mem_exit(void)
{
    if (mem_mine != NULL)
        mem_cache_empty(mem_mine);
}

static int
mem_size(void *p)
{
    return p == NULL ? 0 : (int)*mem_head(p);
}

static void *
mem_realloc(void *p, int n)
{
    void *q;
    int cap;

    if (p == NULL)
        return mem_malloc(n);
    cap = mem_size(p);
    if (n <= cap)
        return p;
    q = mem_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, (size_t)(cap < n ? cap : n));
    mem_free(p);
    return q;
}

static int
mem_init(void *app)
{
    (void)app;
    return mem_base.xInit(mem_base.pAppData);
}

static void
mem_shutdown(void *app)
{
    (void)app;
    mem_base.xShutdown(mem_base.pAppData);
}

/*
 * Puts the cache in front of SQLite's allocator. Call once, before SQLite
 * is initialized (the first connection); later, it changes nothing.
 */
void
sq_mem_install(void)
{
    static const sqlite3_mem_methods methods = {
        mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup, mem_init, mem_shutdown, NULL,
    };

    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &mem_base) != SQLITE_OK)
        return;
    if (pthread_key_create(&mem_key, mem_cache_drop) != 0)
        return;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
        log_warnx("store: SQLite's allocations are not cached");
    else
        (void)atexit(mem_exit);
}
