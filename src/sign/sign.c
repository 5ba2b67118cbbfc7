/*
 * Signing deliveries (CONTRACT §2) and endpoint secrets, with OpenSSL's
 * libcrypto only: this file also builds into libfluxhook-verify.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sign/sign.h"
#include "sign/sign_int.h"
#include "util/err.h"

#define SECRET_RANDOM_BYTES 24
#define SECRET_MIN_BYTES 24

#define HMAC_BLOCK 64 /* SHA-256's block size in bytes */

/*
 * SHA-256, fetched from the provider once: fetching by name on every call
 * costs more than the MAC of a small body.
 */
static _Atomic(EVP_MD *) sha256_md;

static EVP_MD *
sha256_get(void)
{
    EVP_MD *md, *expected = NULL;

    md = atomic_load(&sha256_md);
    if (md != NULL)
        return md;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md == NULL)
        return NULL;
    /* Another thread may have won the race: keep one, free ours. */
    if (!atomic_compare_exchange_strong(&sha256_md, &expected, md)) {
        EVP_MD_free(md);
        md = expected;
    }
    return md;
}

/* One SHA-256 pass: the 64-byte pad, then the pieces, into out. */
static int
digest_padded(EVP_MD_CTX *c, const EVP_MD *md, const unsigned char pad[HMAC_BLOCK],
              const struct sign_part *parts, size_t nparts, unsigned char out[SIGN_MAC_LEN])
{
    unsigned int outlen = 0;
    size_t i;

    if (EVP_DigestInit_ex2(c, md, NULL) != 1 || EVP_DigestUpdate(c, pad, HMAC_BLOCK) != 1)
        return ERR_INTERNAL;
    for (i = 0; i < nparts; i++) {
        if (parts[i].len > 0 && EVP_DigestUpdate(c, parts[i].p, parts[i].len) != 1)
            return ERR_INTERNAL;
    }
    if (EVP_DigestFinal_ex(c, out, &outlen) != 1 || outlen != SIGN_MAC_LEN)
        return ERR_INTERNAL;
    return 0;
}

/*
 * HMAC (RFC 2104) written over the digest: H(K ^ opad, H(K ^ ipad, m)).
 * OpenSSL's EVP_MAC made and freed three digest contexts per call, which
 * cost twice the hashing of a 600-byte body; this uses one.
 */
int
sign_mac(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
         unsigned char out[SIGN_MAC_LEN])
{
    unsigned char k[HMAC_BLOCK];
    unsigned char pad[HMAC_BLOCK];
    unsigned char inner[SIGN_MAC_LEN];
    struct sign_part outer;
    EVP_MD_CTX *c = NULL;
    EVP_MD *md;
    size_t i;
    int err = ERR_INTERNAL;

    memset(k, 0, sizeof(k));
    md = sha256_get();
    c = EVP_MD_CTX_new();
    if (md == NULL || c == NULL)
        goto out;
    /* A key longer than a block is replaced by its digest. */
    if (keylen > HMAC_BLOCK) {
        if (EVP_Digest(key, keylen, k, NULL, md, NULL) != 1)
            goto out;
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    err = digest_padded(c, md, pad, parts, nparts, inner);
    if (err != 0)
        goto out;
    for (i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    outer = (struct sign_part){inner, sizeof(inner)};
    err = digest_padded(c, md, pad, &outer, 1, out);
out:
    EVP_MD_CTX_free(c); /* NULL is a no-op */
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
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
