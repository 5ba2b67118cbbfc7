/*
 * The dispatcher: a few threads, each running a curl multi handle (its own
 * keep-alive connection cache), claiming due deliveries in batches, writing
 * outcomes in batches, and keeping every endpoint under its in-flight cap so
 * a hanging receiver cannot starve the others.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "dispatch/opevents.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/wakeup.h"

#define POLL_MS 1000    /* look for due work at least this often (other processes) */
#define CLAIM_BATCH 128 /* most deliveries one claim takes */
/*
 * An endpoint's leases in the store, over every process, may be this many
 * times its cap of requests open here: a lease also covers the wait for its
 * publish's WAL sync and, once its request has ended, the wait for its result
 * to be recorded, and neither holds a connection to the receiver.
 */
#define LEASE_SLACK 4
/*
 * Recycled attempt contexts a thread keeps waiting, its loop's and those on
 * their way back (each about 5 KiB with its buffers): more than a batch of
 * results, which the recorder gives back at once.
 */
#define SPARE_MAX 128
#define PARK_POLL_MS 10 /* how often a loop with parked claims looks for room */
/*
 * How soon to look again when due work was left and endpoints full here were
 * skipped: doubling while such claims find nothing, up to POLL_MS.
 */
#define CLAIM_RECHECK_MS 50
/*
 * A claim for work due later goes this long after it is due, so that it takes
 * what comes due meanwhile too: an endpoint answering 500 to a steady stream
 * has a retry due every few ms a minute later, and a claim at each due time
 * took one or two, each a transaction on the store's writer.
 */
#define CLAIM_GATHER_MS 25
/* An endpoint at its cap none of whose requests ended for this long is taken to hang. */
#define HANG_MS 1000
#define OUTCOME_COUNT 4 /* success, retry, failed, blocked */
/* Why a hand-off was declined (ho_take()): the labels of fluxhook_handoffs_declined_total. */
enum { DECLINE_HANGING, DECLINE_BUSY, DECLINE_IN_FLIGHT, DECLINE_COUNT };
#define RECORD_BACKOFF_MIN_MS 100   /* first wait before recording results again */
#define RECORD_BACKOFF_MAX_MS 2000  /* longest wait between tries */
#define LOOP_EVENTS 64              /* socket events one epoll_wait takes at most */

static const char *const outcome_names[OUTCOME_COUNT] = {"success", "retry", "failed", "blocked"};
static const char *const decline_names[DECLINE_COUNT] = {"hanging", "busy", "in_flight"};

/* Upper bounds of the latency histogram, in ms. */
static const int64_t hist_bounds_ms[] = {5,    10,   25,   50,    100,   250,   500,
                                         1000, 2500, 5000, 10000, 15000, 30000, 60000};
#define HIST_N (sizeof(hist_bounds_ms) / sizeof(hist_bounds_ms[0]))

/*
 * One endpoint's deliveries held here whose request has not ended (claimed,
 * handed off, reserved, parked or under way), and of those the requests
 * under way (open addressing; id[0] == 0: free).
 */
struct ep_slot {
    char id[ID_MAX];
    int count;
    int open;    /* at most the dispatcher's per_endpoint */
    int waiting; /* a publish left a delivery due for it while it was full (ho_take()) */
    int64_t ended_mono; /* when one of its requests last ended */
};

/* A finished attempt on its way to the store. */
struct record {
    struct attempt_ctx *ctx; /* owned; its easy handle is already back in the pool */
    struct attempt_result r; /* points into ctx */
    int outcome;
};

/*
 * A dispatcher thread runs the curl multi loop and never waits for the store:
 * its recorder thread claims for it and records its outcomes, so HTTP keeps
 * moving while a store transaction commits.
 */
struct dthread {
    struct dispatcher *d;
    int index;
    pthread_t tid;
    int started;
    CURLM *multi;
    int epfd;                   /* the loop's epoll: curl's sockets and evfd */
    int evfd;                   /* eventfd: other threads wake the loop through it */
    int64_t timer_mono;         /* when curl wants CURL_SOCKET_TIMEOUT, -1: never */
    atomic_int wake;            /* 1: woken by store_on_due since the last look */
    int cap;                    /* most attempts in flight on this thread */
    struct attempt_ctx *active; /* attempts under way (a list) */
    int nactive;
    int grace_count; /* of active, how many have their headers */
    struct conn_loop conns;     /* the loop's connections to receivers */
    int64_t next_claim_mono; /* look for due work then */
    int64_t retry_at;        /* and then (mono ms, INT64_MAX: never): see retry_hint */
    int backlog;             /* 1: due work was left behind at the last claim */
    int freed;               /* 1: attempts ended since the last claim */
    int claim_pending;       /* 1: a claim was asked of the recorder and not answered */
    int asked;               /* how many the last ask wanted */
    struct record *ended;    /* attempts ended this turn, for ended_flush() */
    size_t nended, capended;
    struct attempt_ctx *spare; /* recycled contexts for the next attempts (a list) */
    atomic_int nspare;         /* how many (changed by the loop, read by the recorder) */

    /* Shared with the recorder, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t rec_tid;
    int rec_started;
    int rec_stop;        /* 1: drain and exit */
    struct record *recs; /* finished attempts to record */
    size_t nrecs, caprecs;
    int want;            /* claims asked for, 0 when none */
    struct claim *inbox; /* claims the recorder made, for the loop to start */
    size_t ninbox;
    int inbox_ready;        /* 1: inbox holds the answer to the last ask */
    struct claim *hand;     /* deliveries handed off by publishes, for the loop to start */
    size_t nhand, caphand;
    struct claim *parked;   /* the loop's own: claims whose endpoint had no free request */
    size_t nparked, capparked;
    struct attempt_ctx *returned; /* recorded attempts' contexts, recycled, for spare */
    atomic_int nreturned;         /* how many (changed under mu, read without) */
    atomic_int hand_wake;   /* 1: hand may hold some since the loop last looked */
    /*
     * The recorder's: mono ms at which a retry it recorded is due, plus
     * CLAIM_GATHER_MS (INT64_MAX: none), for the loop's retry_at.
     */
    atomic_llong retry_hint;
    int inbox_backlog;      /* the answer's backlog flag */
    int64_t inbox_next_due; /* wall ms of the next due delivery, 0 when unknown */

    /* The recorder's own. */
    const char **exclude;           /* for store_claim, max_in_flight of them */
    char (*exclude_ids)[ID_MAX];    /* what exclude points to: copies, so no lock is held */
    long claims, claimed, claim_ms; /* store round trips, for the log at stop */
    int64_t recheck_ms;             /* the recorder's: see claim() */
    long records, recorded, record_ms;
};

struct dispatcher {
    struct dispatch_shared sh;
    char *allow_networks; /* owned copies of cfg's strings */
    char *ca_file;
    struct store *st;
    int64_t lease_ms;
    pthread_mutex_t lock; /* claims and the endpoint counts */
    struct ep_slot *slots;
    size_t nslots; /* a power of two */
    int nheld;     /* claimed, handed off or reserved, and not yet recorded or given back */
    atomic_uint next_hand; /* round robin of hand-offs over the threads */
    atomic_ullong handed;  /* deliveries started from a hand-off, without a claim */
    atomic_ullong declined[DECLINE_COUNT]; /* hand-offs ho_take() declined, by why */
    atomic_ullong claims[2]; /* store claims that came back empty, and with work */
    atomic_int stopping;
    atomic_llong stop_deadline_mono;
    int nthreads;
    struct dthread *threads;
    atomic_ullong outcomes[OUTCOME_COUNT];
    atomic_ullong hist[HIST_N + 1];
    atomic_ullong dur_sum_ms;
    atomic_int in_flight;
};

/* --- per-endpoint counts --- */

static size_t
slot_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of id, or the free slot where it would go. */
static struct ep_slot *
slot_find(struct dispatcher *d, const char *id)
{
    size_t mask = d->nslots - 1;
    size_t i = slot_hash(id) & mask;

    while (d->slots[i].id[0] != '\0' && strcmp(d->slots[i].id, id) != 0)
        i = (i + 1) & mask;
    return &d->slots[i];
}

static void
slot_add(struct dispatcher *d, const char *id)
{
    struct ep_slot *s = slot_find(d, id);

    if (s->id[0] == '\0')
        snprintf(s->id, sizeof(s->id), "%s", id);
    s->count++;
    d->nheld++;
}

/* 1 (counted) when id's endpoint has room for one more request under way. */
static int
slot_open(struct dispatcher *d, const char *id)
{
    struct ep_slot *s = slot_find(d, id);

    if (s->id[0] == '\0' || s->open >= d->sh.cfg.per_endpoint)
        return 0;
    s->open++;
    return 1;
}

static void on_due(void *arg);

/*
 * Drops one from id's count (and from its requests under way when started),
 * freeing the slot at zero (backward-shift deletion): its request ended. It
 * still counts in d->nheld until its result is recorded (or it is given back).
 * An endpoint that publishes left due while it was full wakes the loops once
 * claims would no longer skip it. Returns 0 when id held no slot.
 */
static int
slot_end(struct dispatcher *d, const char *id, int started)
{
    size_t mask = d->nslots - 1;
    struct ep_slot *s = slot_find(d, id);
    size_t i;
    size_t j;
    size_t home;

    if (s->id[0] == '\0')
        return 0;
    if (started && s->open > 0)
        s->open--;
    if (started)
        s->ended_mono = clock_mono_ms();
    s->count--;
    if (s->waiting && s->count < d->sh.cfg.per_endpoint) {
        s->waiting = 0;
        on_due(d);
    }
    if (s->count > 0)
        return 1;
    i = (size_t)(s - d->slots);
    j = i;
    for (;;) {
        d->slots[i].id[0] = '\0';
        d->slots[i].count = 0;
        d->slots[i].open = 0;
        d->slots[i].waiting = 0;
        d->slots[i].ended_mono = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (d->slots[j].id[0] == '\0')
                return 1;
            home = slot_hash(d->slots[j].id) & mask;
            /* Move j back to i unless its home lies cyclically in (i, j]. */
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
                continue;
            break;
        }
        d->slots[i] = d->slots[j];
        i = j;
    }
}

/* A delivery that will not run or be recorded here after all: every count drops. */
static void
slot_sub(struct dispatcher *d, const char *id, int started)
{
    if (slot_end(d, id, started))
        d->nheld--;
}

/*
 * Room for need elements of size bytes in arr, whose room is *cap
 * elements: arr itself, or arr grown (doubling; *cap updated), or NULL
 * when out of memory (arr and *cap unchanged).
 */
static void *
array_grow(void *arr, size_t *cap, size_t need, size_t size)
{
    void *grown;
    size_t n;

    if (need <= *cap)
        return arr;
    n = *cap > 0 ? *cap * 2 : 16;
    if (n < need)
        n = need;
    grown = realloc(arr, n * size);
    if (grown != NULL)
        *cap = n;
    return grown;
}

/* --- wake-ups --- */

/* Wakes t's loop from another thread (its epoll_wait returns). */
static void
loop_wake(struct dthread *t)
{
    uint64_t one = 1;

    if (t->evfd >= 0 && write(t->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("dispatch: cannot wake thread=%d", t->index);
}

static void
wake_thread(struct dthread *t)
{
    if (atomic_exchange(&t->wake, 1) == 0)
        loop_wake(t);
}

static void
on_due(void *arg)
{
    struct dispatcher *d = arg;
    int i;

    for (i = 0; i < d->nthreads; i++)
        wake_thread(&d->threads[i]);
}

/* --- hand-off: deliveries leased to us by this process's publishes --- */

/*
 * 1 when endpoint slot s may take one more hand-off. A reservation waits for
 * its publish's WAL sync without a connection, so a fast endpoint published
 * to from many connections holds about as many reservations as there are
 * publishes in one commit group: counted against per_endpoint alone, they
 * refused a sixth of the hand-offs of sustained fan-out 1 (3.2k of 19.7k
 * over 10 s, each then inserted due, claimed and read again). So an endpoint
 * may hold up to its store lease cap here while its requests under way are
 * below per_endpoint (those beyond it park until one ends); one whose
 * requests are all under way (a receiver that hangs) takes none past
 * per_endpoint, as before.
 */
static int
ho_room(const struct dispatcher *d, const struct ep_slot *s)
{
    int cap = d->sh.cfg.per_endpoint;

    if (s->id[0] == '\0' || s->count < cap)
        return 1;
    return s->open < cap && s->count < cap * LEASE_SLACK;
}

/*
 * store_handoff.take, on the store's writer inside a publish: reserves
 * room for one delivery to endpoint id when it has room here (ho_room())
 * and the process is under max_in_flight. The store then checks its own
 * count of live leases (other processes'), and gives the reservation back
 * if full. An endpoint without room here whose requests have stopped ending
 * (a receiver that hangs) is one a claim would skip too, for a while:
 * STORE_HANDOFF_FULL, so that its publishes wake no claim, and slot_end()
 * wakes the loops once it has room (a black hole subscribed beside healthy
 * endpoints made every publish wake both loops for a claim that found
 * nothing). A busy one's room comes back at once, maybe before the publish's
 * WAL sync, when a claim could not take the delivery yet: its publish wakes
 * the claim after the sync, as before.
 */
static int
ho_take(void *arg, const char *id)
{
    struct dispatcher *d = arg;
    struct ep_slot *slot;
    int taken = 0;
    int why = -1;

    if (atomic_load(&d->stopping))
        return 0;
    pthread_mutex_lock(&d->lock);
    slot = slot_find(d, id);
    if (!ho_room(d, slot)) {
        why = DECLINE_BUSY;
        if (clock_mono_ms() - slot->ended_mono >= HANG_MS) {
            slot->waiting = 1;
            taken = STORE_HANDOFF_FULL;
            why = DECLINE_HANGING;
        }
    } else if (d->nheld < d->sh.cfg.max_in_flight) {
        slot_add(d, id);
        taken = 1;
    } else {
        why = DECLINE_IN_FLIGHT;
    }
    pthread_mutex_unlock(&d->lock);
    /* Each declined delivery is inserted due, to be claimed: counted, since that costs. */
    if (why >= 0)
        atomic_fetch_add(&d->declined[why], 1);
    return taken;
}

/* store_handoff.give: a reservation whose delivery is not handed over after all. */
static void
ho_give(void *arg, const char *id)
{
    struct dispatcher *d = arg;

    pthread_mutex_lock(&d->lock);
    slot_sub(d, id, 0);
    pthread_mutex_unlock(&d->lock);
}

/*
 * store_handoff.deliver, on the store's syncer once the publish is durable:
 * queues the claims (taken) on one loop, in turn, and wakes it. The loop
 * starts them; at a stop, release_rest() gives back what it did not start.
 */
static void
ho_deliver(void *arg, struct claim *cs, size_t n)
{
    struct dispatcher *d = arg;
    struct dthread *t;
    struct claim *grown;
    size_t i, n0 = n;

    t = &d->threads[atomic_fetch_add(&d->next_hand, 1) % (unsigned)d->nthreads];
    pthread_mutex_lock(&t->mu);
    grown = array_grow(t->hand, &t->caphand, t->nhand + n, sizeof(*grown));
    if (grown != NULL) {
        t->hand = grown;
        memcpy(&t->hand[t->nhand], cs, n * sizeof(*cs));
        t->nhand += n;
        n = 0;
    }
    pthread_mutex_unlock(&t->mu);
    if (n > 0) {
        /* Out of memory: their leases run out and they are claimed then. */
        log_warnx("dispatch: out of memory taking %zu handed-off deliveries", n);
        for (i = 0; i < n; i++)
            ho_give(d, cs[i].dlv.endpoint_id);
        claim_list_free(cs, n);
        return;
    }
    free(cs);
    atomic_fetch_add(&d->handed, (unsigned long long)n0);
    if (atomic_exchange(&t->hand_wake, 1) == 0)
        loop_wake(t);
}

/*
 * Names the calling thread "fh-<what>-<index>" (top -H, the comm file of each /proc/PID/task,
 * perf), so the CPU of the loops and their recorders can be told apart.
 */
static void
thread_name(const char *what, int index)
{
    char name[16]; /* the kernel's limit, NUL included */

    snprintf(name, sizeof(name), "fh-%s-%d", what, index);
    (void)pthread_setname_np(pthread_self(), name);
}

/* --- the recorder: the thread's store side --- */

static void
log_result(const struct attempt_ctx *ctx, const struct attempt_result *r, int outcome)
{
    const struct attempt *a = &r->attempt;

    if (outcome == 0) {
        log_debug("dispatch: delivered delivery=%s event=%s endpoint=%s status=%d ms=%lld",
                  ctx->c.dlv.id, ctx->c.dlv.event_id, ctx->c.dlv.endpoint_id, a->status_code,
                  (long long)a->duration_ms);
        return;
    }
    log_info("dispatch: attempt failed delivery=%s endpoint=%s n=%d status=%d outcome=%s "
             "next=%s error=\"%s\"",
             ctx->c.dlv.id, ctx->c.dlv.endpoint_id, a->n, a->status_code, outcome_names[outcome],
             r->status == DELIVERY_PENDING ? "retry" : "none", a->error != NULL ? a->error : "");
    if (r->disable_endpoint)
        log_warnx("dispatch: disabling endpoint=%s reason=\"%s\"", ctx->c.dlv.endpoint_id,
                  r->disable_reason);
}

/*
 * 1 when results that could not be recorded are to be tried again: the
 * store may come back (a database restarting), and until it does they are
 * the only record of attempts that were made. Not once a stop's grace ran out.
 */
static int
record_again(struct dthread *t, int err)
{
    struct dispatcher *d = t->d;

    if (err != ERR_UNAVAILABLE && err != ERR_STORE)
        return 0;
    return !atomic_load(&d->stopping) || clock_mono_ms() < atomic_load(&d->stop_deadline_mono);
}

/*
 * Gives the contexts of the n recorded attempts back to t's loop, recycled,
 * while it keeps fewer than SPARE_MAX; frees the rest.
 */
static void
ctx_return(struct dthread *t, struct record *recs, size_t n)
{
    struct attempt_ctx *head = NULL, *tail = NULL;
    struct attempt_ctx *ctx;
    size_t i;
    int k, kept = 0;

    /* Only this thread adds: the counts can but drop meanwhile. */
    k = atomic_load(&t->nreturned) + atomic_load(&t->nspare);
    for (i = 0; i < n; i++) {
        ctx = recs[i].ctx;
        if (k + kept >= SPARE_MAX) {
            attempt_ctx_free(ctx);
            continue;
        }
        attempt_ctx_recycle(ctx); /* outside the lock */
        ctx->next = head;
        head = ctx;
        if (tail == NULL)
            tail = ctx;
        kept++;
    }
    if (head == NULL)
        return;
    /* The list, counted as it was built, joins t->returned under the lock. */
    pthread_mutex_lock(&t->mu);
    tail->next = t->returned;
    t->returned = head;
    atomic_fetch_add(&t->nreturned, kept);
    pthread_mutex_unlock(&t->mu);
}

/*
 * Lowers t's retry hint to at (mono ms). Returns 1 when that moved it: the
 * loop is to look at its timers again.
 */
static int
retry_hint(struct dthread *t, int64_t at)
{
    long long cur = atomic_load(&t->retry_hint);

    while (at < cur) {
        if (atomic_compare_exchange_weak(&t->retry_hint, &cur, (long long)at))
            return 1;
    }
    return 0;
}

/* Records finished attempts in one store transaction and gives their contexts back. */
static void
record(struct dthread *t, struct record *recs, size_t n)
{
    struct attempt_result *rs;
    int64_t t0, now = 0, backoff = RECORD_BACKOFF_MIN_MS;
    int64_t due = INT64_MAX; /* wall ms of the first retry due later within a poll */
    size_t i;
    int retry = 0;
    int full;
    int err;

    rs = calloc(n, sizeof(*rs));
    if (rs == NULL) {
        err = ERR_NOMEM;
    } else {
        for (i = 0; i < n; i++)
            rs[i] = recs[i].r;
        for (;;) {
            t0 = clock_mono_ms();
            now = clock_now_ms();
            err = store_results_apply(t->d->st, rs, n, now);
            t->records++;
            t->record_ms += (long)(clock_mono_ms() - t0);
            if (err == 0 || !record_again(t, err))
                break;
            log_warnx("dispatch: cannot record %zu results err=%s; trying again in %lld ms", n,
                      err_name(err), (long long)backoff);
            clock_sleep_ms(backoff);
            backoff = backoff * 2 < RECORD_BACKOFF_MAX_MS ? backoff * 2 : RECORD_BACKOFF_MAX_MS;
        }
        if (err == 0)
            t->recorded += (long)n;
    }
    if (err != 0)
        log_warnx("dispatch: cannot record %zu results err=%s; their leases will expire", n,
                  err_name(err));
    /* Recorded (their requests ended at finish()): they no longer count here. */
    pthread_mutex_lock(&t->d->lock);
    full = t->d->nheld >= t->d->sh.cfg.max_in_flight;
    t->d->nheld -= (int)n;
    pthread_mutex_unlock(&t->d->lock);
    for (i = 0; i < n; i++) {
        log_result(recs[i].ctx, &recs[i].r, recs[i].outcome);
        /* After the result is durable: what it tells the operational endpoints. */
        if (err == 0)
            opevents_after_result(t->d->st, &recs[i].ctx->c, &recs[i].r, now);
        /*
         * A retry due within a poll: the loop claims it then (and what is due
         * by then). Later ones are seen by a poll in time; waking for each
         * (an endpoint answering 500, retried in a minute) made a claim per
         * batch. Only one due already wakes the loop to claim at once.
         */
        if (err == 0 && recs[i].r.status == DELIVERY_PENDING &&
            recs[i].r.next_attempt_at < now + POLL_MS) {
            if (recs[i].r.next_attempt_at <= now)
                retry = 1;
            else
                due = recs[i].r.next_attempt_at < due ? recs[i].r.next_attempt_at : due;
        }
    }
    ctx_return(t, recs, n);
    free(rs);
    if (due != INT64_MAX && retry_hint(t, clock_mono_ms() + (due - now) + CLAIM_GATHER_MS))
        loop_wake(t); /* to time its claim; asks for none now */
    /*
     * A retry may be due at once, or claims waited for room: let the loop
     * look for work now that these are recorded.
     */
    if (retry || full)
        wake_thread(t);
}

/* Claims up to want due deliveries for t; fills its inbox. */
static void
claim(struct dthread *t, int want)
{
    struct dispatcher *d = t->d;
    struct claim *cs = NULL;
    size_t n = 0;
    size_t nex = 0;
    size_t i;
    int per_ep = d->sh.cfg.per_endpoint;
    int64_t now_ms = clock_now_ms();
    int64_t when = 0;
    int64_t t0;
    int backlog = 0;
    int err;

    pthread_mutex_lock(&d->lock);
    /*
     * The store holds each endpoint to its cap over every process; endpoints
     * this process alone has at their cap need not even be looked at. Their
     * ids are copied, so the lock is not held across the store's round trip:
     * the other threads' claims and results go to the store meanwhile (and
     * join its transaction). A count that moves in between only makes the
     * list a little stale; the store enforces the cap.
     */
    for (i = 0; i < d->nslots; i++) {
        if (d->slots[i].id[0] != '\0' && d->slots[i].count >= per_ep) {
            memcpy(t->exclude_ids[nex], d->slots[i].id, ID_MAX);
            t->exclude[nex] = t->exclude_ids[nex];
            nex++;
            d->slots[i].waiting = 1; /* slot_end() wakes the loops once it has room */
        }
    }
    /* Results not yet recorded still count against max_in_flight. */
    if (want > d->sh.cfg.max_in_flight - d->nheld)
        want = d->sh.cfg.max_in_flight - d->nheld;
    pthread_mutex_unlock(&d->lock);
    if (want <= 0) {
        err = 0; /* full: look again once results are recorded (or at the next poll) */
        backlog = 1;
        goto answer;
    }
    t0 = clock_mono_ms();
    err = store_claim(d->st, now_ms, d->lease_ms, want, per_ep * LEASE_SLACK, t->exclude, nex,
                      &cs, &n);
    t->claims++;
    t->claim_ms += (long)(clock_mono_ms() - t0);
    atomic_fetch_add(&d->claims[err == 0 && n > 0], 1);
    if (err == 0) {
        t->claimed += (long)n;
        pthread_mutex_lock(&d->lock);
        for (i = 0; i < n; i++)
            slot_add(d, cs[i].dlv.endpoint_id);
        pthread_mutex_unlock(&d->lock);
    }
    if (err != 0) {
        log_warnx("dispatch: claim failed thread=%d err=%s", t->index, err_name(err));
        cs = NULL;
        n = 0;
    } else if ((int)n == want) {
        backlog = 1;
    } else {
        if (store_next_due(d->st, &when) != 0)
            when = 0; /* unknown: the poll looks */
        if (when > now_ms) {
            when += CLAIM_GATHER_MS; /* and take what comes due meanwhile */
        } else if (when != 0 && nex == 0) {
            /*
             * Due, but its endpoint is at its cap (or another process has
             * it). With none skipped here, the next attempt to end may make
             * room: ask again then. With some skipped, the work left is
             * mostly theirs, and slot_end() wakes the loops once one has
             * room; an attempt of another endpoint ending says nothing about
             * it. Asking again at every one (a black hole's due queue beside
             * healthy endpoints) made claims back to back that found nothing,
             * so only look again shortly (work capped in the store rather
             * than here, or a publish not yet synced), then less often while
             * nothing comes of it.
             */
            backlog = 1;
        } else if (when != 0) {
            if (n > 0 || t->recheck_ms < CLAIM_RECHECK_MS)
                t->recheck_ms = CLAIM_RECHECK_MS;
            when = now_ms + t->recheck_ms;
            if (n == 0 && t->recheck_ms < POLL_MS)
                t->recheck_ms *= 2;
        }
    }
answer:
    pthread_mutex_lock(&t->mu);
    t->inbox = cs;
    t->ninbox = n;
    t->inbox_backlog = backlog;
    t->inbox_next_due = err == 0 ? when : 0;
    t->inbox_ready = 1;
    pthread_mutex_unlock(&t->mu);
    loop_wake(t);
}

static void *
recorder_main(void *arg)
{
    struct dthread *t = arg;
    struct record *recs;
    size_t n;
    int want;
    int stop;

    thread_name("record", t->index);
    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (t->nrecs == 0 && t->want == 0 && !t->rec_stop)
            pthread_cond_wait(&t->cv, &t->mu);
        recs = t->recs;
        n = t->nrecs;
        t->recs = NULL;
        t->nrecs = t->caprecs = 0;
        want = t->want;
        t->want = 0;
        stop = t->rec_stop;
        pthread_mutex_unlock(&t->mu);
        if (n > 0)
            record(t, recs, n);
        free(recs);
        if (want > 0)
            claim(t, want);
        if (stop && n == 0 && want == 0)
            break;
    }
    log_info("dispatch: recorder done thread=%d claims=%ld claimed=%ld claim_ms=%ld "
             "records=%ld recorded=%ld record_ms=%ld",
             t->index, t->claims, t->claimed, t->claim_ms, t->records, t->recorded, t->record_ms);
    return NULL;
}

/* --- the loop --- */

static void
list_unlink(struct dthread *t, struct attempt_ctx *ctx)
{
    if (ctx->prev != NULL)
        ctx->prev->next = ctx->next;
    else
        t->active = ctx->next;
    if (ctx->next != NULL)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    t->nactive--;
}

static void
list_push(struct dthread *t, struct attempt_ctx *ctx)
{
    ctx->prev = NULL;
    ctx->next = t->active;
    if (t->active != NULL)
        t->active->prev = ctx;
    t->active = ctx;
    t->nactive++;
}

/* wakeup_fn: the recorder has results to record. */
static void
recorder_wake(void *arg)
{
    struct dthread *t = arg;

    pthread_cond_signal(&t->cv);
}

/*
 * Hands the attempts that ended this turn (t->ended) to the recorder: their
 * requests end in the endpoint table and they join the recorder's list, each
 * under one lock taken once for all of them.
 */
static void
ended_flush(struct dthread *t)
{
    struct dispatcher *d = t->d;
    struct record *grown;
    size_t n = t->nended;
    size_t i;

    if (n == 0)
        return;
    t->nended = 0;
    /* Their requests have ended: the endpoints have room for others at once. */
    pthread_mutex_lock(&d->lock);
    for (i = 0; i < n; i++)
        slot_end(d, t->ended[i].ctx->c.dlv.endpoint_id, 1);
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_lock(&t->mu);
    grown = array_grow(t->recs, &t->caprecs, t->nrecs + n, sizeof(*grown));
    if (grown != NULL) {
        t->recs = grown;
        memcpy(&t->recs[t->nrecs], t->ended, n * sizeof(*t->ended));
        t->nrecs += n;
        n = 0;
    }
    pthread_mutex_unlock(&t->mu);
    if (n > 0) {
        /*
         * Unrecorded: their leases expire and they are attempted again. They
         * no longer run here, so they must stop counting against
         * max_in_flight, or enough of these would shut the process out.
         */
        log_warnx("dispatch: out of memory recording %zu deliveries", n);
        pthread_mutex_lock(&d->lock);
        d->nheld -= (int)n;
        pthread_mutex_unlock(&d->lock);
        for (i = 0; i < n; i++)
            attempt_ctx_free(t->ended[i].ctx);
        return;
    }
    wakeup_post(recorder_wake, t); /* once per turn of the loop, which holds the wake-ups */
}

/*
 * Ends an attempt: decides its outcome and queues it on t->ended for
 * ended_flush(), which the caller calls once it has ended all it will.
 */
static void
finish(struct dthread *t, struct attempt_ctx *ctx, int rc, int64_t now_ms, int64_t now_mono)
{
    struct dispatcher *d = t->d;
    struct record rec;
    struct record *grown;
    size_t b;

    if (ctx->headers_done)
        t->grace_count--;
    rec.ctx = ctx;
    attempt_ctx_finish(ctx, rc, now_ms, now_mono, &rec.r, &rec.outcome);
    if (ctx->started) {
        atomic_fetch_sub(&d->in_flight, 1);
        ctx->started = 0;
    }
    conn_release(&t->conns, ctx);
    atomic_fetch_add(&d->outcomes[rec.outcome], 1);
    for (b = 0; b < HIST_N && rec.r.attempt.duration_ms > hist_bounds_ms[b]; b++)
        ;
    atomic_fetch_add(&d->hist[b], 1);
    atomic_fetch_add(&d->dur_sum_ms, (unsigned long long)rec.r.attempt.duration_ms);
    t->freed = 1;
    grown = array_grow(t->ended, &t->capended, t->nended + 1, sizeof(*grown));
    if (grown == NULL) {
        /* Unrecorded: its lease expires and it is attempted again (see ended_flush()). */
        log_warnx("dispatch: out of memory recording delivery=%s", ctx->c.dlv.id);
        pthread_mutex_lock(&d->lock);
        slot_end(d, ctx->c.dlv.endpoint_id, 1);
        d->nheld--;
        pthread_mutex_unlock(&d->lock);
        attempt_ctx_free(ctx);
        return;
    }
    t->ended = grown;
    t->ended[t->nended++] = rec;
}

/*
 * Parks c (moved: the caller's copy is emptied) until its endpoint has room
 * for another request. Returns 0, or ERR_NOMEM (c is left with the caller).
 */
static int
park(struct dthread *t, struct claim *c)
{
    struct claim *grown;

    grown = array_grow(t->parked, &t->capparked, t->nparked + 1, sizeof(*grown));
    if (grown == NULL)
        return ERR_NOMEM;
    t->parked = grown;
    t->parked[t->nparked++] = *c;
    memset(c, 0, sizeof(*c));
    return 0;
}

/* A recycled context for an attempt, or NULL when t has none. */
static struct attempt_ctx *
spare_take(struct dthread *t)
{
    struct attempt_ctx *ctx;

    if (t->spare == NULL && atomic_load(&t->nreturned) > 0) {
        pthread_mutex_lock(&t->mu);
        t->spare = t->returned;
        t->returned = NULL;
        atomic_store(&t->nspare, atomic_exchange(&t->nreturned, 0));
        pthread_mutex_unlock(&t->mu);
    }
    ctx = t->spare;
    if (ctx != NULL) {
        t->spare = ctx->next;
        ctx->next = NULL;
        atomic_fetch_sub(&t->nspare, 1);
    }
    return ctx;
}

static void
ctx_list_free(struct attempt_ctx *ctx)
{
    struct attempt_ctx *next;

    for (; ctx != NULL; ctx = next) {
        next = ctx->next;
        attempt_ctx_free(ctx);
    }
}

/*
 * Starts an attempt for claim c (whose strings it takes), counted already
 * among its endpoint's requests under way.
 */
static void
start_one(struct dthread *t, struct claim *c, int64_t now_ms)
{
    struct attempt_ctx *ctx = spare_take(t);
    int err;

    if (ctx != NULL)
        err = attempt_ctx_renew(ctx, c, &t->d->sh, now_ms);
    else
        err = attempt_ctx_new(c, &t->d->sh, now_ms, &ctx);
    if (ctx == NULL) {
        /* Out of memory: its lease expires and it is attempted again. */
        pthread_mutex_lock(&t->d->lock);
        slot_sub(t->d, c->dlv.endpoint_id, 1);
        pthread_mutex_unlock(&t->d->lock);
        return;
    }
    ctx->grace_count = &t->grace_count;
    if (err == 0) {
        /* On the list first: its connection may end it before conn_start() returns. */
        list_push(t, ctx);
        ctx->started = 1;
        atomic_fetch_add(&t->d->in_flight, 1);
        err = conn_start(&t->conns, ctx);
        if (err == 0)
            return;
        list_unlink(t, ctx);
    }
    finish(t, ctx, -1, now_ms, clock_mono_ms());
    ended_flush(t);
}

/* conn_ended_fn: an attempt's request ended on its connection. */
static void
conn_ended(void *arg, struct attempt_ctx *ctx, int rc)
{
    struct dthread *t = arg;

    list_unlink(t, ctx);
    finish(t, ctx, rc, clock_now_ms(), clock_mono_ms());
}

/*
 * Starts attempts for a batch of claims, each while its endpoint has room for
 * another request under way (per_endpoint); the others are parked. A claim
 * may take more of an endpoint's deliveries than that: the store caps leases,
 * not requests (see "Caps and fairness" in docs/internals/dispatch.md).
 */
static void
start_claims(struct dthread *t, struct claim *cs, size_t n, int64_t now_ms)
{
    unsigned char room[64];
    size_t i;
    size_t j;
    size_t k;

    /* One lock for a run of claims' decisions, not one per claim. */
    for (i = 0; i < n; i += k) {
        k = n - i < sizeof(room) ? n - i : sizeof(room);
        pthread_mutex_lock(&t->d->lock);
        for (j = 0; j < k; j++)
            room[j] = (unsigned char)slot_open(t->d, cs[i + j].dlv.endpoint_id);
        pthread_mutex_unlock(&t->d->lock);
        for (j = 0; j < k; j++) {
            if (room[j]) {
                start_one(t, &cs[i + j], now_ms);
                continue;
            }
            if (park(t, &cs[i + j]) == 0)
                continue;
            /* Out of memory: its lease expires and it is attempted again. */
            pthread_mutex_lock(&t->d->lock);
            slot_sub(t->d, cs[i + j].dlv.endpoint_id, 0);
            pthread_mutex_unlock(&t->d->lock);
        }
    }
}

/* Takes the recorder's answer to a claim, if it came, and starts its attempts. */
static void
take_inbox(struct dthread *t, int64_t now_mono)
{
    struct claim *cs;
    size_t n;
    int64_t next_due;
    int64_t now_ms;

    pthread_mutex_lock(&t->mu);
    if (!t->inbox_ready) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    cs = t->inbox;
    n = t->ninbox;
    t->backlog = t->inbox_backlog;
    next_due = t->inbox_next_due;
    t->inbox = NULL;
    t->ninbox = 0;
    t->inbox_ready = 0;
    pthread_mutex_unlock(&t->mu);
    t->claim_pending = 0;
    now_ms = clock_now_ms();
    if ((int)n == t->asked) {
        t->next_claim_mono = now_mono; /* a full batch: there may be more at once */
    } else {
        t->next_claim_mono = now_mono + POLL_MS;
        if (next_due > now_ms && next_due - now_ms < POLL_MS)
            t->next_claim_mono = now_mono + (next_due - now_ms);
    }
    if (n > 0) {
        start_claims(t, cs, n, now_ms);
        claim_list_free(cs, n);
    }
}

/* Starts the deliveries handed off to t since it last looked. */
static void
take_hand(struct dthread *t)
{
    struct claim *cs;
    size_t n;

    if (atomic_exchange(&t->hand_wake, 0) == 0)
        return;
    pthread_mutex_lock(&t->mu);
    cs = t->hand;
    n = t->nhand;
    t->hand = NULL;
    t->nhand = t->caphand = 0;
    pthread_mutex_unlock(&t->mu);
    if (n > 0) {
        start_claims(t, cs, n, clock_now_ms());
        claim_list_free(cs, n);
    }
}

/* Asks the recorder for up to `room` due deliveries. */
static void
ask(struct dthread *t, int room)
{
    if (room > CLAIM_BATCH)
        room = CLAIM_BATCH;
    t->claim_pending = 1;
    t->asked = room;
    t->freed = 0;
    pthread_mutex_lock(&t->mu);
    t->want = room;
    pthread_mutex_unlock(&t->mu);
    /* After the unlock: woken under it, the recorder would wait for it at once. */
    pthread_cond_signal(&t->cv);
}

/* Takes finished transfers from curl, and cuts short answers whose body dawdles. */
static int64_t
collect(struct dthread *t, int64_t now_mono)
{
    struct attempt_ctx *ctx;
    struct attempt_ctx *next;
    CURLMsg *msg;
    int64_t now_ms = clock_now_ms();
    int64_t wait = -1;
    int64_t left;
    int left_msgs;

    /* Connects that ended: their requests go out, or their attempts end. */
    while ((msg = curl_multi_info_read(t->multi, &left_msgs)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            conn_connected(&t->conns, msg->easy_handle, (int)msg->data.result);
    }
    conn_sweep(&t->conns, t->active, now_mono);
    if (t->grace_count <= 0) {
        ended_flush(t);
        return -1;
    }
    /*
     * The status line decides the outcome; the body only goes to the log. A
     * body that stalls after the headers gets DISPATCH_BODY_GRACE_MS, then the
     * attempt ends with what came.
     */
    for (ctx = t->active; ctx != NULL; ctx = next) {
        next = ctx->next;
        if (!ctx->headers_done)
            continue;
        left = ctx->headers_done_mono + DISPATCH_BODY_GRACE_MS - now_mono;
        if (left > 0) {
            if (wait < 0 || left < wait)
                wait = left;
            continue;
        }
        list_unlink(t, ctx);
        finish(t, ctx, -2, now_ms, now_mono);
    }
    ended_flush(t);
    return wait;
}

/* Gives claimed deliveries back to the store (a clean shutdown). */
static void
release_claims(struct dthread *t, const char **ids, const int64_t *tokens, size_t n)
{
    int err;

    if (n == 0)
        return;
    err = store_release(t->d->st, ids, tokens, n);
    if (err != 0)
        log_warnx("dispatch: cannot release %zu deliveries err=%s", n, err_name(err));
    else
        log_info("dispatch: released deliveries=%zu thread=%d", n, t->index);
}

/*
 * Starts the parked claims whose endpoint has room again, oldest first (the
 * others are parked again, in order). One whose lease would run out before
 * its attempt could end is given back to the store, due now, so that no other
 * claim can take it while it would still run here. A loop looks at its parked
 * claims on every turn, and they are mostly one endpoint's: once an endpoint
 * has no room, its other claims are parked again without asking.
 */
static void
unpark(struct dthread *t, int64_t now_ms)
{
    struct dispatcher *d = t->d;
    int64_t need = d->sh.cfg.attempt_timeout_ms + DISPATCH_BODY_GRACE_MS;
    struct claim *list = t->parked;
    char full[ID_MAX] = ""; /* an endpoint found without room in this pass */
    size_t n = t->nparked;
    size_t i;
    int room;

    if (n == 0)
        return;
    t->parked = NULL;
    t->nparked = t->capparked = 0;
    for (i = 0; i < n; i++) {
        const char *ep = list[i].dlv.endpoint_id;

        if (list[i].dlv.lease_until - now_ms < need) {
            const char *id = list[i].dlv.id;

            release_claims(t, &id, &list[i].dlv.lease_token, 1);
            pthread_mutex_lock(&d->lock);
            slot_sub(d, ep, 0);
            pthread_mutex_unlock(&d->lock);
            continue;
        }
        room = 0;
        if (strcmp(full, ep) != 0) {
            pthread_mutex_lock(&d->lock);
            room = slot_open(d, ep);
            pthread_mutex_unlock(&d->lock);
        }
        if (room) {
            start_one(t, &list[i], now_ms);
            continue;
        }
        memcpy(full, ep, ID_MAX);
        if (park(t, &list[i]) == 0)
            continue;
        /* Out of memory: its lease expires and it is attempted again. */
        pthread_mutex_lock(&d->lock);
        slot_sub(d, full, 0);
        pthread_mutex_unlock(&d->lock);
    }
    claim_list_free(list, n);
}

/* At shutdown, once the recorder is gone: gives back what is still claimed. */
static void
release_rest(struct dthread *t)
{
    struct dispatcher *d = t->d;
    struct attempt_ctx *ctx;
    const char **ids = NULL;
    int64_t *tokens = NULL;
    size_t n = 0;
    size_t i;

    ids = calloc((size_t)t->nactive + t->ninbox + t->nhand + t->nparked + 1, sizeof(*ids));
    tokens = calloc((size_t)t->nactive + t->ninbox + t->nhand + t->nparked + 1,
                    sizeof(*tokens));
    if (ids == NULL || tokens == NULL) {
        free(ids);
        ids = NULL;
    }
    for (ctx = t->active; ctx != NULL; ctx = ctx->next) {
        if (ids != NULL) {
            tokens[n] = ctx->c.dlv.lease_token;
            ids[n++] = ctx->c.dlv.id;
        }
    }
    for (i = 0; i < t->ninbox && ids != NULL; i++) {
        tokens[n] = t->inbox[i].dlv.lease_token;
        ids[n++] = t->inbox[i].dlv.id;
    }
    for (i = 0; i < t->nhand && ids != NULL; i++) {
        tokens[n] = t->hand[i].dlv.lease_token;
        ids[n++] = t->hand[i].dlv.id;
    }
    for (i = 0; i < t->nparked && ids != NULL; i++) {
        tokens[n] = t->parked[i].dlv.lease_token;
        ids[n++] = t->parked[i].dlv.id;
    }
    if (ids != NULL)
        release_claims(t, ids, tokens, n);
    free(tokens);
    pthread_mutex_lock(&d->lock);
    for (ctx = t->active; ctx != NULL; ctx = ctx->next)
        slot_sub(d, ctx->c.dlv.endpoint_id, 1);
    for (i = 0; i < t->ninbox; i++)
        slot_sub(d, t->inbox[i].dlv.endpoint_id, 0);
    for (i = 0; i < t->nhand; i++)
        slot_sub(d, t->hand[i].dlv.endpoint_id, 0);
    for (i = 0; i < t->nparked; i++)
        slot_sub(d, t->parked[i].dlv.endpoint_id, 0);
    pthread_mutex_unlock(&d->lock);
    while (t->active != NULL) {
        ctx = t->active;
        list_unlink(t, ctx);
        atomic_fetch_sub(&d->in_flight, 1);
        conn_release(&t->conns, ctx);
        attempt_ctx_free(ctx);
    }
    claim_list_free(t->inbox, t->ninbox);
    t->inbox = NULL;
    t->ninbox = 0;
    claim_list_free(t->hand, t->nhand);
    t->hand = NULL;
    t->nhand = t->caphand = 0;
    claim_list_free(t->parked, t->nparked);
    t->parked = NULL;
    t->nparked = t->capparked = 0;
    free(ids);
}

/* --- the loop's sockets: curl's multi_socket API on the loop's own epoll --- */

/*
 * CURLMOPT_SOCKETFUNCTION: curl says which events of socket s it waits for.
 * The loop's epoll follows, so each wake-up hands curl only the sockets that
 * are ready instead of curl walking every transfer (curl_multi_perform). A
 * socket curl has told us of carries a mark (curl_multi_assign); a closed
 * one leaves the epoll set by itself, so a failed MOD or ADD tries the other.
 */
static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct dthread *t = userp;
    struct epoll_event ev;
    int op;

    (void)e;
    if (conn_owns(&t->conns, (int)s))
        return 0; /* a connection curl opened that the loop now drives */
    if (what == CURL_POLL_REMOVE) {
        (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    ev.data.fd = s;
    op = socketp != NULL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(t->epfd, op, s, &ev) != 0) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(t->epfd, op, s, &ev) != 0) {
            log_warn("dispatch: cannot watch a socket thread=%d", t->index);
            return -1; /* curl fails the transfers on s */
        }
    }
    if (socketp == NULL)
        curl_multi_assign(t->multi, s, t);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants CURL_SOCKET_TIMEOUT next (-1: no timer). */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct dthread *t = userp;

    (void)m;
    t->timer_mono = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
    return 0;
}

/* Runs curl's timers when due (new transfers start this way too). */
static void
run_timers(struct dthread *t, int64_t now_mono)
{
    int running;

    if (t->timer_mono < 0 || t->timer_mono > now_mono)
        return;
    t->timer_mono = -1;
    curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/*
 * Waits up to timeout ms for curl's sockets or a wake-up, and hands curl the
 * sockets that are ready.
 */
static void
loop_wait(struct dthread *t, int64_t timeout)
{
    struct epoll_event evs[LOOP_EVENTS];
    uint64_t count;
    int running;
    int flags;
    int n;
    int i;

    n = epoll_wait(t->epfd, evs, LOOP_EVENTS, (int)timeout);
    for (i = 0; i < n; i++) {
        if (evs[i].data.u64 & CONN_EPOLL_TAG) {
            conn_ready(&t->conns, (int)(uint32_t)evs[i].data.u64, evs[i].events);
            continue;
        }
        if (evs[i].data.fd == t->evfd) {
            if (read(t->evfd, &count, sizeof(count)) < 0 && errno != EAGAIN)
                log_warn("dispatch: cannot read the wake-up thread=%d", t->index);
            continue;
        }
        flags = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP))
            flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(t->multi, evs[i].data.fd, flags, &running);
    }
}

static void *
thread_main(void *arg)
{
    struct dthread *t = arg;
    struct dispatcher *d = t->d;
    int64_t now_mono;
    int64_t timeout;
    int64_t grace_wait;
    int64_t deadline = 0;
    long long hint;
    int stopping;
    int can_ask;
    int woken;
    int room;

    thread_name("dispatch", t->index);
    for (;;) {
        /* The recorder is woken once for what ended in this turn. */
        wakeup_hold();
        /* What ended in the last wait frees its endpoint's room before more start. */
        (void)collect(t, clock_mono_ms());
        now_mono = clock_mono_ms();
        stopping = atomic_load(&d->stopping);
        if (!stopping) {
            unpark(t, clock_now_ms());
            take_inbox(t, now_mono);
            take_hand(t);
        }
        room = t->cap - t->nactive - (int)t->nparked;
        /* A retry the recorder recorded: its claim is due then. */
        hint = atomic_exchange(&t->retry_hint, INT64_MAX);
        if (hint < t->retry_at)
            t->retry_at = hint;
        /* A wake-up waits (is not consumed) while a claim is under way or there is no room. */
        can_ask = !stopping && !t->claim_pending && room > 0;
        woken = can_ask ? atomic_exchange(&t->wake, 0) : 0;
        if (can_ask && (woken || now_mono >= t->next_claim_mono || now_mono >= t->retry_at ||
                        (t->backlog && t->freed))) {
            /* The retries recorded by now are in the store: this claim sees them. */
            if (t->retry_at <= now_mono)
                t->retry_at = INT64_MAX;
            ask(t, room);
        }
        now_mono = clock_mono_ms();
        run_timers(t, now_mono); /* starts what was just added */
        grace_wait = collect(t, now_mono);
        wakeup_release();
        if (stopping) {
            deadline = atomic_load(&d->stop_deadline_mono);
            if (t->nactive == 0 || now_mono >= deadline)
                break;
        }
        timeout = POLL_MS;
        if (!stopping && !t->claim_pending && t->nactive < t->cap) {
            if (t->backlog && t->freed)
                timeout = 0;
            else if (t->next_claim_mono - now_mono < timeout)
                timeout = t->next_claim_mono - now_mono;
            if (t->retry_at - now_mono < timeout)
                timeout = t->retry_at - now_mono;
        }
        if (grace_wait >= 0 && grace_wait < timeout)
            timeout = grace_wait;
        if (t->timer_mono >= 0 && t->timer_mono - now_mono < timeout)
            timeout = t->timer_mono - now_mono;
        if (t->conns.next_deadline - now_mono < timeout)
            timeout = t->conns.next_deadline - now_mono;
        /* Parked claims wait for a request of their endpoint to end, maybe on another loop. */
        if (t->nparked > 0 && timeout > PARK_POLL_MS)
            timeout = PARK_POLL_MS;
        if (stopping && deadline - now_mono < timeout)
            timeout = deadline - now_mono;
        if (timeout < 0)
            timeout = 0;
        can_ask = !stopping && !t->claim_pending && t->nactive < t->cap;
        if (can_ask && atomic_load(&t->wake) != 0)
            timeout = 0;
        loop_wait(t, timeout);
    }
    /* Let the recorder write what finished and answer a claim under way, then stop it. */
    pthread_mutex_lock(&t->mu);
    t->rec_stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->rec_tid, NULL);
    t->rec_started = 0;
    release_rest(t);
    return NULL;
}

/* --- start, stop, metrics --- */

static void
dispatcher_free(struct dispatcher *d)
{
    struct dthread *t;
    size_t j;
    int i;

    if (d == NULL)
        return;
    for (i = 0; d->threads != NULL && i < d->nthreads; i++) {
        t = &d->threads[i];
        conn_loop_cleanup(&t->conns);
        if (t->multi != NULL)
            curl_multi_cleanup(t->multi); /* its last sock_cb calls need epfd */
        if (t->epfd >= 0)
            close(t->epfd);
        if (t->evfd >= 0)
            close(t->evfd);
        for (j = 0; j < t->nrecs; j++)
            attempt_ctx_free(t->recs[j].ctx);
        free(t->recs);
        free(t->ended);
        claim_list_free(t->inbox, t->ninbox);
        claim_list_free(t->hand, t->nhand);
        ctx_list_free(t->spare);
        ctx_list_free(t->returned);
        free(t->exclude);
        free(t->exclude_ids);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
    }
    free(d->threads);
    free(d->slots);
    addr_list_cleanup(&d->sh.allow);
    attempt_ca_free(d->sh.ca_certs);
    free(d->allow_networks);
    free(d->ca_file);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static int
thread_init(struct dispatcher *d, struct dthread *t, int index, int cap)
{
    struct epoll_event ev;

    t->d = d;
    t->index = index;
    t->cap = cap;
    t->retry_at = INT64_MAX;
    atomic_init(&t->wake, 1);
    atomic_init(&t->retry_hint, INT64_MAX);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->exclude = calloc((size_t)d->sh.cfg.max_in_flight, sizeof(*t->exclude));
    t->exclude_ids = calloc((size_t)d->sh.cfg.max_in_flight, sizeof(*t->exclude_ids));
    t->multi = curl_multi_init();
    if (t->exclude == NULL || t->exclude_ids == NULL || t->multi == NULL)
        return ERR_NOMEM;
    t->timer_mono = -1;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->epfd < 0 || t->evfd < 0) {
        log_warn("dispatch: cannot make the loop's epoll");
        return ERR_INTERNAL;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = t->evfd;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) != 0) {
        log_warn("dispatch: cannot make the loop's epoll");
        return ERR_INTERNAL;
    }
    if (conn_loop_init(&t->conns, &d->sh, t->multi, t->epfd, cap, conn_ended, t) != 0)
        return ERR_NOMEM;
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
    /* Keep-alive: room in the connection cache for every attempt this thread may run. */
    curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)cap);
    return 0;
}

int
dispatch_start(const struct dispatch_config *cfg, struct store *st, struct dispatcher **out)
{
    struct dispatcher *d;
    char err[256];
    int cap;
    int i;
    int rc = 0;

    *out = NULL;
    if (cfg->nschedule < 1 || cfg->nschedule > DISPATCH_MAX_ATTEMPTS)
        return ERR_INVAL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&d->lock, NULL);
    d->st = st;
    d->sh.cfg = *cfg;
    if (d->sh.cfg.attempt_timeout_ms <= 0)
        d->sh.cfg.attempt_timeout_ms = DISPATCH_DEFAULT_TIMEOUT_MS;
    if (d->sh.cfg.connect_timeout_ms <= 0)
        d->sh.cfg.connect_timeout_ms = DISPATCH_DEFAULT_CONNECT_MS;
    if (d->sh.cfg.max_in_flight <= 0)
        d->sh.cfg.max_in_flight = DISPATCH_DEFAULT_IN_FLIGHT;
    if (d->sh.cfg.per_endpoint <= 0)
        d->sh.cfg.per_endpoint = DISPATCH_DEFAULT_PER_ENDPOINT;
    if (d->sh.cfg.threads <= 0)
        d->sh.cfg.threads = DISPATCH_DEFAULT_THREADS;
    if (d->sh.cfg.threads > d->sh.cfg.max_in_flight)
        d->sh.cfg.threads = d->sh.cfg.max_in_flight;
    /* A claim may take a while to be recorded; the lease must outlive the attempt well. */
    d->lease_ms = d->sh.cfg.lease_ms > 0 ? d->sh.cfg.lease_ms : DISPATCH_DEFAULT_LEASE_MS;
    if (d->lease_ms <= d->sh.cfg.attempt_timeout_ms)
        d->lease_ms = d->sh.cfg.attempt_timeout_ms * 2 + 5000;
    if (cfg->allow_networks != NULL) {
        d->allow_networks = strdup(cfg->allow_networks);
        if (d->allow_networks == NULL) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    d->sh.cfg.allow_networks = d->allow_networks;
    rc = addr_list_parse(d->allow_networks, &d->sh.allow, err, sizeof(err));
    if (rc != 0) {
        log_warnx("dispatch: %s", err);
        goto out;
    }
    if (cfg->ca_file != NULL && cfg->ca_file[0] != '\0') {
        d->ca_file = strdup(cfg->ca_file);
        if (d->ca_file == NULL) {
            rc = ERR_NOMEM;
            goto out;
        }
        rc = attempt_ca_load(d->ca_file, &d->sh.ca_certs);
        if (rc != 0)
            goto out;
    }
    d->sh.cfg.ca_file = d->ca_file;
    d->nslots = 16;
    while (d->nslots < (size_t)d->sh.cfg.max_in_flight * 4)
        d->nslots *= 2;
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    if (d->slots == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = ERR_INTERNAL;
        goto out;
    }
    d->nthreads = d->sh.cfg.threads;
    d->threads = calloc((size_t)d->nthreads, sizeof(*d->threads));
    if (d->threads == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < d->nthreads; i++)
        d->threads[i].epfd = d->threads[i].evfd = -1;
    for (i = 0; i < d->nthreads; i++) {
        cap = d->sh.cfg.max_in_flight / d->nthreads;
        if (i < d->sh.cfg.max_in_flight % d->nthreads)
            cap++;
        rc = thread_init(d, &d->threads[i], i, cap);
        if (rc != 0)
            goto out;
    }
    for (i = 0; i < d->nthreads; i++) {
        if (pthread_create(&d->threads[i].rec_tid, NULL, recorder_main, &d->threads[i]) != 0) {
            rc = ERR_INTERNAL;
            dispatch_stop(d, 0);
            return rc;
        }
        d->threads[i].rec_started = 1;
        if (pthread_create(&d->threads[i].tid, NULL, thread_main, &d->threads[i]) != 0) {
            rc = ERR_INTERNAL;
            dispatch_stop(d, 0);
            return rc;
        }
        d->threads[i].started = 1;
    }
    store_on_due(st, on_due, d);
    store_on_handoff(st, &(struct store_handoff){.take = ho_take,
                                                 .give = ho_give,
                                                 .deliver = ho_deliver,
                                                 .arg = d,
                                                 .lease_ms = d->lease_ms,
                                                 .per_endpoint =
                                                     d->sh.cfg.per_endpoint * LEASE_SLACK});
    log_info("dispatch: started threads=%d max_in_flight=%d per_endpoint=%d attempts=%d "
             "timeout_ms=%lld",
             d->nthreads, d->sh.cfg.max_in_flight, d->sh.cfg.per_endpoint, d->sh.cfg.nschedule,
             (long long)d->sh.cfg.attempt_timeout_ms);
    *out = d;
    d = NULL;
out:
    dispatcher_free(d);
    return rc;
}

void
dispatch_stop(struct dispatcher *d, int64_t grace_ms)
{
    struct dthread *t;
    int i;

    if (d == NULL)
        return;
    store_on_due(d->st, NULL, NULL);
    store_on_handoff(d->st, NULL);
    atomic_store(&d->stop_deadline_mono, clock_mono_ms() + (grace_ms > 0 ? grace_ms : 0));
    atomic_store(&d->stopping, 1);
    for (i = 0; i < d->nthreads; i++)
        loop_wake(&d->threads[i]);
    for (i = 0; i < d->nthreads; i++) {
        t = &d->threads[i];
        if (t->started) {
            pthread_join(t->tid, NULL); /* it stops its recorder */
        } else if (t->rec_started) {
            pthread_mutex_lock(&t->mu);
            t->rec_stop = 1;
            pthread_cond_signal(&t->cv);
            pthread_mutex_unlock(&t->mu);
            pthread_join(t->rec_tid, NULL);
        }
    }
    log_info("dispatch: stopped");
    dispatcher_free(d);
}

void
dispatch_metrics(struct buf *out, void *dispatcher)
{
    struct dispatcher *d = dispatcher;
    unsigned long long cum = 0;
    unsigned long long v;
    size_t i;

    buf_puts(out, "# HELP fluxhook_attempts_total Delivery attempts by outcome.\n"
                  "# TYPE fluxhook_attempts_total counter\n");
    for (i = 0; i < OUTCOME_COUNT; i++)
        buf_printf(out, "fluxhook_attempts_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                   d != NULL ? (unsigned long long)atomic_load(&d->outcomes[i]) : 0ULL);
    buf_puts(out, "# HELP fluxhook_attempt_duration_seconds Delivery attempt duration.\n"
                  "# TYPE fluxhook_attempt_duration_seconds histogram\n");
    for (i = 0; i <= HIST_N; i++) {
        v = d != NULL ? (unsigned long long)atomic_load(&d->hist[i]) : 0ULL;
        cum += v;
        if (i < HIST_N)
            buf_printf(out, "fluxhook_attempt_duration_seconds_bucket{le=\"%g\"} %llu\n",
                       (double)hist_bounds_ms[i] / 1000.0, cum);
        else
            buf_printf(out, "fluxhook_attempt_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    buf_printf(out, "fluxhook_attempt_duration_seconds_sum %.3f\n",
               d != NULL ? (double)atomic_load(&d->dur_sum_ms) / 1000.0 : 0.0);
    buf_printf(out, "fluxhook_attempt_duration_seconds_count %llu\n", cum);
    buf_printf(out,
               "# HELP fluxhook_handoffs_total Deliveries handed to this process's dispatcher "
               "by their publish, started without a claim.\n"
               "# TYPE fluxhook_handoffs_total counter\n"
               "fluxhook_handoffs_total %llu\n",
               d != NULL ? (unsigned long long)atomic_load(&d->handed) : 0ULL);
    buf_puts(out, "# HELP fluxhook_handoffs_declined_total Hand-offs this process's "
                  "dispatcher declined at a publish (the delivery is left due for a claim), "
                  "by why: its endpoint's requests all hang here, or it is at its cap here, "
                  "or the process is at max_in_flight.\n"
                  "# TYPE fluxhook_handoffs_declined_total counter\n");
    for (i = 0; i < DECLINE_COUNT; i++)
        buf_printf(out, "fluxhook_handoffs_declined_total{why=\"%s\"} %llu\n", decline_names[i],
                   d != NULL ? (unsigned long long)atomic_load(&d->declined[i]) : 0ULL);
    buf_puts(out, "# HELP fluxhook_claims_total Claims of due deliveries this process's "
                  "dispatcher asked the store for, by whether they found any.\n"
                  "# TYPE fluxhook_claims_total counter\n");
    for (i = 0; i < 2; i++)
        buf_printf(out, "fluxhook_claims_total{found=\"%s\"} %llu\n", i ? "some" : "none",
                   d != NULL ? (unsigned long long)atomic_load(&d->claims[i]) : 0ULL);
    buf_printf(out,
               "# HELP fluxhook_in_flight Delivery attempts under way.\n"
               "# TYPE fluxhook_in_flight gauge\n"
               "fluxhook_in_flight %d\n",
               d != NULL ? atomic_load(&d->in_flight) : 0);
}
