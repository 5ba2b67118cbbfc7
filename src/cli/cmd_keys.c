/*
 * fluxhook keys: list, create and delete an account's API keys (admin). A
 * key's secret is shown once, when it is created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"

#define KEYS_DEFAULT_ACCOUNT "acct_default"

static int keys_run(int argc, char **argv);

static const struct out_col key_cols[] = {
    {"ID", "id", NULL},       {"ACCOUNT", "account_id", NULL}, {"NAME", "name", NULL},
    {"ADMIN", "admin", NULL}, {"CREATED", "created_at", NULL}, {NULL, NULL, NULL},
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
    const char *name = client_opt(x, "name");
    json_t *body = json_object();

    if (body != NULL && name != NULL)
        json_object_set_new(body, "name", json_string(name));
    if (body != NULL && config_bool(&x->conf, "admin"))
        json_object_set_new(body, "admin", json_true());
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

static const struct config_opt create_opts[] = {
    {"name", "NAME", NULL, "what the key is for", 0, 'n'},
    {"admin", NULL, NULL, "an admin key (may manage accounts and keys)", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub keys_subs[] = {
    {"list", "[ACCOUNT]", "list an account's API keys (default: --account, else acct_default)",
     NULL, 0, 1, key_list, NULL},
    {"create", "[ACCOUNT] [--name NAME] [--admin]",
     "make an API key for an account; its secret is shown once", create_opts, 0, 1, key_create,
     NULL},
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
