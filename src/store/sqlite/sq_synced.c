/*
 * SQLite backend: what the WAL syncs covered, so that no claim hands out a
 * delivery whose publish a power loss could still take back.
 *
 * A claim is answered at its commit, before any WAL sync, and may read
 * deliveries that are committed (in the WAL) but not synced yet.
 *
 * This process's deliveries: only the publish job inserts deliveries, on the
 * writer thread, with ids from id_new(), which only grow in this process. So
 * each commit draws a mark (id_last(): every delivery it wrote sorts at or
 * below it, every later one above it); the syncer, as it starts, takes the
 * mark of the last commit made so far and, once its sync succeeded, makes it
 * the synced mark. A claim takes only deliveries at or below the synced mark
 * (retries, released and re-enabled deliveries are below it anyway); one left
 * out is due at the next claim after the sync, which the publish's wake-up
 * asks for. Such a claim never waits.
 *
 * Other processes (or handles) on the same file: their ids say nothing about
 * this process's syncs. The writer sees their commits through PRAGMA
 * data_version. Once it has seen one, claims take due deliveries whatever
 * their id, and a claim that took one it cannot vouch for (above the synced
 * mark, or while a commit of another process has not been followed by a sync
 * of this one) waits for a WAL sync before it answers: the sync of the WAL
 * file makes every commit written to it durable, whoever wrote it.
 *
 * A store without a syncer (in memory) has nothing to wait for.
 */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sq_int.h"
#include "util/err.h"
#include "util/id.h"

/* Above every delivery id ("dlv_" and base-32 digits). */
#define MARK_NONE "~"

static const char SQL_NEWEST[] = "SELECT max(id) FROM deliveries";

/* Copies mark into to when it is greater (marks never go back). */
static void
mark_raise(char to[ID_MAX], const char *mark)
{
    if (strcmp(mark, to) > 0)
        snprintf(to, ID_MAX, "%s", mark);
}

/* Writer thread: notes a commit of another connection since the last look. */
static int
foreign_look(struct sq *s, struct sq_conn *c)
{
    int64_t v = 0;
    int err = sq_data_version(c, &v);

    if (err != 0)
        return err;
    if (s->foreign_looked && v != s->foreign_version) {
        /* It came before this process's next commit: a sync after that one covers it. */
        s->foreign_seen = 1;
        s->foreign_commits = s->commits + 1;
    }
    s->foreign_version = v;
    s->foreign_looked = 1;
    return 0;
}

/*
 * Everything in the file is synced right after this (sq_open): other
 * processes' commits from now on are seen as theirs, and the mark sorts
 * above every delivery the file holds (an earlier process's too, whatever
 * the clock: id_after()) and below every id made later.
 */
int
sq_synced_init(struct sq *s)
{
    sqlite3_stmt *stmt;
    int rc, err;

    snprintf(s->mark_committed, ID_MAX, MARK_NONE);
    snprintf(s->mark_synced, ID_MAX, MARK_NONE);
    if (s->memory)
        return 0;
    err = foreign_look(s, &s->writer);
    if (err != 0)
        return err;
    stmt = sq_stmt(&s->writer, SQL_NEWEST);
    if (stmt == NULL)
        return ERR_STORE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_TEXT)
        id_after((const char *)sqlite3_column_text(stmt, 0));
    err = rc == SQLITE_ROW ? 0 : sq_err(&s->writer, rc, "reading the newest delivery");
    sq_done(stmt);
    if (err == 0 && id_last("dlv_", s->mark_committed) != 0)
        err = ERR_INTERNAL;
    if (err == 0)
        memcpy(s->mark_synced, s->mark_committed, ID_MAX);
    return err;
}

void
sq_synced_commit(struct sq *s)
{
    char mark[ID_MAX];

    if (s->syncer_started && id_last("dlv_", mark) == 0)
        mark_raise(s->mark_committed, mark);
}

void
sq_synced_done(struct sq *s, const char *mark, uint64_t commits, int err)
{
    if (err != 0)
        return;
    mark_raise(s->mark_synced, mark);
    if (commits > s->commits_synced)
        s->commits_synced = commits;
}

int
sq_synced_view(struct sq *s, struct sq_conn *c, struct sq_synced *v)
{
    uint64_t synced;
    int err;

    memset(v, 0, sizeof(*v));
    if (!s->syncer_started) {
        snprintf(v->bound, ID_MAX, MARK_NONE);
        snprintf(v->mark, ID_MAX, MARK_NONE);
        return 0;
    }
    err = foreign_look(s, c);
    if (err != 0)
        return err;
    pthread_mutex_lock(&s->lock);
    memcpy(v->mark, s->mark_synced, ID_MAX);
    synced = s->commits_synced;
    pthread_mutex_unlock(&s->lock);
    if (s->foreign_seen) {
        snprintf(v->bound, ID_MAX, MARK_NONE);
        v->foreign_open = synced < s->foreign_commits;
    } else {
        memcpy(v->bound, v->mark, ID_MAX);
    }
    return 0;
}

int
sq_synced_vouches(const struct sq_synced *v, const char *delivery_id)
{
    return !v->foreign_open && strcmp(delivery_id, v->mark) <= 0;
}
