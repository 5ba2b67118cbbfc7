/* Outcome rules and request headers of one attempt (src/dispatch/attempt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "sign/sign.h"
#include "util/err.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define OLD_SECRET "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define BODY "{\"id\":\"evt_1\",\"event\":\"user.message\",\"data\":{}}"

static void
test_status_classes(void **state)
{
    int s;

    (void)state;
    for (s = 200; s <= 299; s++)
        assert_int_equal(attempt_status_class(s), ATTEMPT_SUCCESS);
    assert_int_equal(attempt_status_class(408), ATTEMPT_RETRY);
    assert_int_equal(attempt_status_class(429), ATTEMPT_RETRY);
    assert_int_equal(attempt_status_class(500), ATTEMPT_RETRY);
    assert_int_equal(attempt_status_class(502), ATTEMPT_RETRY);
    assert_int_equal(attempt_status_class(503), ATTEMPT_RETRY);
    assert_int_equal(attempt_status_class(504), ATTEMPT_RETRY);
    for (s = 100; s < 1000; s++) {
        if ((s >= 200 && s <= 299) || s == 408 || s == 429 || s == 500 || (s >= 502 && s <= 504))
            continue;
        if (attempt_status_class(s) != ATTEMPT_FAIL)
            fail_msg("status %d should fail at once", s);
    }
    /* The ones the guide names, and redirects. */
    assert_int_equal(attempt_status_class(400), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(401), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(404), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(301), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(302), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(501), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(505), ATTEMPT_FAIL);
    assert_int_equal(attempt_status_class(0), ATTEMPT_FAIL);
}

struct fixture {
    struct dispatch_shared sh;
    struct attempt_ctx *ctx;
    struct attempt_result r;
    int outcome;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[128];

    assert_non_null(f);
    dispatch_config_default(&f->sh.cfg);
    assert_int_equal(dispatch_schedule_parse(&f->sh.cfg, "0ms,100ms,200ms", err, sizeof(err)), 0);
    f->ctx = calloc(1, sizeof(*f->ctx));
    assert_non_null(f->ctx);
    f->ctx->sh = &f->sh;
    strcpy(f->ctx->c.dlv.id, "dlv_1");
    strcpy(f->ctx->c.dlv.endpoint_id, "ep_1");
    f->ctx->started_ms = 1000000;
    buf_init(&f->ctx->body, DISPATCH_BODY_KEEP_MAX);
    buf_init(&f->ctx->resp_headers, DISPATCH_HEADERS_KEEP_MAX);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    attempt_ctx_free(f->ctx);
    free(f);
    return 0;
}

/*
 * Finishes f's attempt with status (or a curl code when status is 0); a
 * final status came with its whole header block.
 */
static void
run(struct fixture *f, int made, int round_start, int status, int rc)
{
    f->ctx->c.dlv.attempts_made = made;
    f->ctx->c.dlv.round_start = round_start;
    f->ctx->status_code = status;
    f->ctx->headers_done = status >= 200;
    attempt_ctx_finish(f->ctx, rc, 2000000, 0, &f->r, &f->outcome);
}

static void
test_success(void **state)
{
    struct fixture *f = *state;

    buf_puts(&f->ctx->body, "ok");
    run(f, 0, 0, 204, 0);
    assert_int_equal(f->r.status, DELIVERY_DELIVERED);
    assert_int_equal(f->r.attempt.n, 1);
    assert_int_equal(f->r.attempt.status_code, 204);
    assert_string_equal(f->r.attempt.delivery_id, "dlv_1");
    assert_int_equal(f->r.attempt.at, 1000000);
    assert_null(f->r.attempt.error);
    assert_int_equal(f->r.attempt.response_len, 2);
    assert_memory_equal(f->r.attempt.response_body, "ok", 2);
    assert_int_equal(f->r.disable_endpoint, 0);
    assert_int_equal(f->outcome, 0);
}

static void
test_success_despite_broken_body(void **state)
{
    struct fixture *f = *state;

    /* 200 came, then the body broke off (or was cut short after the grace). */
    run(f, 2, 0, 200, CURLE_PARTIAL_FILE);
    assert_int_equal(f->r.status, DELIVERY_DELIVERED);
    assert_int_equal(f->r.attempt.n, 3);
    run(f, 0, 0, 200, -2);
    assert_int_equal(f->r.status, DELIVERY_DELIVERED);
    run(f, 0, 0, 201, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.status, DELIVERY_DELIVERED);
}

static void
test_retry_then_exhausted(void **state)
{
    struct fixture *f = *state;

    run(f, 0, 0, 503, 0);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 100);
    assert_int_equal(f->outcome, 1);
    run(f, 1, 0, 500, 0);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 200);
    /* The third attempt of a three-attempt round fails: give up and disable. */
    run(f, 2, 0, 503, 0);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 1);
    assert_string_equal(f->r.disable_reason, "3 consecutive failed attempts; last: HTTP 503");
    assert_int_equal(f->outcome, 2);
}

static void
test_new_round_counts_from_round_start(void **state)
{
    struct fixture *f = *state;

    /* Five attempts made before; a retry started a new round at 5. */
    run(f, 5, 5, 502, 0);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.n, 6);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 100);
    run(f, 7, 5, 504, 0);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 1);
}

static void
test_fail_at_once(void **state)
{
    struct fixture *f = *state;
    static const int codes[] = {400, 401, 403, 404, 410, 413, 422, 501, 505};
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        run(f, 0, 0, codes[i], 0);
        assert_int_equal(f->r.status, DELIVERY_FAILED);
        assert_int_equal(f->r.disable_endpoint, 0);
        assert_int_equal(f->r.attempt.status_code, codes[i]);
    }
}

static void
test_redirect_not_followed(void **state)
{
    struct fixture *f = *state;

    run(f, 0, 0, 302, 0);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 0);
    assert_non_null(f->r.attempt.error);
    assert_non_null(strstr(f->r.attempt.error, "redirects are not followed"));
}

static void
test_retry_after(void **state)
{
    struct fixture *f = *state;

    strcpy(f->ctx->retry_after, "2");
    run(f, 0, 0, 429, 0);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 2000);
    strcpy(f->ctx->retry_after, "7200");
    run(f, 0, 0, 503, 0);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 3600000);
    /* Only on 429 and 503. */
    strcpy(f->ctx->retry_after, "2");
    run(f, 0, 0, 500, 0);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 100);
    /* Garbage is ignored. */
    strcpy(f->ctx->retry_after, "soon");
    run(f, 0, 0, 429, 0);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 100);
}

/* Hands the lines of an answer head to the header parser, as curl's callback does. */
static void
head(struct fixture *f, const char *const *lines)
{
    for (; *lines != NULL; lines++)
        attempt_header_line(f->ctx, *lines, strlen(*lines));
}

static void
test_header_lines(void **state)
{
    static const char *const answer[] = {
        "HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 503 Busy\r\n", "Retry-After:  30 \r\n",
        "\r\n",
        /* Trailers after the final block (the fuzzer's find): they change nothing. */
        "HTTP/1.1 200 OK\r\n", "Retry-After: 1\r\n", "\r\n", NULL};
    struct fixture *f = *state;

    head(f, answer);
    assert_int_equal(f->ctx->status_code, 503);
    assert_int_equal(f->ctx->headers_done, 1);
    assert_string_equal(f->ctx->retry_after, "30");
    attempt_ctx_finish(f->ctx, 0, 2000000, 0, &f->r, &f->outcome);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.status_code, 503);
    assert_int_equal(f->r.next_attempt_at, 2000000 + 30000);
    /* The final block's header lines are kept for the log, not the 1xx one's. */
    assert_string_equal(f->r.attempt.response_headers, "Retry-After:  30 \r\n");
}

/* Response headers are kept up to the cap, as printable text, whole lines only. */
static void
test_header_lines_kept(void **state)
{
    static const char *const answer[] = {"HTTP/1.1 404 Not Found\r\n", "Server: t\x01\xe9st\r\n",
                                         "X-Request-Id: abc\r\n", NULL};
    struct fixture *f = *state;
    char line[600];
    int i;

    head(f, answer);
    /* Lines that would pass the cap are left out, whole. */
    memset(line, 'a', sizeof(line) - 3);
    memcpy(line, "X-Pad: ", 7);
    strcpy(line + sizeof(line) - 3, "\r\n");
    for (i = 0; i < 10; i++)
        attempt_header_line(f->ctx, line, strlen(line));
    attempt_header_line(f->ctx, "\r\n", 2);
    attempt_ctx_finish(f->ctx, 0, 2000000, 0, &f->r, &f->outcome);
    assert_non_null(f->r.attempt.response_headers);
    assert_true(strncmp(f->r.attempt.response_headers,
                        "Server: t??st\r\nX-Request-Id: abc\r\nX-Pad: ", 41) == 0);
    assert_true(strlen(f->r.attempt.response_headers) <= DISPATCH_HEADERS_KEEP_MAX);
    assert_int_equal(f->r.attempt.response_headers[strlen(f->r.attempt.response_headers) - 1], '\n');
}

static void
test_header_lines_garbled(void **state)
{
    static const char *const answer[] = {"HTTP/1.1 2x0 OK\r\n", "\r\n", NULL};
    struct fixture *f = *state;

    /* No three digits: status 0, so the block never counts as an answer. */
    head(f, answer);
    assert_int_equal(f->ctx->status_code, 0);
    assert_int_equal(f->ctx->headers_done, 0);
}

/* Finishes f's attempt without an answer, having got as far as the flags say. */
static void
run_phase(struct fixture *f, int opened, int ready, int answered, int rc)
{
    f->ctx->opened = opened;
    f->ctx->ready = ready;
    f->ctx->answered = answered;
    run(f, 0, 0, 0, rc);
}

static void
test_transport_failures_retry(void **state)
{
    struct fixture *f = *state;

    run_phase(f, 1, 1, 0, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.status_code, 0);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TIMEOUT);
    assert_string_equal(f->r.attempt.error, "timeout after 15000 ms without an answer");
    run_phase(f, 1, 0, 0, CURLE_COULDNT_CONNECT);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_CONNECT);
    assert_string_equal(f->r.attempt.error, "cannot connect");
    run_phase(f, 0, 0, 0, CURLE_COULDNT_RESOLVE_HOST);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_DNS);
    assert_string_equal(f->r.attempt.error, "the host name does not resolve");
    strcpy(f->ctx->errbuf, "SSL certificate problem: self-signed certificate");
    run_phase(f, 1, 0, 0, CURLE_PEER_FAILED_VERIFICATION);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TLS);
    assert_string_equal(f->r.attempt.error,
                        "TLS handshake failed: SSL certificate problem: self-signed certificate");
    f->ctx->errbuf[0] = '\0';
    run_phase(f, 1, 1, 0, CURLE_GOT_NOTHING);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_RESET);
    assert_string_equal(f->r.attempt.error, "the receiver closed the connection without answering");
    /* An interim 1xx is no answer. */
    run(f, 0, 0, 100, CURLE_RECV_ERROR);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.status_code, 0);
    /* The last one disables, naming the error. */
    f->ctx->ready = 1;
    run(f, 2, 0, 0, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 1);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TIMEOUT);
    assert_non_null(strstr(f->r.disable_reason, "3 consecutive failed attempts; last: "));
    assert_non_null(strstr(f->r.disable_reason, "timeout"));
}

/* Garbled answers are protocol (or reset) failures to retry, in plain words. */
static void
test_garbled_answers_retry(void **state)
{
    struct fixture *f = *state;

    /* HTTP/0.9-style bytes or garbage, and a status line of an unknown version. */
    strcpy(f->ctx->errbuf, "Received HTTP/0.9 when not allowed");
    run_phase(f, 1, 1, 0, CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->outcome, 1);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_PROTOCOL);
    assert_string_equal(f->r.attempt.error, "the receiver's answer is not HTTP: bad status line");
    f->ctx->errbuf[0] = '\0';
    run_phase(f, 1, 1, 1, CURLE_WEIRD_SERVER_REPLY);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_PROTOCOL);
    assert_null(strstr(f->r.attempt.error, "URL"));
    /* A status line, then the connection closed before the header block ended. */
    f->ctx->opened = f->ctx->ready = f->ctx->answered = 1;
    f->ctx->c.dlv.attempts_made = 0;
    f->ctx->status_code = 200;
    f->ctx->headers_done = 0;
    attempt_ctx_finish(f->ctx, CURLE_OK, 2000000, 0, &f->r, &f->outcome);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.status_code, 0);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_RESET);
    assert_string_equal(f->r.attempt.error,
                        "the connection closed in the middle of the answer's headers");
    /* The same stalled until the attempt timeout. */
    attempt_ctx_finish(f->ctx, CURLE_OPERATION_TIMEDOUT, 2000000, 0, &f->r, &f->outcome);
    assert_int_equal(f->r.status, DELIVERY_PENDING);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TIMEOUT);
}

/* A timeout is named by how far the attempt got, never by connect time alone. */
static void
test_timeout_by_phase(void **state)
{
    struct fixture *f = *state;

    f->sh.cfg.connect_timeout_ms = 5000;
    run_phase(f, 0, 0, 0, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_DNS);
    assert_string_equal(f->r.attempt.error, "DNS timeout after 5000 ms");
    run_phase(f, 1, 0, 0, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_CONNECT);
    assert_string_equal(f->r.attempt.error, "connect timeout after 5000 ms");
    /* A reused connection: no socket opened, no connect time, yet ready for the request. */
    run_phase(f, 0, 1, 0, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TIMEOUT);
    assert_string_equal(f->r.attempt.error, "timeout after 15000 ms without an answer");
    run_phase(f, 0, 1, 1, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_TIMEOUT);
    assert_string_equal(f->r.attempt.error,
                        "timeout after 15000 ms in the middle of the answer's headers");
    assert_int_equal(f->r.status, DELIVERY_PENDING);
}

/* The curl result to class table, phase by phase. */
static void
test_error_classify(void **state)
{
    /* Results that name the class whatever the phase. */
    static const struct {
        int rc;
        enum attempt_error_class cls;
    } fixed[] = {
        {CURLE_COULDNT_RESOLVE_HOST, ATTEMPT_ERROR_DNS},
        {CURLE_COULDNT_CONNECT, ATTEMPT_ERROR_CONNECT},
        {CURLE_SSL_CONNECT_ERROR, ATTEMPT_ERROR_TLS},
        {CURLE_PEER_FAILED_VERIFICATION, ATTEMPT_ERROR_TLS},
        {CURLE_WEIRD_SERVER_REPLY, ATTEMPT_ERROR_PROTOCOL},
        {CURLE_HTTP2, ATTEMPT_ERROR_PROTOCOL},
        {CURLE_BAD_CONTENT_ENCODING, ATTEMPT_ERROR_PROTOCOL},
        {CURLE_GOT_NOTHING, ATTEMPT_ERROR_RESET},
        {CURLE_RECV_ERROR, ATTEMPT_ERROR_RESET},
        {CURLE_SEND_ERROR, ATTEMPT_ERROR_RESET},
        {CURLE_HTTP2_STREAM, ATTEMPT_ERROR_RESET},
        {CURLE_OK, ATTEMPT_ERROR_RESET},
        {CURLE_URL_MALFORMAT, ATTEMPT_ERROR_NONE},
    };
    /* Results whose class depends on how far the attempt got, by phase. */
    static const struct {
        int rc;
        enum attempt_error_class by_phase[5];
    } phased[] = {
        {CURLE_OPERATION_TIMEDOUT,
         {ATTEMPT_ERROR_DNS, ATTEMPT_ERROR_CONNECT, ATTEMPT_ERROR_TLS, ATTEMPT_ERROR_TIMEOUT,
          ATTEMPT_ERROR_TIMEOUT}},
        {CURLE_UNSUPPORTED_PROTOCOL,
         {ATTEMPT_ERROR_NONE, ATTEMPT_ERROR_NONE, ATTEMPT_ERROR_NONE, ATTEMPT_ERROR_PROTOCOL,
          ATTEMPT_ERROR_PROTOCOL}},
        {CURLE_OUT_OF_MEMORY,
         {ATTEMPT_ERROR_CONNECT, ATTEMPT_ERROR_CONNECT, ATTEMPT_ERROR_TLS, ATTEMPT_ERROR_RESET,
          ATTEMPT_ERROR_PROTOCOL}},
    };
    size_t i;
    int p;

    (void)state;
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        for (p = ATTEMPT_PHASE_RESOLVE; p <= ATTEMPT_PHASE_ANSWER; p++)
            assert_int_equal(attempt_error_classify(fixed[i].rc, (enum attempt_phase)p),
                             fixed[i].cls);
    }
    for (i = 0; i < sizeof(phased) / sizeof(phased[0]); i++) {
        for (p = ATTEMPT_PHASE_RESOLVE; p <= ATTEMPT_PHASE_ANSWER; p++)
            assert_int_equal(attempt_error_classify(phased[i].rc, (enum attempt_phase)p),
                             phased[i].by_phase[p]);
    }
    /* The names stored and served. */
    assert_string_equal(attempt_error_class_name(ATTEMPT_ERROR_PROTOCOL), "protocol");
    assert_string_equal(attempt_error_class_name(ATTEMPT_ERROR_BLOCKED), "blocked");
    assert_null(attempt_error_class_name(ATTEMPT_ERROR_NONE));
}

static void
test_bad_url_fails_at_once(void **state)
{
    struct fixture *f = *state;

    /* A URL curl refuses before any request went out: no retry can help. */
    run_phase(f, 0, 0, 0, CURLE_URL_MALFORMAT);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 0);
    assert_int_equal(f->outcome, 2);
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_NONE);
    assert_string_equal(f->r.attempt.error, "the endpoint URL cannot be used");
}

static void
test_blocked(void **state)
{
    struct fixture *f = *state;

    f->ctx->blocked = 1;
    strcpy(f->ctx->blocked_addr, "10.1.2.3");
    f->ctx->blocked_why = "private network";
    run(f, 0, 0, 0, CURLE_COULDNT_CONNECT);
    assert_int_equal(f->r.status, DELIVERY_FAILED);
    assert_int_equal(f->r.disable_endpoint, 0);
    assert_int_equal(f->outcome, 3);
    assert_string_equal(f->r.attempt.error, "address 10.1.2.3 is blocked (private network); "
                                            "allow it with --allow-networks");
    assert_int_equal(f->r.attempt.error_class, ATTEMPT_ERROR_BLOCKED);
}

/* The value of header name in the request's head, or NULL (a static copy). */
static const char *
header(const struct attempt_ctx *ctx, const char *name)
{
    static char value[512];
    const char *head = buf_cstr(&ctx->req);
    const char *end = strstr(head, "\r\n\r\n");
    const char *p = strstr(head, "\r\n");
    const char *eol;
    size_t n = strlen(name);

    assert_non_null(end);
    while (p != NULL && p < end) {
        p += 2;
        eol = strstr(p, "\r\n");
        if (strncmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ') {
            snprintf(value, sizeof(value), "%.*s", (int)(eol - p - n - 2), p + n + 2);
            return value;
        }
        p = eol;
    }
    return NULL;
}

static struct attempt_ctx *
new_ctx(const struct dispatch_shared *sh, const char *url, const char *prev, int *err)
{
    struct claim c;
    struct attempt_ctx *ctx = NULL;

    memset(&c, 0, sizeof(c));
    strcpy(c.dlv.id, "dlv_01");
    strcpy(c.dlv.event_id, "evt_01");
    strcpy(c.dlv.endpoint_id, "ep_01");
    strcpy(c.dlv.event_type, "user.message");
    c.dlv.attempts_made = 2;
    c.url = strdup(url);
    c.secret = strdup(SECRET);
    c.prev_secret = prev != NULL ? strdup(prev) : NULL;
    c.body = strdup(BODY);
    c.body_len = strlen(BODY);
    *err = attempt_ctx_new(&c, sh, 1700000000123LL, &ctx);
    assert_null(c.url);
    assert_null(c.body);
    assert_null(c.secret);
    return ctx;
}

static void
test_headers(void **state)
{
    struct dispatch_shared sh;
    struct attempt_ctx *ctx;
    char hex[SIGN_HEX_LEN + 1];
    char std[SIGN_STANDARD_MAX];
    char old[SIGN_STANDARD_MAX];
    char both[2 * SIGN_STANDARD_MAX];
    int err;

    (void)state;
    memset(&sh, 0, sizeof(sh));
    dispatch_config_default(&sh.cfg);
    ctx = new_ctx(&sh, "https://example.com/hook", NULL, &err);
    assert_int_equal(err, 0);
    assert_int_equal(sign_hmac_hex(SECRET, BODY, strlen(BODY), hex), 0);
    assert_int_equal(sign_standard(SECRET, "evt_01", 1700000000, BODY, strlen(BODY), std), 0);
    assert_string_equal(header(ctx, "Content-Type"), "application/json");
    assert_string_equal(header(ctx, "User-Agent"), "fluxhook/" FLUXHOOK_VERSION);
    assert_null(header(ctx, "Expect"));
    assert_string_equal(header(ctx, "X-Workflux-Signature"), hex);
    assert_string_equal(header(ctx, "X-Workflux-Event"), "user.message");
    assert_string_equal(header(ctx, "X-Workflux-Event-Id"), "evt_01");
    assert_string_equal(header(ctx, "X-Workflux-Delivery"), "dlv_01");
    assert_string_equal(header(ctx, "X-Workflux-Attempt"), "3");
    assert_string_equal(header(ctx, "webhook-id"), "evt_01");
    assert_string_equal(header(ctx, "webhook-timestamp"), "1700000000");
    assert_string_equal(header(ctx, "webhook-signature"), std);
    /* The log keeps the headers as sent, signatures included, without "Expect:". */
    assert_non_null(strstr(buf_cstr(&ctx->req_headers), "X-Workflux-Signature: "));
    assert_non_null(strstr(buf_cstr(&ctx->req_headers), hex));
    assert_non_null(strstr(buf_cstr(&ctx->req_headers), std));
    assert_null(strstr(buf_cstr(&ctx->req_headers), "Expect"));
    attempt_ctx_free(ctx);

    /* During a rotation both secrets sign webhook-signature. */
    ctx = new_ctx(&sh, "https://example.com/hook", OLD_SECRET, &err);
    assert_int_equal(err, 0);
    assert_int_equal(sign_standard(OLD_SECRET, "evt_01", 1700000000, BODY, strlen(BODY), old), 0);
    snprintf(both, sizeof(both), "%s %s", std, old);
    assert_string_equal(header(ctx, "webhook-signature"), both);
    assert_string_equal(header(ctx, "X-Workflux-Signature"), hex);
    attempt_ctx_free(ctx);
}

static void
test_http_refused_without_allow_http(void **state)
{
    struct dispatch_shared sh;
    struct attempt_result r;
    struct attempt_ctx *ctx;
    int outcome;
    int err;

    (void)state;
    memset(&sh, 0, sizeof(sh));
    dispatch_config_default(&sh.cfg);
    ctx = new_ctx(&sh, "http://example.com/hook", NULL, &err);
    assert_int_equal(err, ERR_BLOCKED);
    attempt_ctx_finish(ctx, -1, 5, 5, &r, &outcome);
    assert_int_equal(r.status, DELIVERY_FAILED);
    assert_int_equal(r.disable_endpoint, 0);
    assert_int_equal(outcome, 3);
    assert_int_equal(r.attempt.error_class, ATTEMPT_ERROR_BLOCKED);
    assert_non_null(strstr(r.attempt.error, "--allow-http"));
    attempt_ctx_free(ctx);

    sh.cfg.allow_http = 1;
    ctx = new_ctx(&sh, "http://example.com/hook", NULL, &err);
    assert_int_equal(err, 0);
    attempt_ctx_free(ctx);

    ctx = new_ctx(&sh, "ftp://example.com/hook", NULL, &err);
    assert_int_equal(err, ERR_INVAL);
    attempt_ctx_free(ctx);
}

/* A claim of delivery dlv_02 to url, as the store hands it over (its strings owned). */
static void
other_claim(struct claim *c, const char *url)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->dlv.id, "dlv_02");
    strcpy(c->dlv.event_id, "evt_02");
    strcpy(c->dlv.endpoint_id, "ep_02");
    strcpy(c->dlv.event_type, "user.created");
    c->url = strdup(url);
    c->secret = strdup(OLD_SECRET);
    c->body = strdup("{\"n\":2}");
    c->body_len = strlen(c->body);
}

/*
 * A context recycled after an answer and renewed for another delivery
 * carries the request a new context makes for it, byte for byte, and
 * nothing of the earlier answer.
 */
static void
test_recycled(void **state)
{
    struct dispatch_shared sh;
    struct attempt_result r;
    struct attempt_ctx *ctx;
    struct attempt_ctx *fresh = NULL;
    struct claim c;
    int outcome;
    int err;

    (void)state;
    memset(&sh, 0, sizeof(sh));
    dispatch_config_default(&sh.cfg);
    ctx = new_ctx(&sh, "https://example.com/a/longer/path/than/the/next", OLD_SECRET, &err);
    assert_int_equal(err, 0);
    attempt_header_line(ctx, "HTTP/1.1 503 Busy\r\n", 19);
    attempt_header_line(ctx, "Retry-After: 30\r\n", 17);
    attempt_header_line(ctx, "X-Kept: yes\r\n", 13);
    attempt_header_line(ctx, "\r\n", 2);
    assert_int_equal(attempt_body_bytes(ctx, "busy", 4), 0);
    attempt_ctx_finish(ctx, 0, 1700000001000LL, 5, &r, &outcome);
    assert_int_equal(r.status, DELIVERY_PENDING);
    attempt_ctx_recycle(ctx);

    other_claim(&c, "https://other.example/x");
    assert_int_equal(attempt_ctx_renew(ctx, &c, &sh, 1700000002000LL), 0);
    assert_null(c.url);
    assert_null(c.body);
    other_claim(&c, "https://other.example/x");
    assert_int_equal(attempt_ctx_new(&c, &sh, 1700000002000LL, &fresh), 0);
    assert_int_equal(ctx->req.len, fresh->req.len);
    assert_memory_equal(ctx->req.data, fresh->req.data, fresh->req.len);
    assert_string_equal(buf_cstr(&ctx->req_headers), buf_cstr(&fresh->req_headers));
    assert_string_equal(header(ctx, "X-Workflux-Delivery"), "dlv_02");
    assert_string_equal(header(ctx, "X-Workflux-Attempt"), "1");
    assert_null(strchr(header(ctx, "webhook-signature"), ' ')); /* one secret now */
    assert_int_equal(ctx->status_code, 0);
    assert_int_equal(ctx->headers_done, 0);
    assert_int_equal(ctx->answered, 0);
    assert_int_equal(ctx->sent, 0);
    assert_int_equal(ctx->body_seen, 0);
    assert_string_equal(ctx->retry_after, "");
    assert_null(ctx->error);

    /* Its answer is its own: no header or body of the one before. */
    attempt_header_line(ctx, "HTTP/1.1 200 OK\r\n", 17);
    attempt_header_line(ctx, "\r\n", 2);
    attempt_ctx_finish(ctx, 0, 1700000002100LL, 6, &r, &outcome);
    assert_int_equal(r.status, DELIVERY_DELIVERED);
    assert_int_equal(outcome, 0);
    assert_null(r.attempt.response_headers);
    assert_null(r.attempt.response_body);
    assert_null(r.attempt.error);
    attempt_ctx_free(ctx);
    attempt_ctx_free(fresh);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_despite_broken_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_round_counts_from_round_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_lines_garbled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_lines_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_failures_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbled_answers_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_by_phase, setup, teardown),
        cmocka_unit_test(test_error_classify),
        cmocka_unit_test_setup_teardown(test_bad_url_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked, setup, teardown),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_http_refused_without_allow_http),
        cmocka_unit_test(test_recycled),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
