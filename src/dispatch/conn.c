/*
 * Connections to receivers and the requests on them. curl opens a connection
 * (its threaded resolver, the address rules in the open-socket callback, TLS
 * with our CAs, never a proxy) as a CONNECT_ONLY transfer on the thread's
 * multi handle; then the prepared request goes out in one send and the answer
 * is read into h1.c's parser from the thread's own epoll. Plain connections
 * are read and written with send(2) and recv(2) on curl's socket; TLS ones
 * through curl_easy_send() and curl_easy_recv(). Idle connections are kept
 * per origin; a request on a reused connection that fails before any byte of
 * an answer came is sent once more on a fresh connection, since the receiver
 * may have closed the idle connection just as it was reused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dispatch/dispatch_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define CONN_IDLE_MAX_MS 60000 /* an idle connection older than this is closed, not reused */
#define CONN_PEEK_AFTER_MS 1000 /* an idle connection is looked at before reuse past this */
#define CONN_READ_CHUNK 16384   /* bytes read at once */

struct conn {
    CURL *easy;               /* owned: in l->multi, holding the connection */
    int fd;                   /* the socket once connected, -1 before */
    int tls;                  /* 1: read and written through curl */
    int reused;               /* 1: it carried a request before this one */
    uint32_t watch;           /* the events epoll watches, 0 when not registered */
    char *origin;             /* owned: "scheme://authority" of its URL */
    size_t origin_len;
    int64_t idle_since;       /* mono ms it became idle */
    struct attempt_ctx *ctx;  /* the attempt on it, NULL when idle */
    struct conn *prev, *next; /* l->idle */
    char errbuf[CURL_ERROR_SIZE];
};

/*
 * Adds the --ca-file certificates to the trust store curl set up from the
 * system CAs, so both are trusted at once. Adding a certificate that is
 * there already (a store shared between connections) is harmless.
 */
static CURLcode
ssl_ctx_cb(CURL *easy, void *sslctx, void *arg)
{
    const struct dispatch_shared *sh = arg;
    STACK_OF(X509_INFO) *infos = sh->ca_certs;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);
    X509_INFO *info;
    int i;

    (void)easy;
    for (i = 0; i < sk_X509_INFO_num(infos); i++) {
        info = sk_X509_INFO_value(infos, i);
        if (info->x509 != NULL)
            X509_STORE_add_cert(store, info->x509);
    }
    ERR_clear_error();
    return CURLE_OK;
}

/*
 * Called by curl after DNS, for each address it is about to connect to: the
 * address rules apply here, so a name that resolves (or rebinds) to a
 * blocked address is refused whatever the URL said.
 */
static curl_socket_t
open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct attempt_ctx *ctx = arg;
    const char *why;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    why = addr_check(&a->addr, &ctx->sh->allow);
    if (why != NULL) {
        ctx->blocked = 1;
        ctx->blocked_why = why;
        addr_format(&a->addr, ctx->blocked_addr, sizeof(ctx->blocked_addr));
        return CURL_SOCKET_BAD;
    }
    ctx->opened = 1;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int
conn_loop_init(struct conn_loop *l, const struct dispatch_shared *sh, CURLM *multi, int epfd,
               int cap, conn_ended_fn *ended, void *arg)
{
    memset(l, 0, sizeof(*l));
    l->sh = sh;
    l->multi = multi;
    l->epfd = epfd;
    l->max_idle = cap;
    l->max_spare = cap;
    l->next_deadline = INT64_MAX;
    l->ended = ended;
    l->arg = arg;
    l->spare = calloc((size_t)cap, sizeof(*l->spare));
    return l->spare == NULL ? ERR_NOMEM : 0;
}

int
conn_owns(const struct conn_loop *l, int s)
{
    return s >= 0 && (size_t)s < l->nfd && l->by_fd[s] != NULL;
}

/* Watches c's socket for events (0: none); returns 0 or -1 (logged). */
static int
watch(struct conn_loop *l, struct conn *c, uint32_t events)
{
    struct epoll_event ev;
    int op;

    if (c->watch == events)
        return 0;
    if (events == 0) {
        (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->watch = 0;
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = CONN_EPOLL_TAG | (uint32_t)c->fd;
    op = c->watch != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, c->fd, &ev) != 0) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(l->epfd, op, c->fd, &ev) != 0) {
            log_warn("dispatch: cannot watch a connection");
            return -1;
        }
    }
    c->watch = events;
    return 0;
}

/* Records c under its socket. Returns 0 or ERR_NOMEM. */
static int
fd_set_conn(struct conn_loop *l, struct conn *c)
{
    struct conn **grown;
    size_t n;

    if ((size_t)c->fd >= l->nfd) {
        n = l->nfd > 0 ? l->nfd : 64;
        while (n <= (size_t)c->fd)
            n *= 2;
        grown = realloc(l->by_fd, n * sizeof(*grown));
        if (grown == NULL)
            return ERR_NOMEM;
        memset(grown + l->nfd, 0, (n - l->nfd) * sizeof(*grown));
        l->by_fd = grown;
        l->nfd = n;
    }
    l->by_fd[c->fd] = c;
    return 0;
}

static void
idle_unlink(struct conn_loop *l, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    l->nidle--;
}

/* Closes c (idle or not; its attempt, if any, must have let go) and frees it. */
static void
conn_close(struct conn_loop *l, struct conn *c)
{
    if (c->fd >= 0) {
        (void)watch(l, c, 0);
        if ((size_t)c->fd < l->nfd)
            l->by_fd[c->fd] = NULL;
    }
    /* A CONNECT_ONLY handle taken out of its multi closes its connection. */
    curl_multi_remove_handle(l->multi, c->easy);
    /* Nothing of c's or of an attempt's stays pointed to by the handle. */
    (void)curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, NULL);
    (void)curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, NULL);
    (void)curl_easy_setopt(c->easy, CURLOPT_PRIVATE, NULL);
    if (l->nspare < l->max_spare)
        l->spare[l->nspare++] = c->easy;
    else
        curl_easy_cleanup(c->easy);
    free(c->origin);
    free(c);
}

/*
 * Sets one option unless an earlier one failed, remembering which option
 * failed: every option matters (CURLOPT_PROTOCOLS_STR and CURLOPT_PROXY are
 * security checks), so none may fail unnoticed.
 */
#define EASY_SET(opt, val)                                                                         \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(e, opt, val);                                                    \
            failed = #opt;                                                                         \
        }                                                                                          \
    } while (0)

/* A new easy handle with the options every connection of l has. */
static CURL *
easy_new(struct conn_loop *l, const char **failed_opt, CURLcode *res)
{
    const struct dispatch_config *cfg = &l->sh->cfg;
    const char *failed = "";
    CURLcode rc = CURLE_OK;
    CURL *e = curl_easy_init();

    if (e == NULL) {
        *failed_opt = "a handle";
        *res = CURLE_OUT_OF_MEMORY;
        return NULL;
    }
    EASY_SET(CURLOPT_NOSIGNAL, 1L);
    EASY_SET(CURLOPT_CONNECT_ONLY, 1L);
    EASY_SET(CURLOPT_PROTOCOLS_STR, cfg->allow_http ? "http,https" : "https");
    EASY_SET(CURLOPT_FOLLOWLOCATION, 0L);
    EASY_SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    EASY_SET(CURLOPT_OPENSOCKETFUNCTION, open_cb);
    EASY_SET(CURLOPT_TCP_NODELAY, 1L);
    if (l->sh->ca_certs != NULL) {
        EASY_SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        EASY_SET(CURLOPT_SSL_CTX_DATA, (void *)l->sh);
    }
    if (rc != CURLE_OK) {
        curl_easy_cleanup(e);
        *failed_opt = failed;
        *res = rc;
        return NULL;
    }
    return e;
}

/*
 * Opens a new connection for ctx: a CONNECT_ONLY transfer of its URL on l's
 * multi. Returns 0, or ERR_* with ctx->error set.
 */
static int
conn_open(struct conn_loop *l, struct attempt_ctx *ctx, int64_t now_mono)
{
    const struct dispatch_config *cfg = &l->sh->cfg;
    int64_t left = ctx->deadline_mono - now_mono;
    long connect_ms = (long)cfg->connect_timeout_ms;
    const char *failed = "";
    struct conn *c;
    CURLcode rc = CURLE_OK;
    char why[160];
    CURL *e;

    if (left < 1)
        left = 1;
    if (connect_ms > (long)left)
        connect_ms = (long)left;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    c->fd = -1;
    c->tls = ctx->url.https;
    c->origin = malloc(ctx->url.origin_len + 1);
    if (c->origin == NULL)
        goto nomem;
    memcpy(c->origin, ctx->url.origin, ctx->url.origin_len);
    c->origin[ctx->url.origin_len] = '\0';
    c->origin_len = ctx->url.origin_len;
    e = l->nspare > 0 ? l->spare[--l->nspare] : easy_new(l, &failed, &rc);
    if (e == NULL)
        goto refused;
    c->easy = e;
    /* The connection's own: its target and where callbacks write. */
    EASY_SET(CURLOPT_URL, ctx->c.url);
    EASY_SET(CURLOPT_TIMEOUT_MS, (long)left);
    EASY_SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    EASY_SET(CURLOPT_OPENSOCKETDATA, ctx);
    EASY_SET(CURLOPT_ERRORBUFFER, c->errbuf);
    EASY_SET(CURLOPT_PRIVATE, c);
    if (rc != CURLE_OK) {
        curl_easy_cleanup(e); /* half set up: not kept */
        goto refused;
    }
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        failed = "";
        goto refused;
    }
    c->ctx = ctx;
    ctx->conn = c;
    ctx->easy = e;
    ctx->ready = 0;
    return 0;
nomem:
    if (c != NULL)
        free(c->origin);
    free(c);
    free(ctx->error);
    ctx->error = strdup("internal: out of memory opening a connection");
    return ERR_NOMEM;
refused:
    free(c->origin);
    free(c);
    free(ctx->error);
    if (failed[0] != '\0') {
        snprintf(why, sizeof(why), "internal: cannot set %s: %s", failed, curl_easy_strerror(rc));
        ctx->error = strdup(why);
    } else {
        ctx->error = strdup("internal: cannot start the transfer");
    }
    return ERR_INTERNAL;
}

#undef EASY_SET

/* Ends ctx's attempt with rc (l->ended finishes it and releases its connection). */
static void
end(struct conn_loop *l, struct attempt_ctx *ctx, int rc)
{
    l->ended(l->arg, ctx, rc);
}

/*
 * Whether an idle connection may carry a request: not once it is too old, and
 * not when the receiver closed it or sent something unasked (a plain one is
 * then out of step; a TLS one may get a session ticket, which curl takes).
 */
static int
idle_alive_tls(struct conn *c)
{
    char b[1];
    size_t n = 0;

    return curl_easy_recv(c->easy, b, sizeof(b), &n) == CURLE_AGAIN;
}

static int
idle_usable(struct conn *c, int64_t now_mono)
{
    char b[1];
    ssize_t r;

    if (now_mono - c->idle_since > CONN_IDLE_MAX_MS)
        return 0;
    if (now_mono - c->idle_since < CONN_PEEK_AFTER_MS)
        return 1; /* the epoll watch closes it when the receiver does */
    if (c->tls)
        return idle_alive_tls(c);
    r = recv(c->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The most recently used idle connection to origin that may carry a request, or NULL. */
static struct conn *
idle_take(struct conn_loop *l, const char *origin, size_t len, int64_t now_mono)
{
    struct conn *c;
    struct conn *next;

    for (c = l->idle; c != NULL; c = next) {
        next = c->next;
        if (c->origin_len != len || memcmp(c->origin, origin, len) != 0)
            continue;
        idle_unlink(l, c);
        if (idle_usable(c, now_mono))
            return c;
        conn_close(l, c);
    }
    return NULL;
}

static void io(struct conn_loop *l, struct conn *c);

/* Puts ctx's request on c, connected: from now on l's deadline covers it. */
static void
begin(struct conn_loop *l, struct conn *c, struct attempt_ctx *ctx)
{
    c->ctx = ctx;
    ctx->conn = c;
    ctx->easy = c->easy;
    ctx->ready = 1;
    if (ctx->deadline_mono < l->next_deadline)
        l->next_deadline = ctx->deadline_mono;
    io(l, c);
}

int
conn_start(struct conn_loop *l, struct attempt_ctx *ctx)
{
    int64_t now_mono = clock_mono_ms();
    struct conn *c;

    ctx->deadline_mono = ctx->started_mono + ctx->sh->cfg.attempt_timeout_ms;
    c = idle_take(l, ctx->url.origin, ctx->url.origin_len, now_mono);
    if (c == NULL)
        return conn_open(l, ctx, now_mono);
    c->reused = 1;
    begin(l, c, ctx);
    return 0;
}

/*
 * The request on c failed with rc before any byte of an answer: on a reused
 * connection, for the first time, it goes out again on a fresh one.
 */
static void
fail_unanswered(struct conn_loop *l, struct conn *c, int rc)
{
    struct attempt_ctx *ctx = c->ctx;

    if (!c->reused || ctx->retried || ctx->answered) {
        end(l, ctx, rc);
        return;
    }
    ctx->retried = 1;
    ctx->conn = NULL;
    ctx->easy = NULL;
    ctx->sent = 0;
    ctx->os_errno = 0;
    c->ctx = NULL;
    conn_close(l, c);
    if (conn_open(l, ctx, clock_mono_ms()) != 0)
        end(l, ctx, rc);
}

void
conn_connected(struct conn_loop *l, CURL *easy, int rc)
{
    struct attempt_ctx *ctx;
    struct conn *c = NULL;
    curl_socket_t s = CURL_SOCKET_BAD;
    size_t n;

    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c) != CURLE_OK || c == NULL)
        return;
    ctx = c->ctx;
    if (rc == CURLE_OK && (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK ||
                           s == CURL_SOCKET_BAD))
        rc = CURLE_COULDNT_CONNECT;
    if (rc == CURLE_OK) {
        c->fd = (int)s;
        /*
         * Sending ties the connection to its handle, so curl counts it in
         * use and its cache never prunes it under us: a plain one, written
         * with send(2), gets a zero-byte curl_easy_send() (CURLE_AGAIN) for
         * that; a TLS one gets the request through curl at once.
         */
        if (!c->tls && curl_easy_send(easy, "", 0, &n) != CURLE_AGAIN)
            rc = CURLE_SEND_ERROR;
        else if (fd_set_conn(l, c) != 0 || watch(l, c, EPOLLIN) != 0)
            rc = CURLE_OUT_OF_MEMORY;
    }
    if (rc != CURLE_OK) {
        memcpy(ctx->errbuf, c->errbuf, sizeof(ctx->errbuf));
        end(l, ctx, rc);
        return;
    }
    begin(l, c, ctx);
}

/* Sends what is left of ctx's request; returns 0, 1 (the socket is full) or a curl error. */
static int
send_rest(struct conn *c, struct attempt_ctx *ctx)
{
    const char *p;
    size_t n;
    ssize_t r;
    CURLcode rc;

    while (ctx->sent < ctx->req.len) {
        p = ctx->req.data + ctx->sent;
        n = ctx->req.len - ctx->sent;
        if (c->tls) {
            rc = curl_easy_send(c->easy, p, n, &n);
            if (rc == CURLE_AGAIN)
                return 1;
            if (rc != CURLE_OK)
                return rc;
        } else {
            r = send(c->fd, p, n, MSG_NOSIGNAL);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 1;
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                ctx->os_errno = errno;
                return CURLE_SEND_ERROR;
            }
            n = (size_t)r;
        }
        ctx->sent += n;
    }
    return 0;
}

static void
sink_line(void *arg, const char *p, size_t len)
{
    attempt_header_line(arg, p, len);
}

static int
sink_body(void *arg, const char *p, size_t len)
{
    return attempt_body_bytes(arg, p, len);
}

/* The curl code an answer the parser refused ends with. */
static int
parse_error_rc(const struct attempt_ctx *ctx, enum h1_result r)
{
    if (r == H1_STOPPED)
        return CURLE_WRITE_ERROR;
    if (ctx->headers_done)
        return CURLE_RECV_ERROR; /* the status line decides whatever the body did */
    if (r == H1_BAD_STATUS)
        return CURLE_UNSUPPORTED_PROTOCOL;
    return CURLE_WEIRD_SERVER_REPLY;
}

/*
 * The connection closed after what came: a complete answer, one cut short
 * (the status decides when its head ended), or none.
 */
static void
at_eof(struct conn_loop *l, struct conn *c, struct attempt_ctx *ctx)
{
    const struct buf *part = &ctx->parser.part;
    size_t n;

    if (h1_parse_eof(&ctx->parser) == H1_COMPLETE) {
        end(l, ctx, CURLE_OK);
        return;
    }
    if (!ctx->answered) {
        fail_unanswered(l, c, CURLE_GOT_NOTHING);
        return;
    }
    if (ctx->headers_done) {
        end(l, ctx, CURLE_PARTIAL_FILE);
        return;
    }
    /* A first line that never ended: cut short if it began as a status line does. */
    n = part->len < 5 ? part->len : 5;
    if (ctx->parser.in_head == 0 && memcmp(part->data != NULL ? part->data : "", "HTTP/", n) != 0)
        end(l, ctx, CURLE_UNSUPPORTED_PROTOCOL);
    else
        end(l, ctx, CURLE_OK); /* closed in the middle of the head */
}

/* Reads what came on c into its attempt's parser, until the socket has no more. */
static void
read_answer(struct conn_loop *l, struct conn *c, struct attempt_ctx *ctx)
{
    const struct h1_sink sink = {sink_line, sink_body, ctx};
    char b[CONN_READ_CHUNK];
    enum h1_result r;
    ssize_t got;
    size_t n;
    CURLcode rc;

    for (;;) {
        if (c->tls) {
            n = 0;
            rc = curl_easy_recv(c->easy, b, sizeof(b), &n);
            if (rc == CURLE_AGAIN)
                return;
            if (rc != CURLE_OK) {
                if (ctx->answered)
                    end(l, ctx, ctx->headers_done ? CURLE_PARTIAL_FILE : CURLE_RECV_ERROR);
                else
                    fail_unanswered(l, c, CURLE_RECV_ERROR);
                return;
            }
        } else {
            got = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                ctx->os_errno = errno;
                if (ctx->answered)
                    end(l, ctx, ctx->headers_done ? CURLE_PARTIAL_FILE : CURLE_RECV_ERROR);
                else
                    fail_unanswered(l, c, CURLE_RECV_ERROR);
                return;
            }
            n = (size_t)got;
        }
        if (n == 0) {
            at_eof(l, c, ctx);
            return;
        }
        ctx->answered = 1;
        r = h1_parse(&ctx->parser, b, n, &sink);
        if (r == H1_COMPLETE) {
            end(l, ctx, CURLE_OK);
            return;
        }
        if (r != H1_MORE) {
            end(l, ctx, parse_error_rc(ctx, r));
            return;
        }
        /* A plain socket that gave less than asked has nothing more now. */
        if (!c->tls && n < sizeof(b))
            return;
    }
}

/* Moves c's attempt on: sends what is left of the request, reads what came. */
static void
io(struct conn_loop *l, struct conn *c)
{
    struct attempt_ctx *ctx = c->ctx;
    int rc;

    if (ctx->sent < ctx->req.len) {
        rc = send_rest(c, ctx);
        if (rc > 1) {
            fail_unanswered(l, c, rc);
            return;
        }
        if (watch(l, c, rc == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN) != 0) {
            end(l, ctx, CURLE_OUT_OF_MEMORY);
            return;
        }
        /*
         * Sent just now: the answer cannot have come yet, so epoll says
         * when it does rather than a read that finds nothing.
         */
        return;
    }
    read_answer(l, c, ctx);
}

void
conn_ready(struct conn_loop *l, int fd, uint32_t events)
{
    struct conn *c;

    (void)events;
    if (!conn_owns(l, fd))
        return; /* closed earlier in the same turn */
    c = l->by_fd[fd];
    if (c->ctx != NULL) {
        io(l, c);
        return;
    }
    /*
     * An idle connection that speaks was closed by the receiver or is out of
     * step; a TLS one may only have had a session ticket, which curl takes.
     */
    if (c->tls && idle_alive_tls(c))
        return;
    idle_unlink(l, c);
    conn_close(l, c);
}

void
conn_sweep(struct conn_loop *l, struct attempt_ctx *head, int64_t now_mono)
{
    struct attempt_ctx *ctx;
    struct attempt_ctx *next;
    int64_t next_deadline = INT64_MAX;

    if (now_mono < l->next_deadline)
        return;
    for (ctx = head; ctx != NULL; ctx = next) {
        next = ctx->next;
        if (ctx->conn == NULL || ctx->conn->fd < 0)
            continue; /* connecting: curl's timeout */
        if (now_mono >= ctx->deadline_mono)
            end(l, ctx, CURLE_OPERATION_TIMEDOUT);
        else if (ctx->deadline_mono < next_deadline)
            next_deadline = ctx->deadline_mono;
    }
    l->next_deadline = next_deadline;
}

void
conn_release(struct conn_loop *l, struct attempt_ctx *ctx)
{
    struct conn *c = ctx != NULL ? ctx->conn : NULL;
    struct conn *old;
    int64_t now_mono;

    if (c == NULL)
        return;
    ctx->conn = NULL;
    ctx->easy = NULL;
    c->ctx = NULL;
    if (c->fd < 0 || ctx->sent < ctx->req.len || !h1_reusable(&ctx->parser) ||
        watch(l, c, EPOLLIN) != 0) {
        conn_close(l, c);
        return;
    }
    now_mono = clock_mono_ms();
    c->idle_since = now_mono;
    c->prev = NULL;
    c->next = l->idle;
    if (l->idle != NULL)
        l->idle->prev = c;
    l->idle = c;
    l->nidle++;
    /* Over the cap, the least recently used goes. */
    while (l->nidle > l->max_idle) {
        for (old = l->idle; old->next != NULL; old = old->next)
            ;
        idle_unlink(l, old);
        conn_close(l, old);
    }
}

void
conn_loop_cleanup(struct conn_loop *l)
{
    struct conn *c;

    while (l->idle != NULL) {
        c = l->idle;
        idle_unlink(l, c);
        conn_close(l, c);
    }
    while (l->nspare > 0)
        curl_easy_cleanup(l->spare[--l->nspare]);
    free(l->spare);
    free(l->by_fd);
    l->spare = NULL;
    l->by_fd = NULL;
    l->nfd = 0;
}
