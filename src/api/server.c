/*
 * The libmicrohttpd glue: listening, reading request bodies under a cap,
 * routing, authentication, the JSON body checks, calling the handler and
 * sending its answer. Everything a request allocates hangs off its struct
 * api_req, which the completion callback frees in one place.
 *
 * Threads: by default one thread per connection. Handlers block in the store
 * (a publish waits for the group commit that holds it), so a connection must
 * not hold up the others; with a thread each, 64 clients give the store 64
 * requests to commit together. cfg->threads > 0 selects a pool of that many
 * epoll threads instead (for handlers that do not block).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "api/api_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define SERVER_CONN_LIMIT 1024 /* connections at once */
#define SERVER_CONN_TIMEOUT 60 /* seconds an idle connection is kept */
#define SERVER_STACK_SIZE (1024 * 1024)
#define SERVER_EARLY_413 (4 * API_MAX_BODY) /* larger announced bodies are not even read */

struct api_server {
    struct MHD_Daemon *mhd;
    struct api_config cfg;
    char *listen;
    struct api_server_ctx ctx;
    struct api_counters counters;
    int port;
};

/* The per-request state that is not part of struct api_req. */
struct server_req {
    struct api_req r;
    int64_t start_ms;
    char *path;     /* owned copy of the URL path */
    char allow[64]; /* Allow header of a 405, or "" */
    const struct api_static *asset;
    struct api_static asset_store;
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
    struct server_req *sr;

    sr = calloc(1, sizeof(*sr));
    if (sr == NULL)
        return NULL;
    sr->path = strdup(url);
    if (sr->path == NULL) {
        free(sr);
        return NULL;
    }
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
        if ((rt->flags & ROUTE_ADMIN) && !r->key.admin) {
            api_reply_error(r, ERR_FORBIDDEN, NULL, "%s %s needs an admin key", rt->method,
                            rt->pattern);
            return;
        }
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
        if (r->status == MHD_HTTP_CONTENT_TOO_LARGE)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    count_status(srv, r->status);
    ret = MHD_queue_response(conn, (unsigned int)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct api_server *srv = cls;
    struct server_req *sr = *con_cls;
    const char *cl;
    char *end;
    unsigned long long n;

    (void)version;
    if (sr == NULL) {
        sr = req_new(srv, conn, method, url);
        if (sr == NULL)
            return MHD_NO;
        *con_cls = sr;
        /* A body announced far past the cap is refused before it is read. */
        cl = api_header(&sr->r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            errno = 0;
            n = strtoull(cl, &end, 10);
            if (errno == 0 && n > SERVER_EARLY_413) {
                sr->r.body_too_big = 1;
                req_process(srv, sr);
                return req_answer(srv, conn, sr);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Past the cap the rest is read and dropped, so the client gets its 413. */
        if (!sr->r.body_too_big && buf_append(&sr->r.body, upload_data, *upload_data_size) != 0) {
            sr->r.body_too_big = 1;
            buf_cleanup(&sr->r.body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (sr->r.status != 0)
        return MHD_YES; /* answered early */
    req_process(srv, sr);
    return req_answer(srv, conn, sr);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct server_req *sr = *con_cls;

    (void)cls;
    (void)conn;
    if (sr == NULL)
        return;
    log_debug("api: request method=%s path=%.200s status=%d account=%s ms=%lld%s", sr->r.method,
              sr->r.path, sr->r.status, sr->r.account_id[0] != '\0' ? sr->r.account_id : "-",
              (long long)(clock_mono_ms() - sr->start_ms),
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    req_free(sr);
    *con_cls = NULL;
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
    unsigned int flags;
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

    flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cfg->threads > 0) {
        flags |= MHD_USE_EPOLL;
        srv->mhd =
            MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
                             on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SERVER_CONN_LIMIT,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_CONN_TIMEOUT,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    } else {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
        srv->mhd =
            MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
                             on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SERVER_CONN_LIMIT,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_CONN_TIMEOUT,
                             MHD_OPTION_THREAD_STACK_SIZE, (size_t)SERVER_STACK_SIZE,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    }
    if (srv->mhd == NULL) {
        log_warnx("api: cannot listen on '%s' (address in use, or not permitted)", cfg->listen);
        ret = ERR_IO;
        goto out;
    }
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? (int)info->port : 0;
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
    if (srv->mhd != NULL)
        MHD_stop_daemon(srv->mhd);
    free(srv->listen);
    free(srv);
}
