/*
 * Reads as the store grows: a history of DELIVERIES deliveries (fan-out 2)
 * and as many attempts, all inside the last day, is written straight into
 * the database (SQLite statements or PostgreSQL COPY, in one transaction),
 * then every statistics call, both series and every filtered list page of
 * the API is timed through the store interface (median of RUNS calls).
 * The store is opened before and after the rows go in, so the rollups of a
 * store that keeps them are built by its migration's backfill (SQLite) or
 * its triggers (PostgreSQL), as for a store upgraded with that history.
 *
 * Each row prints the fastest, median and slowest of the RUNS calls and the
 * median CPU time of this process per call (SQLite reads run on the caller's
 * thread: on a busy machine the CPU time is the figure that moves least).
 * -k keeps the SQLite file; -f FILE times the reads of a file kept so (with
 * the same -n) instead of writing a new one, so that two builds can be
 * timed over the same rows (the older build on a copy made first).
 *
 * usage: bench_store_reads [-n DELIVERIES] [-u URL | -k | -f FILE]
 *        (default: a new SQLite file, 1000000)
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define RUNS 7
#define ENDPOINTS 4
#define TYPES 5
#define DAY_MS (24 * 3600 * 1000LL)

static const char *const types[TYPES] = {
    "user.message", "user.created", "conversation.started", "conversation.ended", "agent.rare",
};

static char eps[ENDPOINTS][ID_MAX];
static char some_event[ID_MAX];
static char some_delivery[ID_MAX];

static double
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double
now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static void
die(const char *what, int err)
{
    fprintf(stderr, "bench_store_reads: %s: %s\n", what, err_str(err));
    exit(1);
}

/* One generated history row, as text for either backend. */
struct gen {
    int64_t t0;
    long n;        /* deliveries */
    unsigned seed;
};

static unsigned
rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

/* The status of delivery i: most delivered, some failed, pending and held. */
static const char *
status_of(unsigned r)
{
    unsigned k = r % 100;

    return k < 80 ? "delivered" : k < 85 ? "failed" : k < 95 ? "pending" : "held";
}

/* Calls row(ctx, table, line) for every row of the history: events, deliveries, attempts. */
static void
history(const struct gen *g, void (*row)(void *, int, const char *), void *ctx)
{
    char ev[ID_MAX], dl[ID_MAX], line[512];
    unsigned s = g->seed;
    long i;
    int k;

    for (i = 0; i < g->n / 2; i++) {
        int64_t at = g->t0 + (int64_t)((double)i / (double)(g->n / 2) * (double)(DAY_MS - 600000));
        const char *type = i % 100000 == 7 ? types[4] : types[rnd(&s) % 4];

        if (id_new_at("evt_", at, ev) != 0)
            die("making an id", ERR_INTERNAL);
        snprintf(line, sizeof(line), "%s\tacct_bench\t%s\t2026-01-01T00:00:00Z\t{}\t%lld\t2", ev,
                 type, (long long)at);
        row(ctx, 0, line);
        if (i == g->n / 4)
            snprintf(some_event, sizeof(some_event), "%s", ev);
        for (k = 0; k < 2; k++) {
            unsigned r = rnd(&s);
            const char *st = status_of(r);
            const char *ep = eps[(i * 2 + k) % 3]; /* eps[3] gets none */
            int code = strcmp(st, "delivered") == 0 ? 200 : strcmp(st, "failed") == 0 ? 410 : 503;

            if (id_new_at("dlv_", at, dl) != 0)
                die("making an id", ERR_INTERNAL);
            if (i == g->n / 4)
                snprintf(some_delivery, sizeof(some_delivery), "%s", dl);
            snprintf(line, sizeof(line), "%s\tacct_bench\t%s\t%s\t%s\t%s\t1\t%lld\t%lld\t%lld\t%d",
                     dl, ev, ep, type, st, (long long)at, (long long)at, (long long)at, code);
            row(ctx, 1, line);
            snprintf(line, sizeof(line), "%s\t1\tacct_bench\t%s\t%lld\t%d\t%u\t%s", dl, ep,
                     (long long)(at + 5), code, 1 + rnd(&s) % 400,
                     strcmp(st, "held") == 0 ? "held" : st);
            row(ctx, 2, line);
        }
    }
}

static const char *const pg_copy[3] = {
    "COPY events (id, account_id, type, timestamp, body, created_at, deliveries) FROM STDIN",
    "COPY deliveries (id, account_id, event_id, endpoint_id, event_type, status, attempts_made, "
    "next_attempt_at, created_at, updated_at, last_status_code) FROM STDIN",
    "COPY attempts (delivery_id, n, account_id, endpoint_id, at, status_code, duration_ms, "
    "outcome) FROM STDIN",
};

static const char *const sq_insert[3] = {
    "INSERT INTO events (id, account_id, type, timestamp, body, created_at, deliveries) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "INSERT INTO deliveries (id, account_id, event_id, endpoint_id, event_type, status, "
    "attempts_made, next_attempt_at, created_at, updated_at, last_status_code) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    "INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, "
    "duration_ms, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
};

struct sq_ctx {
    sqlite3 *db;
    sqlite3_stmt *stmt[3];
};

static void
sq_row(void *arg, int table, const char *line)
{
    struct sq_ctx *c = arg;
    sqlite3_stmt *stmt = c->stmt[table];
    char buf[512], *f, *save = NULL;
    int col = 1;

    snprintf(buf, sizeof(buf), "%s", line);
    for (f = strtok_r(buf, "\t", &save); f != NULL; f = strtok_r(NULL, "\t", &save))
        sqlite3_bind_text(stmt, col++, f, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        fprintf(stderr, "bench_store_reads: insert: %s\n", sqlite3_errmsg(c->db));
        exit(1);
    }
    sqlite3_reset(stmt);
}

/*
 * Writes the history into the SQLite file, then has the next store_open()
 * apply the rollups' migration again (if this version has one) so that its
 * backfill counts the rows; the indexes it creates go with it.
 */
static void
fill_sqlite(const char *path, const struct gen *g)
{
    struct sq_ctx c;
    int i;

    if (sqlite3_open(path, &c.db) != SQLITE_OK)
        die("opening the file", ERR_STORE);
    sqlite3_exec(c.db, "BEGIN", NULL, NULL, NULL);
    for (i = 0; i < 3; i++) {
        if (sqlite3_prepare_v2(c.db, sq_insert[i], -1, &c.stmt[i], NULL) != SQLITE_OK)
            die(sqlite3_errmsg(c.db), ERR_STORE);
    }
    history(g, sq_row, &c);
    for (i = 0; i < 3; i++)
        sqlite3_finalize(c.stmt[i]);
    sqlite3_exec(c.db,
                 "UPDATE delivery_counts SET n = (SELECT count(*) FROM deliveries d "
                 "WHERE d.status = delivery_counts.status)",
                 NULL, NULL, NULL);
    if (sqlite3_exec(c.db,
                     "DROP TABLE stat_rollups; DROP TABLE IF EXISTS stat_latency; "
                     "DROP INDEX deliveries_endpoint_status; DROP INDEX IF EXISTS deliveries_endpoint_type; "
                     "DELETE FROM schema_version WHERE name IN ('stat_rollups', "
                     "'type_status_lists', 'latency_in_rollups')",
                     NULL, NULL, NULL) != SQLITE_OK)
        printf("(no rollups in this version: %s)\n", sqlite3_errmsg(c.db));
    sqlite3_exec(c.db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(c.db);
}

struct pg_ctx {
    PGconn *conn;
    int table;
};

/* Ends the COPY under way, if any, and checks how it went. */
static void
pg_copy_end(struct pg_ctx *c)
{
    PGresult *r;

    if (c->table < 0)
        return;
    if (PQputCopyEnd(c->conn, NULL) != 1)
        die(PQerrorMessage(c->conn), ERR_STORE);
    while ((r = PQgetResult(c->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die(PQresultErrorMessage(r), ERR_STORE);
        PQclear(r);
    }
    c->table = -1;
}

static void
pg_row(void *arg, int table, const char *line)
{
    struct pg_ctx *c = arg;
    PGresult *r;
    char buf[520];
    int len;

    if (table != c->table) {
        pg_copy_end(c);
        r = PQexec(c->conn, pg_copy[table]);
        if (PQresultStatus(r) != PGRES_COPY_IN)
            die(PQresultErrorMessage(r), ERR_STORE);
        PQclear(r);
        c->table = table;
    }
    len = snprintf(buf, sizeof(buf), "%s\n", line);
    if (PQputCopyData(c->conn, buf, len) != 1)
        die(PQerrorMessage(c->conn), ERR_STORE);
}

/* The history goes to one temporary file per table first (its ids are made once). */
static void
file_row(void *arg, int table, const char *line)
{
    FILE **fs = arg;

    fprintf(fs[table], "%s\n", line);
}

/* Writes the history into PostgreSQL in one transaction; its triggers keep the rollups. */
static void
fill_pg(const char *url, const struct gen *g)
{
    struct pg_ctx c = { .table = -1 };
    FILE *fs[3];
    char line[512];
    PGresult *r;
    int t;

    for (t = 0; t < 3; t++) {
        fs[t] = tmpfile();
        if (fs[t] == NULL)
            die("making a temporary file", ERR_INTERNAL);
    }
    history(g, file_row, fs);
    c.conn = PQconnectdb(url);
    if (PQstatus(c.conn) != CONNECTION_OK)
        die(PQerrorMessage(c.conn), ERR_STORE);
    PQclear(PQexec(c.conn, "BEGIN"));
    for (t = 0; t < 3; t++) {
        rewind(fs[t]);
        while (fgets(line, sizeof(line), fs[t]) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            pg_row(&c, t, line);
        }
        fclose(fs[t]);
    }
    pg_copy_end(&c);
    r = PQexec(c.conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(PQresultErrorMessage(r), ERR_STORE);
    PQclear(r);
    /* As autovacuum would after such a load: statistics and the visibility map. */
    PQclear(PQexec(c.conn, "VACUUM ANALYZE"));
    PQfinish(c.conn);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

enum call {
    CALL_STATS,  /* an API stats answer: the hour and the day */
    CALL_SERIES, /* arg: the bucket */
    CALL_LIST,   /* deliveries */
    CALL_EVENTS, /* events (of f.event_type, if set) */
    CALL_ATTEMPTS,
};

struct row {
    const char *name;
    enum call call;
    const char *ep;
    int64_t bucket;
    struct delivery_filter f;
};

static int
call(struct store *st, const struct row *r, size_t *found)
{
    int64_t now = clock_now_ms();
    struct stats s;
    struct stats_bucket *bs = NULL;
    struct delivery *ds = NULL;
    struct event *evs = NULL;
    struct attempt *as = NULL;
    size_t n = 0;
    int err = 0;

    switch (r->call) {
    case CALL_STATS:
        err = store_stats(st, "acct_bench", r->ep, now - 3600 * 1000LL, &s);
        if (err == 0)
            err = store_stats(st, "acct_bench", r->ep, now - DAY_MS, &s);
        n = (size_t)(s.attempts);
        break;
    case CALL_SERIES:
        err = store_stats_series(st, "acct_bench", r->ep,
                                 (now / r->bucket - (r->bucket == 60000 ? 59 : 23)) * r->bucket,
                                 r->bucket, now, &bs, &n);
        free(bs);
        break;
    case CALL_LIST:
        err = store_delivery_list(st, "acct_bench", &r->f, &ds, &n);
        delivery_list_free(ds, n);
        break;
    case CALL_EVENTS:
        err = store_event_list(st, "acct_bench", r->f.event_type, NULL, 50, &evs, &n);
        event_list_free(evs, n);
        break;
    case CALL_ATTEMPTS:
        err = store_attempt_list(st, some_delivery, &as, &n);
        attempt_list_free(as, n);
        break;
    }
    *found = n;
    return err;
}

/* The one text a query of db returns (bound to arg, if any) into out. */
static void
sq_text(sqlite3 *db, const char *sql, const char *arg, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db), ERR_STORE);
    if (arg != NULL)
        sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_text(stmt, 0) == NULL)
        die(sql, ERR_NOTFOUND);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
}

/* The ids the rows name, read from a file an earlier run (-k) wrote with these -n. */
static void
reuse_sqlite(const char *path, const struct gen *g)
{
    sqlite3 *db = NULL;
    char sql[256];
    int i;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("opening the file", ERR_STORE);
    for (i = 0; i < ENDPOINTS; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT id FROM endpoints e WHERE account_id = 'acct_bench' ORDER BY NOT EXISTS "
                 "(SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id), id LIMIT 1 OFFSET %d",
                 i);
        sq_text(db, sql, NULL, eps[i], sizeof(eps[i]));
    }
    snprintf(sql, sizeof(sql), "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET %ld", g->n / 4);
    sq_text(db, sql, NULL, some_event, sizeof(some_event));
    sq_text(db, "SELECT max(id) FROM deliveries WHERE event_id = ?1", some_event, some_delivery,
            sizeof(some_delivery));
    sqlite3_close(db);
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *reuse = NULL;
    char dir[] = "/tmp/fluxhook-bench-XXXXXX", path[128], squrl[160];
    struct gen g = { .n = 1000000, .seed = 7 };
    struct store *st = NULL;
    struct account acct = { .id = "acct_bench", .name = "bench" };
    double t0, c0, fill_ms = 0, open_ms, ms[RUNS], cpu[RUNS];
    int opt, i, err, keep = 0;
    size_t k, found = 0;

    while ((opt = getopt(argc, argv, "n:u:kf:")) != -1) {
        if (opt == 'n')
            g.n = atol(optarg);
        else if (opt == 'u')
            url = optarg;
        else if (opt == 'k')
            keep = 1;
        else if (opt == 'f')
            reuse = optarg;
        else
            return 2;
    }
    if (reuse != NULL) {
        snprintf(squrl, sizeof(squrl), "sqlite:%s", reuse);
        url = reuse = squrl;
        reuse_sqlite(url + 7, &g);
    } else if (url == NULL) {
        if (mkdtemp(dir) == NULL)
            return 1;
        snprintf(path, sizeof(path), "%s/reads.db", dir);
        snprintf(squrl, sizeof(squrl), "sqlite:%s", path);
        url = squrl;
    }
    g.t0 = clock_now_ms() - DAY_MS + 300000;
    if (reuse != NULL)
        goto fill_done;
    err = store_open(url, &st);
    if (err != 0)
        die("opening the store", err);
    if ((err = store_account_insert(st, &acct)) != 0)
        die("inserting the account", err);
    for (i = 0; i < ENDPOINTS; i++) {
        struct endpoint ep = { .account_id = "acct_bench", .url = "https://example.test/hook",
                               .description = "", .event_types = "",
                               .secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" };

        id_new("ep_", ep.id);
        snprintf(eps[i], sizeof(eps[i]), "%s", ep.id);
        if ((err = store_endpoint_insert(st, &ep)) != 0)
            die("inserting an endpoint", err);
    }
    store_close(st);
    t0 = now_ms();
    if (strncmp(url, "sqlite:", 7) == 0)
        fill_sqlite(url + 7, &g);
    else
        fill_pg(url, &g);
    fill_ms = now_ms() - t0;
fill_done:
    t0 = now_ms();
    if ((err = store_open(url, &st)) != 0)
        die("reopening the store", err);
    open_ms = now_ms() - t0;

    {
        int64_t t = clock_now_ms();
        const struct row fixed[] = {
            { "GET /v1/stats (hour + day)", CALL_STATS, NULL, 0, { 0 } },
            { "GET /v1/endpoints/{id}/stats", CALL_STATS, eps[0], 0, { 0 } },
            { "GET /v1/stats/series 1h", CALL_SERIES, NULL, 60000, { 0 } },
            { "GET /v1/stats/series 24h", CALL_SERIES, NULL, 3600000, { 0 } },
            { "series 1h, one endpoint", CALL_SERIES, eps[1], 60000, { 0 } },
            { "series 24h, one endpoint", CALL_SERIES, eps[1], 3600000, { 0 } },
            { "deliveries, oldest first", CALL_LIST, NULL, 0, { .status = -1, .limit = 50 } },
            { "deliveries ?after (mid-history)", CALL_LIST, NULL, 0, { .status = -1, .after = some_delivery, .limit = 50, .descending = 1 } },
            { "deliveries ?status=failed", CALL_LIST, NULL, 0, { .status = DELIVERY_FAILED, .limit = 50, .descending = 1 } },
            { "deliveries ?status=delivering (none)", CALL_LIST, NULL, 0, { .status = DELIVERY_DELIVERING, .limit = 50, .descending = 1 } },
            { "deliveries ?endpoint_id (none)", CALL_LIST, NULL, 0, { .endpoint_id = eps[3], .status = -1, .limit = 50, .descending = 1 } },
            { "deliveries ?event=rare", CALL_LIST, NULL, 0, { .event_type = "agent.rare", .status = -1, .limit = 50, .descending = 1 } },
            { "deliveries ?event=rare&status=delivered", CALL_LIST, NULL, 0, { .event_type = "agent.rare", .status = DELIVERY_DELIVERED, .limit = 50, .descending = 1 } },
            { "deliveries ?event&status=failed", CALL_LIST, NULL, 0, { .event_type = "user.created", .status = DELIVERY_FAILED, .limit = 50, .descending = 1 } },
            { "deliveries ?endpoint_id&event&status=failed", CALL_LIST, NULL, 0, { .endpoint_id = eps[1], .event_type = "user.created", .status = DELIVERY_FAILED, .limit = 50, .descending = 1 } },
            { "deliveries ?event_id", CALL_LIST, NULL, 0, { .event_id = some_event, .status = -1, .limit = 50, .descending = 1 } },
            { "deliveries ?event_id&endpoint_id", CALL_LIST, NULL, 0, { .event_id = some_event, .endpoint_id = eps[0], .status = -1, .limit = 50, .descending = 1 } },
            { "deliveries ?event_id&event&status", CALL_LIST, NULL, 0, { .event_id = some_event, .event_type = "user.message", .status = DELIVERY_HELD, .limit = 50, .descending = 1 } },
            { "events", CALL_EVENTS, NULL, 0, { 0 } },
            { "events ?event=rare", CALL_EVENTS, NULL, 0, { .event_type = "agent.rare" } },
            { "attempts of a delivery", CALL_ATTEMPTS, NULL, 0, { 0 } },
        };
        struct row rows[sizeof(fixed) / sizeof(fixed[0]) + 16];
        size_t nrows = 0;
        unsigned mask;

        /*
         * Every combination of the list's filters endpoint_id, event,
         * status and since&until (an hour), newest first, with the values
         * that cost most when an index does not hold them together: the
         * commonest type and a status none of them has (held deliveries of
         * enabled endpoints are pending once the store reopens).
         */
        for (mask = 0; mask < 16; mask++) {
            static char names[16][80];
            struct row *r = &rows[nrows++];

            memset(r, 0, sizeof(*r));
            r->call = CALL_LIST;
            r->f.status = -1;
            r->f.limit = 50;
            r->f.descending = 1;
            snprintf(names[mask], sizeof(names[mask]), "deliveries%s%s%s%s%s",
                     mask == 0 ? " (no filter)" : " ?", mask & 1 ? "endpoint_id&" : "",
                     mask & 2 ? "event&" : "", mask & 4 ? "status=held&" : "",
                     mask & 8 ? "since&until&" : "");
            names[mask][strlen(names[mask]) - (mask != 0)] = '\0';
            r->name = names[mask];
            if (mask & 1)
                r->f.endpoint_id = eps[0];
            if (mask & 2)
                r->f.event_type = types[0];
            if (mask & 4)
                r->f.status = DELIVERY_HELD;
            if (mask & 8) {
                r->f.created_from = t - 3 * 3600000LL;
                r->f.created_before = t - 2 * 3600000LL;
            }
        }
        memcpy(&rows[nrows], fixed, sizeof(fixed));
        nrows += sizeof(fixed) / sizeof(fixed[0]);

        printf("store_reads: %s, %ld deliveries and %ld attempts in the last day "
               "(written in %.1f s, store opened in %.0f ms)\n",
               strncmp(url, "sqlite:", 7) == 0 ? "sqlite" : "postgres", g.n, g.n, fill_ms / 1e3,
               open_ms);
        printf("%-52s %7s %7s %7s %7s %8s\n", "call", "min ms", "median", "max", "CPU ms",
               "rows");
        for (k = 0; k < nrows; k++) {
            for (i = 0; i < RUNS; i++) {
                t0 = now_ms();
                c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
                err = call(st, &rows[k], &found);
                cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
                ms[i] = now_ms() - t0;
                if (err != 0)
                    die(rows[k].name, err);
            }
            qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
            qsort(cpu, RUNS, sizeof(cpu[0]), cmp_double);
            printf("%-52s %7.2f %7.2f %7.2f %7.2f %8zu\n", rows[k].name, ms[0], ms[RUNS / 2],
                   ms[RUNS - 1], cpu[RUNS / 2], found);
        }
    }
    store_close(st);
    if (url == squrl && keep && reuse == NULL)
        printf("kept %s\n", path);
    else if (url == squrl && reuse == NULL) {
        unlink(path);
        snprintf(path, sizeof(path), "%s/reads.db-wal", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/reads.db-shm", dir);
        unlink(path);
        rmdir(dir);
    }
    return 0;
}
