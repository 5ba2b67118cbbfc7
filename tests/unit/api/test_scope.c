#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* Extra answer fields: decimals as printf writes them, and no more than API_MAX_HEADERS. */
static void
test_header_add_int(void **state)
{
    static const long long vals[] = {0, 7, 10000, -5, INT64_MAX, INT64_MIN};
    static struct api_req r;
    char want[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(api_header_add_int(&r, "RateLimit-Limit", vals[i]), 0);
        snprintf(want, sizeof(want), "%lld", vals[i]);
        assert_int_equal(r.nheaders, 1);
        assert_string_equal(r.headers[0].name, "RateLimit-Limit");
        assert_string_equal(r.headers[0].value, want);
    }
    memset(&r, 0, sizeof(r));
    for (i = 0; i < API_MAX_HEADERS; i++)
        assert_int_equal(api_header_add_int(&r, "X", (long long)i), 0);
    assert_int_equal(api_header_add_int(&r, "X", 1), ERR_TOOBIG);
    assert_int_equal(api_header_add(&r, "X", "%d", 1), ERR_TOOBIG);
    assert_int_equal(r.nheaders, API_MAX_HEADERS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_cover_and_keys),
        cmocka_unit_test(test_header_add_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
