/*
 * libfluxhook-verify: checks, on the receiver's side, that a webhook came from
 * fluxhook (or WorkFlux) and was not changed on the way.
 *
 * Two schemes are signed on every delivery:
 *  - X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed
 *    with the bytes of the endpoint's secret as given ("whsec_..." included).
 *  - Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature):
 *    "v1," + base64 HMAC-SHA256 of "id.timestamp.body", keyed with the
 *    base64-decoded part of the secret after "whsec_"; several signatures,
 *    space-separated, while a secret rotation's grace period runs.
 *
 * Every comparison runs in constant time. Functions return
 * FLUXHOOK_VERIFY_OK (0) or one of the negative codes below.
 */
#ifndef FLUXHOOK_VERIFY_H
#define FLUXHOOK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLUXHOOK_VERIFY_OK 0
#define FLUXHOOK_VERIFY_MISMATCH (-1)   /* well formed, but no signature matches */
#define FLUXHOOK_VERIFY_MALFORMED (-2)  /* a header is not of the expected form */
#define FLUXHOOK_VERIFY_TOO_OLD (-3)    /* timestamp older than the tolerance */
#define FLUXHOOK_VERIFY_TOO_NEW (-4)    /* timestamp further ahead than the tolerance */
#define FLUXHOOK_VERIFY_BAD_SECRET (-5) /* the secret cannot be used for this scheme */

#define FLUXHOOK_VERIFY_DEFAULT_TOLERANCE 300 /* seconds, either side of now */

/* Longest headers accepted; longer ones are FLUXHOOK_VERIFY_MALFORMED. */
#define FLUXHOOK_VERIFY_MAX_ID 256          /* webhook-id */
#define FLUXHOOK_VERIFY_MAX_SIGNATURES 8192 /* webhook-signature */

/* The library exports these functions and nothing else. */
#if defined(__GNUC__)
#define FLUXHOOK_VERIFY_API __attribute__((visibility("default")))
#else
#define FLUXHOOK_VERIFY_API
#endif

/*
 * Checks X-Workflux-Signature: signature_hex must be the hex HMAC-SHA256 of
 * body (len bytes) keyed with secret. Upper or lower case hex is accepted.
 * Returns FLUXHOOK_VERIFY_OK, _MISMATCH, _MALFORMED (not 64 hex digits) or
 * _BAD_SECRET (NULL or empty).
 */
FLUXHOOK_VERIFY_API int fluxhook_verify_signature(const char *secret, const void *body, size_t len,
                                                  const char *signature_hex);

/*
 * Checks the Standard Webhooks headers: msg_id (webhook-id), timestamp
 * (webhook-timestamp, Unix seconds) and signatures (webhook-signature, one or
 * more space-separated "v1,<base64>"). secret is "whsec_<base64>". The
 * timestamp must lie within tolerance_s seconds of now_s on either side
 * (exactly tolerance_s away is still valid; a negative tolerance_s counts as
 * 0). Valid when any listed signature matches; entries of other versions
 * ("v1a,...") are skipped.
 * Returns FLUXHOOK_VERIFY_OK; _BAD_SECRET; _MALFORMED for an empty or too long
 * id, a timestamp that is not decimal digits, or no well-formed v1 entry;
 * _MISMATCH when none matches; then, for a matching signature only, _TOO_OLD
 * or _TOO_NEW. So _TOO_OLD means authentic but stale (a replay, or a clock
 * that is off).
 */
FLUXHOOK_VERIFY_API int fluxhook_verify_standard(const char *secret, const char *msg_id,
                                                 const char *timestamp, const char *signatures,
                                                 const void *body, size_t len, int64_t now_s,
                                                 int64_t tolerance_s);

/* A short lower-case sentence for a code: "signature does not match". */
FLUXHOOK_VERIFY_API const char *fluxhook_verify_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
