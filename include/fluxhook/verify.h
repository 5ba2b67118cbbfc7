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

/*
 * Checks X-Workflux-Signature: signature_hex must be the hex HMAC-SHA256 of
 * body (len bytes) keyed with secret. Upper or lower case hex is accepted.
 */
int fluxhook_verify_signature(const char *secret, const void *body, size_t len,
                              const char *signature_hex);

/*
 * Checks the Standard Webhooks headers: msg_id (webhook-id), timestamp
 * (webhook-timestamp, Unix seconds) and signatures (webhook-signature, one or
 * more space-separated "v1,<base64>"). secret is "whsec_<base64>". The
 * timestamp must lie within tolerance_s seconds of now_s on either side.
 * Valid when any listed signature matches.
 */
int fluxhook_verify_standard(const char *secret, const char *msg_id, const char *timestamp,
                             const char *signatures, const void *body, size_t len,
                             int64_t now_s, int64_t tolerance_s);

/* A short lower-case sentence for a code: "signature does not match". */
const char *fluxhook_verify_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
