/*
 * The HTTP/1.1 wire format of a delivery (src/dispatch/h1.c): URL parts, the
 * request's bytes, and the answer's parser fed whole, byte by byte and in
 * every two-piece split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/h1.h"
#include "util/buf.h"
#include "util/err.h"

/* What the sink saw. */
struct seen {
    char lines[4096];
    char body[4096];
    size_t nbody;
    size_t stop_after; /* ask to stop once more than this came (0: never) */
};

static void
on_line(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;
    size_t n = strlen(s->lines);

    assert_true(n + len + 1 < sizeof(s->lines));
    memcpy(s->lines + n, p, len);
    s->lines[n + len] = '\0';
}

static int
on_body(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;

    assert_true(s->nbody + len < sizeof(s->body));
    memcpy(s->body + s->nbody, p, len);
    s->nbody += len;
    s->body[s->nbody] = '\0';
    return s->stop_after > 0 && s->nbody > s->stop_after ? -1 : 0;
}

/*
 * Feeds answer to a fresh parser in pieces of at most step bytes (0: whole),
 * then the connection's close when eof. Returns the last result; *reuse gets
 * h1_reusable().
 */
static enum h1_result
feed(const char *answer, size_t step, int eof, struct seen *s, int *reuse)
{
    const struct h1_sink sink = {on_line, on_body, s};
    struct h1_parser p;
    enum h1_result r = H1_MORE;
    size_t len = strlen(answer);
    size_t i = 0;
    size_t n;

    memset(s->lines, 0, sizeof(s->lines));
    s->nbody = 0;
    s->body[0] = '\0';
    h1_parser_init(&p);
    while (i < len && r == H1_MORE) {
        n = step == 0 || len - i < step ? len - i : step;
        r = h1_parse(&p, answer + i, n, &sink);
        i += n;
    }
    if (r == H1_MORE && eof)
        r = h1_parse_eof(&p);
    *reuse = h1_reusable(&p);
    h1_parser_cleanup(&p);
    return r;
}

/* Feeds answer whole, byte by byte and in every two-piece split: the same each time. */
static void
check(const char *answer, int eof, enum h1_result want, const char *lines, const char *body,
      int want_reuse)
{
    struct seen s;
    size_t step;
    int reuse;

    memset(&s, 0, sizeof(s));
    for (step = 0; step <= strlen(answer); step++) {
        assert_int_equal(feed(answer, step, eof, &s, &reuse), want);
        if (lines != NULL)
            assert_string_equal(s.lines, lines);
        if (body != NULL)
            assert_string_equal(s.body, body);
        assert_int_equal(reuse, want_reuse);
    }
}

static void
test_url_split(void **state)
{
    struct h1_url u;
    struct buf b;

    (void)state;
    assert_int_equal(h1_url_split("http://127.0.0.1:8080/hook?x=1", &u), 0);
    assert_int_equal(u.https, 0);
    assert_int_equal(u.origin_len, strlen("http://127.0.0.1:8080"));
    assert_memory_equal(u.host, "127.0.0.1:8080", u.host_len);
    assert_int_equal(u.host_len, 14);
    assert_string_equal(u.target, "/hook?x=1");

    assert_int_equal(h1_url_split("HTTPS://Example.com:443", &u), 0);
    assert_int_equal(u.https, 1);
    assert_int_equal(u.host_len, strlen("Example.com"));
    assert_int_equal(u.target_len, 0);
    assert_int_equal(h1_url_split("https://[::1]:8443?q", &u), 0);
    assert_int_equal(u.host_len, strlen("[::1]:8443"));
    assert_int_equal(h1_url_split("http://h:80/", &u), 0);
    assert_int_equal(u.host_len, 1);

    assert_int_equal(h1_url_split("ftp://h/", &u), ERR_PARSE);
    assert_int_equal(h1_url_split("https:///x", &u), ERR_PARSE);

    /* The request's bytes: a target without a path gets "/". */
    buf_init(&b, 4096);
    assert_int_equal(h1_url_split("https://example.com?q=1", &u), 0);
    assert_int_equal(h1_request_head(&b, &u), 0);
    assert_int_equal(buf_puts(&b, "X-A: 1\r\n"), 0);
    assert_int_equal(h1_request_end(&b, "{}", 2), 0);
    assert_string_equal(buf_cstr(&b), "POST /?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                                      "X-A: 1\r\nContent-Length: 2\r\n\r\n{}");
    buf_cleanup(&b);
}

static void
test_content_length(void **state)
{
    (void)state;
    check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello", 0, H1_COMPLETE,
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\n", "hello", 1);
    /* No body at all, and bare LF line ends. */
    check("HTTP/1.1 204 No Content\n\n", 0, H1_COMPLETE, NULL, "", 1);
    check("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, H1_COMPLETE, NULL, "", 1);
    /* Cut short: the connection closed inside the body. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", 1, H1_MORE, NULL, "hello", 0);
    /* Two lengths that disagree. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, H1_BAD_HEAD,
          NULL, NULL, 0);
    check("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, H1_BAD_HEAD, NULL, NULL, 0);
}

static void
test_chunked(void **state)
{
    (void)state;
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n",
          0, H1_COMPLETE,
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nX-Trailer: t\r\n", "hello!", 1);
    check("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
          "2\r\nok\r\n0\r\n\r\n",
          0, H1_COMPLETE, NULL, "ok", 0);
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, H1_BAD_HEAD, NULL,
          NULL, 0);
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 0, H1_BAD_HEAD,
          NULL, NULL, 0);
}

static void
test_close_delimited_and_keep_alive(void **state)
{
    struct seen s;
    int reuse;

    (void)state;
    /* No length: the body ends with the connection, which is then gone. */
    check("HTTP/1.1 200 OK\r\n\r\nall of it", 1, H1_COMPLETE, NULL, "all of it", 0);
    check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, Close\r\n\r\nok", 0,
          H1_COMPLETE, NULL, "ok", 0);
    check("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, H1_COMPLETE, NULL, "ok", 0);
    /* Bytes past the answer, in the same read, put the connection out of step. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 0, 0, &s, &reuse),
                     H1_COMPLETE);
    assert_string_equal(s.body, "ok");
    assert_int_equal(reuse, 0);
}

static void
test_interim_answers_skipped(void **state)
{
    (void)state;
    check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: 1\r\n\r\n"
          "HTTP/1.1 503 Busy\r\nRetry-After: 3\r\nContent-Length: 1\r\n\r\nx",
          0, H1_COMPLETE,
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: 1\r\n\r\n"
          "HTTP/1.1 503 Busy\r\nRetry-After: 3\r\nContent-Length: 1\r\n\r\n",
          "x", 1);
}

static void
test_malformed(void **state)
{
    struct seen s;
    char *big;
    int reuse;

    (void)state;
    check("thanks, got it\n", 0, H1_BAD_STATUS, "", NULL, 0);
    check("HTTP/1.1 abc OK\r\n\r\n", 0, H1_BAD_STATUS, "", NULL, 0);
    check("HTTP/2 200\r\n\r\n", 0, H1_BAD_STATUS, "", NULL, 0);
    check("HTTP/1.1 200OK\r\n\r\n", 0, H1_BAD_STATUS, "", NULL, 0);
    check("HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n", 0, H1_BAD_HEAD, NULL, NULL, 0);
    check("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0, H1_BAD_HEAD, NULL, NULL, 0);
    check("HTTP/1.1 200 OK\r\nContent-Le", 1, H1_MORE, "HTTP/1.1 200 OK\r\n", NULL, 0);

    /* A line longer than H1_LINE_MAX, whole or in pieces. */
    big = malloc(H1_LINE_MAX + 64);
    assert_non_null(big);
    memset(big, 'a', H1_LINE_MAX + 63);
    big[H1_LINE_MAX + 63] = '\0';
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(big, 0, 0, &s, &reuse), H1_TOO_LONG);
    assert_int_equal(feed(big, 1000, 0, &s, &reuse), H1_TOO_LONG);
    free(big);

    /* The body sink stops the read. */
    memset(&s, 0, sizeof(s));
    s.stop_after = 3;
    assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 0, 0, &s,
                          &reuse),
                     H1_STOPPED);
    assert_int_equal(reuse, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_split),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_close_delimited_and_keep_alive),
        cmocka_unit_test(test_interim_answers_skipped),
        cmocka_unit_test(test_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
