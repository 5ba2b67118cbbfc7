"""Accounts and API keys: create, read, list, keys shown once, delete."""
import re
import unittest

from harness import Server

KEY_RE = re.compile(r"^fhk_[A-Za-z0-9_-]{43}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class ApiAccounts(unittest.TestCase):
    def setUp(self):
        self.srv = Server(test=self)
        self.srv.start()

    def create_account(self, name="acme"):
        status, body, headers = self.srv.api("POST", "/v1/accounts", {"name": name})
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Location"], "/v1/accounts/" + body["id"])
        return body

    def create_key(self, account, admin=None, name=None, key=None):
        req = {}
        if admin is not None:
            req["admin"] = admin
        if name is not None:
            req["name"] = name
        status, body, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % account, req,
                                       key=key)
        self.assertEqual(status, 201, body)
        return body

    def test_account_create_and_read(self):
        acct = self.create_account("Acme Inc")
        self.assertRegex(acct["id"], r"^acct_[0-9A-Z]{26}$")
        self.assertEqual(acct["name"], "Acme Inc")
        self.assertRegex(acct["created_at"], TIME_RE)
        status, body, _ = self.srv.api("GET", "/v1/accounts/" + acct["id"])
        self.assertEqual(status, 200)
        self.assertEqual(body, acct)
        status, body, _ = self.srv.api("GET", "/v1/accounts/acct_default")
        self.assertEqual(status, 200)
        self.assertEqual(body["id"], "acct_default")

    def test_account_name_is_required(self):
        for req in ({}, {"name": ""}, {"name": "x" * 201}):
            status, body, _ = self.srv.api("POST", "/v1/accounts", req)
            self.assertEqual(status, 422, body)
            self.assertEqual(body["error"]["fields"][0]["path"], "name")
        status, body, _ = self.srv.api("GET", "/v1/accounts/acct_nope")
        self.assertEqual(status, 404)

    def test_account_list_pages(self):
        made = [self.create_account("a%d" % i)["id"] for i in range(5)]
        status, body, _ = self.srv.api("GET", "/v1/accounts?limit=2")
        self.assertEqual(status, 200, body)
        seen = [a["id"] for a in body["data"]]
        self.assertEqual(len(seen), 2)
        cursor = body["next"]
        for _ in range(10):
            if cursor is None:
                break
            status, body, _ = self.srv.api("GET", "/v1/accounts?limit=2&after=" + cursor)
            self.assertEqual(status, 200, body)
            seen += [a["id"] for a in body["data"]]
            cursor = body["next"]
        self.assertIsNone(cursor)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(set(made + ["acct_default"]), set(seen))
        for bad in ("0", "501", "x", "-1"):
            status, body, _ = self.srv.api("GET", "/v1/accounts?limit=" + bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("limit", body["error"]["message"])

    def test_key_is_shown_once_and_works(self):
        acct = self.create_account()
        k = self.create_key(acct["id"], name="ci")
        self.assertRegex(k["secret"], KEY_RE)
        self.assertRegex(k["id"], r"^key_")
        self.assertEqual(k["account_id"], acct["id"])
        self.assertEqual(k["name"], "ci")
        self.assertIs(k["admin"], False)
        status, body, _ = self.srv.api("GET", "/v1/accounts/%s/api-keys" % acct["id"])
        self.assertEqual(status, 200)
        self.assertEqual([x["id"] for x in body["data"]], [k["id"]])
        self.assertNotIn("secret", body["data"][0])
        self.assertNotIn(k["secret"], str(body))
        # The new key acts for its own account.
        status, body, _ = self.srv.api("GET", "/v1/accounts/" + acct["id"], key=k["secret"])
        self.assertEqual(status, 200, body)
        # And never appears in the log.
        self.assertNotIn(k["secret"], self.srv.log_text())
        self.assertNotIn(self.srv.root_key, self.srv.log_text())

    def test_keys_are_different_each_time(self):
        acct = self.create_account()
        secrets = {self.create_key(acct["id"])["secret"] for _ in range(5)}
        self.assertEqual(len(secrets), 5)

    def test_key_for_missing_account_is_404(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts/acct_nope/api-keys", {})
        self.assertEqual(status, 404, body)

    def test_key_body_is_optional_and_checked(self):
        acct = self.create_account()
        status, body, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"])
        self.assertEqual(status, 201, body)
        status, body, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"],
                                       {"admin": "yes"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["fields"][0]["path"], "admin")

    def test_delete_key(self):
        acct = self.create_account()
        k = self.create_key(acct["id"])
        # Acting for the key's account.
        hdr = {"X-Workflux-Account": acct["id"]}
        status, body, _ = self.srv.api("DELETE", "/v1/api-keys/" + k["id"], headers=hdr)
        self.assertEqual(status, 204, body)
        self.assertEqual(body, "")
        status, body, _ = self.srv.api("GET", "/v1/accounts/" + acct["id"], key=k["secret"])
        self.assertEqual(status, 401)
        status, body, _ = self.srv.api("DELETE", "/v1/api-keys/" + k["id"], headers=hdr)
        self.assertEqual(status, 404)

    def test_delete_key_of_another_account_needs_acting_for_it(self):
        acct = self.create_account()
        k = self.create_key(acct["id"])
        status, body, _ = self.srv.api("DELETE", "/v1/api-keys/" + k["id"])
        self.assertEqual(status, 404, body)
        self.assertIn("X-Workflux-Account", body["error"]["message"])
        status, _, _ = self.srv.api("GET", "/v1/accounts/" + acct["id"], key=k["secret"])
        self.assertEqual(status, 200)

    def test_cannot_delete_the_key_in_use(self):
        status, body, _ = self.srv.api("GET", "/v1/accounts/acct_default/api-keys")
        self.assertEqual(status, 200)
        root = [k for k in body["data"] if k["admin"]]
        self.assertEqual(len(root), 1)
        status, body, _ = self.srv.api("DELETE", "/v1/api-keys/" + root[0]["id"])
        self.assertEqual(status, 409, body)

    def test_admin_key_of_a_new_account_is_admin(self):
        acct = self.create_account()
        k = self.create_key(acct["id"], admin=True)
        self.assertIs(k["admin"], True)
        status, body, _ = self.srv.api("GET", "/v1/accounts", key=k["secret"])
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main()
