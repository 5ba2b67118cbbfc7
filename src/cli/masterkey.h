/*
 * The master key of `serve` and `db rekey`: where it comes from
 * (--master-key-file, FLUXHOOK_MASTER_KEY, or a file beside the store made on
 * first start) and attaching it to an open store.
 */
#ifndef FLUXHOOK_CLI_MASTERKEY_H
#define FLUXHOOK_CLI_MASTERKEY_H

#include "store/store.h"
#include "util/keyring.h"

/*
 * Finds the key ring: the file `file` when given (created with a new key
 * when it does not exist), else FLUXHOOK_MASTER_KEY, else default_path
 * (created the same way). Attaches it to st (store_keys_attach()), which
 * refuses a wrong key, then seals every secret not yet sealed under its
 * current key (store_keys_reseal()). A file this call created is removed
 * again when the store refuses its key, and kept when the store became
 * unreachable (ERR_UNAVAILABLE, not said: the caller may try again, and the
 * store may have taken the key). Says what failed on stderr, as
 * "fluxhook CMD: ...". Returns 0 and *out (free with keyring_free() after
 * store_close()), or an ERR_*.
 */
int masterkey_attach(const char *cmd, const char *file, const char *default_path, struct store *st,
                     struct keyring **out);

/*
 * Where serve keeps a generated key file named name ("root.key",
 * "master.key"): beside a sqlite: file, else ./var/NAME; "" for
 * sqlite::memory:.
 */
void masterkey_default_path(const char *db, const char *name, char *out, size_t outlen);

/* What masterkey_rekey() did. */
struct masterkey_rekey_report {
    char old_kid[KEYRING_KID_LEN];
    char new_kid[KEYRING_KID_LEN];
    int64_t resealed;   /* endpoint rows sealed again under the new key */
    int new_file_made;  /* new_file did not exist: it was made with a new key */
    int file_rewritten; /* the key file now holds the new key only */
};

/*
 * Seals every secret of st (open, no ring attached) under the first key of
 * new_file (made with a new key when it does not exist), without downtime
 * for servers that read their ring from `file`: (1) the current ring (file,
 * else FLUXHOOK_MASTER_KEY, else default_path) is checked against the
 * store; (2) file is rewritten to hold the new key first and the old keys
 * after it, so running servers (which read the file again when it changes)
 * seal with the new key and open both; (3) every secret is sealed again
 * under the new key; (4) after settle_ms, once more for secrets a server
 * sealed with the old key before it saw the file change; (5) file is
 * rewritten with the new key alone, and a last pass catches stragglers.
 * With FLUXHOOK_MASTER_KEY instead of a file, steps 2 and 5 are the
 * operator's (see docs/operations.md). Says what failed on stderr. Returns
 * 0 or an ERR_*.
 */
int masterkey_rekey(struct store *st, const char *file, const char *default_path,
                    const char *new_file, int64_t settle_ms, struct masterkey_rekey_report *r);

#endif
