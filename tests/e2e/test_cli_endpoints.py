"""`fluxhook endpoints ...` against a live server: every subcommand, its table
or detail view, --json equal to the API's object, and the server's errors."""
import unittest

from cliutil import CliCase, SECRET, table
from receiver import Receiver


class CliEndpointsTest(CliCase):
    def setUp(self):
        super().setUp()
        self.rc = Receiver()
        self.addCleanup(self.rc.close)

    def test_create_list_show_json(self):
        p = self.cli("endpoints", "create", "--url", self.rc.url, "--description", "orders hook",
                     "--event-types", "conversation.started,agent.updated", "--secret", SECRET)
        self.assertIn("secret", p.stdout)
        self.assertIn(SECRET, p.stdout)
        ep_id = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("id ")][0]
        self.assertTrue(ep_id.startswith("ep_"))
        # The table: the important columns, one row.
        rows = table(self.cli("endpoints", "list").stdout)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["ID"], ep_id)
        self.assertEqual(rows[0]["STATUS"], "enabled")
        self.assertEqual(rows[0]["URL"], self.rc.url)
        self.assertEqual(rows[0]["EVENTS"], "conversation.started,agent.updated")
        self.assertEqual(rows[0]["HELD"], "0")
        self.assertEqual(rows[0]["DESCRIPTION"], "orders hook")
        # --json is the API's object.
        _, api_one, _ = self.srv.api("GET", "/v1/endpoints/" + ep_id)
        self.assertEqual(self.cli_json("endpoints", "show", ep_id), api_one)
        _, api_list, _ = self.srv.api("GET", "/v1/endpoints")
        self.assertEqual(self.cli_json("endpoints", "list"), api_list)
        # "endpoints" alone lists too.
        self.assertEqual(table(self.cli("endpoints").stdout)[0]["ID"], ep_id)
        shown = self.cli("endpoints", "show", ep_id).stdout
        self.assertRegex(shown, r"(?m)^url\s+" + self.rc.url)
        self.assertRegex(shown, r"(?m)^status\s+enabled$")

    def test_update_disable_enable_delete(self):
        ep = self.endpoint(self.rc.url)
        self.assertEqual(ep["event_types"], [])
        up = self.cli_json("endpoints", "update", ep["id"], "--description", "changed",
                           "--event-types", "user.message")
        self.assertEqual((up["description"], up["event_types"]), ("changed", ["user.message"]))
        p = self.cli("endpoints", "disable", ep["id"])
        self.assertEqual(p.stdout, "%s disabled\n" % ep["id"])
        self.assertEqual(table(self.cli("endpoints", "list").stdout)[0]["STATUS"], "disabled")
        p = self.cli("endpoints", "enable", ep["id"])
        self.assertIn("enabled", p.stdout)
        self.assertIn("0 held deliveries resumed", p.stdout)
        self.cli("endpoints", "enable", ep["id"], "--skip-held")
        p = self.cli("endpoints", "delete", ep["id"])
        self.assertEqual(p.stdout, "deleted %s\n" % ep["id"])
        self.assertEqual(table(self.cli("endpoints", "list").stdout), [])
        p = self.cli("endpoints", "show", ep["id"], status=1)
        self.assertIn(ep["id"], p.stderr)
        self.assertIn("HTTP 404", p.stderr)

    def test_secret_and_rotation(self):
        ep = self.endpoint(self.rc.url, "--secret", SECRET)
        p = self.cli("endpoints", "secret", ep["id"])
        self.assertRegex(p.stdout, r"(?m)^secret\s+" + SECRET.replace("+", r"\+") + "$")
        _, api_secret, _ = self.srv.api("GET", "/v1/endpoints/%s/secret" % ep["id"])
        self.assertEqual(self.cli_json("endpoints", "secret", ep["id"]), api_secret)
        rot = self.cli_json("endpoints", "rotate-secret", ep["id"], "--grace", "1h")
        self.assertNotEqual(rot["secret"], SECRET)
        self.assertTrue(rot["secret"].startswith("whsec_"))
        self.assertEqual(rot["previous"]["secret"], SECRET)
        p = self.cli("endpoints", "secret", ep["id"])
        self.assertIn("previous", p.stdout)
        self.assertIn(SECRET, p.stdout)
        self.cli("endpoints", "rotate-secret", ep["id"], "--grace", "soon", status=2)

    def test_test_stats_replay(self):
        ep = self.endpoint(self.rc.url)
        t = self.cli_json("endpoints", "test", ep["id"], "--event", "agent.updated")
        self.assertTrue(t["delivery_id"].startswith("dlv_"))
        reqs = self.rc.wait_for(1)
        self.assertEqual(reqs[0].headers["x-workflux-event"], "agent.updated")
        self.srv.wait_for(lambda: self.srv.api("GET", "/v1/deliveries/" + t["delivery_id"])[1]
                          ["status"] == "delivered", what="the test delivery delivered")
        rows = table(self.cli("endpoints", "stats", ep["id"]).stdout)
        self.assertEqual([r["WINDOW"] for r in rows], ["hour", "day"])
        self.assertEqual(rows[0]["DELIVERED"], "1")
        self.assertEqual(rows[0]["SUCCESS"], "100.0%")
        stats = self.cli_json("endpoints", "stats", ep["id"])
        self.assertEqual(stats["hour"]["counts"]["delivered"], 1)
        p = self.cli("endpoints", "replay", ep["id"], "--since", "1h")
        self.assertEqual(p.stdout, "1 deliveries replayed\n")
        self.rc.wait_for(2)
        self.assertEqual(self.cli_json("endpoints", "replay", ep["id"], "--since", "1h",
                                       "--status", "failed"), {"replayed": 0})
        p = self.cli("endpoints", "test", ep["id"], "--event", "no.such", status=1)
        self.assertIn("event", p.stderr)
        self.cli("endpoints", "test", ep["id"], status=2)
        self.cli("endpoints", "replay", ep["id"], status=2)

    def test_errors_name_fields(self):
        p = self.cli("endpoints", "create", "--url", "ftp://example.com/x", status=1)
        self.assertRegex(p.stderr, r"\(HTTP 4\d\d")
        self.assertRegex(p.stderr, r"(?m)^  url: ")
        p = self.cli("endpoints", "create", "--url", self.rc.url, "--event-types", "nope.nope",
                     status=1)
        self.assertRegex(p.stderr, r"(?m)^  event_types(\[0\])?: ")
        p = self.cli("endpoints", "create", status=2)
        self.assertIn("usage: fluxhook endpoints create --url URL", p.stderr)
        p = self.cli("endpoints", "update", "ep_x", status=2)
        self.assertIn("nothing to change", p.stderr)

    def test_data_publish_reaches_endpoint(self):
        ep = self.endpoint(self.rc.url, "--event-types", "conversation.started")
        self.cli("events", "publish", "conversation.started", "--data",
                 '{"conversation_id":"c","agent_id":"a","channel":"web"}')
        self.rc.wait_for(1)
        self.assertEqual(self.rc.requests[0].headers["x-workflux-event"], "conversation.started")
        self.assertEqual(table(self.cli("deliveries", "list", "--endpoint", ep["id"]).stdout)[0]
                         ["ENDPOINT"], ep["id"])


if __name__ == "__main__":
    unittest.main()
