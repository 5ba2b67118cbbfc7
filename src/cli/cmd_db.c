/*
 * fluxhook db: work on a store directly, without a server.
 *
 *   db migrate --db URL          applies the store's migrations and reports its
 *                                schema version (deploy pipelines run it
 *                                before rolling out new servers)
 *
 * Exit statuses as for every command: 0 done, 1 refused or failed, 2 bad
 * usage (an unknown URL scheme included), 3 a database could not be reached.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "store/store.h"
#include "util/err.h"

static int db_run(int argc, char **argv);
static int db_migrate(struct cli_call *x);

static const struct config_opt migrate_opts[] = {
    {"db", "URL", NULL, "the store: sqlite:PATH or postgres://... (or FLUXHOOK_DB)", 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub db_subs[] = {
    {.name = "migrate",
     .usage = "--db URL",
     .summary = "apply the store's migrations and print its schema version",
     .description =
         "Deploy pipelines run it before rolling out servers of a new version. On PostgreSQL\n"
         "the migrations run once, under a lock, however many processes start together; a\n"
         "store that is already current is left as it is (nothing to apply).",
     .opts = migrate_opts,
     .run = db_migrate},
    {0},
};

const struct cli_cmd cmd_db = {
    .name = "db",
    .usage = "migrate ...",
    .summary = "migrate a store",
    .run = db_run,
    .subs = db_subs,
    .local = 1,
};

static int
db_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_db, argc, argv);
}

/* 1 when url names a store of the scheme ("sqlite" or "postgres"), else 0. */
static int
url_is(const char *url, const char *scheme)
{
    if (strcmp(scheme, "sqlite") == 0)
        return strncmp(url, "sqlite:", 7) == 0 && url[7] != '\0';
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

/* The exit status for a store error (its reason already logged or printed). */
static int
exit_status(int err)
{
    if (err == ERR_INVAL)
        return CLI_USAGE;
    if (err == ERR_UNAVAILABLE)
        return CLI_UNREACHABLE;
    return CLI_REFUSED;
}

static int
db_migrate(struct cli_call *x)
{
    struct store *st = NULL;
    const char *url = client_opt(x, "db");
    int version = 0, applied = 0, err, rc;

    if (url == NULL || url[0] == '\0') {
        rc = client_usage(x, "--db is required (or FLUXHOOK_DB)");
        goto out;
    }
    if (!url_is(url, "sqlite") && !url_is(url, "postgres")) {
        rc = client_usage(x, "--db: expected sqlite:PATH or postgres://..., got '%s'", url);
        goto out;
    }
    err = store_open(url, &st);
    if (err != 0) {
        fprintf(stderr, "fluxhook db migrate: cannot open the store: %s\n",
                err == ERR_UNAVAILABLE ? "the database cannot be reached" : err_str(err));
        rc = exit_status(err);
        goto out;
    }
    store_schema(st, &version, &applied);
    if (applied == 0)
        printf("schema version %d: up to date, nothing to apply\n", version);
    else
        printf("schema version %d: applied %d migration%s\n", version, applied,
               applied == 1 ? "" : "s");
    rc = CLI_OK;
out:
    store_close(st);
    return rc;
}
