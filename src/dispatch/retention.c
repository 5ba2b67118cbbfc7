/* Retention: the thread that deletes old finished events in small batches. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dispatch/retention.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct retention {
    struct store *st;
    int64_t window_ms;
    int64_t every_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by retention_stop() */
    int stopping;        /* guarded by lock */
};

int
retention_parse(const char *s, int64_t *ms)
{
    char *end;
    long long days;

    if (s == NULL)
        return ERR_PARSE;
    if (strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '9' && s[strlen(s) - 1] == 'd') {
        errno = 0;
        days = strtoll(s, &end, 10);
        if (errno != 0 || *end != 'd' || end[1] != '\0' || days > 36500)
            return ERR_PARSE;
        *ms = days * 24 * 3600 * 1000;
        return 0;
    }
    return clock_parse_duration(s, ms);
}

/* Waits ms or until stopping; returns 1 when stopping. */
static int
pause_ms(struct retention *r, int64_t ms)
{
    struct timespec ts;
    int stop;

    clock_mono_deadline(&ts, ms);
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && pthread_cond_timedwait(&r->cond, &r->lock, &ts) != ETIMEDOUT)
        ;
    stop = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stop;
}

/* One round: batches until one deletes less than a full batch. */
static void
round_run(struct retention *r)
{
    struct store_purge_report one, sum;
    int64_t t0 = clock_mono_ms();
    int err;

    memset(&sum, 0, sizeof(sum));
    for (;;) {
        err = store_purge(r->st, clock_now_ms() - r->window_ms, RETENTION_BATCH, &one);
        if (err != 0) {
            log_warnx("retention: cannot delete old events: %s", err_str(err));
            break;
        }
        sum.events += one.events;
        sum.deliveries += one.deliveries;
        sum.attempts += one.attempts;
        sum.tokens += one.tokens;
        if ((one.events < RETENTION_BATCH && one.tokens < RETENTION_BATCH) ||
            pause_ms(r, RETENTION_PAUSE_MS))
            break;
    }
    if (sum.events > 0 || sum.tokens > 0)
        log_info("retention: deleted events=%lld deliveries=%lld attempts=%lld tokens=%lld "
                 "ms=%lld",
                 (long long)sum.events, (long long)sum.deliveries, (long long)sum.attempts,
                 (long long)sum.tokens, (long long)(clock_mono_ms() - t0));
}

static void *
retention_main(void *arg)
{
    struct retention *r = arg;

    (void)pthread_setname_np(pthread_self(), "fh-retention");
    do
        round_run(r);
    while (!pause_ms(r, r->every_ms));
    return NULL;
}

int
retention_start(struct store *st, int64_t window_ms, struct retention **out)
{
    struct retention *r;

    *out = NULL;
    if (window_ms <= 0)
        return ERR_INVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ERR_NOMEM;
    r->st = st;
    r->window_ms = window_ms;
    r->every_ms = window_ms / 10;
    if (r->every_ms > RETENTION_MAX_ROUND_MS)
        r->every_ms = RETENTION_MAX_ROUND_MS;
    if (r->every_ms < 100)
        r->every_ms = 100;
    pthread_mutex_init(&r->lock, NULL);
    clock_mono_cond_init(&r->cond);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return ERR_INTERNAL;
    }
    log_info("retention: keeping window_ms=%lld", (long long)window_ms);
    *out = r;
    return 0;
}

void
retention_stop(struct retention *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
