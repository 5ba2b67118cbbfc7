/*
 * Accounts and API keys (admin): creating accounts, making keys (whose
 * secret is answered once and only its SHA-256 kept), listing, deleting.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define NAME_MAX_LEN 200

/* Reads an optional "name" member: a string of 1..NAME_MAX_LEN characters. */
static int
name_param(struct api_req *r, int required, const char **name)
{
    json_t *fields;

    if (api_json_str(r, "name", name) != 0)
        return ERR_INVAL;
    if (*name == NULL && !required)
        return 0;
    if (*name == NULL || (*name)[0] == '\0' || strlen(*name) > NAME_MAX_LEN) {
        fields = json_pack("[{s:s, s:s}]", "path", "name", "problem",
                           "expected a non-empty string of at most 200 characters");
        api_reply_error(r, ERR_VALIDATION, fields,
                        "name: expected a non-empty string of at most %d characters", NAME_MAX_LEN);
        return ERR_VALIDATION;
    }
    return 0;
}

int
h_accounts_create(struct api_req *r)
{
    struct account a;
    const char *name = NULL;
    int err;

    memset(&a, 0, sizeof(a));
    if (name_param(r, 1, &name) != 0)
        return 0;
    err = id_new("acct_", a.id);
    if (err != 0)
        return err;
    a.name = (char *)name;
    a.created_at = clock_now_ms();
    err = store_account_insert(r->ctx->store, &a);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot create the account: %s", err_str(err));
    log_info("api: account created account=%s by_key=%s", a.id, r->key.id);
    api_audit(r, a.id, "account.created", a.id, json_pack("{s:s}", "name", a.name));
    snprintf(r->location, sizeof(r->location), "/v1/accounts/%s", a.id);
    return api_reply_json(r, 201, api_account_json(&a));
}

/* api_item_fn of a page of accounts. */
static const char *
account_item(const void *items, size_t i, json_t **json)
{
    const struct account *a = (const struct account *)items + i;

    if (json != NULL)
        *json = api_account_json(a);
    return a->id;
}

int
h_accounts_list(struct api_req *r)
{
    struct account *as = NULL;
    const char *after;
    size_t n = 0;
    int limit, err;

    if (api_page_params(r, &limit, &after) != 0)
        return 0;
    err = store_account_list(r->ctx->store, after != NULL ? after : "", api_page_fetch(limit), &as,
                             &n);
    if (err != 0)
        err = api_reply_error(r, err, NULL, "cannot list accounts: %s", err_str(err));
    else
        err = api_page_reply(r, limit, as, n, account_item);
    account_list_free(as, n);
    return err;
}

/* An admin key sees every account; any other key only its own (others answer 404). */
static int
account_visible(struct api_req *r, const char *id, struct account *out)
{
    int err;

    if (!r->key.admin && strcmp(id, r->key.account_id) != 0) {
        api_reply_error(r, ERR_NOTFOUND, NULL, "no account with id '%.64s'", id);
        return ERR_NOTFOUND;
    }
    err = store_account_get(r->ctx->store, id, out);
    if (err == ERR_NOTFOUND) {
        api_reply_error(r, ERR_NOTFOUND, NULL, "no account with id '%.64s'", id);
        return err;
    }
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot read the account: %s", err_str(err));
        return err;
    }
    return 0;
}

int
h_accounts_get(struct api_req *r)
{
    struct account a;
    int err;

    memset(&a, 0, sizeof(a));
    if (account_visible(r, r->params[0], &a) != 0)
        return 0;
    err = api_reply_json(r, 200, api_account_json(&a));
    account_cleanup(&a);
    return err;
}

/*
 * Reads a key's optional scopes (an array of names; admin: true adds admin)
 * and expires_at (RFC 3339, in the future) into k. Problems go to fields.
 */
static void
key_input_read(struct api_req *r, struct api_key *k, json_t *fields)
{
    const char *exp = NULL;
    unsigned scopes = 0;
    int64_t ms = 0;
    int admin = 0;

    if (api_json_bool(r, "admin", &admin) != 0)
        return;
    k->admin = admin;
    if (json_object_get(r->json, "scopes") != NULL &&
        !json_is_null(json_object_get(r->json, "scopes"))) {
        api_scopes_read(r, "scopes", &scopes, fields);
        if (admin)
            scopes |= SCOPE_ADMIN;
        if (scopes == 0 && json_array_size(fields) == 0)
            api_field_add(fields, "scopes", "expected at least one scope");
        k->admin = (scopes & SCOPE_ADMIN) != 0;
        api_scopes_format(scopes, k->scopes, sizeof(k->scopes));
    }
    if (api_json_str(r, "expires_at", &exp) != 0)
        return;
    if (exp != NULL && (clock_parse_rfc3339(exp, &ms) != 0 || ms <= clock_now_ms()))
        api_field_add(fields, "expires_at",
                      "expected an RFC 3339 UTC time in the future, such as 2030-01-01T00:00:00Z");
    k->expires_at = ms;
}

int
h_keys_create(struct api_req *r)
{
    struct account a;
    struct api_key k;
    const char *name = NULL;
    char secret[API_KEY_MAX];
    json_t *fields = json_array();
    int err;

    memset(&a, 0, sizeof(a));
    memset(&k, 0, sizeof(k));
    memset(secret, 0, sizeof(secret));
    if (fields == NULL || r->json == NULL) {
        api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (name_param(r, 0, &name) != 0)
        goto out;
    key_input_read(r, &k, fields);
    if (r->status != 0)
        goto out;
    if (api_problems_reply(r, "create the key", &fields) != 0)
        goto out;
    if (account_visible(r, r->params[0], &a) != 0)
        goto out;
    err = id_new("key_", k.id);
    if (err == 0)
        err = api_key_new(secret);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot make a key: %s", err_str(err));
        goto out;
    }
    snprintf(k.account_id, sizeof(k.account_id), "%s", a.id);
    k.name = (char *)(name != NULL ? name : "");
    k.created_at = clock_now_ms();
    api_key_hash(secret, k.hash);
    err = store_key_insert(r->ctx->store, &k);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot store the key: %s", err_str(err));
        goto out;
    }
    log_info("api: key created key=%s account=%s admin=%d scopes='%s' by_key=%s", k.id,
             k.account_id, k.admin, k.scopes, r->key.id);
    api_audit(r, k.account_id, "api_key.created", k.id,
              json_pack("{s:s, s:b, s:s}", "name", k.name, "admin", k.admin, "scopes", k.scopes));
    snprintf(r->location, sizeof(r->location), "/v1/api-keys/%s", k.id);
    api_reply_json(r, 201, api_key_json(&k, secret));
out:
    json_decref(fields);
    OPENSSL_cleanse(secret, sizeof(secret));
    account_cleanup(&a);
    return 0;
}

int
h_keys_list(struct api_req *r)
{
    struct account a;

    memset(&a, 0, sizeof(a));
    if (account_visible(r, r->params[0], &a) == 0)
        api_keys_reply(r, a.id, CRED_KEY);
    account_cleanup(&a);
    return 0;
}

#define KEY_GRACE_DEFAULT_S 86400 /* the old secret of a rotated key works this long */
#define KEY_GRACE_MAX_S (30 * 86400)

int
h_keys_rotate(struct api_req *r)
{
    struct api_key k;
    const char *id;
    char secret[API_KEY_MAX], hash[65];
    int64_t grace = KEY_GRACE_DEFAULT_S, now = clock_now_ms();
    int err;

    memset(&k, 0, sizeof(k));
    memset(secret, 0, sizeof(secret));
    if (api_path_id(r, 0, "key_", "API key", &id) != 0 ||
        api_json_int(r, "grace_seconds", &grace) != 0)
        goto out;
    if (grace < 0 || grace > KEY_GRACE_MAX_S) {
        api_reply_error(r, ERR_VALIDATION,
                        json_pack("[{s:s, s:s}]", "path", "grace_seconds", "problem",
                                  "expected 0 to 2592000 (30 days)"),
                        "grace_seconds: expected 0 to %d (30 days)", KEY_GRACE_MAX_S);
        goto out;
    }
    err = api_key_new(secret);
    if (err == 0) {
        api_key_hash(secret, hash);
        err = store_key_rotate(r->ctx->store, r->account_id, id, hash, now + grace * 1000);
    }
    if (err == ERR_NOTFOUND) {
        api_reply_error(r, err, NULL,
                        "no API key with id '%.64s' in account '%s' (for another account's key, "
                        "send X-Workflux-Account)",
                        id, r->account_id);
        goto out;
    }
    if (err == 0)
        err = store_key_find(r->ctx->store, hash, &k);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot rotate the key: %s", err_str(err));
        goto out;
    }
    log_info("api: key rotated key=%s account=%s grace_s=%lld by=%s", k.id, k.account_id,
             (long long)grace, r->key.id);
    api_audit(r, k.account_id, "api_key.rotated", k.id,
              json_pack("{s:I}", "grace_seconds", (json_int_t)grace));
    api_reply_json(r, 200, api_key_json(&k, secret));
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    api_key_cleanup(&k);
    return 0;
}

int
h_keys_delete(struct api_req *r)
{
    const char *id;
    int err;

    if (api_path_id(r, 0, "key_", "API key", &id) != 0)
        return 0;
    if (strcmp(id, r->key.id) == 0)
        return api_reply_error(r, ERR_CONFLICT, NULL,
                               "key '%s' is the one making this request; delete it with "
                               "another admin key",
                               id);
    /* A key of another account is deleted while acting for it (X-Workflux-Account). */
    err = store_key_delete(r->ctx->store, r->account_id, id);
    if (err == ERR_NOTFOUND)
        return api_reply_error(r, err, NULL,
                               "no API key with id '%.64s' in account '%s' (to delete another "
                               "account's key, send X-Workflux-Account)",
                               id, r->account_id);
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot delete the key: %s", err_str(err));
    log_info("api: key deleted key=%.64s account=%s by_key=%s", id, r->account_id, r->key.id);
    api_audit(r, NULL, "api_key.deleted", id, NULL);
    return api_reply_raw(r, 204, NULL, NULL, 0);
}
