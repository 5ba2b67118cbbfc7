/*
 * Credentials: making secrets, hashing them, and authenticating a request by
 * its Authorization header: an API key ("fhk_"), an OAuth access token
 * ("fha_") or a portal session ("fhs_"). Only the hex SHA-256 of a secret is
 * stored; a secret itself is shown once, when it is made, and never logged.
 * Tokens are looked up on every request, so a revocation holds at once (the
 * SQLite store answers from memory until any process commits a credential
 * change: docs/internals/store.md, "Credential cache").
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api/api_int.h"
#include "util/clock.h"
#include "util/err.h"

#define KEY_RANDOM_BYTES 32
#define KEY_TOUCH_MS 60000 /* last_used_at is kept to this precision */

int
api_key_new(char out[API_KEY_MAX])
{
    return api_secret_new("fhk_", out);
}

int
api_secret_new(const char *prefix, char out[API_KEY_MAX])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[KEY_RANDOM_BYTES + 2];
    size_t i, n = 0;
    unsigned int v;

    memset(rnd, 0, sizeof(rnd));
    if (RAND_bytes(rnd, KEY_RANDOM_BYTES) != 1)
        return ERR_INTERNAL;
    n = strlen(prefix);
    if (n > 8)
        return ERR_INTERNAL;
    memcpy(out, prefix, n);
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

/*
 * SHA-256, fetched from the provider once: EVP_sha256() would fetch it again
 * on every digest (a lookup under OpenSSL's locks), once per request.
 */
static _Atomic(EVP_MD *) sha256_md;

static const EVP_MD *
sha256(void)
{
    EVP_MD *md = atomic_load(&sha256_md), *expected = NULL;

    if (md != NULL)
        return md;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md == NULL)
        return EVP_sha256();
    /* Another thread may have won the race: keep one, free ours. */
    if (!atomic_compare_exchange_strong(&sha256_md, &expected, md)) {
        EVP_MD_free(md);
        md = expected;
    }
    return md;
}

void
api_key_hash(const char *key, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;

    if (EVP_Digest(key, strlen(key), md, &mdlen, sha256(), NULL) != 1)
        mdlen = 0;
    for (i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * i] = '\0';
}

/*
 * 1 when a credential read on a loop found every read connection busy
 * (store_thread_nowait()): the request then moves to a worker, which waits.
 */
static int
loop_busy(struct api_req *r, int err)
{
    return err == ERR_TIMEOUT && r->on_loop;
}

/* Acts for the account named by X-Workflux-Account when the key may. */
static int
act_for(struct api_req *r, const char *acct)
{
    struct account a;
    int err;

    memset(&a, 0, sizeof(a));
    if (!(r->scopes & SCOPE_ADMIN)) {
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
    if (loop_busy(r, err))
        return api_defer(r);
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

/* Answers 401 with WWW-Authenticate (RFC 6750 §3) and message. Returns ERR_AUTH. */
__attribute__((format(printf, 3, 4))) static int
auth_fail(struct api_req *r, int invalid_token, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_header_add(r, "WWW-Authenticate", "Bearer realm=\"fluxhook\"%s",
                   invalid_token ? ", error=\"invalid_token\"" : "");
    api_reply_error(r, ERR_AUTH, NULL, "%s", msg);
    return ERR_AUTH;
}

/*
 * Fills r->key from an access token or portal session (tok, "fha_..." or
 * "fhs_..."). Returns ERR_NOTFOUND without answering when no token has that
 * hash; else answers any failure itself.
 */
static int
auth_token(struct api_req *r, const char *tok, const char *hash, int64_t now)
{
    struct token t;
    int err, portal = strncmp(tok, "fhs_", 4) == 0;
    const char *what = portal ? "portal session" : "access token";

    err = store_token_find(r->ctx->store, hash, &t);
    if (loop_busy(r, err))
        return api_defer(r);
    if (err == ERR_NOTFOUND)
        return err; /* perhaps a key that looks like one (FLUXHOOK_ROOT_KEY is free-form) */
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot check the %s: %s", what, err_str(err));
        return err;
    }
    if (t.kind != (portal ? TOKEN_PORTAL_SESSION : TOKEN_ACCESS))
        return auth_fail(r, 1, "invalid %s: no such token", what);
    if (t.revoked_at != 0)
        return auth_fail(r, 1, "invalid %s: it was revoked", what);
    if (t.expires_at <= now)
        return auth_fail(r, 1, "invalid %s: it expired%s", what,
                         portal ? "; open a new portal link"
                                : "; get a new one at POST /oauth/token");
    memset(&r->key, 0, sizeof(r->key));
    snprintf(r->key.id, sizeof(r->key.id), "%s", t.id);
    snprintf(r->key.account_id, sizeof(r->key.account_id), "%s", t.account_id);
    snprintf(r->key.scopes, sizeof(r->key.scopes), "%s", t.scopes);
    r->key.kind = portal ? CRED_PORTAL : CRED_TOKEN;
    r->key.expires_at = t.expires_at;
    r->key.created_at = t.created_at;
    r->scopes = api_key_scopes(&r->key);
    r->key.admin = (r->scopes & SCOPE_ADMIN) != 0;
    return 0;
}

/* Fills r->key from an API key (tok). */
static int
auth_key(struct api_req *r, const char *hash, int64_t now)
{
    int err;

    err = store_key_find(r->ctx->store, hash, &r->key);
    if (loop_busy(r, err))
        return api_defer(r);
    if (err == ERR_NOTFOUND)
        return auth_fail(r, 1, "invalid API key: no such key, or it was deleted");
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot check the API key: %s", err_str(err));
        return err;
    }
    if (r->key.kind == CRED_CLIENT)
        return auth_fail(r, 1,
                         "an OAuth client secret is not an API key: exchange it for an "
                         "access token at POST /oauth/token");
    if (strcmp(r->key.hash, hash) != 0 && r->key.prev_until <= now)
        return auth_fail(r, 1,
                         "invalid API key: key '%s' was rotated and the old secret's "
                         "grace period is over",
                         r->key.id);
    if (r->key.expires_at != 0 && r->key.expires_at <= now)
        return auth_fail(r, 1, "invalid API key: key '%s' expired", r->key.id);
    r->scopes = api_key_scopes(&r->key);
    if (r->key.last_used_at < now - KEY_TOUCH_MS) {
        /* A write waits for the store's commit: never on a loop. */
        if (r->on_loop)
            return api_defer(r);
        store_key_touch(r->ctx->store, r->key.id, now); /* a failure only leaves it older */
    }
    return 0;
}

int
api_auth(struct api_req *r)
{
    const char *h, *tok, *acct;
    char hash[65];
    int64_t now = clock_now_ms();
    int err;

    h = api_header(r, "Authorization");
    if (h == NULL || h[0] == '\0')
        return auth_fail(r, 0,
                         "missing API key: send the header 'Authorization: Bearer <api key>'");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return auth_fail(r, 0, "Authorization: expected 'Bearer <api key>'");
    tok = h + 7;
    while (*tok == ' ')
        tok++;
    if (tok[0] == '\0')
        return auth_fail(r, 0, "Authorization: the API key after 'Bearer' is empty");
    api_key_hash(tok, hash);
    err = ERR_NOTFOUND;
    if (strncmp(tok, "fha_", 4) == 0 || strncmp(tok, "fhs_", 4) == 0)
        err = auth_token(r, tok, hash, now);
    if (err == ERR_NOTFOUND)
        err = auth_key(r, hash, now);
    if (err != 0)
        return err;
    /* Both are ID_MAX arrays holding a string: a copy, no printf on every request. */
    _Static_assert(sizeof(r->account_id) == sizeof(r->key.account_id), "account id sizes");
    memcpy(r->account_id, r->key.account_id, sizeof(r->account_id));
    acct = api_header(r, "X-Workflux-Account");
    if (acct == NULL || acct[0] == '\0' || strcmp(acct, r->key.account_id) == 0)
        return 0;
    return act_for(r, acct);
}

void
api_base_url(struct api_req *r, char *out, size_t outlen)
{
    const char *host = api_header(r, "Host");
    size_t n;

    if (r->ctx->cfg->public_url != NULL && r->ctx->cfg->public_url[0] != '\0')
        snprintf(out, outlen, "%s", r->ctx->cfg->public_url);
    else
        snprintf(out, outlen, "http://%s", host != NULL && host[0] != '\0' ? host : "localhost");
    n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}
