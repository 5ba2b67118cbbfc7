/*
 * Helpers shared inside src/dispatch only: the retry schedule and Retry-After
 * arithmetic (backoff.c), the address rules (addr.c) and one delivery's
 * attempt (attempt.c), its connection (conn.c) and the wire format (h1.h).
 * dispatch.c runs the threads and their loops.
 */
#ifndef FLUXHOOK_DISPATCH_DISPATCH_INT_H
#define FLUXHOOK_DISPATCH_DISPATCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "dispatch/dispatch.h"
#include "dispatch/h1.h"
#include "store/store.h"
#include "util/buf.h"

#define DISPATCH_DEFAULT_TIMEOUT_MS 15000
#define DISPATCH_DEFAULT_CONNECT_MS 5000
#define DISPATCH_DEFAULT_IN_FLIGHT 2048 /* fan-out 20 at 500 ev/s holds ~500 (dispatch.md) */
#define DISPATCH_DEFAULT_PER_ENDPOINT 64
#define DISPATCH_DEFAULT_THREADS 2
#define DISPATCH_DEFAULT_LEASE_MS 60000
#define DISPATCH_RETRY_AFTER_MAX_MS 3600000      /* Retry-After is honoured up to 1 h */
#define DISPATCH_DELAY_MAX_MS (366LL * 86400000) /* longest delay a schedule may hold */
#define DISPATCH_BODY_READ_MAX (64 * 1024)       /* response bytes read at most */
#define DISPATCH_BODY_KEEP_MAX 4096              /* response bytes kept for the log */
#define DISPATCH_HEADERS_KEEP_MAX 4096           /* response header bytes kept for the log */
#define DISPATCH_BODY_GRACE_MS 2000              /* body time after the headers came */

/* --- backoff.c: pure schedule arithmetic --- */

/*
 * The delay in ms before attempt k (0-based within a round) after the
 * previous attempt failed, given a Retry-After asking for retry_after_ms
 * (-1 when none): the schedule's delay, or the Retry-After when longer,
 * capped at DISPATCH_RETRY_AFTER_MAX_MS. Returns -1 when the round has no
 * attempt k (retries are exhausted).
 */
int64_t backoff_delay(const struct dispatch_config *cfg, int k, int64_t retry_after_ms);

/*
 * Parses a Retry-After value: delay-seconds or an HTTP date, relative to
 * now_ms. Sets *delay_ms (0 for a date in the past). Returns 0 or ERR_PARSE.
 */
int backoff_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

/* --- addr.c: the address rules --- */

struct addr_net {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char net[16]; /* network bytes, host bits cleared (4 used for AF_INET) */
    int prefix;            /* prefix length in bits */
};

struct addr_list {
    struct addr_net *nets; /* owned */
    size_t n;
};

/*
 * Parses a comma list of CIDRs ("127.0.0.0/8,fd00::/8"; a bare address is a
 * single host; NULL or "" is the empty list) into out. Returns 0, or
 * ERR_PARSE with err naming the bad item, or ERR_NOMEM.
 */
int addr_list_parse(const char *list, struct addr_list *out, char *err, size_t errlen);

/* Frees what l owns and empties it. */
void addr_list_cleanup(struct addr_list *l);

/* One entry of the address rules' table (addr.c). */
struct addr_range {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char net[16]; /* network bytes, host bits zero (4 used for AF_INET) */
    int prefix;            /* prefix length in bits */
    int global;            /* 1: the IANA registry calls it globally reachable */
    int embeds_v4;         /* 1: judged by the IPv4 address in its last 32 bits */
    const char *name;      /* the reason given when it is blocked */
};

/* The i-th entry of the table, or NULL past its end (for tests and tools). */
const struct addr_range *addr_range_get(size_t i);

/*
 * The entry with the longest prefix that holds address a (4 bytes for AF_INET,
 * 16 for AF_INET6), or NULL when none does (an ordinary public address).
 */
const struct addr_range *addr_range_find(int family, const unsigned char *a);

/*
 * Applies the address rules to a resolved address. Returns NULL when it may be
 * connected to (a public address, or one inside allow), else why it is
 * refused: the name of its addr_range ("loopback", "private network", "6to4",
 * "documentation", ...). allow may be NULL.
 */
const char *addr_check(const struct sockaddr *sa, const struct addr_list *allow);

/* Writes sa's address as text ("10.1.2.3", "::1") into out. */
void addr_format(const struct sockaddr *sa, char *out, size_t outlen);

/* --- attempt.c: one delivery's attempt --- */

enum attempt_class {
    ATTEMPT_SUCCESS, /* 2xx */
    ATTEMPT_RETRY,   /* may succeed later: 408, 429, 5xx gateway codes, transport failures */
    ATTEMPT_FAIL,    /* fails the delivery at once */
};

/* The class of an HTTP status code (CONTRACT §3). */
enum attempt_class attempt_status_class(int status);

/* How far an attempt without an HTTP answer got. */
enum attempt_phase {
    ATTEMPT_PHASE_RESOLVE,   /* no socket opened: resolving the name, or nothing began */
    ATTEMPT_PHASE_CONNECT,   /* a socket opened, no TCP connection yet */
    ATTEMPT_PHASE_HANDSHAKE, /* TCP connected, the TLS handshake not done */
    ATTEMPT_PHASE_SENT,      /* a connection, new or reused, took the request */
    ATTEMPT_PHASE_ANSWER,    /* some of an answer came, not a whole header block */
};

/*
 * The error class of an attempt that ended with curl's result rc, without a
 * complete HTTP answer, having got as far as phase. ATTEMPT_ERROR_NONE means
 * the request could not be made at all (a URL curl refuses before sending):
 * no transport failure, no retry. The address rules are not judged here.
 */
enum attempt_error_class attempt_error_classify(int rc, enum attempt_phase phase);

/* What attempts read and never change, shared by all dispatcher threads. */
struct dispatch_shared {
    struct dispatch_config cfg;
    struct addr_list allow;
    void *ca_certs; /* STACK_OF(X509_INFO) from cfg.ca_file, or NULL */
};

/*
 * Reads the PEM certificates of path for CURLOPT_SSL_CTX_FUNCTION into *out
 * (a STACK_OF(X509_INFO)). Returns 0, ERR_IO when unreadable or ERR_PARSE
 * when it holds no certificate (both logged).
 */
int attempt_ca_load(const char *path, void **out);

/* Frees what attempt_ca_load() made; NULL is a no-op. */
void attempt_ca_free(void *certs);

struct conn;

/* One attempt under way. */
struct attempt_ctx {
    struct claim c;                   /* owned */
    const struct dispatch_shared *sh; /* borrowed */
    struct h1_url url;                /* c.url in parts */
    struct buf req;                   /* the whole request: head, then body */
    size_t sent;                      /* bytes of req sent */
    struct h1_parser parser;          /* of the answer */
    struct conn *conn;                /* the connection carrying it, or NULL */
    CURL *easy;                       /* conn's handle while it has one, for curl's timings */
    int retried;                      /* 1 once a stale reused connection was replaced */
    int started;                      /* 1 while counted in the dispatcher's in_flight */
    int os_errno;                     /* errno of a failed send or receive, 0 when none */
    int64_t deadline_mono;            /* when the whole attempt times out */
    int64_t started_ms;               /* wall clock, for the log */
    int64_t started_mono;
    int status_code;  /* of the latest status line, 0 before one */
    int headers_done; /* 1 once a final header block ended */
    int64_t headers_done_mono;
    char retry_after[64]; /* Retry-After of the final response, "" when none */
    int opened;           /* 1 once a socket was opened for it */
    int ready;            /* 1 once a connection (new or reused) was ready for the request */
    int answered;         /* 1 once any byte of an answer came */
    int blocked;          /* 1 when the address rules refused a target */
    char blocked_addr[64];
    const char *blocked_why;
    struct buf body;  /* the first DISPATCH_BODY_KEEP_MAX bytes */
    struct buf req_headers;  /* the request's header lines as sent, CRLF after each */
    struct buf resp_headers; /* the final answer's header lines, at most DISPATCH_HEADERS_KEEP_MAX */
    size_t body_seen; /* bytes read */
    char errbuf[CURL_ERROR_SIZE];
    char *error;                     /* why it failed, owned, or NULL */
    char reason[192];                /* why the endpoint is disabled */
    int *grace_count;                /* the thread's count of headers_done attempts */
    struct attempt_ctx *prev, *next; /* the thread's list of attempts under way */
};

/*
 * Prepares an attempt of claim c (whose strings it takes, leaving c's pointers
 * NULL) at wall time now_ms: its signed request, ready to send. Returns 0
 * and *out, or ERR_* for a claim that cannot be attempted at all; then *out
 * is still set, with its error, and must be finished without a connection.
 */
int attempt_ctx_new(struct claim *c, const struct dispatch_shared *sh, int64_t now_ms,
                    struct attempt_ctx **out);

/*
 * Takes one line of the receiver's answer head as h1.c's parser hands it over (len
 * bytes of p, not NUL-terminated, with its CRLF): a status line sets the
 * status code (0 when it has no three digits) and forgets an earlier
 * Retry-After and header lines, an empty line ends a header block (a final
 * one once the status is 200 or more), a Retry-After header is kept (cut to
 * fit), and every header line is kept for the log while it fits
 * DISPATCH_HEADERS_KEEP_MAX (bytes outside printable ASCII read as '?').
 * Other lines, and every line after the final block (trailers), are
 * ignored. The header callback's work, apart for the fuzzer.
 */
void attempt_header_line(struct attempt_ctx *ctx, const char *p, size_t len);

/*
 * Takes len bytes of the answer's body: the first DISPATCH_BODY_KEEP_MAX are
 * kept for the log. Returns 0, or -1 once more than DISPATCH_BODY_READ_MAX
 * came (reading stops; the status line still decides).
 */
int attempt_body_bytes(struct attempt_ctx *ctx, const char *p, size_t len);

/*
 * Decides the outcome of a finished attempt (rc: a curl code saying how the
 * transfer ended (conn.c maps its own failures to curl's codes), or -1 when
 * it was never started, or -2 when it was cut short after its headers) and
 * fills r, whose pointers stay owned by ctx. *outcome gets the metric class:
 * 0 success, 1 retry, 2 failed, 3 blocked.
 */
void attempt_ctx_finish(struct attempt_ctx *ctx, int rc, int64_t now_ms, int64_t now_mono,
                        struct attempt_result *r, int *outcome);

/* Frees ctx and what it owns; its connection must be released first. NULL is a no-op. */
void attempt_ctx_free(struct attempt_ctx *ctx);

/*
 * Frees what a finished ctx owns but its memory and its buffers' (each
 * emptied, or freed when it grew past 16 KiB), for attempt_ctx_renew():
 * an attempt's context and its request are too large for malloc's
 * per-thread cache, so a new one for each delivery cost more than the rest
 * of the allocations of its request. Its connection must be released first.
 */
void attempt_ctx_recycle(struct attempt_ctx *ctx);

/* As attempt_ctx_new() (*out being ctx), in ctx that attempt_ctx_recycle() emptied. */
int attempt_ctx_renew(struct attempt_ctx *ctx, struct claim *c, const struct dispatch_shared *sh,
                      int64_t now_ms);

/* --- conn.c: connections to receivers, and the requests on them --- */

/*
 * An attempt ended (rc as for attempt_ctx_finish()); the callee finishes it
 * and then calls conn_release().
 */
typedef void conn_ended_fn(void *arg, struct attempt_ctx *ctx, int rc);

/*
 * One dispatcher thread's connections. curl opens them (DNS, connect with the
 * address rules, TLS with the --ca-file CAs) as CONNECT_ONLY transfers on the
 * thread's multi handle; the requests and answers on them are ours (h1.c),
 * driven from the thread's epoll. Idle ones are kept per origin.
 */
struct conn_loop {
    const struct dispatch_shared *sh;
    CURLM *multi;           /* borrowed */
    int epfd;               /* borrowed: the loop's epoll */
    struct conn **by_fd;    /* connections by socket, for epoll's events */
    size_t nfd;
    struct conn *idle;      /* idle connections, most recently used first */
    int nidle;
    int max_idle;
    CURL **spare;           /* set-up easy handles without a connection */
    int nspare;
    int max_spare;
    int64_t next_deadline;  /* mono ms: conn_sweep() is due then (INT64_MAX: never) */
    conn_ended_fn *ended;
    void *arg;
};

/* The epoll data of a connection's socket fd: tells it apart from curl's sockets. */
#define CONN_EPOLL_TAG ((uint64_t)1 << 32)

/* Prepares l for up to cap attempts at once. Returns 0 or ERR_NOMEM. */
int conn_loop_init(struct conn_loop *l, const struct dispatch_shared *sh, CURLM *multi, int epfd,
                   int cap, conn_ended_fn *ended, void *arg);

/* Closes l's idle connections and frees its handles (before the multi is cleaned up). */
void conn_loop_cleanup(struct conn_loop *l);

/*
 * Starts ctx's request on an idle connection to its origin or on a new one.
 * l->ended may be called for ctx before this returns. Returns 0, or ERR_*
 * with ctx->error set when it could not start (ctx is then not started).
 */
int conn_start(struct conn_loop *l, struct attempt_ctx *ctx);

/* curl ended the connect of easy (a CURLMSG_DONE) with result rc. */
void conn_connected(struct conn_loop *l, CURL *easy, int rc);

/* epoll says the socket fd of a connection is ready. */
void conn_ready(struct conn_loop *l, int fd, uint32_t events);

/* 1 when s is a connection's socket that l drives (not curl). */
int conn_owns(const struct conn_loop *l, int s);

/*
 * Ends, with CURLE_OPERATION_TIMEDOUT, each attempt of the list at head
 * (linked by next) that is past its deadline with its request on a
 * connection (curl times out connects), and sets l->next_deadline. The
 * ended callback may unlink them.
 */
void conn_sweep(struct conn_loop *l, struct attempt_ctx *head, int64_t now_mono);

/*
 * Lets go of ctx's connection: kept idle when its answer was complete and
 * the connection may carry another request, else closed. NULL-safe.
 */
void conn_release(struct conn_loop *l, struct attempt_ctx *ctx);

#endif
