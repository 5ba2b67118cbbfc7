#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "util/suggest.h"

static int help_run(int argc, char **argv);
static int version_run(int argc, char **argv);

static const struct cli_cmd cmd_help = {
    .name = "help",
    .usage = "[COMMAND]",
    .summary = "show the commands, or one command's usage",
    .run = help_run,
};

static const struct cli_cmd cmd_version = {
    .name = "version",
    .usage = "",
    .summary = "print the version",
    .run = version_run,
};

const struct cli_cmd *const cli_cmds[] = {
    &cmd_help,       &cmd_version,     &cmd_serve,    &cmd_verify, &cmd_endpoints,     &cmd_events,
    &cmd_deliveries, &cmd_event_types, &cmd_accounts, &cmd_keys,   &cmd_oauth_clients, &cmd_trigger,
    &cmd_listen,     &cmd_db,          &cmd_audit,    &cmd_operational_endpoints,
    NULL,
};

/* "unknown command 'lisen'" with "did you mean 'listen'?" when one is close. */
static void
unknown_command(const char *name)
{
    struct suggest sg;
    const char *best;
    int i;

    suggest_init(&sg, name);
    for (i = 0; cli_cmds[i] != NULL; i++)
        suggest_add(&sg, cli_cmds[i]->name);
    best = suggest_best(&sg);
    if (best != NULL)
        fprintf(stderr, "fluxhook: unknown command '%s'; did you mean 'fluxhook %s'?\n", name,
                best);
    else
        fprintf(stderr, "fluxhook: unknown command '%s'\n", name);
}

static const struct cli_cmd *
lookup(const char *name)
{
    int i;

    for (i = 0; cli_cmds[i] != NULL; i++) {
        if (strcmp(cli_cmds[i]->name, name) == 0)
            return cli_cmds[i];
    }
    return NULL;
}

void
cli_cmd_help(FILE *f, const struct cli_cmd *cmd)
{
    fprintf(f, "usage: fluxhook %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->opts != NULL && cmd->opts[0].name != NULL) {
        fprintf(f, "\noptions:\n");
        config_print_options(f, cmd->opts);
    }
    if (cmd->subs != NULL)
        cli_subs_help(f, cmd);
}

int
cli_parse(const struct cli_cmd *cmd, struct config *c, int argc, char **argv)
{
    static const struct config_opt none[] = {{0}};
    char err[256];

    if (config_parse(c, cmd->opts != NULL ? cmd->opts : none, argc, argv, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "fluxhook %s: %s\n", cmd->name, err);
        fprintf(stderr, "usage: fluxhook %s %s\n", cmd->name, cmd->usage);
        return CLI_USAGE;
    }
    if (c->help) {
        cli_cmd_help(stdout, cmd);
        return CLI_OK;
    }
    return -1;
}

static void
overview(FILE *f)
{
    int i;

    fprintf(f, "usage: fluxhook COMMAND [ARGS]\n\n"
               "fluxhook delivers webhooks: it stores published events, signs them and\n"
               "delivers them to the endpoints subscribed to them, with retries.\n\n"
               "commands:\n");
    for (i = 0; cli_cmds[i] != NULL; i++)
        fprintf(f, "  %-13s %s\n", cli_cmds[i]->name, cli_cmds[i]->summary);
    fprintf(f, "\nRun 'fluxhook help COMMAND' or 'fluxhook COMMAND --help' for its usage.\n");
}

static int
help_run(int argc, char **argv)
{
    const struct cli_cmd *cmd;

    if (argc < 2) {
        overview(stdout);
        return CLI_OK;
    }
    /* Hidden: the man page and the bash completion, generated from the table. */
    if (strcmp(argv[1], "--man") == 0)
        return cli_man_write(stdout);
    if (strcmp(argv[1], "--completion") == 0)
        return cli_completion_write(stdout);
    cmd = lookup(argv[1]);
    if (cmd == NULL) {
        unknown_command(argv[1]);
        return CLI_USAGE;
    }
    cli_cmd_help(stdout, cmd);
    return CLI_OK;
}

static int
version_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("fluxhook %s\n", FLUXHOOK_VERSION);
    return CLI_OK;
}

int
cli_run(int argc, char **argv)
{
    const struct cli_cmd *cmd;

    if (argc < 2) {
        overview(stderr);
        return CLI_USAGE;
    }
    cmd = lookup(argv[1]);
    if (cmd == NULL) {
        unknown_command(argv[1]);
        overview(stderr);
        return CLI_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
