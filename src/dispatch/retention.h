/*
 * Retention: a background thread that deletes events older than a window
 * whose deliveries are all finished, with their deliveries and attempts
 * (store_purge()), in small batches, so that the store stops growing under a
 * steady load once the window is full. Pending, delivering and held work is
 * never deleted.
 */
#ifndef FLUXHOOK_DISPATCH_RETENTION_H
#define FLUXHOOK_DISPATCH_RETENTION_H

#include <stdint.h>

#include "store/store.h"

#define RETENTION_BATCH 200          /* events one transaction deletes, at most */
#define RETENTION_PAUSE_MS 20        /* between two batches: publishes go first */
#define RETENTION_MAX_ROUND_MS 10000 /* rounds start at least this often */

struct retention;

/*
 * Starts the thread for store st (borrowed; it must outlive the thread),
 * keeping window_ms (> 0) of history. Rounds run every window_ms / 10
 * (RETENTION_MAX_ROUND_MS at most, 100 ms at least). Returns 0 and *out, or
 * ERR_NOMEM / ERR_INTERNAL.
 */
int retention_start(struct store *st, int64_t window_ms, struct retention **out);

/* Stops the thread (a batch under way finishes first) and frees r; NULL is a no-op. */
void retention_stop(struct retention *r);

/*
 * Parses a retention flag: a duration ("30d", "12h", "90s", "500ms"), or
 * "0" / "off" for none (*ms = 0). Returns 0 or ERR_PARSE.
 */
int retention_parse(const char *s, int64_t *ms);

#endif
