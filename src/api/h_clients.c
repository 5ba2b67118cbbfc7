/*
 * OAuth clients of an account (admin), kept as api_keys rows of kind
 * 'client': made with a secret answered once (only its SHA-256 kept),
 * listed, and deleted with every token issued to them.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "api/handlers.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

int
h_clients_create(struct api_req *r)
{
    struct api_key k;
    const char *name = NULL;
    char secret[API_KEY_MAX];
    unsigned scopes = SCOPE_ACCOUNT;
    json_t *fields = json_array();
    int err;

    memset(&k, 0, sizeof(k));
    memset(secret, 0, sizeof(secret));
    if (fields == NULL)
        return api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
    if (api_json_str(r, "name", &name) != 0)
        goto out;
    if (name != NULL && strlen(name) > 200)
        api_field_add(fields, "name", "expected at most 200 characters");
    api_scopes_read(r, "scopes", &scopes, fields);
    if (scopes == 0)
        api_field_add(fields, "scopes", "expected at least one scope");
    if (api_problems_reply(r, "create the OAuth client", &fields) != 0)
        goto out;
    err = id_new("oc_", k.id);
    if (err == 0)
        err = api_secret_new("fhc_", secret);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot make a client: %s", err_str(err));
        goto out;
    }
    snprintf(k.account_id, sizeof(k.account_id), "%s", r->account_id);
    k.name = (char *)(name != NULL ? name : "");
    k.kind = CRED_CLIENT;
    k.admin = (scopes & SCOPE_ADMIN) != 0;
    api_scopes_format(scopes, k.scopes, sizeof(k.scopes));
    k.created_at = clock_now_ms();
    api_key_hash(secret, k.hash);
    err = store_key_insert(r->ctx->store, &k);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot store the client: %s", err_str(err));
        goto out;
    }
    log_info("api: oauth client created client=%s account=%s by=%s", k.id, k.account_id, r->key.id);
    api_audit(r, k.account_id, "oauth_client.created", k.id,
              json_pack("{s:s, s:s}", "name", k.name, "scopes", k.scopes));
    snprintf(r->location, sizeof(r->location), "/v1/oauth-clients/%s", k.id);
    api_reply_json(r, 201, api_key_json(&k, secret));
out:
    json_decref(fields);
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

/* api_item_fn of an account's OAuth clients (never with their secrets). */
static const char *
client_item(const void *items, size_t i, json_t **json)
{
    const struct api_key *k = (const struct api_key *)items + i;

    if (json != NULL)
        *json = api_key_json(k, NULL);
    return k->id;
}

/*
 * Lists the account's keys (kind CRED_KEY) or OAuth clients (CRED_CLIENT):
 * both are api_keys rows. Answers 200 {data, next: null}. Returns 0.
 */
int
api_keys_reply(struct api_req *r, const char *account_id, enum cred_kind kind)
{
    struct api_key *ks = NULL;
    json_t *items = NULL;
    size_t n = 0, i, kept = 0;
    int err;

    err = store_key_list(r->ctx->store, account_id, &ks, &n);
    if (err != 0) {
        api_reply_error(r, err, NULL, "cannot list %s: %s",
                        kind == CRED_CLIENT ? "OAuth clients" : "keys", err_str(err));
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (ks[i].kind != kind) {
            api_key_cleanup(&ks[i]);
            continue;
        }
        if (kept != i) {
            ks[kept] = ks[i];
            memset(&ks[i], 0, sizeof(ks[i]));
        }
        kept++;
    }
    if (api_items_json(ks, kept, client_item, &items) != 0) {
        api_reply_error(r, ERR_NOMEM, NULL, "cannot list: out of memory");
        goto out;
    }
    api_reply_json(r, 200, api_list_json(items, NULL));
out:
    api_key_list_free(ks, n);
    return 0;
}

int
h_clients_list(struct api_req *r)
{
    return api_keys_reply(r, r->account_id, CRED_CLIENT);
}

int
h_clients_delete(struct api_req *r)
{
    const char *id;
    int err;

    if (api_path_id(r, 0, "oc_", "OAuth client", &id) != 0)
        return 0;
    err = store_key_delete(r->ctx->store, r->account_id, id);
    if (err == ERR_NOTFOUND)
        return api_reply_error(r, err, NULL,
                               "no OAuth client with id '%.64s' in account '%s' (for another "
                               "account's client, send X-Workflux-Account)",
                               id, r->account_id);
    if (err == 0)
        err = store_token_revoke(r->ctx->store, TOKEN_BY_CLIENT, id, clock_now_ms());
    if (err != 0)
        return api_reply_error(r, err, NULL, "cannot delete the client: %s", err_str(err));
    log_info("api: oauth client deleted client=%s account=%s by=%s", id, r->account_id, r->key.id);
    api_audit(r, NULL, "oauth_client.deleted", id, NULL);
    return api_reply_raw(r, 204, NULL, NULL, 0);
}
