/*
 * fluxhook keys: list, create, rotate and delete an account's API keys
 * (admin). A key's secret is shown once, when it is created or rotated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "util/clock.h"

#define KEYS_DEFAULT_ACCOUNT "acct_default"

static int keys_run(int argc, char **argv);

static const struct out_col key_cols[] = {
    {"ID", "id", NULL},
    {"ACCOUNT", "account_id", NULL},
    {"NAME", "name", NULL},
    {"ADMIN", "admin", NULL},
    {"SCOPES", "scopes", NULL},
    {"EXPIRES", "expires_at", NULL},
    {"LAST USED", "last_used_at", NULL},
    {"CREATED", "created_at", NULL},
    {NULL, NULL, NULL},
};

/* The account a key command is about: ACCOUNT, else --account, else acct_default. */
static const char *
account_of(struct cli_call *x)
{
    if (client_arg(x, 0) != NULL)
        return client_arg(x, 0);
    if (x->account != NULL && x->account[0] != '\0')
        return x->account;
    return KEYS_DEFAULT_ACCOUNT;
}

static void
show_key(struct cli_call *x, json_t *o)
{
    out_object(stdout, x->color, o);
    if (json_object_get(o, "secret") != NULL)
        fprintf(stderr, "the secret is shown only this once: store it now\n");
}

static int
key_list(struct cli_call *x)
{
    struct client_reply rep;
    char *path;
    int rc;

    memset(&rep, 0, sizeof(rep));
    path = client_path(x, "/v1/accounts/%s/api-keys", account_of(x));
    if (path == NULL)
        return client_simple(x, "GET", NULL, NULL, NULL);
    rc = client_call(x, "GET", path, NULL, NULL, &rep);
    free(path);
    if (rc == CLI_OK) {
        if (x->json)
            client_json_print(&rep);
        else if (out_list(stdout, x->color,
                          json_is_array(rep.json) ? rep.json : json_object_get(rep.json, "data"),
                          key_cols) != 0)
            rc = CLI_REFUSED;
    }
    client_reply_cleanup(&rep);
    return rc;
}

static int
key_create(struct cli_call *x)
{
    const char *name = client_opt(x, "name"), *scopes = client_opt(x, "scopes");
    const char *expires = client_opt(x, "expires");
    char at[CLOCK_RFC3339_MAX];
    json_t *body;
    int64_t ms;

    if (expires != NULL && clock_parse_rfc3339(expires, &ms) != 0) {
        if (clock_parse_duration(expires, &ms) != 0 || ms <= 0)
            return client_usage(x, "--expires: expected an RFC 3339 time such as "
                                   "2030-01-01T00:00:00Z or a duration from now such as 720h");
        clock_format_rfc3339(clock_now_ms() + ms, at);
        expires = at;
    }
    body = json_object();
    if (body != NULL && name != NULL)
        json_object_set_new(body, "name", json_string(name));
    if (body != NULL && config_bool(&x->conf, "admin"))
        json_object_set_new(body, "admin", json_true());
    /* The server reads a string of scope names and says which one it does not know. */
    if (body != NULL && scopes != NULL)
        json_object_set_new(body, "scopes", json_string(scopes));
    if (body != NULL && expires != NULL)
        json_object_set_new(body, "expires_at", json_string(expires));
    return client_simple(x, "POST", client_path(x, "/v1/accounts/%s/api-keys", account_of(x)), body,
                         show_key);
}

static void
show_deleted(struct cli_call *x, json_t *o)
{
    (void)o;
    printf("deleted %s\n", client_arg(x, 0));
}

static int
key_delete(struct cli_call *x)
{
    return client_simple(x, "DELETE", client_path(x, "/v1/api-keys/%s", client_arg(x, 0)), NULL,
                         show_deleted);
}

static int
key_rotate(struct cli_call *x)
{
    json_t *body;
    int rc = client_grace_body(x, &body);

    if (rc != 0)
        return rc;
    return client_simple(x, "POST", client_path(x, "/v1/api-keys/%s/rotate", client_arg(x, 0)),
                         body, show_key);
}

static const struct config_opt create_opts[] = {
    {"name", "NAME", NULL, "what the key is for", 0, 'n'},
    {"admin", NULL, NULL, "an admin key (may manage accounts and keys)", 0, 0},
    {"scopes", "LIST", NULL,
     "what the key may do, such as events:write,deliveries:read (default: everything its "
     "account may)",
     0, 0},
    {"expires", "TIME", NULL, "when the key stops working: RFC 3339, or a duration from now", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt rotate_opts[] = {
    {"grace", "DURATION", NULL, "how long the old secret keeps working (default 24h)", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub keys_subs[] = {
    {"list", "[ACCOUNT]", "list an account's API keys (default: --account, else acct_default)",
     NULL, 0, 1, key_list, NULL},
    {"create", "[ACCOUNT] [--name NAME] [--admin] [--scopes LIST] [--expires TIME]",
     "make an API key for an account; its secret is shown once", create_opts, 0, 1, key_create,
     "Scopes: events:write, events:read, endpoints:read, endpoints:write, deliveries:read, "
     "deliveries:write, admin."},
    {"rotate", "KEY_ID [--grace DURATION]",
     "give a key a new secret (shown once); the old one works for the grace period", rotate_opts, 1,
     1, key_rotate, NULL},
    {"delete", "KEY_ID", "delete an API key", NULL, 1, 1, key_delete, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_keys = {
    .name = "keys",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "manage API keys (admin)",
    .run = keys_run,
    .subs = keys_subs,
};

static int
keys_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_keys, argc, argv);
}
