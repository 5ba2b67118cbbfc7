/*
 * Allocation-failure ("torture") mode of the unit tests, as curl's torture
 * tests do: with FLUXHOOK_TORTURE set, each test of a program is first run
 * once to count the allocations it makes (fluxhook's own, SQLite's, jansson's
 * and OpenSSL's), then again once per n with the n-th allocation failing,
 * each run in a child process of its own.
 *
 * A run where an allocation failed may end the test with a failed assertion:
 * that is the error outcome the test accepts. What fails the test is a crash,
 * a hang, a sanitizer report, memory that the code under test lost (checked
 * with LeakSanitizer at the failed assertion, while the test's own objects
 * are still reachable from its stack, and again at the end of a run that
 * passed), or a failure where no allocation failed.
 *
 * FLUXHOOK_TORTURE=0 walks every n; FLUXHOOK_TORTURE=K at most K of them,
 * evenly spaced from n = 1 (FLUXHOOK_TORTURE_OFFSET shifts them).
 * FLUXHOOK_TORTURE_TEST=NAME limits the run to one test.
 */
#ifndef FLUXHOOK_TESTS_TORTURE_H
#define FLUXHOOK_TESTS_TORTURE_H

#include <stddef.h>

/*
 * Runs tests like cmocka_run_group_tests_name(), or in torture mode when
 * FLUXHOOK_TORTURE is set. Returns the number of tests that failed.
 */
int torture_run_group(const char *name, const struct CMUnitTest *tests, size_t count,
                      CMFixtureFunction group_setup, CMFixtureFunction group_teardown);

/*
 * For a test of one error path in a normal run: the n-th allocation from now
 * (1: the next one) fails, then none. Returns 0, or -1 in torture mode, where
 * the test should skip() (the sweep already fails every allocation).
 */
int torture_fail_next(long n);

#define torture_run_group_tests(name, tests, setup, teardown)                                      \
    torture_run_group(name, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
