/*
 * libFuzzer target for the answer parser of src/dispatch/h1.c: a receiver's
 * bytes fed whole and fed in pieces must give the same result, the same head
 * lines, the same body and the same verdict on reuse, and the body never
 * holds more bytes than came.
 *
 * Input: byte 0 sets the piece size (1 to 256) and bit 0 of byte 1 whether
 * the connection closes after the bytes; the rest is the answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/h1.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    struct buf lines;
    struct buf body;
};

static void
on_line(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;

    if (buf_append(&s->lines, p, len) != 0)
        abort(); /* a head line is never longer than H1_LINE_MAX, and they fit */
}

static int
on_body(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;

    return buf_append(&s->body, p, len) == 0 ? 0 : -1;
}

/* Parses in pieces of step bytes (0: whole); returns the result, fills s and *reuse. */
static enum h1_result
run(const char *a, size_t n, size_t step, int eof, struct seen *s, int *reuse)
{
    const struct h1_sink sink = {on_line, on_body, s};
    struct h1_parser p;
    enum h1_result r = H1_MORE;
    size_t i = 0;
    size_t k;

    buf_init(&s->lines, 1 << 20);
    buf_init(&s->body, 1 << 20);
    h1_parser_init(&p);
    while (i < n && r == H1_MORE) {
        k = step == 0 || n - i < step ? n - i : step;
        r = h1_parse(&p, a + i, k, &sink);
        i += k;
    }
    if (r == H1_MORE && eof)
        r = h1_parse_eof(&p);
    if (p.status < 0 || p.status > 999)
        abort();
    *reuse = h1_reusable(&p);
    h1_parser_cleanup(&p);
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole, parts;
    enum h1_result r1, r2;
    size_t step;
    int eof;
    int reuse1, reuse2;

    if (size < 2 || size > 65536)
        return 0;
    step = (size_t)data[0] + 1;
    eof = data[1] & 1;
    r1 = run((const char *)data + 2, size - 2, 0, eof, &whole, &reuse1);
    r2 = run((const char *)data + 2, size - 2, step, eof, &parts, &reuse2);
    if (whole.body.len > size)
        abort();
    /*
     * Bytes past a complete answer in the same feed make the connection
     * unfit for reuse: only then may the verdicts differ.
     */
    if (r1 != r2 || whole.lines.len != parts.lines.len || whole.body.len != parts.body.len ||
        memcmp(buf_cstr(&whole.lines), buf_cstr(&parts.lines), whole.lines.len) != 0 ||
        memcmp(buf_cstr(&whole.body), buf_cstr(&parts.body), whole.body.len) != 0 ||
        (reuse1 && !reuse2 && r1 != H1_COMPLETE))
        abort();
    buf_cleanup(&whole.lines);
    buf_cleanup(&whole.body);
    buf_cleanup(&parts.lines);
    buf_cleanup(&parts.body);
    return 0;
}
