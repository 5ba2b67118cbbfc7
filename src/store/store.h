/*
 * The store: everything fluxhook keeps, behind one interface with a SQLite and
 * (later) a PostgreSQL implementation. Nothing above this header speaks SQL.
 *
 * Conventions:
 *  - Every function returns 0 or a negative ERR_* (util/err.h): ERR_NOTFOUND
 *    when the object does not exist *in the given account*, ERR_CONFLICT on a
 *    uniqueness clash, ERR_UNAVAILABLE while the database cannot be reached
 *    or written (a lost connection, a full disk, an I/O error: nothing was
 *    written; try again later), ERR_STORE when the database
 *    fails otherwise, ERR_NOMEM.
 *  - Objects read from the store are filled into caller-provided structs whose
 *    strings the store allocates; the caller frees them with the matching
 *    *_cleanup() (lists: the matching *_list_free()).
 *  - Times are milliseconds since the Unix epoch; 0 means "none".
 *  - Every store_* function is safe to call from any thread. Writes from many
 *    threads are grouped into few transactions (group commit): a call returns
 *    once its own change is durable.
 */
#ifndef FLUXHOOK_STORE_STORE_H
#define FLUXHOOK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "events/event.h"
#include "util/id.h"
#include "util/lathist.h"

#define STORE_MAX_PAGE 500 /* most objects one list call returns */

/* Delivery statuses (CONTRACT §4). */
enum delivery_status {
    DELIVERY_PENDING,    /* waiting for its next attempt (next_attempt_at) */
    DELIVERY_DELIVERING, /* claimed by a dispatcher, attempt under way (lease_until) */
    DELIVERY_DELIVERED,  /* a 2xx answered: done */
    DELIVERY_FAILED,     /* a non-retryable answer, or retries exhausted: done */
    DELIVERY_HELD,       /* its endpoint is disabled: waits, never dropped */
    DELIVERY__COUNT
};

enum endpoint_status {
    ENDPOINT_ENABLED,
    ENDPOINT_DISABLED,
};

/* "pending" for DELIVERY_PENDING, and back; parse returns 0 or ERR_INVAL. */
const char *delivery_status_name(enum delivery_status s);
int delivery_status_parse(const char *s, enum delivery_status *out);
const char *endpoint_status_name(enum endpoint_status s);

/*
 * Why an attempt got no HTTP answer (CONTRACT §6, attempts' error_class). A
 * transport or protocol failure is retried; a blocked target fails at once.
 */
enum attempt_error_class {
    ATTEMPT_ERROR_NONE,     /* an answer came, or the attempt could not start at all */
    ATTEMPT_ERROR_DNS,      /* the host name did not resolve, or not in time */
    ATTEMPT_ERROR_CONNECT,  /* no TCP connection: refused, unreachable, connect timeout */
    ATTEMPT_ERROR_TLS,      /* the TLS handshake or the receiver's certificate failed */
    ATTEMPT_ERROR_TIMEOUT,  /* the request went out; no answer within the attempt timeout */
    ATTEMPT_ERROR_PROTOCOL, /* what came back is not HTTP (bad status line, garbage) */
    ATTEMPT_ERROR_RESET,    /* the connection was reset or closed before an answer */
    ATTEMPT_ERROR_BLOCKED,  /* the address rules refused the target */
    ATTEMPT_ERROR__COUNT
};

/*
 * "dns" for ATTEMPT_ERROR_DNS and so on, NULL for ATTEMPT_ERROR_NONE (and
 * out of range). Parse turns NULL into ATTEMPT_ERROR_NONE and returns 0, or
 * ERR_INVAL for a name it does not know.
 */
const char *attempt_error_class_name(enum attempt_error_class c);
int attempt_error_class_parse(const char *s, enum attempt_error_class *out);

struct account {
    char id[ID_MAX]; /* "acct_..." */
    char *name;
    int64_t created_at;
};

#define STORE_SCOPES_MAX 128 /* every scope, space-separated, with room to spare */

/* What a credential is. Keys and OAuth clients are api_keys rows; the others are tokens. */
enum cred_kind {
    CRED_KEY,    /* an API key */
    CRED_CLIENT, /* an OAuth client: its secret authenticates only at /oauth/token */
    CRED_TOKEN,  /* an OAuth access token (only as a request's auth context) */
    CRED_PORTAL, /* a portal session (only as a request's auth context) */
};

/*
 * A key or OAuth client as stored, and the auth context of a request: for a
 * token or portal session, id is the token's, name NULL, hash and the key
 * times unused.
 */
struct api_key {
    char id[ID_MAX]; /* "key_...", "oc_...", "tok_..." */
    char account_id[ID_MAX];
    char *name;
    int admin;               /* 1: may manage accounts and act for any account */
    char hash[65];           /* hex SHA-256 of the key's secret; the secret is never stored */
    int64_t created_at;
    enum cred_kind kind;
    char scopes[STORE_SCOPES_MAX]; /* space-separated; "" = every scope (keys made before scopes) */
    int64_t expires_at;            /* 0: never */
    int64_t last_used_at;          /* 0: never; kept to the minute */
    char prev_hash[65];            /* after a rotation: the old secret's hash, "" when none */
    int64_t prev_until;            /* the old secret authenticates until then */
};

enum token_kind {
    TOKEN_ACCESS,         /* an OAuth bearer access token */
    TOKEN_REFRESH,        /* an OAuth refresh token: used once, then replaced */
    TOKEN_PORTAL_LINK,    /* the one-time token of a portal link */
    TOKEN_PORTAL_SESSION, /* what a portal link is exchanged for: the dashboard's bearer */
};

/* An issued token; only the hash of its secret is stored. */
struct token {
    char id[ID_MAX]; /* "tok_..." */
    enum token_kind kind;
    char hash[65]; /* hex SHA-256 of the token */
    char account_id[ID_MAX];
    char client_id[ID_MAX];        /* the OAuth client it was issued to, "" for portal tokens */
    char family[ID_MAX];           /* the grant it belongs to (refresh reuse revokes them all) */
    char scopes[STORE_SCOPES_MAX]; /* space-separated */
    int64_t created_at;
    int64_t expires_at;
    int64_t used_at;    /* a refresh token or portal link: when it was spent, or 0 */
    int64_t revoked_at; /* 0 while valid */
};

/* Which tokens store_token_revoke() revokes. */
enum token_by {
    TOKEN_BY_ID,     /* the one token */
    TOKEN_BY_FAMILY, /* every token of a family */
    TOKEN_BY_CLIENT, /* every token of an OAuth client */
};

struct endpoint {
    char id[ID_MAX]; /* "ep_..." */
    char account_id[ID_MAX];
    char *url;
    char *description;          /* "" when none */
    char *event_types;          /* comma-separated; "" subscribes to every type */
    enum endpoint_status status;
    char *disabled_reason;      /* NULL while enabled */
    int64_t disabled_at;        /* 0 while enabled */
    char *secret;               /* current "whsec_..." */
    char *prev_secret;          /* NULL, or the secret before the last rotation */
    int64_t prev_secret_until;  /* prev_secret signs webhook-signature until then */
    int64_t created_at;
    int64_t updated_at;
    int64_t held;               /* deliveries held for it (filled by get and list) */
    int operational;            /* 1: receives fluxhook's own types, and only those */
};

struct delivery {
    char id[ID_MAX]; /* "dlv_..." */
    char event_id[ID_MAX];
    char endpoint_id[ID_MAX];
    char account_id[ID_MAX];
    char event_type[EVENT_TYPE_MAX];
    enum delivery_status status;
    int attempts_made;       /* attempts recorded so far, over all rounds */
    int round_start;         /* attempts_made when this round began (retry, replay, enable) */
    int64_t next_attempt_at; /* when pending: due time */
    int64_t lease_until;     /* when delivering: the claim expires then */
    int64_t lease_token;     /* grows with every claim; a result counts only with the current one */
    int64_t created_at;
    int64_t updated_at;
    int last_status_code;    /* of the latest attempt, 0 when none or no response */
    char *last_error;        /* of the latest attempt, NULL when none */
};

struct attempt {
    char delivery_id[ID_MAX];
    int n;                /* 1, 2, ... over the delivery's life */
    int64_t at;           /* when it started */
    int status_code;      /* 0 when no response came */
    char *error;          /* NULL, or why it failed ("timeout after 15000 ms") */
    enum attempt_error_class error_class; /* NONE when an answer came */
    int64_t duration_ms;
    char *response_body;  /* first bytes of the answer (at most 4 KiB), or NULL */
    size_t response_len;
    char *request_headers;  /* "Name: value\r\n" lines as sent (signatures too), or NULL */
    char *response_headers; /* the answer's final header block (at most 4 KiB), or NULL */
};

/* What a dispatcher needs to send one claimed delivery. */
struct claim {
    struct delivery dlv;        /* status is DELIVERY_DELIVERING */
    char *url;                  /* the endpoint's URL */
    char *secret;               /* its current secret */
    char *prev_secret;          /* NULL, or the old one during a rotation's grace period */
    char *body;                 /* the event envelope, exactly as stored */
    size_t body_len;
};

/* The outcome of one attempt, as the dispatcher decided it. */
struct attempt_result {
    struct attempt attempt;       /* to append to the delivery's log */
    int64_t lease_token;          /* of the claim the attempt was made under (fencing) */
    enum delivery_status status;  /* DELIVERED, FAILED or PENDING (retry at next_attempt_at) */
    int64_t next_attempt_at;      /* when status is PENDING */
    int disable_endpoint;         /* 1: retries exhausted; disable its endpoint */
    const char *disable_reason;   /* when disable_endpoint: why, for the endpoint's record */
    /* The claimed delivery's endpoint and account, or NULL: the store reads them. */
    const char *endpoint_id;
    const char *account_id;
};

/* Filters for list calls; NULL or "" fields do not filter. */
struct delivery_filter {
    const char *endpoint_id;
    const char *event_id;
    const char *event_type;
    int status;          /* an enum delivery_status, or -1 for any */
    int64_t created_from;   /* ms: only deliveries created then or later; 0: no bound */
    int64_t created_before; /* ms: only deliveries created before then; 0: no bound */
    const char *after;   /* cursor: only ids greater than this (ids sort by time) */
    int limit;           /* 1..STORE_MAX_PAGE */
    int descending;      /* 1: newest first; the cursor then means "older than" */
};

struct stats {
    int64_t by_status[DELIVERY__COUNT]; /* deliveries created in the window, by status */
    int64_t attempts;                   /* attempts made in the window */
    int64_t attempts_ok;                /* of which 2xx */
    int64_t p50_ms, p95_ms, p99_ms;     /* attempt latency; -1 when no attempt */
};

/* One minute (or other bucket) of a time series, for charts. */
struct stats_bucket {
    int64_t start;          /* ms */
    int64_t delivered;      /* attempts with 2xx in the bucket */
    int64_t failed;         /* attempts that failed for good */
    int64_t retried;        /* attempts that failed and were rescheduled (or held) */
    int64_t p50_ms, p95_ms; /* -1 when no attempt */
};

struct store;

/*
 * Opens the store named by url ("sqlite:PATH", "sqlite::memory:",
 * "postgres://..."), creating and migrating it as needed. Returns 0 and
 * *out, ERR_INVAL for an unknown scheme, ERR_UNAVAILABLE when the database
 * is unreachable or dropped the connection meanwhile (opening again may
 * succeed), ERR_STORE otherwise (logged).
 */
int store_open(const char *url, struct store **out);

/*
 * The schema version of the open store's database, and how many migrations
 * store_open() applied to reach it (0 when the schema was already current).
 */
void store_schema(struct store *st, int *version, int *applied);

/* Finishes pending writes and closes; NULL is a no-op. */
void store_close(struct store *st);

/*
 * Registers fn(arg), called (from any thread, without store locks held)
 * after a change makes deliveries due sooner: publish, retry, replay,
 * enable. A dispatcher uses it to wake up at once instead of polling.
 * Returns once no call of the callback it replaces is under way, so after
 * store_on_due(st, NULL, NULL) the old arg may be freed. fn must not call
 * store_on_due() itself (it would wait for its own call).
 */
void store_on_due(struct store *st, void (*fn)(void *arg), void *arg);

/*
 * Hand-off: deliveries a publish on this process leases at insert to this
 * process's own dispatcher, so that it starts them without a claim (SQLite;
 * docs/internals/store.md, "Hand-off"). take(arg, endpoint_id) runs on the
 * store's writer inside the publish's transaction, once per delivery to an
 * enabled endpoint: 1 reserves room for it (the delivery is inserted
 * delivering, leased for lease_ms with lease token 1, if the store also
 * counts fewer than per_endpoint deliveries of that endpoint under a live
 * lease), 0 leaves it pending for a claim, STORE_HANDOFF_FULL leaves it
 * pending too but says that the dispatcher would skip its endpoint in a
 * claim now (its requests here are all under way and hang) and looks for it itself
 * once the endpoint has room: the publish wakes no claim for it
 * (store_publish.waiting). Every reservation ends in exactly
 * one call: give(arg, endpoint_id) when its delivery is not stored or cannot
 * be handed over (the transaction ran again or failed, the publish failed,
 * the sync failed, a secret does not open), or deliver(arg, cs, n) once the
 * publish is durable, which takes the claims (the array and what it points
 * to; claim_list_free()). The three run on store threads with no store lock
 * held: they must be quick and must not call the store.
 */
#define STORE_HANDOFF_FULL 2 /* take(): not taken, and no claim is worth waking for it */

struct store_handoff {
    int (*take)(void *arg, const char *endpoint_id);
    void (*give)(void *arg, const char *endpoint_id);
    void (*deliver)(void *arg, struct claim *cs, size_t n);
    void *arg;
    int64_t lease_ms; /* > 0 */
    int per_endpoint; /* > 0: the endpoints' in-flight cap, as for store_claim() */
};

/*
 * Registers h (copied; NULL unregisters). Like store_on_due(), returns once
 * no call of the hooks it replaces is under way; reservations made under the
 * old registration are then never delivered to the new one (their deliveries
 * stay leased until their lease runs out).
 */
void store_on_handoff(struct store *st, const struct store_handoff *h);

/* --- accounts and keys --- */

/* Inserts a (filled) account. ERR_CONFLICT if the id exists. */
int store_account_insert(struct store *st, const struct account *a);
int store_account_get(struct store *st, const char *id, struct account *out);
/* Inserts a key; key->hash must be set. */
int store_key_insert(struct store *st, const struct api_key *key);
/* Finds the key whose hash is hash_hex. ERR_NOTFOUND when none. */
int store_key_find(struct store *st, const char *hash_hex, struct api_key *out);
/* Deletes a key of the account. */
int store_key_delete(struct store *st, const char *account_id, const char *id);
/* Keys of the account, oldest first. */
int store_key_list(struct store *st, const char *account_id, struct api_key **out, size_t *n);
/* Sets a key's last_used_at to now (nothing when it is gone). */
int store_key_touch(struct store *st, const char *id, int64_t now);
/*
 * Rotates a key of the account: hash_hex becomes its hash, the old hash stays
 * valid until prev_until. ERR_NOTFOUND when no such key.
 */
int store_key_rotate(struct store *st, const char *account_id, const char *id, const char *hash_hex,
                     int64_t prev_until);

/* --- tokens (OAuth and portal) --- */

/* Inserts a (filled) token. */
int store_token_insert(struct store *st, const struct token *t);
/* Finds the token whose hash is hash_hex, whatever its state. ERR_NOTFOUND when none. */
int store_token_find(struct store *st, const char *hash_hex, struct token *out);
/*
 * Spends a refresh token or portal link: sets used_at to now when it was
 * neither used nor revoked. Returns 0 when this call spent it, ERR_CONFLICT
 * when it was already spent or revoked, ERR_NOTFOUND when no such token.
 */
int store_token_use(struct store *st, const char *id, int64_t now);
/* Revokes (revoked_at = now) the tokens that `by` picks with key. Revoking none is not an error. */
int store_token_revoke(struct store *st, enum token_by by, const char *key, int64_t now);

/* Every account, oldest first, ids after `after` ("" for the start). */
int store_account_list(struct store *st, const char *after, int limit, struct account **out,
                       size_t *n);
/* 1 when the store holds no account at all (first start), else 0. */
int store_is_empty(struct store *st);
void account_cleanup(struct account *a);
void account_list_free(struct account *as, size_t n);
void api_key_cleanup(struct api_key *k);
void api_key_list_free(struct api_key *ks, size_t n);

/* --- endpoints --- */

/*
 * Inserts ep: id, account_id, url and secret must be set; created_at and
 * updated_at 0 mean now. ERR_CONFLICT if the id exists, ERR_NOTFOUND if the
 * account does not.
 */
int store_endpoint_insert(struct store *st, const struct endpoint *ep);
int store_endpoint_get(struct store *st, const char *account_id, const char *id,
                       struct endpoint *out);
/*
 * The same without counting its held deliveries (out->held is -1), for a
 * caller about to change the endpoint: the count costs a look at each one.
 */
int store_endpoint_find(struct store *st, const char *account_id, const char *id,
                        struct endpoint *out);
/* Endpoints of the account with ids after `after` ("" for the start), oldest first. */
int store_endpoint_list(struct store *st, const char *account_id, const char *after, int limit,
                        struct endpoint **out, size_t *n);
/* The same for one kind: customer endpoints (operational 0) or operational ones (1). */
int store_endpoint_list_kind(struct store *st, const char *account_id, int operational,
                             const char *after, int limit, struct endpoint **out, size_t *n);
/*
 * Every enabled or disabled endpoint of the account subscribed to type
 * (fan-out): operational ones for fluxhook's own types, customer ones else.
 */
int store_endpoint_subscribed(struct store *st, const char *account_id, const char *type,
                              struct endpoint **out, size_t *n);
/* The fields a PATCH changes; NULL leaves a field as it is. */
struct endpoint_patch {
    const char *url;
    const char *description;
    const char *event_types;
};

/*
 * Changes the given fields of the endpoint, and only those, in one atomic
 * statement, so concurrent changes of other fields (on any host) stand.
 */
int store_endpoint_update(struct store *st, const char *account_id, const char *id,
                          const struct endpoint_patch *p, int64_t now);
/*
 * Rotates the endpoint's secret in one atomic statement: secret becomes the
 * current one; the old current one signs beside it until prev_until (0: no
 * grace, the old secret is dropped at once). Fills *out (may be NULL) with
 * the endpoint as it is after the rotation.
 */
int store_endpoint_rotate(struct store *st, const char *account_id, const char *id,
                          const char *secret, int64_t prev_until, int64_t now,
                          struct endpoint *out);
/* Deletes the endpoint; its pending and held deliveries end as failed ("endpoint deleted"). */
int store_endpoint_delete(struct store *st, const char *account_id, const char *id);
/* Disables the endpoint: its pending deliveries become held. */
int store_endpoint_disable(struct store *st, const char *account_id, const char *id,
                           const char *reason, int64_t now);
/*
 * Enables the endpoint. Its held deliveries become pending, due now, in a
 * new round of the schedule, or, with skip_held, end as failed ("skipped").
 * *resumed (may be NULL) gets how many were resumed or skipped. They move in
 * chunks of a short write each (the dispatcher is woken after the first);
 * a disable meanwhile stops them, the rest staying held.
 */
int store_endpoint_enable(struct store *st, const char *account_id, const char *id,
                          int skip_held, int64_t now, int64_t *resumed);
void endpoint_cleanup(struct endpoint *ep);
void endpoint_list_free(struct endpoint *eps, size_t n);

/* --- events and fan-out --- */

/*
 * Stores ev and one pending delivery, due now, for each of the n endpoints
 * (held instead for a disabled one), in one durable transaction. Sets
 * ev->deliveries = n. When ev->idempotency_key is set and the account
 * published an event with that key in the last 24 h, stores nothing, fills
 * *ev with the earlier event and returns ERR_CONFLICT. An empty ev->id, a
 * zero created_at and an empty timestamp are filled in. ERR_NOTFOUND (and
 * nothing stored) when an endpoint or the account does not exist.
 */
int store_event_publish(struct store *st, struct event *ev, const struct endpoint *eps, size_t n);

#define STORE_MAX_BATCH 500 /* most events one store_event_publish_batch() call takes */

/* One event of store_event_publish_batch(). */
struct store_publish {
    struct event *ev;           /* as for store_event_publish() */
    const struct endpoint *eps; /* its fan-out, unless fanout is set */
    size_t neps;
    int fanout; /* 1: the store fans out to every endpoint of the account subscribed to
                   the event's type (store_endpoint_subscribed()) itself, in the
                   publish's transaction; eps and neps are then ignored */
    int err; /* out: 0 published, ERR_CONFLICT a repeated key (ev holds the earlier event) */
    int handed; /* out: of ev->deliveries, how many were handed off (store_on_handoff()) */
    int waiting; /* out: of the others, how many take() answered STORE_HANDOFF_FULL */
};

/*
 * Publishes n (1..STORE_MAX_BATCH) events of one account like
 * store_event_publish(), all in
 * one durable transaction: returns 0 once every one is committed (each
 * item's err says whether it was published or was a repeat of its
 * idempotency key, also of an earlier item of the same batch), or an error
 * with nothing stored.
 */
int store_event_publish_batch(struct store *st, struct store_publish *items, size_t n);

/*
 * The end of a store_event_publish_async(): err is 0 once every item is
 * committed and durable (each item's err set as store_event_publish_batch()
 * sets it), or the error that stored nothing (ERR_SHUTDOWN when the store
 * closed first). Runs on one of the store's threads, outside its locks; it
 * must not block (no store call that waits).
 */
typedef void store_publish_done_fn(void *arg, int err);

/*
 * While on is 1, the calling thread must not wait for the store (an HTTP
 * loop): a read that finds every read connection busy fails at once with
 * ERR_TIMEOUT instead of waiting for one (SQLite; PostgreSQL never runs on
 * such a thread).
 */
void store_thread_nowait(int on);

/* 1 when the store has store_event_publish_async() (SQLite), else 0. */
int store_publish_async_supported(const struct store *st);

/*
 * Like store_event_publish_batch(), but returns at once: queues the publish
 * and calls done(arg, err) exactly once when it is over, after the sync
 * that makes its commit durable. items (and their events and endpoints)
 * must stay as they are until then; the store writes their outputs. Returns
 * 0 when queued, or ERR_INVAL, ERR_NOMEM, ERR_SHUTDOWN (closing) or
 * ERR_INTERNAL (no asynchronous publish in this backend) without calling
 * done.
 */
int store_event_publish_async(struct store *st, struct store_publish *items, size_t n,
                              store_publish_done_fn *done, void *arg);
int store_event_get(struct store *st, const char *account_id, const char *id, struct event *out);
/* Events of the account, newest first, older than `after` when given; type may be NULL. */
int store_event_list(struct store *st, const char *account_id, const char *type,
                     const char *after, int limit, struct event **out, size_t *n);
void event_list_free(struct event *evs, size_t n);

/* --- deliveries --- */

int store_delivery_get(struct store *st, const char *account_id, const char *id,
                       struct delivery *out);
int store_delivery_list(struct store *st, const char *account_id,
                        const struct delivery_filter *f, struct delivery **out, size_t *n);
/* Every attempt of the delivery, in order. */
int store_attempt_list(struct store *st, const char *delivery_id, struct attempt **out,
                       size_t *n);
/*
 * Delivers again now (a new round of the schedule). A delivery whose endpoint
 * is disabled becomes held. ERR_CONFLICT while it is being delivered.
 */
int store_delivery_retry(struct store *st, const char *account_id, const char *id, int64_t now);
/*
 * Delivers again every delivery of the endpoint created in [since, until)
 * (until 0: up to now) with that status (-1: delivered and failed ones).
 * *count gets how many.
 */
int store_endpoint_replay(struct store *st, const char *account_id, const char *endpoint_id,
                          int64_t since, int64_t until, int status, int64_t now, int64_t *count);
/* How many deliveries a replay would take, and the first (oldest) of them. */
#define STORE_REPLAY_PREVIEW_IDS 10
struct replay_preview {
    int64_t count; /* counted by the store, not listed */
    size_t nids;
    char ids[STORE_REPLAY_PREVIEW_IDS][ID_MAX];
};
/*
 * What store_endpoint_replay() with the same arguments would deliver again,
 * changing nothing. ERR_NOTFOUND when the endpoint is not the account's.
 */
int store_endpoint_replay_preview(struct store *st, const char *account_id,
                                  const char *endpoint_id, int64_t since, int64_t until, int status,
                                  struct replay_preview *out);
void delivery_cleanup(struct delivery *d);
void delivery_list_free(struct delivery *ds, size_t n);
void attempt_cleanup(struct attempt *a);
void attempt_list_free(struct attempt *as, size_t n);

/* --- the dispatcher's side --- */

/*
 * Claims up to max due deliveries: pending ones with next_attempt_at <= now,
 * and delivering ones whose lease expired (a crashed dispatcher's). Each is
 * moved to delivering with lease_until = now + lease_ms and a lease_token one
 * greater than its last. Taken in due-time order, none from the nexclude
 * endpoint ids in exclude. per_endpoint (> 0) is each endpoint's in-flight
 * cap over every process sharing the store: an endpoint never has more than
 * per_endpoint deliveries delivering under a live lease. Works across
 * processes and hosts sharing the store: no delivery is claimed twice while
 * its lease runs. A claim need not be durable when it returns (a claim lost
 * in a crash is a lease that expires). ERR_INVAL unless lease_ms > 0.
 */
int store_claim(struct store *st, int64_t now, int64_t lease_ms, int max, int per_endpoint,
                const char *const *exclude, size_t nexclude, struct claim **out, size_t *n);
void claim_list_free(struct claim *cs, size_t n);

/*
 * Records n attempt outcomes in one transaction: appends each attempt, moves
 * its delivery to the result's status (held instead of pending when its
 * endpoint is disabled by then), and disables endpoints whose result asks
 * for it, holding their pending deliveries. A result whose lease_token is no
 * longer its delivery's (the lease ran out and another claim took it, or the
 * delivery moved on) is fenced: discarded, logged and counted (see
 * store_fenced_count()), never written over a newer attempt. Like a claim,
 * a result need not be durable when this returns: one lost in a crash
 * leaves its delivery to be delivered again once its lease runs out.
 */
int store_results_apply(struct store *st, const struct attempt_result *rs, size_t n, int64_t now);

/*
 * Gives claimed deliveries back, pending and due now (a clean shutdown): each
 * of the n delivery_ids whose lease token is still tokens[i].
 */
int store_release(struct store *st, const char *const *delivery_ids, const int64_t *tokens,
                  size_t n);

/*
 * When store_claim() would next find work: the earliest next_attempt_at of a
 * pending delivery or lease_until of a delivering one (SQLite: while any is
 * delivering, the time of the claims' next sweep for expired leases when
 * sooner than the next pending one), or 0 when none.
 */
int store_next_due(struct store *st, int64_t *when);

/* --- secrets at rest (store/secrets.c) --- */

struct keyring;

/*
 * Seals endpoint secrets with ring (borrowed: it must outlive the store)
 * from now on: a secret is sealed before it is written and opened after it
 * is read, so callers only ever see clear text. Checks ring against the
 * store's key check value first (sealing one with the current key when the
 * store has none yet). Returns 0; ERR_AUTH when no key of the ring opens the
 * check value (a wrong master key: why says which key id the store needs);
 * ERR_UNAVAILABLE, ERR_STORE, ERR_NOMEM. Without a ring (ring NULL detaches
 * one), secrets are written as given and sealed ones cannot be read (ERR_STORE).
 */
int store_keys_attach(struct store *st, struct keyring *ring, char *why, size_t whylen);

/*
 * Seals under the ring's current key every endpoint secret (current and
 * previous, of deleted endpoints too) that is not sealed under it yet: clear
 * text ones (a store from before sealing) and those of other keys of the
 * ring (a rekey), in small batches, each row changed only if no one changed
 * it meanwhile; then seals the key check value with the current key. Safe
 * while servers run on the store. *count (may be NULL) gets how many rows
 * it changed. Returns 0; ERR_AUTH when a secret is sealed with a key the
 * ring lacks (why names the endpoint and key id); other ERR_*.
 */
int store_keys_reseal(struct store *st, int64_t *count, char *why, size_t whylen);

/* --- the audit log --- */

#define AUDIT_ACTION_MAX 48
#define AUDIT_ACTOR_MAX 64

/* One recorded change. */
struct audit_entry {
    char id[ID_MAX];               /* "aud_..." (sorts by time) */
    char account_id[ID_MAX];       /* whose object changed */
    char actor[AUDIT_ACTOR_MAX];   /* the credential that changed it: key_..., tok_..., ... */
    char action[AUDIT_ACTION_MAX]; /* "endpoint.created", ... */
    char target[ID_MAX];           /* the object's id, "" for none */
    char *details;                 /* a JSON object text: the changed fields, no secret */
    int64_t created_at;
};

/* Filters of store_audit_list(); NULL, "" and 0 fields do not filter. */
struct audit_filter {
    const char *action;
    const char *target;
    const char *actor;
    int64_t since;     /* created at or after (ms) */
    int64_t until;     /* created before (ms) */
    const char *after; /* cursor: entries older than this id */
    int limit;         /* 1..STORE_MAX_PAGE */
};

/* Appends e (id and created_at filled in when empty or 0). */
int store_audit_insert(struct store *st, const struct audit_entry *e);
/* Entries of the account, newest first. */
int store_audit_list(struct store *st, const char *account_id, const struct audit_filter *f,
                     struct audit_entry **out, size_t *n);
void audit_entry_list_free(struct audit_entry *es, size_t n);

/* --- retention --- */

/* What one store_purge() call deleted. */
struct store_purge_report {
    int64_t events;
    int64_t deliveries;
    int64_t attempts;
    int64_t tokens; /* expired OAuth and portal tokens */
};

/*
 * Deletes up to limit of the oldest events created before `before` whose
 * deliveries are all finished (delivered or failed; an event with none
 * counts as finished), with their deliveries, attempts and idempotency keys,
 * in one short transaction. Events with a pending, delivering or held
 * delivery are never deleted (they are skipped, and later ones may go).
 * In the same transaction, up to limit tokens (OAuth access and refresh
 * tokens, portal links and sessions) that expired before `before` go too.
 * Fills *out. Returns 0 or ERR_*.
 */
int store_purge(struct store *st, int64_t before, int limit, struct store_purge_report *out);

/* --- copying a whole store --- */

#define STORE_COPY_MAX_TABLES 16

/* One table of a copy: its rows on each side. */
struct store_copy_table {
    const char *name;  /* "deliveries" (static) */
    int64_t source;    /* rows in the source */
    int64_t target;    /* rows in the target after the copy (before it, when it was refused) */
};

/* What store_copy() did, or why it did not. */
struct store_copy_report {
    struct store_copy_table tables[STORE_COPY_MAX_TABLES];
    size_t ntables;
    int64_t source_by_status[DELIVERY__COUNT]; /* deliveries by status in the source */
    int64_t target_by_status[DELIVERY__COUNT]; /* and in the target after the copy */
    int schema_version;  /* the target's, after its migrations */
    int64_t ms;          /* how long the copy took */
    char why[512];       /* on failure: what went wrong, for the user ("" when nothing to add) */
};

/*
 * Copies the whole SQLite store at from_url ("sqlite:PATH") into the
 * PostgreSQL database at to_url ("postgres://..."), which must hold no
 * fluxhook data. The source is only read, in one read transaction, so a
 * server may keep running on it (the copy is of one moment). The target is
 * opened with store_open() first (its migrations run), then every table is
 * streamed into it in one transaction (memory does not grow with the
 * store), the row counts of every table and the deliveries by status are
 * compared on both sides, and the transaction commits only when they all
 * match. Rows are copied as they are: statuses, attempt logs, lease fields
 * and lease tokens, so a delivery that was being delivered is claimed again
 * by a worker of the new store once its lease has run out, and idempotency
 * keys keep answering.
 * Fills *out in every case. Returns 0; ERR_INVAL when a URL is not of those
 * schemes; ERR_CONFLICT when the target already holds data (out->why and
 * out->tables say what); ERR_UNAVAILABLE when a database cannot be reached;
 * ERR_STORE when the copy failed or its counts differ (out->why says how;
 * nothing was written); ERR_NOMEM.
 */
int store_copy(const char *from_url, const char *to_url, struct store_copy_report *out);

/* --- observing --- */

/* What the group-commit writer did since the store was opened (for /metrics, bench/). */
struct store_writer_stats {
    uint64_t commits; /* transactions committed */
    uint64_t syncs;   /* fsyncs that made them durable (one may cover several commits) */
    uint64_t writes;  /* write calls they carried */
    uint64_t checkpoints;        /* WAL checkpoints off the writer's thread (SQLite) */
    uint64_t writer_checkpoints; /* WAL checkpoints the writer made between two commits */
    /* SQLite with its syncer (waits = 1): where a durable write's time went, in microseconds. */
    int waits;
    struct lathist sync;        /* each WAL sync */
    struct lathist wait_commit; /* a durable job's queueing until its transaction committed */
    struct lathist wait_sync;   /* its commit until the sync covering it ended */
};
void store_writer_stats(struct store *st, struct store_writer_stats *out);

/* Results discarded by fencing since the store was opened (for /metrics). */
uint64_t store_fenced_count(struct store *st);

/*
 * 0 when the database answers now, else ERR_UNAVAILABLE or ERR_STORE (for
 * /healthz). On SQLite, after a write failed (a full disk, an I/O error) it
 * answers with a small probe write, so the store reports failing until a
 * write succeeds again.
 */
int store_ping(struct store *st);

/* Deliveries by status across all accounts (for /metrics). */
int store_count_by_status(struct store *st, int64_t out[DELIVERY__COUNT]);
/*
 * Counts and latency of the account (endpoint_id may be NULL) since `since`,
 * read from per-minute and per-hour rollups: the cost is that of their rows,
 * not of the deliveries and attempts in the window. Percentiles are those
 * of a latency histogram (exact below 128 ms, within 1.6 % above).
 */
int store_stats(struct store *st, const char *account_id, const char *endpoint_id, int64_t since,
                struct stats *out);
/*
 * Buckets of bucket_ms from since to now, oldest first, for charts. bucket_ms
 * is a minute or an hour and since a multiple of it, else ERR_INVAL.
 */
int store_stats_series(struct store *st, const char *account_id, const char *endpoint_id,
                       int64_t since, int64_t bucket_ms, int64_t now, struct stats_bucket **out,
                       size_t *n);

#endif
