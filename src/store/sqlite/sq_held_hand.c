/*
 * SQLite backend: an enable that hands its endpoint's held deliveries
 * straight to this process's dispatcher (docs/internals/store.md, "Enable
 * by hand-off"). Each is moved held -> delivering, leased to the
 * dispatcher, as far as it has room, and handed over in memory like a
 * publish's; none goes through pending and a claim. The enable then goes
 * at the dispatcher's pace, so it hands over for HAND_FOR_MS at most (its
 * call must answer within a client's patience); then, as soon as what is
 * left could not go by hand in about that time (hand_fits()), or as soon as the
 * dispatcher takes none for HAND_WAIT_MS (a receiver that hangs), the rest
 * of the enable moves them to pending, chunk by chunk, as without one.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* How long an enable waits for room in the dispatcher before it queues the rest. */
#define HAND_WAIT_MS 200
/* How long an enable hands over at most (a drain of 200k at 7k/s takes 29 s). */
#define HAND_FOR_MS 30000
/*
 * How long an enable hands over before it judges its pace: from then on, as
 * soon as the held deliveries left could not all go by hand at the pace so
 * far within HAND_FIT_MS of its start, the rest goes to pending at once
 * (hand_fits()). Half again HAND_FOR_MS: a backlog that nearly fits is
 * still handed over for HAND_FOR_MS (a drain slowed by a loaded machine),
 * one far beyond it (1M at a drain's pace, 75 s) is queued at once.
 */
#define HAND_PROBE_MS 1000
#define HAND_FIT_MS 45000

/* Columns as sq_delivery_read() reads them, then the body. */
static const char SQL_HELD_READ[] =
    "SELECT d.id, d.event_id, d.endpoint_id, d.account_id, d.event_type, d.status, "
    "d.attempts_made, d.round_start, d.next_attempt_at, d.lease_until, d.created_at, "
    "d.updated_at, d.last_status_code, d.last_error, d.lease_token, e.body "
    "FROM deliveries d INDEXED BY deliveries_endpoint_status JOIN events e ON e.id = d.event_id "
    "WHERE d.endpoint_id = ?1 AND d.status = 'held' ORDER BY d.id LIMIT ?2";
/* The endpoint's kept count of held deliveries (migration 017). */
static const char SQL_HELD_LEFT[] = "SELECT n FROM endpoint_held WHERE endpoint_id = ?1";
/*
 * As SQL_EP_RESUME_HELD, then as a claim: the held deliveries of ?3 from
 * id ?4 to id ?5, which are those SQL_HELD_READ read (the same job, so
 * nothing came between), in one statement: one per row opened the table's
 * and its indexes' cursors again for each.
 */
static const char SQL_HELD_TAKE[] =
    "UPDATE deliveries INDEXED BY deliveries_endpoint_status SET status = 'delivering', "
    "next_attempt_at = ?1, lease_until = ?2, lease_token = lease_token + 1, "
    "round_start = attempts_made, updated_at = ?1 "
    "WHERE endpoint_id = ?3 AND status = 'held' AND id >= ?4 AND id <= ?5";

struct hand_args {
    struct sq *s;
    struct sq_handoff ho;
    const char *id;  /* the endpoint */
    int64_t now;
    int64_t limit;   /* most to take */
    int64_t taken;   /* out */
    int left;        /* out: held deliveries remain beyond those taken */
    int64_t held;    /* out: the endpoint's held deliveries before those taken */
    int wait;        /* out: one taken needs a WAL sync before it is handed over */
};

/* Fills claim cl from the row read by SQL_HELD_READ, as the claim makes it. */
static int
held_claim(sqlite3_stmt *stmt, struct claim *cl, int64_t now, int64_t lease_until)
{
    struct delivery *d = &cl->dlv;
    int err;

    err = sq_delivery_read(stmt, d);
    if (err == 0)
        err = sq_col_bytes(stmt, 15, &cl->body, &cl->body_len);
    d->status = DELIVERY_DELIVERING;
    d->next_attempt_at = now;
    d->lease_until = lease_until;
    d->lease_token++;
    d->round_start = d->attempts_made;
    d->updated_at = now;
    return err;
}

/*
 * Writes the move of the n claims at the end of a->ho, read in id order,
 * in one statement. They share the first one's lease (the shortest: each
 * later reservation read the clock again), so the row and the claim agree.
 */
static int
held_take(struct sq_conn *c, struct hand_args *a, size_t n)
{
    sqlite3_stmt *stmt;
    struct claim *cs = a->ho.cs + (a->ho.n - n);
    int64_t lease_until;
    size_t i;
    int rc, moved;

    if (n == 0)
        return 0;
    stmt = sq_stmt(c, SQL_HELD_TAKE);
    if (stmt == NULL)
        return ERR_STORE;
    lease_until = cs[0].dlv.lease_until;
    sqlite3_bind_int64(stmt, 1, a->now);
    sqlite3_bind_int64(stmt, 2, lease_until);
    sqlite3_bind_text(stmt, 3, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, cs[0].dlv.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, cs[n - 1].dlv.id, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    sq_done(stmt);
    if (rc != SQLITE_DONE)
        return sq_err(c, rc, "handing over held deliveries");
    moved = sqlite3_changes(c->db);
    if (moved != (int)n) {
        log_warnx("store: a hand-over moved %d held deliveries where it read %zu", moved, n);
        return ERR_STORE; /* the job rolls back: none is handed over */
    }
    for (i = 0; i < n; i++) {
        cs[i].dlv.lease_until = lease_until;
        sq_roll_move(c, a->id, cs[i].dlv.created_at, DELIVERY_HELD, DELIVERY_DELIVERING, 1);
    }
    sq_count_move(c, DELIVERY_HELD, DELIVERY_DELIVERING, (int64_t)n);
    return 0;
}

/* Reads a->held: how many of a->id's deliveries are held. */
static int
held_left(struct sq_conn *c, struct hand_args *a)
{
    sqlite3_stmt *stmt = sq_stmt(c, SQL_HELD_LEFT);
    int rc;

    if (stmt == NULL)
        return ERR_STORE;
    sqlite3_bind_text(stmt, 1, a->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    a->held = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sq_done(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(c, rc, "counting held deliveries");
    return 0;
}

/* Takes the oldest held deliveries of a->id while the dispatcher has room for them. */
static int
job_held_hand(struct sq_conn *c, void *arg)
{
    struct hand_args *a = arg;
    struct sq_synced synced;
    sqlite3_stmt *stmt;
    struct claim *cl;
    int64_t lease_until;
    size_t n = 0;
    int rc = SQLITE_DONE, err;

    /* A second run (see batch_run()) starts from nothing. */
    sq_handoff_reset(&a->ho);
    a->taken = 0;
    a->left = a->wait = 0;
    err = sq_synced_view(a->s, c, &synced);
    if (err == 0)
        err = held_left(c, a);
    if (err != 0)
        return err;
    stmt = sq_stmt(c, SQL_HELD_READ);
    if (stmt == NULL)
        return ERR_STORE;
    sqlite3_bind_text(stmt, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, a->limit + 1); /* one more: are there any left? */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((int64_t)n == a->limit) {
            a->left = 1;
            break;
        }
        a->ho.unwritten = (int)n; /* still held in the store: a live count misses them */
        err = sq_handoff_reserve(c, &a->ho, a->id, &lease_until, &cl);
        if (err < 0)
            break;
        if (err == 0 || err == STORE_HANDOFF_FULL) {
            a->left = 1; /* no room (or an endpoint that hangs) */
            err = 0;
            break;
        }
        err = held_claim(stmt, cl, a->now, lease_until);
        if (err != 0)
            break;
        a->wait |= !sq_synced_vouches(&synced, cl->dlv.id);
        n++;
    }
    a->ho.unwritten = 0;
    if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sq_err(c, rc, "reading held deliveries");
    sq_done(stmt);
    if (err == 0)
        err = held_take(c, a, n);
    if (err == 0)
        a->taken = (int64_t)n;
    return err;
}

/*
 * One write of the hand-over: takes up to a->limit, commits without its
 * sync, and hands what it took to the dispatcher (after a WAL sync when
 * one of them was published but not yet synced). *took_us adds the write.
 */
static int
hand_once(struct store *st, struct hand_args *a, int64_t *took_us)
{
    int64_t t = 0;
    int err;

    err = sq_chunk_write(st, job_held_hand, a, &t);
    *took_us += t;
    if (err == 0 && a->wait)
        err = sq_sync_wait(st);
    sq_handoff_finish(&a->ho, err);
    if (err != 0)
        a->taken = 0;
    return err;
}

/*
 * 0 when, HAND_PROBE_MS into the hand-over, the a->held - a->taken held
 * deliveries left could not all go by hand at its pace so far within
 * HAND_FIT_MS of its start: queued at once, the rest make the call no
 * longer than without a hand-over (an enable of 1M handed over for 30 s
 * first took 55-62 s where its chunks alone took 40-48 s).
 */
static int
hand_fits(const struct store_chunk *ck, const struct hand_args *a)
{
    int64_t now = clock_mono_us();
    int64_t from = ck->hand_until - (int64_t)HAND_FOR_MS * 1000;
    double pace;

    if (now - from < (int64_t)HAND_PROBE_MS * 1000)
        return 1;
    pace = (double)ck->handed / (double)(now - from); /* per microsecond */
    return (double)(a->held - a->taken) <=
           pace * (double)(from + (int64_t)HAND_FIT_MS * 1000 - now);
}

int
sq_held_hand(struct store *st, const char *id, struct store_chunk *ck)
{
    struct hand_args a = { .s = st->impl, .ho = {.st = st}, .id = id, .now = ck->now };
    uint64_t seen = 0;
    int err = 0;

    ck->moved = 0;
    if (ck->hand_until == 0)
        ck->hand_until = clock_mono_us() + (int64_t)HAND_FOR_MS * 1000;
    (void)store_handoff_room_wait(st, &seen, 0);
    while (err == 0) {
        if (clock_mono_us() > ck->hand_until) {
            ck->queue = 1;
            break;
        }
        a.limit = ck->limit - ck->moved;
        err = hand_once(st, &a, &ck->took_us);
        ck->moved += a.taken;
        ck->handed += a.taken;
        if (err != 0 || !a.left)
            break;
        if (!hand_fits(ck, &a)) {
            ck->queue = 1;
            break;
        }
        if (ck->moved == ck->limit)
            break;
        /*
         * No room: the dispatcher's results make some, unless its receiver
         * hangs. The next write is asked as soon as a results commit made
         * room: the store's count of live leases ends nearly every write,
         * so the drain goes at the pace of that cycle (with a least gap of
         * 5 ms between them, writes came 6.1 ms apart at p50, not 3.3).
         */
        if (!store_handoff_room_wait(st, &seen, HAND_WAIT_MS) && a.taken == 0) {
            ck->queue = 1;
            break;
        }
    }
    return err;
}
