/*
 * Hand-off: the registration of this process's dispatcher with its store
 * (store_on_handoff) and the calls a backend's publish makes through it.
 * See docs/internals/store.md, "Hand-off".
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

void
store_handoff_init(struct store *st)
{
    pthread_mutex_init(&st->ho_lock, NULL);
    pthread_cond_init(&st->ho_idle, NULL);
    clock_mono_cond_init(&st->ho_room);
    st->ho_results = 0;
    memset(&st->ho, 0, sizeof(st->ho));
    st->ho_gen = 0;
    st->ho_calls = 0;
}

void
store_handoff_cleanup(struct store *st)
{
    pthread_cond_destroy(&st->ho_idle);
    pthread_cond_destroy(&st->ho_room);
    pthread_mutex_destroy(&st->ho_lock);
}

void
store_on_handoff(struct store *st, const struct store_handoff *h)
{
    pthread_mutex_lock(&st->ho_lock);
    if (h != NULL && h->take != NULL && h->give != NULL && h->deliver != NULL && h->lease_ms > 0 &&
        h->per_endpoint > 0)
        st->ho = *h;
    else
        memset(&st->ho, 0, sizeof(st->ho));
    st->ho_gen++;
    /* As store_on_due(): a call that read the old hooks may still run them. */
    while (st->ho_calls > 0)
        pthread_cond_wait(&st->ho_idle, &st->ho_lock);
    pthread_mutex_unlock(&st->ho_lock);
}

int
store_handoff_active(struct store *st)
{
    int on;

    pthread_mutex_lock(&st->ho_lock);
    on = st->ho.take != NULL;
    pthread_mutex_unlock(&st->ho_lock);
    return on;
}

void
store_handoff_results(struct store *st)
{
    pthread_mutex_lock(&st->ho_lock);
    st->ho_results++;
    pthread_cond_broadcast(&st->ho_room);
    pthread_mutex_unlock(&st->ho_lock);
}

int
store_handoff_room_wait(struct store *st, uint64_t *seen, int ms)
{
    struct timespec until;
    int rc = 0;

    clock_mono_deadline(&until, ms);
    pthread_mutex_lock(&st->ho_lock);
    while (st->ho_results == *seen && rc == 0)
        rc = pthread_cond_timedwait(&st->ho_room, &st->ho_lock, &until);
    rc = st->ho_results != *seen;
    *seen = st->ho_results;
    pthread_mutex_unlock(&st->ho_lock);
    return rc;
}

/*
 * Copies the registration into *h and counts a call when it is gen's (or
 * any, with gen 0 and *cur set). Returns 1 when the caller must call
 * call_end(), 0 when there is nothing to call.
 */
static int
call_begin(struct store *st, uint64_t gen, struct store_handoff *h, uint64_t *cur)
{
    int ok;

    pthread_mutex_lock(&st->ho_lock);
    ok = st->ho.take != NULL && (gen == 0 || gen == st->ho_gen);
    if (ok) {
        *h = st->ho;
        if (cur != NULL)
            *cur = st->ho_gen;
        st->ho_calls++;
    }
    pthread_mutex_unlock(&st->ho_lock);
    return ok;
}

static void
call_end(struct store *st)
{
    pthread_mutex_lock(&st->ho_lock);
    if (--st->ho_calls == 0)
        pthread_cond_broadcast(&st->ho_idle);
    pthread_mutex_unlock(&st->ho_lock);
}

int
store_handoff_take(struct store *st, const char *endpoint_id, uint64_t *gen, int64_t *lease_ms,
                   int *per_endpoint)
{
    struct store_handoff h;
    int taken;

    if (!call_begin(st, 0, &h, gen))
        return 0;
    taken = h.take(h.arg, endpoint_id);
    call_end(st);
    *lease_ms = h.lease_ms;
    *per_endpoint = h.per_endpoint;
    return taken;
}

void
store_handoff_give(struct store *st, uint64_t gen, const char *endpoint_id)
{
    struct store_handoff h;

    if (!call_begin(st, gen, &h, NULL))
        return;
    h.give(h.arg, endpoint_id);
    call_end(st);
}

/*
 * call_begin() for handing over the n claims cs: 1 when the caller hands
 * them and calls call_end(); 0 when there are none or gen's dispatcher is
 * gone (cs freed: their leases run out).
 */
static int
deliver_begin(struct store *st, uint64_t gen, struct store_handoff *h, struct claim *cs, size_t n)
{
    if (n == 0) {
        free(cs);
        return 0;
    }
    if (!call_begin(st, gen, h, NULL)) {
        claim_list_free(cs, n);
        return 0;
    }
    return 1;
}

/*
 * The claims a thread's hold keeps (store_handoff_hold()), all for one
 * store and registration, with their secrets open: handed over together.
 */
struct held {
    int depth;
    struct store *st;
    uint64_t gen;
    struct claim *cs;
    size_t n, cap;
    struct secrets_memo memo; /* each endpoint's secrets opened once per hold */
};

static _Thread_local struct held held;

/* Hands cs (taken, secrets open) to gen's registration, or frees them if it is gone. */
static void
deliver_now(struct store *st, uint64_t gen, struct claim *cs, size_t n)
{
    struct store_handoff h;

    if (!deliver_begin(st, gen, &h, cs, n))
        return;
    h.deliver(h.arg, cs, n);
    call_end(st);
}

/* Hands over what this thread's hold keeps. */
static void
held_flush(void)
{
    struct claim *cs = held.cs;
    size_t n = held.n;

    held.cs = NULL;
    held.n = held.cap = 0;
    deliver_now(held.st, held.gen, cs, n); /* none: frees cs */
}

/*
 * Keeps cs (taken, secrets open) for the end of this thread's hold. Returns
 * 0, or ERR_NOMEM (cs left with the caller).
 */
static int
held_add(struct store *st, uint64_t gen, struct claim *cs, size_t n)
{
    struct claim *grown;
    size_t cap;

    if (held.n > 0 && (held.st != st || held.gen != gen))
        held_flush();
    if (held.n + n > held.cap) {
        cap = held.cap > 0 ? held.cap * 2 : 64;
        if (cap < held.n + n)
            cap = held.n + n;
        grown = realloc(held.cs, cap * sizeof(*grown));
        if (grown == NULL)
            return ERR_NOMEM;
        held.cs = grown;
        held.cap = cap;
    }
    memcpy(&held.cs[held.n], cs, n * sizeof(*cs));
    held.n += n;
    held.st = st;
    held.gen = gen;
    free(cs);
    return 0;
}

void
store_handoff_hold(void)
{
    held.depth++;
}

void
store_handoff_release(void)
{
    if (held.depth == 0 || --held.depth > 0)
        return;
    held_flush();
    secrets_memo_clear(&held.memo);
}

void
store_handoff_deliver(struct store *st, uint64_t gen, struct claim *cs, size_t n)
{
    struct store_handoff h;
    size_t i;
    int err = 0;

    if (!deliver_begin(st, gen, &h, cs, n))
        return;
    /* Held: the publishes of one sync are mostly one endpoint's; its secret opens once. */
    err = held.depth > 0 ? secrets_open_claims_memo(st, cs, n, &held.memo)
                         : secrets_open_claims(st, cs, n);
    if (err != 0) {
        /*
         * Not signable (a key missing from the ring): as a claim's, which
         * secrets_open() logged. Written by no one here (this runs where a
         * write cannot be waited for), they are claimed again once their
         * leases run out.
         */
        for (i = 0; i < n; i++)
            h.give(h.arg, cs[i].dlv.endpoint_id);
        claim_list_free(cs, n);
    } else if (held.depth == 0 || held_add(st, gen, cs, n) != 0) {
        h.deliver(h.arg, cs, n);
    }
    call_end(st);
}
