/*
 * The retry schedule and Retry-After arithmetic: pure functions, no I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/strlist.h"

/* The WorkFlux schedule: at once, then 1 min, 5 min, 15 min and 1 h. */
static const int64_t workflux_schedule[] = {0, 60000, 300000, 900000, 3600000};

void
dispatch_config_default(struct dispatch_config *cfg)
{
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    for (i = 0; i < sizeof(workflux_schedule) / sizeof(workflux_schedule[0]); i++)
        cfg->schedule[i] = workflux_schedule[i];
    cfg->nschedule = (int)i;
    cfg->attempt_timeout_ms = DISPATCH_DEFAULT_TIMEOUT_MS;
    cfg->lease_ms = DISPATCH_DEFAULT_LEASE_MS;
    cfg->connect_timeout_ms = DISPATCH_DEFAULT_CONNECT_MS;
    cfg->max_in_flight = DISPATCH_DEFAULT_IN_FLIGHT;
    cfg->per_endpoint = DISPATCH_DEFAULT_PER_ENDPOINT;
    cfg->threads = DISPATCH_DEFAULT_THREADS;
}

int
dispatch_schedule_parse(struct dispatch_config *cfg, const char *list, char *err, size_t errlen)
{
    int64_t sched[DISPATCH_MAX_ATTEMPTS];
    char item[64];
    const char *p = list;
    const char *start;
    size_t len;
    int n = 0;
    int i;

    if (list == NULL || *list == '\0') {
        snprintf(err, errlen,
                 "retry schedule is empty: expected a comma list of delays "
                 "like 0ms,1m,5m,15m,1h");
        return ERR_PARSE;
    }
    while (strlist_next(&p, &start, &len)) {
        if (n == DISPATCH_MAX_ATTEMPTS) {
            snprintf(err, errlen, "retry schedule has more than %d items", DISPATCH_MAX_ATTEMPTS);
            return ERR_PARSE;
        }
        if (len == 0) {
            snprintf(err, errlen, "retry schedule item %d is empty", n + 1);
            return ERR_PARSE;
        }
        if (len >= sizeof(item)) {
            snprintf(err, errlen, "retry schedule item %d is too long", n + 1);
            return ERR_PARSE;
        }
        memcpy(item, start, len);
        item[len] = '\0';
        if (clock_parse_duration(item, &sched[n]) != 0) {
            snprintf(err, errlen,
                     "retry schedule item %d '%s': expected a delay like 0ms, 30s, 5m or 1h", n + 1,
                     item);
            return ERR_PARSE;
        }
        if (sched[n] > DISPATCH_DELAY_MAX_MS) {
            snprintf(err, errlen, "retry schedule item %d '%s' is longer than 366 days", n + 1,
                     item);
            return ERR_PARSE;
        }
        n++;
    }
    for (i = 0; i < n; i++)
        cfg->schedule[i] = sched[i];
    for (; i < DISPATCH_MAX_ATTEMPTS; i++)
        cfg->schedule[i] = 0;
    cfg->nschedule = n;
    return 0;
}

int64_t
backoff_delay(const struct dispatch_config *cfg, int k, int64_t retry_after_ms)
{
    int64_t delay;

    if (k < 0 || k >= cfg->nschedule)
        return -1;
    delay = cfg->schedule[k];
    if (retry_after_ms > DISPATCH_RETRY_AFTER_MAX_MS)
        retry_after_ms = DISPATCH_RETRY_AFTER_MAX_MS;
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    return delay;
}

int
backoff_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    char v[128];
    const char *p = value;
    size_t len;
    size_t i;
    int64_t secs = 0;
    time_t t;

    while (isspace((unsigned char)*p))
        p++;
    len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(v))
        return ERR_PARSE;
    memcpy(v, p, len);
    v[len] = '\0';
    if (isdigit((unsigned char)v[0])) {
        for (i = 0; i < len; i++) {
            if (!isdigit((unsigned char)v[i]))
                return ERR_PARSE;
            /* Anything past a day is capped later anyway; stop before overflow. */
            if (secs < 100000000)
                secs = secs * 10 + (v[i] - '0');
        }
        *delay_ms = secs * 1000;
        return 0;
    }
    /* An HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms). */
    if (!isalpha((unsigned char)v[0]))
        return ERR_PARSE;
    t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return ERR_PARSE;
    *delay_ms = (int64_t)t * 1000 - now_ms;
    if (*delay_ms < 0)
        *delay_ms = 0;
    return 0;
}
