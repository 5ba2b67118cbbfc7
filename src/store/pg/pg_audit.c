/*
 * PostgreSQL backend: the audit log.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg/pg_int.h"
#include "util/clock.h"
#include "util/err.h"

static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit_log (id, account_id, actor, action, target, details, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
/*
 * A NULL filter parameter does not filter (every call is planned with its
 * values, so the planner drops those terms and picks the filter's index:
 * migrations 008 and 016). The date range is also a range of ids ($9, $10):
 * an entry's id is made from its created_at (util/id.h).
 */
static const char SQL_AUDIT_LIST[] =
    "SELECT id, account_id, actor, action, target, details, created_at FROM audit_log "
    "WHERE account_id = $1 AND ($2::text IS NULL OR action = $2) "
    "AND ($3::text IS NULL OR target = $3) AND ($4::text IS NULL OR actor = $4) "
    "AND created_at >= $5::bigint AND ($6::bigint = 0 OR created_at < $6) "
    "AND ($7::text IS NULL OR id < $7) AND ($9::text IS NULL OR id >= $9) "
    "AND ($10::text IS NULL OR id < $10) ORDER BY id DESC LIMIT $8";

static int
audit_read(const PGresult *res, int row, void *out)
{
    struct audit_entry *e = out;

    memset(e, 0, sizeof(*e));
    pg_col_copy(res, row, 0, e->id, sizeof(e->id));
    pg_col_copy(res, row, 1, e->account_id, sizeof(e->account_id));
    pg_col_copy(res, row, 2, e->actor, sizeof(e->actor));
    pg_col_copy(res, row, 3, e->action, sizeof(e->action));
    pg_col_copy(res, row, 4, e->target, sizeof(e->target));
    e->created_at = pg_col_int(res, row, 6);
    return pg_col_strdup(res, row, 5, &e->details);
}

int
pg_audit_insert(struct store *st, const struct audit_entry *e)
{
    struct pg_query q;
    char id[ID_MAX];
    int64_t at = e->created_at != 0 ? e->created_at : clock_now_ms();
    int err;

    snprintf(id, sizeof(id), "%s", e->id);
    if (id[0] == '\0' && (err = id_new_at("aud_", at, id)) != 0)
        return err;
    pg_query_init(&q, SQL_AUDIT_INSERT);
    pg_arg_text(&q, id);
    pg_arg_text(&q, e->account_id);
    pg_arg_text(&q, e->actor);
    pg_arg_text(&q, e->action);
    pg_arg_text(&q, e->target);
    pg_arg_text(&q, e->details != NULL ? e->details : "{}");
    pg_arg_int(&q, at);
    return pg_exec(st->impl, &q, NULL, "appending to the audit log");
}

static const char *
nz(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The smallest id of an entry made at ms, in out; NULL when ms is 0 (no bound). */
static const char *
id_bound(int64_t ms, char out[ID_MAX])
{
    return ms > 0 && id_floor("aud_", ms, out) == 0 ? out : NULL;
}

int
pg_audit_list(struct store *st, const char *account_id, const struct audit_filter *f,
              struct audit_entry **out, size_t *n)
{
    struct pg_query q;
    char from[ID_MAX], before[ID_MAX];
    int err;

    pg_query_init(&q, SQL_AUDIT_LIST);
    pg_arg_text(&q, account_id);
    pg_arg_text(&q, nz(f->action));
    pg_arg_text(&q, nz(f->target));
    pg_arg_text(&q, nz(f->actor));
    pg_arg_int(&q, f->since);
    pg_arg_int(&q, f->until);
    pg_arg_text(&q, nz(f->after));
    pg_arg_int(&q, f->limit);
    pg_arg_text(&q, id_bound(f->since, from));
    pg_arg_text(&q, id_bound(f->until, before));
    err = pg_get_all(st->impl, &q, audit_read, out, n, sizeof(**out), "listing the audit log");
    if (err != 0) {
        audit_entry_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}
