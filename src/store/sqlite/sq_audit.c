/*
 * SQLite backend: the audit log.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit_log (id, account_id, actor, action, target, details, created_at) "
    "VALUES (:id, :acct, :actor, :action, :target, :details, :at)";
/*
 * The list's SQL names the index of its most selective filter (target, then
 * actor, then action: migrations 008 and 016), whose entries sort by id after
 * it; the other filters are checked on its rows. The date range is also a
 * range of ids: an entry's id is made from its created_at (util/id.h).
 */
static const char SQL_AUDIT_COLS[] =
    "SELECT id, account_id, actor, action, target, details, created_at FROM audit_log";

struct audit_args {
    const struct audit_entry *in;
    const char *account_id;
    const struct audit_filter *f;
    struct audit_entry *list;
    size_t n;
};

static int
audit_read(sqlite3_stmt *stmt, void *out)
{
    struct audit_entry *e = out;

    memset(e, 0, sizeof(*e));
    sq_col_copy(stmt, 0, e->id, sizeof(e->id));
    sq_col_copy(stmt, 1, e->account_id, sizeof(e->account_id));
    sq_col_copy(stmt, 2, e->actor, sizeof(e->actor));
    sq_col_copy(stmt, 3, e->action, sizeof(e->action));
    sq_col_copy(stmt, 4, e->target, sizeof(e->target));
    e->created_at = sqlite3_column_int64(stmt, 6);
    return sq_col_strdup(stmt, 5, &e->details);
}

static int
job_insert(struct sq_conn *c, void *arg)
{
    const struct audit_entry *e = ((struct audit_args *)arg)->in;
    sqlite3_stmt *stmt = sq_stmt(c, SQL_AUDIT_INSERT);
    int rc, err = 0;

    if (stmt == NULL)
        return ERR_STORE;
    sq_bind_text(stmt, ":id", e->id);
    sq_bind_text(stmt, ":acct", e->account_id);
    sq_bind_text(stmt, ":actor", e->actor);
    sq_bind_text(stmt, ":action", e->action);
    sq_bind_text(stmt, ":target", e->target);
    sq_bind_text(stmt, ":details", e->details != NULL ? e->details : "{}");
    sq_bind_int(stmt, ":at", e->created_at);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = sq_err(c, rc, "appending to the audit log");
    sq_done(stmt);
    return err;
}

int
sq_audit_insert(struct store *st, const struct audit_entry *e)
{
    struct audit_entry full = *e;
    struct audit_args a = {.in = &full};
    int err;

    if (full.created_at == 0)
        full.created_at = clock_now_ms();
    if (full.id[0] == '\0' && (err = id_new_at("aud_", full.created_at, full.id)) != 0)
        return err;
    return sq_write(st->impl, job_insert, &a);
}

static const char *
nz(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static int
audit_list_sql(struct buf *sql, const struct audit_filter *f)
{
    const char *index = nz(f->target) != NULL  ? "audit_log_target"
                        : nz(f->actor) != NULL  ? "audit_log_actor"
                        : nz(f->action) != NULL ? "audit_log_action"
                                                : "audit_log_account";
    int err;

    err = buf_printf(sql, "%s INDEXED BY %s WHERE account_id = :acct", SQL_AUDIT_COLS, index);
    if (err == 0 && nz(f->action) != NULL)
        err = buf_puts(sql, " AND action = :action");
    if (err == 0 && nz(f->target) != NULL)
        err = buf_puts(sql, " AND target = :target");
    if (err == 0 && nz(f->actor) != NULL)
        err = buf_puts(sql, " AND actor = :actor");
    if (err == 0 && f->since > 0)
        err = buf_puts(sql, " AND id >= :from AND created_at >= :since");
    if (err == 0 && f->until > 0)
        err = buf_puts(sql, " AND id < :before AND created_at < :until");
    if (err == 0 && nz(f->after) != NULL)
        err = buf_puts(sql, " AND id < :after");
    if (err == 0)
        err = buf_puts(sql, " ORDER BY id DESC LIMIT :limit");
    return err;
}

static int
job_list(struct sq_conn *c, void *arg)
{
    struct audit_args *a = arg;
    const struct audit_filter *f = a->f;
    sqlite3_stmt *stmt = NULL;
    struct buf sql;
    char from[ID_MAX], before[ID_MAX];
    int rc, err;

    buf_init(&sql, 512);
    err = audit_list_sql(&sql, f);
    if (err != 0)
        goto out;
    rc = sqlite3_prepare_v2(c->db, buf_cstr(&sql), -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        err = sq_err(c, rc, "preparing an audit log list");
        goto out;
    }
    sq_bind_text(stmt, ":acct", a->account_id);
    sq_bind_text(stmt, ":action", nz(f->action));
    sq_bind_text(stmt, ":target", nz(f->target));
    sq_bind_text(stmt, ":actor", nz(f->actor));
    sq_bind_int(stmt, ":since", f->since);
    sq_bind_int(stmt, ":until", f->until);
    if (f->since > 0 && id_floor("aud_", f->since, from) == 0)
        sq_bind_text(stmt, ":from", from);
    if (f->until > 0 && id_floor("aud_", f->until, before) == 0)
        sq_bind_text(stmt, ":before", before);
    sq_bind_text(stmt, ":after", nz(f->after));
    sq_bind_int(stmt, ":limit", f->limit);
    err = sq_row_all(c, stmt, audit_read, &a->list, &a->n, sizeof(*a->list),
                     "listing the audit log");
out:
    sqlite3_finalize(stmt);
    buf_cleanup(&sql);
    return err;
}

int
sq_audit_list(struct store *st, const char *account_id, const struct audit_filter *f,
              struct audit_entry **out, size_t *n)
{
    struct audit_args a = {.account_id = account_id, .f = f};
    int err;

    err = sq_read(st->impl, job_list, &a);
    if (err != 0) {
        audit_entry_list_free(a.list, a.n);
        return err;
    }
    *out = a.list;
    *n = a.n;
    return 0;
}
