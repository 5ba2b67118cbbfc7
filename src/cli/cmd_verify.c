/*
 * fluxhook verify: checks a delivery's body against its signatures the way a
 * receiver must (CONTRACT §5), with libfluxhook-verify's own functions. The
 * headers and body come from the flags and FILE, or from a request captured
 * by `fluxhook listen --print json` (--request).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli/cli.h"
#include "fluxhook/verify.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/err.h"

#define VERIFY_MAX_BODY (64 * 1024 * 1024) /* far above any delivery */

static int verify_run(int argc, char **argv);

static const struct config_opt verify_opts[] = {
    {.name = "secret",
     .metavar = "S",
     .env = 1,
     .help = "the endpoint's secret, \"whsec_...\" (or FLUXHOOK_SECRET)"},
    {.name = "signature", .metavar = "HEX", .help = "the X-Workflux-Signature header"},
    {.name = "webhook-id", .metavar = "ID", .help = "the webhook-id header"},
    {.name = "webhook-timestamp", .metavar = "TS", .help = "the webhook-timestamp header"},
    {.name = "webhook-signature", .metavar = "SIGS", .help = "the webhook-signature header"},
    {.name = "request",
     .metavar = "FILE",
     .help = "a request captured by 'fluxhook listen --print json' or '--print headers,body' "
             "(the last one in FILE; - for standard input): its body and signature headers, "
             "unless given as flags"},
    {.name = "tolerance",
     .metavar = "D",
     .def = "5m",
     .help = "how far webhook-timestamp may be from now, either way"},
    {0},
};

const struct cli_cmd cmd_verify = {
    .name = "verify",
    .usage = "--secret S {--request FILE | --signature HEX | --webhook-id ID "
             "--webhook-timestamp TS --webhook-signature SIGS} [--tolerance D] [FILE]",
    .summary = "check a delivery's body against its signatures (exit 0 valid, 1 not)",
    .opts = verify_opts,
    .run = verify_run,
};

/* X-Workflux-Signature. Returns 1 when valid, else 0 after saying why. */
static int
check_workflux(const char *secret, const struct buf *body, const char *hex)
{
    int rc;

    rc = fluxhook_verify_signature(secret, body->data, body->len, hex);
    switch (rc) {
    case FLUXHOOK_VERIFY_OK:
        printf("X-Workflux-Signature: valid\n");
        return 1;
    case FLUXHOOK_VERIFY_MISMATCH:
        fprintf(stderr, "X-Workflux-Signature: does not match the body\n");
        break;
    case FLUXHOOK_VERIFY_MALFORMED:
        fprintf(stderr, "X-Workflux-Signature: expected 64 hex digits\n");
        break;
    case FLUXHOOK_VERIFY_BAD_SECRET:
        fprintf(stderr, "X-Workflux-Signature: the secret is empty\n");
        break;
    default:
        fprintf(stderr, "X-Workflux-Signature: %s\n", fluxhook_verify_strerror(rc));
        break;
    }
    return 0;
}

/* Says which Standard Webhooks header is malformed, and what was expected. */
static void
standard_malformed(const char *id, const char *ts, const char *sigs)
{
    size_t i;

    if (id[0] == '\0' || strlen(id) > FLUXHOOK_VERIFY_MAX_ID) {
        fprintf(stderr, "webhook-id: expected 1 to %d characters\n", FLUXHOOK_VERIFY_MAX_ID);
        return;
    }
    for (i = 0; ts[i] >= '0' && ts[i] <= '9'; i++)
        ;
    if (i == 0 || ts[i] != '\0' || i > 18) {
        fprintf(stderr, "webhook-timestamp: expected Unix seconds, got '%.40s'\n", ts);
        return;
    }
    if (strlen(sigs) > FLUXHOOK_VERIFY_MAX_SIGNATURES) {
        fprintf(stderr, "webhook-signature: longer than %d characters\n",
                FLUXHOOK_VERIFY_MAX_SIGNATURES);
        return;
    }
    fprintf(stderr, "webhook-signature: expected space-separated 'v1,<base64 of 32 bytes>' "
                    "entries, found no v1 entry\n");
}

/* The Standard Webhooks headers. Returns 1 when valid, else 0 after saying why. */
static int
check_standard(const char *secret, const struct buf *body, const char *id, const char *ts,
               const char *sigs, int64_t tolerance_s)
{
    int64_t now_s = clock_now_ms() / 1000;
    long long off;
    int rc;

    rc = fluxhook_verify_standard(secret, id, ts, sigs, body->data, body->len, now_s, tolerance_s);
    switch (rc) {
    case FLUXHOOK_VERIFY_OK:
        printf("webhook-signature: valid\n");
        return 1;
    case FLUXHOOK_VERIFY_MISMATCH:
        fprintf(stderr, "webhook-signature: no v1 signature matches the id, timestamp "
                        "and body\n");
        break;
    case FLUXHOOK_VERIFY_MALFORMED:
        standard_malformed(id, ts, sigs);
        break;
    case FLUXHOOK_VERIFY_TOO_OLD:
        /* The library has checked ts is 1 to 18 digits. */
        off = (long long)now_s - strtoll(ts, NULL, 10);
        fprintf(stderr, "webhook-timestamp: %lld s old, more than the tolerance of %lld s\n", off,
                (long long)tolerance_s);
        break;
    case FLUXHOOK_VERIFY_TOO_NEW:
        off = strtoll(ts, NULL, 10) - (long long)now_s;
        fprintf(stderr,
                "webhook-timestamp: %lld s in the future, more than the tolerance of %lld s\n", off,
                (long long)tolerance_s);
        break;
    case FLUXHOOK_VERIFY_BAD_SECRET:
        fprintf(stderr, "webhook-signature: the secret is not 'whsec_' followed by base64\n");
        break;
    default:
        fprintf(stderr, "webhook-signature: %s\n", fluxhook_verify_strerror(rc));
        break;
    }
    return 0;
}

/* The value of header name (any case) in the JSON object headers, or NULL. */
static const char *
header_get(json_t *headers, const char *name)
{
    const char *key;
    json_t *v;

    json_object_foreach(headers, key, v)
    {
        if (strcasecmp(key, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

/*
 * The last block of `listen --print headers,body` in text (NUL-terminated;
 * changed in place): its "    Name: value" lines and its "  body" line,
 * whose length must be the block's "(N bytes)". Returns a new {"headers",
 * "body"} object, or NULL when text holds no such block.
 */
static json_t *
block_read(char *text)
{
    static const char body_tag[] = "  body                  ";
    json_t *hs = NULL, *o = NULL;
    const char *body = NULL;
    char *line, *next, *colon, *paren;
    long want = -1;

    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        paren = strrchr(line, '(');
        if (line[0] != ' ' && strstr(line, "  #") != NULL && paren != NULL &&
            strstr(paren, " bytes)") != NULL) {
            /* A block's first line: "TIME  #N POST /path (313 bytes)". */
            json_decref(hs);
            hs = json_object();
            body = NULL;
            want = strtol(paren + 1, NULL, 10);
        } else if (hs != NULL && strncmp(line, "    ", 4) == 0 && line[4] != ' ' &&
                   (colon = strstr(line + 4, ": ")) != NULL) {
            *colon = '\0';
            json_object_set_new(hs, line + 4, json_string(colon + 2));
        } else if (hs != NULL && strncmp(line, body_tag, sizeof(body_tag) - 1) == 0) {
            body = line + sizeof(body_tag) - 1;
        }
    }
    /* A body with a line break in it cannot be read back from a block: refuse. */
    if (hs != NULL && body != NULL && want == (long)strlen(body))
        o = json_pack("{s:O, s:s}", "headers", hs, "body", body);
    json_decref(hs);
    return o;
}

/*
 * Reads a capture of `listen --print json` (its last line that is a JSON
 * object) or, without one, of `listen --print headers,body` (block_read) from
 * path into *out (new reference). Returns 0, or CLI_USAGE after saying why.
 */
static int
request_read(const char *path, json_t **out)
{
    struct buf text;
    json_error_t je;
    char *last = NULL, *p;
    int err, rc = CLI_USAGE;

    *out = NULL;
    buf_init(&text, VERIFY_MAX_BODY);
    err = buf_file_read(&text, path);
    if (err != 0) {
        fprintf(stderr, "fluxhook verify: --request: cannot read '%s': %s\n", path,
                err == ERR_NOTFOUND || err == ERR_IO ? strerror(errno) : err_str(err));
        goto out;
    }
    if (buf_append(&text, "", 1) != 0) {
        fprintf(stderr, "fluxhook verify: --request: '%s' is too large\n", path);
        goto out;
    }
    for (p = text.data; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (*p == '{')
            last = p;
    }
    if (last != NULL && (p = strchr(last, '\n')) != NULL)
        *p = '\0';
    *out = last != NULL ? json_loads(last, 0, &je) : block_read(text.data);
    if (*out == NULL || !json_is_object(json_object_get(*out, "headers")) ||
        !json_is_string(json_object_get(*out, "body"))) {
        fprintf(stderr,
                "fluxhook verify: --request: '%s' holds no request captured by 'fluxhook listen "
                "--print json' (a line {\"headers\": {...}, \"body\": \"...\"}) or "
                "'--print headers,body' (a block with both)\n",
                path);
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    rc = 0;
out:
    buf_cleanup(&text);
    return rc;
}

/* Prints a usage error the way cli_parse() does. Returns CLI_USAGE. */
static int
usage_error(const char *what)
{
    fprintf(stderr, "fluxhook verify: %s\n", what);
    fprintf(stderr, "usage: fluxhook verify %s\n", cmd_verify.usage);
    return CLI_USAGE;
}

static int
verify_run(int argc, char **argv)
{
    struct config c;
    struct buf body;
    const char *secret, *hex, *id, *ts, *sigs, *tol, *path = "-", *req;
    json_t *captured = NULL, *hs;
    int err;
    int64_t tol_ms = 0;
    int rc, nstd, valid = 1;

    buf_init(&body, VERIFY_MAX_BODY);
    rc = cli_parse(&cmd_verify, &c, argc, argv);
    if (rc >= 0)
        goto out;
    secret = config_get(&c, "secret");
    hex = config_get(&c, "signature");
    id = config_get(&c, "webhook-id");
    ts = config_get(&c, "webhook-timestamp");
    sigs = config_get(&c, "webhook-signature");
    tol = config_get(&c, "tolerance");
    req = config_get(&c, "request");
    if (req != NULL) {
        if (c.nargs > 0) {
            rc = usage_error("--request takes the body from the capture: no FILE");
            goto out;
        }
        rc = request_read(req, &captured);
        if (rc != 0)
            goto out;
        hs = json_object_get(captured, "headers");
        if (hex == NULL)
            hex = header_get(hs, "X-Workflux-Signature");
        if (id == NULL && ts == NULL && sigs == NULL) {
            id = header_get(hs, "webhook-id");
            ts = header_get(hs, "webhook-timestamp");
            sigs = header_get(hs, "webhook-signature");
        }
        if (buf_append(&body, json_string_value(json_object_get(captured, "body")),
                       json_string_length(json_object_get(captured, "body"))) != 0) {
            rc = usage_error("--request: the body is too large");
            goto out;
        }
    }
    nstd = (id != NULL) + (ts != NULL) + (sigs != NULL);
    if (secret == NULL) {
        rc = usage_error("--secret is required (or FLUXHOOK_SECRET)");
        goto out;
    }
    if (nstd != 0 && nstd != 3) {
        rc = usage_error("--webhook-id, --webhook-timestamp and --webhook-signature go together");
        goto out;
    }
    if (hex == NULL && nstd == 0) {
        rc = usage_error("expected --signature, or the three --webhook-* headers, or both");
        goto out;
    }
    if (clock_parse_duration(tol, &tol_ms) != 0) {
        rc = usage_error("--tolerance: expected a duration such as 300s or 5m");
        goto out;
    }
    if (c.nargs > 1) {
        rc = usage_error("expected at most one FILE");
        goto out;
    }
    if (c.nargs == 1)
        path = c.args[0];
    err = captured != NULL ? 0 : buf_file_read(&body, path);
    if (err == ERR_NOTFOUND) {
        fprintf(stderr, "fluxhook verify: cannot open '%s': %s\n", path, strerror(errno));
        rc = CLI_USAGE;
        goto out;
    }
    if (err != 0) {
        fprintf(stderr, "fluxhook verify: cannot read '%s': %s\n", path,
                err == ERR_IO       ? strerror(errno)
                : err == ERR_TOOBIG ? "larger than 64 MiB"
                                    : err_str(err));
        rc = CLI_USAGE;
        goto out;
    }
    if (hex != NULL && !check_workflux(secret, &body, hex))
        valid = 0;
    if (nstd == 3 && !check_standard(secret, &body, id, ts, sigs, tol_ms / 1000))
        valid = 0;
    rc = valid ? CLI_OK : CLI_REFUSED;
out:
    json_decref(captured);
    buf_cleanup(&body);
    return rc;
}
