/* The master key ring: AES-256-GCM sealing of secrets kept at rest (OpenSSL EVP). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util/err.h"
#include "util/keyring.h"
#include "util/log.h"
#include "util/secret.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define FILE_MAX 4096 /* a ring file is a few lines */
#define KID_LABEL "fluxhook master key id"

struct ring_key {
    unsigned char key[KEYRING_KEY_LEN];
    char kid[KEYRING_KID_LEN];
};

struct keyring {
    pthread_mutex_t lock; /* guards everything below */
    struct ring_key keys[KEYRING_MAX_KEYS];
    int n;
    char *path;       /* the file it came from, or NULL */
    struct stat seen; /* the file as last read */
};

static const struct ring_key *find(const struct keyring *kr, const char *kid);

static void
kid_make(struct ring_key *k)
{
    unsigned char mac[32];
    unsigned int len = sizeof(mac);
    int i;

    HMAC(EVP_sha256(), k->key, KEYRING_KEY_LEN, (const unsigned char *)KID_LABEL, strlen(KID_LABEL),
         mac, &len);
    for (i = 0; i < 4; i++)
        snprintf(k->kid + 2 * i, 3, "%02x", mac[i]);
}

/* Parses text into keys (at most KEYRING_MAX_KEYS); 0 or ERR_INVAL with why set. */
static int
parse(const char *text, struct ring_key *keys, int *n, char *why, size_t whylen)
{
    const char *p = text;
    int line = 1, count = 0, i, j;
    size_t len;

    while (*p != '\0') {
        if (*p == '#') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        if (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r' || *p == ',') {
            line += *p == '\n';
            p++;
            continue;
        }
        len = strspn(p, "0123456789abcdefABCDEF");
        if (len != 2 * KEYRING_KEY_LEN || (p[len] != '\0' && strchr(" \t\r\n,#", p[len]) == NULL)) {
            snprintf(why, whylen,
                     "line %d: expected a key of 64 hex digits (32 bytes, as `openssl rand -hex "
                     "32` makes)",
                     line);
            return ERR_INVAL;
        }
        if (count == KEYRING_MAX_KEYS) {
            snprintf(why, whylen, "more than %d keys", KEYRING_MAX_KEYS);
            return ERR_INVAL;
        }
        for (i = 0; i < KEYRING_KEY_LEN; i++)
            keys[count].key[i] = (unsigned char)(OPENSSL_hexchar2int((unsigned char)p[2 * i]) << 4 |
                                                 OPENSSL_hexchar2int((unsigned char)p[2 * i + 1]));
        kid_make(&keys[count]);
        for (j = 0; j < count; j++) {
            if (strcmp(keys[j].kid, keys[count].kid) == 0)
                break;
        }
        if (j == count)
            count++; /* a key listed twice counts once */
        p += len;
    }
    if (count == 0) {
        snprintf(why, whylen, "no key (expected 64 hex digits)");
        return ERR_INVAL;
    }
    *n = count;
    return 0;
}

static int
ring_new(const char *text, const char *path, struct keyring **out, char *why, size_t whylen)
{
    struct keyring *kr;
    int err;

    kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&kr->lock, NULL);
    err = parse(text, kr->keys, &kr->n, why, whylen);
    if (err == 0 && path != NULL && (kr->path = strdup(path)) == NULL)
        err = ERR_NOMEM;
    if (err != 0) {
        keyring_free(kr);
        return err;
    }
    *out = kr;
    return 0;
}

/* Reads path (at most FILE_MAX bytes) into buf with its stat; 0 or ERR_IO with why set. */
static int
file_read(const char *path, char *buf, size_t size, struct stat *stp, char *why, size_t whylen)
{
    ssize_t r;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, stp) != 0) {
        snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return ERR_IO;
    }
    while (len + 1 < size && (r = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd);
    return 0;
}

int
keyring_from_file(const char *path, struct keyring **out, char *why, size_t whylen)
{
    char buf[FILE_MAX];
    struct stat stbuf;
    char sub[200];
    int err;

    err = file_read(path, buf, sizeof(buf), &stbuf, why, whylen);
    if (err != 0)
        return err;
    err = ring_new(buf, path, out, sub, sizeof(sub));
    if (err != 0)
        snprintf(why, whylen, "'%s': %s", path, sub);
    else
        (*out)->seen = stbuf;
    OPENSSL_cleanse(buf, sizeof(buf));
    return err;
}

int
keyring_from_text(const char *text, struct keyring **out, char *why, size_t whylen)
{
    return ring_new(text, NULL, out, why, whylen);
}

/* Writes the hex of key and a newline to fd; 0 or -1. */
static int
key_write(int fd, const unsigned char *key)
{
    char hex[2 * KEYRING_KEY_LEN + 2];
    int i, rc;

    for (i = 0; i < KEYRING_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * KEYRING_KEY_LEN] = '\n';
    rc = write(fd, hex, 2 * KEYRING_KEY_LEN + 1) == 2 * KEYRING_KEY_LEN + 1 ? 0 : -1;
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

int
keyring_file_create(const char *path, char *why, size_t whylen)
{
    unsigned char key[KEYRING_KEY_LEN];
    int fd, err = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, whylen, "cannot create '%s': %s", path, strerror(errno));
        return errno == EEXIST ? ERR_CONFLICT : ERR_IO;
    }
    if (RAND_bytes(key, sizeof(key)) != 1 || fchmod(fd, 0600) != 0 || key_write(fd, key) != 0 ||
        fsync(fd) != 0) {
        snprintf(why, whylen, "cannot write '%s': %s", path, strerror(errno));
        err = ERR_IO;
    }
    close(fd);
    OPENSSL_cleanse(key, sizeof(key));
    if (err != 0)
        unlink(path);
    return err;
}

int
keyring_file_write(const char *path, const struct keyring *a, const struct keyring *b)
{
    char tmp[4096];
    int fd, i, j, err = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return ERR_INVAL;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("keyring: cannot write '%s'", tmp);
        return ERR_IO;
    }
    if (fchmod(fd, 0600) != 0)
        err = ERR_IO;
    for (i = 0; err == 0 && i < a->n; i++)
        err = key_write(fd, a->keys[i].key) != 0 ? ERR_IO : 0;
    for (i = 0; err == 0 && b != NULL && i < b->n; i++) {
        for (j = 0; j < a->n && strcmp(a->keys[j].kid, b->keys[i].kid) != 0; j++)
            ;
        if (j == a->n)
            err = key_write(fd, b->keys[i].key) != 0 ? ERR_IO : 0;
    }
    if (err == 0 && fsync(fd) != 0)
        err = ERR_IO;
    close(fd);
    if (err == 0 && rename(tmp, path) != 0)
        err = ERR_IO;
    if (err != 0) {
        log_warn("keyring: cannot write '%s'", path);
        unlink(tmp);
    }
    return err;
}

int
keyring_merge(struct keyring *a, struct keyring *b, struct keyring **out)
{
    struct keyring *kr;
    int i, err = 0;

    *out = NULL;
    kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&kr->lock, NULL);
    pthread_mutex_lock(&a->lock);
    memcpy(kr->keys, a->keys, sizeof(a->keys[0]) * (size_t)a->n);
    kr->n = a->n;
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_lock(&b->lock);
    for (i = 0; err == 0 && i < b->n; i++) {
        if (find(kr, b->keys[i].kid) != NULL)
            continue;
        if (kr->n == KEYRING_MAX_KEYS)
            err = ERR_INVAL;
        else
            kr->keys[kr->n++] = b->keys[i];
    }
    pthread_mutex_unlock(&b->lock);
    if (err != 0) {
        keyring_free(kr);
        return err;
    }
    *out = kr;
    return 0;
}

void
keyring_free(struct keyring *kr)
{
    if (kr == NULL)
        return;
    OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
    pthread_mutex_destroy(&kr->lock);
    free(kr->path);
    free(kr);
}

/*
 * Under kr->lock: reads the file again when it changed since last read. A
 * file that cannot be read or holds no valid ring leaves the ring as it was
 * (logged): a server keeps the keys it has.
 */
static void
refresh(struct keyring *kr)
{
    char buf[FILE_MAX], why[256];
    struct ring_key keys[KEYRING_MAX_KEYS];
    struct stat stbuf;
    int n;

    if (kr->path == NULL)
        return;
    if (stat(kr->path, &stbuf) != 0) {
        log_warn("keyring: cannot read '%s'; keeping the keys read before", kr->path);
        return;
    }
    if (stbuf.st_ino == kr->seen.st_ino && stbuf.st_size == kr->seen.st_size &&
        stbuf.st_mtim.tv_sec == kr->seen.st_mtim.tv_sec &&
        stbuf.st_mtim.tv_nsec == kr->seen.st_mtim.tv_nsec)
        return;
    if (file_read(kr->path, buf, sizeof(buf), &stbuf, why, sizeof(why)) != 0) {
        log_warnx("keyring: %s; keeping the keys read before", why);
        return;
    }
    if (parse(buf, keys, &n, why, sizeof(why)) != 0) {
        log_warnx("keyring: '%s': %s; keeping the keys read before", kr->path, why);
        kr->seen = stbuf; /* said once per change of the file */
    } else {
        memcpy(kr->keys, keys, sizeof(keys));
        kr->n = n;
        kr->seen = stbuf;
        log_info("keyring: read '%s' again keys=%d current=%s", kr->path, n, kr->keys[0].kid);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(keys, sizeof(keys));
}

void
keyring_current_kid(struct keyring *kr, char kid[KEYRING_KID_LEN])
{
    pthread_mutex_lock(&kr->lock);
    refresh(kr);
    memcpy(kid, kr->keys[0].kid, KEYRING_KID_LEN);
    pthread_mutex_unlock(&kr->lock);
}

/* Under kr->lock: the key with that id, or NULL. */
static const struct ring_key *
find(const struct keyring *kr, const char *kid)
{
    int i;

    for (i = 0; i < kr->n; i++) {
        if (strcmp(kr->keys[i].kid, kid) == 0)
            return &kr->keys[i];
    }
    return NULL;
}

int
keyring_has(struct keyring *kr, const char *kid)
{
    int has;

    pthread_mutex_lock(&kr->lock);
    has = find(kr, kid) != NULL;
    if (!has) {
        refresh(kr);
        has = find(kr, kid) != NULL;
    }
    pthread_mutex_unlock(&kr->lock);
    return has;
}

static EVP_CIPHER *aes_gcm;
static pthread_once_t aes_gcm_once = PTHREAD_ONCE_INIT;

/*
 * Fetches AES-256-GCM once: EVP_aes_256_gcm() would look the implementation
 * up again at every init, which costs more than sealing a secret.
 */
static void
aes_gcm_fetch(void)
{
    aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* AES-256-GCM of in (len bytes) into out (len bytes) and tag; 0 or ERR_INTERNAL / ERR_SIGNATURE. */
static int
gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *aad,
    const unsigned char *in, int len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx;
    int n, err = ERR_INTERNAL;

    pthread_once(&aes_gcm_once, aes_gcm_fetch);
    if (aes_gcm == NULL)
        return ERR_INTERNAL;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return ERR_NOMEM;
    if (EVP_CipherInit_ex(ctx, aes_gcm, NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &n) != 1) {
        err = enc ? ERR_INTERNAL : ERR_SIGNATURE;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;
    err = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

int
keyring_seal(struct keyring *kr, const char *context, const char *plain, char **out)
{
    size_t len = strlen(plain), rawlen = NONCE_LEN + len + TAG_LEN;
    unsigned char *raw = NULL;
    unsigned char key[KEYRING_KEY_LEN];
    char kid[KEYRING_KID_LEN];
    char *s = NULL;
    size_t pre = strlen(KEYRING_PREFIX) + KEYRING_KID_LEN;
    int err;

    *out = NULL;
    if (len > 4096)
        return ERR_INVAL;
    pthread_mutex_lock(&kr->lock);
    refresh(kr);
    memcpy(key, kr->keys[0].key, sizeof(key));
    memcpy(kid, kr->keys[0].kid, sizeof(kid));
    pthread_mutex_unlock(&kr->lock);
    raw = malloc(rawlen);
    s = malloc(pre + 4 * ((rawlen + 2) / 3) + 1);
    if (raw == NULL || s == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    if (RAND_bytes(raw, NONCE_LEN) != 1) {
        err = ERR_INTERNAL;
        goto out;
    }
    err = gcm(1, key, raw, context, (const unsigned char *)plain, (int)len, raw + NONCE_LEN,
              raw + NONCE_LEN + len);
    if (err != 0)
        goto out;
    snprintf(s, pre + 1, "%s%s.", KEYRING_PREFIX, kid);
    EVP_EncodeBlock((unsigned char *)s + pre, raw, (int)rawlen);
    *out = s;
    s = NULL;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    free(s);
    return err;
}

int
keyring_is_sealed(const char *s)
{
    return s != NULL && strncmp(s, KEYRING_PREFIX, strlen(KEYRING_PREFIX)) == 0;
}

int
keyring_kid_of(const char *sealed, char kid[KEYRING_KID_LEN])
{
    const char *p;

    if (!keyring_is_sealed(sealed))
        return ERR_INVAL;
    p = sealed + strlen(KEYRING_PREFIX);
    if (strspn(p, "0123456789abcdef") != KEYRING_KID_LEN - 1 || p[KEYRING_KID_LEN - 1] != '.')
        return ERR_INVAL;
    memcpy(kid, p, KEYRING_KID_LEN - 1);
    kid[KEYRING_KID_LEN - 1] = '\0';
    return 0;
}

int
keyring_open(struct keyring *kr, const char *context, const char *sealed, char **out)
{
    char kid[KEYRING_KID_LEN];
    unsigned char key[KEYRING_KEY_LEN];
    const struct ring_key *k;
    const char *b64;
    unsigned char *raw = NULL;
    char *plain = NULL;
    size_t b64len, pad;
    int rawlen, err;

    *out = NULL;
    if (keyring_kid_of(sealed, kid) != 0)
        return ERR_INVAL;
    b64 = sealed + strlen(KEYRING_PREFIX) + KEYRING_KID_LEN;
    b64len = strlen(b64);
    if (b64len % 4 != 0 || b64len > 8192)
        return ERR_INVAL;
    pad =
        b64len >= 1 && b64[b64len - 1] == '=' ? (b64len >= 2 && b64[b64len - 2] == '=' ? 2 : 1) : 0;
    pthread_mutex_lock(&kr->lock);
    k = find(kr, kid);
    if (k == NULL) {
        refresh(kr);
        k = find(kr, kid);
    }
    if (k != NULL)
        memcpy(key, k->key, sizeof(key));
    pthread_mutex_unlock(&kr->lock);
    if (k == NULL)
        return ERR_NOTFOUND;
    raw = malloc(b64len / 4 * 3 + 1);
    if (raw == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    rawlen = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)b64len);
    if (rawlen < 0 || (size_t)rawlen < pad + NONCE_LEN + TAG_LEN) {
        err = ERR_INVAL;
        goto out;
    }
    rawlen -= (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    rawlen -= NONCE_LEN + TAG_LEN;
    plain = malloc((size_t)rawlen + 1);
    if (plain == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    err = gcm(0, key, raw, context, raw + NONCE_LEN, rawlen, (unsigned char *)plain,
              raw + NONCE_LEN + rawlen);
    if (err != 0)
        goto out;
    plain[rawlen] = '\0';
    *out = plain;
    plain = NULL;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    if (plain != NULL) {
        OPENSSL_cleanse(plain, (size_t)rawlen + 1);
        free(plain);
    }
    return err;
}
