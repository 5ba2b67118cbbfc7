/*
 * SQLite backend: the hand-off of a publish's deliveries to this process's
 * dispatcher, leased at insert (docs/internals/store.md, "Hand-off").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/secret.h"

void
sq_handoff_reset(struct sq_handoff *h)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        store_handoff_give(h->st, h->gen, h->cs[i].dlv.endpoint_id);
    claim_list_free(h->cs, h->n);
    free(h->src);
    h->cs = NULL;
    h->src = NULL;
    h->n = h->cap = 0;
}

static int
dup_or_null(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = strdup(s);
    return *out == NULL ? ERR_NOMEM : 0;
}

/* Copies s into out (size bytes), cut if longer; without printf, five times a delivery. */
static void
field_copy(char *out, size_t size, const char *s)
{
    size_t len = strnlen(s, size - 1);

    memcpy(out, s, len);
    out[len] = '\0';
}

/* Fills the delivery of claim cl: did of ev to endpoint ep, leased until lease_until. */
static void
claim_dlv(struct claim *cl, const struct event *ev, const char *ep, const char *did,
          int64_t lease_until)
{
    struct delivery *d = &cl->dlv;

    field_copy(d->id, sizeof(d->id), did);
    field_copy(d->event_id, sizeof(d->event_id), ev->id);
    field_copy(d->endpoint_id, sizeof(d->endpoint_id), ep);
    field_copy(d->account_id, sizeof(d->account_id), ev->account_id);
    field_copy(d->event_type, sizeof(d->event_type), ev->type);
    d->status = DELIVERY_DELIVERING;
    d->next_attempt_at = ev->created_at;
    d->lease_until = lease_until;
    d->lease_token = 1;
    d->created_at = d->updated_at = id_time_ms(did);
}

/* Fills claim cl's sending fields from endpoint e (as a claim: the old secret only in its grace). */
static int
claim_fields(struct claim *cl, const struct sq_cache_ep *e, int64_t now)
{
    int err;

    /* The same sealed values: store_handoff_deliver() opens each. */
    err = dup_or_null(e->url, &cl->url);
    if (err == 0)
        err = dup_or_null(e->secret, &cl->secret);
    if (err == 0 && e->prev_until > now)
        err = dup_or_null(e->prev_secret, &cl->prev_secret);
    return err;
}

/*
 * Room for one more hand-off in h. A publish of one event mostly hands off
 * one or two: the arrays start that small and double, not zeroed (a claim
 * is cleared when it is taken); zeroing room for 16 claims cost more than
 * the rest of the hand-off.
 */
static int
ho_grow(struct sq_handoff *h)
{
    size_t cap2 = h->cap == 0 ? 2 : 2 * h->cap;
    struct sq_handoff_src *src;
    struct claim *cs;

    cs = realloc(h->cs, cap2 * sizeof(*cs));
    if (cs == NULL)
        return ERR_NOMEM;
    h->cs = cs;
    src = realloc(h->src, cap2 * sizeof(*src));
    if (src == NULL)
        return ERR_NOMEM;
    h->src = src;
    h->cap = cap2;
    return 0;
}

int
sq_handoff_reserve(struct sq_conn *c, struct sq_handoff *h, const char *ep, int64_t *lease_until,
                   struct claim **out)
{
    struct sq_cache_ep row = {.live = -1}, *e;
    struct claim *cl;
    uint64_t gen;
    int64_t lease_ms, now;
    int cap, taken = 0, err = 0;

    if (h->st == NULL)
        return 0;
    taken = store_handoff_take(h->st, ep, &gen, &lease_ms, &cap);
    if (taken != 1)
        return taken;
    taken = 0;
    /* One registration per job: a new one meanwhile gets the rest claimed. */
    if (h->n > 0 && gen != h->gen)
        goto out;
    if (h->n == h->cap) {
        err = ho_grow(h);
        if (err != 0)
            goto out;
    }
    now = clock_now_ms();
    err = sq_cache_ep_get(c, ep, &row, &e);
    if (err != 0 || !e->sendable)
        goto out;
    /* A count that says full may be stale (leases ran out, results came): count again. */
    if (e->live < 0 || e->live >= cap) {
        err = sq_live_count(c, ep, now, &e->live);
        if (err != 0)
            goto out;
        e->live += h->unwritten; /* a hand-over of held ones moves them after its reservations */
    }
    if (e->live >= cap)
        goto out;
    /* Counted first, so that a reset gives back and frees what is filled. */
    h->gen = gen;
    cl = &h->cs[h->n];
    memset(cl, 0, sizeof(*cl));
    h->src[h->n].ev = NULL;
    h->n++;
    taken = 1;
    e->live++;
    *lease_until = now + lease_ms;
    *out = cl;
    err = claim_fields(cl, e, now);
out:
    sq_cache_ep_clear(&row);
    if (!taken)
        store_handoff_give(h->st, gen, ep);
    return err != 0 ? err : taken;
}

int
sq_handoff_try(struct sq_conn *c, struct sq_handoff *h, const struct event *ev, const char *ep,
               const char *did, int64_t *lease_until)
{
    struct claim *cl;
    int taken;

    taken = sq_handoff_reserve(c, h, ep, lease_until, &cl);
    if (taken == 1) {
        h->src[h->n - 1].ev = ev;
        claim_dlv(cl, ev, ep, did, *lease_until);
    }
    return taken;
}

void
sq_handoff_finish(struct sq_handoff *h, int result)
{
    const struct event *ev;
    struct claim *cl;
    size_t i;

    for (i = 0; i < h->n && result == 0; i++) {
        cl = &h->cs[i];
        ev = h->src[i].ev;
        if (ev == NULL)
            continue; /* its body came with its row (sq_held_hand.c) */
        cl->body = malloc(ev->body_len + 1);
        if (cl->body == NULL) {
            result = ERR_NOMEM; /* left to their leases, like a claim lost */
            break;
        }
        memcpy(cl->body, ev->body, ev->body_len);
        cl->body[ev->body_len] = '\0';
        cl->body_len = ev->body_len;
    }
    if (result != 0 || h->n == 0) {
        sq_handoff_reset(h);
        return;
    }
    store_handoff_deliver(h->st, h->gen, h->cs, h->n);
    h->cs = NULL;
    h->n = h->cap = 0;
    free(h->src);
    h->src = NULL;
}
