/*
 * The command table of the fluxhook binary. Each cmd_*.c exports one
 * struct cli_cmd; cli.c lists them all and dispatches on argv[1].
 */
#ifndef FLUXHOOK_CLI_CLI_H
#define FLUXHOOK_CLI_CLI_H

#include <stdio.h>

#include "util/config.h"

/* Exit statuses of every command (CONTRACT §5). */
enum cli_exit {
    CLI_OK = 0,          /* done */
    CLI_REFUSED = 1,     /* the server refused, or a check failed */
    CLI_USAGE = 2,       /* bad usage */
    CLI_UNREACHABLE = 3, /* the server could not be reached */
};

struct cli_cmd {
    const char *name;              /* "serve" */
    const char *usage;             /* synopsis after the name, man-page style */
    const char *summary;           /* one line for "fluxhook help" */
    const struct config_opt *opts; /* its options, NULL-name-terminated, or NULL */
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
};

/* the commands */
extern const struct cli_cmd cmd_serve;
extern const struct cli_cmd cmd_verify;

/* Runs the command named by argv[1]; returns the process exit status. */
int cli_run(int argc, char **argv);

/* The table, NULL-terminated. */
extern const struct cli_cmd *const cli_cmds[];

/* Prints "usage: fluxhook NAME USAGE", the summary and the options of cmd. */
void cli_cmd_help(FILE *f, const struct cli_cmd *cmd);

/*
 * Parses argv against cmd->opts into c. Prints the error and the usage to
 * stderr on bad usage. Returns -1 to go on, or the exit status to return
 * at once (CLI_OK after printing --help, CLI_USAGE on an error).
 */
int cli_parse(const struct cli_cmd *cmd, struct config *c, int argc, char **argv);

#endif
