"""Helpers of the OAuth, scope, portal and rate-limit tests: one server per
test class, form posts to /oauth/*, OAuth clients and tokens made through
the API."""
import base64
import unittest
import urllib.parse

from harness import Server


class SharedServerCase(unittest.TestCase):
    """One server (started with serve_args) for all the tests of a class,
    stopped after them and checked for a clean exit and sanitizer reports."""

    serve_args = []

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(args=list(cls.serve_args))
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        if code != 0 or report:
            raise AssertionError("serve exited %s\n%s" % (code, report))


def form_post(srv, path, fields, basic=None, headers=None, raw=None):
    """POSTs fields (dict or list of pairs) form-encoded to path; basic is
    (client_id, client_secret) for HTTP Basic (RFC 6749 §2.3.1). Returns
    (status, parsed JSON or text, headers)."""
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic is not None:
        pair = "%s:%s" % (urllib.parse.quote(basic[0], safe=""),
                          urllib.parse.quote(basic[1], safe=""))
        hdrs["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    hdrs.update(headers or {})
    body = raw if raw is not None else urllib.parse.urlencode(fields)
    return srv.api("POST", path, raw=body, key=False, headers=hdrs)


def new_client(srv, scopes=None, name="test", account=None):
    """Creates an OAuth client (with the root key) and returns its JSON."""
    body = {"name": name}
    if scopes is not None:
        body["scopes"] = scopes
    headers = {"X-Workflux-Account": account} if account else None
    status, c, _ = srv.api("POST", "/v1/oauth-clients", body, headers=headers)
    assert status == 201, c
    return c


def token(srv, client, scope=None):
    """A client_credentials grant; returns the token answer (asserting 200)."""
    fields = {"grant_type": "client_credentials"}
    if scope is not None:
        fields["scope"] = scope
    status, body, _ = form_post(srv, "/oauth/token", fields,
                                basic=(client["client_id"], client["client_secret"]))
    assert status == 200, body
    return body
