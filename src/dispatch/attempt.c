/*
 * One delivery's attempt: the signed request's bytes, what the answer's
 * head and body say, and the outcome (CONTRACT §2 and §3). The address
 * check at connect time is conn.c's.
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

int
attempt_body_bytes(struct attempt_ctx *ctx, const char *p, size_t len)
{
    size_t keep;

    ctx->answered = 1;
    ctx->body_seen += len;
    if (ctx->body.len < DISPATCH_BODY_KEEP_MAX) {
        keep = DISPATCH_BODY_KEEP_MAX - ctx->body.len;
        if (keep > len)
            keep = len;
        (void)buf_append(&ctx->body, p, keep);
    }
    /* Stop reading past the limit: the status line has decided already. */
    return ctx->body_seen > DISPATCH_BODY_READ_MAX ? -1 : 0;
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

#define ATTEMPT_HEADERS_LOG 1023 /* room first made for the log's copy (1 KiB with its NUL) */
#define ATTEMPT_HEAD_ROOM 1536   /* room first made for the request's head */
#define ATTEMPT_KEEP_MAX 16384   /* a recycled attempt keeps buffers up to this size */

/*
 * Appends to the request the header line made of the n strings of parts,
 * and a copy of it to the attempt's log. Every byte of it is ours or checked
 * before (ids, digits, hex, base64, an event type of the catalogue):
 * printable already, so it is copied as is rather than looked at byte by
 * byte as an answer's are.
 */
static int
put_header(struct attempt_ctx *ctx, const char *const *parts, size_t n)
{
    size_t from = ctx->req.len;
    size_t i;
    int err = 0;

    for (i = 0; i < n && err == 0; i++)
        err = buf_puts(&ctx->req, parts[i]);
    if (err == 0 && ctx->req_headers.len + (ctx->req.len - from) + 2 <= ctx->req_headers.max) {
        (void)buf_append(&ctx->req_headers, ctx->req.data + from, ctx->req.len - from);
        (void)buf_append(&ctx->req_headers, "\r\n", 2);
    }
    if (err == 0)
        err = buf_append(&ctx->req, "\r\n", 2);
    return err;
}

#define PUT_HEADER(...)                                                                            \
    do {                                                                                           \
        const char *const parts_[] = {__VA_ARGS__};                                                \
        if (err == 0)                                                                              \
            err = put_header(ctx, parts_, sizeof(parts_) / sizeof(parts_[0]));                     \
    } while (0)

/* Builds the request of CONTRACT §2 for an attempt at now_s: its head and body. */
static int
build_request(struct attempt_ctx *ctx, int64_t now_s)
{
    const struct claim *c = &ctx->c;
    char hex[SIGN_HEX_LEN + 1];
    char std[SIGN_STANDARD_MAX];
    char prev[SIGN_STANDARD_MAX];
    char attempt[BUF_DEC_U64 + 1];
    char ts[BUF_DEC_U64 + 1];
    int err;

    /* The log's copy of the lines and the request, each in one allocation. */
    (void)buf_reserve(&ctx->req_headers, ATTEMPT_HEADERS_LOG);
    err = buf_reserve(&ctx->req, ATTEMPT_HEAD_ROOM + c->body_len);
    if (err != 0)
        goto out;
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
    attempt[BUF_DEC_U64] = '\0';
    ts[BUF_DEC_U64] = '\0';
    err = h1_request_head(&ctx->req, &ctx->url);
    PUT_HEADER("Content-Type: application/json");
    PUT_HEADER("User-Agent: fluxhook/" FLUXHOOK_VERSION);
    PUT_HEADER("X-Workflux-Signature: ", hex);
    PUT_HEADER("X-Workflux-Event: ", c->dlv.event_type);
    PUT_HEADER("X-Workflux-Event-Id: ", c->dlv.event_id);
    PUT_HEADER("X-Workflux-Delivery: ", c->dlv.id);
    PUT_HEADER("X-Workflux-Attempt: ",
               buf_dec_u64(attempt, (uint64_t)(c->dlv.attempts_made + 1)));
    PUT_HEADER("webhook-id: ", c->dlv.event_id);
    PUT_HEADER("webhook-timestamp: ", buf_dec_u64(ts, (uint64_t)now_s));
    if (prev[0] != '\0')
        PUT_HEADER("webhook-signature: ", std, " ", prev);
    else
        PUT_HEADER("webhook-signature: ", std);
    if (err == 0)
        err = h1_request_end(&ctx->req, c->body, c->body_len);
out:
    OPENSSL_cleanse(hex, sizeof(hex));
    return err;
}

#undef PUT_HEADER

static int
scheme_is(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncasecmp(url, scheme, n) == 0;
}

/* Fills ctx (zeroed, its buffers empty) for an attempt of claim c, as attempt_ctx_new() says. */
static int
ctx_start(struct attempt_ctx *ctx, struct claim *c, const struct dispatch_shared *sh,
          int64_t now_ms)
{
    int err = 0;

    ctx->c = *c;
    c->url = NULL;
    c->secret = NULL;
    c->prev_secret = NULL;
    c->body = NULL;
    c->dlv.last_error = NULL;
    ctx->sh = sh;
    ctx->started_ms = now_ms;
    ctx->started_mono = clock_mono_ms();
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
    if (h1_url_split(ctx->c.url, &ctx->url) != 0) {
        ctx->error = fmt_alloc("unsupported URL scheme: expected https://");
        err = ERR_INVAL;
        goto out;
    }
    err = build_request(ctx, now_ms / 1000);
    if (err != 0)
        ctx->error = fmt_alloc("cannot sign the request: %s", err_str(err));
out:
    return err;
}

int
attempt_ctx_new(struct claim *c, const struct dispatch_shared *sh, int64_t now_ms,
                struct attempt_ctx **out)
{
    struct attempt_ctx *ctx;

    *out = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return ERR_NOMEM;
    buf_init(&ctx->body, DISPATCH_BODY_KEEP_MAX);
    buf_init(&ctx->req_headers, DISPATCH_HEADERS_KEEP_MAX);
    buf_init(&ctx->resp_headers, DISPATCH_HEADERS_KEEP_MAX);
    buf_init(&ctx->req, SIZE_MAX);
    h1_parser_init(&ctx->parser);
    *out = ctx;
    return ctx_start(ctx, c, sh, now_ms);
}

int
attempt_ctx_renew(struct attempt_ctx *ctx, struct claim *c, const struct dispatch_shared *sh,
                  int64_t now_ms)
{
    struct buf req = ctx->req, body = ctx->body, req_headers = ctx->req_headers;
    struct buf resp_headers = ctx->resp_headers, part = ctx->parser.part;

    memset(ctx, 0, sizeof(*ctx));
    h1_parser_init(&ctx->parser);
    ctx->req = req;
    ctx->body = body;
    ctx->req_headers = req_headers;
    ctx->resp_headers = resp_headers;
    ctx->parser.part = part;
    return ctx_start(ctx, c, sh, now_ms);
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

/* How far ctx's attempt got, from what its connection saw and curl's connect timings. */
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
    if (ctx->os_errno != 0)
        os_errno = ctx->os_errno;
    else if (ctx->easy != NULL)
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
    r->endpoint_id = ctx->c.dlv.endpoint_id;
    r->account_id = ctx->c.dlv.account_id;
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

/* Frees the strings ctx owns (its claim's, its error), leaving their pointers NULL. */
static void
ctx_strings_free(struct attempt_ctx *ctx)
{
    free(ctx->error);
    free(ctx->c.url);
    secret_free(ctx->c.secret);
    secret_free(ctx->c.prev_secret);
    free(ctx->c.body);
    free(ctx->c.dlv.last_error); /* the one string a delivery owns */
    ctx->error = NULL;
    ctx->c.url = NULL;
    ctx->c.secret = NULL;
    ctx->c.prev_secret = NULL;
    ctx->c.body = NULL;
    ctx->c.dlv.last_error = NULL;
}

void
attempt_ctx_free(struct attempt_ctx *ctx)
{
    if (ctx == NULL)
        return;
    buf_cleanup(&ctx->req);
    h1_parser_cleanup(&ctx->parser);
    buf_cleanup(&ctx->body);
    buf_cleanup(&ctx->req_headers);
    buf_cleanup(&ctx->resp_headers);
    ctx_strings_free(ctx);
    free(ctx);
}

/* Empties b, keeping its memory for the next attempt unless it grew past ATTEMPT_KEEP_MAX. */
static void
buf_keep(struct buf *b)
{
    if (b->cap > ATTEMPT_KEEP_MAX)
        buf_cleanup(b);
    else
        buf_reset(b);
}

void
attempt_ctx_recycle(struct attempt_ctx *ctx)
{
    ctx_strings_free(ctx);
    buf_keep(&ctx->req);
    buf_keep(&ctx->parser.part);
    buf_keep(&ctx->body);
    buf_keep(&ctx->req_headers);
    buf_keep(&ctx->resp_headers);
}
