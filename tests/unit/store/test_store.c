/*
 * The store against a real database, once per backend: FLUXHOOK_TEST_STORE
 * is "sqlite" (the default: a file in a temporary directory per test) or
 * "postgres" (a new database per test in the server at FLUXHOOK_TEST_PG_URL,
 * dropped after it; tests/run.py starts one). The same tests run on both; the
 * few about one backend's own behaviour skip on the other.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../torture.h"
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/rollup.h"
#include "store/sqlite/sq_int.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"
#include "util/keyring.h"

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)

struct fx {
    int sqlite;      /* else postgres */
    char dir[64];    /* sqlite: the temporary directory */
    char path[128];  /* sqlite: the database file */
    char dbname[64]; /* postgres: the database of this test */
    char url[512];
    struct store *st;
};

/* 1: sqlite, 0: postgres, -1: FLUXHOOK_TEST_STORE names neither. */
static int
backend_sqlite(void)
{
    const char *kind = getenv("FLUXHOOK_TEST_STORE");

    if (kind == NULL || kind[0] == '\0' || strcmp(kind, "sqlite") == 0)
        return 1;
    if (strcmp(kind, "postgres") == 0)
        return 0;
    return -1;
}

/* $TMPDIR (tests/run.py gives the allocation-failure runs a tmpfs), else /tmp. */
static const char *
tmp_dir(void)
{
    const char *d = getenv("TMPDIR");

    return d != NULL && d[0] != '\0' && strlen(d) < 32 ? d : "/tmp";
}

static void
rm_tree(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* url (postgres://[user@]host[:port][/db][?params]) with its database set to db. */
static int
pg_url_with_db(const char *url, const char *db, char *out, size_t len)
{
    const char *auth = strstr(url, "://");
    const char *end, *query;
    int n;

    if (auth == NULL)
        return -1;
    auth += 3;
    end = auth + strcspn(auth, "/?");
    query = strchr(end, '?');
    n = snprintf(out, len, "%.*s/%s%s", (int)(end - url), url, db, query != NULL ? query : "");
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
pg_notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/*
 * Runs sql (one statement, or several as one implicit transaction) on a
 * connection of its own to the database at url; 0 or -1 (printed).
 */
static int
pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r;
    int ok;

    if (PQstatus(c) != CONNECTION_OK) {
        print_error("postgres: cannot connect to %s: %s", url, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, pg_notice_quiet, NULL); /* "does not exist, skipping", ... */
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        print_error("postgres: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* The maintenance URL of the test server; NULL (printed) when unset. */
static const char *
pg_admin_url(void)
{
    const char *url = getenv("FLUXHOOK_TEST_PG_URL");

    if (url == NULL || url[0] == '\0') {
        print_error("FLUXHOOK_TEST_STORE=postgres needs FLUXHOOK_TEST_PG_URL "
                    "(tests/run.py starts a server; or python3 tests/pgcluster.py start)\n");
        return NULL;
    }
    return url;
}

/* Creates this test's database and sets fx->url to it. */
static int
pg_db_create(struct fx *fx)
{
    static int counter;
    const char *admin = pg_admin_url();
    char sql[128];

    if (admin == NULL)
        return -1;
    snprintf(fx->dbname, sizeof(fx->dbname), "fh_unit_%ld_%d", (long)getpid(), ++counter);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->dbname);
    if (pg_exec(admin, sql) != 0)
        return -1;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->dbname);
    if (pg_exec(admin, sql) != 0) {
        fx->dbname[0] = '\0';
        return -1;
    }
    return pg_url_with_db(admin, fx->dbname, fx->url, sizeof(fx->url));
}

/* Drops this test's database, ending any session still on it. */
static int
pg_db_drop(struct fx *fx)
{
    const char *admin = pg_admin_url();
    char sql[128];

    if (fx->dbname[0] == '\0')
        return 0;
    if (admin == NULL)
        return -1;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->dbname);
    fx->dbname[0] = '\0';
    return pg_exec(admin, sql);
}

/* Closes and removes everything the fixture made; 0 or -1. */
static int
fx_free(struct fx *fx)
{
    int ret = 0;

    store_close(fx->st);
    fx->st = NULL;
    if (fx->sqlite && fx->dir[0] != '\0')
        rm_tree(fx->dir);
    if (!fx->sqlite && pg_db_drop(fx) != 0)
        ret = -1;
    free(fx);
    return ret;
}

/* A new empty store of the backend under test, with accounts acct_a and acct_b. */
static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct account a = { 0 };

    if (fx == NULL)
        return -1;
    fx->sqlite = backend_sqlite();
    if (fx->sqlite < 0) {
        print_error("FLUXHOOK_TEST_STORE: sqlite or postgres, not '%s'\n",
                    getenv("FLUXHOOK_TEST_STORE"));
        fx->sqlite = 1;
        goto fail;
    }
    if (fx->sqlite) {
        snprintf(fx->dir, sizeof(fx->dir), "%s/fluxhook-store-XXXXXX", tmp_dir());
        if (mkdtemp(fx->dir) == NULL) {
            fx->dir[0] = '\0';
            goto fail;
        }
        snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
        snprintf(fx->url, sizeof(fx->url), "sqlite:%s", fx->path);
    } else if (pg_db_create(fx) != 0) {
        goto fail;
    }
    if (store_open(fx->url, &fx->st) != 0) {
        print_error("store_open(%s) failed\n", fx->url);
        goto fail;
    }
    if (store_is_empty(fx->st) != 1)
        goto fail;
    a.name = "A";
    snprintf(a.id, sizeof(a.id), "acct_a");
    if (store_account_insert(fx->st, &a) != 0)
        goto fail;
    a.name = "B";
    snprintf(a.id, sizeof(a.id), "acct_b");
    if (store_account_insert(fx->st, &a) != 0)
        goto fail;
    *state = fx;
    return 0;
fail:
    fx_free(fx);
    return -1;
}

/*
 * The one number a query returns (-1 when it returns no row), read on a
 * connection of its own: with sqlite3 on the file, with libpq on postgres.
 */
static int64_t
sql_count(const struct fx *fx, const char *sql)
{
    int64_t v = -1;

    if (fx->sqlite) {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        int rc = sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL);

        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
            print_error("sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
        if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
            v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        assert_int_equal(rc, SQLITE_OK);
    } else {
        PGconn *c = PQconnectdb(fx->url);
        PGresult *r = NULL;
        ExecStatusType rs = PGRES_FATAL_ERROR;

        if (PQstatus(c) == CONNECTION_OK) {
            r = PQexec(c, sql);
            rs = PQresultStatus(r);
        }
        if (rs != PGRES_TUPLES_OK)
            print_error("postgres: %s: %s", sql, PQerrorMessage(c));
        else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        assert_int_equal(rs, PGRES_TUPLES_OK);
    }
    return v;
}

/* Runs the change sql on a connection of its own, as sql_count() reads. */
static void
sql_exec(const struct fx *fx, const char *sql)
{
    if (fx->sqlite) {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE, NULL);

        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            print_error("sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_close(db);
        assert_int_equal(rc, SQLITE_OK);
    } else {
        PGconn *c = PQconnectdb(fx->url);
        PGresult *r = PQexec(c, sql);
        ExecStatusType rs = PQresultStatus(r);

        if (rs != PGRES_COMMAND_OK)
            print_error("postgres: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        assert_int_equal(rs, PGRES_COMMAND_OK);
    }
}

/* Every integer of sql's rows, row by row, into out[0..max); returns how many. */
static size_t
sql_ints(const struct fx *fx, const char *sql, int64_t *out, size_t max)
{
    size_t n = 0;

    if (fx->sqlite) {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        int rc = sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), i;

        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
            print_error("sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
        while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
            for (i = 0; i < sqlite3_column_count(stmt) && n < max; i++)
                out[n++] = sqlite3_column_int64(stmt, i);
        }
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        assert_int_equal(rc, SQLITE_OK);
    } else {
        PGconn *c = PQconnectdb(fx->url);
        PGresult *r = NULL;
        ExecStatusType rs = PGRES_FATAL_ERROR;
        int row, i;

        if (PQstatus(c) == CONNECTION_OK) {
            r = PQexec(c, sql);
            rs = PQresultStatus(r);
        }
        if (rs != PGRES_TUPLES_OK)
            print_error("postgres: %s: %s", sql, PQerrorMessage(c));
        for (row = 0; rs == PGRES_TUPLES_OK && row < PQntuples(r); row++) {
            for (i = 0; i < PQnfields(r) && n < max; i++)
                out[n++] = PQgetisnull(r, row, i) ? 0 : strtoll(PQgetvalue(r, row, i), NULL, 10);
        }
        PQclear(r);
        PQfinish(c);
        assert_int_equal(rs, PGRES_TUPLES_OK);
    }
    return n;
}

/* The nearest-rank percentile p of the n sorted values vs. */
static int64_t
exact_rank(const int64_t *vs, size_t n, int p)
{
    int64_t r = ((int64_t)p * (int64_t)n + 99) / 100;

    if (n == 0)
        return -1;
    if (r < 1)
        r = 1;
    return vs[r - 1];
}

/* A percentile read from the rollups must fall in the exact value's bucket. */
static void
rank_check(int64_t got, const int64_t *vs, size_t n, int p)
{
    int64_t want = exact_rank(vs, n, p);

    if (want < 0) {
        assert_int_equal(got, -1);
        return;
    }
    if (rollup_bucket(got) != rollup_bucket(want))
        print_error("p%d: rollups say %lld, the rows %lld\n", p, (long long)got, (long long)want);
    assert_int_equal(rollup_bucket(got), rollup_bucket(want));
}

#define CHECK_MAX_ROWS 200000

/* The SQL condition selecting the rows of acct (and of endpoint ep, unless NULL). */
static void
where_of(char *out, size_t size, const char *acct, const char *ep)
{
    if (ep != NULL)
        snprintf(out, size, "account_id = '%s' AND endpoint_id = '%s'", acct, ep);
    else
        snprintf(out, size, "account_id = '%s'", acct);
}

/*
 * store_stats() of acct (and endpoint ep, or NULL) since `since`, read from
 * the rollups, against a count of the rows themselves.
 */
static void
stats_check(struct fx *fx, const char *acct, const char *ep, int64_t since)
{
    struct stats s;
    char where[1024], sql[2048];
    int64_t *vs = malloc(CHECK_MAX_ROWS * sizeof(*vs));
    size_t n;
    int i;

    assert_non_null(vs);
    where_of(where, sizeof(where), acct, ep);
    assert_int_equal(store_stats(fx->st, acct, ep, since, &s), 0);
    for (i = 0; i < DELIVERY__COUNT; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM deliveries WHERE %s AND created_at >= %lld AND status = '%s'",
                 where, (long long)since, delivery_status_name((enum delivery_status)i));
        if (s.by_status[i] != sql_count(fx, sql))
            print_error("%s since %lld: %lld %s, the rows say %lld\n", ep != NULL ? ep : acct,
                        (long long)since, (long long)s.by_status[i],
                        delivery_status_name((enum delivery_status)i),
                        (long long)sql_count(fx, sql));
        assert_int_equal(s.by_status[i], sql_count(fx, sql));
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM attempts WHERE %s AND at >= %lld", where,
             (long long)since);
    assert_int_equal(s.attempts, sql_count(fx, sql));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM attempts WHERE %s AND at >= %lld "
             "AND status_code BETWEEN 200 AND 299",
             where, (long long)since);
    assert_int_equal(s.attempts_ok, sql_count(fx, sql));
    snprintf(sql, sizeof(sql),
             "SELECT duration_ms FROM attempts WHERE %s AND at >= %lld ORDER BY duration_ms",
             where, (long long)since);
    n = sql_ints(fx, sql, vs, CHECK_MAX_ROWS);
    rank_check(s.p50_ms, vs, n, 50);
    rank_check(s.p95_ms, vs, n, 95);
    rank_check(s.p99_ms, vs, n, 99);
    free(vs);
}

/* store_stats_series() against the rows, bucket by bucket. */
static void
series_check(struct fx *fx, const char *acct, const char *ep, int64_t since, int64_t bucket_ms,
             int64_t now)
{
    struct stats_bucket *bs = NULL;
    char where[1024], sql[2048];
    int64_t *vs = malloc(CHECK_MAX_ROWS * sizeof(*vs)), *ds;
    size_t nb = 0, n, i, j, k;

    assert_non_null(vs);
    ds = malloc(CHECK_MAX_ROWS * sizeof(*ds));
    assert_non_null(ds);
    where_of(where, sizeof(where), acct, ep);
    assert_int_equal(store_stats_series(fx->st, acct, ep, since, bucket_ms, now, &bs, &nb), 0);
    /* Per attempt: its bucket, 2xx, failed, retried, duration; by bucket and duration. */
    snprintf(sql, sizeof(sql),
             "SELECT (at - %lld) / %lld, CASE WHEN status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 "
             "END, CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END, "
             "CASE WHEN outcome IN ('pending', 'held') THEN 1 ELSE 0 END, duration_ms "
             "FROM attempts WHERE %s AND at >= %lld AND at < %lld ORDER BY 1, 5",
             (long long)since, (long long)bucket_ms, where, (long long)since,
             (long long)(since + (int64_t)nb * bucket_ms));
    n = sql_ints(fx, sql, vs, CHECK_MAX_ROWS) / 5;
    for (i = 0, j = 0; i < nb; i++) {
        int64_t ok = 0, failed = 0, retried = 0;

        for (k = 0; j < n && vs[j * 5] == (int64_t)i; j++, k++) {
            ok += vs[j * 5 + 1];
            failed += vs[j * 5 + 2];
            retried += vs[j * 5 + 3];
            ds[k] = vs[j * 5 + 4];
        }
        assert_int_equal(bs[i].start, since + (int64_t)i * bucket_ms);
        assert_int_equal(bs[i].delivered, ok);
        assert_int_equal(bs[i].failed, failed);
        assert_int_equal(bs[i].retried, retried);
        rank_check(bs[i].p50_ms, ds, k, 50);
        rank_check(bs[i].p95_ms, ds, k, 95);
    }
    free(bs);
    free(ds);
    free(vs);
}

/* delivery_counts (kept by the writer) must match a count of the rows. */
static void
counts_check(struct fx *fx)
{
    static const char *const sql[DELIVERY__COUNT] = {
        "SELECT count(*) FROM deliveries WHERE status = 'pending'",
        "SELECT count(*) FROM deliveries WHERE status = 'delivering'",
        "SELECT count(*) FROM deliveries WHERE status = 'delivered'",
        "SELECT count(*) FROM deliveries WHERE status = 'failed'",
        "SELECT count(*) FROM deliveries WHERE status = 'held'",
    };
    int64_t counts[DELIVERY__COUNT];
    int i;

    if (fx->st == NULL)
        return;
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    for (i = 0; i < DELIVERY__COUNT; i++)
        assert_int_equal(counts[i], sql_count(fx, sql[i]));
    /* Each endpoint's held count (kept by triggers) too. */
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM endpoints e WHERE "
                                   "(SELECT count(*) FROM deliveries d WHERE d.endpoint_id = e.id "
                                   "AND d.status = 'held') <> (SELECT coalesce(sum(n), 0) "
                                   "FROM endpoint_held h WHERE h.endpoint_id = e.id)"),
                     0);
    /* And so must the statistics' rollups, whatever the test did. */
    stats_check(fx, "acct_a", NULL, 0);
    stats_check(fx, "acct_b", NULL, 0);
    stats_check(fx, "acct_a", NULL, clock_now_ms() - HOUR_MS);
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    counts_check(fx);
    return fx_free(fx);
}

/* Inserts an endpoint of acct subscribed to types; fills *out (caller cleans up). */
static void
endpoint_make_secret(struct store *st, const char *acct, const char *types, const char *secret,
                     struct endpoint *out)
{
    struct endpoint ep = { 0 };

    assert_int_equal(id_new("ep_", ep.id), 0);
    snprintf(ep.account_id, sizeof(ep.account_id), "%s", acct);
    ep.url = "https://example.test/hook";
    ep.description = "";
    ep.event_types = (char *)types;
    ep.secret = (char *)secret;
    assert_int_equal(store_endpoint_insert(st, &ep), 0);
    assert_int_equal(store_endpoint_get(st, acct, ep.id, out), 0);
}

static void
endpoint_make(struct store *st, const char *acct, const char *types, struct endpoint *out)
{
    endpoint_make_secret(st, acct, types, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", out);
}

/* Attaches a ring of one fixed test key to st: secrets are sealed from now on. */
static struct keyring *
keys_attach_test(struct store *st)
{
    struct keyring *ring = NULL;
    char why[256];

    assert_int_equal(keyring_from_text("00112233445566778899aabbccddeeff"
                                       "00112233445566778899aabbccddeeff",
                                       &ring, why, sizeof(why)),
                     0);
    assert_int_equal(store_keys_attach(st, ring, why, sizeof(why)), 0);
    return ring;
}

/* Detaches and frees the ring keys_attach_test() gave. */
static void
keys_detach_test(struct store *st, struct keyring *ring)
{
    char why[256];

    assert_int_equal(store_keys_attach(st, NULL, why, sizeof(why)), 0);
    keyring_free(ring);
}

/* Fills *ev as a publisher would: id, time, body of type for acct (key may be NULL). */
static int
event_fill(const char *acct, const char *type, const char *key, struct event *ev)
{
    int len, err;

    memset(ev, 0, sizeof(*ev));
    snprintf(ev->account_id, sizeof(ev->account_id), "%s", acct);
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    if (key != NULL)
        snprintf(ev->idempotency_key, sizeof(ev->idempotency_key), "%s", key);
    /* Publishers run in threads too, where an assertion cannot leave the test. */
    err = id_new("evt_", ev->id);
    if (err != 0)
        return err;
    ev->created_at = clock_now_ms();
    clock_format_rfc3339_s(ev->created_at, ev->timestamp);
    len = asprintf(&ev->body,
                   "{\"id\":\"%s\",\"event\":\"%s\",\"timestamp\":\"%s\",\"data\":{\"n\":1}}",
                   ev->id, type, ev->timestamp);
    if (len < 0) {
        ev->body = NULL;
        return ERR_NOMEM;
    }
    ev->body_len = (size_t)len;
    return 0;
}

/* Publishes an event of type to eps; returns the store's answer, *ev filled. */
static int
publish(struct store *st, const char *acct, const char *type, const char *key,
        const struct endpoint *eps, size_t n, struct event *ev)
{
    int err = event_fill(acct, type, key, ev);

    return err != 0 ? err : store_event_publish(st, ev, eps, n);
}

/* Publishes n events to ep (of acct_a) in batches: n deliveries, held if it is disabled. */
static void
batch_make(struct store *st, struct endpoint *ep, size_t n)
{
    struct store_publish *items = calloc(STORE_MAX_BATCH, sizeof(*items));
    struct event *evs = calloc(STORE_MAX_BATCH, sizeof(*evs));
    size_t done = 0, b, i;

    assert_non_null(items);
    assert_non_null(evs);
    while (done < n) {
        b = n - done < STORE_MAX_BATCH ? n - done : STORE_MAX_BATCH;
        for (i = 0; i < b; i++) {
            assert_int_equal(event_fill("acct_a", "user.message", NULL, &evs[i]), 0);
            items[i] = (struct store_publish){ .ev = &evs[i], .eps = ep, .neps = 1 };
        }
        assert_int_equal(store_event_publish_batch(st, items, b), 0);
        for (i = 0; i < b; i++) {
            assert_int_equal(items[i].err, 0);
            event_cleanup(&evs[i]);
        }
        done += b;
    }
    free(items);
    free(evs);
}

/* Disables ep (of acct_a) and publishes n events to it in batches: n held deliveries. */
static void
held_make(struct store *st, struct endpoint *ep, size_t n)
{
    assert_int_equal(store_endpoint_disable(st, "acct_a", ep->id, "maintenance", 1), 0);
    ep->status = ENDPOINT_DISABLED;
    batch_make(st, ep, n);
}

/* The deliveries of an event, oldest first (caller frees). */
static size_t
deliveries_of(struct store *st, const char *acct, const char *event_id, struct delivery **ds)
{
    struct delivery_filter f = { .event_id = event_id, .status = -1, .limit = STORE_MAX_PAGE };
    size_t n = 0;

    assert_int_equal(store_delivery_list(st, acct, &f, ds, &n), 0);
    return n;
}

static enum delivery_status
status_of(struct store *st, const char *acct, const char *dlv_id)
{
    struct delivery d;
    enum delivery_status s;

    assert_int_equal(store_delivery_get(st, acct, dlv_id, &d), 0);
    s = d.status;
    delivery_cleanup(&d);
    return s;
}

/* --- tests --- */

/* URLs no backend takes: the same answers whichever backend is under test. */
static void
test_open_urls(void **state)
{
    static const char *const bad[] = {
        "", "mysql://x", "sqlite3:/tmp/x.db", "postgresx://localhost/x", "/tmp/x.db",
        "file:/tmp/x.db", "sqlite:",
    };
    struct store *st = NULL;
    size_t i;

    (void)state;
    assert_int_equal(store_open(NULL, &st), ERR_INVAL);
    assert_null(st);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st = (struct store *)&st; /* store_open must clear it */
        assert_int_equal(store_open(bad[i], &st), ERR_INVAL);
        assert_null(st);
    }
    store_close(NULL);
}

/* SQLite's own paths: a directory that cannot be made, and ":memory:". */
static void
test_open_sqlite_paths(void **state)
{
    struct store *st = NULL;

    (void)state;
    if (backend_sqlite() != 1)
        skip();
    assert_int_equal(store_open("sqlite:/nonexistent-dir/x/y.db", &st), ERR_STORE);
    assert_null(st);
    assert_int_equal(store_open("sqlite::memory:", &st), 0);
    assert_int_equal(store_is_empty(st), 1);
    store_close(st);
}

/*
 * PostgreSQL URLs: libpq's "postgresql://" spelling opens the same database;
 * a database that does not exist and a server that does not answer fail
 * cleanly, leaving no store.
 */
static void
test_open_postgres_urls(void **state)
{
    struct fx *fx = *state;
    struct store *st = NULL;
    struct account a;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    char url[600], missing[600];
    int fd, err;

    if (fx->sqlite)
        skip();
    assert_int_equal(strncmp(fx->url, "postgres://", 11), 0);
    snprintf(url, sizeof(url), "postgresql://%s", fx->url + 11);
    assert_int_equal(store_open(url, &st), 0);
    assert_int_equal(store_is_empty(st), 0);
    assert_int_equal(store_account_get(st, "acct_b", &a), 0);
    account_cleanup(&a);
    store_close(st);
    st = NULL;

    assert_int_equal(pg_url_with_db(fx->url, "fh_unit_no_such_db", missing, sizeof(missing)),
                     0);
    err = store_open(missing, &st);
    assert_true(err < 0);
    assert_null(st);

    /* A bound, unlistened loopback port refuses the connection at once. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    snprintf(url, sizeof(url), "postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=5",
             ntohs(sa.sin_port));
    err = store_open(url, &st);
    close(fd);
    assert_true(err < 0);
    assert_null(st);
}

static void
test_status_names(void **state)
{
    enum delivery_status s;
    int i;

    (void)state;
    for (i = 0; i < DELIVERY__COUNT; i++) {
        assert_int_equal(delivery_status_parse(delivery_status_name(i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_string_equal(delivery_status_name(DELIVERY_HELD), "held");
    assert_int_equal(delivery_status_parse("nope", &s), ERR_INVAL);
    assert_string_equal(endpoint_status_name(ENDPOINT_DISABLED), "disabled");
    assert_string_equal(endpoint_status_name(ENDPOINT_ENABLED), "enabled");
}

static void
test_accounts_and_keys(void **state)
{
    struct fx *fx = *state;
    struct account a = { .name = "dup" }, got, *as = NULL;
    struct api_key k = { 0 }, kf, *ks = NULL;
    size_t n = 0;

    assert_int_equal(store_is_empty(fx->st), 0);
    snprintf(a.id, sizeof(a.id), "acct_a");
    assert_int_equal(store_account_insert(fx->st, &a), ERR_CONFLICT);
    assert_int_equal(store_account_get(fx->st, "acct_a", &got), 0);
    assert_string_equal(got.name, "A");
    assert_true(got.created_at > 0);
    account_cleanup(&got);
    assert_int_equal(store_account_get(fx->st, "acct_zz", &got), ERR_NOTFOUND);

    assert_int_equal(store_account_list(fx->st, "", 1, &as, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(as[0].id, "acct_a");
    account_list_free(as, n);
    assert_int_equal(store_account_list(fx->st, "acct_a", 10, &as, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(as[0].id, "acct_b");
    account_list_free(as, n);
    assert_int_equal(store_account_list(fx->st, "", 0, &as, &n), ERR_INVAL);

    snprintf(k.id, sizeof(k.id), "key_1");
    snprintf(k.account_id, sizeof(k.account_id), "acct_a");
    snprintf(k.hash, sizeof(k.hash), "%064d", 1);
    k.name = "first";
    k.admin = 1;
    assert_int_equal(store_key_insert(fx->st, &k), 0);
    assert_int_equal(store_key_insert(fx->st, &k), ERR_CONFLICT);
    snprintf(k.id, sizeof(k.id), "key_2");
    snprintf(k.hash, sizeof(k.hash), "%064d", 2);
    k.admin = 0;
    k.name = "second";
    assert_int_equal(store_key_insert(fx->st, &k), 0);
    snprintf(k.id, sizeof(k.id), "key_3");
    snprintf(k.account_id, sizeof(k.account_id), "acct_nope");
    snprintf(k.hash, sizeof(k.hash), "%064d", 3);
    assert_int_equal(store_key_insert(fx->st, &k), ERR_NOTFOUND);

    snprintf(k.hash, sizeof(k.hash), "%064d", 1);
    assert_int_equal(store_key_find(fx->st, k.hash, &kf), 0);
    assert_string_equal(kf.id, "key_1");
    assert_string_equal(kf.account_id, "acct_a");
    assert_string_equal(kf.name, "first");
    assert_int_equal(kf.admin, 1);
    api_key_cleanup(&kf);
    assert_int_equal(store_key_find(fx->st, "ffff", &kf), ERR_NOTFOUND);

    assert_int_equal(store_key_list(fx->st, "acct_a", &ks, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ks[0].id, "key_1");
    assert_string_equal(ks[1].id, "key_2");
    api_key_list_free(ks, n);
    assert_int_equal(store_key_list(fx->st, "acct_b", &ks, &n), 0);
    assert_int_equal(n, 0);
    api_key_list_free(ks, n);

    /* Another account's key is not found; the owner can delete it. */
    assert_int_equal(store_key_delete(fx->st, "acct_b", "key_1"), ERR_NOTFOUND);
    assert_int_equal(store_key_delete(fx->st, "acct_a", "key_1"), 0);
    assert_int_equal(store_key_delete(fx->st, "acct_a", "key_1"), ERR_NOTFOUND);
    snprintf(k.hash, sizeof(k.hash), "%064d", 1);
    assert_int_equal(store_key_find(fx->st, k.hash, &kf), ERR_NOTFOUND);
}

static void
test_endpoints_crud(void **state)
{
    struct fx *fx = *state;
    struct endpoint e1, e2, e3, got, *list = NULL;
    struct endpoint_patch patch = { 0 };
    size_t n = 0;
    int64_t until;

    endpoint_make(fx->st, "acct_a", "", &e1);
    endpoint_make(fx->st, "acct_a", "agent.updated", &e2);
    endpoint_make(fx->st, "acct_a", "", &e3);
    assert_string_equal(e1.url, "https://example.test/hook");
    assert_int_equal(e1.status, ENDPOINT_ENABLED);
    assert_null(e1.disabled_reason);
    assert_null(e1.prev_secret);
    assert_int_equal(e1.held, 0);
    assert_true(e1.created_at > 0);

    /* Tenancy: another account's id is not found. */
    assert_int_equal(store_endpoint_get(fx->st, "acct_b", e1.id, &got), ERR_NOTFOUND);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_b", e1.id, "x", 1), ERR_NOTFOUND);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_b", e1.id), ERR_NOTFOUND);

    /* Pages of two, by cursor. */
    assert_int_equal(store_endpoint_list(fx->st, "acct_a", "", 2, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, e1.id);
    assert_string_equal(list[1].id, e2.id);
    endpoint_list_free(list, n);
    assert_int_equal(store_endpoint_list(fx->st, "acct_a", e2.id, 2, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, e3.id);
    endpoint_list_free(list, n);
    assert_int_equal(store_endpoint_list(fx->st, "acct_b", "", 10, &list, &n), 0);
    assert_int_equal(n, 0);
    endpoint_list_free(list, n);

    /* Update: url, description and types; a field not given stays as it is. */
    until = clock_now_ms() + HOUR_MS;
    patch.url = "https://example.test/other";
    patch.event_types = "user.message, agent.response";
    assert_int_equal(store_endpoint_update(fx->st, "acct_a", e2.id, &patch, clock_now_ms()), 0);
    patch.url = NULL;
    patch.event_types = NULL;
    patch.description = "second";
    assert_int_equal(store_endpoint_update(fx->st, "acct_a", e2.id, &patch, clock_now_ms()), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", e2.id, &got), 0);
    assert_string_equal(got.url, "https://example.test/other");
    assert_string_equal(got.description, "second");
    assert_string_equal(got.event_types, "user.message, agent.response");
    endpoint_cleanup(&got);
    assert_int_equal(store_endpoint_update(fx->st, "acct_b", e2.id, &patch, clock_now_ms()),
                     ERR_NOTFOUND);

    /* Rotation: the old secret signs beside the new one until the grace period ends. */
    assert_int_equal(store_endpoint_rotate(fx->st, "acct_a", e2.id,
                                           "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0", until,
                                           clock_now_ms(), &got),
                     0);
    assert_string_equal(got.secret, "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0");
    assert_string_equal(got.prev_secret, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");
    assert_int_equal(got.prev_secret_until, until);
    assert_string_equal(got.url, "https://example.test/other");
    endpoint_cleanup(&got);
    /* Without grace the old one is dropped at once. */
    assert_int_equal(store_endpoint_rotate(fx->st, "acct_a", e2.id,
                                           "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", 0,
                                           clock_now_ms(), &got),
                     0);
    assert_string_equal(got.secret, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");
    assert_null(got.prev_secret);
    endpoint_cleanup(&got);
    assert_int_equal(store_endpoint_rotate(fx->st, "acct_b", e2.id,
                                           "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", 0,
                                           clock_now_ms(), NULL),
                     ERR_NOTFOUND);

    /* Delete: gone from get and list. */
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", e3.id), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", e3.id, &got), ERR_NOTFOUND);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", e3.id), ERR_NOTFOUND);
    assert_int_equal(store_endpoint_list(fx->st, "acct_a", "", 10, &list, &n), 0);
    assert_int_equal(n, 2);
    endpoint_list_free(list, n);

    endpoint_cleanup(&e1);
    endpoint_cleanup(&e2);
    endpoint_cleanup(&e3);
}

static int
has_endpoint(const struct endpoint *eps, size_t n, const char *id)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(eps[i].id, id) == 0)
            return 1;
    }
    return 0;
}

static void
test_fanout_selection(void **state)
{
    struct fx *fx = *state;
    struct endpoint e1, e2, e3, e4, eb, *eps = NULL;
    struct endpoint_patch patch = { 0 };
    size_t n = 0;

    endpoint_make(fx->st, "acct_a", "conversation.started,agent.updated", &e1);
    endpoint_make(fx->st, "acct_a", "", &e2);
    endpoint_make(fx->st, "acct_a", "user.message", &e3);
    endpoint_make(fx->st, "acct_a", "user.message", &e4);
    endpoint_make(fx->st, "acct_b", "", &eb);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", e4.id, "by hand", 5), 0);

    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_a", "agent.updated", &eps, &n), 0);
    assert_int_equal(n, 2);
    assert_true(has_endpoint(eps, n, e1.id) && has_endpoint(eps, n, e2.id));
    assert_string_equal(eps[0].secret, e1.secret);
    endpoint_list_free(eps, n);

    /* A disabled endpoint is still subscribed (its deliveries are held). */
    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_a", "user.message", &eps, &n), 0);
    assert_int_equal(n, 3);
    assert_true(has_endpoint(eps, n, e2.id) && has_endpoint(eps, n, e3.id) &&
                has_endpoint(eps, n, e4.id));
    endpoint_list_free(eps, n);

    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_a", "integration.sync", &eps, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].id, e2.id);
    endpoint_list_free(eps, n);

    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_b", "user.message", &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].id, eb.id);
    endpoint_list_free(eps, n);

    /* Changing the types changes the fan-out; a deleted endpoint leaves it. */
    patch.event_types = "agent.updated";
    assert_int_equal(store_endpoint_update(fx->st, "acct_a", e3.id, &patch, clock_now_ms()), 0);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", e2.id), 0);
    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_a", "agent.updated", &eps, &n), 0);
    assert_int_equal(n, 2);
    assert_true(has_endpoint(eps, n, e1.id) && has_endpoint(eps, n, e3.id));
    endpoint_list_free(eps, n);
    assert_int_equal(store_endpoint_subscribed(fx->st, "acct_a", "user.message", &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].id, e4.id);
    endpoint_list_free(eps, n);

    endpoint_cleanup(&e1);
    endpoint_cleanup(&e2);
    endpoint_cleanup(&e3);
    endpoint_cleanup(&e4);
    endpoint_cleanup(&eb);
}

static void
test_publish_and_read(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev, ev2, got, *evs = NULL;
    struct delivery *ds = NULL;
    size_t n, i;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", eps[1].id, "by hand", 5), 0);
    eps[1].status = ENDPOINT_DISABLED;

    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
    assert_int_equal(ev.deliveries, 2);
    assert_int_equal(store_event_get(fx->st, "acct_a", ev.id, &got), 0);
    assert_int_equal(got.body_len, ev.body_len);
    assert_memory_equal(got.body, ev.body, ev.body_len);
    assert_int_equal(got.body[got.body_len], '\0');
    assert_string_equal(got.type, "user.message");
    assert_string_equal(got.timestamp, ev.timestamp);
    assert_int_equal(got.created_at, ev.created_at);
    assert_int_equal(got.deliveries, 2);
    assert_string_equal(got.idempotency_key, "");
    event_cleanup(&got);
    assert_int_equal(store_event_get(fx->st, "acct_b", ev.id, &got), ERR_NOTFOUND);

    n = deliveries_of(fx->st, "acct_a", ev.id, &ds);
    assert_int_equal(n, 2);
    for (i = 0; i < n; i++) {
        int enabled = strcmp(ds[i].endpoint_id, eps[0].id) == 0;

        assert_string_equal(ds[i].event_id, ev.id);
        assert_string_equal(ds[i].account_id, "acct_a");
        assert_string_equal(ds[i].event_type, "user.message");
        assert_int_equal(ds[i].status, enabled ? DELIVERY_PENDING : DELIVERY_HELD);
        assert_int_equal(ds[i].attempts_made, 0);
        assert_true(ds[i].next_attempt_at <= clock_now_ms());
        assert_null(ds[i].last_error);
        assert_true(id_valid("dlv_", ds[i].id));
    }
    delivery_list_free(ds, n);
    assert_int_equal(deliveries_of(fx->st, "acct_b", ev.id, &ds), 0);
    delivery_list_free(ds, 0);

    /* The event list: newest first, by type, by cursor. */
    assert_int_equal(publish(fx->st, "acct_a", "agent.updated", NULL, eps, 1, &ev2), 0);
    assert_int_equal(store_event_list(fx->st, "acct_a", NULL, NULL, 10, &evs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(evs[0].id, ev2.id);
    assert_string_equal(evs[1].id, ev.id);
    event_list_free(evs, n);
    assert_int_equal(store_event_list(fx->st, "acct_a", NULL, ev2.id, 10, &evs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(evs[0].id, ev.id);
    event_list_free(evs, n);
    assert_int_equal(store_event_list(fx->st, "acct_a", "user.message", NULL, 10, &evs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(evs[0].id, ev.id);
    event_list_free(evs, n);
    assert_int_equal(store_event_list(fx->st, "acct_b", NULL, NULL, 10, &evs, &n), 0);
    assert_int_equal(n, 0);
    event_list_free(evs, n);

    /* No endpoints: the event is stored with no delivery. */
    event_cleanup(&ev2);
    assert_int_equal(publish(fx->st, "acct_b", "agent.updated", NULL, NULL, 0, &ev2), 0);
    assert_int_equal(ev2.deliveries, 0);
    assert_int_equal(store_event_get(fx->st, "acct_b", ev2.id, &got), 0);
    event_cleanup(&got);

    event_cleanup(&ev);
    event_cleanup(&ev2);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

/* store_publish_done_fn that must not run: a refused asynchronous publish has no end. */
static void
async_never(void *arg, int err)
{
    (void)arg;
    (void)err;
    fail_msg("a refused asynchronous publish called its completion");
}

/*
 * SQLite publishes asynchronously (tests/unit/store/test_publish_async.c);
 * PostgreSQL says it does not and refuses, so the API keeps its publishes on
 * its workers.
 */
static void
test_publish_async_backend(void **state)
{
    struct fx *fx = *state;
    struct event ev;
    struct store_publish it = {.ev = &ev, .fanout = 1};

    assert_int_equal(event_fill("acct_a", "user.message", NULL, &ev), 0);
    assert_int_equal(store_publish_async_supported(fx->st), fx->sqlite);
    if (!fx->sqlite)
        assert_int_equal(store_event_publish_async(fx->st, &it, 1, async_never, NULL),
                         ERR_INTERNAL);
    event_cleanup(&ev);
}

static void
test_publish_atomic(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev, got;
    struct delivery *ds = NULL;
    int64_t counts[DELIVERY__COUNT];

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    memset(&eps[1], 0, sizeof(eps[1]));
    snprintf(eps[1].id, sizeof(eps[1].id), "ep_missing");
    /* The second delivery cannot be stored: nothing of the event is. */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), ERR_NOTFOUND);
    assert_int_equal(store_event_get(fx->st, "acct_a", ev.id, &got), ERR_NOTFOUND);
    assert_int_equal(deliveries_of(fx->st, "acct_a", ev.id, &ds), 0);
    delivery_list_free(ds, 0);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_PENDING], 0);
    event_cleanup(&ev);
    /* The same id then publishes fine. */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 1, &ev), 0);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_PENDING], 1);
    event_cleanup(&ev);
    endpoint_cleanup(&eps[0]);
}

static void
test_idempotency(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, epb;
    struct event ev1, ev2, ev3, old, again;
    struct delivery *ds = NULL;
    char first_id[ID_MAX];

    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_b", "", &epb);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", "key-1", &ep, 1, &ev1), 0);
    snprintf(first_id, sizeof(first_id), "%s", ev1.id);

    /* Same key, same account, within 24 h: the first event, nothing stored. */
    assert_int_equal(publish(fx->st, "acct_a", "agent.updated", "key-1", &ep, 1, &ev2),
                     ERR_CONFLICT);
    assert_string_equal(ev2.id, first_id);
    assert_string_equal(ev2.type, "user.message");
    assert_string_equal(ev2.idempotency_key, "key-1");
    assert_int_equal(ev2.deliveries, 1);
    assert_memory_equal(ev2.body, ev1.body, ev1.body_len);
    assert_int_equal(deliveries_of(fx->st, "acct_a", first_id, &ds), 1);
    delivery_list_free(ds, 1);

    /* Another account may use the same key. */
    assert_int_equal(publish(fx->st, "acct_b", "user.message", "key-1", &epb, 1, &ev3), 0);
    assert_string_not_equal(ev3.id, first_id);

    /* A key last used more than 24 h ago is free again. */
    memset(&old, 0, sizeof(old));
    snprintf(old.account_id, sizeof(old.account_id), "acct_a");
    snprintf(old.type, sizeof(old.type), "user.message");
    snprintf(old.idempotency_key, sizeof(old.idempotency_key), "key-old");
    old.created_at = clock_now_ms() - 25 * HOUR_MS;
    old.body = strdup("{}");
    old.body_len = 2;
    assert_int_equal(store_event_publish(fx->st, &old, &ep, 1), 0);
    assert_true(id_valid("evt_", old.id));
    assert_true(old.timestamp[0] != '\0');
    assert_int_equal(publish(fx->st, "acct_a", "user.message", "key-old", &ep, 1, &again), 0);
    assert_string_not_equal(again.id, old.id);

    event_cleanup(&ev1);
    event_cleanup(&ev2);
    event_cleanup(&ev3);
    event_cleanup(&old);
    event_cleanup(&again);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&epb);
}

static void
test_delivery_list_pages(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev;
    struct delivery *ds = NULL, *all = NULL;
    struct delivery_filter f = { .status = -1, .limit = 100 };
    size_t n = 0, nall = 0, i;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    for (i = 0; i < 5; i++) {
        assert_int_equal(publish(fx->st, "acct_a", i % 2 ? "user.message" : "agent.updated",
                                 NULL, eps, 2, &ev),
                         0);
        event_cleanup(&ev);
    }
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &all, &nall), 0);
    assert_int_equal(nall, 10);
    for (i = 1; i < nall; i++)
        assert_true(strcmp(all[i - 1].id, all[i].id) < 0);

    /* Ascending pages of 3 walk every id once. */
    f.limit = 3;
    f.after = "";
    for (i = 0; i < nall; i += n) {
        size_t j;

        assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
        assert_true(n > 0 && n <= 3);
        for (j = 0; j < n; j++)
            assert_string_equal(ds[j].id, all[i + j].id);
        f.after = all[i + n - 1].id;
        delivery_list_free(ds, n);
    }
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 0);
    delivery_list_free(ds, n);

    /* Descending: newest first, the cursor means "older than". */
    f.descending = 1;
    f.after = all[5].id;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ds[0].id, all[4].id);
    assert_string_equal(ds[2].id, all[2].id);
    delivery_list_free(ds, n);

    /* Filters. */
    memset(&f, 0, sizeof(f));
    f.status = -1;
    f.limit = 100;
    f.endpoint_id = eps[1].id;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 5);
    for (i = 0; i < n; i++)
        assert_string_equal(ds[i].endpoint_id, eps[1].id);
    delivery_list_free(ds, n);
    f.event_type = "user.message";
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 2);
    delivery_list_free(ds, n);
    f.status = DELIVERY_DELIVERED;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 0);
    delivery_list_free(ds, n);
    f.status = DELIVERY_PENDING;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 2);
    delivery_list_free(ds, n);
    assert_int_equal(store_delivery_list(fx->st, "acct_b", &f, &ds, &n), 0);
    assert_int_equal(n, 0);
    delivery_list_free(ds, n);
    f.limit = 0;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), ERR_INVAL);

    /* A date range [from, before) keeps exactly the deliveries created in it. */
    memset(&f, 0, sizeof(f));
    f.status = -1;
    f.limit = 100;
    f.created_from = id_time_ms(all[3].id);
    f.created_before = id_time_ms(all[7].id) + 1;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    {
        size_t want = 0, j;

        for (i = 0; i < nall; i++)
            want += id_time_ms(all[i].id) >= f.created_from &&
                    id_time_ms(all[i].id) < f.created_before;
        assert_int_equal(n, want);
        assert_true(n >= 5);
        for (j = 0; j < n; j++)
            assert_true(id_time_ms(ds[j].id) >= f.created_from &&
                        id_time_ms(ds[j].id) < f.created_before);
    }
    delivery_list_free(ds, n);
    f.created_from = id_time_ms(all[nall - 1].id) + 1;
    f.created_before = 0;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 0);
    delivery_list_free(ds, n);

    /* Tenancy of single reads. */
    assert_int_equal(store_delivery_get(fx->st, "acct_b", all[0].id, &all[0]), ERR_NOTFOUND);
    delivery_list_free(all, nall);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

static void
test_claim_leases(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev[3];
    struct claim *cs = NULL;
    size_t n = 0, i;
    int64_t now, when;

    endpoint_make(fx->st, "acct_a", "", &ep);
    assert_int_equal(store_next_due(fx->st, &when), 0);
    assert_int_equal(when, 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev[i]), 0);
    now = clock_now_ms() + 1;
    assert_int_equal(store_next_due(fx->st, &when), 0);
    assert_true(when > 0 && when <= now);

    assert_int_equal(store_claim(fx->st, now, 0, 10, 0, NULL, 0, &cs, &n), ERR_INVAL);
    assert_int_equal(store_claim(fx->st, now, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 3);
    for (i = 0; i < n; i++) {
        assert_int_equal(cs[i].dlv.status, DELIVERY_DELIVERING);
        assert_int_equal(cs[i].dlv.lease_until, now + 30000);
        assert_int_equal(cs[i].dlv.lease_token, 1);
        assert_string_equal(cs[i].url, ep.url);
        assert_string_equal(cs[i].secret, ep.secret);
        assert_null(cs[i].prev_secret);
        /* In due order, with the exact bytes published. */
        assert_string_equal(cs[i].dlv.event_id, ev[i].id);
        assert_int_equal(cs[i].body_len, ev[i].body_len);
        assert_memory_equal(cs[i].body, ev[i].body, ev[i].body_len);
    }
    claim_list_free(cs, n);

    /* While the leases run nothing is claimed again... */
    assert_int_equal(store_claim(fx->st, now + 29999, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);
    /*
     * The dispatcher wakes for them: at their end (PostgreSQL), or at the
     * next sweep for expired leases, at most a second after the last one
     * (SQLite, whose claim at now + 29999 swept).
     */
    assert_int_equal(store_next_due(fx->st, &when), 0);
    assert_true(when >= now + 30000 && when <= now + 30999);
    /* ...and once they expired (a crashed dispatcher), they are. */
    assert_int_equal(store_claim(fx->st, now + 30999, 1000, 2, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cs[0].dlv.lease_until, now + 31999);
    /* Each claim of a delivery gets a greater token (fencing; SQLite's sweep adds one). */
    assert_true(cs[0].dlv.lease_token > 1);
    claim_list_free(cs, n);

    /* Release gives claims back, pending and due now; a stale token releases nothing. */
    assert_int_equal(store_claim(fx->st, now + 30999, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    {
        const char *ids[1] = { cs[0].dlv.id };
        int64_t stale[1] = { cs[0].dlv.lease_token - 1 };
        int64_t tokens[1] = { cs[0].dlv.lease_token };

        assert_int_equal(store_release(fx->st, ids, stale, 1), 0);
        assert_int_equal(status_of(fx->st, "acct_a", ids[0]), DELIVERY_DELIVERING);
        assert_int_equal(store_release(fx->st, ids, tokens, 1), 0);
        assert_int_equal(status_of(fx->st, "acct_a", ids[0]), DELIVERY_PENDING);
    }
    claim_list_free(cs, n);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    claim_list_free(cs, n);

    for (i = 0; i < 3; i++)
        event_cleanup(&ev[i]);
    endpoint_cleanup(&ep);
}

static void
test_claim_fairness(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[3];
    struct event ev;
    struct claim *cs = NULL;
    size_t n = 0, i, from0 = 0, from1 = 0;
    const char *excl[1];
    int64_t now;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    endpoint_make(fx->st, "acct_a", "", &eps[2]);
    for (i = 0; i < 5; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
        event_cleanup(&ev);
    }
    now = clock_now_ms() + 1;
    /* At most two from one endpoint. */
    assert_int_equal(store_claim(fx->st, now, HOUR_MS, 10, 2, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 4);
    for (i = 0; i < n; i++) {
        from0 += strcmp(cs[i].dlv.endpoint_id, eps[0].id) == 0;
        from1 += strcmp(cs[i].dlv.endpoint_id, eps[1].id) == 0;
    }
    assert_int_equal(from0, 2);
    assert_int_equal(from1, 2);
    claim_list_free(cs, n);

    /* None from an excluded endpoint. */
    excl[0] = eps[0].id;
    assert_int_equal(store_claim(fx->st, now, HOUR_MS, 10, 0, excl, 1, &cs, &n), 0);
    assert_int_equal(n, 3);
    for (i = 0; i < n; i++)
        assert_string_equal(cs[i].dlv.endpoint_id, eps[1].id);
    claim_list_free(cs, n);

    /*
     * A long queue of an excluded endpoint in front does not hide another
     * endpoint's work behind it (more rows than the first pass reads).
     */
    for (i = 0; i < 600; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[0], 1, &ev), 0);
        event_cleanup(&ev);
    }
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[2], 1, &ev), 0);
    now = clock_now_ms() + 1;
    assert_int_equal(store_claim(fx->st, now, 1000, 1, 0, excl, 1, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.event_id, ev.id);
    claim_list_free(cs, n);
    event_cleanup(&ev);
    /*
     * The same with the in-flight cap instead of an exclusion: eps[0] has
     * two under live leases, so a cap of three leaves it one; eps[2] gets
     * both of its own (the first one's lease has run out).
     */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[2], 1, &ev), 0);
    now = clock_now_ms() + 1001;
    assert_int_equal(store_claim(fx->st, now, 1000, 300, 3, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 3);
    from0 = from1 = 0;
    for (i = 0; i < n; i++) {
        from0 += strcmp(cs[i].dlv.endpoint_id, eps[0].id) == 0;
        from1 += strcmp(cs[i].dlv.event_id, ev.id) == 0;
    }
    assert_int_equal(from0, 1);
    assert_int_equal(from1, 1);
    claim_list_free(cs, n);
    event_cleanup(&ev);

    for (i = 0; i < 3; i++)
        endpoint_cleanup(&eps[i]);
}

/*
 * A claim that meets a run of rows it must skip (an excluded endpoint, or
 * one at its cap) in front of others' work gives up reading in time order
 * and visits each endpoint instead: everything else that is due is still
 * claimed, in due order, and nothing beyond the cap.
 */
static void
test_claim_skip_run(void **state)
{
    struct fx *fx = *state;
    struct endpoint a, b, c;
    struct event ev;
    struct claim *cs = NULL;
    char want[4][ID_MAX];
    const char *excl[1];
    size_t n = 0, i, j, froma, found;
    int round;

    for (round = 0; round < 2; round++) {
        endpoint_make(fx->st, "acct_a", "", &a);
        endpoint_make(fx->st, "acct_a", "", &b);
        endpoint_make(fx->st, "acct_a", "", &c);
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &b, 1, &ev), 0);
        snprintf(want[0], ID_MAX, "%s", ev.id);
        event_cleanup(&ev);
        for (i = 0; i < 80; i++) {
            assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &a, 1, &ev), 0);
            event_cleanup(&ev);
        }
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &c, 1, &ev), 0);
        snprintf(want[1], ID_MAX, "%s", ev.id);
        event_cleanup(&ev);
        for (i = 2; i < 4; i++) {
            assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &b, 1, &ev), 0);
            snprintf(want[i], ID_MAX, "%s", ev.id);
            event_cleanup(&ev);
        }
        excl[0] = a.id;
        /* Round 0: a excluded; round 1: a capped at 2 in flight. */
        if (round == 0)
            assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, HOUR_MS, 10, 0, excl, 1,
                                         &cs, &n), 0);
        else
            assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, HOUR_MS, 10, 2, NULL, 0,
                                         &cs, &n), 0);
        /* b is capped too: its third row waits (round 1). */
        assert_int_equal(n, round == 0 ? 4 : 5);
        froma = found = 0;
        for (i = 0; i < n; i++) {
            froma += strcmp(cs[i].dlv.endpoint_id, a.id) == 0;
            for (j = 0; j < 4; j++)
                found += strcmp(cs[i].dlv.event_id, want[j]) == 0;
            if (i > 0)
                assert_true(cs[i].dlv.next_attempt_at >= cs[i - 1].dlv.next_attempt_at ||
                            strcmp(cs[i].dlv.endpoint_id, a.id) == 0 ||
                            strcmp(cs[i - 1].dlv.endpoint_id, a.id) == 0);
        }
        assert_int_equal(froma, round == 0 ? 0 : 2);
        assert_int_equal(found, round == 0 ? 4 : 3);
        claim_list_free(cs, n);
        /* What is left is a's, and (round 1) b's third. */
        assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, HOUR_MS, 100, 0, excl, 1, &cs,
                                     &n), 0);
        assert_int_equal(n, round == 0 ? 0 : 1);
        if (n == 1)
            assert_string_equal(cs[0].dlv.event_id, want[3]);
        claim_list_free(cs, n);
        /* a's rows are taken by a later claim with room, so the next round starts empty. */
        assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, HOUR_MS, 100, 0, NULL, 0, &cs,
                                     &n), 0);
        assert_int_equal(n, round == 0 ? 80 : 78);
        claim_list_free(cs, n);
        endpoint_cleanup(&a);
        endpoint_cleanup(&b);
        endpoint_cleanup(&c);
    }
}

/* An endpoint of acct_a whose secret was rotated at now with an hour's grace. */
static void
endpoint_make_rotated(struct store *st, int64_t now, struct endpoint *out)
{
    struct endpoint made;

    endpoint_make(st, "acct_a", "", &made);
    assert_int_equal(store_endpoint_rotate(st, "acct_a", made.id,
                                           "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0",
                                           now + HOUR_MS, now, out),
                     0);
    endpoint_cleanup(&made);
}

static void
test_claim_secrets_and_diverts(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, ep2;
    struct event ev, ev2;
    struct claim *cs = NULL;
    struct delivery *ds = NULL, d;
    size_t n = 0;
    int64_t now = clock_now_ms();

    endpoint_make_rotated(fx->st, now, &ep);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].secret, ep.secret);
    assert_string_equal(cs[0].prev_secret, ep.prev_secret);
    claim_list_free(cs, n);
    /* After the grace period only the current secret signs. */
    assert_int_equal(store_claim(fx->st, now + HOUR_MS + 2000, 1000, 10, 0, NULL, 0, &cs, &n),
                     0);
    assert_int_equal(n, 1);
    assert_null(cs[0].prev_secret);
    claim_list_free(cs, n);

    /*
     * Queued before its endpoint was disabled (a publish racing the switch):
     * a claim holds it instead of sending it. Deleted: it fails.
     */
    endpoint_make(fx->st, "acct_a", "", &ep2);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep2, 1, &ev2), 0);
    assert_int_equal(deliveries_of(fx->st, "acct_a", ev2.id, &ds), 1);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep2.id, "x", now), 0);
    assert_int_equal(status_of(fx->st, "acct_a", ds[0].id), DELIVERY_HELD);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep2.id, 0, now, NULL), 0);
    assert_int_equal(store_claim(fx->st, now + HOUR_MS * 3, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 2);
    claim_list_free(cs, n);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", ep2.id), 0);
    /* Its lease runs out: the next claim ends it instead of sending. */
    assert_int_equal(store_claim(fx->st, now + HOUR_MS * 4, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.endpoint_id, ep.id);
    claim_list_free(cs, n);
    assert_int_equal(store_delivery_get(fx->st, "acct_a", ds[0].id, &d), 0);
    assert_int_equal(d.status, DELIVERY_FAILED);
    assert_string_equal(d.last_error, "endpoint deleted");
    delivery_cleanup(&d);
    delivery_list_free(ds, 1);

    event_cleanup(&ev);
    event_cleanup(&ev2);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&ep2);
}

/*
 * Sealed secrets (a master key attached): a claim's deliveries of one
 * endpoint share its sealed values, opened once and copied; each claim,
 * whatever its neighbours' endpoints, gets its own endpoint's secrets in
 * clear, and prev_secret only where a rotation's grace runs.
 */
static void
test_claim_secrets_sealed(void **state)
{
    struct fx *fx = *state;
    struct keyring *ring = NULL;
    struct endpoint a, b;
    struct event ev;
    struct claim *cs = NULL;
    const struct endpoint *to;
    const char order[] = "aabaabbba";
    size_t n = 0, i;
    int64_t now = clock_now_ms();

    ring = keys_attach_test(fx->st);
    endpoint_make_rotated(fx->st, now, &a);
    endpoint_make(fx->st, "acct_a", "", &b);
    assert_string_not_equal(a.secret, b.secret);
    assert_non_null(a.prev_secret);
    for (i = 0; order[i] != '\0'; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL,
                                 order[i] == 'a' ? &a : &b, 1, &ev),
                         0);
        event_cleanup(&ev);
    }
    assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, 1000, 20, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, strlen(order));
    for (i = 0; i < n; i++) {
        to = strcmp(cs[i].dlv.endpoint_id, a.id) == 0 ? &a : &b;
        assert_string_equal(cs[i].dlv.endpoint_id, to->id);
        assert_string_equal(cs[i].secret, to->secret);
        if (to == &a)
            assert_string_equal(cs[i].prev_secret, a.prev_secret);
        else
            assert_null(cs[i].prev_secret);
    }
    claim_list_free(cs, n);
    keys_detach_test(fx->st, ring);
    endpoint_cleanup(&a);
    endpoint_cleanup(&b);
}

/* Fills a result for claim c. */
static void
result_for(struct attempt_result *r, const struct claim *c, enum delivery_status s, int code,
           const char *error, int64_t at, int64_t ms)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->attempt.delivery_id, sizeof(r->attempt.delivery_id), "%s", c->dlv.id);
    r->attempt.n = c->dlv.attempts_made + 1;
    r->attempt.at = at;
    r->attempt.status_code = code;
    r->attempt.error = (char *)error;
    r->attempt.duration_ms = ms;
    r->status = s;
    r->lease_token = c->dlv.lease_token;
    /* As the dispatcher fills it: the store need not read the delivery first. */
    r->endpoint_id = c->dlv.endpoint_id;
    r->account_id = c->dlv.account_id;
}

/*
 * Fencing: a worker paused past its lease comes back with its result after
 * another claim took the delivery; its stale result is discarded and
 * counted, and the current claim's result stands.
 */
static void
test_results_fenced(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev;
    struct claim *old = NULL, *cur = NULL;
    struct attempt_result r;
    struct attempt *as = NULL;
    size_t nold = 0, ncur = 0, na = 0;
    int64_t now;

    endpoint_make(fx->st, "acct_a", "", &ep);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    now = clock_now_ms() + 1;
    assert_int_equal(store_claim(fx->st, now, 1000, 10, 0, NULL, 0, &old, &nold), 0);
    assert_int_equal(nold, 1);
    assert_int_equal(store_claim(fx->st, now + 1000, 1000, 10, 0, NULL, 0, &cur, &ncur), 0);
    assert_int_equal(ncur, 1);
    assert_true(cur[0].dlv.lease_token > old[0].dlv.lease_token);
    assert_int_equal(store_fenced_count(fx->st), 0);

    /* The stale worker's success is not recorded over the running attempt. */
    result_for(&r, &old[0], DELIVERY_DELIVERED, 200, NULL, now, 5);
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + 1100), 0);
    assert_int_equal(store_fenced_count(fx->st), 1);
    /* So is it when it does not name the delivery's endpoint and account. */
    r.endpoint_id = NULL;
    r.account_id = NULL;
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + 1100), 0);
    assert_int_equal(store_fenced_count(fx->st), 2);
    assert_int_equal(status_of(fx->st, "acct_a", old[0].dlv.id), DELIVERY_DELIVERING);
    assert_int_equal(store_attempt_list(fx->st, old[0].dlv.id, &as, &na), 0);
    assert_int_equal(na, 0);
    attempt_list_free(as, na);

    /*
     * The current claim's result is applied, once: sending it again (its
     * answer was lost) changes nothing and is not counted as a takeover.
     */
    result_for(&r, &cur[0], DELIVERY_PENDING, 503, "HTTP 503", now + 1000, 5);
    r.next_attempt_at = now + MIN_MS;
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + 1200), 0);
    assert_int_equal(status_of(fx->st, "acct_a", cur[0].dlv.id), DELIVERY_PENDING);
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + 1300), 0);
    r.endpoint_id = NULL;
    r.account_id = NULL;
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + 1300), 0);
    assert_int_equal(store_fenced_count(fx->st), 2);
    assert_int_equal(store_attempt_list(fx->st, cur[0].dlv.id, &as, &na), 0);
    assert_int_equal(na, 1);
    attempt_list_free(as, na);

    claim_list_free(old, nold);
    claim_list_free(cur, ncur);
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
}

/*
 * The per-endpoint cap counts what is in flight in the store, so it holds
 * over several processes: a second handle on the same store (another
 * process, another host) claims only what the first one left of the cap.
 */
static void
test_claim_cap_across_handles(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep;
    struct event ev;
    struct claim *a = NULL, *b = NULL, *c = NULL;
    size_t na = 0, nb = 0, nc = 0, i;
    int64_t now;

    assert_int_equal(store_open(fx->url, &other), 0);
    endpoint_make(fx->st, "acct_a", "", &ep);
    for (i = 0; i < 10; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    now = clock_now_ms() + 1;
    assert_int_equal(store_claim(fx->st, now, 5000, 10, 4, NULL, 0, &a, &na), 0);
    assert_int_equal(na, 4);
    assert_int_equal(store_claim(other, now, 5000, 10, 4, NULL, 0, &b, &nb), 0);
    assert_int_equal(nb, 0);
    /* Once a lease runs out its place in the cap is free again. */
    assert_int_equal(store_claim(other, now + 5000, 5000, 10, 6, NULL, 0, &c, &nc), 0);
    assert_int_equal(nc, 6);
    for (i = 0; i < nc; i++)
        assert_int_equal(c[i].dlv.status, DELIVERY_DELIVERING);
    claim_list_free(a, na);
    claim_list_free(b, nb);
    claim_list_free(c, nc);
    endpoint_cleanup(&ep);
    store_close(other);
}

/*
 * A claim may take an endpoint's count of live leases from the writer's
 * cache (SQLite), which is never below the store's: another handle's claims
 * since are counted, and a count that says full is counted again once this
 * handle's own attempt ends.
 */
static void
test_claim_cap_counted_again(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep;
    struct event ev;
    struct claim *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    struct attempt_result r;
    size_t na = 0, nb = 0, nc = 0, nd = 0, i;

    assert_int_equal(store_open(fx->url, &other), 0);
    endpoint_make(fx->st, "acct_a", "", &ep);
    for (i = 0; i < 6; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    /* One of the cap's three here: this handle's writer now holds a count of 1. */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 1, 3, NULL, 0, &a, &na), 0);
    assert_int_equal(na, 1);
    /* The other handle takes the two left. */
    assert_int_equal(store_claim(other, clock_now_ms(), 30000, 10, 3, NULL, 0, &b, &nb), 0);
    assert_int_equal(nb, 2);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 3, NULL, 0, &c, &nc), 0);
    assert_int_equal(nc, 0);
    /* This handle's own attempt ends: its count said full, the store has room for one. */
    result_for(&r, &a[0], DELIVERY_DELIVERED, 200, NULL, clock_now_ms(), 5);
    assert_int_equal(store_results_apply(fx->st, &r, 1, clock_now_ms()), 0);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 3, NULL, 0, &d, &nd), 0);
    assert_int_equal(nd, 1);
    assert_string_equal(d[0].dlv.endpoint_id, ep.id);
    claim_list_free(a, na);
    claim_list_free(b, nb);
    claim_list_free(c, nc);
    claim_list_free(d, nd);
    endpoint_cleanup(&ep);
    store_close(other);
}

static void
test_results_apply(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2], got;
    struct event ev, ev2;
    struct claim *cs = NULL;
    struct attempt_result rs[2];
    struct attempt *as = NULL;
    struct delivery d, *ds = NULL;
    size_t n = 0, na = 0, i;
    int64_t now;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
    now = clock_now_ms() + 1;
    assert_int_equal(store_claim(fx->st, now, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 2);
    if (strcmp(cs[0].dlv.endpoint_id, eps[0].id) != 0) {
        struct claim t = cs[0];
        cs[0] = cs[1];
        cs[1] = t;
    }
    /* eps[0]: 200 with a body; eps[1]: a 503 to retry in a minute. */
    result_for(&rs[0], &cs[0], DELIVERY_DELIVERED, 200, NULL, now, 12);
    rs[0].attempt.response_body = "ok";
    rs[0].attempt.response_len = 2;
    rs[0].attempt.request_headers = "X-Workflux-Signature: abc\r\nwebhook-signature: v1,x\r\n";
    rs[0].attempt.response_headers = "Content-Type: text/plain\r\n";
    result_for(&rs[1], &cs[1], DELIVERY_PENDING, 503, "HTTP 503", now, 30);
    rs[1].next_attempt_at = now + MIN_MS;
    assert_int_equal(store_results_apply(fx->st, rs, 2, now + 50), 0);

    assert_int_equal(store_delivery_get(fx->st, "acct_a", cs[0].dlv.id, &d), 0);
    assert_int_equal(d.status, DELIVERY_DELIVERED);
    assert_int_equal(d.attempts_made, 1);
    assert_int_equal(d.last_status_code, 200);
    assert_null(d.last_error);
    delivery_cleanup(&d);
    assert_int_equal(store_attempt_list(fx->st, cs[0].dlv.id, &as, &na), 0);
    assert_int_equal(na, 1);
    assert_int_equal(as[0].n, 1);
    assert_int_equal(as[0].at, now);
    assert_int_equal(as[0].status_code, 200);
    assert_int_equal(as[0].duration_ms, 12);
    assert_null(as[0].error);
    assert_int_equal(as[0].error_class, ATTEMPT_ERROR_NONE);
    assert_int_equal(as[0].response_len, 2);
    assert_memory_equal(as[0].response_body, "ok", 2);
    assert_string_equal(as[0].request_headers,
                        "X-Workflux-Signature: abc\r\nwebhook-signature: v1,x\r\n");
    assert_string_equal(as[0].response_headers, "Content-Type: text/plain\r\n");
    attempt_list_free(as, na);

    assert_int_equal(store_delivery_get(fx->st, "acct_a", cs[1].dlv.id, &d), 0);
    assert_int_equal(d.status, DELIVERY_PENDING);
    assert_int_equal(d.next_attempt_at, now + MIN_MS);
    assert_int_equal(d.last_status_code, 503);
    assert_string_equal(d.last_error, "HTTP 503");
    delivery_cleanup(&d);
    /* Not due before its time. */
    claim_list_free(cs, n);
    assert_int_equal(store_claim(fx->st, now + MIN_MS - 1, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);

    /*
     * Another event queues for eps[1]; then its retry fails for good and
     * asks to disable the endpoint: it is disabled, the queued delivery is
     * held, and the failing one ends as the result says.
     */
    assert_int_equal(store_claim(fx->st, now + MIN_MS, 1000, 1, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.event_id, ev.id);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[1], 1, &ev2), 0);
    assert_int_equal(cs[0].dlv.attempts_made, 1);
    result_for(&rs[0], &cs[0], DELIVERY_FAILED, 0, "timeout after 15000 ms", now + MIN_MS, 15000);
    rs[0].attempt.error_class = ATTEMPT_ERROR_TIMEOUT;
    rs[0].disable_endpoint = 1;
    rs[0].disable_reason = "retries exhausted";
    assert_int_equal(store_results_apply(fx->st, rs, 1, now + MIN_MS + 1), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", eps[1].id, &got), 0);
    assert_int_equal(got.status, ENDPOINT_DISABLED);
    assert_string_equal(got.disabled_reason, "retries exhausted");
    assert_int_equal(got.disabled_at, now + MIN_MS + 1);
    assert_int_equal(got.held, 1);
    endpoint_cleanup(&got);
    assert_int_equal(store_delivery_get(fx->st, "acct_a", cs[0].dlv.id, &d), 0);
    assert_int_equal(d.status, DELIVERY_FAILED);
    assert_int_equal(d.attempts_made, 2);
    assert_int_equal(d.last_status_code, 0);
    assert_string_equal(d.last_error, "timeout after 15000 ms");
    delivery_cleanup(&d);
    /* Each attempt keeps its own class: none for the 503, timeout for this one. */
    assert_int_equal(store_attempt_list(fx->st, cs[0].dlv.id, &as, &na), 0);
    assert_int_equal(na, 2);
    assert_int_equal(as[0].status_code, 503);
    assert_int_equal(as[0].error_class, ATTEMPT_ERROR_NONE);
    assert_int_equal(as[1].status_code, 0);
    assert_int_equal(as[1].error_class, ATTEMPT_ERROR_TIMEOUT);
    assert_string_equal(as[1].error, "timeout after 15000 ms");
    attempt_list_free(as, na);
    assert_int_equal(deliveries_of(fx->st, "acct_a", ev2.id, &ds), 1);
    assert_int_equal(ds[0].status, DELIVERY_HELD);
    claim_list_free(cs, n);

    /* A result PENDING for a delivery whose endpoint is disabled by then: held. */
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", eps[1].id, 0, now, NULL), 0);
    assert_int_equal(store_claim(fx->st, now + MIN_MS * 2, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.id, ds[0].id);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", eps[1].id, "by hand", now), 0);
    result_for(&rs[0], &cs[0], DELIVERY_PENDING, 500, "HTTP 500", now + MIN_MS * 2, 5);
    rs[0].next_attempt_at = now + MIN_MS * 3;
    assert_int_equal(store_results_apply(fx->st, rs, 1, now + MIN_MS * 2), 0);
    assert_int_equal(status_of(fx->st, "acct_a", ds[0].id), DELIVERY_HELD);
    claim_list_free(cs, n);
    delivery_list_free(ds, 1);

    /* Attempts are numbered over the delivery's life; unknown ids are skipped. */
    assert_int_equal(store_attempt_list(fx->st, cs == NULL ? "" : "dlv_none", &as, &na), 0);
    assert_int_equal(na, 0);
    attempt_list_free(as, na);
    memset(&rs[0], 0, sizeof(rs[0]));
    snprintf(rs[0].attempt.delivery_id, ID_MAX, "dlv_none");
    rs[0].status = DELIVERY_DELIVERED;
    assert_int_equal(store_results_apply(fx->st, rs, 1, now), 0);
    for (i = 0; i < 2; i++)
        endpoint_cleanup(&eps[i]);
    event_cleanup(&ev);
    event_cleanup(&ev2);
}

static void
test_enable_resume_and_skip(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, got;
    struct event ev;
    struct delivery_filter f = { .status = -1, .limit = 100 };
    struct delivery *ds = NULL;
    size_t n = 0, i;
    int64_t resumed = -1, now = clock_now_ms();

    endpoint_make(fx->st, "acct_a", "", &ep);
    f.endpoint_id = ep.id;
    for (i = 0; i < 3; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "maintenance", now), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    assert_int_equal(got.status, ENDPOINT_DISABLED);
    assert_string_equal(got.disabled_reason, "maintenance");
    assert_int_equal(got.disabled_at, now);
    assert_int_equal(got.held, 3);
    endpoint_cleanup(&got);
    /* New events for a disabled endpoint are held too. */
    ep.status = ENDPOINT_DISABLED;
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);

    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 0, now + 10, &resumed), 0);
    assert_int_equal(resumed, 4);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    assert_int_equal(got.status, ENDPOINT_ENABLED);
    assert_null(got.disabled_reason);
    assert_int_equal(got.disabled_at, 0);
    assert_int_equal(got.held, 0);
    endpoint_cleanup(&got);
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 4);
    for (i = 0; i < n; i++) {
        assert_int_equal(ds[i].status, DELIVERY_PENDING);
        assert_int_equal(ds[i].next_attempt_at, now + 10);
        assert_int_equal(ds[i].round_start, ds[i].attempts_made);
    }
    delivery_list_free(ds, n);

    /* Disable again, enable skipping: they end as failed. */
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "again", now), 0);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 1, now, &resumed), 0);
    assert_int_equal(resumed, 4);
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(ds[i].status, DELIVERY_FAILED);
        assert_string_equal(ds[i].last_error, "skipped");
    }
    delivery_list_free(ds, n);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_b", ep.id, 0, now, &resumed),
                     ERR_NOTFOUND);
    endpoint_cleanup(&ep);
}

static int64_t
held_count(const struct fx *fx, const struct endpoint *ep, const char *status)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM deliveries WHERE endpoint_id = '%s' AND status = '%s'", ep->id,
             status);
    return sql_count(fx, sql);
}

/* ep (of acct_a) is in state status with held deliveries held (its count and its rows). */
static void
endpoint_state_check(struct fx *fx, const struct endpoint *ep, enum endpoint_status status,
                     int64_t held)
{
    struct endpoint got;

    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep->id, &got), 0);
    assert_int_equal(got.status, status);
    assert_int_equal(got.held, held);
    endpoint_cleanup(&got);
    assert_int_equal(held_count(fx, ep, "held"), held);
}

/* More held than one chunk: every one resumed (or skipped), over several writes. */
static void
test_enable_in_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 3 chunks at least: 100, 200 at most, ... */
    int64_t resumed = -1;

    endpoint_make(fx->st, "acct_a", "", &ep);
    held_make(fx->st, &ep, n);
    assert_int_equal(held_count(fx, &ep, "held"), (int64_t)n);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 0, 5, &resumed), 0);
    assert_int_equal(resumed, (int64_t)n);
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n);

    /* The same with skip_held: they all end as failed. */
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "again", 6), 0);
    assert_int_equal(held_count(fx, &ep, "held"), (int64_t)n);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 1, 7, &resumed), 0);
    assert_int_equal(resumed, (int64_t)n);
    assert_int_equal(held_count(fx, &ep, "failed"), (int64_t)n);
    endpoint_cleanup(&ep);
}

struct disable_on_due {
    struct store *st;
    const char *id;
    int calls;
};

/* Disables the endpoint as soon as the first chunk is announced. */
static void
disable_on_due(void *arg)
{
    struct disable_on_due *d = arg;

    if (d->calls++ == 0)
        assert_int_equal(store_endpoint_disable(d->st, "acct_a", d->id, "stop", 9), 0);
}

/* A disable between two chunks stops the enable: the rest stay held. */
static void
test_enable_stopped_by_disable(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 3 chunks at least: 100, 200 at most, ... */
    struct disable_on_due d = { .st = fx->st };
    int64_t resumed = -1;

    endpoint_make(fx->st, "acct_a", "", &ep);
    held_make(fx->st, &ep, n);
    d.id = ep.id;
    store_on_due(fx->st, disable_on_due, &d);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 0, 8, &resumed), 0);
    store_on_due(fx->st, NULL, NULL);
    /* The first chunk only; the disable held it again with the rest. */
    assert_int_equal(resumed, STORE_CHUNK_FIRST);
    assert_int_equal(d.calls, 1);
    endpoint_state_check(fx, &ep, ENDPOINT_DISABLED, (int64_t)n);
    endpoint_cleanup(&ep);
}

/*
 * An enable cut short by a crash (the endpoint enabled, deliveries still
 * held) is finished at the next open; a disabled endpoint keeps its held.
 */
static void
test_enable_finished_at_open(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, other;
    const size_t n = STORE_CHUNK_MAX / 2 + 3;
    char sql[160];

    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "", &other);
    held_make(fx->st, &ep, n);
    held_make(fx->st, &other, 5);
    store_close(fx->st);
    fx->st = NULL;
    snprintf(sql, sizeof(sql), "UPDATE endpoints SET status = 'enabled' WHERE id = '%s'", ep.id);
    sql_exec(fx, sql);
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n);
    assert_int_equal(held_count(fx, &other, "held"), 5);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&other);
}

/* What a test does between two chunks of a disable or a delete (st->on_cut_chunk). */
struct between_chunks {
    struct fx *fx;
    const struct endpoint *ep;    /* the endpoint being disabled or deleted */
    const struct endpoint *other; /* a healthy endpoint published to meanwhile */
    int deleting;                 /* ep is being deleted: its held ones are to move too */
    int enable;                   /* enable ep after the first chunk */
    int calls;
    int64_t left;    /* ep's deliveries still to move when the publish was answered */
    int ep_claimed;  /* claims took one of ep's deliveries */
    int64_t claimed; /* claims took this many of other's */
};

/*
 * After the first chunk: a publish to a healthy endpoint is answered while
 * the move goes on, and a claim of everything due takes nothing of ep.
 */
static void
between_chunks(void *arg)
{
    struct between_chunks *b = arg;
    struct event ev;
    struct claim *cs = NULL;
    size_t n = 0, i;

    if (b->calls++ != 0)
        return;
    assert_int_equal(publish(b->fx->st, "acct_a", "user.message", NULL, b->other, 1, &ev), 0);
    event_cleanup(&ev);
    b->left = held_count(b->fx, b->ep, "pending") +
              (b->deleting ? held_count(b->fx, b->ep, "held") : 0);
    /* At most 10 of ep's due ones are met (and held or ended), then other's. */
    assert_int_equal(store_claim(b->fx->st, clock_now_ms() + HOUR_MS, 30000, 100, 10, NULL, 0,
                                 &cs, &n),
                     0);
    for (i = 0; i < n; i++) {
        if (strcmp(cs[i].dlv.endpoint_id, b->ep->id) == 0)
            b->ep_claimed = 1;
        else
            b->claimed++;
    }
    claim_list_free(cs, n);
    if (b->enable)
        assert_int_equal(store_endpoint_enable(b->fx->st, "acct_a", b->ep->id, 0, 20, NULL), 0);
}

/*
 * A disable of an endpoint with more pending deliveries than a chunk: the
 * flip, then several chunks; a publish between them is answered before the
 * last, and nothing of the endpoint is claimed meanwhile; all end held.
 */
static void
test_disable_in_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, other;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 4 chunks at least: 50, 100, 200 at most, ... */
    struct between_chunks b = { .fx = fx, .ep = &ep, .other = &other };
    uint64_t chunks;

    if (!fx->sqlite)
        skip(); /* PostgreSQL holds them in the disable's own transaction */
    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "x.only", &other);
    batch_make(fx->st, &ep, n);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n);
    fx->st->on_cut_chunk = between_chunks;
    fx->st->on_cut_chunk_arg = &b;
    chunks = atomic_load(&fx->st->cut_chunks);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "big", 10), 0);
    fx->st->on_cut_chunk = NULL;
    chunks = atomic_load(&fx->st->cut_chunks) - chunks;
    assert_true(chunks >= 4);
    assert_int_equal(b.calls, (int)chunks);
    /* The publish was answered with most of the move still to do. */
    assert_true(b.left > (int64_t)n / 2);
    assert_false(b.ep_claimed);
    assert_int_equal(b.claimed, 1);
    assert_int_equal(held_count(fx, &ep, "pending"), 0);
    assert_int_equal(held_count(fx, &ep, "held"), (int64_t)n);
    endpoint_state_check(fx, &ep, ENDPOINT_DISABLED, (int64_t)n);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&other);
}

static void
count_calls(void *arg)
{
    (*(int *)arg)++;
}

/*
 * A delete of an endpoint with more pending (or held) deliveries than a
 * chunk: the flip, then several chunks, a publish answered between them,
 * nothing of the endpoint claimed meanwhile; all end failed.
 */
static void
test_delete_in_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, held, other;
    const size_t n = STORE_CHUNK_MAX / 2 + 7;
    struct between_chunks b = { .fx = fx, .ep = &ep, .other = &other, .deleting = 1 };
    char sql[256];
    uint64_t chunks;
    int calls = 0;

    if (!fx->sqlite)
        skip(); /* PostgreSQL ends them in the delete's own transaction */
    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "", &held);
    endpoint_make(fx->st, "acct_a", "x.only", &other);
    batch_make(fx->st, &ep, n);
    held_make(fx->st, &held, n);

    /* Pending ones. */
    fx->st->on_cut_chunk = between_chunks;
    fx->st->on_cut_chunk_arg = &b;
    chunks = atomic_load(&fx->st->cut_chunks);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", ep.id), 0);
    chunks = atomic_load(&fx->st->cut_chunks) - chunks;
    assert_true(chunks >= 4);
    assert_int_equal(b.calls, (int)chunks);
    assert_true(b.left > (int64_t)n / 2);
    assert_false(b.ep_claimed);
    assert_int_equal(b.claimed, 1);
    assert_int_equal(held_count(fx, &ep, "pending"), 0);
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(held_count(fx, &ep, "failed"), (int64_t)n);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM deliveries WHERE endpoint_id = '%s' AND "
             "last_error = 'endpoint deleted'",
             ep.id);
    assert_int_equal(sql_count(fx, sql), (int64_t)n);

    /* Held ones. */
    fx->st->on_cut_chunk = count_calls;
    fx->st->on_cut_chunk_arg = &calls;
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", held.id), 0);
    fx->st->on_cut_chunk = NULL;
    assert_true(calls >= 4);
    assert_int_equal(held_count(fx, &held, "held"), 0);
    assert_int_equal(held_count(fx, &held, "failed"), (int64_t)n);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", held.id), ERR_NOTFOUND);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&held);
    endpoint_cleanup(&other);
}

/* An enable between a disable's chunks stops them: the endpoint ends enabled, nothing held. */
static void
test_disable_stopped_by_enable(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, other;
    const size_t n = STORE_CHUNK_MAX / 2 + 7;
    struct between_chunks b = { .fx = fx, .ep = &ep, .other = &other, .enable = 1 };

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "x.only", &other);
    batch_make(fx->st, &ep, n);
    fx->st->on_cut_chunk = between_chunks;
    fx->st->on_cut_chunk_arg = &b;
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "brief", 10), 0);
    fx->st->on_cut_chunk = NULL;
    /* The first chunk, then the one that found the endpoint enabled (it moved none). */
    assert_int_equal(b.calls, 2);
    endpoint_state_check(fx, &ep, ENDPOINT_ENABLED, 0);
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(held_count(fx, &ep, "pending") + held_count(fx, &ep, "delivering"),
                     (int64_t)n);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&other);
}

/*
 * The results job's disable flips the endpoint in the results' transaction;
 * its pending deliveries are held after it, in chunks.
 */
static void
test_disable_auto_in_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    const size_t n = STORE_CHUNK_MAX / 2 + 7;
    struct claim *cs = NULL;
    struct attempt_result r;
    size_t nc = 0;
    int64_t now = clock_now_ms();
    int calls = 0;

    endpoint_make(fx->st, "acct_a", "", &ep);
    batch_make(fx->st, &ep, n);
    assert_int_equal(store_claim(fx->st, now + MIN_MS, 30000, 1, 0, NULL, 0, &cs, &nc), 0);
    assert_int_equal(nc, 1);
    result_for(&r, &cs[0], DELIVERY_FAILED, 500, "HTTP 500", now + MIN_MS, 5);
    r.disable_endpoint = 1;
    r.disable_reason = "retries exhausted";
    r.endpoint_id = cs[0].dlv.endpoint_id;
    r.account_id = cs[0].dlv.account_id;
    fx->st->on_cut_chunk = count_calls;
    fx->st->on_cut_chunk_arg = &calls;
    assert_int_equal(store_results_apply(fx->st, &r, 1, now + MIN_MS + 1), 0);
    fx->st->on_cut_chunk = NULL;
    if (fx->sqlite)
        assert_true(calls >= 4);
    endpoint_state_check(fx, &ep, ENDPOINT_DISABLED, (int64_t)n - 1);
    assert_int_equal(held_count(fx, &ep, "pending"), 0);
    assert_int_equal(held_count(fx, &ep, "failed"), 1);
    claim_list_free(cs, nc);
    endpoint_cleanup(&ep);
}

/*
 * A disable or a delete cut short by a crash (flipped, deliveries not yet
 * moved) is finished at the next open; an enabled endpoint keeps its pending.
 */
static void
test_cut_finished_at_open(void **state)
{
    struct fx *fx = *state;
    struct endpoint dis, del, del_held, on;
    const size_t n = STORE_CHUNK_MAX / 2 + 3;
    char sql[256];

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &dis);
    endpoint_make(fx->st, "acct_a", "", &del);
    endpoint_make(fx->st, "acct_a", "", &del_held);
    endpoint_make(fx->st, "acct_a", "", &on);
    batch_make(fx->st, &dis, n);
    batch_make(fx->st, &del, 5);
    held_make(fx->st, &del_held, 7);
    batch_make(fx->st, &on, 5);
    store_close(fx->st);
    fx->st = NULL;
    snprintf(sql, sizeof(sql), "UPDATE endpoints SET status = 'disabled' WHERE id = '%s'", dis.id);
    sql_exec(fx, sql);
    snprintf(sql, sizeof(sql), "UPDATE endpoints SET deleted_at = 3 WHERE id IN ('%s', '%s')",
             del.id, del_held.id);
    sql_exec(fx, sql);
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(held_count(fx, &dis, "pending"), 0);
    assert_int_equal(held_count(fx, &dis, "held"), (int64_t)n);
    assert_int_equal(held_count(fx, &del, "pending"), 0);
    assert_int_equal(held_count(fx, &del, "failed"), 5);
    assert_int_equal(held_count(fx, &del_held, "held"), 0);
    assert_int_equal(held_count(fx, &del_held, "failed"), 7);
    assert_int_equal(held_count(fx, &on, "pending"), 5);
    endpoint_cleanup(&dis);
    endpoint_cleanup(&del);
    endpoint_cleanup(&del_held);
    endpoint_cleanup(&on);
}

/* n failed deliveries of ep (held, then skipped by an enable): the matter of a replay. */
static void
failed_make(struct fx *fx, struct endpoint *ep, size_t n)
{
    int64_t skipped = -1;

    held_make(fx->st, ep, n);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep->id, 1, 2, &skipped), 0);
    assert_int_equal(skipped, (int64_t)n);
    ep->status = ENDPOINT_ENABLED;
}

/*
 * More than a chunk to replay: every one delivered again, over several
 * writes, and the record of the replay gone after the last; deliveries of
 * another status in the range stay as they are.
 */
static void
test_replay_in_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 3 chunks at least: 100, 200 at most, ... */
    int64_t count = -1;
    int i;

    endpoint_make(fx->st, "acct_a", "", &ep);
    failed_make(fx, &ep, n);
    /* Pending ones after them: not what the replay takes. */
    for (i = 0; i < 5; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, -1, 5, &count), 0);
    assert_int_equal(count, (int64_t)n);
    assert_int_equal(held_count(fx, &ep, "failed"), 0);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n + 5);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM replays"), 0);
    endpoint_cleanup(&ep);
}

/* Publishes to an endpoint as soon as the first chunk of a replay is announced. */
struct publish_on_due {
    struct store *st;
    struct endpoint *ep;
    int calls;
};

static void
publish_on_due(void *arg)
{
    struct publish_on_due *d = arg;
    struct event ev;
    int i;

    if (d->calls++ > 0)
        return;
    for (i = 0; i < 3; i++) {
        assert_int_equal(publish(d->st, "acct_a", "user.message", NULL, d->ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
}

/*
 * A replay without an end takes what exists when it is called: deliveries
 * published while its chunks run are not taken with it.
 */
static void
test_replay_takes_what_exists_at_the_call(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 3 chunks at least */
    struct publish_on_due d = { .st = fx->st, .ep = &ep };
    int64_t count = -1;

    endpoint_make(fx->st, "acct_a", "", &ep);
    held_make(fx->st, &ep, n);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 0, 2, &count), 0);
    assert_int_equal(count, (int64_t)n);
    ep.status = ENDPOINT_ENABLED;
    store_on_due(fx->st, publish_on_due, &d);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, DELIVERY_PENDING, 5,
                                           &count),
                     0);
    store_on_due(fx->st, NULL, NULL);
    assert_int_equal(d.calls > 0, 1);
    assert_int_equal(count, (int64_t)n);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n + 3);
    endpoint_cleanup(&ep);
}

/* Changes the endpoint as soon as the first chunk is announced (deletes it with `delete`). */
struct change_on_due {
    struct store *st;
    const char *id;
    int delete;
    int calls;
};

static void
change_on_due(void *arg)
{
    struct change_on_due *d = arg;

    if (d->calls++ > 0)
        return;
    if (d->delete)
        assert_int_equal(store_endpoint_delete(d->st, "acct_a", d->id), 0);
    else
        assert_int_equal(store_endpoint_disable(d->st, "acct_a", d->id, "stop", 9), 0);
}

/*
 * A disable between two chunks of a replay: the rest are held, none lost,
 * the count whole. A deletion between them ends the replay (the deliveries
 * not yet taken stay as they were) and its record.
 */
static void
test_replay_changed_between_chunks(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    const size_t n = STORE_CHUNK_MAX / 2 + 7; /* 3 chunks at least: 100, 200 at most, ... */
    struct change_on_due d = { .st = fx->st };
    int64_t count = -1;

    endpoint_make(fx->st, "acct_a", "", &ep);
    failed_make(fx, &ep, n);
    d.id = ep.id;
    store_on_due(fx->st, change_on_due, &d);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, -1, 5, &count), 0);
    store_on_due(fx->st, NULL, NULL);
    assert_int_equal(count, (int64_t)n);
    assert_int_equal(held_count(fx, &ep, "held"), (int64_t)n);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM replays"), 0);

    /* Again, enabled, deleted after the first chunk. */
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 1, 6, &count), 0);
    assert_int_equal(count, (int64_t)n);
    d = (struct change_on_due){ .st = fx->st, .id = ep.id, .delete = 1 };
    store_on_due(fx->st, change_on_due, &d);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, -1, 7, &count), 0);
    store_on_due(fx->st, NULL, NULL);
    assert_int_equal(count, STORE_CHUNK_FIRST);
    assert_int_equal(held_count(fx, &ep, "failed"), (int64_t)n);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM replays"), 0);
    endpoint_cleanup(&ep);
}

/*
 * A replay cut short by a crash (its record left, some deliveries still to
 * go) goes on at the next open, and only over the ids it had left.
 */
static void
test_replay_finished_at_open(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, other;
    const size_t n = STORE_CHUNK_MAX / 2 + 3;
    char sql[400];

    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "", &other);
    failed_make(fx, &ep, n);
    held_make(fx->st, &other, 7);
    store_close(fx->st);
    fx->st = NULL;
    /* An enable cut short too: both are finished at open. */
    snprintf(sql, sizeof(sql), "UPDATE endpoints SET status = 'enabled' WHERE id = '%s'",
             other.id);
    sql_exec(fx, sql);
    /* The oldest 10 were left as they were: the record goes on from the 11th. */
    if (fx->sqlite)
        snprintf(sql, sizeof(sql),
                 "INSERT INTO replays (endpoint_id, from_status, from_status2, next_id, until_id, "
                 "created_at) SELECT '%s', 'failed', 'failed', id, 'dlv_~', 1 FROM deliveries "
                 "WHERE endpoint_id = '%s' ORDER BY id LIMIT 1 OFFSET 10",
                 ep.id, ep.id);
    else
        snprintf(sql, sizeof(sql),
                 "INSERT INTO replays (endpoint_id, statuses, next_id, until_id, created_at) "
                 "SELECT '%s', '{failed}', id, 'dlv_~', 1 FROM deliveries "
                 "WHERE endpoint_id = '%s' ORDER BY id LIMIT 1 OFFSET 10",
                 ep.id, ep.id);
    sql_exec(fx, sql);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM replays"), 1);
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM replays"), 0);
    assert_int_equal(held_count(fx, &ep, "failed"), 10);
    assert_int_equal(held_count(fx, &ep, "pending"), (int64_t)n - 10);
    assert_int_equal(held_count(fx, &other, "pending"), 7);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&other);
}

/* Claims everything due and answers it with status s. */
static void
settle_all(struct store *st, int64_t now, enum delivery_status s)
{
    struct claim *cs = NULL;
    struct attempt_result *rs;
    size_t n = 0, i;

    assert_int_equal(store_claim(st, now, 1000, 500, 0, NULL, 0, &cs, &n), 0);
    rs = calloc(n + 1, sizeof(*rs));
    assert_non_null(rs);
    for (i = 0; i < n; i++)
        result_for(&rs[i], &cs[i], s, s == DELIVERY_DELIVERED ? 200 : 400, NULL, now, 1);
    assert_int_equal(store_results_apply(st, rs, n, now), 0);
    free(rs);
    claim_list_free(cs, n);
}

static void
test_retry_and_replay(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev;
    struct delivery *ds = NULL, d;
    struct claim *cs = NULL;
    struct delivery_filter f = { .status = -1, .limit = 100 };
    size_t n = 0, nc = 0, i;
    int64_t count = -1, now = clock_now_ms() + 1, t0;

    endpoint_make(fx->st, "acct_a", "", &ep);
    f.endpoint_id = ep.id;
    t0 = clock_now_ms();
    for (i = 0; i < 4; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    now = clock_now_ms() + 1;
    settle_all(fx->st, now, DELIVERY_DELIVERED);
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 4);

    /* Retry: a new round, due now. */
    assert_int_equal(store_delivery_retry(fx->st, "acct_a", ds[0].id, now + 5), 0);
    assert_int_equal(store_delivery_get(fx->st, "acct_a", ds[0].id, &d), 0);
    assert_int_equal(d.status, DELIVERY_PENDING);
    assert_int_equal(d.next_attempt_at, now + 5);
    assert_int_equal(d.attempts_made, 1);
    assert_int_equal(d.round_start, 1);
    delivery_cleanup(&d);
    assert_int_equal(store_delivery_retry(fx->st, "acct_b", ds[0].id, now), ERR_NOTFOUND);
    assert_int_equal(store_delivery_retry(fx->st, "acct_a", "dlv_nope", now), ERR_NOTFOUND);
    /* While it is being delivered: conflict. */
    assert_int_equal(store_claim(fx->st, now + 5, 1000, 10, 0, NULL, 0, &cs, &nc), 0);
    assert_int_equal(nc, 1);
    assert_int_equal(store_delivery_retry(fx->st, "acct_a", ds[0].id, now), ERR_CONFLICT);
    settle_all(fx->st, now + 2000, DELIVERY_FAILED);
    claim_list_free(cs, nc);
    assert_int_equal(status_of(fx->st, "acct_a", ds[0].id), DELIVERY_FAILED);

    /* Replay: 3 delivered + 1 failed by default; by status; by time range. */
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, t0, 0, DELIVERY_FAILED,
                                           now, &count),
                     0);
    assert_int_equal(count, 1);
    assert_int_equal(status_of(fx->st, "acct_a", ds[0].id), DELIVERY_PENDING);
    settle_all(fx->st, now + 3000, DELIVERY_FAILED);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, t0, 0, -1, now, &count), 0);
    assert_int_equal(count, 4);
    settle_all(fx->st, now + 4000, DELIVERY_DELIVERED);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, now + HOUR_MS, 0, -1, now,
                                           &count),
                     0);
    assert_int_equal(count, 0);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, t0 - 1, -1, now, &count),
                     0);
    assert_int_equal(count, 0);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_b", ep.id, 0, 0, -1, now, &count),
                     ERR_NOTFOUND);
    /* A replay into a disabled endpoint holds. */
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "x", now), 0);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, -1, now, &count), 0);
    assert_int_equal(count, 4);
    assert_int_equal(status_of(fx->st, "acct_a", ds[3].id), DELIVERY_HELD);
    assert_int_equal(store_delivery_get(fx->st, "acct_a", ds[3].id, &d), 0);
    assert_int_equal(d.attempts_made, 2);
    assert_int_equal(d.round_start, 2);
    delivery_cleanup(&d);

    delivery_list_free(ds, n);
    endpoint_cleanup(&ep);
}

static void
test_delete_endpoint_ends_deliveries(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev;
    struct delivery *ds = NULL;
    struct delivery_filter f = { .status = -1, .limit = 100 };
    size_t n = 0, i;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", eps[0].id, "x", 1), 0);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", eps[0].id), 0);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", eps[1].id), 0);
    /* Their history stays readable. */
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    assert_int_equal(n, 4);
    for (i = 0; i < n; i++) {
        assert_int_equal(ds[i].status, DELIVERY_FAILED);
        assert_string_equal(ds[i].last_error, "endpoint deleted");
        assert_int_equal(store_delivery_retry(fx->st, "acct_a", ds[i].id, 1), ERR_CONFLICT);
    }
    delivery_list_free(ds, n);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

static void
test_stats(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev;
    struct claim *cs = NULL;
    struct attempt_result *rs;
    struct stats s;
    struct stats_bucket *bs = NULL;
    int64_t counts[DELIVERY__COUNT];
    size_t n = 0, nb = 0, i;
    int64_t t0 = clock_now_ms(), base;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    assert_int_equal(store_stats(fx->st, "acct_a", NULL, t0 - HOUR_MS, &s), 0);
    assert_int_equal(s.attempts, 0);
    assert_int_equal(s.p50_ms, -1);
    assert_int_equal(s.p99_ms, -1);

    /* 100 deliveries to eps[0], durations 1..100 ms; one more to eps[1]. */
    for (i = 0; i < 100; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[0], 1, &ev), 0);
        event_cleanup(&ev);
    }
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[1], 1, &ev), 0);
    event_cleanup(&ev);
    base = (clock_now_ms() / MIN_MS + 1) * MIN_MS; /* attempts land in whole minutes */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 1000, 500, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 101);
    rs = calloc(n, sizeof(*rs));
    assert_non_null(rs);
    for (i = 0; i < n; i++) {
        int on0 = strcmp(cs[i].dlv.endpoint_id, eps[0].id) == 0;
        int64_t ms = on0 ? (int64_t)(i % 100) + 1 : 1000;
        /* Minute 0: 2xx; minute 1: every third fails for good, the rest retry. */
        int ok = i < 50;
        enum delivery_status st = ok ? DELIVERY_DELIVERED
                                     : (i % 3 == 0 ? DELIVERY_FAILED : DELIVERY_PENDING);
        result_for(&rs[i], &cs[i], st, ok ? 200 : 500, ok ? NULL : "HTTP 500",
                   base + (ok ? 0 : MIN_MS) + (int64_t)i, ms);
        rs[i].next_attempt_at = base + HOUR_MS;
    }
    assert_int_equal(store_results_apply(fx->st, rs, n, base), 0);

    assert_int_equal(store_stats(fx->st, "acct_a", eps[0].id, t0, &s), 0);
    assert_int_equal(s.attempts, 100);
    assert_int_equal(s.attempts_ok, 50);
    assert_int_equal(s.p50_ms, 50);
    assert_int_equal(s.p95_ms, 95);
    assert_int_equal(s.p99_ms, 99);
    assert_int_equal(s.by_status[DELIVERY_DELIVERED] + s.by_status[DELIVERY_FAILED] +
                         s.by_status[DELIVERY_PENDING],
                     100);
    assert_int_equal(s.by_status[DELIVERY_DELIVERED], 50);
    assert_int_equal(store_stats(fx->st, "acct_a", NULL, t0, &s), 0);
    assert_int_equal(s.attempts, 101);
    assert_int_equal(s.p99_ms, 100);
    assert_int_equal(s.p95_ms, 96);
    assert_int_equal(store_stats(fx->st, "acct_b", eps[0].id, t0, &s), 0);
    assert_int_equal(s.attempts, 0);
    assert_int_equal(s.by_status[DELIVERY_DELIVERED], 0);
    /* Deliveries created before `since` are not counted. */
    assert_int_equal(store_stats(fx->st, "acct_a", eps[0].id, clock_now_ms() + HOUR_MS, &s), 0);
    assert_int_equal(s.by_status[DELIVERY_DELIVERED], 0);

    assert_int_equal(store_stats_series(fx->st, "acct_a", NULL, base, MIN_MS, base + 3 * MIN_MS,
                                        &bs, &nb),
                     0);
    assert_int_equal(nb, 3);
    assert_int_equal(bs[0].start, base);
    assert_int_equal(bs[1].start, base + MIN_MS);
    assert_int_equal(bs[0].delivered, 50);
    assert_int_equal(bs[0].failed + bs[0].retried, 0);
    assert_int_equal(bs[1].delivered, 0);
    assert_int_equal(bs[1].failed + bs[1].retried, 51);
    assert_int_equal(bs[1].failed, 17);
    assert_int_equal(bs[2].delivered + bs[2].failed + bs[2].retried, 0);
    assert_int_equal(bs[2].p50_ms, -1);
    /* Minute 0 holds durations 1..50: p50 = 25, p95 = 48. */
    assert_int_equal(bs[0].p50_ms, 25);
    assert_int_equal(bs[0].p95_ms, 48);
    free(bs);
    assert_int_equal(store_stats_series(fx->st, "acct_a", eps[1].id, base, MIN_MS,
                                        base + 2 * MIN_MS, &bs, &nb),
                     0);
    assert_int_equal(nb, 2);
    assert_int_equal(bs[1].retried + bs[1].failed, 1);
    assert_int_equal(bs[1].p50_ms, 1000);
    free(bs);
    assert_int_equal(store_stats_series(fx->st, "acct_a", NULL, base, 0, base, &bs, &nb),
                     ERR_INVAL);

    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_DELIVERED], 50);
    assert_int_equal(counts[DELIVERY_DELIVERING], 0);
    assert_int_equal(counts[DELIVERY_DELIVERED] + counts[DELIVERY_FAILED] +
                         counts[DELIVERY_PENDING],
                     101);
    free(rs);
    claim_list_free(cs, n);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

static uint64_t rnd_state;

static uint64_t
rnd(uint64_t n)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return n == 0 ? 0 : (rnd_state >> 33) % n;
}

/* A duration as receivers give them: mostly fast, some slow, a few very slow. */
static int64_t
rnd_duration(void)
{
    uint64_t k = rnd(100);

    if (k < 50)
        return (int64_t)rnd(128);
    if (k < 95)
        return 128 + (int64_t)rnd(5000);
    return 5000 + (int64_t)rnd(200000);
}

/* Claims some due deliveries and gives each a random outcome, at random times of the last day. */
static void
random_results(struct fx *fx, int64_t now)
{
    struct claim *cs = NULL;
    struct attempt_result *rs;
    const char **rel;
    int64_t *tokens;
    size_t n = 0, i, nr = 0, nrel = 0;

    assert_int_equal(store_claim(fx->st, clock_now_ms(), 60000, 1 + (int)rnd(60), 0, NULL, 0,
                                 &cs, &n),
                     0);
    rs = calloc(n + 1, sizeof(*rs));
    rel = calloc(n + 1, sizeof(*rel));
    tokens = calloc(n + 1, sizeof(*tokens));
    assert_true(rs != NULL && rel != NULL && tokens != NULL);
    for (i = 0; i < n; i++) {
        uint64_t k = rnd(10);
        int64_t at = now - (int64_t)rnd(26 * HOUR_MS);

        if (k == 0)
            continue; /* stays delivering */
        if (k == 1) {
            rel[nrel] = cs[i].dlv.id;
            tokens[nrel++] = cs[i].dlv.lease_token;
            continue;
        }
        if (k < 5)
            result_for(&rs[nr], &cs[i], DELIVERY_DELIVERED, k == 2 ? 204 : 200, NULL, at,
                       rnd_duration());
        else if (k < 7)
            result_for(&rs[nr], &cs[i], DELIVERY_FAILED, 410, "HTTP 410", at, rnd_duration());
        else
            result_for(&rs[nr], &cs[i], DELIVERY_PENDING, k == 9 ? 0 : 503,
                       k == 9 ? "timeout" : "HTTP 503", at, rnd_duration());
        rs[nr].next_attempt_at = clock_now_ms();
        nr++;
    }
    if (nr > 0)
        assert_int_equal(store_results_apply(fx->st, rs, nr, clock_now_ms()), 0);
    if (nrel > 0)
        assert_int_equal(store_release(fx->st, rel, tokens, nrel), 0);
    free(tokens);
    free(rel);
    free(rs);
    claim_list_free(cs, n);
}

/*
 * Random histories: publishes, claims, results at random times of the last
 * day, releases, disables, enables (resuming or skipping), retries, replays
 * and a deletion. After each round the statistics read from the rollups
 * match a count of the rows, for the account and each endpoint, over
 * windows on and off whole minutes, and so does each bucket of both series.
 */
static void
test_stats_random_histories(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[4];
    struct event ev;
    struct delivery *ds = NULL;
    struct delivery_filter f = { .status = -1, .limit = 50 };
    int64_t now, count, sinces[5];
    size_t nd = 0, i, j;
    int round;

    rnd_state = (uint64_t)time(NULL);
    print_message("random histories: seed %llu\n", (unsigned long long)rnd_state);
    for (i = 0; i < 3; i++)
        endpoint_make(fx->st, "acct_a", "", &eps[i]);
    endpoint_make(fx->st, "acct_b", "", &eps[3]);
    for (round = 0; round < 6; round++) {
        int npub = 20 + (int)rnd(60);

        for (i = 0; i < (size_t)npub; i++) {
            size_t first = (size_t)rnd(3), k = 1 + (size_t)rnd(3 - first);

            assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &eps[first], k, &ev),
                             0);
            event_cleanup(&ev);
        }
        assert_int_equal(publish(fx->st, "acct_b", "user.message", NULL, &eps[3], 1, &ev), 0);
        event_cleanup(&ev);
        now = clock_now_ms();
        for (i = 0; i < 3; i++)
            random_results(fx, now);
        i = (size_t)rnd(round > 4 ? 2 : 3); /* eps[2] is deleted in round 4 */
        switch (rnd(5)) {
        case 0:
            assert_int_equal(store_endpoint_disable(fx->st, "acct_a", eps[i].id, "test", now), 0);
            break;
        case 1:
            assert_int_equal(store_endpoint_enable(fx->st, "acct_a", eps[i].id, (int)rnd(2), now,
                                                   &count),
                             0);
            break;
        case 2:
            assert_int_equal(store_endpoint_replay(fx->st, "acct_a", eps[i].id, 0, 0, -1, now,
                                                   &count),
                             0);
            break;
        default:
            f.status = rnd(2) ? DELIVERY_FAILED : DELIVERY_DELIVERED;
            assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &nd), 0);
            for (j = 0; j < nd; j += 2) {
                int err = store_delivery_retry(fx->st, "acct_a", ds[j].id, now);

                /* Those of the deleted endpoint cannot be sent again. */
                assert_true(err == 0 || (err == ERR_CONFLICT &&
                                         strcmp(ds[j].endpoint_id, eps[2].id) == 0));
            }
            delivery_list_free(ds, nd);
            ds = NULL;
            break;
        }
        if (round == 4)
            assert_int_equal(store_endpoint_delete(fx->st, "acct_a", eps[2].id), 0);

        now = clock_now_ms();
        sinces[0] = 0;
        sinces[1] = now - HOUR_MS;
        sinces[2] = now - 24 * HOUR_MS;
        sinces[3] = (now - 37 * MIN_MS) / MIN_MS * MIN_MS;
        sinces[4] = now - 90 * MIN_MS - 17123;
        for (j = 0; j < 5; j++) {
            stats_check(fx, "acct_a", NULL, sinces[j]);
            for (i = 0; i < 4; i++)
                stats_check(fx, i == 3 ? "acct_b" : "acct_a", eps[i].id, sinces[j]);
        }
        series_check(fx, "acct_a", NULL, (now / MIN_MS - 59) * MIN_MS, MIN_MS, now);
        series_check(fx, "acct_a", eps[0].id, (now / MIN_MS - 59) * MIN_MS, MIN_MS, now);
        series_check(fx, "acct_a", NULL, (now / HOUR_MS - 23) * HOUR_MS, HOUR_MS, now);
        series_check(fx, "acct_a", eps[1].id, (now / HOUR_MS - 23) * HOUR_MS, HOUR_MS, now);
    }
    for (i = 0; i < 4; i++)
        endpoint_cleanup(&eps[i]);
}

/*
 * The head of an account's window (the part before its first whole minute)
 * counts the attempts of every endpoint the account has or had: migration
 * 014 reads them one endpoint at a time. Two endpoints' attempts inside the
 * head, one endpoint deleted since, a deliberately small latency for each.
 */
static void
test_stats_head_every_endpoint(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct event ev;
    struct claim *cs = NULL;
    struct attempt_result rs[2];
    struct stats s;
    int64_t since = (clock_now_ms() / MIN_MS - 5) * MIN_MS + 10000;
    size_t n = 0, i;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, 60000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 2);
    for (i = 0; i < n; i++)
        result_for(&rs[i], &cs[i], DELIVERY_DELIVERED, 200, NULL, since + 1000 * (int64_t)(i + 1),
                   3 + (int64_t)i);
    assert_int_equal(store_results_apply(fx->st, rs, n, clock_now_ms()), 0);
    claim_list_free(cs, n);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", eps[1].id), 0);

    assert_int_equal(store_stats(fx->st, "acct_a", NULL, since, &s), 0);
    assert_int_equal(s.attempts, 2);
    assert_int_equal(s.attempts_ok, 2);
    assert_int_equal(s.p99_ms, 4);
    /* A window that starts after them leaves both out. */
    assert_int_equal(store_stats(fx->st, "acct_a", NULL, since + 2500, &s), 0);
    assert_int_equal(s.attempts, 0);
    stats_check(fx, "acct_a", NULL, since);
    for (i = 0; i < 2; i++) {
        stats_check(fx, "acct_a", eps[i].id, since);
        endpoint_cleanup(&eps[i]);
    }
}

/*
 * "sqlite::memory:" runs everything on one connection: reads go through the
 * writer. SQLite only.
 */
static void
test_memory_store(void **state)
{
    struct store *st = NULL;
    struct account a = { .name = "M" };
    struct endpoint ep, *eps = NULL;
    struct event ev, got;
    struct claim *cs = NULL;
    struct attempt_result r;
    struct delivery d;
    int64_t counts[DELIVERY__COUNT];
    size_t n = 0;

    (void)state;
    if (backend_sqlite() != 1)
        skip();
    assert_int_equal(store_open("sqlite::memory:", &st), 0);
    snprintf(a.id, sizeof(a.id), "acct_a");
    assert_int_equal(store_account_insert(st, &a), 0);
    endpoint_make(st, "acct_a", "user.message", &ep);
    assert_int_equal(store_endpoint_subscribed(st, "acct_a", "user.message", &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(publish(st, "acct_a", "user.message", "k", eps, n, &ev), 0);
    endpoint_list_free(eps, n);
    assert_int_equal(store_event_get(st, "acct_a", ev.id, &got), 0);
    assert_memory_equal(got.body, ev.body, ev.body_len);
    event_cleanup(&got);
    assert_int_equal(store_claim(st, clock_now_ms() + 1, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    result_for(&r, &cs[0], DELIVERY_DELIVERED, 204, NULL, clock_now_ms(), 3);
    assert_int_equal(store_results_apply(st, &r, 1, clock_now_ms()), 0);
    assert_int_equal(store_delivery_get(st, "acct_a", cs[0].dlv.id, &d), 0);
    assert_int_equal(d.status, DELIVERY_DELIVERED);
    delivery_cleanup(&d);
    claim_list_free(cs, n);
    assert_int_equal(store_count_by_status(st, counts), 0);
    assert_int_equal(counts[DELIVERY_DELIVERED], 1);
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
    store_close(st);
}

static void
on_due(void *arg)
{
    int *calls = arg;

    (*calls)++;
}

static void
test_on_due(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev;
    int calls = 0;
    int64_t count;

    endpoint_make(fx->st, "acct_a", "", &ep);
    store_on_due(fx->st, on_due, &calls);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    assert_int_equal(calls, 1);
    event_cleanup(&ev);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, NULL, 0, &ev), 0);
    assert_int_equal(calls, 1);
    event_cleanup(&ev);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", ep.id, "x", 1), 0);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", ep.id, 0, 2, &count), 0);
    assert_int_equal(calls, 2);
    assert_int_equal(store_endpoint_replay(fx->st, "acct_a", ep.id, 0, 0, DELIVERY_PENDING, 3,
                                           &count),
                     0);
    assert_int_equal(calls, 3);
    store_on_due(fx->st, NULL, NULL);
    endpoint_cleanup(&ep);
}

/* A callback that stays inside until the test lets it return. */
struct due_race {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store *st;
    struct endpoint ep; /* the publisher's endpoint */
    int entered;        /* 1: the callback is running */
    int gate;           /* 1: the callback may return */
    int left;           /* 1: the callback is about to return */
    int unregistered;   /* 1: store_on_due(st, NULL, NULL) returned */
    int left_at_unreg;  /* left when it returned */
    int publish_err;
};

/* Waits on r->cv until *flag is set or ms pass. Returns *flag. r->mu is held. */
static int
race_wait(struct due_race *r, const int *flag, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!*flag && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
        ;
    return *flag;
}

static void
race_on_due(void *arg)
{
    struct due_race *r = arg;

    pthread_mutex_lock(&r->mu);
    r->entered = 1;
    pthread_cond_broadcast(&r->cv);
    race_wait(r, &r->gate, 10000);
    r->left = 1;
    pthread_mutex_unlock(&r->mu);
}

static void *
race_publisher(void *arg)
{
    struct due_race *r = arg;
    struct event ev;

    r->publish_err = publish(r->st, "acct_a", "user.message", NULL, &r->ep, 1, &ev);
    event_cleanup(&ev);
    if (r->publish_err != 0) {
        /* No callback comes (out of memory): the test goes on to fail on publish_err. */
        pthread_mutex_lock(&r->mu);
        r->entered = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static void *
race_unregister(void *arg)
{
    struct due_race *r = arg;

    store_on_due(r->st, NULL, NULL);
    pthread_mutex_lock(&r->mu);
    r->unregistered = 1;
    r->left_at_unreg = r->left;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/*
 * Unregistering waits for a callback under way: the dispatcher frees what the
 * callback uses right after store_on_due(st, NULL, NULL) returns. The
 * callback is held inside for up to 300 ms after the unregistering starts; an
 * unregistering that returns during that window, before the callback left,
 * fails.
 */
static void
test_on_due_unregister_waits(void **state)
{
    struct fx *fx = *state;
    struct due_race r;
    pthread_t pub, unreg;
    int entered;

    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.st = fx->st;
    endpoint_make(fx->st, "acct_a", "", &r.ep);
    store_on_due(fx->st, race_on_due, &r);
    assert_int_equal(pthread_create(&pub, NULL, race_publisher, &r), 0);
    pthread_mutex_lock(&r.mu);
    entered = race_wait(&r, &r.entered, 10000);
    pthread_mutex_unlock(&r.mu);
    if (!entered) {
        /* No callback came (an allocation failed on its way): end the thread before failing. */
        store_on_due(fx->st, NULL, NULL);
        pthread_join(pub, NULL);
        endpoint_cleanup(&r.ep);
        fail_msg("no callback for the publish (publish_err=%d)", r.publish_err);
    }
    assert_int_equal(pthread_create(&unreg, NULL, race_unregister, &r), 0);
    pthread_mutex_lock(&r.mu);
    race_wait(&r, &r.unregistered, 300);
    r.gate = 1;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    pthread_join(unreg, NULL);
    pthread_join(pub, NULL);
    assert_int_equal(r.publish_err, 0);
    assert_int_equal(r.unregistered, 1);
    if (!r.left_at_unreg)
        fail_msg("store_on_due(NULL) returned while the callback was still running");
    endpoint_cleanup(&r.ep);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
}

/* --- concurrency, durability --- */

#define THREADS 8
#define PER_THREAD 250

struct pub_thread {
    struct store *st;
    const struct endpoint *eps;
    int failures;
};

static void *
publisher(void *arg)
{
    struct pub_thread *t = arg;
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        struct event ev;
        if (publish(t->st, "acct_a", "user.message", NULL, t->eps, 2, &ev) != 0)
            t->failures++;
        event_cleanup(&ev);
    }
    return NULL;
}

static void
test_group_commit_threads(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[2];
    struct pub_thread ts[THREADS];
    pthread_t th[THREADS];
    int64_t counts[DELIVERY__COUNT];
    int i;

    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    for (i = 0; i < THREADS; i++) {
        ts[i] = (struct pub_thread){ .st = fx->st, .eps = eps };
        assert_int_equal(pthread_create(&th[i], NULL, publisher, &ts[i]), 0);
    }
    /* Every thread joined before any assertion may leave the test. */
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(ts[i].failures, 0);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_PENDING], THREADS * PER_THREAD * 2);
    /* Durable: a separate connection sees every row. */
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM events"), THREADS * PER_THREAD);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries"), THREADS * PER_THREAD * 2);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

/*
 * Writes that fail halfway (the second delivery names no endpoint) share
 * batches with writes that succeed and with claims: the failures leave
 * nothing, every success stays, and no delivery is claimed twice.
 */
#define MIXED_THREADS 6
#define MIXED_EACH 60

struct mixed_thread {
    struct store *st;
    const struct endpoint *good;   /* two real endpoints */
    const struct endpoint *bad;    /* a real one, then a missing one */
    char (*ok_ids)[ID_MAX];
    char (*bad_ids)[ID_MAX];
    int nok, nbad, unexpected;
};

static void *
mixed_publisher(void *arg)
{
    struct mixed_thread *t = arg;
    int i;

    for (i = 0; i < MIXED_EACH; i++) {
        struct event ev;
        int bad = i % 3 == 1;
        int err = publish(t->st, "acct_a", "user.message", NULL, bad ? t->bad : t->good, 2, &ev);

        if (bad && err == ERR_NOTFOUND)
            memcpy(t->bad_ids[t->nbad++], ev.id, ID_MAX);
        else if (!bad && err == 0)
            memcpy(t->ok_ids[t->nok++], ev.id, ID_MAX);
        else
            t->unexpected++;
        event_cleanup(&ev);
    }
    return NULL;
}

struct claimer {
    struct store *st;
    int stop;
    char (*ids)[ID_MAX];
    size_t n, cap;
    int failures;
};

static void *
claimer_main(void *arg)
{
    struct claimer *c = arg;
    int rounds = 0;

    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) && rounds++ < 100000) {
        struct claim *cs = NULL;
        size_t n = 0, i;

        if (store_claim(c->st, clock_now_ms(), HOUR_MS, 7, 0, NULL, 0, &cs, &n) != 0) {
            c->failures++;
            continue;
        }
        for (i = 0; i < n; i++) {
            if (c->n == c->cap) {
                c->cap = c->cap == 0 ? 1024 : c->cap * 2;
                c->ids = realloc(c->ids, c->cap * ID_MAX);
            }
            memcpy(c->ids[c->n++], cs[i].dlv.id, ID_MAX);
        }
        claim_list_free(cs, n);
    }
    return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_failures_stay_alone(void **state)
{
    struct fx *fx = *state;
    struct endpoint good[2], bad[2];
    struct mixed_thread ts[MIXED_THREADS];
    struct claimer cl = { .st = fx->st };
    pthread_t th[MIXED_THREADS], cth;
    int64_t counts[DELIVERY__COUNT];
    int i, j, total_ok = 0;
    size_t k;

    endpoint_make(fx->st, "acct_a", "", &good[0]);
    endpoint_make(fx->st, "acct_a", "", &good[1]);
    bad[0] = good[0];
    memset(&bad[1], 0, sizeof(bad[1]));
    snprintf(bad[1].id, sizeof(bad[1].id), "ep_missing");
    assert_int_equal(pthread_create(&cth, NULL, claimer_main, &cl), 0);
    for (i = 0; i < MIXED_THREADS; i++) {
        ts[i] = (struct mixed_thread){ .st = fx->st, .good = good, .bad = bad };
        ts[i].ok_ids = calloc(MIXED_EACH, ID_MAX);
        ts[i].bad_ids = calloc(MIXED_EACH, ID_MAX);
        assert_int_equal(pthread_create(&th[i], NULL, mixed_publisher, &ts[i]), 0);
    }
    for (i = 0; i < MIXED_THREADS; i++)
        pthread_join(th[i], NULL);
    __atomic_store_n(&cl.stop, 1, __ATOMIC_RELEASE);
    pthread_join(cth, NULL);
    assert_int_equal(cl.failures, 0);

    for (i = 0; i < MIXED_THREADS; i++) {
        assert_int_equal(ts[i].unexpected, 0);
        assert_int_equal(ts[i].nok + ts[i].nbad, MIXED_EACH);
        total_ok += ts[i].nok;
        for (j = 0; j < ts[i].nok; j++) {
            struct delivery *ds = NULL;
            assert_int_equal(deliveries_of(fx->st, "acct_a", ts[i].ok_ids[j], &ds), 2);
            delivery_list_free(ds, 2);
        }
        for (j = 0; j < ts[i].nbad; j++) {
            struct event ev;
            struct delivery *ds = NULL;
            assert_int_equal(store_event_get(fx->st, "acct_a", ts[i].bad_ids[j], &ev),
                             ERR_NOTFOUND);
            assert_int_equal(deliveries_of(fx->st, "acct_a", ts[i].bad_ids[j], &ds), 0);
            delivery_list_free(ds, 0);
        }
        free(ts[i].ok_ids);
        free(ts[i].bad_ids);
    }
    /* Every delivery is claimed at most once; the rest wait. */
    qsort(cl.ids, cl.n, ID_MAX, cmp_id);
    for (k = 1; k < cl.n; k++)
        assert_string_not_equal(cl.ids[k - 1], cl.ids[k]);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_DELIVERING], (int64_t)cl.n);
    assert_int_equal(counts[DELIVERY_PENDING] + counts[DELIVERY_DELIVERING], total_ok * 2);
    free(cl.ids);
    endpoint_cleanup(&good[0]);
    endpoint_cleanup(&good[1]);
}

/* The account's whole list, n rows, in id order, each of acct; *all is the caller's. */
static void
account_list(struct fx *fx, const char *acct, struct delivery **all, size_t *n)
{
    struct delivery_filter f = { .status = -1, .limit = 100 };
    char sql[128];
    size_t i;

    assert_int_equal(store_delivery_list(fx->st, acct, &f, all, n), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM deliveries WHERE account_id = '%s'", acct);
    assert_int_equal((int64_t)*n, sql_count(fx, sql));
    for (i = 0; i < *n; i++) {
        assert_string_equal((*all)[i].account_id, acct);
        if (i > 0)
            assert_true(strcmp((*all)[i - 1].id, (*all)[i].id) < 0);
    }
}

/*
 * An account's list without a filter merges one range per status (migration
 * 009 dropped deliveries_account): pages of 4 both ways and a date range walk
 * exactly the rows, of every status, that a sort of them would.
 */
static void
account_pages_check(struct fx *fx, const struct delivery *all, size_t nall)
{
    struct delivery_filter f = { .status = -1, .limit = 4 };
    struct delivery *ds = NULL;
    size_t n = 0, i, j, seen[DELIVERY__COUNT] = { 0 };
    int64_t from = all[nall / 3].created_at, before = all[2 * nall / 3].created_at;

    f.after = "";
    for (i = 0; i < nall; i += n) {
        assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
        assert_true(n > 0 && n <= 4);
        for (j = 0; j < n; j++) {
            assert_string_equal(ds[j].id, all[i + j].id);
            seen[ds[j].status]++;
        }
        f.after = all[i + n - 1].id;
        delivery_list_free(ds, n);
    }
    for (i = 0; i < DELIVERY__COUNT; i++)
        assert_true(seen[i] > 0);
    f.descending = 1;
    f.after = "";
    for (i = 0; i < nall; i += n) {
        assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
        assert_true(n > 0 && n <= 4);
        for (j = 0; j < n; j++)
            assert_string_equal(ds[j].id, all[nall - 1 - i - j].id);
        f.after = all[nall - i - n].id;
        delivery_list_free(ds, n);
    }
    f.after = NULL;
    f.descending = 0;
    f.limit = 100;
    f.created_from = from;
    f.created_before = before;
    assert_int_equal(store_delivery_list(fx->st, "acct_a", &f, &ds, &n), 0);
    for (i = 0, j = 0; i < nall; i++) {
        if (all[i].created_at < from || all[i].created_at >= before)
            continue;
        assert_true(j < n);
        assert_string_equal(ds[j++].id, all[i].id);
    }
    assert_int_equal(j, n);
    delivery_list_free(ds, n);
}

/*
 * Every status in acct_a: disables held (its waiting deliveries are held),
 * claims 10 of the others (not other's), of which 4 are delivered, 3 fail
 * and 3 stay delivering; the rest stay pending. Returns the time it used.
 */
static int64_t
every_status_make(struct fx *fx, const struct endpoint *held, const struct endpoint *other)
{
    const char *skip[] = { other->id };
    struct claim *cs = NULL;
    struct attempt_result rs[7];
    int64_t now = clock_now_ms();
    size_t n = 0, i;

    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", held->id, "maintenance", now), 0);
    assert_int_equal(store_claim(fx->st, now, 60000, 10, 0, skip, 1, &cs, &n), 0);
    assert_int_equal(n, 10);
    for (i = 0; i < 7; i++)
        result_for(&rs[i], &cs[i], i < 4 ? DELIVERY_DELIVERED : DELIVERY_FAILED,
                   i < 4 ? 200 : 410, i < 4 ? NULL : "HTTP 410", now + 1, 5);
    assert_int_equal(store_results_apply(fx->st, rs, 7, now + 1), 0);
    claim_list_free(cs, n);
    return now;
}

/*
 * Migration 009 on a store made before it: the two indexes it drops are
 * there, and schema_version does not name it. Opening applies it in place;
 * every list, count and statistic reads the same as before, and an enable
 * still finds its held deliveries. A new SQLite store has 8 KiB pages.
 */
static void
test_smaller_store_upgrade(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[3], other;
    struct event ev;
    struct delivery *before = NULL, *after = NULL;
    size_t nbefore = 0, nafter = 0, i;
    int64_t resumed = -1, now;

    for (i = 0; i < 3; i++)
        endpoint_make(fx->st, "acct_a", "", &eps[i]);
    endpoint_make(fx->st, "acct_b", "", &other);
    /* Every status in acct_a, and deliveries of acct_b between its ids. */
    for (i = 0; i < 12; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, 2, &ev), 0);
        event_cleanup(&ev);
        assert_int_equal(publish(fx->st, "acct_b", "user.message", NULL, &other, 1, &ev), 0);
        event_cleanup(&ev);
    }
    for (i = 0; i < 3; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.created", NULL, &eps[2], 1, &ev), 0);
        event_cleanup(&ev);
    }
    now = every_status_make(fx, &eps[2], &other);

    account_list(fx, "acct_a", &before, &nbefore);
    assert_int_equal(nbefore, 27);
    account_pages_check(fx, before, nbefore);

    /* As the version before 009 left it. */
    store_close(fx->st);
    fx->st = NULL;
    sql_exec(fx, "CREATE INDEX deliveries_held ON deliveries (endpoint_id) "
                 "WHERE status = 'held'");
    if (fx->sqlite)
        sql_exec(fx, "CREATE INDEX deliveries_account ON deliveries (account_id, id)");
    sql_exec(fx, "DELETE FROM schema_version WHERE version = 9");
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version WHERE version = 9"), 1);
    if (fx->sqlite) {
        assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                       "('deliveries_held', 'deliveries_account')"),
                         0);
        assert_int_equal(sql_count(fx, "PRAGMA page_size"), 8192);
    } else {
        assert_int_equal(sql_count(fx, "SELECT count(*) FROM pg_indexes "
                                       "WHERE indexname = 'deliveries_held'"),
                         0);
    }

    account_list(fx, "acct_a", &after, &nafter);
    assert_int_equal(nafter, nbefore);
    for (i = 0; i < nafter; i++) {
        assert_string_equal(after[i].id, before[i].id);
        assert_int_equal(after[i].status, before[i].status);
    }
    account_pages_check(fx, after, nafter);
    delivery_list_free(after, nafter);
    delivery_list_free(before, nbefore);
    assert_int_equal(store_endpoint_enable(fx->st, "acct_a", eps[2].id, 0, now, &resumed), 0);
    assert_int_equal(resumed, 3);
    for (i = 0; i < 3; i++)
        endpoint_cleanup(&eps[i]);
    endpoint_cleanup(&other);
}

static void
hist_feed(void *h, int bucket, int64_t n)
{
    rollup_hist_add(h, bucket, n);
}

/* Runs sql with ?1 bound to blob; h gets the histogram of its first column. */
static sqlite3_stmt *
lat_query(sqlite3 *db, const char *sql, const void *blob, size_t len, struct rollup_hist *h)
{
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, blob, (int)len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    memset(h, 0, sizeof(*h));
    assert_int_equal(sq_lat_each(sqlite3_column_blob(stmt, 0),
                                 (size_t)sqlite3_column_bytes(stmt, 0), hist_feed, h),
                     0);
    return stmt;
}

/*
 * A rollup row's latency histogram as one blob (sq_lat.c): pairs round-trip
 * in ascending order; lat_add() sums two blobs bucket by bucket (either may
 * be NULL); lat_agg() builds one from rows in any order; a malformed blob is
 * refused, by the reader and by lat_add().
 */
static void
test_latency_blob(void **state)
{
    static const int buckets[] = { 0, 5, 127, 128, 300, ROLLUP_BUCKETS - 1 };
    static const int64_t counts[] = { 1, 127, 128, 3, 1LL << 40, 2 };
    unsigned char blob[SQ_LAT_MAX], bad[] = { 5, 1, 3, 1 }; /* 5 then 3: not ascending */
    struct rollup_hist h;
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    size_t len = 0, i;
    int b;

    (void)state;
    for (i = 0; i < 6; i++)
        len += sq_lat_put(blob + len, buckets[i], counts[i]);
    assert_int_equal(sq_lat_put(blob + len, 7, 0), 0);
    assert_int_equal(sq_lat_put(blob + len, ROLLUP_BUCKETS, 1), 0);
    memset(&h, 0, sizeof(h));
    assert_int_equal(sq_lat_each(blob, len, hist_feed, &h),
                     0);
    for (i = 0; i < 6; i++)
        assert_int_equal(h.n[buckets[i]], counts[i]);
    assert_int_equal(sq_lat_each(NULL, 0, hist_feed, &h),
                     0);
    assert_int_equal(sq_lat_each(bad, sizeof(bad),
                                 hist_feed, &h),
                     ERR_STORE);
    assert_int_equal(sq_lat_each(blob, len - 1,
                                 hist_feed, &h),
                     ERR_STORE);

    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sq_lat_functions(db), 0);
    /* lat_add of the blob to itself doubles every count; of NULL keeps it. */
    stmt = lat_query(db, "SELECT lat_add(?1, ?1), lat_add(?1, NULL), lat_add(NULL, ?1)", blob,
                     len, &h);
    for (i = 0; i < 6; i++)
        assert_int_equal(h.n[buckets[i]], 2 * counts[i]);
    for (i = 1; i < 3; i++) {
        assert_int_equal(sqlite3_column_bytes(stmt, (int)i), (int)len);
        assert_memory_equal(sqlite3_column_blob(stmt, (int)i), blob, len);
    }
    sqlite3_finalize(stmt);
    /* Two blobs with buckets of their own and one in common. */
    stmt = lat_query(db, "SELECT lat_add(lat_agg(b, n), ?1) FROM "
                         "(SELECT 300 AS b, 2 AS n UNION ALL SELECT 1, 4 "
                         "UNION ALL SELECT 300, 1 UNION ALL SELECT 900, 9)",
                     blob, len, &h);
    for (b = 0; b < ROLLUP_BUCKETS; b++) {
        int64_t want = (b == 1 ? 4 : 0) + (b == 300 ? 3 : 0) + (b == 900 ? 9 : 0);

        for (i = 0; i < 6; i++)
            want += buckets[i] == b ? counts[i] : 0;
        assert_int_equal(h.n[b], want);
    }
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT lat_add(?1, ?1)", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, bad, (int)sizeof(bad), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ERROR);
    assert_non_null(strstr(sqlite3_errmsg(db), "malformed latency histogram"));
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT lat_agg(928, 1)", -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ERROR);
    assert_non_null(strstr(sqlite3_errmsg(db), "latency bucket out of range"));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/*
 * Migration 019 on a SQLite store made before it: the latency histograms
 * are rows of stat_latency and stat_rollups has no lat. Opening applies it:
 * each row's blob is the one the writer keeps (byte for byte), stat_latency
 * is gone, the statistics and the series read what the rows say, and a
 * later attempt adds to the migrated histogram. (PostgreSQL keeps
 * stat_latency: the change is SQLite's alone.)
 */
/* The foreign keys a table declares, in the SQLite store. */
static int64_t
fk_count(const struct fx *fx, const char *table)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_foreign_key_list('%s')", table);
    return sql_count(fx, sql);
}

/* Publishes to ep, then claims and answers (2xx) what is due. */
static void
deliver_one(struct fx *fx, struct endpoint *ep)
{
    struct event ev;
    struct claim *cs = NULL;
    struct attempt_result r;
    size_t n = 0;

    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, ep, 1, &ev), 0);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 60000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    result_for(&r, &cs[0], DELIVERY_DELIVERED, 200, NULL, clock_now_ms(), 3);
    assert_int_equal(store_results_apply(fx->st, &r, 1, clock_now_ms()), 0);
    assert_int_equal(status_of(fx->st, "acct_a", cs[0].dlv.id), DELIVERY_DELIVERED);
    claim_list_free(cs, n);
    event_cleanup(&ev);
}

/*
 * Migration 020 drops the foreign keys of deliveries and attempts (the
 * writer guarantees what they checked) and leaves the rows and every other
 * key as they were, on a new store and on one of version 19.
 */
static void
test_hot_rows_unchecked_upgrade(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;

    if (!fx->sqlite) {
        skip();
        return;
    }
    endpoint_make(fx->st, "acct_a", "", &ep);
    deliver_one(fx, &ep);
    assert_int_equal(fk_count(fx, "deliveries"), 0);
    assert_int_equal(fk_count(fx, "attempts"), 0);
    assert_int_equal(fk_count(fx, "endpoints"), 1);

    /* As version 19 left it: the same definitions with their keys. */
    store_close(fx->st);
    fx->st = NULL;
    sql_exec(fx, "PRAGMA writable_schema = ON; "
                 "UPDATE sqlite_schema SET sql = replace(replace(replace(sql, "
                 "'account_id TEXT NOT NULL,', 'account_id TEXT NOT NULL REFERENCES accounts (id),'), "
                 "'event_id TEXT NOT NULL,', 'event_id TEXT NOT NULL REFERENCES events (id),'), "
                 "'endpoint_id TEXT NOT NULL,', "
                 "'endpoint_id TEXT NOT NULL REFERENCES endpoints (id),') "
                 "WHERE type = 'table' AND name = 'deliveries'; "
                 "UPDATE sqlite_schema SET sql = replace(sql, 'delivery_id TEXT NOT NULL,', "
                 "'delivery_id TEXT NOT NULL REFERENCES deliveries (id),') "
                 "WHERE type = 'table' AND name = 'attempts'; "
                 "PRAGMA schema_version = 1000; PRAGMA writable_schema = OFF; "
                 "DELETE FROM schema_version WHERE version = 20");
    assert_int_equal(fk_count(fx, "deliveries"), 3);
    assert_int_equal(fk_count(fx, "attempts"), 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM pragma_foreign_key_check"), 0);

    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version WHERE version = 20"), 1);
    assert_int_equal(fk_count(fx, "deliveries"), 0);
    assert_int_equal(fk_count(fx, "attempts"), 0);
    assert_int_equal(fk_count(fx, "endpoints"), 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_schema "
                                   "WHERE name LIKE 'migration_020%'"),
                     0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check <> 'ok'"),
                     0);
    /* The rows stay, and the writer that migrated goes on with the new definitions. */
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries"), 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM attempts"), 1);
    deliver_one(fx, &ep);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM attempts"), 2);
    endpoint_cleanup(&ep);
}

/* 1 when the plan of sql (on the SQLite file) reads deliveries through index idx alone. */
static int
plan_uses(const struct fx *fx, const char *sql, const char *idx)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char q[2048], want[128];
    int rc, uses = 0, scans = 0;

    snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    snprintf(want, sizeof(want), "INDEX %s", idx);
    rc = sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, q, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        print_error("sqlite: %s: %s\n", q, sqlite3_errmsg(db));
    while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(stmt, 3);
        const char *at = strstr(detail, want);
        int found = at != NULL && (at[strlen(want)] == '\0' || at[strlen(want)] == ' ');

        uses += found;
        scans += strncmp(detail, "SCAN deliveries", 15) == 0 && !found;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
    return uses > 0 && scans == 0;
}

/*
 * Migration 021 keeps leased deliveries out of the due indexes: on a store
 * of version 20 (the indexes on due_at, leased rows in them), the pending
 * and the leased delivery it left are claimed as before, the leased one
 * once its lease ran out (the claims' sweep), and the claims read the new
 * indexes.
 */
static void
test_leases_not_due_upgrade(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev[2];
    struct claim *cs = NULL;
    size_t n = 0;
    char leased[ID_MAX];
    int64_t until;

    if (!fx->sqlite) {
        skip();
        return;
    }
    endpoint_make(fx->st, "acct_a", "", &ep);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev[0]), 0);
    assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    snprintf(leased, sizeof(leased), "%s", cs[0].dlv.id);
    until = cs[0].dlv.lease_until;
    claim_list_free(cs, n);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev[1]), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries INDEXED BY deliveries_due "
                                   "WHERE status = 'pending'"),
                     1);

    /* As version 20 left it: both rows in both indexes. */
    store_close(fx->st);
    fx->st = NULL;
    sql_exec(fx, "DROP INDEX deliveries_due; DROP INDEX deliveries_endpoint_due; "
                 "CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL; "
                 "CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, due_at) "
                 "WHERE due_at IS NOT NULL; "
                 "DELETE FROM schema_version WHERE version = 21");
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries INDEXED BY deliveries_due "
                                   "WHERE due_at IS NOT NULL"),
                     2);

    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version WHERE version = 21"), 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                   "('deliveries_due', 'deliveries_endpoint_due') "
                                   "AND sql LIKE '%WHERE status = ''pending''%'"),
                     2);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check <> 'ok'"),
                     0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries INDEXED BY deliveries_due "
                                   "WHERE status = 'pending'"),
                     1);
    /* What the claims, the next due time and the sweep read. */
    assert_true(plan_uses(fx, "SELECT id, endpoint_id, next_attempt_at, status FROM deliveries "
                              "WHERE status = 'pending' AND next_attempt_at <= 5 AND id <= 'x' "
                              "ORDER BY next_attempt_at LIMIT 10",
                          "deliveries_due"));
    assert_true(plan_uses(fx, "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' "
                              "ORDER BY next_attempt_at LIMIT 1",
                          "deliveries_due"));
    assert_true(plan_uses(fx, "SELECT id FROM deliveries WHERE endpoint_id = 'e' "
                              "AND status = 'pending' AND next_attempt_at <= 5 "
                              "ORDER BY next_attempt_at LIMIT 5",
                          "deliveries_endpoint_due"));
    assert_true(plan_uses(fx, "SELECT d.id FROM endpoints e CROSS JOIN deliveries d "
                              "WHERE d.endpoint_id = e.id AND d.status = 'delivering' "
                              "AND d.lease_until <= 5",
                          "deliveries_endpoint_status"));

    /* The pending one at once; the leased one once its lease ran out, swept. */
    assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.event_id, ev[1].id);
    assert_int_equal(cs[0].dlv.lease_token, 1);
    claim_list_free(cs, n);
    assert_int_equal(store_claim(fx->st, until, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.id, leased);
    assert_int_equal(cs[0].dlv.lease_token, 3);
    claim_list_free(cs, n);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries INDEXED BY deliveries_due "
                                   "WHERE status = 'pending'"),
                     0);
    event_cleanup(&ev[0]);
    event_cleanup(&ev[1]);
    endpoint_cleanup(&ep);
}

static void
test_latency_in_rollups_upgrade(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    struct event ev;
    struct claim *cs = NULL;
    struct attempt_result rs[40];
    struct stats before, after;
    int64_t hist[ROLLUP_BUCKETS] = { 0 }, base, since;
    const char *keys[2];
    char sql[512];
    size_t n = 0, i, k, sp;
    int b;

    if (!fx->sqlite) {
        skip();
        return;
    }
    endpoint_make(fx->st, "acct_a", "", &ep);
    for (i = 0; i < 40; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    since = clock_now_ms() - MIN_MS;
    base = (clock_now_ms() / MIN_MS + 1) * MIN_MS; /* every attempt in one minute */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 60000, 40, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 40);
    for (i = 0; i < n; i++) {
        /* Exact buckets (under 128 ms) and split ones up to seconds, some repeated. */
        int64_t ms = i < 20 ? (int64_t)(i % 7) * 9 : 100 + (int64_t)(i % 13) * 211;

        result_for(&rs[i], &cs[i], DELIVERY_DELIVERED, 200, NULL, base + (int64_t)i, ms);
        hist[rollup_bucket(ms)]++;
    }
    assert_int_equal(store_results_apply(fx->st, rs, n, base), 0);
    claim_list_free(cs, n);
    assert_int_equal(store_stats(fx->st, "acct_a", ep.id, since, &before), 0);
    assert_int_equal(before.attempts, 40);

    /* As the version before 019 left it: the same histograms as rows. */
    store_close(fx->st);
    fx->st = NULL;
    sql_exec(fx, "CREATE TABLE lat_kept AS SELECT endpoint_id, span, start, lat "
                 "FROM stat_rollups WHERE lat IS NOT NULL");
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM lat_kept"), 4);
    sql_exec(fx, "CREATE TABLE stat_latency (endpoint_id TEXT NOT NULL, span INTEGER NOT NULL, "
                 "start INTEGER NOT NULL, bucket INTEGER NOT NULL, account_id TEXT NOT NULL, "
                 "n INTEGER NOT NULL, PRIMARY KEY (endpoint_id, span, start, bucket)) "
                 "WITHOUT ROWID");
    keys[0] = ep.id;
    keys[1] = "acct_a";
    for (k = 0; k < 2; k++) {
        for (sp = 0; sp < 2; sp++) {
            int64_t span = sp == 0 ? MIN_MS : HOUR_MS;

            /* Descending, so the migration cannot lean on the rows' order. */
            for (b = ROLLUP_BUCKETS - 1; b >= 0; b--) {
                if (hist[b] == 0)
                    continue;
                snprintf(sql, sizeof(sql),
                         "INSERT INTO stat_latency VALUES ('%s', %lld, %lld, %d, 'acct_a', "
                         "%lld)",
                         keys[k], (long long)span, (long long)(base - base % span), b,
                         (long long)hist[b]);
                sql_exec(fx, sql);
            }
        }
    }
    sql_exec(fx, "ALTER TABLE stat_rollups DROP COLUMN lat");
    sql_exec(fx, "DELETE FROM schema_version WHERE version = 19");

    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version WHERE version = 19"), 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_master "
                                   "WHERE name = 'stat_latency'"),
                     0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM stat_rollups r JOIN lat_kept k "
                                   "USING (endpoint_id, span, start) WHERE r.lat = k.lat"),
                     4);
    assert_int_equal(store_stats(fx->st, "acct_a", ep.id, since, &after), 0);
    assert_int_equal(after.attempts, before.attempts);
    assert_int_equal(after.p50_ms, before.p50_ms);
    assert_int_equal(after.p95_ms, before.p95_ms);
    assert_int_equal(after.p99_ms, before.p99_ms);
    stats_check(fx, "acct_a", ep.id, since);
    stats_check(fx, "acct_a", NULL, since);
    series_check(fx, "acct_a", ep.id, base, MIN_MS, base + MIN_MS);

    /* A later attempt in the same minute adds to the migrated histogram. */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 60000, 1, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    result_for(&rs[0], &cs[0], DELIVERY_DELIVERED, 200, NULL, base + 59000, 4000);
    assert_int_equal(store_results_apply(fx->st, rs, 1, base), 0);
    claim_list_free(cs, n);
    stats_check(fx, "acct_a", NULL, since);
    series_check(fx, "acct_a", ep.id, base, MIN_MS, base + MIN_MS);
    assert_int_equal(store_stats(fx->st, "acct_a", ep.id, since, &after), 0);
    assert_int_equal(after.attempts, 41);
    assert_int_equal(after.p99_ms, rollup_bucket_ms(rollup_bucket(4000)));
    endpoint_cleanup(&ep);
}

/* Whether the list f (cursor and limit aside) takes d. */
static int
filter_takes(const struct delivery_filter *f, const struct delivery *d)
{
    int64_t t = id_time_ms(d->id);

    return (f->endpoint_id == NULL || strcmp(d->endpoint_id, f->endpoint_id) == 0) &&
           (f->event_id == NULL || strcmp(d->event_id, f->event_id) == 0) &&
           (f->event_type == NULL || strcmp(d->event_type, f->event_type) == 0) &&
           (f->status < 0 || (int)d->status == f->status) &&
           (f->created_from == 0 || t >= f->created_from) &&
           (f->created_before == 0 || t < f->created_before);
}

/*
 * Pages of 4 of the list f (its cursor and limit are set here) walk exactly
 * the rows of all (the account's, in id order) that f takes, in f's order,
 * every page full but the last; returns how many.
 */
static size_t
filter_pages_check(struct fx *fx, struct delivery_filter *f, const struct delivery *all,
                   size_t nall)
{
    const struct delivery **want = calloc(nall + 1, sizeof(*want));
    struct delivery *ds = NULL;
    char after[ID_MAX] = "";
    size_t nwant = 0, got = 0, n = 0, i, k;

    assert_non_null(want);
    for (k = 0; k < nall; k++) {
        i = f->descending ? nall - 1 - k : k;
        if (filter_takes(f, &all[i]))
            want[nwant++] = &all[i];
    }
    f->limit = 4;
    do {
        f->after = after[0] != '\0' ? after : NULL;
        assert_int_equal(store_delivery_list(fx->st, "acct_a", f, &ds, &n), 0);
        assert_true(n <= 4 && got + n <= nwant);
        for (i = 0; i < n; i++) {
            assert_string_equal(ds[i].id, want[got + i]->id);
            assert_int_equal(ds[i].status, want[got + i]->status);
        }
        got += n;
        assert_true(n == 4 || got == nwant);
        if (n > 0)
            snprintf(after, sizeof(after), "%s", ds[n - 1].id);
        delivery_list_free(ds, n);
    } while (n > 0);
    assert_int_equal(got, nwant);
    f->after = NULL;
    free(want);
    return nwant;
}

/*
 * Every combination of the list's filters (endpoint, event, event type,
 * status, date range; both orders) over deliveries of every status, two
 * endpoints and three types, beside another account's: pages of 4 walk
 * exactly the rows a filter of the whole list keeps, in id order, whichever
 * index serves the combination (migration 013: a type without a status
 * merges one range per status).
 */
static void
test_delivery_list_every_filter(void **state)
{
    static const char *const types[] = { NULL, "user.message", "user.created", "agent.updated" };
    static const int statuses[] = { -1, DELIVERY_PENDING, DELIVERY_DELIVERING, DELIVERY_DELIVERED,
                                    DELIVERY_FAILED, DELIVERY_HELD };
    struct fx *fx = *state;
    struct endpoint eps[3], other;
    struct event ev;
    struct delivery *all = NULL;
    struct delivery_filter f;
    char mid_event[ID_MAX];
    const char *ep_ids[3], *ev_ids[2] = { NULL, mid_event };
    size_t nall = 0, i, e, v, t, s, r, taken = 0;
    int64_t range[2][2];

    for (i = 0; i < 3; i++)
        endpoint_make(fx->st, "acct_a", "", &eps[i]);
    endpoint_make(fx->st, "acct_b", "", &other);
    for (i = 0; i < 15; i++) {
        assert_int_equal(publish(fx->st, "acct_a", types[1 + i % 3], NULL, i % 2 ? eps : eps + 1,
                                 2, &ev),
                         0);
        if (i == 7)
            snprintf(mid_event, sizeof(mid_event), "%s", ev.id);
        event_cleanup(&ev);
        assert_int_equal(publish(fx->st, "acct_b", types[1 + i % 3], NULL, &other, 1, &ev), 0);
        event_cleanup(&ev);
    }
    every_status_make(fx, &eps[2], &other);

    account_list(fx, "acct_a", &all, &nall);
    assert_int_equal(nall, 30);
    range[0][0] = range[0][1] = 0;
    range[1][0] = id_time_ms(all[8].id);
    range[1][1] = id_time_ms(all[21].id);
    ep_ids[0] = NULL;
    ep_ids[1] = eps[0].id;
    ep_ids[2] = eps[2].id;
    for (e = 0; e < 3; e++)
        for (v = 0; v < 2; v++)
            for (t = 0; t < 4; t++)
                for (s = 0; s < 6; s++)
                    for (r = 0; r < 4; r++) {
                        memset(&f, 0, sizeof(f));
                        f.endpoint_id = ep_ids[e];
                        f.event_id = ev_ids[v];
                        f.event_type = types[t];
                        f.status = statuses[s];
                        f.created_from = range[r / 2][0];
                        f.created_before = range[r / 2][1];
                        f.descending = r % 2;
                        taken += filter_pages_check(fx, &f, all, nall);
                    }
    /* The history has every status, and the combinations found many rows. */
    for (s = 1; s < 6; s++) {
        for (i = 0; i < nall && (int)all[i].status != statuses[s]; i++)
            ;
        assert_true(i < nall);
    }
    assert_true(taken > nall * 8);
    delivery_list_free(all, nall);
    for (i = 0; i < 3; i++)
        endpoint_cleanup(&eps[i]);
    endpoint_cleanup(&other);
}

/*
 * An account's deliveries being delivered sit on several endpoints, one of
 * them deleted since its claim, beside another account's: the account's
 * list of them (with and without a type, in pages of 4 both ways), its
 * unfiltered list and its statistics count exactly those rows. On SQLite
 * they are read one endpoint at a time, since deliveries_account_status
 * leaves them out (migration 018); a store made before 018 reads the same
 * once it is applied.
 */
static void
test_account_delivering_every_endpoint(void **state)
{
    static const char *const types[] = { NULL, "user.message", "user.created" };
    struct fx *fx = *state;
    struct endpoint eps[3], other;
    struct event ev;
    struct claim *cs = NULL;
    struct delivery *all = NULL;
    struct delivery_filter f;
    const char *skip[1];
    int64_t since = clock_now_ms() - 120000;
    size_t n = 0, nall = 0, i, t, taken = 0;
    int pass;

    for (i = 0; i < 3; i++)
        endpoint_make(fx->st, "acct_a", "", &eps[i]);
    endpoint_make(fx->st, "acct_b", "", &other);
    for (i = 0; i < 6; i++) {
        assert_int_equal(publish(fx->st, "acct_a", types[1 + i % 2], NULL, eps, 3, &ev), 0);
        event_cleanup(&ev);
        assert_int_equal(publish(fx->st, "acct_b", types[1 + i % 2], NULL, &other, 1, &ev), 0);
        event_cleanup(&ev);
    }
    /* eps[0] and eps[1] (and acct_b's) delivering, eps[2] pending; eps[1] then deleted. */
    skip[0] = eps[2].id;
    assert_int_equal(store_claim(fx->st, clock_now_ms() + 1, 60000, 100, 0, skip, 1, &cs, &n), 0);
    assert_int_equal(n, 18);
    claim_list_free(cs, n);
    assert_int_equal(store_endpoint_delete(fx->st, "acct_a", eps[1].id), 0);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries WHERE account_id = 'acct_a' "
                                   "AND status = 'delivering'"),
                     12);

    for (pass = 0; pass < 2; pass++) {
        account_list(fx, "acct_a", &all, &nall);
        assert_int_equal(nall, 18);
        for (t = 0; t < 3; t++)
            for (i = 0; i < 4; i++) {
                memset(&f, 0, sizeof(f));
                f.event_type = types[t];
                f.status = i < 2 ? DELIVERY_DELIVERING : -1;
                f.descending = (int)i % 2;
                taken += filter_pages_check(fx, &f, all, nall);
            }
        stats_check(fx, "acct_a", NULL, since);
        stats_check(fx, "acct_b", NULL, since);
        /* A window from just before them: they fall in its head, read from the rows. */
        stats_check(fx, "acct_a", NULL, all[0].created_at - 1);
        stats_check(fx, "acct_a", eps[1].id, all[0].created_at - 1);
        delivery_list_free(all, nall);
        if (pass == 1 || !fx->sqlite)
            break;
        /* As the version before 018 left it: the index took every status. */
        store_close(fx->st);
        fx->st = NULL;
        sql_exec(fx, "DROP INDEX deliveries_account_status; DROP INDEX endpoints_account_any; "
                     "CREATE INDEX deliveries_account_status ON deliveries (account_id, status, id); "
                     "DELETE FROM schema_version WHERE version = 18");
        assert_int_equal(store_open(fx->url, &fx->st), 0);
        assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version WHERE version = 18"),
                         1);
        assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_master WHERE name = "
                                       "'deliveries_account_status' AND sql LIKE '%WHERE%'"),
                         1);
    }
    /* Each pass, both orders: 12 delivering (6 of each type), 18 in all (9 of each). */
    assert_int_equal(taken, (fx->sqlite ? 2 : 1) * 2 * (12 + 6 + 6 + 18 + 9 + 9));
    for (i = 0; i < 3; i++)
        endpoint_cleanup(&eps[i]);
    endpoint_cleanup(&other);
}

/* Does e pass f (the reference filter, on the entries the test made)? */
static int
audit_matches(const struct audit_entry *e, const struct audit_filter *f)
{
    return (f->action == NULL || strcmp(e->action, f->action) == 0) &&
           (f->target == NULL || strcmp(e->target, f->target) == 0) &&
           (f->actor == NULL || strcmp(e->actor, f->actor) == 0) &&
           e->created_at >= f->since && (f->until == 0 || e->created_at < f->until);
}

/*
 * Lists f in pages of 4 (newest first, by the cursor) and checks them
 * against the entries of all (oldest first) that pass f. Returns how many.
 */
static size_t
audit_pages_check(struct fx *fx, struct audit_filter f, const struct audit_entry *all,
                  size_t nall)
{
    struct audit_entry *page;
    char cursor[ID_MAX];
    size_t n, i, want = nall, found = 0;

    f.limit = 4;
    for (;;) {
        assert_int_equal(store_audit_list(fx->st, "acct_a", &f, &page, &n), 0);
        for (i = 0; i < n; i++, found++) {
            while (want > 0 && !audit_matches(&all[want - 1], &f))
                want--;
            assert_true(want > 0);
            want--;
            assert_string_equal(page[i].id, all[want].id);
            assert_string_equal(page[i].details, all[want].details);
        }
        if (n > 0)
            snprintf(cursor, sizeof(cursor), "%s", page[n - 1].id);
        audit_entry_list_free(page, n);
        if (n < 4)
            break;
        f.after = cursor;
    }
    while (want > 0 && !audit_matches(&all[want - 1], &f))
        want--;
    assert_int_equal(want, 0);
    return found;
}

/*
 * The audit log's list under every combination of its filters (each has an
 * index: on SQLite the list names it, and a missing one fails the call)
 * equals a filter of the whole log, page by page; another account's entries
 * never show.
 */
static void
test_audit_list_every_filter(void **state)
{
    static const char *const actions[] = { NULL, "endpoint.created", "endpoint.updated",
                                           "key.created", "nothing.such" };
    static const char *const targets[] = { NULL, "ep_1", "ep_2" };
    static const char *const actors[] = { NULL, "key_a", "tok_b" };
    struct fx *fx = *state;
    struct audit_entry all[36], e;
    struct audit_filter f;
    int64_t base = clock_now_ms() - 100000, ranges[3][2];
    size_t i, a, t, c, r, taken = 0;

    for (i = 0; i < 36; i++) {
        memset(&e, 0, sizeof(e));
        snprintf(e.account_id, sizeof(e.account_id), "acct_a");
        snprintf(e.action, sizeof(e.action), "%s", actions[1 + i % 3]);
        snprintf(e.target, sizeof(e.target), "%s", i % 4 == 0 ? "" : i % 2 ? "ep_1" : "ep_2");
        snprintf(e.actor, sizeof(e.actor), "%s", actors[1 + i / 3 % 2]);
        e.created_at = base + (int64_t)i * 10;
        e.details = i % 5 == 0 ? "{\"n\":1}" : NULL;
        assert_int_equal(store_audit_insert(fx->st, &e), 0);
        snprintf(e.account_id, sizeof(e.account_id), "acct_b");
        assert_int_equal(store_audit_insert(fx->st, &e), 0);
    }
    memset(&f, 0, sizeof(f));
    f.limit = 100;
    {
        struct audit_entry *got;
        size_t n;

        assert_int_equal(store_audit_list(fx->st, "acct_a", &f, &got, &n), 0);
        assert_int_equal(n, 36);
        for (i = 0; i < 36; i++)
            all[i] = got[35 - i]; /* oldest first; the details move into all */
        free(got);
    }
    ranges[0][0] = ranges[0][1] = 0;
    ranges[1][0] = base + 75; /* from the 8th entry on */
    ranges[1][1] = 0;
    ranges[2][0] = base + 40; /* the 4th .. 27th */
    ranges[2][1] = base + 270;
    for (a = 0; a < 5; a++)
        for (t = 0; t < 3; t++)
            for (c = 0; c < 3; c++)
                for (r = 0; r < 3; r++) {
                    memset(&f, 0, sizeof(f));
                    f.action = actions[a];
                    f.target = targets[t];
                    f.actor = actors[c];
                    f.since = ranges[r][0];
                    f.until = ranges[r][1];
                    taken += audit_pages_check(fx, f, all, 36);
                }
    assert_true(taken > 36 * 10);
    for (i = 0; i < 36; i++)
        free(all[i].details);
}

/* --- hand-off to this process's dispatcher (SQLite; PostgreSQL keeps the claim path) --- */

/* A dispatcher's side of store_on_handoff(), counting what it is told. */
struct ho_rec {
    pthread_mutex_t mu;
    int room; /* take answers 1 while room > 0 (each take uses one) */
    int takes, gives;
    struct claim *cs; /* every claim delivered, in order */
    size_t n;
    int calls; /* deliver calls */
    int oom;   /* 1: deliver could not keep some (allocation failure mode) */
    pthread_cond_t cv; /* broadcast at each deliver call */
    int stall;         /* 1: deliver waits (on cv) until the test sets it to 0 */
};

static int
ho_rec_take(void *arg, const char *ep)
{
    struct ho_rec *r = arg;
    int ok;

    (void)ep;
    pthread_mutex_lock(&r->mu);
    ok = r->room > 0;
    if (ok) {
        r->room--;
        r->takes++;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void
ho_rec_give(void *arg, const char *ep)
{
    struct ho_rec *r = arg;

    (void)ep;
    pthread_mutex_lock(&r->mu);
    r->gives++;
    r->room++;
    pthread_mutex_unlock(&r->mu);
}

static void
ho_rec_deliver(void *arg, struct claim *cs, size_t n)
{
    struct ho_rec *r = arg;
    struct claim *more;

    pthread_mutex_lock(&r->mu);
    while (r->stall)
        pthread_cond_wait(&r->cv, &r->mu);
    r->calls++;
    more = realloc(r->cs, (r->n + n) * sizeof(*more));
    if (more == NULL) {
        /*
         * On a store thread, which must not fail the test: as a dispatcher
         * out of memory, these are left to their leases; the test's own
         * thread sees oom and fails there.
         */
        r->oom = 1;
        pthread_mutex_unlock(&r->mu);
        claim_list_free(cs, n);
        return;
    }
    memcpy(&more[r->n], cs, n * sizeof(*cs));
    r->cs = more;
    r->n += n;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    free(cs);
}

/*
 * Waits up to 10 s for r to hold n claims (an asynchronous publish is
 * answered before its group is handed over) and returns how many it holds.
 */
static size_t
ho_wait(struct ho_rec *r, size_t n)
{
    struct timespec until;
    size_t got;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&r->mu);
    while (r->n < n && r->oom == 0 && rc == 0)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
    got = r->n;
    pthread_mutex_unlock(&r->mu);
    return got;
}

static void
ho_register(struct store *st, struct ho_rec *r, int room, int per_endpoint)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->room = room;
    store_on_handoff(st, &(struct store_handoff){.take = ho_rec_take,
                                                 .give = ho_rec_give,
                                                 .deliver = ho_rec_deliver,
                                                 .arg = r,
                                                 .lease_ms = 30000,
                                                 .per_endpoint = per_endpoint});
}

static void
ho_done(struct store *st, struct ho_rec *r)
{
    store_on_handoff(st, NULL);
    claim_list_free(r->cs, r->n);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* A first attempt of delivery dlv_id that answered 200, under lease token token. */
static void
result_ok(struct attempt_result *res, const char *dlv_id, int64_t token)
{
    memset(res, 0, sizeof(*res));
    snprintf(res->attempt.delivery_id, ID_MAX, "%s", dlv_id);
    res->attempt.n = 1;
    res->attempt.at = clock_now_ms();
    res->attempt.status_code = 200;
    res->lease_token = token;
    res->status = DELIVERY_DELIVERED;
}

/*
 * A publish on a store whose dispatcher takes hand-offs inserts the delivery
 * delivering, leased with token 1, and hands its claim over once durable:
 * nothing is left to claim, results fence as for a claim, and an expired
 * lease is swept (token 2) and claimed again with token 3.
 */
static void
test_handoff_leased(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, off;
    struct event ev[3];
    struct delivery d;
    struct claim *cs = NULL;
    struct ho_rec r;
    struct attempt_result res;
    size_t n = 0, i;
    int64_t before, after;

    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_make(fx->st, "acct_a", "", &off);
    assert_int_equal(store_endpoint_disable(fx->st, "acct_a", off.id, "maintenance", 1), 0);
    off.status = ENDPOINT_DISABLED;
    ho_register(fx->st, &r, 100, 64);
    before = clock_now_ms();
    for (i = 0; i < 3; i++) {
        const struct endpoint both[2] = {ep, off};
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, both, 2, &ev[i]), 0);
        assert_int_equal(ev[i].deliveries, 2);
    }
    after = clock_now_ms();
    if (!fx->sqlite) {
        /* PostgreSQL: every delivery pending, for a claim; the hooks never called. */
        assert_int_equal(r.takes + r.gives + (int)r.n, 0);
        assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 0, NULL, 0, &cs, &n), 0);
        assert_int_equal(n, 3);
        claim_list_free(cs, n);
        goto out;
    }
    /* The disabled endpoint's are held, never offered; the others are handed over. */
    assert_int_equal(r.takes, 3);
    assert_int_equal(r.gives, 0);
    assert_int_equal(r.n, 3);
    for (i = 0; i < 3; i++) {
        struct claim *c = &r.cs[i];

        assert_string_equal(c->dlv.event_id, ev[i].id);
        assert_string_equal(c->dlv.endpoint_id, ep.id);
        assert_int_equal(c->dlv.status, DELIVERY_DELIVERING);
        assert_int_equal(c->dlv.lease_token, 1);
        assert_true(c->dlv.lease_until >= before + 30000 && c->dlv.lease_until <= after + 30000);
        assert_int_equal(c->dlv.attempts_made, 0);
        assert_string_equal(c->url, ep.url);
        assert_string_equal(c->secret, ep.secret); /* opened */
        assert_null(c->prev_secret);
        assert_int_equal(c->body_len, ev[i].body_len);
        assert_memory_equal(c->body, ev[i].body, ev[i].body_len);
        assert_int_equal(store_delivery_get(fx->st, "acct_a", c->dlv.id, &d), 0);
        assert_int_equal(d.status, DELIVERY_DELIVERING);
        assert_int_equal(d.lease_token, 1);
        assert_int_equal(d.lease_until, c->dlv.lease_until);
        delivery_cleanup(&d);
    }
    /* Leased: a claim finds nothing while the leases run. */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);

    /* The result of the first, under token 1, counts. */
    result_ok(&res, r.cs[0].dlv.id, 1);
    assert_int_equal(store_results_apply(fx->st, &res, 1, clock_now_ms()), 0);
    assert_int_equal(status_of(fx->st, "acct_a", r.cs[0].dlv.id), DELIVERY_DELIVERED);

    /*
     * The others' leases run out (their process died): swept (token 2) and
     * claimed again with token 3...
     */
    assert_int_equal(store_claim(fx->st, after + 30000, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 2);
    for (i = 0; i < n; i++)
        assert_int_equal(cs[i].dlv.lease_token, 3);
    /* ...and a late result under token 1 is fenced. */
    snprintf(res.attempt.delivery_id, ID_MAX, "%s", cs[0].dlv.id);
    assert_int_equal(store_results_apply(fx->st, &res, 1, clock_now_ms()), 0);
    assert_int_equal(status_of(fx->st, "acct_a", cs[0].dlv.id), DELIVERY_DELIVERING);
    claim_list_free(cs, n);
out:
    ho_done(fx->st, &r);
    for (i = 0; i < 3; i++)
        event_cleanup(&ev[i]);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&off);
}

/*
 * A handed-off delivery is in no due index (SQLite, migration 021): the
 * claims' sweep finds it once its lease ran out and its holder never
 * answered, makes it pending at its lease's end with its token one up (so
 * the holder's late result is fenced, not taken for one recorded), and a
 * claim takes it again; another process's sweep finds it too.
 */
static void
test_handoff_lease_swept(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep;
    struct event ev;
    struct delivery d;
    struct claim *cs = NULL;
    struct ho_rec r;
    struct attempt_result res;
    const char *exclude[1];
    char id[ID_MAX];
    size_t n = 0;
    int64_t until, when;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    exclude[0] = ep.id;
    ho_register(fx->st, &r, 100, 64);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    assert_int_equal(r.n, 1);
    snprintf(id, sizeof(id), "%s", r.cs[0].dlv.id);
    until = r.cs[0].dlv.lease_until;
    assert_int_equal(r.cs[0].dlv.lease_token, 1);
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM deliveries INDEXED BY deliveries_due "
                                   "WHERE status = 'pending'"),
                     0);
    /* While the lease runs: nothing to claim, and the next due time is the next sweep. */
    assert_int_equal(store_claim(fx->st, until - 1, 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);
    assert_int_equal(store_next_due(fx->st, &when), 0);
    assert_int_equal(when, until - 1 + 1000);
    assert_int_equal(status_of(fx->st, "acct_a", id), DELIVERY_DELIVERING);

    /* Run out: a claim (of other endpoints only) sweeps it back to pending, token 2. */
    assert_int_equal(store_claim(fx->st, until + 999, 30000, 10, 0, exclude, 1, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);
    assert_int_equal(store_delivery_get(fx->st, "acct_a", id, &d), 0);
    assert_int_equal(d.status, DELIVERY_PENDING);
    assert_int_equal(d.lease_token, 2);
    assert_int_equal(d.next_attempt_at, until);
    assert_int_equal(d.attempts_made, 0);
    delivery_cleanup(&d);

    /* The holder answers late: fenced (and counted), not recorded. */
    result_ok(&res, id, 1);
    res.endpoint_id = ep.id;
    res.account_id = "acct_a";
    assert_int_equal(store_results_apply(fx->st, &res, 1, until + 1000), 0);
    assert_int_equal(store_fenced_count(fx->st), 1);
    assert_int_equal(status_of(fx->st, "acct_a", id), DELIVERY_PENDING);

    /* Claimed again, token 3, with its attempts as they were. */
    assert_int_equal(store_claim(fx->st, until + 1000, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.id, id);
    assert_int_equal(cs[0].dlv.lease_token, 3);
    assert_int_equal(cs[0].dlv.attempts_made, 0);
    claim_list_free(cs, n);

    /* Another process's sweep finds this one's expired lease. */
    assert_int_equal(store_open(fx->url, &other), 0);
    assert_int_equal(store_claim(other, until + 2000, 1000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.id, id);
    assert_int_equal(cs[0].dlv.lease_token, 5);
    /* Its result counts. */
    result_ok(&res, id, 5);
    assert_int_equal(store_results_apply(other, &res, 1, until + 2100), 0);
    assert_int_equal(status_of(fx->st, "acct_a", id), DELIVERY_DELIVERED);
    claim_list_free(cs, n);
    store_close(other);

    ho_done(fx->st, &r);
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
}

/* Publishes one event to ep and claims its delivery under the cap (0: none) into *cs. */
static void
publish_claimed(struct fx *fx, const struct endpoint *ep, int cap, struct claim **cs)
{
    struct event ev;
    size_t n = 0;

    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, ep, 1, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, cap, NULL, 0, cs, &n), 0);
    assert_int_equal(n, 1);
}

/*
 * The cap: the dispatcher's answer, then the store's own count of the
 * endpoint's live leases (any process's) decide; what does not fit stays
 * pending for a claim and its reservation is given back.
 */
static void
test_handoff_cap(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, ep2;
    struct event ev, evs[3];
    struct store_publish items[3];
    struct claim *cs = NULL;
    struct ho_rec r;
    size_t n = 0, i;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    /* Another process holds one of the endpoint's two slots. */
    publish_claimed(fx, &ep, 2, &cs);
    claim_list_free(cs, 1);

    ho_register(fx->st, &r, 100, 2);
    for (i = 0; i < 3; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
        event_cleanup(&ev);
    }
    assert_int_equal(r.takes, 3);
    assert_int_equal(r.gives, 2); /* the store's count said full */
    assert_int_equal(r.n, 1);
    /* The dispatcher says full: nothing is offered to the store's count at all. */
    r.room = 0;
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(r.takes, 3);
    assert_int_equal(r.n, 1);
    /* Three wait pending; a claim under the same cap takes none of them now. */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 2, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 3);
    claim_list_free(cs, n);

    /* One batch to a fresh endpoint: its later items count the earlier ones. */
    endpoint_make(fx->st, "acct_a", "", &ep2);
    r.room = 100;
    for (i = 0; i < 3; i++) {
        assert_int_equal(event_fill("acct_a", "user.message", NULL, &evs[i]), 0);
        items[i] = (struct store_publish){ .ev = &evs[i], .eps = &ep2, .neps = 1 };
    }
    assert_int_equal(store_event_publish_batch(fx->st, items, 3), 0);
    assert_int_equal(items[0].handed + items[1].handed + items[2].handed, 2);
    assert_int_equal(items[2].handed, 0);
    assert_int_equal(r.n, 3);
    for (i = 1; i < 3; i++) {
        assert_string_equal(r.cs[i].dlv.endpoint_id, ep2.id);
        assert_string_equal(r.cs[i].url, ep2.url);
        assert_string_equal(r.cs[i].secret, ep2.secret);
        assert_string_equal(r.cs[i].dlv.event_id, evs[i - 1].id);
        assert_memory_equal(r.cs[i].body, evs[i - 1].body, evs[i - 1].body_len);
    }
    assert_int_equal(status_of(fx->st, "acct_a", r.cs[2].dlv.id), DELIVERY_DELIVERING);
    for (i = 0; i < 3; i++)
        event_cleanup(&evs[i]);
    ho_done(fx->st, &r);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&ep2);
}

/* An enable on its own thread, for a test that answers its hand-offs meanwhile. */
struct ho_enable {
    struct store *st;
    const char *ep;
    int64_t resumed;
    int err;
    int done; /* set (atomically) once the call returned */
};

static void *
ho_enable_main(void *arg)
{
    struct ho_enable *e = arg;

    e->err = store_endpoint_enable(e->st, "acct_a", e->ep, 0, clock_now_ms(), &e->resumed);
    __atomic_store_n(&e->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/*
 * The store's cap of live leases per endpoint holds within one hand-over
 * write of an enable: that write reserves all its rows before it moves
 * them, so a recount of the live leases meanwhile must add its own.
 */
static void
test_handoff_enable_store_cap(void **state)
{
    struct fx *fx = *state;
    const size_t held = 10, cap = 3;
    struct endpoint ep;
    struct ho_rec r;
    struct ho_enable en;
    struct attempt_result res;
    pthread_t th;
    char id[ID_MAX];
    int64_t token = 0;
    size_t done = 0, n, most = 0;
    int err = 0;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    held_make(fx->st, &ep, held);
    ho_register(fx->st, &r, 100, (int)cap);
    en = (struct ho_enable){ .st = fx->st, .ep = ep.id };
    assert_int_equal(pthread_create(&th, NULL, ho_enable_main, &en), 0);
    /* Each claim answered in turn; nothing asserted until the enable is joined. */
    while (done < held && err == 0) {
        n = ho_wait(&r, done + 1);
        if (n <= done)
            break;
        if (n - done > most)
            most = n - done; /* leased at once: handed over, not yet answered */
        pthread_mutex_lock(&r.mu);
        snprintf(id, sizeof(id), "%s", r.cs[done].dlv.id);
        token = r.cs[done].dlv.lease_token;
        pthread_mutex_unlock(&r.mu);
        result_ok(&res, id, token);
        err = store_results_apply(fx->st, &res, 1, clock_now_ms());
        done++;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(err, 0);
    assert_int_equal(done, held);
    assert_true(most >= 1);
    assert_true(most <= cap);
    assert_int_equal(en.err, 0);
    assert_int_equal(en.resumed, (int64_t)held);
    assert_int_equal(held_count(fx, &ep, "delivered"), (int64_t)held);
    stats_check(fx, "acct_a", ep.id, 0);
    ho_done(fx->st, &r);
    endpoint_cleanup(&ep);
}

/* A claim of up to 20 finds want deliveries, every one of endpoint ep_id. */
static void
claim_all_of(struct fx *fx, const char *ep_id, size_t want)
{
    struct claim *cs = NULL;
    size_t n = 0, i;

    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 20, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, want);
    for (i = 0; i < n; i++)
        assert_string_equal(cs[i].dlv.endpoint_id, ep_id);
    claim_list_free(cs, n);
}

/*
 * An enable with a dispatcher registered hands the held deliveries over
 * (held -> delivering, oldest first, a new round, the lease token one up)
 * as far as it has room, waits for results to make more, and moves what
 * it cannot hand over to pending once no room comes: nothing is lost or
 * handed twice, and counts and rollups follow.
 */
static void
test_handoff_enable(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, ep2;
    struct claim *cs = NULL;
    struct ho_rec r;
    struct ho_enable en;
    struct attempt_result res;
    struct endpoint got;
    pthread_t th;
    const char *ids[1];
    int64_t tokens[1], before;
    char old[ID_MAX];
    size_t n = 0, i;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    /* One held after a claim and a release: token 1 already. */
    publish_claimed(fx, &ep, 0, &cs);
    n = 1;
    snprintf(old, sizeof(old), "%s", cs[0].dlv.id);
    ids[0] = old;
    tokens[0] = cs[0].dlv.lease_token;
    assert_int_equal(tokens[0], 1);
    claim_list_free(cs, n);
    assert_int_equal(store_release(fx->st, ids, tokens, 1), 0);
    held_make(fx->st, &ep, 10);
    assert_int_equal(held_count(fx, &ep, "held"), 11);

    ho_register(fx->st, &r, 4, 64);
    before = clock_now_ms();
    en = (struct ho_enable){ .st = fx->st, .ep = ep.id };
    assert_int_equal(pthread_create(&th, NULL, ho_enable_main, &en), 0);
    /* Room for 4: handed over, the oldest first; the enable waits for more. */
    assert_int_equal(ho_wait(&r, 4), 4);
    pthread_mutex_lock(&r.mu);
    assert_string_equal(r.cs[0].dlv.id, old);
    assert_int_equal(r.cs[0].dlv.lease_token, 2);
    for (i = 1; i < 4; i++) {
        assert_true(strcmp(r.cs[i - 1].dlv.id, r.cs[i].dlv.id) < 0);
        assert_int_equal(r.cs[i].dlv.lease_token, 1);
    }
    r.room = 100;
    pthread_mutex_unlock(&r.mu);
    /* A result makes room: the rest are handed over too. */
    result_ok(&res, r.cs[1].dlv.id, 1);
    assert_int_equal(store_results_apply(fx->st, &res, 1, clock_now_ms()), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(en.err, 0);
    assert_int_equal(en.resumed, 11);
    assert_int_equal(r.n, 11);
    assert_int_equal(r.takes, 11);
    assert_int_equal(r.gives, 0);
    for (i = 0; i < r.n; i++) {
        struct claim *c = &r.cs[i];
        struct delivery d;

        assert_int_equal(c->dlv.status, DELIVERY_DELIVERING);
        assert_int_equal(c->dlv.round_start, c->dlv.attempts_made);
        assert_true(c->dlv.lease_until >= before + 30000);
        assert_string_equal(c->url, ep.url);
        assert_string_equal(c->secret, ep.secret); /* opened */
        assert_true(c->body_len > 0);
        assert_int_equal(store_delivery_get(fx->st, "acct_a", c->dlv.id, &d), 0);
        assert_int_equal(d.status, i == 1 ? DELIVERY_DELIVERED : DELIVERY_DELIVERING);
        assert_int_equal(d.lease_token, c->dlv.lease_token);
        if (i != 1)
            assert_int_equal(d.lease_until, c->dlv.lease_until);
        delivery_cleanup(&d);
    }
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    assert_int_equal(got.held, 0);
    endpoint_cleanup(&got);
    stats_check(fx, "acct_a", ep.id, 0);
    /* Leased: a claim finds nothing. */
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 20, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 0);
    claim_list_free(cs, n);

    /* No room that results make (a receiver that hangs): the rest go pending. */
    endpoint_make(fx->st, "acct_a", "", &ep2);
    held_make(fx->st, &ep2, 7);
    pthread_mutex_lock(&r.mu);
    r.room = 2;
    pthread_mutex_unlock(&r.mu);
    en = (struct ho_enable){ .st = fx->st, .ep = ep2.id };
    ho_enable_main(&en);
    assert_int_equal(en.err, 0);
    assert_int_equal(en.resumed, 7);
    assert_int_equal(r.n, 13);
    assert_int_equal(held_count(fx, &ep2, "delivering"), 2);
    assert_int_equal(held_count(fx, &ep2, "pending"), 5);
    stats_check(fx, "acct_a", ep2.id, 0);
    claim_all_of(fx, ep2.id, 5);
    stats_check(fx, "acct_a", NULL, 0);
    ho_done(fx->st, &r);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&ep2);
}

/*
 * A backlog far beyond what can go by hand at the dispatcher's pace in the
 * hand-over's time: once that pace is known (a second in), the enable
 * queues the rest to pending at once instead of handing over for the whole
 * time, so its call takes about as long as without a hand-over. Here the
 * "dispatcher" records one result every 20 ms (at most 50 a second: 4,000
 * would take 80 s): before the change the enable handed over for 30 s
 * (about 1,500 of them).
 */
static void
test_handoff_enable_paced(void **state)
{
    struct fx *fx = *state;
    const int64_t held = 4000;
    struct endpoint ep;
    struct ho_rec r;
    struct ho_enable en;
    struct attempt_result res;
    pthread_t th;
    char id[ID_MAX];
    int64_t token = 0;
    size_t answered = 0;
    int rounds;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    held_make(fx->st, &ep, (size_t)held);
    ho_register(fx->st, &r, 4, 64);
    en = (struct ho_enable){ .st = fx->st, .ep = ep.id };
    assert_int_equal(pthread_create(&th, NULL, ho_enable_main, &en), 0);
    /* Bounded: 2,000 rounds of 20 ms outlast the hand-over's 30 s. */
    for (rounds = 0; rounds < 2000 && !__atomic_load_n(&en.done, __ATOMIC_ACQUIRE); rounds++) {
        id[0] = '\0';
        pthread_mutex_lock(&r.mu);
        if (answered < r.n) {
            snprintf(id, sizeof(id), "%s", r.cs[answered].dlv.id);
            token = r.cs[answered].dlv.lease_token;
        }
        pthread_mutex_unlock(&r.mu);
        if (id[0] != '\0') {
            result_ok(&res, id, token);
            assert_int_equal(store_results_apply(fx->st, &res, 1, clock_now_ms()), 0);
            answered++;
            pthread_mutex_lock(&r.mu);
            r.room++;
            pthread_mutex_unlock(&r.mu);
        }
        usleep(20000);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(en.err, 0);
    assert_int_equal(en.resumed, held);
    /* Handed over for about a second (4 + ~50), not for 30 s. */
    assert_true(r.n >= 4);
    assert_true(r.n < 300);
    assert_int_equal(held_count(fx, &ep, "held"), 0);
    assert_int_equal(held_count(fx, &ep, "delivered"), (int64_t)answered);
    assert_int_equal(held_count(fx, &ep, "delivering"), (int64_t)(r.n - answered));
    assert_int_equal(held_count(fx, &ep, "pending"), held - (int64_t)r.n);
    stats_check(fx, "acct_a", ep.id, 0);
    /* The rest is claimed as without a dispatcher. */
    claim_all_of(fx, ep.id, 20);
    ho_done(fx->st, &r);
    endpoint_cleanup(&ep);
}

#define HO_GROUP 5 /* publishes made durable together */

/* A writer job that waits until the test lets it go, and the publishes behind it. */
struct ho_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside, open;
    int done, failed; /* publishes answered, and how many with an error */
    struct store *st;
};

static int
ho_gate_job(struct sq_conn *c, void *arg)
{
    struct ho_gate *g = arg;

    (void)c;
    pthread_mutex_lock(&g->mu);
    g->inside = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void *
ho_gate_main(void *arg)
{
    struct ho_gate *g = arg;

    (void)sq_write(g->st->impl, ho_gate_job, g);
    return NULL;
}

/* store_publish_done_fn, on a store thread (which must not fail the test). */
static void
ho_gate_done(void *arg, int err)
{
    struct ho_gate *g = arg;

    pthread_mutex_lock(&g->mu);
    g->done++;
    g->failed += err != 0;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/*
 * Publishes n events of acct_a, the i-th to eps[i], while the writer is held
 * inside a job, so that it takes them in one transaction, made durable by
 * one sync: one group of hand-offs. Fills items and evs; returns 0 or the
 * first error, with *failed the publishes answered with an error. No
 * assertion while the writer is held (a failed one would leave it there).
 */
static int
ho_publish_group(struct store *st, const struct endpoint *const *eps, int n,
                 struct store_publish *items, struct event *evs, int *failed)
{
    struct ho_gate g;
    pthread_t th;
    int i, queued = 0, err = 0;

    memset(evs, 0, (size_t)n * sizeof(*evs));
    memset(&g, 0, sizeof(g));
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    g.st = st;
    if (pthread_create(&th, NULL, ho_gate_main, &g) != 0) {
        err = ERR_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&g.mu);
    while (!g.inside)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    for (i = 0; i < n && err == 0; i++) {
        err = event_fill("acct_a", "user.message", NULL, &evs[i]);
        items[i] = (struct store_publish){.ev = &evs[i], .eps = eps[i], .neps = 1};
        if (err == 0)
            err = store_event_publish_async(st, &items[i], 1, ho_gate_done, &g);
        if (err == 0)
            queued++;
    }
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    while (g.done < queued)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    pthread_join(th, NULL);
out:
    *failed = g.failed;
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    return err;
}

/*
 * An asynchronous publish (an HTTP loop's) is answered once its sync ends,
 * without waiting for its hand-over to the dispatcher: here the dispatcher's
 * deliver hook is held, and the answer still comes; the claim follows once
 * the hook goes on.
 */
static void
test_handoff_answer_first(void **state)
{
    struct fx *fx = *state;
    struct store_publish item;
    struct timespec until;
    struct endpoint ep;
    struct event ev;
    struct ho_gate g;
    struct ho_rec r;
    int answered, handed, same, calls, rc = 0, err;

    if (!fx->sqlite)
        skip(); /* PostgreSQL keeps the claim path */
    endpoint_make(fx->st, "acct_a", "", &ep);
    ho_register(fx->st, &r, 100, 64);
    r.stall = 1;
    memset(&g, 0, sizeof(g));
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    memset(&ev, 0, sizeof(ev));
    err = event_fill("acct_a", "user.message", NULL, &ev);
    item = (struct store_publish){.ev = &ev, .eps = &ep, .neps = 1};
    if (err == 0)
        err = store_event_publish_async(fx->st, &item, 1, ho_gate_done, &g);
    /* No assertion while the hook is held (a failed one would leave the syncer there). */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g.mu);
    while (err == 0 && g.done == 0 && rc == 0)
        rc = pthread_cond_timedwait(&g.cv, &g.mu, &until);
    answered = g.done;
    pthread_mutex_unlock(&g.mu);
    pthread_mutex_lock(&r.mu);
    r.stall = 0;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);

    /* The hand-over follows; r is unregistered before any assertion can leave. */
    handed = (int)ho_wait(&r, 1);
    same = handed == 1 && strcmp(r.cs[0].dlv.event_id, ev.id) == 0;
    calls = r.calls;
    ho_done(fx->st, &r);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);

    assert_int_equal(err, 0);
    assert_int_equal(answered, 1);
    assert_int_equal(g.failed, 0);
    assert_int_equal(item.err, 0);
    assert_int_equal(item.handed, 1);
    assert_int_equal(handed, 1);
    assert_true(same);
    assert_int_equal(calls, 1);
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
}

/*
 * Publishes made durable by one sync hand their deliveries to the
 * dispatcher in one call (one wake-up of its loop), in publish order.
 */
static void
test_handoff_group_delivered_once(void **state)
{
    struct fx *fx = *state;
    struct store_publish items[HO_GROUP];
    struct event evs[HO_GROUP];
    const struct endpoint *eps[HO_GROUP];
    struct endpoint ep;
    struct ho_rec r;
    int i, failed, err;

    if (!fx->sqlite)
        skip(); /* PostgreSQL keeps the claim path */
    endpoint_make(fx->st, "acct_a", "", &ep);
    ho_register(fx->st, &r, 100, 64);
    for (i = 0; i < HO_GROUP; i++)
        eps[i] = &ep;
    err = ho_publish_group(fx->st, eps, HO_GROUP, items, evs, &failed);
    assert_int_equal(err, 0);
    assert_int_equal(failed, 0);
    assert_int_equal((int)ho_wait(&r, HO_GROUP), HO_GROUP);
    assert_int_equal(r.oom, 0);
    assert_int_equal(r.takes, HO_GROUP);
    assert_int_equal((int)r.n, HO_GROUP);
    assert_int_equal(r.calls, 1);
    for (i = 0; i < HO_GROUP; i++) {
        assert_int_equal(items[i].err, 0);
        assert_string_equal(r.cs[i].dlv.event_id, evs[i].id);
        assert_string_equal(r.cs[i].secret, ep.secret); /* opened */
    }
    ho_done(fx->st, &r);
    for (i = 0; i < HO_GROUP; i++)
        event_cleanup(&evs[i]);
    endpoint_cleanup(&ep);
}

/*
 * Sealed secrets handed over in one sync's group: the group opens each
 * endpoint's sealed values once and copies them (secrets_open_claims_memo),
 * and every claim, whatever the publishes beside it, gets its own endpoint's
 * secret in clear, and prev_secret only where a rotation's grace runs.
 */
static void
test_handoff_group_secrets_sealed(void **state)
{
    struct fx *fx = *state;
    const char order[] = "aabaabbba";
    struct store_publish items[sizeof(order) - 1];
    struct event evs[sizeof(order) - 1];
    const struct endpoint *eps[sizeof(order) - 1];
    struct keyring *ring = NULL;
    struct endpoint a, b;
    struct ho_rec r;
    int i, n = (int)strlen(order), failed, err;

    if (!fx->sqlite)
        skip(); /* PostgreSQL keeps the claim path */
    ring = keys_attach_test(fx->st);
    endpoint_make_rotated(fx->st, clock_now_ms(), &a);
    endpoint_make(fx->st, "acct_a", "", &b);
    assert_string_not_equal(a.secret, b.secret);
    assert_non_null(a.prev_secret);
    ho_register(fx->st, &r, 100, 64);
    for (i = 0; i < n; i++)
        eps[i] = order[i] == 'a' ? &a : &b;
    err = ho_publish_group(fx->st, eps, n, items, evs, &failed);
    assert_int_equal(err, 0);
    assert_int_equal(failed, 0);
    assert_int_equal((int)ho_wait(&r, (size_t)n), n);
    assert_int_equal(r.oom, 0);
    assert_int_equal((int)r.n, n);
    assert_int_equal(r.calls, 1);
    for (i = 0; i < n; i++) {
        assert_string_equal(r.cs[i].dlv.event_id, evs[i].id);
        assert_string_equal(r.cs[i].dlv.endpoint_id, eps[i]->id);
        assert_string_equal(r.cs[i].secret, eps[i]->secret);
        if (eps[i] == &a)
            assert_string_equal(r.cs[i].prev_secret, a.prev_secret);
        else
            assert_null(r.cs[i].prev_secret);
    }
    ho_done(fx->st, &r);
    for (i = 0; i < n; i++)
        event_cleanup(&evs[i]);
    keys_detach_test(fx->st, ring);
    endpoint_cleanup(&a);
    endpoint_cleanup(&b);
}

/*
 * One sync's publishes fanned out to more endpoints than one: each event of
 * the group goes to the next of HO_MANY_EPS endpoints, HO_MANY_ROUNDS times
 * round (as a fan-out to all of them would interleave them). The group
 * opens each endpoint's sealed secret once, not once per delivery, and each
 * claim gets its own endpoint's secret.
 */
#define HO_MANY_EPS 20
#define HO_MANY_ROUNDS 3
static void
test_handoff_group_secrets_many_endpoints(void **state)
{
    struct fx *fx = *state;
    enum { N = HO_MANY_EPS * HO_MANY_ROUNDS };
    struct store_publish items[N];
    struct event evs[N];
    const struct endpoint *eps[N];
    struct endpoint made[HO_MANY_EPS];
    char secrets[HO_MANY_EPS][48];
    struct keyring *ring = NULL;
    struct ho_rec r;
    uint64_t opened;
    int i, failed, err;

    if (!fx->sqlite)
        skip(); /* PostgreSQL keeps the claim path */
    ring = keys_attach_test(fx->st);
    for (i = 0; i < HO_MANY_EPS; i++) {
        snprintf(secrets[i], sizeof(secrets[i]), "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2Vj%04d", i);
        endpoint_make_secret(fx->st, "acct_a", "", secrets[i], &made[i]);
    }
    ho_register(fx->st, &r, 100, 64);
    for (i = 0; i < N; i++)
        eps[i] = &made[i % HO_MANY_EPS];
    opened = fx->st->secrets_opened;
    err = ho_publish_group(fx->st, eps, N, items, evs, &failed);
    assert_int_equal(err, 0);
    assert_int_equal(failed, 0);
    assert_int_equal((int)ho_wait(&r, N), N);
    assert_int_equal(r.oom, 0);
    assert_int_equal((int)r.n, N);
    assert_int_equal(r.calls, 1);
    /* Once per endpoint: a memo of the last endpoint alone opened all N. */
    assert_int_equal((int)(fx->st->secrets_opened - opened), HO_MANY_EPS);
    for (i = 0; i < N; i++) {
        assert_string_equal(r.cs[i].dlv.event_id, evs[i].id);
        assert_string_equal(r.cs[i].dlv.endpoint_id, eps[i]->id);
        assert_string_equal(r.cs[i].secret, secrets[i % HO_MANY_EPS]);
        assert_null(r.cs[i].prev_secret);
    }
    ho_done(fx->st, &r);
    for (i = 0; i < N; i++)
        event_cleanup(&evs[i]);
    keys_detach_test(fx->st, ring);
    for (i = 0; i < HO_MANY_EPS; i++)
        endpoint_cleanup(&made[i]);
}

/*
 * A publish that fails hands nothing over and gives its reservations back;
 * publishes that fail halfway share transactions with ones that succeed, so
 * those run again in savepoints: each reservation still ends exactly once,
 * and only stored deliveries are handed over, once each.
 */
static void
test_handoff_failures_and_reruns(void **state)
{
    struct fx *fx = *state;
    struct endpoint good[2], bad[2];
    struct mixed_thread ts[MIXED_THREADS];
    pthread_t th[MIXED_THREADS];
    int64_t counts[DELIVERY__COUNT];
    struct event ev;
    struct ho_rec r;
    char(*ids)[ID_MAX];
    int i, started, unexpected = 0, total_ok = 0;
    size_t k;

    if (!fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &good[0]);
    endpoint_make(fx->st, "acct_a", "", &good[1]);
    bad[0] = good[0];
    memset(&bad[1], 0, sizeof(bad[1]));
    snprintf(bad[1].id, sizeof(bad[1].id), "ep_missing");
    ho_register(fx->st, &r, 1000000, 1000000);

    /*
     * Alone: the first delivery was reserved, the missing endpoint fails the
     * publish (which runs again in a savepoint and fails again): every
     * reservation is given back, nothing handed over.
     */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, bad, 2, &ev), ERR_NOTFOUND);
    event_cleanup(&ev);
    assert_true(r.takes >= 1);
    assert_int_equal(r.gives, r.takes);
    assert_int_equal(r.n, 0);

    /*
     * Every thread is joined before anything is asserted: a failed assertion
     * leaves the test (and the fixture closes the store), which publishers
     * still running would then use.
     */
    for (i = 0; i < MIXED_THREADS; i++) {
        ts[i] = (struct mixed_thread){.st = fx->st, .good = good, .bad = bad};
        ts[i].ok_ids = calloc(MIXED_EACH, ID_MAX);
        ts[i].bad_ids = calloc(MIXED_EACH, ID_MAX);
        if (ts[i].ok_ids == NULL || ts[i].bad_ids == NULL ||
            pthread_create(&th[i], NULL, mixed_publisher, &ts[i]) != 0)
            break;
    }
    started = i;
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        unexpected += ts[i].unexpected;
        total_ok += ts[i].nok;
    }
    for (i = 0; i < MIXED_THREADS && i <= started; i++) {
        free(ts[i].ok_ids);
        free(ts[i].bad_ids);
    }
    assert_int_equal(started, MIXED_THREADS);
    assert_int_equal(unexpected, 0);
    assert_false(r.oom);
    /* Every reservation ended once: handed over or given back. */
    assert_int_equal(r.takes, r.gives + (int)r.n);
    /* Every stored delivery was handed over, once, and only those. */
    assert_int_equal((int)r.n, total_ok * 2);
    ids = calloc(r.n, ID_MAX);
    assert_non_null(ids);
    for (k = 0; k < r.n; k++) {
        memcpy(ids[k], r.cs[k].dlv.id, ID_MAX);
        assert_int_equal(status_of(fx->st, "acct_a", ids[k]), DELIVERY_DELIVERING);
    }
    qsort(ids, r.n, ID_MAX, cmp_id);
    for (k = 1; k < r.n; k++)
        assert_string_not_equal(ids[k - 1], ids[k]);
    free(ids);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_DELIVERING], total_ok * 2);
    assert_int_equal(counts[DELIVERY_PENDING], 0);
    ho_done(fx->st, &r);
    endpoint_cleanup(&good[0]);
    endpoint_cleanup(&good[1]);
}

/* --- what publishes read, after changes through this handle or another (the writer's caches) --- */

/* Publishes one event of type for acct_a through st, fanned out by the store; returns its deliveries. */
static int64_t
publish_fanout(struct store *st, const char *type, struct event *ev)
{
    struct store_publish item = { .ev = ev, .fanout = 1 };

    assert_int_equal(event_fill("acct_a", type, NULL, ev), 0);
    assert_int_equal(store_event_publish_batch(st, &item, 1), 0);
    assert_int_equal(item.err, 0);
    return ev->deliveries;
}

/*
 * ev's deliveries are exactly one per endpoint of ids (n of them), each in
 * the status of the same index.
 */
static void
deliveries_are(struct store *st, const struct event *ev, const char *const *ids,
               const enum delivery_status *statuses, size_t n)
{
    struct delivery_filter f = { .event_id = ev->id, .status = -1, .limit = 100 };
    struct delivery *ds = NULL;
    size_t nd = 0, i, j;

    assert_int_equal(ev->deliveries, (int64_t)n);
    assert_int_equal(store_delivery_list(st, "acct_a", &f, &ds, &nd), 0);
    assert_int_equal(nd, n);
    for (i = 0; i < n; i++) {
        for (j = 0; j < nd && strcmp(ds[j].endpoint_id, ids[i]) != 0; j++)
            ;
        assert_true(j < nd);
        assert_int_equal(ds[j].status, statuses[i]);
    }
    delivery_list_free(ds, nd);
}

/*
 * Each change to an endpoint or its types, made through ch, is seen by the
 * very next publish through st: created, disabled, deleted, enabled,
 * unsubscribed and subscribed again.
 */
/* Publishes one event of type through st and checks its deliveries as deliveries_are(). */
static void
publish_expect(struct store *st, const char *type, const char *const *ids,
               const enum delivery_status *statuses, size_t n)
{
    struct event ev;

    publish_fanout(st, type, &ev);
    deliveries_are(st, &ev, ids, statuses, n);
    event_cleanup(&ev);
}

static void
fanout_changes(struct store *st, struct store *ch)
{
    struct endpoint a, b;
    struct endpoint_patch patch = { 0 };
    const char *ids[2];
    enum delivery_status ss[2];

    endpoint_make(ch, "acct_a", "user.message", &a);
    ids[0] = a.id;
    ss[0] = DELIVERY_PENDING;
    publish_expect(st, "user.message", ids, ss, 1);

    endpoint_make(ch, "acct_a", "", &b);
    ids[1] = b.id;
    ss[1] = DELIVERY_PENDING;
    publish_expect(st, "user.message", ids, ss, 2);

    assert_int_equal(store_endpoint_disable(ch, "acct_a", a.id, "by hand", clock_now_ms()), 0);
    ss[0] = DELIVERY_HELD;
    publish_expect(st, "user.message", ids, ss, 2);

    assert_int_equal(store_endpoint_delete(ch, "acct_a", b.id), 0);
    publish_expect(st, "user.message", ids, ss, 1);

    assert_int_equal(store_endpoint_enable(ch, "acct_a", a.id, 0, clock_now_ms(), NULL), 0);
    ss[0] = DELIVERY_PENDING;
    publish_expect(st, "user.message", ids, ss, 1);

    patch.event_types = "agent.updated";
    assert_int_equal(store_endpoint_update(ch, "acct_a", a.id, &patch, clock_now_ms()), 0);
    publish_expect(st, "user.message", ids, ss, 0);
    publish_expect(st, "agent.updated", ids, ss, 1);

    patch.event_types = "user.message";
    assert_int_equal(store_endpoint_update(ch, "acct_a", a.id, &patch, clock_now_ms()), 0);
    publish_expect(st, "user.message", ids, ss, 1);
    publish_expect(st, "agent.updated", ids, ss, 0);
    endpoint_cleanup(&a);
    endpoint_cleanup(&b);
}

static void
test_fanout_follows_changes(void **state)
{
    struct fx *fx = *state;

    fanout_changes(fx->st, fx->st);
}

/* The same changes made by another process sharing the store (a second handle on it). */
static void
test_fanout_follows_other_process(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;

    assert_int_equal(store_open(fx->url, &other), 0);
    fanout_changes(fx->st, other);
    store_close(other);
}

/* The last claim r was handed is to ep, from its url and with these secrets. */
static void
handed_is(struct ho_rec *r, size_t n, const char *ep, const char *url, const char *secret,
          const char *prev)
{
    struct claim *c;

    assert_int_equal(r->n, n);
    c = &r->cs[n - 1];
    assert_string_equal(c->dlv.endpoint_id, ep);
    assert_string_equal(c->url, url);
    assert_string_equal(c->secret, secret);
    if (prev == NULL)
        assert_null(c->prev_secret);
    else
        assert_string_equal(c->prev_secret, prev);
}

/*
 * A hand-off reads the endpoint as it is now, whoever changed it: its url,
 * its secrets (the old one only in its grace), disabled, enabled again.
 */
static void
test_handoff_follows_other_process(void **state)
{
    static const char secret2[] = "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0";
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep, rotated;
    struct endpoint_patch patch = { 0 };
    struct event ev;
    struct ho_rec r;

    if (!fx->sqlite)
        skip(); /* PostgreSQL keeps the claim path */
    assert_int_equal(store_open(fx->url, &other), 0);
    endpoint_make(other, "acct_a", "user.message", &ep);
    ho_register(fx->st, &r, 100, 100);

    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    handed_is(&r, 1, ep.id, ep.url, ep.secret, NULL);

    patch.url = "https://example.test/moved";
    assert_int_equal(store_endpoint_update(other, "acct_a", ep.id, &patch, clock_now_ms()), 0);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    handed_is(&r, 2, ep.id, patch.url, ep.secret, NULL);

    assert_int_equal(store_endpoint_rotate(other, "acct_a", ep.id, secret2,
                                           clock_now_ms() + 3600000, clock_now_ms(), &rotated),
                     0);
    endpoint_cleanup(&rotated);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    handed_is(&r, 3, ep.id, patch.url, secret2, ep.secret);

    /* A rotation without grace drops the old secret at once. */
    assert_int_equal(store_endpoint_rotate(other, "acct_a", ep.id, ep.secret, 0, clock_now_ms(),
                                           &rotated),
                     0);
    endpoint_cleanup(&rotated);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    handed_is(&r, 4, ep.id, patch.url, ep.secret, NULL);

    assert_int_equal(store_endpoint_disable(other, "acct_a", ep.id, "by hand", clock_now_ms()),
                     0);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    assert_int_equal(r.n, 4);
    event_cleanup(&ev);

    assert_int_equal(store_endpoint_enable(other, "acct_a", ep.id, 0, clock_now_ms(), NULL), 0);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    handed_is(&r, 5, ep.id, patch.url, ep.secret, NULL);
    assert_int_equal(r.takes, 5); /* the disabled endpoint's delivery was never offered */
    assert_int_equal(r.gives, 0);

    ho_done(fx->st, &r);
    store_close(other);
    endpoint_cleanup(&ep);
}

/*
 * The per-endpoint cap holds over every process: leases another process
 * took since this one last counted are counted; a count that said full is
 * counted again once they end.
 */
static void
test_handoff_cap_other_process(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep, ep2;
    const char *exclude[1];
    struct event ev;
    struct claim *cs = NULL;
    struct attempt_result res;
    struct ho_rec r;
    size_t n = 0;

    if (!fx->sqlite)
        skip();
    assert_int_equal(store_open(fx->url, &other), 0);
    endpoint_make(fx->st, "acct_a", "user.message", &ep);
    exclude[0] = ep.id;
    ho_register(fx->st, &r, 100, 2);

    /* One of the endpoint's two slots, here. */
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(r.n, 1);
    /* The other process takes the second. */
    assert_int_equal(publish_fanout(other, "user.message", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(store_claim(other, clock_now_ms(), 30000, 10, 2, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 1);
    /* Full: the next stays pending and its reservation goes back. */
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.gives, 1);

    /* The other's attempt ends: room again. */
    result_ok(&res, cs[0].dlv.id, cs[0].dlv.lease_token);
    assert_int_equal(store_results_apply(other, &res, 1, clock_now_ms()), 0);
    claim_list_free(cs, n);
    assert_int_equal(publish_fanout(fx->st, "user.message", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(r.n, 2);

    /* This process's own claims count: ep2 has one hand-off, then a claim fills it. */
    endpoint_make(fx->st, "acct_a", "agent.updated", &ep2);
    assert_int_equal(publish_fanout(fx->st, "agent.updated", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(r.n, 3);
    r.room = 0; /* the dispatcher says full: this one stays pending, for the claim */
    assert_int_equal(publish_fanout(fx->st, "agent.updated", &ev), 1);
    event_cleanup(&ev);
    r.room = 100;
    assert_int_equal(store_claim(fx->st, clock_now_ms(), 30000, 10, 0, exclude, 1, &cs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].dlv.endpoint_id, ep2.id);
    claim_list_free(cs, n);
    assert_int_equal(publish_fanout(fx->st, "agent.updated", &ev), 1);
    event_cleanup(&ev);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.gives, 2);

    ho_done(fx->st, &r);
    store_close(other);
    endpoint_cleanup(&ep);
    endpoint_cleanup(&ep2);
}

static void
test_reopen_keeps_everything(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, got;
    struct event ev, gev;
    int64_t migrations;

    endpoint_make(fx->st, "acct_a", "", &ep);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", "k", &ep, 1, &ev), 0);
    migrations = sql_count(fx, "SELECT count(*) FROM schema_version");
    assert_true(migrations > 0);
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(store_open(fx->url, &fx->st), 0);
    assert_int_equal(store_is_empty(fx->st), 0);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    assert_string_equal(got.secret, ep.secret);
    endpoint_cleanup(&got);
    assert_int_equal(store_event_get(fx->st, "acct_a", ev.id, &gev), 0);
    assert_memory_equal(gev.body, ev.body, ev.body_len);
    event_cleanup(&gev);
    /* The migrations ran once each: reopening ran none again. */
    assert_int_equal(sql_count(fx, "SELECT count(*) FROM schema_version"), migrations);
    if (fx->sqlite) {
        int embedded = 0;

        /* One row per embedded migration (their numbers may have gaps). */
        while (sq_migrations[embedded].version != 0)
            embedded++;
        assert_int_equal(migrations, embedded);
        assert_int_equal(sql_count(fx, "SELECT count(*) FROM sqlite_master WHERE type = "
                                       "'trigger'"),
                         0);
        assert_int_equal(sql_count(fx, "PRAGMA journal_mode = WAL") >= 0, 1);
    }
    event_cleanup(&ev);
    endpoint_cleanup(&ep);
}

/*
 * Crash safety: a child publishes in a loop and writes each acknowledged
 * event id to a pipe; it is SIGKILLed mid-flight. Every id it saw
 * acknowledged must be in the reopened store with its deliveries.
 */
static void
child_publish(const char *url, const char *ep_id, int fd)
{
    struct store *st = NULL;
    struct endpoint ep = { 0 };
    int i;

    if (store_open(url, &st) != 0)
        _exit(3);
    snprintf(ep.id, sizeof(ep.id), "%s", ep_id);
    for (i = 0; i < 1000000; i++) {
        struct event ev;
        if (publish(st, "acct_a", "user.message", NULL, &ep, 1, &ev) != 0)
            _exit(4);
        if (write(fd, ev.id, ID_MAX) != ID_MAX)
            _exit(5);
        event_cleanup(&ev);
    }
    _exit(0);
}

static void
test_crash_keeps_acknowledged(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep;
    char (*ids)[ID_MAX] = NULL;
    size_t nids = 0, cap = 0, i;
    int fds[2], status;
    pid_t pid;

    endpoint_make(fx->st, "acct_a", "", &ep);
    /* The child opens the store itself; close ours so no thread or connection crosses the fork. */
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_publish(fx->url, ep.id, fds[1]);
    }
    close(fds[1]);
    for (;;) {
        char id[ID_MAX];
        ssize_t got = read(fds[0], id, ID_MAX);

        if (got == 0)
            break;
        assert_int_equal(got, ID_MAX);
        if (nids == cap) {
            cap = cap == 0 ? 256 : cap * 2;
            ids = realloc(ids, cap * ID_MAX);
            assert_non_null(ids);
        }
        memcpy(ids[nids++], id, ID_MAX);
        if (nids == 300)
            kill(pid, SIGKILL);
    }
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(nids >= 300);

    assert_int_equal(store_open(fx->url, &fx->st), 0);
    for (i = 0; i < nids; i++) {
        struct event ev;
        struct delivery *ds = NULL;

        assert_int_equal(store_event_get(fx->st, "acct_a", ids[i], &ev), 0);
        assert_int_equal(ev.deliveries, 1);
        event_cleanup(&ev);
        assert_int_equal(deliveries_of(fx->st, "acct_a", ids[i], &ds), 1);
        assert_string_equal(ds[0].endpoint_id, ep.id);
        delivery_list_free(ds, 1);
    }
    free(ids);
    endpoint_cleanup(&ep);
}

/* --- several store handles on one database, as several processes or hosts --- */

#define CC_HANDLES 4       /* store handles, one thread each */
#define CC_ENDPOINTS 4
#define CC_EVENTS 50       /* each fans out to every endpoint */
#define CC_CAP 3           /* in flight per endpoint, over all handles */

struct cc_shared {
    const struct endpoint *eps;
    pthread_mutex_t lock;
    char (*seen)[ID_MAX];  /* every delivery claimed so far */
    size_t nseen;
    int duplicates;        /* claimed while another claim's lease ran */
    int over_cap;          /* an endpoint seen with more than CC_CAP delivering */
    int errors;
    int64_t deadline;      /* monotonic ms: give up */
};

struct cc_thread {
    struct cc_shared *sh;
    struct store *st;
    pthread_t thread;
};

/* Records the claims in sh; counts a delivery claimed twice. */
static void
cc_record(struct cc_shared *sh, const struct claim *cs, size_t n)
{
    size_t i, j;

    pthread_mutex_lock(&sh->lock);
    for (i = 0; i < n; i++) {
        for (j = 0; j < sh->nseen; j++) {
            if (strcmp(sh->seen[j], cs[i].dlv.id) == 0)
                sh->duplicates++;
        }
        snprintf(sh->seen[sh->nseen++], ID_MAX, "%s", cs[i].dlv.id);
    }
    pthread_mutex_unlock(&sh->lock);
}

/* Checks, as committed now, that no endpoint has more than CC_CAP deliveries delivering. */
static void
cc_check_cap(struct cc_shared *sh, struct store *st)
{
    struct delivery_filter f = { .status = DELIVERY_DELIVERING, .limit = STORE_MAX_PAGE };
    struct delivery *ds = NULL;
    size_t n = 0;
    int i;

    for (i = 0; i < CC_ENDPOINTS; i++) {
        f.endpoint_id = sh->eps[i].id;
        if (store_delivery_list(st, "acct_a", &f, &ds, &n) != 0) {
            __atomic_add_fetch(&sh->errors, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (n > CC_CAP)
            __atomic_add_fetch(&sh->over_cap, 1, __ATOMIC_SEQ_CST);
        delivery_list_free(ds, n);
    }
}

/* Claims (long leases, so none runs out), checks the cap, delivers, until all are done. */
static void *
cc_worker(void *arg)
{
    struct cc_thread *t = arg;
    struct cc_shared *sh = t->sh;
    size_t total = (size_t)CC_EVENTS * CC_ENDPOINTS, seen;

    for (;;) {
        struct claim *cs = NULL;
        struct attempt_result rs[5];
        size_t n = 0, i;
        int64_t now = clock_now_ms();

        pthread_mutex_lock(&sh->lock);
        seen = sh->nseen;
        pthread_mutex_unlock(&sh->lock);
        if (seen >= total || clock_mono_ms() > sh->deadline)
            break;
        if (store_claim(t->st, now, HOUR_MS, 5, CC_CAP, NULL, 0, &cs, &n) != 0) {
            __atomic_add_fetch(&sh->errors, 1, __ATOMIC_SEQ_CST);
            break;
        }
        cc_record(sh, cs, n);
        cc_check_cap(sh, t->st);
        for (i = 0; i < n; i++)
            result_for(&rs[i], &cs[i], DELIVERY_DELIVERED, 200, NULL, now, 1);
        if (n > 0 && store_results_apply(t->st, rs, n, now) != 0)
            __atomic_add_fetch(&sh->errors, 1, __ATOMIC_SEQ_CST);
        claim_list_free(cs, n);
        if (n == 0)
            usleep(1000);
    }
    return NULL;
}

/*
 * Handles claiming at the same time, as dispatchers of several processes
 * do: each delivery is claimed once, no endpoint ever has more than its cap
 * delivering, and every delivery ends delivered.
 */
static void
test_claim_concurrent_handles(void **state)
{
    struct fx *fx = *state;
    struct endpoint eps[CC_ENDPOINTS];
    struct cc_shared sh = { .eps = eps };
    struct cc_thread ts[CC_HANDLES];
    struct event ev;
    int64_t counts[DELIVERY__COUNT];
    size_t total = (size_t)CC_EVENTS * CC_ENDPOINTS;
    int i;

    for (i = 0; i < CC_ENDPOINTS; i++)
        endpoint_make(fx->st, "acct_a", "", &eps[i]);
    for (i = 0; i < CC_EVENTS; i++) {
        assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, eps, CC_ENDPOINTS, &ev),
                         0);
        event_cleanup(&ev);
    }
    sh.seen = calloc(total + 64, sizeof(*sh.seen));
    assert_non_null(sh.seen);
    pthread_mutex_init(&sh.lock, NULL);
    sh.deadline = clock_mono_ms() + 60000;
    for (i = 0; i < CC_HANDLES; i++) {
        ts[i].sh = &sh;
        if (i == 0)
            ts[i].st = fx->st;
        else
            assert_int_equal(store_open(fx->url, &ts[i].st), 0);
    }
    for (i = 0; i < CC_HANDLES; i++)
        assert_int_equal(pthread_create(&ts[i].thread, NULL, cc_worker, &ts[i]), 0);
    for (i = 0; i < CC_HANDLES; i++)
        pthread_join(ts[i].thread, NULL);
    for (i = 1; i < CC_HANDLES; i++)
        store_close(ts[i].st);

    assert_int_equal(sh.errors, 0);
    assert_int_equal(sh.duplicates, 0);
    assert_int_equal(sh.over_cap, 0);
    assert_int_equal(sh.nseen, total);
    assert_int_equal(store_count_by_status(fx->st, counts), 0);
    assert_int_equal(counts[DELIVERY_DELIVERED], (int64_t)total);
    assert_int_equal(counts[DELIVERY_DELIVERING] + counts[DELIVERY_PENDING], 0);
    pthread_mutex_destroy(&sh.lock);
    free(sh.seen);
    for (i = 0; i < CC_ENDPOINTS; i++)
        endpoint_cleanup(&eps[i]);
}

#define IK_HANDLES 4
#define IK_KEYS 20

struct ik_thread {
    struct store *st;
    const struct endpoint *ep;
    int results[IK_KEYS];            /* what each publish answered */
    char ids[IK_KEYS][ID_MAX];       /* the event it stored, or the earlier one */
    pthread_t thread;
};

static void *
ik_worker(void *arg)
{
    struct ik_thread *t = arg;
    char key[32];
    int i;

    for (i = 0; i < IK_KEYS; i++) {
        struct event ev;

        snprintf(key, sizeof(key), "key-%d", i);
        t->results[i] = publish(t->st, "acct_a", "user.message", key, t->ep, 1, &ev);
        snprintf(t->ids[i], ID_MAX, "%s", ev.id);
        event_cleanup(&ev);
    }
    return NULL;
}

/*
 * The same idempotency keys published at once through several handles (as
 * on several hosts): each key stores one event, and every other publish of
 * it answers ERR_CONFLICT with that event.
 */
static void
test_idempotency_concurrent_handles(void **state)
{
    struct fx *fx = *state;
    struct ik_thread ts[IK_HANDLES];
    struct endpoint ep;
    struct event *evs = NULL;
    size_t n = 0;
    int i, k, won;

    endpoint_make(fx->st, "acct_a", "", &ep);
    for (i = 0; i < IK_HANDLES; i++) {
        ts[i].ep = &ep;
        if (i == 0)
            ts[i].st = fx->st;
        else
            assert_int_equal(store_open(fx->url, &ts[i].st), 0);
    }
    for (i = 0; i < IK_HANDLES; i++)
        assert_int_equal(pthread_create(&ts[i].thread, NULL, ik_worker, &ts[i]), 0);
    for (i = 0; i < IK_HANDLES; i++)
        pthread_join(ts[i].thread, NULL);
    for (i = 1; i < IK_HANDLES; i++)
        store_close(ts[i].st);
    for (k = 0; k < IK_KEYS; k++) {
        const char *winner = NULL;

        won = 0;
        for (i = 0; i < IK_HANDLES; i++) {
            assert_true(ts[i].results[k] == 0 || ts[i].results[k] == ERR_CONFLICT);
            if (ts[i].results[k] == 0) {
                won++;
                winner = ts[i].ids[k];
            }
        }
        assert_int_equal(won, 1);
        for (i = 0; i < IK_HANDLES; i++)
            assert_string_equal(ts[i].ids[k], winner);
    }
    assert_int_equal(store_event_list(fx->st, "acct_a", NULL, NULL, STORE_MAX_PAGE, &evs, &n), 0);
    assert_int_equal(n, IK_KEYS);
    event_list_free(evs, n);
    endpoint_cleanup(&ep);
}

/* --- postgres: the server side of several processes (skipped on sqlite) --- */

struct pgx_open {
    const char *url;
    struct store *st;
    int err;
    pthread_t thread;
};

static void *
pgx_open_main(void *arg)
{
    struct pgx_open *o = arg;

    o->err = store_open(o->url, &o->st);
    return NULL;
}

/*
 * Ten processes starting at once on an empty database: one migrates, under
 * the advisory lock, and the others wait for it and find the schema ready.
 */
static void
test_pg_open_concurrently(void **state)
{
    struct fx *fx = *state;
    struct pgx_open os[10];
    int i;

    if (fx->sqlite)
        skip();
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(pg_exec(fx->url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"), 0);
    for (i = 0; i < 10; i++) {
        os[i].url = fx->url;
        os[i].st = NULL;
        assert_int_equal(pthread_create(&os[i].thread, NULL, pgx_open_main, &os[i]), 0);
    }
    for (i = 0; i < 10; i++)
        pthread_join(os[i].thread, NULL);
    for (i = 0; i < 10; i++) {
        assert_int_equal(os[i].err, 0);
        assert_int_equal(store_is_empty(os[i].st), 1);
        if (i > 0)
            store_close(os[i].st);
    }
    fx->st = os[0].st;
    /* A database whose schema is newer than this build knows is refused. */
    assert_int_equal(pg_exec(fx->url, "INSERT INTO schema_version VALUES (999, 'future', 0)"), 0);
    assert_int_equal(store_open(fx->url, &os[1].st), ERR_STORE);
    assert_null(os[1].st);
    assert_int_equal(pg_exec(fx->url, "DELETE FROM schema_version WHERE version = 999"), 0);
}

static void
pgx_count(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

/* Waits up to ms for *counter to reach at least want; returns its value. */
static int
pgx_wait(int *counter, int want, int ms)
{
    int64_t end = clock_mono_ms() + ms;

    while (__atomic_load_n(counter, __ATOMIC_SEQ_CST) < want && clock_mono_ms() < end)
        usleep(5000);
    return __atomic_load_n(counter, __ATOMIC_SEQ_CST);
}

/*
 * Work made due by another process wakes this one's dispatcher (NOTIFY and
 * the listener); a process's own change wakes it once, not twice.
 */
static void
test_pg_notify_other_handle(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct endpoint ep;
    struct event ev;
    int own = 0, theirs = 0;

    if (fx->sqlite)
        skip();
    assert_int_equal(store_open(fx->url, &other), 0);
    store_on_due(other, pgx_count, &theirs);
    store_on_due(fx->st, pgx_count, &own);
    endpoint_make(fx->st, "acct_a", "", &ep);
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(pgx_wait(&theirs, 1, 5000), 1);
    usleep(200000);
    assert_int_equal(own, 1);
    /* No delivery due, no wake-up. */
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, NULL, 0, &ev), 0);
    event_cleanup(&ev);
    usleep(200000);
    assert_int_equal(theirs, 1);
    /* Enable (of held deliveries) and replay wake the others too. */
    assert_int_equal(store_endpoint_disable(other, "acct_a", ep.id, "x", clock_now_ms()), 0);
    assert_int_equal(store_endpoint_enable(other, "acct_a", ep.id, 0, clock_now_ms(), NULL), 0);
    assert_int_equal(pgx_wait(&own, 2, 5000), 2);
    store_on_due(other, NULL, NULL);
    store_on_due(fx->st, NULL, NULL);
    store_close(other);
    endpoint_cleanup(&ep);
}

#define NB_THREADS 8
#define NB_EVENTS 100 /* per thread */

/* A wake-up counter that also keeps when it last fired. */
struct nb_wakes {
    int count;
    int64_t last_ms; /* monotonic */
};

static void
nb_count(void *arg)
{
    struct nb_wakes *w = arg;

    __atomic_store_n(&w->last_ms, clock_mono_ms(), __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&w->count, 1, __ATOMIC_SEQ_CST);
}

struct nb_thread {
    struct store *st;
    const struct endpoint *eps;
    int failures;
    int64_t last_start; /* when its last publish began (monotonic ms) */
    pthread_t thread;
};

static void *
nb_publisher(void *arg)
{
    struct nb_thread *t = arg;
    int i;

    for (i = 0; i < NB_EVENTS; i++) {
        struct event ev;

        t->last_start = clock_mono_ms();
        if (publish(t->st, "acct_a", "user.message", NULL, t->eps, 2, &ev) != 0)
            t->failures++;
        event_cleanup(&ev);
    }
    return NULL;
}

/*
 * A burst of publishes from many threads of one process wakes the
 * dispatcher of another: the NOTIFYs are sent after the commits, coalesced
 * (never more than one per publish), and the last publishes are heard too.
 * The publisher's own dispatcher is woken once per publish, by the store,
 * never again by its own NOTIFYs. A release followed at once by close
 * still wakes the others: close sends what was marked before it.
 */
static void
test_pg_notify_burst(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL, *leaving = NULL;
    struct endpoint eps[2];
    struct nb_thread ts[NB_THREADS];
    struct nb_wakes theirs = { 0 }, own = { 0 };
    struct claim *cs = NULL;
    const char *ids[10];
    int64_t tokens[10], last_start = 0;
    size_t n = 0, i;
    int before;

    if (fx->sqlite)
        skip();
    assert_int_equal(store_open(fx->url, &other), 0);
    endpoint_make(fx->st, "acct_a", "", &eps[0]);
    endpoint_make(fx->st, "acct_a", "", &eps[1]);
    store_on_due(other, nb_count, &theirs);
    store_on_due(fx->st, nb_count, &own);
    for (i = 0; i < NB_THREADS; i++) {
        ts[i] = (struct nb_thread){ .st = fx->st, .eps = eps };
        assert_int_equal(pthread_create(&ts[i].thread, NULL, nb_publisher, &ts[i]), 0);
    }
    for (i = 0; i < NB_THREADS; i++)
        pthread_join(ts[i].thread, NULL);
    for (i = 0; i < NB_THREADS; i++) {
        assert_int_equal(ts[i].failures, 0);
        if (ts[i].last_start > last_start)
            last_start = ts[i].last_start;
    }
    assert_true(pgx_wait(&theirs.count, 1, 5000) >= 1);
    /* Quiet: every NOTIFY sent for the burst has arrived. */
    do {
        before = __atomic_load_n(&theirs.count, __ATOMIC_SEQ_CST);
        usleep(300000);
    } while (__atomic_load_n(&theirs.count, __ATOMIC_SEQ_CST) != before);
    assert_true(__atomic_load_n(&theirs.count, __ATOMIC_SEQ_CST) <= NB_THREADS * NB_EVENTS);
    assert_true(__atomic_load_n(&theirs.last_ms, __ATOMIC_SEQ_CST) >= last_start);
    assert_int_equal(__atomic_load_n(&own.count, __ATOMIC_SEQ_CST), NB_THREADS * NB_EVENTS);

    /* A clean shutdown: claims given back, then the store closed at once. */
    assert_int_equal(store_open(fx->url, &leaving), 0);
    assert_int_equal(store_claim(leaving, clock_now_ms(), MIN_MS, 10, 0, NULL, 0, &cs, &n), 0);
    assert_int_equal(n, 10);
    for (i = 0; i < n; i++) {
        ids[i] = cs[i].dlv.id;
        tokens[i] = cs[i].dlv.lease_token;
    }
    before = __atomic_load_n(&theirs.count, __ATOMIC_SEQ_CST);
    assert_int_equal(store_release(leaving, ids, tokens, n), 0);
    store_close(leaving);
    assert_true(pgx_wait(&theirs.count, before + 1, 5000) > before);
    claim_list_free(cs, n);
    store_on_due(other, NULL, NULL);
    store_on_due(fx->st, NULL, NULL);
    store_close(other);
    endpoint_cleanup(&eps[0]);
    endpoint_cleanup(&eps[1]);
}

/*
 * The server ends every connection (a restart, an operator): the pool opens
 * new ones on their next use, so calls go on succeeding, and the listener
 * comes back and wakes the dispatcher once for what it may have missed.
 */
static void
test_pg_reconnect(void **state)
{
    struct fx *fx = *state;
    struct endpoint ep, got;
    struct event ev;
    int woken = 0;

    if (fx->sqlite)
        skip();
    endpoint_make(fx->st, "acct_a", "", &ep);
    store_on_due(fx->st, pgx_count, &woken);
    assert_int_equal(pg_exec(fx->url, "SELECT pg_terminate_backend(pid, 5000) "
                                      "FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND pid <> pg_backend_pid()"),
                     0);
    assert_true(pgx_wait(&woken, 1, 5000) >= 1);
    assert_int_equal(store_ping(fx->st), 0);
    woken = 0;
    assert_int_equal(publish(fx->st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);
    assert_int_equal(woken, 1);
    assert_int_equal(store_endpoint_get(fx->st, "acct_a", ep.id, &got), 0);
    endpoint_cleanup(&got);
    store_on_due(fx->st, NULL, NULL);
    endpoint_cleanup(&ep);
}

/*
 * Writes refused by a read-only server (a standby after a failover, SQLSTATE
 * 25006) fail with ERR_UNAVAILABLE and drop the connection, so a later call
 * connects again and finds the primary (here: the database writable again).
 */
static void
test_pg_read_only(void **state)
{
    struct fx *fx = *state;
    struct account a = { .name = "C" }, got;
    int i, err;

    if (fx->sqlite)
        skip();
    assert_int_equal(pg_exec(fx->url, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET "
                                      "default_transaction_read_only = on', current_database()); "
                                      "PERFORM pg_terminate_backend(pid, 5000) "
                                      "FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND pid <> pg_backend_pid(); END $$"),
                     0);
    snprintf(a.id, sizeof(a.id), "acct_c");
    assert_int_equal(store_account_insert(fx->st, &a), ERR_UNAVAILABLE);
    assert_int_equal(store_account_get(fx->st, "acct_a", &got), 0);
    account_cleanup(&got);
    assert_int_equal(pg_exec(fx->url, "BEGIN READ WRITE; DO $$ BEGIN EXECUTE format('ALTER "
                                      "DATABASE %I RESET default_transaction_read_only', "
                                      "current_database()); END $$; COMMIT"),
                     0);
    /* Connections opened while it was read-only go too, each at its first write. */
    for (i = 0; i < 20 && (err = store_account_insert(fx->st, &a)) != 0; i++) {
        assert_int_equal(err, ERR_UNAVAILABLE);
        usleep(20000);
    }
    assert_int_equal(err, 0);
    assert_int_equal(store_account_get(fx->st, "acct_c", &got), 0);
    account_cleanup(&got);
}

/* A TCP relay to the test server that can cut every connection and refuse new ones. */
struct relay {
    int lfd;               /* listening on 127.0.0.1:port */
    int port;
    char host[128];        /* the server */
    char sport[16];
    int wake[2];
    int pairs[64][2];      /* client, server */
    int npairs;
    int cut;               /* refuse and drop: the database is unreachable */
    int stop;
    pthread_mutex_t lock;
    pthread_t thread;
};

static void
relay_drop(struct relay *r, int i)
{
    close(r->pairs[i][0]);
    close(r->pairs[i][1]);
    r->pairs[i][0] = r->pairs[--r->npairs][0];
    r->pairs[i][1] = r->pairs[r->npairs][1];
}

static int
relay_dial(const struct relay *r)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int fd = -1;

    if (getaddrinfo(r->host, r->sport, &hints, &ai) != 0)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void
relay_accept(struct relay *r)
{
    int c = accept(r->lfd, NULL, NULL), s;

    if (c < 0)
        return;
    s = r->cut || r->npairs == 64 ? -1 : relay_dial(r);
    if (s < 0) {
        close(c);
        return;
    }
    r->pairs[r->npairs][0] = c;
    r->pairs[r->npairs][1] = s;
    r->npairs++;
}

/* Moves what is readable on side `from` of pair i to the other side; 0 when it ended. */
static int
relay_move(struct relay *r, int i, int from)
{
    char buf[16384];
    ssize_t n = read(r->pairs[i][from], buf, sizeof(buf)), off = 0;

    while (n > 0 && off < n) {
        ssize_t w = write(r->pairs[i][!from], buf + off, (size_t)(n - off));
        if (w <= 0)
            return 0;
        off += w;
    }
    return n > 0;
}

static void *
relay_main(void *arg)
{
    struct relay *r = arg;

    for (;;) {
        struct pollfd pfds[2 + 128];
        int i, n = 2, ended;

        pthread_mutex_lock(&r->lock);
        if (r->stop) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        while (r->cut && r->npairs > 0)
            relay_drop(r, 0);
        pfds[0] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
        pfds[1] = (struct pollfd){ .fd = r->wake[0], .events = POLLIN };
        for (i = 0; i < r->npairs; i++) {
            pfds[n++] = (struct pollfd){ .fd = r->pairs[i][0], .events = POLLIN };
            pfds[n++] = (struct pollfd){ .fd = r->pairs[i][1], .events = POLLIN };
        }
        pthread_mutex_unlock(&r->lock);
        if (poll(pfds, (nfds_t)n, -1) < 0)
            continue;
        pthread_mutex_lock(&r->lock);
        if (pfds[1].revents & POLLIN) {
            char c;
            while (read(r->wake[0], &c, 1) == 1)
                ;
        }
        if (pfds[0].revents & POLLIN)
            relay_accept(r);
        /* Pairs are visited from the end, so dropping one never skips another. */
        for (i = (n - 2) / 2 - 1; i >= 0; i--) {
            ended = 0;
            if (pfds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
                ended |= !relay_move(r, i, 0);
            if (!ended && pfds[3 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
                ended |= !relay_move(r, i, 1);
            if (ended && i < r->npairs)
                relay_drop(r, i);
        }
        pthread_mutex_unlock(&r->lock);
    }
    while (r->npairs > 0)
        relay_drop(r, 0);
    return NULL;
}

/* Starts a relay to the server of url; fills relay_url with url through it. */
static void
relay_start(struct relay *r, const char *url, char *relay_url, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL), *o;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    const char *user = "postgres", *db = "postgres";

    assert_non_null(opts);
    memset(r, 0, sizeof(*r));
    snprintf(r->host, sizeof(r->host), "127.0.0.1");
    snprintf(r->sport, sizeof(r->sport), "5432");
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0)
            snprintf(r->host, sizeof(r->host), "%s", o->val);
        else if (strcmp(o->keyword, "port") == 0)
            snprintf(r->sport, sizeof(r->sport), "%s", o->val);
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->lfd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(r->lfd, 64), 0);
    assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sa, &salen), 0);
    r->port = ntohs(sa.sin_port);
    snprintf(relay_url, size, "postgres://%s@127.0.0.1:%d/%s?connect_timeout=2", user, r->port,
             db);
    PQconninfoFree(opts);
    assert_int_equal(pipe2(r->wake, O_NONBLOCK), 0);
    pthread_mutex_init(&r->lock, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static void
relay_set(struct relay *r, int cut, int stop)
{
    pthread_mutex_lock(&r->lock);
    r->cut = cut;
    r->stop = stop;
    pthread_mutex_unlock(&r->lock);
    assert_int_equal(write(r->wake[1], "x", 1), 1);
}

static void
relay_stop(struct relay *r)
{
    relay_set(r, 1, 1);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->lock);
}

/*
 * The database becomes unreachable: calls fail with ERR_UNAVAILABLE, fast
 * (the pool's backoff, not a connect timeout per call), a publish stores
 * nothing and says so; once it is back, calls succeed again by themselves.
 */
static void
test_pg_outage(void **state)
{
    struct fx *fx = *state;
    struct relay r;
    struct store *st = NULL;
    struct endpoint ep;
    struct event ev, *evs = NULL;
    char url[600];
    size_t n = 0;
    int64_t t0;
    int i, err;

    if (fx->sqlite)
        skip();
    relay_start(&r, fx->url, url, sizeof(url));
    assert_int_equal(store_open(url, &st), 0);
    endpoint_make(st, "acct_a", "", &ep);
    assert_int_equal(publish(st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);

    relay_set(&r, 1, 0);
    usleep(50000);
    assert_int_equal(publish(st, "acct_a", "user.message", NULL, &ep, 1, &ev), ERR_UNAVAILABLE);
    event_cleanup(&ev);
    t0 = clock_mono_ms();
    for (i = 0; i < 50; i++)
        assert_int_equal(store_ping(st), ERR_UNAVAILABLE);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_int_equal(store_event_list(fx->st, "acct_a", NULL, NULL, 10, &evs, &n), 0);
    assert_int_equal(n, 1);
    event_list_free(evs, n);

    relay_set(&r, 0, 0);
    t0 = clock_mono_ms();
    while ((err = store_ping(st)) != 0 && clock_mono_ms() - t0 < 5000)
        usleep(20000);
    assert_int_equal(err, 0);
    assert_int_equal(publish(st, "acct_a", "user.message", NULL, &ep, 1, &ev), 0);
    event_cleanup(&ev);
    store_close(st);
    relay_stop(&r);
    endpoint_cleanup(&ep);
}

/* --- the credential cache (SQLite: sq_cred.c) --- */

/* Inserts key id of acct_a whose hash is hex of n. */
static void
cred_key_make(struct store *st, const char *id, int n)
{
    struct api_key k;

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.account_id, sizeof(k.account_id), "acct_a");
    snprintf(k.hash, sizeof(k.hash), "%064d", n);
    snprintf(k.scopes, sizeof(k.scopes), "events:write");
    k.name = "cached";
    assert_int_equal(store_key_insert(st, &k), 0);
}

/* Finds the key whose hash is hex of n: its id, or ERR_NOTFOUND. */
static int
cred_key_is(struct store *st, int n, const char *id, struct api_key *out)
{
    char hash[65];
    int err;

    snprintf(hash, sizeof(hash), "%064d", n);
    err = store_key_find(st, hash, out);
    if (err == 0) {
        assert_string_equal(out->id, id);
        assert_string_equal(out->name, "cached");
    }
    return err;
}

/* The token whose hash is hex of n: found on st, with its revoked_at and used_at. */
static void
cred_token_is(struct store *st, int n, int revoked, int used)
{
    struct token t;
    char hash[65];

    snprintf(hash, sizeof(hash), "%064d", n);
    assert_int_equal(store_token_find(st, hash, &t), 0);
    assert_string_equal(t.hash, hash);
    assert_int_equal(t.revoked_at != 0, revoked);
    assert_int_equal(t.used_at != 0, used);
}

/*
 * A key or token changed through one handle (rotated without grace, deleted,
 * revoked, spent) is seen as changed at the very next lookup through the
 * other, and through the same handle, however often both looked it up before.
 */
static void
test_cred_follows_other_process(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    struct api_key k;
    struct token t;
    int64_t now = clock_now_ms();
    char hash[65];
    int i;

    assert_int_equal(store_open(fx->url, &other), 0);
    cred_key_make(fx->st, "key_c1", 41);
    for (i = 0; i < 3; i++) {
        assert_int_equal(cred_key_is(other, 41, "key_c1", &k), 0);
        assert_string_equal(k.scopes, "events:write");
        api_key_cleanup(&k);
        assert_int_equal(cred_key_is(fx->st, 41, "key_c1", &k), 0);
        api_key_cleanup(&k);
    }

    /* Rotated with no grace: the old hash finds the row with the new hash, its grace over. */
    snprintf(hash, sizeof(hash), "%064d", 42);
    assert_int_equal(store_key_rotate(fx->st, "acct_a", "key_c1", hash, now), 0);
    assert_int_equal(cred_key_is(other, 41, "key_c1", &k), 0);
    assert_string_equal(k.hash, hash);
    assert_true(k.prev_until <= now);
    api_key_cleanup(&k);
    assert_int_equal(cred_key_is(other, 42, "key_c1", &k), 0);
    api_key_cleanup(&k);

    /* Deleted here: gone there, by either hash, and here. */
    assert_int_equal(store_key_delete(fx->st, "acct_a", "key_c1"), 0);
    assert_int_equal(cred_key_is(other, 42, "key_c1", &k), ERR_NOTFOUND);
    assert_int_equal(cred_key_is(other, 41, "key_c1", &k), ERR_NOTFOUND);
    assert_int_equal(cred_key_is(fx->st, 42, "key_c1", &k), ERR_NOTFOUND);

    /* A token revoked there is revoked here; one spent here is spent there. */
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "tok_c1");
    t.kind = TOKEN_ACCESS;
    snprintf(t.hash, sizeof(t.hash), "%064d", 43);
    snprintf(t.account_id, sizeof(t.account_id), "acct_a");
    snprintf(t.family, sizeof(t.family), "fam_c1");
    snprintf(t.scopes, sizeof(t.scopes), "events:write");
    t.created_at = now;
    t.expires_at = now + 3600000;
    assert_int_equal(store_token_insert(fx->st, &t), 0);
    snprintf(t.id, sizeof(t.id), "tok_c2");
    t.kind = TOKEN_REFRESH;
    snprintf(t.hash, sizeof(t.hash), "%064d", 44);
    assert_int_equal(store_token_insert(fx->st, &t), 0);
    for (i = 0; i < 3; i++) {
        cred_token_is(fx->st, 43, 0, 0);
        cred_token_is(other, 43, 0, 0);
        cred_token_is(fx->st, 44, 0, 0);
        cred_token_is(other, 44, 0, 0);
    }
    assert_int_equal(store_token_revoke(other, TOKEN_BY_ID, "tok_c1", now), 0);
    cred_token_is(fx->st, 43, 1, 0);
    cred_token_is(other, 43, 1, 0);
    assert_int_equal(store_token_use(fx->st, "tok_c2", now), 0);
    cred_token_is(other, 44, 0, 1);
    store_close(other);
}

/*
 * The counters of fx's PATH-cred, v[0] what writers announced (begun) and
 * v[1] what they finished (done): read, or with set written (as a writer that
 * died between its two steps leaves them).
 */
static void
cred_counts(struct fx *fx, unsigned long long v[2], int set)
{
    char name[sizeof(fx->path) + 8];
    ssize_t n;
    int fd;

    snprintf(name, sizeof(name), "%s-cred", fx->path);
    fd = open(name, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    n = set ? pwrite(fd, v, 2 * sizeof(v[0]), 0) : pread(fd, v, 2 * sizeof(v[0]), 0);
    assert_int_equal(n, (ssize_t)(2 * sizeof(v[0])));
    close(fd);
}

/* Runs sql on fx's file behind the store's back: no process hears of it. */
static void
cred_raw(struct fx *fx, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/*
 * The shared generation: credential changes bump it, a key's last_used_at
 * and other tables' writes do not (the cache keeps serving, as a change made
 * behind the store's back shows); a writer that died after announcing a
 * change and before finishing it leaves nothing served from memory until the
 * next write transaction of any process repairs the count.
 */
static void
test_cred_generation(void **state)
{
    struct fx *fx = *state;
    struct store *other = NULL;
    unsigned long long c0[2], c[2];
    struct api_key k;
    struct endpoint ep;
    int64_t now = clock_now_ms();
    char hash[65];

    if (!fx->sqlite)
        skip(); /* PostgreSQL reads every credential from the store */
    assert_int_equal(store_open(fx->url, &other), 0);
    cred_key_make(fx->st, "key_g1", 51);
    cred_counts(fx, c0, 0);
    assert_true(c0[0] > 0);
    assert_true(c0[1] == c0[0]);

    /* A touch and an endpoint are no credential change; the touch is in the cached row. */
    assert_int_equal(cred_key_is(fx->st, 51, "key_g1", &k), 0);
    api_key_cleanup(&k);
    assert_int_equal(store_key_touch(fx->st, "key_g1", now), 0);
    endpoint_make(fx->st, "acct_a", "", &ep);
    endpoint_cleanup(&ep);
    cred_counts(fx, c, 0);
    assert_true(c[0] == c0[0] && c[1] == c0[1]);
    assert_int_equal(cred_key_is(fx->st, 51, "key_g1", &k), 0);
    assert_int_equal(k.last_used_at, now);
    api_key_cleanup(&k);

    /* Kept in memory: a change no process announced is not seen. */
    assert_int_equal(cred_key_is(other, 51, "key_g1", &k), 0);
    api_key_cleanup(&k);
    cred_raw(fx, "UPDATE api_keys SET scopes = 'stats:read' WHERE id = 'key_g1'");
    assert_int_equal(cred_key_is(other, 51, "key_g1", &k), 0);
    assert_string_equal(k.scopes, "events:write");
    api_key_cleanup(&k);

    /* A rotation is one: announced and finished. */
    snprintf(hash, sizeof(hash), "%064d", 52);
    assert_int_equal(store_key_rotate(fx->st, "acct_a", "key_g1", hash, now), 0);
    cred_counts(fx, c, 0);
    assert_true(c[0] == c0[0] + 1 && c[1] == c0[0] + 1);
    assert_int_equal(cred_key_is(other, 52, "key_g1", &k), 0);
    assert_string_equal(k.scopes, "stats:read");
    api_key_cleanup(&k);

    /* A writer died between announcing and finishing; its change is in the file. */
    c[0]++;
    cred_counts(fx, c, 1);
    cred_raw(fx, "DELETE FROM api_keys WHERE id = 'key_g1'");
    assert_int_equal(cred_key_is(other, 52, "key_g1", &k), ERR_NOTFOUND);
    assert_int_equal(cred_key_is(fx->st, 52, "key_g1", &k), ERR_NOTFOUND);
    /* Nothing is kept meanwhile: a row found now is read again next time. */
    cred_key_make(fx->st, "key_g2", 53);
    cred_counts(fx, c, 0);
    c[0]++;
    cred_counts(fx, c, 1);
    assert_int_equal(cred_key_is(other, 53, "key_g2", &k), 0);
    api_key_cleanup(&k);
    cred_raw(fx, "UPDATE api_keys SET scopes = 'stats:read' WHERE id = 'key_g2'");
    assert_int_equal(cred_key_is(other, 53, "key_g2", &k), 0);
    assert_string_equal(k.scopes, "stats:read");
    api_key_cleanup(&k);
    /* The next write transaction of either process repairs the count. */
    endpoint_make(other, "acct_a", "", &ep);
    endpoint_cleanup(&ep);
    cred_counts(fx, c, 0);
    assert_true(c[1] == c[0]);
    store_close(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_urls),
        cmocka_unit_test(test_open_sqlite_paths),
        cmocka_unit_test_setup_teardown(test_open_postgres_urls, setup, teardown),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test_setup_teardown(test_accounts_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_async_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_fairness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_skip_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_secrets_and_diverts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_secrets_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_cap_across_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_cap_counted_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_resume_and_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_stopped_by_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_finished_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_stopped_by_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_auto_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_finished_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_takes_what_exists_at_the_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_changed_between_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_finished_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_endpoint_ends_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_random_histories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_head_every_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_delivering_every_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_due_unregister_waits, setup, teardown),
        cmocka_unit_test(test_memory_store),
        cmocka_unit_test_setup_teardown(test_group_commit_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_stay_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_leased, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_enable_store_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_enable_paced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_group_delivered_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_answer_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_group_secrets_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_group_secrets_many_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_failures_and_reruns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_follows_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_follows_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_follows_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_lease_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_cap_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cred_follows_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cred_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smaller_store_upgrade, setup, teardown),
        cmocka_unit_test(test_latency_blob),
        cmocka_unit_test_setup_teardown(test_latency_in_rollups_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_rows_unchecked_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases_not_due_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_list_every_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_list_every_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_concurrent_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_concurrent_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_open_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_notify_other_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_notify_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_outage, setup, teardown),
    };

    return torture_run_group_tests("store", tests, NULL, NULL);
}
