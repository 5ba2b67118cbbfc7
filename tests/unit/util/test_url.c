#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/url.h"

static void
expect_ok(const char *url, int allow_http)
{
    char err[256] = "";

    if (url_check(url, allow_http, err, sizeof(err)) != 0)
        fail_msg("'%s' refused: %s", url, err);
}

/* Refused, with a message that starts with "url: " and contains want. */
static void
expect_bad(const char *url, int allow_http, const char *want)
{
    char err[256] = "";

    assert_int_equal(url_check(url, allow_http, err, sizeof(err)), ERR_INVAL);
    assert_true(strncmp(err, "url: ", 5) == 0);
    if (strstr(err, want) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", url, err, want);
}

static void
test_accepts(void **state)
{
    (void)state;
    expect_ok("https://example.com/hook", 0);
    expect_ok("https://example.com", 0);
    expect_ok("https://example.com:8443/a/b?x=1&y=2", 0);
    expect_ok("https://[2001:db8::1]:443/hook", 0);
    expect_ok("HTTPS://Example.COM/Hook", 0);
    expect_ok("http://127.0.0.1:8080/hook", 1);
    expect_ok("https://127.0.0.1:1/hook", 1);
    expect_ok("https://h:65535/", 0);
}

static void
test_scheme(void **state)
{
    (void)state;
    expect_bad("http://example.com/hook", 0, "without --allow-http");
    expect_bad("ftp://example.com/hook", 0, "must start with https://");
    expect_bad("ftp://example.com/hook", 1, "https:// or http://");
    expect_bad("example.com/hook", 0, "must start with https://");
    expect_bad("//example.com/hook", 0, "must start with https://");
    expect_bad("", 0, "empty");
}

static void
test_parts(void **state)
{
    char big[2100];

    (void)state;
    expect_bad("https://user:pw@example.com/hook", 0, "user name or password");
    expect_bad("https://user@example.com/hook", 0, "user name or password");
    expect_bad("https://example.com/hook#frag", 0, "fragment");
    expect_bad("http://127/?=#", 1, "fragment");
    expect_bad("https:///hook", 0, "host");
    expect_bad("https://example.com:0/hook", 0, "port");
    expect_bad("https://example.com:65536/hook", 0, "port");
    expect_bad("https://example.com:abc/hook", 0, "port");
    expect_bad("https://exa mple.com/hook", 0, "space");
    expect_bad("https://example.com/ho\nok", 0, "control");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "https://example.com/", 20);
    expect_bad(big, 0, "longer than 2048");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_scheme),
        cmocka_unit_test(test_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
