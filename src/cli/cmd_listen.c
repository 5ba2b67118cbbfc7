/*
 * fluxhook listen: a local receiver for development. It prints every
 * delivery that arrives (event, ids, attempt, and whether each signature
 * verifies, with libfluxhook-verify's own functions) and answers with the
 * chosen status after the chosen delay, so that retries and disabling can be
 * watched; or, with --forward-to, passes each delivery on to the
 * developer's own app with the same headers and body and answers with that
 * app's answer. --print headers|body adds what arrived to each block, and
 * --print json prints each request as one JSON line that `fluxhook verify
 * --request` reads. It listens on 127.0.0.1 only and stops cleanly on
 * SIGINT or SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>

#include "api/http.h"
#include "cli/cli.h"
#include "fluxhook/verify.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/err.h"
#include "util/strlist.h"

#define LISTEN_MAX_BODY (4 * 1024 * 1024) /* larger bodies are answered 413 */
#define LISTEN_MAX_CODES 32
#define LISTEN_MAX_ANSWER                                                                          \
    (64 * 1024)                         /* the forwarded app's answer kept, as the dispatcher does \
                                         */
#define LISTEN_FORWARD_TIMEOUT_MS 14000 /* under the dispatcher's 15 s attempt timeout */
#define LISTEN_SHOWN_ANSWER 200         /* characters of the app's answer printed */
#define LISTEN_WORKERS 32               /* deliveries answered at once (each may wait --delay) */
#define LISTEN_MAX_CONNS 1024

/* What --print adds (bits; json goes alone). */
enum listen_print { PRINT_HEADERS = 1, PRINT_BODY = 2, PRINT_JSON = 4 };

static int listen_run(int argc, char **argv);

static const struct config_opt listen_opts[] = {
    {"port", "P", "9000", "port on 127.0.0.1 (0 picks a free one)", 0, 'p'},
    {"secret", "S", NULL,
     "the endpoint's secret, whsec_..., to verify both signatures (or FLUXHOOK_SECRET)", 1, 's'},
    {"respond", "CODE[,CODE...]", "200",
     "status to answer; a list answers the Nth request with the Nth code, then the last", 0, 'r'},
    {"delay", "DURATION", "0ms", "wait this long before answering, such as 2s", 0, 'd'},
    {"body", NULL, NULL, "print each delivery's body too (as --print body)", 0, 'b'},
    {"forward-to", "URL", NULL,
     "pass each delivery on to your app at URL (same method, headers and body), print its "
     "answer and answer the delivery with it",
     0, 'f'},
    {"print", "WHAT", NULL,
     "headers, body or headers,body: add them to each block; json: print each request as one "
     "JSON line instead. 'fluxhook verify --request' reads a block with both, or a JSON line",
     0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

const struct cli_cmd cmd_listen = {
    .name = "listen",
    .usage = "[--port P] [--secret S] [--respond CODE[,CODE...]] [--delay DURATION] "
             "[--forward-to URL] [--print headers,body|json]",
    .summary = "a local receiver for development: print each delivery and check its signatures",
    .opts = listen_opts,
    .run = listen_run,
};

struct listener {
    const char *secret;          /* borrowed, or NULL */
    int codes[LISTEN_MAX_CODES]; /* answers in order; the last repeats */
    int ncodes;
    int64_t delay_ms;
    int print;              /* enum listen_print bits */
    const char *forward_to; /* borrowed, or NULL */
    atomic_long count; /* requests seen */
    atomic_int stopping;
    pthread_mutex_t out; /* one block at a time on stdout */
};

/* What one request collects while its body arrives. */
struct listen_req {
    struct buf body;
    int too_big;
    char *error; /* the answer's body when it is a message, or NULL */
};

/* The developer's app's answer to a forwarded delivery. */
struct forward_answer {
    long status;                      /* 0 when no answer came */
    struct buf body;                  /* capped at LISTEN_MAX_ANSWER */
    char ctype[128];                  /* its Content-Type, or "" */
    char error[CURL_ERROR_SIZE + 64]; /* why no answer came */
    int64_t ms;
};

static const char *
verdict(int code)
{
    return code == FLUXHOOK_VERIFY_OK ? "verified" : fluxhook_verify_strerror(code);
}

/* Request headers that belong to one hop and are not passed on (RFC 9110 §7.6.1). */
static int
hop_header(const char *name)
{
    static const char *const hop[] = {
        "Host",   "Content-Length", "Connection", "Keep-Alive",       "Transfer-Encoding",
        "TE",     "Upgrade",        "Expect",     "Proxy-Connection", "Proxy-Authorization",
        "Trailer"};
    size_t i;

    for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (strcasecmp(name, hop[i]) == 0)
            return 1;
    }
    return 0;
}

/* Appends the end-to-end header fields of hd as "Name: value" to *hdrs. Returns 0 or ERR_NOMEM. */
static int
headers_forward(const struct http_head *hd, struct curl_slist **hdrs)
{
    struct curl_slist *grown;
    char *line = NULL;
    int i;

    for (i = 0; i < hd->nfields; i++) {
        if (hop_header(hd->fields[i].name))
            continue;
        /* "Name;" is how curl sends a header with an empty value. */
        if ((hd->fields[i].value[0] == '\0'
                 ? asprintf(&line, "%s;", hd->fields[i].name)
                 : asprintf(&line, "%s: %s", hd->fields[i].name, hd->fields[i].value)) < 0)
            return ERR_NOMEM;
        grown = curl_slist_append(*hdrs, line);
        free(line);
        if (grown == NULL)
            return ERR_NOMEM;
        *hdrs = grown;
    }
    return 0;
}

static size_t
answer_write(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;

    /* Past the cap the rest is read and dropped, so the app is not cut off. */
    (void)buf_append(b, p, size * n);
    return size * n;
}

/*
 * Passes the request on to l->forward_to with the same method, headers and
 * body; fills ans with the answer, or ans->status 0 and ans->error.
 */
static void
forward(struct listener *l, const struct http_head *hd, const char *method,
        const struct listen_req *rq, struct forward_answer *ans)
{
    struct curl_slist *hdrs = NULL;
    const char *ct = NULL;
    int64_t start = clock_mono_ms();
    CURLcode cc;
    CURL *h;

    h = curl_easy_init();
    if (h == NULL) {
        snprintf(ans->error, sizeof(ans->error), "cannot start libcurl");
        return;
    }
    if (headers_forward(hd, &hdrs) != 0 || (hdrs = curl_slist_append(hdrs, "Expect:")) == NULL) {
        snprintf(ans->error, sizeof(ans->error), "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, l->forward_to);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body.data != NULL ? rq->body.data : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)LISTEN_FORWARD_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ans->error);
    cc = curl_easy_perform(h);
    ans->ms = clock_mono_ms() - start;
    if (cc != CURLE_OK) {
        if (ans->error[0] == '\0')
            snprintf(ans->error, sizeof(ans->error), "%s", curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(ans->ctype, sizeof(ans->ctype), "%s", ct);
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

/*
 * --print json: the request as one line, {"method", "path", "headers", "body",
 * "length", "answer"} and, when forwarding, "forwarded_to" and "app" (the
 * app's status, or its error), which `fluxhook verify --request` reads. A
 * body that is not UTF-8 text is printed as null, with its length.
 */
static void
json_print(struct listener *l, const struct http_head *hd, const char *method, const char *url,
           const struct listen_req *rq, int status, const struct forward_answer *ans)
{
    json_t *o, *h, *b;
    char *line;
    int i;

    h = json_object();
    for (i = 0; h != NULL && i < hd->nfields; i++)
        json_object_set_new(h, hd->fields[i].name, json_string(hd->fields[i].value));
    b = json_stringn(rq->body.data != NULL ? rq->body.data : "", rq->body.len);
    o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:i}", "method", method, "path", url, "headers",
                  h != NULL ? h : json_null(), "body", b != NULL ? b : json_null(), "length",
                  (json_int_t)rq->body.len, "answer", status);
    if (o != NULL && l->forward_to != NULL) {
        json_object_set_new(o, "forwarded_to", json_string(l->forward_to));
        json_object_set_new(o, "app",
                            ans->status > 0 ? json_integer(ans->status) : json_string(ans->error));
    }
    line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    pthread_mutex_lock(&l->out);
    printf("%s\n", line != NULL ? line : "{\"error\":\"out of memory\"}");
    fflush(stdout);
    pthread_mutex_unlock(&l->out);
    free(line);
    json_decref(o);
}

/* The forwarding lines of a block: where it went and what the app answered. */
static void
forward_print(const struct listener *l, const struct forward_answer *ans)
{
    size_t shown = ans->body.len < LISTEN_SHOWN_ANSWER ? ans->body.len : LISTEN_SHOWN_ANSWER;
    size_t i;

    printf("  forwarded to          %s\n", l->forward_to);
    if (ans->status == 0) {
        printf("  your app              FAILED: %s; answered 502\n", ans->error);
        return;
    }
    printf("  your app answered     %ld in %lld ms%s", ans->status, (long long)ans->ms,
           shown > 0 ? ": " : "");
    for (i = 0; i < shown; i++)
        putchar(ans->body.data[i] == '\n' || ans->body.data[i] == '\r' ? ' ' : ans->body.data[i]);
    printf("%s\n", ans->body.len > shown ? "..." : "");
}

/* Prints one delivery's block. */
static void
block_print(struct listener *l, const struct http_head *hd, const char *method, const char *url,
            const struct listen_req *rq, long n, int status, const struct forward_answer *ans)
{
    const char *ev, *evid, *dlv, *att, *xsig, *wid, *wts, *wsig;
    char now[CLOCK_RFC3339_MAX], line1[128], line2[128];
    int64_t now_ms = clock_now_ms();
    int r, i;

    ev = http_head_field(hd, "X-Workflux-Event");
    evid = http_head_field(hd, "X-Workflux-Event-Id");
    dlv = http_head_field(hd, "X-Workflux-Delivery");
    att = http_head_field(hd, "X-Workflux-Attempt");
    xsig = http_head_field(hd, "X-Workflux-Signature");
    wid = http_head_field(hd, "webhook-id");
    wts = http_head_field(hd, "webhook-timestamp");
    wsig = http_head_field(hd, "webhook-signature");
    if (l->secret == NULL) {
        snprintf(line1, sizeof(line1), "not checked (no --secret)");
        snprintf(line2, sizeof(line2), "not checked (no --secret)");
    } else {
        if (xsig == NULL) {
            snprintf(line1, sizeof(line1), "FAILED: header missing");
        } else {
            r = fluxhook_verify_signature(l->secret, rq->body.data != NULL ? rq->body.data : "",
                                          rq->body.len, xsig);
            snprintf(line1, sizeof(line1), "%s%s", r == 0 ? "" : "FAILED: ", verdict(r));
        }
        if (wid == NULL || wts == NULL || wsig == NULL) {
            snprintf(line2, sizeof(line2), "FAILED: header missing");
        } else {
            r = fluxhook_verify_standard(l->secret, wid, wts, wsig,
                                         rq->body.data != NULL ? rq->body.data : "", rq->body.len,
                                         now_ms / 1000, FLUXHOOK_VERIFY_DEFAULT_TOLERANCE);
            snprintf(line2, sizeof(line2), "%s%s", r == 0 ? "" : "FAILED: ", verdict(r));
        }
    }
    clock_format_rfc3339(now_ms, now);
    pthread_mutex_lock(&l->out);
    printf("%s  #%ld %s %s (%zu bytes)\n", now, n, method, url, rq->body.len);
    printf("  event                 %s\n", ev != NULL ? ev : "-");
    printf("  event id              %s\n", evid != NULL ? evid : "-");
    printf("  delivery id           %s\n", dlv != NULL ? dlv : "-");
    printf("  attempt               %s\n", att != NULL ? att : "-");
    printf("  X-Workflux-Signature  %s\n", line1);
    printf("  webhook-signature     %s\n", line2);
    if (l->print & PRINT_HEADERS) {
        printf("  headers\n");
        for (i = 0; i < hd->nfields; i++)
            printf("    %s: %s\n", hd->fields[i].name, hd->fields[i].value);
    }
    if (l->print & PRINT_BODY)
        printf("  body                  %.*s\n", (int)rq->body.len,
               rq->body.data != NULL ? rq->body.data : "");
    if (l->forward_to != NULL)
        forward_print(l, ans);
    if (l->delay_ms > 0)
        printf("  answer                %d after %lldms\n", status, (long long)l->delay_ms);
    else
        printf("  answer                %d\n", status);
    fflush(stdout);
    pthread_mutex_unlock(&l->out);
}

/* Sleeps ms in short steps, returning early when the listener stops. */
static void
delay_wait(struct listener *l, int64_t ms)
{
    struct timespec ts = {0, 20 * 1000000L};
    int64_t end = clock_mono_ms() + ms;

    while (!atomic_load(&l->stopping) && clock_mono_ms() < end)
        nanosleep(&ts, NULL);
}

/* http.c's head_fn: a body over the cap is read and dropped, then answered 413. */
static int
on_head(void *arg, struct http_exchange *x)
{
    struct listen_req *rq;

    (void)arg;
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        http_answer_start(x, 503);
        return 1;
    }
    buf_init(&rq->body, LISTEN_MAX_BODY);
    x->user = rq;
    if (x->head.length > LISTEN_MAX_BODY)
        rq->too_big = 1; /* x->body stays NULL: the body is dropped */
    else
        x->body = &rq->body;
    return 0;
}

/* http.c's run_fn, on one of its workers: print, forward, wait, answer. */
static void
on_run(void *arg, struct http_exchange *x)
{
    struct listener *l = arg;
    struct listen_req *rq = x->user;
    const char *method = x->head.method, *url = x->head.path;
    struct forward_answer ans;
    long n;
    int status;

    n = atomic_fetch_add(&l->count, 1) + 1;
    status = l->codes[n - 1 < l->ncodes ? n - 1 : l->ncodes - 1];
    memset(&ans, 0, sizeof(ans));
    buf_init(&ans.body, LISTEN_MAX_ANSWER);
    if (rq->too_big) {
        status = 413;
    } else if (l->forward_to != NULL) {
        forward(l, &x->head, method, rq, &ans);
        status = ans.status >= 100 && ans.status <= 599 ? (int)ans.status : 502;
    }
    if (l->print & PRINT_JSON)
        json_print(l, &x->head, method, url, rq, status, &ans);
    else
        block_print(l, &x->head, method, url, rq, n, status, &ans);
    if (l->delay_ms > 0)
        delay_wait(l, l->delay_ms);
    http_answer_start(x, status);
    http_answer_header(x, "Content-Type", ans.ctype[0] != '\0' ? ans.ctype : "text/plain");
    if (l->forward_to != NULL && ans.status > 0 && !rq->too_big) {
        size_t len = ans.body.len;

        if (ans.body.data != NULL)
            http_answer_body(x, buf_steal(&ans.body), len, free);
    } else if (l->forward_to != NULL && !rq->too_big) {
        rq->error = strdup(ans.error);
        http_answer_body(x, rq->error != NULL ? rq->error : "", strlen(ans.error), NULL);
    } else {
        http_answer_body(x, "ok\n", 3, NULL);
    }
    buf_cleanup(&ans.body);
}

/* http.c's error_fn: its own refusals (a malformed request) in plain text. */
static void
on_error(void *arg, struct http_exchange *x, int status, const char *type, const char *msg)
{
    struct listen_req *rq = x->user;

    (void)arg;
    (void)type;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return;
        buf_init(&rq->body, LISTEN_MAX_BODY);
        x->user = rq;
    }
    free(rq->error);
    rq->error = malloc(strlen(msg) + 2);
    http_answer_start(x, status);
    http_answer_header(x, "Content-Type", "text/plain");
    if (rq->error != NULL) {
        snprintf(rq->error, strlen(msg) + 2, "%s\n", msg);
        http_answer_body(x, rq->error, strlen(rq->error), NULL);
    }
}

static void
on_done(void *arg, struct http_exchange *x)
{
    struct listen_req *rq = x->user;

    (void)arg;
    if (rq == NULL)
        return;
    buf_cleanup(&rq->body);
    free(rq->error);
    free(rq);
    x->user = NULL;
}

/* Adds the --print list v ("headers,body", "json") to *bits. Returns 0 or ERR_PARSE. */
static int
print_parse(const char *v, int *bits)
{
    const char *p = v, *item;
    size_t len;

    while (strlist_next(&p, &item, &len)) {
        if (len == 7 && strncmp(item, "headers", 7) == 0)
            *bits |= PRINT_HEADERS;
        else if (len == 4 && strncmp(item, "body", 4) == 0)
            *bits |= PRINT_BODY;
        else if (len == 4 && strncmp(item, "json", 4) == 0)
            *bits |= PRINT_JSON;
        else
            return ERR_PARSE;
    }
    /* json replaces the block: it goes alone. */
    return (*bits & PRINT_JSON) != 0 && (*bits & ~PRINT_JSON) != 0 ? ERR_PARSE : 0;
}

/* Parses "200" or "503,503,200" into l->codes. Returns 0 or ERR_PARSE. */
static int
codes_parse(struct listener *l, const char *s)
{
    char *end;
    long v;

    l->ncodes = 0;
    for (;;) {
        v = strtol(s, &end, 10);
        if (end == s || v < 100 || v > 599 || l->ncodes == LISTEN_MAX_CODES)
            return ERR_PARSE;
        l->codes[l->ncodes++] = (int)v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return ERR_PARSE;
        s = end + 1;
    }
}

static int
listen_run(int argc, char **argv)
{
    struct config c;
    struct listener l;
    struct http_server *d = NULL;
    struct http_config hc;
    struct http_handler hh;
    struct sockaddr_in sa;
    sigset_t set, old;
    const char *v;
    char *end;
    long port;
    int rc, sig, mutex_ok = 0, curl_ok = 0, fd, bound = 0;

    memset(&l, 0, sizeof(l));
    rc = cli_parse(&cmd_listen, &c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.nargs > 0) {
        fprintf(stderr, "fluxhook listen: unexpected argument '%s'\nusage: fluxhook listen %s\n",
                c.args[0], cmd_listen.usage);
        return CLI_USAGE;
    }
    v = config_get(&c, "port");
    port = strtol(v, &end, 10);
    if (*end != '\0' || end == v || port < 0 || port > 65535) {
        fprintf(stderr, "fluxhook listen: --port: expected 0 to 65535\nusage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    if (codes_parse(&l, config_get(&c, "respond")) != 0) {
        fprintf(stderr,
                "fluxhook listen: --respond: expected HTTP statuses 100 to 599, such as "
                "503,503,200\nusage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    if (clock_parse_duration(config_get(&c, "delay"), &l.delay_ms) != 0) {
        fprintf(stderr,
                "fluxhook listen: --delay: expected a duration such as 500ms or 2s\n"
                "usage: fluxhook listen %s\n",
                cmd_listen.usage);
        return CLI_USAGE;
    }
    l.secret = config_get(&c, "secret");
    l.print = config_bool(&c, "body") ? PRINT_BODY : 0;
    v = config_get(&c, "print");
    if (v != NULL && print_parse(v, &l.print) != 0) {
        fprintf(stderr,
                "fluxhook listen: --print: expected headers, body, headers,body or json, got "
                "'%s'\nusage: fluxhook listen %s\n",
                v, cmd_listen.usage);
        return CLI_USAGE;
    }
    l.forward_to = config_get(&c, "forward-to");
    if (l.forward_to != NULL && strncmp(l.forward_to, "http://", 7) != 0 &&
        strncmp(l.forward_to, "https://", 8) != 0) {
        fprintf(stderr,
                "fluxhook listen: --forward-to: expected your app's URL, such as "
                "http://127.0.0.1:3000/webhooks, got '%s'\nusage: fluxhook listen %s\n",
                l.forward_to, cmd_listen.usage);
        return CLI_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fluxhook listen: cannot start libcurl\n");
        return CLI_REFUSED;
    }
    curl_ok = 1;
    atomic_init(&l.count, 0);
    atomic_init(&l.stopping, 0);
    if (pthread_mutex_init(&l.out, NULL) != 0) {
        rc = CLI_REFUSED;
        goto out;
    }
    mutex_ok = 1;
    /* The daemon's threads inherit the blocked signals; this thread waits for them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(&hc, 0, sizeof(hc));
    hc.threads = 1;
    hc.workers = LISTEN_WORKERS;
    hc.max_conns = LISTEN_MAX_CONNS;
    memset(&hh, 0, sizeof(hh));
    hh.head_fn = on_head;
    hh.run_fn = on_run;
    hh.error_fn = on_error;
    hh.done_fn = on_done;
    hh.arg = &l;
    fd = http_listen_socket((struct sockaddr *)&sa, sizeof(sa), 128, &bound);
    if (fd < 0 || http_server_start(&hc, &hh, fd, &d) != 0) {
        fprintf(stderr, "fluxhook listen: cannot listen on 127.0.0.1:%ld (in use?)\n", port);
        rc = CLI_REFUSED;
        goto out;
    }
    printf("listen: listening url=http://127.0.0.1:%d\n", bound);
    if (l.secret == NULL)
        printf("listen: no --secret: signatures are not checked\n");
    if (l.forward_to != NULL)
        printf("listen: forwarding each delivery to %s and answering with its answer\n",
               l.forward_to);
    fflush(stdout);
    sig = 0;
    sigwait(&set, &sig);
    atomic_store(&l.stopping, 1);
    rc = CLI_OK;
out:
    if (d != NULL)
        http_server_stop(d);
    if (d != NULL) {
        printf("listen: stopped deliveries=%ld\n", atomic_load(&l.count));
        fflush(stdout);
    }
    if (mutex_ok) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_mutex_destroy(&l.out);
    }
    if (curl_ok)
        curl_global_cleanup();
    return rc;
}
