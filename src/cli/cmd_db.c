/*
 * fluxhook db: work on a store directly, without a server.
 *
 *   db migrate --db URL          applies the store's migrations and reports its
 *                                schema version (deploy pipelines run it
 *                                before rolling out new servers)
 *   db copy --from sqlite:PATH --to postgres://...
 *                                copies a whole SQLite store into an empty
 *                                PostgreSQL database (store_copy())
 *
 *   db rekey --db URL [--master-key-file F] --new-key-file N
 *                                seals every endpoint secret again under a
 *                                new master key while servers keep running
 *
 * Exit statuses as for every command: 0 done, 1 refused or failed, 2 bad
 * usage (an unknown URL scheme included), 3 a database could not be reached.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/masterkey.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"

static int db_run(int argc, char **argv);
static int db_migrate(struct cli_call *x);
static int db_copy(struct cli_call *x);
static int db_rekey(struct cli_call *x);

static const struct config_opt migrate_opts[] = {
    {"db", "URL", NULL, "the store: sqlite:PATH or postgres://... (or FLUXHOOK_DB)", 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt copy_opts[] = {
    {"from", "URL", NULL, "the SQLite store to copy: sqlite:PATH", 0, 0},
    {"to", "URL", NULL, "the empty PostgreSQL database to fill: postgres://...", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt rekey_opts[] = {
    {"db", "URL", NULL, "the store: sqlite:PATH or postgres://... (or FLUXHOOK_DB)", 1, 0},
    {"master-key-file", "FILE", NULL,
     "the key ring the servers read (default: FLUXHOOK_MASTER_KEY, else master.key beside the "
     "SQLite file)",
     1, 0},
    {"new-key-file", "FILE", NULL, "the new key (made, mode 0600, when the file does not exist)", 0,
     0},
    {"settle", "DURATION", "2s",
     "how long servers get to see the rewritten key file before the second pass", 0, 0},
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
    {.name = "copy",
     .usage = "--from sqlite:PATH --to postgres://...",
     .summary = "copy a SQLite store into an empty PostgreSQL database, checking the counts",
     .description =
         "The target's migrations run first. Then accounts, API keys, endpoints with their\n"
         "secrets, subscriptions, events, deliveries with their attempt logs, and idempotency\n"
         "keys are copied in one transaction, and it commits only when the row counts of every\n"
         "table and the deliveries by status match on both sides: all or nothing. A target\n"
         "that already holds data is refused. The source is only read, in one read\n"
         "transaction, so a server may still run on it, but what it does after the copy began\n"
         "is not copied: stop it first. Deliveries keep their status and schedule; one that\n"
         "was being delivered keeps its lease, so a worker of the new store takes it again\n"
         "once the lease runs out (at most --lease after the copy; it may then be delivered\n"
         "twice, as at-least-once delivery allows).",
     .opts = copy_opts,
     .run = db_copy},
    {.name = "rekey",
     .usage = "--db URL [--master-key-file FILE] --new-key-file FILE [--settle DURATION]",
     .summary = "seal every endpoint secret again under a new master key, servers running",
     .description =
         "Checks the current key against the store, rewrites the key file to hold the new key\n"
         "first and the old one after it (running servers read the file again when it changes:\n"
         "they seal with the new key and open both), seals every secret again under the new\n"
         "key, waits --settle and seals once more what a server sealed with the old key\n"
         "meanwhile, then rewrites the key file with the new key alone. Deliveries go on all\n"
         "along. With FLUXHOOK_MASTER_KEY instead of a file, give the servers the ring\n"
         "\"NEW,OLD\" first and the new key alone after (docs/operations.md).",
     .opts = rekey_opts,
     .run = db_rekey},
    {0},
};

const struct cli_cmd cmd_db = {
    .name = "db",
    .usage = "migrate|copy|rekey ...",
    .summary = "migrate a store, copy a SQLite store into PostgreSQL, or change its master key",
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

/* Prints the counts of both sides as a table; marks the rows that differ. */
static void
copy_print(const struct store_copy_report *r)
{
    size_t i;
    int s;

    printf("%-24s %12s %12s\n", "TABLE", "SOURCE", "TARGET");
    for (i = 0; i < r->ntables; i++)
        printf("%-24s %12lld %12lld%s\n", r->tables[i].name, (long long)r->tables[i].source,
               (long long)r->tables[i].target,
               r->tables[i].source != r->tables[i].target ? "  differs" : "");
    for (s = 0; s < DELIVERY__COUNT; s++) {
        char name[40];

        snprintf(name, sizeof(name), "deliveries %s", delivery_status_name(s));
        printf("%-24s %12lld %12lld%s\n", name, (long long)r->source_by_status[s],
               (long long)r->target_by_status[s],
               r->source_by_status[s] != r->target_by_status[s] ? "  differs" : "");
    }
}

static int
db_copy(struct cli_call *x)
{
    struct store_copy_report r;
    const char *from = client_opt(x, "from");
    const char *to = client_opt(x, "to");
    size_t i;
    int err, rc;

    memset(&r, 0, sizeof(r));
    if (from == NULL || to == NULL) {
        rc = client_usage(x, "--from and --to are required");
        goto out;
    }
    if (!url_is(from, "sqlite") || strcmp(from, "sqlite::memory:") == 0) {
        rc = client_usage(x, "--from: expected sqlite:PATH of a store file, got '%s'", from);
        goto out;
    }
    if (!url_is(to, "postgres")) {
        rc = client_usage(x, "--to: expected postgres://... (a PostgreSQL database), got '%s'", to);
        goto out;
    }
    err = store_copy(from, to, &r);
    if (err == 0) {
        copy_print(&r);
        printf("copied in %lld ms; the counts match; schema version %d\n", (long long)r.ms,
               r.schema_version);
        rc = CLI_OK;
        goto out;
    }
    if (err == ERR_CONFLICT) {
        fprintf(stderr, "fluxhook db copy: the target database is not empty:");
        for (i = 0; i < r.ntables; i++) {
            if (r.tables[i].target > 0)
                fprintf(stderr, " %s %lld", r.tables[i].name, (long long)r.tables[i].target);
        }
        fprintf(stderr, "%s%s\nnothing was copied: copy into a new, empty database\n",
                r.why[0] != '\0' ? "; " : "", r.why);
    } else {
        fprintf(stderr, "fluxhook db copy: %s\n", r.why[0] != '\0' ? r.why : err_str(err));
        if (r.ntables > 0 && err == ERR_STORE)
            copy_print(&r);
        fprintf(stderr, "nothing was copied\n");
    }
    rc = exit_status(err);
out:
    return rc;
}

static int
db_rekey(struct cli_call *x)
{
    struct masterkey_rekey_report r;
    struct store *st = NULL;
    const char *url = client_opt(x, "db");
    const char *file = client_opt(x, "master-key-file");
    const char *fresh = client_opt(x, "new-key-file");
    const char *settle = client_opt(x, "settle");
    char def[4096];
    int64_t settle_ms = 0;
    int err, rc;

    if (url == NULL || url[0] == '\0' || fresh == NULL || fresh[0] == '\0') {
        rc = client_usage(x, "--db (or FLUXHOOK_DB) and --new-key-file are required");
        goto out;
    }
    if (!url_is(url, "sqlite") && !url_is(url, "postgres")) {
        rc = client_usage(x, "--db: expected sqlite:PATH or postgres://..., got '%s'", url);
        goto out;
    }
    if (clock_parse_duration(settle, &settle_ms) != 0 || settle_ms > 600000) {
        rc =
            client_usage(x, "--settle: expected a duration up to 10m such as 2s, got '%s'", settle);
        goto out;
    }
    err = store_open(url, &st);
    if (err != 0) {
        fprintf(stderr, "fluxhook db rekey: cannot open the store: %s\n",
                err == ERR_UNAVAILABLE ? "the database cannot be reached" : err_str(err));
        rc = exit_status(err);
        goto out;
    }
    masterkey_default_path(url, "master.key", def, sizeof(def));
    err = masterkey_rekey(st, file, def[0] != '\0' ? def : NULL, fresh, settle_ms, &r);
    if (err != 0) {
        rc = exit_status(err);
        goto out;
    }
    if (r.new_file_made)
        printf("made a new key in %s (mode 0600)\n", fresh);
    printf("sealed %lld endpoint secret row%s again: master key %s -> %s\n", (long long)r.resealed,
           r.resealed == 1 ? "" : "s", r.old_kid, r.new_kid);
    if (r.file_rewritten)
        printf("%s now holds the new key alone\n", file != NULL ? file : def);
    else
        printf("FLUXHOOK_MASTER_KEY: give the servers the new key (%s) alone now\n", r.new_kid);
    rc = CLI_OK;
out:
    store_close(st);
    return rc;
}
