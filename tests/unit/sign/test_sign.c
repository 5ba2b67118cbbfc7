#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../torture.h"

#include "sign/sign.h"
#include "sign/sign_int.h"
#include "util/err.h"

/*
 * Produced by the guide's own snippet: in python3,
 *   hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
 * with the secret and payload below (and verify_webhook_signature(payload,
 * result, secret) returned True).
 */
#define GUIDE_SECRET "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
#define GUIDE_PAYLOAD                                                                              \
    "{\"id\":\"evt_1\",\"event\":\"conversation.started\",\"timestamp\":\"2024-01-01T12:00:00Z\"," \
    "\"data\":{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"channel\":"           \
    "\"chat\",\"initial_message\":\"Hello, I need help\"}}"
#define GUIDE_HEX "465c1fcabee9b0e22c58b54ec5063395a1e5d2ed0f92e2ace6b40289f7bdeae0"

/*
 * Standard Webhooks' published vector: test_sign_function in
 * standard-webhooks/standard-webhooks libraries/python/tests/test_webhooks.py
 * (the same values appear in the other libraries' tests).
 */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TIMESTAMP 1614265330
#define SW_PAYLOAD "{\"test\": 2432232314}"
#define SW_SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void
test_hmac_hex_guide_vector(void **state)
{
    char out[SIGN_HEX_LEN + 1];

    (void)state;
    assert_int_equal(sign_hmac_hex(GUIDE_SECRET, GUIDE_PAYLOAD, strlen(GUIDE_PAYLOAD), out), 0);
    assert_string_equal(out, GUIDE_HEX);
}

static void
test_hmac_hex_rfc4231(void **state)
{
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
    static const char data[] = "what do ya want for nothing?";
    char out[SIGN_HEX_LEN + 1];

    (void)state;
    assert_int_equal(sign_hmac_hex("Jefe", data, strlen(data), out), 0);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/*
 * sign_mac() is HMAC written over SHA-256: RFC 4231's cases 1 (a 20-byte
 * key) and 6 (a 131-byte key, longer than a block: hashed first), then
 * OpenSSL's own HMAC() for key lengths on either side of the block size and
 * messages around a block's edges, in one piece and in several.
 */
static void
test_mac_rfc4231_and_openssl(void **state)
{
    static const unsigned char case1[SIGN_MAC_LEN] = {
        0xb0, 0x34, 0x4c, 0x61, 0xd8, 0xdb, 0x38, 0x53, 0x5c, 0xa8, 0xaf, 0xce, 0xaf, 0x0b, 0xf1, 0x2b,
        0x88, 0x1d, 0xc2, 0x00, 0xc9, 0x83, 0x3d, 0xa7, 0x26, 0xe9, 0x37, 0x6c, 0x2e, 0x32, 0xcf, 0xf7};
    static const unsigned char case6[SIGN_MAC_LEN] = {
        0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f, 0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5, 0xb7, 0x7f,
        0x8e, 0x0b, 0xc6, 0x21, 0x37, 0x28, 0xc5, 0x14, 0x05, 0x46, 0x04, 0x0f, 0x0e, 0xe3, 0x7f, 0x54};
    static const char hi[] = "Hi There";
    static const char big[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 600};
    static const size_t keylens[] = {0, 1, 24, 32, 63, 64, 65, 128, 130};
    unsigned char key[200], msg[600], mac[SIGN_MAC_LEN], want[SIGN_MAC_LEN];
    struct sign_part part, parts[3];
    unsigned int wantlen;
    size_t j, k, m, i;

    (void)state;
    memset(key, 0x0b, 20);
    part = (struct sign_part){hi, strlen(hi)};
    assert_int_equal(sign_mac(key, 20, &part, 1, mac), 0);
    assert_memory_equal(mac, case1, SIGN_MAC_LEN);
    memset(key, 0xaa, 131);
    part = (struct sign_part){big, strlen(big)};
    assert_int_equal(sign_mac(key, 131, &part, 1, mac), 0);
    assert_memory_equal(mac, case6, SIGN_MAC_LEN);
    for (i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i * 7 + 3);
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 13 + 1);
    for (j = 0; j < sizeof(keylens) / sizeof(keylens[0]); j++) {
        k = keylens[j];
        for (m = 0; m < sizeof(lens) / sizeof(lens[0]); m++) {
            assert_non_null(HMAC(EVP_sha256(), key, (int)k, msg, lens[m], want, &wantlen));
            part = (struct sign_part){msg, lens[m]};
            assert_int_equal(sign_mac(key, k, &part, 1, mac), 0);
            assert_memory_equal(mac, want, SIGN_MAC_LEN);
            parts[0] = (struct sign_part){msg, lens[m] / 3};
            parts[1] = (struct sign_part){msg + lens[m] / 3, lens[m] / 3};
            parts[2] = (struct sign_part){msg + 2 * (lens[m] / 3), lens[m] - 2 * (lens[m] / 3)};
            assert_int_equal(sign_mac(key, k, parts, 3, mac), 0);
            assert_memory_equal(mac, want, SIGN_MAC_LEN);
        }
    }
}

static void
test_hmac_hex_empty_body(void **state)
{
    char a[SIGN_HEX_LEN + 1], b[SIGN_HEX_LEN + 1];

    (void)state;
    assert_int_equal(sign_hmac_hex(GUIDE_SECRET, NULL, 0, a), 0);
    assert_int_equal(sign_hmac_hex(GUIDE_SECRET, "", 0, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), SIGN_HEX_LEN);
}

static void
test_standard_published_vector(void **state)
{
    char out[SIGN_STANDARD_MAX];

    (void)state;
    assert_int_equal(
        sign_standard(SW_SECRET, SW_MSG_ID, SW_TIMESTAMP, SW_PAYLOAD, strlen(SW_PAYLOAD), out), 0);
    assert_string_equal(out, SW_SIGNATURE);
}

static void
test_standard_bad_secret(void **state)
{
    char out[SIGN_STANDARD_MAX];

    (void)state;
    assert_int_equal(sign_standard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "x", 1, out),
                     ERR_INVAL);
    assert_int_equal(sign_standard("whsec_", "m", 1, "x", 1, out), ERR_INVAL);
    assert_int_equal(sign_standard("whsec_!!!!", "m", 1, "x", 1, out), ERR_INVAL);
    assert_int_equal(sign_standard(NULL, "m", 1, "x", 1, out), ERR_INVAL);
    assert_string_equal(out, "");
}

static void
test_secret_new(void **state)
{
    unsigned char key[SIGN_KEY_MAX];
    char a[SIGN_SECRET_MAX], b[SIGN_SECRET_MAX], err[128];
    size_t keylen;

    (void)state;
    assert_int_equal(sign_secret_new(a), 0);
    assert_int_equal(sign_secret_new(b), 0);
    assert_memory_equal(a, "whsec_", 6);
    assert_int_equal(strlen(a), 6 + 32);
    assert_string_not_equal(a, b);
    assert_int_equal(sign_b64_decode(a + 6, strlen(a) - 6, key, sizeof(key), &keylen), 0);
    assert_int_equal(keylen, 24);
    assert_int_equal(sign_secret_check(a, err, sizeof(err)), 0);
    assert_int_equal(sign_secret_check(b, err, sizeof(err)), 0);
}

static void
test_secret_check(void **state)
{
    char err[128];
    char longest[SIGN_SECRET_MAX + 8];

    (void)state;
    assert_int_equal(sign_secret_check(SW_SECRET, err, sizeof(err)), 0);
    assert_int_equal(sign_secret_check(GUIDE_SECRET, err, sizeof(err)), 0);
    /* 25 bytes, with padding. */
    assert_int_equal(
        sign_secret_check("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", err, sizeof(err)), 0);

    err[0] = '\0';
    assert_int_equal(sign_secret_check(NULL, err, sizeof(err)), ERR_INVAL);
    assert_string_equal(err, "secret: expected 'whsec_' followed by base64");
    assert_int_equal(sign_secret_check("", err, sizeof(err)), ERR_INVAL);
    assert_int_equal(sign_secret_check("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", err, sizeof(err)),
                     ERR_INVAL);
    assert_int_equal(sign_secret_check("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", err, sizeof(err)),
                     ERR_INVAL);
    assert_int_equal(sign_secret_check("whsec_", err, sizeof(err)), ERR_INVAL);
    assert_non_null(strstr(err, "24 or more bytes"));
    /* 18 bytes: too short. */
    assert_int_equal(sign_secret_check("whsec_AAAAAAAAAAAAAAAAAAAAAAAA", err, sizeof(err)),
                     ERR_INVAL);
    assert_non_null(strstr(err, "got 18"));
    /* Not base64, missing padding, padding in the middle, trailing space. */
    assert_int_equal(sign_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", err, sizeof(err)),
                     ERR_INVAL);
    assert_non_null(strstr(err, "base64"));
    assert_int_equal(
        sign_secret_check("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", err, sizeof(err)), ERR_INVAL);
    assert_int_equal(
        sign_secret_check("whsec_AAAAAAAAAAAAAAAA==AAAAAAAAAAAAAAAAAA==", err, sizeof(err)),
        ERR_INVAL);
    assert_int_equal(sign_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", err, sizeof(err)),
                     ERR_INVAL);
    /* URL-safe alphabet is not standard base64. */
    assert_int_equal(sign_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_w", err, sizeof(err)),
                     ERR_INVAL);

    /* The longest accepted: 255 characters (249 of base64 is not a multiple of 4). */
    memset(longest, 'A', sizeof(longest));
    memcpy(longest, "whsec_", 6);
    longest[6 + 248] = '\0';
    assert_int_equal(sign_secret_check(longest, err, sizeof(err)), 0);
    longest[6 + 248] = 'A';
    longest[6 + 252] = '\0';
    assert_int_equal(sign_secret_check(longest, err, sizeof(err)), ERR_INVAL);
    assert_non_null(strstr(err, "longer than 255"));
}

static void
test_b64_round_trip(void **state)
{
    unsigned char in[40], out[40];
    char enc[64];
    size_t n, i, outlen;

    (void)state;
    for (i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (n = 0; n <= sizeof(in); n++) {
        size_t elen = sign_b64_encode(in, n, enc);

        assert_int_equal(elen, 4 * ((n + 2) / 3));
        assert_int_equal(sign_b64_decode(enc, elen, out, sizeof(out), &outlen), 0);
        assert_int_equal(outlen, n);
        if (n > 0)
            assert_memory_equal(in, out, n);
    }
    sign_b64_encode("foobar", 6, enc);
    assert_string_equal(enc, "Zm9vYmFy");
    sign_b64_encode("fooba", 5, enc);
    assert_string_equal(enc, "Zm9vYmE=");
    sign_b64_encode("foob", 4, enc);
    assert_string_equal(enc, "Zm9vYg==");
}

static void
test_b64_strict(void **state)
{
    unsigned char out[16];
    size_t outlen = 99;

    (void)state;
    assert_int_equal(sign_b64_decode("Zm9vYg==", 8, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 4);
    /* Non-zero bits after the last byte: "Zm9vYh==" would also read "foob". */
    assert_int_equal(sign_b64_decode("Zm9vYh==", 8, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Zm9vYmF=", 8, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Zm9vYg=", 7, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Zm9vYg", 6, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Zm9v=g==", 8, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Z===", 4, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("====", 4, out, sizeof(out), &outlen), ERR_PARSE);
    assert_int_equal(sign_b64_decode("Zm9v\nYg==", 9, out, sizeof(out), &outlen), ERR_PARSE);
    /* Too long for out. */
    assert_int_equal(sign_b64_decode("Zm9vYmFyZm9vYmFyZm9vYmFy", 24, out, sizeof(out), &outlen),
                     ERR_PARSE);
    assert_int_equal(sign_b64_decode("", 0, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 0);
}

static void
test_mac_parts_equal_whole(void **state)
{
    static const char whole[] = "msg_1.1700000000.{\"a\":1}";
    struct sign_part one = {whole, strlen(whole)};
    struct sign_part parts[] = {
        {"msg_1", 5}, {".", 1}, {"1700000000", 10}, {".", 1}, {"{\"a\":1}", 7}};
    unsigned char a[SIGN_MAC_LEN], b[SIGN_MAC_LEN];

    (void)state;
    assert_int_equal(sign_mac("key", 3, &one, 1, a), 0);
    assert_int_equal(sign_mac("key", 3, parts, 5, b), 0);
    assert_memory_equal(a, b, SIGN_MAC_LEN);
    /* An empty key is valid HMAC. */
    assert_int_equal(sign_mac(NULL, 0, &one, 1, a), 0);
    assert_memory_not_equal(a, b, SIGN_MAC_LEN);
}

/*
 * The timestamp goes into the signed content in decimal, as the guide's
 * "{id}.{timestamp}.{body}": zero, one digit, a digit more, the greatest
 * and a negative one each sign what the string written out signs.
 */
static void
test_standard_timestamp_digits(void **state)
{
    static const struct {
        int64_t ts;
        const char *text;
    } cases[] = {
        {0, "0"}, {9, "9"}, {10, "10"}, {1700000000, "1700000000"},
        {INT64_MAX, "9223372036854775807"}, {-1, "-1"},
        {INT64_MIN, "-9223372036854775808"},
    };
    unsigned char key[SIGN_KEY_MAX], mac[SIGN_MAC_LEN];
    char out[SIGN_STANDARD_MAX], want[SIGN_STANDARD_MAX];
    size_t keylen, i;

    (void)state;
    assert_int_equal(sign_secret_key(SW_SECRET, key, &keylen), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sign_part parts[] = {{"m", 1}, {".", 1}, {cases[i].text, strlen(cases[i].text)},
                                    {".", 1}, {"x", 1}};

        assert_int_equal(sign_mac(key, keylen, parts, 5, mac), 0);
        memcpy(want, "v1,", 3);
        sign_b64_encode(mac, SIGN_MAC_LEN, want + 3);
        assert_int_equal(sign_standard(SW_SECRET, "m", cases[i].ts, "x", 1, out), 0);
        assert_string_equal(out, want);
    }
}

#define THREADS 4
#define ROUNDS 2000

/* Signs the published vector ROUNDS times; returns how many came out wrong. */
static void *
sign_loop(void *arg)
{
    char out[SIGN_STANDARD_MAX], hex[SIGN_HEX_LEN + 1];
    size_t *bad = arg;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        if (sign_standard(SW_SECRET, SW_MSG_ID, SW_TIMESTAMP, SW_PAYLOAD, strlen(SW_PAYLOAD),
                          out) != 0 ||
            strcmp(out, SW_SIGNATURE) != 0)
            (*bad)++;
        if (sign_hmac_hex(GUIDE_SECRET, GUIDE_PAYLOAD, strlen(GUIDE_PAYLOAD), hex) != 0 ||
            strcmp(hex, GUIDE_HEX) != 0)
            (*bad)++;
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[THREADS];
    size_t bad[THREADS] = {0};
    int i;

    (void)state;
    /* The shared HMAC template is made by whichever thread comes first. */
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_loop, &bad[i]), 0);
    /* Every thread joined before any assertion may leave the test. */
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(bad[i], 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, so that its threads race to fetch SHA-256. */
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_hmac_hex_guide_vector),
        cmocka_unit_test(test_hmac_hex_rfc4231),
        cmocka_unit_test(test_mac_rfc4231_and_openssl),
        cmocka_unit_test(test_hmac_hex_empty_body),
        cmocka_unit_test(test_standard_published_vector),
        cmocka_unit_test(test_standard_bad_secret),
        cmocka_unit_test(test_secret_new),
        cmocka_unit_test(test_secret_check),
        cmocka_unit_test(test_b64_round_trip),
        cmocka_unit_test(test_b64_strict),
        cmocka_unit_test(test_mac_parts_equal_whole),
        cmocka_unit_test(test_standard_timestamp_digits),
    };
    return torture_run_group_tests("sign", tests, NULL, NULL);
}
