/*
 * libfluxhook-verify: the receiver's side of sign.c. Every comparison of MAC
 * bytes runs in constant time (CRYPTO_memcmp); parsing the headers depends
 * only on their public shape.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "fluxhook/verify.h"
#include "sign/sign.h"
#include "sign/sign_int.h"

#define TIMESTAMP_MAX_DIGITS 18 /* below INT64_MAX whatever the digits */

/* The value of a hex digit, either case, or -1. */
static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

FLUXHOOK_VERIFY_API int
fluxhook_verify_signature(const char *secret, const void *body, size_t len,
                          const char *signature_hex)
{
    unsigned char want[SIGN_MAC_LEN], got[SIGN_MAC_LEN];
    struct sign_part part = {body, len};
    int hi, lo, rc;
    size_t i;

    if (secret == NULL || secret[0] == '\0')
        return FLUXHOOK_VERIFY_BAD_SECRET;
    if (signature_hex == NULL || strnlen(signature_hex, SIGN_HEX_LEN + 1) != SIGN_HEX_LEN)
        return FLUXHOOK_VERIFY_MALFORMED;
    for (i = 0; i < SIGN_MAC_LEN; i++) {
        hi = hex_value((unsigned char)signature_hex[2 * i]);
        lo = hex_value((unsigned char)signature_hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FLUXHOOK_VERIFY_MALFORMED;
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    if (body == NULL && len > 0)
        return FLUXHOOK_VERIFY_MALFORMED;
    if (sign_mac(secret, strlen(secret), &part, 1, want) != 0)
        return FLUXHOOK_VERIFY_MISMATCH; /* fail closed */
    rc =
        CRYPTO_memcmp(want, got, SIGN_MAC_LEN) == 0 ? FLUXHOOK_VERIFY_OK : FLUXHOOK_VERIFY_MISMATCH;
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

/* Parses a webhook-timestamp: 1 to 18 decimal digits. Returns 0 or -1. */
static int
timestamp_parse(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == TIMESTAMP_MAX_DIGITS || s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    *out = v;
    return 0;
}

/*
 * Walks the space-separated entries of a webhook-signature header and
 * compares every well-formed v1 entry with mac. Returns FLUXHOOK_VERIFY_OK
 * when one matches, _MISMATCH when none does, _MALFORMED when there is no
 * well-formed v1 entry.
 */
static int
signatures_match(const char *sigs, const unsigned char mac[SIGN_MAC_LEN])
{
    unsigned char got[SIGN_MAC_LEN + 3];
    const char *p = sigs, *end, *comma;
    size_t gotlen;
    int seen = 0, match = 0;

    while (*p != '\0') {
        if (*p == ' ') {
            p++;
            continue;
        }
        end = strchr(p, ' ');
        if (end == NULL)
            end = p + strlen(p);
        comma = memchr(p, ',', (size_t)(end - p));
        /* Entries of other versions (v1a is Ed25519) are not ours to judge. */
        if (comma != NULL && comma - p == 2 && memcmp(p, "v1", 2) == 0 &&
            sign_b64_decode(comma + 1, (size_t)(end - comma - 1), got, sizeof(got), &gotlen) == 0 &&
            gotlen == SIGN_MAC_LEN) {
            seen = 1;
            /* No early exit: every entry is compared, match or not. */
            match |= CRYPTO_memcmp(got, mac, SIGN_MAC_LEN) == 0;
        }
        p = end;
    }
    if (!seen)
        return FLUXHOOK_VERIFY_MALFORMED;
    return match ? FLUXHOOK_VERIFY_OK : FLUXHOOK_VERIFY_MISMATCH;
}

FLUXHOOK_VERIFY_API int
fluxhook_verify_standard(const char *secret, const char *msg_id, const char *timestamp,
                         const char *signatures, const void *body, size_t len, int64_t now_s,
                         int64_t tolerance_s)
{
    unsigned char key[SIGN_KEY_MAX];
    unsigned char mac[SIGN_MAC_LEN];
    struct sign_part parts[5];
    size_t keylen = 0, idlen;
    int64_t ts = 0;
    uint64_t off;
    int rc;

    if (sign_secret_key(secret, key, &keylen) != 0) {
        rc = FLUXHOOK_VERIFY_BAD_SECRET;
        goto out;
    }
    rc = FLUXHOOK_VERIFY_MALFORMED;
    if (msg_id == NULL || timestamp == NULL || signatures == NULL || (body == NULL && len > 0))
        goto out;
    idlen = strnlen(msg_id, FLUXHOOK_VERIFY_MAX_ID + 1);
    if (idlen == 0 || idlen > FLUXHOOK_VERIFY_MAX_ID)
        goto out;
    if (strnlen(signatures, FLUXHOOK_VERIFY_MAX_SIGNATURES + 1) > FLUXHOOK_VERIFY_MAX_SIGNATURES)
        goto out;
    if (timestamp_parse(timestamp, &ts) != 0)
        goto out;
    /* The MAC covers the header's own digits, as the sender wrote them. */
    parts[0] = (struct sign_part){msg_id, idlen};
    parts[1] = (struct sign_part){".", 1};
    parts[2] = (struct sign_part){timestamp, strlen(timestamp)};
    parts[3] = (struct sign_part){".", 1};
    parts[4] = (struct sign_part){body, len};
    if (sign_mac(key, keylen, parts, 5, mac) != 0) {
        rc = FLUXHOOK_VERIFY_MISMATCH; /* fail closed */
        goto out;
    }
    rc = signatures_match(signatures, mac);
    if (rc != FLUXHOOK_VERIFY_OK)
        goto out;
    if (tolerance_s < 0)
        tolerance_s = 0;
    /* Unsigned differences cannot overflow whatever now_s is. */
    if (ts < now_s) {
        off = (uint64_t)now_s - (uint64_t)ts;
        if (off > (uint64_t)tolerance_s)
            rc = FLUXHOOK_VERIFY_TOO_OLD;
    } else {
        off = (uint64_t)ts - (uint64_t)now_s;
        if (off > (uint64_t)tolerance_s)
            rc = FLUXHOOK_VERIFY_TOO_NEW;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

FLUXHOOK_VERIFY_API const char *
fluxhook_verify_strerror(int code)
{
    switch (code) {
    case FLUXHOOK_VERIFY_OK:
        return "signature is valid";
    case FLUXHOOK_VERIFY_MISMATCH:
        return "signature does not match";
    case FLUXHOOK_VERIFY_MALFORMED:
        return "header is malformed";
    case FLUXHOOK_VERIFY_TOO_OLD:
        return "timestamp is too old";
    case FLUXHOOK_VERIFY_TOO_NEW:
        return "timestamp is too far in the future";
    case FLUXHOOK_VERIFY_BAD_SECRET:
        return "secret cannot be used for this scheme";
    default:
        return "unknown verification result";
    }
}
