/*
 * The dispatcher's store round trips: deliveries waiting over 100 endpoints
 * are drained by store_claim() + store_results_apply() in batches of 100,
 * from 1 and then 4 store handles (as 1 and 4 processes sharing a store),
 * without and with a per-endpoint cap; CPU is the process's user + system
 * time over the drain (the store's writer included) per delivery. Any store
 * URL: a SQLite file in a temporary directory by default, or -u
 * postgres://... (its database must hold no other due work; each run drains
 * what it publishes).
 *
 * usage: bench_store_claim [-1] [-n DELIVERIES] [-u URL]
 * (-1: the runs from one handle only, whose work is the same from run to run,
 * for instruction counts under callgrind)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_cpu.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/id.h"

#define ENDPOINTS 100
#define FANOUT 10 /* endpoints per event */
#define BATCH 100 /* most claims per store_claim() */
#define HANDLES 4 /* most handles in one run */

struct drain {
    struct store *st;
    int cap;
    long drained; /* deliveries claimed and answered */
    long claims;
    int64_t claim_ms; /* spent in store_claim() */
    int64_t apply_ms; /* spent in store_results_apply() */
    int failed;
    pthread_t thread;
};

/* Claims and answers (2xx) until a run of empty claims says the work is gone. */
static void *
drain_main(void *arg)
{
    struct drain *d = arg;
    struct attempt_result rs[BATCH];
    int empty = 0;

    while (empty < 20 && !d->failed) {
        struct claim *cs = NULL;
        size_t n = 0, i;
        int64_t now = clock_now_ms(), t0 = clock_mono_ms(), t1;

        if (store_claim(d->st, now, 60000, BATCH, d->cap, NULL, 0, &cs, &n) != 0) {
            d->failed = 1;
            break;
        }
        t1 = clock_mono_ms();
        for (i = 0; i < n; i++) {
            memset(&rs[i], 0, sizeof(rs[i]));
            snprintf(rs[i].attempt.delivery_id, ID_MAX, "%s", cs[i].dlv.id);
            rs[i].attempt.n = cs[i].dlv.attempts_made + 1;
            rs[i].attempt.at = now;
            rs[i].attempt.status_code = 200;
            rs[i].attempt.duration_ms = 3;
            rs[i].status = DELIVERY_DELIVERED;
            rs[i].lease_token = cs[i].dlv.lease_token;
            rs[i].endpoint_id = cs[i].dlv.endpoint_id; /* as the dispatcher does */
            rs[i].account_id = cs[i].dlv.account_id;
        }
        if (n > 0 && store_results_apply(d->st, rs, n, now) != 0)
            d->failed = 1;
        d->claim_ms += t1 - t0;
        d->apply_ms += clock_mono_ms() - t1;
        d->claims++;
        d->drained += (long)n;
        empty = n == 0 ? empty + 1 : 0;
        claim_list_free(cs, n);
        if (n == 0)
            usleep(2000);
    }
    return NULL;
}

/* Publishes `deliveries` deliveries (FANOUT per event) over ENDPOINTS new endpoints. */
static int
fill(struct store *st, const char *acct, long deliveries)
{
    struct account a = {.name = "bench"};
    struct endpoint eps[ENDPOINTS];
    long i;
    int err;

    snprintf(a.id, sizeof(a.id), "%s", acct);
    err = store_account_insert(st, &a);
    for (i = 0; i < ENDPOINTS && err == 0; i++) {
        memset(&eps[i], 0, sizeof(eps[i]));
        id_new("ep_", eps[i].id);
        snprintf(eps[i].account_id, sizeof(eps[i].account_id), "%s", acct);
        eps[i].url = "https://receiver.test/hook";
        eps[i].description = "";
        eps[i].event_types = "";
        eps[i].secret = "whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==";
        err = store_endpoint_insert(st, &eps[i]);
    }
    for (i = 0; i < deliveries / FANOUT && err == 0; i++) {
        struct event ev;

        memset(&ev, 0, sizeof(ev));
        snprintf(ev.account_id, sizeof(ev.account_id), "%s", acct);
        snprintf(ev.type, sizeof(ev.type), "user.message");
        ev.body = strdup("{\"event\":\"user.message\",\"data\":{}}");
        ev.body_len = ev.body != NULL ? strlen(ev.body) : 0;
        err = ev.body == NULL ? ERR_NOMEM
                              : store_event_publish(st, &ev, eps + (i % 10) * FANOUT, FANOUT);
        event_cleanup(&ev);
    }
    return err;
}

/* One run: fill, then drain from `handles` handles with `cap`; prints a table row. */
static int
run(const char *url, int round, long deliveries, int handles, int cap)
{
    struct drain ds[HANDLES];
    char acct[ID_MAX];
    long drained = 0, claims = 0;
    int64_t t0, ms, claim_ms = 0, apply_ms = 0, cpu0;
    int i, err = 0;

    memset(ds, 0, sizeof(ds));
    for (i = 0; i < handles && err == 0; i++) {
        ds[i].cap = cap;
        err = store_open(url, &ds[i].st);
    }
    snprintf(acct, sizeof(acct), "acct_bench_%d_%ld", round, (long)getpid());
    if (err == 0)
        err = fill(ds[0].st, acct, deliveries);
    if (err != 0) {
        fprintf(stderr, "bench_store_claim: cannot prepare the store: %s\n", err_str(err));
        goto out;
    }
    t0 = clock_mono_ms();
    cpu0 = bench_cpu_us();
    for (i = 0; i < handles; i++)
        pthread_create(&ds[i].thread, NULL, drain_main, &ds[i]);
    for (i = 0; i < handles; i++) {
        pthread_join(ds[i].thread, NULL);
        drained += ds[i].drained;
        claims += ds[i].claims;
        claim_ms += ds[i].claim_ms;
        apply_ms += ds[i].apply_ms;
        err = ds[i].failed ? ERR_STORE : err;
    }
    ms = clock_mono_ms() - t0 - 20 * 2; /* less the empty claims that ended it */
    if (err != 0 || drained != deliveries) {
        fprintf(stderr, "bench_store_claim: drained %ld of %ld\n", drained, deliveries);
        err = err != 0 ? err : ERR_STORE;
        goto out;
    }
    printf("| %7d | %3d | %10ld | %6.2f | %12.0f | %13.1f | %13.1f | %14.1f |\n", handles, cap,
           drained, (double)ms / 1000.0, (double)drained * 1000.0 / (double)(ms > 0 ? ms : 1),
           (double)claim_ms / (double)claims, (double)apply_ms / (double)claims,
           (double)(bench_cpu_us() - cpu0) / (double)drained);
out:
    for (i = 0; i < handles; i++)
        store_close(ds[i].st);
    return err;
}

int
main(int argc, char **argv)
{
    static const int handles[] = {1, 4, 1, 4}, caps[] = {0, 0, 64, 64};
    long deliveries = 20000;
    const char *url = NULL;
    char tmp[] = "/tmp/fluxhook-bench-XXXXXX", path[600];
    int opt, i, one = 0, ret = 0;

    while ((opt = getopt(argc, argv, "1n:u:")) != -1) {
        switch (opt) {
        case '1':
            one = 1;
            break;
        case 'n':
            deliveries = strtol(optarg, NULL, 10) / FANOUT * FANOUT;
            break;
        case 'u':
            url = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_store_claim [-1] [-n DELIVERIES] [-u URL]\n");
            return 2;
        }
    }
    if (deliveries < FANOUT) {
        fprintf(stderr, "bench_store_claim: -n must be at least %d\n", FANOUT);
        return 2;
    }
    if (url == NULL) {
        if (mkdtemp(tmp) == NULL) {
            perror("bench_store_claim: mkdtemp");
            return 1;
        }
        snprintf(path, sizeof(path), "sqlite:%s/bench.db", tmp);
        url = path;
    }
    printf("claim + results_apply, batches of %d, %d endpoints, %s\n\n", BATCH, ENDPOINTS,
           strncmp(url, "sqlite:", 7) == 0 ? "SQLite" : "PostgreSQL");
    printf(
        "| handles | cap | deliveries | secs   | deliveries/s | ms per claim  | ms per apply  "
        "| CPU µs per dl  |\n"
        "|---------|-----|------------|--------|--------------|---------------|---------------"
        "|----------------|\n");
    for (i = 0; i < 4 && ret == 0; i++) {
        if (one && handles[i] != 1)
            continue;
        if (run(url, i, deliveries, handles[i], caps[i]) != 0)
            ret = 1;
    }
    if (url == path) {
        snprintf(path, sizeof(path), "rm -rf '%s'", tmp);
        if (system(path) != 0)
            ret = 1;
    }
    return ret;
}
