#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define ID_BODY 26

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define ID_RAND_POOL 640 /* random bytes drawn at once: 64 ids' worth */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static unsigned char last_rand[10];
static unsigned char pool[ID_RAND_POOL]; /* random bytes not handed out yet: pool[used..] */
static size_t pool_used = ID_RAND_POOL;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* A child process draws its own bytes: it must not hand out its parent's. */
static void
pool_forget(void)
{
    pool_used = ID_RAND_POOL;
}

static void
pool_setup(void)
{
    (void)pthread_atfork(NULL, NULL, pool_forget);
}

/*
 * Under lock: 10 random bytes into r. RAND_bytes() costs about as much as
 * the rest of an id together, and a publish makes one each millisecond or
 * more: its bytes are drawn 64 ids at a time. Returns 0 or ERR_INTERNAL.
 */
static int
rand_take(unsigned char r[10])
{
    if (pool_used + 10 > ID_RAND_POOL) {
        if (RAND_bytes(pool, ID_RAND_POOL) != 1)
            return ERR_INTERNAL;
        pool_used = 0;
    }
    memcpy(r, pool + pool_used, 10);
    pool_used += 10;
    return 0;
}

/* Adds one to the 80-bit big-endian number r; returns 1 on overflow. */
static int
increment(unsigned char r[10])
{
    int i;

    for (i = 9; i >= 0; i--) {
        if (++r[i] != 0)
            return 0;
    }
    return 1;
}

/*
 * The 128 bits (48 of ms, 80 of r) as 26 five-bit groups, last first; the
 * first group holds only the top 3 bits. Two 64-bit halves shifted along,
 * not a loop per bit: each publish makes ids.
 */
static void
encode(int64_t ms, const unsigned char r[10], char out[ID_BODY + 1])
{
    uint64_t hi = (uint64_t)ms << 16 | (uint64_t)r[0] << 8 | r[1], lo = 0;
    int i;

    for (i = 2; i < 10; i++)
        lo = lo << 8 | r[i];
    for (i = ID_BODY - 1; i >= 0; i--) {
        out[i] = alphabet[lo & 31];
        lo = lo >> 5 | hi << 59;
        hi >>= 5;
    }
    out[ID_BODY] = '\0';
}

static int
make(const char *prefix, int64_t ms, int monotonic, char out[ID_MAX])
{
    unsigned char r[10];
    size_t plen = strlen(prefix);
    int err;

    if (plen + ID_BODY + 1 > ID_MAX || ms < 0 || ms >= ((int64_t)1 << 48))
        return ERR_INVAL;
    (void)pthread_once(&pool_once, pool_setup);
    pthread_mutex_lock(&lock);
    if (!monotonic) {
        err = rand_take(r);
        pthread_mutex_unlock(&lock);
        if (err != 0)
            return err;
        goto write;
    }
    if (ms <= last_ms) {
        /* Same or earlier millisecond: keep order by counting up. */
        ms = last_ms;
        if (increment(last_rand)) {
            ms++;
            (void)rand_take(last_rand);
        }
    } else {
        if (rand_take(last_rand) != 0) {
            pthread_mutex_unlock(&lock);
            return ERR_INTERNAL;
        }
        /* Leave room to count up within one millisecond. */
        last_rand[0] &= 0x7f;
    }
    last_ms = ms;
    memcpy(r, last_rand, sizeof(r));
    pthread_mutex_unlock(&lock);
write:
    /* encode() writes the rest and the NUL. */
    memcpy(out, prefix, plen); /* NOLINT(bugprone-not-null-terminated-result) */
    encode(ms, r, out + plen);
    return 0;
}

int
id_new(const char *prefix, char out[ID_MAX])
{
    return make(prefix, clock_now_ms(), 1, out);
}

int
id_new_at(const char *prefix, int64_t ms, char out[ID_MAX])
{
    return make(prefix, ms, 0, out);
}

int
id_floor(const char *prefix, int64_t ms, char out[ID_MAX])
{
    static const unsigned char zero[10];
    size_t plen = strlen(prefix);

    if (plen + ID_BODY + 1 > ID_MAX || ms < 0 || ms >= ((int64_t)1 << 48))
        return ERR_INVAL;
    memcpy(out, prefix, plen); /* NOLINT(bugprone-not-null-terminated-result) */
    encode(ms, zero, out + plen);
    return 0;
}

int
id_last(const char *prefix, char out[ID_MAX])
{
    unsigned char r[10];
    size_t plen = strlen(prefix);
    int64_t ms;

    if (plen + ID_BODY + 1 > ID_MAX)
        return ERR_INVAL;
    pthread_mutex_lock(&lock);
    ms = last_ms < 0 ? 0 : last_ms;
    if (last_ms < 0)
        memset(r, 0, sizeof(r));
    else
        memcpy(r, last_rand, sizeof(r));
    pthread_mutex_unlock(&lock);
    memcpy(out, prefix, plen); /* NOLINT(bugprone-not-null-terminated-result) */
    encode(ms, r, out + plen);
    return 0;
}

void
id_after(const char *id)
{
    int64_t ms = id_time_ms(id);

    if (ms < 0)
        return;
    pthread_mutex_lock(&lock);
    if (ms >= last_ms) {
        /* Counting up from all ones overflows to the next millisecond. */
        last_ms = ms;
        memset(last_rand, 0xff, sizeof(last_rand));
    }
    pthread_mutex_unlock(&lock);
}

int
id_valid(const char *prefix, const char *s)
{
    size_t plen = strlen(prefix);
    size_t i;

    if (strncmp(s, prefix, plen) != 0 || strlen(s + plen) != ID_BODY)
        return 0;
    if (s[plen] > '7')
        return 0; /* the first character holds only 3 bits */
    for (i = plen; s[i] != '\0'; i++) {
        if (strchr(alphabet, s[i]) == NULL)
            return 0;
    }
    return 1;
}

int64_t
id_time_ms(const char *s)
{
    const char *us = strchr(s, '_');
    int64_t ms = 0;
    int i;

    if (us == NULL || strlen(us + 1) != ID_BODY)
        return -1;
    /* The first 10 characters hold 50 bits: 2 zero bits and the 48-bit time. */
    for (i = 0; i < 10; i++) {
        const char *c = strchr(alphabet, us[1 + i]);
        if (c == NULL || us[1 + i] == '\0')
            return -1;
        ms = (ms << 5) | (c - alphabet);
    }
    return ms;
}
