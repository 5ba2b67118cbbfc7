#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define N 20000

static int
cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_format_and_time(void **state)
{
    char id[ID_MAX];
    int64_t now = clock_now_ms();

    (void)state;
    assert_int_equal(id_new("evt_", id), 0);
    assert_int_equal(strlen(id), 4 + 26);
    assert_true(id_valid("evt_", id));
    assert_false(id_valid("dlv_", id));
    assert_false(id_valid("evt_", "evt_short"));
    assert_true(id_time_ms(id) >= now - 1000 && id_time_ms(id) <= now + 1000);
    assert_int_equal(id_new_at("acct_", 1704110400000LL, id), 0);
    assert_int_equal(id_time_ms(id), 1704110400000LL);
}

/* id_floor() bounds every id of its millisecond from below, and no earlier one. */
static void
test_floor(void **state)
{
    char floor[ID_MAX], id[ID_MAX];
    int64_t ms = 1704110400000LL;
    int i;

    (void)state;
    assert_int_equal(id_floor("dlv_", ms, floor), 0);
    assert_true(id_valid("dlv_", floor));
    assert_int_equal(id_time_ms(floor), ms);
    for (i = 0; i < 200; i++) {
        assert_int_equal(id_new_at("dlv_", ms, id), 0);
        assert_true(strcmp(floor, id) <= 0);
        assert_int_equal(id_new_at("dlv_", ms - 1, id), 0);
        assert_true(strcmp(id, floor) < 0);
        assert_int_equal(id_new_at("dlv_", ms + 1, id), 0);
        assert_true(strcmp(floor, id) < 0);
    }
    assert_int_equal(id_floor("dlv_", -1, floor), ERR_INVAL);
}

/* id_last() is the newest id made so far: at or above every earlier one, below every later one. */
static void
test_last(void **state)
{
    char last[ID_MAX], id[ID_MAX], mark[ID_MAX];
    int i;

    (void)state;
    for (i = 0; i < 2000; i++) {
        assert_int_equal(id_new(i % 2 ? "evt_" : "dlv_", id), 0);
        assert_int_equal(id_last("dlv_", last), 0);
        assert_true(id_valid("dlv_", last));
        assert_string_equal(last + 4, id + 4);
        assert_int_equal(id_last("dlv_", mark), 0);
        assert_int_equal(id_new("dlv_", id), 0);
        assert_true(strcmp(mark, id) < 0);
    }
    assert_int_equal(id_last("a_prefix_too_long_for_any_id_", last), ERR_INVAL);
}

/* After id_after(x), every new id sorts after x, even one made in the future by another process. */
static void
test_after(void **state)
{
    char future[ID_MAX], id[ID_MAX], last[ID_MAX];
    int i;

    (void)state;
    assert_int_equal(id_new_at("dlv_", clock_now_ms() + 3600000, future), 0);
    id_after(future);
    assert_int_equal(id_last("dlv_", last), 0);
    assert_true(strcmp(future, last) <= 0);
    for (i = 0; i < 100; i++) {
        assert_int_equal(id_new("dlv_", id), 0);
        assert_true(strcmp(future, id) < 0);
        assert_true(strcmp(last, id) < 0);
    }
    id_after("not an id"); /* ignored */
}

static void
test_unique_and_increasing(void **state)
{
    char (*ids)[ID_MAX] = calloc(N, ID_MAX);
    int i;

    (void)state;
    for (i = 0; i < N; i++)
        assert_int_equal(id_new("dlv_", ids[i]), 0);
    for (i = 1; i < N; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("not increasing: %s then %s", ids[i - 1], ids[i]);
    }
    free(ids);
}

struct batch {
    char ids[N / 4][ID_MAX];
};

static void *
make_batch(void *arg)
{
    struct batch *b = arg;
    int i;

    for (i = 0; i < N / 4; i++)
        id_new("ep_", b->ids[i]);
    return NULL;
}

static void
test_unique_across_threads(void **state)
{
    struct batch *b = calloc(4, sizeof(*b));
    char (*all)[ID_MAX];
    pthread_t t[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, make_batch, &b[i]);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    all = (char(*)[ID_MAX])(void *)b;
    qsort(all, N, ID_MAX, cmp);
    for (i = 1; i < N; i++)
        assert_int_not_equal(strcmp(all[i - 1], all[i]), 0);
    free(b);
}

/* The encoding itself: Crockford base32 of the 48-bit time and 80 random bits (ULID's). */
static void
test_known_encodings(void **state)
{
    char id[ID_MAX];

    (void)state;
    assert_int_equal(id_floor("evt_", 1469918176385LL, id), 0);
    assert_string_equal(id, "evt_01ARYZ6S410000000000000000");
    assert_int_equal(id_floor("evt_", 0, id), 0);
    assert_string_equal(id, "evt_00000000000000000000000000");
    assert_int_equal(id_floor("x_", (1LL << 48) - 1, id), 0);
    assert_string_equal(id, "x_7ZZZZZZZZZ0000000000000000");
    assert_int_equal(id_floor("x_", 1LL << 47, id), 0);
    assert_string_equal(id, "x_40000000000000000000000000");
    assert_int_equal(id_floor("x_", 1, id), 0);
    assert_string_equal(id, "x_00000000010000000000000000");
}

/*
 * Random bits are drawn many ids at a time: a child process must draw its
 * own, not hand out the ones its parent has left, or both make the same
 * ids in the same millisecond.
 */
static void
test_child_draws_its_own(void **state)
{
    char parent[ID_MAX], child[ID_MAX];
    int fds[2], status;
    pid_t pid;

    (void)state;
    assert_int_equal(id_new_at("x_", 1704110400000LL, parent), 0); /* the pool is full now */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (id_new_at("x_", 1704110400000LL, child) != 0 ||
            write(fds[1], child, sizeof(child)) != (ssize_t)sizeof(child))
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(id_new_at("x_", 1704110400000LL, parent), 0);
    assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_not_equal(parent, child);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_draws_its_own),
        cmocka_unit_test(test_known_encodings),
        cmocka_unit_test(test_format_and_time),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_last),
        cmocka_unit_test(test_after),
        cmocka_unit_test(test_unique_and_increasing),
        cmocka_unit_test(test_unique_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
