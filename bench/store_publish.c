/*
 * Durable publish throughput of the store: N events with 2 deliveries each,
 * published from T threads at once, then a twentieth of them from one
 * thread, so group commit shows as a ratio of one run. Into SQLite (WAL,
 * fsynced before each answer) in DIR, a temporary directory by default, or
 * into the store at -u URL (postgres://...: each run publishes under an
 * account of its own, so the database may be reused).
 *
 * usage: bench_store_publish [-n EVENTS] [-t THREADS] [-d DIR | -u URL]
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

struct worker {
    struct store *st;
    const char *acct;
    const struct endpoint *eps;
    long count;
    long failures;
    pthread_t thread;
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    long i;

    for (i = 0; i < w->count; i++) {
        struct event ev;
        char body[512];
        int len;

        memset(&ev, 0, sizeof(ev));
        snprintf(ev.account_id, sizeof(ev.account_id), "%s", w->acct);
        snprintf(ev.type, sizeof(ev.type), "conversation.started");
        if (id_new("evt_", ev.id) != 0) {
            w->failures++;
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
        if (ev.body == NULL || store_event_publish(w->st, &ev, w->eps, 2) != 0)
            w->failures++;
        event_cleanup(&ev);
    }
    return NULL;
}

struct result {
    long events;
    int threads;
    double seconds;
    uint64_t commits;
    uint64_t syncs;
    uint64_t writes;
    double claim_ms[2]; /* one claim of 100: all endpoints; one excluded */
    double reopen_ms;   /* open with the pile waiting, then claim 100 */
};

/*
 * One run of events from threads threads, into a new SQLite file in dir, or
 * into the store at store_url (then dir is NULL) under a new account.
 */
static int
run(const char *dir, const char *store_url, int round, long events, int threads, struct result *r)
{
    struct store *st = NULL;
    struct account acct = { .name = "bench" };
    struct endpoint eps[2];
    struct worker *ws = NULL;
    char url[512], cmd[600];
    struct store_writer_stats s0, s1;
    int64_t t0, t1;
    long failures = 0;
    int i, err;

    if (dir != NULL)
        snprintf(url, sizeof(url), "sqlite:%s/bench-%d.db", dir, round);
    else
        snprintf(url, sizeof(url), "%s", store_url);
    err = store_open(url, &st);
    if (err != 0)
        goto out;
    snprintf(acct.id, sizeof(acct.id), "acct_bench_%d_%ld", round, (long)getpid());
    err = store_account_insert(st, &acct);
    for (i = 0; i < 2 && err == 0; i++) {
        memset(&eps[i], 0, sizeof(eps[i]));
        id_new("ep_", eps[i].id);
        snprintf(eps[i].account_id, sizeof(eps[i].account_id), "%s", acct.id);
        eps[i].url = "https://receiver.test/hook";
        eps[i].description = "";
        eps[i].event_types = "";
        eps[i].secret = "whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==";
        err = store_endpoint_insert(st, &eps[i]);
    }
    if (err != 0)
        goto out;
    ws = calloc((size_t)threads, sizeof(*ws));
    if (ws == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    store_writer_stats(st, &s0);
    t0 = clock_mono_ms();
    for (i = 0; i < threads; i++) {
        ws[i].st = st;
        ws[i].acct = acct.id;
        ws[i].eps = eps;
        ws[i].count = events / threads + (i < events % threads ? 1 : 0);
        pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(ws[i].thread, NULL);
        failures += ws[i].failures;
    }
    t1 = clock_mono_ms();
    store_writer_stats(st, &s1);
    if (failures > 0) {
        fprintf(stderr, "bench_store_publish: %ld publishes failed\n", failures);
        err = ERR_STORE;
        goto out;
    }
    r->events = events;
    r->threads = threads;
    r->seconds = (double)(t1 - t0) / 1000.0;
    if (r->seconds <= 0)
        r->seconds = 0.001;
    if (round == 0) {
        /*
         * Claims from the pile just published (every delivery is due): the
         * cost must not grow with the pile. The second claim excludes one
         * endpoint, so it skips half the rows it meets.
         */
        const char *excl[1] = { eps[0].id };
        int k;

        for (k = 0; k < 2; k++) {
            struct claim *cs = NULL;
            size_t n = 0;
            int64_t c0 = clock_mono_ms();
            int rounds;

            for (rounds = 0; rounds < 20; rounds++) {
                err = store_claim(st, clock_now_ms(), 60000, 100, 0, k == 0 ? NULL : excl,
                                  k == 0 ? 0 : 1, &cs, &n);
                claim_list_free(cs, n);
                if (err != 0)
                    goto out;
            }
            r->claim_ms[k] = (double)(clock_mono_ms() - c0) / 20.0;
        }
        /* A restart with the pile waiting: open, then the first claim. */
        store_close(st);
        st = NULL;
        {
            struct claim *cs = NULL;
            size_t n = 0;
            int64_t c0 = clock_mono_ms();

            err = store_open(url, &st);
            if (err == 0)
                err = store_claim(st, clock_now_ms(), 60000, 100, 0, NULL, 0, &cs, &n);
            claim_list_free(cs, n);
            if (err != 0)
                goto out;
            r->reopen_ms = (double)(clock_mono_ms() - c0);
        }
    }
    r->commits = s1.commits - s0.commits;
    r->syncs = s1.syncs - s0.syncs;
    r->writes = s1.writes - s0.writes;
out:
    free(ws);
    store_close(st);
    if (dir != NULL) {
        snprintf(cmd, sizeof(cmd), "rm -f '%s'/bench-%d.db*", dir, round);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_store_publish: cannot remove the bench database\n");
    }
    return err;
}

/* Mean time of a 4 KiB append and fdatasync() in dir, in ms: what one commit waits for. */
static double
fsync_ms(const char *dir)
{
    char path[512], block[4096];
    int64_t t0, t1;
    int fd, i, n = 50;

    snprintf(path, sizeof(path), "%s/fsync-probe", dir);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    memset(block, 'x', sizeof(block));
    t0 = clock_mono_ms();
    for (i = 0; i < n; i++) {
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fdatasync(fd) != 0)
            break;
    }
    t1 = clock_mono_ms();
    close(fd);
    unlink(path);
    return (double)(t1 - t0) / n;
}

static void
row(const struct result *r)
{
    printf("| %7d | %8ld | %7.2f | %9.0f | %9.0f | %9.0f | %10.1f |\n", r->threads, r->events,
           r->seconds, (double)r->events / r->seconds, (double)r->commits / r->seconds,
           (double)r->syncs / r->seconds,
           r->commits > 0 ? (double)r->writes / (double)r->commits : 0.0);
}

int
main(int argc, char **argv)
{
    long events = 200000;
    int threads = 64, opt;
    const char *dir = NULL, *url = NULL;
    char tmp[] = "/tmp/fluxhook-bench-XXXXXX";
    struct result many = { 0 }, one = { 0 };
    double disk_before = -1, disk_after = -1;

    while ((opt = getopt(argc, argv, "n:t:d:u:")) != -1) {
        switch (opt) {
        case 'n':
            events = strtol(optarg, NULL, 10);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_store_publish [-n EVENTS] [-t THREADS] "
                            "[-d DIR | -u URL]\n");
            return 2;
        }
    }
    if (events < 1 || threads < 1) {
        fprintf(stderr, "bench_store_publish: -n and -t must be positive\n");
        return 2;
    }
    if (url != NULL && dir != NULL) {
        fprintf(stderr, "bench_store_publish: -d and -u exclude each other\n");
        return 2;
    }
    if (url == NULL && dir == NULL) {
        dir = mkdtemp(tmp);
        if (dir == NULL) {
            perror("bench_store_publish: mkdtemp");
            return 1;
        }
    }
    if (dir != NULL)
        disk_before = fsync_ms(dir);
    if (run(dir, url, 0, events, threads, &many) != 0)
        return 1;
    /* One thread cannot share a commit: every publish pays its own fsync. */
    if (run(dir, url, 1, events / 20 > 0 ? events / 20 : 1, 1, &one) != 0)
        return 1;
    if (dir != NULL)
        disk_after = fsync_ms(dir);
    if (dir == tmp)
        rmdir(tmp);

    printf("store publish, %s, each call answered after the fsync that covers it,\n"
           "2 deliveries per event\n\n",
           url != NULL ? "the store at -u" : "SQLite WAL");
    printf("| threads |   events | seconds |  events/s | commits/s |  fsyncs/s | mean batch |\n");
    printf("|--------:|---------:|--------:|----------:|----------:|----------:|-----------:|\n");
    row(&many);
    row(&one);
    printf("\ngroup commit: %.1fx the events/s of one thread\n",
           ((double)many.events / many.seconds) / ((double)one.events / one.seconds));
    if (url == NULL)
        printf("disk: 4 KiB write + fdatasync %.2f ms before, %.2f ms after the runs\n",
               disk_before, disk_after);
    printf("claim of 100 with %ld deliveries due: %.2f ms; excluding one endpoint: %.2f ms\n",
           many.events * 2, many.claim_ms[0], many.claim_ms[1]);
    printf("reopen with them waiting and claim 100: %.1f ms\n", many.reopen_ms);
    {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) == 0)
            printf("peak resident memory of the whole run: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    }
    return 0;
}
