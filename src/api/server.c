/*
 * The API server: listening, routing, authentication, the JSON body checks,
 * calling the handler and making its answer. http.c holds the connections
 * (epoll loops, the strict request parser, body caps, keep-alive) and runs
 * complete requests on its workers, since handlers block in the store (a
 * read, or a write waiting for the group commit that holds it). Publishes
 * (ROUTE_LOOP routes) run on the loops instead when the store publishes
 * asynchronously: the handler queues the publish and suspends the request,
 * and the store's completion resumes it (api_suspend(), api_resume()), so
 * no thread waits for a commit. Everything a request allocates
 * hangs off its struct server_req, which done_fn frees in one place.
 *
 * Connections: guard.c puts deadlines on request heads and bodies and on
 * idle connections, and sheds the oldest idle connections above the limit
 * (docs/internals/api.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/secret.h"

#define SERVER_CONN_MAX 16384      /* connections at once, at most (by default) */
#define SERVER_FD_RESERVE 1024     /* open files kept for the store, deliveries and logs */
#define SERVER_IDLE_MS 60000       /* an idle keep-alive connection is closed after this */
#define SERVER_GRACE_MS 5000       /* a 408 and the drain after it (2 s) must be over by then */
#define SERVER_WORKERS 64   /* request workers beside the loops: requests processed at once */
#define SERVER_MAX_QUERY 64 /* query parameters kept (the rest are ignored) */
#define SERVER_BACKLOG 4096

struct api_server {
    struct http_server *http;
    struct api_config cfg;
    char *listen;
    struct api_server_ctx ctx;
    struct api_counters counters;
    struct api_guard *guard;
    int port;
    int loop_routes; /* ROUTE_LOOP routes run on the loops (the store publishes asynchronously) */
};

/* The per-request state that is not part of struct api_req. */
struct server_req {
    struct api_req r;
    struct http_exchange *x; /* the head and the answer (http.c's) */
    int64_t start_ms;
    char *path;  /* copy of the URL path (in sr's own allocation) */
    char *query; /* decoded copy of the query, names and values NUL-separated (the same) */
    const char *qnames[SERVER_MAX_QUERY];
    const char *qvalues[SERVER_MAX_QUERY];
    int nquery;
    char allow[64]; /* Allow header of a 405, or "" */
    const struct api_static *asset;
    struct api_static asset_store;
    size_t body_cap; /* api_body_cap() of the request */
    int close;       /* 1: answer with Connection: close (a refused head) */
    const struct route *rt; /* a ROUTE_LOOP route found at the head, or NULL */
    api_resume_fn *resume;  /* api_suspend()'s continuation, or NULL */
    void *resume_arg;
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
    /* A port left in TIME_WAIT by a stopped server is free. */
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

/* --- what a request carries --- */

const char *
api_query(struct api_req *r, const char *name)
{
    const struct server_req *sr = r->conn;
    int i;

    for (i = 0; i < sr->nquery; i++) {
        if (strcasecmp(sr->qnames[i], name) == 0)
            return sr->qvalues[i];
    }
    return NULL;
}

const char *
api_header(struct api_req *r, const char *name)
{
    const struct server_req *sr = r->conn;

    return sr->x != NULL ? http_head_field(&sr->x->head, name) : NULL;
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

/*
 * Parses the body of a ROUTE_JSON or ROUTE_JSON_OPT route into r->json, or
 * answers. With raw, only checks the Content-Type and that there is a body:
 * the handler parses it (once) itself.
 */
static int
parse_body(struct api_req *r, int optional, int raw)
{
    json_error_t jerr;
    const char *ct;

    if (optional && r->body.len == 0) {
        r->json = json_object();
        return r->json != NULL ? 0 : ERR_NOMEM;
    }
    ct = api_header(r, "Content-Type");
    if (!content_type_is_json(ct)) {
        api_reply_error(r, ERR_MEDIA, NULL, "Content-Type: expected application/json, got '%.100s'",
                        ct != NULL ? ct : "(none)");
        return ERR_MEDIA;
    }
    if (r->body.len == 0) {
        api_reply_error(r, ERR_PARSE, NULL, "the request body is empty: expected a JSON object");
        return ERR_PARSE;
    }
    if (raw)
        return 0;
    r->json =
        json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (r->json == NULL && json_error_code(&jerr) == json_error_out_of_memory) {
        api_reply_error(r, ERR_NOMEM, NULL, "out of memory reading the body");
        return ERR_NOMEM;
    }
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
    free(sr); /* with its copies of the path and the query */
}

static const char *
method_static(const char *m)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    size_t i;

    for (i = 0; m != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(m, known[i]) == 0)
            return known[i];
    }
    return "OTHER";
}

static struct server_req *
req_new(struct api_server *srv, struct http_exchange *x, const char *method, const char *url,
        const char *query)
{
    struct server_req *sr;
    size_t plen = strlen(url), qlen = strlen(query);

    /* One allocation: the request's state, then its path and query. */
    sr = calloc(1, sizeof(*sr) + plen + 1 + qlen + 1);
    if (sr == NULL)
        return NULL;
    sr->path = (char *)(sr + 1);
    memcpy(sr->path, url, plen + 1);
    sr->query = sr->path + plen + 1;
    memcpy(sr->query, query, qlen + 1);
    sr->nquery = api_query_split(sr->query, sr->qnames, sr->qvalues, SERVER_MAX_QUERY);
    sr->x = x;
    sr->start_ms = clock_mono_ms();
    sr->r.ctx = &srv->ctx;
    sr->r.conn = sr;
    sr->r.method = method_static(method);
    sr->r.path = sr->path;
    sr->body_cap = api_body_cap(sr->r.method, sr->path);
    /* Bodies and answers may carry secrets (endpoints, rotations, keys). */
    buf_init_wipe(&sr->r.body, sr->body_cap);
    buf_init_wipe(&sr->r.out, 64 * 1024 * 1024);
    return sr;
}

/* The guard for a handler (or its continuation) that forgot to answer. */
static void
req_answered(struct api_req *r, const struct route *rt, int err)
{
    if (r->status != 0)
        return;
    if (err == 0)
        err = ERR_INTERNAL;
    log_warnx("api: handler gave no answer method=%s route=%s err=%s", rt->method, rt->pattern,
              err_name(err));
    api_reply_error(r, err, NULL, "%s", err_str(err));
}

/*
 * Routes, authenticates, checks the body, runs the handler: r->status etc.
 * are set after, unless the handler suspended the request (sr->resume) or
 * it moved to a worker (api_defer()).
 */
static void
req_process(struct api_server *srv, struct server_req *sr)
{
    struct api_req *r = &sr->r;
    const struct route *rt;
    int matched = 0, err, is_v1;

    if (r->body_too_big) {
        api_reply_error(r, ERR_TOOBIG, NULL, "the request body is larger than %zu KiB",
                        sr->body_cap / 1024);
        return;
    }
    is_v1 = strncmp(r->path, "/v1/", 4) == 0 || strcmp(r->path, "/v1") == 0;
    rt = sr->rt != NULL ? sr->rt : api_route_find(r->method, r->path, r, &matched);
    if (rt != NULL && srv->cfg.meta_only && !(rt->flags & ROUTE_PUBLIC)) {
        api_reply_error(r, ERR_NOTFOUND, NULL,
                        "this process runs with --role worker and serves no API; "
                        "ask a process with --role api or all");
        return;
    }
    if (rt == NULL && matched) {
        api_route_allow(r->path, sr->allow, sizeof(sr->allow));
        api_reply_error_status(r, 405, "method_not_allowed", NULL,
                               "method %s is not allowed on %.200s; allowed: %s", r->method,
                               r->path, sr->allow);
        return;
    }
    if (rt == NULL) {
        if (!is_v1 && !srv->cfg.meta_only && srv->cfg.static_fn != NULL &&
            (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) &&
            srv->cfg.static_fn(r->path, &sr->asset_store) == 0) {
            sr->asset = &sr->asset_store;
            r->status = 200;
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
        if (parse_body(r, !(rt->flags & ROUTE_JSON), rt->flags & ROUTE_RAW) != 0) {
            if (r->status == 0)
                api_reply_error(r, ERR_NOMEM, NULL, "out of memory");
            return;
        }
    }
    err = rt->fn(r);
    if (sr->resume == NULL)
        req_answered(r, rt, err);
}

static void
count_status(struct api_server *srv, int status)
{
    int c = status / 100;

    if (c < 1 || c > 5)
        c = 0;
    __atomic_add_fetch(&srv->counters.by_class[c], 1, __ATOMIC_RELAXED);
}

/* Puts sr's answer into x for http.c to send. */
static void
req_answer(struct api_server *srv, struct http_exchange *x, struct server_req *sr)
{
    struct api_req *r = &sr->r;
    const char *const *h;
    size_t len;
    char *data;
    int i;

    http_answer_start(x, r->status);
    if (sr->asset != NULL) {
        http_answer_header(x, "Content-Type", sr->asset->content_type);
        for (h = sr->asset->headers; h != NULL && h[0] != NULL && h[1] != NULL; h += 2)
            http_answer_header(x, h[0], h[1]);
        http_answer_body(x, sr->asset->data, sr->asset->len, NULL);
    } else {
        len = r->out.len;
        data = len > 0 ? buf_steal(&r->out) : NULL;
        if (data != NULL)
            http_answer_body(x, data, len, secret_heap_free);
        if (r->content_type != NULL)
            http_answer_header(x, "Content-Type", r->content_type);
        if (strncmp(r->path, "/v1", 3) == 0 || r->content_type == NULL ||
            strncmp(r->content_type, "application/json", 16) == 0)
            http_answer_header(x, "Cache-Control", "no-store");
        if (r->location[0] != '\0')
            http_answer_header(x, "Location", r->location);
        if (r->retry_after[0] != '\0')
            http_answer_header(x, "Retry-After", r->retry_after);
        if (sr->allow[0] != '\0')
            http_answer_header(x, "Allow", sr->allow);
        for (i = 0; i < r->nheaders; i++)
            http_answer_header(x, r->headers[i].name, r->headers[i].value);
    }
    if (sr->close || r->status == 413)
        x->close = 1;
    count_status(srv, r->status);
}

/* --- what http.c calls --- */

/* Puts a request whose route never blocks (ROUTE_LOOP) on the loop. */
static void
head_route(struct api_server *srv, struct http_exchange *x, struct server_req *sr)
{
    const struct route *rt;
    int matched = 0;

    if (!srv->loop_routes || strcmp(sr->r.method, "POST") != 0)
        return;
    rt = api_route_find(sr->r.method, sr->r.path, &sr->r, &matched);
    if (rt == NULL || !(rt->flags & ROUTE_LOOP))
        return;
    sr->rt = rt;
    sr->r.on_loop = 1;
    x->run_inline = 1;
}

static int
on_head(void *arg, struct http_exchange *x)
{
    struct api_server *srv = arg;
    struct server_req *sr;

    sr = req_new(srv, x, x->head.method, x->head.path, x->head.query);
    if (sr == NULL) {
        x->close = 1;
        http_answer_start(x, 503);
        return 1;
    }
    x->user = sr;
    x->body = &sr->r.body;
    head_route(srv, x, sr);
    /* An announced body over the cap is refused before any of it is read. */
    if (x->head.length > sr->body_cap) {
        api_reply_error(&sr->r, ERR_TOOBIG, NULL, "the request body is larger than %zu KiB",
                        sr->body_cap / 1024);
        sr->close = 1;
        req_answer(srv, x, sr);
        return 1;
    }
    return 0;
}

/*
 * A request that api_defer() moved off the loop starts again on a worker:
 * what its first run set (the credential, rate-limit headers) is dropped.
 */
static void
req_restart(struct server_req *sr)
{
    struct api_req *r = &sr->r;

    api_key_cleanup(&r->key);
    memset(&r->key, 0, sizeof(r->key));
    r->scopes = 0;
    r->account_id[0] = '\0';
    r->nheaders = 0;
    r->on_loop = 0;
}

static void
on_run(void *arg, struct http_exchange *x)
{
    struct api_server *srv = arg;
    struct server_req *sr = x->user;

    if (sr->r.on_loop && !x->run_inline)
        req_restart(sr);
    /* On the loop a read that would wait fails instead, and the request moves to a worker. */
    store_thread_nowait(sr->r.on_loop);
    req_process(srv, sr);
    store_thread_nowait(0);
    if (sr->resume != NULL || x->defer)
        return;
    req_answer(srv, x, sr);
}

/* A suspended request is back on its loop: its continuation answers. */
static void
on_resume(void *arg, struct http_exchange *x)
{
    struct api_server *srv = arg;
    struct server_req *sr = x->user;
    api_resume_fn *fn = sr->resume;
    int err;

    sr->resume = NULL;
    err = fn(&sr->r, sr->resume_arg);
    req_answered(&sr->r, sr->rt, err);
    req_answer(srv, x, sr);
}

void
api_suspend(struct api_req *r, api_resume_fn *fn, void *arg)
{
    struct server_req *sr = r->conn;

    sr->resume = fn;
    sr->resume_arg = arg;
    http_exchange_suspend(sr->x);
}

void
api_resume(struct api_req *r)
{
    struct server_req *sr = r->conn;

    http_exchange_resume(sr->x);
}

int
api_defer(struct api_req *r)
{
    struct server_req *sr = r->conn;

    http_exchange_defer(sr->x);
    return API_DEFERRED;
}

static void
on_error(void *arg, struct http_exchange *x, int status, const char *type, const char *msg)
{
    struct api_server *srv = arg;
    struct server_req *sr = x->user;

    if (sr == NULL) {
        sr = req_new(srv, x, NULL, "-", "");
        if (sr == NULL)
            return; /* the answer stays bodiless */
        x->user = sr;
    }
    /* The same JSON error as every other answer (reply.c). */
    api_reply_error_status(&sr->r, status, type, NULL, "%s", msg);
    sr->close = 1;
    req_answer(srv, x, sr);
}

static void
on_done(void *arg, struct http_exchange *x)
{
    struct server_req *sr = x->user;

    (void)arg;
    if (sr == NULL)
        return;
    log_debug("api: request method=%s path=%.200s status=%d account=%s ms=%lld", sr->r.method,
              sr->r.path, sr->r.status, sr->r.account_id[0] != '\0' ? sr->r.account_id : "-",
              (long long)(clock_mono_ms() - sr->start_ms));
    req_free(sr);
    x->user = NULL;
}

static void *
guard_open(void *arg, int fd, struct http_deadline *late)
{
    return api_guard_conn_open(arg, fd, late);
}

static void
guard_head(void *arg, void *gc)
{
    api_guard_conn_head_done(arg, gc);
}

static void
guard_body(void *arg, void *gc)
{
    api_guard_conn_body_done(arg, gc);
}

static void
guard_idle(void *arg, void *gc, uint64_t rx)
{
    api_guard_conn_idle(arg, gc, rx);
}

static void
guard_close(void *arg, void *gc)
{
    api_guard_conn_close(arg, gc);
}

/*
 * The hard limit for a limit of n connections: connections shed by the guard
 * count until their loop has closed them, so a burst of new ones
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

int
api_server_start(const struct api_config *cfg, struct store *st, struct api_server **out)
{
    struct api_server *srv = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    struct api_guard_config gcfg;
    struct http_config hcfg;
    struct http_handler hh;
    unsigned int limit;
    char err[256];
    int ret, fd;

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
    gcfg.idle_ms = SERVER_IDLE_MS;
    gcfg.grace_ms = SERVER_GRACE_MS;
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
    fd = http_listen_socket((struct sockaddr *)&ss, sslen, SERVER_BACKLOG, &srv->port);
    if (fd < 0) {
        log_warn("api: cannot listen on '%s'", cfg->listen);
        ret = ERR_IO;
        goto out;
    }
    memset(&hcfg, 0, sizeof(hcfg));
    hcfg.threads = cfg->threads;
    hcfg.workers = SERVER_WORKERS;
    hcfg.max_conns = conn_hard_limit(limit);
    hcfg.per_ip = cfg->per_ip;
    hcfg.conn_open = guard_open;
    hcfg.conn_head = guard_head;
    hcfg.conn_body = guard_body;
    hcfg.conn_idle = guard_idle;
    hcfg.conn_close = guard_close;
    hcfg.conn_arg = srv->guard;
    memset(&hh, 0, sizeof(hh));
    hh.head_fn = on_head;
    hh.run_fn = on_run;
    hh.error_fn = on_error;
    hh.done_fn = on_done;
    hh.resume_fn = on_resume;
    hh.arg = srv;
    /* Without workers a request that must block could not leave the loop. */
    srv->loop_routes = store_publish_async_supported(st) && cfg->threads > 0;
    ret = http_server_start(&hcfg, &hh, fd, &srv->http);
    if (ret != 0)
        goto out;
    log_info("api: connections max=%u hard_max=%u per_ip=%d threads=%d head_timeout_ms=%d "
             "body_timeout_ms=%d",
             limit, conn_hard_limit(limit), cfg->per_ip, cfg->threads, cfg->head_timeout_ms,
             cfg->body_timeout_ms);
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
    /* The workers finish what they hold, then every connection is closed. */
    http_server_stop(srv->http);
    api_guard_free(srv->guard); /* after the loops: they close (and forget) every connection */
    api_rate_free(srv->ctx.rate);
    free(srv->listen);
    free(srv);
}
