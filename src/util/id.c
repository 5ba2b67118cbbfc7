#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define ID_BODY 26

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static unsigned char last_rand[10];

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

    if (plen + ID_BODY + 1 > ID_MAX || ms < 0 || ms >= ((int64_t)1 << 48))
        return ERR_INVAL;
    if (!monotonic) {
        if (RAND_bytes(r, sizeof(r)) != 1)
            return ERR_INTERNAL;
        goto write;
    }
    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        /* Same or earlier millisecond: keep order by counting up. */
        ms = last_ms;
        if (increment(last_rand)) {
            ms++;
            RAND_bytes(last_rand, sizeof(last_rand));
        }
    } else {
        if (RAND_bytes(last_rand, sizeof(last_rand)) != 1) {
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
