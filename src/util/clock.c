#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/err.h"

int64_t
clock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

void
clock_mono_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void
clock_mono_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &ca);
    pthread_condattr_destroy(&ca);
}

void
clock_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void
split(int64_t ms, struct tm *tm, int *millis)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);

    *millis = (int)(ms - (int64_t)secs * 1000);
    gmtime_r(&secs, tm);
}

/* Writes v as n digits at out (v < 10^n); returns out + n. */
static char *
put_digits(char *out, int v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + n;
}

/*
 * "2024-01-01T12:00:00Z", or with_millis "2024-01-01T12:00:00.123Z": written
 * digit by digit (no printf on a path every publish takes) for the years
 * 0 to 9999, by snprintf for the rest.
 */
static void
format(int64_t ms, int with_millis, char out[CLOCK_RFC3339_MAX])
{
    struct tm tm;
    int millis, year;
    char *p = out;

    split(ms, &tm, &millis);
    year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        if (with_millis)
            snprintf(out, CLOCK_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
        else
            snprintf(out, CLOCK_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return;
    }
    p = put_digits(p, year, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    if (with_millis) {
        *p++ = '.';
        p = put_digits(p, millis, 3);
    }
    *p++ = 'Z';
    *p = '\0';
}

void
clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_MAX])
{
    format(ms, 1, out);
}

void
clock_format_rfc3339_s(int64_t ms, char out[CLOCK_RFC3339_MAX])
{
    format(ms, 0, out);
}

/* Reads exactly n digits at *p into *v. */
static int
digits(const char **p, int n, int *v)
{
    int i;

    *v = 0;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return ERR_PARSE;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
    int64_t era;
    int yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (int)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int
clock_parse_rfc3339(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, frac = 0, fdigits = 0;

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return ERR_PARSE;
    if (*p != 'T' && *p != 't')
        return ERR_PARSE;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return ERR_PARSE;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (fdigits >= 9)
                return ERR_PARSE;
            if (fdigits < 3)
                frac = frac * 10 + (*p - '0');
            fdigits++;
            p++;
        }
        if (fdigits == 0)
            return ERR_PARSE;
        while (fdigits < 3) {
            frac *= 10;
            fdigits++;
        }
    }
    if ((*p != 'Z' && *p != 'z') || p[1] != '\0')
        return ERR_PARSE;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return ERR_PARSE;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return ERR_PARSE;
    if (sec == 60)
        sec = 59; /* a leap second is valid RFC 3339; fold it onto :59 */
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
    return 0;
}

int
clock_parse_duration(const char *s, int64_t *ms)
{
    int64_t v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return ERR_PARSE;
    while (isdigit((unsigned char)*p)) {
        if (v > (INT64_MAX / 10) - 10)
            return ERR_PARSE;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (strcmp(p, "ms") == 0)
        *ms = v;
    else if (strcmp(p, "s") == 0)
        *ms = v * 1000;
    else if (strcmp(p, "m") == 0)
        *ms = v * 60000;
    else if (strcmp(p, "h") == 0)
        *ms = v * 3600000;
    else
        return ERR_PARSE;
    if (v > INT64_MAX / 3600000)
        return ERR_PARSE;
    return 0;
}
