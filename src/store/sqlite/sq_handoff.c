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

/* The endpoint's sending fields, if it is enabled, and its deliveries under a live lease. */
static const char SQL_HO_ENDPOINT[] =
    "SELECT url, secret, prev_secret, prev_secret_until, "
    "(SELECT count(*) FROM deliveries INDEXED BY deliveries_in_flight "
    "WHERE endpoint_id = :ep AND status = 'delivering' AND lease_until > :now) "
    "FROM endpoints WHERE id = :ep AND status = 'enabled' AND deleted_at = 0";

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

#define RECENT_SCAN 16 /* earlier claims of the job looked at for the same endpoint */

/*
 * The latest of the job's last few claims to endpoint ep, or -1: nothing
 * else writes during a job, so its endpoint's row and live leases are those
 * it read, plus the job's own since.
 */
static long
recent_of(const struct sq_handoff *h, const char *ep)
{
    size_t i;

    for (i = h->n; i > 0 && h->n - i < RECENT_SCAN; i--) {
        if (strcmp(h->cs[i - 1].dlv.endpoint_id, ep) == 0)
            return (long)(i - 1);
    }
    return -1;
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

/* Fills the delivery of claim cl: did of ev to endpoint ep, leased until lease_until. */
static void
claim_dlv(struct claim *cl, const struct event *ev, const char *ep, const char *did,
          int64_t lease_until)
{
    struct delivery *d = &cl->dlv;

    snprintf(d->id, sizeof(d->id), "%s", did);
    snprintf(d->event_id, sizeof(d->event_id), "%s", ev->id);
    snprintf(d->endpoint_id, sizeof(d->endpoint_id), "%s", ep);
    snprintf(d->account_id, sizeof(d->account_id), "%s", ev->account_id);
    snprintf(d->event_type, sizeof(d->event_type), "%s", ev->type);
    d->status = DELIVERY_DELIVERING;
    d->next_attempt_at = ev->created_at;
    d->lease_until = lease_until;
    d->lease_token = 1;
    d->created_at = d->updated_at = id_time_ms(did);
}

/* Fills claim cl's sending fields from the endpoint's row in stmt. */
static int
claim_row(struct claim *cl, sqlite3_stmt *stmt, int64_t now)
{
    int err;

    err = sq_col_strdup(stmt, 0, &cl->url);
    if (err == 0)
        err = sq_col_strdup(stmt, 1, &cl->secret);
    /* As a claim: the old secret only while its grace period runs. */
    if (err == 0 && sqlite3_column_int64(stmt, 3) > now)
        err = sq_col_strdup(stmt, 2, &cl->prev_secret);
    return err;
}

int
sq_handoff_try(struct sq_conn *c, struct sq_handoff *h, const struct event *ev, const char *ep,
               const char *did, int64_t *lease_until)
{
    sqlite3_stmt *stmt = NULL;
    struct claim *cl;
    uint64_t gen;
    int64_t lease_ms, now;
    long recent;
    int cap, rc, live, taken = 0, err = 0;

    if (h->st == NULL || !store_handoff_take(h->st, ep, &gen, &lease_ms, &cap))
        return 0;
    /* One registration per job: a new one meanwhile gets the rest claimed. */
    if (h->n > 0 && gen != h->gen)
        goto out;
    if (h->n == h->cap) {
        size_t cap2 = h->cap;
        struct sq_handoff_src *src;

        err = store_grow(&h->cs, &cap2, h->n + 1, sizeof(*h->cs));
        if (err != 0)
            goto out;
        src = realloc(h->src, cap2 * sizeof(*src));
        if (src == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        h->src = src;
        h->cap = cap2;
    }
    now = clock_now_ms();
    recent = recent_of(h, ep);
    if (recent >= 0) {
        live = h->src[recent].live;
    } else {
        stmt = sq_stmt(c, SQL_HO_ENDPOINT);
        if (stmt == NULL) {
            err = ERR_STORE;
            goto out;
        }
        sq_bind_text(stmt, ":ep", ep);
        sq_bind_int(stmt, ":now", now);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            err = sq_err(c, rc, "reading an endpoint to hand off to");
        if (rc != SQLITE_ROW)
            goto out;
        live = sqlite3_column_int(stmt, 4);
    }
    if (live >= cap)
        goto out;
    /* Counted first, so that a reset gives back and frees what is filled. */
    h->gen = gen;
    cl = &h->cs[h->n];
    memset(cl, 0, sizeof(*cl));
    h->src[h->n].ev = ev;
    h->src[h->n].live = live + 1;
    h->n++;
    taken = 1;
    *lease_until = now + lease_ms;
    claim_dlv(cl, ev, ep, did, *lease_until);
    if (recent >= 0) {
        /* The same sealed values: store_handoff_deliver() opens each. */
        err = dup_or_null(h->cs[recent].url, &cl->url);
        if (err == 0)
            err = dup_or_null(h->cs[recent].secret, &cl->secret);
        if (err == 0)
            err = dup_or_null(h->cs[recent].prev_secret, &cl->prev_secret);
    } else {
        err = claim_row(cl, stmt, now);
    }
out:
    sq_done(stmt);
    if (!taken)
        store_handoff_give(h->st, gen, ep);
    return err != 0 ? err : taken;
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
