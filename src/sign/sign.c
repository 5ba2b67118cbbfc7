/*
 * Signing deliveries (CONTRACT §2) and endpoint secrets, with OpenSSL's
 * libcrypto only: this file also builds into libfluxhook-verify.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sign/sign.h"
#include "sign/sign_int.h"
#include "util/err.h"

#define SECRET_RANDOM_BYTES 24
#define SECRET_MIN_BYTES 24

/*
 * A context with HMAC and SHA-256 already chosen, made once and duplicated
 * for each MAC: choosing them by name on every call costs more than the MAC
 * of a small body.
 */
static _Atomic(EVP_MAC_CTX *) mac_template;

static EVP_MAC_CTX *
template_get(void)
{
    EVP_MAC_CTX *t, *expected = NULL;
    EVP_MAC *mac = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";

    t = atomic_load(&mac_template);
    if (t != NULL)
        return t;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return NULL;
    t = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (t == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(t, params) != 1) {
        EVP_MAC_CTX_free(t);
        return NULL;
    }
    /* Another thread may have won the race: keep one template, free ours. */
    if (!atomic_compare_exchange_strong(&mac_template, &expected, t)) {
        EVP_MAC_CTX_free(t);
        t = expected;
    }
    return t;
}

int
sign_mac(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
         unsigned char out[SIGN_MAC_LEN])
{
    static const unsigned char nokey[1];
    EVP_MAC_CTX *t, *ctx = NULL;
    size_t i, outlen = 0;
    int err = ERR_INTERNAL;

    t = template_get();
    if (t == NULL)
        goto out;
    ctx = EVP_MAC_CTX_dup(t);
    if (ctx == NULL)
        goto out;
    /* OpenSSL refuses a NULL key; HMAC with an empty key is well defined. */
    if (EVP_MAC_init(ctx, keylen > 0 ? key : nokey, keylen, NULL) != 1)
        goto out;
    for (i = 0; i < nparts; i++) {
        if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].p, parts[i].len) != 1)
            goto out;
    }
    if (EVP_MAC_final(ctx, out, &outlen, SIGN_MAC_LEN) != 1 || outlen != SIGN_MAC_LEN)
        goto out;
    err = 0;
out:
    EVP_MAC_CTX_free(ctx); /* NULL is a no-op; it clears the key schedule */
    return err;
}

size_t
sign_b64_encode(const void *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t i, n = 0;
    uint32_t v;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
        out[n++] = abc[v & 63];
    }
    if (len - i == 1) {
        v = (uint32_t)p[i] << 16;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = '=';
        out[n++] = '=';
    } else if (len - i == 2) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
        out[n++] = '=';
    }
    out[n] = '\0';
    return n;
}

/* The value of a base64 character, or -1. */
static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int
sign_b64_decode(const char *in, size_t len, unsigned char *out, size_t outmax, size_t *outlen)
{
    size_t i, j, pad = 0, n = 0;
    uint32_t v;
    int d;

    *outlen = 0;
    if (len % 4 != 0)
        return ERR_PARSE;
    if (len > 0 && in[len - 1] == '=')
        pad = len > 1 && in[len - 2] == '=' ? 2 : 1;
    if ((len / 4) * 3 - pad > outmax)
        return ERR_PARSE;
    for (i = 0; i < len; i += 4) {
        v = 0;
        for (j = 0; j < 4; j++) {
            /* '=' is padding only in the last group's last pad places. */
            if (i + 4 == len && j >= 4 - pad) {
                v <<= 6;
                continue;
            }
            d = b64_value((unsigned char)in[i + j]);
            if (d < 0)
                goto bad;
            v = v << 6 | (uint32_t)d;
        }
        out[n++] = (unsigned char)(v >> 16);
        if (i + 4 < len || pad < 2)
            out[n++] = (unsigned char)(v >> 8);
        if (i + 4 < len || pad < 1)
            out[n++] = (unsigned char)v;
        /* Bits past the last byte must be zero: one encoding per string. */
        if (i + 4 == len && ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)))
            goto bad;
    }
    *outlen = n;
    return 0;
bad:
    OPENSSL_cleanse(out, n);
    return ERR_PARSE;
}

int
sign_secret_key(const char *secret, unsigned char key[SIGN_KEY_MAX], size_t *keylen)
{
    size_t plen = strlen(SIGN_SECRET_PREFIX);
    size_t len;

    *keylen = 0;
    if (secret == NULL || strncmp(secret, SIGN_SECRET_PREFIX, plen) != 0)
        return ERR_INVAL;
    len = strnlen(secret + plen, SIGN_SECRET_MAX);
    if (len == 0 || len >= SIGN_SECRET_MAX)
        return ERR_INVAL;
    if (sign_b64_decode(secret + plen, len, key, SIGN_KEY_MAX, keylen) != 0 || *keylen == 0)
        return ERR_INVAL;
    return 0;
}

int
sign_hmac_hex(const char *secret, const void *body, size_t len, char out[SIGN_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[SIGN_MAC_LEN];
    struct sign_part part = {body, len};
    size_t i;
    int err;

    out[0] = '\0';
    if (secret == NULL)
        return ERR_INTERNAL;
    err = sign_mac(secret, strlen(secret), &part, 1, mac);
    if (err != 0)
        return err;
    for (i = 0; i < SIGN_MAC_LEN; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[SIGN_HEX_LEN] = '\0';
    return 0;
}

/*
 * Writes v in decimal so that it ends at end (no NUL); returns where it
 * begins. Every attempt signs with it: no printf on that path.
 */
static char *
decimal(int64_t v, char *end)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *--end = '-';
    return end;
}

int
sign_standard(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
              size_t len, char out[SIGN_STANDARD_MAX])
{
    unsigned char key[SIGN_KEY_MAX];
    unsigned char mac[SIGN_MAC_LEN];
    char ts[24];
    char *t;
    struct sign_part parts[5];
    size_t keylen = 0;
    int err;

    out[0] = '\0';
    err = sign_secret_key(secret, key, &keylen);
    if (err != 0)
        goto out;
    if (msg_id == NULL) {
        err = ERR_INVAL;
        goto out;
    }
    t = decimal(timestamp, ts + sizeof(ts));
    parts[0] = (struct sign_part){msg_id, strlen(msg_id)};
    parts[1] = (struct sign_part){".", 1};
    parts[2] = (struct sign_part){t, (size_t)(ts + sizeof(ts) - t)};
    parts[3] = (struct sign_part){".", 1};
    parts[4] = (struct sign_part){body, len};
    err = sign_mac(key, keylen, parts, 5, mac);
    if (err != 0)
        goto out;
    memcpy(out, "v1,", 3);
    sign_b64_encode(mac, SIGN_MAC_LEN, out + 3);
out:
    OPENSSL_cleanse(key, sizeof(key));
    return err;
}

int
sign_secret_new(char out[SIGN_SECRET_MAX])
{
    unsigned char raw[SECRET_RANDOM_BYTES];
    size_t plen = strlen(SIGN_SECRET_PREFIX);
    int err = ERR_INTERNAL;

    out[0] = '\0';
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        goto out;
    memcpy(out, SIGN_SECRET_PREFIX, plen);
    sign_b64_encode(raw, sizeof(raw), out + plen);
    err = 0;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    return err;
}

int
sign_secret_check(const char *secret, char *err, size_t errlen)
{
    unsigned char key[SIGN_KEY_MAX];
    size_t plen = strlen(SIGN_SECRET_PREFIX);
    size_t len, keylen = 0;
    int rc = ERR_INVAL;

    if (secret == NULL || strncmp(secret, SIGN_SECRET_PREFIX, plen) != 0) {
        snprintf(err, errlen, "secret: expected 'whsec_' followed by base64");
        goto out;
    }
    len = strnlen(secret, SIGN_SECRET_MAX);
    if (len >= SIGN_SECRET_MAX) {
        snprintf(err, errlen, "secret: longer than %d characters", SIGN_SECRET_MAX - 1);
        goto out;
    }
    if (sign_b64_decode(secret + plen, len - plen, key, sizeof(key), &keylen) != 0) {
        snprintf(err, errlen, "secret: expected standard base64 with padding after 'whsec_'");
        goto out;
    }
    if (keylen < SECRET_MIN_BYTES) {
        snprintf(err, errlen,
                 "secret: expected base64 of %d or more bytes after 'whsec_', "
                 "got %zu",
                 SECRET_MIN_BYTES, keylen);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}
