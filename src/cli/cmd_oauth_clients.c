/*
 * fluxhook oauth-clients: create, list and delete the OAuth clients of an
 * account (admin; another account with --account). A client's secret is
 * shown once, when it is created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"

static int clients_run(int argc, char **argv);

static const struct out_col client_cols[] = {
    {"CLIENT_ID", "client_id", NULL}, {"ACCOUNT", "account_id", NULL}, {"NAME", "name", NULL},
    {"SCOPES", "scopes", NULL},       {"CREATED", "created_at", NULL}, {NULL, NULL, NULL},
};

static void
show_client(struct cli_call *x, json_t *o)
{
    out_object(stdout, x->color, o);
    fprintf(stderr, "the client_secret is shown only this once: store it now\n");
}

static int
client_create(struct cli_call *x)
{
    const char *name = client_opt(x, "name"), *scopes = client_opt(x, "scopes");
    json_t *body = json_object();

    if (body != NULL && name != NULL)
        json_object_set_new(body, "name", json_string(name));
    if (body != NULL && scopes != NULL)
        json_object_set_new(body, "scopes", json_string(scopes));
    return client_simple(x, "POST", client_path(x, "/v1/oauth-clients"), body, show_client);
}

static int
client_list_run(struct cli_call *x)
{
    return client_list(x, "/v1/oauth-clients", NULL, client_cols);
}

static void
show_deleted(struct cli_call *x, json_t *o)
{
    (void)o;
    printf("deleted %s and revoked its tokens\n", client_arg(x, 0));
}

static int
client_delete(struct cli_call *x)
{
    return client_simple(x, "DELETE", client_path(x, "/v1/oauth-clients/%s", client_arg(x, 0)),
                         NULL, show_deleted);
}

static const struct config_opt create_opts[] = {
    {"name", "NAME", NULL, "what the client is for", 0, 'n'},
    {"scopes", "LIST", NULL,
     "what its tokens may do, such as events:write,deliveries:read (default: everything its "
     "account may)",
     0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub clients_subs[] = {
    {"create", "[--name NAME] [--scopes LIST]",
     "make an OAuth client; its client_secret is shown once", create_opts, 0, 0, client_create,
     "Exchange client_id and client_secret for tokens at POST /oauth/token "
     "(grant_type=client_credentials)."},
    {"list", "", "list the account's OAuth clients", NULL, 0, 0, client_list_run, NULL},
    {"delete", "CLIENT_ID", "delete an OAuth client and revoke every token issued to it", NULL, 1,
     1, client_delete, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_oauth_clients = {
    .name = "oauth-clients",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "manage OAuth 2.0 clients (admin)",
    .run = clients_run,
    .subs = clients_subs,
};

static int
clients_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_oauth_clients, argc, argv);
}
