#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/wakeup.h"

/* A wake-up that counts its calls and notes their order. */
struct counter {
    int calls;
    int order;
};

static int next_order;

static void
count_wake(void *arg)
{
    struct counter *c = arg;

    c->calls++;
    c->order = ++next_order;
}

/* A wake-up as the HTTP loops make it: a write to an eventfd. */
static void
eventfd_wake(void *arg)
{
    uint64_t one = 1;

    assert_int_equal(write(*(int *)arg, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static uint64_t
eventfd_take(int fd)
{
    uint64_t v = 0;

    if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        return 0;
    return v;
}

static void
test_unheld_wakes_at_once(void **state)
{
    struct counter c = {0, 0};

    (void)state;
    wakeup_post(count_wake, &c);
    assert_int_equal(c.calls, 1);
    wakeup_post(count_wake, &c);
    assert_int_equal(c.calls, 2);
}

static void
test_hold_wakes_once_in_order(void **state)
{
    struct counter a = {0, 0}, b = {0, 0};
    int i;

    (void)state;
    wakeup_hold();
    for (i = 0; i < 100; i++) {
        wakeup_post(count_wake, &b);
        wakeup_post(count_wake, &a);
    }
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 0);
    wakeup_release();
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_true(b.order < a.order); /* in the order first posted */
    /* The hold is over: the next post wakes at once. */
    wakeup_post(count_wake, &a);
    assert_int_equal(a.calls, 2);
}

static void
test_holds_nest(void **state)
{
    struct counter c = {0, 0};

    (void)state;
    wakeup_hold();
    wakeup_hold();
    wakeup_post(count_wake, &c);
    wakeup_release();
    assert_int_equal(c.calls, 0); /* the outer hold still holds it */
    wakeup_post(count_wake, &c);
    wakeup_release();
    assert_int_equal(c.calls, 1);
    wakeup_release(); /* an unmatched release does nothing */
    wakeup_post(count_wake, &c);
    assert_int_equal(c.calls, 2);
}

static void
test_many_distinct_all_woken(void **state)
{
    struct counter cs[100];
    int i;

    (void)state;
    memset(cs, 0, sizeof(cs));
    wakeup_hold();
    for (i = 0; i < 100; i++)
        wakeup_post(count_wake, &cs[i]);
    wakeup_release();
    for (i = 0; i < 100; i++)
        assert_int_equal(cs[i].calls, 1); /* past the list's room: woken at once, once */
}

static void
test_eventfd_written_once_per_hold(void **state)
{
    int fd;
    int i;

    (void)state;
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(fd >= 0);
    for (i = 0; i < 10; i++)
        wakeup_post(eventfd_wake, &fd);
    assert_int_equal(eventfd_take(fd), 10);
    wakeup_hold();
    for (i = 0; i < 10; i++)
        wakeup_post(eventfd_wake, &fd);
    assert_int_equal(eventfd_take(fd), 0); /* nothing written yet */
    wakeup_release();
    assert_int_equal(eventfd_take(fd), 1);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unheld_wakes_at_once),
        cmocka_unit_test(test_hold_wakes_once_in_order),
        cmocka_unit_test(test_holds_nest),
        cmocka_unit_test(test_many_distinct_all_woken),
        cmocka_unit_test(test_eventfd_written_once_per_hold),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
