/*
 * Wake-ups gathered over a batch. A thread that hands work to other threads
 * in a loop (the store's syncer answering a group of publishes, an HTTP
 * loop queueing the requests of one round of events) would wake the same
 * thread once per item, and a woken thread on a small machine preempts the
 * one that woke it: ping-pong. Between wakeup_hold() and wakeup_release()
 * wakeup_post() only notes the wake-up (once per distinct fn and arg), and
 * wakeup_release() makes each once, in the order first posted. Outside a
 * hold wakeup_post() wakes at once.
 *
 * A posted wake-up runs later on this thread: fn must not block, and arg
 * must outlive the hold (what the woken thread reads must already be under
 * its lock or published before the post, as for an immediate wake-up).
 */
#ifndef FLUXHOOK_UTIL_WAKEUP_H
#define FLUXHOOK_UTIL_WAKEUP_H

typedef void wakeup_fn(void *arg);

/* Starts holding this thread's wake-ups (holds nest). */
void wakeup_hold(void);

/* Ends a hold; the outermost one makes the wake-ups posted since. */
void wakeup_release(void);

/* fn(arg) now, or at the end of this thread's hold (once however often posted). */
void wakeup_post(wakeup_fn *fn, void *arg);

#endif
