#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/err.h"

static void
test_parse_rfc3339_valid(void **state)
{
    int64_t ms;

    (void)state;
    assert_int_equal(clock_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(clock_parse_rfc3339("2024-01-01T12:00:00Z", &ms), 0);
    assert_int_equal(ms, 1704110400000LL);
    assert_int_equal(clock_parse_rfc3339("2024-01-01T12:00:00.5Z", &ms), 0);
    assert_int_equal(ms, 1704110400500LL);
    assert_int_equal(clock_parse_rfc3339("2024-02-29T23:59:59.123456789Z", &ms), 0);
    assert_int_equal(ms % 1000, 123);
    assert_int_equal(clock_parse_rfc3339("2024-01-01t12:00:00z", &ms), 0);
}

static void
test_parse_rfc3339_invalid(void **state)
{
    static const char *const bad[] = {
        "", "2024-01-01", "2024-01-01T12:00:00", "2024-01-01T12:00:00+02:00",
        "2024-01-01T12:00:00+00:00", "2024-13-01T12:00:00Z", "2023-02-29T12:00:00Z",
        "2024-01-32T12:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00.1234567890Z", "2024-01-01 12:00:00Z",
        "24-01-01T12:00:00Z", "2024-01-01T12:00:00Zjunk", "yesterday",
    };
    size_t i;
    int64_t ms;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (clock_parse_rfc3339(bad[i], &ms) != ERR_PARSE)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void
test_format_roundtrip(void **state)
{
    char out[CLOCK_RFC3339_MAX];
    int64_t ms;

    (void)state;
    clock_format_rfc3339(1704110400123LL, out);
    assert_string_equal(out, "2024-01-01T12:00:00.123Z");
    assert_int_equal(clock_parse_rfc3339(out, &ms), 0);
    assert_int_equal(ms, 1704110400123LL);
    clock_format_rfc3339_s(1704110400999LL, out);
    assert_string_equal(out, "2024-01-01T12:00:00Z");
}

/* The digit-by-digit formats say what strftime-style printf says, on every kind of date. */
static void
test_format_matches_printf(void **state)
{
    static const int64_t at[] = {
        0,
        999,
        1000,
        -1,
        -1000,
        -1001,
        951782400000LL /* 2000-02-29 */,
        1704110400999LL,
        4102444799999LL /* 2099-12-31T23:59:59.999 */,
        -62167219200000LL /* 0000-01-01 */,
        253402300799999LL /* 9999-12-31 */,
        253402300800000LL /* 10000-01-01: the printf fallback */,
    };
    char got[CLOCK_RFC3339_MAX], want[CLOCK_RFC3339_MAX];
    struct tm tm;
    time_t secs;
    int64_t ms;
    size_t i;
    int k;

    (void)state;
    for (i = 0; i < sizeof(at) / sizeof(at[0]) + 200; i++) {
        ms = i < sizeof(at) / sizeof(at[0]) ? at[i] : (int64_t)i * 7919LL * 86400001LL;
        secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        assert_non_null(gmtime_r(&secs, &tm));
        for (k = 0; k < 2; k++) {
            if (k == 0) {
                clock_format_rfc3339(ms, got);
                snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, (int)(ms - (int64_t)secs * 1000));
            } else {
                clock_format_rfc3339_s(ms, got);
                snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
            }
            assert_string_equal(got, want);
        }
    }
}

static void
test_durations(void **state)
{
    int64_t ms;

    (void)state;
    assert_int_equal(clock_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(clock_parse_duration("15s", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(clock_parse_duration("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(clock_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(clock_parse_duration("0s", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(clock_parse_duration("", &ms), ERR_PARSE);
    assert_int_equal(clock_parse_duration("5", &ms), ERR_PARSE);
    assert_int_equal(clock_parse_duration("-5s", &ms), ERR_PARSE);
    assert_int_equal(clock_parse_duration("5d", &ms), ERR_PARSE);
    assert_int_equal(clock_parse_duration("1.5s", &ms), ERR_PARSE);
    assert_int_equal(clock_parse_duration("99999999999999999999h", &ms), ERR_PARSE);
}

static void
test_monotonic(void **state)
{
    int64_t a, b;

    (void)state;
    a = clock_mono_ms();
    b = clock_mono_ms();
    assert_true(b >= a);
    assert_true(clock_now_ms() > 1700000000000LL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rfc3339_valid), cmocka_unit_test(test_parse_rfc3339_invalid),
        cmocka_unit_test(test_format_roundtrip),    cmocka_unit_test(test_format_matches_printf),
        cmocka_unit_test(test_durations),           cmocka_unit_test(test_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
