/*
 * Rate limits: a token bucket per credential (key, OAuth token, portal
 * session) and one per account over all of its credentials. A bucket holds
 * up to one second of requests and refills continuously. Buckets live in a
 * fixed table (RATE_SLOTS, open addressing over RATE_PROBE slots); when
 * every slot a key may use is taken, the one refilled longest ago gives way,
 * so memory stays bounded whatever the number of credentials. The check
 * runs before any handler: a request over the limit changes nothing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/clock.h"
#include "util/err.h"

#define RATE_SLOTS 4096
#define RATE_PROBE 8
#define RATE_KEY_MAX (ID_MAX + 2)

struct bucket {
    char key[RATE_KEY_MAX]; /* "k:<credential id>" or "a:<account id>"; "" when free */
    double tokens;
    int64_t at_ms; /* when tokens was last brought up to date */
};

struct api_rate {
    struct api_rate_config cfg;
    pthread_mutex_t mu;
    struct bucket slots[RATE_SLOTS];
};

int
api_rate_new(const struct api_rate_config *cfg, struct api_rate **out)
{
    struct api_rate *rl = calloc(1, sizeof(*rl));

    *out = NULL;
    if (rl == NULL)
        return ERR_NOMEM;
    rl->cfg = *cfg;
    pthread_mutex_init(&rl->mu, NULL);
    *out = rl;
    return 0;
}

void
api_rate_free(struct api_rate *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static uint32_t
key_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The bucket of key, found or taken over, brought up to date at now. Called with mu held. */
static struct bucket *
bucket_get(struct api_rate *rl, const char *key, int rate, int64_t now)
{
    uint32_t h = key_hash(key);
    struct bucket *b, *oldest = NULL;
    int i;

    for (i = 0; i < RATE_PROBE; i++) {
        b = &rl->slots[(h + (uint32_t)i) % RATE_SLOTS];
        if (strcmp(b->key, key) == 0)
            goto found;
        if (oldest == NULL || b->key[0] == '\0' ||
            (oldest->key[0] != '\0' && b->at_ms < oldest->at_ms))
            oldest = b;
    }
    b = oldest;
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->tokens = rate;
    b->at_ms = now;
found:
    if (now > b->at_ms) {
        b->tokens += (double)(now - b->at_ms) * rate / 1000.0;
        if (b->tokens > rate)
            b->tokens = rate;
        b->at_ms = now;
    }
    return b;
}

/* "<kind>:<id>" into key (RATE_KEY_MAX bytes), id cut to fit; without printf (every request). */
static void
rate_key(char key[RATE_KEY_MAX], char kind, const char *id)
{
    size_t n = strnlen(id, RATE_KEY_MAX - 3);

    key[0] = kind;
    key[1] = ':';
    memcpy(key + 2, id, n);
    key[2 + n] = '\0';
}

/* x rounded up to a whole number (x >= 0). */
static int
ceil_int(double x)
{
    int i = (int)x;

    return (double)i < x ? i + 1 : i;
}

/* Seconds until b holds one token again, at least 1 (Retry-After). */
static int
wait_s(const struct bucket *b, int rate)
{
    double s = (1.0 - b->tokens) / rate;

    return s <= 1.0 ? 1 : ceil_int(s);
}

int
api_rate_check(struct api_req *r)
{
    struct api_rate *rl = r->ctx->rate;
    struct bucket *cred = NULL, *acct = NULL, *tight;
    char key[RATE_KEY_MAX];
    int64_t now;
    int limit, ok, retry;
    double remaining;

    if (rl == NULL)
        return 0;
    now = clock_mono_ms();
    pthread_mutex_lock(&rl->mu);
    if (rl->cfg.per_credential > 0) {
        rate_key(key, 'k', r->key.id);
        cred = bucket_get(rl, key, rl->cfg.per_credential, now);
    }
    if (rl->cfg.per_account > 0) {
        rate_key(key, 'a', r->key.account_id);
        acct = bucket_get(rl, key, rl->cfg.per_account, now);
    }
    ok = (cred == NULL || cred->tokens >= 1.0) && (acct == NULL || acct->tokens >= 1.0);
    if (ok) {
        if (cred != NULL)
            cred->tokens -= 1.0;
        if (acct != NULL)
            acct->tokens -= 1.0;
    }
    /* The headers speak of the bucket closest to empty. */
    tight = cred;
    limit = rl->cfg.per_credential;
    if (acct != NULL && (tight == NULL || acct->tokens / rl->cfg.per_account <
                                              tight->tokens / rl->cfg.per_credential)) {
        tight = acct;
        limit = rl->cfg.per_account;
    }
    if (tight == NULL) { /* both limits 0: api_server_start() makes no buckets then */
        pthread_mutex_unlock(&rl->mu);
        return 0;
    }
    remaining = tight->tokens < 0 ? 0 : tight->tokens;
    retry = wait_s(tight, limit);
    pthread_mutex_unlock(&rl->mu);

    api_header_add_int(r, "RateLimit-Limit", limit);
    api_header_add_int(r, "RateLimit-Remaining", (int)remaining);
    /* Seconds until the bucket is full again. */
    api_header_add_int(r, "RateLimit-Reset", ceil_int((limit - remaining) / limit));
    if (ok)
        return 0;
    snprintf(r->retry_after, sizeof(r->retry_after), "%d", retry);
    api_reply_error(r, ERR_RATE, NULL,
                    "rate limit: at most %d requests per second for this %s; retry after %d s",
                    limit, tight == acct ? "account" : "credential", retry);
    return ERR_RATE;
}
