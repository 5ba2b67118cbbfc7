/*
 * The HTTP/1.1 wire format of a delivery (RFC 9112): the parts of an endpoint
 * URL a request needs, the request's head, and a parser for the receiver's
 * answer fed with whatever bytes came (status line, header lines, 1xx blocks
 * skipped, a body framed by Content-Length, chunked or the connection's
 * close). Pure: no sockets, no allocation but the parser's partial line.
 */
#ifndef FLUXHOOK_DISPATCH_H1_H
#define FLUXHOOK_DISPATCH_H1_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define H1_LINE_MAX 16384 /* longest line of an answer's head or chunk framing */

/* An endpoint URL in the parts a request needs; every pointer is into the URL. */
struct h1_url {
    int https;           /* 1: https://, 0: http:// */
    const char *origin;  /* "scheme://authority": connections are shared by equal origins */
    size_t origin_len;
    const char *host;    /* the Host header: the authority without user info or default port */
    size_t host_len;
    const char *target;  /* path and query, without the fragment ("" stands for "/") */
    size_t target_len;
};

/*
 * Splits an http:// or https:// URL (scheme in any case) into out. Returns 0,
 * or ERR_PARSE for another scheme or an empty authority.
 */
int h1_url_split(const char *url, struct h1_url *out);

/* Appends the request line "POST <target> HTTP/1.1", then the Host and Accept lines, to b. */
int h1_request_head(struct buf *b, const struct h1_url *u);

/*
 * Ends the head in b with "Content-Length: <len>" and the blank line, then
 * appends the len bytes of body. Returns 0 or buf_append's error.
 */
int h1_request_end(struct buf *b, const char *body, size_t len);

/* Where the parser hands what it found. */
struct h1_sink {
    /*
     * One line of an answer's head as it came (len bytes of p, with its line
     * end): status lines, header lines, the blank lines ending each block,
     * and after the final block the trailers of a chunked body.
     */
    void (*line)(void *arg, const char *p, size_t len);
    /* Body bytes, framing removed. Returns 0, or -1 to stop reading. */
    int (*body)(void *arg, const char *p, size_t len);
    void *arg;
};

enum h1_state {
    H1_HEAD,        /* in a head (a 1xx one, or the final one) */
    H1_BODY_LEN,    /* in a body of Content-Length bytes */
    H1_BODY_CLOSE,  /* in a body that ends when the connection closes */
    H1_CHUNK_SIZE,  /* at a chunk's size line */
    H1_CHUNK_DATA,  /* in a chunk's data */
    H1_CHUNK_CRLF,  /* at the line end after a chunk's data */
    H1_TRAILER,     /* in the trailer lines after the last chunk */
    H1_DONE,        /* the answer is complete */
};

/* What h1_parse() says. */
enum h1_result {
    H1_MORE = 0,        /* the answer goes on: feed more */
    H1_COMPLETE = 1,    /* the answer is complete */
    H1_BAD_STATUS = -1, /* the first line is not an HTTP/1.x status line */
    H1_BAD_HEAD = -2,   /* a header line, a length or the framing is malformed */
    H1_TOO_LONG = -3,   /* a line longer than H1_LINE_MAX */
    H1_STOPPED = -4,    /* the body sink asked to stop */
};

/* The parser of one answer. */
struct h1_parser {
    enum h1_state state;
    struct buf part; /* a line begun in an earlier feed, at most H1_LINE_MAX */
    int in_head;     /* lines of the current head so far */
    int status;      /* of the current head's status line */
    int minor;       /* HTTP/1.<minor> of it */
    int chunked;     /* the final head asked for chunked framing */
    int has_len;     /* the final head has a Content-Length */
    int close;       /* the connection cannot carry another request */
    int64_t left;    /* bytes left of the body or of the chunk */
};

/* Prepares p for an answer. */
void h1_parser_init(struct h1_parser *p);

/* Frees what p holds; it may be used again after h1_parser_init(). */
void h1_parser_cleanup(struct h1_parser *p);

/*
 * Feeds len bytes of data. Returns H1_MORE, H1_COMPLETE (bytes after the
 * answer are ignored and make the connection unfit for reuse) or an error;
 * after H1_COMPLETE or an error p takes no more.
 */
enum h1_result h1_parse(struct h1_parser *p, const char *data, size_t len,
                        const struct h1_sink *sink);

/*
 * The connection closed after what was fed: H1_COMPLETE when that ends a
 * body framed by the close, else H1_MORE (the answer is cut short).
 */
enum h1_result h1_parse_eof(struct h1_parser *p);

/* 1 when the connection may carry another request after a complete answer. */
int h1_reusable(const struct h1_parser *p);

#endif
