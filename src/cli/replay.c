/*
 * The dry run and the confirmation of a replay (cli/replay.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/replay.h"

int
replay_preview_print(struct cli_call *x, int64_t count, json_t *ids, const char *what)
{
    json_t *id;
    size_t i;
    char *dump;

    if (x->json) {
        dump = json_dumps(ids, JSON_COMPACT);
        printf("{\"would_replay\":%lld,\"ids\":%s}\n", (long long)count,
               dump != NULL ? dump : "[]");
        free(dump);
        return CLI_OK;
    }
    printf("dry run: %lld deliver%s (%s) would be replayed; nothing was changed\n",
           (long long)count, count == 1 ? "y" : "ies", what);
    json_array_foreach(ids, i, id) printf("  %s\n", json_string_value(id));
    if (count > (int64_t)json_array_size(ids))
        printf("  ... and %lld more\n", (long long)(count - (int64_t)json_array_size(ids)));
    return CLI_OK;
}

int
replay_confirm(struct cli_call *x, int64_t n, const char *what)
{
    char answer[16];

    if (n <= 1 || config_bool(&x->conf, "yes"))
        return CLI_OK;
    if (!isatty(STDIN_FILENO))
        return client_usage(x,
                            "%lld deliveries (%s) would be replayed; add --yes to replay them "
                            "without asking (standard input is not a terminal), or --dry-run "
                            "to list them",
                            (long long)n, what);
    fprintf(stderr,
            "Replay %lld deliveries (%s)? They are delivered again to their endpoints. "
            "[y/N] ",
            (long long)n, what);
    fflush(stderr);
    if (fgets(answer, sizeof(answer), stdin) == NULL ||
        (strcmp(answer, "y\n") != 0 && strcmp(answer, "yes\n") != 0 &&
         strcmp(answer, "Y\n") != 0)) {
        fprintf(stderr, "nothing replayed\n");
        return CLI_REFUSED;
    }
    return CLI_OK;
}
