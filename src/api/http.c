/*
 * fluxhook's HTTP/1.1 server (http.h). Each of cfg->threads loops owns the
 * connections it accepted (every loop waits on the listening socket with
 * EPOLLEXCLUSIVE) and drives each through one state machine:
 *
 *   HEAD -> BODY | CHUNK_SIZE <-> CHUNK_DATA/CHUNK_END -> TRAILER
 *        -> BUSY (a worker or the loop runs it; a handler on the loop may
 *           suspend it and resume it later from any thread)
 *        -> WRITE -> HEAD (keep-alive)
 *                                                        -> LINGER (close)
 *
 * A connection handles one request at a time: pipelined requests wait in its
 * input buffer, so answers go out in order. Sockets are edge-triggered: a
 * connection reads until a read comes back short (the socket is empty; what
 * arrives later makes a new edge) or EAGAIN, unless it is BUSY, and reading
 * resumes when its answer is written if an edge came meanwhile. Once the
 * peer's end was seen it reads until recv says so. An answer with Connection: close is followed by a
 * half-close and a short drain of what the client still sends (LINGER), so
 * that unread bytes do not turn the close into a reset that loses the answer.
 *
 * Only a connection's loop writes to its socket. When the guard finds a head
 * or body late it writes the connection's http_deadline record; the loop
 * reads it where the request moves on (head complete, body complete) and at
 * its tick, and answers 408 if the request is still being read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h" /* api_hexval */
#include "api/http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/wakeup.h"

#define HTTP_IN_SIZE (HTTP_MAX_HEAD + 4096) /* a connection's input buffer */
#define HTTP_CHUNK_LINE 1024                /* longest chunk-size line (with extensions) */
#define HTTP_TRAILER_MAX 4096               /* bytes of trailer fields read and dropped */
#define HTTP_LINGER_MS 2000                 /* drain after a closing answer, at most */
#define HTTP_LINGER_BYTES (256 * 1024)
#define HTTP_ACCEPT_BATCH 64
#define HTTP_IP_BUCKETS 4096
#define HTTP_TICK_MS 250
#define HTTP_WAKE_BATCH 32 /* events of a round whose wake-ups are made together */
#define HTTP_SPARE_IN 16   /* input buffers a loop keeps for its next requests */
#define HTTP_HDRS_FIRST 256 /* the first allocation of an answer's fields and of its head */
#define HTTP_SPARE_OUT 16   /* answer-head buffers a loop keeps for its next answers */
#define HTTP_OUT_KEEP 1024  /* the largest answer-head buffer kept for another answer */

/* --- the request head parser --- */

static int
is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr(extra, c) != NULL);
}

/* Whether the comma-separated list v holds token (any case). */
static int
list_has(const char *v, const char *token)
{
    size_t n = strlen(token);
    const char *p = v;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        while (*p != '\0' && *p != ',')
            p++;
    }
    return 0;
}

#define FAIL(st, ty, ...)                                                                          \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        *type = (ty);                                                                              \
        return (st);                                                                               \
    } while (0)

/* Checks the request line at buf (NUL-terminated, without CRLF) and fills h. */
static int
request_line(char *line, struct http_head *h, const char **type, char *err, size_t errlen)
{
    char *sp1, *sp2, *q, *p;
    size_t tlen;

    sp1 = strchr(line, ' ');
    if (sp1 == NULL || sp1 == line)
        FAIL(400, "invalid_request", "malformed request line: expected 'METHOD /path HTTP/1.1'");
    for (p = line; p < sp1; p++) {
        if (!is_tchar((unsigned char)*p))
            FAIL(400, "invalid_request", "malformed request line: the method is not a token");
    }
    *sp1 = '\0';
    sp2 = strchr(sp1 + 1, ' ');
    if (sp2 == NULL)
        FAIL(400, "invalid_request", "malformed request line: expected 'METHOD /path HTTP/1.1'");
    tlen = (size_t)(sp2 - sp1 - 1);
    if (tlen > HTTP_MAX_URI)
        FAIL(414, "uri_too_long", "the URI is longer than %d KiB", HTTP_MAX_URI / 1024);
    if (sp1[1] != '/')
        FAIL(400, "invalid_request", "malformed request line: the target must start with '/'");
    for (p = sp1 + 1; p < sp2; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            FAIL(400, "invalid_request",
                 "malformed request line: the target has a byte that must be percent-encoded");
    }
    *sp2 = '\0';
    p = sp2 + 1;
    if (strcmp(p, "HTTP/1.1") == 0) {
        h->minor = 1;
    } else if (strcmp(p, "HTTP/1.0") == 0) {
        h->minor = 0;
    } else if (strncmp(p, "HTTP/", 5) == 0 && p[5] >= '0' && p[5] <= '9' && p[6] == '.' &&
               p[7] >= '0' && p[7] <= '9' && p[8] == '\0') {
        FAIL(505, "http_version_not_supported",
             "HTTP version '%.20s' is not supported: expected HTTP/1.1 or HTTP/1.0", p);
    } else {
        FAIL(400, "invalid_request", "malformed request line: expected 'HTTP/1.1' at its end");
    }
    h->method = line;
    h->path = sp1 + 1;
    q = strchr(sp1 + 1, '?');
    if (q != NULL) {
        *q = '\0';
        h->query = q + 1;
    } else {
        h->query = "";
    }
    return 0;
}

int
http_head_parse(char *buf, size_t len, struct http_head *h, const char **type, char *err,
                size_t errlen)
{
    char *p = buf, *end = buf + len, *eol, *colon, *v, *ve, *n;
    const char *cl = NULL, *te = NULL, *conn = NULL, *host = NULL;
    int ncl = 0, nte = 0, nhost = 0, ret;
    uint64_t length = 0;

    memset(h, 0, sizeof(*h));
    h->query = "";
    if (len > HTTP_MAX_HEAD)
        FAIL(431, "header_too_large", "the request head is larger than %d KiB",
             HTTP_MAX_HEAD / 1024);
    for (n = buf; n < end; n++) {
        if (*n == '\n' && (n == buf || n[-1] != '\r'))
            FAIL(400, "invalid_request",
                 "a line of the request head ends with LF alone: expected CRLF");
        if (*n == '\r' && (n + 1 >= end || n[1] != '\n') && n + 1 < end)
            FAIL(400, "invalid_request", "a CR in the request head not followed by LF");
        if (*n == '\0')
            FAIL(400, "invalid_request", "a NUL byte in the request head");
    }
    eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (eol == NULL)
        FAIL(400, "invalid_request", "the request line does not end with CRLF");
    *eol = '\0';
    ret = request_line(p, h, type, err, errlen);
    if (ret != 0)
        return ret;
    p = eol + 2;
    while (p < end) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            FAIL(400, "invalid_request", "a header line does not end with CRLF");
        if (eol == p)
            break; /* the empty line */
        *eol = '\0';
        if (*p == ' ' || *p == '\t')
            FAIL(400, "invalid_request",
                 "obsolete line folding (a header line starting with a space or tab) is not "
                 "accepted: send each field on one line");
        colon = strchr(p, ':');
        if (colon == NULL)
            FAIL(400, "invalid_request", "header line '%.60s' has no colon: expected 'Name: value'",
                 p);
        for (n = p; n < colon; n++) {
            if (!is_tchar((unsigned char)*n))
                FAIL(400, "invalid_request", "header name '%.60s' is not a token", p);
        }
        if (colon == p)
            FAIL(400, "invalid_request", "a header line with an empty name");
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        for (n = v; n < ve; n++) {
            if ((unsigned char)*n < 0x20 && *n != '\t')
                FAIL(400, "invalid_request", "header '%.60s' has a control character", p);
            if (*n == 0x7f)
                FAIL(400, "invalid_request", "header '%.60s' has a control character", p);
        }
        if (h->nfields == HTTP_MAX_FIELDS)
            FAIL(431, "header_too_large", "more than %d header fields", HTTP_MAX_FIELDS);
        h->fields[h->nfields].name = p;
        h->fields[h->nfields].value = v;
        h->nfields++;
        if (strcasecmp(p, "Content-Length") == 0) {
            if (ncl++ == 0)
                cl = v;
        } else if (strcasecmp(p, "Transfer-Encoding") == 0) {
            if (nte++ == 0)
                te = v;
        } else if (strcasecmp(p, "Host") == 0) {
            if (nhost++ == 0)
                host = v;
        } else if (strcasecmp(p, "Connection") == 0) {
            if (conn == NULL)
                conn = v;
        } else if (strcasecmp(p, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0)
                h->expect_continue = 1;
        }
        p = eol + 2;
    }
    if (ncl > 1)
        FAIL(400, "invalid_request", "expected at most one Content-Length header, got %d", ncl);
    if (nte > 1)
        FAIL(400, "invalid_request", "expected at most one Transfer-Encoding header, got %d", nte);
    if (ncl == 1 && nte == 1)
        FAIL(400, "invalid_request",
             "Content-Length and Transfer-Encoding together: send one of them");
    if (nte == 1 && strcasecmp(te, "chunked") != 0)
        FAIL(400, "invalid_request", "Transfer-Encoding: expected 'chunked', got '%.60s'", te);
    if (nte == 1 && h->minor == 0)
        FAIL(400, "invalid_request", "Transfer-Encoding in an HTTP/1.0 request");
    if (nhost > 1)
        FAIL(400, "invalid_request", "expected one Host header, got %d", nhost);
    if (h->minor == 1 && host == NULL)
        FAIL(400, "invalid_request", "an HTTP/1.1 request needs a Host header");
    if (cl != NULL) {
        if (*cl == '\0')
            FAIL(400, "invalid_request", "Content-Length: expected a number, got ''");
        for (n = (char *)cl; *n != '\0'; n++) {
            if (*n < '0' || *n > '9')
                FAIL(400, "invalid_request", "Content-Length: expected a number, got '%.40s'", cl);
            if (length > (UINT64_MAX - 9) / 10)
                length = UINT64_MAX; /* over any cap: 413 */
            else
                length = length * 10 + (uint64_t)(*n - '0');
        }
    }
    h->length = length;
    h->chunked = nte == 1;
    if (h->minor == 1)
        h->keep_alive = conn == NULL || !list_has(conn, "close");
    else
        h->keep_alive = conn != NULL && list_has(conn, "keep-alive");
    return 0;
}

#undef FAIL

const char *
http_head_field(const struct http_head *h, const char *name)
{
    int i;

    for (i = 0; i < h->nfields; i++) {
        if (strcasecmp(h->fields[i].name, name) == 0)
            return h->fields[i].value;
    }
    return NULL;
}

/* --- answers --- */

void
http_answer_start(struct http_exchange *x, int status)
{
    x->status = status;
    buf_reset(&x->hdrs);
    if (x->data_free != NULL)
        x->data_free(x->data_owned);
    x->data = NULL;
    x->len = 0;
    x->data_free = NULL;
    x->data_owned = NULL;
}

void
http_answer_header(struct http_exchange *x, const char *name, const char *value)
{
    size_t len = strcspn(value, "\r\n");

    if (value[len] != '\0')
        return;
    /* Without printf: an answer carries several fields. */
    if (x->hdrs.cap == 0)
        (void)buf_reserve(&x->hdrs, HTTP_HDRS_FIRST);
    (void)buf_puts(&x->hdrs, name);
    (void)buf_append(&x->hdrs, ": ", 2);
    (void)buf_append(&x->hdrs, value, len);
    (void)buf_append(&x->hdrs, "\r\n", 2);
}

void
http_answer_body(struct http_exchange *x, const void *data, size_t len, void (*free_fn)(void *))
{
    if (x->data_free != NULL)
        x->data_free(x->data_owned);
    x->data = data;
    x->len = len;
    x->data_free = free_fn;
    x->data_owned = free_fn != NULL ? (void *)data : NULL;
}

int
http_head_inline_drop(void *arg, struct http_exchange *x)
{
    (void)arg;
    x->run_inline = 1;
    return 0;
}

void
http_error_bare(void *arg, struct http_exchange *x, int status, const char *type, const char *msg)
{
    (void)arg;
    (void)type;
    (void)msg;
    http_answer_start(x, status);
}

static const char *
reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* --- the server --- */

enum conn_state {
    CS_HEAD,
    CS_BODY,
    CS_CHUNK_SIZE,
    CS_CHUNK_DATA,
    CS_CHUNK_END,
    CS_TRAILER,
    CS_BUSY,
    CS_WRITE,
    CS_LINGER,
    CS_DEAD, /* closed; freed once the loop is done with the events it already holds */
};

struct ip_count {
    struct ip_count *next;
    unsigned char addr[16];
    int n;
};

struct http_loop;

struct http_conn {
    struct http_loop *loop;
    struct http_conn *prev, *next; /* the loop's connections, or next in its dead list */
    int fd;
    void *gc;            /* the guard's handle */
    struct ip_count *ip; /* NULL when per-IP caps are off */
    enum conn_state st;
    char *in; /* HTTP_IN_SIZE bytes while a request is read, else NULL */
    size_t in_len;
    uint64_t rx;  /* bytes read from the socket so far */
    int readable; /* the socket may hold bytes: an edge came since a read found it empty */
    int rdhup;    /* the peer's end (or an error) was seen: read until recv says so */
    struct http_exchange *x; /* the request being read, run or answered */
    uint64_t remaining;      /* body or chunk bytes still to come */
    size_t trailer;          /* trailer bytes read */
    struct buf out;          /* status line and header block of the answer */
    size_t sent;             /* bytes of out + body written */
    int keep;                /* 1: keep the connection after this answer */
    int64_t linger_until;
    size_t lingered;
    struct http_deadline late; /* written by the guard's thread (http.h) */
};

struct http_loop {
    struct http_server *srv;
    pthread_t thread;
    int started;
    int ep;
    int evfd; /* wakes the loop: answers done, stop */
    struct http_conn *conns;
    struct http_conn *dead; /* closed, to be freed after this round of events */
    pthread_mutex_t mu;
    struct http_exchange *done_head, *done_tail; /* answers made by workers */
    time_t date_sec; /* the second date_line was made for */
    char date_line[48]; /* "Date: <IMF-fixdate>\r\n" (RFC 9110 §6.6.1) */
    char *spare[HTTP_SPARE_IN]; /* input buffers no connection holds */
    int nspare;
    struct buf spare_out[HTTP_SPARE_OUT]; /* answer-head buffers no connection holds */
    int nspare_out;
};

struct http_server {
    struct http_config cfg;
    struct http_handler h;
    int lfd;
    int stop;            /* read by the loops (atomically) */
    unsigned int nconns; /* open connections (atomic) */
    struct http_loop *loops;
    int nloops;

    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    pthread_cond_t resumed_cv; /* http_server_stop() waits for suspended to reach 0 */
    unsigned int suspended;    /* exchanges suspended and not yet resumed (atomic) */
    int draining;              /* http_server_stop() is waiting for them (atomic) */
    struct http_exchange *work_head, *work_tail;
    pthread_t *workers;
    int nworkers;
    int work_stop;

    pthread_mutex_t ip_mu;
    struct ip_count *ips[HTTP_IP_BUCKETS];
};

static char tag_listen, tag_wake; /* epoll data of the listening socket and the eventfd */

static void conn_drive(struct http_conn *c);

static struct ip_count *
ip_take(struct http_server *s, const struct sockaddr_storage *ss, int *refused)
{
    unsigned char a[16];
    struct ip_count *ic;
    unsigned int hsh = 2166136261u;
    size_t i;

    *refused = 0;
    if (s->cfg.per_ip <= 0)
        return NULL;
    memset(a, 0, sizeof(a));
    if (ss->ss_family == AF_INET)
        memcpy(a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else if (ss->ss_family == AF_INET6)
        memcpy(a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    for (i = 0; i < sizeof(a); i++)
        hsh = (hsh ^ a[i]) * 16777619u;
    hsh %= HTTP_IP_BUCKETS;
    pthread_mutex_lock(&s->ip_mu);
    for (ic = s->ips[hsh]; ic != NULL; ic = ic->next) {
        if (memcmp(ic->addr, a, sizeof(a)) == 0)
            break;
    }
    if (ic == NULL) {
        ic = calloc(1, sizeof(*ic));
        if (ic != NULL) {
            memcpy(ic->addr, a, sizeof(a));
            ic->next = s->ips[hsh];
            s->ips[hsh] = ic;
        }
    }
    if (ic != NULL && ic->n >= s->cfg.per_ip) {
        *refused = 1;
        ic = NULL;
    } else if (ic != NULL) {
        ic->n++;
    }
    pthread_mutex_unlock(&s->ip_mu);
    return ic;
}

static void
ip_release(struct http_server *s, struct ip_count *ic)
{
    struct ip_count **pp;
    unsigned int hsh = 2166136261u;
    size_t i;

    if (ic == NULL)
        return;
    for (i = 0; i < sizeof(ic->addr); i++)
        hsh = (hsh ^ ic->addr[i]) * 16777619u;
    hsh %= HTTP_IP_BUCKETS;
    pthread_mutex_lock(&s->ip_mu);
    if (--ic->n == 0) {
        for (pp = &s->ips[hsh]; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == ic) {
                *pp = ic->next;
                free(ic);
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->ip_mu);
}

/* An input buffer for c (HTTP_IN_SIZE bytes): one its loop kept, else a new one. */
static char *
in_take(struct http_conn *c)
{
    struct http_loop *lp = c->loop;

    if (lp->nspare > 0)
        return lp->spare[--lp->nspare];
    return malloc(HTTP_IN_SIZE);
}

/*
 * c holds no unread bytes: its input buffer goes back to its loop (freed
 * when the loop keeps enough), so an idle or busy connection holds none.
 */
static void
in_release(struct http_conn *c)
{
    struct http_loop *lp = c->loop;

    if (c->in == NULL || c->in_len > 0)
        return;
    if (lp->nspare < HTTP_SPARE_IN)
        lp->spare[lp->nspare++] = c->in;
    else
        free(c->in);
    c->in = NULL;
}

/*
 * The answer is sent: its head's buffer goes back to the loop for the next
 * answer (freed when it grew large or the loop keeps enough), so an idle
 * connection holds none and an answer's head costs no allocation.
 */
static void
out_release(struct http_conn *c)
{
    struct http_loop *lp = c->loop;

    if (c->out.data != NULL && c->out.cap <= HTTP_OUT_KEEP && lp->nspare_out < HTTP_SPARE_OUT) {
        buf_reset(&c->out);
        lp->spare_out[lp->nspare_out++] = c->out;
        buf_init(&c->out, c->out.max);
        return;
    }
    buf_cleanup(&c->out);
}

static void
exchange_free(struct http_server *s, struct http_exchange *x)
{
    if (x == NULL)
        return;
    if (s->h.done_fn != NULL)
        s->h.done_fn(s->h.arg, x);
    if (x->data_free != NULL)
        x->data_free(x->data_owned);
    buf_cleanup(&x->hdrs);
    free(x); /* x->head_buf, when set, is in the same allocation */
}

static void
conn_close(struct http_conn *c)
{
    struct http_loop *lp = c->loop;
    struct http_server *s = lp->srv;

    if (c->st == CS_BUSY) {
        /* a worker or a suspension holds c->x: closed once it is answered (loop_done) */
        c->keep = 0;
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    exchange_free(s, c->x);
    c->x = NULL;
    if (s->cfg.conn_close != NULL)
        s->cfg.conn_close(s->cfg.conn_arg, c->gc); /* before the socket number can be reused */
    close(c->fd);
    ip_release(s, c->ip);
    __atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        lp->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->in_len = 0;
    in_release(c);
    buf_cleanup(&c->out);
    /* events for c may still be in the loop's current batch: freed after it */
    c->st = CS_DEAD;
    c->prev = NULL;
    c->next = lp->dead;
    lp->dead = c;
}

static void
loop_free_dead(struct http_loop *lp)
{
    struct http_conn *c;

    while ((c = lp->dead) != NULL) {
        lp->dead = c->next;
        free(c);
    }
}

/*
 * The Date field of answers made now, made once a second per loop. The
 * second is read from CLOCK_REALTIME: time() reads the kernel's tick-coarse
 * clock, which can still name the second before for a few ms after it ends.
 */
static const char *
loop_date(struct http_loop *lp)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timespec ts;
    time_t now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = ts.tv_sec;

    if (now != lp->date_sec && gmtime_r(&now, &tm) != NULL) {
        snprintf(lp->date_line, sizeof(lp->date_line),
                 "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        lp->date_sec = now;
    }
    return lp->date_line;
}

/* Builds the answer's head; c->st becomes CS_WRITE. */
static void
conn_answer(struct http_conn *c)
{
    struct http_server *s = c->loop->srv;
    struct http_exchange *x = c->x;
    int no_len = x->status == 204 || x->status == 304 || (x->status >= 100 && x->status < 200);

    c->keep = !x->close && x->head.keep_alive && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED);
    if (c->out.data == NULL && c->loop->nspare_out > 0)
        c->out = c->loop->spare_out[--c->loop->nspare_out];
    buf_reset(&c->out);
    /* One allocation, and no printf: this runs once per request. */
    (void)buf_reserve(&c->out, HTTP_HDRS_FIRST + x->hdrs.len);
    (void)buf_append(&c->out, "HTTP/1.1 ", 9);
    (void)buf_put_u64(&c->out, (uint64_t)(x->status > 0 ? x->status : 0));
    (void)buf_putc(&c->out, ' ');
    (void)buf_puts(&c->out, reason(x->status));
    (void)buf_append(&c->out, "\r\n", 2);
    (void)buf_puts(&c->out, loop_date(c->loop));
    if (x->hdrs.len > 0)
        (void)buf_append(&c->out, x->hdrs.data, x->hdrs.len);
    if (!no_len) {
        (void)buf_append(&c->out, "Content-Length: ", 16);
        (void)buf_put_u64(&c->out, (uint64_t)x->len);
        (void)buf_append(&c->out, "\r\n", 2);
    }
    if (!c->keep)
        (void)buf_puts(&c->out, "Connection: close\r\n");
    else if (x->head.minor == 0)
        (void)buf_puts(&c->out, "Connection: keep-alive\r\n");
    (void)buf_puts(&c->out, "\r\n");
    if (no_len || (x->head.method != NULL && strcmp(x->head.method, "HEAD") == 0))
        x->len = 0; /* a HEAD answer announces the body without sending it */
    c->sent = 0;
    c->st = CS_WRITE;
}

/* Answers an error of this module's own, then closes. */
static void
conn_error(struct http_conn *c, int status, const char *type, const char *msg)
{
    struct http_server *s = c->loop->srv;

    if (c->x == NULL) {
        c->x = calloc(1, sizeof(*c->x));
        if (c->x == NULL) {
            c->st = CS_LINGER;
            c->keep = 0;
            return;
        }
        c->x->conn = c;
        buf_init(&c->x->hdrs, 16 * 1024);
    }
    c->x->close = 1;
    http_answer_start(c->x, status);
    s->h.error_fn(s->h.arg, c->x, status, type, msg);
    c->x->close = 1;
    conn_answer(c);
}

/*
 * Answers 408 when the guard found c's request late (c->late) and it is
 * still being read; no answer has begun then, so this is the only one.
 * Returns 1 when it answered.
 */
static int
conn_late(struct http_conn *c)
{
    int stage = __atomic_load_n(&c->late.stage, __ATOMIC_ACQUIRE);
    int secs = c->late.ms % 1000 == 0;
    char msg[128];

    if (stage == 0 || c->st >= CS_BUSY)
        return 0;
    snprintf(msg, sizeof(msg), "the request %s was not complete within %d %s",
             stage == HTTP_LATE_HEAD ? "head" : "body", secs ? c->late.ms / 1000 : c->late.ms,
             secs ? "s" : "ms");
    conn_error(c, 408, "request_timeout", msg);
    return 1;
}

static void
work_push(struct http_server *s, struct http_exchange *x, int urgent)
{
    x->next = NULL;
    if (s->work_head == NULL) {
        s->work_head = s->work_tail = x;
    } else if (urgent) {
        x->next = s->work_head;
        s->work_head = x;
    } else {
        s->work_tail->next = x;
        s->work_tail = x;
    }
}

/* Queues x for the workers; 0 when there are none (or they are stopping). */
static int
work_queue(struct http_server *s, struct http_exchange *x)
{
    int queued = 0;

    pthread_mutex_lock(&s->work_mu);
    if (s->nworkers > 0 && !s->work_stop) {
        work_push(s, x, strcmp(x->head.path, "/healthz") == 0);
        pthread_cond_signal(&s->work_cv);
        queued = 1;
    }
    pthread_mutex_unlock(&s->work_mu);
    return queued;
}

/* The request is complete: run it here or on a worker. */
static void
conn_run(struct http_conn *c)
{
    struct http_server *s = c->loop->srv;
    struct http_exchange *x = c->x;

    if (s->cfg.conn_body != NULL)
        s->cfg.conn_body(s->cfg.conn_arg, c->gc);
    if (conn_late(c))
        return; /* late before the guard knew the body complete: it is not run */
    c->st = CS_BUSY;
    if (x->run_inline) {
        s->h.run_fn(s->h.arg, x);
        if (x->suspended) {
            /* Its answer comes through loop_done(), on this thread: after this returns. */
            __atomic_add_fetch(&s->suspended, 1, __ATOMIC_SEQ_CST);
            return;
        }
        if (!x->defer) {
            conn_answer(c);
            return;
        }
        x->defer = 0;
        x->run_inline = 0;
    }
    if (work_queue(s, x))
        return;
    s->h.run_fn(s->h.arg, x);
    conn_answer(c);
}

/* A head of hlen bytes is at c->in. */
static int
conn_head(struct http_conn *c, size_t hlen)
{
    struct http_server *s = c->loop->srv;
    struct http_exchange *x;
    const char *type = NULL;
    char err[256];
    int st;

    /* One allocation for the exchange and the copy of its head. */
    x = calloc(1, sizeof(*x) + hlen + 1);
    if (x == NULL)
        return -1;
    x->head_buf = (char *)(x + 1);
    memcpy(x->head_buf, c->in, hlen);
    x->head_buf[hlen] = '\0';
    memmove(c->in, c->in + hlen, c->in_len - hlen);
    c->in_len -= hlen;
    x->conn = c;
    buf_init(&x->hdrs, 16 * 1024);
    c->x = x;
    if (s->cfg.conn_head != NULL)
        s->cfg.conn_head(s->cfg.conn_arg, c->gc);
    if (conn_late(c))
        return 0; /* late before the guard knew the head complete */
    st = http_head_parse(x->head_buf, hlen, &x->head, &type, err, sizeof(err));
    if (st != 0) {
        /* what was parsed may be half-done: an error answer knows no method */
        memset(&x->head, 0, sizeof(x->head));
        conn_error(c, st, type, err);
        return 0;
    }
    if (s->h.head_fn(s->h.arg, x) != 0) {
        x->close = 1;
        conn_answer(c);
        return 0;
    }
    if (x->head.expect_continue && (x->head.chunked || x->head.length > 0))
        (void)send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
    if (x->head.chunked) {
        c->st = CS_CHUNK_SIZE;
    } else if (x->head.length > 0) {
        c->st = CS_BODY;
        c->remaining = x->head.length;
    } else {
        conn_run(c);
    }
    return 0;
}

static void
consume(struct http_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* The body has passed its cap while chunks were read. */
static void
chunk_too_big(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    char msg[128];

    snprintf(msg, sizeof(msg), "the request body is larger than %zu KiB",
             x->body != NULL ? x->body->max / 1024 : (size_t)0);
    conn_error(c, 413, "payload_too_large", msg);
}

/*
 * Moves up to c->remaining buffered bytes into the body (or drops them when
 * x->body is NULL). Returns 1 after progress (c->st is no longer a reading
 * state when the body passed its cap), 0 when nothing is buffered.
 */
static int
body_take(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    size_t n = c->in_len < c->remaining ? c->in_len : (size_t)c->remaining;

    if (n == 0)
        return 0;
    if (x->body != NULL && buf_append(x->body, c->in, n) != 0) {
        chunk_too_big(c);
        return 1;
    }
    consume(c, n);
    c->remaining -= n;
    return 1;
}

/*
 * Parses what c->in holds in a reading state. Returns 1 after progress, 0
 * when more bytes are needed, -1 to close without an answer.
 */
static int
conn_parse(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    size_t i, n, room;
    char *eol, *p;
    uint64_t v;
    int digits, r;

    switch (c->st) {
    case CS_HEAD:
        n = 0;
        while (n + 1 < c->in_len && c->in[n] == '\r' && c->in[n + 1] == '\n')
            n += 2; /* empty lines before a request line are ignored (RFC 9112 2.2) */
        if (n > 0) {
            consume(c, n);
            return 1;
        }
        if (c->in_len == 0)
            return 0;
        p = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (p != NULL)
            return conn_head(c, (size_t)(p - c->in) + 4) == 0 ? 1 : -1;
        for (i = 0; i < c->in_len; i++) {
            if (c->in[i] == '\n' && (i == 0 || c->in[i - 1] != '\r')) {
                conn_error(c, 400, "invalid_request",
                           "a line of the request head ends with LF alone: expected CRLF");
                return 1;
            }
        }
        eol = memmem(c->in, c->in_len, "\r\n", 2);
        if (eol == NULL && c->in_len > HTTP_MAX_URI + 32) {
            conn_error(c, 414, "uri_too_long", "the URI is longer than 4 KiB");
            return 1;
        }
        if (c->in_len > HTTP_MAX_HEAD) {
            conn_error(c, 431, "header_too_large", "the request head is larger than 12 KiB");
            return 1;
        }
        return 0;
    case CS_BODY:
        r = body_take(c);
        if (r > 0 && c->st == CS_BODY && c->remaining == 0)
            conn_run(c);
        return r;
    case CS_CHUNK_SIZE:
        room = x->body != NULL ? x->body->max - x->body->len : SIZE_MAX; /* NULL: dropped */
        v = 0;
        digits = 0;
        for (i = 0; i < c->in_len; i++) {
            int d = api_hexval(c->in[i]);

            if (d < 0)
                break;
            if (++digits > 16) {
                chunk_too_big(c);
                return 1;
            }
            v = v * 16 + (uint64_t)d;
            /* refused the moment the size is known to pass the cap, even before its line ends */
            if (v > room) {
                chunk_too_big(c);
                return 1;
            }
        }
        if (i == c->in_len) {
            if (c->in_len > HTTP_CHUNK_LINE) {
                conn_error(c, 400, "invalid_request", "malformed chunk size line");
                return 1;
            }
            return 0;
        }
        if (digits == 0 ||
            (c->in[i] != '\r' && c->in[i] != ';' && c->in[i] != ' ' && c->in[i] != '\t')) {
            conn_error(c, 400, "invalid_request",
                       "malformed chunked body: expected a chunk size in hex");
            return 1;
        }
        eol = memmem(c->in, c->in_len, "\r\n", 2);
        if (eol == NULL) {
            if (c->in_len > HTTP_CHUNK_LINE) {
                conn_error(c, 400, "invalid_request", "malformed chunk size line");
                return 1;
            }
            return 0;
        }
        for (p = c->in + i; p < eol; p++) {
            if (*p == '\n' || *p == '\0' || (*p == '\r')) {
                conn_error(c, 400, "invalid_request", "malformed chunk size line");
                return 1;
            }
        }
        consume(c, (size_t)(eol - c->in) + 2);
        if (v == 0) {
            c->st = CS_TRAILER;
            c->trailer = 0;
        } else {
            c->st = CS_CHUNK_DATA;
            c->remaining = v;
        }
        return 1;
    case CS_CHUNK_DATA:
        r = body_take(c);
        if (r > 0 && c->st == CS_CHUNK_DATA && c->remaining == 0)
            c->st = CS_CHUNK_END;
        return r;
    case CS_CHUNK_END:
        if (c->in_len < 2)
            return 0;
        if (c->in[0] != '\r' || c->in[1] != '\n') {
            conn_error(c, 400, "invalid_request",
                       "malformed chunked body: expected CRLF after the chunk's data");
            return 1;
        }
        consume(c, 2);
        c->st = CS_CHUNK_SIZE;
        return 1;
    case CS_TRAILER:
        eol = memmem(c->in, c->in_len, "\r\n", 2);
        if (eol == NULL) {
            if (c->trailer + c->in_len > HTTP_TRAILER_MAX) {
                conn_error(c, 431, "header_too_large", "the chunked trailer is larger than 4 KiB");
                return 1;
            }
            return 0;
        }
        n = (size_t)(eol - c->in) + 2;
        c->trailer += n;
        if (c->trailer > HTTP_TRAILER_MAX) {
            conn_error(c, 431, "header_too_large", "the chunked trailer is larger than 4 KiB");
            return 1;
        }
        consume(c, n);
        if (n == 2)
            conn_run(c);
        return 1;
    default:
        return 0;
    }
}

/* Writes what is left of the answer. Returns 1 when all is sent, 0 on EAGAIN, -1 on error. */
static int
conn_write(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    struct iovec iov[2];
    size_t total = c->out.len + x->len;
    ssize_t n;
    int cnt;

    while (c->sent < total) {
        cnt = 0;
        if (c->sent < c->out.len) {
            iov[cnt].iov_base = c->out.data + c->sent;
            iov[cnt].iov_len = c->out.len - c->sent;
            cnt++;
            if (x->len > 0) {
                iov[cnt].iov_base = (void *)x->data;
                iov[cnt].iov_len = x->len;
                cnt++;
            }
        } else {
            iov[cnt].iov_base = (char *)x->data + (c->sent - c->out.len);
            iov[cnt].iov_len = total - c->sent;
            cnt++;
        }
        struct msghdr mh;

        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)cnt;
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->sent += (size_t)n;
    }
    return 1;
}

/* The answer is sent: the next request, or the close. */
static void
conn_sent(struct http_conn *c)
{
    struct http_server *s = c->loop->srv;

    exchange_free(s, c->x);
    c->x = NULL;
    out_release(c);
    if (!c->keep) {
        shutdown(c->fd, SHUT_WR);
        c->st = CS_LINGER;
        c->linger_until = clock_mono_ms() + HTTP_LINGER_MS;
        c->lingered = 0;
        return;
    }
    c->st = CS_HEAD;
    /* Bytes read but not parsed (a pipelined request, maybe half of one) begin a head. */
    if (s->cfg.conn_idle != NULL)
        s->cfg.conn_idle(s->cfg.conn_arg, c->gc, c->rx - c->in_len);
}

static void
conn_drive(struct http_conn *c)
{
    char drain[4096];
    size_t room;
    ssize_t n;
    int r;

    for (;;) {
        if (c->st == CS_DEAD)
            return;
        if (c->st == CS_BUSY) {
            in_release(c);
            return;
        }
        if (c->st == CS_WRITE) {
            r = conn_write(c);
            if (r == 0)
                return;
            if (r < 0) {
                conn_close(c);
                return;
            }
            conn_sent(c);
            continue;
        }
        if (c->st == CS_LINGER) {
            for (;;) {
                n = recv(c->fd, drain, sizeof(drain), 0);
                if (n > 0) {
                    c->lingered += (size_t)n;
                    if (c->lingered > HTTP_LINGER_BYTES) {
                        conn_close(c);
                        return;
                    }
                    continue;
                }
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    return;
                conn_close(c); /* the client's end, or an error */
                return;
            }
        }
        r = c->in_len > 0 ? conn_parse(c) : 0;
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (r > 0)
            continue;
        if (!c->readable) {
            /* Read to the end already: the next edge brings what comes. */
            in_release(c);
            return;
        }
        if (c->in == NULL) {
            c->in = in_take(c);
            if (c->in == NULL) {
                conn_close(c);
                return;
            }
        }
        if (c->in_len == HTTP_IN_SIZE) {
            conn_close(c); /* cannot happen: every state consumes or refuses a full buffer */
            return;
        }
        room = HTTP_IN_SIZE - c->in_len;
        n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->rx += (uint64_t)n;
            /*
             * A short read took all the socket held: bytes arriving later
             * make a new edge (EPOLLET), so no read to EAGAIN is needed. The
             * peer's end is read to the end, since its edge may be past.
             */
            if ((size_t)n < room && !c->rdhup)
                c->readable = 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->readable = 0;
            in_release(c); /* an idle connection holds no buffer */
            return;
        }
        conn_close(c);
        return;
    }
}

/* An epoll event of c's socket: what it says, then c's state machine. */
static void
conn_event(struct http_conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->rdhup = 1;
    conn_drive(c);
}

static void
loop_accept(struct http_loop *lp)
{
    struct http_server *s = lp->srv;
    struct sockaddr_storage ss;
    socklen_t sl;
    struct http_conn *c;
    struct epoll_event ev;
    int fd, i, refused, one = 1;

    for (i = 0; i < HTTP_ACCEPT_BATCH; i++) {
        sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("api: accept");
            return;
        }
        if (__atomic_load_n(&s->nconns, __ATOMIC_RELAXED) >= s->cfg.max_conns) {
            close(fd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->ip = ip_take(s, &ss, &refused);
        if (refused) {
            free(c);
            close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->loop = lp;
        c->fd = fd;
        c->st = CS_HEAD;
        c->readable = 1;
        buf_init(&c->out, 64 * 1024);
        __atomic_add_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
        if (s->cfg.conn_open != NULL)
            c->gc = s->cfg.conn_open(s->cfg.conn_arg, fd, &c->late);
        c->next = lp->conns;
        if (lp->conns != NULL)
            lp->conns->prev = c;
        lp->conns = c;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(c);
            continue;
        }
    }
}

/* wakeup_fn: the loop has answers on its done list (or must look at stop). */
static void
loop_wake(void *arg)
{
    struct http_loop *lp = arg;
    uint64_t one = 1;

    (void)write(lp->evfd, &one, sizeof(one));
}

/*
 * Puts x, answered by a worker or resumed, on its loop's done list, and
 * wakes the loop unless the list already holds one (whose maker wakes it).
 * A store completing a group of publishes holds its wake-ups (wakeup.h):
 * the loop is woken once for the group, not once per publish.
 */
static void
loop_hand_back(struct http_exchange *x)
{
    struct http_loop *lp = x->conn->loop;
    int wake;

    x->next = NULL;
    pthread_mutex_lock(&lp->mu);
    wake = lp->done_head == NULL;
    if (lp->done_tail != NULL)
        lp->done_tail->next = x;
    else
        lp->done_head = x;
    lp->done_tail = x;
    pthread_mutex_unlock(&lp->mu);
    if (wake)
        wakeup_post(loop_wake, lp);
}

void
http_exchange_suspend(struct http_exchange *x)
{
    x->suspended = 1;
}

void
http_exchange_resume(struct http_exchange *x)
{
    loop_hand_back(x);
}

void
http_exchange_defer(struct http_exchange *x)
{
    x->defer = 1;
}

/* A suspended exchange is back: the handler makes its answer. */
static void
exchange_resumed(struct http_server *s, struct http_exchange *x)
{
    x->suspended = 0;
    if (s->h.resume_fn != NULL)
        s->h.resume_fn(s->h.arg, x);
    if (__atomic_sub_fetch(&s->suspended, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&s->draining, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&s->work_mu);
        pthread_cond_broadcast(&s->resumed_cv);
        pthread_mutex_unlock(&s->work_mu);
    }
}

/* Answers made by workers, and resumed exchanges, are sent by the loop that owns their connection.
 */
static void
loop_done(struct http_loop *lp)
{
    struct http_exchange *x, *next;
    struct http_conn *c;
    uint64_t v;

    (void)read(lp->evfd, &v, sizeof(v));
    pthread_mutex_lock(&lp->mu);
    x = lp->done_head;
    lp->done_head = lp->done_tail = NULL;
    pthread_mutex_unlock(&lp->mu);
    for (; x != NULL; x = next) {
        next = x->next;
        c = x->conn;
        if (x->suspended)
            exchange_resumed(lp->srv, x);
        conn_answer(c);
        conn_drive(c);
    }
}

/* Every HTTP_TICK_MS: closes connections done lingering, answers late requests. */
static void
loop_tick(struct http_loop *lp)
{
    struct http_conn *c, *next;
    int64_t now = clock_mono_ms();

    for (c = lp->conns; c != NULL; c = next) {
        next = c->next;
        if (c->st == CS_LINGER && now >= c->linger_until)
            conn_close(c);
        else if (conn_late(c))
            conn_drive(c);
    }
}

static void *
loop_main(void *arg)
{
    struct http_loop *lp = arg;
    struct http_server *s = lp->srv;
    struct epoll_event evs[128];
    int64_t last = clock_mono_ms();
    char name[16]; /* the kernel's limit, NUL included */
    int n, i;

    /* Named for top -H and perf, as the dispatcher's threads are. */
    snprintf(name, sizeof(name), "fh-http-%d", (int)(lp - s->loops));
    (void)pthread_setname_np(pthread_self(), name);
    /* A suspended exchange keeps the loops running: its completion will come to one. */
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&s->suspended, __ATOMIC_SEQ_CST) > 0) {
        n = epoll_wait(lp->ep, evs, 128, HTTP_TICK_MS);
        /*
         * The wake-ups a round of requests makes (the store's writer, for
         * the publishes it queues) are made once, every HTTP_WAKE_BATCH
         * events and at the end of the round.
         */
        wakeup_hold();
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == &tag_listen)
                loop_accept(lp);
            else if (evs[i].data.ptr == &tag_wake)
                loop_done(lp);
            else
                conn_event(evs[i].data.ptr, evs[i].events);
            if (i % HTTP_WAKE_BATCH == HTTP_WAKE_BATCH - 1) {
                wakeup_release();
                wakeup_hold();
            }
        }
        wakeup_release();
        if (clock_mono_ms() - last >= HTTP_TICK_MS) {
            last = clock_mono_ms();
            loop_tick(lp);
        }
        loop_free_dead(lp);
    }
    return NULL;
}

static void *
worker_main(void *arg)
{
    struct http_server *s = arg;
    struct http_exchange *x;

    (void)pthread_setname_np(pthread_self(), "fh-http-worker");
    pthread_mutex_lock(&s->work_mu);
    for (;;) {
        while (s->work_head == NULL && !s->work_stop)
            pthread_cond_wait(&s->work_cv, &s->work_mu);
        x = s->work_head;
        if (x == NULL)
            break;
        s->work_head = x->next;
        if (s->work_head == NULL)
            s->work_tail = NULL;
        pthread_mutex_unlock(&s->work_mu);
        s->h.run_fn(s->h.arg, x);
        loop_hand_back(x);
        pthread_mutex_lock(&s->work_mu);
    }
    pthread_mutex_unlock(&s->work_mu);
    return NULL;
}

int
http_listen_socket(const struct sockaddr *sa, unsigned int len, int backlog, int *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd, one = 1, e;

    memset(&ss, 0, sizeof(ss));
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A port left in TIME_WAIT by a stopped server is free. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, sa, (socklen_t)len) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (port != NULL)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int
http_server_start(const struct http_config *cfg, const struct http_handler *h, int fd,
                  struct http_server **out)
{
    struct http_server *s;
    struct epoll_event ev;
    struct http_loop *lp;
    int i, ret = ERR_INTERNAL;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return ERR_NOMEM;
    }
    s->cfg = *cfg;
    s->h = *h;
    s->lfd = fd;
    pthread_mutex_init(&s->work_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->resumed_cv, NULL);
    pthread_mutex_init(&s->ip_mu, NULL);
    s->nloops = cfg->threads > 0 ? cfg->threads : 1;
    s->loops = calloc((size_t)s->nloops, sizeof(*s->loops));
    s->workers = calloc(cfg->threads > 0 && cfg->workers > 0 ? (size_t)cfg->workers : 1,
                        sizeof(*s->workers));
    if (s->loops == NULL || s->workers == NULL) {
        ret = ERR_NOMEM;
        goto fail;
    }
    for (i = 0; i < s->nloops; i++) {
        lp = &s->loops[i];
        lp->srv = s;
        pthread_mutex_init(&lp->mu, NULL);
        lp->ep = epoll_create1(EPOLL_CLOEXEC);
        lp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (lp->ep < 0 || lp->evfd < 0)
            goto fail;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = &tag_listen;
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            goto fail;
        ev.events = EPOLLIN;
        ev.data.ptr = &tag_wake;
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->evfd, &ev) != 0)
            goto fail;
    }
    while (cfg->threads > 0 && s->nworkers < cfg->workers) {
        if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0)
            goto fail;
        s->nworkers++;
    }
    for (i = 0; i < s->nloops; i++) {
        if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) != 0)
            goto fail;
        s->loops[i].started = 1;
    }
    *out = s;
    return 0;
fail:
    log_warnx("api: cannot start the HTTP loops or workers");
    http_server_stop(s);
    return ret;
}

void
http_server_stop(struct http_server *s)
{
    struct http_loop *lp;
    int i;

    if (s == NULL)
        return;
    /* The workers finish what they hold; their answers wait in the loops' done lists. */
    pthread_mutex_lock(&s->work_mu);
    s->work_stop = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->work_mu);
    for (i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    /* Suspended exchanges are resumed by their loops, which still run. */
    __atomic_store_n(&s->draining, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&s->work_mu);
    while (__atomic_load_n(&s->suspended, __ATOMIC_SEQ_CST) > 0)
        pthread_cond_wait(&s->resumed_cv, &s->work_mu);
    pthread_mutex_unlock(&s->work_mu);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    for (i = 0; s->loops != NULL && i < s->nloops; i++) {
        lp = &s->loops[i];
        if (lp->started) {
            loop_wake(lp);
            pthread_join(lp->thread, NULL);
        }
    }
    for (i = 0; s->loops != NULL && i < s->nloops; i++) {
        lp = &s->loops[i];
        if (lp->ep >= 0 || lp->evfd >= 0) {
            /* send what the workers answered, as far as the sockets take it now */
            if (lp->evfd > 0)
                loop_done(lp);
            while (lp->conns != NULL) {
                if (lp->conns->st == CS_BUSY)
                    lp->conns->st = CS_LINGER; /* cannot be: the workers are done */
                conn_close(lp->conns);
            }
            loop_free_dead(lp);
        }
        while (lp->nspare > 0)
            free(lp->spare[--lp->nspare]);
        while (lp->nspare_out > 0)
            buf_cleanup(&lp->spare_out[--lp->nspare_out]);
        if (lp->ep > 0)
            close(lp->ep);
        if (lp->evfd > 0)
            close(lp->evfd);
        pthread_mutex_destroy(&lp->mu);
    }
    close(s->lfd);
    for (i = 0; i < HTTP_IP_BUCKETS; i++) {
        while (s->ips[i] != NULL) {
            struct ip_count *ic = s->ips[i];

            s->ips[i] = ic->next;
            free(ic);
        }
    }
    pthread_mutex_destroy(&s->ip_mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->resumed_cv);
    pthread_mutex_destroy(&s->work_mu);
    free(s->workers);
    free(s->loops);
    free(s);
}
