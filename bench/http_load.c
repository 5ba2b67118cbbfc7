/*
 * The HTTP ends of bench/pg_scale.py, in C so that neither end is what the
 * bench measures: a publisher that keeps N keep-alive connections busy (or
 * paces requests at a fixed rate) and a receiver that answers every delivery
 * 200 at once. Loopback only.
 *
 * usage:
 *   http_load publish --port P --key KEY [--connections N] [--seconds S | --count C]
 *                     [--rate R] [--event TYPE] [--log FILE] [--batch N]
 *       POSTs /v1/events to 127.0.0.1:P. Without --rate each connection sends
 *       its next request as soon as the answer came (closed loop); with it,
 *       requests are scheduled R per second and go out on a free connection
 *       (open loop). With --batch N each request is a POST /v1/events/batch of
 *       N events (counted as N). Prints one line: "sent=N ok=N failed=N
 *       seconds=S rate=R p50_ms=X p99_ms=Y" (rate in events per second; the
 *       percentiles of request round trips, from when it was due).
 *       With --log, writes "EVENT_ID SCHEDULED_US" per accepted event (the
 *       time the request was due, in CLOCK_REALTIME microseconds).
 *   http_load sink [--port P] [--log FILE] [--status CODE]
 *       Answers every request CODE (200). Prints "port=P" once listening. GET /count
 *       answers the number of POSTs so far. With --log, writes
 *       "EVENT_ID ARRIVAL_US" for each POST to a path ending in /log. Runs
 *       until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "api/http.h"
#include "bench_body.h"
#include <unistd.h>

#define LOAD_MAX_CONNS 256
#define LOAD_BUF 262144
#define LOAD_MAX_LAT (4 * 1024 * 1024) /* round trips whose time is kept */
#define LOAD_MAX_BATCH 500

static int64_t
now_us(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- publish --- */

struct conn {
    int fd;
    int busy;          /* a request is out, its answer not read yet */
    int64_t due_real;  /* when the request in flight was due (CLOCK_REALTIME us) */
    int64_t due_mono;  /* the same in CLOCK_MONOTONIC us */
    size_t sent;       /* bytes of the request written */
    char in[LOAD_BUF]; /* the answer so far */
    size_t inlen;
};

struct load {
    int port;
    const char *key;
    const char *event;
    int nconns;
    double seconds;
    long count;  /* requests to send, 0: until seconds pass */
    double rate; /* requests per second, 0: closed loop */
    FILE *log;
    int batch;    /* events per request, 0: POST /v1/events */
    char *req;
    size_t reqlen;
    long sent, ok, failed;
    int64_t *lat; /* round trips in us */
    long nlat;
};

static int
conn_open(int port)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Writes the request; blocking is fine, it is small and the socket is fresh or idle. */
static int
conn_send(struct load *l, struct conn *c, int64_t due_real, int64_t due_mono)
{
    size_t off = 0;
    ssize_t n;

    while (off < l->reqlen) {
        n = write(c->fd, l->req + off, l->reqlen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    c->busy = 1;
    c->inlen = 0;
    c->due_real = due_real;
    c->due_mono = due_mono;
    l->sent++;
    return 0;
}

/*
 * Reads what arrived. Returns 1 when a whole answer is in (and counts it),
 * 0 when more is to come, -1 when the connection broke.
 */
static int
conn_read(struct load *l, struct conn *c)
{
    char *hdr_end, *p, *id;
    long status, clen = 0;
    size_t head;
    ssize_t n;

    n = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->inlen += (size_t)n;
    c->in[c->inlen] = '\0';
    hdr_end = strstr(c->in, "\r\n\r\n");
    if (hdr_end == NULL)
        return c->inlen >= sizeof(c->in) - 1 ? -1 : 0;
    head = (size_t)(hdr_end - c->in) + 4;
    for (p = strstr(c->in, "\r\n"); p != NULL && p < hdr_end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            clen = strtol(p + 17, NULL, 10);
    }
    if (c->inlen < head + (size_t)clen)
        return 0;
    status = strtol(c->in + 9, NULL, 10);
    if (l->lat != NULL && l->nlat < LOAD_MAX_LAT)
        l->lat[l->nlat++] = now_us(CLOCK_MONOTONIC) - c->due_mono;
    if (l->batch > 0 && status == 200) {
        /* Each event of the batch answers on its own. */
        for (p = c->in + head; (p = strstr(p, "\"status\":")) != NULL; p += 9) {
            if (strncmp(p + 9, "202", 3) == 0 || strncmp(p + 9, "200", 3) == 0)
                l->ok++;
            else
                l->failed++;
        }
    } else if (status == 202 || status == 200) {
        l->ok++;
        id = strstr(c->in + head, "\"id\":\"");
        if (l->log != NULL && id != NULL) {
            id += 6;
            fprintf(l->log, "%.*s %lld\n", (int)strcspn(id, "\""), id, (long long)c->due_real);
        }
    } else {
        l->failed++;
    }
    c->busy = 0;
    c->inlen = 0;
    return 1;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of the round trips, in ms. */
static double
lat_pct(struct load *l, int p)
{
    long i;

    if (l->nlat == 0)
        return 0;
    i = (l->nlat * p + 99) / 100 - 1;
    return (double)l->lat[i < 0 ? 0 : i] / 1000.0;
}

/*
 * The request every connection sends: one event of about 600 bytes (a
 * user.message whose content pads it), or a batch of l->batch of them.
 */
static int
request_build(struct load *l)
{
    char one[1024];
    size_t cap, blen = 0;
    char *body;
    int n, i, olen;

    olen = snprintf(one, sizeof(one), "{\"event\":\"%s\",\"data\":" BENCH_EVENT_DATA "}", l->event);
    cap = ((size_t)olen + 1) * (size_t)(l->batch > 0 ? l->batch : 1) + 64;
    body = malloc(cap);
    l->req = malloc(cap + 512);
    if (body == NULL || l->req == NULL) {
        free(body);
        return -1;
    }
    if (l->batch > 0) {
        blen += (size_t)snprintf(body, cap, "{\"events\":[");
        for (i = 0; i < l->batch; i++)
            blen += (size_t)snprintf(body + blen, cap - blen, "%s%s", i > 0 ? "," : "", one);
        blen += (size_t)snprintf(body + blen, cap - blen, "]}");
    } else {
        blen = (size_t)snprintf(body, cap, "%s", one);
    }
    n = snprintf(l->req, cap + 512,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 l->batch > 0 ? "/v1/events/batch" : "/v1/events", l->port, l->key, blen, body);
    free(body);
    l->reqlen = (size_t)n;
    return 0;
}

static int
publish(struct load *l)
{
    struct conn *conns = calloc((size_t)l->nconns, sizeof(*conns));
    struct epoll_event ev, evs[LOAD_MAX_CONNS];
    int64_t start, end, next_due, now, start_real;
    long scheduled = 0;
    int ep = -1, i, n, rc = 1;

    l->lat = malloc(LOAD_MAX_LAT * sizeof(*l->lat));
    if (conns == NULL || l->lat == NULL || request_build(l) != 0) {
        free(conns);
        return 1;
    }
    for (i = 0; i < l->nconns; i++)
        conns[i].fd = -1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (i = 0; i < l->nconns; i++) {
        conns[i].fd = conn_open(l->port);
        if (conns[i].fd < 0) {
            fprintf(stderr, "http_load: cannot connect to 127.0.0.1:%d: %s\n", l->port,
                    strerror(errno));
            goto out;
        }
        ev.events = EPOLLIN;
        ev.data.ptr = &conns[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    start = now_us(CLOCK_MONOTONIC);
    start_real = now_us(CLOCK_REALTIME);
    end = start + (int64_t)(l->seconds * 1e6);
    next_due = start;
    for (;;) {
        struct timespec wait = {.tv_sec = 0, .tv_nsec = 100000000L};

        now = now_us(CLOCK_MONOTONIC);
        /* Hand out due requests to idle connections. */
        for (i = 0; i < l->nconns; i++) {
            int more = l->count > 0 ? scheduled < l->count : now < end;

            if (!more)
                break;
            if (conns[i].busy || conns[i].fd < 0)
                continue;
            if (l->rate > 0 && next_due > now)
                break;
            if (conn_send(l, &conns[i],
                          l->rate > 0 ? start_real + (next_due - start) : now_us(CLOCK_REALTIME),
                          l->rate > 0 ? next_due : now_us(CLOCK_MONOTONIC)) != 0) {
                close(conns[i].fd);
                conns[i].fd = -1;
                l->failed++;
                continue;
            }
            scheduled++;
            if (l->rate > 0)
                next_due = start + (int64_t)((double)scheduled * 1e6 / l->rate);
        }
        for (i = 0, n = 0; i < l->nconns; i++)
            n += conns[i].busy;
        if (n == 0 && (l->count > 0 ? scheduled >= l->count : now >= end))
            break;
        /*
         * To the microsecond: a timeout in whole milliseconds is 0 for the
         * next request due in under 1 ms (every one at rates above 1k/s), and
         * the loop spun on a core that the server under test needs.
         */
        if (l->rate > 0 && next_due > now && next_due - now < 100000)
            wait.tv_nsec = (long)(next_due - now) * 1000L;
        n = epoll_pwait2(ep, evs, LOAD_MAX_CONNS, &wait, NULL);
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (conn_read(l, c) < 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->busy = 0;
                c->fd = -1;
                l->failed++;
            }
        }
    }
    now = now_us(CLOCK_MONOTONIC);
    qsort(l->lat, (size_t)l->nlat, sizeof(*l->lat), cmp_i64);
    printf("sent=%ld ok=%ld failed=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           l->sent, l->ok, l->failed, (double)(now - start) / 1e6,
           (double)l->ok * 1e6 / (double)(now - start), lat_pct(l, 50), lat_pct(l, 99));
    rc = l->failed > 0 ? 1 : 0;
out:
    for (i = 0; i < l->nconns; i++) {
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    }
    if (ep >= 0)
        close(ep);
    free(conns);
    free(l->lat);
    free(l->req);
    return rc;
}

/* --- sink --- */

static atomic_long sink_posts;
static unsigned int sink_status = 200; /* what every POST is answered */
static FILE *sink_log;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

/* The sink's http.c handler (http_head_inline_drop: the body is read and dropped). */
static void
sink_run(void *arg, struct http_exchange *x)
{
    const char *url = x->head.path, *id;
    char text[32];
    size_t len;
    int get = strcmp(x->head.method, "GET") == 0;

    (void)arg;
    http_answer_start(x, get ? 200 : (int)sink_status);
    if (get && strcmp(url, "/count") == 0) {
        snprintf(text, sizeof(text), "%ld\n", atomic_load(&sink_posts));
        x->user = strdup(text);
        if (x->user != NULL)
            http_answer_body(x, x->user, strlen(x->user), free);
        x->user = NULL;
        return;
    }
    atomic_fetch_add(&sink_posts, 1);
    len = strlen(url);
    id = http_head_field(&x->head, "X-Workflux-Event-Id");
    if (sink_log != NULL && id != NULL && len >= 4 && strcmp(url + len - 4, "/log") == 0) {
        pthread_mutex_lock(&sink_lock);
        fprintf(sink_log, "%s %lld\n", id, (long long)now_us(CLOCK_REALTIME));
        fflush(sink_log);
        pthread_mutex_unlock(&sink_lock);
    }
}

static int
sink(int port)
{
    struct http_config hc = {.threads = 2, .max_conns = 2000};
    struct http_handler hh = {
        .head_fn = http_head_inline_drop, .run_fn = sink_run, .error_fn = http_error_bare};
    struct http_server *d = NULL;
    struct sockaddr_in sa;
    sigset_t sigs;
    int sig = 0, fd, bound = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    fd = http_listen_socket((struct sockaddr *)&sa, sizeof(sa), 1024, &bound);
    if (fd < 0 || http_server_start(&hc, &hh, fd, &d) != 0) {
        fprintf(stderr, "http_load: cannot listen on port %d\n", port);
        return 1;
    }
    printf("port=%d\n", bound);
    fflush(stdout);
    while (sig == 0) {
        if (sigwait(&sigs, &sig) != 0)
            sig = 0;
    }
    http_server_stop(d);
    return 0;
}

static void
usage(void)
{
    fprintf(stderr, "usage: http_load publish --port P --key KEY [--connections N] "
                    "[--seconds S | --count C] [--rate R] [--event TYPE] [--log FILE] "
                    "[--batch N]\n"
                    "       http_load sink [--port P] [--log FILE] [--status CODE]\n");
}

int
main(int argc, char **argv)
{
    struct load l;
    const char *logpath = NULL;
    int i, port = 0, rc;

    memset(&l, 0, sizeof(l));
    l.nconns = 32;
    l.seconds = 5;
    l.event = "user.message";
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage();
        return 2;
    }
    for (i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--key") == 0)
            l.key = argv[i + 1];
        else if (strcmp(argv[i], "--connections") == 0)
            l.nconns = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            l.seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--count") == 0)
            l.count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            l.rate = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--event") == 0)
            l.event = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            logpath = argv[i + 1];
        else if (strcmp(argv[i], "--batch") == 0)
            l.batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--status") == 0)
            sink_status = (unsigned int)atoi(argv[i + 1]);
        else
            break;
    }
    if (i != argc || (strcmp(argv[1], "publish") != 0 && strcmp(argv[1], "sink") != 0) ||
        l.nconns < 1 || l.nconns > LOAD_MAX_CONNS || sink_status < 100 || sink_status > 599 ||
        l.batch < 0 || l.batch > LOAD_MAX_BATCH) {
        usage();
        return 2;
    }
    if (logpath != NULL) {
        FILE *f = fopen(logpath, "w");

        if (f == NULL) {
            fprintf(stderr, "http_load: cannot write '%s': %s\n", logpath, strerror(errno));
            return 1;
        }
        if (strcmp(argv[1], "sink") == 0)
            sink_log = f;
        else
            l.log = f;
    }
    if (strcmp(argv[1], "sink") == 0) {
        rc = sink(port);
    } else {
        l.port = port;
        if (l.key == NULL || port <= 0) {
            usage();
            return 2;
        }
        rc = publish(&l);
    }
    if (l.log != NULL)
        fclose(l.log);
    if (sink_log != NULL)
        fclose(sink_log);
    return rc;
}
