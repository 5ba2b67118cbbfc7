"""Retries of an endpoint that fails everything, coming due one after another
(a stream of publishes to it): each goes out when it is due, give or take a
few tens of ms (before, up to the dispatcher's 1 s poll late), and the
dispatcher claims them in batches, not a claim or more per retry
(fluxhook_claims_total in /metrics). The recorder tells its loop when a
retry it recorded is due; a claim for work due later goes a little after it
is due (25 ms) and takes what came due meanwhile."""
import datetime
import unittest

from apiutil import ApiCase, metric
from harness import STORE

DELAY_MS = 300          # the second attempt, after the first failed
LATE_MS = 200           # how late a second attempt may go out (the 1 s poll is not in time)
EVENTS = 60
MSG = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


def ms(rfc3339):
    """Milliseconds since the epoch of "2026-11-30T07:00:00.123Z"."""
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def claims(srv):
    return (metric(srv, 'fluxhook_claims_total{found="none"}') +
            metric(srv, 'fluxhook_claims_total{found="some"}'))


class DeliverRetryTiming(ApiCase):

    # The third attempt an hour later keeps the endpoint from being disabled.
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,300ms,1h"]

    def two_attempts(self, dlv_id):
        """The delivery's first two attempts once both are recorded, else None."""
        attempts = self.delivery(dlv_id)["attempts"]
        return attempts if len(attempts) >= 2 else None

    def test_retries_on_time_in_batches(self):
        failing = self.receiver(default=500)
        self.endpoint(failing.url, event_types=["user.message"])
        before = claims(self.srv)
        for _ in range(EVENTS):  # one at a time: their retries come due one after another
            self.publish("user.message", MSG)
        reqs = failing.wait_for(2 * EVENTS, timeout=60)
        late = []
        for d in {r.headers["x-workflux-delivery"] for r in reqs}:
            # The attempt log (the server's clock): the second attempt's start
            # against the first's end plus the delay.
            a = self.srv.wait_for(lambda: self.two_attempts(d), timeout=30,
                                  what="the attempts of " + d, interval=0.05)
            late.append(ms(a[1]["at"]) - ms(a[0]["at"]) - a[0]["duration_ms"] - DELAY_MS)
        self.assertEqual(len(late), EVENTS)
        self.assertLessEqual(max(late), LATE_MS, "second attempts late by up to %d ms" % max(late))
        # About one claim per 25 ms of retries per loop, not one or more per retry
        # (SQLite: on PostgreSQL, which has no hand-off, each publish wakes a claim too).
        if STORE == "sqlite":
            got = claims(self.srv) - before
            self.assertLess(got, EVENTS, "%d claims for %d retries" % (got, EVENTS))
        self.assertEqual(self.srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
