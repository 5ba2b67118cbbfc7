/*
 * fluxhook serve: opens the store, creates the default account and its admin
 * key on first start, runs the HTTP API and the dispatcher, and stops
 * cleanly on SIGTERM or SIGINT.
 *
 * Roles: "all" runs both; "api" runs the HTTP API without a dispatcher (some
 * other process delivers); "worker" runs the dispatcher and, on its --listen
 * address, only /healthz, /metrics and /openapi.json, so that it can be
 * health-checked and scraped like any other process (the /v1 API answers 404
 * there).
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/masterkey.h"
#include "cli/serve_boot.h"
#include "dispatch/dispatch.h"
#include "dispatch/retention.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/url.h"
#include "web/web.h"

#define SERVE_GRACE_MS 5000   /* how long attempts under way may finish on shutdown */
#define SERVE_MALLOC_ARENAS 8 /* glibc malloc arenas: see malloc_arenas_bound() */

static int serve_run(int argc, char **argv);

static const struct config_opt serve_opts[] = {
    {"listen", "HOST:PORT", "127.0.0.1:8080",
     "address of the HTTP API ([::1]:8080 for IPv6; "
     "port 0 picks a free one)",
     1, 0},
    {"db", "URL", "sqlite:./var/fluxhook.db", "store: sqlite:PATH or postgres://...", 1, 0},
    {"retry-schedule", "LIST", NULL,
     "delays before each attempt, such as 0s,1m,5m,15m,1h (the default)", 1, 0},
    {"attempt-timeout", "DURATION", "15s", "longest one delivery attempt may take", 1, 0},
    {"lease", "DURATION", "60s",
     "how long a claimed delivery is this process's; after that another may take it "
     "(longer than --attempt-timeout)",
     1, 0},
    {"allow-http", NULL, NULL, "accept http:// endpoint URLs, not only https://", 1, 0},
    {"allow-networks", "CIDRS", NULL,
     "comma list of private ranges deliveries may reach anyway, such as 10.0.0.0/8", 1, 0},
    {"ca-file", "PEM", NULL, "extra CA certificates trusted for deliveries", 1, 0},
    {"dev", NULL, NULL,
     "development: also accept http:// endpoint URLs and loopback receivers (127.0.0.0/8, "
     "::1), said loudly at start; never in production",
     1, 0},
    {"role", "ROLE", "all",
     "all: API and dispatcher; api: API only; worker: dispatcher only (its HTTP port "
     "serves just /healthz and /metrics)",
     1, 0},
    {"http-threads", "N", "auto",
     "N: event-loop threads that hold the HTTP connections (with SQLite, publishes run on "
     "them; other requests on 64 workers); auto: one per core, at most 4; "
     "0: one thread per connection",
     1, 0},
    {"http-max-connections", "N", "0",
     "HTTP connections at once (0: what the open-file limit leaves room for, at most 16384); "
     "near the limit the oldest idle ones are closed first",
     1, 0},
    {"http-per-ip", "N", "512", "HTTP connections at once from one client address (0: no cap)", 1,
     0},
    {"http-head-timeout", "DURATION", "10s",
     "a request head must arrive whole within this after its first byte, else 408", 1, 0},
    {"http-body-timeout", "DURATION", "30s",
     "a request body must arrive whole within this after its head, else 408", 1, 0},
    {"rate-limit", "N", "10000",
     "API requests per second (and burst) of one key, OAuth token or portal session; 0: no limit",
     1, 0},
    {"rate-limit-account", "N", "20000",
     "API requests per second (and burst) of one account over all its credentials; 0: no limit", 1,
     0},
    {"oauth-token-ttl", "DURATION", "1h", "lifetime of OAuth access tokens", 1, 0},
    {"oauth-refresh-ttl", "DURATION", "720h", "lifetime of OAuth refresh tokens", 1, 0},
    {"public-url", "URL", NULL,
     "base URL clients reach this server at, for portal links and OAuth metadata "
     "(default: http:// and the request's Host)",
     1, 0},
    {"portal-frame-ancestors", "ORIGINS", NULL,
     "space-separated origins allowed to embed the dashboard in a frame, such as "
     "https://app.example.com (default: none)",
     1, 0},
    {"master-key-file", "FILE", NULL,
     "the master key ring that seals endpoint secrets (default: FLUXHOOK_MASTER_KEY, else "
     "master.key beside the SQLite file, made on first start)",
     1, 0},
    {"retention", "DURATION", "30d",
     "delete finished events (and their deliveries) older than this, such as 30d or 12h; "
     "0 or off keeps everything",
     1, 0},
    {"store-open-timeout", "DURATION", "30s",
     "at start, keep trying to open the store this long while the database is unreachable "
     "or drops the connection (0: try once); a refused user or database, a newer schema or "
     "a wrong master key fail at once",
     1, 0},
    {"check", NULL, NULL, "check the configuration, print \"configuration OK\" and exit", 0, 'n'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

const struct cli_cmd cmd_serve = {
    .name = "serve",
    .usage = "[-n] [--listen HOST:PORT] [--db URL] [--retry-schedule LIST] "
             "[--attempt-timeout DURATION] [--lease DURATION] [--allow-http] "
             "[--allow-networks CIDRS] [--dev] "
             "[--ca-file PEM] [--role all|api|worker] [--http-threads N] "
             "[--http-max-connections N] [--http-per-ip N] [--http-head-timeout DURATION] "
             "[--http-body-timeout DURATION] [--rate-limit N] [--rate-limit-account N] "
             "[--oauth-token-ttl DURATION] [--oauth-refresh-ttl DURATION] [--public-url URL] "
             "[--portal-frame-ancestors ORIGINS] [--master-key-file FILE] [--retention DURATION] "
             "[--store-open-timeout DURATION]",
    .summary = "run the HTTP API and the dispatcher (every option also as FLUXHOOK_<OPTION>)",
    .opts = serve_opts,
    .run = serve_run,
};

enum serve_role { ROLE_ALL, ROLE_API, ROLE_WORKER };

struct serve_conf {
    const char *listen;
    const char *db;
    enum serve_role role;
    int http_threads;
    int http_max_conns;
    int http_per_ip;
    int http_head_ms;
    int http_body_ms;
    int rate_limit;
    int rate_limit_account;
    int64_t token_ttl_ms;
    int64_t refresh_ttl_ms;
    const char *public_url;
    int dev;        /* --dev: http:// and loopback receivers allowed */
    char *nets_own; /* --allow-networks plus the loopback ranges of --dev, owned */
    const char *master_key_file;
    int64_t retention_ms;    /* 0: keep everything */
    int64_t open_timeout_ms; /* --store-open-timeout; 0: one try */
    struct dispatch_config dc;
};

#define SERVE_DEV_NETWORKS "127.0.0.0/8,::1/128"

/* Names the flag and its environment twin in an error message. */
__attribute__((format(printf, 2, 3))) static void
bad_option(const char *name, const char *fmt, ...)
{
    char env[96];
    va_list ap;

    config_env_name(name, env, sizeof(env));
    fprintf(stderr, "fluxhook serve: --%s (or %s): ", name, env);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static int
switch_ok(const struct config *c, const char *name)
{
    static const char *const words[] = {"1", "true", "yes", "on", "0", "false", "no", "off", ""};
    const char *v = config_get(c, name);
    size_t i;

    if (v == NULL)
        return 1;
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(v, words[i]) == 0)
            return 1;
    }
    bad_option(name, "expected on or off (1, true, yes / 0, false, no), got '%s'", v);
    return 0;
}

/* Reads and checks every option into sc. Returns 0, or prints why and returns ERR_INVAL. */
/*
 * --http-threads auto: one loop per online core, at most 4. More loops than
 * cores only add threads for the store to wake (its writer, its syncer and
 * the dispatcher run beside them).
 */
static int
http_threads_auto(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        n = 1;
    return n < 4 ? (int)n : 4;
}

/* A count flag from 0 to max into *out. Returns 0 or ERR_INVAL (said on stderr). */
static int
conf_count(const struct config *c, const char *name, long max, int *out)
{
    const char *v = config_get(c, name);
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < 0 || n > max) {
        bad_option(name, "expected a number from 0 to %ld, got '%s'", max, v);
        return ERR_INVAL;
    }
    *out = (int)n;
    return 0;
}

/* A duration flag from 1 ms to 1 h into *out (ms). Returns 0 or ERR_INVAL (said on stderr). */
static int
conf_timeout(const struct config *c, const char *name, int *out)
{
    const char *v = config_get(c, name);
    int64_t ms;

    if (clock_parse_duration(v, &ms) != 0 || ms <= 0 || ms > 3600 * 1000) {
        bad_option(name, "expected a duration from 1ms to 1h such as 10s, got '%s'", v);
        return ERR_INVAL;
    }
    *out = (int)ms;
    return 0;
}

/* The access options: rate limits, OAuth lifetimes, portal URL and framing. */
static int
conf_access(const struct config *c, struct serve_conf *sc)
{
    const char *v;
    char err[256];

    if (conf_count(c, "rate-limit", 1000000, &sc->rate_limit) != 0 ||
        conf_count(c, "rate-limit-account", 1000000, &sc->rate_limit_account) != 0)
        return ERR_INVAL;
    v = config_get(c, "oauth-token-ttl");
    if (clock_parse_duration(v, &sc->token_ttl_ms) != 0 || sc->token_ttl_ms < 1000 ||
        sc->token_ttl_ms > 86400LL * 1000) {
        bad_option("oauth-token-ttl", "expected a duration from 1s to 24h such as 1h, got '%s'", v);
        return ERR_INVAL;
    }
    v = config_get(c, "oauth-refresh-ttl");
    if (clock_parse_duration(v, &sc->refresh_ttl_ms) != 0 ||
        sc->refresh_ttl_ms < sc->token_ttl_ms || sc->refresh_ttl_ms > 365LL * 86400 * 1000) {
        bad_option("oauth-refresh-ttl",
                   "expected a duration from --oauth-token-ttl to 8760h such as 720h, got '%s'", v);
        return ERR_INVAL;
    }
    sc->public_url = config_get(c, "public-url");
    if (sc->public_url != NULL && url_check(sc->public_url, 1, err, sizeof(err)) != 0) {
        bad_option("public-url", "%s", err);
        return ERR_INVAL;
    }
    v = config_get(c, "portal-frame-ancestors");
    if (web_frame_ancestors_set(v, err, sizeof(err)) != 0) {
        bad_option("portal-frame-ancestors", "%s", err);
        return ERR_INVAL;
    }
    return 0;
}

static int
conf_load(const struct config *c, struct serve_conf *sc)
{
    const char *v;
    char err[256], *end;
    int64_t ms;

    memset(sc, 0, sizeof(*sc));
    dispatch_config_default(&sc->dc);
    sc->listen = config_get(c, "listen");
    if (api_listen_check(sc->listen, err, sizeof(err)) != 0) {
        bad_option("listen", "%s", err);
        return ERR_INVAL;
    }
    sc->db = config_get(c, "db");
    if (sc->db == NULL ||
        (strncmp(sc->db, "sqlite:", 7) != 0 && strncmp(sc->db, "postgres://", 11) != 0 &&
         strncmp(sc->db, "postgresql://", 13) != 0) ||
        (strncmp(sc->db, "sqlite:", 7) == 0 && sc->db[7] == '\0')) {
        bad_option("db", "expected sqlite:PATH or postgres://..., got '%s'",
                   sc->db != NULL ? sc->db : "");
        return ERR_INVAL;
    }
    v = config_get(c, "role");
    if (strcmp(v, "all") == 0) {
        sc->role = ROLE_ALL;
    } else if (strcmp(v, "api") == 0) {
        sc->role = ROLE_API;
    } else if (strcmp(v, "worker") == 0) {
        sc->role = ROLE_WORKER;
    } else {
        bad_option("role", "expected all, api or worker, got '%s'", v);
        return ERR_INVAL;
    }
    v = config_get(c, "http-threads");
    if (strcmp(v, "auto") == 0) {
        sc->http_threads = http_threads_auto();
    } else {
        sc->http_threads = (int)strtol(v, &end, 10);
        if (v[0] == '\0' || *end != '\0' || sc->http_threads < 0 || sc->http_threads > 1024) {
            bad_option("http-threads", "expected auto or a number from 0 to 1024, got '%s'", v);
            return ERR_INVAL;
        }
    }
    if (conf_count(c, "http-max-connections", 1000000, &sc->http_max_conns) != 0 ||
        conf_count(c, "http-per-ip", 1000000, &sc->http_per_ip) != 0 ||
        conf_timeout(c, "http-head-timeout", &sc->http_head_ms) != 0 ||
        conf_timeout(c, "http-body-timeout", &sc->http_body_ms) != 0)
        return ERR_INVAL;
    v = config_get(c, "retry-schedule");
    if (v != NULL && dispatch_schedule_parse(&sc->dc, v, err, sizeof(err)) != 0) {
        bad_option("retry-schedule", "%s", err);
        return ERR_INVAL;
    }
    v = config_get(c, "attempt-timeout");
    if (clock_parse_duration(v, &ms) != 0 || ms <= 0) {
        bad_option("attempt-timeout",
                   "expected a duration above zero such as 15s or 500ms, "
                   "got '%s'",
                   v);
        return ERR_INVAL;
    }
    sc->dc.attempt_timeout_ms = ms;
    v = config_get(c, "lease");
    if (clock_parse_duration(v, &ms) != 0 || ms <= sc->dc.attempt_timeout_ms) {
        bad_option("lease", "expected a duration longer than --attempt-timeout (%lld ms), got '%s'",
                   (long long)sc->dc.attempt_timeout_ms, v);
        return ERR_INVAL;
    }
    sc->dc.lease_ms = ms;
    if (!switch_ok(c, "allow-http"))
        return ERR_INVAL;
    sc->dc.allow_http = config_bool(c, "allow-http");
    v = config_get(c, "allow-networks");
    if (v != NULL && dispatch_networks_check(v, err, sizeof(err)) != 0) {
        bad_option("allow-networks", "%s", err);
        return ERR_INVAL;
    }
    sc->dc.allow_networks = v;
    if (!switch_ok(c, "dev"))
        return ERR_INVAL;
    sc->dev = config_bool(c, "dev");
    if (sc->dev) {
        sc->dc.allow_http = 1;
        if (asprintf(&sc->nets_own, "%s%s" SERVE_DEV_NETWORKS, v != NULL ? v : "",
                     v != NULL && v[0] != '\0' ? "," : "") < 0) {
            sc->nets_own = NULL;
            return ERR_NOMEM;
        }
        sc->dc.allow_networks = sc->nets_own;
    }
    v = config_get(c, "ca-file");
    if (v != NULL && access(v, R_OK) != 0) {
        bad_option("ca-file", "cannot read '%s'", v);
        return ERR_INVAL;
    }
    sc->dc.ca_file = v;
    sc->master_key_file = config_get(c, "master-key-file");
    v = config_get(c, "retention");
    if (retention_parse(v, &sc->retention_ms) != 0 ||
        (sc->retention_ms > 0 && sc->retention_ms < 1000)) {
        bad_option("retention", "expected a duration of 1s or more such as 30d, or off, got '%s'",
                   v);
        return ERR_INVAL;
    }
    v = config_get(c, "store-open-timeout");
    if (strcmp(v, "0") == 0) {
        sc->open_timeout_ms = 0;
    } else if (clock_parse_duration(v, &sc->open_timeout_ms) != 0) {
        bad_option("store-open-timeout",
                   "expected a duration such as 30s, or 0 to try once, got '%s'", v);
        return ERR_INVAL;
    }
    return conf_access(c, sc);
}

/*
 * What can be checked before anything is created: the listen address can be
 * bound, and the store's directory written. Says why and which flag fixes it
 * on stderr. Returns 0 or ERR_IO.
 */
static int
start_check(const struct serve_conf *sc)
{
    char err[PATH_MAX + 256];

    if (api_listen_probe(sc->listen, err, sizeof(err)) != 0) {
        bad_option("listen", "%s", err);
        return ERR_IO;
    }
    if (strncmp(sc->db, "sqlite:", 7) == 0 && strcmp(sc->db + 7, ":memory:") != 0 &&
        serve_boot_path_check(sc->db + 7, err, sizeof(err)) != 0) {
        bad_option("db", "%s; choose a place you may write, such as --db sqlite:./var/fluxhook.db",
                   err);
        return ERR_IO;
    }
    return 0;
}

/*
 * The block a person reads after start: where the dashboard is, the admin
 * key (or its file), and the two variables the client commands read.
 */
static void
first_steps_print(const struct serve_conf *sc, const char *url, const char *key)
{
    char path[PATH_MAX];

    masterkey_default_path(sc->db, "root.key", path, sizeof(path));
    if (path[0] != '\0' && access(path, R_OK) != 0)
        path[0] = '\0';
    printf("\n");
    if (sc->dev)
        printf("  DEVELOPMENT MODE (--dev): http:// and loopback receivers are allowed.\n"
               "  Never use --dev on a server that others can reach.\n\n");
    printf("  fluxhook is running.\n\n");
    if (sc->role != ROLE_WORKER)
        printf("  Dashboard   %s/\n", url);
    if (key[0] != '\0')
        printf("  Admin key   %s\n              (shown once; also in %s, mode 0600)\n", key, path);
    else if (path[0] != '\0')
        printf("  Admin key   in %s\n", path);
    else
        printf("  Admin key   the one given in FLUXHOOK_ROOT_KEY at the first start\n");
    if (sc->role != ROLE_WORKER) {
        printf("\n  In another terminal, for the fluxhook command:\n");
        printf("    export FLUXHOOK_URL=%s\n", url);
        if (path[0] != '\0')
            printf("    export FLUXHOOK_API_KEY=$(cat %s)\n", path);
        else
            printf("    export FLUXHOOK_API_KEY=<the admin key>\n");
        printf("\n  Then, to see a delivery reach your own app (here on port 3000):\n"
               "    fluxhook listen --forward-to http://127.0.0.1:3000/webhooks\n"
               "    fluxhook endpoints create --url http://127.0.0.1:9000/\n"
               "    fluxhook trigger conversation.started\n");
    }
    printf("\n");
    fflush(stdout);
}

static const char *
role_name(enum serve_role r)
{
    return r == ROLE_ALL ? "all" : r == ROLE_API ? "api" : "worker";
}

/*
 * Raises the open-file limit to its hard limit: every HTTP connection is a
 * socket, and the server sizes its connection limit from this one.
 */
static void
nofile_raise(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("serve: cannot raise the open-file limit to %llu",
                 (unsigned long long)rl.rlim_max);
}

/* One try of store_start(): a step that fails, named for the log, gives its ERR_*. */
static int
start_once(const struct serve_conf *sc, struct serve_boot *b, struct store **st,
           struct keyring **keys, char shown[API_KEY_MAX + 256], const char **step)
{
    char key_path[PATH_MAX];
    int err;

    *step = "opening the store";
    err = store_open(sc->db, st);
    if (err != 0)
        return err;
    masterkey_default_path(sc->db, "master.key", key_path, sizeof(key_path));
    if (sc->master_key_file == NULL && key_path[0] != '\0' &&
        serve_boot_mkdir_parents(key_path) != 0) {
        log_error("serve: cannot create the directory of '%s'", key_path);
        return ERR_IO;
    }
    *step = "checking the master key";
    err = masterkey_attach("serve", sc->master_key_file, key_path[0] != '\0' ? key_path : NULL, *st,
                           keys);
    if (err != 0)
        return err;
    *step = "creating the first account";
    return serve_boot_run(*st, sc->db, b, shown);
}

/*
 * Opens the store, attaches the master key and makes the first account.
 * While a step fails with ERR_UNAVAILABLE (the database unreachable, or it
 * dropped a connection meanwhile) it closes what it opened and starts over,
 * waiting longer each time, until sc->open_timeout_ms has passed; every step
 * is safe to run again. A signal in sigs during a wait ends it with
 * ERR_SHUTDOWN. Returns 0 with *st and *keys, or the last ERR_* with
 * *opened saying whether the store itself had opened in the last try.
 */
static int
store_start(const struct serve_conf *sc, const sigset_t *sigs, struct serve_boot *b,
            struct store **st, struct keyring **keys, char shown[API_KEY_MAX + 256], int *opened)
{
    int64_t deadline = clock_mono_ms() + sc->open_timeout_ms, wait_ms = 100, left;
    struct timespec ts;
    const char *step;
    int tries = 0, err;

    for (;;) {
        tries++;
        err = start_once(sc, b, st, keys, shown, &step);
        *opened = *st != NULL;
        if (err == 0) {
            if (tries > 1)
                log_info("serve: store open after %d tries", tries);
            return 0;
        }
        store_close(*st);
        *st = NULL;
        keyring_free(*keys);
        *keys = NULL;
        left = deadline - clock_mono_ms();
        if (err != ERR_UNAVAILABLE || left <= 0) {
            if (*opened)
                log_error("serve: %s failed: %s", step, err_str(err));
            return err;
        }
        if (wait_ms > left)
            wait_ms = left;
        log_warnx("serve: %s failed (%s; the lines above say why), try %d; trying again in "
                  "%lld ms, for %lld ms more (--store-open-timeout)",
                  step, err_str(err), tries, (long long)wait_ms, (long long)left);
        ts.tv_sec = (time_t)(wait_ms / 1000);
        ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            log_info("serve: stopping while the store opens");
            return ERR_SHUTDOWN;
        }
        wait_ms = wait_ms * 2 > 2000 ? 2000 : wait_ms * 2;
    }
}

/*
 * Bounds glibc's malloc arenas. glibc gives each thread, at its first
 * allocation, an arena of its own while there are fewer than the bound (8
 * per core by default), then shares them out, and memory freed in an arena
 * stays with it: with 64 request workers parsing publish bodies, each arena
 * kept its own high-water mark, 40 % of the RSS of a serve with 200k
 * deliveries waiting. With two, the threads of the delivery path (the
 * writer, the syncer, the HTTP and dispatcher loops, the recorders) shared
 * them and waited for each other's allocations: 80-590 futex calls on
 * malloc's locks per 1k events published and delivered, about 20 with
 * eight (4: as 2), for 5 MiB more RSS with 1M deliveries waiting
 * (docs/performance.md). MALLOC_ARENA_MAX or glibc.malloc tunables in the
 * environment still decide.
 */
static void
malloc_arenas_bound(void)
{
    if (getenv("MALLOC_ARENA_MAX") == NULL && getenv("GLIBC_TUNABLES") == NULL)
        mallopt(M_ARENA_MAX, SERVE_MALLOC_ARENAS);
}

static int
serve_run(int argc, char **argv)
{
    struct config c;
    struct serve_conf sc;
    struct store *st = NULL;
    struct dispatcher *disp = NULL;
    struct retention *ret = NULL;
    struct keyring *keys = NULL;
    struct api_server *srv = NULL;
    struct api_config ac;
    sigset_t sigs;
    struct serve_boot boot;
    char host[256], url[320];
    char shown[API_KEY_MAX + 256];
    int rc, sig = 0, opened, err;

    rc = cli_parse(&cmd_serve, &c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.nargs > 0) {
        fprintf(stderr, "fluxhook serve: unexpected argument '%s'\n", c.args[0]);
        fprintf(stderr, "usage: fluxhook serve %s\n", cmd_serve.usage);
        return CLI_USAGE;
    }
    memset(&sc, 0, sizeof(sc));
    memset(shown, 0, sizeof(shown));
    if (!switch_ok(&c, "check") || conf_load(&c, &sc) != 0 || serve_boot_root_key_check() != 0) {
        free(sc.nets_own);
        return CLI_USAGE;
    }
    if (config_bool(&c, "check")) {
        printf("configuration OK\n");
        free(sc.nets_own);
        return CLI_OK;
    }
    if (start_check(&sc) != 0) {
        free(sc.nets_own);
        return CLI_REFUSED;
    }
    if (sc.dev)
        log_warnx("serve: DEVELOPMENT MODE (--dev): http:// endpoint URLs and loopback receivers "
                  "(" SERVE_DEV_NETWORKS ") are allowed; never use --dev in production");

    nofile_raise();
    malloc_arenas_bound();
    /* Every thread started from here on inherits the blocked signals; this one waits. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (strncmp(sc.db, "sqlite:", 7) == 0 && strcmp(sc.db + 7, ":memory:") != 0 &&
        serve_boot_mkdir_parents(sc.db + 7) != 0) {
        log_error("serve: cannot create the directory of '%s'", sc.db + 7);
        bad_option("db",
                   "cannot create the directory of '%s'; choose a place you may write, "
                   "such as --db sqlite:./var/fluxhook.db",
                   sc.db + 7);
        rc = CLI_REFUSED;
        goto out;
    }
    if (strncmp(sc.db, "sqlite:", 7) == 0 && strcmp(sc.db + 7, ":memory:") != 0)
        serve_boot_dir_private(sc.db + 7);
    memset(&boot, 0, sizeof(boot));
    err = store_start(&sc, &sigs, &boot, &st, &keys, shown, &opened);
    OPENSSL_cleanse(&boot, sizeof(boot));
    if (err == ERR_SHUTDOWN) {
        rc = CLI_OK;
        goto out;
    }
    if (err != 0 && opened) {
        rc = CLI_REFUSED; /* the master key or the first account: said above */
        goto out;
    }
    if (err != 0) {
        log_error("serve: cannot open the store: %s", err_str(err));
        bad_option("db", "cannot open the store '%s' (%s; the lines above say why): %s",
                   strncmp(sc.db, "sqlite:", 7) == 0 ? sc.db : "postgres://...", err_str(err),
                   strncmp(sc.db, "sqlite:", 7) == 0
                       ? "give the path of a fluxhook SQLite file, or of one to create"
                       : "check the host, port, database, user and password in the URL");
        rc = CLI_REFUSED;
        goto out;
    }
    if (sc.role != ROLE_API) {
        err = dispatch_start(&sc.dc, st, &disp);
        if (err != 0) {
            log_error("serve: cannot start the dispatcher: %s", err_str(err));
            rc = CLI_REFUSED;
            goto out;
        }
    }
    if (sc.role != ROLE_API && sc.retention_ms > 0 &&
        (err = retention_start(st, sc.retention_ms, &ret)) != 0) {
        log_error("serve: cannot start retention: %s", err_str(err));
        rc = CLI_REFUSED;
        goto out;
    }
    memset(&ac, 0, sizeof(ac));
    ac.listen = sc.listen;
    ac.allow_http = sc.dc.allow_http;
    ac.allow_networks = sc.dc.allow_networks;
    ac.url_address_fn = dispatch_url_address_check;
    ac.max_attempts = sc.dc.nschedule;
    ac.static_fn = web_asset_find;
    ac.metrics_fn = disp != NULL ? dispatch_metrics : NULL;
    ac.metrics_arg = disp;
    ac.meta_only = sc.role == ROLE_WORKER;
    ac.threads = sc.http_threads;
    ac.max_conns = sc.http_max_conns;
    ac.per_ip = sc.http_per_ip;
    ac.head_timeout_ms = sc.http_head_ms;
    ac.body_timeout_ms = sc.http_body_ms;
    ac.rate_limit = sc.rate_limit;
    ac.rate_limit_account = sc.rate_limit_account;
    ac.token_ttl_ms = sc.token_ttl_ms;
    ac.refresh_ttl_ms = sc.refresh_ttl_ms;
    ac.public_url = sc.public_url;
    err = api_server_start(&ac, st, &srv);
    if (err != 0) {
        log_error("serve: cannot serve HTTP on '%s': %s", sc.listen, err_str(err));
        rc = CLI_REFUSED;
        goto out;
    }
    /* The URL with the port actually bound; the e2e harness reads it from here. */
    snprintf(host, sizeof(host), "%s", sc.listen);
    if (host[0] == '[')
        *(strchr(host, ']') + 1) = '\0';
    else
        *strrchr(host, ':') = '\0';
    log_info("serve: listening url=http://%s:%d role=%s db=%s version=%s",
             host[0] != '\0' ? host : "0.0.0.0", api_server_port(srv), role_name(sc.role),
             strncmp(sc.db, "sqlite:", 7) == 0 ? sc.db : "postgres", FLUXHOOK_VERSION);
    snprintf(url, sizeof(url), "http://%s:%d",
             host[0] != '\0' && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "[::]") != 0
                 ? host
                 : "127.0.0.1",
             api_server_port(srv));
    first_steps_print(&sc, url, shown);
    OPENSSL_cleanse(shown, sizeof(shown));

    while (sig == 0) {
        if (sigwait(&sigs, &sig) != 0)
            sig = 0;
    }
    log_info("serve: stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
    rc = CLI_OK;
out:
    api_server_stop(srv);
    dispatch_stop(disp, SERVE_GRACE_MS);
    retention_stop(ret);
    store_close(st);
    keyring_free(keys);
    if (rc == CLI_OK)
        log_info("serve: stopped");
    OPENSSL_cleanse(shown, sizeof(shown));
    free(sc.nets_own);
    return rc;
}
