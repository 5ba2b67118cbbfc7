/* The master key of serve and db rekey: finding, making and attaching it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/masterkey.h"
#include "util/clock.h"
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
    if (err != 0 && err != ERR_UNAVAILABLE) {
        fprintf(stderr, "fluxhook %s: %s\n", cmd, why);
        log_error("%s: %s", cmd, why);
        if (made)
            unlink(path);
    }
    if (err != 0) {
        /* A lost connection keeps a file just made: the store may have taken its key. */
        store_keys_attach(st, NULL, why, sizeof(why));
        keyring_free(ring);
        return err;
    }
    keyring_current_kid(ring, kid);
    log_info("%s: endpoint secrets sealed with master key key_id=%s from=%s sealed_now=%lld", cmd,
             kid,
             path != NULL                    ? path
             : env != NULL && env[0] != '\0' ? "FLUXHOOK_MASTER_KEY"
                                             : "memory",
             (long long)sealed);
    *out = ring;
    return 0;
}

void
masterkey_default_path(const char *db, const char *name, char *out, size_t outlen)
{
    const char *file, *slash;

    out[0] = '\0';
    if (strncmp(db, "sqlite:", 7) == 0) {
        file = db + 7;
        if (strcmp(file, ":memory:") == 0)
            return;
        slash = strrchr(file, '/');
        if (slash == NULL)
            snprintf(out, outlen, "%s", name);
        else
            snprintf(out, outlen, "%.*s/%s", (int)(slash - file), file, name);
        return;
    }
    snprintf(out, outlen, "./var/%s", name);
}

/* One sealing pass with ring attached; adds to r->resealed. 0 or ERR_* (said on stderr). */
static int
rekey_pass(struct store *st, struct masterkey_rekey_report *r)
{
    char why[512];
    int64_t n = 0;
    int err;

    err = store_keys_reseal(st, &n, why, sizeof(why));
    if (err != 0)
        fprintf(stderr, "fluxhook db rekey: %s\n", why);
    r->resealed += n;
    return err;
}

int
masterkey_rekey(struct store *st, const char *file, const char *default_path, const char *new_file,
                int64_t settle_ms, struct masterkey_rekey_report *r)
{
    struct keyring *old = NULL, *fresh = NULL, *both = NULL;
    const char *env = getenv("FLUXHOOK_MASTER_KEY");
    const char *path = file;
    char why[512];
    int err;

    memset(r, 0, sizeof(*r));
    if (path == NULL && (env == NULL || env[0] == '\0'))
        path = default_path;
    if (path == NULL || path[0] == '\0') {
        if (env == NULL || env[0] == '\0') {
            fprintf(stderr, "fluxhook db rekey: no master key: give --master-key-file or set "
                            "FLUXHOOK_MASTER_KEY\n");
            return ERR_INVAL;
        }
        path = NULL;
        err = keyring_from_text(env, &old, why, sizeof(why));
    } else {
        err = keyring_from_file(path, &old, why, sizeof(why));
    }
    if (err != 0) {
        fprintf(stderr, "fluxhook db rekey: master key: %s\n", why);
        goto out;
    }
    err = store_keys_attach(st, old, why, sizeof(why));
    if (err != 0) {
        fprintf(stderr, "fluxhook db rekey: %s\n", why);
        goto out;
    }
    store_keys_attach(st, NULL, why, sizeof(why));
    keyring_current_kid(old, r->old_kid);
    err = keyring_file_create(new_file, why, sizeof(why));
    if (err == 0)
        r->new_file_made = 1;
    else if (err != ERR_CONFLICT) {
        fprintf(stderr, "fluxhook db rekey: --new-key-file: %s\n", why);
        goto out;
    }
    err = keyring_from_file(new_file, &fresh, why, sizeof(why));
    if (err == 0)
        err = keyring_merge(fresh, old, &both);
    if (err != 0) {
        fprintf(stderr, "fluxhook db rekey: --new-key-file: %s\n",
                err == ERR_NOMEM ? "out of memory" : why);
        goto out;
    }
    keyring_current_kid(fresh, r->new_kid);
    /* Servers reading the file now seal with the new key and open both. */
    if (path != NULL && (err = keyring_file_write(path, fresh, old)) != 0) {
        fprintf(stderr, "fluxhook db rekey: cannot write '%s'\n", path);
        goto out;
    }
    store_keys_attach(st, both, why, sizeof(why));
    err = rekey_pass(st, r);
    if (err != 0)
        goto out;
    /* A server may have sealed with the old key just before it saw the file change. */
    clock_sleep_ms(settle_ms);
    err = rekey_pass(st, r);
    if (err != 0 || path == NULL)
        goto out;
    err = keyring_file_write(path, fresh, NULL);
    if (err != 0) {
        fprintf(stderr, "fluxhook db rekey: cannot write '%s'\n", path);
        goto out;
    }
    r->file_rewritten = 1;
    err = rekey_pass(st, r);
out:
    store_keys_attach(st, NULL, why, sizeof(why));
    keyring_free(old);
    keyring_free(fresh);
    keyring_free(both);
    return err;
}
