/*
 * One error convention for all of fluxhook: fallible functions return 0 or a
 * negative ERR_* code. Names and messages come from the one table below.
 */
#ifndef FLUXHOOK_UTIL_ERR_H
#define FLUXHOOK_UTIL_ERR_H

/* X(name, message) */
#define ERR_MAP(X)                                                    \
    X(NOMEM, "out of memory")                                         \
    X(INVAL, "invalid argument")                                      \
    X(PARSE, "malformed input")                                       \
    X(VALIDATION, "input breaks the event catalog")                   \
    X(NOTFOUND, "not found")                                          \
    X(CONFLICT, "conflict")                                           \
    X(TOOBIG, "too large")                                            \
    X(MEDIA, "unsupported media type")                                \
    X(AUTH, "missing or invalid API key")                             \
    X(FORBIDDEN, "not allowed for this key")                          \
    X(RATE, "rate limited")                                           \
    X(STORE, "store failure")                                         \
    X(UNAVAILABLE, "store unavailable")                               \
    X(IO, "input/output error")                                       \
    X(NET, "network failure")                                         \
    X(BLOCKED, "address is blocked")                                  \
    X(TIMEOUT, "timed out")                                           \
    X(SIGNATURE, "signature does not match")                          \
    X(SHUTDOWN, "shutting down")                                      \
    X(INTERNAL, "internal error")

enum err_code {
    ERR_OK = 0,
#define ERR_ENUM(name, msg) ERR__##name,
    ERR_MAP(ERR_ENUM)
#undef ERR_ENUM
    ERR__COUNT
};

/* The public codes are the negatives of the table positions. */
#define ERR_NOMEM (-ERR__NOMEM)
#define ERR_INVAL (-ERR__INVAL)
#define ERR_PARSE (-ERR__PARSE)
#define ERR_VALIDATION (-ERR__VALIDATION)
#define ERR_NOTFOUND (-ERR__NOTFOUND)
#define ERR_CONFLICT (-ERR__CONFLICT)
#define ERR_TOOBIG (-ERR__TOOBIG)
#define ERR_MEDIA (-ERR__MEDIA)
#define ERR_AUTH (-ERR__AUTH)
#define ERR_FORBIDDEN (-ERR__FORBIDDEN)
#define ERR_RATE (-ERR__RATE)
#define ERR_STORE (-ERR__STORE)
#define ERR_UNAVAILABLE (-ERR__UNAVAILABLE)
#define ERR_IO (-ERR__IO)
#define ERR_NET (-ERR__NET)
#define ERR_BLOCKED (-ERR__BLOCKED)
#define ERR_TIMEOUT (-ERR__TIMEOUT)
#define ERR_SIGNATURE (-ERR__SIGNATURE)
#define ERR_SHUTDOWN (-ERR__SHUTDOWN)
#define ERR_INTERNAL (-ERR__INTERNAL)

/* "ERR_NOTFOUND" for ERR_NOTFOUND; "ERR_UNKNOWN" for a code outside the table. */
const char *err_name(int err);

/* "not found" for ERR_NOTFOUND; "success" for 0. */
const char *err_str(int err);

#endif
