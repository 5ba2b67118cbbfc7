/*
 * SQLite backend: the credential cache. Every API request looks its key or
 * token up by hash; this keeps the rows found in memory, valid while no
 * process sharing the file has committed a change to api_keys or tokens
 * since they were read (docs/internals/store.md, "Credential cache").
 *
 * The processes agree through two counters in a small file beside the
 * database (PATH-cred), mapped shared:
 *  - begun: bumped by a writer, still holding SQLite's write lock, just
 *    before it commits a transaction that changed api_keys or tokens;
 *  - done: raised to that value once the commit has returned.
 * A row may be kept only when it was read while begun == done (no credential
 * commit under way) and is used only while begun still has the value it had
 * then. A writer bumps begun before any reader can see its commit, so after
 * that commit no process uses a row read before it. A process that dies
 * between the two steps leaves begun ahead of done: nothing is kept then
 * until the next write transaction of any process, which (holding the write
 * lock, so no commit can be under way) raises done to begun.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <limits.h>

#include "store/sqlite/sq_int.h"
#include "util/err.h"
#include "util/log.h"

#define CRED_SLOTS 1024 /* rows kept (a power of two): a slot keeps the last row hashed to it */
#define CRED_FILE_SIZE 4096

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the shared counters must be lock-free");

/* The shared page: the same in every process that maps PATH-cred. */
struct cred_gen {
    _Atomic unsigned long long begun;
    _Atomic unsigned long long done;
};

/* One row found by its hash: an api_keys row or a token. */
struct cred_entry {
    char hash[65];      /* what it was looked up by */
    int is_key;
    uint64_t stamp;     /* begun when it was read */
    struct api_key key; /* name owned */
    struct token tok;
};

struct sq_cred {
    struct cred_gen *gen; /* mapped shared, or calloc'd for ":memory:" */
    int mapped;
    pthread_mutex_t lock; /* guards slots */
    struct cred_entry *slots[CRED_SLOTS];
};

static size_t
slot_of(const char *hash)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *hash != '\0'; hash++)
        h = (h ^ (unsigned char)*hash) * 1099511628211ULL;
    return (size_t)(h & (CRED_SLOTS - 1));
}

/* Opens and maps PATH-cred (0600, created when missing); NULL when it cannot. */
static struct cred_gen *
gen_map(const char *path)
{
    char name[PATH_MAX];
    struct stat st;
    void *p;
    int fd;

    if (snprintf(name, sizeof(name), "%s-cred", path) >= (int)sizeof(name))
        return NULL;
    fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, SQ_FILE_MODE);
    if (fd >= 0) {
        /* A umask may have taken the owner's bits too. */
        if (fchmod(fd, SQ_FILE_MODE) != 0)
            log_warn("store: cannot set the mode of '%s'", name);
    } else if (errno == EEXIST) {
        fd = open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        log_warn("store: cannot open '%s': credentials are read from the store on every request",
                 name);
        return NULL;
    }
    p = MAP_FAILED;
    /*
     * Its blocks are allocated before it is mapped: a store of a sparse page
     * on a full disk would be a SIGBUS. Two processes may both grow a new
     * file: the second changes nothing.
     */
    if (fstat(fd, &st) == 0 &&
        (st.st_size >= CRED_FILE_SIZE || posix_fallocate(fd, 0, CRED_FILE_SIZE) == 0))
        p = mmap(NULL, CRED_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        log_warn("store: cannot map '%s': credentials are read from the store on every request",
                 name);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int
sq_cred_open(struct sq *s)
{
    struct sq_cred *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&k->lock, NULL);
    if (s->memory) {
        k->gen = calloc(1, sizeof(*k->gen));
    } else {
        k->gen = gen_map(s->path);
        k->mapped = 1;
    }
    if (k->gen == NULL) {
        /* No cache: every lookup reads the store, as the PostgreSQL backend does. */
        pthread_mutex_destroy(&k->lock);
        free(k);
        return 0;
    }
    s->cred = k;
    return 0;
}

static void
entry_free(struct cred_entry *e)
{
    if (e == NULL)
        return;
    api_key_cleanup(&e->key);
    free(e);
}

void
sq_cred_close(struct sq *s)
{
    struct sq_cred *k = s->cred;
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < CRED_SLOTS; i++)
        entry_free(k->slots[i]);
    if (k->mapped)
        munmap(k->gen, CRED_FILE_SIZE);
    else
        free(k->gen);
    pthread_mutex_destroy(&k->lock);
    free(k);
    s->cred = NULL;
}

void
sq_cred_txn_begin(struct sq *s)
{
    struct cred_gen *g = s->cred != NULL ? s->cred->gen : NULL;
    unsigned long long b, d;

    /* What an earlier transaction changed was committed (and announced) or rolled back. */
    (void)sq_cache_cred_take(&s->writer);
    if (g == NULL)
        return;
    b = atomic_load(&g->begun);
    d = atomic_load(&g->done);
    /* Under the write lock no commit is under way: a writer died between its two steps. */
    while (d < b && !atomic_compare_exchange_weak(&g->done, &d, b))
        ;
}

uint64_t
sq_cred_commit_begin(struct sq *s)
{
    if (s->cred == NULL || !sq_cache_cred_take(&s->writer))
        return 0;
    return atomic_fetch_add(&s->cred->gen->begun, 1) + 1;
}

void
sq_cred_commit_end(struct sq *s, uint64_t b)
{
    struct cred_gen *g;
    unsigned long long d;

    if (b == 0 || s->cred == NULL)
        return;
    g = s->cred->gen;
    d = atomic_load(&g->done);
    /* Raised, never lowered: another writer's recovery may have passed b already. */
    while (d < b && !atomic_compare_exchange_weak(&g->done, &d, b))
        ;
}

int
sq_cred_stamp(struct sq *s, uint64_t *stamp)
{
    struct cred_gen *g = s->cred != NULL ? s->cred->gen : NULL;
    unsigned long long d;

    if (g == NULL)
        return 0;
    /*
     * The stamp is done, never begun: a row read while a change is announced
     * but not committed is the old one, and must not be valid once it is.
     * (Such a row could never match begun again anyway: not keeping it only
     * spares its slot.)
     */
    d = atomic_load(&g->done); /* first: done never passes begun */
    if (atomic_load(&g->begun) != d)
        return 0;
    *stamp = d;
    return 1;
}

/* Under k->lock: the valid entry for hash of the kind, or NULL. */
static struct cred_entry *
entry_find(struct sq_cred *k, const char *hash, int is_key)
{
    struct cred_entry *e = k->slots[slot_of(hash)];

    if (e == NULL || e->is_key != is_key || strcmp(e->hash, hash) != 0 ||
        e->stamp != atomic_load(&k->gen->begun))
        return NULL;
    return e;
}

int
sq_cred_key_get(struct sq *s, const char *hash, struct api_key *out)
{
    struct sq_cred *k = s->cred;
    struct cred_entry *e;
    int found = 0;

    if (k == NULL || hash == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    e = entry_find(k, hash, 1);
    if (e != NULL) {
        *out = e->key;
        out->name = NULL;
        found = e->key.name == NULL || (out->name = strdup(e->key.name)) != NULL;
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

int
sq_cred_token_get(struct sq *s, const char *hash, struct token *out)
{
    struct sq_cred *k = s->cred;
    struct cred_entry *e;

    if (k == NULL || hash == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    e = entry_find(k, hash, 0);
    if (e != NULL)
        *out = e->tok;
    pthread_mutex_unlock(&k->lock);
    return e != NULL;
}

/* Keeps e (taking it) in its slot; frees it when it cannot. */
static void
entry_put(struct sq_cred *k, struct cred_entry *e)
{
    size_t i = slot_of(e->hash);

    pthread_mutex_lock(&k->lock);
    entry_free(k->slots[i]);
    k->slots[i] = e;
    pthread_mutex_unlock(&k->lock);
}

static struct cred_entry *
entry_new(uint64_t stamp, const char *hash, int is_key)
{
    struct cred_entry *e;

    if (hash == NULL || strlen(hash) >= sizeof(e->hash) || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    memcpy(e->hash, hash, strlen(hash) + 1);
    e->is_key = is_key;
    e->stamp = stamp;
    return e;
}

void
sq_cred_key_put(struct sq *s, uint64_t stamp, const char *hash, const struct api_key *key)
{
    struct cred_entry *e;

    if (s->cred == NULL || (e = entry_new(stamp, hash, 1)) == NULL)
        return;
    e->key = *key;
    e->key.name = NULL;
    if (key->name != NULL && (e->key.name = strdup(key->name)) == NULL) {
        free(e);
        return;
    }
    entry_put(s->cred, e);
}

void
sq_cred_token_put(struct sq *s, uint64_t stamp, const char *hash, const struct token *t)
{
    struct cred_entry *e;

    if (s->cred == NULL || (e = entry_new(stamp, hash, 0)) == NULL)
        return;
    e->tok = *t;
    entry_put(s->cred, e);
}

void
sq_cred_key_touched(struct sq *s, const char *id, int64_t at)
{
    struct sq_cred *k = s->cred;
    size_t i;

    if (k == NULL)
        return;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < CRED_SLOTS; i++) {
        struct cred_entry *e = k->slots[i];

        if (e != NULL && e->is_key && strcmp(e->key.id, id) == 0 && e->key.last_used_at < at)
            e->key.last_used_at = at;
    }
    pthread_mutex_unlock(&k->lock);
}
