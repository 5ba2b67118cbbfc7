/*
 * Delivery throughput of the dispatcher: N events fanned out to E endpoints
 * are queued in a SQLite store (WAL, synchronous=FULL), then the dispatcher
 * drains the backlog to a keep-alive HTTP sink on loopback (fluxhook's own
 * HTTP server, src/api/http.c, in this process, answering 204). Prints one row per thread count, so
 * the numbers compare as ratios measured in one run.
 *
 * usage: bench_dispatch_drain [-n EVENTS] [-e ENDPOINTS] [-t THREADS,...] [-d DIR|:memory:]
 * (-d :memory: takes the store's disk out of the measurement)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "dispatch/dispatch.h"
#include "sign/sign.h"
#include "bench_cpu.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"
#include "util/log.h"

#define MAX_EPS 64
#define PUBLISHERS 8

static atomic_long sink_count;

/* The sink's http.c handler (http_head_inline_drop: the body is read and dropped). */
static void
sink_run(void *arg, struct http_exchange *x)
{
    (void)arg;
    http_answer_start(x, 204);
    atomic_fetch_add(&sink_count, 1);
}

struct publisher {
    struct store *st;
    const struct endpoint *eps;
    int neps;
    long count;
    long failures;
    pthread_t thread;
};

static void *
publisher_main(void *arg)
{
    struct publisher *p = arg;
    char body[512];
    struct event ev;
    long i;
    int len;

    for (i = 0; i < p->count; i++) {
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.account_id, sizeof(ev.account_id), "acct_bench");
        snprintf(ev.type, sizeof(ev.type), "conversation.started");
        if (id_new("evt_", ev.id) != 0) {
            p->failures++;
            continue;
        }
        ev.created_at = clock_now_ms();
        clock_format_rfc3339_s(ev.created_at, ev.timestamp);
        len = snprintf(body, sizeof(body),
                       "{\"id\":\"%s\",\"event\":\"conversation.started\",\"timestamp\":\"%s\","
                       "\"data\":{\"conversation_id\":\"conv_%ld\",\"agent_id\":\"agent_7\","
                       "\"channel\":\"web\",\"initial_message\":\"Hello, I need help with my "
                       "order that arrived damaged yesterday\"}}",
                       ev.id, ev.timestamp, i);
        ev.body = strdup(body);
        ev.body_len = (size_t)len;
        if (ev.body == NULL || store_event_publish(p->st, &ev, p->eps, (size_t)p->neps) != 0)
            p->failures++;
        event_cleanup(&ev);
    }
    return NULL;
}

/* Queues events x neps deliveries in a fresh store at path. */
static int
fill(struct store *st, struct endpoint *eps, int neps, int port, long events)
{
    struct publisher ps[PUBLISHERS];
    struct account acct = {.name = "bench"};
    char secret[SIGN_SECRET_MAX];
    char url[128];
    long failures = 0;
    int i;
    int err;

    snprintf(acct.id, sizeof(acct.id), "acct_bench");
    err = store_account_insert(st, &acct);
    for (i = 0; i < neps && err == 0; i++) {
        memset(&eps[i], 0, sizeof(eps[i]));
        id_new("ep_", eps[i].id);
        snprintf(eps[i].account_id, sizeof(eps[i].account_id), "acct_bench");
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook/%d", port, i);
        sign_secret_new(secret);
        eps[i].url = strdup(url);
        eps[i].description = strdup("");
        eps[i].event_types = strdup("");
        eps[i].secret = strdup(secret);
        err = store_endpoint_insert(st, &eps[i]);
    }
    if (err != 0)
        return err;
    for (i = 0; i < PUBLISHERS; i++) {
        ps[i].st = st;
        ps[i].eps = eps;
        ps[i].neps = neps;
        ps[i].failures = 0;
        ps[i].count = events / PUBLISHERS + (i < events % PUBLISHERS ? 1 : 0);
        pthread_create(&ps[i].thread, NULL, publisher_main, &ps[i]);
    }
    for (i = 0; i < PUBLISHERS; i++) {
        pthread_join(ps[i].thread, NULL);
        failures += ps[i].failures;
    }
    return failures > 0 ? ERR_STORE : 0;
}

static int
run(const char *dir, int round, long events, int neps, int threads, int port, double *secs,
    double *cpu_per)
{
    struct dispatch_config cfg;
    struct dispatcher *d = NULL;
    struct endpoint eps[MAX_EPS];
    struct store *st = NULL;
    char url[512];
    char cmd[600];
    long want = events * neps;
    long start;
    int64_t t0;
    int64_t t1;
    int64_t cpu0;
    int64_t deadline;
    int err;
    int i;

    memset(eps, 0, sizeof(eps));
    if (strcmp(dir, ":memory:") == 0)
        snprintf(url, sizeof(url), "sqlite::memory:");
    else
        snprintf(url, sizeof(url), "sqlite:%s/drain-%d.db", dir, round);
    err = store_open(url, &st);
    if (err != 0)
        goto out;
    err = fill(st, eps, neps, port, events);
    if (err != 0)
        goto out;
    dispatch_config_default(&cfg);
    cfg.allow_http = 1;
    cfg.allow_networks = "127.0.0.0/8";
    cfg.threads = threads;
    start = atomic_load(&sink_count);
    t0 = clock_mono_ms();
    cpu0 = bench_cpu_us();
    err = dispatch_start(&cfg, st, &d);
    if (err != 0)
        goto out;
    deadline = t0 + 600000;
    while (atomic_load(&sink_count) - start < want && clock_mono_ms() < deadline)
        usleep(1000);
    t1 = clock_mono_ms();
    *cpu_per = (double)(bench_cpu_us() - cpu0) / (double)want;
    dispatch_stop(d, 1000);
    if (atomic_load(&sink_count) - start < want) {
        fprintf(stderr, "bench_dispatch_drain: only %ld of %ld deliveries arrived\n",
                atomic_load(&sink_count) - start, want);
        err = ERR_TIMEOUT;
        goto out;
    }
    *secs = (double)(t1 - t0) / 1000.0;
    if (*secs <= 0)
        *secs = 0.001;
out:
    store_close(st);
    for (i = 0; i < neps; i++)
        endpoint_cleanup(&eps[i]);
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/drain-%d.db*", dir, round);
    if (strcmp(dir, ":memory:") != 0 && system(cmd) != 0)
        fprintf(stderr, "bench_dispatch_drain: cannot remove the bench database\n");
    return err;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct http_config hc = {.threads = 2, .max_conns = 4096};
    struct http_handler hh = {
        .head_fn = http_head_inline_drop, .run_fn = sink_run, .error_fn = http_error_bare};
    struct http_server *sinkd = NULL;
    int fd;
    const char *dir = "/tmp";
    char tlist[128] = "1,2";
    char *tok;
    char *save = NULL;
    long events = 20000;
    int neps = 4;
    int round = 0;
    int port;
    int opt;
    double secs, cpu_per = 0;

    while ((opt = getopt(argc, argv, "n:e:t:d:")) != -1) {
        switch (opt) {
        case 'n':
            events = atol(optarg);
            break;
        case 'e':
            neps = atoi(optarg);
            break;
        case 't':
            snprintf(tlist, sizeof(tlist), "%s", optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_dispatch_drain [-n EVENTS] [-e ENDPOINTS] "
                            "[-t THREADS,...] [-d DIR]\n");
            return 2;
        }
    }
    if (events < 1 || neps < 1 || neps > MAX_EPS)
        return 2;
    log_level_set("warn");
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* traffic stays on loopback */
    fd = http_listen_socket((struct sockaddr *)&sa, sizeof(sa), 1024, &port);
    if (fd < 0 || http_server_start(&hc, &hh, fd, &sinkd) != 0) {
        fprintf(stderr, "bench_dispatch_drain: cannot start the sink\n");
        return 1;
    }
    printf("%-8s %-10s %-8s %-10s %-14s %-14s\n", "threads", "endpoints", "events", "seconds",
           "deliveries/s", "CPU µs per dl");
    for (tok = strtok_r(tlist, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (run(dir, round++, events, neps, atoi(tok), port, &secs, &cpu_per) != 0) {
            http_server_stop(sinkd);
            return 1;
        }
        printf("%-8s %-10d %-8ld %-10.2f %-14.0f %-14.1f\n", tok, neps, events, secs,
               (double)(events * neps) / secs, cpu_per);
        fflush(stdout);
    }
    http_server_stop(sinkd);
    return 0;
}
