/*
 * libFuzzer target for what a receiver sends back: the lines of an answer's
 * head (status lines, headers, the blank lines that end header blocks, 1xx
 * blocks before the final one) go through attempt_header_line() one by one,
 * as h1.c's parser hands them over, and the attempt is then decided
 * by attempt_ctx_finish() with the Retry-After of a 429 or 503 in context.
 *
 * Input: byte 0 picks the attempts already made (bits 0-2) and curl's result
 * (bit 3: CURLE_OK or a transfer cut short); the rest is the head, split
 * after each '\n'. Besides crashes it checks that the status is three digits
 * or 0, that only a final header block makes an HTTP answer, that 2xx is
 * delivered, and that a retry is scheduled no earlier than the schedule and
 * an honoured Retry-After ask, and never past the longest delay allowed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"

#define NOW_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct dispatch_shared *sh, const struct attempt_ctx *ctx,
      const struct attempt_result *r)
{
    int64_t want, ra = -1;
    int k;

    if (ctx->status_code < 0 || ctx->status_code > 999)
        abort();
    if (memchr(ctx->retry_after, '\0', sizeof(ctx->retry_after)) == NULL)
        abort();
    if (ctx->resp_headers.len > DISPATCH_HEADERS_KEEP_MAX)
        abort();
    if (!ctx->headers_done) {
        if (r->attempt.status_code != 0 || r->status == DELIVERY_DELIVERED)
            abort(); /* a head that never ended is no answer */
        return;
    }
    if (r->attempt.status_code != ctx->status_code || r->attempt.status_code < 200)
        abort();
    if ((r->attempt.status_code / 100 == 2) != (r->status == DELIVERY_DELIVERED))
        abort();
    if (r->status != DELIVERY_PENDING)
        return;
    k = ctx->c.dlv.attempts_made + 1 - ctx->c.dlv.round_start;
    want = sh->cfg.schedule[k];
    if ((ctx->status_code == 429 || ctx->status_code == 503) && ctx->retry_after[0] != '\0' &&
        backoff_retry_after_parse(ctx->retry_after, NOW_MS, &ra) == 0) {
        if (ra < 0)
            abort();
        if (ra > DISPATCH_RETRY_AFTER_MAX_MS)
            ra = DISPATCH_RETRY_AFTER_MAX_MS;
        if (ra > want)
            want = ra;
    }
    if (r->next_attempt_at - NOW_MS != want)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dispatch_shared sh;
    struct attempt_result r;
    struct attempt_ctx *ctx;
    const char *p, *end, *nl;
    int outcome = -1;

    if (size < 1 || size > 16384)
        return 0;
    if (sh.cfg.nschedule == 0)
        dispatch_config_default(&sh.cfg);
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return 0;
    ctx->sh = &sh;
    strcpy(ctx->c.dlv.id, "dlv_fuzz");
    strcpy(ctx->c.dlv.endpoint_id, "ep_fuzz");
    ctx->c.dlv.attempts_made = data[0] & 7;
    if (ctx->c.dlv.attempts_made >= sh.cfg.nschedule)
        ctx->c.dlv.attempts_made = sh.cfg.nschedule - 1;
    ctx->started_ms = NOW_MS - 100;
    ctx->opened = ctx->ready = 1;
    buf_init(&ctx->body, DISPATCH_BODY_KEEP_MAX);
    buf_init(&ctx->resp_headers, DISPATCH_HEADERS_KEEP_MAX);

    /* Each line with its '\n', as the parser passes them; the last may lack one. */
    p = (const char *)data + 1;
    end = (const char *)data + size;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        nl = nl != NULL ? nl + 1 : end;
        attempt_header_line(ctx, p, (size_t)(nl - p));
        p = nl;
    }
    attempt_ctx_finish(ctx, (data[0] & 8) ? CURLE_PARTIAL_FILE : CURLE_OK, NOW_MS, 100, &r,
                       &outcome);
    if (outcome < 0 || outcome > 3)
        abort();
    check(&sh, ctx, &r);
    attempt_ctx_free(ctx);
    return 0;
}
