/*
 * The connection guard: keeps the HTTP front end from being starved by
 * connections that never finish a request. An idle timer alone is reset
 * forever by a client that sends one byte now and then, so the guard tracks
 * every connection and puts a deadline on each stage of a request:
 *
 *   IDLE   accepted, or its last answer sent, and no byte of a next request
 *          seen; closed after idle_ms. The oldest are shed first when
 *          the server is near its connection limit.
 *   HEAD   bytes of a request arrived (the kernel's count of received bytes
 *          grew, TCP_INFO); the whole head must arrive within head_ms.
 *   BODY   the head is complete; the whole body must arrive within body_ms.
 *   BUSY   the request is processed and answered: no deadline of ours.
 *   LATE   its head or body missed its deadline: its loop answers 408 and
 *          closes it; shut down if still open after grace_ms.
 *
 * A late head or body is not answered here: the guard only writes the
 * connection's http_deadline record, and its loop (http.c), the one thread
 * that writes to the socket, answers 408 unless its answer has begun. A
 * connection idle too long, or shed, is shut down (shutdown(2)) without a
 * word; its loop then sees the end of the stream in its own thread and
 * closes it. The loop tells us that a connection is closed before it closes
 * its socket (and frees its record), and the guard touches sockets and
 * records only under its lock, so a socket number reused by a new
 * connection is never touched.
 */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api_int.h"
#include "api/http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define GUARD_TICK_MS 250 /* how often deadlines and new request bytes are checked */

enum guard_state {
    GUARD_IDLE,
    GUARD_HEAD,
    GUARD_BODY,
    GUARD_BUSY,
    GUARD_LATE,    /* told its loop to answer 408; not counted as open */
    GUARD_CLOSING, /* shut down by the guard, waiting for its loop to close it */
    GUARD_NSTATES,
};

struct api_guard_conn {
    struct api_guard_conn *prev, *next; /* in lists[state], oldest first */
    int fd;
    struct http_deadline *late; /* its loop's record; NULL: shut down when late */
    enum guard_state state;
    int64_t since_ms;  /* when the state began (monotonic) */
    uint64_t rx_mark;  /* bytes received when it became IDLE */
};

struct guard_list {
    struct api_guard_conn *head, *tail;
    size_t n;
};

struct api_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started; /* the thread runs */
    int stop;
    struct api_guard_config cfg;
    struct guard_list lists[GUARD_NSTATES];
    struct api_guard_stats stats;
    int64_t shed_logged; /* stats.shed when last logged */
};

static void
list_remove(struct guard_list *l, struct api_guard_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static void
list_append(struct guard_list *l, struct api_guard_conn *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
}

/* Moves c to the end of the list of state st. Called with g->mu held. */
static void
move_to(struct api_guard *g, struct api_guard_conn *c, enum guard_state st, int64_t now)
{
    list_remove(&g->lists[c->state], c);
    c->state = st;
    c->since_ms = now;
    list_append(&g->lists[st], c);
}

/* Bytes the kernel has received on fd so far (0 when it cannot tell). */
static uint64_t
rx_bytes(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    if (len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return 0;
    return ti.tcpi_bytes_received;
}

/* Shuts c down and marks it CLOSING. Called with g->mu held. */
static void
shut(struct api_guard *g, struct api_guard_conn *c, int64_t now)
{
    if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_warn("api: guard: shutdown fd=%d", c->fd);
    move_to(g, c, GUARD_CLOSING, now);
}

static size_t
open_count(const struct api_guard *g)
{
    size_t i, n = 0;

    for (i = 0; i < GUARD_LATE; i++)
        n += g->lists[i].n;
    return n;
}

/* Sheds the oldest idle connections while more than cfg.shed_at are open. Called with g->mu held. */
static void
shed(struct api_guard *g, int64_t now)
{
    size_t n = open_count(g);

    while (n > g->cfg.shed_at && g->lists[GUARD_IDLE].head != NULL) {
        shut(g, g->lists[GUARD_IDLE].head, now);
        g->stats.shed++;
        n--;
    }
}

/*
 * Ends the connections of list st older than limit_ms: with stage
 * (HTTP_LATE_*), tells their loops to answer 408; else shuts them down.
 * Returns how many. Called with g->mu held.
 */
static int64_t
expire(struct api_guard *g, enum guard_state st, int limit_ms, int stage, int64_t now)
{
    struct api_guard_conn *c;
    int64_t n = 0;

    while ((c = g->lists[st].head) != NULL && now - c->since_ms >= limit_ms) {
        if (stage != 0 && c->late != NULL) {
            c->late->ms = limit_ms;
            __atomic_store_n(&c->late->stage, stage, __ATOMIC_RELEASE);
            move_to(g, c, GUARD_LATE, now);
        } else {
            shut(g, c, now);
        }
        n++;
    }
    return n;
}

static void
tick(struct api_guard *g)
{
    struct api_guard_conn *c, *next;
    int64_t now = clock_mono_ms(), n;

    /* An idle connection whose received bytes grew has begun a request head. */
    for (c = g->lists[GUARD_IDLE].head; c != NULL; c = next) {
        next = c->next;
        if (rx_bytes(c->fd) > c->rx_mark)
            move_to(g, c, GUARD_HEAD, now);
    }
    n = expire(g, GUARD_HEAD, g->cfg.head_ms, HTTP_LATE_HEAD, now);
    if (n > 0) {
        g->stats.head_timeouts += n;
        log_info("api: answered 408 to connections that sent no complete request head in %d ms "
                 "count=%lld",
                 g->cfg.head_ms, (long long)n);
    }
    if (g->cfg.idle_ms > 0)
        (void)expire(g, GUARD_IDLE, g->cfg.idle_ms, 0, now);
    n = expire(g, GUARD_BODY, g->cfg.body_ms, HTTP_LATE_BODY, now);
    if (n > 0) {
        g->stats.body_timeouts += n;
        log_info("api: answered 408 to connections that sent no complete body in %d ms count=%lld",
                 g->cfg.body_ms, (long long)n);
    }
    n = expire(g, GUARD_LATE, g->cfg.grace_ms, 0, now);
    if (n > 0)
        log_info("api: closed connections still open %d ms after their 408 count=%lld",
                 g->cfg.grace_ms, (long long)n);
    shed(g, now);
    if (g->stats.shed > g->shed_logged) {
        log_info("api: closed the oldest idle connections to make room count=%lld open=%zu",
                 (long long)(g->stats.shed - g->shed_logged), open_count(g));
        g->shed_logged = g->stats.shed;
    }
}

static void *
guard_main(void *arg)
{
    struct api_guard *g = arg;
    struct timespec ts;

    (void)pthread_setname_np(pthread_self(), "fh-http-guard");
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        clock_mono_deadline(&ts, GUARD_TICK_MS);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (!g->stop)
            tick(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int
api_guard_new(const struct api_guard_config *cfg, struct api_guard **out)
{
    struct api_guard *g = NULL;
    int ret;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        ret = ERR_NOMEM;
        goto out;
    }
    g->cfg = *cfg;
    pthread_mutex_init(&g->mu, NULL);
    clock_mono_cond_init(&g->cv);
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        log_warnx("api: guard: cannot start its thread");
        ret = ERR_INTERNAL;
        goto out;
    }
    g->started = 1;
    *out = g;
    g = NULL;
    ret = 0;
out:
    api_guard_free(g);
    return ret;
}

void
api_guard_free(struct api_guard *g)
{
    struct api_guard_conn *c;
    size_t i;

    if (g == NULL)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    for (i = 0; i < GUARD_NSTATES; i++) {
        while ((c = g->lists[i].head) != NULL) {
            list_remove(&g->lists[i], c);
            free(c);
        }
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

struct api_guard_conn *
api_guard_conn_open(struct api_guard *g, int fd, struct http_deadline *late)
{
    struct api_guard_conn *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL; /* untracked: no deadline applies */
    c->fd = fd;
    c->late = late;
    c->state = GUARD_IDLE;
    c->rx_mark = 0; /* any byte received at all begins the first head */
    pthread_mutex_lock(&g->mu);
    c->since_ms = clock_mono_ms();
    list_append(&g->lists[GUARD_IDLE], c);
    /* Make room at once: the tick is too late for a burst of new connections. */
    shed(g, c->since_ms);
    pthread_mutex_unlock(&g->mu);
    return c;
}

/* Moves c (NULL: no-op) to state st unless the guard has ended it (late or shut down). */
static void
conn_move(struct api_guard *g, struct api_guard_conn *c, enum guard_state st)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state < GUARD_LATE)
        move_to(g, c, st, clock_mono_ms());
    pthread_mutex_unlock(&g->mu);
}

void
api_guard_conn_head_done(struct api_guard *g, struct api_guard_conn *c)
{
    conn_move(g, c, GUARD_BODY);
}

void
api_guard_conn_body_done(struct api_guard *g, struct api_guard_conn *c)
{
    conn_move(g, c, GUARD_BUSY);
}

void
api_guard_conn_idle(struct api_guard *g, struct api_guard_conn *c, uint64_t rx)
{
    if (c == NULL)
        return;
    /*
     * The loop's count, not the kernel's (TCP_INFO, a system call per
     * request): the bytes of the requests it has parsed. Bytes received
     * beyond them (a pipelined request it holds, or what comes next) begin
     * a head at the next tick.
     */
    pthread_mutex_lock(&g->mu);
    if (c->state < GUARD_LATE) {
        c->rx_mark = rx;
        move_to(g, c, GUARD_IDLE, clock_mono_ms());
    }
    pthread_mutex_unlock(&g->mu);
}

void
api_guard_conn_close(struct api_guard *g, struct api_guard_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    list_remove(&g->lists[c->state], c);
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void
api_guard_stats_get(struct api_guard *g, struct api_guard_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    out->open = (int64_t)open_count(g);
    out->idle = (int64_t)g->lists[GUARD_IDLE].n;
    pthread_mutex_unlock(&g->mu);
}
