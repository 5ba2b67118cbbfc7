/*
 * Logging: one line per event, "module: what happened key=value", on stderr.
 * Log ids, never secrets or payload bodies. The level is checked before any
 * argument is evaluated.
 */
#ifndef FLUXHOOK_UTIL_LOG_H
#define FLUXHOOK_UTIL_LOG_H

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

extern enum log_level log_level_current;

/* Sets the level from "error", "warn", "info" or "debug". Returns 0 or ERR_INVAL. */
int log_level_set(const char *name);

void log_write(enum log_level level, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void log_fatal(int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_AT(level, with_errno, ...)                                  \
    do {                                                                \
        if ((level) <= log_level_current)                               \
            log_write((level), (with_errno), __VA_ARGS__);              \
    } while (0)

/* log_warn appends strerror(errno); log_warnx does not. */
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, 1, __VA_ARGS__)
#define log_warnx(...) LOG_AT(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)

/* For start-up failures and broken invariants: log, then exit(1). */
#define fatal(...) log_fatal(1, __VA_ARGS__)
#define fatalx(...) log_fatal(0, __VA_ARGS__)

#endif
