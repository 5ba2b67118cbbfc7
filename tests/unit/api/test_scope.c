#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "util/err.h"

static void
test_parse_and_format(void **state)
{
    unsigned bits = 0;
    char bad[16], out[STORE_SCOPES_MAX];

    (void)state;
    assert_int_equal(api_scopes_parse("events:write deliveries:read", &bits, bad, sizeof(bad)), 0);
    assert_int_equal(bits, SCOPE_EVENTS_WRITE | SCOPE_DELIVERIES_READ);
    assert_int_equal(api_scopes_parse(" admin,,events:read ", &bits, bad, sizeof(bad)), 0);
    assert_int_equal(bits, SCOPE_ADMIN | SCOPE_EVENTS_READ);
    assert_int_equal(api_scopes_parse("", &bits, bad, sizeof(bad)), 0);
    assert_int_equal(bits, 0);
    assert_int_equal(api_scopes_parse("events:read events:fly", &bits, bad, sizeof(bad)),
                     ERR_INVAL);
    assert_string_equal(bad, "events:fly");
    /* A prefix or a longer name is no scope. */
    assert_int_equal(api_scopes_parse("events", &bits, bad, sizeof(bad)), ERR_INVAL);
    assert_int_equal(api_scopes_parse("events:reads", &bits, bad, sizeof(bad)), ERR_INVAL);
    api_scopes_format(SCOPE_ALL, out, sizeof(out));
    assert_string_equal(out, "events:write events:read endpoints:read endpoints:write "
                             "deliveries:read deliveries:write admin");
    api_scopes_format(0, out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(api_scopes_parse(out, &bits, bad, sizeof(bad)), 0);
    assert_string_equal(api_scope_name(SCOPE_ENDPOINTS_WRITE), "endpoints:write");
    assert_null(api_scope_name(SCOPE_EVENTS_READ | SCOPE_EVENTS_WRITE));
    assert_null(api_scope_name(0));
}

static void
test_cover_and_keys(void **state)
{
    struct api_key k;

    (void)state;
    assert_true(api_scopes_cover(SCOPE_ADMIN, SCOPE_DELIVERIES_WRITE));
    assert_true(api_scopes_cover(SCOPE_ACCOUNT, SCOPE_ENDPOINTS_READ));
    assert_false(api_scopes_cover(SCOPE_ACCOUNT, SCOPE_ADMIN));
    assert_false(api_scopes_cover(SCOPE_EVENTS_READ, SCOPE_EVENTS_READ | SCOPE_EVENTS_WRITE));
    memset(&k, 0, sizeof(k));
    /* A key made before scopes: its account's, and admin when it is an admin key. */
    assert_int_equal(api_key_scopes(&k), SCOPE_ACCOUNT);
    k.admin = 1;
    assert_int_equal(api_key_scopes(&k), SCOPE_ALL);
    strcpy(k.scopes, "events:read");
    assert_int_equal(api_key_scopes(&k), SCOPE_EVENTS_READ);
    /* A stored name this version does not know grants nothing. */
    strcpy(k.scopes, "events:read future:thing");
    assert_int_equal(api_key_scopes(&k), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_cover_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
