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
    free(h->evs);
    h->cs = NULL;
    h->evs = NULL;
    h->n = h->cap = 0;
}

/* Fills the claim of delivery did of ev to endpoint ep from the endpoint's row in stmt. */
static int
claim_fill(struct claim *cl, sqlite3_stmt *stmt, const struct event *ev, const char *ep,
           const char *did, int64_t now, int64_t lease_until)
{
    struct delivery *d = &cl->dlv;
    int err;

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
    uint64_t gen;
    int64_t lease_ms, now;
    int cap, rc, taken = 0, err = 0;

    if (h->st == NULL || !store_handoff_take(h->st, ep, &gen, &lease_ms, &cap))
        return 0;
    /* One registration per job: a new one meanwhile gets the rest claimed. */
    if (h->n > 0 && gen != h->gen)
        goto out;
    if (h->n == h->cap) {
        size_t cap2 = h->cap;
        const struct event **evs;

        err = store_grow(&h->cs, &cap2, h->n + 1, sizeof(*h->cs));
        if (err != 0)
            goto out;
        evs = realloc(h->evs, cap2 * sizeof(*evs));
        if (evs == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        h->evs = evs;
        h->cap = cap2;
    }
    stmt = sq_stmt(c, SQL_HO_ENDPOINT);
    if (stmt == NULL) {
        err = ERR_STORE;
        goto out;
    }
    now = clock_now_ms();
    sq_bind_text(stmt, ":ep", ep);
    sq_bind_int(stmt, ":now", now);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_int(stmt, 4) < cap) {
        /* Counted first, so that a reset gives back and frees what is filled. */
        h->gen = gen;
        h->evs[h->n] = ev;
        memset(&h->cs[h->n], 0, sizeof(h->cs[h->n]));
        h->n++;
        taken = 1;
        *lease_until = now + lease_ms;
        err = claim_fill(&h->cs[h->n - 1], stmt, ev, ep, did, now, *lease_until);
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = sq_err(c, rc, "reading an endpoint to hand off to");
    }
    sq_done(stmt);
out:
    if (!taken)
        store_handoff_give(h->st, gen, ep);
    return err != 0 ? err : taken;
}

void
sq_handoff_finish(struct sq_handoff *h, int result)
{
    struct claim *cl;
    size_t i;

    for (i = 0; i < h->n && result == 0; i++) {
        cl = &h->cs[i];
        cl->body = malloc(h->evs[i]->body_len + 1);
        if (cl->body == NULL) {
            result = ERR_NOMEM; /* left to their leases, like a claim lost */
            break;
        }
        memcpy(cl->body, h->evs[i]->body, h->evs[i]->body_len);
        cl->body[h->evs[i]->body_len] = '\0';
        cl->body_len = h->evs[i]->body_len;
    }
    if (result != 0 || h->n == 0) {
        sq_handoff_reset(h);
        return;
    }
    store_handoff_deliver(h->st, h->gen, h->cs, h->n);
    h->cs = NULL;
    h->n = h->cap = 0;
    free(h->evs);
    h->evs = NULL;
}
