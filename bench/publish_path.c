/*
 * The CPU of one POST /v1/events outside the HTTP server and the store: the
 * request's body and answer buffers as server.c keeps them, the credential's
 * hash and scope check (src/api/auth.c, scope.c; the store's lookup is left
 * out), the parse, catalog check and envelope of a 644-byte user.message
 * (src/events), and the 202 answer's JSON (src/api/reply.c), then everything
 * given back the way a finished request gives it back. Prints ns and heap
 * allocations per request; the allocation count comes from a malloc
 * interposed here (not under AddressSanitizer, which has its own).
 *
 * usage: bench_publish_path [-n REQUESTS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api/api_int.h"
#include "bench_body.h"
#include "events/envelope.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/secret.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
#endif

#define ROUNDS 5

static long allocs; /* malloc, calloc and realloc calls: one thread only */

#if COUNTING
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

void *
malloc(size_t n)
{
    allocs++;
    return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
    allocs++;
    return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
    allocs++;
    return __libc_realloc(p, n);
}
#endif

/* What bench/http_load.c publishes: 644 bytes. */
static const char body_text[] = "{\"event\":\"user.message\",\"data\":" BENCH_EVENT_DATA "}";

static const char token[] = "fhk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

static const struct route publish_route = {
    "POST", "/v1/events", NULL, ROUTE_JSON | ROUTE_RAW, "publish", SCOPE_EVENTS_WRITE};

static int64_t
clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct stage_cost {
    int64_t ns;
    long allocs;
};

/* One request, its stages timed into cost[0..3]. Returns 0 or an ERR_*. */
static int
one_request(const struct api_server_ctx *ctx, const struct api_key *stored,
            struct stage_cost cost[4])
{
    struct schema_report rep;
    struct api_req r;
    struct event ev;
    char hash[65], errbuf[256];
    int64_t t;
    long a;
    char *data;
    int err;

    memset(&r, 0, sizeof(r));
    memset(&ev, 0, sizeof(ev));
    /* 0: the request's buffers, as server.c's req_new() and the body's arrival. */
    t = clock_mono_ns();
    a = allocs;
    r.ctx = ctx;
    r.method = "POST";
    r.path = "/v1/events";
    buf_init_wipe(&r.body, API_MAX_BODY);
    buf_init_wipe(&r.out, 64 * 1024 * 1024);
    err = buf_append(&r.body, body_text, sizeof(body_text) - 1);
    cost[0].ns += clock_mono_ns() - t;
    cost[0].allocs += allocs - a;
    if (err != 0)
        return err;

    /* 1: the credential (its lookup in the store left out). */
    t = clock_mono_ns();
    a = allocs;
    api_key_hash(token, hash);
    r.key = *stored;
    r.key.name = NULL;
    if (strcmp(hash, r.key.hash) != 0)
        return ERR_AUTH;
    r.scopes = api_key_scopes(&r.key);
    snprintf(r.account_id, sizeof(r.account_id), "%s", r.key.account_id);
    err = api_scope_check(&r, &publish_route);
    cost[1].ns += clock_mono_ns() - t;
    cost[1].allocs += allocs - a;
    if (err != 0)
        return err;

    /* 2: parse, catalog, envelope. */
    t = clock_mono_ns();
    a = allocs;
    err = envelope_parse_publish(r.body.data, r.body.len, clock_now_ms(), &ev, &rep, errbuf,
                                 sizeof(errbuf));
    snprintf(ev.account_id, sizeof(ev.account_id), "%s", r.account_id);
    cost[2].ns += clock_mono_ns() - t;
    cost[2].allocs += allocs - a;
    if (err != 0) {
        fprintf(stderr, "bench_publish_path: %s\n", errbuf);
        return err;
    }

    /* 3: the 202 answer, handed over and freed as server.c does, and the request freed. */
    t = clock_mono_ns();
    a = allocs;
    ev.deliveries = 0;
    snprintf(r.location, sizeof(r.location), "/v1/events/%s", ev.id);
    err = api_reply_json(&r, 202,
                         json_pack("{s:s, s:s, s:s, s:i}", "id", ev.id, "event", ev.type,
                                   "timestamp", ev.timestamp, "deliveries", ev.deliveries));
    data = buf_steal(&r.out);
    if (err == 0 && (r.status != 202 || strstr(data, ev.id) == NULL))
        err = ERR_INTERNAL;
    secret_heap_free(data);
    buf_cleanup(&r.body);
    buf_cleanup(&r.out);
    event_cleanup(&ev);
    cost[3].ns += clock_mono_ns() - t;
    cost[3].allocs += allocs - a;
    return err;
}

/*
 * The 202 answer as api_reply_published() writes it, without jansson, n
 * times: ns and allocations per answer into *cost.
 */
static int
published_answers(long n, struct stage_cost *cost)
{
    struct api_req r;
    struct event ev;
    int64_t t;
    long a, i;
    char *data;

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "evt_01J0000000000000000000000");
    snprintf(ev.type, sizeof(ev.type), "user.message");
    snprintf(ev.timestamp, sizeof(ev.timestamp), "2024-01-01T12:00:00Z");
    memset(&r, 0, sizeof(r));
    t = clock_mono_ns();
    a = allocs;
    for (i = 0; i < n; i++) {
        buf_init_wipe(&r.out, 64 * 1024 * 1024);
        api_reply_published(&r, 202, &ev);
        data = buf_steal(&r.out);
        if (r.status != 202 || strstr(data, ev.id) == NULL) {
            secret_heap_free(data);
            return ERR_INTERNAL;
        }
        secret_heap_free(data);
        buf_cleanup(&r.out);
    }
    cost->ns = clock_mono_ns() - t;
    cost->allocs = allocs - a;
    return 0;
}

/* allocs per request as a table cell: "n/a" when they are not counted. */
static void
alloc_col(long allocs_total, long n, char *out, size_t outlen)
{
    if (COUNTING)
        snprintf(out, outlen, "%.1f", (double)allocs_total / (double)n);
    else
        snprintf(out, outlen, "n/a");
}

int
main(int argc, char **argv)
{
    static const char *const names[4] = {
        "request buffers (body in, answer out)", "auth: key hash + scope check",
        "parse + catalog + envelope (644 B)", "202 answer JSON + frees"};
    struct stage_cost cost[4], best[4];
    struct api_server_ctx ctx;
    struct api_key stored;
    int64_t total_ns, cpu0, cpu_best = 0;
    long n = 200000, per, i, total_allocs;
    char col[32];
    int k, round, err;

    if (argc == 3 && strcmp(argv[1], "-n") == 0)
        n = atol(argv[2]);
    if (n < ROUNDS) {
        fprintf(stderr, "usage: bench_publish_path [-n REQUESTS]\n");
        return 2;
    }
    per = n / ROUNDS;
    secret_json_alloc_setup();
    memset(&ctx, 0, sizeof(ctx));
    memset(&stored, 0, sizeof(stored));
    snprintf(stored.id, sizeof(stored.id), "key_bench");
    snprintf(stored.account_id, sizeof(stored.account_id), "acct_bench");
    api_key_hash(token, stored.hash);
    stored.kind = CRED_KEY;
    /* Round 0 warms up (the catalog, OpenSSL's fetches, malloc's arenas). */
    for (round = 0; round <= ROUNDS; round++) {
        memset(cost, 0, sizeof(cost));
        cpu0 = thread_cpu_ns();
        for (i = 0; i < per; i++) {
            if ((err = one_request(&ctx, &stored, cost)) != 0) {
                fprintf(stderr, "bench_publish_path: request failed: %d\n", err);
                return 1;
            }
        }
        cpu0 = thread_cpu_ns() - cpu0;
        if (round == 0)
            continue;
        /* The quietest round of each stage: the machine is shared. */
        for (k = 0; k < 4; k++) {
            if (round == 1 || cost[k].ns < best[k].ns)
                best[k] = cost[k];
        }
        if (round == 1 || cpu0 < cpu_best)
            cpu_best = cpu0;
    }
    printf("%-42s %10s %10s\n", "publish request, CPU path", "ns/req", "allocs/req");
    total_ns = 0;
    total_allocs = 0;
    for (k = 0; k < 4; k++) {
        alloc_col(best[k].allocs, per, col, sizeof(col));
        printf("%-42s %10.0f %10s\n", names[k], (double)best[k].ns / (double)per, col);
        total_ns += best[k].ns;
        total_allocs += best[k].allocs;
    }
    alloc_col(total_allocs, per, col, sizeof(col));
    printf("%-42s %10.0f %10s\n", "sum of the stages", (double)total_ns / (double)per, col);
    printf("%-42s %10.0f\n", "thread CPU per request, whole loop", (double)cpu_best / (double)per);
    /* What h_events.c could answer with instead of stage 3's json_pack + api_reply_json. */
    for (round = 0; round <= ROUNDS; round++) {
        if (published_answers(per, &cost[0]) != 0) {
            fprintf(stderr, "bench_publish_path: api_reply_published failed\n");
            return 1;
        }
        if (round == 1 || (round > 1 && cost[0].ns < best[0].ns))
            best[0] = cost[0];
    }
    alloc_col(best[0].allocs, per, col, sizeof(col));
    printf("%-42s %10.0f %10s\n", "(202 answer by api_reply_published)",
           (double)best[0].ns / (double)per, col);
    printf("(%d rounds of %ld requests, one thread; per stage the quietest round)\n", ROUNDS, per);
    return 0;
}
