"""/v1/endpoints: create (validation, secrets, enabled), list (pages), read,
PATCH (validation), DELETE, the manual disable / enable switch with held
deliveries resumed or skipped, and tenancy."""
import re
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES
from harness import Server

RESPONSE = GUIDE_SAMPLES["agent.response"]
FIELDS = {"id", "url", "description", "event_types", "status", "disabled_reason",
          "disabled_at", "created_at"}
SECRET_RE = r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$"
OWN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes


class CreateTest(ApiCase):

    def test_create_answers_201_with_the_secret(self):
        st, ep, h = self.srv.api("POST", "/v1/endpoints",
                                 {"url": "https://hooks.example.com/in",
                                  "description": "orders", "event_types": ["agent.response"]})
        self.assertEqual(st, 201, ep)
        self.assertTrue(FIELDS <= set(ep), ep)
        self.assertRegex(ep["id"], r"^ep_[0-9A-Z]{26}$")
        self.assertEqual(ep["url"], "https://hooks.example.com/in")
        self.assertEqual(ep["description"], "orders")
        self.assertEqual(ep["event_types"], ["agent.response"])
        self.assertEqual(ep["status"], "enabled")
        self.assertIsNone(ep["disabled_reason"])
        self.assertIsNone(ep["disabled_at"])
        self.assertRegex(ep["created_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertRegex(ep["secret"], SECRET_RE)
        self.assertEqual(h.get("Location"), "/v1/endpoints/" + ep["id"])
        got = self.call("GET", "/v1/endpoints/" + ep["id"])
        self.assertNotIn("secret", got)
        self.assertEqual(got["held"], 0)
        # Two endpoints never share a secret.
        other = self.endpoint("https://hooks.example.com/two")
        self.assertNotEqual(other["secret"], ep["secret"])

    def test_absent_or_empty_event_types_mean_every_type(self):
        a = self.endpoint("https://a.example.com/")
        b = self.endpoint("https://b.example.com/", event_types=[])
        self.assertEqual(a["event_types"], b["event_types"])
        self.assertIn(a["event_types"], ([], None, ["*"]))
        self.assertEqual(a["description"], "")

    def test_repeated_types_are_kept_once(self):
        ep = self.endpoint("https://a.example.com/",
                           event_types=["agent.response", "user.message", "agent.response"])
        self.assertEqual(sorted(ep["event_types"]), ["agent.response", "user.message"])

    def test_own_secret(self):
        ep = self.endpoint("https://a.example.com/", secret=OWN_SECRET)
        self.assertEqual(ep["secret"], OWN_SECRET)
        self.assertEqual(self.call("GET", "/v1/endpoints/%s/secret" % ep["id"])["secret"],
                         OWN_SECRET)
        for bad in ("secret", "whsec_", "whsec_c2hvcnQ=", "whsec_!!!!", 42):
            err = self.error("POST", "/v1/endpoints", {"url": "https://a.example.com/",
                                                       "secret": bad}, 422)
            self.assertEqual(self.paths(err), ["secret"], bad)

    def test_created_disabled(self):
        ep = self.endpoint("https://a.example.com/", enabled=False)
        self.assertEqual(ep["status"], "disabled")
        self.assertEqual(ep["disabled_reason"], "disabled by user")
        self.assertIsNotNone(ep["disabled_at"])
        self.assertRegex(ep["secret"], SECRET_RE)

    def test_bad_urls_answer_400(self):
        for url in ("ftp://a.example.com/", "not a url", "https://", "//x", "https://a b/"):
            err = self.error("POST", "/v1/endpoints", {"url": url}, 400)
            self.assertIn("url", self.paths(err), url)
        self.assertEqual(self.call("GET", "/v1/endpoints")["data"], [])

    def test_http_urls_need_allow_http(self):
        self.endpoint("http://127.0.0.1:9/")  # this server runs with --allow-http
        strict = Server(test=self)
        strict.start()
        st, b, _ = strict.api("POST", "/v1/endpoints", {"url": "http://a.example.com/"})
        self.assertEqual(st, 400, b)
        self.assertIn("url", [f["path"] for f in b["error"].get("fields", [])])
        st, b, _ = strict.api("POST", "/v1/endpoints", {"url": "https://a.example.com/"})
        self.assertEqual(st, 201, b)

    def test_every_problem_is_listed(self):
        err = self.error("POST", "/v1/endpoints", {"description": "x" * 1025,
                                                   "event_types": ["agent.response", "nope",
                                                                   "user.message", 3],
                                                   "enabled": "yes"}, 422)
        self.assertEqual(sorted(self.paths(err)),
                         sorted(["url", "description", "event_types[1]", "event_types[3]",
                                 "enabled"]))
        err = self.error("POST", "/v1/endpoints", {"url": "https://a.example.com/",
                                                   "event_types": "agent.response"}, 422)
        self.assertEqual(self.paths(err), ["event_types"])
        err = self.error("POST", "/v1/endpoints", {"url": 5}, 422)
        self.assertEqual(self.paths(err), ["url"])
        # 1024 characters (not bytes) are fine.
        ep = self.endpoint("https://a.example.com/", description="é" * 1024)
        self.assertEqual(len(ep["description"]), 1024)
        self.assertEqual(len(self.call("GET", "/v1/endpoints")["data"]), 1)

    def test_body_must_be_a_json_object(self):
        self.error("POST", "/v1/endpoints", raw="[1]", status=400)
        self.error("POST", "/v1/endpoints", raw="{", status=400)


class ListTest(ApiCase):

    def test_pages_oldest_first_without_gaps_or_duplicates(self):
        ids = [self.endpoint("https://a.example.com/%d" % i)["id"] for i in range(5)]
        seen, after, pages = [], None, 0
        while True:
            page = self.call("GET", "/v1/endpoints?limit=2" + ("&after=" + after if after else ""))
            pages += 1
            self.assertLessEqual(len(page["data"]), 2)
            for e in page["data"]:
                self.assertNotIn("secret", e)
                self.assertTrue(FIELDS <= set(e), e)
            seen += [e["id"] for e in page["data"]]
            after = page["next"]
            if after is None:
                break
            self.assertLess(pages, 10)
        self.assertEqual(seen, ids)
        self.assertEqual(pages, 3)
        whole = self.call("GET", "/v1/endpoints")
        self.assertEqual([e["id"] for e in whole["data"]], ids)
        self.assertIsNone(whole["next"])
        self.error("GET", "/v1/endpoints?limit=-1", status=400)
        self.error("GET", "/v1/endpoints?after=evt_x", status=400)

    def test_accounts_see_only_their_endpoints(self):
        _, key = self.new_account()
        mine = self.endpoint("https://a.example.com/")
        theirs = self.endpoint("https://b.example.com/", key=key)
        self.assertEqual([e["id"] for e in self.call("GET", "/v1/endpoints")["data"]],
                         [mine["id"]])
        self.assertEqual([e["id"] for e in self.call("GET", "/v1/endpoints", key=key)["data"]],
                         [theirs["id"]])
        p = "/v1/endpoints/" + theirs["id"]
        self.error("GET", p, status=404)
        self.error("PATCH", p, {"description": "mine now"}, status=404)
        self.error("DELETE", p, status=404)
        self.error("POST", p + "/disable", {}, status=404)
        self.error("POST", p + "/enable", {}, status=404)
        self.error("GET", p + "/secret", status=404)
        self.error("POST", p + "/secret/rotate", {}, status=404)
        self.error("POST", p + "/test", {"event": "agent.response"}, status=404)
        self.error("GET", p + "/stats", status=404)
        self.error("POST", p + "/replay", {"since": "2024-01-01T00:00:00Z"}, status=404)
        self.assertEqual(self.call("GET", p, key=key)["description"], "")

    def test_malformed_ids_are_404(self):
        for bad in ("nope", "ep_", "evt_01JE0000000000000000000000", "ep_" + "Z" * 40):
            self.error("GET", "/v1/endpoints/" + bad, status=404)
            self.error("PATCH", "/v1/endpoints/" + bad, {"description": "x"}, status=404)
            self.error("DELETE", "/v1/endpoints/" + bad, status=404)


class PatchDeleteTest(ApiCase):

    def test_patch_changes_only_the_given_fields(self):
        ep = self.endpoint("https://a.example.com/", description="one",
                           event_types=["agent.response"])
        p = "/v1/endpoints/" + ep["id"]
        got = self.call("PATCH", p, {"description": "two"})
        self.assertEqual(got["description"], "two")
        self.assertEqual(got["url"], "https://a.example.com/")
        self.assertEqual(got["event_types"], ["agent.response"])
        got = self.call("PATCH", p, {"url": "https://b.example.com/x",
                                     "event_types": ["user.message", "agent.updated"]})
        self.assertEqual(got["url"], "https://b.example.com/x")
        self.assertEqual(sorted(got["event_types"]), ["agent.updated", "user.message"])
        self.assertEqual(got["description"], "two")
        got = self.call("PATCH", p, {"event_types": []})
        all_types = self.endpoint("https://c.example.com/")["event_types"]
        self.assertEqual(got["event_types"], all_types)
        got = self.call("PATCH", p, {})
        self.assertEqual(got["url"], "https://b.example.com/x")
        self.assertEqual(self.call("GET", p), got)

    def test_patch_validation(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/" + ep["id"]
        err = self.error("PATCH", p, {"url": "ftp://x/"}, 400)
        self.assertEqual(self.paths(err), ["url"])
        err = self.error("PATCH", p, {"event_types": ["agent.response", "bogus"]}, 422)
        self.assertEqual(self.paths(err), ["event_types[1]"])
        err = self.error("PATCH", p, {"description": 3, "enabled": 1}, 422)
        self.assertEqual(sorted(self.paths(err)), ["description", "enabled"])
        err = self.error("PATCH", p, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, 422)
        self.assertEqual(self.paths(err), ["secret"])
        self.assertIn("rotate", err["fields"][0]["problem"])
        # Nothing was changed by the refused calls.
        got = self.call("GET", p)
        self.assertEqual(got["url"], "https://a.example.com/")
        self.assertEqual(got["status"], "enabled")

    def test_patch_enabled_switches(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/" + ep["id"]
        got = self.call("PATCH", p, {"enabled": False})
        self.assertEqual(got["status"], "disabled")
        self.assertEqual(got["disabled_reason"], "disabled by user")
        got = self.call("PATCH", p, {"enabled": True})
        self.assertEqual(got["status"], "enabled")
        self.assertIsNone(got["disabled_reason"])
        self.assertIsNone(got["disabled_at"])

    def test_delete(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/" + ep["id"]
        st, body, _ = self.srv.api("DELETE", p)
        self.assertEqual(st, 204)
        self.assertEqual(body, "")
        self.error("GET", p, status=404)
        self.error("DELETE", p, status=404)
        self.assertEqual(self.call("GET", "/v1/endpoints")["data"], [])

    def test_delete_ends_held_deliveries(self):
        ep = self.endpoint("https://a.example.com/", enabled=False)
        ev = self.publish("agent.response", RESPONSE)
        self.call("DELETE", "/v1/endpoints/" + ep["id"], status=204)
        ds = self.deliveries(event_id=ev["id"])
        self.assertEqual([d["status"] for d in ds], ["failed"])


class SwitchTest(ApiCase):

    def test_disable_holds_and_enable_resumes(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/" + ep["id"]
        got = self.call("POST", p + "/disable", {"reason": "maintenance until 14:00"})
        self.assertEqual(got["status"], "disabled")
        self.assertEqual(got["disabled_reason"], "maintenance until 14:00")
        self.assertIsNotNone(got["disabled_at"])
        e1 = self.publish("agent.response", RESPONSE)
        e2 = self.publish("agent.response", RESPONSE)
        self.assertEqual(e1["deliveries"], 1)
        held = self.deliveries(endpoint_id=ep["id"], status="held")
        self.assertEqual(sorted(d["event_id"] for d in held), sorted([e1["id"], e2["id"]]))
        self.assertEqual(self.call("GET", p)["held"], 2)
        self.assertEqual(rc.requests, [])
        got = self.call("POST", p + "/enable", {})
        self.assertEqual(got["status"], "enabled")
        self.assertEqual(got["resumed"], 2)
        self.assertEqual(got["skipped"], 0)
        self.wait_event_deliveries(e1["id"], 1, ("delivered",))
        self.wait_event_deliveries(e2["id"], 1, ("delivered",))
        got_ids = sorted(r.headers["x-workflux-event-id"] for r in rc.wait_for(2))
        self.assertEqual(got_ids, sorted([e1["id"], e2["id"]]))
        self.assertEqual(self.call("GET", p)["held"], 0)

    def test_enable_skip_held(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/" + ep["id"]
        got = self.call("POST", p + "/disable")  # no body: the default reason
        self.assertEqual(got["disabled_reason"], "disabled by user")
        ev = self.publish("agent.response", RESPONSE)
        got = self.call("POST", p + "/enable", {"skip_held": True})
        self.assertEqual((got["resumed"], got["skipped"]), (0, 1))
        self.assertEqual(got["held"], 0)
        d = self.deliveries(event_id=ev["id"])[0]
        self.assertEqual(d["status"], "failed")
        # New events flow again, and the skipped one was never sent.
        ev2 = self.publish("agent.response", RESPONSE)
        self.wait_event_deliveries(ev2["id"], 1, ("delivered",))
        reqs = rc.wait_for(1)
        self.assertEqual([r.headers["x-workflux-event-id"] for r in reqs], [ev2["id"]])

    def test_switch_validation(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/" + ep["id"]
        self.error("POST", p + "/disable", {"reason": 5}, 422)
        st, b, _ = self.srv.api("POST", p + "/enable", {"skip_held": "yes"})
        self.assertIn(st, (400, 422), b)
        self.assertIn("skip_held", b["error"]["message"] + str(b["error"].get("fields")))
        got = self.call("POST", p + "/enable", {})  # enabling an enabled endpoint is fine
        self.assertEqual((got["status"], got["resumed"]), ("enabled", 0))


if __name__ == "__main__":
    unittest.main()
