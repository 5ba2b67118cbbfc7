/*
 * The master key ring (src/util/keyring.c): sealing and opening, what does
 * not open and why, key files (parsing, making, rewriting) and a ring that
 * reads its file again when it changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/keyring.h"
#include "util/secret.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct keyring *
ring(const char *text)
{
    struct keyring *kr = NULL;
    char why[256];

    assert_int_equal(keyring_from_text(text, &kr, why, sizeof(why)), 0);
    return kr;
}

static void
test_seal_open_round_trip(void **state)
{
    struct keyring *kr = ring(KEY_A);
    char *sealed = NULL, *again = NULL, *plain = NULL;
    char kid[KEYRING_KID_LEN], cur[KEYRING_KID_LEN];

    (void)state;
    assert_int_equal(keyring_seal(kr, "ep_1", SECRET, &sealed), 0);
    assert_true(keyring_is_sealed(sealed));
    assert_null(strstr(sealed, "whsec_"));
    assert_int_equal(keyring_kid_of(sealed, kid), 0);
    keyring_current_kid(kr, cur);
    assert_string_equal(kid, cur);
    assert_int_equal(strlen(kid), 8);
    /* A fresh nonce each time: the same secret seals differently. */
    assert_int_equal(keyring_seal(kr, "ep_1", SECRET, &again), 0);
    assert_string_not_equal(sealed, again);
    assert_int_equal(keyring_open(kr, "ep_1", sealed, &plain), 0);
    assert_string_equal(plain, SECRET);
    secret_free(plain);
    free(sealed);
    free(again);
    keyring_free(kr);
}

static void
test_what_does_not_open(void **state)
{
    struct keyring *a = ring(KEY_A), *b = ring(KEY_B);
    char *sealed = NULL, *plain = NULL, *bad;
    size_t len;

    (void)state;
    assert_int_equal(keyring_seal(a, "ep_1", SECRET, &sealed), 0);
    /* Another endpoint's context: copied to another row, it does not open. */
    assert_int_equal(keyring_open(a, "ep_2", sealed, &plain), ERR_SIGNATURE);
    /* Another key: its id is not in the ring. */
    assert_int_equal(keyring_open(b, "ep_1", sealed, &plain), ERR_NOTFOUND);
    /* One bit changed. */
    bad = strdup(sealed);
    len = strlen(bad);
    bad[len - 3] = bad[len - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(keyring_open(a, "ep_1", bad, &plain), ERR_SIGNATURE);
    /* Not sealed values. */
    assert_int_equal(keyring_open(a, "ep_1", SECRET, &plain), ERR_INVAL);
    assert_int_equal(keyring_open(a, "ep_1", "fhk1.zz.AAAA", &plain), ERR_INVAL);
    assert_null(plain);
    assert_false(keyring_is_sealed(SECRET));
    assert_false(keyring_is_sealed(NULL));
    free(bad);
    free(sealed);
    keyring_free(a);
    keyring_free(b);
}

static void
test_parse(void **state)
{
    struct keyring *kr = NULL;
    char why[256];

    (void)state;
    assert_int_equal(keyring_from_text("# comment only\n", &kr, why, sizeof(why)), ERR_INVAL);
    assert_non_null(strstr(why, "no key"));
    assert_int_equal(keyring_from_text("abcd\n", &kr, why, sizeof(why)), ERR_INVAL);
    assert_non_null(strstr(why, "line 1: expected a key of 64 hex digits"));
    assert_int_equal(keyring_from_text(KEY_A "\n" KEY_A "x\n", &kr, why, sizeof(why)), ERR_INVAL);
    assert_non_null(strstr(why, "line 2"));
    /* Several keys, by lines, commas or blanks, with comments: the first is current. */
    assert_int_equal(
        keyring_from_text("# ring\n" KEY_B ", " KEY_A " # old\n", &kr, why, sizeof(why)), 0);
    keyring_free(kr);
}

static void
test_ring_opens_old_seals_new(void **state)
{
    struct keyring *a = ring(KEY_A), *b = ring(KEY_B), *both = NULL;
    char *old = NULL, *fresh = NULL, *plain = NULL;
    char ka[KEYRING_KID_LEN], kb[KEYRING_KID_LEN], kid[KEYRING_KID_LEN];

    (void)state;
    keyring_current_kid(a, ka);
    keyring_current_kid(b, kb);
    assert_string_not_equal(ka, kb);
    assert_int_equal(keyring_seal(a, "ep_1", SECRET, &old), 0);
    assert_int_equal(keyring_merge(b, a, &both), 0);
    assert_true(keyring_has(both, ka));
    assert_true(keyring_has(both, kb));
    assert_int_equal(keyring_open(both, "ep_1", old, &plain), 0);
    assert_string_equal(plain, SECRET);
    assert_int_equal(keyring_seal(both, "ep_1", SECRET, &fresh), 0);
    assert_int_equal(keyring_kid_of(fresh, kid), 0);
    assert_string_equal(kid, kb);
    secret_free(plain);
    free(old);
    free(fresh);
    keyring_free(a);
    keyring_free(b);
    keyring_free(both);
}

static void
test_files_and_refresh(void **state)
{
    char dir[] = "/tmp/fluxhook-keyring-XXXXXX", path[128], why[256];
    struct keyring *kr = NULL, *a = ring(KEY_A), *b = ring(KEY_B);
    char *sealed = NULL, *plain = NULL;
    char k1[KEYRING_KID_LEN], k2[KEYRING_KID_LEN], kb[KEYRING_KID_LEN];
    struct stat st;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/master.key", dir);
    assert_int_equal(keyring_from_file(path, &kr, why, sizeof(why)), ERR_IO);
    assert_non_null(strstr(why, "cannot read"));
    assert_int_equal(keyring_file_create(path, why, sizeof(why)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(keyring_file_create(path, why, sizeof(why)), ERR_CONFLICT);
    assert_int_equal(keyring_from_file(path, &kr, why, sizeof(why)), 0);
    keyring_current_kid(kr, k1);

    /* Another process rewrites the file with B first: the ring follows. */
    keyring_current_kid(b, kb);
    assert_int_equal(keyring_seal(b, "ep_1", SECRET, &sealed), 0);
    assert_int_equal(keyring_file_write(path, b, a), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(keyring_open(kr, "ep_1", sealed, &plain), 0);
    assert_string_equal(plain, SECRET);
    keyring_current_kid(kr, k2);
    assert_string_equal(k2, kb);
    assert_string_not_equal(k1, k2);
    /* A damaged file leaves the ring as it was. */
    assert_int_equal(truncate(path, 10), 0);
    keyring_current_kid(kr, k2);
    assert_string_equal(k2, kb);

    secret_free(plain);
    free(sealed);
    keyring_free(kr);
    keyring_free(a);
    keyring_free(b);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open_round_trip),
        cmocka_unit_test(test_what_does_not_open),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_ring_opens_old_seals_new),
        cmocka_unit_test(test_files_and_refresh),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
