/*
 * fluxhook accounts: list, create and show accounts (creating and listing
 * need an admin key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"

static int accounts_run(int argc, char **argv);

static const struct out_col acct_cols[] = {
    {"ID", "id", NULL},
    {"NAME", "name", NULL},
    {"CREATED", "created_at", NULL},
    {NULL, NULL, NULL},
};

static void
show_account(struct cli_call *x, json_t *o)
{
    out_object(stdout, x->color, o);
}

static int
acct_list(struct cli_call *x)
{
    return client_list(x, "/v1/accounts", NULL, acct_cols);
}

static int
acct_create(struct cli_call *x)
{
    const char *name = client_opt(x, "name");

    if (name == NULL)
        return client_usage(x, "missing --name NAME");
    return client_simple(x, "POST", strdup("/v1/accounts"), json_pack("{s:s}", "name", name),
                         show_account);
}

static int
acct_show(struct cli_call *x)
{
    return client_simple(x, "GET", client_path(x, "/v1/accounts/%s", client_arg(x, 0)), NULL,
                         show_account);
}

static const struct config_opt page_opts[] = {
    {"limit", "N", NULL, "at most N per page", 0, 0},
    {"after", "CURSOR", NULL, "the page after this cursor (printed as \"more:\")", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt create_opts[] = {
    {"name", "NAME", NULL, "the account's name", 0, 'n'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub accounts_subs[] = {
    {"list", "[--limit N] [--after CURSOR]", "list the accounts (admin)", page_opts, 0, 0,
     acct_list, NULL},
    {"create", "--name NAME", "create an account (admin)", create_opts, 0, 0, acct_create, NULL},
    {"show", "ID", "show one account", NULL, 1, 1, acct_show, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_accounts = {
    .name = "accounts",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "manage accounts (admin)",
    .run = accounts_run,
    .subs = accounts_subs,
};

static int
accounts_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_accounts, argc, argv);
}
