"""An OAuth 2.0 client that no one here wrote: Debian's python3-oauthlib and
python3-requests-oauthlib, run with Debian's own /usr/bin/python3, get a token
by the client-credentials grant (HTTP Basic, then the body), call the API,
refresh the token (rotation) and call the API again."""
import json
import os
import subprocess
import unittest

from harness import Server
from oauthutil import new_client

DEBIAN_PYTHON = "/usr/bin/python3"

# Runs under /usr/bin/python3 with only Debian's packages; prints one JSON line.
CLIENT = r'''
import json, sys
from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
import oauthlib, requests_oauthlib

base, client_id, secret = sys.argv[1:4]
out = {"oauthlib": oauthlib.__version__, "requests_oauthlib": requests_oauthlib.__version__}

# client_secret_basic, as RFC 6749 §2.3.1 recommends.
s = OAuth2Session(client=BackendApplicationClient(client_id=client_id),
                  scope=["events:write", "events:read", "endpoints:read"])
tok = s.fetch_token(base + "/oauth/token", auth=HTTPBasicAuth(client_id, secret))
out["token"] = {k: tok.get(k) for k in ("token_type", "expires_in", "scope")}
r = s.post(base + "/v1/events", json={"event": "conversation.started",
           "data": {"conversation_id": "c1", "agent_id": "a1", "channel": "web"}})
out["publish"] = [r.status_code, r.json()]
r = s.get(base + "/v1/events", params={"limit": 5})
out["list"] = [r.status_code, [e["id"] for e in r.json()["data"]]]
r = s.get(base + "/v1/deliveries")
out["outside_scope"] = [r.status_code, r.json()["error"]["message"]]

# The refresh_token grant; the refresh token rotates.
old_access, old_refresh = tok["access_token"], tok["refresh_token"]
tok2 = s.refresh_token(base + "/oauth/token", auth=HTTPBasicAuth(client_id, secret))
out["rotated"] = [tok2["access_token"] != old_access, tok2["refresh_token"] != old_refresh]
r = s.get(base + "/v1/endpoints")
out["after_refresh"] = r.status_code

# client_secret_post: credentials in the body.
s2 = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
tok3 = s2.fetch_token(base + "/oauth/token", client_id=client_id, client_secret=secret,
                      include_client_id=True)
out["post_scope"] = tok3.get("scope")
r = s2.get(base + "/v1/endpoints")
out["post_call"] = r.status_code

# A wrong secret: oauthlib raises the server's RFC 6749 §5.2 error.
try:
    OAuth2Session(client=BackendApplicationClient(client_id=client_id)).fetch_token(
        base + "/oauth/token", auth=HTTPBasicAuth(client_id, secret + "x"))
    out["wrong_secret"] = None
except Exception as e:
    out["wrong_secret"] = [type(e).__name__, getattr(e, "error", None)]
print(json.dumps(out))
'''


@unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "needs Debian's /usr/bin/python3")
class OAuthlibClient(unittest.TestCase):
    def setUp(self):
        self.srv = Server(test=self)
        self.srv.start()

    def test_oauthlib_gets_refreshes_and_calls(self):
        c = new_client(self.srv, ["events:write", "events:read", "endpoints:read"], name="oauthlib")
        # Debian's python alone: no PYTHONPATH or user site of the test runner's python.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON") and not k.startswith("FLUXHOOK_")}
        env["PYTHONNOUSERSITE"] = "1"
        # The API listens on plain HTTP on loopback (TLS is a front proxy's job); oauthlib
        # refuses http:// unless told, with its own documented switch.
        env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        p = subprocess.run([DEBIAN_PYTHON, "-c", CLIENT, self.srv.url, c["client_id"],
                            c["client_secret"]], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["token"]["token_type"], "Bearer")
        self.assertEqual(out["token"]["expires_in"], 3600)
        self.assertEqual(out["token"]["scope"], ["events:write", "events:read", "endpoints:read"])
        self.assertEqual(out["publish"][0], 202, out)
        self.assertIn(out["publish"][1]["id"], out["list"][1])
        self.assertEqual(out["outside_scope"][0], 403)
        self.assertIn("deliveries:read", out["outside_scope"][1])
        self.assertEqual(out["rotated"], [True, True])
        self.assertEqual(out["after_refresh"], 200)
        self.assertEqual(out["post_call"], 200)
        self.assertEqual(out["wrong_secret"][1], "invalid_client", out)
        self.assertIn("token issued", self.srv.log_text())


if __name__ == "__main__":
    unittest.main()
