"""Identity and access against the real binary: first start with and without ADMIN_PASSWORD,
login/logout/session expiry and restart, API_TOKEN as bootstrap admin, tokens (personal,
integration, expiry, revocation), the permission matrix generated from GET /api/v1/endpoints,
namespace isolation both ways, secrets never in clear (database, logs, journal), audit rows,
signed webhooks with retries and a hanging receiver, rate limits, CSRF on cookie sessions.
Runs on SQLite, or on PostgreSQL when MK_TEST_PG_DSN is set (support/on_postgres.py).
Usage: identity_test.py <mockarty binary>"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402

BINARY = None
ADMIN_PW = "admin-pass-1234"
TOKEN = "bootstrap-s3cret"

# What each role may do, as docs/security.md states it; the matrix below checks every endpoint
# row against it. "admin" rows (and users:*, namespaces:write) are for administrators only.
ROLE_PERMS = {
    "viewer": {"mocks:read", "stores:read", "requests:read", "runs:read", "namespaces:read",
               "members:read"},
    "editor": {"mocks:read", "stores:read", "requests:read", "runs:read", "namespaces:read",
               "members:read", "mocks:write", "stores:write", "requests:write", "runs:write"},
}
ROLE_PERMS["owner"] = ROLE_PERMS["editor"] | {"members:write", "tokens:write", "webhooks:read",
                                              "webhooks:write", "audit:read"}
KNOWN_PERMS = ROLE_PERMS["owner"] | {"public", "self", "namespaces:write", "users:read",
                                     "users:write", "admin"}


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


class Server:
    """One node with helpers: as admin (API_TOKEN), login, users, tokens."""

    def __init__(self, env=None, workdir=None):
        base = {"API_TOKEN": TOKEN, "ADMIN_PASSWORD": ADMIN_PW, "RATE_LIMIT_LOGIN_PER_MINUTE": "0"}
        base.update(env or {})
        self.m = Mockarty(BINARY, env=base, workdir=workdir).start()

    def call(self, method, path, body=None, tok=TOKEN, headers=None, raw=None):
        h = dict(headers or {})
        if tok:
            h.update(bearer(tok))
        status, parsed, payload, resp = self.m.request(method, path, body=body, headers=h, raw=raw)
        return status, parsed, resp

    def status_only(self, method, path, tok=TOKEN):
        """The status of a call whose answer may be a stream that never ends."""
        conn = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=10)
        conn.request(method, path, headers=bearer(tok) if tok else {})
        status = conn.getresponse().status
        conn.close()
        return status, None, None

    def ok(self, method, path, body=None, tok=TOKEN, want=(200, 201)):
        status, parsed, _ = self.call(method, path, body, tok)
        if status not in want:
            raise AssertionError("%s %s -> %s %s" % (method, path, status, parsed))
        return parsed

    def login(self, login, password):
        status, parsed, resp = self.call("POST", "/api/v1/login",
                                         {"login": login, "password": password}, tok=None)
        return status, parsed, resp

    def user(self, login, password="pass-word-1", role=None, ns=None):
        u = self.ok("POST", "/api/v1/users", {"login": login, "password": password})
        if role:
            self.ok("PUT", "/api/v1/namespaces/%s/members/%s" % (ns, u["id"]), {"role": role})
        status, body, _ = self.login(login, password)
        assert status == 200, body
        return u["id"], body["token"]

    def stop(self):
        code, err = self.m.stop()
        return code, err


class IdentityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        s = cls.s
        for ns in ("team-a", "team-b"):
            s.ok("POST", "/api/v1/namespaces", {"name": ns})
        s.ok("POST", "/api/v1/mocks", {"id": "a-mock", "namespace": "team-a",
                                       "http": {"route": "/a", "httpMethod": "GET"},
                                       "response": {"statusCode": 200, "payload": {"a": 1}}})
        s.ok("POST", "/api/v1/mocks", {"id": "b-mock", "namespace": "team-b",
                                       "http": {"route": "/b", "httpMethod": "GET"},
                                       "response": {"statusCode": 200, "payload": {"b": 1}}})
        cls.ids, cls.toks = {}, {}
        for role in ("viewer", "editor", "owner"):
            cls.ids[role], cls.toks[role] = s.user("u-" + role, role=role, ns="team-a")
        cls.ids["bob"], cls.toks["bob"] = s.user("bob", role="editor", ns="team-b")

    @classmethod
    def tearDownClass(cls):
        code, err = cls.s.stop()
        problems = [l for l in err.splitlines() if "ERROR: AddressSanitizer" in l or
                    "runtime error" in l or "LeakSanitizer" in l]
        if problems or code not in (0, -15):
            raise AssertionError("server exit %s: %s" % (code, err[-3000:]))

    # --- login, sessions, API_TOKEN ---

    def test_login_logout_me(self):
        s = self.s
        status, body, resp = s.login("admin", ADMIN_PW)
        self.assertEqual(status, 200)
        self.assertTrue(body["token"].startswith("mks_"))
        self.assertEqual(body["user"]["login"], "admin")
        self.assertEqual(body["user"]["system_role"], "admin")
        self.assertIn("expires_at", body)
        self.assertIs(body["requires_password_change"], False)
        cookie = resp.getheader("Set-Cookie")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP here
        me = s.ok("GET", "/api/v1/me", tok=body["token"])
        self.assertEqual(me["user"]["login"], "admin")
        self.assertEqual(me["principal"]["kind"], "session")
        # the alias Mockarty's SDKs call
        status, body2, _ = s.call("POST", "/api/v1/auth/login",
                                  {"login": "admin", "password": ADMIN_PW}, tok=None)
        self.assertEqual(status, 200)
        s.ok("POST", "/api/v1/auth/logout", tok=body["token"])
        status, err, _ = s.call("GET", "/api/v1/me", tok=body["token"])
        self.assertEqual((status, err["code"]), (401, "unauthorized"))
        s.ok("GET", "/api/v1/me", tok=body2["token"])  # the other session lives on

    def test_same_answer_for_unknown_user_and_wrong_password(self):
        a = self.s.login("nobody-at-all", "whatever-123")
        b = self.s.login("admin", "wrong-password")
        self.assertEqual(a[0], 401)
        self.assertEqual(b[0], 401)
        self.assertEqual(a[1]["error"], b[1]["error"])
        self.assertEqual(a[1]["code"], "unauthorized")

    def test_api_token_and_missing_credentials(self):
        s = self.s
        self.assertEqual(s.call("GET", "/api/v1/mocks", tok=None)[0], 401)
        self.assertEqual(s.call("GET", "/api/v1/mocks", tok="mk_" + "0" * 64)[0], 401)
        self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=team-b")[0], 200)
        status, _, _ = s.call("GET", "/api/v1/mocks", tok=None, headers={"X-API-Key": TOKEN})
        self.assertEqual(status, 200)
        me = s.ok("GET", "/api/v1/me")
        self.assertEqual(me["principal"]["kind"], "api_token")
        # serving mocks stays open
        status, parsed, _, _ = s.m.request("GET", "/stubs/team-b/b")
        self.assertEqual((status, parsed), (200, {"b": 1}))

    def test_bad_input(self):
        s = self.s
        status, err, _ = s.call("POST", "/api/v1/login", raw=b"{not json", tok=None)
        self.assertEqual((status, err["code"]), (400, "validation"))
        status, err, _ = s.call("POST", "/api/v1/users", {"login": "x y", "password": "p" * 10})
        self.assertEqual(status, 400)
        self.assertIn("login", err["error"])
        status, err, _ = s.call("POST", "/api/v1/users", {"login": "short", "password": "p"})
        self.assertIn("password", err["error"])
        status, err, _ = s.call("PUT", "/api/v1/namespaces/team-a/members/%s" % self.ids["viewer"],
                                {"role": "superuser"})
        self.assertEqual(status, 400)
        self.assertIn("role", err["error"])
        status, err, _ = s.call("POST", "/api/v1/auth/tokens",
                                {"name": "x", "kind": "integration", "namespace": "no-such-ns",
                                 "role": "editor"})
        self.assertEqual(status, 400)
        self.assertIn("no-such-ns", err["error"])
        status, err, _ = s.call("POST", "/api/v1/auth/tokens",
                                {"name": "x", "kind": "integration", "namespace": "team-a",
                                 "role": "god"})
        self.assertEqual(status, 400)
        self.assertIn("role", err["error"])
        status, err, _ = s.call("POST", "/api/v1/auth/tokens",
                                {"name": "x", "expires_at": "yesterday"})
        self.assertEqual(status, 400)
        self.assertIn("expires_at", err["error"])
        # nothing of the above was stored
        names = [t["name"] for t in s.ok("GET", "/api/v1/auth/tokens")]
        self.assertNotIn("x", names)
        logins = [u["login"] for u in s.ok("GET", "/api/v1/users")]
        self.assertNotIn("short", logins)

    # --- tokens ---

    def test_personal_and_integration_tokens(self):
        s = self.s
        made = s.ok("POST", "/api/v1/auth/tokens",
                    {"name": "ci", "namespace": "team-a", "allowed_actions": ["mocks:read"]},
                    tok=self.toks["editor"])
        self.assertTrue(made["token"].startswith("mk_"))
        info = made["token_info"]
        self.assertEqual(info["user_login"], "u-editor")
        self.assertEqual(info["namespace"], "team-a")
        self.assertNotIn("hash", info)
        tok = made["token"]
        self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=team-a", tok=tok)[0], 200)
        # narrowed to reading, although its user may write
        self.assertEqual(s.call("POST", "/api/v1/mocks?namespace=team-a", {}, tok=tok)[0], 403)
        listed = s.ok("GET", "/api/v1/auth/tokens", tok=self.toks["editor"])
        self.assertEqual([t["id"] for t in listed], [info["id"]])
        self.assertTrue(listed[0]["last_used_at"])
        # integration tokens: owners mint them for their namespace, editors may not
        body = {"name": "runner", "kind": "integration", "namespace": "team-a", "role": "editor"}
        self.assertEqual(s.call("POST", "/api/v1/auth/tokens", body,
                                tok=self.toks["editor"])[0], 403)
        integ = s.ok("POST", "/api/v1/auth/tokens", body, tok=self.toks["owner"])
        itok = integ["token"]
        self.assertTrue(itok.startswith("mki_"))
        self.assertEqual(s.call("POST", "/api/v1/mocks?namespace=team-a",
                                {"id": "by-runner", "http": {"route": "/r"},
                                 "response": {"statusCode": 200}}, tok=itok)[0], 201)
        self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=team-b", tok=itok)[0], 403)
        self.assertEqual(s.call("GET", "/api/v1/mocks/b-mock", tok=itok)[0], 404)
        admin_scoped = {"name": "shared", "kind": "integration"}
        self.assertEqual(s.call("POST", "/api/v1/auth/tokens", admin_scoped,
                                tok=self.toks["owner"])[0], 403)
        shared = s.ok("POST", "/api/v1/auth/tokens", admin_scoped)["token"]
        self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=team-b", tok=shared)[0], 200)
        # revoke
        s.ok("DELETE", "/api/v1/auth/tokens/" + info["id"], tok=self.toks["editor"])
        status, err, _ = s.call("GET", "/api/v1/mocks?namespace=team-a", tok=tok)
        self.assertEqual(status, 401)
        self.assertIn("revoked", err["error"])
        # bob cannot see or revoke the owner's integration token
        self.assertEqual(s.call("DELETE", "/api/v1/auth/tokens/" + integ["token_info"]["id"],
                                tok=self.toks["bob"])[0], 404)
        # expiry
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        brief = s.ok("POST", "/api/v1/auth/tokens",
                     {"name": "brief", "expires_at": soon}, tok=self.toks["viewer"])["token"]
        self.assertEqual(s.call("GET", "/api/v1/me", tok=brief)[0], 200)
        time.sleep(3)
        status, err, _ = s.call("GET", "/api/v1/me", tok=brief)
        self.assertEqual(status, 401)
        self.assertIn("expired", err["error"])

    def test_deleted_users_session_ends(self):
        s = self.s
        uid, tok = s.user("temp-user", role="viewer", ns="team-a")
        self.assertEqual(s.call("GET", "/api/v1/me", tok=tok)[0], 200)
        s.ok("DELETE", "/api/v1/users/" + uid)
        status, err, _ = s.call("GET", "/api/v1/me", tok=tok)
        self.assertEqual(status, 401)

    def test_password_change(self):
        s = self.s
        uid, tok = s.user("pw-user", password="first-pass-1")
        path = "/api/v1/users/%s/password" % uid
        status, err, _ = s.call("POST", path, {"new_password": "second-pass-2"}, tok=tok)
        self.assertEqual(status, 400)  # the old one is required for one's own
        status, err, _ = s.call("POST", path, {"old_password": "wrong-pass-0",
                                               "new_password": "second-pass-2"}, tok=tok)
        self.assertEqual(status, 403)
        s.ok("POST", path, {"old_password": "first-pass-1", "new_password": "second-pass-2"},
             tok=tok)
        self.assertEqual(s.login("pw-user", "second-pass-2")[0], 200)
        s.ok("POST", path, {"new_password": "third-pass-33"})  # an administrator's reset
        self.assertEqual(s.login("pw-user", "third-pass-33")[0], 200)
        # others' passwords are none of a user's business
        self.assertEqual(s.call("POST", path, {"new_password": "x" * 12},
                                tok=self.toks["viewer"])[0], 404)

    # --- roles ---

    def fill(self, path, role):
        """A concrete path for a row: a real mock of team-a, team-a, the role's own user."""
        values = {"id": "a-mock", "chainId": "c1", "key": "k", "version": "1", "name": "t1",
                  "ns": "team-a", "user": "u_nobody"}
        if path.startswith("/api/v1/users/"):
            values["id"] = self.ids[role]
        if path.startswith("/api/v1/auth/tokens/") or "/webhooks/" in path:
            values["id"] = "none"
        return re.sub(r":(\w+)", lambda m: values.get(m.group(1), "x"), path)

    def test_permission_matrix(self):
        """Every row declares a permission the model knows; each role is refused (403) exactly
        the rows its role does not grant, in its own namespace."""
        s = self.s
        rows = s.ok("GET", "/api/v1/endpoints", tok=None)
        self.assertGreater(len(rows), 60)
        for r in rows:
            self.assertIn(r["permission"], KNOWN_PERMS, "%s %s" % (r["method"], r["path"]))
        checked = 0
        for role in ("viewer", "editor", "owner"):
            for r in rows:
                if r["path"] in ("/api/v1/auth/logout",):
                    continue  # would end nothing (a bearer token), covered elsewhere
                fixture = {"id": "a-mock", "namespace": "team-a",
                           "http": {"route": "/a", "httpMethod": "GET"},
                           "response": {"statusCode": 200, "payload": {"a": 1}}}
                s.ok("POST", "/api/v1/mocks", fixture)
                path = self.fill(r["path"], role)
                sep = "&" if "?" in path else "?"
                if r.get("stream"):  # a live stream: the status line tells
                    status, body, _ = s.status_only(r["method"], path + sep + "namespace=team-a",
                                                    tok=self.toks[role])
                else:
                    status, body, _ = s.call(r["method"], path + sep + "namespace=team-a",
                                             body={"ids": ["a-mock"]}
                                             if r["method"] != "GET" else None,
                                             tok=self.toks[role])
                perm = r["permission"]
                allowed = perm in ("public", "self") or perm in ROLE_PERMS[role]
                what = "%s: %s %s (%s) -> %s %s" % (role, r["method"], path, perm, status, body)
                if allowed:
                    self.assertNotIn(status, (401, 403), what)
                else:
                    self.assertEqual(status, 403, what)
                checked += 1
        self.assertGreater(checked, 180)
        s.ok("POST", "/api/v1/mocks/a-mock/restore", want=(200, 201, 400, 404, 409))

    def test_namespace_isolation_both_ways(self):
        s = self.s
        ed, bob = self.toks["editor"], self.toks["bob"]
        names = s.ok("GET", "/api/v1/namespaces", tok=ed)["namespaces"]
        self.assertIn("team-a", names)
        self.assertNotIn("team-b", names)
        self.assertNotIn("sandbox", names)
        self.assertEqual(s.ok("GET", "/api/v1/namespaces", tok=bob)["namespaces"], ["team-b"])
        self.assertEqual(len(s.ok("GET", "/api/v1/namespaces")["namespaces"]), 3)
        for tok, other_mock, other_ns in ((ed, "b-mock", "team-b"), (bob, "a-mock", "team-a")):
            self.assertEqual(s.call("GET", "/api/v1/mocks/" + other_mock, tok=tok)[0], 404)
            self.assertEqual(s.call("DELETE", "/api/v1/mocks/" + other_mock, tok=tok)[0], 404)
            self.assertEqual(s.call("GET", "/api/v1/mocks/%s/logs" % other_mock, tok=tok)[0], 404)
            self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=" + other_ns, tok=tok)[0],
                             403)
            self.assertEqual(s.call("POST", "/api/v1/mocks",
                                    {"namespace": other_ns, "http": {"route": "/x"},
                                     "response": {"statusCode": 200}}, tok=tok)[0], 403)
            self.assertEqual(s.call("GET", "/api/v1/stores/global?namespace=" + other_ns,
                                    tok=tok)[0], 403)
            self.assertEqual(s.call("GET", "/api/v1/requests?namespace=" + other_ns,
                                    tok=tok)[0], 403)
            self.assertEqual(s.call("GET", "/api/v1/namespaces/%s/members" % other_ns,
                                    tok=tok)[0], 404)
            # batches by id skip what the caller may not touch
            out = s.ok("DELETE", "/api/v1/mocks/batch", {"ids": [other_mock]}, tok=tok)
            self.assertEqual(s.ok("GET", "/api/v1/mocks/" + other_mock)["id"], other_mock)
            s.ok("POST", "/api/v1/mocks/copy-to-namespace",
                 {"ids": [other_mock], "targetNamespace": "team-a" if tok is ed else "team-b"},
                 tok=tok)
            del out
        # nobody copied anything across
        listed = s.ok("GET", "/api/v1/mocks?namespace=team-a&limit=1000")["items"]
        self.assertNotIn({"b": 1}, [m.get("response", {}).get("payload") for m in listed])
        # aggregates count only the caller's namespaces
        mine = s.ok("GET", "/api/v1/counts", tok=bob)["mocks"]
        team_b = s.ok("GET", "/api/v1/mocks?namespace=team-b&limit=1000")["total"]
        self.assertEqual(mine, team_b)
        self.assertLess(mine, s.ok("GET", "/api/v1/counts")["mocks"])
        # an editor has no role in sandbox: the default namespace is refused, not leaked
        self.assertEqual(s.call("GET", "/api/v1/mocks", tok=ed)[0], 403)
        self.assertEqual(s.call("POST", "/api/v1/mocks/batch?namespace=team-b",
                                [{"http": {"route": "/sneak"}, "response": {"statusCode": 200}}],
                                tok=ed)[0], 403)
        # folders and unmatched requests of another namespace are not shown or touched
        folder = s.ok("POST", "/api/v1/mock-folders", {"name": "b-folder", "namespace": "team-b"})
        self.assertNotIn(folder["id"], [f["id"] for f in s.ok("GET", "/api/v1/mock-folders",
                                                               tok=ed)])
        self.assertIn(folder["id"], [f["id"] for f in s.ok("GET", "/api/v1/mock-folders",
                                                           tok=bob)])
        self.assertEqual(s.call("PUT", "/api/v1/mock-folders/" + folder["id"], {"name": "x"},
                                tok=ed)[0], 404)
        self.assertEqual(s.call("DELETE", "/api/v1/mock-folders/" + folder["id"], tok=ed)[0], 404)
        s.m.request("GET", "/stubs/team-b/unmatched-path")
        undefined = s.ok("GET", "/api/v1/undefined-requests", tok=ed)
        self.assertNotIn("team-b", {u.get("namespace") for u in undefined})
        undefined = s.ok("GET", "/api/v1/undefined-requests", tok=bob)
        self.assertIn("team-b", {u.get("namespace") for u in undefined})
        b_entry = [u["id"] for u in undefined if u.get("namespace") == "team-b"][0]
        self.assertEqual(s.call("PATCH", "/api/v1/undefined-requests/%s/ignore" % b_entry,
                                tok=ed)[0], 404)
        self.assertEqual(s.call("POST", "/api/v1/undefined-requests/%s/create-mock" % b_entry,
                                tok=ed)[0], 404)
        self.assertEqual(s.ok("DELETE", "/api/v1/undefined-requests", {"ids": [b_entry]},
                              tok=ed)["deleted"], 0)
        self.assertEqual(s.call("DELETE", "/api/v1/undefined-requests/all", tok=ed)[0], 403)
        self.assertIn(b_entry, [u["id"] for u in s.ok("GET", "/api/v1/undefined-requests",
                                                      tok=bob)])

    # --- secrets, journal ---

    def test_secrets_never_in_clear(self):
        s = self.s
        made = s.ok("POST", "/api/v1/auth/tokens", {"name": "secret-check", "kind": "integration"})
        tok = made["token"]
        status, body, _ = s.login("u-viewer", "pass-word-1")
        sess = body["token"]
        # calls carrying them land in the journal, redacted
        s.m.request("GET", "/stubs/team-a/a", headers={"Authorization": "Bearer " + tok,
                                                       "X-API-Key": TOKEN,
                                                       "Cookie": "mockarty_session=" + sess})
        entries = s.ok("GET", "/api/v1/requests?namespace=team-a&limit=50")["requests"]
        text = json.dumps(entries)
        self.assertIn("[redacted]", text)
        for secret in (tok, TOKEN, sess):
            self.assertNotIn(secret, text)
        time.sleep(0.2)
        dump = self.database_text()
        for secret in (tok, sess, ADMIN_PW, "pass-word-1"):
            self.assertNotIn(secret, dump, "a secret in the database")
        self.assertIn("$argon2id$", dump)
        self.assertIn(hashlib.sha256(tok.encode()).hexdigest(), dump)
        logs = s.m.read_stderr()
        for secret in (tok, sess, ADMIN_PW):
            self.assertNotIn(secret, logs)

    def database_text(self):
        env = self.s.m.env
        if env.get("DB_USE") == "postgres":
            out = subprocess.run(["psql", env["DB_DSN"], "-Atc",
                                  "SELECT kind, id, convert_from(json, 'UTF8') FROM docs"],
                                 capture_output=True, text=True, check=True)
            return out.stdout
        data = b""
        for suffix in ("", "-wal"):
            path = env["DB_PATH"] + suffix
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data += f.read()
        return data.decode("latin-1")

    # --- audit ---

    def test_audit(self):
        s = self.s
        ed = self.toks["editor"]
        s.ok("POST", "/api/v1/mocks", {"id": "audited", "namespace": "team-a",
                                       "http": {"route": "/audited"},
                                       "response": {"statusCode": 200}}, tok=ed)
        status, _, _ = s.call("POST", "/api/v1/mocks", {"id": "broken", "namespace": "team-a",
                                                        "http": {"route": 5}}, tok=ed)
        self.assertEqual(status, 400)
        s.ok("DELETE", "/api/v1/mocks/audited", tok=ed)
        self.s.login("u-editor", "not-the-password")
        rows = s.ok("GET", "/api/v1/audit?namespace=team-a&actor=u-editor&limit=50")["entries"]
        actions = [(r["action"], r["object_id"]) for r in rows]
        self.assertIn(("POST /api/v1/mocks", ""), actions)
        self.assertIn(("DELETE /api/v1/mocks/:id", "audited"), actions)
        create = [r for r in rows if r["action"] == "POST /api/v1/mocks"][0]
        self.assertEqual(create["summary"]["id"], "audited")
        self.assertTrue(create["credential"].startswith("session:"))
        self.assertEqual(create["namespace"], "team-a")
        self.assertNotIn("broken", json.dumps(rows))  # the failed write left no row
        failed = s.ok("GET", "/api/v1/audit?action=login.failed")["entries"]
        self.assertTrue(any(r["actor"] == "u-editor" for r in failed))
        # owners read their namespace's rows, not others'; viewers none
        own = s.ok("GET", "/api/v1/audit?limit=1000", tok=self.toks["owner"])["entries"]
        self.assertTrue(own)
        self.assertEqual({r["namespace"] for r in own}, {"team-a"})
        self.assertEqual(s.call("GET", "/api/v1/audit?namespace=team-b",
                                tok=self.toks["owner"])[0], 403)
        self.assertEqual(s.call("GET", "/api/v1/audit", tok=self.toks["viewer"])[0], 403)

    # --- CSRF ---

    def test_cookie_writes_need_same_origin(self):
        s = self.s
        status, body, _ = s.login("u-editor", "pass-word-1")
        cookie = {"Cookie": "mockarty_session=" + body["token"]}
        self.assertEqual(s.call("GET", "/api/v1/mocks?namespace=team-a", tok=None,
                                headers=cookie)[0], 200)
        mock = {"namespace": "team-a", "http": {"route": "/csrf"}, "response": {"statusCode": 200}}
        status, err, _ = s.call("POST", "/api/v1/mocks", mock, tok=None, headers=cookie)
        self.assertEqual(status, 403)
        self.assertIn("CSRF", err["error"])
        evil = dict(cookie, Origin="http://evil.example")
        self.assertEqual(s.call("POST", "/api/v1/mocks", mock, tok=None, headers=evil)[0], 403)
        same = dict(cookie, Origin="http://127.0.0.1:%d" % s.m.port)
        self.assertEqual(s.call("POST", "/api/v1/mocks", mock, tok=None, headers=same)[0], 201)


class Receiver:
    """A webhook receiver: answers from a script (500, 500, then 200) or never, checks each
    delivery's signature with the secret."""

    def __init__(self, script=(), hang=False):
        self.script = list(script)
        self.hang = hang
        self.got = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.got.append((dict(self.headers), body))
                    status = outer.script.pop(0) if outer.script else 200
                if outer.hang:
                    time.sleep(30)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.s.ok("POST", "/api/v1/namespaces", {"name": "hooks"})
        cls.s.ok("POST", "/api/v1/namespaces", {"name": "slow"})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def wait_deliveries(self, ns, hook_id, n, timeout=15):
        until = time.time() + timeout
        while time.time() < until:
            rows = self.s.ok("GET", "/api/v1/namespaces/%s/webhooks/%s/deliveries" % (ns, hook_id))
            if len(rows) >= n:
                return rows
            time.sleep(0.1)
        self.fail("only %d deliveries" % len(rows))

    def test_signed_with_retries(self):
        s = self.s
        rec = Receiver(script=[500, 500, 200])
        try:
            secret = "a-secret-of-sixteen+"
            hook = s.ok("POST", "/api/v1/namespaces/hooks/webhooks",
                        {"url": rec.url, "events": ["mock.created", "mock.deleted"],
                         "secret": secret, "retries": 3})
            self.assertEqual(hook["secret"], secret)
            listed = s.ok("GET", "/api/v1/namespaces/hooks/webhooks")
            self.assertNotIn("secret", listed[0])
            s.ok("POST", "/api/v1/mocks", {"id": "hooked", "namespace": "hooks",
                                           "http": {"route": "/h"},
                                           "response": {"statusCode": 200}})
            rows = self.wait_deliveries("hooks", hook["id"], 3)
            self.assertEqual([r["status"] for r in reversed(rows)], [500, 500, 200])
            self.assertTrue(rows[0]["ok"] and rows[0]["final"])
            self.assertEqual(len(rec.got), 3)
            for headers, body in rec.got:
                want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                self.assertEqual(headers["X-Mockarty-Signature"], want)
                self.assertEqual(headers["X-Mockarty-Event"], "mock.created")
                payload = json.loads(body)
                self.assertEqual(payload["data"]["id"], "hooked")
                self.assertEqual(payload["namespace"], "hooks")
            # an update is not subscribed; a delete is
            s.ok("POST", "/api/v1/mocks", {"id": "hooked", "namespace": "hooks",
                                           "http": {"route": "/h2"},
                                           "response": {"statusCode": 200}})
            s.ok("DELETE", "/api/v1/mocks/hooked")
            rows = self.wait_deliveries("hooks", hook["id"], 4)
            self.assertEqual(rows[0]["event"], "mock.deleted")
            time.sleep(0.5)
            self.assertEqual(len(rec.got), 4)
        finally:
            rec.close()

    def test_hanging_receiver_does_not_slow_the_api(self):
        s = self.s
        rec = Receiver(hang=True)
        try:
            s.ok("POST", "/api/v1/namespaces/slow/webhooks", {"url": rec.url, "retries": 2})
            t0 = time.time()
            for i in range(20):
                s.ok("POST", "/api/v1/mocks", {"id": "slow-%d" % i, "namespace": "slow",
                                               "http": {"route": "/s%d" % i},
                                               "response": {"statusCode": 200}})
            took = time.time() - t0
            print("  20 mock creates with a hanging webhook target: %.0f ms" % (took * 1000))
            self.assertLess(took, 5.0)
            time.sleep(0.5)
            self.assertGreaterEqual(len(rec.got), 1)  # it was called, and is hanging
        finally:
            rec.close()

    def test_bad_webhooks(self):
        s = self.s
        for body, field in (({"url": "ftp://x"}, "url"), ({"url": "http://x", "events": ["boom"]},
                                                          "events"),
                            ({"url": "http://x", "secret": "short"}, "secret")):
            status, err, _ = s.call("POST", "/api/v1/namespaces/hooks/webhooks", body)
            self.assertEqual(status, 400)
            self.assertIn(field, err["error"])
        self.assertEqual(s.call("POST", "/api/v1/namespaces/nope/webhooks",
                                {"url": "http://x"})[0], 404)


class FirstStartTest(unittest.TestCase):
    def test_generated_password_printed_once(self):
        m = Mockarty(BINARY, env={"AUTH_REQUIRED": "true"}).start()
        try:
            line = m.proc.stdout.readline().decode()
            pw = re.search(r'created user "admin" with password (\w+)', line).group(1)
            status, body, _, _ = m.request("POST", "/api/v1/login",
                                           {"login": "admin", "password": pw})
            self.assertEqual(status, 200)
            self.assertEqual(m.request("GET", "/api/v1/mocks")[0], 401)
            self.assertEqual(m.request("GET", "/api/v1/me",
                                       headers=bearer(body["token"]))[0], 200)
            code, err = m.stop()
            self.assertNotIn(pw, err)
            m.start()
            rest = m.proc.stdout.readline().decode()
            self.assertNotIn("created user", rest)
            # the session outlived the restart
            self.assertEqual(m.request("GET", "/api/v1/me",
                                       headers=bearer(body["token"]))[0], 200)
        finally:
            m.stop()

    def test_admin_password_and_session_expiry(self):
        # The TTL leaves room for a slow argon2id under the sanitizers on a loaded machine.
        m = Mockarty(BINARY, env={"ADMIN_PASSWORD": ADMIN_PW, "SESSION_TTL": "6s",
                                  "HTTP_MAX_BODY_BYTES": "4096"}).start()
        try:
            self.assertNotIn("created user", m.proc.stdout.readline().decode())
            # an oversized body is refused before anyone reads it
            status, _, _, _ = m.request("POST", "/api/v1/login", raw=b"x" * 10000)
            self.assertEqual(status, 413)
            self.assertEqual(m.request("GET", "/api/v1/mocks")[0], 401)  # required (auto)
            status, body, _, _ = m.request("POST", "/api/v1/login",
                                           {"login": "admin", "password": ADMIN_PW})
            self.assertEqual(status, 200)
            tok = body["token"]
            self.assertEqual(m.request("GET", "/api/v1/me", headers=bearer(tok))[0], 200)
            time.sleep(6.5)
            status, err, _, _ = m.request("GET", "/api/v1/me", headers=bearer(tok))
            self.assertEqual(status, 401)
            self.assertIn("session", err["error"])  # "expired", or "ended" once pruned
        finally:
            m.stop()


class RateLimitTest(unittest.TestCase):
    def test_login_burst_token_limit_and_failed_logins(self):
        s = Server(env={"RATE_LIMIT_LOGIN_PER_MINUTE": "5"})
        try:
            statuses, last = [], None
            for _ in range(8):
                status, body, resp = s.login("admin", "wrong-password")
                statuses.append(status)
                if status == 429:
                    last = (body, resp.getheader("Retry-After"))
            self.assertEqual(statuses[:5], [401] * 5)
            self.assertEqual(statuses[5:], [429] * 3)
            self.assertEqual(last[0]["code"], "rate_limit")
            self.assertGreaterEqual(int(last[1]), 1)
            made = s.ok("POST", "/api/v1/auth/tokens",
                        {"name": "limited", "kind": "integration",
                         "rate_limit_per_minute": 3})["token"]
            codes = [s.call("GET", "/api/v1/me", tok=made)[0] for _ in range(5)]
            self.assertEqual(codes, [200, 200, 200, 429, 429])
            hourly = s.ok("POST", "/api/v1/auth/tokens",
                          {"name": "hourly", "kind": "integration",
                           "rate_limit_per_hour": 2})["token"]
            codes = [s.call("GET", "/api/v1/me", tok=hourly)[0] for _ in range(3)]
            self.assertEqual(codes, [200, 200, 429])
            status, err, resp = s.call("GET", "/api/v1/me", tok=hourly)
            self.assertIn("per hour", err["error"])
            self.assertGreater(int(resp.getheader("Retry-After")), 60)
        finally:
            s.stop()
        # one user's repeated failures slow that user down (per-address limit off)
        s = Server()
        try:
            s.user("victim", password="victim-pass-1")
            codes = [s.login("victim", "bad-guess-000")[0] for _ in range(7)]
            self.assertEqual(codes[:5], [401] * 5)
            self.assertEqual(codes[5], 429)  # refused at once, the password unchecked
            status, body, resp = s.login("victim", "victim-pass-1")
            self.assertEqual(status, 429)  # even the right password waits
            self.assertTrue(resp.getheader("Retry-After"))
            rows = s.ok("GET", "/api/v1/audit?action=login")["entries"]
            self.assertIn("login.throttled", {r["action"] for r in rows})
        finally:
            s.stop()


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
