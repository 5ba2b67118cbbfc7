/*
 * API keys: making them, hashing them, and authenticating a request by its
 * Authorization header. Only the hex SHA-256 of a key is stored; a key
 * itself is shown once, when it is made, and never logged.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api/api_int.h"
#include "util/err.h"

#define KEY_RANDOM_BYTES 32

int
api_key_new(char out[API_KEY_MAX])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[KEY_RANDOM_BYTES + 2];
    size_t i, n = 0;
    unsigned int v;

    memset(rnd, 0, sizeof(rnd));
    if (RAND_bytes(rnd, KEY_RANDOM_BYTES) != 1)
        return ERR_INTERNAL;
    memcpy(out, "fhk_", 4);
    n = 4;
    /* base64url without padding: 32 bytes give 43 characters. */
    for (i = 0; i < KEY_RANDOM_BYTES; i += 3) {
        v = (unsigned int)rnd[i] << 16 | (unsigned int)rnd[i + 1] << 8 | rnd[i + 2];
        out[n++] = b64url[(v >> 18) & 63];
        out[n++] = b64url[(v >> 12) & 63];
        if (i + 1 < KEY_RANDOM_BYTES)
            out[n++] = b64url[(v >> 6) & 63];
        if (i + 2 < KEY_RANDOM_BYTES)
            out[n++] = b64url[v & 63];
    }
    out[n] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 0;
}

void
api_key_hash(const char *key, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;

    if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1)
        mdlen = 0;
    for (i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * i] = '\0';
}

/* Acts for the account named by X-Workflux-Account when the key may. */
static int
act_for(struct api_req *r, const char *acct)
{
    struct account a;
    int err;

    memset(&a, 0, sizeof(a));
    if (!r->key.admin) {
        api_reply_error(r, ERR_FORBIDDEN, NULL,
                        "X-Workflux-Account: only an admin key may act for another account");
        return ERR_FORBIDDEN;
    }
    if (strlen(acct) >= ID_MAX) {
        api_reply_error(r, ERR_NOTFOUND, NULL, "X-Workflux-Account: no account with id '%.64s'",
                        acct);
        return ERR_NOTFOUND;
    }
    err = store_account_get(r->ctx->store, acct, &a);
    if (err == ERR_NOTFOUND) {
        api_reply_error(r, ERR_NOTFOUND, NULL, "X-Workflux-Account: no account with id '%s'", acct);
        return err;
    }
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot read the account: %s", err_str(err));
        return err;
    }
    account_cleanup(&a);
    snprintf(r->account_id, sizeof(r->account_id), "%s", acct);
    return 0;
}

int
api_auth(struct api_req *r)
{
    const char *h, *tok, *acct;
    char hash[65];
    int err;

    h = api_header(r, "Authorization");
    if (h == NULL || h[0] == '\0') {
        api_reply_error(r, ERR_AUTH, NULL,
                        "missing API key: send the header 'Authorization: Bearer <api key>'");
        return ERR_AUTH;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        api_reply_error(r, ERR_AUTH, NULL, "Authorization: expected 'Bearer <api key>'");
        return ERR_AUTH;
    }
    tok = h + 7;
    while (*tok == ' ')
        tok++;
    if (tok[0] == '\0') {
        api_reply_error(r, ERR_AUTH, NULL, "Authorization: the API key after 'Bearer' is empty");
        return ERR_AUTH;
    }
    api_key_hash(tok, hash);
    err = store_key_find(r->ctx->store, hash, &r->key);
    if (err == ERR_NOTFOUND) {
        api_reply_error(r, ERR_AUTH, NULL, "invalid API key: no such key, or it was deleted");
        return ERR_AUTH;
    }
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot check the API key: %s", err_str(err));
        return err;
    }
    snprintf(r->account_id, sizeof(r->account_id), "%s", r->key.account_id);
    acct = api_header(r, "X-Workflux-Account");
    if (acct == NULL || acct[0] == '\0' || strcmp(acct, r->key.account_id) == 0)
        return 0;
    return act_for(r, acct);
}
