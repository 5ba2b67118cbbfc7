/*
 * Customer portal links: a short-lived sign-in link to the dashboard for one
 * account and some scopes, for a platform's own customers. The link carries
 * a one-time token ("fhl_", in the URL's fragment, so it reaches neither
 * server logs nor Referer headers); the dashboard exchanges it at
 * POST /v1/portal-sessions for a session token ("fhs_") of the same account
 * and scopes, which expires when the link would have.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define PORTAL_TTL_DEFAULT_S 3600
#define PORTAL_TTL_MAX_S 86400
/* What a portal link grants when it names no scopes: the account's endpoints and deliveries. */
#define PORTAL_SCOPES_DEFAULT                                                                      \
    (SCOPE_ENDPOINTS_READ | SCOPE_ENDPOINTS_WRITE | SCOPE_DELIVERIES_READ |                        \
     SCOPE_DELIVERIES_WRITE | SCOPE_EVENTS_READ)

/* Reads {account_id, expires_in, scopes} of a link; problems go to fields. */
static void
link_input_read(struct api_req *r, const char **account, int64_t *ttl, unsigned *scopes,
                json_t *fields)
{
    if (api_json_str(r, "account_id", account) != 0 || api_json_int(r, "expires_in", ttl) != 0)
        return;
    if (*ttl < 60 || *ttl > PORTAL_TTL_MAX_S)
        api_field_add(fields, "expires_in", "expected 60 to %d seconds", PORTAL_TTL_MAX_S);
    api_scopes_read(r, "scopes", scopes, fields);
    if (*scopes & SCOPE_ADMIN)
        api_field_add(fields, "scopes", "a portal link cannot carry the admin scope");
    else if (*scopes == 0)
        api_field_add(fields, "scopes", "expected at least one scope");
    else if (!api_scopes_cover(r->scopes, *scopes))
        api_field_add(fields, "scopes", "a portal link can only carry scopes the caller holds");
}

int
h_portal_links_create(struct api_req *r)
{
    struct account a;
    struct token t;
    const char *account = NULL;
    int64_t ttl = PORTAL_TTL_DEFAULT_S;
    unsigned scopes = PORTAL_SCOPES_DEFAULT & r->scopes;
    char secret[API_KEY_MAX], base[512], url[1024];
    json_t *fields = json_array();
    int err;

    memset(&a, 0, sizeof(a));
    memset(secret, 0, sizeof(secret));
    if (r->scopes & SCOPE_ADMIN)
        scopes = PORTAL_SCOPES_DEFAULT;
    if (fields == NULL) {
        api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    link_input_read(r, &account, &ttl, &scopes, fields);
    if (r->status != 0)
        goto out;
    if (api_problems_reply(r, "make the portal link", &fields) != 0)
        goto out;
    if (account == NULL)
        account = r->account_id;
    /* Only an admin may make a link to another account; others are told it does not exist. */
    err = strcmp(account, r->account_id) != 0 && !(r->scopes & SCOPE_ADMIN)
              ? ERR_NOTFOUND
              : store_account_get(r->ctx->store, account, &a);
    if (err == ERR_NOTFOUND) {
        api_reply_error(
            r, ERR_NOTFOUND,
            json_pack("[{s:s, s:s}]", "path", "account_id", "problem", "no such account"),
            "account_id: no account with id '%.64s'", account);
        goto out;
    }
    if (err == 0)
        err = api_token_issue(r, TOKEN_PORTAL_LINK, a.id, NULL, scopes, clock_now_ms() + ttl * 1000,
                              secret, &t);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot make the portal link: %s", err_str(err));
        goto out;
    }
    api_base_url(r, base, sizeof(base));
    snprintf(url, sizeof(url), "%s/#portal=%s", base, secret);
    log_info("api: portal link issued link=%s account=%s scopes='%s' by=%s", t.id, a.id, t.scopes,
             r->key.id);
    api_audit(
        r, a.id, "portal_link.issued", t.id,
        json_pack("{s:s, s:o}", "scopes", t.scopes, "expires_at", api_time_json(t.expires_at)));
    api_reply_json(r, 201,
                   json_pack("{s:s, s:s, s:o, s:s, s:o}", "id", t.id, "url", url, "expires_at",
                             api_time_json(t.expires_at), "account_id", a.id, "scopes",
                             api_scopes_json(scopes)));
out:
    json_decref(fields);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(url, sizeof(url));
    account_cleanup(&a);
    return 0;
}

int
h_portal_sessions_create(struct api_req *r)
{
    struct token link, sess;
    const char *text = NULL;
    char hash[65], secret[API_KEY_MAX], bad[8];
    unsigned scopes = 0;
    int64_t now = clock_now_ms();
    int err;

    memset(secret, 0, sizeof(secret));
    if (api_json_str(r, "token", &text) != 0)
        return 0;
    if (text == NULL || strncmp(text, "fhl_", 4) != 0)
        return api_reply_error(r, ERR_VALIDATION,
                               json_pack("[{s:s, s:s}]", "path", "token", "problem",
                                         "expected the fhl_ token of a portal link"),
                               "token: expected the fhl_ token of a portal link");
    api_key_hash(text, hash);
    err = store_token_find(r->ctx->store, hash, &link);
    if (err == 0 && link.kind != TOKEN_PORTAL_LINK)
        err = ERR_NOTFOUND;
    if (err == ERR_NOTFOUND)
        return api_reply_error(r, ERR_AUTH, NULL, "unknown portal link");
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot read the portal link: %s", err_str(err));
    if (link.expires_at <= now)
        return api_reply_error(r, ERR_AUTH, NULL, "this portal link expired; ask for a new one");
    err = store_token_use(r->ctx->store, link.id, now);
    if (err == ERR_CONFLICT)
        return api_reply_error(r, ERR_AUTH, NULL,
                               "this portal link was already used (or revoked); ask for a new one");
    api_scopes_parse(link.scopes, &scopes, bad, sizeof(bad));
    if (err == 0)
        err = api_token_issue(r, TOKEN_PORTAL_SESSION, link.account_id, link.family, scopes,
                              link.expires_at, secret, &sess);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot open the portal session: %s", err_str(err));
    log_info("api: portal session opened session=%s link=%s account=%s", sess.id, link.id,
             sess.account_id);
    api_reply_json(r, 201,
                   json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", sess.id, "access_token",
                             secret, "token_type", "Bearer", "account_id", sess.account_id,
                             "scopes", api_scopes_json(scopes), "expires_at",
                             api_time_json(sess.expires_at)));
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}
