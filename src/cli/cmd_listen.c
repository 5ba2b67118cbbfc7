/*
 * fluxhook listen: a local receiver for development. It prints every
 * delivery that arrives (event, ids, attempt, and whether each signature
 * verifies, with libfluxhook-verify's own functions) and answers with the
 * chosen status after the chosen delay, so that retries and disabling can be
 * watched. It listens on 127.0.0.1 only and stops cleanly on SIGINT or
 * SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "cli/cli.h"
#include "fluxhook/verify.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/err.h"

#define LISTEN_MAX_BODY (4 * 1024 * 1024) /* larger bodies are answered 413 */
#define LISTEN_MAX_CODES 32

static int listen_run(int argc, char **argv);

static const struct config_opt listen_opts[] = {
    {"port", "P", "9000", "port on 127.0.0.1 (0 picks a free one)", 0, 'p'},
    {"secret", "S", NULL,
     "the endpoint's secret, whsec_..., to verify both signatures (or FLUXHOOK_SECRET)", 1, 's'},
    {"respond", "CODE[,CODE...]", "200",
     "status to answer; a list answers the Nth request with the Nth code, then the last", 0, 'r'},
    {"delay", "DURATION", "0ms", "wait this long before answering, such as 2s", 0, 'd'},
    {"body", NULL, NULL, "print each delivery's body too", 0, 'b'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

const struct cli_cmd cmd_listen = {
    .name = "listen",
    .usage = "[--port P] [--secret S] [--respond CODE[,CODE...]] [--delay DURATION] [--body]",
    .summary = "a local receiver for development: print each delivery and check its signatures",
    .opts = listen_opts,
    .run = listen_run,
};

struct listener {
    const char *secret;          /* borrowed, or NULL */
    int codes[LISTEN_MAX_CODES]; /* answers in order; the last repeats */
    int ncodes;
    int64_t delay_ms;
    int print_body;
    atomic_long count; /* requests seen */
    atomic_int stopping;
    pthread_mutex_t out; /* one block at a time on stdout */
};

/* What one request collects while its body arrives. */
struct listen_req {
    struct buf body;
    int too_big;
};

static const char *
verdict(int code)
{
    return code == FLUXHOOK_VERIFY_OK ? "verified" : fluxhook_verify_strerror(code);
}

/* Prints one delivery's block. */
static void
block_print(struct listener *l, struct MHD_Connection *conn, const char *method, const char *url,
            const struct listen_req *rq, long n, int status)
{
    const char *ev, *evid, *dlv, *att, *xsig, *wid, *wts, *wsig;
    char now[CLOCK_RFC3339_MAX], line1[128], line2[128];
    int64_t now_ms = clock_now_ms();
    int r;

    ev = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Workflux-Event");
    evid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Workflux-Event-Id");
    dlv = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Workflux-Delivery");
    att = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Workflux-Attempt");
    xsig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Workflux-Signature");
    wid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    wts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-timestamp");
    wsig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-signature");
    if (l->secret == NULL) {
        snprintf(line1, sizeof(line1), "not checked (no --secret)");
        snprintf(line2, sizeof(line2), "not checked (no --secret)");
    } else {
        if (xsig == NULL) {
            snprintf(line1, sizeof(line1), "FAILED: header missing");
        } else {
            r = fluxhook_verify_signature(l->secret, rq->body.data != NULL ? rq->body.data : "",
                                          rq->body.len, xsig);
            snprintf(line1, sizeof(line1), "%s%s", r == 0 ? "" : "FAILED: ", verdict(r));
        }
        if (wid == NULL || wts == NULL || wsig == NULL) {
            snprintf(line2, sizeof(line2), "FAILED: header missing");
        } else {
            r = fluxhook_verify_standard(l->secret, wid, wts, wsig,
                                         rq->body.data != NULL ? rq->body.data : "", rq->body.len,
                                         now_ms / 1000, FLUXHOOK_VERIFY_DEFAULT_TOLERANCE);
            snprintf(line2, sizeof(line2), "%s%s", r == 0 ? "" : "FAILED: ", verdict(r));
        }
    }
    clock_format_rfc3339(now_ms, now);
    pthread_mutex_lock(&l->out);
    printf("%s  #%ld %s %s (%zu bytes)\n", now, n, method, url, rq->body.len);
    printf("  event                 %s\n", ev != NULL ? ev : "-");
    printf("  event id              %s\n", evid != NULL ? evid : "-");
    printf("  delivery id           %s\n", dlv != NULL ? dlv : "-");
    printf("  attempt               %s\n", att != NULL ? att : "-");
    printf("  X-Workflux-Signature  %s\n", line1);
    printf("  webhook-signature     %s\n", line2);
    if (l->print_body)
        printf("  body                  %.*s\n", (int)rq->body.len,
               rq->body.data != NULL ? rq->body.data : "");
    if (l->delay_ms > 0)
        printf("  answer                %d after %lldms\n", status, (long long)l->delay_ms);
    else
        printf("  answer                %d\n", status);
    fflush(stdout);
    pthread_mutex_unlock(&l->out);
}

/* Sleeps ms in short steps, returning early when the listener stops. */
static void
delay_wait(struct listener *l, int64_t ms)
{
    struct timespec ts = {0, 20 * 1000000L};
    int64_t end = clock_mono_ms() + ms;

    while (!atomic_load(&l->stopping) && clock_mono_ms() < end)
        nanosleep(&ts, NULL);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct listener *l = cls;
    struct listen_req *rq = *con_cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    long n;
    int status;

    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        buf_init(&rq->body, LISTEN_MAX_BODY);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!rq->too_big && buf_append(&rq->body, upload, *upload_size) != 0)
            rq->too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    n = atomic_fetch_add(&l->count, 1) + 1;
    status = l->codes[n - 1 < l->ncodes ? n - 1 : l->ncodes - 1];
    if (rq->too_big)
        status = 413;
    block_print(l, conn, method, url, rq, n, status);
    if (l->delay_ms > 0)
        delay_wait(l, l->delay_ms);
    resp = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    ret = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct listen_req *rq = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (rq == NULL)
        return;
    buf_cleanup(&rq->body);
    free(rq);
    *con_cls = NULL;
}

/* Parses "200" or "503,503,200" into l->codes. Returns 0 or ERR_PARSE. */
static int
codes_parse(struct listener *l, const char *s)
{
    char *end;
    long v;

    l->ncodes = 0;
    for (;;) {
        v = strtol(s, &end, 10);
        if (end == s || v < 100 || v > 599 || l->ncodes == LISTEN_MAX_CODES)
            return ERR_PARSE;
        l->codes[l->ncodes++] = (int)v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return ERR_PARSE;
        s = end + 1;
    }
}

static int
listen_run(int argc, char **argv)
{
    struct config c;
    struct listener l;
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    sigset_t set, old;
    const char *v;
    char *end;
    long port;
    int rc, sig, mutex_ok = 0;

    memset(&l, 0, sizeof(l));
    rc = cli_parse(&cmd_listen, &c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.nargs > 0) {
        fprintf(stderr, "fluxhook listen: unexpected argument '%s'\nusage: fluxhook listen %s\n",
                c.args[0], cmd_listen.usage);
        return CLI_USAGE;
    }
    v = config_get(&c, "port");
    port = strtol(v, &end, 10);
    if (*end != '\0' || end == v || port < 0 || port > 65535) {
        fprintf(stderr, "fluxhook listen: --port: expected 0 to 65535\nusage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    if (codes_parse(&l, config_get(&c, "respond")) != 0) {
        fprintf(stderr,
                "fluxhook listen: --respond: expected HTTP statuses 100 to 599, such as "
                "503,503,200\nusage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    if (clock_parse_duration(config_get(&c, "delay"), &l.delay_ms) != 0) {
        fprintf(stderr,
                "fluxhook listen: --delay: expected a duration such as 500ms or 2s\n"
                "usage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    l.secret = config_get(&c, "secret");
    l.print_body = config_bool(&c, "body");
    atomic_init(&l.count, 0);
    atomic_init(&l.stopping, 0);
    if (pthread_mutex_init(&l.out, NULL) != 0) {
        rc = CLI_REFUSED;
        goto out;
    }
    mutex_ok = 1;
    /* The daemon's threads inherit the blocked signals; this thread waits for them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, on_request, &l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &l,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "fluxhook listen: cannot listen on 127.0.0.1:%ld (in use?)\n", port);
        rc = CLI_REFUSED;
        goto out;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listen: listening url=http://127.0.0.1:%u\n",
           info != NULL ? (unsigned)info->port : (unsigned)port);
    if (l.secret == NULL)
        printf("listen: no --secret: signatures are not checked\n");
    fflush(stdout);
    sig = 0;
    sigwait(&set, &sig);
    atomic_store(&l.stopping, 1);
    rc = CLI_OK;
out:
    if (d != NULL)
        MHD_stop_daemon(d);
    if (d != NULL) {
        printf("listen: stopped deliveries=%ld\n", atomic_load(&l.count));
        fflush(stdout);
    }
    if (mutex_ok) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_mutex_destroy(&l.out);
    }
    return rc;
}
