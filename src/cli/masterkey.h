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
 * again when the store refuses its key. Says what failed on stderr, as
 * "fluxhook CMD: ...". Returns 0 and *out (free with keyring_free() after
 * store_close()), or an ERR_*.
 */
int masterkey_attach(const char *cmd, const char *file, const char *default_path,
                     struct store *st, struct keyring **out);

#endif
