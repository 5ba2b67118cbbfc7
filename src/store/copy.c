/*
 * store_copy(): a whole SQLite store into an empty PostgreSQL database.
 *
 * The source is read with its own read-only sqlite3 connection inside one
 * read transaction: a WAL snapshot, consistent even while a server keeps
 * writing. The target is migrated through store_open(), then written over
 * its own libpq connection in one transaction: each table streams from a
 * sqlite3 step loop into COPY ... FROM STDIN (FORMAT binary), flushed every
 * COPY_FLUSH bytes, so memory stays bounded whatever the size of the store.
 * Values are encoded for the target column's type as read from the catalog
 * (bigint or integer, text or bytea, ...), so the two schemas need only agree
 * on table and column names. The counts of both sides are compared inside
 * the transaction, before COMMIT: a copy that does not add up leaves nothing.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define COPY_FLUSH (1024 * 1024)        /* bytes buffered before they go to the server */
#define COPY_MAX_ROW (64 * 1024 * 1024) /* far above any row fluxhook writes */
#define COPY_MAX_COLS 20
#define COPY_BUSY_MS 10000      /* waiting for the source's writer to let go */
#define COPY_LOCK_TIMEOUT "30s" /* waiting for the target's tables */

/* PostgreSQL type OIDs (pg_type.dat) the encoder knows. */
enum pg_oid {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_JSON = 114,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_JSONB = 3802,
    OID_TEXT_ARRAY = 1009,
};

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL

/*
 * One table to copy: how to read it from SQLite and which target columns
 * the selected values go to, in order. Tables are listed parents first, so
 * every foreign key finds its row.
 */
struct copy_table {
    const char *name;                /* in the report, and the target table */
    const char *select;              /* its rows on SQLite */
    const char *count;               /* their number on SQLite */
    const char *cols[COPY_MAX_COLS]; /* the target's columns, NULL-terminated */
    const char *folded[4];           /* source columns read into others or left to the target */
};

static const struct copy_table copy_tables[] = {
    {"accounts",
     "SELECT id, name, created_at FROM accounts",
     "SELECT count(*) FROM accounts",
     {"id", "name", "created_at"},
     {NULL}},
    {"api_keys",
     "SELECT id, account_id, name, admin, hash, created_at, kind, scopes, expires_at, "
     "last_used_at, prev_hash, prev_until FROM api_keys",
     "SELECT count(*) FROM api_keys",
     {"id", "account_id", "name", "admin", "hash", "created_at", "kind", "scopes", "expires_at",
      "last_used_at", "prev_hash", "prev_until"},
     {NULL}},
    {"tokens",
     "SELECT id, kind, hash, account_id, client_id, family, scopes, created_at, expires_at, "
     "used_at, revoked_at FROM tokens",
     "SELECT count(*) FROM tokens",
     {"id", "kind", "hash", "account_id", "client_id", "family", "scopes", "created_at",
      "expires_at", "used_at", "revoked_at"},
     {NULL}},
    {"endpoints",
     "SELECT id, account_id, url, description, event_types, status, disabled_reason, "
     "disabled_at, secret, prev_secret, prev_secret_until, created_at, updated_at, deleted_at, "
     "kind FROM endpoints",
     "SELECT count(*) FROM endpoints",
     {"id", "account_id", "url", "description", "event_types", "status", "disabled_reason",
      "disabled_at", "secret", "prev_secret", "prev_secret_until", "created_at", "updated_at",
      "deleted_at", "kind"},
     {NULL}},
    {"endpoint_types",
     "SELECT account_id, event_type, endpoint_id FROM endpoint_types",
     "SELECT count(*) FROM endpoint_types",
     {"account_id", "event_type", "endpoint_id"},
     {NULL}},
    {"events",
     "SELECT id, account_id, type, timestamp, body, idempotency_key, created_at, deliveries "
     "FROM events",
     "SELECT count(*) FROM events",
     {"id", "account_id", "type", "timestamp", "body", "idempotency_key", "created_at",
      "deliveries"},
     {NULL}},
    /*
     * SQLite keeps the key on its event; PostgreSQL keeps each account's key
     * once, in its own table, with the latest event that used it (an expired
     * key is taken over by the next one), which is what the source's newest
     * event of each key says.
     */
    {"idempotency_keys",
     "SELECT account_id, idempotency_key, id, created_at FROM ("
     "SELECT account_id, idempotency_key, id, created_at, row_number() OVER ("
     "PARTITION BY account_id, idempotency_key ORDER BY created_at DESC, id DESC) AS rn "
     "FROM events WHERE idempotency_key IS NOT NULL) WHERE rn = 1",
     "SELECT count(*) FROM (SELECT DISTINCT account_id, idempotency_key FROM events "
     "WHERE idempotency_key IS NOT NULL)",
     {"account_id", "key", "event_id", "created_at"},
     {NULL}},
    {"deliveries",
     "SELECT id, account_id, event_id, endpoint_id, event_type, status, attempts_made, "
     "round_start, next_attempt_at, lease_until, lease_token, created_at, updated_at, "
     "last_status_code, last_error FROM deliveries",
     "SELECT count(*) FROM deliveries",
     {"id", "account_id", "event_id", "endpoint_id", "event_type", "status", "attempts_made",
      "round_start", "next_attempt_at", "lease_until", "lease_token", "created_at", "updated_at",
      "last_status_code", "last_error"},
     {NULL}},
    {"attempts",
     "SELECT delivery_id, n, account_id, endpoint_id, at, status_code, error, error_class, "
     "duration_ms, response_body, outcome, request_headers, response_headers FROM attempts",
     "SELECT count(*) FROM attempts",
     {"delivery_id", "n", "account_id", "endpoint_id", "at", "status_code", "error", "error_class",
      "duration_ms", "response_body", "outcome", "request_headers", "response_headers"},
     {NULL}},
    /* Sealed secrets are copied as they are: the copy opens with the same master key. */
    {"master_key_check",
     "SELECT id, value FROM master_key_check",
     "SELECT count(*) FROM master_key_check",
     {"id", "value"},
     {NULL}},
    {"audit_log",
     "SELECT id, account_id, actor, action, target, details, created_at FROM audit_log",
     "SELECT count(*) FROM audit_log",
     {"id", "account_id", "actor", "action", "target", "details", "created_at"},
     {NULL}},
    /*
     * A replay a crash cut short: the target goes on with it at its first
     * open. SQLite keeps its one or two statuses in two columns, PostgreSQL
     * in an array (written from a comma-separated list); the target numbers
     * its replays itself.
     */
    {"replays",
     "SELECT endpoint_id, CASE WHEN from_status = from_status2 THEN from_status "
     "ELSE from_status || ',' || from_status2 END, next_id, until_id, created_at "
     "FROM replays ORDER BY id",
     "SELECT count(*) FROM replays",
     {"endpoint_id", "statuses", "next_id", "until_id", "created_at"},
     {"id", "from_status", "from_status2"}},
};

#define COPY_NTABLES (sizeof(copy_tables) / sizeof(copy_tables[0]))

static const char SQL_SRC_VERSION[] = "SELECT coalesce(max(version), 0) FROM schema_version";
/* Generated columns (deliveries.due_at) are hidden from table_info, as they should be. */
static const char SQL_SRC_COLUMNS[] = "SELECT name FROM pragma_table_info(?)";
static const char SQL_SRC_BY_STATUS[] = "SELECT status, count(*) FROM deliveries GROUP BY status";
static const char SQL_DST_BY_STATUS[] = "SELECT status, count(*) FROM deliveries GROUP BY status";
static const char SQL_DST_COLUMNS[] =
    "SELECT a.attname, a.atttypid, a.attnotnull FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped";
/*
 * The target keeps deliveries by status in delivery_counts, one row per
 * server backend, through a trigger that COPY fires too: their sums must
 * come out as the rows copied.
 */
static const char SQL_DST_COUNTS[] =
    "SELECT coalesce(sum(pending), 0), coalesce(sum(delivering), 0), "
    "coalesce(sum(delivered), 0), coalesce(sum(failed), 0), coalesce(sum(held), 0) "
    "FROM delivery_counts";

/* A target column: its type, and whether it takes NULL. */
struct copy_col {
    unsigned oid;
    int notnull;
};

/* The state of one copy. */
struct copy {
    sqlite3 *src;
    PGconn *dst;
    struct store_copy_report *r;
    struct buf out; /* COPY data not yet sent */
};

/* Prints why into the report (the first reason stays) and logs it. */
__attribute__((format(printf, 2, 3))) static void
why(struct copy *c, const char *fmt, ...)
{
    va_list ap;

    if (c->r->why[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(c->r->why, sizeof(c->r->why), fmt, ap);
    va_end(ap);
    log_warnx("store: copy: %s", c->r->why);
}

/* libpq's message without its trailing newline. */
static const char *
pg_msg(const char *m, char *out, size_t n)
{
    size_t len;

    snprintf(out, n, "%s", m != NULL ? m : "");
    len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    return out;
}

/* --- the source --- */

/* Steps a one-value query; returns 0 and *v, or ERR_STORE after saying why. */
static int
src_int(struct copy *c, const char *sql, int64_t *v)
{
    sqlite3_stmt *stmt = NULL;
    int rc, err = 0;

    rc = sqlite3_prepare_v2(c->src, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        why(c, "cannot read the source (%s): %s", sql, sqlite3_errmsg(c->src));
        err = ERR_STORE;
        goto out;
    }
    *v = sqlite3_column_int64(stmt, 0);
out:
    sqlite3_finalize(stmt);
    return err;
}

/* 1 when name is one of the NULL-terminated names. */
static int
name_in(const char *const *names, const char *name)
{
    for (; *names != NULL; names++) {
        if (strcmp(*names, name) == 0)
            return 1;
    }
    return 0;
}

/*
 * Checks that every column of the source table named like t (when there is
 * one) goes to the target, so that a column added to the SQLite schema
 * without a place in this copy stops it instead of being left behind.
 */
static int
src_columns_check(struct copy *c, const struct copy_table *t)
{
    sqlite3_stmt *stmt = NULL;
    const char *name;
    int rc, err = 0;

    rc = sqlite3_prepare_v2(c->src, SQL_SRC_COLUMNS, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        name = (const char *)sqlite3_column_text(stmt, 0);
        if (name_in(t->cols, name) || name_in(t->folded, name))
            continue;
        why(c, "the source table %s has a column %s that this copy does not know", t->name, name);
        err = ERR_STORE;
    }
    if (err == 0 && rc != SQLITE_DONE) {
        why(c, "cannot read the source's columns of %s: %s", t->name, sqlite3_errmsg(c->src));
        err = ERR_STORE;
    }
    sqlite3_finalize(stmt);
    return err;
}

/*
 * Opens the source read-only and starts its read transaction; checks its
 * schema is the one this fluxhook writes, and counts its rows.
 */
static int
src_open(struct copy *c, const char *path)
{
    sqlite3_stmt *stmt = NULL;
    int64_t version = 0;
    size_t i;
    int rc, err = 0;

    if (access(path, F_OK) != 0) {
        why(c, "cannot open the source '%s': no such file", path);
        err = ERR_UNAVAILABLE;
        goto out;
    }
    rc = sqlite3_open_v2(path, &c->src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        why(c, "cannot open the source '%s': %s", path,
            c->src != NULL ? sqlite3_errmsg(c->src) : sqlite3_errstr(rc));
        err = ERR_UNAVAILABLE;
        goto out;
    }
    sqlite3_busy_timeout(c->src, COPY_BUSY_MS);
    /* Temporary data spills to files, so a large read keeps memory bounded. */
    rc = sqlite3_exec(c->src, "PRAGMA cache_size=-8192; BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        why(c, "cannot read the source '%s': %s", path, sqlite3_errmsg(c->src));
        err = ERR_STORE;
        goto out;
    }
    /* The snapshot starts with this first read; every later one sees the same. */
    err = src_int(c, SQL_SRC_VERSION, &version);
    if (err != 0)
        goto out;
    if (version != store_sqlite_schema_version()) {
        why(c,
            "the source '%s' has schema version %lld, this fluxhook copies version %d: "
            "run 'fluxhook db migrate --db sqlite:%s' with this version first",
            path, (long long)version, store_sqlite_schema_version(), path);
        err = ERR_STORE;
        goto out;
    }
    for (i = 0; i < COPY_NTABLES; i++) {
        c->r->tables[i].name = copy_tables[i].name;
        err = src_columns_check(c, &copy_tables[i]);
        if (err == 0)
            err = src_int(c, copy_tables[i].count, &c->r->tables[i].source);
        if (err != 0)
            goto out;
    }
    c->r->ntables = COPY_NTABLES;
    rc = sqlite3_prepare_v2(c->src, SQL_SRC_BY_STATUS, -1, &stmt, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        enum delivery_status s;

        if (delivery_status_parse((const char *)sqlite3_column_text(stmt, 0), &s) == 0)
            c->r->source_by_status[s] = sqlite3_column_int64(stmt, 1);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        why(c, "cannot read the source: %s", sqlite3_errmsg(c->src));
        err = ERR_STORE;
    }
out:
    sqlite3_finalize(stmt);
    return err;
}

/* --- the target --- */

/* Runs sql expecting status want; returns the result (clear it) or NULL after saying why. */
static PGresult *
dst_exec(struct copy *c, const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(c->dst, sql);
    char m[400];

    if (PQresultStatus(res) == want)
        return res;
    why(c, "the target refused '%.60s': %s", sql, pg_msg(PQresultErrorMessage(res), m, sizeof(m)));
    PQclear(res);
    return NULL;
}

static int
dst_run(struct copy *c, const char *sql)
{
    PGresult *res = dst_exec(c, sql, PGRES_COMMAND_OK);

    PQclear(res);
    return res != NULL ? 0 : ERR_STORE;
}

/* One int64 from a query's first row (count(*), a boolean as 0 or 1). */
static int
dst_int(struct copy *c, const char *sql, int64_t *v)
{
    PGresult *res = dst_exec(c, sql, PGRES_TUPLES_OK);
    const char *s;
    int err = 0;

    if (res == NULL)
        return ERR_STORE;
    if (PQntuples(res) != 1) {
        why(c, "the target answered '%.60s' with %d rows", sql, PQntuples(res));
        err = ERR_STORE;
        goto out;
    }
    s = PQgetvalue(res, 0, 0);
    *v = strcmp(s, "t") == 0 ? 1 : strcmp(s, "f") == 0 ? 0 : strtoll(s, NULL, 10);
out:
    PQclear(res);
    return err;
}

/* Connects to the target and opens its transaction, holding every table it copies into. */
static int
dst_begin(struct copy *c, const char *url)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"10", "fluxhook db copy", url, NULL};
    struct buf sql;
    char m[400];
    size_t i;
    int err = 0;

    buf_init(&sql, 4096);
    /* Our defaults first: whatever the URL says wins over them. */
    c->dst = PQconnectdbParams(keys, vals, 1);
    if (c->dst == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    if (PQstatus(c->dst) != CONNECTION_OK) {
        why(c, "cannot reach the target: %s", pg_msg(PQerrorMessage(c->dst), m, sizeof(m)));
        err = ERR_UNAVAILABLE;
        goto out;
    }
    err = dst_run(c, "SET client_encoding = 'UTF8'");
    if (err == 0)
        err = dst_run(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (err == 0)
        err = dst_run(c, "SET LOCAL lock_timeout = '" COPY_LOCK_TIMEOUT "'");
    if (err != 0)
        goto out;
    /*
     * No one else writes these tables until COMMIT (readers may still read):
     * a server started on the target, or a second copy, waits, then finds
     * the data and refuses.
     */
    err = buf_puts(&sql, "LOCK TABLE ");
    for (i = 0; i < COPY_NTABLES && err == 0; i++)
        err = buf_printf(&sql, "%s%s", i > 0 ? ", " : "", copy_tables[i].name);
    if (err == 0)
        err = buf_puts(&sql, " IN SHARE ROW EXCLUSIVE MODE");
    if (err == 0)
        err = dst_run(c, buf_cstr(&sql));
out:
    buf_cleanup(&sql);
    return err;
}

/* Fills the target's counts into the report: its rows per table and by status. */
static int
dst_count(struct copy *c)
{
    PGresult *res = NULL;
    char sql[128];
    size_t i;
    int j, err = 0;

    for (i = 0; i < COPY_NTABLES && err == 0; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", copy_tables[i].name);
        err = dst_int(c, sql, &c->r->tables[i].target);
    }
    if (err != 0)
        goto out;
    memset(c->r->target_by_status, 0, sizeof(c->r->target_by_status));
    res = dst_exec(c, SQL_DST_BY_STATUS, PGRES_TUPLES_OK);
    if (res == NULL) {
        err = ERR_STORE;
        goto out;
    }
    for (j = 0; j < PQntuples(res); j++) {
        enum delivery_status s;

        if (delivery_status_parse(PQgetvalue(res, j, 0), &s) == 0)
            c->r->target_by_status[s] = strtoll(PQgetvalue(res, j, 1), NULL, 10);
    }
out:
    PQclear(res);
    return err;
}

/* The types of t's target columns, in the order of t->cols. */
static int
dst_columns(struct copy *c, const struct copy_table *t, struct copy_col *cols, int *ncols)
{
    PGresult *res = NULL;
    const char *params[1] = {t->name};
    char m[400];
    int i, j, err = 0;

    *ncols = 0;
    res = PQexecParams(c->dst, SQL_DST_COLUMNS, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        why(c, "cannot read the target's columns of %s: %s", t->name,
            pg_msg(PQresultErrorMessage(res), m, sizeof(m)));
        err = ERR_STORE;
        goto out;
    }
    for (i = 0; t->cols[i] != NULL; i++) {
        for (j = 0; j < PQntuples(res); j++) {
            if (strcmp(PQgetvalue(res, j, 0), t->cols[i]) == 0)
                break;
        }
        if (j == PQntuples(res)) {
            why(c,
                "the target table %s has no column %s: its schema is not the one this "
                "fluxhook copies into",
                t->name, t->cols[i]);
            err = ERR_STORE;
            goto out;
        }
        cols[i].oid = (unsigned)strtoul(PQgetvalue(res, j, 1), NULL, 10);
        cols[i].notnull = strcmp(PQgetvalue(res, j, 2), "t") == 0;
    }
    *ncols = i;
out:
    PQclear(res);
    return err;
}

/* --- binary COPY --- */

static int
put_be(struct buf *b, uint64_t v, int bytes)
{
    unsigned char p[8];
    int i;

    for (i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return buf_append(b, p, (size_t)bytes);
}

/* A field: its length, then its bytes. */
static int
put_field(struct buf *b, const void *p, size_t n)
{
    int err;

    if (n > INT32_MAX)
        return ERR_TOOBIG;
    err = put_be(b, (uint32_t)n, 4);
    if (err == 0 && n > 0)
        err = buf_append(b, p, n);
    return err;
}

/*
 * A one-dimensional text[] without NULLs from the comma-separated list p of
 * n bytes: a header (dimensions, no NULLs, the element type, the length and
 * lower bound of the dimension), then each element as a field.
 */
static int
put_text_array(struct buf *b, const char *p, size_t n)
{
    size_t at = b->len, i, start, elems = 1;
    int err;

    for (i = 0; i < n; i++)
        elems += p[i] == ',';
    err = put_be(b, 0, 4); /* the field's length, set below */
    if (err == 0)
        err = put_be(b, 1, 4);
    if (err == 0)
        err = put_be(b, 0, 4);
    if (err == 0)
        err = put_be(b, OID_TEXT, 4);
    if (err == 0)
        err = put_be(b, (uint64_t)elems, 4);
    if (err == 0)
        err = put_be(b, 1, 4);
    for (i = start = 0; err == 0 && i <= n; i++) {
        if (i == n || p[i] == ',') {
            err = put_field(b, p + start, i - start);
            start = i + 1;
        }
    }
    if (err != 0)
        return err;
    if (b->len - at - 4 > INT32_MAX)
        return ERR_TOOBIG;
    for (i = 0; i < 4; i++)
        b->data[at + i] = (char)((b->len - at - 4) >> (8 * (3 - i)));
    return 0;
}

/*
 * Appends column i of the current source row as a field of the target's
 * type. Returns 0, ERR_STORE (after saying why) for a value the type cannot
 * hold, ERR_TOOBIG or ERR_NOMEM.
 */
static int
put_value(struct copy *c, const struct copy_table *t, sqlite3_stmt *stmt, int i,
          const struct copy_col *col)
{
    struct buf *b = &c->out;
    int type = sqlite3_column_type(stmt, i);
    const void *p;
    int64_t v;
    size_t n;
    int err;

    if (type == SQLITE_NULL)
        return put_be(b, 0xffffffffu, 4); /* -1: NULL */
    switch (col->oid) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        v = sqlite3_column_int64(stmt, i);
        if ((col->oid == OID_INT2 && (v < INT16_MIN || v > INT16_MAX)) ||
            (col->oid == OID_INT4 && (v < INT32_MIN || v > INT32_MAX))) {
            why(c, "%s.%s: %lld does not fit the target's column", t->name, t->cols[i],
                (long long)v);
            return ERR_STORE;
        }
        n = col->oid == OID_INT2 ? 2 : col->oid == OID_INT4 ? 4 : 8;
        err = put_be(b, n, 4);
        return err != 0 ? err : put_be(b, (uint64_t)v, (int)n);
    case OID_BOOL:
        err = put_be(b, 1, 4);
        return err != 0 ? err : buf_putc(b, sqlite3_column_int64(stmt, i) != 0 ? 1 : 0);
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ:
        /* fluxhook's times are ms since the Unix epoch, 0 for none. */
        v = sqlite3_column_int64(stmt, i);
        if (v == 0 && !col->notnull)
            return put_be(b, 0xffffffffu, 4);
        err = put_be(b, 8, 4);
        return err != 0 ? err : put_be(b, (uint64_t)(v * 1000 - PG_EPOCH_US), 8);
    case OID_JSONB:
        p = sqlite3_column_blob(stmt, i);
        n = (size_t)sqlite3_column_bytes(stmt, i);
        err = put_be(b, (uint32_t)(n + 1), 4);
        if (err == 0)
            err = buf_putc(b, 1); /* jsonb's binary format version */
        return err != 0 || n == 0 ? err : buf_append(b, p, n);
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR:
    case OID_JSON:
        p = sqlite3_column_text(stmt, i);
        return put_field(b, p, (size_t)sqlite3_column_bytes(stmt, i));
    case OID_BYTEA:
        p = sqlite3_column_blob(stmt, i);
        return put_field(b, p, (size_t)sqlite3_column_bytes(stmt, i));
    case OID_TEXT_ARRAY:
        p = sqlite3_column_text(stmt, i);
        return put_text_array(b, p, (size_t)sqlite3_column_bytes(stmt, i));
    default:
        why(c, "%s.%s: the target's column type (oid %u) is not one this copy writes", t->name,
            t->cols[i], col->oid);
        return ERR_STORE;
    }
}

/* Sends what is buffered. */
static int
out_flush(struct copy *c)
{
    char m[400];

    if (c->out.len == 0)
        return 0;
    if (PQputCopyData(c->dst, c->out.data, (int)c->out.len) != 1) {
        why(c, "the target stopped taking rows: %s", pg_msg(PQerrorMessage(c->dst), m, sizeof(m)));
        return ERR_STORE;
    }
    buf_reset(&c->out);
    return 0;
}

/* Ends a COPY (abort with a reason, or not) and reads its outcome. */
static int
copy_end(struct copy *c, const char *abort_reason, int64_t *rows)
{
    PGresult *res;
    char m[400];
    int err = 0;

    if (PQputCopyEnd(c->dst, abort_reason) != 1) {
        why(c, "the target did not end the copy: %s", pg_msg(PQerrorMessage(c->dst), m, sizeof(m)));
        err = ERR_STORE;
    }
    while ((res = PQgetResult(c->dst)) != NULL) {
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            *rows = strtoll(PQcmdTuples(res), NULL, 10);
        } else if (abort_reason == NULL) {
            why(c, "the target refused the rows: %s",
                pg_msg(PQresultErrorMessage(res), m, sizeof(m)));
            err = ERR_STORE;
        }
        PQclear(res);
    }
    return abort_reason != NULL ? ERR_STORE : err;
}

/* Streams table t from the source into the target. */
static int
table_copy(struct copy *c, const struct copy_table *t)
{
    static const char header[] = "PGCOPY\n\377\r\n"; /* and its NUL: 11 bytes */
    struct copy_col cols[COPY_MAX_COLS];
    sqlite3_stmt *stmt = NULL;
    PGresult *res = NULL;
    struct buf sql;
    int64_t rows = 0, sent = 0, t0 = clock_now_ms();
    int ncols = 0, i, rc, err;

    buf_init(&sql, 4096);
    err = dst_columns(c, t, cols, &ncols);
    if (err != 0)
        goto out;
    err = buf_printf(&sql, "COPY %s (", t->name);
    for (i = 0; i < ncols && err == 0; i++)
        err = buf_printf(&sql, "%s%s", i > 0 ? ", " : "", t->cols[i]);
    if (err == 0)
        err = buf_puts(&sql, ") FROM STDIN (FORMAT binary)");
    if (err != 0)
        goto out;
    rc = sqlite3_prepare_v2(c->src, t->select, -1, &stmt, NULL);
    if (rc != SQLITE_OK || sqlite3_column_count(stmt) != ncols) {
        why(c, "cannot read %s from the source: %s", t->name, sqlite3_errmsg(c->src));
        err = ERR_STORE;
        goto out;
    }
    res = dst_exec(c, buf_cstr(&sql), PGRES_COPY_IN);
    if (res == NULL) {
        err = ERR_STORE;
        goto out;
    }
    buf_reset(&c->out);
    err = buf_append(&c->out, header, sizeof(header)); /* with the NUL */
    if (err == 0)
        err = put_be(&c->out, 0, 4); /* flags */
    if (err == 0)
        err = put_be(&c->out, 0, 4); /* header extension length */
    while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        err = put_be(&c->out, (uint64_t)ncols, 2);
        for (i = 0; i < ncols && err == 0; i++)
            err = put_value(c, t, stmt, i, &cols[i]);
        sent++;
        if (err == 0 && c->out.len >= COPY_FLUSH)
            err = out_flush(c);
    }
    if (err == 0 && rc != SQLITE_DONE) {
        why(c, "cannot read %s from the source: %s", t->name, sqlite3_errmsg(c->src));
        err = ERR_STORE;
    }
    if (err == 0)
        err = put_be(&c->out, 0xffff, 2); /* the trailer: -1 */
    if (err == 0)
        err = out_flush(c);
    if (err != 0) {
        if (err == ERR_TOOBIG || err == ERR_NOMEM)
            why(c, "a row of %s is too large to copy", t->name);
        copy_end(c, "fluxhook db copy failed", &rows);
        err = ERR_STORE;
        goto out;
    }
    err = copy_end(c, NULL, &rows);
    if (err == 0 && rows != sent) {
        why(c, "%s: the target took %lld of %lld rows", t->name, (long long)rows, (long long)sent);
        err = ERR_STORE;
    }
    if (err == 0)
        log_info("store: copy: %s rows=%lld ms=%lld", t->name, (long long)rows,
                 (long long)(clock_now_ms() - t0));
out:
    PQclear(res);
    sqlite3_finalize(stmt);
    buf_cleanup(&sql);
    return err;
}

/* The target's delivery_counts against the deliveries it holds (dst_count() first). */
static int
counts_check(struct copy *c)
{
    static const enum delivery_status order[] = {
        DELIVERY_PENDING, DELIVERY_DELIVERING, DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_HELD};
    PGresult *res = dst_exec(c, SQL_DST_COUNTS, PGRES_TUPLES_OK);
    size_t i;
    int err = 0;

    if (res == NULL)
        return ERR_STORE;
    for (i = 0; i < sizeof(order) / sizeof(order[0]) && err == 0; i++) {
        int64_t kept = strtoll(PQgetvalue(res, 0, (int)i), NULL, 10);

        if (kept != c->r->target_by_status[order[i]]) {
            why(c, "the target counts %lld %s deliveries in delivery_counts but holds %lld",
                (long long)kept, delivery_status_name(order[i]),
                (long long)c->r->target_by_status[order[i]]);
            err = ERR_STORE;
        }
    }
    PQclear(res);
    return err;
}

/* After the rows: the counts of both sides, and the target's own counters. */
static int
copy_check(struct copy *c)
{
    size_t i;
    int s, err;

    err = dst_count(c);
    if (err != 0)
        return err;
    for (i = 0; i < c->r->ntables; i++) {
        if (c->r->tables[i].source != c->r->tables[i].target) {
            why(c, "%s: %lld rows in the source, %lld in the target", c->r->tables[i].name,
                (long long)c->r->tables[i].source, (long long)c->r->tables[i].target);
            return ERR_STORE;
        }
    }
    for (s = 0; s < DELIVERY__COUNT; s++) {
        if (c->r->source_by_status[s] != c->r->target_by_status[s]) {
            why(c, "%s deliveries: %lld in the source, %lld in the target", delivery_status_name(s),
                (long long)c->r->source_by_status[s], (long long)c->r->target_by_status[s]);
            return ERR_STORE;
        }
    }
    return counts_check(c);
}

/* Opens the target as a store once, so that its migrations run. */
static int
dst_migrate(struct copy *c, const char *url)
{
    struct store *st = NULL;
    int applied = 0, err;

    err = store_open(url, &st);
    if (err != 0) {
        why(c, "cannot open the target: %s",
            err == ERR_UNAVAILABLE ? "the database cannot be reached" : err_str(err));
        goto out;
    }
    store_schema(st, &c->r->schema_version, &applied);
out:
    store_close(st);
    return err;
}

int
store_copy(const char *from_url, const char *to_url, struct store_copy_report *out)
{
    struct copy c;
    int64_t t0 = clock_now_ms();
    size_t i;
    int err;

    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.r = out;
    buf_init(&c.out, COPY_MAX_ROW);
    if (from_url == NULL || strncmp(from_url, "sqlite:", 7) != 0 || from_url[7] == '\0' ||
        strcmp(from_url, "sqlite::memory:") == 0) {
        why(&c, "the source: expected sqlite:PATH");
        err = ERR_INVAL;
        goto out;
    }
    if (to_url == NULL ||
        (strncmp(to_url, "postgres://", 11) != 0 && strncmp(to_url, "postgresql://", 13) != 0)) {
        why(&c, "the target: expected postgres://...");
        err = ERR_INVAL;
        goto out;
    }
    err = src_open(&c, from_url + 7);
    if (err == 0)
        err = dst_migrate(&c, to_url);
    if (err == 0)
        err = dst_begin(&c, to_url);
    if (err == 0)
        err = dst_count(&c);
    if (err != 0)
        goto out;
    for (i = 0; i < out->ntables; i++) {
        if (out->tables[i].target != 0) {
            err = ERR_CONFLICT;
            goto out;
        }
    }
    for (i = 0; i < COPY_NTABLES && err == 0; i++)
        err = table_copy(&c, &copy_tables[i]);
    if (err == 0)
        err = copy_check(&c);
    if (err == 0)
        err = dst_run(&c, "COMMIT");
    if (err == 0)
        log_info("store: copy: committed tables=%zu ms=%lld", out->ntables,
                 (long long)(clock_now_ms() - t0));
out:
    if (c.dst != NULL)
        PQfinish(c.dst); /* without COMMIT the transaction rolls back */
    if (c.src != NULL)
        sqlite3_close(c.src); /* ends the read transaction */
    buf_cleanup(&c.out);
    out->ms = clock_now_ms() - t0;
    return err;
}
