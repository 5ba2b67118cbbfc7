"""`fluxhook accounts ...`, `fluxhook keys ...` and `fluxhook event-types`
against a live server: admin-only calls, a key shown once that then works,
--account, and the catalog."""
import json
import unittest

from cliutil import CliCase, table


class CliAccountsKeysTest(CliCase):
    def test_accounts(self):
        acct = self.cli_json("accounts", "create", "--name", "Acme")
        self.assertTrue(acct["id"].startswith("acct_"))
        self.assertEqual(acct["name"], "Acme")
        rows = table(self.cli("accounts", "list").stdout)
        self.assertEqual({r["ID"] for r in rows}, {"acct_default", acct["id"]})
        self.assertEqual([r["NAME"] for r in rows if r["ID"] == acct["id"]], ["Acme"])
        _, api_list, _ = self.srv.api("GET", "/v1/accounts")
        self.assertEqual(self.cli_json("accounts", "list"), api_list)
        shown = self.cli("accounts", "show", acct["id"]).stdout
        self.assertRegex(shown, r"(?m)^name\s+Acme$")
        self.assertEqual(self.cli_json("accounts", "show", acct["id"]),
                         self.srv.api("GET", "/v1/accounts/" + acct["id"])[1])
        p = self.cli("accounts", "create", status=2)
        self.assertIn("missing --name", p.stderr)
        p = self.cli("accounts", "create", "--name", "", status=1)
        self.assertRegex(p.stderr, r"(?m)^  name: ")

    def test_keys(self):
        acct = self.cli_json("accounts", "create", "--name", "Keyed")
        p = self.cli("keys", "create", acct["id"], "--name", "ci")
        self.assertIn("shown only this once", p.stderr)
        secret = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("secret ")][0]
        key_id = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("id ")][0]
        rows = table(self.cli("keys", "list", acct["id"]).stdout)
        self.assertEqual([(r["ID"], r["ACCOUNT"], r["NAME"], r["ADMIN"]) for r in rows],
                         [(key_id, acct["id"], "ci", "no")])
        self.assertNotIn(secret, self.cli("keys", "list", acct["id"], "--json").stdout)
        # The new key works and sees only its account; it is not an admin.
        env = {"FLUXHOOK_API_KEY": secret}
        self.assertEqual(table(self.cli("endpoints", "list", env=env).stdout), [])
        p = self.cli("accounts", "create", "--name", "nope", env=env, status=1)
        self.assertIn("HTTP 403", p.stderr)
        # --account: an admin acts for another account.
        ep = self.cli_json("endpoints", "create", "--url", "http://127.0.0.1:9/x", "--account",
                           acct["id"])
        self.assertEqual(table(self.cli("endpoints", "list", env=env).stdout)[0]["ID"], ep["id"])
        self.assertEqual(table(self.cli("endpoints", "list").stdout), [])
        # Default account of keys list: acct_default.
        self.assertIn("acct_default",
                      {r["ACCOUNT"] for r in table(self.cli("keys", "list").stdout)})
        admin = self.cli_json("keys", "create", acct["id"], "--admin")
        self.assertTrue(admin["admin"])
        # Another account's key: the server says to name the account.
        p = self.cli("keys", "delete", key_id, status=1)
        self.assertIn("X-Workflux-Account", p.stderr)
        p = self.cli("keys", "delete", key_id, "--account", acct["id"])
        self.assertEqual(p.stdout, "deleted %s\n" % key_id)
        p = self.cli("endpoints", "list", env=env, status=1)
        self.assertIn("HTTP 401", p.stderr)
        self.cli("keys", "delete", key_id, "--account", acct["id"], status=1)
        self.cli("keys", "delete", status=2)

    def test_event_types(self):
        rows = table(self.cli("event-types").stdout)
        self.assertEqual(len(rows), 13)  # the producers' nine and fluxhook's own four
        byname = {r["TYPE"]: r for r in rows}
        self.assertEqual(byname["agent.updated"]["REQUIRED"], "agent_id,updated_fields")
        self.assertEqual(table(self.cli("event-types", "list").stdout), rows)
        _, api, _ = self.srv.api("GET", "/v1/event-types")
        self.assertEqual(json.loads(self.cli("event-types", "--json").stdout), api)
        one = self.cli_json("event-types", "show", "agent.updated")
        items = api["data"] if isinstance(api, dict) else api
        self.assertIn(one, items)
        shown = self.cli("event-types", "show", "integration.sync").stdout
        self.assertIn("records_synced", shown)
        p = self.cli("event-types", "show", "no.such", status=1)
        self.assertIn("unknown event type 'no.such'", p.stderr)


if __name__ == "__main__":
    unittest.main()
