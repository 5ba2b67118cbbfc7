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

int
h_keys_create(struct api_req *r)
{
    struct account a;
    struct api_key k;
    const char *name = NULL;
    char secret[API_KEY_MAX];
    int admin = 0, err;

    memset(&a, 0, sizeof(a));
    memset(&k, 0, sizeof(k));
    memset(secret, 0, sizeof(secret));
    if (name_param(r, 0, &name) != 0 || api_json_bool(r, "admin", &admin) != 0)
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
    k.admin = admin;
    k.created_at = clock_now_ms();
    api_key_hash(secret, k.hash);
    err = store_key_insert(r->ctx->store, &k);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot store the key: %s", err_str(err));
        goto out;
    }
    log_info("api: key created key=%s account=%s admin=%d by_key=%s", k.id, k.account_id, k.admin,
             r->key.id);
    api_audit(r, k.account_id, "api_key.created", k.id,
              json_pack("{s:s, s:b}", "name", k.name, "admin", k.admin));
    snprintf(r->location, sizeof(r->location), "/v1/api-keys/%s", k.id);
    api_reply_json(r, 201, api_key_json(&k, secret));
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    account_cleanup(&a);
    return 0;
}

/* api_item_fn of an account's keys (never with their secrets). */
static const char *
key_item(const void *items, size_t i, json_t **json)
{
    const struct api_key *k = (const struct api_key *)items + i;

    if (json != NULL)
        *json = api_key_json(k, NULL);
    return k->id;
}

int
h_keys_list(struct api_req *r)
{
    struct account a;
    struct api_key *ks = NULL;
    json_t *items = NULL;
    size_t n = 0;
    int err;

    memset(&a, 0, sizeof(a));
    if (account_visible(r, r->params[0], &a) != 0)
        goto out;
    err = store_key_list(r->ctx->store, a.id, &ks, &n);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot list keys: %s", err_str(err));
        goto out;
    }
    if (api_items_json(ks, n, key_item, &items) != 0) {
        api_reply_error(r, ERR_NOMEM, NULL, "cannot list keys: out of memory");
        goto out;
    }
    api_reply_json(r, 200, api_list_json(items, NULL));
out:
    api_key_list_free(ks, n);
    account_cleanup(&a);
    return 0;
}

int
h_keys_delete(struct api_req *r)
{
    const char *id = r->params[0];
    int err;

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
