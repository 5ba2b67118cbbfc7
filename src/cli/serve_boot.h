/*
 * The first start of `serve`: the store's directory (made 0700 when it is
 * the store's own), the checks made before anything is created, and the
 * default account with its admin key.
 */
#ifndef FLUXHOOK_CLI_SERVE_BOOT_H
#define FLUXHOOK_CLI_SERVE_BOOT_H

#include <stddef.h>

#include "api/api.h"
#include "store/store.h"

/*
 * What serve_boot_run() keeps from one try to the next while the store is being
 * opened again: the admin key it means to store, and whether an earlier try
 * began writing, whose outcome a lost connection left unknown.
 */
struct serve_boot {
    char key[API_KEY_MAX + 256];
    int generated; /* key was made here, not taken from $FLUXHOOK_ROOT_KEY */
    int tried;     /* an earlier try began creating the account */
};

/* mkdir -p of the directory that holds path; the ones it creates are 0700. Returns 0 or ERR_*. */
int serve_boot_mkdir_parents(const char *path);

/*
 * Makes the directory of the SQLite file path 0700 when it is the store's
 * own; one shared or holding other files keeps its mode, with a warning.
 */
void serve_boot_dir_private(const char *path);

/*
 * Whether serve can create the file path (its nearest existing directory
 * writable, the file writable when it exists). Returns 0, or ERR_IO with err
 * saying which directory and why.
 */
int serve_boot_path_check(const char *path, char *err, size_t errlen);

/* Checks $FLUXHOOK_ROOT_KEY when set (length, printable ASCII), saying why on stderr. */
int serve_boot_root_key_check(void);

/*
 * On an empty store: creates acct_default and its admin key, from
 * $FLUXHOOK_ROOT_KEY or newly made (written to root.key beside the SQLite
 * file and copied into shown, or printed at once when there is no file).
 * Safe to call again with the same b after ERR_UNAVAILABLE.
 */
int serve_boot_run(struct store *st, const char *db, struct serve_boot *b,
                   char shown[API_KEY_MAX + 256]);

#endif
