#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "util/config.h"
#include "util/err.h"

static const struct config_opt opts[] = {
    {"listen", "HOST:PORT", "127.0.0.1:8080", "address to listen on", 1, 0},
    {"allow-http", NULL, NULL, "accept http:// endpoint URLs", 1, 0},
    {"json", NULL, NULL, "print API objects", 0, 0},
    {"check", NULL, NULL, "check only", 0, 'n'},
    {0},
};

static void
test_defaults_env_and_flags(void **state)
{
    char *argv[] = {"serve", "pos1", "--listen", "0.0.0.0:1", "pos2", NULL};
    struct config c;
    char err[128];

    (void)state;
    unsetenv("FLUXHOOK_LISTEN");
    setenv("FLUXHOOK_ALLOW_HTTP", "true", 1);
    setenv("FLUXHOOK_JSON", "1", 1); /* no env twin: ignored */
    assert_int_equal(config_parse(&c, opts, 5, argv, err, sizeof(err)), 0);
    assert_string_equal(config_get(&c, "listen"), "0.0.0.0:1");
    assert_true(config_bool(&c, "allow-http"));
    assert_false(config_bool(&c, "json"));
    assert_int_equal(c.nargs, 2);
    assert_string_equal(c.args[1], "pos2");

    setenv("FLUXHOOK_LISTEN", "127.0.0.1:9", 1);
    assert_int_equal(config_parse(&c, opts, 2, argv, err, sizeof(err)), 0);
    assert_string_equal(config_get(&c, "listen"), "127.0.0.1:9");
    unsetenv("FLUXHOOK_LISTEN");
    unsetenv("FLUXHOOK_ALLOW_HTTP");
    unsetenv("FLUXHOOK_JSON");
}

static void
test_equals_short_and_double_dash(void **state)
{
    char *argv[] = {"x", "--listen=h:2", "-n", "--", "--json", NULL};
    struct config c;
    char err[128];

    (void)state;
    assert_int_equal(config_parse(&c, opts, 5, argv, err, sizeof(err)), 0);
    assert_string_equal(config_get(&c, "listen"), "h:2");
    assert_true(config_bool(&c, "check"));
    assert_false(config_bool(&c, "json"));
    assert_int_equal(c.nargs, 1);
    assert_string_equal(c.args[0], "--json");
}

static void
test_errors_name_the_problem(void **state)
{
    char *unknown[] = {"x", "--nope", NULL};
    char *missing[] = {"x", "--listen", NULL};
    char *help[] = {"x", "--help", NULL};
    struct config c;
    char err[128];

    (void)state;
    assert_int_equal(config_parse(&c, opts, 2, unknown, err, sizeof(err)), ERR_INVAL);
    assert_string_equal(err, "unknown option '--nope'");
    assert_int_equal(config_parse(&c, opts, 2, missing, err, sizeof(err)), ERR_INVAL);
    assert_string_equal(err, "option '--listen' needs a value (HOST:PORT)");
    assert_int_equal(config_parse(&c, opts, 2, help, err, sizeof(err)), 0);
    assert_true(c.help);
}

static void
test_env_name(void **state)
{
    char out[64];

    (void)state;
    config_env_name("retry-schedule", out, sizeof(out));
    assert_string_equal(out, "FLUXHOOK_RETRY_SCHEDULE");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_env_and_flags),
        cmocka_unit_test(test_equals_short_and_double_dash),
        cmocka_unit_test(test_errors_name_the_problem),
        cmocka_unit_test(test_env_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
