/*
 * The connection guard on real loopback TCP connections: a head or body past
 * its deadline is marked late for its loop to answer (the guard writes
 * nothing to the socket) and shut down if still open after the grace, an
 * idle connection is not held to the head deadline, and the oldest idle
 * connections are shed above the limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "api/http.h"
#include "util/clock.h"

#define WAIT_MS 5000 /* every wait ends with the event it expects, or fails after this */

struct pair {
    int client; /* the test's end */
    int server; /* the end the guard watches */
};

static int listener = -1;

static int
setup(void **state)
{
    struct sockaddr_in sa;

    (void)state;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(listener, 64) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    close(listener);
    return 0;
}

static void
pair_open(struct pair *p)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    assert_int_equal(getsockname(listener, (struct sockaddr *)&sa, &len), 0);
    p->client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->client >= 0);
    assert_int_equal(connect(p->client, (struct sockaddr *)&sa, len), 0);
    p->server = accept(listener, NULL, NULL);
    assert_true(p->server >= 0);
}

static void
pair_close(struct pair *p)
{
    close(p->client);
    close(p->server);
}

/* Milliseconds until the peer of p->client shuts down (EOF), or -1 after ms. */
static int64_t
wait_eof(struct pair *p, int ms)
{
    struct pollfd pfd = {.fd = p->client, .events = POLLIN};
    int64_t t0 = clock_mono_ms();
    char c;

    if (poll(&pfd, 1, ms) != 1 || recv(p->client, &c, 1, 0) != 0)
        return -1;
    return clock_mono_ms() - t0;
}

/* 1 when p->client sees neither data nor EOF right now (no waiting). */
static int
still_open(struct pair *p)
{
    struct pollfd pfd = {.fd = p->client, .events = POLLIN};

    return poll(&pfd, 1, 0) == 0;
}

/* The stage the guard marked *late with, or 0 after ms. */
static int
wait_late(struct http_deadline *late, int ms)
{
    int64_t t0 = clock_mono_ms();
    int stage;

    while ((stage = __atomic_load_n(&late->stage, __ATOMIC_ACQUIRE)) == 0 &&
           clock_mono_ms() - t0 < ms)
        (void)poll(NULL, 0, 10);
    return stage;
}

static struct api_guard *
guard_start(int head_ms, int body_ms, size_t shed_at, int grace_ms)
{
    struct api_guard_config cfg = {
        .head_ms = head_ms, .body_ms = body_ms, .shed_at = shed_at, .grace_ms = grace_ms};
    struct api_guard *g = NULL;

    assert_int_equal(api_guard_new(&cfg, &g), 0);
    return g;
}

static void
test_started_head_is_late_at_its_deadline(void **state)
{
    struct api_guard *g = guard_start(300, 60000, 100, 60000);
    struct http_deadline late = {0, 0}, late_idle = {0, 0};
    struct api_guard_conn *c, *ci;
    struct api_guard_stats st;
    struct pair p, idle;

    (void)state;
    pair_open(&idle);
    pair_open(&p);
    ci = api_guard_conn_open(g, idle.server, &late_idle);
    c = api_guard_conn_open(g, p.server, &late);
    assert_int_equal(send(p.client, "G", 1, 0), 1);
    assert_int_equal(wait_late(&late, WAIT_MS), HTTP_LATE_HEAD);
    assert_int_equal(late.ms, 300);
    /* The answer is its loop's to write: the guard neither wrote nor shut it down. */
    assert_true(still_open(&p));
    /* Late is final: the loop's later calls do not bring it back under a deadline. */
    api_guard_conn_head_done(g, c);
    api_guard_conn_body_done(g, c);
    api_guard_conn_idle(g, c, 0);
    /* The idle one has sent nothing: the head deadline does not apply to it. */
    assert_true(still_open(&idle));
    assert_int_equal(late_idle.stage, 0);
    api_guard_stats_get(g, &st);
    assert_int_equal(st.head_timeouts, 1);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.open, 1);
    api_guard_conn_close(g, c);
    api_guard_conn_close(g, ci);
    api_guard_free(g);
    pair_close(&p);
    pair_close(&idle);
}

static void
test_body_is_late_at_its_deadline_and_busy_is_not(void **state)
{
    struct api_guard *g = guard_start(60000, 300, 100, 60000);
    struct http_deadline late = {0, 0}, late_busy = {0, 0};
    struct api_guard_conn *c, *cb;
    struct api_guard_stats st;
    struct pair p, busy;

    (void)state;
    pair_open(&p);
    pair_open(&busy);
    c = api_guard_conn_open(g, p.server, &late);
    cb = api_guard_conn_open(g, busy.server, &late_busy);
    api_guard_conn_head_done(g, c);
    api_guard_conn_head_done(g, cb);
    api_guard_conn_body_done(g, cb);
    assert_int_equal(wait_late(&late, WAIT_MS), HTTP_LATE_BODY);
    assert_int_equal(late.ms, 300);
    assert_true(still_open(&p));
    assert_true(still_open(&busy));
    assert_int_equal(late_busy.stage, 0);
    api_guard_stats_get(g, &st);
    assert_int_equal(st.body_timeouts, 1);
    /* Back to idle after its answer, with the bytes read so far (none). */
    api_guard_conn_idle(g, cb, 0);
    api_guard_stats_get(g, &st);
    assert_int_equal(st.idle, 1);
    api_guard_conn_close(g, c);
    api_guard_conn_close(g, cb);
    api_guard_free(g);
    pair_close(&p);
    pair_close(&busy);
}

/* A late connection its loop does not close within the grace is shut down. */
static void
test_late_is_shut_down_after_the_grace(void **state)
{
    struct api_guard *g = guard_start(300, 60000, 100, 300);
    struct http_deadline late = {0, 0};
    struct api_guard_conn *c;
    struct pair p;

    (void)state;
    pair_open(&p);
    c = api_guard_conn_open(g, p.server, &late);
    assert_int_equal(send(p.client, "G", 1, 0), 1);
    assert_true(wait_eof(&p, WAIT_MS) >= 0);
    assert_int_equal(late.stage, HTTP_LATE_HEAD); /* marked first, shut down after */
    api_guard_conn_close(g, c);
    api_guard_free(g);
    pair_close(&p);
}

/* Without a record to mark, a late connection is shut down without a word. */
static void
test_late_without_record_is_shut_down(void **state)
{
    struct api_guard *g = guard_start(300, 60000, 100, 60000);
    struct api_guard_conn *c;
    struct pair p;

    (void)state;
    pair_open(&p);
    c = api_guard_conn_open(g, p.server, NULL);
    assert_int_equal(send(p.client, "G", 1, 0), 1);
    assert_true(wait_eof(&p, WAIT_MS) >= 0);
    api_guard_conn_close(g, c);
    api_guard_free(g);
    pair_close(&p);
}

static void
test_oldest_idle_is_shed_above_the_limit(void **state)
{
    struct api_guard *g = guard_start(60000, 60000, 2, 60000);
    struct http_deadline late[4];
    struct api_guard_conn *c[4];
    struct api_guard_stats st;
    struct pair p[4];
    int i;

    (void)state;
    memset(late, 0, sizeof(late));
    for (i = 0; i < 4; i++)
        pair_open(&p[i]);
    c[0] = api_guard_conn_open(g, p[0].server, &late[0]);
    c[1] = api_guard_conn_open(g, p[1].server, &late[1]);
    /* A busy connection is never shed, whatever its age. */
    api_guard_conn_head_done(g, c[1]);
    api_guard_conn_body_done(g, c[1]);
    c[2] = api_guard_conn_open(g, p[2].server, &late[2]);
    c[3] = api_guard_conn_open(g, p[3].server, &late[3]);
    /* Four open, two allowed: the two oldest idle ones (0 and 2) go at once. */
    assert_true(wait_eof(&p[0], WAIT_MS) >= 0);
    assert_true(wait_eof(&p[2], WAIT_MS) >= 0);
    assert_true(still_open(&p[1]));
    assert_true(still_open(&p[3]));
    api_guard_stats_get(g, &st);
    assert_int_equal(st.shed, 2);
    assert_int_equal(st.open, 2);
    for (i = 0; i < 4; i++)
        assert_int_equal(late[i].stage, 0); /* shed idle ones are not late: no 408 */
    for (i = 0; i < 4; i++)
        api_guard_conn_close(g, c[i]);
    api_guard_stats_get(g, &st);
    assert_int_equal(st.open, 0);
    api_guard_free(g);
    for (i = 0; i < 4; i++)
        pair_close(&p[i]);
}

static void
test_null_handles_are_no_ops(void **state)
{
    struct api_guard *g = guard_start(1000, 1000, 10, 1000);

    (void)state;
    api_guard_conn_head_done(g, NULL);
    api_guard_conn_body_done(g, NULL);
    api_guard_conn_idle(g, NULL, 0);
    api_guard_conn_close(g, NULL);
    api_guard_free(g);
    api_guard_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_started_head_is_late_at_its_deadline),
        cmocka_unit_test(test_body_is_late_at_its_deadline_and_busy_is_not),
        cmocka_unit_test(test_late_is_shut_down_after_the_grace),
        cmocka_unit_test(test_late_without_record_is_shut_down),
        cmocka_unit_test(test_oldest_idle_is_shed_above_the_limit),
        cmocka_unit_test(test_null_handles_are_no_ops),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
