/* The master key of serve and db rekey: finding, making and attaching it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/masterkey.h"
#include "util/err.h"
#include "util/log.h"

/* Reads the ring of path, making the file first when it does not exist (*made = 1). */
static int
ring_from_file(const char *cmd, const char *path, struct keyring **out, int *made)
{
    char why[512];
    int err;

    *made = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        err = keyring_file_create(path, why, sizeof(why));
        if (err == 0) {
            *made = 1;
            log_info("%s: created the master key file '%s' (mode 0600): keep it, and a copy "
                     "of it away from the database; without it the endpoint secrets are lost",
                     cmd, path);
        } else if (err != ERR_CONFLICT) {
            fprintf(stderr, "fluxhook %s: master key: %s\n", cmd, why);
            return err;
        }
    }
    err = keyring_from_file(path, out, why, sizeof(why));
    if (err != 0)
        fprintf(stderr, "fluxhook %s: master key: %s\n", cmd, why);
    return err;
}

/* A ring of one new key that lives in memory only: for a store that does too (sqlite::memory:). */
static int
ring_ephemeral(struct keyring **out)
{
    unsigned char raw[KEYRING_KEY_LEN];
    char hex[2 * KEYRING_KEY_LEN + 1], why[256];
    int i, err;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return ERR_INTERNAL;
    for (i = 0; i < KEYRING_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    err = keyring_from_text(hex, out, why, sizeof(why));
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(hex, sizeof(hex));
    return err;
}

int
masterkey_attach(const char *cmd, const char *file, const char *default_path, struct store *st,
                 struct keyring **out)
{
    struct keyring *ring = NULL;
    const char *env = getenv("FLUXHOOK_MASTER_KEY");
    const char *path = file;
    char why[512], kid[KEYRING_KID_LEN];
    int64_t sealed = 0;
    int err, made = 0;

    *out = NULL;
    if (path == NULL && (env == NULL || env[0] == '\0'))
        path = default_path;
    if (path != NULL) {
        err = ring_from_file(cmd, path, &ring, &made);
    } else if (env == NULL || env[0] == '\0') {
        err = ring_ephemeral(&ring);
    } else {
        err = keyring_from_text(env, &ring, why, sizeof(why));
        if (err != 0)
            fprintf(stderr, "fluxhook %s: FLUXHOOK_MASTER_KEY: %s\n", cmd, why);
    }
    if (err != 0)
        return err;
    err = store_keys_attach(st, ring, why, sizeof(why));
    if (err == 0)
        err = store_keys_reseal(st, &sealed, why, sizeof(why));
    if (err != 0) {
        fprintf(stderr, "fluxhook %s: %s\n", cmd, why);
        log_error("%s: %s", cmd, why);
        if (made)
            unlink(path);
        store_keys_attach(st, NULL, why, sizeof(why));
        keyring_free(ring);
        return err;
    }
    keyring_current_kid(ring, kid);
    log_info("%s: endpoint secrets sealed with master key key_id=%s from=%s sealed_now=%lld", cmd,
             kid, path != NULL                       ? path
             : env != NULL && env[0] != '\0' ? "FLUXHOOK_MASTER_KEY"
                                              : "memory", (long long)sealed);
    *out = ring;
    return 0;
}
