/* Unit tests of util/suggest.c: "did you mean" for mistyped words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/suggest.h"

static const char *const commands[] = {
    "help",        "version",  "serve", "verify", "endpoints", "events", "deliveries",
    "event-types", "accounts", "keys",  "listen", "db",        "trigger"};

static const char *
best(const char *typed)
{
    struct suggest s;
    size_t i;

    suggest_init(&s, typed);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        suggest_add(&s, commands[i]);
    return suggest_best(&s);
}

static void
test_distance(void **state)
{
    (void)state;
    assert_int_equal(suggest_distance("", ""), 0);
    assert_int_equal(suggest_distance("abc", ""), 3);
    assert_int_equal(suggest_distance("kitten", "sitting"), 3);
    assert_int_equal(suggest_distance("lsiten", "listen"), 1); /* a swap counts once */
    assert_int_equal(suggest_distance("endpoint", "endpoints"), 1);
}

static void
test_best(void **state)
{
    (void)state;
    assert_string_equal(best("lisen"), "listen");
    assert_string_equal(best("endpoint"), "endpoints");
    assert_string_equal(best("delivery"), "deliveries");
    assert_string_equal(best("triger"), "trigger");
    assert_string_equal(best("evnets"), "events");
    assert_null(best("listen")); /* an exact match is no suggestion */
    assert_null(best("cp"));     /* too far from anything */
    assert_null(best("frobnicate"));
}

static void
test_too_long(void **state)
{
    char big[200];

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(suggest_distance(big, "a") > 100);
    assert_null(best(big));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_best),
        cmocka_unit_test(test_too_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
