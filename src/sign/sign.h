/*
 * Signing deliveries (CONTRACT §2) and endpoint secrets. OpenSSL only;
 * includes nothing above src/util, so libfluxhook-verify builds from
 * src/sign and src/util alone.
 */
#ifndef FLUXHOOK_SIGN_SIGN_H
#define FLUXHOOK_SIGN_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_HEX_LEN 64        /* hex HMAC-SHA256, without NUL */
#define SIGN_STANDARD_MAX 64   /* "v1," + base64 of 32 bytes (44) + NUL, rounded up */
#define SIGN_SECRET_MAX 256    /* longest secret accepted, with its NUL */
#define SIGN_SECRET_PREFIX "whsec_"

/*
 * X-Workflux-Signature: lowercase hex HMAC-SHA256 of body keyed with the
 * bytes of secret (the whole string, "whsec_" included), into out.
 * Returns 0 or ERR_INTERNAL.
 */
int sign_hmac_hex(const char *secret, const void *body, size_t len, char out[SIGN_HEX_LEN + 1]);

/*
 * One Standard Webhooks signature: "v1," + base64 HMAC-SHA256 of
 * "msg_id.timestamp.body", keyed with the base64-decoded part of secret after
 * "whsec_", into out. Returns 0, ERR_INVAL for a secret that is not
 * "whsec_<base64>", or ERR_INTERNAL.
 */
int sign_standard(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                  size_t len, char out[SIGN_STANDARD_MAX]);

/* A new secret: "whsec_" + base64 of 24 random bytes. Returns 0 or ERR_INTERNAL. */
int sign_secret_new(char out[SIGN_SECRET_MAX]);

/*
 * Checks a secret a user supplies: "whsec_" followed by base64 of 24 or more
 * bytes (and at most SIGN_SECRET_MAX - 1 characters). Returns 0, or ERR_INVAL
 * with err saying what was expected.
 */
int sign_secret_check(const char *secret, char *err, size_t errlen);

#endif
