/*
 * One delivery's attempt: the signed request on a curl easy handle, the
 * address check at connect time, and the outcome (CONTRACT §2 and §3).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "sign/sign.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/secret.h"

enum attempt_class
attempt_status_class(int status)
{
    if (status >= 200 && status <= 299)
        return ATTEMPT_SUCCESS;
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return ATTEMPT_RETRY;
    default:
        return ATTEMPT_FAIL;
    }
}

int
attempt_ca_load(const char *path, void **out)
{
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *bio = NULL;
    int ncerts = 0;
    int i;
    int rc = 0;

    *out = NULL;
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        log_warnx("dispatch: cannot read --ca-file '%s'", path);
        rc = ERR_IO;
        goto out;
    }
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    if (infos != NULL) {
        for (i = 0; i < sk_X509_INFO_num(infos); i++) {
            if (sk_X509_INFO_value(infos, i)->x509 != NULL)
                ncerts++;
        }
    }
    if (ncerts == 0) {
        log_warnx("dispatch: --ca-file '%s' holds no PEM certificate", path);
        rc = ERR_PARSE;
        goto out;
    }
    *out = infos;
    infos = NULL;
out:
    ERR_clear_error();
    if (infos != NULL)
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    return rc;
}

void
attempt_ca_free(void *certs)
{
    if (certs != NULL)
        sk_X509_INFO_pop_free((STACK_OF(X509_INFO) *)certs, X509_INFO_free);
}

/*
 * Adds the --ca-file certificates to the trust store curl set up from the
 * system CAs, so both are trusted at once. Adding a certificate that is
 * there already (a store shared between connections) is harmless.
 */
static CURLcode
ssl_ctx_cb(CURL *easy, void *sslctx, void *arg)
{
    const struct dispatch_shared *sh = arg;
    STACK_OF(X509_INFO) *infos = sh->ca_certs;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);
    X509_INFO *info;
    int i;

    (void)easy;
    for (i = 0; i < sk_X509_INFO_num(infos); i++) {
        info = sk_X509_INFO_value(infos, i);
        if (info->x509 != NULL)
            X509_STORE_add_cert(store, info->x509);
    }
    ERR_clear_error();
    return CURLE_OK;
}

/*
 * Called by curl after DNS, for each address it is about to connect to: the
 * address rules apply here, so a name that resolves (or rebinds) to a
 * blocked address is refused whatever the URL said.
 */
static curl_socket_t
open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct attempt_ctx *ctx = arg;
    const char *why;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    why = addr_check(&a->addr, &ctx->sh->allow);
    if (why != NULL) {
        ctx->blocked = 1;
        ctx->blocked_why = why;
        addr_format(&a->addr, ctx->blocked_addr, sizeof(ctx->blocked_addr));
        return CURL_SOCKET_BAD;
    }
    ctx->opened = 1;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * Called by curl once a connection, new or reused, is ready for the request:
 * a timeout after this is the receiver's, not the connect's (a reused
 * connection reports a connect time of 0).
 */
static int
prereq_cb(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    struct attempt_ctx *ctx = arg;

    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    ctx->ready = 1;
    return CURL_PREREQFUNC_OK;
}

/*
 * Appends one header line to b for the log, printable ASCII only (anything
 * else reads as '?', so the log stays valid text), with CRLF; a line that no
 * longer fits is left out, and so are all after it.
 */
static void
keep_header_line(struct buf *b, const char *p, size_t len)
{
    size_t i, start = b->len;
    char ch;

    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len == 0 || b->len + len + 2 > b->max)
        return;
    if (buf_append(b, p, len) != 0)
        return;
    for (i = start; i < start + len; i++) {
        ch = b->data[i];
        if (!((ch >= 0x20 && ch < 0x7f) || ch == '\t'))
            b->data[i] = '?';
    }
    (void)buf_append(b, "\r\n", 2);
}

void
attempt_header_line(struct attempt_ctx *ctx, const char *p, size_t len)
{
    size_t i;
    size_t vlen;
    const char *v;
    int code = 0;

    ctx->answered = 1;
    /* The final header block decided the answer: trailers change nothing. */
    if (ctx->headers_done)
        return;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A status line: "HTTP/1.1 503 Service Unavailable", "HTTP/2 200". */
        i = 5;
        while (i < len && p[i] != ' ')
            i++;
        while (i < len && p[i] == ' ')
            i++;
        if (i + 3 <= len && isdigit((unsigned char)p[i]) && isdigit((unsigned char)p[i + 1]) &&
            isdigit((unsigned char)p[i + 2]))
            code = (p[i] - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0');
        ctx->status_code = code;
        ctx->retry_after[0] = '\0';
        buf_reset(&ctx->resp_headers);
        return;
    }
    if (len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) {
        /* The end of a header block; a 1xx one is followed by the real answer. */
        if (ctx->status_code >= 200 && !ctx->headers_done) {
            ctx->headers_done = 1;
            ctx->headers_done_mono = clock_mono_ms();
            if (ctx->grace_count != NULL)
                (*ctx->grace_count)++;
        }
        return;
    }
    keep_header_line(&ctx->resp_headers, p, len);
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        v = p + 12;
        vlen = len - 12;
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
            vlen--;
        if (vlen >= sizeof(ctx->retry_after))
            vlen = sizeof(ctx->retry_after) - 1;
        memcpy(ctx->retry_after, v, vlen);
        ctx->retry_after[vlen] = '\0';
    }
}

static size_t
header_cb(char *p, size_t size, size_t nitems, void *arg)
{
    attempt_header_line(arg, p, size * nitems);
    return size * nitems;
}

static size_t
write_cb(char *p, size_t size, size_t nitems, void *arg)
{
    struct attempt_ctx *ctx = arg;
    size_t len = size * nitems;
    size_t keep;

    ctx->answered = 1;
    ctx->body_seen += len;
    if (ctx->body.len < DISPATCH_BODY_KEEP_MAX) {
        keep = DISPATCH_BODY_KEEP_MAX - ctx->body.len;
        if (keep > len)
            keep = len;
        (void)buf_append(&ctx->body, p, keep);
    }
    /* Stop reading past the limit: curl then ends the transfer with a write error. */
    if (ctx->body_seen > DISPATCH_BODY_READ_MAX)
        return 0;
    return len;
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

#define ATTEMPT_HEADERS 11       /* header lines of a request */
#define ATTEMPT_HEADERS_TEXT 2048 /* their text, NULs included, at most */
#define ATTEMPT_HEADERS_LOG 1023  /* room first made for their copy in the log (1 KiB with its NUL) */

/* A request's header lines being built, before they become one curl_slist. */
struct hdr_set {
    char text[ATTEMPT_HEADERS_TEXT];
    size_t len;
    size_t start[ATTEMPT_HEADERS]; /* where each line begins */
    size_t n;
    int full;                      /* a line did not fit */
};

/* Appends the n bytes at s to the line being built. */
static void
hdr_put(struct hdr_set *h, const char *s, size_t n)
{
    if (h->full || h->n == ATTEMPT_HEADERS || h->len + n + 1 > sizeof(h->text)) {
        h->full = 1;
        return;
    }
    memcpy(h->text + h->len, s, n);
    h->len += n;
}

static void
hdr_puts(struct hdr_set *h, const char *s)
{
    hdr_put(h, s, strlen(s));
}

/* Appends v in decimal. */
static void
hdr_puti(struct hdr_set *h, int64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        d[--i] = '-';
    hdr_put(h, d + i, sizeof(d) - i);
}

/*
 * Ends the line being built; it is kept for the attempt's log unless it only
 * unsets one. Every byte of it is ours or checked before (ids, digits, hex,
 * base64, an event type of the catalogue): printable already, so it is
 * copied as is rather than looked at byte by byte as an answer's are.
 */
static void
hdr_end(struct attempt_ctx *ctx, struct hdr_set *h)
{
    size_t from = h->n < ATTEMPT_HEADERS ? h->start[h->n] : 0;

    if (h->full)
        return;
    h->text[h->len] = '\0';
    /* "Expect:" only stops curl adding one: it is not sent. */
    if (h->len > from && h->text[h->len - 1] != ':' &&
        ctx->req_headers.len + (h->len - from) + 2 <= ctx->req_headers.max) {
        (void)buf_append(&ctx->req_headers, h->text + from, h->len - from);
        (void)buf_append(&ctx->req_headers, "\r\n", 2);
    }
    h->len++;
    h->n++;
    if (h->n < ATTEMPT_HEADERS)
        h->start[h->n] = h->len;
}

/*
 * Makes h's lines ctx->headers: one allocation holding the list's nodes and
 * their text (attempt_ctx_free() frees it with one free()).
 */
static int
hdr_list(struct attempt_ctx *ctx, const struct hdr_set *h)
{
    struct curl_slist *nodes;
    char *text;
    size_t i;

    if (h->full || h->n == 0)
        return ERR_INVAL;
    nodes = malloc(h->n * sizeof(*nodes) + h->len);
    if (nodes == NULL)
        return ERR_NOMEM;
    text = (char *)(nodes + h->n);
    memcpy(text, h->text, h->len);
    for (i = 0; i < h->n; i++) {
        nodes[i].data = text + h->start[i];
        nodes[i].next = i + 1 < h->n ? &nodes[i + 1] : NULL;
    }
    ctx->headers = nodes;
    return 0;
}

/* Builds the headers of CONTRACT §2 for an attempt at now_s. */
static int
build_headers(struct attempt_ctx *ctx, int64_t now_s)
{
    const struct claim *c = &ctx->c;
    struct hdr_set h;
    char hex[SIGN_HEX_LEN + 1];
    char std[SIGN_STANDARD_MAX];
    char prev[SIGN_STANDARD_MAX];
    int err;

    h.len = h.n = 0;
    h.start[0] = 0;
    h.full = 0;
    /* The log's copy of the lines, in one allocation rather than a growth per line. */
    (void)buf_reserve(&ctx->req_headers, ATTEMPT_HEADERS_LOG);
    err = sign_hmac_hex(c->secret, c->body, c->body_len, hex);
    if (err != 0)
        goto out;
    err = sign_standard(c->secret, c->dlv.event_id, now_s, c->body, c->body_len, std);
    if (err != 0)
        goto out;
    prev[0] = '\0';
    if (c->prev_secret != NULL && c->prev_secret[0] != '\0') {
        err = sign_standard(c->prev_secret, c->dlv.event_id, now_s, c->body, c->body_len, prev);
        if (err != 0)
            goto out;
    }
    hdr_puts(&h, "Content-Type: application/json");
    hdr_end(ctx, &h);
    hdr_puts(&h, "User-Agent: fluxhook/" FLUXHOOK_VERSION);
    hdr_end(ctx, &h);
    hdr_puts(&h, "Expect:");
    hdr_end(ctx, &h);
    hdr_puts(&h, "X-Workflux-Signature: ");
    hdr_puts(&h, hex);
    hdr_end(ctx, &h);
    hdr_puts(&h, "X-Workflux-Event: ");
    hdr_puts(&h, c->dlv.event_type);
    hdr_end(ctx, &h);
    hdr_puts(&h, "X-Workflux-Event-Id: ");
    hdr_puts(&h, c->dlv.event_id);
    hdr_end(ctx, &h);
    hdr_puts(&h, "X-Workflux-Delivery: ");
    hdr_puts(&h, c->dlv.id);
    hdr_end(ctx, &h);
    hdr_puts(&h, "X-Workflux-Attempt: ");
    hdr_puti(&h, c->dlv.attempts_made + 1);
    hdr_end(ctx, &h);
    hdr_puts(&h, "webhook-id: ");
    hdr_puts(&h, c->dlv.event_id);
    hdr_end(ctx, &h);
    hdr_puts(&h, "webhook-timestamp: ");
    hdr_puti(&h, now_s);
    hdr_end(ctx, &h);
    hdr_puts(&h, "webhook-signature: ");
    hdr_puts(&h, std);
    if (prev[0] != '\0') {
        hdr_puts(&h, " ");
        hdr_puts(&h, prev);
    }
    hdr_end(ctx, &h);
    err = hdr_list(ctx, &h);
out:
    OPENSSL_cleanse(hex, sizeof(hex));
    return err;
}

/*
 * Sets one option unless an earlier one failed, remembering which option
 * failed: every option matters (CURLOPT_PROTOCOLS_STR and CURLOPT_PROXY are
 * security checks), so none may fail unnoticed.
 */
#define EASY_SET(opt, val)                                                                         \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(e, opt, val);                                                    \
            failed = #opt;                                                                         \
        }                                                                                          \
    } while (0)

/*
 * Sets the options of ctx's easy handle. Those that are the same for every
 * attempt of the dispatcher (sh) are set once per handle: a handle back from
 * the thread's pool still has them, and its CURLOPT_PRIVATE (a former
 * attempt, never NULL once set) says so. A handle whose setup failed is
 * reset first, so no half-set option outlives it. Returns 0, or
 * ERR_INTERNAL with ctx->error naming the option curl refused.
 */
static int
setup_easy(struct attempt_ctx *ctx)
{
    const struct dispatch_config *cfg = &ctx->sh->cfg;
    CURL *e = ctx->easy;
    long connect_ms = (long)cfg->connect_timeout_ms;
    const char *failed = "";
    char *former = NULL;
    CURLcode rc = CURLE_OK;
    int err = 0;

    if (connect_ms > (long)cfg->attempt_timeout_ms)
        connect_ms = (long)cfg->attempt_timeout_ms;
    if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &former) != CURLE_OK)
        former = NULL;
    if (former == NULL) {
        curl_easy_reset(e);
        EASY_SET(CURLOPT_NOSIGNAL, 1L);
        EASY_SET(CURLOPT_PROTOCOLS_STR, cfg->allow_http ? "http,https" : "https");
        EASY_SET(CURLOPT_FOLLOWLOCATION, 0L);
        EASY_SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
        EASY_SET(CURLOPT_TIMEOUT_MS, (long)cfg->attempt_timeout_ms);
        EASY_SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        EASY_SET(CURLOPT_HEADERFUNCTION, header_cb);
        EASY_SET(CURLOPT_WRITEFUNCTION, write_cb);
        EASY_SET(CURLOPT_OPENSOCKETFUNCTION, open_cb);
        EASY_SET(CURLOPT_PREREQFUNCTION, prereq_cb);
        EASY_SET(CURLOPT_TCP_NODELAY, 1L);
        if (ctx->sh->ca_certs != NULL) {
            EASY_SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
            EASY_SET(CURLOPT_SSL_CTX_DATA, (void *)ctx->sh);
        }
    }
    /* The attempt's own: its target, body, headers and where callbacks write. */
    EASY_SET(CURLOPT_URL, ctx->c.url);
    EASY_SET(CURLOPT_POSTFIELDS, ctx->c.body);
    EASY_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ctx->c.body_len);
    EASY_SET(CURLOPT_HTTPHEADER, ctx->headers);
    EASY_SET(CURLOPT_HEADERDATA, ctx);
    EASY_SET(CURLOPT_WRITEDATA, ctx);
    EASY_SET(CURLOPT_OPENSOCKETDATA, ctx);
    EASY_SET(CURLOPT_PREREQDATA, ctx);
    EASY_SET(CURLOPT_ERRORBUFFER, ctx->errbuf);
    /* Last: only a handle whose every option is set counts as set up. */
    EASY_SET(CURLOPT_PRIVATE, ctx);
    if (rc != CURLE_OK) {
        curl_easy_reset(e); /* CURLOPT_PRIVATE back to NULL: set up again next time */
        ctx->error = fmt_alloc("internal: cannot set %s: %s", failed, curl_easy_strerror(rc));
        err = ERR_INTERNAL;
    }
    return err;
}

#undef EASY_SET

static int
scheme_is(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncasecmp(url, scheme, n) == 0;
}

int
attempt_ctx_new(struct claim *c, const struct dispatch_shared *sh, CURL *easy, int64_t now_ms,
                struct attempt_ctx **out)
{
    struct attempt_ctx *ctx;
    int err = 0;

    *out = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return ERR_NOMEM;
    ctx->c = *c;
    c->url = NULL;
    c->secret = NULL;
    c->prev_secret = NULL;
    c->body = NULL;
    c->dlv.last_error = NULL;
    ctx->sh = sh;
    ctx->easy = easy;
    ctx->started_ms = now_ms;
    ctx->started_mono = clock_mono_ms();
    buf_init(&ctx->body, DISPATCH_BODY_KEEP_MAX);
    buf_init(&ctx->req_headers, DISPATCH_HEADERS_KEEP_MAX);
    buf_init(&ctx->resp_headers, DISPATCH_HEADERS_KEEP_MAX);
    *out = ctx;

    if (ctx->c.url == NULL || ctx->c.body == NULL || ctx->c.secret == NULL) {
        ctx->error = fmt_alloc("internal: incomplete claim");
        err = ERR_INVAL;
        goto out;
    }
    if (scheme_is(ctx->c.url, "http://") && !sh->cfg.allow_http) {
        ctx->error = fmt_alloc("http:// endpoints are refused; allow them with --allow-http");
        ctx->blocked = 1;
        err = ERR_BLOCKED;
        goto out;
    }
    if (!scheme_is(ctx->c.url, "http://") && !scheme_is(ctx->c.url, "https://")) {
        ctx->error = fmt_alloc("unsupported URL scheme: expected https://");
        err = ERR_INVAL;
        goto out;
    }
    err = build_headers(ctx, now_ms / 1000);
    if (err != 0) {
        ctx->error = fmt_alloc("cannot sign the request: %s", err_str(err));
        goto out;
    }
    err = setup_easy(ctx);
out:
    return err;
}

enum attempt_error_class
attempt_error_classify(int rc, enum attempt_phase phase)
{
    switch (rc) {
    case CURLE_URL_MALFORMAT:
        return ATTEMPT_ERROR_NONE;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /*
         * Before a request went out, a URL scheme curl will not use; after,
         * an answer without a valid status line (HTTP/0.9, garbage).
         */
        return phase >= ATTEMPT_PHASE_SENT ? ATTEMPT_ERROR_PROTOCOL : ATTEMPT_ERROR_NONE;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return ATTEMPT_ERROR_DNS;
    case CURLE_COULDNT_CONNECT:
        return ATTEMPT_ERROR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        /* The phase it timed out in names it: a reused connection is past connecting. */
        switch (phase) {
        case ATTEMPT_PHASE_RESOLVE:
            return ATTEMPT_ERROR_DNS;
        case ATTEMPT_PHASE_CONNECT:
            return ATTEMPT_ERROR_CONNECT;
        case ATTEMPT_PHASE_HANDSHAKE:
            return ATTEMPT_ERROR_TLS;
        default:
            return ATTEMPT_ERROR_TIMEOUT;
        }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_USE_SSL_FAILED:
        return ATTEMPT_ERROR_TLS;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP3:
    case CURLE_RANGE_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
        return ATTEMPT_ERROR_PROTOCOL;
    case CURLE_OK: /* the connection closed inside the answer's headers */
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2_STREAM:
        return ATTEMPT_ERROR_RESET;
    default:
        /* Anything else is named after how far the attempt got. */
        switch (phase) {
        case ATTEMPT_PHASE_RESOLVE:
        case ATTEMPT_PHASE_CONNECT:
            return ATTEMPT_ERROR_CONNECT;
        case ATTEMPT_PHASE_HANDSHAKE:
            return ATTEMPT_ERROR_TLS;
        case ATTEMPT_PHASE_SENT:
            return ATTEMPT_ERROR_RESET;
        default:
            return ATTEMPT_ERROR_PROTOCOL;
        }
    }
}

/* How far ctx's attempt got, from its callbacks and curl's timings. */
static enum attempt_phase
phase_get(const struct attempt_ctx *ctx)
{
    curl_off_t connect_us = 0;

    if (ctx->answered)
        return ATTEMPT_PHASE_ANSWER;
    if (ctx->ready)
        return ATTEMPT_PHASE_SENT;
    if (ctx->easy != NULL)
        curl_easy_getinfo(ctx->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (connect_us > 0)
        return ATTEMPT_PHASE_HANDSHAKE;
    if (ctx->opened)
        return ATTEMPT_PHASE_CONNECT;
    return ATTEMPT_PHASE_RESOLVE;
}

/* Why the connection failed, from the system's errno: "connection refused". */
static void
os_reason(const struct attempt_ctx *ctx, char *out, size_t outlen)
{
    long os_errno = 0;

    out[0] = '\0';
    if (ctx->easy != NULL)
        curl_easy_getinfo(ctx->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno != 0)
        snprintf(out, outlen, "%s", strerror((int)os_errno));
    out[0] = (char)tolower((unsigned char)out[0]);
}

/*
 * "cannot connect to example.com port 443: connection refused", the host and
 * port as the URL names them; shorter when they or the reason are unknown.
 */
static char *
connect_error(const struct attempt_ctx *ctx)
{
    CURLU *u = NULL;
    char *host = NULL;
    char *port = NULL;
    char *s;
    char why[128];

    os_reason(ctx, why, sizeof(why));
    if (ctx->c.url != NULL)
        u = curl_url();
    if (u != NULL && curl_url_set(u, CURLUPART_URL, ctx->c.url, 0) == CURLUE_OK) {
        (void)curl_url_get(u, CURLUPART_HOST, &host, 0);
        (void)curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    }
    if (host != NULL && port != NULL)
        s = fmt_alloc("cannot connect to %s port %s%s%s", host, port, why[0] != '\0' ? ": " : "",
                      why);
    else
        s = fmt_alloc("cannot connect%s%s", why[0] != '\0' ? ": " : "", why);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return s;
}

/*
 * Why a transfer without an HTTP answer failed, for the attempt's log: a
 * plain sentence in the words of the class, never curl's own message alone.
 */
static char *
transport_error(const struct attempt_ctx *ctx, int rc, enum attempt_phase phase,
                enum attempt_error_class ecls)
{
    const struct dispatch_config *cfg = &ctx->sh->cfg;
    const char *detail = ctx->errbuf[0] != '\0' ? ctx->errbuf : curl_easy_strerror(rc);
    long long connect_ms =
        (long long)(cfg->connect_timeout_ms < cfg->attempt_timeout_ms ? cfg->connect_timeout_ms
                                                                      : cfg->attempt_timeout_ms);
    long long attempt_ms = (long long)cfg->attempt_timeout_ms;
    char why[128];

    switch (ecls) {
    case ATTEMPT_ERROR_DNS:
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return fmt_alloc("DNS timeout after %lld ms", connect_ms);
        return fmt_alloc("the host name does not resolve");
    case ATTEMPT_ERROR_CONNECT:
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return fmt_alloc("connect timeout after %lld ms", connect_ms);
        return connect_error(ctx);
    case ATTEMPT_ERROR_TLS:
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return fmt_alloc("TLS handshake timeout after %lld ms", connect_ms);
        /* What TLS refused (a certificate problem, a version) is the useful part. */
        return fmt_alloc("TLS handshake failed: %s", detail);
    case ATTEMPT_ERROR_TIMEOUT:
        if (phase == ATTEMPT_PHASE_ANSWER)
            return fmt_alloc("timeout after %lld ms in the middle of the answer's headers",
                             attempt_ms);
        return fmt_alloc("timeout after %lld ms without an answer", attempt_ms);
    case ATTEMPT_ERROR_PROTOCOL:
        if (rc == CURLE_UNSUPPORTED_PROTOCOL)
            return fmt_alloc("the receiver's answer is not HTTP: bad status line");
        if (rc == CURLE_WEIRD_SERVER_REPLY)
            return fmt_alloc("the receiver's answer is not HTTP: malformed status line or header");
        return fmt_alloc("the receiver's answer is not valid HTTP");
    case ATTEMPT_ERROR_RESET:
        if (rc == CURLE_GOT_NOTHING)
            return fmt_alloc("the receiver closed the connection without answering");
        if (phase == ATTEMPT_PHASE_ANSWER)
            return fmt_alloc("the connection closed in the middle of the answer's headers");
        os_reason(ctx, why, sizeof(why));
        return fmt_alloc("the connection broke before an answer%s%s", why[0] != '\0' ? ": " : "",
                         why);
    default:
        return fmt_alloc("the endpoint URL cannot be used");
    }
}

void
attempt_ctx_finish(struct attempt_ctx *ctx, int rc, int64_t now_ms, int64_t now_mono,
                   struct attempt_result *r, int *outcome)
{
    const struct dispatch_config *cfg = &ctx->sh->cfg;
    enum attempt_error_class ecls = ATTEMPT_ERROR_NONE;
    enum attempt_phase phase;
    enum attempt_class cls;
    int64_t retry_after = -1;
    int64_t delay;
    /* An answer is a status line whose header block ended; a broken one is no answer. */
    int status = ctx->headers_done ? ctx->status_code : 0;
    int k;

    memset(r, 0, sizeof(*r));
    snprintf(r->attempt.delivery_id, sizeof(r->attempt.delivery_id), "%s", ctx->c.dlv.id);
    r->attempt.n = ctx->c.dlv.attempts_made + 1;
    r->lease_token = ctx->c.dlv.lease_token;
    r->attempt.at = ctx->started_ms;
    r->attempt.duration_ms = now_mono - ctx->started_mono;
    if (r->attempt.duration_ms < 0)
        r->attempt.duration_ms = 0;
    r->attempt.status_code = rc == -1 ? 0 : status;
    r->attempt.response_body = ctx->body.len > 0 ? ctx->body.data : NULL;
    r->attempt.response_len = ctx->body.len;
    r->attempt.request_headers = ctx->req_headers.len > 0 ? ctx->req_headers.data : NULL;
    r->attempt.response_headers =
        ctx->headers_done && ctx->resp_headers.len > 0 ? ctx->resp_headers.data : NULL;

    if (rc == -1) {
        /* Never started: the claim itself cannot be attempted. */
        cls = ATTEMPT_FAIL;
        ecls = ctx->blocked ? ATTEMPT_ERROR_BLOCKED : ATTEMPT_ERROR_NONE;
        *outcome = ctx->blocked ? 3 : 2;
    } else if (status != 0) {
        /* The status line decides, whatever happened to the body afterwards. */
        cls = attempt_status_class(status);
        if (status >= 300 && status <= 399 && ctx->error == NULL)
            ctx->error = fmt_alloc("HTTP %d: redirects are not followed", status);
        if ((status == 429 || status == 503) && ctx->retry_after[0] != '\0' &&
            backoff_retry_after_parse(ctx->retry_after, now_ms, &retry_after) != 0)
            retry_after = -1;
        *outcome = cls == ATTEMPT_SUCCESS ? 0 : cls == ATTEMPT_RETRY ? 1 : 2;
    } else if (ctx->blocked) {
        cls = ATTEMPT_FAIL;
        free(ctx->error);
        ctx->error = fmt_alloc("address %s is blocked (%s); allow it with --allow-networks",
                               ctx->blocked_addr, ctx->blocked_why);
        ecls = ATTEMPT_ERROR_BLOCKED;
        *outcome = 3;
    } else {
        /* Every transport and protocol failure may pass: retry it. */
        phase = phase_get(ctx);
        ecls = attempt_error_classify(rc, phase);
        free(ctx->error);
        ctx->error = transport_error(ctx, rc, phase, ecls);
        cls = ecls == ATTEMPT_ERROR_NONE ? ATTEMPT_FAIL : ATTEMPT_RETRY;
        *outcome = ecls == ATTEMPT_ERROR_NONE ? 2 : 1;
    }
    r->attempt.error = ctx->error;
    r->attempt.error_class = ecls;

    switch (cls) {
    case ATTEMPT_SUCCESS:
        r->status = DELIVERY_DELIVERED;
        break;
    case ATTEMPT_FAIL:
        r->status = DELIVERY_FAILED;
        break;
    case ATTEMPT_RETRY:
        /* k attempts of this round are made now; attempt k (0-based) is next. */
        k = ctx->c.dlv.attempts_made + 1 - ctx->c.dlv.round_start;
        delay = backoff_delay(cfg, k, retry_after);
        if (delay >= 0) {
            r->status = DELIVERY_PENDING;
            r->next_attempt_at = now_ms + delay;
            break;
        }
        r->status = DELIVERY_FAILED;
        r->disable_endpoint = 1;
        if (status != 0)
            snprintf(ctx->reason, sizeof(ctx->reason),
                     "%d consecutive failed attempts; last: HTTP %d", k, status);
        else
            snprintf(ctx->reason, sizeof(ctx->reason), "%d consecutive failed attempts; last: %s",
                     k, ctx->error != NULL ? ctx->error : "transport failure");
        r->disable_reason = ctx->reason;
        *outcome = 2;
        break;
    }
}

void
attempt_ctx_free(struct attempt_ctx *ctx)
{
    if (ctx == NULL)
        return;
    free(ctx->headers); /* one block: see hdr_list() */
    buf_cleanup(&ctx->body);
    buf_cleanup(&ctx->req_headers);
    buf_cleanup(&ctx->resp_headers);
    free(ctx->error);
    free(ctx->c.url);
    secret_free(ctx->c.secret);
    secret_free(ctx->c.prev_secret);
    free(ctx->c.body);
    free(ctx->c.dlv.last_error); /* the one string a delivery owns */
    free(ctx);
}
