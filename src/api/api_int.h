/*
 * Shared inside src/api: the request context every handler gets, the route
 * table's shape, and the reply helpers. Handlers never pick HTTP statuses for
 * errors ad hoc: they return an ERR_* through api_reply_error(), and reply.c
 * maps it in one table.
 */
#ifndef FLUXHOOK_API_API_INT_H
#define FLUXHOOK_API_API_INT_H

#include <jansson.h>
#include <stdint.h>

#include "api/api.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/id.h"

/* What a 503 asks clients to wait before trying again (the store restarting), in seconds. */
#define API_RETRY_AFTER_S "2"

#define API_MAX_BODY (256 * 1024) /* larger request bodies answer 413 */
#define API_MAX_BULK_BODY (8 * 1024 * 1024) /* the same for ROUTE_BULK routes */
#define API_MAX_PARAMS 4
#define API_DEFAULT_LIMIT 50
#define API_PARAMS_MAX 256 /* bytes for all of a request's path parameters */

/* HTTP answers by status class (1xx..5xx), for /metrics. */
struct api_counters {
    int64_t by_class[6]; /* [2] counts 2xx; updated atomically */
};

struct api_rate;

struct api_server_ctx {
    const struct api_config *cfg;
    struct store *store;
    int64_t started_at;
    struct api_counters *counters; /* owned by the server */
    struct api_guard *guard;       /* owned by the server */
    struct api_rate *rate;         /* owned by the server; NULL when rate limits are off */
};

#define API_MAX_HEADERS 6 /* extra response headers one answer may carry */

/* A response header a handler adds (WWW-Authenticate, RateLimit-*). */
struct api_resp_header {
    const char *name; /* a static string */
    char value[200];
};

/* One request. Everything it allocates hangs off it and is freed in one place. */
struct api_req {
    const struct api_server_ctx *ctx;
    void *conn;                        /* the server's request (server.c) */
    const char *method;                /* "GET" */
    const char *path;                  /* "/v1/endpoints/ep_123", without the query */
    const char *params[API_MAX_PARAMS];/* the route's {id}s, in order */
    int nparams;
    char params_buf[API_PARAMS_MAX];   /* where params point */
    struct buf body;                   /* the raw request body, capped at api_body_cap() */
    int body_too_big;                  /* 1 when the body passed its cap */
    json_t *json;                      /* the parsed body for ROUTE_JSON routes, else NULL */
    struct api_key key;                /* the caller's credential (after authentication): key,
                                          token or portal session; key.id is the actor */
    unsigned scopes;                   /* what it may do (enum api_scope bits) */
    char account_id[ID_MAX];           /* the account acted for (X-Workflux-Account for admins) */
    int on_loop;                       /* 1: runs on an HTTP loop, which must not block */

    /* The answer, filled by api_reply_*(). */
    int status;
    const char *content_type;
    struct buf out;
    char location[256];                /* Location header, or "" */
    char retry_after[16];              /* Retry-After header, or "" */
    struct api_resp_header headers[API_MAX_HEADERS];
    int nheaders;
};

typedef int api_handler_fn(struct api_req *r);

enum route_flags {
    ROUTE_PUBLIC = 1 << 0,   /* no API key needed (/healthz, /metrics, /openapi.json) */
    ROUTE_ADMIN = 1 << 1,    /* only admin keys */
    ROUTE_JSON = 1 << 2,     /* a JSON object body is required: 415 / 400 otherwise */
    ROUTE_JSON_OPT = 1 << 3, /* a JSON object body is optional (empty body = {}) */
    ROUTE_RAW = 1 << 4,      /* with ROUTE_JSON: the handler parses r->body itself (r->json NULL) */
    ROUTE_BULK = 1 << 5,     /* bodies up to API_MAX_BULK_BODY instead of API_MAX_BODY */
    ROUTE_LOOP = 1 << 6,     /* runs on the HTTP loop when the store publishes asynchronously
                                (r->on_loop): the handler never blocks, it api_suspend()s */
};

struct route {
    const char *method;   /* "GET" */
    const char *pattern;  /* "/v1/endpoints/{id}/secret/rotate": {x} matches one segment */
    api_handler_fn *fn;
    int flags;            /* enum route_flags */
    const char *summary;  /* one line, also used by /openapi.json */
    unsigned scope;       /* the enum api_scope a caller needs; 0 on a non-public route
                             means admin (a route that forgot its scope fails closed) */
};

/* --- scope.c: what a credential may do --- */

enum api_scope {
    SCOPE_EVENTS_WRITE = 1u << 0,
    SCOPE_EVENTS_READ = 1u << 1,
    SCOPE_ENDPOINTS_READ = 1u << 2,
    SCOPE_ENDPOINTS_WRITE = 1u << 3,
    SCOPE_DELIVERIES_READ = 1u << 4,
    SCOPE_DELIVERIES_WRITE = 1u << 5,
    SCOPE_ADMIN = 1u << 6, /* everything, for every account */
};
#define SCOPE_ACCOUNT 0x3fu /* every scope but admin: what an account's own key may do */
#define SCOPE_ALL 0x7fu

/* "events:write" for SCOPE_EVENTS_WRITE (one bit); NULL for anything else. */
const char *api_scope_name(unsigned bit);

/*
 * Parses a list of scope names separated by spaces or commas into *out.
 * Returns 0, or ERR_INVAL with the first unknown name in bad (badlen bytes).
 */
int api_scopes_parse(const char *list, unsigned *out, char *bad, size_t badlen);

/* Writes bits as space-separated names (the stored and OAuth form) into out. */
void api_scopes_format(unsigned bits, char *out, size_t outlen);

/* The scopes a stored key or client grants: its list, or "" = its account's (and admin). */
unsigned api_key_scopes(const struct api_key *k);

/*
 * Checks that r's credential holds rt's scope; else answers 403 naming the
 * missing scope (with WWW-Authenticate: Bearer error="insufficient_scope")
 * and returns ERR_FORBIDDEN.
 */
int api_scope_check(struct api_req *r, const struct route *rt);

/* 1 when have covers need (admin covers everything). */
int api_scopes_cover(unsigned have, unsigned need);

/* bits as a JSON array of names, a new reference. */
json_t *api_scopes_json(unsigned bits);

/*
 * Reads the optional member name of r->json, an array of scope names (or a
 * string of them), into *out (left alone when absent). Problems go to
 * fields. Returns 0 or ERR_NOMEM.
 */
int api_scopes_read(struct api_req *r, const char *name, unsigned *out, json_t *fields);

/*
 * Adds a response header (name is a static string; value printf-style).
 * Returns 0, or ERR_TOOBIG when the answer has API_MAX_HEADERS already.
 */
int api_header_add(struct api_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* api_header_add() of a decimal value, without printf: rate-limit fields go on every answer. */
int api_header_add_int(struct api_req *r, const char *name, long long v);

/* --- form.c: what OAuth clients send --- */

#define API_FORM_MAX_ITEMS 16 /* parameters one form may hold */
#define API_FORM_ID_MAX 128   /* room for a client_id or client_secret from HTTP Basic */

/* A decoded application/x-www-form-urlencoded body. */
struct api_form {
    char *buf; /* owned: the decoded names and values, NUL-separated */
    const char *names[API_FORM_MAX_ITEMS];
    const char *values[API_FORM_MAX_ITEMS];
    int n;
    const char *dup; /* the first name given twice, or NULL */
};

/*
 * Parses body (len bytes, may be NULL) as a form into f ('+' is a space,
 * %XX escapes; %00 and malformed escapes are refused). Returns 0, ERR_PARSE,
 * ERR_TOOBIG (over API_FORM_MAX_ITEMS) or ERR_NOMEM; free f with
 * api_form_free() in every case.
 */
int api_form_parse(const char *body, size_t len, struct api_form *f);
/* The value of name, or NULL. */
const char *api_form_get(const struct api_form *f, const char *name);
/* Frees what f holds and zeroes it. */
void api_form_free(struct api_form *f);

/*
 * Decodes an Authorization value "Basic base64(id:secret)" into id and
 * secret, each form-decoded (RFC 6749 §2.3.1) and shorter than
 * API_FORM_ID_MAX. Returns 0 or ERR_PARSE.
 */
int api_basic_decode(const char *h, char id[API_FORM_ID_MAX], char secret[API_FORM_ID_MAX]);

/* --- ratelimit.c: token buckets per credential and per account --- */

struct api_rate_config {
    int per_credential; /* requests per second (and burst) of one key, token or session */
    int per_account;    /* requests per second (and burst) of all of an account's credentials */
};

/* A new set of buckets. Returns 0 and *out, or ERR_NOMEM. */
int api_rate_new(const struct api_rate_config *cfg, struct api_rate **out);
void api_rate_free(struct api_rate *rl);

/*
 * Takes one request from r's credential and account buckets, adding the
 * RateLimit-* headers. When either is empty, answers 429 with Retry-After
 * and returns ERR_RATE (nothing else of the request runs). Returns 0 when
 * rate limits are off.
 */
int api_rate_check(struct api_req *r);

/* --- server.c: requests whose answer comes later --- */

/* Makes the answer of a suspended request, on its loop; returns 0 or ERR_* as a handler does. */
typedef int api_resume_fn(struct api_req *r, void *arg);

/*
 * In a handler running on the loop (r->on_loop): the answer comes later.
 * Once the handler has returned and some thread has called api_resume(r),
 * fn(r, arg) runs on the loop, exactly once (also when the client has gone:
 * the answer is then dropped), and makes the answer; it frees arg.
 */
void api_suspend(struct api_req *r, api_resume_fn *fn, void *arg);

/* Hands a suspended r back to its loop; from any thread, once. r must not be touched after. */
void api_resume(struct api_req *r);

/*
 * In a handler or check running on the loop, before anything is answered:
 * the request must block (a store write), so it runs again from the start
 * on a worker. Returns API_DEFERRED for the caller to return.
 */
int api_defer(struct api_req *r);
#define API_DEFERRED 1 /* not an error: the request moved to a worker */

/* routes.c: the table, terminated by a NULL method. */
extern const struct route api_routes[];

/* The most body bytes a request to method and path may send: API_MAX_BULK_BODY or API_MAX_BODY. */
size_t api_body_cap(const char *method, const char *path);

/*
 * Finds the route for method and path, filling r->params. Returns the route,
 * or NULL with *path_matched = 1 when the path exists for another method (405).
 */
const struct route *api_route_find(const char *method, const char *path, struct api_req *r,
                                   int *path_matched);

/*
 * Writes the methods that path answers to as "GET, POST" (for a 405's Allow
 * header) into out. Returns how many methods matched.
 */
int api_route_allow(const char *path, char *out, size_t outlen);

/* --- guard.c: deadlines for request heads and bodies, shedding idle connections --- */

struct api_guard_config {
    int head_ms;    /* a request head must arrive within this after its first byte */
    int body_ms;    /* a request body must arrive within this after its head */
    int idle_ms;    /* an idle connection (no byte of a next request) is closed after this */
    int grace_ms;   /* a late connection its loop has not closed is shut down after this */
    size_t shed_at; /* above this many open connections the oldest idle ones are shut down */
};

struct api_guard_stats {
    int64_t open;          /* connections open now */
    int64_t idle;          /* of which idle (waiting for a request) */
    int64_t shed;          /* idle connections shut down to make room, since start */
    int64_t head_timeouts; /* connections answered 408 for a late head, since start */
    int64_t body_timeouts; /* connections answered 408 for a late body, since start */
};

struct api_guard;
struct api_guard_conn;
struct http_deadline;

/* Starts a guard (and its thread). Returns 0 and *out, ERR_NOMEM or ERR_INTERNAL. */
int api_guard_new(const struct api_guard_config *cfg, struct api_guard **out);

/* Stops the thread and frees g with what it still tracks; NULL is a no-op. */
void api_guard_free(struct api_guard *g);

/*
 * Tracks a new connection on socket fd (borrowed: the guard only shuts it
 * down) and sheds idle ones if needed. When its head or body is late the
 * guard writes *late (borrowed until api_guard_conn_close(); NULL: it shuts
 * the connection down instead) and leaves the answer to the connection's
 * loop. Returns the tracking handle, or NULL when out of memory (the
 * connection is then untracked; every call below accepts NULL).
 */
struct api_guard_conn *api_guard_conn_open(struct api_guard *g, int fd, struct http_deadline *late);

/* The request head of c is complete: its body deadline starts. */
void api_guard_conn_head_done(struct api_guard *g, struct api_guard_conn *c);

/* The request body of c is complete: no deadline while it is processed and answered. */
void api_guard_conn_body_done(struct api_guard *g, struct api_guard_conn *c);

/*
 * c's request is over: it waits for the next one (idle). rx is the bytes
 * of the requests read from its socket and parsed so far: bytes received
 * beyond them begin a head.
 */
void api_guard_conn_idle(struct api_guard *g, struct api_guard_conn *c, uint64_t rx);

/* The server is closing c: forget and free it (before its socket is closed). */
void api_guard_conn_close(struct api_guard *g, struct api_guard_conn *c);

/* Counts for /metrics. */
void api_guard_stats_get(struct api_guard *g, struct api_guard_stats *out);

/* --- auth.c --- */

/*
 * Authenticates r from its Authorization header and sets r->key and
 * r->account_id (X-Workflux-Account for admin keys). On failure answers
 * 401/403/404 and returns the ERR_*.
 */
int api_auth(struct api_req *r);

/*
 * A new secret: prefix ("fhk_", "fha_", ...) + base64url of 32 random bytes,
 * into out (API_KEY_MAX bytes). Returns 0 or ERR_INTERNAL.
 */
int api_secret_new(const char *prefix, char out[API_KEY_MAX]);

/*
 * Issues a token of kind for account_id (no OAuth client) in family (NULL: a
 * new family, the token's own id) with scopes, valid until expires_at (ms);
 * stores its hash and fills *t, writing its secret to out. Returns 0 or an
 * ERR_*.
 */
int api_token_issue(struct api_req *r, enum token_kind kind, const char *account_id,
                    const char *family, unsigned scopes, int64_t expires_at, char out[API_KEY_MAX],
                    struct token *t);

/*
 * Answers 200 {data, next: null} with the account's keys (kind CRED_KEY) or
 * OAuth clients (CRED_CLIENT), without secrets. Returns 0.
 */
int api_keys_reply(struct api_req *r, const char *account_id, enum cred_kind kind);

/*
 * The base URL of this server as its clients reach it: --public-url, else
 * http:// and the request's Host. Writes it without a trailing slash.
 */
void api_base_url(struct api_req *r, char *out, size_t outlen);

/* --- reply.c --- */

/* Answers status with obj as the JSON body (steals obj). Returns 0. */
int api_reply_json(struct api_req *r, int status, json_t *obj);

/*
 * Answers status with {id, event, timestamp, deliveries} of a published
 * event: the bytes api_reply_json() gives for that object, written without
 * building it (jansson only when a string would need escaping). Returns 0.
 */
int api_reply_published(struct api_req *r, int status, const struct event *ev);

/*
 * Answers the HTTP status mapped from err (ERR_NOTFOUND -> 404, ...) with
 * {"error": {"type", "message", "fields"?}}. message is printf-style and is
 * the text users read: say what was expected. fields (stolen, may be NULL) is
 * an array of {"path", "problem"}. Returns 0.
 */
int api_reply_error(struct api_req *r, int err, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Like api_reply_error() with an explicit status and error type, for the
 * answers no ERR_* code stands for (405 "method_not_allowed"). Returns 0.
 */
int api_reply_error_status(struct api_req *r, int status, const char *type, json_t *fields,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answers status with a body of the given type (copied). Returns 0. */
int api_reply_raw(struct api_req *r, int status, const char *content_type, const void *body,
                  size_t len);

/* The HTTP status and the error type ("not_found") for an ERR_* code. */
int api_err_status(int err);
const char *api_err_type(int err);

/*
 * The "error" member of an error body, {type, message, fields?}, as a new
 * reference (NULL when out of memory). Steals fields (may be NULL).
 */
json_t *api_error_json(const char *type, json_t *fields, const char *msg);

/* --- request.c (api_query() and api_header() are in server.c) --- */

/* The value of hex digit c, either case, or -1 (form.c). */
int api_hexval(char c);

/*
 * Splits the query string s (changed in place) at '&' and the first '=',
 * decoding %XX escapes (a malformed one is kept as it is); "name" alone has
 * the value "". Fills at most max names and values, pointing into s, and
 * returns how many.
 */
int api_query_split(char *s, const char **names, const char **values, int max);

/* A query parameter, or NULL. */
const char *api_query(struct api_req *r, const char *name);
/* A request header, or NULL. */
const char *api_header(struct api_req *r, const char *name);

/*
 * Reads the page parameters ?limit= and ?after=: limit defaults to
 * API_DEFAULT_LIMIT, 1..STORE_MAX_PAGE. On a bad value, answers 400 and
 * returns ERR_INVAL (the handler then returns 0).
 */
int api_page_params(struct api_req *r, int *limit, const char **after);

/* Builds {"data": items (stolen), "next": next or null}. */
json_t *api_list_json(json_t *items, const char *next);

/*
 * Reads an optional member of r->json: string, boolean, integer. Returns 0
 * (leaving *out alone when absent or null), or answers 400/422 naming the
 * field and returns ERR_INVAL.
 */
int api_json_str(struct api_req *r, const char *name, const char **out);
int api_json_bool(struct api_req *r, const char *name, int *out);
int api_json_int(struct api_req *r, const char *name, int64_t *out);

/* --- h_endpoints.c: readers of request bodies (also driven by fuzz/fuzz_body.c) --- */

/* What an endpoint create or change asks for; strings borrowed from r->json. */
struct api_endpoint_input {
    const char *url;
    const char *description;
    char *event_types; /* owned: comma list, "" for all types; NULL when absent */
    const char *secret;
    int enabled; /* -1 when absent */
    int url_bad; /* 1: url is a string that url_check() refused */
};

/*
 * Reads the endpoint fields of r->json into in (r->ctx->cfg->allow_http
 * decides whether http:// is a problem), adding every problem to the array
 * fields. creating: url is required and secret allowed. Returns 0 or
 * ERR_NOMEM (problems are not errors here).
 */
int api_endpoint_input_read(struct api_req *r, int creating, struct api_endpoint_input *in,
                            json_t *fields);

/*
 * Reads a rotation's {grace_seconds, secret} of r->json: *grace (seconds)
 * and secret (SIGN_SECRET_MAX bytes) are set only when given and valid; a
 * secret equal to current (may be NULL) is a problem. Problems go to
 * fields. Returns 0 or ERR_NOMEM.
 */
int api_rotate_input_read(struct api_req *r, const char *current, int64_t *grace, char *secret,
                          json_t *fields);

/*
 * Reads a replay's {since (required), until, status} of r->json into *since,
 * *until (ms, 0 when absent) and *status (DELIVERY_DELIVERED or
 * DELIVERY_FAILED, -1 when absent). Problems go to fields. Returns 0 or
 * ERR_NOMEM.
 */
int api_replay_input_read(struct api_req *r, int64_t *since, int64_t *until, int *status,
                          json_t *fields);

/* --- objects.c: the API's JSON objects (CONTRACT §4 field names) --- */

json_t *api_endpoint_json(const struct endpoint *ep, int with_secret);
json_t *api_event_json(const struct event *ev);          /* {id, event, timestamp, data, ...} */
json_t *api_delivery_json(const struct delivery *d, const struct attempt *as, size_t nattempts,
                          int with_attempts);
json_t *api_attempt_json(const struct attempt *a);
json_t *api_account_json(const struct account *a);
json_t *api_key_json(const struct api_key *k, const char *secret /* shown once, or NULL */);

/*
 * An object that api_reply_json() writes as the JSON object text `text`
 * (len bytes, "{...}", spliced in byte for byte) followed by the members set
 * on the returned object afterwards. For bytes that must not be parsed and
 * re-serialized, such as an event's stored envelope: a number like 0.95
 * would come back as 0.94999999999999996. Returns a new reference, or NULL.
 */
json_t *api_json_raw_object(const char *text, size_t len);
#define API_RAW_MEMBER "\x01raw" /* where api_json_raw_object() keeps the text */

/* A time in ms as an RFC 3339 string, or JSON null for 0. */
json_t *api_time_json(int64_t ms);

/* --- h_common.c: helpers of the resource handlers --- */

/*
 * Reads path parameter i as an id with prefix ("ep_") into *out. A missing or
 * malformed id answers 404 like an unknown one ("no <what> with id ...") and
 * returns ERR_NOTFOUND (the handler then returns 0).
 */
int api_path_id(struct api_req *r, int i, const char *prefix, const char *what,
                const char **out);

/* Appends {"path", "problem" (printf-style)} to the array fields. Returns 0 or ERR_NOMEM. */
int api_field_add(json_t *fields, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * When the array *fields holds problems, answers 422 "cannot <what>: <path>:
 * <problem>" (of the first) listing them all, steals *fields (setting it to
 * NULL) and returns ERR_VALIDATION; else returns 0.
 */
int api_problems_reply(struct api_req *r, const char *what, json_t **fields);

/*
 * Checks a page cursor from api_page_params(): "" becomes NULL; anything but
 * an id with prefix answers 400 and returns ERR_INVAL.
 */
int api_cursor_param(struct api_req *r, const char *prefix, const char **after);

/*
 * Returns the id of item i of the array items (a page's cursor when it ends
 * there) and, when json is not NULL, sets *json to the item as JSON, a new
 * reference (NULL when out of memory).
 */
typedef const char *api_item_fn(const void *items, size_t i, json_t **json);

/*
 * Builds the JSON array of items 0..n-1 of items into *out (a new reference).
 * Returns 0, or ERR_NOMEM when any item or the array cannot be made: a list
 * never drops items silently.
 */
int api_items_json(const void *items, size_t n, api_item_fn *item, json_t **out);

/* How many items to ask the store for a page of limit: one more tells whether another follows. */
int api_page_fetch(int limit);

/*
 * Answers 200 {data, next} with the first limit of the n items the store
 * returned for api_page_fetch(limit); next is the id of the page's last item
 * when another page may follow. Answers 500 when out of memory. Returns 0.
 */
int api_page_reply(struct api_req *r, int limit, const void *items, size_t n, api_item_fn *item);

/*
 * One window of statistics, a new reference: {since, counts: {pending, ...},
 * deliveries, attempts, attempts_ok, success_rate (null without attempts),
 * latency_ms: {p50, p95, p99} or null}.
 */
json_t *api_stats_json(const struct stats *s, int64_t since);

/* Answers {"hour": stats, "day": stats} of the account (endpoint_id may be NULL). */
int api_stats_reply(struct api_req *r, const char *endpoint_id);

/* Answers 422 with every problem of a catalog check (events/schema.h), listed in fields. */
struct schema_report;
int api_reply_report(struct api_req *r, const struct schema_report *rep);

/* --- h_audit.c --- */

/*
 * Records a change this request made, after it succeeded: actor r->key.id
 * (the credential), account account_id (NULL: r->account_id), action
 * ("endpoint.created"), target (an id, or NULL), details (a JSON object of
 * the changed fields, never a secret; stolen, may be NULL). A failure to
 * record is logged; the change stands.
 */
void api_audit(struct api_req *r, const char *account_id, const char *action, const char *target,
               json_t *details);

#endif
