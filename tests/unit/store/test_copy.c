/*
 * store_schema() and store_copy(): the refusals that need no PostgreSQL,
 * and, when FLUXHOOK_TEST_PG_URL names a server (tests/run.py starts one),
 * real copies into new databases made there: every field of a delivery
 * under a lease comes across, a second copy is refused, and a copy that
 * fails half-way leaves the target as empty as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"

struct fx {
    char dir[64];
    char src[160]; /* sqlite:PATH */
    char path[128];
    char db[64];   /* the target database's name, "" when none */
    char dst[512]; /* its URL */
};

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/fluxhook-copy-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
    snprintf(fx->src, sizeof(fx->src), "sqlite:%s", fx->path);
    *state = fx;
    return 0;
}

/* Runs sql on the server of FLUXHOOK_TEST_PG_URL (its own database) or on db. */
static void
pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* The first value of a query on url, as a number. */
static long long
pg_value(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r;
    long long v;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[256];

    if (fx->db[0] != '\0') {
        char sql[128];

        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->db);
        pg_exec(getenv("FLUXHOOK_TEST_PG_URL"), sql);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* A new database on the test server for fx (or a skip without one). */
static void
new_target(struct fx *fx)
{
    const char *base = getenv("FLUXHOOK_TEST_PG_URL");
    char sql[128];
    const char *slash;

    if (base == NULL || base[0] == '\0') {
        print_message("FLUXHOOK_TEST_PG_URL is not set: no PostgreSQL to copy into "
                      "(tests/run.py starts one)\n");
        skip();
    }
    snprintf(fx->db, sizeof(fx->db), "fh_copy_%d_%lld", (int)getpid(),
             (long long)clock_now_ms() % 1000000000);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->db);
    pg_exec(base, sql);
    /* postgres://user@host:port/db?query: the database replaced. */
    slash = strchr(strstr(base, "://") + 3, '/');
    assert_non_null(slash);
    snprintf(fx->dst, sizeof(fx->dst), "%.*s/%s", (int)(slash - base), base, fx->db);
}

/* Runs sql on the SQLite file (a writer besides the store, as a test may). */
static void
sq_exec(const struct fx *fx, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* A source store with one account, endpoint, keyed event and delivery. */
static void
fill(struct fx *fx, struct event *ev)
{
    struct store *st = NULL;
    struct account a = {.name = "A"};
    struct endpoint ep = {0};
    static const char body[] = "{\"id\":\"evt_1\",\"x\":\"\\u00e9\\\\\\n\"}";

    assert_int_equal(store_open(fx->src, &st), 0);
    snprintf(a.id, sizeof(a.id), "acct_a");
    a.created_at = 1000;
    assert_int_equal(store_account_insert(st, &a), 0);
    snprintf(ep.id, sizeof(ep.id), "ep_1");
    snprintf(ep.account_id, sizeof(ep.account_id), "acct_a");
    ep.url = "https://example.com/hook";
    ep.secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    assert_int_equal(store_endpoint_insert(st, &ep), 0);
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->account_id, sizeof(ev->account_id), "acct_a");
    snprintf(ev->type, sizeof(ev->type), "user.message");
    snprintf(ev->idempotency_key, sizeof(ev->idempotency_key), "order-1");
    ev->body = strdup(body);
    ev->body_len = strlen(body);
    assert_int_equal(store_event_publish(st, ev, &ep, 1), 0);
    store_close(st);
}

static void
test_schema_reports_what_open_applied(void **state)
{
    struct fx *fx = *state;
    struct store *st = NULL;
    int version = -1, applied = -1, first;

    assert_int_equal(store_open(fx->src, &st), 0);
    store_schema(st, &version, &applied);
    assert_true(version > 0);
    /* Every migration ran: one per version, which may have gaps. */
    assert_true(applied > 0 && applied <= version);
    store_close(st);
    first = version;
    assert_int_equal(store_open(fx->src, &st), 0);
    store_schema(st, &version, &applied);
    assert_int_equal(version, first);
    assert_int_equal(applied, 0);
    store_close(st);
}

static void
test_refuses_other_schemes(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;

    (void)fx;
    assert_int_equal(store_copy("postgres://h/a", "postgres://h/b", &r), ERR_INVAL);
    assert_non_null(strstr(r.why, "sqlite:PATH"));
    assert_int_equal(store_copy("sqlite::memory:", "postgres://h/b", &r), ERR_INVAL);
    assert_int_equal(store_copy("sqlite:x.db", "sqlite:y.db", &r), ERR_INVAL);
    assert_non_null(strstr(r.why, "postgres://"));
    assert_int_equal(store_copy(NULL, "postgres://h/b", &r), ERR_INVAL);
}

static void
test_missing_source_is_unavailable(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;

    /* The target is never reached: the source is checked first. */
    assert_int_equal(store_copy(fx->src, "postgres://127.0.0.1:1/x", &r), ERR_UNAVAILABLE);
    assert_non_null(strstr(r.why, "no such file"));
    assert_int_equal(access(fx->path, F_OK), -1);
}

static void
test_source_of_another_version_is_refused(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;
    struct event ev;

    fill(fx, &ev);
    event_cleanup(&ev);
    sq_exec(fx, "DELETE FROM schema_version WHERE version > 1");
    assert_int_equal(store_copy(fx->src, "postgres://127.0.0.1:1/x", &r), ERR_STORE);
    assert_non_null(strstr(r.why, "schema version 1"));
}

static void
test_source_column_without_a_place_is_refused(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;
    struct event ev;

    fill(fx, &ev);
    event_cleanup(&ev);
    sq_exec(fx, "ALTER TABLE deliveries ADD COLUMN surprise INTEGER");
    assert_int_equal(store_copy(fx->src, "postgres://127.0.0.1:1/x", &r), ERR_STORE);
    assert_non_null(strstr(r.why, "deliveries has a column surprise"));
}

static void
test_copies_a_leased_delivery_whole(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;
    struct event ev;
    char sql[512];
    size_t i;

    new_target(fx);
    fill(fx, &ev);
    /* A delivery under way: its lease, token and last result come across as they are. */
    sq_exec(fx, "UPDATE deliveries SET status = 'delivering', attempts_made = 2, "
                "round_start = 1, next_attempt_at = 5, lease_until = 9000000000000, "
                "lease_token = 7, last_status_code = 503, last_error = 'busy'");
    sq_exec(fx, "UPDATE delivery_counts SET n = CASE status WHEN 'delivering' THEN 1 ELSE 0 END");
    sq_exec(fx, "INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, "
                "error, duration_ms, response_body, outcome) SELECT id, 1, account_id, "
                "endpoint_id, 42, 503, NULL, 12, X'00FF0A', 'pending' FROM deliveries");
    sq_exec(fx, "INSERT INTO attempts (delivery_id, n, account_id, endpoint_id, at, status_code, "
                "error, error_class, duration_ms, response_body, outcome) SELECT id, 2, "
                "account_id, endpoint_id, 43, 0, 'connection refused', 'connect', 1, NULL, "
                "'pending' FROM deliveries");
    assert_int_equal(store_copy(fx->src, fx->dst, &r), 0);
    assert_string_equal(r.why, "");
    assert_true(r.ntables >= 8);
    for (i = 0; i < r.ntables; i++) {
        assert_int_equal(r.tables[i].source, r.tables[i].target);
        if (strcmp(r.tables[i].name, "deliveries") == 0 ||
            strcmp(r.tables[i].name, "idempotency_keys") == 0)
            assert_int_equal(r.tables[i].target, 1);
        if (strcmp(r.tables[i].name, "attempts") == 0)
            assert_int_equal(r.tables[i].target, 2);
    }
    assert_int_equal(r.target_by_status[DELIVERY_DELIVERING], 1);
    assert_true(r.schema_version > 0);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM deliveries WHERE "
                                       "status = 'delivering' AND attempts_made = 2 AND "
                                       "round_start = 1 AND next_attempt_at = 5 AND "
                                       "lease_until = 9000000000000 AND lease_token = 7 AND "
                                       "last_status_code = 503 AND last_error = 'busy' AND "
                                       "due_at = 9000000000000"),
                     1);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM attempts WHERE "
                                       "response_body = '\\x00ff0a'::bytea AND error IS NULL "
                                       "AND error_class IS NULL"),
                     1);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM attempts WHERE n = 2 AND "
                                       "error = 'connection refused' AND error_class = 'connect'"),
                     1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM events e JOIN idempotency_keys k ON k.event_id = e.id "
             "WHERE k.key = 'order-1' AND e.id = '%s' AND length(e.body) = %zu",
             ev.id, ev.body_len);
    assert_int_equal(pg_value(fx->dst, sql), 1);
    assert_int_equal(pg_value(fx->dst, "SELECT sum(delivering) FROM delivery_counts"), 1);

    /* Once there is data, a second copy is refused and says what is there. */
    memset(&r, 0xff, sizeof(r));
    assert_int_equal(store_copy(fx->src, fx->dst, &r), ERR_CONFLICT);
    for (i = 0; i < r.ntables; i++) {
        if (strcmp(r.tables[i].name, "accounts") == 0)
            assert_int_equal(r.tables[i].target, 1);
    }
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM deliveries"), 1);
    event_cleanup(&ev);
}

static void
test_a_failed_copy_writes_nothing(void **state)
{
    struct fx *fx = *state;
    struct store_copy_report r;
    struct event ev;

    new_target(fx);
    fill(fx, &ev);
    event_cleanup(&ev);
    /* attempts_made is an integer on PostgreSQL: this one cannot go, after earlier tables did. */
    sq_exec(fx, "UPDATE deliveries SET attempts_made = 3000000000");
    assert_int_equal(store_copy(fx->src, fx->dst, &r), ERR_STORE);
    assert_non_null(strstr(r.why, "attempts_made"));
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM accounts"), 0);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM events"), 0);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM idempotency_keys"), 0);
    /* Migrated, though: a copy of a sound source may follow. */
    sq_exec(fx, "UPDATE deliveries SET attempts_made = 1");
    assert_int_equal(store_copy(fx->src, fx->dst, &r), 0);
    assert_int_equal(pg_value(fx->dst, "SELECT count(*) FROM deliveries"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_reports_what_open_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_other_schemes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_source_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_of_another_version_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_column_without_a_place_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_copies_a_leased_delivery_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_copy_writes_nothing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
