#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/err.h"

static void
test_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(err_name(0), "ERR_OK");
    assert_string_equal(err_str(0), "success");
    assert_string_equal(err_name(ERR_NOTFOUND), "ERR_NOTFOUND");
    assert_string_equal(err_str(ERR_NOTFOUND), "not found");
    assert_string_equal(err_name(ERR_INTERNAL), "ERR_INTERNAL");
    assert_string_equal(err_name(-1000), "ERR_UNKNOWN");
    assert_string_equal(err_name(5), "ERR_UNKNOWN");
    assert_string_equal(err_str(-1000), "unknown error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
