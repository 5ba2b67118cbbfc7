/*
 * fluxhook: parses the global flags, then hands over to the command table.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/secret.h"

int
main(int argc, char **argv)
{
    const char *level;
    int i = 1;

    secret_json_alloc_setup();
    /* A peer that goes away must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    level = getenv("FLUXHOOK_LOG_LEVEL");
    if (level != NULL && log_level_set(level) != 0) {
        fprintf(stderr, "fluxhook: FLUXHOOK_LOG_LEVEL: expected error, warn, info or debug\n");
        return CLI_USAGE;
    }
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("fluxhook %s\n", FLUXHOOK_VERSION);
            return CLI_OK;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char *help_argv[] = {argv[0], "help", NULL};
            return cli_run(2, help_argv);
        } else if (strncmp(argv[i], "--log-level=", 12) == 0) {
            if (log_level_set(argv[i] + 12) != 0) {
                fprintf(stderr, "fluxhook: --log-level: expected error, warn, info or debug\n");
                return CLI_USAGE;
            }
        } else {
            break;
        }
        i++;
    }
    argv[i - 1] = argv[0];
    return cli_run(argc - i + 1, argv + i - 1);
}
