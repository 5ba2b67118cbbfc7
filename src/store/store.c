/*
 * The store's front: opens a backend by URL scheme, forwards every call to
 * its table of operations, wakes the dispatcher after changes that make work
 * due sooner, and holds the helpers every backend shares.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/catalog.h"
#include "store/rollup.h"
#include "store/store_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/strlist.h"

static const char *const delivery_names[DELIVERY__COUNT] = {
    [DELIVERY_PENDING] = "pending",
    [DELIVERY_DELIVERING] = "delivering",
    [DELIVERY_DELIVERED] = "delivered",
    [DELIVERY_FAILED] = "failed",
    [DELIVERY_HELD] = "held",
};

static const char *const error_class_names[ATTEMPT_ERROR__COUNT] = {
    [ATTEMPT_ERROR_NONE] = NULL,
    [ATTEMPT_ERROR_DNS] = "dns",
    [ATTEMPT_ERROR_CONNECT] = "connect",
    [ATTEMPT_ERROR_TLS] = "tls",
    [ATTEMPT_ERROR_TIMEOUT] = "timeout",
    [ATTEMPT_ERROR_PROTOCOL] = "protocol",
    [ATTEMPT_ERROR_RESET] = "reset",
    [ATTEMPT_ERROR_BLOCKED] = "blocked",
};

const char *
delivery_status_name(enum delivery_status s)
{
    if ((int)s < 0 || s >= DELIVERY__COUNT)
        return "unknown";
    return delivery_names[s];
}

int
delivery_status_parse(const char *s, enum delivery_status *out)
{
    int i;

    if (s == NULL)
        return ERR_INVAL;
    for (i = 0; i < DELIVERY__COUNT; i++) {
        if (strcmp(s, delivery_names[i]) == 0) {
            *out = (enum delivery_status)i;
            return 0;
        }
    }
    return ERR_INVAL;
}

const char *
attempt_error_class_name(enum attempt_error_class c)
{
    if ((int)c < 0 || c >= ATTEMPT_ERROR__COUNT)
        return NULL;
    return error_class_names[c];
}

int
attempt_error_class_parse(const char *s, enum attempt_error_class *out)
{
    int i;

    *out = ATTEMPT_ERROR_NONE;
    if (s == NULL)
        return 0;
    for (i = 1; i < ATTEMPT_ERROR__COUNT; i++) {
        if (strcmp(s, error_class_names[i]) == 0) {
            *out = (enum attempt_error_class)i;
            return 0;
        }
    }
    return ERR_INVAL;
}

const char *
endpoint_status_name(enum endpoint_status s)
{
    return s == ENDPOINT_DISABLED ? "disabled" : "enabled";
}

/* --- shared helpers --- */

int
store_id_floor(const char *prefix, int64_t ms, char out[ID_MAX])
{
    size_t plen = strlen(prefix);
    int err;

    if (ms < 0)
        ms = 0;
    err = id_new_at(prefix, ms, out);
    if (err != 0)
        return err;
    /* The last 16 characters are the 80 random bits: zero them. */
    memset(out + plen + 10, '0', 16);
    return 0;
}

void
store_types_free(char **types, size_t n)
{
    size_t i;

    if (types == NULL)
        return;
    for (i = 0; i < n; i++)
        free(types[i]);
    free(types);
}

int
store_types_split(const char *list, char ***types, size_t *n)
{
    char **v = NULL;
    size_t count = 0, cap = 0, len;
    const char *p = list == NULL ? "" : list, *start;
    int err = 0;

    while (strlist_next(&p, &start, &len)) {
        size_t i;
        int dup = 0;

        if (len == 0)
            continue;
        if (len >= EVENT_TYPE_MAX) {
            err = ERR_INVAL;
            goto out;
        }
        for (i = 0; i < count; i++) {
            if (strlen(v[i]) == len && memcmp(v[i], start, len) == 0)
                dup = 1;
        }
        if (dup)
            continue;
        if (count == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            char **nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                err = ERR_NOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        v[count] = strndup(start, len);
        if (v[count] == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        count++;
    }
out:
    if (err != 0) {
        store_types_free(v, count);
        v = NULL;
        count = 0;
    }
    *types = v;
    *n = count;
    return err;
}

int
store_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    void **p = arr;
    size_t ncap;
    void *nv;

    if (need <= *cap)
        return 0;
    ncap = *cap == 0 ? 16 : *cap;
    while (ncap < need)
        ncap *= 2;
    nv = realloc(*p, ncap * elem);
    if (nv == NULL)
        return ERR_NOMEM;
    memset((char *)nv + *cap * elem, 0, (ncap - *cap) * elem);
    *p = nv;
    *cap = ncap;
    return 0;
}

int
store_status_parse(const char *s)
{
    enum delivery_status v;

    if (delivery_status_parse(s, &v) != 0)
        return -1;
    return (int)v;
}

int64_t
store_rank(int p, int64_t n)
{
    int64_t r;

    if (n <= 0)
        return 0;
    r = (p * n + 99) / 100; /* ceil(p / 100 * n) */
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return r;
}

void
account_cleanup(struct account *a)
{
    if (a == NULL)
        return;
    free(a->name);
    memset(a, 0, sizeof(*a));
}

void
account_list_free(struct account *as, size_t n)
{
    size_t i;

    if (as == NULL)
        return;
    for (i = 0; i < n; i++)
        account_cleanup(&as[i]);
    free(as);
}

void
api_key_cleanup(struct api_key *k)
{
    if (k == NULL)
        return;
    free(k->name);
    memset(k, 0, sizeof(*k));
}

void
api_key_list_free(struct api_key *ks, size_t n)
{
    size_t i;

    if (ks == NULL)
        return;
    for (i = 0; i < n; i++)
        api_key_cleanup(&ks[i]);
    free(ks);
}

void
endpoint_cleanup(struct endpoint *ep)
{
    if (ep == NULL)
        return;
    free(ep->url);
    free(ep->description);
    free(ep->event_types);
    free(ep->disabled_reason);
    secret_free(ep->secret);
    secret_free(ep->prev_secret);
    memset(ep, 0, sizeof(*ep));
}

void
endpoint_list_free(struct endpoint *eps, size_t n)
{
    size_t i;

    if (eps == NULL)
        return;
    for (i = 0; i < n; i++)
        endpoint_cleanup(&eps[i]);
    free(eps);
}

void
event_list_free(struct event *evs, size_t n)
{
    size_t i;

    if (evs == NULL)
        return;
    for (i = 0; i < n; i++)
        event_cleanup(&evs[i]);
    free(evs);
}

void
delivery_cleanup(struct delivery *d)
{
    if (d == NULL)
        return;
    free(d->last_error);
    memset(d, 0, sizeof(*d));
}

void
delivery_list_free(struct delivery *ds, size_t n)
{
    size_t i;

    if (ds == NULL)
        return;
    for (i = 0; i < n; i++)
        delivery_cleanup(&ds[i]);
    free(ds);
}

void
attempt_cleanup(struct attempt *a)
{
    if (a == NULL)
        return;
    free(a->error);
    free(a->response_body);
    free(a->request_headers);
    free(a->response_headers);
    memset(a, 0, sizeof(*a));
}

void
attempt_list_free(struct attempt *as, size_t n)
{
    size_t i;

    if (as == NULL)
        return;
    for (i = 0; i < n; i++)
        attempt_cleanup(&as[i]);
    free(as);
}

void
claim_list_free(struct claim *cs, size_t n)
{
    size_t i;

    if (cs == NULL)
        return;
    for (i = 0; i < n; i++) {
        delivery_cleanup(&cs[i].dlv);
        free(cs[i].url);
        secret_free(cs[i].secret);
        secret_free(cs[i].prev_secret);
        free(cs[i].body);
    }
    free(cs);
}

/* --- opening and the wake-up callback --- */

static const struct store_ops *const backends[] = {
    &store_sqlite_ops,
    &store_pg_ops,
};

static const struct store_ops *
backend_find(const char *scheme)
{
    size_t i;

    for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        if (strcmp(backends[i]->scheme, scheme) == 0)
            return backends[i];
    }
    return NULL;
}

/*
 * Sizes the next chunk of a big move from the last one's write: as many
 * rows as fit STORE_CHUNK_BUDGET_US at its pace, at most twice as many as
 * before (one quick write is no promise), within the bounds.
 */
static void
chunk_pace(struct store_chunk *ck)
{
    int64_t next = 2 * ck->limit;

    if (ck->took_us > 0 && ck->limit * STORE_CHUNK_BUDGET_US / ck->took_us < next)
        next = ck->limit * STORE_CHUNK_BUDGET_US / ck->took_us;
    if (next < STORE_CHUNK_MIN)
        next = STORE_CHUNK_MIN;
    if (next > STORE_CHUNK_MAX)
        next = STORE_CHUNK_MAX;
    ck->limit = next;
}

/*
 * Moves the rest of endpoint id's held deliveries after a first chunk
 * (ck as that chunk left it), a chunk per write, waking the dispatcher after
 * each; adds what they moved to *count. Stops when a chunk moves fewer than
 * it could: none left, or the endpoint is no longer enabled.
 */
static int
held_move(struct store *st, const char *id, int skip_held, struct store_chunk *ck,
          int64_t *count)
{
    int err = 0;

    while (err == 0 && ck->moved == ck->limit) {
        chunk_pace(ck);
        err = st->ops->endpoint_held_chunk(st, id, skip_held, ck);
        *count += ck->moved;
        if (ck->moved > 0 && !skip_held)
            store_due_notify(st);
    }
    return err;
}

/*
 * Moves endpoint id's deliveries as its disable or delete asks
 * (endpoint_cut_chunk), a chunk per write, the first of STORE_CHUNK_MIN
 * rows, stamped now; adds how many to *count. Stops when a chunk moves
 * fewer than it could: none left, or the endpoint's state changed (an
 * enable came). Nothing to do for a backend that moved them with the flip.
 */
static int
cut_move(struct store *st, const char *id, int64_t now, int64_t *count)
{
    struct store_chunk ck = { .now = now };
    int err = 0;

    if (st->ops->endpoint_cut_chunk == NULL)
        return 0;
    while (err == 0 && ck.moved == ck.limit) {
        chunk_pace(&ck);
        err = st->ops->endpoint_cut_chunk(st, id, &ck);
        *count += ck.moved;
        atomic_fetch_add(&st->cut_chunks, 1);
        if (st->on_cut_chunk != NULL)
            st->on_cut_chunk(st->on_cut_chunk_arg);
    }
    return err;
}

/* Moves the rest of replay ck->replay after its first chunk, as held_move() does. */
static int
replay_move(struct store *st, struct store_chunk *ck, int64_t *count)
{
    int err = 0;

    while (err == 0 && ck->replay != 0) {
        chunk_pace(ck);
        err = st->ops->replay_chunk(st, ck);
        *count += ck->moved;
        if (ck->moved > 0)
            store_due_notify(st);
    }
    return err;
}

/*
 * Finishes what a crash cut short: the held deliveries of enabled endpoints
 * (an enable) are resumed and the replays left recorded go on, chunk by
 * chunk. A failure is logged and left for the next open (nothing is lost:
 * the deliveries stay held, the replay stays recorded).
 */
static void
cut_short_sweep(struct store *st)
{
    struct store_chunk ck;
    char id[ID_MAX];
    int64_t held = 0, replayed = 0, cut = 0, before, replay;
    int err = ERR_NOTFOUND;

    while (st->ops->endpoint_cut_next != NULL && (err = st->ops->endpoint_cut_next(st, id)) == 0) {
        before = cut;
        err = cut_move(st, id, clock_now_ms(), &cut);
        if (err != 0 || cut == before)
            break;
    }
    if (err != 0 && err != ERR_NOTFOUND)
        log_warnx("store: finishing a disable or delete cut short failed: %s", err_str(err));
    if (cut > 0)
        log_info("store: held or ended %lld deliveries of disabled or deleted endpoints "
                 "(a disable or delete cut short)",
                 (long long)cut);
    while ((err = st->ops->endpoint_held_next(st, id)) == 0) {
        /* As after an empty first chunk: held_move() starts at STORE_CHUNK_MIN. */
        ck = (struct store_chunk){ .now = clock_now_ms() };
        before = held;
        err = held_move(st, id, 0, &ck, &held);
        if (err != 0 || held == before)
            break;
    }
    if (err == 0 || err == ERR_NOTFOUND) {
        while ((err = st->ops->replay_next(st, &replay)) == 0) {
            ck = (struct store_chunk){ .now = clock_now_ms(), .replay = replay };
            err = replay_move(st, &ck, &replayed);
            if (err != 0)
                break;
        }
    }
    if (err != 0 && err != ERR_NOTFOUND)
        log_warnx("store: finishing what a crash cut short (an enable, a replay) failed: %s",
                  err_str(err));
    if (held > 0)
        log_info("store: resumed %lld held deliveries of enabled endpoints (an enable cut short)",
                 (long long)held);
    if (replayed > 0)
        log_info("store: replayed %lld deliveries of replays cut short", (long long)replayed);
}

int
store_open(const char *url, struct store **out)
{
    struct store *st = NULL;
    const struct store_ops *ops = NULL;
    size_t i;
    int err;

    *out = NULL;
    if (url == NULL) {
        err = ERR_INVAL;
        goto out;
    }
    for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t len = strlen(backends[i]->scheme);
        if (strncmp(url, backends[i]->scheme, len) == 0 && url[len] == ':')
            ops = backends[i];
    }
    /* libpq's other spelling of the same URL. */
    if (ops == NULL && strncmp(url, "postgresql://", 13) == 0)
        ops = backend_find("postgres");
    if (ops == NULL) {
        log_warnx("store: unknown database URL '%s': expected sqlite:PATH or postgres://...",
                  url);
        err = ERR_INVAL;
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    st->ops = ops;
    pthread_mutex_init(&st->due_lock, NULL);
    pthread_cond_init(&st->due_idle, NULL);
    store_handoff_init(st);
    err = ops->open(st, url);
    if (err != 0) {
        store_handoff_cleanup(st);
        pthread_cond_destroy(&st->due_idle);
        pthread_mutex_destroy(&st->due_lock);
        free(st);
        st = NULL;
        goto out;
    }
    cut_short_sweep(st);
    *out = st;
out:
    return err;
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    st->ops->close(st);
    store_handoff_cleanup(st);
    pthread_cond_destroy(&st->due_idle);
    pthread_mutex_destroy(&st->due_lock);
    free(st);
}

void
store_schema(struct store *st, int *version, int *applied)
{
    *version = st->schema_version;
    *applied = st->migrations_applied;
}

void
store_on_due(struct store *st, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&st->due_lock);
    st->on_due = fn;
    st->on_due_arg = arg;
    /*
     * A call that read the old callback may still be running it: wait, so
     * that the caller can free what the old arg points to. New calls see
     * the new callback; the count only drops, as none of them start on the old one.
     */
    while (st->due_calls > 0)
        pthread_cond_wait(&st->due_idle, &st->due_lock);
    pthread_mutex_unlock(&st->due_lock);
}

void
store_due_notify(struct store *st)
{
    void (*fn)(void *);
    void *arg;

    pthread_mutex_lock(&st->due_lock);
    fn = st->on_due;
    arg = st->on_due_arg;
    if (fn != NULL)
        st->due_calls++;
    pthread_mutex_unlock(&st->due_lock);
    if (fn == NULL)
        return;
    /* Called without due_lock, which store_on_due() may be waiting on. */
    fn(arg);
    pthread_mutex_lock(&st->due_lock);
    if (--st->due_calls == 0)
        pthread_cond_broadcast(&st->due_idle);
    pthread_mutex_unlock(&st->due_lock);
}

/* --- forwarding --- */

int
store_account_insert(struct store *st, const struct account *a)
{
    return st->ops->account_insert(st, a);
}

int
store_account_get(struct store *st, const char *id, struct account *out)
{
    return st->ops->account_get(st, id, out);
}

int
store_account_list(struct store *st, const char *after, int limit, struct account **out,
                   size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1 || limit > STORE_MAX_PAGE)
        return ERR_INVAL;
    return st->ops->account_list(st, after == NULL ? "" : after, limit, out, n);
}

int
store_is_empty(struct store *st)
{
    return st->ops->is_empty(st);
}

int
store_key_insert(struct store *st, const struct api_key *key)
{
    return st->ops->key_insert(st, key);
}

int
store_key_find(struct store *st, const char *hash_hex, struct api_key *out)
{
    return st->ops->key_find(st, hash_hex, out);
}

int
store_key_delete(struct store *st, const char *account_id, const char *id)
{
    return st->ops->key_delete(st, account_id, id);
}

int
store_key_list(struct store *st, const char *account_id, struct api_key **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return st->ops->key_list(st, account_id, out, n);
}

/* Opens the sealed secrets of eps (n of them) in place; 0 or ERR_*. */
static int
endpoints_open(struct store *st, struct endpoint *eps, size_t n)
{
    size_t i;
    int err = 0;

    for (i = 0; err == 0 && i < n; i++) {
        err = secrets_open(st, eps[i].id, &eps[i].secret);
        if (err == 0)
            err = secrets_open(st, eps[i].id, &eps[i].prev_secret);
    }
    return err;
}

int
store_key_touch(struct store *st, const char *id, int64_t now)
{
    return st->ops->key_touch(st, id, now);
}

int
store_key_rotate(struct store *st, const char *account_id, const char *id, const char *hash_hex,
                 int64_t prev_until)
{
    if (account_id == NULL || id == NULL || hash_hex == NULL || hash_hex[0] == '\0')
        return ERR_NOTFOUND;
    return st->ops->key_rotate(st, account_id, id, hash_hex, prev_until);
}

int
store_token_insert(struct store *st, const struct token *t)
{
    if (t == NULL || t->id[0] == '\0' || t->hash[0] == '\0' || t->family[0] == '\0')
        return ERR_INVAL;
    return st->ops->token_insert(st, t);
}

int
store_token_find(struct store *st, const char *hash_hex, struct token *out)
{
    memset(out, 0, sizeof(*out));
    if (hash_hex == NULL)
        return ERR_NOTFOUND;
    return st->ops->token_find(st, hash_hex, out);
}

int
store_token_use(struct store *st, const char *id, int64_t now)
{
    if (id == NULL)
        return ERR_NOTFOUND;
    return st->ops->token_use(st, id, now);
}

int
store_token_revoke(struct store *st, enum token_by by, const char *key, int64_t now)
{
    if (key == NULL || key[0] == '\0')
        return 0;
    return st->ops->token_revoke(st, by, key, now);
}

static const char *const token_kinds[] = {"access", "refresh", "portal_link", "portal_session"};

const char *
store_token_kind_name(enum token_kind k)
{
    return (unsigned)k < sizeof(token_kinds) / sizeof(token_kinds[0]) ? token_kinds[k] : "access";
}

enum token_kind
store_token_kind_parse(const char *s)
{
    size_t i;

    for (i = 0; s != NULL && i < sizeof(token_kinds) / sizeof(token_kinds[0]); i++) {
        if (strcmp(s, token_kinds[i]) == 0)
            return (enum token_kind)i;
    }
    return TOKEN_ACCESS;
}

int
store_endpoint_insert(struct store *st, const struct endpoint *ep)
{
    struct endpoint sealed = *ep;
    int err;

    sealed.secret = sealed.prev_secret = NULL;
    err = secrets_seal(st, ep->id, ep->secret, &sealed.secret);
    if (err == 0)
        err = secrets_seal(st, ep->id, ep->prev_secret, &sealed.prev_secret);
    if (err == 0)
        err = st->ops->endpoint_insert(st, &sealed);
    secret_free(sealed.secret);
    secret_free(sealed.prev_secret);
    return err;
}

/* store_endpoint_get() (held counted) or store_endpoint_find(). */
static int
endpoint_get(struct store *st, const char *account_id, const char *id, struct endpoint *out,
             int held)
{
    int err;

    err = st->ops->endpoint_get(st, account_id, id, out, held);
    if (err == 0 && (err = endpoints_open(st, out, 1)) != 0)
        endpoint_cleanup(out);
    return err;
}

int
store_endpoint_get(struct store *st, const char *account_id, const char *id,
                   struct endpoint *out)
{
    return endpoint_get(st, account_id, id, out, 1);
}

int
store_endpoint_find(struct store *st, const char *account_id, const char *id,
                    struct endpoint *out)
{
    return endpoint_get(st, account_id, id, out, 0);
}

/* After a list read that returned err: opens the secrets, or frees the list on failure. */
static int
endpoints_read(struct store *st, int err, struct endpoint **out, size_t *n)
{
    if (err == 0)
        err = endpoints_open(st, *out, *n);
    if (err != 0) {
        endpoint_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

int
store_endpoint_list_kind(struct store *st, const char *account_id, int operational,
                         const char *after, int limit, struct endpoint **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1 || limit > STORE_MAX_PAGE)
        return ERR_INVAL;
    return endpoints_read(st,
                          st->ops->endpoint_list(st, account_id, operational,
                                                 after == NULL ? "" : after, limit, out, n),
                          out, n);
}

int
store_endpoint_list(struct store *st, const char *account_id, const char *after, int limit,
                    struct endpoint **out, size_t *n)
{
    return store_endpoint_list_kind(st, account_id, 0, after, limit, out, n);
}

const char *
store_fanout_kind(const char *type)
{
    return catalog_own_find(type) != NULL ? "operational" : "customer";
}

int
store_endpoint_subscribed(struct store *st, const char *account_id, const char *type,
                          struct endpoint **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return endpoints_read(st, st->ops->endpoint_subscribed(st, account_id, type, out, n), out, n);
}

int
store_endpoint_update(struct store *st, const char *account_id, const char *id,
                      const struct endpoint_patch *p, int64_t now)
{
    if (p == NULL || (p->url == NULL && p->description == NULL && p->event_types == NULL))
        return p == NULL ? ERR_INVAL : 0;
    return st->ops->endpoint_update(st, account_id, id, p, now);
}

int
store_endpoint_rotate(struct store *st, const char *account_id, const char *id,
                      const char *secret, int64_t prev_until, int64_t now, struct endpoint *out)
{
    char *sealed = NULL;
    int err;

    if (secret == NULL || secret[0] == '\0' || prev_until < 0)
        return ERR_INVAL;
    err = secrets_seal(st, id, secret, &sealed);
    if (err == 0)
        err = st->ops->endpoint_rotate(st, account_id, id, sealed, prev_until, now);
    secret_free(sealed);
    if (err == 0 && out != NULL)
        err = store_endpoint_get(st, account_id, id, out);
    return err;
}

int
store_endpoint_delete(struct store *st, const char *account_id, const char *id)
{
    int64_t count = 0;
    int err;

    /* The flip first, then its deliveries ended in chunks (a crash: cut_short_sweep()). */
    err = st->ops->endpoint_delete(st, account_id, id);
    if (err == 0)
        err = cut_move(st, id, clock_now_ms(), &count);
    return err;
}

int
store_endpoint_disable(struct store *st, const char *account_id, const char *id,
                       const char *reason, int64_t now)
{
    int64_t count = 0;
    int err;

    /*
     * The flip first, then its pending deliveries held in chunks, so that
     * publishes interleave; meanwhile a claim holds any that comes due
     * (claim_divert()), and an enable stops the chunks.
     */
    err = st->ops->endpoint_disable(st, account_id, id, reason == NULL ? "" : reason, now);
    if (err == 0)
        err = cut_move(st, id, now, &count);
    return err;
}

int
store_endpoint_enable(struct store *st, const char *account_id, const char *id, int skip_held,
                      int64_t now, int64_t *resumed)
{
    struct store_chunk ck = { .limit = STORE_CHUNK_FIRST, .now = now };
    int64_t count = 0;
    int err;

    /*
     * The first chunk goes with the flip, and the dispatcher starts on it
     * while the rest follow, a short write each, so publishes interleave.
     * A disable in between stops them (the rest stay held); a crash in
     * between is finished by cut_short_sweep() at the next open.
     */
    err = st->ops->endpoint_enable(st, account_id, id, skip_held, &ck);
    count = ck.moved;
    if (err == 0 && ck.moved > 0 && !skip_held)
        store_due_notify(st);
    if (err == 0)
        err = held_move(st, id, skip_held, &ck, &count);
    if (resumed != NULL)
        *resumed = count;
    return err;
}

/* Fills in what a publish leaves to the store: id, created_at and timestamp. */
static int
publish_prepare(struct store_publish *it)
{
    struct event *ev = it->ev;
    int err;

    if (it->fanout) {
        it->eps = NULL;
        it->neps = 0;
    }
    if (ev == NULL || ev->body == NULL || (it->neps > 0 && it->eps == NULL) ||
        ev->account_id[0] == '\0' || ev->type[0] == '\0')
        return ERR_INVAL;
    if (ev->id[0] == '\0') {
        err = id_new("evt_", ev->id);
        if (err != 0)
            return err;
    }
    if (ev->created_at == 0)
        ev->created_at = clock_now_ms();
    if (ev->timestamp[0] == '\0')
        clock_format_rfc3339_s(ev->created_at, ev->timestamp);
    it->err = 0;
    it->handed = 0;
    it->waiting = 0;
    return 0;
}

/* Checks and prepares the items of a batch; 0 or ERR_*. */
static int
publish_items_prepare(struct store_publish *items, size_t n)
{
    size_t i;
    int err;

    if (n < 1 || n > STORE_MAX_BATCH)
        return ERR_INVAL;
    for (i = 0; i < n; i++) {
        err = publish_prepare(&items[i]);
        if (err != 0)
            return err;
        /* One account per batch: the backends take it from the first event. */
        if (strcmp(items[i].ev->account_id, items[0].ev->account_id) != 0)
            return ERR_INVAL;
    }
    return 0;
}

/* Wakes the dispatcher when a publish that ended with err made deliveries due. */
static void
publish_due_notify(struct store *st, const struct store_publish *items, size_t n, int err)
{
    size_t i, due = 0;

    /*
     * Deliveries handed to this process's dispatcher need no claim, and those
     * it declined as their endpoint is full here it looks for itself.
     */
    for (i = 0; i < n && err == 0; i++)
        due += items[i].err == 0
                   ? (size_t)(items[i].ev->deliveries - items[i].handed - items[i].waiting)
                   : 0;
    if (due > 0)
        store_due_notify(st);
}

int
store_event_publish_batch(struct store *st, struct store_publish *items, size_t n)
{
    int err;

    err = publish_items_prepare(items, n);
    if (err != 0)
        return err;
    err = st->ops->event_publish(st, items, n);
    publish_due_notify(st, items, n, err);
    return err;
}

/* One store_event_publish_async() under way: the caller's completion. */
struct publish_call {
    struct store *st;
    struct store_publish *items;
    size_t n;
    store_publish_done_fn *done;
    void *arg;
};

/* store_publish_done_fn of the backend: wakes the dispatcher, then the caller. */
static void
publish_call_done(void *arg, int err)
{
    struct publish_call *pc = arg;

    publish_due_notify(pc->st, pc->items, pc->n, err);
    pc->done(pc->arg, err);
    free(pc);
}

static _Thread_local int thread_nowait; /* store_thread_nowait() */

void
store_thread_nowait(int on)
{
    thread_nowait = on;
}

int
store_thread_may_wait(void)
{
    return !thread_nowait;
}

int
store_publish_async_supported(const struct store *st)
{
    return st->ops->event_publish_async != NULL;
}

int
store_event_publish_async(struct store *st, struct store_publish *items, size_t n,
                          store_publish_done_fn *done, void *arg)
{
    struct publish_call *pc;
    int err;

    if (st->ops->event_publish_async == NULL)
        return ERR_INTERNAL;
    err = publish_items_prepare(items, n);
    if (err != 0)
        return err;
    pc = malloc(sizeof(*pc));
    if (pc == NULL)
        return ERR_NOMEM;
    *pc = (struct publish_call){st, items, n, done, arg};
    err = st->ops->event_publish_async(st, items, n, publish_call_done, pc);
    if (err != 0)
        free(pc);
    return err;
}

int
store_event_publish(struct store *st, struct event *ev, const struct endpoint *eps, size_t n)
{
    struct store_publish it = {.ev = ev, .eps = eps, .neps = n};
    int err;

    err = store_event_publish_batch(st, &it, 1);
    return err != 0 ? err : it.err;
}

int
store_event_get(struct store *st, const char *account_id, const char *id, struct event *out)
{
    return st->ops->event_get(st, account_id, id, out);
}

int
store_event_list(struct store *st, const char *account_id, const char *type, const char *after,
                 int limit, struct event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1 || limit > STORE_MAX_PAGE)
        return ERR_INVAL;
    return st->ops->event_list(st, account_id, type, after, limit, out, n);
}

int
store_delivery_get(struct store *st, const char *account_id, const char *id,
                   struct delivery *out)
{
    return st->ops->delivery_get(st, account_id, id, out);
}

int
store_delivery_list(struct store *st, const char *account_id, const struct delivery_filter *f,
                    struct delivery **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (f == NULL || f->limit < 1 || f->limit > STORE_MAX_PAGE || f->status < -1 ||
        f->status >= DELIVERY__COUNT)
        return ERR_INVAL;
    return st->ops->delivery_list(st, account_id, f, out, n);
}

int
store_attempt_list(struct store *st, const char *delivery_id, struct attempt **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return st->ops->attempt_list(st, delivery_id, out, n);
}

int
store_delivery_retry(struct store *st, const char *account_id, const char *id, int64_t now)
{
    int err;

    err = st->ops->delivery_retry(st, account_id, id, now);
    if (err == 0)
        store_due_notify(st);
    return err;
}

int
store_endpoint_replay(struct store *st, const char *account_id, const char *endpoint_id,
                      int64_t since, int64_t until, int status, int64_t now, int64_t *count)
{
    struct store_chunk ck = { .limit = STORE_CHUNK_FIRST, .now = now };
    int64_t c = 0;
    int err;

    if (status < -1 || status >= DELIVERY__COUNT)
        return ERR_INVAL;
    if (account_id == NULL || endpoint_id == NULL)
        return ERR_NOTFOUND;
    /*
     * Up to now means up to the call: deliveries created while its chunks
     * run (a big replay takes seconds) are not taken, nor after a restart.
     */
    if (until <= 0)
        until = clock_now_ms() + 1;
    /* As enable: the first chunk at once, the rest a write each (a crash: cut_short_sweep()). */
    err = st->ops->endpoint_replay(st, account_id, endpoint_id, since, until, status, &ck);
    c = ck.moved;
    if (err == 0 && ck.moved > 0)
        store_due_notify(st);
    if (err == 0)
        err = replay_move(st, &ck, &c);
    if (count != NULL)
        *count = c;
    return err;
}

int
store_endpoint_replay_preview(struct store *st, const char *account_id, const char *endpoint_id,
                              int64_t since, int64_t until, int status, struct replay_preview *out)
{
    memset(out, 0, sizeof(*out));
    if (status < -1 || status >= DELIVERY__COUNT)
        return ERR_INVAL;
    if (account_id == NULL || endpoint_id == NULL)
        return ERR_NOTFOUND;
    return st->ops->endpoint_replay_preview(st, account_id, endpoint_id, since, until, status, out);
}

/*
 * A claim whose secret does not open cannot be signed: gives the whole batch
 * back (due now; the dispatcher tries again at its next poll, by when a
 * key ring file may hold the key) and frees it.
 */
static void
claim_give_back(struct store *st, struct claim **cs, size_t *n)
{
    const char **ids = calloc(*n, sizeof(*ids));
    int64_t *tokens = calloc(*n, sizeof(*tokens));
    size_t i;

    if (ids != NULL && tokens != NULL) {
        for (i = 0; i < *n; i++) {
            ids[i] = (*cs)[i].dlv.id;
            tokens[i] = (*cs)[i].dlv.lease_token;
        }
        st->ops->release(st, ids, tokens, *n);
    }
    free(ids);
    free(tokens);
    claim_list_free(*cs, *n);
    *cs = NULL;
    *n = 0;
}

int
store_claim(struct store *st, int64_t now, int64_t lease_ms, int max, int per_endpoint,
            const char *const *exclude, size_t nexclude, struct claim **out, size_t *n)
{
    int err;

    *out = NULL;
    *n = 0;
    if (max <= 0)
        return 0;
    if ((nexclude > 0 && exclude == NULL) || lease_ms <= 0)
        return ERR_INVAL;
    err = st->ops->claim(st, now, lease_ms, max, per_endpoint, exclude, nexclude, out, n);
    if (err == 0)
        err = secrets_open_claims(st, *out, *n);
    if (err != 0 && *n > 0)
        claim_give_back(st, out, n);
    return err;
}

int
store_results_apply(struct store *st, const struct attempt_result *rs, size_t n, int64_t now)
{
    size_t fenced = 0, i;
    int err;

    if (n == 0)
        return 0;
    err = st->ops->results_apply(st, rs, n, now, &fenced);
    if (err == 0)
        store_handoff_results(st); /* an enable handing over may find room */
    /*
     * An endpoint the results disabled: its pending deliveries are held
     * after their transaction, in chunks (outside it, so that publishes
     * interleave). A failure leaves them to claims (each held as it comes
     * due) and to the next open; the results are recorded either way.
     */
    for (i = 0; i < n && err == 0; i++) {
        int64_t count = 0;
        int cut_err;

        if (!rs[i].disable_endpoint || rs[i].endpoint_id == NULL)
            continue;
        cut_err = cut_move(st, rs[i].endpoint_id, now, &count);
        if (cut_err != 0)
            log_warnx("store: holding the deliveries of disabled endpoint=%s failed: %s",
                      rs[i].endpoint_id, err_str(cut_err));
    }
    if (err == 0 && fenced > 0)
        atomic_fetch_add(&st->fenced, (uint64_t)fenced);
    return err;
}

uint64_t
store_fenced_count(struct store *st)
{
    return atomic_load(&st->fenced);
}

int
store_ping(struct store *st)
{
    return st->ops->ping(st);
}

int
store_release(struct store *st, const char *const *delivery_ids, const int64_t *tokens,
              size_t n)
{
    if (n == 0)
        return 0;
    return st->ops->release(st, delivery_ids, tokens, n);
}

int
store_next_due(struct store *st, int64_t *when)
{
    *when = 0;
    return st->ops->next_due(st, when);
}

void
store_writer_stats(struct store *st, struct store_writer_stats *out)
{
    memset(out, 0, sizeof(*out));
    st->ops->writer_stats(st, out);
}

int
store_count_by_status(struct store *st, int64_t out[DELIVERY__COUNT])
{
    memset(out, 0, sizeof(int64_t) * DELIVERY__COUNT);
    return st->ops->count_by_status(st, out);
}

int
store_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
            struct stats *out)
{
    memset(out, 0, sizeof(*out));
    out->p50_ms = out->p95_ms = out->p99_ms = -1;
    return st->ops->stats(st, account_id, endpoint_id, since, out);
}

int
store_stats_series(struct store *st, const char *account_id, const char *endpoint_id,
                   int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                   size_t *n)
{
    *out = NULL;
    *n = 0;
    if (bucket_ms <= 0 || now < since || (now - since) / bucket_ms >= STORE_MAX_BUCKETS)
        return ERR_INVAL;
    /* The rollups hold minutes and hours. */
    if ((bucket_ms != ROLLUP_MINUTE_MS && bucket_ms != ROLLUP_HOUR_MS) || since % bucket_ms != 0)
        return ERR_INVAL;
    return st->ops->stats_series(st, account_id, endpoint_id, since, bucket_ms, now, out, n);
}

int
store_audit_insert(struct store *st, const struct audit_entry *e)
{
    return st->ops->audit_insert(st, e);
}

int
store_audit_list(struct store *st, const char *account_id, const struct audit_filter *f,
                 struct audit_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (f == NULL || f->limit < 1 || f->limit > STORE_MAX_PAGE)
        return ERR_INVAL;
    return st->ops->audit_list(st, account_id, f, out, n);
}

void
audit_entry_list_free(struct audit_entry *es, size_t n)
{
    size_t i;

    for (i = 0; es != NULL && i < n; i++)
        free(es[i].details);
    free(es);
}

int
store_purge(struct store *st, int64_t before, int limit, struct store_purge_report *out)
{
    memset(out, 0, sizeof(*out));
    if (limit < 1)
        return ERR_INVAL;
    return st->ops->purge(st, before, limit, out);
}
