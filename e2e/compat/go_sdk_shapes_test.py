"""Mocks shaped exactly as Mockarty's Go SDK sends them, for every protocol we serve.

The Go SDK's dto.Mock holds every protocol's context as a struct field tagged omitempty, and
encoding/json never omits a struct: each mock it sends carries "grpc": {}, "http": {},
"oneOf": {}, "response": {"soapFault": {}, "sseEventChain": {}}, ... for the kinds it is not.
go_sdk_zero_mock.json is that zero dto.Mock, written by scripts/go_dto_zero.py from
github.com/mockarty/go-sdk commit 0f1e3aa2a4f86a1bd619322ba4d9abe307394195 (see
go_sdk_zero_mock.txt). Each test deep-merges its kind's fields into it, saves the mock and calls
it over that protocol. Nothing here reads the SDK itself.

usage: go_sdk_shapes_test.py path/to/mockarty
"""
import asyncio
import copy
import http.client
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402

BINARY = None
with open(os.path.join(HERE, "go_sdk_zero_mock.json")) as f:
    ZERO = json.load(f)


def merge(base, extra):
    """deep-merge extra into a copy of base: objects merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class GoSdkShapesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = Mockarty(BINARY).start()

    @classmethod
    def tearDownClass(cls):
        code, err = cls.m.stop()
        shutil.rmtree(cls.m.dir, ignore_errors=True)
        assert code == 0 and "LeakSanitizer" not in err and "runtime error" not in err, err

    def save(self, own):
        mock = merge(ZERO, own)
        status, body, raw, _ = self.m.request("POST", "/api/v1/mocks", mock)
        self.assertEqual(status, 201, raw)
        self.assertEqual(body["mock"]["id"], own["id"])
        return mock

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        return r.status, raw

    def test_zero_mock_is_what_encoding_json_writes(self):
        """The fixture has the shape the tests rely on (every struct present, nothing else)."""
        self.assertEqual(ZERO["response"], {"soapFault": {}, "sseEventChain": {}})
        self.assertEqual(ZERO["rabbitmq"], {"outputProps": {}})
        for k in ("grpc", "graphql", "http", "kafka", "mcp", "oneOf", "proxy", "smtp", "soap",
                  "sse", "socket", "extract"):
            self.assertEqual(ZERO[k], {}, k)

    def test_http(self):
        self.save({"id": "go-http", "http": {"route": "/go/users/:id", "httpMethod": "GET"},
                   "response": {"statusCode": 200, "payload": {"id": "$.pathParam.id"}}})
        self.assertEqual(self.call("GET", "/go/users/7"), (200, b'{"id":"7"}'))

    def test_http_one_of(self):
        self.save({"id": "go-oneof", "http": {"route": "/go/flaky", "httpMethod": "GET"},
                   "oneOf": {"order": "order", "responses": [
                       {"statusCode": 200, "payload": {"n": 1}},
                       {"statusCode": 503, "payload": {"n": 2}}]}})
        self.assertEqual(self.call("GET", "/go/flaky"), (200, b'{"n":1}'))
        self.assertEqual(self.call("GET", "/go/flaky"), (503, b'{"n":2}'))
        self.assertEqual(self.call("GET", "/go/flaky"), (200, b'{"n":1}'))

    def test_grpc_saved(self):
        # serving needs an uploaded descriptor set and the gRPC port; the shape is what matters
        self.save({"id": "go-grpc", "grpc": {"service": "demo.Users", "method": "GetUser",
                                             "methodType": "unary"},
                   "response": {"payload": {"id": "1"}}})
        status, body, raw, _ = self.m.request("GET", "/api/v1/mocks/go-grpc")
        self.assertEqual(status, 200, raw)
        self.assertEqual(body["grpc"]["service"], "demo.Users")

    def test_graphql(self):
        self.save({"id": "go-gql", "graphql": {"operation": "query", "field": "user",
                                               "path": "/graphql"},
                   "response": {"payload": {"data": {"user": {"id": "1", "name": "Kai"}}}}})
        status, raw = self.call("POST", "/graphql",
                                json.dumps({"query": "{ user(id: \"1\") { id name } }"}),
                                {"Content-Type": "application/json"})
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw), {"data": {"user": {"id": "1", "name": "Kai"}}})

    def test_soap(self):
        self.save({"id": "go-soap", "soap": {"path": "/soap", "method": "GetAccount"},
                   "response": {"payload": "<GetAccountResponse><Id>ACC-1</Id>"
                                           "</GetAccountResponse>"}})
        env = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
               '<soap:Body><GetAccount><Id>ACC-1</Id></GetAccount></soap:Body></soap:Envelope>')
        status, raw = self.call("POST", "/soap", env, {"Content-Type": "text/xml",
                                                       "SOAPAction": '"GetAccount"'})
        self.assertEqual(status, 200, raw)
        self.assertIn(b"<GetAccountResponse><Id>ACC-1</Id></GetAccountResponse>", raw)
        self.assertIn(b"soap/envelope/", raw)

    def test_sse(self):
        self.save({"id": "go-sse", "sse": {"eventPath": "/go/events/:k", "eventName": "tick"},
                   "response": {"sseEventChain": {"events": [
                       {"id": "e1", "data": {"k": "$.pathParam.k"}},
                       {"id": "e2", "data": "bye", "delay": 50}]}}})
        conn = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=10)
        conn.request("GET", "/go/events/abc", headers={"Accept": "text/event-stream"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/event-stream"))
        raw = r.read()  # the chain does not loop: the stream ends after e2
        conn.close()
        self.assertEqual(raw.decode().replace("\r\n", "\n"),
                         'id: e1\nevent: tick\ndata: {"k":"abc"}\n\n'
                         'id: e2\nevent: tick\ndata: bye\n\n')

    def test_websocket(self):
        import websockets  # Debian's python3-websockets
        self.save({"id": "go-ws", "socket": {"namespace": "/go/ws", "event": "ping"},
                   "response": {"payload": {"pong": "$.req.n"}}})

        async def talk():
            url = "ws://127.0.0.1:%d/go/ws" % self.m.port
            async with websockets.connect(url, open_timeout=10) as ws:
                await ws.send(json.dumps({"event": "ping", "n": 5}))
                return await asyncio.wait_for(ws.recv(), 10)

        self.assertEqual(json.loads(asyncio.run(talk())), {"pong": 5})

    def test_proxy(self):
        self.save({"id": "go-upstream", "http": {"route": "/upstream/go/px", "httpMethod": "GET"},
                   "response": {"statusCode": 200, "payload": {"from": "upstream"}}})
        self.save({"id": "go-proxy", "http": {"route": "/go/px", "httpMethod": "GET"},
                   "proxy": {"target": "http://127.0.0.1:%d/upstream" % self.m.port}})
        status, raw = self.call("GET", "/go/px")
        self.assertEqual((status, json.loads(raw)), (200, {"from": "upstream"}))


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
