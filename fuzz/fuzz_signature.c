/*
 * libFuzzer target for the signature headers a receiver parses. The input is
 * split at its first three newlines into webhook-id, webhook-timestamp and
 * webhook-signature; the rest is the body. Besides looking for crashes it
 * checks three properties:
 *  - strict base64 has one encoding: what decodes re-encodes to itself;
 *  - whatever sign_standard() signs, fluxhook_verify_standard() accepts;
 *  - X-Workflux-Signature: what sign_hmac_hex() gives verifies, in either case.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluxhook/verify.h"
#include "sign/sign.h"
#include "sign/sign_int.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define NOW 1614265330

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies the next field (up to '\n') out of data as a string. */
static char *
field(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl != NULL ? (size_t)(nl - *data) : *size;
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += nl != NULL ? n + 1 : n;
    *size -= nl != NULL ? n + 1 : n;
    return s;
}

static void
check_b64(const char *s)
{
    unsigned char out[256];
    char enc[400];
    size_t outlen, len = strlen(s);

    if (len > 340 || sign_b64_decode(s, len, out, sizeof(out), &outlen) != 0)
        return;
    sign_b64_encode(out, outlen, enc);
    if (strcmp(enc, s) != 0)
        abort();
}

static void
check_round_trip(const char *id, const char *ts, const void *body, size_t len)
{
    char sig[SIGN_STANDARD_MAX], hex[SIGN_HEX_LEN + 1], again[32];
    long long t;
    size_t i;

    if (sign_hmac_hex(SECRET, body, len, hex) != 0 ||
        fluxhook_verify_signature(SECRET, body, len, hex) != FLUXHOOK_VERIFY_OK)
        abort();
    for (i = 0; hex[i] != '\0'; i++)
        hex[i] = (char)toupper((unsigned char)hex[i]);
    if (fluxhook_verify_signature(SECRET, body, len, hex) != FLUXHOOK_VERIFY_OK)
        abort();

    /* Only ids and timestamps the verifier takes, written the way the signer writes them. */
    if (id[0] == '\0' || strlen(id) > FLUXHOOK_VERIFY_MAX_ID || ts[0] == '\0' || strlen(ts) > 18 ||
        strspn(ts, "0123456789") != strlen(ts))
        return;
    t = strtoll(ts, NULL, 10);
    snprintf(again, sizeof(again), "%lld", t);
    if (strcmp(again, ts) != 0)
        return;
    if (sign_standard(SECRET, id, t, body, len, sig) != 0)
        abort();
    if (fluxhook_verify_standard(SECRET, id, ts, sig, body, len, t, 0) != FLUXHOOK_VERIFY_OK)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *id, *ts, *sigs, err[128];
    int rc;

    id = field(&data, &size);
    ts = field(&data, &size);
    sigs = field(&data, &size);
    rc = fluxhook_verify_standard(SECRET, id, ts, sigs, data, size, NOW,
                                  FLUXHOOK_VERIFY_DEFAULT_TOLERANCE);
    if (rc > 0 || rc < FLUXHOOK_VERIFY_BAD_SECRET || rc == FLUXHOOK_VERIFY_BAD_SECRET)
        abort();
    /* The signatures field as X-Workflux-Signature, and as a secret. */
    rc = fluxhook_verify_signature(SECRET, data, size, sigs);
    if (rc != FLUXHOOK_VERIFY_OK && rc != FLUXHOOK_VERIFY_MISMATCH &&
        rc != FLUXHOOK_VERIFY_MALFORMED)
        abort();
    (void)fluxhook_verify_standard(sigs, id, ts, ts, data, size, NOW, 300);
    (void)sign_secret_check(sigs, err, sizeof(err));
    check_b64(sigs);
    check_b64(ts);
    check_round_trip(id, ts, data, size);
    free(id);
    free(ts);
    free(sigs);
    return 0;
}
