/*
 * What `deliveries replay` and `endpoints replay` share: the dry run's
 * message and the question asked before delivering many again.
 */
#ifndef FLUXHOOK_CLI_REPLAY_H
#define FLUXHOOK_CLI_REPLAY_H

#include <jansson.h>
#include <stdint.h>

#include "cli/client.h"

/*
 * --dry-run: says that count deliveries (what: the filters in words) would
 * be replayed, lists ids (the first of them, or all), and that nothing
 * changed. With --json: {"would_replay":count,"ids":[...]}. Returns CLI_OK.
 */
int replay_preview_print(struct cli_call *x, int64_t count, json_t *ids, const char *what);

/*
 * Asks before replaying more than one delivery: on a terminal, "Replay N
 * deliveries? [y/N]"; elsewhere it refuses unless --yes. Returns CLI_OK to go
 * on, or the exit status after saying why not.
 */
int replay_confirm(struct cli_call *x, int64_t n, const char *what);

#endif
