"""/healthz, /metrics, /openapi.json and /v1/event-types."""
import email.utils
import os
import re
import time
import unittest

from harness import STORE, Server

ROUTES_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "api",
                        "routes.c")


def route_table():
    """(method, pattern) of every route in src/api/routes.c."""
    with open(ROUTES_C) as f:
        text = f.read()
    return re.findall(r'\{"(GET|POST|PATCH|PUT|DELETE)", "([^"]+)", h_', text)


class ApiMeta(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        if code != 0 or report:
            raise AssertionError("serve exited %s\n%s" % (code, report))

    def test_healthz(self):
        status, body, headers = self.srv.api("GET", "/healthz", key=False)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["store"], "ok")
        self.assertEqual(headers["Content-Type"], "application/json")

    def test_answers_carry_a_date(self):
        """Every answer, a publish's and an error's included, has an IMF-fixdate
        Date field (RFC 9110 §6.6.1) of the second it was made."""
        before = int(time.time())
        answers = [self.srv.api("GET", "/healthz", key=False),
                   self.srv.api("GET", "/v1/endpoints", key=False),
                   self.srv.api("POST", "/v1/events", {"event": "user.message", "data": {}})]
        after = int(time.time())
        for status, body, headers in answers:
            date = headers["Date"]
            self.assertRegex(date, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|"
                                   r"Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$",
                             (status, date))
            at = email.utils.parsedate_to_datetime(date).timestamp()
            self.assertTrue(before <= at <= after, (date, before, after))

    def test_metrics_format(self):
        self.srv.api("GET", "/healthz", key=False)
        self.srv.api("GET", "/v1/nope", key=False)
        status, text, headers = self.srv.api("GET", "/metrics", key=False)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"), headers["Content-Type"])
        self.assertIsInstance(text, str)
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                            r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? -?[0-9.e+-]+(Inf)?$')
        values = {}
        for line in text.splitlines():
            if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
                continue
            self.assertRegex(line, sample)
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
        for st in ("pending", "delivering", "delivered", "failed", "held"):
            self.assertIn('fluxhook_deliveries{status="%s"}' % st, values)
        self.assertGreaterEqual(values['fluxhook_http_requests_total{code="2xx"}'], 1)
        self.assertGreaterEqual(values['fluxhook_http_requests_total{code="4xx"}'], 1)
        types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
        self.assertIn(("fluxhook_deliveries", "gauge"), types)
        self.assertIn(("fluxhook_http_requests_total", "counter"), types)

    def test_metrics_store_waits(self):
        """SQLite: each WAL sync, and where each durable write (a publish) waited, as
        histograms that count what was done: one wait per publish and stage, one
        sync per fluxhook_store_syncs_total."""
        def metrics():
            status, text, _ = self.srv.api("GET", "/metrics", key=False)
            self.assertEqual(status, 200)
            return {n: float(v) for n, v in re.findall(r"^(\S+) (\S+)$", text, re.M)}, text

        before, _ = metrics()
        n = 5
        for i in range(n):
            status, _, _ = self.srv.api("POST", "/v1/events",
                                        {"event": "user.message",
                                         "data": {"conversation_id": "c", "message_id": "m%d" % i,
                                                  "user_id": "u", "content": "hi"}})
            self.assertEqual(status, 202)
        after, text = metrics()
        if STORE != "sqlite":
            self.assertNotIn("fluxhook_store_wait_seconds", text)  # measured on SQLite only
            return
        types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
        self.assertIn(("fluxhook_store_sync_seconds", "histogram"), types)
        self.assertIn(("fluxhook_store_wait_seconds", "histogram"), types)
        self.assertEqual(after["fluxhook_store_sync_seconds_count"],
                         after["fluxhook_store_syncs_total"])
        for hist, labels in (("fluxhook_store_sync_seconds", ""),
                             ("fluxhook_store_wait_seconds", 'stage="commit",'),
                             ("fluxhook_store_wait_seconds", 'stage="sync",')):
            buckets = [(m.group(1), float(m.group(2))) for m in re.finditer(
                r"^%s_bucket\{%sle=\"([^\"]+)\"\} (\S+)$" % (hist, re.escape(labels)), text, re.M)]
            self.assertEqual(buckets[-1][0], "+Inf")
            counts = [c for _, c in buckets]
            self.assertEqual(counts, sorted(counts), hist)  # cumulative
            suffix = "{%s}" % labels[:-1] if labels else ""
            self.assertEqual(counts[-1], after[hist + "_count" + suffix])
            self.assertGreater(after[hist + "_sum" + suffix], 0)
            if labels:
                # Every publish waited in both stages (other durable writes may add some).
                got = after[hist + "_count" + suffix] - before.get(hist + "_count" + suffix, 0)
                self.assertGreaterEqual(got, n, labels)

    def test_openapi_lists_every_route(self):
        status, doc, _ = self.srv.api("GET", "/openapi.json", key=False)
        self.assertEqual(status, 200)
        self.assertIsInstance(doc, dict, "not JSON")
        self.assertRegex(doc["openapi"], r"^3\.0\.\d+$")
        self.assertEqual(doc["info"]["title"], "fluxhook")
        routes = route_table()
        self.assertGreaterEqual(len(routes), 30)
        for method, pattern in routes:
            self.assertIn(pattern, doc["paths"], pattern)
            op = doc["paths"][pattern].get(method.lower())
            self.assertIsNotNone(op, "%s %s missing" % (method, pattern))
            self.assertTrue(op["summary"])
            self.assertTrue(any(code.startswith("2") for code in op["responses"]),
                                "%s %s: no success answer" % (method, pattern))
            for name in re.findall(r"\{(\w+)\}", pattern):
                self.assertTrue(any(p["in"] == "path" and p["name"] == name
                                    for p in op.get("parameters", [])), pattern)
        ops = sum(len(v) for v in doc["paths"].values())
        self.assertEqual(ops, len(routes))

    def test_openapi_refs_resolve_and_errors_are_described(self):
        _, doc, _ = self.srv.api("GET", "/openapi.json", key=False)
        schemas = doc["components"]["schemas"]
        err = schemas["Error"]["properties"]["error"]
        self.assertEqual(set(err["required"]), {"type", "message"})
        self.assertIn("fields", err["properties"])
        refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
        self.assertTrue(refs)
        for r in refs:
            self.assertIn(r, schemas)
        op = doc["paths"]["/v1/events"]["post"]
        self.assertIn("requestBody", op)
        self.assertIn("401", op["responses"])
        self.assertIn("415", op["responses"])
        self.assertEqual(doc["paths"]["/healthz"]["get"]["security"], [])
        self.assertIn("bearer", doc["components"]["securitySchemes"])

    def test_schemas_name_the_fields_answers_carry(self):
        _, doc, _ = self.srv.api("GET", "/openapi.json", key=False)
        schemas = doc["components"]["schemas"]

        def props(name):
            sch = schemas[name]
            out = set(sch.get("properties", {}))
            for part in sch.get("allOf", []):
                if "$ref" in part:
                    out |= props(part["$ref"].rsplit("/", 1)[1])
                out |= set(part.get("properties", {}))
            return out

        st, ep, _ = self.srv.api("POST", "/v1/endpoints", {"url": "https://example.com/h"})
        self.assertEqual(st, 201, ep)
        st, ev, _ = self.srv.api("POST", "/v1/events", {
            "event": "user.message",
            "data": {"conversation_id": "c", "message_id": "m", "user_id": "u", "content": "x"}})
        self.assertEqual(st, 202, ev)
        answers = {
            "EndpointWithSecret": ep,
            "Endpoint": self.srv.api("GET", "/v1/endpoints/" + ep["id"])[1],
            "EventPublished": ev,
            "Event": self.srv.api("GET", "/v1/events/" + ev["id"])[1],
            "DeliveryWithAttempts": self.srv.api("GET", "/v1/deliveries/%s" % self.srv.api(
                "GET", "/v1/deliveries?event_id=" + ev["id"])[1]["data"][0]["id"])[1],
            "Account": self.srv.api("GET", "/v1/accounts/acct_default")[1],
            "Secret": self.srv.api("GET", "/v1/endpoints/%s/secret" % ep["id"])[1],
            "Stats": self.srv.api("GET", "/v1/endpoints/%s/stats" % ep["id"])[1],
            "Series": self.srv.api("GET", "/v1/stats/series?window=1h")[1],
            "Health": self.srv.api("GET", "/healthz", key=False)[1],
        }
        for name, obj in answers.items():
            self.assertIsInstance(obj, dict, name)
            self.assertEqual(set(obj) - props(name), set(), "%s: fields missing from the schema"
                             % name)
        self.assertEqual(set(answers["Stats"]["hour"]) - props("StatsWindow"), set())

    def test_event_types(self):
        status, body, _ = self.srv.api("GET", "/v1/event-types")
        self.assertEqual(status, 200, body)
        names = [t["event"] for t in body["data"]]
        # The nine producers' types, then fluxhook's own four, marked as such.
        self.assertEqual(len(names), 13)
        self.assertIn("conversation.started", names)
        self.assertIn("agent.updated", names)
        own = [t["event"] for t in body["data"] if t.get("source") == "fluxhook"]
        self.assertEqual(own, ["endpoint.disabled", "endpoint.enabled", "delivery.failed",
                               "endpoint.recovered"])
        self.assertEqual(names[9:], own)
        status, body, _ = self.srv.api("GET", "/v1/event-types", key=False)
        self.assertEqual(status, 401)


if __name__ == "__main__":
    unittest.main()
