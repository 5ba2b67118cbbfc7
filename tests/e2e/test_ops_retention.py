"""Retention (`serve --retention`): under a steady publish load the store stops
growing once the window is full, while the same load without retention keeps
growing it; events with held work are never deleted; finished ones older than
the window are gone with their deliveries and attempts; the counts /metrics
shows stay equal to the rows. The file-size figures of both runs go to stdout
and tests/artifacts/retention.txt.

On PostgreSQL the space of deleted rows is reused once VACUUM has run over
them; autovacuum does that on its own schedule (a minute at the least), so
this test runs VACUUM on the three tables every two seconds in both runs. On
SQLite the test judges the database file, checkpointed before each sample,
and shows the WAL beside it."""
import os
import subprocess
import time
import unittest

import harness
from apiutil import GUIDE_SAMPLES, SERVE_ARGS
from harness import ROOT, Server, psql
from loadgen import Publisher
from receiver import Receiver

RATE = 80          # events/s
WINDOW = "4s"      # the retention of the first run
# The window is full well before the first measure (PHASE_S), the second
# comes as long after it. PostgreSQL recycles the index pages of deleted rows
# a VACUUM or two later than the heap's space, and a loaded machine slows
# VACUUM down, so it gets longer to settle.
PHASE_S = 16 if harness.STORE == "postgres" else 8
SAMPLE_S = 1.0


def store_size(srv):
    """(bytes of the store, bytes of its WAL): the SQLite file and its -wal
    file, or PostgreSQL's events, deliveries and attempts with their indexes
    and TOAST (and 0). SQLite's WAL is bounded apart from retention (it is
    reused from its start after each checkpoint that no reader holds back),
    so the test judges the database file and shows the WAL beside it."""
    if srv.db.startswith("sqlite:"):
        p = srv.db[7:]
        # Pages reach the database file at checkpoints, which SQLite makes
        # every 1000 WAL pages; one here makes each sample current.
        subprocess.run(["sqlite3", p, "PRAGMA wal_checkpoint(PASSIVE)"], check=True,
                       stdout=subprocess.DEVNULL)
        return tuple(os.path.getsize(f) if os.path.exists(f) else 0 for f in (p, p + "-wal"))
    return int(psql(srv.db, "SELECT sum(pg_total_relation_size(t::regclass)) FROM "
                            "unnest(array['events', 'deliveries', 'attempts']) t")), 0


def count(srv, table):
    sql = "SELECT count(*) FROM %s" % table
    if srv.db.startswith("sqlite:"):
        return int(subprocess.run(["sqlite3", srv.db[7:], sql], stdout=subprocess.PIPE,
                                  text=True, check=True).stdout)
    return int(psql(srv.db, sql))


def metric(srv, status):
    st, text, _ = srv.api("GET", "/metrics", key=False)
    for line in text.splitlines():
        if line.startswith('fluxhook_deliveries{status="%s"}' % status):
            return int(line.split()[-1])
    raise AssertionError("no fluxhook_deliveries{status=%s} in /metrics" % status)


class RetentionTest(unittest.TestCase):

    def run_load(self, retention, held_check=False):
        """One server with the given --retention under RATE events/s to two
        endpoints for 2 * PHASE_S seconds; returns [(seconds, bytes, events, WAL bytes)]."""
        srv = Server(args=SERVE_ARGS + ["--retention", retention], test=self)
        srv.start()
        rc = Receiver(default=200)
        self.addCleanup(rc.close)
        for _ in range(2):
            st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
            self.assertEqual(st, 201, ep)
        held = []
        if held_check:
            # An endpoint disabled from the start: its deliveries are held, so
            # the events that have one must stay, however old.
            st, ep, _ = srv.api("POST", "/v1/endpoints",
                                {"url": rc.url, "enabled": False,
                                 "event_types": ["conversation.started"]})
            self.assertEqual(st, 201, ep)
            for i in range(5):
                data = dict(GUIDE_SAMPLES["conversation.started"], conversation_id=str(i))
                st, ev, _ = srv.api("POST", "/v1/events", {"event": "conversation.started",
                                                           "data": data})
                self.assertEqual(st, 202, ev)
                held.append(ev["id"])
        pub = Publisher(srv, rate=RATE, limit=4 * PHASE_S + 30)
        pub.start()
        self.addCleanup(pub.stop)
        samples = []
        t0 = time.monotonic()
        next_vacuum = t0
        while time.monotonic() - t0 < 2 * PHASE_S:
            now = time.monotonic()
            if not srv.db.startswith("sqlite:") and now >= next_vacuum:
                psql(srv.db, "VACUUM events, deliveries, attempts")
                next_vacuum = now + 2
            size, wal = store_size(srv)
            samples.append((round(now - t0, 1), size, len(pub.acked), wal))
            time.sleep(SAMPLE_S)  # the sampling period of the figures, not a wait for an outcome
        pub.stop()
        pub.join(30)
        self.assertEqual(pub.refused, [])
        self.assertGreater(len(pub.acked), RATE * PHASE_S / 2)
        return srv, samples, pub.acked, held

    def at(self, samples, t):
        """The last sample taken at or before t seconds."""
        return [s for s in samples if s[0] <= t][-1]

    def test_store_stops_growing(self):
        srv, kept, acked, held = self.run_load(WINDOW, held_check=True)
        # Held work is never deleted, however old.
        for ev_id in held:
            st, ev, _ = srv.api("GET", "/v1/events/" + ev_id)
            self.assertEqual(st, 200, ev)
        st, ds, _ = srv.api("GET", "/v1/deliveries?status=held")
        self.assertEqual(len(ds["data"]), len(held))
        # The oldest published events are gone, with their deliveries and attempts.
        st, gone, _ = srv.api("GET", "/v1/events/" + acked[0])
        self.assertEqual(st, 404, gone)
        st, ds, _ = srv.api("GET", "/v1/deliveries?event_id=" + acked[0])
        self.assertEqual(ds["data"], [])
        self.assertIn("retention: deleted events=", srv.log_text())
        # /metrics counts what is there.
        srv.wait_for(lambda: metric(srv, "pending") == 0 and metric(srv, "delivering") == 0,
                     timeout=60, what="every delivery to end")
        # Retention goes on deleting between the two reads: wait for a moment
        # when no batch falls between them (a counter that drifted never agrees).
        for status in ("delivered", "held"):
            sql = "deliveries WHERE status = '%s'" % status
            srv.wait_for(lambda: metric(srv, status) == count(srv, sql), timeout=30,
                         what="/metrics delivered/held equal to the rows (%s)" % status)
        self.assertEqual(count(srv, "attempts WHERE delivery_id NOT IN (SELECT id FROM "
                                    "deliveries)"), 0)
        srv.stop()

        _, grown, _, _ = self.run_load("off")

        mid, end = self.at(kept, PHASE_S), kept[-1]
        gmid, gend = self.at(grown, PHASE_S), grown[-1]
        lines = ["retention test (%s, %d events/s to 2 endpoints, retention %s)"
                 % (harness.STORE, RATE, WINDOW),
                 "%8s %14s %14s %10s %10s %12s %12s" % ("seconds", "bytes kept", "bytes off",
                                                        "events", "events off", "WAL kept",
                                                        "WAL off")]
        for (t, b, n, w), (_, gb, gn, gw) in zip(kept, grown):
            lines.append("%8.1f %14d %14d %10d %10d %12d %12d" % (t, b, gb, n, gn, w, gw))
        lines.append("from %.0f s to %.0f s: with retention %+d bytes for %d events, without "
                     "%+d bytes for %d events"
                     % (mid[0], end[0], end[1] - mid[1], end[2] - mid[2], gend[1] - gmid[1],
                        gend[2] - gmid[2]))
        text = "\n".join(lines) + "\n"
        print(text)
        os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)
        with open(os.path.join(ROOT, "tests", "artifacts", "retention.txt"), "a") as f:
            f.write(text + "\n")
        # Once the window is full the store with retention takes (almost) no
        # more room, while the same load without retention grows it by the
        # size of what it publishes: compared in the same run.
        self.assertGreater(end[2] - mid[2], RATE * PHASE_S / 4, text)
        self.assertGreater(gend[2] - gmid[2], RATE * PHASE_S / 4, text)
        self.assertGreater(gend[1] - gmid[1], 300 * (gend[2] - gmid[2]), text)
        self.assertLess(end[1] - mid[1], 0.2 * (gend[1] - gmid[1]), text)

if __name__ == "__main__":
    unittest.main()
