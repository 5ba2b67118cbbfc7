/*
 * The libmicrohttpd glue: listening, reading request bodies under a cap,
 * routing, authentication, the JSON body checks, calling the handler and
 * sending its answer. Everything a request allocates hangs off its struct
 * api_req, which the completion callback frees in one place.
 *
 * Threads: handlers block in the store (a publish waits for the group commit
 * that holds it), so a request must not hold up other connections. With
 * cfg->threads > 0, that many epoll threads hold every connection and parse
 * and send; a complete request is suspended and run on one of SERVER_WORKERS
 * workers, then resumed to send its answer, so 64 clients still give the
 * store 64 requests to commit together. cfg->threads == 0 is one thread per
 * connection instead.
 *
 * Connections: guard.c puts deadlines on request heads and bodies and sheds
 * the oldest idle connections above the limit; head_check() refuses heads a
 * proxy could frame differently (docs/internals/api.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define SERVER_CONN_MAX 16384      /* connections at once, at most (by default) */
#define SERVER_FD_RESERVE 1024     /* open files kept for the store, deliveries and logs */
#define SERVER_CONN_TIMEOUT 60     /* seconds a connection may stay silent (idle keep-alive) */
#define SERVER_STACK_SIZE (1024 * 1024)
#define SERVER_WORKERS 64 /* request workers beside an event loop: requests processed at once */
/*
 * Request heads: libmicrohttpd answers a head that does not fit in a
 * connection's memory itself, with an HTML body, so the memory is larger than
 * our own limits and the handler answers most oversize heads with JSON.
 */
#define SERVER_CONN_MEMORY (32 * 1024) /* bytes of libmicrohttpd memory per connection */
#define SERVER_MAX_URI (4 * 1024)      /* longer URIs answer 414 */
#define SERVER_MAX_HEAD (12 * 1024)    /* larger request heads answer 431 */
#define SERVER_MAX_DRAIN API_MAX_BODY  /* chunked bytes read and dropped past the cap */

struct api_server {
    struct MHD_Daemon *mhd;
    struct api_config cfg;
    char *listen;
    struct api_server_ctx ctx;
    struct api_counters counters;
    struct api_guard *guard;
    int port;

    /*
     * With an event loop (cfg.threads > 0) a request whose handler may block
     * on the store is suspended and handed to these workers, so one slow
     * request never holds up the other connections of its loop thread.
     */
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    struct server_req *work_head, *work_tail; /* requests waiting for a worker */
    pthread_t workers[SERVER_WORKERS];
    int nworkers;     /* workers started */
    int work_stop;    /* 1: workers finish the queue and exit; requests run inline */
};

/* The per-request state that is not part of struct api_req. */
struct server_req {
    struct api_req r;
    int64_t start_ms;
    char *path;     /* owned copy of the URL path */
    char allow[64]; /* Allow header of a 405, or "" */
    const struct api_static *asset;
    struct api_static asset_store;
    struct api_guard_conn *gc; /* the connection's deadlines (borrowed), or NULL */
    size_t dropped; /* body bytes read and dropped past API_MAX_BODY */
    int close;      /* 1: answer with Connection: close (a refused head) */
    int processed;  /* 1: a worker has run req_process(); the answer is due */
    struct server_req *work_next; /* in the server's work queue */
};

/* --- listen addresses --- */

static int
listen_parse(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
             size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char host[256];
    const char *port, *colon;
    size_t hlen;
    char *end;
    long p;
    int rc, ret = ERR_INVAL;

    if (listen == NULL || listen[0] == '\0') {
        snprintf(err, errlen, "expected HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080");
        goto out;
    }
    if (listen[0] == '[') {
        colon = strchr(listen, ']');
        if (colon == NULL || colon[1] != ':') {
            snprintf(err, errlen, "'%s': expected [IPV6]:PORT, such as [::1]:8080", listen);
            goto out;
        }
        hlen = (size_t)(colon - listen - 1);
        if (hlen >= sizeof(host))
            hlen = sizeof(host) - 1;
        memcpy(host, listen + 1, hlen);
        host[hlen] = '\0';
        port = colon + 2;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || strchr(listen, ':') != colon) {
            snprintf(err, errlen,
                     "'%s': expected HOST:PORT, such as 127.0.0.1:8080 "
                     "(IPv6 addresses go in brackets: [::1]:8080)",
                     listen);
            goto out;
        }
        hlen = (size_t)(colon - listen);
        if (hlen >= sizeof(host))
            hlen = sizeof(host) - 1;
        memcpy(host, listen, hlen);
        host[hlen] = '\0';
        port = colon + 1;
    }
    errno = 0;
    p = strtol(port, &end, 10);
    if (port[0] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
        snprintf(err, errlen, "'%s': the port must be a number from 0 to 65535", listen);
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "'%s': cannot resolve host '%s': %s", listen, host, gai_strerror(rc));
        goto out;
    }
    if (ss != NULL) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sslen = res->ai_addrlen;
    }
    ret = 0;
out:
    if (res != NULL)
        freeaddrinfo(res);
    return ret;
}

int
api_listen_check(const char *listen, char *err, size_t errlen)
{
    return listen_parse(listen, NULL, NULL, err, errlen);
}

int
api_listen_probe(const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int fd, one = 1, ret = 0;

    if (listen_parse(listen, &ss, &sslen, err, errlen) != 0)
        return ERR_INVAL;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "'%s': cannot make a socket: %s", listen, strerror(errno));
        return ERR_IO;
    }
    /* As libmicrohttpd binds: a port left in TIME_WAIT by a stopped server is free. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        ret = ERR_IO;
        if (errno == EADDRINUSE)
            snprintf(err, errlen,
                     "cannot listen on '%s': another program is listening on this port; "
                     "stop it, or pick another port such as --listen 127.0.0.1:8081",
                     listen);
        else if (errno == EACCES)
            snprintf(err, errlen,
                     "cannot listen on '%s': ports below 1024 need privileges; pick a port "
                     "from 1024 up, such as --listen 127.0.0.1:8080",
                     listen);
        else if (errno == EADDRNOTAVAIL)
            snprintf(err, errlen,
                     "cannot listen on '%s': this host has no such address; use one of its "
                     "own, such as --listen 127.0.0.1:8080",
                     listen);
        else
            snprintf(err, errlen, "cannot listen on '%s': %s", listen, strerror(errno));
    }
    close(fd);
    return ret;
}

/* --- what a request carries, as libmicrohttpd parsed it --- */

const char *
api_query(struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

const char *
api_header(struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_HEADER_KIND, name);
}

/* --- the JSON body --- */

static int
content_type_is_json(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Parses the body of a ROUTE_JSON or ROUTE_JSON_OPT route into r->json, or answers. */
static int
parse_body(struct api_req *r, int optional)
{
    json_error_t jerr;
    const char *ct;

    if (optional && r->body.len == 0) {
        r->json = json_object();
        return r->json != NULL ? 0 : ERR_NOMEM;
    }
    ct = api_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!content_type_is_json(ct)) {
        api_reply_error(r, ERR_MEDIA, NULL, "Content-Type: expected application/json, got '%.100s'",
                        ct != NULL ? ct : "(none)");
        return ERR_MEDIA;
    }
    if (r->body.len == 0) {
        api_reply_error(r, ERR_PARSE, NULL, "the request body is empty: expected a JSON object");
        return ERR_PARSE;
    }
    r->json =
        json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (r->json == NULL) {
        api_reply_error(r, ERR_PARSE, NULL, "malformed JSON at line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        return ERR_PARSE;
    }
    if (!json_is_object(r->json)) {
        api_reply_error(r, ERR_PARSE, NULL, "the request body must be a JSON object");
        return ERR_PARSE;
    }
    return 0;
}

/* --- one request --- */

static void
req_free(struct server_req *sr)
{
    if (sr == NULL)
        return;
    buf_cleanup(&sr->r.body);
    buf_cleanup(&sr->r.out);
    json_decref(sr->r.json);
    api_key_cleanup(&sr->r.key);
    free(sr->path);
    free(sr);
}

static const char *
method_static(const char *m)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(m, known[i]) == 0)
            return known[i];
    }
    return "OTHER";
}

static struct server_req *
req_new(struct api_server *srv, struct MHD_Connection *conn, const char *method, const char *url)
{
    const union MHD_ConnectionInfo *info;
    struct server_req *sr;

    sr = calloc(1, sizeof(*sr));
    if (sr == NULL)
        return NULL;
    sr->path = strdup(url);
    if (sr->path == NULL) {
        free(sr);
        return NULL;
    }
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    sr->gc = info != NULL ? info->socket_context : NULL;
    sr->start_ms = clock_mono_ms();
    sr->r.ctx = &srv->ctx;
    sr->r.conn = conn;
    sr->r.method = method_static(method);
    sr->r.path = sr->path;
    buf_init(&sr->r.body, API_MAX_BODY);
    buf_init(&sr->r.out, 64 * 1024 * 1024);
    return sr;
}

/* Routes, authenticates, checks the body, runs the handler: r->status etc. are set after. */
static void
req_process(struct api_server *srv, struct server_req *sr)
{
    struct api_req *r = &sr->r;
    const struct route *rt;
    int matched = 0, err, is_v1;

    if (r->body_too_big) {
        api_reply_error(r, ERR_TOOBIG, NULL, "the request body is larger than %d KiB",
                        API_MAX_BODY / 1024);
        return;
    }
    is_v1 = strncmp(r->path, "/v1/", 4) == 0 || strcmp(r->path, "/v1") == 0;
    rt = api_route_find(r->method, r->path, r, &matched);
    if (rt != NULL && srv->cfg.meta_only && !(rt->flags & ROUTE_PUBLIC)) {
        api_reply_error(r, ERR_NOTFOUND, NULL,
                        "this process runs with --role worker and serves no API; "
                        "ask a process with --role api or all");
        return;
    }
    if (rt == NULL && matched) {
        api_route_allow(r->path, sr->allow, sizeof(sr->allow));
        api_reply_error_status(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL,
                               "method %s is not allowed on %.200s; allowed: %s", r->method,
                               r->path, sr->allow);
        return;
    }
    if (rt == NULL) {
        if (!is_v1 && !srv->cfg.meta_only && srv->cfg.static_fn != NULL &&
            (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) &&
            srv->cfg.static_fn(r->path, &sr->asset_store) == 0) {
            sr->asset = &sr->asset_store;
            r->status = MHD_HTTP_OK;
            return;
        }
        api_reply_error(r, ERR_NOTFOUND, NULL, "no such path: %s %.200s", r->method, r->path);
        return;
    }
    if (!(rt->flags & ROUTE_PUBLIC)) {
        if (api_auth(r) != 0)
            return;
        if (api_scope_check(r, rt) != 0 || api_rate_check(r) != 0)
            return;
    }
    if (rt->flags & (ROUTE_JSON | ROUTE_JSON_OPT)) {
        if (parse_body(r, !(rt->flags & ROUTE_JSON)) != 0) {
            if (r->status == 0)
                api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
            return;
        }
    }
    err = rt->fn(r);
    if (r->status == 0) {
        if (err == 0)
            err = ERR_INTERNAL;
        log_warnx("api: handler gave no answer method=%s route=%s err=%s", rt->method, rt->pattern,
                  err_name(err));
        api_reply_error(r, err, NULL, "%s", err_str(err));
    }
}

static void
count_status(struct api_server *srv, int status)
{
    int c = status / 100;

    if (c < 1 || c > 5)
        c = 0;
    __atomic_add_fetch(&srv->counters.by_class[c], 1, __ATOMIC_RELAXED);
}

static enum MHD_Result
req_answer(struct api_server *srv, struct MHD_Connection *conn, struct server_req *sr)
{
    struct api_req *r = &sr->r;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    const char *const *h;
    size_t len;
    char *data;
    int i;

    if (sr->asset != NULL) {
        resp = MHD_create_response_from_buffer(sr->asset->len, (void *)sr->asset->data,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, sr->asset->content_type);
        for (h = sr->asset->headers; h != NULL && h[0] != NULL && h[1] != NULL; h += 2)
            MHD_add_response_header(resp, h[0], h[1]);
    } else {
        len = r->out.len;
        data = buf_steal(&r->out);
        resp = MHD_create_response_from_buffer(
            len, data, data != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (resp == NULL) {
            free(data);
            return MHD_NO;
        }
        if (r->content_type != NULL)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
        if (strncmp(r->path, "/v1", 3) == 0 || r->content_type == NULL ||
            strncmp(r->content_type, "application/json", 16) == 0)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (r->location[0] != '\0')
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
        if (r->retry_after[0] != '\0')
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
        if (sr->allow[0] != '\0')
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, sr->allow);
        for (i = 0; i < r->nheaders; i++)
            MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
        if (sr->close || r->status == MHD_HTTP_CONTENT_TOO_LARGE)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    count_status(srv, r->status);
    ret = MHD_queue_response(conn, (unsigned int)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* --- the request head --- */

/* What head_scan_one() learns from the header fields of one request. */
struct head_scan {
    int n_length;            /* Content-Length fields */
    int n_coding;            /* Transfer-Encoding fields */
    const char *length;      /* the first Content-Length value */
    const char *coding;      /* the first Transfer-Encoding value */
    const char *bad_name;    /* the first field name that is not an RFC 9110 token, or NULL */
};

static int
name_is_token(const char *name, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t i;
    char c;

    if (len == 0)
        return 0;
    for (i = 0; i < len; i++) {
        c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(extra, c) != NULL)))
            return 0;
    }
    return 1;
}

static enum MHD_Result
head_scan_one(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
              const char *value, size_t value_size)
{
    struct head_scan *hs = cls;

    (void)kind;
    (void)value_size;
    /*
     * libmicrohttpd 0.9.75 parses the head in place and glues an obsolete
     * folded line (one starting with a space or tab) to the previous field's
     * name, which it copies to memory allocated after the head. So a fold
     * shows here as a name that is no longer a token, or as a name stored
     * after its own value; a field from one line has its value after its name.
     */
    if (hs->bad_name == NULL &&
        (!name_is_token(key, key_size) || (uintptr_t)value <= (uintptr_t)key + key_size))
        hs->bad_name = key;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (hs->n_length++ == 0)
            hs->length = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (hs->n_coding++ == 0)
            hs->coding = value;
    }
    return MHD_YES;
}

/*
 * Checks the framing and the sizes of a request head before any of its body is
 * read: the forms a proxy in front could read differently (request smuggling)
 * answer 400, an oversize URI 414, an oversize head 431 and an announced body
 * over the cap 413. Returns 0, or the ERR_* after answering (sr->close set).
 */
static int
head_check(struct MHD_Connection *conn, struct server_req *sr, const char *url)
{
    struct api_req *r = &sr->r;
    struct head_scan hs;
    const union MHD_ConnectionInfo *info;
    unsigned long long n;
    char *end;
    int ret = ERR_PARSE;

    memset(&hs, 0, sizeof(hs));
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, head_scan_one, &hs);
    if (hs.bad_name != NULL) {
        api_reply_error(r, ERR_PARSE, NULL,
                        "header name '%.60s' is not a token: obsolete line folding "
                        "or a malformed header line",
                        hs.bad_name);
    } else if (hs.n_length > 1) {
        api_reply_error(r, ERR_PARSE, NULL, "expected at most one Content-Length header, got %d",
                        hs.n_length);
    } else if (hs.n_coding > 1) {
        api_reply_error(r, ERR_PARSE, NULL,
                        "expected at most one Transfer-Encoding header, got %d", hs.n_coding);
    } else if (hs.n_coding == 1 && hs.n_length == 1) {
        api_reply_error(r, ERR_PARSE, NULL,
                        "Content-Length and Transfer-Encoding together: send one of them");
    } else if (hs.n_coding == 1 && strcasecmp(hs.coding, "chunked") != 0) {
        api_reply_error(r, ERR_PARSE, NULL, "Transfer-Encoding: expected 'chunked', got '%.60s'",
                        hs.coding);
    } else if (strlen(url) > SERVER_MAX_URI) {
        api_reply_error_status(r, MHD_HTTP_URI_TOO_LONG, "uri_too_long", NULL,
                               "the URI is longer than %d KiB", SERVER_MAX_URI / 1024);
    } else if ((info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE)) !=
                   NULL &&
               info->header_size > SERVER_MAX_HEAD) {
        api_reply_error_status(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "header_too_large",
                               NULL, "the request head is larger than %d KiB",
                               SERVER_MAX_HEAD / 1024);
    } else {
        ret = 0;
        /* libmicrohttpd has checked that a lone Content-Length is a number. */
        n = hs.length != NULL ? strtoull(hs.length, &end, 10) : 0;
        if (n > API_MAX_BODY) {
            ret = ERR_TOOBIG;
            api_reply_error(r, ERR_TOOBIG, NULL, "the request body is larger than %d KiB",
                            API_MAX_BODY / 1024);
        }
    }
    if (ret != 0)
        sr->close = 1;
    return ret;
}

/* --- request workers (event-loop mode) --- */

static void *
worker_main(void *arg)
{
    struct api_server *srv = arg;
    struct server_req *sr;

    pthread_mutex_lock(&srv->work_mu);
    for (;;) {
        while (srv->work_head == NULL && !srv->work_stop)
            pthread_cond_wait(&srv->work_cv, &srv->work_mu);
        sr = srv->work_head;
        if (sr == NULL)
            break; /* stopping, and the queue is empty */
        srv->work_head = sr->work_next;
        if (srv->work_head == NULL)
            srv->work_tail = NULL;
        pthread_mutex_unlock(&srv->work_mu);
        req_process(srv, sr);
        sr->processed = 1;
        /* The loop thread calls on_request again, which sends the answer. */
        MHD_resume_connection(sr->r.conn);
        pthread_mutex_lock(&srv->work_mu);
    }
    pthread_mutex_unlock(&srv->work_mu);
    return NULL;
}

/*
 * Suspends sr's connection and queues sr for a worker. Returns 0, or -1 when
 * there are no workers (thread per connection) or they are stopping: the
 * caller then processes sr itself.
 */
static int
work_push(struct api_server *srv, struct MHD_Connection *conn, struct server_req *sr)
{
    int ret = -1;

    pthread_mutex_lock(&srv->work_mu);
    if (srv->nworkers > 0 && !srv->work_stop) {
        MHD_suspend_connection(conn);
        sr->work_next = NULL;
        if (srv->work_head == NULL) {
            srv->work_head = srv->work_tail = sr;
        } else if (strcmp(sr->r.path, "/healthz") == 0 || strcmp(sr->r.path, "/metrics") == 0) {
            /* Health checks and scrapes go first, not behind a queue of publishes. */
            sr->work_next = srv->work_head;
            srv->work_head = sr;
        } else {
            srv->work_tail->work_next = sr;
            srv->work_tail = sr;
        }
        pthread_cond_signal(&srv->work_cv);
        ret = 0;
    }
    pthread_mutex_unlock(&srv->work_mu);
    return ret;
}

/* Lets the workers finish what is queued, and joins them. */
static void
workers_stop(struct api_server *srv)
{
    int i;

    pthread_mutex_lock(&srv->work_mu);
    srv->work_stop = 1;
    pthread_cond_broadcast(&srv->work_cv);
    pthread_mutex_unlock(&srv->work_mu);
    for (i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    srv->nworkers = 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct api_server *srv = cls;
    struct server_req *sr = *con_cls;

    (void)version;
    if (sr == NULL) {
        sr = req_new(srv, conn, method, url);
        if (sr == NULL)
            return MHD_NO;
        *con_cls = sr;
        api_guard_conn_head_done(srv->guard, sr->gc);
        /* A refused head is answered before its body is read, and the connection closed. */
        if (head_check(conn, sr, url) != 0)
            return req_answer(srv, conn, sr);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /*
         * Only a chunked body can grow past the cap (a larger Content-Length is
         * refused above). Some of the rest is read and dropped, so the client
         * gets its 413; past that the connection is closed without an answer.
         */
        if (sr->r.body_too_big) {
            sr->dropped += *upload_data_size;
            if (sr->dropped > SERVER_MAX_DRAIN) {
                log_info("api: chunked body far over the cap, closing path=%.200s", sr->r.path);
                return MHD_NO;
            }
        } else if (buf_append(&sr->r.body, upload_data, *upload_data_size) != 0) {
            sr->r.body_too_big = 1;
            sr->close = 1;
            buf_cleanup(&sr->r.body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (sr->processed)
        return req_answer(srv, conn, sr); /* back from a worker */
    if (sr->r.status != 0)
        return MHD_YES; /* answered early */
    api_guard_conn_body_done(srv->guard, sr->gc);
    if (work_push(srv, conn, sr) == 0)
        return MHD_YES;
    req_process(srv, sr);
    return req_answer(srv, conn, sr);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    struct server_req *sr = *con_cls;

    (void)conn;
    if (sr == NULL)
        return;
    api_guard_conn_idle(srv->guard, sr->gc);
    log_debug("api: request method=%s path=%.200s status=%d account=%s ms=%lld%s", sr->r.method,
              sr->r.path, sr->r.status, sr->r.account_id[0] != '\0' ? sr->r.account_id : "-",
              (long long)(clock_mono_ms() - sr->start_ms),
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    req_free(sr);
    *con_cls = NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    struct api_server *srv = cls;
    const union MHD_ConnectionInfo *info;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info != NULL ? api_guard_conn_open(srv->guard, info->connect_fd) : NULL;
    } else {
        /* Called before libmicrohttpd closes the socket (see guard.c). */
        api_guard_conn_close(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

/*
 * libmicrohttpd's own limit for a limit of n connections: connections shed by
 * the guard count until libmicrohttpd has closed them, so a burst of new ones
 * gets this headroom instead of being refused.
 */
static unsigned int
conn_hard_limit(unsigned int n)
{
    return n + n / 8 + 64;
}

/*
 * Connections kept open at once: cfg->max_conns, else what the open-file
 * limit leaves room for (with the headroom above).
 */
static unsigned int
conn_limit(const struct api_config *cfg)
{
    struct rlimit rl;
    rlim_t n = SERVER_CONN_MAX, avail;

    if (cfg->max_conns > 0)
        return (unsigned int)cfg->max_conns;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        avail = rl.rlim_cur > 2 * SERVER_FD_RESERVE ? rl.rlim_cur - SERVER_FD_RESERVE
                                                    : rl.rlim_cur / 2;
        n = avail > 128 ? (avail - 64) * 8 / 9 : 8;
        if (n > SERVER_CONN_MAX)
            n = SERVER_CONN_MAX;
    }
    return (unsigned int)n;
}

__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warnx("api: microhttpd: %s", msg);
}

int
api_server_start(const struct api_config *cfg, struct store *st, struct api_server **out)
{
    struct api_server *srv = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    const union MHD_DaemonInfo *info;
    struct api_guard_config gcfg;
    unsigned int flags, limit;
    char err[256];
    int ret;

    *out = NULL;
    if (listen_parse(cfg->listen, &ss, &sslen, err, sizeof(err)) != 0) {
        log_warnx("api: --listen %s", err);
        ret = ERR_INVAL;
        goto out;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        ret = ERR_NOMEM;
        goto out;
    }
    pthread_mutex_init(&srv->work_mu, NULL);
    pthread_cond_init(&srv->work_cv, NULL);
    srv->cfg = *cfg;
    srv->listen = strdup(cfg->listen);
    if (srv->listen == NULL) {
        ret = ERR_NOMEM;
        goto out;
    }
    srv->cfg.listen = srv->listen;
    srv->ctx.cfg = &srv->cfg;
    srv->ctx.store = st;
    srv->ctx.started_at = clock_now_ms();
    srv->ctx.counters = &srv->counters;

    limit = conn_limit(cfg);
    gcfg.head_ms = cfg->head_timeout_ms;
    gcfg.body_ms = cfg->body_timeout_ms;
    /* Idle connections are shed above the limit, so new clients are not refused. */
    gcfg.shed_at = limit;
    ret = api_guard_new(&gcfg, &srv->guard);
    if (ret != 0)
        goto out;
    srv->ctx.guard = srv->guard;
    if (cfg->rate_limit > 0 || cfg->rate_limit_account > 0) {
        struct api_rate_config rc = {cfg->rate_limit, cfg->rate_limit_account};

        ret = api_rate_new(&rc, &srv->ctx.rate);
        if (ret != 0)
            goto out;
    }

    flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cfg->threads > 0) {
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
        srv->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned int)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, conn_hard_limit(limit),
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->per_ip,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_CONN_TIMEOUT,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, srv, MHD_OPTION_END);
    } else {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
        srv->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, conn_hard_limit(limit),
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->per_ip,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_CONN_TIMEOUT,
            MHD_OPTION_THREAD_STACK_SIZE, (size_t)SERVER_STACK_SIZE,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, srv, MHD_OPTION_END);
    }
    if (srv->mhd == NULL) {
        log_warnx("api: cannot listen on '%s' (address in use, or not permitted)", cfg->listen);
        ret = ERR_IO;
        goto out;
    }
    while (cfg->threads > 0 && srv->nworkers < SERVER_WORKERS) {
        if (pthread_create(&srv->workers[srv->nworkers], NULL, worker_main, srv) != 0) {
            log_warnx("api: cannot start request workers");
            ret = ERR_INTERNAL;
            goto out;
        }
        srv->nworkers++;
    }
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? (int)info->port : 0;
    log_info("api: connections max=%u hard_max=%u per_ip=%d threads=%d head_timeout_ms=%d "
             "body_timeout_ms=%d",
             limit, conn_hard_limit(limit), cfg->per_ip, cfg->threads, cfg->head_timeout_ms, cfg->body_timeout_ms);
    (void)sslen;
    *out = srv;
    srv = NULL;
    ret = 0;
out:
    api_server_stop(srv);
    return ret;
}

int
api_server_port(const struct api_server *srv)
{
    return srv->port;
}

void
api_server_stop(struct api_server *srv)
{
    if (srv == NULL)
        return;
    /*
     * The workers first: what they hold is answered (its connection resumed)
     * before the daemon closes every connection; requests arriving meanwhile
     * are processed on their loop thread.
     */
    workers_stop(srv);
    if (srv->mhd != NULL)
        MHD_stop_daemon(srv->mhd);
    api_guard_free(srv->guard); /* after the daemon: it closes (and forgets) every connection */
    api_rate_free(srv->ctx.rate);
    pthread_cond_destroy(&srv->work_cv);
    pthread_mutex_destroy(&srv->work_mu);
    free(srv->listen);
    free(srv);
}
