/*
 * Helpers shared by sign.c and verify.c only: strict base64, the HMAC over
 * several pieces, and the key inside a "whsec_" secret.
 */
#ifndef FLUXHOOK_SIGN_SIGN_INT_H
#define FLUXHOOK_SIGN_SIGN_INT_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_MAC_LEN 32  /* bytes of an HMAC-SHA256 */
#define SIGN_KEY_MAX 192 /* bytes a secret's base64 part may decode to (255 chars) */

/* One piece of the message an HMAC covers. */
struct sign_part {
    const void *p;
    size_t len;
};

/*
 * HMAC-SHA256 of the pieces, in order, keyed with key (keylen bytes), into
 * out. Returns 0 or ERR_INTERNAL.
 */
int sign_mac(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
             unsigned char out[SIGN_MAC_LEN]);

/*
 * Standard base64 of in (len bytes), with padding, NUL-terminated, into out
 * (room for 4 * ((len + 2) / 3) + 1 bytes). Returns the length written.
 */
size_t sign_b64_encode(const void *in, size_t len, char *out);

/*
 * Decodes standard base64 of exactly len characters: the length must be a
 * multiple of 4, '=' only as the last one or two characters, and the unused
 * bits of the last character zero, so each byte string has one encoding.
 * Writes at most outmax bytes to out and the count to *outlen.
 * Returns 0, or ERR_PARSE for anything else (out then holds no secret).
 */
int sign_b64_decode(const char *in, size_t len, unsigned char *out, size_t outmax, size_t *outlen);

/*
 * The key of a Standard Webhooks secret: the base64 after "whsec_", decoded
 * into key (SIGN_KEY_MAX bytes) with its length in *keylen. Returns 0, or
 * ERR_INVAL for a missing prefix, bad base64, an empty or too long key.
 * The caller clears key with OPENSSL_cleanse() when done.
 */
int sign_secret_key(const char *secret, unsigned char key[SIGN_KEY_MAX], size_t *keylen);

#endif
