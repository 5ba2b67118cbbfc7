#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/err.h"

static void
test_append_and_grow(void **state)
{
    struct buf b;
    int i;

    (void)state;
    buf_init(&b, 1 << 20);
    assert_string_equal(buf_cstr(&b), "");
    for (i = 0; i < 1000; i++)
        assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(strlen(buf_cstr(&b)), 3000);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(buf_cstr(&b) + 3000, "42-x");
    buf_cleanup(&b);
}

/* A wiping buffer (bodies and answers) grows, is stolen and reused like any other. */
static void
test_wipe_grows_steals_and_stays_wiping(void **state)
{
    struct buf b;
    char *p;
    int i;

    (void)state;
    buf_init_wipe(&b, 1 << 20);
    for (i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%03d", i), 0);
    assert_int_equal(b.len, 3000);
    assert_memory_equal(buf_cstr(&b), "000001002", 9);
    assert_string_equal(buf_cstr(&b) + 2997, "999");
    p = buf_steal(&b);
    assert_int_equal(strlen(p), 3000);
    assert_int_equal(b.wipe, 1);
    buf_stolen_free(&b, p);
    assert_int_equal(buf_puts(&b, "whsec_x"), 0);
    buf_cleanup(&b);
    assert_int_equal(b.wipe, 1);
    assert_string_equal(buf_cstr(&b), "");
    buf_init(&b, 16);
    assert_int_equal(b.wipe, 0);
}

static void
test_cap_refuses_and_keeps_contents(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_puts(&b, "12345678"), 0);
    assert_int_equal(buf_putc(&b, '9'), ERR_TOOBIG);
    assert_int_equal(buf_printf(&b, "%s", "x"), ERR_TOOBIG);
    assert_string_equal(buf_cstr(&b), "12345678");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_puts(&b, "ok"), 0);
    buf_cleanup(&b);
}

/* Decimals as printf writes them, the cap included. */
static void
test_put_u64(void **state)
{
    static const uint64_t vals[] = {0, 7, 10, 202, 99999, 4294967296ULL, UINT64_MAX};
    char want[32];
    struct buf b;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        buf_init(&b, 64);
        assert_int_equal(buf_puts(&b, "n="), 0);
        assert_int_equal(buf_put_u64(&b, vals[i]), 0);
        snprintf(want, sizeof(want), "n=%llu", (unsigned long long)vals[i]);
        assert_string_equal(buf_cstr(&b), want);
        buf_cleanup(&b);
    }
    buf_init(&b, 4);
    assert_int_equal(buf_put_u64(&b, 1234), 0);
    assert_int_equal(buf_put_u64(&b, 5), ERR_TOOBIG);
    assert_string_equal(buf_cstr(&b), "1234");
    buf_cleanup(&b);
}

static void
test_steal(void **state)
{
    struct buf b;
    char *s;

    (void)state;
    buf_init(&b, 100);
    s = buf_steal(&b);
    assert_string_equal(s, "");
    free(s);
    buf_puts(&b, "hello");
    s = buf_steal(&b);
    assert_string_equal(s, "hello");
    assert_null(b.data);
    free(s);
}

static void
test_file_read(void **state)
{
    char path[] = "/tmp/fluxhook-test-buf-XXXXXX";
    char big[40000];
    struct buf b;
    FILE *f;
    int fd;

    (void)state;
    memset(big, 'x', sizeof(big));
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "wb");
    assert_non_null(f);
    /* More than one read's chunk, to cross its boundary. */
    assert_int_equal(fwrite(big, 1, sizeof(big), f), sizeof(big));
    assert_int_equal(fclose(f), 0);

    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "<"), 0);
    assert_int_equal(buf_file_read(&b, path), 0);
    assert_int_equal(b.len, 1 + sizeof(big));
    assert_memory_equal(b.data + 1, big, sizeof(big));
    buf_cleanup(&b);

    buf_init(&b, sizeof(big) - 1);
    assert_int_equal(buf_file_read(&b, path), ERR_TOOBIG);
    buf_cleanup(&b);

    buf_init(&b, 1 << 20);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(buf_file_read(&b, path), ERR_NOTFOUND);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_wipe_grows_steals_and_stays_wiping),
        cmocka_unit_test(test_cap_refuses_and_keeps_contents),
        cmocka_unit_test(test_put_u64),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_file_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
