/*
 * The allocation-failure mode of the unit tests (torture.h). The programs
 * that use it are linked with -Wl,--wrap for the C library's allocation
 * functions and for cmocka's assertions (tests/unit/meson.build), so that
 * every allocation of fluxhook's code and of the test passes through
 * alloc_fails(); SQLite, jansson and OpenSSL are given allocation functions
 * that do too.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#define TORTURE_LSAN 1
#endif

#include "torture.h"

#define TORTURE_HANG_S 120 /* a run taking longer is reported as a hang */

/* Exit codes of a child run. */
enum {
    RUN_OK = 0,        /* passed, or failed an assertion after the failed allocation */
    RUN_LEAK = 70,     /* LeakSanitizer found memory lost */
    RUN_UNFORCED = 71, /* an assertion failed before any allocation failed */
    RUN_ERROR = 72,    /* the test failed without a failed assertion (a caught signal) */
};

static atomic_int armed;    /* count (and maybe fail) allocations */
static atomic_long counted; /* allocations since armed */
static long fail_at;        /* the allocation that fails, 0 for none */
static atomic_int injected; /* the allocation fail_at has failed */
static atomic_int asserted; /* an assertion failed */
static atomic_int skipped;  /* the test skipped itself */
static atomic_int leaked;   /* LeakSanitizer reported memory lost */
static const struct CMUnitTest *current;
static atomic_int one_shot; /* torture_fail_next(): disarm once the allocation failed */

#ifdef TORTURE_LSAN
const char *__asan_default_options(void);

/* A crash is AddressSanitizer's to report, with its stack, not cmocka's to catch. */
const char *
__asan_default_options(void)
{
    return "allow_user_segv_handler=0";
}
#endif

/* 1 if the allocation being made is the one that fails. */
static int
alloc_fails(void)
{
    long n;

    if (!atomic_load(&armed))
        return 0;
    n = atomic_fetch_add(&counted, 1) + 1;
    if (n != fail_at)
        return 0;
    atomic_store(&injected, 1);
    if (atomic_load(&one_shot))
        atomic_store(&armed, 0);
    errno = ENOMEM;
    return 1;
}

/* Memory lost so far; at a failed assertion, the test's own objects are still reachable. */
static void
leak_check(void)
{
#ifdef TORTURE_LSAN
    if (__lsan_do_recoverable_leak_check() != 0)
        atomic_store(&leaked, 1);
#endif
}

/* -Wl,--wrap: the C library's functions as __real_*, ours as __wrap_*. */
/* The prototypes of a function f wrapped by -Wl,--wrap=f: the library's and ours. */
#define WRAPPED(ret, f, params)                                                                    \
    ret __real_##f params;                                                                         \
    ret __wrap_##f params

WRAPPED(void *, malloc, (size_t size));
WRAPPED(void *, calloc, (size_t n, size_t size));
WRAPPED(void *, realloc, (void *p, size_t size));
WRAPPED(char *, strdup, (const char *s));
WRAPPED(char *, strndup, (const char *s, size_t n));
WRAPPED(int, vasprintf, (char **out, const char *fmt, va_list ap));
int __wrap_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *
__wrap_malloc(size_t size)
{
    return alloc_fails() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
    return alloc_fails() ? NULL : __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
    return alloc_fails() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
    return alloc_fails() ? NULL : __real_strndup(s, n);
}

int
__wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    return alloc_fails() ? -1 : __real_vasprintf(out, fmt, ap);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}

/*
 * jansson 2.14's reader does not survive a failed allocation inside its
 * lexer (it reads past its buffer: akheron/jansson issue #362), so here a
 * whole json_loadb() or json_loads() is one allocation that may fail, as a
 * reader that handles it would: NULL with "out of memory", and nothing
 * counted or failed inside it.
 */
WRAPPED(json_t *, json_loadb, (const char *buf, size_t len, size_t flags, json_error_t *error));
WRAPPED(json_t *, json_loads, (const char *s, size_t flags, json_error_t *error));
static _Thread_local int in_loader;

static json_t *
loader_fails(json_error_t *error)
{
    if (error != NULL) {
        memset(error, 0, sizeof(*error));
        snprintf(error->text, sizeof(error->text), "out of memory");
        error->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_out_of_memory;
    }
    return NULL;
}

json_t *
__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    json_t *j;

    if (alloc_fails())
        return loader_fails(error);
    in_loader = 1;
    j = __real_json_loadb(buf, len, flags, error);
    in_loader = 0;
    return j;
}

json_t *
__wrap_json_loads(const char *s, size_t flags, json_error_t *error)
{
    json_t *j;

    if (alloc_fails())
        return loader_fails(error);
    in_loader = 1;
    j = __real_json_loads(s, flags, error);
    in_loader = 0;
    return j;
}

/* The same for the libraries, through their allocation hooks. */
static void *
lib_malloc(size_t size)
{
    return !in_loader && alloc_fails() ? NULL : __real_malloc(size);
}

static void *
ssl_malloc(size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    return lib_malloc(size);
}

static void *
ssl_realloc(void *p, size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    return alloc_fails() ? NULL : __real_realloc(p, size);
}

static void
ssl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* SQLite's allocator keeps each block's size in front of it. */
static void *
sq_malloc(int size)
{
    int64_t *p;

    if (alloc_fails())
        return NULL;
    p = __real_malloc((size_t)size + sizeof(*p));
    if (p == NULL)
        return NULL;
    p[0] = size;
    return p + 1;
}

static void
sq_free(void *p)
{
    if (p != NULL)
        free((int64_t *)p - 1);
}

static int
sq_size(void *p)
{
    return p == NULL ? 0 : (int)((int64_t *)p)[-1];
}

static void *
sq_realloc(void *p, int size)
{
    int64_t *q;

    if (alloc_fails())
        return NULL;
    q = __real_realloc((int64_t *)p - 1, (size_t)size + sizeof(*q));
    if (q == NULL)
        return NULL;
    q[0] = size;
    return q + 1;
}

static int
sq_roundup(int size)
{
    return (size + 7) & ~7;
}

static int
sq_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void
sq_shutdown(void *arg)
{
    (void)arg;
}

static const sqlite3_mem_methods sq_methods = {
    sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL,
};

/* cmocka's assertions, noting a failure before cmocka leaves the test. */
WRAPPED(void, _assert_true,
        (const LargestIntegralType result, const char *const expression, const char *const file,
         const int line));
WRAPPED(void, _assert_int_equal,
        (const LargestIntegralType a, const LargestIntegralType b, const char *const file,
         const int line));
WRAPPED(void, _assert_int_not_equal,
        (const LargestIntegralType a, const LargestIntegralType b, const char *const file,
         const int line));
WRAPPED(void, _assert_string_equal,
        (const char *const a, const char *const b, const char *const file, const int line));
WRAPPED(void, _assert_string_not_equal,
        (const char *const a, const char *const b, const char *file, const int line));
WRAPPED(void, _assert_memory_equal,
        (const void *const a, const void *const b, const size_t size, const char *const file,
         const int line));
WRAPPED(void, _assert_memory_not_equal,
        (const void *const a, const void *const b, const size_t size, const char *const file,
         const int line));
WRAPPED(void, _fail, (const char *const file, const int line));
WRAPPED(void, _skip, (const char *const file, const int line));

/*
 * An assertion is failing. After a failed allocation that is the test's
 * accepted outcome, and the moment to look for memory the code lost.
 */
static void
assert_failing(void)
{
    atomic_store(&asserted, 1);
    if (atomic_load(&armed) && atomic_load(&injected))
        leak_check();
}

void
__wrap__assert_true(const LargestIntegralType result, const char *const expression,
                    const char *const file, const int line)
{
    if (!result)
        assert_failing();
    __real__assert_true(result, expression, file, line);
}

void
__wrap__assert_int_equal(const LargestIntegralType a, const LargestIntegralType b,
                         const char *const file, const int line)
{
    if (a != b)
        assert_failing();
    __real__assert_int_equal(a, b, file, line);
}

void
__wrap__assert_int_not_equal(const LargestIntegralType a, const LargestIntegralType b,
                             const char *const file, const int line)
{
    if (a == b)
        assert_failing();
    __real__assert_int_not_equal(a, b, file, line);
}

/* cmocka's string comparisons read NULL; a NULL from a failed allocation fails the test. */
void
__wrap__assert_string_equal(const char *const a, const char *const b, const char *const file,
                            const int line)
{
    if (a == NULL || b == NULL) {
        assert_failing();
        __real__fail(file, line);
    }
    if (strcmp(a, b) != 0)
        assert_failing();
    __real__assert_string_equal(a, b, file, line);
}

void
__wrap__assert_string_not_equal(const char *const a, const char *const b, const char *file,
                                const int line)
{
    if (a == NULL || b == NULL) {
        assert_failing();
        __real__fail(file, line);
    }
    if (strcmp(a, b) == 0)
        assert_failing();
    __real__assert_string_not_equal(a, b, file, line);
}

void
__wrap__assert_memory_equal(const void *const a, const void *const b, const size_t size,
                            const char *const file, const int line)
{
    if (a == NULL || b == NULL) {
        assert_failing();
        __real__fail(file, line);
    }
    if (memcmp(a, b, size) != 0)
        assert_failing();
    __real__assert_memory_equal(a, b, size, file, line);
}

void
__wrap__assert_memory_not_equal(const void *const a, const void *const b, const size_t size,
                                const char *const file, const int line)
{
    if (a == NULL || b == NULL) {
        assert_failing();
        __real__fail(file, line);
    }
    if (memcmp(a, b, size) == 0)
        assert_failing();
    __real__assert_memory_not_equal(a, b, size, file, line);
}

void
__wrap__fail(const char *const file, const int line)
{
    assert_failing();
    __real__fail(file, line);
}

void
__wrap__skip(const char *const file, const int line)
{
    atomic_store(&skipped, 1);
    __real__skip(file, line);
}

/*
 * A process a test forks (a publisher it kills, say) has its own count and
 * no failing allocation: the outcome that counts is the test's.
 */
static void
fork_child_disarmed(void)
{
    atomic_store(&armed, 0);
}

/* The test's own fixtures run with no allocation failing. */
static int
setup_armed(void **state)
{
    int rc = 0;

    if (current->setup_func != NULL)
        rc = current->setup_func(state);
    atomic_store(&counted, 0);
    atomic_store(&armed, 1);
    return rc;
}

static int
teardown_disarmed(void **state)
{
    atomic_store(&armed, 0);
    return current->teardown_func != NULL ? current->teardown_func(state) : 0;
}

/* Runs test once with allocation n failing (0: none); the number of failed tests. */
static int
run_one(const struct CMUnitTest *test, long n)
{
    struct CMUnitTest one = *test;

    current = test;
    fail_at = n;
    atomic_store(&injected, 0);
    atomic_store(&asserted, 0);
    atomic_store(&skipped, 0);
    atomic_store(&leaked, 0);
    one.setup_func = setup_armed;
    one.teardown_func = teardown_disarmed;
    return _cmocka_run_group_tests(test->name, &one, 1, NULL, NULL);
}

static int report_fd = -1; /* the driver's stderr, kept when a child's goes to /dev/null */

/* A child that calls exit() (cmocka does, for an assertion outside a test): where from. */
static void
child_exit_trace(void)
{
    void *frames[32];
    int n = backtrace(frames, 32);

    dprintf(report_fd, "[ TORTURE  ] exit() called from:\n");
    backtrace_symbols_fd(frames, n, report_fd);
}

/* In a child process: the outcome of one run with allocation n failing, as an exit code. */
static int
child_run(const struct CMUnitTest *test, long n, int quiet)
{
    int failed;
    int null = open("/dev/null", O_WRONLY);

    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        if (quiet)
            dup2(null, STDERR_FILENO);
        close(null);
    }
    alarm(TORTURE_HANG_S);
    atexit(child_exit_trace);
    failed = run_one(test, n);
    if (atomic_load(&asserted) && !atomic_load(&injected))
        return RUN_UNFORCED;
    if (failed && !atomic_load(&asserted))
        return RUN_ERROR;
    if (!failed)
        leak_check();
    return atomic_load(&leaked) ? RUN_LEAK : RUN_OK;
}

/* "" for a run that went as it should, else what went wrong. */
static const char *
run_verdict(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM)
            snprintf(buf, len, "hang (over %d s)", TORTURE_HANG_S);
        else
            snprintf(buf, len, "crash (%s)", strsignal(WTERMSIG(status)));
        return buf;
    }
    switch (WEXITSTATUS(status)) {
    case RUN_OK:
        return "";
    case RUN_LEAK:
        return "memory lost (LeakSanitizer report above)";
    case RUN_UNFORCED:
        return "an assertion failed before any allocation failed";
    case RUN_ERROR:
        return "the test failed without a failed assertion (signal caught by cmocka)";
    default:
        snprintf(buf, len, "exit status %d (sanitizer report above)", WEXITSTATUS(status));
        return buf;
    }
}

/* Runs test with each chosen allocation failing; the number of runs that went wrong. */
static int
torture_test(const struct CMUnitTest *test, long total, long cap, long offset, int quiet)
{
    long runs = cap == 0 || total <= cap ? total : cap;
    long k, n;
    int bad = 0, status;
    char why[80];
    pid_t pid;

    for (k = 0; k < runs && bad < 5; k++) {
        n = 1 + ((k * total) / runs + offset) % total;
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
            perror("torture: fork");
            return bad + 1;
        }
        if (pid == 0)
            _exit(child_run(test, n, quiet)); /* _exit: LeakSanitizer already looked */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (run_verdict(status, why, sizeof(why))[0] != '\0') {
            fprintf(stderr, "[ TORTURE  ] %s: allocation %ld of %ld failing: %s\n", test->name, n,
                    total, run_verdict(status, why, sizeof(why)));
            bad++;
        }
    }
    printf("[ TORTURE  ] %s: %ld allocations, %ld runs with one failing%s\n", test->name, total,
           runs, bad != 0 ? ", FAILED" : "");
    return bad;
}

/*
 * The counting run of test, in this process, its output to /dev/null (stderr
 * too when quiet). Sets leaked to 1 for memory lost, -1 for a failed test.
 */
static void
run_quiet(const struct CMUnitTest *test, int quiet)
{
    int out, err, null;

    fflush(NULL);
    out = dup(STDOUT_FILENO);
    err = dup(STDERR_FILENO);
    null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    if (quiet)
        dup2(null, STDERR_FILENO);
    close(null);
    if (run_one(test, 0) == 0)
        leak_check();
    else
        atomic_store(&leaked, -1);
    fflush(NULL);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    close(out);
    close(err);
}

int
torture_fail_next(long n)
{
    const char *mode = getenv("FLUXHOOK_TORTURE");

    if (mode != NULL && mode[0] != '\0')
        return -1;
    fail_at = n;
    atomic_store(&counted, 0);
    atomic_store(&injected, 0);
    atomic_store(&one_shot, 1);
    atomic_store(&armed, 1);
    return 0;
}

static long
env_long(const char *name, long def)
{
    const char *s = getenv(name);

    return s != NULL && s[0] != '\0' ? strtol(s, NULL, 10) : def;
}

/* Routes the libraries' allocations through alloc_fails(); before their first one. */
static void
hook_libraries(void)
{
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_methods) != SQLITE_OK)
        fprintf(stderr, "torture: SQLite's allocations are not counted\n");
    json_set_alloc_funcs(lib_malloc, free);
    if (CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free) != 1)
        fprintf(stderr, "torture: OpenSSL's allocations are not counted\n");
}

int
torture_run_group(const char *name, const struct CMUnitTest *tests, size_t count,
                  CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    const char *mode = getenv("FLUXHOOK_TORTURE");
    const char *only = getenv("FLUXHOOK_TORTURE_TEST");
    long cap = env_long("FLUXHOOK_TORTURE", 0);
    long offset = env_long("FLUXHOOK_TORTURE_OFFSET", 0);
    int quiet = env_long("FLUXHOOK_TORTURE_VERBOSE", 0) == 0;
    int passed = 0, failed = 0;
    long total;
    void *state = NULL;
    size_t i;

    if (mode == NULL || mode[0] == '\0')
        return _cmocka_run_group_tests(name, tests, count, group_setup, group_teardown);
    hook_libraries();
    pthread_atfork(NULL, NULL, fork_child_disarmed);
    report_fd = dup(STDERR_FILENO);
#ifdef TORTURE_LSAN
    /* The children's stderr goes to /dev/null; sanitizer reports still show. */
    __sanitizer_set_report_fd((void *)(intptr_t)report_fd);
#endif
    printf("[==========] %s: allocation failures, at most %ld runs per test (0: all)\n", name, cap);
    if (group_setup != NULL && group_setup(&state) != 0) {
        printf("[  FAILED  ] %zu test(s): group setup failed\n", count);
        return (int)count;
    }
    for (i = 0; i < count; i++) {
        /*
         * The counting run, in this process: it also makes the libraries' one-time
         * state. The tests before the one FLUXHOOK_TORTURE_TEST names have theirs
         * too, so that its allocations are counted as in a whole run.
         */
        if (only != NULL && strcmp(only, tests[i].name) != 0) {
            run_quiet(&tests[i], quiet);
            continue;
        }
        run_quiet(&tests[i], quiet);
        if (atomic_load(&leaked)) {
            printf("[ TORTURE  ] %s: %s with no allocation failing, FAILED\n", tests[i].name,
                   atomic_load(&leaked) < 0 ? "fails" : "loses memory");
            failed++;
            continue;
        }
        total = atomic_load(&counted);
        if (atomic_load(&skipped) || total == 0) {
            printf("[ TORTURE  ] %s: %s\n", tests[i].name,
                   atomic_load(&skipped) ? "skipped" : "no allocations");
            passed++;
            continue;
        }
        if (torture_test(&tests[i], total, cap, offset, quiet) == 0)
            passed++;
        else
            failed++;
    }
    if (group_teardown != NULL)
        group_teardown(&state);
    printf("[  PASSED  ] %d test(s).\n", passed);
    if (failed != 0)
        printf("[  FAILED  ] %d test(s).\n", failed);
    return failed;
}
