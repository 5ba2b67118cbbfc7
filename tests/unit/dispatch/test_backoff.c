/* The retry schedule, its parser and Retry-After arithmetic (src/dispatch/backoff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "util/err.h"

static void
test_default_is_workflux(void **state)
{
    struct dispatch_config cfg;

    (void)state;
    dispatch_config_default(&cfg);
    assert_int_equal(cfg.nschedule, 5);
    assert_int_equal(cfg.schedule[0], 0);
    assert_int_equal(cfg.schedule[1], 60000);
    assert_int_equal(cfg.schedule[2], 300000);
    assert_int_equal(cfg.schedule[3], 900000);
    assert_int_equal(cfg.schedule[4], 3600000);
    assert_int_equal(cfg.attempt_timeout_ms, 15000);
    assert_int_equal(cfg.connect_timeout_ms, 5000);
    assert_true(cfg.threads > 0);
    assert_true(cfg.per_endpoint > 0);
    assert_true(cfg.max_in_flight >= cfg.per_endpoint);
    assert_null(cfg.allow_networks);
    assert_null(cfg.ca_file);
    assert_int_equal(cfg.allow_http, 0);
}

static void
test_workflux_delays(void **state)
{
    struct dispatch_config cfg;

    (void)state;
    dispatch_config_default(&cfg);
    /* After attempt 1 fails, attempt 2 (index 1) waits 1 min; and so on. */
    assert_int_equal(backoff_delay(&cfg, 0, -1), 0);
    assert_int_equal(backoff_delay(&cfg, 1, -1), 60000);
    assert_int_equal(backoff_delay(&cfg, 2, -1), 300000);
    assert_int_equal(backoff_delay(&cfg, 3, -1), 900000);
    assert_int_equal(backoff_delay(&cfg, 4, -1), 3600000);
    /* After the fifth failed attempt the round is over. */
    assert_int_equal(backoff_delay(&cfg, 5, -1), -1);
    assert_int_equal(backoff_delay(&cfg, 6, -1), -1);
    assert_int_equal(backoff_delay(&cfg, -1, -1), -1);
}

static void
test_retry_after_only_when_longer(void **state)
{
    struct dispatch_config cfg;

    (void)state;
    dispatch_config_default(&cfg);
    /* Shorter than the schedule: the schedule wins. */
    assert_int_equal(backoff_delay(&cfg, 1, 30000), 60000);
    assert_int_equal(backoff_delay(&cfg, 1, 0), 60000);
    /* Longer: honoured. */
    assert_int_equal(backoff_delay(&cfg, 1, 120000), 120000);
    assert_int_equal(backoff_delay(&cfg, 3, 1800000), 1800000);
    /* Capped at one hour. */
    assert_int_equal(backoff_delay(&cfg, 1, 7200000), 3600000);
    assert_int_equal(backoff_delay(&cfg, 1, INT64_MAX), 3600000);
    /* Never resurrects an exhausted round. */
    assert_int_equal(backoff_delay(&cfg, 5, 120000), -1);
}

static void
test_parse_custom(void **state)
{
    struct dispatch_config cfg;
    char err[256];

    (void)state;
    dispatch_config_default(&cfg);
    assert_int_equal(dispatch_schedule_parse(&cfg, "0ms,100ms,200ms", err, sizeof(err)), 0);
    assert_int_equal(cfg.nschedule, 3);
    assert_int_equal(cfg.schedule[0], 0);
    assert_int_equal(cfg.schedule[1], 100);
    assert_int_equal(cfg.schedule[2], 200);
    assert_int_equal(cfg.schedule[3], 0);
    assert_int_equal(backoff_delay(&cfg, 2, -1), 200);
    assert_int_equal(backoff_delay(&cfg, 3, -1), -1);

    assert_int_equal(dispatch_schedule_parse(&cfg, "0s,1m,5m,15m,1h", err, sizeof(err)), 0);
    assert_int_equal(cfg.nschedule, 5);
    assert_int_equal(cfg.schedule[4], 3600000);

    assert_int_equal(dispatch_schedule_parse(&cfg, " 1s , 2s ", err, sizeof(err)), 0);
    assert_int_equal(cfg.nschedule, 2);
    assert_int_equal(cfg.schedule[0], 1000);
    assert_int_equal(cfg.schedule[1], 2000);

    assert_int_equal(dispatch_schedule_parse(&cfg, "5m", err, sizeof(err)), 0);
    assert_int_equal(cfg.nschedule, 1);
    assert_int_equal(backoff_delay(&cfg, 0, -1), 300000);
    assert_int_equal(backoff_delay(&cfg, 1, -1), -1);
}

static void
test_parse_max_items(void **state)
{
    struct dispatch_config cfg;
    char list[512] = "";
    char err[256];
    int i;

    (void)state;
    dispatch_config_default(&cfg);
    for (i = 0; i < DISPATCH_MAX_ATTEMPTS; i++)
        strcat(list, i == 0 ? "1ms" : ",1ms");
    assert_int_equal(dispatch_schedule_parse(&cfg, list, err, sizeof(err)), 0);
    assert_int_equal(cfg.nschedule, DISPATCH_MAX_ATTEMPTS);
    strcat(list, ",1ms");
    assert_int_equal(dispatch_schedule_parse(&cfg, list, err, sizeof(err)), ERR_PARSE);
    assert_non_null(strstr(err, "more than 32"));
    /* A failed parse leaves the config as it was. */
    assert_int_equal(cfg.nschedule, DISPATCH_MAX_ATTEMPTS);
}

static void
expect_parse_error(const char *list, const char *needle)
{
    struct dispatch_config cfg;
    char err[256] = "";

    dispatch_config_default(&cfg);
    assert_int_equal(dispatch_schedule_parse(&cfg, list, err, sizeof(err)), ERR_PARSE);
    if (strstr(err, needle) == NULL)
        fail_msg("error for '%s' is '%s', expected it to contain '%s'", list, err, needle);
    assert_int_equal(cfg.nschedule, 5); /* untouched */
}

static void
test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("", "empty");
    expect_parse_error("0ms,,1m", "item 2 is empty");
    expect_parse_error("0ms,1m,", "item 3 is empty");
    expect_parse_error(",1m", "item 1 is empty");
    expect_parse_error("0ms,5x", "item 2 '5x'");
    expect_parse_error("1m,5", "item 2 '5'");
    expect_parse_error("-1s", "item 1 '-1s'");
    expect_parse_error("1.5s", "item 1 '1.5s'");
    expect_parse_error("ms", "item 1 'ms'");
    expect_parse_error("1 s", "item 1 '1 s'");
    expect_parse_error("9000h", "longer than 366 days");
    expect_parse_error("99999999999999999999ms", "item 1");
}

static void
test_retry_after_seconds(void **state)
{
    int64_t d = -5;

    (void)state;
    assert_int_equal(backoff_retry_after_parse("120", 0, &d), 0);
    assert_int_equal(d, 120000);
    assert_int_equal(backoff_retry_after_parse(" 0 ", 0, &d), 0);
    assert_int_equal(d, 0);
    /* Enormous values do not overflow; the cap applies later. */
    assert_int_equal(backoff_retry_after_parse("99999999999999999999999", 0, &d), 0);
    assert_true(d >= 3600000);
    assert_int_equal(backoff_retry_after_parse("12a", 0, &d), ERR_PARSE);
    assert_int_equal(backoff_retry_after_parse("-3", 0, &d), ERR_PARSE);
    assert_int_equal(backoff_retry_after_parse("1.5", 0, &d), ERR_PARSE);
    assert_int_equal(backoff_retry_after_parse("", 0, &d), ERR_PARSE);
    assert_int_equal(backoff_retry_after_parse("   ", 0, &d), ERR_PARSE);
}

static void
test_retry_after_dates(void **state)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 s after the epoch. */
    const int64_t at = 784111777LL * 1000;
    int64_t d = -5;

    (void)state;
    assert_int_equal(backoff_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", at - 90000, &d), 0);
    assert_int_equal(d, 90000);
    /* The obsolete forms of RFC 9110 too. */
    assert_int_equal(backoff_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", at - 1000, &d), 0);
    assert_int_equal(d, 1000);
    assert_int_equal(backoff_retry_after_parse("Sun Nov  6 08:49:37 1994", at - 2000, &d), 0);
    assert_int_equal(d, 2000);
    /* A date in the past asks for no delay. */
    assert_int_equal(backoff_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", at + 5000, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(backoff_retry_after_parse("tomorrow-ish", at, &d), ERR_PARSE);
    assert_int_equal(backoff_retry_after_parse("Sun, 99 Nox 1994 GMT", at, &d), ERR_PARSE);
}

static void
test_retry_after_then_delay(void **state)
{
    struct dispatch_config cfg;
    char err[256];
    int64_t ra;

    (void)state;
    dispatch_config_default(&cfg);
    assert_int_equal(dispatch_schedule_parse(&cfg, "0ms,100ms,200ms", err, sizeof(err)), 0);
    assert_int_equal(backoff_retry_after_parse("2", 0, &ra), 0);
    assert_int_equal(backoff_delay(&cfg, 1, ra), 2000);
    assert_int_equal(backoff_retry_after_parse("86400", 0, &ra), 0);
    assert_int_equal(backoff_delay(&cfg, 1, ra), 3600000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_workflux),
        cmocka_unit_test(test_workflux_delays),
        cmocka_unit_test(test_retry_after_only_when_longer),
        cmocka_unit_test(test_parse_custom),
        cmocka_unit_test(test_parse_max_items),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_then_delay),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
