/*
 * OAuth 2.0: the token endpoint (RFC 6749: client_credentials and
 * refresh_token grants), revocation (RFC 7009), introspection (RFC 7662) and
 * the server's metadata (RFC 8414). Clients are api_keys rows of kind
 * 'client' (h_clients.c). Every token is stored as its SHA-256 and looked up
 * on each request, so revoking one holds at once. A refresh token is spent on
 * use and replaced; presenting a spent one revokes its whole family (the
 * OAuth 2.0 Security BCP's reuse detection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* The client a request authenticated as, and how. */
struct client_auth {
    struct api_key client;
    int basic; /* 1: by HTTP Basic (a failure then answers WWW-Authenticate: Basic) */
};

/*
 * Answers an RFC 6749 §5.2 error: {"error": code, "error_description"} with
 * status, Cache-Control: no-store and Pragma: no-cache; invalid_client adds
 * WWW-Authenticate: Basic (RFC 6749 §5.2, RFC 7617). Returns 0.
 */
__attribute__((format(printf, 4, 5))) static int
oauth_error(struct api_req *r, int status, const char *code, const char *fmt, ...)
{
    char desc[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    if (status == 401)
        api_header_add(r, "WWW-Authenticate", "Basic realm=\"fluxhook\", charset=\"UTF-8\"");
    api_header_add(r, "Pragma", "no-cache");
    return api_reply_json(r, status,
                          json_pack("{s:s, s:s}", "error", code, "error_description", desc));
}

/* Reads the form of an /oauth POST, answering invalid_request when it is not one. */
static int
oauth_form(struct api_req *r, struct api_form *f)
{
    const char *ct = api_header(r, "Content-Type");
    int err;

    memset(f, 0, sizeof(*f)); /* api_form_free() is then safe whatever happens */
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
        (ct[33] != '\0' && ct[33] != ';' && ct[33] != ' ')) {
        oauth_error(r, 400, "invalid_request",
                    "expected a body of Content-Type application/x-www-form-urlencoded");
        return ERR_MEDIA;
    }
    err = api_form_parse(r->body.data, r->body.len, f);
    if (err == ERR_NOMEM)
        return api_reply_error(r, err, NULL, "out of memory"), err;
    if (err != 0) {
        oauth_error(r, 400, "invalid_request",
                    err == ERR_TOOBIG ? "too many parameters (at most 16)"
                                      : "malformed form body: bad %%-escape");
        return err;
    }
    if (f->dup != NULL) {
        oauth_error(r, 400, "invalid_request", "parameter '%.64s' is given more than once", f->dup);
        return ERR_PARSE;
    }
    return 0;
}

/*
 * Authenticates the client of an /oauth request by HTTP Basic or by
 * client_id and client_secret in the form (one way only). On failure answers
 * invalid_client (or invalid_request) and returns the ERR_*.
 */
static int
client_authenticate(struct api_req *r, const struct api_form *f, struct client_auth *ca)
{
    const char *h = api_header(r, "Authorization");
    const char *fid = api_form_get(f, "client_id"), *fsecret = api_form_get(f, "client_secret");
    char id[API_FORM_ID_MAX], secret[API_FORM_ID_MAX], hash[65];
    int err;

    memset(ca, 0, sizeof(*ca));
    memset(secret, 0, sizeof(secret));
    if (h != NULL && strncasecmp(h, "Basic ", 6) == 0) {
        ca->basic = 1;
        if (fsecret != NULL) {
            oauth_error(r, 400, "invalid_request",
                        "the client authenticated twice: by HTTP Basic and by client_secret in "
                        "the body; use one");
            return ERR_INVAL;
        }
        if (api_basic_decode(h, id, secret) != 0) {
            oauth_error(r, 401, "invalid_client",
                        "Authorization: expected 'Basic base64(client_id:client_secret)'");
            return ERR_AUTH;
        }
    } else if (h != NULL && h[0] != '\0') {
        oauth_error(r, 401, "invalid_client",
                    "Authorization: expected 'Basic base64(client_id:client_secret)'");
        return ERR_AUTH;
    } else if (fid == NULL || fsecret == NULL) {
        oauth_error(r, 401, "invalid_client",
                    "no client authentication: send HTTP Basic client_id:client_secret, or "
                    "client_id and client_secret in the body");
        return ERR_AUTH;
    } else {
        snprintf(id, sizeof(id), "%s", fid);
        snprintf(secret, sizeof(secret), "%s", fsecret);
    }
    if (ca->basic && fid != NULL && strcmp(fid, id) != 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        oauth_error(r, 400, "invalid_request",
                    "client_id in the body is not the one of HTTP Basic");
        return ERR_INVAL;
    }
    api_key_hash(secret, hash);
    OPENSSL_cleanse(secret, sizeof(secret));
    err = store_key_find(r->ctx->store, hash, &ca->client);
    if (err != 0 && err != ERR_NOTFOUND) {
        api_reply_error(r, err, NULL, "cannot check the client: %s", err_str(err));
        return err;
    }
    if (err == ERR_NOTFOUND || ca->client.kind != CRED_CLIENT || strcmp(ca->client.id, id) != 0 ||
        strcmp(ca->client.hash, hash) != 0) {
        api_key_cleanup(&ca->client);
        oauth_error(r, 401, "invalid_client", "unknown client, or wrong client secret");
        return ERR_AUTH;
    }
    return 0;
}

/* Hashes and stores one new token of kind for the grant; writes its secret to out. */
static int
token_issue(struct api_req *r, enum token_kind kind, const char *account_id, const char *client_id,
            const char *family, unsigned scopes, int64_t expires_at, char out[API_KEY_MAX],
            struct token *t)
{
    static const char *const prefixes[] = {"fha_", "fhr_", "fhl_", "fhs_"};
    int err;

    memset(t, 0, sizeof(*t));
    err = id_new("tok_", t->id);
    if (err == 0)
        err = api_secret_new(prefixes[kind], out);
    if (err != 0)
        return err;
    t->kind = kind;
    api_key_hash(out, t->hash);
    snprintf(t->account_id, sizeof(t->account_id), "%s", account_id);
    snprintf(t->client_id, sizeof(t->client_id), "%s", client_id);
    snprintf(t->family, sizeof(t->family), "%s", family != NULL ? family : t->id);
    api_scopes_format(scopes, t->scopes, sizeof(t->scopes));
    t->created_at = clock_now_ms();
    t->expires_at = expires_at;
    return store_token_insert(r->ctx->store, t);
}

int
api_token_issue(struct api_req *r, enum token_kind kind, const char *account_id, const char *family,
                unsigned scopes, int64_t expires_at, char out[API_KEY_MAX], struct token *t)
{
    return token_issue(r, kind, account_id, "", family, scopes, expires_at, out, t);
}

/* Issues an access token and a refresh token of family and answers them (RFC 6749 §5.1). */
static int
grant_answer(struct api_req *r, const struct api_key *client, const char *family, unsigned scopes)
{
    char access[API_KEY_MAX], refresh[API_KEY_MAX];
    struct token at, rt;
    int64_t now = clock_now_ms();
    int err;

    err = token_issue(r, TOKEN_ACCESS, client->account_id, client->id, family, scopes,
                      now + r->ctx->cfg->token_ttl_ms, access, &at);
    if (err == 0)
        err = token_issue(r, TOKEN_REFRESH, client->account_id, client->id,
                          family != NULL ? family : at.family, scopes,
                          now + r->ctx->cfg->refresh_ttl_ms, refresh, &rt);
    if (err != 0) {
        OPENSSL_cleanse(access, sizeof(access));
        return api_reply_error(r, err, NULL, "cannot issue a token: %s", err_str(err));
    }
    log_info("api: token issued token=%s client=%s account=%s family=%s", at.id, client->id,
             client->account_id, at.family);
    api_header_add(r, "Pragma", "no-cache");
    api_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:I, s:s, s:s}", "access_token", access, "token_type",
                             "Bearer", "expires_in", (json_int_t)(r->ctx->cfg->token_ttl_ms / 1000),
                             "refresh_token", refresh, "scope", at.scopes));
    OPENSSL_cleanse(access, sizeof(access));
    OPENSSL_cleanse(refresh, sizeof(refresh));
    return 0;
}

/* Reads the optional scope parameter, which must lie within allowed; else answers invalid_scope. */
static int
scope_param(struct api_req *r, const struct api_form *f, unsigned allowed, unsigned *out)
{
    const char *s = api_form_get(f, "scope");
    char bad[72];
    unsigned bits;

    *out = allowed;
    if (s == NULL)
        return 0;
    if (api_scopes_parse(s, &bits, bad, sizeof(bad)) != 0) {
        oauth_error(r, 400, "invalid_scope", "unknown scope '%s'", bad);
        return ERR_INVAL;
    }
    if (bits == 0) {
        oauth_error(r, 400, "invalid_scope", "scope is empty");
        return ERR_INVAL;
    }
    if ((bits & allowed) != bits) {
        api_scopes_format(bits & ~allowed, bad, sizeof(bad));
        oauth_error(r, 400, "invalid_scope", "scope beyond what was granted: %s", bad);
        return ERR_INVAL;
    }
    *out = bits;
    return 0;
}

/* The refresh_token grant: spends the refresh token, replaces it, answers new tokens. */
static int
grant_refresh(struct api_req *r, const struct api_form *f, const struct api_key *client)
{
    const char *rt_text = api_form_get(f, "refresh_token");
    struct token t;
    unsigned have = 0, want;
    char hash[65], bad[8];
    int err;

    if (rt_text == NULL || rt_text[0] == '\0')
        return oauth_error(r, 400, "invalid_request", "refresh_token is required");
    api_key_hash(rt_text, hash);
    err = store_token_find(r->ctx->store, hash, &t);
    if (err != 0 && err != ERR_NOTFOUND)
        return api_reply_error(r, err, NULL, "cannot check the token: %s", err_str(err));
    if (err == ERR_NOTFOUND || t.kind != TOKEN_REFRESH || strcmp(t.client_id, client->id) != 0)
        return oauth_error(r, 400, "invalid_grant", "unknown refresh token");
    if (t.revoked_at != 0)
        return oauth_error(r, 400, "invalid_grant", "the refresh token was revoked");
    if (t.expires_at <= clock_now_ms())
        return oauth_error(r, 400, "invalid_grant", "the refresh token expired");
    api_scopes_parse(t.scopes, &have, bad, sizeof(bad));
    if (scope_param(r, f, have, &want) != 0)
        return 0;
    err = t.used_at != 0 ? ERR_CONFLICT : store_token_use(r->ctx->store, t.id, clock_now_ms());
    if (err == ERR_CONFLICT) {
        /* Reuse: someone holds a copy. End the whole grant, the thief's tokens with it. */
        err = store_token_revoke(r->ctx->store, TOKEN_BY_FAMILY, t.family, clock_now_ms());
        log_warnx("api: refresh token reused token=%s client=%s family=%s: family revoked%s", t.id,
                  client->id, t.family, err != 0 ? " (failed)" : "");
        if (err != 0)
            return api_reply_error(r, err, NULL, "cannot revoke the tokens: %s", err_str(err));
        return oauth_error(r, 400, "invalid_grant",
                           "the refresh token was already used; every token of its grant is now "
                           "revoked");
    }
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot spend the refresh token: %s", err_str(err));
    return grant_answer(r, client, t.family, want);
}

int
h_oauth_token(struct api_req *r)
{
    struct api_form f;
    struct client_auth ca;
    const char *grant;
    unsigned want;

    memset(&ca, 0, sizeof(ca));
    if (oauth_form(r, &f) != 0)
        goto out;
    grant = api_form_get(&f, "grant_type");
    if (grant == NULL || grant[0] == '\0') {
        oauth_error(r, 400, "invalid_request",
                    "grant_type is required: client_credentials or refresh_token");
        goto out;
    }
    if (client_authenticate(r, &f, &ca) != 0)
        goto out;
    if (strcmp(grant, "client_credentials") == 0) {
        if (scope_param(r, &f, api_key_scopes(&ca.client), &want) == 0)
            grant_answer(r, &ca.client, NULL, want);
    } else if (strcmp(grant, "refresh_token") == 0) {
        grant_refresh(r, &f, &ca.client);
    } else {
        oauth_error(r, 400, "unsupported_grant_type",
                    "grant_type '%.64s' is not supported: client_credentials or refresh_token",
                    grant);
    }
out:
    api_key_cleanup(&ca.client);
    api_form_free(&f);
    return 0;
}

/*
 * Reads an RFC 7009 / 7662 request: the form, its client and its "token"
 * parameter. On failure answers and returns the ERR_*.
 */
static int
token_request(struct api_req *r, struct api_form *f, struct client_auth *ca)
{
    int err;

    memset(ca, 0, sizeof(*ca));
    err = oauth_form(r, f);
    if (err == 0)
        err = client_authenticate(r, f, ca);
    if (err == 0 && api_form_get(f, "token") == NULL) {
        oauth_error(r, 400, "invalid_request", "token is required");
        err = ERR_INVAL;
    }
    return err;
}

/* The client's own token whose text is the form's "token", or ERR_NOTFOUND. */
static int
client_token(struct api_req *r, const struct api_form *f, const struct api_key *client,
             struct token *t)
{
    const char *text = api_form_get(f, "token");
    char hash[65];
    int err;

    api_key_hash(text, hash);
    err = store_token_find(r->ctx->store, hash, t);
    if (err == 0 && strcmp(t->client_id, client->id) != 0)
        err = ERR_NOTFOUND;
    return err;
}

int
h_oauth_revoke(struct api_req *r)
{
    struct api_form f;
    struct client_auth ca;
    struct token t;
    int err;

    if (token_request(r, &f, &ca) != 0)
        goto out;
    err = client_token(r, &f, &ca.client, &t);
    if (err == 0 && t.kind == TOKEN_REFRESH)
        err = store_token_revoke(r->ctx->store, TOKEN_BY_FAMILY, t.family, clock_now_ms());
    else if (err == 0)
        err = store_token_revoke(r->ctx->store, TOKEN_BY_ID, t.id, clock_now_ms());
    /* RFC 7009 §2.2: an unknown or invalid token answers 200 as well. */
    if (err != 0 && err != ERR_NOTFOUND) {
        api_reply_error(r, err, NULL, "cannot revoke the token: %s", err_str(err));
        goto out;
    }
    if (err == 0)
        log_info("api: token revoked token=%s client=%s kind=%s", t.id, ca.client.id,
                 t.kind == TOKEN_REFRESH ? "refresh (with its family)" : "access");
    api_reply_raw(r, 200, NULL, NULL, 0);
out:
    api_key_cleanup(&ca.client);
    api_form_free(&f);
    return 0;
}

int
h_oauth_introspect(struct api_req *r)
{
    struct api_form f;
    struct client_auth ca;
    struct token t;
    json_t *o;
    int err;

    if (token_request(r, &f, &ca) != 0)
        goto out;
    err = client_token(r, &f, &ca.client, &t);
    if (err != 0 && err != ERR_NOTFOUND) {
        api_reply_error(r, err, NULL, "cannot read the token: %s", err_str(err));
        goto out;
    }
    if (err != 0 || t.revoked_at != 0 || t.expires_at <= clock_now_ms() ||
        (t.kind == TOKEN_REFRESH && t.used_at != 0) ||
        (t.kind != TOKEN_ACCESS && t.kind != TOKEN_REFRESH)) {
        api_reply_json(r, 200, json_pack("{s:b}", "active", 0));
        goto out;
    }
    o = json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "active", 1, "scope", t.scopes,
                  "client_id", t.client_id, "token_type",
                  t.kind == TOKEN_ACCESS ? "Bearer" : "refresh_token", "exp",
                  (json_int_t)(t.expires_at / 1000), "iat", (json_int_t)(t.created_at / 1000),
                  "sub", t.account_id, "jti", t.id);
    api_reply_json(r, 200, o);
out:
    api_key_cleanup(&ca.client);
    api_form_free(&f);
    return 0;
}

int
h_oauth_metadata(struct api_req *r)
{
    char base[512], tok[600], rev[600], intro[600];
    json_t *o;

    api_base_url(r, base, sizeof(base));
    snprintf(tok, sizeof(tok), "%s/oauth/token", base);
    snprintf(rev, sizeof(rev), "%s/oauth/revoke", base);
    snprintf(intro, sizeof(intro), "%s/oauth/introspect", base);
    o = json_pack("{s:s, s:s, s:s, s:s, s:[ss], s:[ss], s:[ss], s:[ss], s:o, s:[]}", "issuer", base,
                  "token_endpoint", tok, "revocation_endpoint", rev, "introspection_endpoint",
                  intro, "grant_types_supported", "client_credentials", "refresh_token",
                  "token_endpoint_auth_methods_supported", "client_secret_basic",
                  "client_secret_post", "revocation_endpoint_auth_methods_supported",
                  "client_secret_basic", "client_secret_post",
                  "introspection_endpoint_auth_methods_supported", "client_secret_basic",
                  "client_secret_post", "scopes_supported", api_scopes_json(SCOPE_ALL),
                  "response_types_supported");
    return api_reply_json(r, 200, o);
}
