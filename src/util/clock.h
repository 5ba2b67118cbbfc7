/*
 * Time: wall-clock and monotonic milliseconds, RFC 3339 timestamps and the
 * durations of the command line ("250ms", "5s", "15m", "1h").
 */
#ifndef FLUXHOOK_UTIL_CLOCK_H
#define FLUXHOOK_UTIL_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_RFC3339_MAX 64 /* room for any year gmtime gives, and NUL */

/* Milliseconds since the Unix epoch. */
int64_t clock_now_ms(void);

/* Milliseconds from an arbitrary start, never going backwards. */
int64_t clock_mono_ms(void);

/* The same in microseconds. */
int64_t clock_mono_us(void);

/*
 * Sets *ts to ms milliseconds from now on CLOCK_MONOTONIC: a deadline for
 * pthread_cond_timedwait() on a condition made by clock_mono_cond_init().
 */
void clock_mono_deadline(struct timespec *ts, int64_t ms);

/* Makes *cond one whose timed waits read CLOCK_MONOTONIC (immune to the wall clock's jumps). */
void clock_mono_cond_init(pthread_cond_t *cond);

/* Sleeps ms milliseconds (the whole time, across signals); ms <= 0 returns at once. */
void clock_sleep_ms(int64_t ms);

/* Writes ms as "2024-01-01T12:00:00.123Z" (always with milliseconds) to out. */
void clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_MAX]);

/* Writes ms as "2024-01-01T12:00:00Z" (whole seconds) to out. */
void clock_format_rfc3339_s(int64_t ms, char out[CLOCK_RFC3339_MAX]);

/*
 * Parses an RFC 3339 UTC timestamp ("2024-01-01T12:00:00Z", optionally with a
 * fraction of up to 9 digits) into *ms. Only the "Z" zone is accepted.
 * Returns 0 or ERR_PARSE.
 */
int clock_parse_rfc3339(const char *s, int64_t *ms);

/*
 * Parses a duration: a non-negative integer followed by "ms", "s", "m" or
 * "h" into *ms. Returns 0 or ERR_PARSE.
 */
int clock_parse_duration(const char *s, int64_t *ms);

#endif
