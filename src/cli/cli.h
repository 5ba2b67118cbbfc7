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

struct cli_call; /* a client command's parsed call: src/cli/client.h */

/* A subcommand of a client command: "endpoints create". */
struct cli_sub {
    const char *name;              /* "create" */
    const char *usage;             /* synopsis after "fluxhook CMD NAME", man-page style */
    const char *summary;           /* one line for --help and the man page */
    const struct config_opt *opts; /* its own options (the client options are added), or NULL */
    int min_args;                  /* positional arguments it needs */
    int max_args;                  /* and accepts */
    int (*run)(struct cli_call *call); /* returns the exit status */
    const char *description;           /* more for its --help and the man page, or NULL */
};

struct cli_cmd {
    const char *name;              /* "serve" */
    const char *usage;             /* synopsis after the name, man-page style */
    const char *summary;           /* one line for "fluxhook help" */
    const struct config_opt *opts; /* its options, NULL-name-terminated, or NULL */
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const struct cli_sub *subs;        /* subcommands, NULL-name-terminated, or NULL */
    int local;                         /* 1: the subcommands work here, not through a server:
                                          no client options, no --url */
};

/* the commands */
extern const struct cli_cmd cmd_serve;
extern const struct cli_cmd cmd_verify;
extern const struct cli_cmd cmd_endpoints;
extern const struct cli_cmd cmd_operational_endpoints;
extern const struct cli_cmd cmd_events;
extern const struct cli_cmd cmd_deliveries;
extern const struct cli_cmd cmd_event_types;
extern const struct cli_cmd cmd_accounts;
extern const struct cli_cmd cmd_keys;
extern const struct cli_cmd cmd_oauth_clients;
extern const struct cli_cmd cmd_listen;
extern const struct cli_cmd cmd_trigger;
extern const struct cli_cmd cmd_db;
extern const struct cli_cmd cmd_audit;

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
