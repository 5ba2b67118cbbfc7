/*
 * Wake-ups gathered over a batch (wakeup.h): a small per-thread list.
 */
#include <stddef.h>

#include "util/wakeup.h"

#define WAKEUP_MAX 32 /* distinct wake-ups held at once; past that they are made at once */

struct wakeup {
    wakeup_fn *fn;
    void *arg;
};

static _Thread_local int held;     /* nesting of wakeup_hold() */
static _Thread_local size_t nposted;
static _Thread_local struct wakeup posted[WAKEUP_MAX];

void
wakeup_hold(void)
{
    held++;
}

void
wakeup_release(void)
{
    size_t i;

    if (held == 0 || --held > 0)
        return;
    /* held is 0 now: a wake-up that posts another makes it at once. */
    for (i = 0; i < nposted; i++)
        posted[i].fn(posted[i].arg);
    nposted = 0;
}

void
wakeup_post(wakeup_fn *fn, void *arg)
{
    size_t i;

    if (held == 0) {
        fn(arg);
        return;
    }
    for (i = 0; i < nposted; i++) {
        if (posted[i].fn == fn && posted[i].arg == arg)
            return;
    }
    if (nposted == WAKEUP_MAX) {
        fn(arg);
        return;
    }
    posted[nposted].fn = fn;
    posted[nposted].arg = arg;
    nposted++;
}
