/*
 * The dispatcher's own bookkeeping (src/dispatch/dispatch.c, included for its
 * statics): per-endpoint in-flight counts, what finish() does when memory
 * runs out, and the Prometheus lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* 1: realloc() answers NULL, as it does when memory runs out. */
static int fail_realloc;

static void *
oom_realloc(void *p, size_t n)
{
    return fail_realloc ? NULL : realloc(p, n);
}

#define realloc oom_realloc
#include "dispatch/dispatch.c"
#undef realloc

#define POOL 14

static void
check_counts(struct dispatcher *d, char ids[POOL][ID_MAX], const int *want)
{
    struct ep_slot *s;
    size_t used = 0;
    size_t i;
    int expect_used = 0;
    int k;

    for (k = 0; k < POOL; k++) {
        s = slot_find(d, ids[k]);
        if (want[k] == 0) {
            if (s->id[0] != '\0')
                fail_msg("%s still has a slot (count %d)", ids[k], s->count);
            continue;
        }
        expect_used++;
        if (s->id[0] == '\0' || s->count != want[k])
            fail_msg("%s: count %d, expected %d", ids[k], s->id[0] ? s->count : 0, want[k]);
    }
    for (i = 0; i < d->nslots; i++)
        used += d->slots[i].id[0] != '\0';
    assert_int_equal(used, expect_used);
}

static void
test_slots_random(void **state)
{
    struct dispatcher d;
    char ids[POOL][ID_MAX];
    int want[POOL] = {0};
    int step;
    int k;

    (void)state;
    memset(&d, 0, sizeof(d));
    d.nslots = 16; /* small: many collisions and wrap-arounds */
    d.slots = calloc(d.nslots, sizeof(*d.slots));
    assert_non_null(d.slots);
    srand(7);
    for (k = 0; k < POOL; k++)
        snprintf(ids[k], sizeof(ids[k]), "ep_%08x%02d", (unsigned)rand(), k);
    for (step = 0; step < 20000; step++) {
        k = rand() % POOL;
        if (want[k] > 0 && rand() % 2 == 0) {
            slot_sub(&d, ids[k], 0);
            want[k]--;
        } else if (want[k] < 5) {
            slot_add(&d, ids[k]);
            want[k]++;
        }
        check_counts(&d, ids, want);
    }
    /* Dropping an id that holds no slot changes nothing. */
    slot_sub(&d, "ep_unknown", 0);
    check_counts(&d, ids, want);
    free(d.slots);
}

/*
 * An attempt that cannot be handed to the recorder (out of memory) is
 * dropped, and must stop counting against its endpoint's cap: were it to
 * leak its count, after per_endpoint of them the endpoint would never be
 * claimed again.
 */
static void
test_finish_out_of_memory_frees_the_slot(void **state)
{
    struct dispatch_shared sh;
    struct dispatcher *d = calloc(1, sizeof(*d));
    struct dthread t;
    struct attempt_ctx *ctx;
    struct claim c;
    int k;

    (void)state;
    assert_non_null(d);
    memset(&sh, 0, sizeof(sh));
    dispatch_config_default(&sh.cfg);
    d->sh.cfg = sh.cfg;
    d->nslots = 16;
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    assert_non_null(d->slots);
    pthread_mutex_init(&d->lock, NULL);
    memset(&t, 0, sizeof(t));
    t.d = d;
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    for (k = 0; k < 2 * DISPATCH_DEFAULT_PER_ENDPOINT; k++) {
        memset(&c, 0, sizeof(c));
        snprintf(c.dlv.id, sizeof(c.dlv.id), "dlv_%d", k);
        snprintf(c.dlv.endpoint_id, sizeof(c.dlv.endpoint_id), "ep_oom");
        /* Claimed: it counts against its endpoint until recorded or dropped. */
        slot_add(d, c.dlv.endpoint_id);
        /* A claim without a URL is never started; finish() still has to hand it on. */
        assert_int_not_equal(attempt_ctx_new(&c, &sh, 1000, &ctx), 0);
        assert_non_null(ctx);
        fail_realloc = 1;
        finish(&t, ctx, -1, 1000, 1000);
        fail_realloc = 0;
        assert_int_equal(t.nrecs, 0);
        if (slot_find(d, "ep_oom")->id[0] != '\0')
            fail_msg("after %d dropped attempts ep_oom still counts %d", k + 1,
                     slot_find(d, "ep_oom")->count);
    }
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&d->lock);
    free(d->slots);
    free(d);
}

static void
test_metrics_without_dispatcher(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 1 << 16);
    dispatch_metrics(&b, NULL);
    assert_non_null(strstr(buf_cstr(&b), "# TYPE fluxhook_attempts_total counter\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempts_total{outcome=\"success\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempts_total{outcome=\"retry\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempts_total{outcome=\"failed\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempts_total{outcome=\"blocked\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "# TYPE fluxhook_attempt_duration_seconds histogram\n"));
    assert_non_null(
        strstr(buf_cstr(&b), "fluxhook_attempt_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempt_duration_seconds_count 0\n"));
    assert_non_null(
        strstr(buf_cstr(&b), "# TYPE fluxhook_in_flight gauge\nfluxhook_in_flight 0\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_handoffs_declined_total{why=\"busy\"} 0\n"));
    buf_cleanup(&b);
}

static void
test_metrics_histogram_cumulative(void **state)
{
    struct dispatcher *d = calloc(1, sizeof(*d));
    struct buf b;

    (void)state;
    assert_non_null(d);
    atomic_store(&d->hist[0], 2);      /* <= 5 ms */
    atomic_store(&d->hist[4], 3);      /* <= 100 ms */
    atomic_store(&d->hist[HIST_N], 1); /* > 60 s */
    atomic_store(&d->outcomes[1], 4);
    atomic_store(&d->dur_sum_ms, 61500);
    atomic_store(&d->in_flight, 7);
    buf_init(&b, 1 << 16);
    dispatch_metrics(&b, d);
    assert_non_null(strstr(buf_cstr(&b), "_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(buf_cstr(&b), "_bucket{le=\"0.05\"} 2\n"));
    assert_non_null(strstr(buf_cstr(&b), "_bucket{le=\"0.1\"} 5\n"));
    assert_non_null(strstr(buf_cstr(&b), "_bucket{le=\"60\"} 5\n"));
    assert_non_null(strstr(buf_cstr(&b), "_bucket{le=\"+Inf\"} 6\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempt_duration_seconds_sum 61.500\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempt_duration_seconds_count 6\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_attempts_total{outcome=\"retry\"} 4\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_in_flight 7\n"));
    buf_cleanup(&b);
    free(d);
}

/*
 * A hand-off ho_take() declines is inserted due and costs a claim later:
 * /metrics counts each by why (a receiver that hangs, an endpoint at its
 * cap whose requests still end, the process at max_in_flight).
 */
static void
test_handoff_declines_counted(void **state)
{
    struct dispatcher *d = calloc(1, sizeof(*d));
    struct ep_slot *s;
    struct buf b;

    (void)state;
    assert_non_null(d);
    dispatch_config_default(&d->sh.cfg);
    d->sh.cfg.per_endpoint = 2;
    d->sh.cfg.max_in_flight = 3;
    d->nslots = 16;
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    assert_non_null(d->slots);
    pthread_mutex_init(&d->lock, NULL);

    assert_int_equal(ho_take(d, "ep_a"), 1);
    assert_int_equal(ho_take(d, "ep_a"), 1);
    /* Both of its requests under way, one ended just now: busy, not hanging. */
    s = slot_find(d, "ep_a");
    s->open = 2;
    s->ended_mono = clock_mono_ms();
    assert_int_equal(ho_take(d, "ep_a"), 0);
    /* None ended for longer than HANG_MS: it hangs. */
    s->ended_mono = clock_mono_ms() - HANG_MS - 1;
    assert_int_equal(ho_take(d, "ep_a"), STORE_HANDOFF_FULL);
    assert_int_equal(ho_take(d, "ep_a"), STORE_HANDOFF_FULL);
    /* The third reservation fills max_in_flight: the next endpoint's is declined. */
    assert_int_equal(ho_take(d, "ep_b"), 1);
    assert_int_equal(ho_take(d, "ep_c"), 0);

    buf_init(&b, 1 << 16);
    dispatch_metrics(&b, d);
    assert_non_null(strstr(buf_cstr(&b), "# TYPE fluxhook_handoffs_declined_total counter\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_handoffs_declined_total{why=\"hanging\"} 2\n"));
    assert_non_null(strstr(buf_cstr(&b), "fluxhook_handoffs_declined_total{why=\"busy\"} 1\n"));
    assert_non_null(
        strstr(buf_cstr(&b), "fluxhook_handoffs_declined_total{why=\"in_flight\"} 1\n"));
    buf_cleanup(&b);
    pthread_mutex_destroy(&d->lock);
    free(d->slots);
    free(d);
}

static void
test_start_rejects_bad_config(void **state)
{
    struct dispatch_config cfg;
    struct dispatcher *d = (struct dispatcher *)1;

    (void)state;
    dispatch_config_default(&cfg);
    cfg.nschedule = 0;
    assert_int_equal(dispatch_start(&cfg, NULL, &d), ERR_INVAL);
    assert_null(d);
    dispatch_config_default(&cfg);
    cfg.allow_networks = "10.0.0.0/99";
    assert_int_equal(dispatch_start(&cfg, NULL, &d), ERR_PARSE);
    assert_null(d);
    dispatch_config_default(&cfg);
    cfg.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(dispatch_start(&cfg, NULL, &d), ERR_IO);
    assert_null(d);
    dispatch_stop(NULL, 0); /* a no-op */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_random),
        cmocka_unit_test(test_finish_out_of_memory_frees_the_slot),
        cmocka_unit_test(test_metrics_without_dispatcher),
        cmocka_unit_test(test_metrics_histogram_cumulative),
        cmocka_unit_test(test_handoff_declines_counted),
        cmocka_unit_test(test_start_rejects_bad_config),
    };

    log_level_set("error");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
