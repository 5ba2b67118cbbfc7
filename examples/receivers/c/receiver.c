/*
 * A small webhook receiver that checks every delivery with libfluxhook-verify.
 *
 *   cc examples/receivers/c/receiver.c $(pkg-config --cflags --libs fluxhook-verify) -o receiver
 *   WEBHOOK_SECRET=whsec_... ./receiver 9000
 *
 * It listens on 127.0.0.1:PORT (PORT 0 picks a free one; the line
 * "listening on 127.0.0.1:N" says which), takes one request at a time, and
 * for each POST prints one line:
 *
 *   delivery event=evt_... attempt=1 verified
 *   delivery event=evt_... attempt=2 not verified: X-Workflux-Signature: signature does not match
 *
 * then answers 200 when every signature it was sent verifies, 401 when not.
 * Plain POSIX sockets; nothing else but the verify library.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fluxhook/verify.h>

#define MAX_HEAD 16384         /* request line and headers */
#define MAX_BODY (1024 * 1024) /* fluxhook's events are at most 256 KiB */

struct request {
    char head[MAX_HEAD + 1];
    char *body;
    size_t body_len;
    const char *method;
    /* Header values, pointing into head; NULL when absent. */
    const char *content_length;
    const char *workflux_signature;
    const char *event_id;
    const char *attempt;
    const char *webhook_id;
    const char *webhook_timestamp;
    const char *webhook_signature;
};

/* Sends all of s; errors are ignored, the connection is closed next anyway. */
static void
send_all(int fd, const char *s, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = send(fd, s, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void
reply(int fd, int status, const char *reason, const char *text)
{
    char buf[512];
    int n;

    n = snprintf(buf, sizeof(buf),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 status, reason, strlen(text), text);
    send_all(fd, buf, (size_t)n);
}

/*
 * Splits the header block in place: each "Name: value" line becomes two
 * strings, and the ones we need are kept in req.
 */
static void
parse_headers(struct request *req)
{
    char *line, *next, *colon, *value, *end;

    line = strstr(req->head, "\r\n");
    *line = '\0';
    req->method = req->head; /* "POST /path HTTP/1.1", cut at the space below */
    end = strchr(req->head, ' ');
    if (end != NULL)
        *end = '\0';
    for (line += 2; *line != '\0'; line = next) {
        next = strstr(line, "\r\n");
        if (next == NULL)
            break;
        *next = '\0';
        next += 2;
        colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
            ;
        for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t');)
            *--end = '\0';
        if (strcasecmp(line, "Content-Length") == 0)
            req->content_length = value;
        else if (strcasecmp(line, "X-Workflux-Signature") == 0)
            req->workflux_signature = value;
        else if (strcasecmp(line, "X-Workflux-Event-Id") == 0)
            req->event_id = value;
        else if (strcasecmp(line, "X-Workflux-Attempt") == 0)
            req->attempt = value;
        else if (strcasecmp(line, "webhook-id") == 0)
            req->webhook_id = value;
        else if (strcasecmp(line, "webhook-timestamp") == 0)
            req->webhook_timestamp = value;
        else if (strcasecmp(line, "webhook-signature") == 0)
            req->webhook_signature = value;
    }
}

/*
 * Reads one request: the headers up to the blank line, then Content-Length
 * bytes of body. Returns 0, or -1 after answering an error.
 */
static int
read_request(int fd, struct request *req)
{
    size_t have = 0, want;
    char *end = NULL, *p;
    ssize_t n;
    long len;

    while (end == NULL) {
        if (have == MAX_HEAD) {
            reply(fd, 431, "Request Header Fields Too Large", "headers too large\n");
            return -1;
        }
        n = recv(fd, req->head + have, MAX_HEAD - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        req->head[have] = '\0';
        end = strstr(req->head, "\r\n\r\n");
    }
    /* Bytes past the blank line already belong to the body. */
    end[2] = '\0';
    p = end + 4;
    parse_headers(req);
    len = req->content_length != NULL ? strtol(req->content_length, NULL, 10) : 0;
    if (len < 0 || len > MAX_BODY) {
        reply(fd, 413, "Payload Too Large", "body too large\n");
        return -1;
    }
    req->body_len = (size_t)len;
    req->body = malloc(req->body_len + 1);
    if (req->body == NULL) {
        reply(fd, 500, "Internal Server Error", "out of memory\n");
        return -1;
    }
    want = have - (size_t)(p - req->head);
    if (want > req->body_len)
        want = req->body_len;
    memcpy(req->body, p, want);
    while (want < req->body_len) {
        n = recv(fd, req->body + want, req->body_len - want, 0);
        if (n <= 0)
            return -1;
        want += (size_t)n;
    }
    return 0;
}

/*
 * Checks every scheme the request carries. Returns 1 when all verify (and
 * there was at least one), else 0 with why set to the first failure.
 */
static int
verify(const struct request *req, const char *secret, char *why, size_t whylen)
{
    int rc, checked = 0;

    if (req->workflux_signature != NULL) {
        rc = fluxhook_verify_signature(secret, req->body, req->body_len, req->workflux_signature);
        if (rc != FLUXHOOK_VERIFY_OK) {
            snprintf(why, whylen, "X-Workflux-Signature: %s", fluxhook_verify_strerror(rc));
            return 0;
        }
        checked = 1;
    }
    if (req->webhook_id != NULL || req->webhook_timestamp != NULL ||
        req->webhook_signature != NULL) {
        rc = fluxhook_verify_standard(secret, req->webhook_id, req->webhook_timestamp,
                                      req->webhook_signature, req->body, req->body_len,
                                      (int64_t)time(NULL), FLUXHOOK_VERIFY_DEFAULT_TOLERANCE);
        if (rc != FLUXHOOK_VERIFY_OK) {
            snprintf(why, whylen, "webhook-signature: %s", fluxhook_verify_strerror(rc));
            return 0;
        }
        checked = 1;
    }
    if (!checked)
        snprintf(why, whylen, "no signature headers");
    return checked;
}

static void
serve_one(int fd, const char *secret)
{
    struct request req;
    struct timeval tv = {10, 0}; /* a stalled sender cannot hold us for long */
    char why[160];

    memset(&req, 0, sizeof(req));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (read_request(fd, &req) != 0)
        goto out;
    if (strcmp(req.method, "POST") != 0) {
        reply(fd, 405, "Method Not Allowed", "POST only\n");
        goto out;
    }
    if (verify(&req, secret, why, sizeof(why))) {
        printf("delivery event=%s attempt=%s verified\n", req.event_id ? req.event_id : "-",
               req.attempt ? req.attempt : "-");
        reply(fd, 200, "OK", "ok\n");
    } else {
        printf("delivery event=%s attempt=%s not verified: %s\n", req.event_id ? req.event_id : "-",
               req.attempt ? req.attempt : "-", why);
        reply(fd, 401, "Unauthorized", "invalid signature\n");
    }
    fflush(stdout);
out:
    free(req.body);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    const char *secret = getenv("WEBHOOK_SECRET");
    int lfd, fd, one = 1;

    if (argc != 2 || secret == NULL || secret[0] == '\0') {
        fprintf(stderr, "usage: WEBHOOK_SECRET=whsec_... %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("receiver: cannot listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
        fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(fd, secret);
        close(fd);
    }
}
