/*
 * The HTTP/1.1 wire format of a delivery: the request's head and the answer's
 * parser (RFC 9112). See h1.h.
 */
#include <string.h>
#include <strings.h>

#include "dispatch/h1.h"
#include "util/err.h"

int
h1_url_split(const char *url, struct h1_url *out)
{
    const char *a;
    const char *end;
    const char *at;
    size_t skip;

    memset(out, 0, sizeof(*out));
    if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        out->https = 1;
    } else {
        return ERR_PARSE;
    }
    a = url + skip;
    end = a + strcspn(a, "/?#");
    if (end == a)
        return ERR_PARSE;
    out->origin = url;
    out->origin_len = (size_t)(end - url);
    out->host = a;
    for (at = a; at < end; at++) {
        if (*at == '@')
            out->host = at + 1;
    }
    out->host_len = (size_t)(end - out->host);
    /* The port is left out of Host when it is the scheme's own, as clients do. */
    if (out->https && out->host_len > 4 && memcmp(end - 4, ":443", 4) == 0)
        out->host_len -= 4;
    else if (!out->https && out->host_len > 3 && memcmp(end - 3, ":80", 3) == 0)
        out->host_len -= 3;
    else if (out->host_len > 1 && end[-1] == ':')
        out->host_len--;
    out->target = end;
    out->target_len = strcspn(end, "#");
    return 0;
}

int
h1_request_head(struct buf *b, const struct h1_url *u)
{
    int err;

    err = buf_append(b, "POST ", 5);
    if (err == 0 && (u->target_len == 0 || u->target[0] != '/'))
        err = buf_putc(b, '/');
    if (err == 0)
        err = buf_append(b, u->target, u->target_len);
    if (err == 0)
        err = buf_puts(b, " HTTP/1.1\r\nHost: ");
    if (err == 0)
        err = buf_append(b, u->host, u->host_len);
    if (err == 0)
        err = buf_puts(b, "\r\nAccept: */*\r\n");
    return err;
}

int
h1_request_end(struct buf *b, const char *body, size_t len)
{
    int err;

    err = buf_puts(b, "Content-Length: ");
    if (err == 0)
        err = buf_put_u64(b, len);
    if (err == 0)
        err = buf_append(b, "\r\n\r\n", 4);
    if (err == 0)
        err = buf_append(b, body, len);
    return err;
}

void
h1_parser_init(struct h1_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = H1_HEAD;
    buf_init(&p->part, H1_LINE_MAX);
}

void
h1_parser_cleanup(struct h1_parser *p)
{
    buf_cleanup(&p->part);
}

static int
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* 1 when the n bytes at s hold the token tok (case aside) in a comma list. */
static int
list_has(const char *s, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    size_t j;
    size_t e;

    while (i < n) {
        while (i < n && (is_ows(s[i]) || s[i] == ','))
            i++;
        j = i;
        while (j < n && s[j] != ',')
            j++;
        e = j;
        while (e > i && is_ows(s[e - 1]))
            e--;
        if (e - i == tl && strncasecmp(s + i, tok, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

/* 1 when the last coding of the comma list at s is tok. */
static int
list_last_is(const char *s, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = n;

    while (i > 0 && (is_ows(s[i - 1]) || s[i - 1] == ','))
        i--;
    n = i;
    while (i > 0 && s[i - 1] != ',' && !is_ows(s[i - 1]))
        i--;
    return n - i == tl && strncasecmp(s + i, tok, tl) == 0;
}

/* "HTTP/1.<d> <ddd>" then a space or the end: sets status and minor. */
static int
status_line(struct h1_parser *p, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return H1_BAD_STATUS;
    if (s[9] < '0' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
        return H1_BAD_STATUS;
    if (n > 12 && s[12] != ' ')
        return H1_BAD_STATUS;
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return H1_MORE;
}

/* A header line of the head (s: n bytes, line end removed): checks it, notes framing. */
static int
header_line(struct h1_parser *p, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    const char *v;
    size_t name;
    size_t vn;
    size_t i;
    int64_t len = 0;

    if (is_ows(s[0]))
        return H1_MORE; /* an obsolete folded line: part of the header before */
    if (colon == NULL || colon == s)
        return H1_BAD_HEAD;
    name = (size_t)(colon - s);
    for (i = 0; i < name; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return H1_BAD_HEAD;
    }
    v = colon + 1;
    vn = n - name - 1;
    while (vn > 0 && is_ows(*v)) {
        v++;
        vn--;
    }
    while (vn > 0 && is_ows(v[vn - 1]))
        vn--;
    if (name == 14 && strncasecmp(s, "content-length", 14) == 0) {
        if (vn == 0 || vn > 18)
            return H1_BAD_HEAD;
        for (i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                return H1_BAD_HEAD;
            len = len * 10 + (v[i] - '0');
        }
        if (p->has_len && p->left != len)
            return H1_BAD_HEAD;
        p->has_len = 1;
        p->left = len;
    } else if (name == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
        /* A body whose last coding is not chunked ends with the connection. */
        p->chunked = list_last_is(v, vn, "chunked");
        if (!p->chunked)
            p->close = 1;
    } else if (name == 10 && strncasecmp(s, "connection", 10) == 0) {
        if (list_has(v, vn, "close"))
            p->close = 1;
    }
    return H1_MORE;
}

/* The blank line that ends a head: a 1xx one is followed by another head. */
static int
head_end(struct h1_parser *p)
{
    if (p->status < 200) {
        p->in_head = 0;
        p->chunked = p->has_len = 0;
        p->close = 0;
        p->left = 0;
        return H1_MORE;
    }
    if (p->minor == 0)
        p->close = 1; /* HTTP/1.0: no keep-alive asked for, none assumed */
    if (p->chunked && p->has_len)
        p->close = 1; /* both framings: chunked wins, and the connection is not trusted after */
    if (p->status == 204 || p->status == 304) {
        p->state = H1_DONE;
    } else if (p->chunked) {
        p->state = H1_CHUNK_SIZE;
    } else if (p->close && !p->has_len) {
        p->state = H1_BODY_CLOSE;
    } else if (p->has_len) {
        p->state = p->left > 0 ? H1_BODY_LEN : H1_DONE;
    } else {
        p->state = H1_BODY_CLOSE;
        p->close = 1;
    }
    return p->state == H1_DONE ? H1_COMPLETE : H1_MORE;
}

/* A chunk's size line: hex digits, then extensions that are ignored. */
static int
chunk_size(struct h1_parser *p, const char *s, size_t n)
{
    int64_t size = 0;
    size_t i;
    int d;

    for (i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
            d = (s[i] | 0x20) - 'a' + 10;
        else
            break;
        if (size > (INT64_MAX >> 4))
            return H1_BAD_HEAD;
        size = size * 16 + d;
    }
    if (i == 0 || (i < n && s[i] != ';' && !is_ows(s[i])))
        return H1_BAD_HEAD;
    p->left = size;
    p->state = size > 0 ? H1_CHUNK_DATA : H1_TRAILER;
    return H1_MORE;
}

/* One whole line (n bytes of s, with its line end) in the state it belongs to. */
static int
line(struct h1_parser *p, const char *s, size_t n, const struct h1_sink *sink)
{
    size_t m = n;
    int r;

    while (m > 0 && (s[m - 1] == '\n' || s[m - 1] == '\r'))
        m--;
    switch (p->state) {
    case H1_HEAD:
        if (p->in_head == 0) {
            r = status_line(p, s, m);
            if (r != H1_MORE)
                return r;
            p->in_head = 1;
            sink->line(sink->arg, s, n);
            return H1_MORE;
        }
        if (m == 0) {
            sink->line(sink->arg, s, n);
            return head_end(p);
        }
        r = header_line(p, s, m);
        if (r != H1_MORE)
            return r;
        p->in_head++;
        sink->line(sink->arg, s, n);
        return H1_MORE;
    case H1_CHUNK_SIZE:
        return chunk_size(p, s, m);
    case H1_CHUNK_CRLF:
        if (m != 0)
            return H1_BAD_HEAD;
        p->state = H1_CHUNK_SIZE;
        return H1_MORE;
    case H1_TRAILER:
        if (m == 0) {
            p->state = H1_DONE;
            return H1_COMPLETE;
        }
        sink->line(sink->arg, s, n);
        return H1_MORE;
    default:
        return H1_BAD_HEAD;
    }
}

enum h1_result
h1_parse(struct h1_parser *p, const char *data, size_t len, const struct h1_sink *sink)
{
    const char *nl;
    size_t i = 0;
    size_t n;
    int r = H1_MORE;

    while (i < len && r == H1_MORE) {
        switch (p->state) {
        case H1_BODY_LEN:
        case H1_CHUNK_DATA:
            n = len - i;
            if ((int64_t)n > p->left)
                n = (size_t)p->left;
            if (sink->body(sink->arg, data + i, n) != 0)
                return H1_STOPPED;
            i += n;
            p->left -= (int64_t)n;
            if (p->left == 0) {
                p->state = p->state == H1_BODY_LEN ? H1_DONE : H1_CHUNK_CRLF;
                if (p->state == H1_DONE)
                    r = H1_COMPLETE;
            }
            break;
        case H1_BODY_CLOSE:
            if (sink->body(sink->arg, data + i, len - i) != 0)
                return H1_STOPPED;
            i = len;
            break;
        case H1_DONE:
            r = H1_COMPLETE;
            break;
        default:
            nl = memchr(data + i, '\n', len - i);
            n = nl != NULL ? (size_t)(nl + 1 - (data + i)) : len - i;
            if (nl == NULL || p->part.len > 0) {
                /* A line split over feeds is gathered in part. */
                if (buf_append(&p->part, data + i, n) != 0)
                    return H1_TOO_LONG;
                i += n;
                if (nl == NULL)
                    break;
                r = line(p, p->part.data, p->part.len, sink);
                buf_reset(&p->part);
                break;
            }
            if (n > H1_LINE_MAX)
                return H1_TOO_LONG;
            r = line(p, data + i, n, sink);
            i += n;
            break;
        }
    }
    if (r == H1_COMPLETE && i < len)
        p->close = 1; /* more than the answer came: the connection is out of step */
    return (enum h1_result)r;
}

enum h1_result
h1_parse_eof(struct h1_parser *p)
{
    if (p->state == H1_BODY_CLOSE)
        p->state = H1_DONE;
    p->close = 1;
    return p->state == H1_DONE ? H1_COMPLETE : H1_MORE;
}

int
h1_reusable(const struct h1_parser *p)
{
    return p->state == H1_DONE && !p->close;
}
