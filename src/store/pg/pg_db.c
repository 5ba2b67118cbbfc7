/*
 * PostgreSQL backend: placeholder until the libpq implementation lands; it
 * refuses to open so that a postgres:// URL fails clearly at start.
 */
#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"

static int
pg_open(struct store *st, const char *url)
{
    (void)st;
    (void)url;
    log_warnx("store: postgres support is not built yet");
    return ERR_INVAL;
}

const struct store_ops store_pg_ops = {
    .scheme = "postgres",
    .open = pg_open,
};
