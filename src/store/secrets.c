/*
 * Secrets at rest: endpoint secrets sealed with the master key ring
 * (util/keyring.h) on their way into the store and opened on their way out,
 * the key check value, and the pass that seals everything under the current
 * key (first start after an upgrade, and rekey).
 *
 * The sealed value's context (its GCM additional data) is the endpoint id:
 * a rotation moves the current secret to prev_secret inside one row, which
 * keeps it valid, but a value copied to another endpoint does not open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/keyring.h"
#include "util/log.h"
#include "util/secret.h"

#define CHECK_CONTEXT "fluxhook master key check"
#define CHECK_PLAIN "fluxhook"
#define RESEAL_BATCH 100 /* rows read per scan */

int
secrets_seal(struct store *st, const char *ep_id, const char *plain, char **out)
{
    int err;

    *out = NULL;
    if (plain == NULL)
        return 0;
    if (st->keys == NULL) {
        *out = strdup(plain);
        return *out == NULL ? ERR_NOMEM : 0;
    }
    err = keyring_seal(st->keys, ep_id, plain, out);
    if (err != 0 && err != ERR_NOMEM) {
        log_warnx("store: cannot seal the secret of endpoint=%s: %s", ep_id, err_str(err));
        err = ERR_STORE;
    }
    return err;
}

int
secrets_open(struct store *st, const char *ep_id, char **field)
{
    char *plain = NULL;
    char kid[KEYRING_KID_LEN];
    int err;

    if (!keyring_is_sealed(*field))
        return 0;
    if (st->keys == NULL) {
        log_warnx("store: the secret of endpoint=%s is sealed, and no master key was given", ep_id);
        return ERR_STORE;
    }
    st->secrets_opened++;
    err = keyring_open(st->keys, ep_id, *field, &plain);
    if (err == ERR_NOMEM)
        return err;
    if (err != 0) {
        if (keyring_kid_of(*field, kid) != 0)
            snprintf(kid, sizeof(kid), "?");
        log_warnx("store: cannot open the secret of endpoint=%s key_id=%s: %s", ep_id, kid,
                  err == ERR_NOTFOUND ? "the master key ring lacks that key" : err_str(err));
        return ERR_STORE;
    }
    free(*field); /* sealed text: nothing secret without the key */
    *field = plain;
    return 0;
}

static void
memo_field_clear(struct secrets_memo_field *f)
{
    free(f->sealed); /* nothing secret without the key */
    secret_free(f->plain);
    f->sealed = f->plain = NULL;
    f->ep_id[0] = '\0';
}

/*
 * secrets_open() of *field, or a copy of the clear text of one of the
 * entries ms (SECRETS_MEMO_N) when it opened the same value for ep_id; a
 * value opened here replaces the entry *next names, and *next moves on.
 */
static int
open_memo(struct store *st, const char *ep_id, char **field, struct secrets_memo_field *ms,
          unsigned *next)
{
    struct secrets_memo_field *m;
    char *sealed;
    char *copy;
    size_t i;
    int err;

    if (!keyring_is_sealed(*field))
        return 0;
    for (i = 0; i < SECRETS_MEMO_N; i++) {
        m = &ms[i];
        if (m->sealed == NULL || strcmp(m->ep_id, ep_id) != 0 || strcmp(m->sealed, *field) != 0)
            continue;
        copy = strdup(m->plain);
        if (copy == NULL)
            return ERR_NOMEM;
        free(*field);
        *field = copy;
        return 0;
    }
    m = &ms[*next % SECRETS_MEMO_N];
    memo_field_clear(m);
    sealed = strdup(*field);
    if (sealed == NULL)
        return ERR_NOMEM;
    err = secrets_open(st, ep_id, field);
    copy = err == 0 ? strdup(*field) : NULL;
    if (copy == NULL) {
        free(sealed);
        return err; /* a copy that failed only leaves nothing to reuse */
    }
    snprintf(m->ep_id, sizeof(m->ep_id), "%s", ep_id);
    m->sealed = sealed;
    m->plain = copy;
    (*next)++;
    return 0;
}

int
secrets_open_claims_memo(struct store *st, struct claim *cs, size_t n, struct secrets_memo *m)
{
    size_t i;
    int err = 0;

    if (m->st != st) {
        secrets_memo_clear(m);
        m->st = st;
    }
    for (i = 0; i < n && err == 0; i++) {
        err = open_memo(st, cs[i].dlv.endpoint_id, &cs[i].secret, m->secret, &m->next_secret);
        if (err == 0)
            err = open_memo(st, cs[i].dlv.endpoint_id, &cs[i].prev_secret, m->prev_secret,
                            &m->next_prev);
    }
    return err;
}

void
secrets_memo_clear(struct secrets_memo *m)
{
    size_t i;

    for (i = 0; i < SECRETS_MEMO_N; i++) {
        memo_field_clear(&m->secret[i]);
        memo_field_clear(&m->prev_secret[i]);
    }
    m->next_secret = m->next_prev = 0;
    m->st = NULL;
}

int
secrets_open_claims(struct store *st, struct claim *cs, size_t n)
{
    struct secrets_memo m = { 0 };
    int err;

    err = secrets_open_claims_memo(st, cs, n, &m);
    secrets_memo_clear(&m);
    return err;
}

void
store_secret_list_free(struct store_secret *rows, size_t n)
{
    size_t i;

    for (i = 0; rows != NULL && i < n; i++) {
        free(rows[i].secret);
        free(rows[i].prev_secret);
    }
    free(rows);
}

/* Checks an existing check value against the ring; 0 or ERR_AUTH (why set). */
static int
check_verify(struct store *st, const char *value, char *why, size_t whylen)
{
    char kid[KEYRING_KID_LEN], cur[KEYRING_KID_LEN];
    char *plain = NULL;
    int err;

    if (keyring_kid_of(value, kid) != 0) {
        snprintf(why, whylen, "the store's master key check value is damaged");
        return ERR_STORE;
    }
    err = keyring_open(st->keys, CHECK_CONTEXT, value, &plain);
    if (err == ERR_NOMEM)
        return err;
    if (err == 0 && strcmp(plain, CHECK_PLAIN) != 0)
        err = ERR_SIGNATURE;
    secret_free(plain);
    if (err != 0) {
        keyring_current_kid(st->keys, cur);
        snprintf(why, whylen,
                 "wrong master key: this store's secrets are sealed with master key id %s, and "
                 "the key given (id %s) %s; start with the key this store was sealed with "
                 "(--master-key-file or FLUXHOOK_MASTER_KEY)",
                 kid, cur, err == ERR_NOTFOUND ? "is another key" : "does not open them");
        return ERR_AUTH;
    }
    return 0;
}

int
store_keys_attach(struct store *st, struct keyring *ring, char *why, size_t whylen)
{
    char *value = NULL, *fresh = NULL;
    int err, tries;

    why[0] = '\0';
    st->keys = ring;
    if (ring == NULL)
        return 0;
    for (tries = 0; tries < 3; tries++) {
        err = st->ops->keycheck_get(st, &value);
        if (err == 0) {
            err = check_verify(st, value, why, whylen);
            break;
        }
        if (err != ERR_NOTFOUND)
            break;
        /* A store that never had a key: this one becomes its key. */
        err = keyring_seal(ring, CHECK_CONTEXT, CHECK_PLAIN, &fresh);
        if (err == 0)
            err = st->ops->keycheck_set(st, NULL, fresh);
        free(fresh);
        fresh = NULL;
        if (err != ERR_CONFLICT)
            break;
        /* Another process set one first: check against it. */
    }
    free(value);
    if (err != 0) {
        if (why[0] == '\0')
            snprintf(why, whylen, "cannot read the master key check value: %s", err_str(err));
        st->keys = NULL;
    }
    return err;
}

/*
 * Seals *field (a column of endpoint id) under the current key into *out
 * when it is clear text or sealed under another key; *out stays NULL when
 * it is already right. 0, ERR_AUTH (a key the ring lacks; why set), ERR_*.
 */
static int
reseal_one(struct store *st, const char *id, const char *field, const char *cur, char **out,
           char *why, size_t whylen)
{
    char kid[KEYRING_KID_LEN];
    char *plain = NULL;
    int err;

    *out = NULL;
    if (field == NULL)
        return 0;
    if (keyring_is_sealed(field)) {
        if (keyring_kid_of(field, kid) == 0 && strcmp(kid, cur) == 0)
            return 0;
        err = keyring_open(st->keys, id, field, &plain);
        if (err != 0) {
            snprintf(why, whylen,
                     "the secret of endpoint %s is sealed with master key id %s, which %s", id,
                     keyring_kid_of(field, kid) == 0 ? kid : "?",
                     err == ERR_NOTFOUND ? "the key ring lacks" : "does not open it");
            return err == ERR_NOMEM ? err : ERR_AUTH;
        }
        field = plain;
    }
    err = keyring_seal(st->keys, id, field, out);
    secret_free(plain);
    return err;
}

/* One pass over every endpoint row; *changed gets the rows it resealed. */
static int
reseal_pass(struct store *st, const char *cur, int64_t *changed, char *why, size_t whylen)
{
    struct store_secret *rows = NULL, fresh;
    char after[ID_MAX] = "";
    size_t n = 0, i;
    int err = 0;

    *changed = 0;
    memset(&fresh, 0, sizeof(fresh));
    do {
        store_secret_list_free(rows, n);
        rows = NULL;
        n = 0;
        err = st->ops->secret_scan(st, after, RESEAL_BATCH, &rows, &n);
        for (i = 0; err == 0 && i < n; i++) {
            snprintf(fresh.id, sizeof(fresh.id), "%s", rows[i].id);
            err = reseal_one(st, rows[i].id, rows[i].secret, cur, &fresh.secret, why, whylen);
            if (err == 0)
                err = reseal_one(st, rows[i].id, rows[i].prev_secret, cur, &fresh.prev_secret, why,
                                 whylen);
            if (err == 0 && (fresh.secret != NULL || fresh.prev_secret != NULL)) {
                /* A column already right is written back as it is. */
                if (fresh.secret == NULL && (fresh.secret = strdup(rows[i].secret)) == NULL)
                    err = ERR_NOMEM;
                if (fresh.prev_secret == NULL && rows[i].prev_secret != NULL &&
                    (fresh.prev_secret = strdup(rows[i].prev_secret)) == NULL)
                    err = ERR_NOMEM;
                if (err == 0)
                    err = st->ops->secret_swap(st, &rows[i], &fresh);
                if (err == 0)
                    (*changed)++;
                else if (err == ERR_CONFLICT)
                    err = 0; /* changed meanwhile: the next pass looks again */
            }
            free(fresh.secret);
            free(fresh.prev_secret);
            fresh.secret = fresh.prev_secret = NULL;
        }
        if (n > 0)
            snprintf(after, sizeof(after), "%s", rows[n - 1].id);
    } while (err == 0 && n == RESEAL_BATCH);
    store_secret_list_free(rows, n);
    return err;
}

int
store_keys_reseal(struct store *st, int64_t *count, char *why, size_t whylen)
{
    char cur[KEYRING_KID_LEN], kid[KEYRING_KID_LEN];
    char *value = NULL, *fresh = NULL;
    int64_t changed = 0, total = 0;
    int err, passes = 0;

    why[0] = '\0';
    if (count != NULL)
        *count = 0;
    if (st->keys == NULL)
        return ERR_INVAL;
    keyring_current_kid(st->keys, cur);
    /* Rows changed under a pass (a rotation racing it) are looked at again in the next. */
    do {
        err = reseal_pass(st, cur, &changed, why, whylen);
        total += changed;
    } while (err == 0 && changed > 0 && ++passes < 10);
    if (err != 0)
        goto out;
    err = st->ops->keycheck_get(st, &value);
    if (err == 0 && keyring_kid_of(value, kid) == 0 && strcmp(kid, cur) == 0)
        goto out;
    if (err != 0 && err != ERR_NOTFOUND)
        goto out;
    err = keyring_seal(st->keys, CHECK_CONTEXT, CHECK_PLAIN, &fresh);
    if (err == 0)
        err = st->ops->keycheck_set(st, value, fresh);
    if (err == ERR_CONFLICT)
        err = 0; /* another process resealed it meanwhile */
out:
    if (err == 0 && total > 0)
        log_info("store: sealed endpoint secrets with master key rows=%lld key_id=%s",
                 (long long)total, cur);
    if (err != 0 && why[0] == '\0')
        snprintf(why, whylen, "cannot seal the endpoint secrets: %s", err_str(err));
    if (count != NULL)
        *count = total;
    free(value);
    free(fresh);
    return err;
}
