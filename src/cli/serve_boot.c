/*
 * The first start of `serve` (serve_boot.h): the store's directory, the
 * checks made before anything is created, and the default account with its
 * admin key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/masterkey.h"
#include "cli/serve_boot.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"
#include "util/log.h"

#define ROOT_ACCOUNT "acct_default"
#define ROOT_KEY_MIN 16

/*
 * mkdir of one directory, 0700 whatever the umask. A directory that exists
 * is left to serve_boot_dir_private().
 */
static int
mkdir_private(const char *dir)
{
    if (mkdir(dir, 0700) != 0)
        return errno == EEXIST ? 0 : ERR_IO;
    return chmod(dir, 0700) != 0 ? ERR_IO : 0;
}

/* mkdir -p of the directory that holds path; the ones it creates are 0700. */
int
serve_boot_mkdir_parents(const char *path)
{
    char dir[PATH_MAX];
    char *slash, *p;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return ERR_INVAL;
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir_private(dir) != 0)
            return ERR_IO;
        *p = '/';
    }
    return mkdir_private(dir);
}

/* 1 if dir holds nothing but the SQLite store at db (its name alone), root.key and master.key. */
static int
dir_holds_store_only(const char *dir, const char *db)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-cred"};
    struct dirent *de;
    size_t i, len = strlen(db);
    DIR *d = opendir(dir);
    int only = d != NULL;

    while (only && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, "root.key") == 0 || strcmp(de->d_name, "master.key") == 0)
            continue;
        only = 0;
        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
            if (strncmp(de->d_name, db, len) == 0 && strcmp(de->d_name + len, suffixes[i]) == 0)
                only = 1;
    }
    if (d != NULL)
        closedir(d);
    return only;
}

/*
 * Makes the directory of the SQLite file path 0700 when it is the store's own:
 * owned by this user, not sticky, and holding nothing but the store's files,
 * root.key and master.key. One shared or holding other files keeps its mode, with a warning,
 * since narrowing it would lock others out of what is theirs.
 */
void
serve_boot_dir_private(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    struct stat st;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path) >=
             (int)sizeof(dir))
        return;
    if (stat(dir, &st) != 0 || (st.st_mode & 077) == 0)
        return;
    if (st.st_uid != geteuid() || (st.st_mode & S_ISVTX) != 0 || !dir_holds_store_only(dir, name)) {
        log_warnx("serve: directory '%s' of the store is mode %04o and %s: it keeps its mode; "
                  "give the store a directory of its own to have it 0700",
                  dir, (unsigned)(st.st_mode & 07777),
                  st.st_uid != geteuid() || (st.st_mode & S_ISVTX) != 0
                      ? "shared with other users"
                      : "holds other files than the store's");
        return;
    }
    if (chmod(dir, 0700) != 0) {
        log_warn("serve: cannot narrow the mode of directory '%s'", dir);
        return;
    }
    log_info("serve: mode of directory '%s' narrowed from %04o to 0700", dir,
             (unsigned)(st.st_mode & 07777));
}

static int
root_key_write(const char *path, const char *key)
{
    size_t len = strlen(key);
    int fd, ret = 0;

    if (serve_boot_mkdir_parents(path) != 0) {
        log_warn("serve: cannot create the directory of '%s'", path);
        return ERR_IO;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("serve: cannot write '%s'", path);
        return ERR_IO;
    }
    if (fchmod(fd, 0600) != 0 || write(fd, key, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0) {
        log_warn("serve: cannot write '%s'", path);
        ret = ERR_IO;
    }
    close(fd);
    return ret;
}

/* Where an earlier try of serve_boot_run() left the admin key, when its outcome was unknown. */
enum boot_left { BOOT_KEY_MISSING, BOOT_KEY_STORED, BOOT_KEY_OTHERS };

/*
 * On a store that already has accounts, after an earlier try of ours began
 * creating acct_default: whether the key of hash was stored (its id into
 * id), is still missing (the account came but the key did not), or another
 * process made the account with keys of its own. Returns 0 or ERR_*.
 */
static int
boot_key_left(struct store *st, const char *hash, char id[ID_MAX], enum boot_left *left)
{
    struct api_key found, *ks = NULL;
    size_t n = 0;
    int err;

    memset(&found, 0, sizeof(found));
    err = store_key_find(st, hash, &found);
    if (err == 0) {
        snprintf(id, ID_MAX, "%s", found.id);
        *left = BOOT_KEY_STORED;
    }
    api_key_cleanup(&found);
    if (err != ERR_NOTFOUND)
        return err;
    err = store_key_list(st, ROOT_ACCOUNT, &ks, &n);
    api_key_list_free(ks, n);
    *left = n == 0 ? BOOT_KEY_MISSING : BOOT_KEY_OTHERS;
    return err;
}

/*
 * On an empty store: creates acct_default and its admin key, from
 * $FLUXHOOK_ROOT_KEY or newly made (then written to a file and copied into
 * shown for the start-up block, or printed at once when there is no file).
 * Safe to call again with the same b after ERR_UNAVAILABLE: it finishes
 * what the earlier try left, with the same key.
 */
int
serve_boot_run(struct store *st, const char *db, struct serve_boot *b,
               char shown[API_KEY_MAX + 256])
{
    struct account a;
    struct api_key k;
    char path[PATH_MAX];
    const char *env;
    enum boot_left left = BOOT_KEY_MISSING;
    int empty, err;

    memset(&a, 0, sizeof(a));
    memset(&k, 0, sizeof(k));
    masterkey_default_path(db, "root.key", path, sizeof(path));
    empty = store_is_empty(st);
    if (empty < 0) {
        log_error("serve: cannot read the store: %s", err_str(empty));
        err = empty;
        goto out;
    }
    if (!empty && !b->tried) {
        if (path[0] != '\0' && access(path, F_OK) == 0)
            log_info("serve: the admin key of %s is in %s", ROOT_ACCOUNT, path);
        err = 0;
        goto out;
    }
    if (b->key[0] == '\0') {
        env = getenv("FLUXHOOK_ROOT_KEY");
        if (env != NULL && env[0] != '\0') {
            snprintf(b->key, sizeof(b->key), "%s", env);
        } else {
            err = api_key_new(b->key);
            if (err != 0)
                goto out;
            b->generated = 1;
        }
    }
    api_key_hash(b->key, k.hash);
    b->tried = 1;
    if (empty) {
        snprintf(a.id, sizeof(a.id), "%s", ROOT_ACCOUNT);
        a.name = "default";
        a.created_at = clock_now_ms();
        err = store_account_insert(st, &a);
    } else {
        err = boot_key_left(st, k.hash, k.id, &left);
    }
    if (err == ERR_CONFLICT || (err == 0 && left == BOOT_KEY_OTHERS)) {
        /* Another process sharing the store did it first. */
        err = 0;
        goto out;
    }
    if (err != 0) {
        log_error("serve: cannot create account %s: %s", ROOT_ACCOUNT, err_str(err));
        goto out;
    }
    if (left == BOOT_KEY_MISSING) {
        err = id_new("key_", k.id);
        if (err != 0)
            goto out;
        snprintf(k.account_id, sizeof(k.account_id), "%s", ROOT_ACCOUNT);
        k.name = "root";
        k.admin = 1;
        k.created_at = clock_now_ms();
        err = store_key_insert(st, &k);
        if (err != 0) {
            log_error("serve: cannot store the admin key: %s", err_str(err));
            goto out;
        }
    }
    if (!b->generated) {
        log_info("serve: first start: created account %s with the admin key from "
                 "FLUXHOOK_ROOT_KEY key=%s",
                 ROOT_ACCOUNT, k.id);
        goto out;
    }
    if (path[0] != '\0' && root_key_write(path, b->key) != 0)
        path[0] = '\0';
    if (path[0] != '\0') {
        /* The start-up block shows it once the server listens (first_steps_print). */
        snprintf(shown, API_KEY_MAX + 256, "%s", b->key);
    } else {
        printf("fluxhook: first start: created account %s and its admin key (shown once):\n%s\n",
               ROOT_ACCOUNT, b->key);
        fflush(stdout);
    }
    if (path[0] != '\0')
        log_info("serve: first start: created account %s; its admin key is in %s key=%s",
                 ROOT_ACCOUNT, path, k.id);
    else
        log_info("serve: first start: created account %s; its admin key was printed on stdout "
                 "key=%s",
                 ROOT_ACCOUNT, k.id);
out:
    return err;
}

int
serve_boot_root_key_check(void)
{
    const char *env = getenv("FLUXHOOK_ROOT_KEY");
    const char *p;

    if (env == NULL || env[0] == '\0')
        return 0;
    if (strlen(env) < ROOT_KEY_MIN || strlen(env) > API_KEY_MAX + 200) {
        fprintf(stderr, "fluxhook serve: FLUXHOOK_ROOT_KEY: expected %d to %d characters\n",
                ROOT_KEY_MIN, API_KEY_MAX + 200);
        return ERR_INVAL;
    }
    for (p = env; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            fprintf(stderr, "fluxhook serve: FLUXHOOK_ROOT_KEY: expected printable ASCII "
                            "without spaces\n");
            return ERR_INVAL;
        }
    }
    return 0;
}

/*
 * Whether serve can create the file path: the nearest directory above it
 * that exists must be one this process may write in (serve_boot_mkdir_parents makes
 * the rest), and the file, when it exists, writable. Returns 0, or ERR_IO with
 * err saying which directory and why.
 */
int
serve_boot_path_check(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat sb;
    char *slash;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        snprintf(err, errlen, "'%s': the path is too long", path);
        return ERR_IO;
    }
    if (access(path, F_OK) == 0) {
        if (access(path, R_OK | W_OK) != 0) {
            snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
            return ERR_IO;
        }
        return 0;
    }
    for (;;) {
        slash = strrchr(dir, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof(dir), ".");
        } else if (slash == dir) {
            dir[1] = '\0';
        } else {
            *slash = '\0';
        }
        if (stat(dir, &sb) == 0)
            break;
        /* ENOTDIR: a file on the way up, which the next step names. */
        if ((errno != ENOENT && errno != ENOTDIR) || strcmp(dir, ".") == 0 ||
            strcmp(dir, "/") == 0) {
            snprintf(err, errlen, "cannot use the directory '%s': %s", dir, strerror(errno));
            return ERR_IO;
        }
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "'%s' is not a directory", dir);
        return ERR_IO;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot create files in the directory '%s': %s", dir,
                 strerror(errno));
        return ERR_IO;
    }
    return 0;
}
