/*
 * The master key ring: AES-256-GCM keys that seal secrets kept at rest (the
 * endpoints' signing secrets), read from a file or from text (an
 * environment variable), never from the database.
 *
 * A ring holds one or more 256-bit keys, written as 64 hex digits each, one
 * per line (or separated by commas or blanks); '#' starts a comment. The
 * first key is the current one: it seals. Every key of the ring opens what
 * it sealed. A key is known by its key id, 8 hex digits derived from the key
 * (HMAC-SHA256 of a fixed label; it reveals nothing of the key).
 *
 * A sealed value is text: "fhk1.<key id>.<base64 of nonce | ciphertext |
 * tag>", with a fresh 96-bit nonce each time and the caller's context (the
 * endpoint id) as additional data, so a value copied to another row does not
 * open. A ring made from a file reads the file again when it changed (its
 * inode, size or modification time), at most when sealing and when a value's
 * key id is not in the ring: so a running server learns of a new key as soon
 * as `fluxhook db rekey` writes it, without a restart.
 *
 * Every function is safe to call from any thread.
 */
#ifndef FLUXHOOK_UTIL_KEYRING_H
#define FLUXHOOK_UTIL_KEYRING_H

#include <stddef.h>

#define KEYRING_KEY_LEN 32     /* bytes of one AES-256 key */
#define KEYRING_KID_LEN 9      /* key id: 8 hex digits and a NUL */
#define KEYRING_MAX_KEYS 8     /* keys one ring holds, at most */
#define KEYRING_PREFIX "fhk1." /* how every sealed value begins */

struct keyring;

/*
 * Reads the ring in file path. Returns 0 and *out, or ERR_IO (cannot read)
 * or ERR_INVAL (no key, or a line that is not 64 hex digits) with why set.
 */
int keyring_from_file(const char *path, struct keyring **out, char *why, size_t whylen);

/* A ring from text (FLUXHOOK_MASTER_KEY); never read again. As keyring_from_file(). */
int keyring_from_text(const char *text, struct keyring **out, char *why, size_t whylen);

/*
 * Creates path with one new random key, mode 0600, failing if it exists
 * (ERR_CONFLICT). Returns 0, ERR_CONFLICT or ERR_IO (with why set).
 */
int keyring_file_create(const char *path, char *why, size_t whylen);

/*
 * Writes the keys of ring a, then those of ring b that a lacks (b may be
 * NULL), to path through a temporary file renamed over it (mode 0600):
 * readers see the old file or the new one, never a part. Returns 0 or ERR_IO.
 */
int keyring_file_write(const char *path, const struct keyring *a, const struct keyring *b);

/*
 * A new ring (never read again) of a's keys, then those of b that a lacks:
 * a's current key is its current key. Returns 0 and *out, or ERR_NOMEM /
 * ERR_INVAL (more than KEYRING_MAX_KEYS keys).
 */
int keyring_merge(struct keyring *a, struct keyring *b, struct keyring **out);

/* Frees the ring, clearing its keys; NULL is a no-op. */
void keyring_free(struct keyring *kr);

/* The current key's id (KEYRING_KID_LEN bytes with the NUL) into kid. */
void keyring_current_kid(struct keyring *kr, char kid[KEYRING_KID_LEN]);

/* 1 when the ring holds a key with that id, else 0. */
int keyring_has(struct keyring *kr, const char *kid);

/*
 * Seals plain under the current key with context as additional data.
 * Returns 0 and *out (malloc'd text), or ERR_NOMEM / ERR_INTERNAL.
 */
int keyring_seal(struct keyring *kr, const char *context, const char *plain, char **out);

/*
 * Opens a value keyring_seal() made with the same context. Returns 0 and
 * *out (malloc'd; free with secret_free()), ERR_NOTFOUND when no key of the
 * ring has its key id, ERR_SIGNATURE when it does not open (another
 * context, a damaged value, a different key with a colliding id), ERR_INVAL
 * when it is not a sealed value, ERR_NOMEM.
 */
int keyring_open(struct keyring *kr, const char *context, const char *sealed, char **out);

/* 1 when s looks like a sealed value (starts with KEYRING_PREFIX), else 0. NULL is 0. */
int keyring_is_sealed(const char *s);

/* The key id of a sealed value into kid; 0, or ERR_INVAL when s is not one. */
int keyring_kid_of(const char *sealed, char kid[KEYRING_KID_LEN]);

#endif
