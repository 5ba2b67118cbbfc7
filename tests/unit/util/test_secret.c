/*
 * secret_free() (src/util/secret.c). That the bytes are cleared cannot be
 * observed after free() without undefined behaviour; what is checked is the
 * ownership: NULL is a no-op, and the string is freed (LeakSanitizer would
 * report it otherwise, and a double free would abort under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/secret.h"

static void
test_null_is_a_noop(void **state)
{
    (void)state;
    secret_free(NULL);
}

static void
test_frees_secrets_of_any_length(void **state)
{
    char *s;
    size_t n;

    (void)state;
    for (n = 0; n < 300; n += 37) {
        s = malloc(n + 1);
        assert_non_null(s);
        memset(s, 'k', n);
        s[n] = '\0';
        secret_free(s);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_is_a_noop),
        cmocka_unit_test(test_frees_secrets_of_any_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
