/* Unit tests of util/strlist.c: walking comma lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/strlist.h"

/* Walks list and joins its items with '|' into out. Returns the item count. */
static int
walk(const char *list, char *out, size_t outlen)
{
    const char *p = list, *item;
    size_t len, used = 0;
    int n = 0;

    out[0] = '\0';
    while (strlist_next(&p, &item, &len)) {
        used += (size_t)snprintf(out + used, outlen - used, "%s%.*s", n > 0 ? "|" : "",
                                 (int)len, item);
        n++;
    }
    assert_null(p);
    assert_int_equal(strlist_next(&p, &item, &len), 0);
    return n;
}

static void
test_items_trimmed(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(walk("0ms, 1m ,\t5m", out, sizeof(out)), 3);
    assert_string_equal(out, "0ms|1m|5m");
    assert_int_equal(walk("one", out, sizeof(out)), 1);
    assert_string_equal(out, "one");
}

static void
test_empty_items_are_items(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(walk("a,,b", out, sizeof(out)), 3);
    assert_string_equal(out, "a||b");
    assert_int_equal(walk("a,", out, sizeof(out)), 2);
    assert_string_equal(out, "a|");
    assert_int_equal(walk(" , ", out, sizeof(out)), 2);
    assert_string_equal(out, "|");
    assert_int_equal(walk("", out, sizeof(out)), 1);
    assert_string_equal(out, "");
}

/* Words: spaces, tabs and commas all separate, runs of them count once. */
static void
test_words(void **state)
{
    const char *p = " events:write,deliveries:read\t, admin ", *item;
    size_t len;

    (void)state;
    assert_true(strlist_next_word(&p, &item, &len));
    assert_int_equal(len, 12);
    assert_memory_equal(item, "events:write", 12);
    assert_true(strlist_next_word(&p, &item, &len));
    assert_memory_equal(item, "deliveries:read", len);
    assert_true(strlist_next_word(&p, &item, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(item, "admin", 5);
    assert_false(strlist_next_word(&p, &item, &len));
    assert_false(strlist_next_word(&p, &item, &len));
    p = "";
    assert_false(strlist_next_word(&p, &item, &len));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_trimmed),
        cmocka_unit_test(test_empty_items_are_items),
        cmocka_unit_test(test_words),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
