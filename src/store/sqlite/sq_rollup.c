/*
 * SQLite backend: keeping the statistics rollups (store/rollup.h). Writes
 * note what they change on the writer's connection; the notes of a job that
 * fails are dropped with its writes, and the rest are summed into the
 * rollup rows (minute and hour) just before the transaction commits.
 */
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "store/sqlite/sq_int.h"
#include "util/err.h"

/*
 * Each note adds to its endpoint's row, and the account's notes (summed over
 * its endpoints first) to the account's row, keyed by the account id: an
 * UPDATE of the row, and an INSERT when there is none yet (the first note
 * of its minute or hour). An upsert (INSERT ... ON CONFLICT DO UPDATE) costs
 * a second seek of the row it finds, and nearly every note finds one. The
 * row's latency histogram is added to in the same statement (sq_lat.c,
 * migration 019). The parameters are numbered, the same in both statements:
 * the writer binds them once, by position.
 */
static const char SQL_ROLL_BUMP[] =
    "UPDATE stat_rollups SET d_open = d_open + ?5, d_delivered = d_delivered + ?6, "
    "d_failed = d_failed + ?7, d_held = d_held + ?8, a_total = a_total + ?9, "
    "a_ok = a_ok + ?10, a_failed = a_failed + ?11, a_retried = a_retried + ?12, "
    "lat = lat_add(lat, ?13) WHERE endpoint_id = ?1 AND span = ?2 AND start = ?3";
static const char SQL_ROLL_NEW[] =
    "INSERT INTO stat_rollups (endpoint_id, span, start, account_id, d_open, d_delivered, "
    "d_failed, d_held, a_total, a_ok, a_failed, a_retried, lat) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char SQL_ROLL_ACCOUNT[] = "SELECT account_id FROM endpoints WHERE id = ?1";
/* An endpoint's count of held deliveries (migration 017) follows its notes' d_held. */
static const char SQL_HELD_ADD[] =
    "INSERT INTO endpoint_held (endpoint_id, n) VALUES (?1, ?2) "
    "ON CONFLICT (endpoint_id) DO UPDATE SET n = n + excluded.n";

/* An endpoint noted in the open transaction, with its account ("" when it has none). */
struct ep_acct {
    char ep[ID_MAX];
    char acct[ID_MAX];
};

/*
 * The accounts of endpoints the writer has read, by a hash of the endpoint
 * id: each is looked for in ACCT_PROBE slots from its hash's and kept in the
 * first free one (else its hash's). An endpoint's account never changes and
 * its row is never deleted (a deletion marks it), so an entry never goes
 * stale, whichever process wrote since; an endpoint not found is not kept.
 */
#define ACCT_SLOTS 1024
#define ACCT_PROBE 4

struct sq_roll_acct {
    struct ep_acct slot[ACCT_SLOTS];
};

/* ep's slot, holding it or where to keep it; NULL when the slots cannot be had. */
static struct ep_acct *
acct_slot(struct sq_conn *c, const char *ep)
{
    struct ep_acct *s, *free_slot = NULL;
    uint32_t h = 2166136261u; /* FNV-1a */
    const char *p;
    int i;

    if (c->roll_accts == NULL) {
        c->roll_accts = calloc(1, sizeof(*c->roll_accts));
        if (c->roll_accts == NULL)
            return NULL; /* read from the store every time */
    }
    for (p = ep; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (i = 0; i < ACCT_PROBE; i++) {
        s = &c->roll_accts->slot[(h + (uint32_t)i) % ACCT_SLOTS];
        if (strcmp(s->ep, ep) == 0)
            return s;
        if (free_slot == NULL && s->ep[0] == '\0')
            free_slot = s;
    }
    return free_slot != NULL ? free_slot : &c->roll_accts->slot[h % ACCT_SLOTS];
}

static int
same_key(const struct sq_roll_note *a, const struct sq_roll_note *b)
{
    return a->start == b->start && a->bucket == b->bucket && strcmp(a->ep, b->ep) == 0;
}

/*
 * Appends a note, or adds it to the last one when they share a key (a set
 * of rows in id order mostly falls in one minute).
 */
static void
note_add(struct sq_conn *c, const char *ep, int64_t at, int bucket, const int64_t *v)
{
    struct sq_roll_note key, *last;
    int i;

    memset(&key, 0, sizeof(key));
    strncpy(key.ep, ep, sizeof(key.ep) - 1);
    key.start = at - at % ROLLUP_MINUTE_MS;
    key.bucket = bucket;
    last = c->roll_n > 0 ? &c->roll[c->roll_n - 1] : NULL;
    if (last == NULL || c->roll_n == c->roll_mark || !same_key(last, &key)) {
        if (store_grow(&c->roll, &c->roll_cap, c->roll_n + 1, sizeof(*c->roll)) != 0) {
            /* Counted as lost: the commit fails rather than the rollup drifting. */
            c->roll_lost = 1;
            return;
        }
        last = &c->roll[c->roll_n++];
        *last = key;
    }
    for (i = 0; i < SQ_ROLL_NV; i++)
        last->v[i] += v[i];
}

void
sq_roll_move(struct sq_conn *c, const char *ep, int64_t created, int from, int to, int64_t n)
{
    int64_t v[SQ_ROLL_NV] = { 0 };
    int cf = rollup_class(from), ct = rollup_class(to);

    if (cf == ct || n == 0)
        return;
    if (cf >= 0)
        v[cf] -= n;
    if (ct >= 0)
        v[ct] += n;
    note_add(c, ep, created, -1, v);
}

void
sq_roll_attempt(struct sq_conn *c, const char *ep, int64_t at, int status_code, int outcome,
                int64_t duration_ms)
{
    int64_t v[SQ_ROLL_NV] = { 0 };

    v[4] = 1;
    v[5] = status_code >= 200 && status_code <= 299;
    v[6] = outcome == DELIVERY_FAILED;
    v[7] = outcome == DELIVERY_PENDING || outcome == DELIVERY_HELD;
    note_add(c, ep, at, -1, v);
    memset(v, 0, sizeof(v));
    v[0] = 1;
    note_add(c, ep, at, rollup_bucket(duration_ms), v);
}

void
sq_roll_mark(struct sq_conn *c)
{
    c->roll_mark = c->roll_n;
}

void
sq_roll_undo(struct sq_conn *c)
{
    c->roll_n = c->roll_mark;
}

void
sq_roll_reset(struct sq_conn *c)
{
    c->roll_n = c->roll_mark = 0;
    c->roll_lost = 0;
}

static int
note_cmp(const void *pa, const void *pb)
{
    const struct sq_roll_note *a = pa, *b = pb;
    int r = strcmp(a->ep, b->ep);

    if (r != 0)
        return r;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

/* Sums the notes on the same key (after sorting), leaving the sums in front. */
static size_t
notes_merge(struct sq_roll_note *ns, size_t n)
{
    size_t i, out = 0;
    int k;

    if (n == 0)
        return 0;
    qsort(ns, n, sizeof(*ns), note_cmp);
    for (i = 0; i < n; i++) {
        if (out > 0 && same_key(&ns[out - 1], &ns[i])) {
            for (k = 0; k < SQ_ROLL_NV; k++)
                ns[out - 1].v[k] += ns[i].v[k];
        } else {
            ns[out++] = ns[i];
        }
    }
    return out;
}

/* A row's change: its counts, and the latency notes summed as a blob. */
struct roll_row {
    int64_t v[SQ_ROLL_NV];
    unsigned char lat[SQ_LAT_MAX];
    size_t lat_len;
};

/* Binds row r of note key k (its endpoint or account) and span to stmt. */
static void
row_bind(sqlite3_stmt *stmt, const struct sq_roll_note *k, int64_t span, const char *acct,
         const struct roll_row *r)
{
    int i;

    sqlite3_bind_text(stmt, 1, k->ep, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, span);
    sqlite3_bind_int64(stmt, 3, k->start);
    sqlite3_bind_text(stmt, 4, acct, -1, SQLITE_STATIC);
    for (i = 0; i < SQ_ROLL_NV; i++)
        sqlite3_bind_int64(stmt, 5 + i, r->v[i]);
    if (r->lat_len > 0)
        sqlite3_bind_blob64(stmt, 13, r->lat, r->lat_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 13);
}

/* Steps stmt, bound by row_bind(); returns 0 and *changed (rows it wrote), or ERR_*. */
static int
row_step(struct sq_conn *c, sqlite3_stmt *stmt, int *changed)
{
    int rc = sqlite3_step(stmt);

    *changed = rc == SQLITE_DONE ? sqlite3_changes(c->db) : 0;
    sq_done(stmt);
    return rc == SQLITE_DONE ? 0 : sq_err(c, rc, "adding to the statistics");
}

/* The end of the group of merged notes ns[i..n) on one row (endpoint and minute or hour). */
static size_t
group_end(const struct sq_roll_note *ns, size_t n, size_t i)
{
    size_t j = i + 1;

    while (j < n && ns[j].start == ns[i].start && strcmp(ns[j].ep, ns[i].ep) == 0)
        j++;
    return j;
}

/*
 * Writes the merged notes g[0..n) of one row (its counts first, then its
 * latency buckets in ascending order: note_cmp's order) for span.
 */
static int
group_write(struct sq_conn *c, struct roll_row *r, const struct sq_roll_note *g, size_t n,
            int64_t span, const char *acct)
{
    sqlite3_stmt *stmt;
    size_t i;
    int k, changed = 0, zero = 1, err;

    memset(r->v, 0, sizeof(r->v));
    r->lat_len = 0;
    for (i = 0; i < n; i++) {
        if (g[i].bucket < 0) {
            for (k = 0; k < SQ_ROLL_NV; k++)
                r->v[k] += g[i].v[k];
        } else {
            r->lat_len += sq_lat_put(r->lat + r->lat_len, g[i].bucket, g[i].v[0]);
        }
    }
    for (k = 0; k < SQ_ROLL_NV; k++)
        zero = zero && r->v[k] == 0;
    if (zero && r->lat_len == 0)
        return 0;
    stmt = sq_stmt(c, SQL_ROLL_BUMP);
    if (stmt == NULL)
        return ERR_STORE;
    row_bind(stmt, g, span, acct, r);
    err = row_step(c, stmt, &changed);
    if (err != 0 || changed > 0)
        return err;
    stmt = sq_stmt(c, SQL_ROLL_NEW);
    if (stmt == NULL)
        return ERR_STORE;
    row_bind(stmt, g, span, acct, r);
    return row_step(c, stmt, &changed);
}

/*
 * The accounts of the endpoints in the merged notes ns (sorted by endpoint):
 * from the writer's slots, else one read per endpoint (kept in its slot).
 * Returns 0 and *out (*nout of them, sorted), or ERR_*.
 */
static int
accounts_read(struct sq_conn *c, const struct sq_roll_note *ns, size_t n, struct ep_acct **out,
              size_t *nout)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_ROLL_ACCOUNT);
    struct ep_acct *as, *known;
    size_t i, k = 0;
    int rc, err = 0;

    *out = NULL;
    *nout = 0;
    if (stmt == NULL)
        return ERR_STORE;
    as = calloc(n > 0 ? n : 1, sizeof(*as));
    if (as == NULL)
        return ERR_NOMEM;
    for (i = 0; i < n && err == 0; i++) {
        if (k > 0 && strcmp(as[k - 1].ep, ns[i].ep) == 0)
            continue;
        memcpy(as[k].ep, ns[i].ep, ID_MAX);
        known = acct_slot(c, ns[i].ep);
        if (known != NULL && strcmp(known->ep, ns[i].ep) == 0) {
            memcpy(as[k++].acct, known->acct, ID_MAX);
            continue;
        }
        sqlite3_bind_text(stmt, 1, ns[i].ep, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            sq_col_copy(stmt, 0, as[k].acct, sizeof(as[k].acct));
            if (known != NULL && as[k].acct[0] != '\0')
                *known = as[k];
        } else if (rc != SQLITE_DONE) {
            err = sq_err(c, rc, "reading an endpoint's account");
        }
        sq_done(stmt);
        k++;
    }
    if (err != 0) {
        free(as);
        return err;
    }
    *out = as;
    *nout = k;
    return 0;
}

static int
acct_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct ep_acct *)elem)->ep);
}

/*
 * Writes the n merged endpoint notes at the front of c->roll (which has room
 * for 2n) for span, one statement per row, then their sums per account,
 * built behind them.
 */
static int
span_write(struct sq_conn *c, struct roll_row *r, size_t n, const struct ep_acct *as,
           size_t nas, int64_t span)
{
    struct sq_roll_note *ns = c->roll;
    const struct ep_acct *a;
    size_t i, j, m, k = 0;
    int err = 0;

    for (i = 0; i < n && err == 0; i = j) {
        j = group_end(ns, n, i);
        a = bsearch(ns[i].ep, as, nas, sizeof(*as), acct_cmp);
        if (a == NULL || a->acct[0] == '\0')
            continue; /* an endpoint no longer in the store: no row to add to */
        err = group_write(c, r, ns + i, j - i, span, a->acct);
        for (m = i; m < j; m++) {
            ns[n + k] = ns[m];
            memcpy(ns[n + k].ep, a->acct, ID_MAX);
            k++;
        }
    }
    k = notes_merge(ns + n, k);
    for (i = 0; i < k && err == 0; i = j) {
        j = group_end(ns + n, k, i);
        err = group_write(c, r, ns + n + i, j - i, span, ns[n + i].ep);
    }
    return err;
}

/*
 * Adds the held deliveries made or ended in the transaction to each
 * endpoint's count: the d_held of its n merged notes at the front of c->roll
 * (sorted by endpoint). Most transactions have none and write nothing.
 */
static int
held_write(struct sq_conn *c, size_t n)
{
    const struct sq_roll_note *ns = c->roll;
    sqlite3_stmt *stmt;
    size_t i = 0, j;
    int64_t d;
    int rc, err = 0;

    while (i < n && err == 0) {
        d = 0;
        for (j = i; j < n && strcmp(ns[j].ep, ns[i].ep) == 0; j++)
            if (ns[j].bucket < 0)
                d += ns[j].v[ROLLUP_HELD];
        if (d != 0) {
            if ((stmt = sq_stmt(c, SQL_HELD_ADD)) == NULL)
                return ERR_STORE;
            sqlite3_bind_text(stmt, 1, ns[i].ep, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, d);
            rc = sqlite3_step(stmt);
            sq_done(stmt);
            if (rc != SQLITE_DONE)
                err = sq_err(c, rc, "counting held deliveries");
        }
        i = j;
    }
    return err;
}

int
sq_roll_flush(struct sq_conn *c)
{
    struct roll_row row; /* about 11 KiB: a row's histogram with every bucket */
    struct ep_acct *as = NULL;
    size_t n, nas = 0, i;
    int err;

    if (c->roll_lost || store_grow(&c->roll, &c->roll_cap, 2 * c->roll_n + 1,
                                   sizeof(*c->roll)) != 0) {
        sq_roll_reset(c);
        return ERR_NOMEM;
    }
    n = notes_merge(c->roll, c->roll_n);
    err = accounts_read(c, c->roll, n, &as, &nas);
    if (err == 0)
        err = span_write(c, &row, n, as, nas, ROLLUP_MINUTE_MS);
    /* The same notes again, by hour. */
    for (i = 0; i < n; i++)
        c->roll[i].start -= c->roll[i].start % ROLLUP_HOUR_MS;
    n = notes_merge(c->roll, n);
    if (err == 0)
        err = span_write(c, &row, n, as, nas, ROLLUP_HOUR_MS);
    if (err == 0)
        err = held_write(c, n);
    free(as);
    sq_roll_reset(c);
    return err;
}

int
sq_roll_update(struct sq_conn *c, sqlite3_stmt *stmt, const char *ep, int from, int to,
               int64_t *n, const char *what)
{
    int rc;

    *n = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        sq_roll_move(c, ep, sqlite3_column_int64(stmt, 0), from, to, 1);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, what);
    sq_count_move(c, from, to, *n);
    return 0;
}
