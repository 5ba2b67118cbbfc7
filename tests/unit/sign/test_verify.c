#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../torture.h"

#include "fluxhook/verify.h"
#include "sign/sign.h"

/* The guide's vector: see tests/unit/sign/test_sign.c for how it was made. */
#define GUIDE_SECRET "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
#define GUIDE_PAYLOAD                                                                              \
    "{\"id\":\"evt_1\",\"event\":\"conversation.started\",\"timestamp\":\"2024-01-01T12:00:00Z\"," \
    "\"data\":{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"channel\":"           \
    "\"chat\",\"initial_message\":\"Hello, I need help\"}}"
#define GUIDE_HEX "465c1fcabee9b0e22c58b54ec5063395a1e5d2ed0f92e2ace6b40289f7bdeae0"
#define GUIDE_HEX_UPPER "465C1FCABEE9B0E22C58B54EC5063395A1E5D2ED0F92E2ACE6B40289F7BDEAE0"

/*
 * Standard Webhooks' published vectors, from standard-webhooks/standard-webhooks
 * libraries/python/tests/test_webhooks.py: test_sign_function (secret, id,
 * timestamp, payload, signature) and test_multi_sig_payload_is_valid (the
 * decoy entries, WRONG_B64, which match nothing).
 */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330
#define SW_TS_STR "1614265330"
#define SW_PAYLOAD "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define WRONG_B64 "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

#define TOL FLUXHOOK_VERIFY_DEFAULT_TOLERANCE

static int
sw(const char *secret, const char *id, const char *ts, const char *sigs, const char *body,
   int64_t now, int64_t tol)
{
    return fluxhook_verify_standard(secret, id, ts, sigs, body, body ? strlen(body) : 0, now, tol);
}

static void
test_signature_guide_vector(void **state)
{
    size_t len = strlen(GUIDE_PAYLOAD);

    (void)state;
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, GUIDE_PAYLOAD, len, GUIDE_HEX),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, GUIDE_PAYLOAD, len, GUIDE_HEX_UPPER),
                     FLUXHOOK_VERIFY_OK);
}

static void
test_signature_mismatch(void **state)
{
    char body[] = GUIDE_PAYLOAD;
    size_t len = strlen(body);
    char hex[] = GUIDE_HEX;

    (void)state;
    /* A changed body, a shorter body, another secret, one changed digit. */
    body[10] ^= 1;
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, GUIDE_HEX),
                     FLUXHOOK_VERIFY_MISMATCH);
    body[10] ^= 1;
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len - 1, GUIDE_HEX),
                     FLUXHOOK_VERIFY_MISMATCH);
    assert_int_equal(fluxhook_verify_signature(SW_SECRET, body, len, GUIDE_HEX),
                     FLUXHOOK_VERIFY_MISMATCH);
    hex[63] = hex[63] == '0' ? '1' : '0';
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, hex),
                     FLUXHOOK_VERIFY_MISMATCH);
}

static void
test_signature_malformed(void **state)
{
    const char *body = GUIDE_PAYLOAD;
    size_t len = strlen(body);
    char hex[80];

    (void)state;
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, ""),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, NULL),
                     FLUXHOOK_VERIFY_MALFORMED);
    snprintf(hex, sizeof(hex), "%.63s", GUIDE_HEX);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, hex),
                     FLUXHOOK_VERIFY_MALFORMED);
    snprintf(hex, sizeof(hex), "%s0", GUIDE_HEX);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, hex),
                     FLUXHOOK_VERIFY_MALFORMED);
    snprintf(hex, sizeof(hex), "sha256=%s", GUIDE_HEX);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, hex),
                     FLUXHOOK_VERIFY_MALFORMED);
    snprintf(hex, sizeof(hex), "%s", GUIDE_HEX);
    hex[5] = 'g';
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, body, len, hex),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(fluxhook_verify_signature("", body, len, GUIDE_HEX),
                     FLUXHOOK_VERIFY_BAD_SECRET);
    assert_int_equal(fluxhook_verify_signature(NULL, body, len, GUIDE_HEX),
                     FLUXHOOK_VERIFY_BAD_SECRET);
    assert_int_equal(fluxhook_verify_signature(GUIDE_SECRET, NULL, 3, GUIDE_HEX),
                     FLUXHOOK_VERIFY_MALFORMED);
}

static void
test_signature_round_trip(void **state)
{
    char hex[SIGN_HEX_LEN + 1];
    const char *secrets[] = {"whsec_x", "plain secret", SW_SECRET};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_int_equal(sign_hmac_hex(secrets[i], "", 0, hex), 0);
        assert_int_equal(fluxhook_verify_signature(secrets[i], NULL, 0, hex), FLUXHOOK_VERIFY_OK);
        assert_int_equal(sign_hmac_hex(secrets[i], "abc", 3, hex), 0);
        assert_int_equal(fluxhook_verify_signature(secrets[i], "abc", 3, hex), FLUXHOOK_VERIFY_OK);
        assert_int_equal(fluxhook_verify_signature(secrets[i], "abd", 3, hex),
                         FLUXHOOK_VERIFY_MISMATCH);
    }
}

static void
test_standard_published_vector(void **state)
{
    (void)state;
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_OK);
    /* The same, one byte of the body changed, or another id or timestamp. */
    assert_int_equal(
        sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, "{\"test\": 2432232315}", SW_TS, TOL),
        FLUXHOOK_VERIFY_MISMATCH);
    assert_int_equal(
        sw(SW_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJel", SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
        FLUXHOOK_VERIFY_MISMATCH);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, "1614265331", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MISMATCH);
    /* The published invalid signature (last character changed). */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR,
                        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MISMATCH);
    /* A key without its prefix is not a "whsec_" secret. */
    assert_int_equal(sw("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SW_MSG_ID, SW_TS_STR, SW_SIG,
                        SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_BAD_SECRET);
    assert_int_equal(sw("whsec_", SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_BAD_SECRET);
    assert_int_equal(sw(NULL, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_BAD_SECRET);
}

static void
test_standard_lists(void **state)
{
    char list[1024];

    (void)state;
    /* The published multi-signature list: decoys, a v2 entry, the valid one. */
    snprintf(list, sizeof(list), "v1,%s v2,%s %s v1,%s", WRONG_B64, WRONG_B64, SW_SIG, WRONG_B64);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, list, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_OK);
    /* Extra spaces, leading and trailing. */
    snprintf(list, sizeof(list), "  v1,%s   %s  ", WRONG_B64, SW_SIG);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, list, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_OK);
    /* A v1a (Ed25519) entry and garbage entries are skipped, not fatal. */
    snprintf(list, sizeof(list), "v1a,AAAA nonsense v1,!!! %s", SW_SIG);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, list, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_OK);
    /* Only decoys. */
    snprintf(list, sizeof(list), "v1,%s v1,%s", WRONG_B64, WRONG_B64);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, list, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MISMATCH);
    /* The right signature under another version is not a v1 signature. */
    snprintf(list, sizeof(list), "v2,%s", &SW_SIG[3]);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, list, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
}

static void
test_standard_rotation(void **state)
{
    char old_secret[SIGN_SECRET_MAX], new_secret[SIGN_SECRET_MAX], other[SIGN_SECRET_MAX];
    char a[SIGN_STANDARD_MAX], b[SIGN_STANDARD_MAX], list[2 * SIGN_STANDARD_MAX];
    const char *body = "{\"id\":\"evt_2\"}";
    int64_t now = 1700000000;

    (void)state;
    assert_int_equal(sign_secret_new(old_secret), 0);
    assert_int_equal(sign_secret_new(new_secret), 0);
    assert_int_equal(sign_secret_new(other), 0);
    assert_int_equal(sign_standard(new_secret, "evt_2", now, body, strlen(body), a), 0);
    assert_int_equal(sign_standard(old_secret, "evt_2", now, body, strlen(body), b), 0);
    assert_string_not_equal(a, b);
    snprintf(list, sizeof(list), "%s %s", a, b);
    /* A receiver on either secret accepts; one on neither refuses. */
    assert_int_equal(sw(new_secret, "evt_2", "1700000000", list, body, now, TOL),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(old_secret, "evt_2", "1700000000", list, body, now, TOL),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(other, "evt_2", "1700000000", list, body, now, TOL),
                     FLUXHOOK_VERIFY_MISMATCH);
    /* After the grace period only the new signature is sent. */
    assert_int_equal(sw(old_secret, "evt_2", "1700000000", a, body, now, TOL),
                     FLUXHOOK_VERIFY_MISMATCH);
}

static void
test_standard_tolerance(void **state)
{
    (void)state;
    /* Exactly at the bound on both sides is valid; one second past is not. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS + 300, 300),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS + 301, 300),
                     FLUXHOOK_VERIFY_TOO_OLD);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS - 300, 300),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS - 301, 300),
                     FLUXHOOK_VERIFY_TOO_NEW);
    /* Far in the future, far in the past, a clock at 0 or below. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, 0, 300),
                     FLUXHOOK_VERIFY_TOO_NEW);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, INT64_MIN, 300),
                     FLUXHOOK_VERIFY_TOO_NEW);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, INT64_MAX, 300),
                     FLUXHOOK_VERIFY_TOO_OLD);
    /* Tolerance 0 means this very second; a negative one counts as 0. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, 0),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS + 1, 0),
                     FLUXHOOK_VERIFY_TOO_OLD);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, -5),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS - 1, -5),
                     FLUXHOOK_VERIFY_TOO_NEW);
    /* A huge tolerance cannot overflow. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, 0, INT64_MAX),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, INT64_MAX, INT64_MAX),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, SW_PAYLOAD, INT64_MIN, INT64_MAX),
                     FLUXHOOK_VERIFY_TOO_NEW);
    /* A forged signature is a mismatch, however old. */
    assert_int_equal(
        sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "v1," WRONG_B64, SW_PAYLOAD, SW_TS + 100000, 300),
        FLUXHOOK_VERIFY_MISMATCH);
}

static void
test_standard_malformed(void **state)
{
    static char huge[FLUXHOOK_VERIFY_MAX_SIGNATURES + 64];
    char id[FLUXHOOK_VERIFY_MAX_ID + 2];
    size_t n;

    (void)state;
    /* Missing or empty signature headers, no v1 entry, bad base64. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, NULL, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "   ", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "v1,", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "v1", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR,
                        "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlN"
                        "IOLJ1OE=",
                        SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR,
                        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlN"
                        "IOLJ1OE",
                        SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR,
                        "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlN"
                        "IOLJ1OE=",
                        SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    /* Base64 of 31 bytes, not a MAC. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR,
                        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    /* The valid entry with a tab instead of a space before it is not an entry. */
    assert_int_equal(
        sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, "v1,AAAA\t" SW_SIG, SW_PAYLOAD, SW_TS, TOL),
        FLUXHOOK_VERIFY_MALFORMED);

    /* Timestamps that are not plain decimal seconds. */
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, "hello", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, "", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, NULL, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, "-1614265330", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, " 1614265330", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, "1614265330.5", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(
        sw(SW_SECRET, SW_MSG_ID, "9999999999999999999", SW_SIG, SW_PAYLOAD, SW_TS, TOL),
        FLUXHOOK_VERIFY_MALFORMED);

    /* Ids: missing, empty, longer than FLUXHOOK_VERIFY_MAX_ID. */
    assert_int_equal(sw(SW_SECRET, NULL, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    assert_int_equal(sw(SW_SECRET, "", SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);
    memset(id, 'a', sizeof(id));
    id[FLUXHOOK_VERIFY_MAX_ID + 1] = '\0';
    assert_int_equal(sw(SW_SECRET, id, SW_TS_STR, SW_SIG, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);

    /* A list right at the limit still works; one byte more is refused. */
    memset(huge, ' ', sizeof(huge));
    n = FLUXHOOK_VERIFY_MAX_SIGNATURES - strlen(SW_SIG);
    memcpy(huge + n, SW_SIG, strlen(SW_SIG));
    huge[FLUXHOOK_VERIFY_MAX_SIGNATURES] = '\0';
    memcpy(huge, "v1," WRONG_B64, strlen("v1," WRONG_B64));
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, huge, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_OK);
    huge[FLUXHOOK_VERIFY_MAX_SIGNATURES] = ' ';
    huge[FLUXHOOK_VERIFY_MAX_SIGNATURES + 1] = '\0';
    assert_int_equal(sw(SW_SECRET, SW_MSG_ID, SW_TS_STR, huge, SW_PAYLOAD, SW_TS, TOL),
                     FLUXHOOK_VERIFY_MALFORMED);

    /* A NULL body is only fine when empty. */
    assert_int_equal(
        fluxhook_verify_standard(SW_SECRET, SW_MSG_ID, SW_TS_STR, SW_SIG, NULL, 5, SW_TS, TOL),
        FLUXHOOK_VERIFY_MALFORMED);
}

static void
test_standard_round_trip(void **state)
{
    char secret[SIGN_SECRET_MAX], sig[SIGN_STANDARD_MAX];

    (void)state;
    assert_int_equal(sign_secret_new(secret), 0);
    assert_int_equal(sign_standard(secret, "evt_x", 0, NULL, 0, sig), 0);
    assert_int_equal(fluxhook_verify_standard(secret, "evt_x", "0", sig, NULL, 0, 0, 0),
                     FLUXHOOK_VERIFY_OK);
    assert_int_equal(fluxhook_verify_standard(secret, "evt_x", "0", sig, "", 0, 10, 10),
                     FLUXHOOK_VERIFY_OK);
}

static void
test_strerror(void **state)
{
    int codes[] = {FLUXHOOK_VERIFY_OK,      FLUXHOOK_VERIFY_MISMATCH, FLUXHOOK_VERIFY_MALFORMED,
                   FLUXHOOK_VERIFY_TOO_OLD, FLUXHOOK_VERIFY_TOO_NEW,  FLUXHOOK_VERIFY_BAD_SECRET};
    size_t i, j;

    (void)state;
    assert_string_equal(fluxhook_verify_strerror(FLUXHOOK_VERIFY_MISMATCH),
                        "signature does not match");
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_true(strlen(fluxhook_verify_strerror(codes[i])) > 0);
        for (j = 0; j < i; j++)
            assert_string_not_equal(fluxhook_verify_strerror(codes[i]),
                                    fluxhook_verify_strerror(codes[j]));
    }
    assert_string_equal(fluxhook_verify_strerror(42), "unknown verification result");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_guide_vector),
        cmocka_unit_test(test_signature_mismatch),
        cmocka_unit_test(test_signature_malformed),
        cmocka_unit_test(test_signature_round_trip),
        cmocka_unit_test(test_standard_published_vector),
        cmocka_unit_test(test_standard_lists),
        cmocka_unit_test(test_standard_rotation),
        cmocka_unit_test(test_standard_tolerance),
        cmocka_unit_test(test_standard_malformed),
        cmocka_unit_test(test_standard_round_trip),
        cmocka_unit_test(test_strerror),
    };
    return torture_run_group_tests("verify", tests, NULL, NULL);
}
