"""Mockarty SDK compatibility: the requests Mockarty's public SDKs send (paths, methods, headers,
JSON shapes, as in mockarty/py-sdk's api/*.py and models), against the real admin binary, and the
answers decoded the way those SDKs decode them. A failure here is a user's SDK call that breaks.

usage: sdk_compat_test.py path/to/mockarty
"""
import http.client
import json
import os
import re
import shutil
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402

BINARY = None
TOKEN = "sdk-compat-token"


class SdkError(Exception):
    def __init__(self, status, body):
        super().__init__("%s %s" % (status, body))
        self.status = status
        self.body = body


class Client:
    """Sends what the SDK's SyncAPIBase._request sends: Content-Type and Accept JSON, X-Namespace,
    Authorization: Bearer; params as a query string; raises on status >= 400 like
    raise_for_status (reading error/code/request_id)."""

    def __init__(self, port, namespace="sandbox", api_key=TOKEN):
        self.port = port
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "X-Namespace": namespace}
        if api_key:
            self.headers["Authorization"] = "Bearer " + api_key

    def request(self, method, path, json_body=None, params=None, content=None):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        data = content
        if json_body is not None:
            data = json.dumps(json_body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=data, headers=self.headers)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        if r.status >= 400:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            raise SdkError(r.status, body)
        return r, raw

    def json(self, *a, **kw):
        r, raw = self.request(*a, **kw)
        return json.loads(raw) if raw else None


def http_mock(mid, route, method="GET", payload=None, **extra):
    d = {"id": mid, "http": {"route": route, "httpMethod": method},
         "response": {"statusCode": 200, "payload": payload if payload is not None else {"ok": True}}}
    d.update(extra)
    return d


class SdkCompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = Mockarty(BINARY, env={"API_TOKEN": TOKEN}).start()
        cls.c = Client(cls.m.port)

    @classmethod
    def tearDownClass(cls):
        code, err = cls.m.stop()
        shutil.rmtree(cls.m.dir, ignore_errors=True)
        assert code == 0 and "LeakSanitizer" not in err and "runtime error" not in err, err

    def call(self, method, path, headers=None):
        """A plain client of the mocked service (no SDK headers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=10)
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        return r.status, raw

    # --- MockAPI ---

    def test_mock_create_get_list_patch_delete_restore_purge(self):
        c = self.c
        saved = c.json("POST", "/api/v1/mocks", http_mock("sdk-user", "/api/users/:id",
                                                         payload={"id": "$.pathParam.id"}))
        self.assertEqual(saved["overwritten"], False)
        self.assertEqual(saved["mock"]["id"], "sdk-user")
        self.assertIn("useCounter", saved["mock"])
        self.assertEqual(self.call("GET", "/api/users/42"), (200, b'{"id":"42"}'))
        got = c.json("GET", "/api/v1/mocks/sdk-user")
        self.assertEqual(got["http"]["route"], "/api/users/:id")
        self.assertEqual(got["useCounter"], 1)
        lst = c.json("GET", "/api/v1/mocks", params={"offset": 0, "limit": 50,
                                                     "namespace": "sandbox"})
        self.assertIn("sdk-user", [m["id"] for m in lst["items"]])
        again = c.json("POST", "/api/v1/mocks", http_mock("sdk-user", "/api/users/:id",
                                                         payload={"v": 2}))
        self.assertTrue(again["overwritten"])
        patched = c.json("PATCH", "/api/v1/mocks/sdk-user", {"tags": ["a"]})
        self.assertEqual(patched["tags"], ["a"])
        c.request("DELETE", "/api/v1/mocks/sdk-user")
        self.assertEqual(self.call("GET", "/api/users/42")[0], 404)
        c.request("POST", "/api/v1/mocks/sdk-user/restore")
        self.assertEqual(self.call("GET", "/api/users/42"), (200, b'{"v":2}'))
        c.request("DELETE", "/api/v1/mocks/sdk-user/purge")
        with self.assertRaises(SdkError) as e:
            c.request("GET", "/api/v1/mocks/sdk-user")
        self.assertEqual(e.exception.status, 404)
        self.assertEqual(e.exception.body["code"], "not_found")

    def test_versions(self):
        c = self.c
        c.json("POST", "/api/v1/mocks", http_mock("sdk-ver", "/ver", payload={"v": 1}))
        c.json("POST", "/api/v1/mocks", http_mock("sdk-ver", "/ver", payload={"v": 2}))
        c.json("PATCH", "/api/v1/mocks/sdk-ver", {"response": {"payload": {"v": 3}}})
        versions = c.json("GET", "/api/v1/mocks/sdk-ver/versions")
        self.assertIsInstance(versions, list)
        self.assertEqual([v["response"]["payload"]["v"] for v in versions], [2, 1])
        self.assertEqual([v["version"] for v in versions], [2, 1])
        v1 = c.json("GET", "/api/v1/mocks/sdk-ver/versions/1")
        self.assertEqual(v1["response"]["payload"], {"v": 1})
        c.request("POST", "/api/v1/mocks/sdk-ver/versions/1/restore")
        self.assertEqual(self.call("GET", "/ver"), (200, b'{"v":1}'))
        self.assertEqual(len(c.json("GET", "/api/v1/mocks/sdk-ver/versions")), 3)
        with self.assertRaises(SdkError) as e:
            c.request("GET", "/api/v1/mocks/sdk-ver/versions/99")
        self.assertEqual(e.exception.status, 404)

    def test_batches_tags_move_copy(self):
        c = self.c
        c.request("POST", "/api/v1/mocks/batch", {"mocks": [http_mock("sdk-b1", "/b1"),
                                                            http_mock("sdk-b2", "/b2")]})
        c.request("PATCH", "/api/v1/mocks/batch/tags", {"ids": ["sdk-b1", "sdk-b2"],
                                                        "tags": ["x", "y"]})
        self.assertEqual(c.json("GET", "/api/v1/mocks/sdk-b2")["tags"], ["x", "y"])
        c.request("DELETE", "/api/v1/mocks/batch", {"ids": ["sdk-b1", "sdk-b2"]})
        self.assertEqual(self.call("GET", "/b1")[0], 404)
        c.request("POST", "/api/v1/mocks/batch/restore", {"ids": ["sdk-b1", "sdk-b2"]})
        self.assertEqual(self.call("GET", "/b1")[0], 200)
        folder = c.json("POST", "/api/v1/mock-folders", {"name": "payments"})
        c.request("PATCH", "/api/v1/mocks/batch/move", {"ids": ["sdk-b1"], "folderId": folder["id"]})
        self.assertEqual(c.json("GET", "/api/v1/mocks/sdk-b1")["folderId"], folder["id"])
        c.request("PATCH", "/api/v1/mocks/batch/move", {"ids": ["sdk-b1"], "folderId": None})
        self.assertNotIn("folderId", c.json("GET", "/api/v1/mocks/sdk-b1"))
        c.request("POST", "/api/v1/mocks/copy-to-namespace",
                  {"ids": ["sdk-b1"], "targetNamespace": "copyns"})
        self.assertEqual(self.call("GET", "/stubs/copyns/b1")[0], 200)
        c.request("POST", "/api/v1/namespaces/copy-mocks",
                  {"sourceNamespace": "sandbox", "targetNamespace": "copyall",
                   "mockIds": ["sdk-b2"]})
        self.assertEqual(self.call("GET", "/stubs/copyall/b2")[0], 200)
        self.assertEqual(self.call("GET", "/stubs/copyall/b1")[0], 404)
        self.assertIn("copyall", c.json("GET", "/api/v1/namespaces")["namespaces"])

    def test_chain_and_logs(self):
        c = self.c
        c.json("POST", "/api/v1/mocks", http_mock("sdk-c1", "/c1", chainId="flow"))
        c.json("POST", "/api/v1/mocks", http_mock("sdk-c2", "/c2", chainId="flow"))
        chain = c.json("GET", "/api/v1/mocks/chains/flow")
        self.assertIsInstance(chain, list)
        self.assertEqual(sorted(m["id"] for m in chain), ["sdk-c1", "sdk-c2"])
        self.call("GET", "/c1")
        logs = c.json("GET", "/api/v1/mocks/sdk-c1/logs", params={"offset": 0, "limit": 50})
        self.assertEqual(logs["total"], 1)
        c.request("DELETE", "/api/v1/mocks/sdk-c1/logs")
        self.assertEqual(c.json("GET", "/api/v1/mocks/sdk-c1/logs")["total"], 0)
        c.request("DELETE", "/api/v1/mocks/chains/flow")
        self.assertEqual(c.json("GET", "/api/v1/mocks/chains/flow"), [])

    def test_cstore_without_chain_id(self):
        # Mockarty's own store examples extract into cStore without a chainId.
        c = self.c
        c.json("POST", "/api/v1/mocks", {
            "id": "sdk-cs", "http": {"route": "/cs/login", "httpMethod": "POST"},
            "extract": {"cStore": {"token": "$.req.token"}},
            "response": {"statusCode": 200, "payload": {"ok": True}}})

    # --- NamespaceAPI, StoreAPI ---

    def test_namespaces_and_stores(self):
        c = self.c
        c.request("POST", "/api/v1/namespaces", {"name": "team-a"})
        self.assertIn("team-a", c.json("GET", "/api/v1/namespaces")["namespaces"])
        c.request("POST", "/api/v1/stores/global", {"key": "k", "value": {"n": 1}})
        self.assertEqual(c.json("GET", "/api/v1/stores/global")["k"], {"n": 1})
        c.request("DELETE", "/api/v1/stores/global/" + urllib.parse.quote("k", safe=""))
        self.assertNotIn("k", c.json("GET", "/api/v1/stores/global"))
        chain = urllib.parse.quote("order/1", safe="")
        c.request("POST", "/api/v1/stores/chain/" + chain, {"key": "s", "value": "paid"})
        self.assertEqual(c.json("GET", "/api/v1/stores/chain/" + chain), {"s": "paid"})
        c.request("DELETE", "/api/v1/stores/chain/%s/%s" % (chain, "s"))
        self.assertEqual(c.json("GET", "/api/v1/stores/chain/" + chain), {})

    # --- UndefinedAPI ---

    def test_undefined_requests(self):
        c = self.c
        self.call("GET", "/nothing/here")
        self.call("GET", "/nothing/here")
        self.call("POST", "/nothing/else")
        items = c.json("GET", "/api/v1/undefined-requests")
        self.assertIsInstance(items, list)
        mine = {(i["method"], i["path"]): i for i in items if i["path"].startswith("/nothing")}
        here = mine[("GET", "/nothing/here")]
        self.assertEqual(here["hitCount"], 2)
        self.assertTrue(here["id"])
        c.request("PATCH", "/api/v1/undefined-requests/%s/ignore" % here["id"])
        items = c.json("GET", "/api/v1/undefined-requests")
        self.assertTrue([i for i in items if i["id"] == here["id"]][0]["ignored"])
        made = c.json("POST", "/api/v1/undefined-requests/%s/create-mock" % here["id"])
        self.assertEqual(made["http"]["route"], "/nothing/here")
        self.assertEqual(self.call("GET", "/nothing/here")[0], 200)
        other = mine[("POST", "/nothing/else")]
        c.request("DELETE", "/api/v1/undefined-requests", {"ids": [other["id"]]})
        self.assertNotIn(other["id"], [i["id"] for i in c.json("GET", "/api/v1/undefined-requests")])
        self.call("GET", "/nothing/third")
        c.request("DELETE", "/api/v1/undefined-requests/all")
        self.assertEqual(c.json("GET", "/api/v1/undefined-requests"), [])

    # --- TagAPI, FolderAPI, TemplateAPI ---

    def test_tags(self):
        c = self.c
        created = c.json("POST", "/api/v1/tags", {"tag": "beta"})
        self.assertEqual(created["tag"], "beta")
        c.json("POST", "/api/v1/mocks", http_mock("sdk-tag", "/tagged", tags=["alpha"]))
        tags = c.json("GET", "/api/v1/tags")
        self.assertIsInstance(tags, list)
        self.assertTrue({"alpha", "beta"} <= set(tags))

    def test_folders(self):
        c = self.c
        root = c.json("POST", "/api/v1/mock-folders", {"name": "root"})
        child = c.json("POST", "/api/v1/mock-folders", {"name": "child", "parentId": root["id"]})
        self.assertEqual(child["parentId"], root["id"])
        self.assertIsInstance(child["createdAt"], str)
        renamed = c.json("PUT", "/api/v1/mock-folders/" + child["id"], {"name": "kid"})
        self.assertEqual(renamed["name"], "kid")
        with self.assertRaises(SdkError) as e:
            c.request("PATCH", "/api/v1/mock-folders/%s/move" % root["id"],
                      {"parentId": child["id"]})
        self.assertEqual(e.exception.status, 400)
        moved = c.json("PATCH", "/api/v1/mock-folders/%s/move" % child["id"], {"parentId": None})
        self.assertIsNone(moved["parentId"])
        c.json("POST", "/api/v1/mocks", http_mock("sdk-inf", "/inf", folderId=child["id"]))
        listed = {f["id"]: f for f in c.json("GET", "/api/v1/mock-folders")}
        self.assertEqual(listed[child["id"]]["mockCount"], 1)
        c.request("DELETE", "/api/v1/mock-folders/" + child["id"])
        self.assertNotIn(child["id"], [f["id"] for f in c.json("GET", "/api/v1/mock-folders")])
        self.assertNotIn("folderId", c.json("GET", "/api/v1/mocks/sdk-inf"))

    def test_templates(self):
        c = self.c
        name = urllib.parse.quote("users/list.json", safe="")
        c.request("POST", "/api/v1/templates/" + name, content=b'{"users":[1,2]}')
        names = c.json("GET", "/api/v1/templates")["templates"]
        self.assertIn("users/list.json", names)
        r, raw = c.request("GET", "/api/v1/templates/" + name)
        self.assertEqual(raw, b'{"users":[1,2]}')
        c.json("POST", "/api/v1/mocks", {
            "id": "sdk-tpl", "http": {"route": "/tpl", "httpMethod": "GET"},
            "response": {"statusCode": 200, "payloadTemplatePath": "users/list.json"}})
        self.assertEqual(self.call("GET", "/tpl"), (200, b'{"users":[1,2]}'))
        with self.assertRaises(SdkError) as e:
            c.request("POST", "/api/v1/mocks", {
                "http": {"route": "/tpl2"},
                "response": {"payloadTemplatePath": "missing.json"}})
        self.assertIn("missing.json", e.exception.body["error"])
        c.request("DELETE", "/api/v1/templates/" + name)
        self.assertNotIn("users/list.json", c.json("GET", "/api/v1/templates")["templates"])

    # --- StatsAPI, HealthAPI ---

    def test_stats_counts_status_features(self):
        c = self.c
        self.call("GET", "/nothing/stats")
        stats = c.json("GET", "/api/v1/stats")
        for k in ("totalRequests", "matchedRequests", "unmatchedRequests", "avgLatencyMs",
                  "p95LatencyMs", "p99LatencyMs", "errorRate", "uptime"):
            self.assertIn(k, stats)
        self.assertGreaterEqual(stats["unmatchedRequests"], 1)
        counts = c.json("GET", "/api/v1/counts")
        self.assertGreaterEqual(counts["namespaces"], 1)
        self.assertIn("mocks", counts)
        status = c.json("GET", "/api/v1/status")
        self.assertEqual(status["database"]["status"], "up")
        features = c.json("GET", "/api/v1/features")
        self.assertTrue(features["protocols"]["http"])
        health = c.json("GET", "/health")
        self.assertIn(health["status"], ("pass", "warn"))

    # --- the route table ---

    def test_endpoints_and_405(self):
        rows = json.loads(self.call("GET", "/api/v1/endpoints")[1])
        paths = {(r["method"], r["path"]) for r in rows}
        self.assertIn(("GET", "/api/v1/mocks/:id/versions"), paths)
        status, raw = self.call("PUT", "/api/v1/namespaces",
                                headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 405)
        self.assertEqual(json.loads(raw)["code"], "method_not_allowed")

    def test_docs_list_every_endpoint(self):
        """docs/api.md's endpoint table is the route table: same rows, same permissions."""
        rows = json.loads(self.call("GET", "/api/v1/endpoints")[1])
        live = {(r["method"], r["path"], r["permission"]) for r in rows}
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                            "api.md")
        with open(docs) as f:
            documented = set(re.findall(r"^\| `([A-Z]+)` \| `(/[^`]*)` \| `([^`]*)` \|", f.read(),
                                        re.M))
        self.assertEqual(live - documented, set(), "endpoints missing from docs/api.md")
        self.assertEqual(documented - live, set(), "docs/api.md rows that are no endpoint")
        self.assertTrue(all(r["permission"] for r in rows), "every endpoint declares a permission")

    def test_auth_required(self):
        with self.assertRaises(SdkError) as e:
            Client(self.m.port, api_key="wrong").request("GET", "/api/v1/mocks")
        self.assertEqual(e.exception.status, 401)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
