#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "web/web.h"

static const char *
header(const struct api_static *a, const char *name)
{
    size_t i;

    for (i = 0; a->headers != NULL && a->headers[i] != NULL; i += 2) {
        if (strcmp(a->headers[i], name) == 0)
            return a->headers[i + 1];
    }
    return NULL;
}

static int
contains(const struct api_static *a, const char *needle)
{
    size_t n = strlen(needle);
    size_t i;

    for (i = 0; i + n <= a->len; i++) {
        if (memcmp(a->data + i, needle, n) == 0)
            return 1;
    }
    return 0;
}

static void
test_root_is_index(void **state)
{
    struct api_static a;

    (void)state;
    assert_int_equal(web_asset_find("/", &a), 0);
    assert_string_equal(a.content_type, "text/html; charset=utf-8");
    assert_true(a.len > 100);
    assert_true(contains(&a, "<!doctype html>"));
    assert_true(contains(&a, "/app.js"));
}

static void
test_html_security_headers(void **state)
{
    struct api_static a;
    const char *csp;

    (void)state;
    assert_int_equal(web_asset_find("/", &a), 0);
    csp = header(&a, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'self'"));
    assert_string_equal(header(&a, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header(&a, "Referrer-Policy"), "no-referrer");
    assert_string_equal(header(&a, "X-Frame-Options"), "DENY");
}

static void
test_assets_by_type(void **state)
{
    struct api_static a;

    (void)state;
    assert_int_equal(web_asset_find("/app.js", &a), 0);
    assert_string_equal(a.content_type, "text/javascript; charset=utf-8");
    assert_true(contains(&a, "import"));
    assert_null(header(&a, "Content-Security-Policy"));
    assert_string_equal(header(&a, "X-Content-Type-Options"), "nosniff");
    assert_int_equal(web_asset_find("/app.css", &a), 0);
    assert_string_equal(a.content_type, "text/css; charset=utf-8");
    assert_int_equal(web_asset_find("/favicon.svg", &a), 0);
    assert_string_equal(a.content_type, "image/svg+xml");
    assert_int_equal(web_asset_find("/view_charts.js", &a), 0);
}

static void
test_app_routes_get_index(void **state)
{
    struct api_static a;
    struct api_static idx;

    (void)state;
    assert_int_equal(web_asset_find("/index.html", &idx), 0);
    assert_int_equal(web_asset_find("/endpoints", &a), 0);
    assert_ptr_equal(a.data, idx.data);
    assert_int_equal(web_asset_find("/deliveries/dlv_0123abc", &a), 0);
    assert_ptr_equal(a.data, idx.data);
    assert_int_equal(web_asset_find("/endpoints/ep_1/edit", &a), 0);
    assert_ptr_equal(a.data, idx.data);
}

static void
test_not_found(void **state)
{
    struct api_static a;

    (void)state;
    assert_int_equal(web_asset_find("/nope.js", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/favicon.ico", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/v1/endpoints", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/v1", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/../etc/passwd", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/a/../app.js", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("app.js", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find(NULL, &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/end points", &a), ERR_NOTFOUND);
    assert_int_equal(web_asset_find("/%2e%2e/x", &a), ERR_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_is_index),  cmocka_unit_test(test_html_security_headers),
        cmocka_unit_test(test_assets_by_type), cmocka_unit_test(test_app_routes_get_index),
        cmocka_unit_test(test_not_found),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
