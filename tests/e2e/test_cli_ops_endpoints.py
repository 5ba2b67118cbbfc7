"""`fluxhook operational-endpoints ...` against a live server: create, list,
show, update, secret and delete work on /v1/operational-endpoints, apart from
`fluxhook endpoints`."""
import unittest

from cliutil import CliCase, SECRET, table
from receiver import Receiver


class CliOpsEndpointsTest(CliCase):
    def test_every_subcommand(self):
        rc = Receiver()
        self.addCleanup(rc.close)
        made = self.cli_json("operational-endpoints", "create", "--url", rc.url,
                             "--description", "pager", "--event-types",
                             "endpoint.disabled,delivery.failed", "--secret", SECRET)
        op_id = made["id"]
        self.assertEqual(made["secret"], SECRET)
        self.assertEqual(made["event_types"], ["endpoint.disabled", "delivery.failed"])
        rows = table(self.cli("operational-endpoints", "list").stdout)
        self.assertEqual([(r["ID"], r["EVENTS"], r["DESCRIPTION"]) for r in rows],
                         [(op_id, "endpoint.disabled,delivery.failed", "pager")])
        # Not among the customer endpoints, and the other way round.
        self.assertEqual(self.cli_json("endpoints", "list")["data"], [])
        self.cli("endpoints", "show", op_id, status=1)
        self.assertEqual(self.cli_json("operational-endpoints", "show", op_id)["url"], rc.url)
        got = self.cli_json("operational-endpoints", "update", op_id, "--event-types", "")
        self.assertEqual(got["event_types"], [])
        self.assertEqual(self.cli_json("operational-endpoints", "secret", op_id)["secret"],
                         SECRET)
        # A producer's type is refused, naming fluxhook's own.
        p = self.cli("operational-endpoints", "update", op_id, "--event-types", "user.message",
                     status=1)
        self.assertIn("endpoint.disabled", p.stderr)
        p = self.cli("operational-endpoints", "delete", op_id)
        self.assertIn("deleted " + op_id, p.stdout)
        self.cli("operational-endpoints", "show", op_id, status=1)


if __name__ == "__main__":
    unittest.main()
