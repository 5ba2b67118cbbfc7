/*
 * Shared inside src/store: the table of operations each backend provides
 * (STYLE §6) and the helpers store.c offers them. store.c picks a backend by
 * the URL's scheme and forwards every store_*() call to its table.
 */
#ifndef FLUXHOOK_STORE_STORE_INT_H
#define FLUXHOOK_STORE_STORE_INT_H

#include <pthread.h>

#include "store/store.h"

#define STORE_IDEMPOTENCY_MS (24LL * 60 * 60 * 1000) /* a key is unique for this long */
#define STORE_MAX_BUCKETS 10000                     /* most buckets one series returns */

/*
 * One endpoint's secret columns as stored (sealed or clear text), for the
 * sealing passes of secrets.c. secret_scan fills rows of every endpoint,
 * deleted ones too, with ids after its `after`, in id order. secret_swap
 * writes the new row's two columns only where both still hold the old row's
 * values: ERR_CONFLICT when they changed meanwhile (or the row is gone).
 * keycheck_get gives ERR_NOTFOUND when there is no check value; keycheck_set
 * replaces old (NULL: none yet) with the new value, ERR_CONFLICT when the
 * stored one is not old.
 */
struct store_secret {
    char id[ID_MAX];
    char *secret;
    char *prev_secret; /* NULL when none */
};

/* 0 while the calling thread must not wait for a read connection (store_thread_nowait()). */
int store_thread_may_wait(void);

/*
 * Big moves (an enable's held deliveries, a replay, a disable's pending
 * deliveries, a delete's pending and held ones) go in chunks, each a
 * short write of its own, so publishes interleave. store.c sizes them: the
 * first STORE_CHUNK_FIRST rows (the dispatcher starts on them at once),
 * then each to take about STORE_CHUNK_BUDGET_US in the write, within
 * [STORE_CHUNK_MIN, STORE_CHUNK_MAX] rows.
 */
#define STORE_CHUNK_FIRST 100
#define STORE_CHUNK_MIN 50
#define STORE_CHUNK_MAX 4000
#define STORE_CHUNK_BUDGET_US 8000

/* One chunk of a big move: what it may take and what it did. */
struct store_chunk {
    int64_t limit;   /* in: most deliveries to move */
    int64_t now;     /* in: the time the moves are stamped with */
    int64_t moved;   /* out: how many it moved */
    int64_t took_us; /* out: how long the write itself took (not its wait in a queue) */
    int64_t replay;  /* a replay's record (both ways); 0 once the replay is done */
    int queue;       /* an enable's rest goes to pending, not by hand-off (sq_held_hand.c) */
    int64_t hand_until; /* clock_mono_us() when an enable stops handing over; 0: not begun */
    int64_t handed;     /* how many an enable has handed over so far */
};


/*
 * One backend. Every member but event_publish_async, endpoint_cut_chunk and
 * endpoint_cut_next is required; each mirrors the store_*() of the same name.
 */

struct store_ops {
    const char *scheme; /* "sqlite", "postgres" */
    int (*open)(struct store *st, const char *url); /* the whole URL given to store_open() */
    void (*close)(struct store *st);
    int (*ping)(struct store *st);

    int (*account_insert)(struct store *, const struct account *);
    int (*account_get)(struct store *, const char *, struct account *);
    int (*account_list)(struct store *, const char *, int, struct account **, size_t *);
    int (*is_empty)(struct store *);
    int (*key_insert)(struct store *, const struct api_key *);
    int (*key_find)(struct store *, const char *, struct api_key *);
    int (*key_delete)(struct store *, const char *, const char *);
    int (*key_list)(struct store *, const char *, struct api_key **, size_t *);
    int (*key_touch)(struct store *, const char *, int64_t);
    int (*key_rotate)(struct store *, const char *, const char *, const char *, int64_t);
    int (*token_insert)(struct store *, const struct token *);
    int (*token_find)(struct store *, const char *, struct token *);
    int (*token_use)(struct store *, const char *, int64_t);
    int (*token_revoke)(struct store *, enum token_by, const char *, int64_t);

    int (*endpoint_insert)(struct store *, const struct endpoint *);
    /* The last argument: 1 counts its held deliveries, 0 does not (held -1). */
    int (*endpoint_get)(struct store *, const char *, const char *, struct endpoint *, int);
    int (*endpoint_list)(struct store *, const char *, int, const char *, int, struct endpoint **,
                         size_t *);
    int (*endpoint_subscribed)(struct store *, const char *, const char *, struct endpoint **,
                               size_t *);
    int (*endpoint_update)(struct store *, const char *, const char *,
                           const struct endpoint_patch *, int64_t);
    int (*endpoint_rotate)(struct store *, const char *, const char *, const char *, int64_t,
                           int64_t);
    int (*endpoint_delete)(struct store *, const char *, const char *);
    int (*endpoint_disable)(struct store *, const char *, const char *, const char *, int64_t);
    /* Flips the endpoint to enabled and moves the first chunk of its held deliveries. */
    int (*endpoint_enable)(struct store *, const char *, const char *, int,
                           struct store_chunk *);
    /*
     * One short write: moves a chunk of the held deliveries of endpoint id
     * (oldest first) as enable does, only while it is enabled.
     */
    int (*endpoint_held_chunk)(struct store *, const char *, int, struct store_chunk *);
    /* Copies into id (ID_MAX) an enabled endpoint with held deliveries; ERR_NOTFOUND if none. */
    int (*endpoint_held_next)(struct store *, char *);
    /*
     * NULL when endpoint_disable and endpoint_delete move the endpoint's
     * deliveries in their own transaction. Else those only flip it, and
     * store.c moves them after, a short write per chunk: one chunk of
     * endpoint id's deliveries as its state asks (disabled: pending to held;
     * deleted: pending, then held, to failed; enabled: none).
     */
    int (*endpoint_cut_chunk)(struct store *, const char *, struct store_chunk *);
    /*
     * Copies into id (ID_MAX) a disabled endpoint with pending deliveries or
     * a deleted one with pending or held ones; ERR_NOTFOUND if none.
     */
    int (*endpoint_cut_next)(struct store *, char *);

    /* Every ev is filled (id, created_at, timestamp) and checked; sets each err. */
    int (*event_publish)(struct store *, struct store_publish *, size_t);
    /* NULL when the backend has none; else as event_publish, answering through done. */
    int (*event_publish_async)(struct store *, struct store_publish *, size_t,
                               store_publish_done_fn *, void *);
    int (*event_get)(struct store *, const char *, const char *, struct event *);
    int (*event_list)(struct store *, const char *, const char *, const char *, int,
                      struct event **, size_t *);

    int (*delivery_get)(struct store *, const char *, const char *, struct delivery *);
    int (*delivery_list)(struct store *, const char *, const struct delivery_filter *,
                         struct delivery **, size_t *);
    int (*attempt_list)(struct store *, const char *, struct attempt **, size_t *);
    int (*delivery_retry)(struct store *, const char *, const char *, int64_t);
    /*
     * Records the replay (its endpoint, statuses and ids still to go) and
     * moves its first chunk, in one write; ck->replay gets the record while
     * some remain. Each replay_chunk moves the next chunk of ck->replay and
     * advances its record (deleted, and ck->replay 0, after the last).
     * replay_next finds a replay a crash cut short (ERR_NOTFOUND if none).
     */
    int (*endpoint_replay)(struct store *, const char *, const char *, int64_t, int64_t, int,
                           struct store_chunk *);
    int (*replay_chunk)(struct store *, struct store_chunk *);
    int (*replay_next)(struct store *, int64_t *);
    int (*endpoint_replay_preview)(struct store *, const char *, const char *, int64_t, int64_t,
                                   int, struct replay_preview *);

    int (*claim)(struct store *, int64_t, int64_t, int, int, const char *const *, size_t,
                 struct claim **, size_t *);
    /* Sets *fenced to how many results it discarded as stale (fencing). */
    int (*results_apply)(struct store *, const struct attempt_result *, size_t, int64_t,
                         size_t *fenced);
    int (*release)(struct store *, const char *const *, const int64_t *, size_t);
    int (*next_due)(struct store *, int64_t *);

    void (*writer_stats)(struct store *, struct store_writer_stats *);
    int (*count_by_status)(struct store *, int64_t[DELIVERY__COUNT]);
    int (*stats)(struct store *, const char *, const char *, int64_t, struct stats *);
    int (*stats_series)(struct store *, const char *, const char *, int64_t, int64_t, int64_t,
                        struct stats_bucket **, size_t *);

    /* Secrets at rest (secrets.c): raw rows and the key check value, never opened. */
    int (*secret_scan)(struct store *, const char *, int, struct store_secret **, size_t *);
    int (*secret_swap)(struct store *, const struct store_secret *, const struct store_secret *);
    int (*keycheck_get)(struct store *, char **);
    int (*keycheck_set)(struct store *, const char *, const char *);

    int (*audit_insert)(struct store *, const struct audit_entry *);
    int (*audit_list)(struct store *, const char *, const struct audit_filter *,
                      struct audit_entry **, size_t *);
    int (*purge)(struct store *, int64_t, int, struct store_purge_report *);
};

struct store {
    const struct store_ops *ops;
    struct keyring *keys;        /* seals endpoint secrets; NULL: none (store_keys_attach) */
    void *impl;                  /* the backend's state */
    pthread_mutex_t due_lock;    /* guards on_due, on_due_arg and due_calls */
    pthread_cond_t due_idle;     /* signalled when due_calls drops to 0 */
    void (*on_due)(void *arg);
    void *on_due_arg;
    int due_calls;               /* calls of on_due under way */
    pthread_mutex_t ho_lock;     /* guards ho, ho_gen and ho_calls (handoff.c) */
    pthread_cond_t ho_idle;      /* signalled when ho_calls drops to 0 */
    struct store_handoff ho;     /* ho.take NULL: no hand-off registered */
    uint64_t ho_gen;             /* grows with every registration */
    int ho_calls;                /* calls of ho's hooks under way */
    pthread_cond_t ho_room;      /* results recorded: leases may have ended (ho_lock) */
    uint64_t ho_results;         /* grows with every batch of results recorded */
    _Atomic uint64_t fenced;     /* results discarded as stale */
    _Atomic uint64_t secrets_opened; /* sealed values secrets_open() opened */
    _Atomic uint64_t cut_chunks; /* chunks of disables and deletes written (endpoint_cut_chunk) */
    void (*on_cut_chunk)(void *arg); /* tests: called after each such chunk, or NULL */
    void *on_cut_chunk_arg;
    int schema_version;          /* the database's schema version once open (backend sets it) */
    int migrations_applied;      /* how many migrations this open applied (backend sets it) */
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* The schema version the SQLite backend migrates to (its newest migration). */
int store_sqlite_schema_version(void);

/*
 * Calls the callback registered with store_on_due(), if any, with no store
 * lock held (due_calls counts the call, so that store_on_due() can wait for
 * it). Backends call it when another process made work due (a PostgreSQL
 * NOTIFY); store.c calls it after this process's own changes.
 */
void store_due_notify(struct store *st);

/*
 * Hand-off (handoff.c), for a backend's publish. store_handoff_init/cleanup
 * set up and tear down st's ho_* fields (store_open, store_close).
 * store_handoff_take asks the registered take hook for room for a delivery
 * to endpoint_id: 1 and *gen (the registration's), *lease_ms and
 * *per_endpoint when reserved, 0 or STORE_HANDOFF_FULL (the hook's answer)
 * when not (0 when nothing is registered).
 * store_handoff_give gives one reservation back; store_handoff_deliver
 * opens the secrets of the n claims cs (taking cs whatever happens) and
 * hands them to the hook, once the publish holding them is durable. Both
 * do nothing but free when gen is no longer the registration's.
 */
void store_handoff_init(struct store *st);
void store_handoff_cleanup(struct store *st);
int store_handoff_take(struct store *st, const char *endpoint_id, uint64_t *gen, int64_t *lease_ms,
                       int *per_endpoint);
void store_handoff_give(struct store *st, uint64_t gen, const char *endpoint_id);
void store_handoff_deliver(struct store *st, uint64_t gen, struct claim *cs, size_t n);
/*
 * Between store_handoff_hold() and store_handoff_release() (on one thread;
 * holds nest) store_handoff_deliver keeps the claims, secrets open, and
 * the release hands them to the hook in one call: the publishes a sync
 * answers together wake the dispatcher once, not once each.
 */
/*
 * For a move that hands held deliveries over as it goes (an enable): 1 while
 * a dispatcher is registered; store_handoff_results() counts a batch of
 * results recorded (leases ended: room again), and store_handoff_room_wait()
 * waits up to ms for one after *seen (then updates it); 1 if one came.
 */
int store_handoff_active(struct store *st);
void store_handoff_results(struct store *st);
int store_handoff_room_wait(struct store *st, uint64_t *seen, int ms);
void store_handoff_hold(void);
void store_handoff_release(void);

/*
 * Writes the smallest id with prefix ("dlv_") whose time part is ms, so that
 * `id >= floor` selects the objects created at ms or later. Returns 0 or ERR_INVAL.
 */
int store_id_floor(const char *prefix, int64_t ms, char out[ID_MAX]);

/*
 * Splits a comma list of event types into *types (an array of n strings,
 * trimmed, empty items dropped, each at most EVENT_TYPE_MAX - 1 bytes; free
 * with store_types_free()). An empty list gives n = 0. Returns 0, ERR_INVAL
 * for an over-long type, or ERR_NOMEM.
 */
int store_types_split(const char *list, char ***types, size_t *n);
/* The endpoints.kind a type fans out to: "operational" for fluxhook's own types, else "customer".
 */
const char *store_fanout_kind(const char *type);
void store_types_free(char **types, size_t n);

/* Grows *arr (of elem-sized items, new ones zeroed) to hold at least need; 0 or ERR_NOMEM. */
int store_grow(void *arr, size_t *cap, size_t need, size_t elem);

/* "access" for TOKEN_ACCESS and so on, and back (an unknown name reads as TOKEN_ACCESS). */
const char *store_token_kind_name(enum token_kind k);
enum token_kind store_token_kind_parse(const char *s);

/*
 * Secrets at rest, for store.c's wrappers (secrets.c). secrets_seal sets
 * *out to a malloc'd copy of plain, sealed for endpoint ep_id when the store
 * has a ring (else a plain copy; NULL stays NULL). secrets_open replaces
 * *field, when sealed, by its clear text (freeing the sealed text); clear
 * text stays. Both return 0, ERR_STORE (logged: a secret that does not open,
 * or no ring for a sealed one) or ERR_NOMEM.
 */
int secrets_seal(struct store *st, const char *ep_id, const char *plain, char **out);
int secrets_open(struct store *st, const char *ep_id, char **field);
/*
 * secrets_open() of each of the n claims' secret and prev_secret. The claims
 * of one endpoint carry the same sealed values: each is opened once, at its
 * first claim, and copied for the next ones (a drain's claims are mostly one
 * endpoint's).
 */
int secrets_open_claims(struct store *st, struct claim *cs, size_t n);
/*
 * A sealed value opened for one field of a claim, with copies of its
 * endpoint and clear text, kept between calls of secrets_open_claims_memo()
 * (the hand-offs of one WAL sync: one open per endpoint, not per publish).
 * A memo keeps the last SECRETS_MEMO_N endpoints' values of each field: the
 * publishes of one sync fanned out to many endpoints interleave them.
 */
#define SECRETS_MEMO_N 32
struct secrets_memo_field {
    char ep_id[ID_MAX];
    char *sealed;
    char *plain; /* wiped by secrets_memo_clear() */
};
struct secrets_memo {
    const struct store *st;
    struct secrets_memo_field secret[SECRETS_MEMO_N], prev_secret[SECRETS_MEMO_N];
    unsigned next_secret, next_prev; /* the entry each field fills next, in turn */
};
/* secrets_open_claims(), reusing and updating m (zeroed before its first use). */
int secrets_open_claims_memo(struct store *st, struct claim *cs, size_t n, struct secrets_memo *m);
/* Frees what m holds, wiping the clear text, and zeroes it. */
void secrets_memo_clear(struct secrets_memo *m);
void store_secret_list_free(struct store_secret *rows, size_t n);

/* The delivery status named s, or -1 for an unknown name (rows of both backends). */
int store_status_parse(const char *s);

/* The nearest-rank position (1-based) of percentile p (1..100) among n values. */
int64_t store_rank(int p, int64_t n);

#endif
