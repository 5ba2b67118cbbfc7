/*
 * PostgreSQL backend: the connection pool and its reconnects, the statement
 * helpers, migrations, the listener thread (LISTEN, and NOTIFY after our
 * commits), and open, close and ping.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "store/pg/pg_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* Session advisory lock held while migrating ("fluxhook" in ASCII). */
#define PG_MIGRATE_LOCK "7380973040433721195"
#define PG_CLOSE_NOTIFY_MS 1000 /* longest close() waits to send the last NOTIFY */

/* --- statements and their parameters --- */

void
pg_query_init(struct pg_query *q, const char *sql)
{
    q->sql = sql;
    q->n = 0;
}

/* The index of the next parameter; past PG_MAX_PARAMS the statement is broken: a bug. */
static int
arg_next(const struct pg_query *q)
{
    if (q->n >= PG_MAX_PARAMS)
        fatalx("store: more than %d parameters for '%.60s'", PG_MAX_PARAMS, q->sql);
    return q->n;
}

static void
arg_set(struct pg_query *q, const char *v, int len, int fmt)
{
    int i = arg_next(q);

    q->values[i] = v;
    q->lengths[i] = len;
    q->formats[i] = fmt;
    q->n++;
}

void
pg_arg_text(struct pg_query *q, const char *s)
{
    arg_set(q, s, 0, 0);
}

void
pg_arg_int(struct pg_query *q, int64_t v)
{
    char *text = q->nums[arg_next(q)];

    snprintf(text, sizeof(q->nums[0]), "%lld", (long long)v);
    arg_set(q, text, 0, 0);
}

void
pg_arg_bytes(struct pg_query *q, const void *p, size_t len)
{
    /* Binary format: bytea travels as its bytes, with no escaping. */
    arg_set(q, p, (int)len, 1);
}

/* --- columns, arrays, small helpers --- */

void
pg_result_clear(PGresult *res)
{
    int row, col, rows = PQntuples(res), cols = PQnfields(res);

    for (row = 0; row < rows; row++)
        for (col = 0; col < cols; col++)
            OPENSSL_cleanse(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
    PQclear(res);
}

int
pg_col_strdup(const PGresult *res, int row, int col, char **out)
{
    *out = NULL;
    if (PQgetisnull(res, row, col))
        return 0;
    *out = strdup(PQgetvalue(res, row, col));
    return *out == NULL ? ERR_NOMEM : 0;
}

void
pg_col_copy(const PGresult *res, int row, int col, char *out, size_t size)
{
    const char *v = PQgetvalue(res, row, col);
    size_t len = strlen(v);

    if (len >= size)
        len = size - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

int64_t
pg_col_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
pg_col_bytes(const PGresult *res, int row, int col, char **out, size_t *len)
{
    const char *v;
    size_t n, i;
    char *b;

    *out = NULL;
    *len = 0;
    if (PQgetisnull(res, row, col))
        return 0;
    /* bytea_output is 'hex' (the default since 9.0): "\x" then two digits a byte. */
    v = PQgetvalue(res, row, col);
    n = strlen(v);
    if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2 != 0) {
        log_warnx("store: a bytea column came back in an unexpected format");
        return ERR_STORE;
    }
    n = (n - 2) / 2;
    b = malloc(n + 1);
    if (b == NULL)
        return ERR_NOMEM;
    for (i = 0; i < n; i++) {
        int hi = hex_val(v[2 + 2 * i]), lo = hex_val(v[3 + 2 * i]);

        if (hi < 0 || lo < 0) {
            free(b);
            log_warnx("store: a bytea column came back in an unexpected format");
            return ERR_STORE;
        }
        b[i] = (char)(hi << 4 | lo);
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

int
pg_array_begin(struct buf *b)
{
    return buf_putc(b, '{');
}

int
pg_array_add(struct buf *b, const char *s)
{
    int err = 0;

    if (b->len > 1)
        err = buf_putc(b, ',');
    if (err != 0)
        return err;
    if (s == NULL)
        return buf_puts(b, "NULL");
    err = buf_putc(b, '"');
    for (; *s != '\0' && err == 0; s++) {
        if (*s == '"' || *s == '\\')
            err = buf_putc(b, '\\');
        if (err == 0)
            err = buf_putc(b, *s);
    }
    return err != 0 ? err : buf_putc(b, '"');
}

int
pg_array_end(struct buf *b)
{
    return buf_putc(b, '}');
}

int
pg_delivery_read(const PGresult *res, int row, void *out)
{
    struct delivery *d = out;
    int status;

    memset(d, 0, sizeof(*d));
    pg_col_copy(res, row, 0, d->id, sizeof(d->id));
    pg_col_copy(res, row, 1, d->event_id, sizeof(d->event_id));
    pg_col_copy(res, row, 2, d->endpoint_id, sizeof(d->endpoint_id));
    pg_col_copy(res, row, 3, d->account_id, sizeof(d->account_id));
    pg_col_copy(res, row, 4, d->event_type, sizeof(d->event_type));
    status = store_status_parse(PQgetvalue(res, row, 5));
    d->status = status < 0 ? DELIVERY_FAILED : (enum delivery_status)status;
    d->attempts_made = (int)pg_col_int(res, row, 6);
    d->round_start = (int)pg_col_int(res, row, 7);
    d->next_attempt_at = pg_col_int(res, row, 8);
    d->lease_until = pg_col_int(res, row, 9);
    d->lease_token = pg_col_int(res, row, 10);
    d->created_at = pg_col_int(res, row, 11);
    d->updated_at = pg_col_int(res, row, 12);
    d->last_status_code = (int)pg_col_int(res, row, 13);
    return pg_col_strdup(res, row, 14, &d->last_error);
}

/* --- errors --- */

/* The first line of libpq's message about db (it never holds a password). */
static void
conn_why(PGconn *db, char *out, size_t size)
{
    const char *msg = db != NULL ? PQerrorMessage(db) : "out of memory";

    snprintf(out, size, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/*
 * 1 when SQLSTATE state says the database cannot serve us on this
 * connection now: connection exceptions (class 08), the server shutting
 * down or restarting (57P01-57P03), a read-only standby after a failover
 * (25006), too many connections (53300).
 */
static int
state_unavailable(const char *state)
{
    static const char *const codes[] = {"57P01", "57P02", "57P03", "25006", "53300"};
    size_t i;

    if (strncmp(state, "08", 2) == 0)
        return 1;
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(state, codes[i]) == 0)
            return 1;
    }
    return 0;
}

/*
 * Maps the outcome of a statement on db to 0 or ERR_*. *broken is set when
 * the connection can no longer be trusted (the caller drops it).
 */
static int
result_map(PGconn *db, const PGresult *r, const char *what, int *broken, char *why, size_t whysize)
{
    ExecStatusType rs = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    const char *state, *msg;

    *broken = 0;
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK)
        return 0;
    state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg != NULL)
        snprintf(why, whysize, "%s", msg);
    else
        conn_why(db, why, whysize);
    if (PQstatus(db) != CONNECTION_OK || (state != NULL && state_unavailable(state))) {
        *broken = 1;
        return ERR_UNAVAILABLE;
    }
    if (state == NULL) {
        log_warnx("store: %s failed: %s", what, why);
        return ERR_STORE;
    }
    if (strcmp(state, "23505") == 0)
        return ERR_CONFLICT;
    if (strcmp(state, "23503") == 0)
        return ERR_NOTFOUND;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) {
        log_warnx("store: %s refused: %s", what, why);
        return ERR_INVAL;
    }
    log_warnx("store: %s failed: %s (SQLSTATE %s)", what, why, state);
    return ERR_STORE;
}

/* Runs a statement without parameters on db (migrations). Returns 0 or ERR_*. */
static int
db_exec(PGconn *db, const char *sql, const char *what)
{
    char why[256];
    PGresult *r = PQexec(db, sql);
    int broken, err;

    err = result_map(db, r, what, &broken, why, sizeof(why));
    if (err == ERR_UNAVAILABLE)
        log_warnx("store: %s failed: %s", what, why);
    PQclear(r);
    return err;
}

/* --- connections --- */

static void
notice_log(void *arg, const char *msg)
{
    (void)arg;
    log_debug("store: postgres says: %.*s", (int)strcspn(msg, "\n"), msg);
}

/*
 * 1 when the failure to connect db is one that trying again cannot fix: the
 * server refused the user or the database (a password that fails, a user
 * or database it does not know, no pg_hba.conf entry) or wants a password
 * the URL lacks. libpq gives no SQLSTATE for a failed connection, so this
 * reads its message; one it does not recognise counts as passing.
 */
static int
conn_refused_for_good(PGconn *db)
{
    static const char *const says[] = {
        "authentication failed", "does not exist",          "no pg_hba.conf entry",
        "no password supplied",  "not permitted to log in", "permission denied",
    };
    const char *msg;
    size_t i;

    if (db == NULL)
        return 0;
    if (PQconnectionNeedsPassword(db))
        return 1;
    msg = PQerrorMessage(db);
    for (i = 0; i < sizeof(says) / sizeof(says[0]); i++) {
        if (strstr(msg, says[i]) != NULL)
            return 1;
    }
    return 0;
}

/*
 * Opens a connection with p's parameters; NULL (and why) on failure, with
 * *lasting set when trying again cannot help (conn_refused_for_good()).
 */
static PGconn *
db_connect(struct pg *p, char *why, size_t whysize, int *lasting)
{
    PGconn *db = PQconnectdbParams(p->keys, p->vals, 1);

    *lasting = 0;
    if (db == NULL || PQstatus(db) != CONNECTION_OK) {
        conn_why(db, why, whysize);
        *lasting = conn_refused_for_good(db);
        PQfinish(db);
        return NULL;
    }
    PQsetNoticeProcessor(db, notice_log, NULL);
    return db;
}

/* db_connect() for callers that try again whatever the failure. */
static PGconn *
db_open(struct pg *p, char *why, size_t whysize)
{
    int lasting;

    return db_connect(p, why, whysize, &lasting);
}

/* "host:port/db" of a live connection (after a failover: the new primary). */
static void
db_where(PGconn *db, char *out, size_t size)
{
    snprintf(out, size, "%s:%s/%s", PQhost(db), PQport(db), PQdb(db));
}

/* Marks the start of an outage (once) with its reason. Called with p->lock held. */
static void
outage_begin(struct pg *p, const char *why)
{
    if (p->lost_at != 0) {
        log_debug("store: postgres still unreachable where=%s: %s", p->where, why);
        return;
    }
    p->lost_at = clock_mono_ms();
    log_warnx("store: postgres connection lost where=%s: %s", p->where, why);
}

/*
 * Drops c's connection (broken, or suspect after another one broke). A
 * broken one makes every connection older than now suspect.
 */
static void
conn_drop(struct pg *p, struct pg_conn *c, const char *why)
{
    PQfinish(c->db);
    pthread_mutex_lock(&p->lock);
    c->db = NULL;
    if (why != NULL) {
        p->gen++;
        outage_begin(p, why);
    }
    pthread_mutex_unlock(&p->lock);
}

/*
 * 1 when c's idle connection looks usable. Nothing arrives on an idle
 * connection unless the server is going away (an error before it closes
 * the connection, or the close itself), so anything readable means dead.
 */
static int
conn_alive(struct pg_conn *c)
{
    struct pollfd pfd = {.fd = PQsocket(c->db), .events = POLLIN};

    if (PQstatus(c->db) != CONNECTION_OK || pfd.fd < 0)
        return 0;
    return poll(&pfd, 1, 0) == 0;
}

/*
 * Connects c. After a failed attempt the next one waits for the pool's
 * backoff, and only one runs at a time: meanwhile calls fail at once with
 * ERR_UNAVAILABLE instead of each waiting out a connect timeout.
 */
static int
conn_connect(struct pg *p, struct pg_conn *c)
{
    char why[256], where[256];
    PGconn *db;
    int64_t backoff;
    int probe, err = 0;

    pthread_mutex_lock(&p->lock);
    probe = p->failures > 0;
    if (probe) {
        if (p->probing || clock_mono_ms() < p->retry_at) {
            pthread_mutex_unlock(&p->lock);
            return ERR_UNAVAILABLE;
        }
        p->probing = 1;
    }
    pthread_mutex_unlock(&p->lock);

    db = db_open(p, why, sizeof(why));

    pthread_mutex_lock(&p->lock);
    if (db != NULL) {
        c->db = db;
        c->gen = p->gen;
        if (p->lost_at != 0) {
            db_where(db, where, sizeof(where));
            log_info("store: postgres reconnected after %lld ms where=%s",
                     (long long)(clock_mono_ms() - p->lost_at), where);
        }
        p->lost_at = 0;
        p->failures = 0;
    } else {
        outage_begin(p, why);
        /* Attempts made at once when the outage began count as one failure. */
        if (probe || p->failures == 0)
            p->failures++;
        backoff = PG_BACKOFF_MIN_MS;
        for (int i = 1; i < p->failures && backoff < PG_BACKOFF_MAX_MS; i++)
            backoff *= 2;
        if (backoff > PG_BACKOFF_MAX_MS)
            backoff = PG_BACKOFF_MAX_MS;
        p->retry_at = clock_mono_ms() + backoff;
        err = ERR_UNAVAILABLE;
    }
    if (probe)
        p->probing = 0;
    pthread_mutex_unlock(&p->lock);
    return err;
}

static void
conn_release(struct pg *p, struct pg_conn *c)
{
    pthread_mutex_lock(&p->lock);
    c->busy = 0;
    pthread_cond_signal(&p->free_cond);
    pthread_mutex_unlock(&p->lock);
}

/* A free connection slot, connected ones first; NULL when all are busy. Under p->lock. */
static struct pg_conn *
conn_pick(struct pg *p)
{
    struct pg_conn *idle = NULL;
    int i;

    for (i = 0; i < PG_POOL_SIZE; i++) {
        if (p->conns[i].busy)
            continue;
        if (p->conns[i].db != NULL)
            return &p->conns[i];
        if (idle == NULL)
            idle = &p->conns[i];
    }
    return idle;
}

/*
 * Hands out a connection that is connected and looks alive, waiting at most
 * PG_WAIT_MS for a free one. Returns 0 and *out, or ERR_UNAVAILABLE.
 */
static int
conn_acquire(struct pg *p, struct pg_conn **out)
{
    struct pg_conn *c;
    struct timespec deadline;
    int timed_out = 0, suspect, err = 0;

    clock_mono_deadline(&deadline, PG_WAIT_MS);
    pthread_mutex_lock(&p->lock);
    c = conn_pick(p);
    while (c == NULL && !timed_out) {
        timed_out = pthread_cond_timedwait(&p->free_cond, &p->lock, &deadline) == ETIMEDOUT;
        c = conn_pick(p);
    }
    if (c == NULL) {
        pthread_mutex_unlock(&p->lock);
        log_warnx("store: no free postgres connection after %d ms", PG_WAIT_MS);
        return ERR_UNAVAILABLE;
    }
    c->busy = 1;
    suspect = c->db != NULL && c->gen < p->gen;
    pthread_mutex_unlock(&p->lock);

    if (c->db != NULL && (suspect || !conn_alive(c)))
        conn_drop(p, c, suspect ? NULL : "the server closed the connection");
    if (c->db == NULL)
        err = conn_connect(p, c);
    if (err != 0) {
        conn_release(p, c);
        return err;
    }
    *out = c;
    return 0;
}

int
pg_run(struct pg *p, const struct pg_query *q, enum pg_kind kind, PGresult **res, const char *what)
{
    struct pg_conn *c = NULL;
    PGresult *r = NULL;
    char why[256];
    int tries, broken = 0, err = 0;

    *res = NULL;
    for (tries = 0; tries < 2; tries++) {
        PQclear(r);
        r = NULL;
        err = conn_acquire(p, &c);
        if (err != 0)
            break;
        r = PQexecParams(c->db, q->sql, q->n, NULL, q->values, q->lengths, q->formats, 0);
        err = result_map(c->db, r, what, &broken, why, sizeof(why));
        if (broken)
            conn_drop(p, c, why);
        conn_release(p, c);
        /* A read that met a dead connection runs once more on a fresh one. */
        if (err == 0 || !broken || kind != PG_READ)
            break;
    }
    if (err != 0) {
        PQclear(r);
        return err;
    }
    if (kind == PG_WRITE) {
        pthread_mutex_lock(&p->lock);
        p->commits++;
        pthread_mutex_unlock(&p->lock);
    }
    *res = r;
    return 0;
}

int
pg_exec(struct pg *p, const struct pg_query *q, int64_t *rows, const char *what)
{
    PGresult *res = NULL;
    int err;

    err = pg_run(p, q, PG_WRITE, &res, what);
    if (err == 0 && rows != NULL)
        *rows = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return err;
}

int
pg_get_one(struct pg *p, const struct pg_query *q, pg_row_read_fn *read, void *out,
           const char *what)
{
    PGresult *res = NULL;
    int err;

    err = pg_run(p, q, PG_READ, &res, what);
    if (err == 0)
        err = PQntuples(res) > 0 ? read(res, 0, out) : ERR_NOTFOUND;
    pg_result_clear(res);
    return err;
}

int
pg_get_all(struct pg *p, const struct pg_query *q, pg_row_read_fn *read, void *items, size_t *n,
           size_t elem, const char *what)
{
    char **arr = items;
    PGresult *res = NULL;
    size_t cap = *n;
    int row, rows, err;

    err = pg_run(p, q, PG_READ, &res, what);
    if (err != 0)
        goto out;
    rows = PQntuples(res);
    err = store_grow(arr, &cap, *n + (size_t)rows, elem);
    for (row = 0; row < rows && err == 0; row++) {
        /* Counted before it is read, so a half-read row is freed with the rest. */
        err = read(res, row, *arr + (*n)++ * elem);
    }
out:
    pg_result_clear(res);
    return err;
}

/* --- migrations --- */

/* The highest migration version recorded in the database (0 for none). */
static int
schema_version(PGconn *db, int64_t *version)
{
    PGresult *r = PQexec(db, "SELECT coalesce(max(version), 0) FROM schema_version");
    char why[256];
    int broken, err;

    err = result_map(db, r, "reading schema_version", &broken, why, sizeof(why));
    if (err == 0)
        *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return err;
}

/* Sets *yes to 1 when migration version v is recorded in the database, else 0. */
static int
version_recorded(PGconn *db, int v, int *yes)
{
    const char *values[1];
    char version[16], why[256];
    PGresult *r;
    int broken, err;

    snprintf(version, sizeof(version), "%d", v);
    values[0] = version;
    r = PQexecParams(db, "SELECT count(*) FROM schema_version WHERE version = $1", 1, NULL, values,
                     NULL, NULL, 0);
    err = result_map(db, r, "reading schema_version", &broken, why, sizeof(why));
    if (err == 0)
        *yes = strtoll(PQgetvalue(r, 0, 0), NULL, 10) > 0;
    PQclear(r);
    return err;
}

/* Applies migration m in one transaction. */
static int
migration_apply(PGconn *db, const struct pg_migration *m)
{
    const char *values[3];
    char version[16], at[24], why[256];
    PGresult *r;
    int broken, err;

    err = db_exec(db, "BEGIN", "starting a migration");
    if (err == 0)
        err = db_exec(db, m->sql, m->name);
    if (err == 0) {
        snprintf(version, sizeof(version), "%d", m->version);
        snprintf(at, sizeof(at), "%lld", (long long)clock_now_ms());
        values[0] = version;
        values[1] = m->name;
        values[2] = at;
        r = PQexecParams(db,
                         "INSERT INTO schema_version (version, name, applied_at) "
                         "VALUES ($1, $2, $3)",
                         3, NULL, values, NULL, NULL, 0);
        err = result_map(db, r, "recording a migration", &broken, why, sizeof(why));
        PQclear(r);
    }
    if (err == 0)
        err = db_exec(db, "COMMIT", "committing a migration");
    if (err != 0) {
        log_warnx("store: migration %03d_%s failed", m->version, m->name);
        PQclear(PQexec(db, "ROLLBACK"));
        return err;
    }
    log_info("store: applied migration %03d_%s", m->version, m->name);
    return 0;
}

/*
 * Brings the schema up to date. Processes starting together take turns on a
 * session advisory lock, so each migration runs once; a database whose
 * schema is newer than this fluxhook knows is refused. Sets *version to the
 * schema version reached and *applied to how many migrations this call ran.
 */
static int
migrate(PGconn *db, int *version, int *applied)
{
    const struct pg_migration *m;
    int64_t newest = 0;
    int known = 0, recorded = 0, unlock, err;

    *version = 0;
    *applied = 0;
    for (m = pg_migrations; m->version != 0; m++)
        known = m->version;
    err = db_exec(db, "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")", "waiting to migrate");
    if (err != 0)
        return err;
    err = db_exec(db,
                  "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                  "creating schema_version");
    if (err == 0)
        err = schema_version(db, &newest);
    if (err == 0 && newest > known) {
        log_warnx("store: database schema version %lld is newer than this fluxhook knows (%d)",
                  (long long)newest, known);
        err = ERR_STORE;
    }
    /*
     * Every migration not recorded yet runs, in order, also one numbered
     * below the newest recorded: branches number their migrations apart.
     */
    for (m = pg_migrations; m->version != 0 && err == 0; m++) {
        err = version_recorded(db, m->version, &recorded);
        if (err == 0 && !recorded) {
            err = migration_apply(db, m);
            if (err == 0)
                (*applied)++;
        }
        if (err == 0 && m->version > *version)
            *version = m->version;
    }
    /* Counter shards of backends that are gone fold into one, under the same lock. */
    if (err == 0)
        err = db_exec(db, "SELECT fluxhook_counts_fold(), fluxhook_held_fold()",
                      "folding delivery counts");
    /* The lock dies with a lost connection: then the loss is the error to report. */
    unlock = db_exec(db, "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK ")", "ending a migration");
    if (err == 0 && unlock != 0)
        err = unlock == ERR_UNAVAILABLE ? ERR_UNAVAILABLE : ERR_STORE;
    return err;
}

/* --- the listener: wake-ups in and out --- */

/*
 * One thread per store, on a connection of its own, carries the wake-ups
 * both ways. It LISTENs on PG_CHANNEL and wakes this process's dispatcher
 * for each batch of notifications from other processes. And it sends the
 * NOTIFY for work this process's calls made due (pg_due_mark()), after
 * their commits: a transaction that NOTIFYs takes a cluster-wide lock at
 * commit and holds it through its WAL flush, so NOTIFY inside the writing
 * transactions kept concurrent commits from sharing flushes. A NOTIFY alone
 * writes nothing before its commit, so its commit is not flushed under the
 * lock (nor waited for). Marks made while one is under way share the next.
 */
struct listener {
    PGconn *db;       /* NULL while disconnected */
    int pid;          /* its server backend: our own NOTIFYs come back from it */
    int sending;      /* a NOTIFY was sent and its result has not come yet */
    int backoff;      /* ms before the next connection attempt after a failed one */
    int64_t retry_at; /* no connection attempt before this (monotonic ms) */
};

void
pg_due_mark(struct pg *p)
{
    /* Only the first mark since the listener last looked needs to wake it. */
    if (atomic_exchange(&p->due, 1) == 0 && write(p->wake[1], "d", 1) < 0 && errno != EAGAIN)
        log_warn("store: cannot wake the postgres listener");
}

/* Opens the listener's connection and LISTENs; NULL (and why) on failure. */
static PGconn *
listen_open(struct pg *p, char *why, size_t whysize)
{
    PGconn *db = db_open(p, why, whysize);
    PGresult *r;
    int broken;

    if (db == NULL)
        return NULL;
    r = PQexec(db, "LISTEN " PG_CHANNEL);
    if (result_map(db, r, "listening", &broken, why, whysize) != 0) {
        PQfinish(db);
        db = NULL;
    }
    PQclear(r);
    return db;
}

/*
 * Connects again after a loss. Once connected it wakes the dispatcher,
 * since work may have become due meanwhile unheard; after a failure it
 * waits longer each time.
 */
static void
listener_connect(struct pg *p, struct listener *l)
{
    char why[256], where[256];

    l->db = listen_open(p, why, sizeof(why));
    if (l->db == NULL) {
        l->backoff = l->backoff == 0 ? PG_BACKOFF_MIN_MS : l->backoff * 2;
        if (l->backoff > PG_BACKOFF_MAX_MS)
            l->backoff = PG_BACKOFF_MAX_MS;
        l->retry_at = clock_mono_ms() + l->backoff;
        log_debug("store: listener cannot connect where=%s: %s", p->where, why);
        return;
    }
    l->pid = PQbackendPID(l->db);
    db_where(l->db, where, sizeof(where));
    log_info("store: listener reconnected where=%s", where);
    l->backoff = 0;
    /* The database answers again: the pool need not wait out its backoff. */
    pthread_mutex_lock(&p->lock);
    p->retry_at = 0;
    pthread_mutex_unlock(&p->lock);
    store_due_notify(p->st);
}

/* Drops the broken connection; a NOTIFY it had under way is sent again on the next one. */
static void
listener_lost(struct pg *p, struct listener *l, const char *why)
{
    log_warnx("store: listener lost its connection where=%s: %s", p->where, why);
    PQfinish(l->db);
    l->db = NULL;
    l->pid = 0;
    if (l->sending)
        atomic_store(&p->due, 1);
    l->sending = 0;
    l->retry_at = clock_mono_ms(); /* at once; the backoff starts if that fails */
}

/* Sends one NOTIFY for everything marked so far, when connected and none is under way. */
static void
listener_send(struct pg *p, struct listener *l)
{
    char why[256];

    if (l->db == NULL || l->sending || !atomic_exchange(&p->due, 0))
        return;
    if (!PQsendQuery(l->db, "NOTIFY " PG_CHANNEL)) {
        conn_why(l->db, why, sizeof(why));
        atomic_store(&p->due, 1); /* for the next connection */
        listener_lost(p, l, why);
        return;
    }
    l->sending = 1;
}

/*
 * Waits until the connection has something to read (returns 1), or until
 * a wake-up through the pipe or the monotonic time until (0: none) (returns
 * 0). Empties the pipe: the marks it announced are read after this.
 */
static int
listener_wait(struct pg *p, const struct listener *l, int64_t until)
{
    struct pollfd pfds[2] = {{.fd = p->wake[0], .events = POLLIN},
                             {.fd = l->db != NULL ? PQsocket(l->db) : -1, .events = POLLIN}};
    int64_t left = until - clock_mono_ms();
    char buf[64];

    /* A connection libpq already closed has no socket: listener_read() finds it broken. */
    if (l->db != NULL && pfds[1].fd < 0)
        return 1;
    if (poll(pfds, 2, until == 0 ? -1 : left < 0 ? 0 : (int)left) < 0 && errno != EINTR)
        log_warn("store: listener poll failed");
    if (pfds[0].revents & POLLIN) {
        while (read(p->wake[0], buf, sizeof(buf)) > 0)
            continue;
    }
    return pfds[1].revents != 0;
}

/*
 * Reads what arrived on the connection: the result of a NOTIFY under way,
 * and notifications. Returns 1 when one of these came from another process.
 */
static int
listener_read(struct pg *p, struct listener *l)
{
    PGnotify *nf;
    PGresult *r;
    char why[256];
    int others = 0, broken = 0;

    if (!PQconsumeInput(l->db) || PQstatus(l->db) != CONNECTION_OK) {
        conn_why(l->db, why, sizeof(why));
        listener_lost(p, l, why);
        return 0;
    }
    while (l->sending && !broken && !PQisBusy(l->db)) {
        r = PQgetResult(l->db);
        if (r == NULL) {
            l->sending = 0;
            break;
        }
        /* Any other failure is logged; the other hosts' next poll finds the work. */
        (void)result_map(l->db, r, "notifying", &broken, why, sizeof(why));
        PQclear(r);
    }
    if (broken) {
        listener_lost(p, l, why);
        return 0;
    }
    while ((nf = PQnotifies(l->db)) != NULL) {
        /* Ours are sent for this process's own changes, which already woke it (store.c). */
        others |= nf->be_pid != l->pid;
        PQfreemem(nf);
    }
    return others;
}

/*
 * The listener thread (see struct listener). On losing its connection it
 * connects again with backoff, LISTENs again, and wakes the dispatcher once.
 * Asked to stop, it still sends what was marked before (at most
 * PG_CLOSE_NOTIFY_MS), so that the releases of a clean shutdown wake the
 * other hosts.
 */
static void *
listener_main(void *arg)
{
    struct pg *p = arg;
    struct listener l = {.db = p->listen_db}; /* connected and listening by pg_open() */
    int64_t close_by = 0, until;
    int stopping;

    p->listen_db = NULL;
    l.pid = PQbackendPID(l.db);
    for (;;) {
        stopping = atomic_load(&p->stopping);
        if (stopping && close_by == 0)
            close_by = clock_mono_ms() + PG_CLOSE_NOTIFY_MS;
        if (!stopping && l.db == NULL && clock_mono_ms() >= l.retry_at)
            listener_connect(p, &l);
        listener_send(p, &l);
        if (stopping && (l.db == NULL || !l.sending || clock_mono_ms() >= close_by))
            break;
        until = stopping ? close_by : l.db == NULL ? l.retry_at : 0;
        if (listener_wait(p, &l, until) && listener_read(p, &l) && !stopping)
            store_due_notify(p->st);
    }
    PQfinish(l.db);
    return NULL;
}

/* --- open, close, ping --- */

/*
 * Our connection defaults, then the URL (libpq lets later keywords win, so
 * the URL overrides any of them): a connect timeout, and TCP keepalives and
 * a user timeout so that a cut-off host notices within seconds.
 */
static void
params_init(struct pg *p)
{
    int n = 0;

    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        p->keys[n] = "connect_timeout";
        p->vals[n++] = "3";
    }
    p->keys[n] = "keepalives";
    p->vals[n++] = "1";
    p->keys[n] = "keepalives_idle";
    p->vals[n++] = "2";
    p->keys[n] = "keepalives_interval";
    p->vals[n++] = "1";
    p->keys[n] = "keepalives_count";
    p->vals[n++] = "3";
    /* Data unacknowledged this long means the server is gone: answer 503 soon. */
    p->keys[n] = "tcp_user_timeout";
    p->vals[n++] = "5000";
    p->keys[n] = "fallback_application_name";
    p->vals[n++] = "fluxhook";
    p->keys[n] = "dbname";
    p->vals[n++] = p->url;
    p->keys[n] = NULL;
    p->vals[n] = NULL;
}

/* The value of keyword in opts, else of the environment variable env, else dflt. */
static const char *
opt_value(const PQconninfoOption *opts, const char *keyword, const char *env, const char *dflt)
{
    const PQconninfoOption *o;
    const char *v;

    for (o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, keyword) == 0 && o->val != NULL && o->val[0] != '\0')
            return o->val;
    }
    v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/*
 * Writes "host:port,host:port/db" from libpq's comma lists of hosts and
 * ports (one port may serve every host), as p->where for log lines.
 */
static void
where_format(struct pg *p, const char *hosts, const char *ports, const char *db)
{
    size_t len = 0, hn, pn;
    const char *port = ports;

    p->where[0] = '\0';
    while (*hosts != '\0' && len < sizeof(p->where)) {
        hn = strcspn(hosts, ",");
        pn = strcspn(port, ",");
        len += (size_t)snprintf(p->where + len, sizeof(p->where) - len, "%s%.*s:%.*s",
                                len > 0 ? "," : "", (int)hn, hosts, (int)pn, port);
        hosts += hn + (hosts[hn] == ',');
        if (port[pn] == ',')
            port += pn + 1;
    }
    if (len < sizeof(p->where))
        snprintf(p->where + len, sizeof(p->where) - len, "/%s", db);
}

/*
 * Checks that libpq can parse the URL and sets p->where for log lines
 * (never with the user's password). Returns 0 or ERR_INVAL.
 */
static int
url_where(struct pg *p)
{
    PQconninfoOption *opts;
    char *msg = NULL;

    opts = PQconninfoParse(p->url, &msg);
    if (opts == NULL) {
        /* libpq's message may quote part of the URL, password included: not logged. */
        log_warnx("store: malformed postgres URL: expected postgres://USER@HOST:PORT/DB");
        PQfreemem(msg);
        return ERR_INVAL;
    }
    where_format(p, opt_value(opts, "host", "PGHOST", "localhost"),
                 opt_value(opts, "port", "PGPORT", "5432"),
                 opt_value(opts, "dbname", "PGDATABASE", "(default)"));
    PQconninfoFree(opts);
    return 0;
}

static void
pg_free(struct pg *p)
{
    int i;

    if (p == NULL)
        return;
    for (i = 0; i < PG_POOL_SIZE; i++)
        PQfinish(p->conns[i].db);
    PQfinish(p->listen_db);
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->free_cond);
    free(p->url);
    free(p);
}

static struct pg *
pg_new(struct store *st, const char *url)
{
    struct pg *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->st = st;
    p->wake[0] = p->wake[1] = -1;
    pthread_mutex_init(&p->lock, NULL);
    clock_mono_cond_init(&p->free_cond);
    p->url = strdup(url);
    if (p->url == NULL || pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        pg_free(p);
        return NULL;
    }
    params_init(p);
    return p;
}

/*
 * PostgreSQL's store_ops.open: url is the whole postgres:// or
 * postgresql:// URL, handed to libpq as it is. Connects, migrates and starts
 * the listener. Returns 0, ERR_INVAL for a malformed URL, ERR_UNAVAILABLE
 * when the database cannot be reached or drops the connection meanwhile
 * (opening again may succeed: each migration is its own transaction),
 * ERR_STORE when it refuses the user or the database or holds a newer
 * schema, or ERR_NOMEM.
 */
static int
pg_open(struct store *st, const char *url)
{
    struct pg *p;
    char why[256];
    int lasting, err;

    p = pg_new(st, url);
    if (p == NULL)
        return ERR_NOMEM;
    err = url_where(p);
    if (err != 0)
        goto out;
    p->conns[0].db = db_connect(p, why, sizeof(why), &lasting);
    if (p->conns[0].db == NULL) {
        log_warnx("store: cannot connect to postgres where=%s: %s", p->where, why);
        err = lasting ? ERR_STORE : ERR_UNAVAILABLE;
        goto out;
    }
    err = migrate(p->conns[0].db, &st->schema_version, &st->migrations_applied);
    if (err != 0)
        goto out;
    /* Listening before open returns: no change made after it goes unheard. */
    p->listen_db = listen_open(p, why, sizeof(why));
    if (p->listen_db == NULL) {
        log_warnx("store: cannot listen on postgres where=%s: %s", p->where, why);
        err = ERR_UNAVAILABLE;
        goto out;
    }
    if (pthread_create(&p->listener, NULL, listener_main, p) != 0) {
        log_warn("store: cannot start the postgres listener thread");
        err = ERR_STORE;
        goto out;
    }
    p->listener_started = 1;
    st->impl = p;
    log_debug("store: opened postgres where=%s", p->where);
out:
    if (err != 0)
        pg_free(p);
    return err;
}

static void
pg_close(struct store *st)
{
    struct pg *p = st->impl;

    if (p == NULL)
        return;
    if (p->listener_started) {
        atomic_store(&p->stopping, 1);
        if (write(p->wake[1], "x", 1) < 0)
            log_warn("store: cannot wake the postgres listener");
        pthread_join(p->listener, NULL);
    }
    log_debug("store: closed postgres where=%s commits=%llu", p->where,
              (unsigned long long)p->commits);
    pg_free(p);
    st->impl = NULL;
}

/* PostgreSQL's store_ops.ping: SELECT 1 on a pool connection. */
static int
pg_ping(struct store *st)
{
    struct pg_query q;
    PGresult *res = NULL;
    int err;

    pg_query_init(&q, "SELECT 1");
    err = pg_run(st->impl, &q, PG_READ, &res, "pinging");
    PQclear(res);
    return err;
}

/* Every write is its own transaction, committed and synced by the server. */
static void
pg_writer_stats(struct store *st, struct store_writer_stats *out)
{
    struct pg *p = st->impl;

    pthread_mutex_lock(&p->lock);
    out->commits = p->commits;
    out->syncs = p->commits;
    out->writes = p->commits;
    pthread_mutex_unlock(&p->lock);
}

const struct store_ops store_pg_ops = {
    .scheme = "postgres",
    .open = pg_open,
    .close = pg_close,
    .ping = pg_ping,
    .account_insert = pg_account_insert,
    .account_get = pg_account_get,
    .account_list = pg_account_list,
    .is_empty = pg_is_empty,
    .key_insert = pg_key_insert,
    .key_find = pg_key_find,
    .key_delete = pg_key_delete,
    .key_list = pg_key_list,
    .key_touch = pg_key_touch,
    .key_rotate = pg_key_rotate,
    .token_insert = pg_token_insert,
    .token_find = pg_token_find,
    .token_use = pg_token_use,
    .token_revoke = pg_token_revoke,
    .endpoint_insert = pg_endpoint_insert,
    .endpoint_get = pg_endpoint_get,
    .endpoint_list = pg_endpoint_list,
    .endpoint_subscribed = pg_endpoint_subscribed,
    .endpoint_update = pg_endpoint_update,
    .endpoint_rotate = pg_endpoint_rotate,
    .endpoint_delete = pg_endpoint_delete,
    .endpoint_disable = pg_endpoint_disable,
    .endpoint_enable = pg_endpoint_enable,
    .endpoint_held_chunk = pg_endpoint_held_chunk,
    .endpoint_held_next = pg_endpoint_held_next,
    .event_publish = pg_event_publish,
    .event_get = pg_event_get,
    .event_list = pg_event_list,
    .delivery_get = pg_delivery_get,
    .delivery_list = pg_delivery_list,
    .attempt_list = pg_attempt_list,
    .delivery_retry = pg_delivery_retry,
    .endpoint_replay = pg_endpoint_replay,
    .replay_chunk = pg_replay_chunk,
    .replay_next = pg_replay_next,
    .endpoint_replay_preview = pg_endpoint_replay_preview,
    .claim = pg_claim,
    .results_apply = pg_results_apply,
    .release = pg_release,
    .next_due = pg_next_due,
    .writer_stats = pg_writer_stats,
    .count_by_status = pg_count_by_status,
    .stats = pg_stats,
    .stats_series = pg_stats_series,
    .secret_scan = pg_secret_scan,
    .secret_swap = pg_secret_swap,
    .keycheck_get = pg_keycheck_get,
    .keycheck_set = pg_keycheck_set,
    .audit_insert = pg_audit_insert,
    .audit_list = pg_audit_list,
    .purge = pg_purge,
};
