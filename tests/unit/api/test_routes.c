#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "api/handlers.h"

static void
test_table_is_well_formed(void **state)
{
    const struct route *a, *b;
    int n = 0;

    (void)state;
    for (a = api_routes; a->method != NULL; a++) {
        n++;
        assert_non_null(a->fn);
        assert_non_null(a->summary);
        assert_true(a->summary[0] != '\0');
        assert_true(a->pattern[0] == '/');
        for (b = a + 1; b->method != NULL; b++) {
            if (strcmp(a->method, b->method) == 0 && strcmp(a->pattern, b->pattern) == 0)
                fail_msg("duplicate route %s %s", a->method, a->pattern);
        }
        /* A body-taking route says whether the body is required or optional, not both. */
        assert_false((a->flags & ROUTE_JSON) && (a->flags & ROUTE_JSON_OPT));
        /* Every route but the public ones declares the one scope it needs. */
        if (!(a->flags & ROUTE_PUBLIC) && (a->scope == 0 || api_scope_name(a->scope) == NULL))
            fail_msg("route %s %s declares no scope", a->method, a->pattern);
        if ((a->flags & ROUTE_ADMIN) && a->scope != SCOPE_ADMIN)
            fail_msg("admin route %s %s needs the admin scope", a->method, a->pattern);
        /* A handler that parses its body itself still takes a required JSON one. */
        assert_true(!(a->flags & ROUTE_RAW) || (a->flags & ROUTE_JSON));
    }
    /* Every handler of handlers.h is routed. */
    assert_int_equal(n, 48);
}

static void
test_body_cap(void **state)
{
    (void)state;
    assert_int_equal(api_body_cap("POST", "/v1/events/batch"), API_MAX_BULK_BODY);
    assert_int_equal(api_body_cap("POST", "/v1/events"), API_MAX_BODY);
    assert_int_equal(api_body_cap("GET", "/v1/events/batch"), API_MAX_BODY);
    assert_int_equal(api_body_cap("POST", "/nowhere"), API_MAX_BODY);
}

static void
test_find_with_params(void **state)
{
    struct api_req r;
    const struct route *rt;
    int matched;

    (void)state;
    memset(&r, 0, sizeof(r));
    rt = api_route_find("POST", "/v1/endpoints/ep_1/secret/rotate", &r, &matched);
    assert_non_null(rt);
    assert_ptr_equal(rt->fn, h_endpoints_rotate);
    assert_int_equal(r.nparams, 1);
    assert_string_equal(r.params[0], "ep_1");

    memset(&r, 0, sizeof(r));
    rt = api_route_find("GET", "/v1/accounts/acct_default/api-keys", &r, &matched);
    assert_non_null(rt);
    assert_ptr_equal(rt->fn, h_keys_list);
    assert_string_equal(r.params[0], "acct_default");

    rt = api_route_find("GET", "/v1/endpoints", &r, &matched);
    assert_ptr_equal(rt->fn, h_endpoints_list);
    rt = api_route_find("POST", "/v1/endpoints", &r, &matched);
    assert_ptr_equal(rt->fn, h_endpoints_create);
    rt = api_route_find("GET", "/v1/stats/series", &r, &matched);
    assert_ptr_equal(rt->fn, h_stats_series);
}

static void
test_not_found_and_wrong_method(void **state)
{
    struct api_req r;
    int matched;

    (void)state;
    memset(&r, 0, sizeof(r));
    assert_null(api_route_find("GET", "/v1/endpoints/ep_1/secret/rotate", &r, &matched));
    assert_int_equal(matched, 1);
    assert_null(api_route_find("GET", "/v1/endpoints//secret", &r, &matched));
    assert_int_equal(matched, 0);
    assert_null(api_route_find("GET", "/v1/endpoints/ep_1/", &r, &matched));
    assert_int_equal(matched, 0);
    assert_null(api_route_find("GET", "/v1/endpoints/", &r, &matched));
    assert_int_equal(matched, 0);
    assert_null(api_route_find("GET", "/v1/endpointsx", &r, &matched));
    assert_int_equal(matched, 0);
    assert_null(api_route_find("GET", "", &r, &matched));
    assert_null(api_route_find("GET", "/", &r, &matched));
    assert_int_equal(matched, 0);
}

static void
test_long_parameter_is_no_match(void **state)
{
    struct api_req r;
    char path[600];
    int matched;

    (void)state;
    memset(&r, 0, sizeof(r));
    strcpy(path, "/v1/endpoints/");
    memset(path + strlen(path), 'a', 400);
    path[14 + 400] = '\0';
    assert_null(api_route_find("GET", path, &r, &matched));
}

static void
test_allow(void **state)
{
    char allow[64];

    (void)state;
    assert_int_equal(api_route_allow("/v1/endpoints", allow, sizeof(allow)), 2);
    assert_string_equal(allow, "POST, GET");
    assert_int_equal(api_route_allow("/v1/endpoints/ep_1", allow, sizeof(allow)), 3);
    assert_string_equal(allow, "GET, PATCH, DELETE");
    assert_int_equal(api_route_allow("/nope", allow, sizeof(allow)), 0);
    assert_string_equal(allow, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_well_formed),
        cmocka_unit_test(test_find_with_params),
        cmocka_unit_test(test_not_found_and_wrong_method),
        cmocka_unit_test(test_long_parameter_is_no_match),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_body_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
