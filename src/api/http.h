/*
 * fluxhook's own HTTP/1.1 server: epoll loops holding every connection, a
 * strict request-head parser, bodies by Content-Length or chunked under a
 * cap checked as each size is read, keep-alive and pipelining (answers in
 * order), and a pool of workers that run requests whose handlers may block.
 * The server (server.c) sees complete requests only, through struct
 * http_handler; every error answer this module makes itself comes from the
 * handler's error callback, so it has the API's JSON error body.
 */
#ifndef FLUXHOOK_API_HTTP_H
#define FLUXHOOK_API_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HTTP_MAX_URI (4 * 1024)   /* longer request targets answer 414 */
#define HTTP_MAX_HEAD (12 * 1024) /* larger request heads answer 431 */
#define HTTP_MAX_FIELDS 100       /* more header fields answer 431 */

struct http_field {
    const char *name;  /* as sent (a token) */
    const char *value; /* without surrounding blanks */
};

/* A parsed request head; every string points into the buffer it was parsed from. */
struct http_head {
    const char *method;
    const char *path;  /* the target up to '?' */
    const char *query; /* after '?', or "" */
    int minor;         /* HTTP/1.minor: 0 or 1 */
    struct http_field fields[HTTP_MAX_FIELDS];
    int nfields;
    int chunked;         /* Transfer-Encoding: chunked */
    uint64_t length;     /* Content-Length, or 0 */
    int keep_alive;      /* the client may send another request on the connection */
    int expect_continue; /* Expect: 100-continue */
};

/*
 * Parses the request head buf[0..len) in place (lines end with CRLF; the
 * empty line that ends the head is included or not). Refuses what a proxy
 * could frame differently: more than one Content-Length, Content-Length with
 * Transfer-Encoding, a coding other than chunked, obsolete line folding,
 * bare LF, a field line without a colon or with a name that is not a token.
 * Returns 0, or the HTTP status to answer (400, 414, 431, 505) with err
 * (errlen bytes) saying what was expected and *type the error type.
 */
int http_head_parse(char *buf, size_t len, struct http_head *h, const char **type, char *err,
                    size_t errlen);

/* The first field called name (any case), or NULL. */
const char *http_head_field(const struct http_head *h, const char *name);

/* One request on a connection and its answer. */
struct http_exchange {
    struct http_head head;
    void *user;       /* the handler's request (set by head_fn), or NULL */
    struct buf *body; /* where the body goes (set by head_fn; its cap is the body's),
                         or NULL: the body is read and dropped */
    int run_inline;   /* 1 (set by head_fn): run on the loop thread, not a worker */
    int close;        /* 1: answer with Connection: close and close after */
    int suspended;    /* http_exchange_suspend() was called: the answer comes later */
    int defer;        /* http_exchange_defer() was called: run again on a worker */

    /* The answer, made by http_answer_*(). */
    int status;
    struct buf hdrs;  /* header lines, each ending with CRLF */
    const void *data; /* the body */
    size_t len;
    void (*data_free)(void *); /* frees data_owned after sending, or NULL */
    void *data_owned;

    /* The connection's (http.c only). */
    struct http_conn *conn;
    char *head_buf; /* in x's own allocation, after it */
    struct http_exchange *next;
};

/* What the server does with requests. Callbacks may run on any loop or worker thread. */
struct http_handler {
    /*
     * A head has arrived: set x->user, x->body, x->run_inline. Returns 0 to
     * read the body and run x, or 1 when it has answered already (x->close
     * set: the body is not read).
     */
    int (*head_fn)(void *arg, struct http_exchange *x);
    /* The body is complete (or refused): make the answer. */
    void (*run_fn)(void *arg, struct http_exchange *x);
    /*
     * The module refuses the request itself: make the answer for status with
     * the error type and message. x->user may be NULL (no head_fn yet).
     */
    void (*error_fn)(void *arg, struct http_exchange *x, int status, const char *type,
                     const char *msg);
    /* x is over (answered, or its connection gone): free x->user. */
    void (*done_fn)(void *arg, struct http_exchange *x);
    /*
     * A suspended x was resumed (http_exchange_resume()): make the answer.
     * Runs on x's loop, once, also when the connection closed meanwhile
     * (the answer is then dropped). NULL when run_fn never suspends.
     */
    void (*resume_fn)(void *arg, struct http_exchange *x);
    void *arg;
};

/*
 * A connection's missed deadline, written by the guard's thread (conn_open
 * hands it over): the connection's loop, which alone writes to its socket,
 * then answers 408 and closes it if its request is still being read.
 */
struct http_deadline {
    int ms;    /* the deadline missed */
    int stage; /* 0 until missed, then HTTP_LATE_HEAD or HTTP_LATE_BODY; stored after ms */
};

#define HTTP_LATE_HEAD 1
#define HTTP_LATE_BODY 2

struct http_config {
    int threads;            /* epoll loops; 0: one loop that runs every request itself */
    int workers;            /* threads running requests that are not run_inline */
    unsigned int max_conns; /* connections at once; past it a new one is closed at once */
    int per_ip;             /* connections at once from one address; 0: no cap */
    /*
     * Connection events for the guard (guard.c); any may be NULL. conn_idle
     * gets the bytes read from the socket and parsed so far (not those of a
     * pipelined request it holds); conn_open the connection's deadline
     * record, valid until conn_close returns.
     */
    void *(*conn_open)(void *arg, int fd, struct http_deadline *late);
    void (*conn_head)(void *arg, void *gc);
    void (*conn_body)(void *arg, void *gc);
    void (*conn_idle)(void *arg, void *gc, uint64_t rx);
    void (*conn_close)(void *arg, void *gc);
    void *conn_arg;
};

struct http_server;
struct sockaddr;

/*
 * A non-blocking socket bound to sa (len bytes) and listening with backlog,
 * for http_server_start(); *port (may be NULL) is the port bound. Returns the
 * socket, or -1 with errno set.
 */
int http_listen_socket(const struct sockaddr *sa, unsigned int len, int backlog, int *port);

/* Starts serving on the bound, listening socket fd (taken). Returns 0, ERR_NOMEM or ERR_INTERNAL.
 */
int http_server_start(const struct http_config *cfg, const struct http_handler *h, int fd,
                      struct http_server **out);

/*
 * Stops accepting, runs what the workers hold, waits for suspended
 * exchanges to be resumed, closes every connection, frees; NULL is a no-op.
 */
void http_server_stop(struct http_server *s);

/* A head_fn for servers that read no body: x runs inline, its body is read and dropped. */
int http_head_inline_drop(void *arg, struct http_exchange *x);

/* An error_fn that answers the status alone, without a body. */
void http_error_bare(void *arg, struct http_exchange *x, int status, const char *type,
                     const char *msg);

/*
 * In run_fn of an exchange run on its loop (run_inline): x's answer comes
 * later. The connection stays busy (a pipelined request waits), and once
 * some thread calls http_exchange_resume(x), the loop calls resume_fn and
 * sends the answer. A connection closed meanwhile is freed only after that.
 */
void http_exchange_suspend(struct http_exchange *x);

/*
 * Hands a suspended x back to its loop; from any thread, exactly once per
 * suspension. x must not be touched after (its loop may free it at once).
 */
void http_exchange_resume(struct http_exchange *x);

/*
 * In run_fn of an exchange run on its loop, before anything is answered:
 * run x on a worker instead (run_fn is called again there, run_inline 0),
 * for a request that found it must block.
 */
void http_exchange_defer(struct http_exchange *x);

/* Begins x's answer with status (resets what was made before). */
void http_answer_start(struct http_exchange *x, int status);

/* Adds a header line to x's answer; values with CR or LF are dropped. */
void http_answer_header(struct http_exchange *x, const char *name, const char *value);

/* Sets x's body: data (len bytes), freed with free_fn(data) after sending when free_fn is set. */
void http_answer_body(struct http_exchange *x, const void *data, size_t len,
                      void (*free_fn)(void *));

#endif
