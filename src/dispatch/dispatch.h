/*
 * The dispatcher: claims due deliveries from the store, signs and POSTs their
 * stored bytes with libcurl's multi interface, applies the outcome rules of
 * CONTRACT §3 and records every attempt.
 */
#ifndef FLUXHOOK_DISPATCH_DISPATCH_H
#define FLUXHOOK_DISPATCH_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#define DISPATCH_MAX_ATTEMPTS 32

struct store;
struct buf;

struct dispatch_config {
    int64_t schedule[DISPATCH_MAX_ATTEMPTS]; /* delay before each attempt, ms; [0] is the first */
    int nschedule;                /* number of attempts in a round */
    int64_t attempt_timeout_ms;   /* whole attempt, default 15000 */
    int64_t lease_ms;             /* a claim's lease, longer than attempt_timeout_ms; default 60000 */
    int64_t connect_timeout_ms;   /* default 5000 */
    int allow_http;               /* deliver to http:// too */
    const char *allow_networks;   /* comma list of CIDRs exempt from the address rules, or NULL */
    const char *ca_file;          /* extra CA bundle (PEM) trusted beside the system's, or NULL */
    int max_in_flight;            /* all endpoints together; 0 for the default */
    int per_endpoint;             /* in flight to one endpoint; 0 for the default */
    int threads;                  /* dispatcher threads; 0 for the default */
};

struct dispatcher;

/* Fills cfg with the defaults of CONTRACT §3 (the WorkFlux schedule). */
void dispatch_config_default(struct dispatch_config *cfg);

/*
 * Parses a --retry-schedule value ("0s,1m,5m,15m,1h") into cfg. Returns 0, or
 * ERR_PARSE with err (errlen bytes) saying which item is wrong.
 */
int dispatch_schedule_parse(struct dispatch_config *cfg, const char *list, char *err,
                            size_t errlen);

/*
 * Validates cfg->allow_networks; returns 0 or ERR_PARSE with err saying which
 * CIDR is wrong (so `serve` can refuse to start).
 */
int dispatch_networks_check(const char *list, char *err, size_t errlen);

/*
 * The address rules at the time an endpoint is created or changed: when
 * url's host is a literal IP address outside the globally reachable ones
 * (https://10.1.2.3/, https://[::1]/) and outside allow_networks (a comma
 * list of CIDRs, or NULL), returns ERR_INVAL with err (errlen bytes, starting
 * "url: ") naming the address and the rule. Names return 0: they are judged
 * after DNS, when a delivery connects. Returns 0, ERR_INVAL or ERR_NOMEM.
 */
int dispatch_url_address_check(const char *url, const char *allow_networks, char *err,
                               size_t errlen);

/* Starts the dispatcher threads on st (borrowed). Returns 0 and *out, or ERR_*. */
int dispatch_start(const struct dispatch_config *cfg, struct store *st, struct dispatcher **out);

/*
 * Stops claiming, waits up to grace_ms for attempts under way, gives the
 * rest back to the store, and frees; NULL is a no-op.
 */
void dispatch_stop(struct dispatcher *d, int64_t grace_ms);

/* Appends Prometheus lines (attempts by outcome, latency histogram, in-flight). */
void dispatch_metrics(struct buf *out, void *dispatcher);

#endif
