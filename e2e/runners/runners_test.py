"""Coordinator and runners against the real binaries: an admin, a shared runner (admin-scoped
integration token) and a team-a runner (team-a token) run Postman collections against mocks served
by the same admin. Checks scope refusal, that a team-b task never reaches the team-a runner, that a
runner killed with SIGKILL mid-task has its task requeued and finished exactly once by the other,
reports (JUnit parses, HTML, JSON), the SSE events, cancel, and the python3-grpcio interop of the
coordinator's scope check.
Usage: runners_test.py <mockarty binary> <mockarty-runner binary> [coordinator.pb]"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support.services import LoggedProcess as Proc, free_port, wait_until as wait_for  # noqa

ADMIN_BIN = RUNNER_BIN = DESCRIPTORS = None
BOOT = "boot-s3cret"


def collection(name, requests):
    items = []
    for rname, path in requests:
        items.append({
            "name": rname,
            "request": {"method": "GET", "url": "{{baseUrl}}" + path},
            "event": [{"listen": "test", "script": {"exec": [
                "pm.test('status 200', function () { pm.response.to.have.status(200); });",
                "pm.test('says hello', function () {",
                "  pm.expect(pm.response.json().hello).to.eql('world'); });",
            ]}}],
        })
    return {"info": {"name": name, "schema":
                     "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
            "item": [{"name": "folder", "item": items}]}


def admin_env(cls, prefix, **extra):
    """Sets cls.tmp (a scratch directory), cls.http, cls.grpc (free ports) and cls.db; returns the
    environment of an admin on them with the coordinator on, one worker, extra on top."""
    cls.tmp = tempfile.mkdtemp(prefix=prefix)
    cls.http = free_port()
    cls.grpc = free_port()
    cls.db = os.path.join(cls.tmp, "m.db")
    return dict(os.environ, HTTP_PORT=str(cls.http), RUNNER_GRPC_PORT=str(cls.grpc),
                DB_PATH=cls.db, API_TOKEN=BOOT, HTTP_WORKERS="1", HTTP_HOST="127.0.0.1",
                GRPC_MOCK_PORT="0", **extra)


class RunnersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = admin_env(cls, "runners-e2e-", RUNNER_HEARTBEAT_TIMEOUT="3s",
                        ADMIN_PASSWORD="admin-pass-1234")
        cls.admin = Proc([ADMIN_BIN], env, os.path.join(cls.tmp, "admin.log"))
        cls.procs = [cls.admin]
        try:
            cls.prepare()
        except BaseException:
            cls.admin.stop()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def prepare(cls):
        wait_for(lambda: cls.get_ok("/health"), 20, "the admin")
        for ns in ("team-a", "team-b"):
            cls.api("POST", "/api/v1/namespaces", {"name": ns})
        cls.admin_token = cls.api("POST", "/api/v1/auth/tokens",
                                  {"name": "shared-runners", "kind": "integration"})[1]["token"]
        cls.team_a_token = cls.api("POST", "/api/v1/auth/tokens",
                                   {"name": "team-a-runners", "kind": "integration",
                                    "namespace": "team-a", "role": "editor"})[1]["token"]
        assert cls.admin_token.startswith("mki_") and cls.team_a_token.startswith("mki_")
        for route, delay in (("/hello", 0), ("/slow", 700)):
            st, body = cls.api2("POST", "/api/v1/mocks", {
                "http": {"route": route, "httpMethod": "GET"},
                "response": {"statusCode": 200, "delay": delay, "payload": {"hello": "world"}}})
            assert st in (200, 201), body
        cls.runners = {}

    @classmethod
    def tearDownClass(cls):
        codes = [p.stop() for p in cls.procs]
        # a clean shutdown (sanitizers report leaks through the exit status)
        assert codes[0] == 0, "admin exited %s: %s" % (codes[0], cls.admin.log()[-3000:])

    # ---- helpers ----

    @classmethod
    def get_ok(cls, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (cls.http, path), timeout=2):
                return True
        except Exception:
            return False

    @classmethod
    def api(cls, method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (cls.http, path), data=data,
                                     method=method,
                                     headers={"Authorization": "Bearer " + BOOT,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                return r.status, (text if raw else json.loads(text or b"null")), r.headers
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (text if raw else json.loads(text or b"null")), e.headers

    @classmethod
    def api2(cls, method, path, body=None):
        st, b, _ = cls.api(method, path, body)
        return st, b

    def start_runner(self, name, token, shared=False, ns=None, extra=None):
        port = free_port()
        env = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % self.grpc, API_TOKEN=token,
                   RUNNER_NAME=name, SHARED="true" if shared else "false",
                   RUNNER_HTTP_PORT=str(port), RUNNER_HTTP_HOST="127.0.0.1",
                   MAX_CONCURRENT="1", CAPABILITIES="api_test")
        if ns:
            env["NAMESPACE"] = ns
        env.update(extra or {})
        p = Proc([RUNNER_BIN], env, os.path.join(self.tmp, name + ".log"))
        p.port = port
        self.procs.append(p)
        return p

    def runner_id(self, name):
        def find():
            st, body = self.api2("GET", "/api/v1/runners")
            for r in body["items"]:
                if r["name"] == name and r["state"] == "online":
                    return r["id"]
            return None
        return wait_for(find, 20, "runner %s online" % name)

    def create_collection(self, ns, name, requests):
        st, body = self.api2("POST", "/api/v1/api-tester/collections",
                             {"namespace": ns, "name": name,
                              "collection": collection(name, requests)})
        self.assertEqual(st, 201, body)
        return body["id"]

    def execute(self, cid):
        st, body = self.api2("POST", "/api/v1/api-tester/collections/%s/execute" % cid,
                             {"baseUrl": "http://127.0.0.1:%d" % self.http})
        self.assertEqual(st, 202, body)
        self.assertIn(body["status"], ("pending", "running"))
        return body["id"]

    def get_run(self, rid):
        st, body = self.api2("GET", "/api/v1/api-tester/test-runs/" + rid)
        self.assertEqual(st, 200, body)
        return body

    def wait_done(self, rid, timeout=40):
        return wait_for(lambda: (lambda r: r if r["status"] not in ("pending", "running")
                                 else None)(self.get_run(rid)), timeout, "run %s to finish" % rid)

    # ---- scenarios, in order ----

    def test_1_scope_refused(self):
        p = self.start_runner("bad-shared", self.team_a_token, shared=True)
        code = p.p.wait(20)
        self.assertEqual(code, 2)
        self.assertIn("SHARED=true needs an admin-scoped integration token", p.log())
        p = self.start_runner("bad-ns", self.team_a_token, ns="team-b")
        self.assertEqual(p.p.wait(20), 2)
        self.assertIn("scoped to namespace 'team-a'", p.log())
        p = self.start_runner("bad-token", "mki_nope", shared=True)
        self.assertEqual(p.p.wait(20), 2)

    def test_2_team_b_never_on_team_a(self):
        RunnersTest.team_a = self.start_runner("runner-team-a", self.team_a_token, ns="team-a")
        ta = self.runner_id("runner-team-a")
        cid = self.create_collection("team-b", "b-hello", [("hello", "/hello")])
        rids = [self.execute(cid) for _ in range(3)]
        time.sleep(2.5)  # the team-a runner is online and idle all along
        for rid in rids:
            self.assertEqual(self.get_run(rid)["status"], "pending")
        def queued_metric():
            st, text, _ = self.api("GET", "/metrics", raw=True)
            return re.search(rb'runner_queue_depth\{namespace="team-b"\} 3\b', text)
        wait_for(queued_metric, 5, "runner_queue_depth of team-b on /metrics")
        st, active = self.api2("GET", "/api/v1/test-runs/active")
        self.assertTrue({r["id"] for r in active["items"]} >= set(rids))
        RunnersTest.shared = self.start_runner("runner-shared", self.admin_token, shared=True)
        sh = self.runner_id("runner-shared")
        for rid in rids:
            r = self.wait_done(rid)
            self.assertEqual(r["status"], "completed", r)
            self.assertEqual(r["runnerId"], sh)
            self.assertNotEqual(r["runnerId"], ta)
            self.assertEqual(r["passed"], 1)  # requests; each has two tests
            self.assertEqual(r["metadata"]["assertions"]["passed"], 2)
            self.assertEqual(r["failed"], 0)
        # a team-a run may go to either runner
        cid = self.create_collection("team-a", "a-hello", [("hello", "/hello")])
        r = self.wait_done(self.execute(cid))
        self.assertIn(r["runnerId"], (ta, sh))
        RunnersTest.hello_run = rids[0]

    def test_3_reports_and_events(self):
        rid = RunnersTest.hello_run
        st, xml, h = self.api("GET", "/api/v1/api-tester/test-runs/%s/report?format=junit" % rid,
                              raw=True)
        self.assertEqual(st, 200)
        root = ET.fromstring(xml)
        cases = root.findall(".//testcase")
        self.assertEqual(len(cases), 1)
        self.assertEqual(len(root.findall(".//failure")), 0)
        st, html, h = self.api("GET", "/api/v1/api-tester/test-runs/%s/report?format=html" % rid,
                               raw=True)
        self.assertEqual(st, 200)
        self.assertIn(b"<html", html.lower())
        st, body, h = self.api("GET", "/api/v1/api-tester/test-runs/%s/report?format=json" % rid)
        self.assertEqual(body["results"][0]["assertions"][0]["passed"], True, body)
        st, _, _ = self.api("GET", "/api/v1/api-tester/test-runs/%s/report?format=pdf" % rid)
        self.assertEqual(st, 400)
        st, sse, h = self.api("GET", "/api/v1/api-tester/test-runs/%s/events" % rid, raw=True)
        self.assertEqual(st, 200)
        self.assertTrue(h["Content-Type"].startswith("text/event-stream"))
        text = sse.decode()
        self.assertIn("event: progress", text)
        self.assertIn("event: end", text)
        self.assertIn('"request_done"', text)

    def test_4_kill_requeues_exactly_once(self):
        cid = self.create_collection("team-a", "a-slow",
                                     [("slow%d" % i, "/slow") for i in range(8)])
        rid = self.execute(cid)
        r = wait_for(lambda: (lambda r: r if r["taskState"] == "running" else None)(self.get_run(rid)),
                     20, "the slow run to start")
        first = r["runnerId"]
        ids = {self.runner_id("runner-team-a"): RunnersTest.team_a,
               self.runner_id("runner-shared"): RunnersTest.shared}
        victim = ids[first]
        other = [i for i in ids if i != first][0]
        time.sleep(1.0)
        victim.p.send_signal(signal.SIGKILL)
        victim.p.wait()
        r = self.wait_done(rid, 60)
        self.assertEqual(r["status"], "completed", r)
        self.assertEqual(r["attempt"], 2)
        self.assertEqual(r["runnerId"], other)
        self.assertEqual(r["passed"], 8)
        # the database holds one finished task, attempt 2
        con = sqlite3.connect(self.db)
        rows = con.execute("SELECT json FROM docs WHERE kind='task' AND id=?", (rid,)).fetchall()
        con.close()
        self.assertEqual(len(rows), 1)
        task = json.loads(rows[0][0])
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(task["attempt"], 2)
        survivor = RunnersTest.shared if victim is RunnersTest.team_a else RunnersTest.team_a
        self.assertIn("task %s attempt 2" % rid, survivor.log())
        runners = self.api2("GET", "/api/v1/runners")[1]["items"]
        self.assertIn("offline", [x["state"] for x in runners if x["id"] == first])

    def test_5_cancel_and_delete(self):
        # team-a: whichever runner survived the kill above can take it
        cid = self.create_collection("team-a", "a-slow2", [("slow%d" % i, "/slow")
                                                          for i in range(20)])
        rid = self.execute(cid)
        wait_for(lambda: self.get_run(rid)["taskState"] in ("assigned", "running"), 20, "start")
        st, body = self.api2("POST", "/api/v1/api-tester/test-runs/%s/cancel" % rid)
        self.assertEqual(st, 200, body)
        r = self.wait_done(rid, 30)
        self.assertEqual(r["status"], "cancelled")
        st, body = self.api2("DELETE", "/api/v1/api-tester/test-runs/" + rid)
        self.assertEqual(st, 200)
        self.assertEqual(self.api2("GET", "/api/v1/api-tester/test-runs/" + rid)[0], 404)

    def test_6_collections_crud(self):
        st, body = self.api2("POST", "/api/v1/api-tester/import/postman",
                             collection("imported", [("h", "/hello")]))
        self.assertEqual(st, 201, body)
        cid = body["id"]
        st, exp, _ = self.api("GET", "/api/v1/api-tester/collections/%s/export" % cid)
        self.assertEqual(exp["info"]["name"], "imported")
        self.assertEqual(exp["item"][0]["item"][0]["name"], "h")
        st, body = self.api2("PUT", "/api/v1/api-tester/collections/" + cid,
                             {"name": "renamed", "collection": exp})
        self.assertEqual(st, 200, body)
        self.assertEqual(self.api2("GET", "/api/v1/api-tester/collections/" + cid)[1]["name"],
                         "renamed")
        st, body = self.api2("POST", "/api/v1/api-tester/collections",
                             {"collection": {"info": {"name": "x"}, "item": [{"request": 5}]}})
        self.assertEqual(st, 400, body)
        self.assertEqual(self.api2("DELETE", "/api/v1/api-tester/collections/" + cid)[0], 200)
        self.assertEqual(self.api2("GET", "/api/v1/api-tester/collections/" + cid)[0], 404)
        # an update that names no namespace leaves the collection in its own
        cid = self.create_collection("team-a", "stays", [("h", "/hello")])
        st, body = self.api2("PUT", "/api/v1/api-tester/collections/" + cid,
                             {"name": "stays2", "collection": collection("stays2", [("h", "/")])})
        self.assertEqual((st, body.get("namespace")), (200, "team-a"), body)
        got = self.api2("GET", "/api/v1/api-tester/collections/" + cid)[1]
        self.assertEqual((got["namespace"], got["name"]), ("team-a", "stays2"))
        self.assertEqual(self.api2("DELETE", "/api/v1/api-tester/collections/" + cid)[0], 200)

    def test_7_dashboard(self):
        p = RunnersTest.shared if RunnersTest.shared.p.poll() is None else RunnersTest.team_a
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % p.port, timeout=5) as r:
            h = json.loads(r.read())
        self.assertEqual(h["components"]["coordinator"]["status"], "up")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.port, timeout=5) as r:
            self.assertIn(b"runner_active_tasks", r.read())
        st, health, _ = self.api("GET", "/health")
        self.assertEqual(health["components"]["coordinator"]["status"], "up")
        self.assertGreaterEqual(health["components"]["coordinator"]["runnersOnline"], 1)
        with urllib.request.urlopen("http://127.0.0.1:%d/" % p.port, timeout=5) as r:
            self.assertIn(b"mockarty-runner", r.read())

    def test_8_grpcio_interop(self):
        """A python3-grpcio client talks to the coordinator: the namespace token asking for
        SHARED gets PERMISSION_DENIED with the reason; the admin token registers."""
        if not DESCRIPTORS:
            self.skipTest("no descriptor set given")
        import grpc
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        fds = descriptor_pb2.FileDescriptorSet()
        with open(DESCRIPTORS, "rb") as f:
            fds.ParseFromString(f.read())
        pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            pool.Add(fd)

        def cls(name):
            d = pool.FindMessageTypeByName("mockarty.coordinator.v1." + name)
            return message_factory.GetMessageClass(d) if hasattr(
                message_factory, "GetMessageClass") else message_factory.MessageFactory(
                pool).GetPrototype(d)
        Req, Resp = cls("RegisterRequest"), cls("RegisterResponse")
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.grpc)
        reg = ch.unary_unary("/mockarty.coordinator.v1.Coordinator/RegisterNode",
                             request_serializer=Req.SerializeToString,
                             response_deserializer=Resp.FromString)
        with self.assertRaises(grpc.RpcError) as e:
            reg(Req(name="py", capabilities=["api_test"], shared=True, max_concurrent=1),
                metadata=[("authorization", "Bearer " + self.team_a_token)], timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("admin-scoped", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            reg(Req(name="py", shared=True), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        resp = reg(Req(name="py-ns", capabilities=["api_test"], max_concurrent=1),
                   metadata=[("authorization", "Bearer " + self.team_a_token)], timeout=10)
        self.assertTrue(resp.runner_id)
        self.assertEqual(resp.namespace, "team-a")
        self.assertFalse(resp.shared)
        ch.close()


    def test_9_resolver_registers(self):
        """A resolver with COORDINATOR_ADDR shows in GET /api/v1/resolvers (not in /runners)."""
        resolver_bin = os.path.join(os.path.dirname(ADMIN_BIN), "..", "mockarty-resolver",
                                    "mockarty-resolver")
        env = dict(os.environ, HTTP_PORT=str(free_port()), DB_USE="sqlite", DB_PATH=self.db,
                   HTTP_WORKERS="1", HTTP_HOST="127.0.0.1", GRPC_MOCK_PORT="0", API_TOKEN=BOOT,
                   NODE_NAME="resolver-1", COORDINATOR_ADDR="127.0.0.1:%d" % self.grpc)
        p = Proc([resolver_bin], env, os.path.join(self.tmp, "resolver.log"))
        self.procs.append(p)

        def listed():
            items = self.api2("GET", "/api/v1/resolvers")[1]["items"]
            return [r for r in items if r["name"] == "resolver-1" and r["state"] == "online"]
        r = wait_for(listed, 20, "the resolver in /api/v1/resolvers")[0]
        self.assertEqual(r["kind"], "resolver")

        def health_up():  # the resolver measures its health every half second
            with urllib.request.urlopen("http://127.0.0.1:%s/health" % env["HTTP_PORT"],
                                        timeout=5) as resp:
                return json.loads(resp.read())["components"]["coordinator"]["status"] == "up"
        wait_for(health_up, 10, "the resolver's coordinator component up")
        self.assertNotIn("resolver-1", [x["name"] for x in
                                        self.api2("GET", "/api/v1/runners")[1]["items"]])
        self.assertEqual(p.stop(), 0)


class RestartTest(unittest.TestCase):
    """Runs queued while no runner is up survive an admin restart and then run; a runner left
    running across another restart registers again by itself and takes new runs."""

    def test_restart(self):
        tmp = tempfile.mkdtemp(prefix="runners-restart-e2e-")
        http, grpc_port = free_port(), free_port()
        env = dict(os.environ, HTTP_PORT=str(http), RUNNER_GRPC_PORT=str(grpc_port),
                   DB_PATH=os.path.join(tmp, "m.db"), API_TOKEN=BOOT, HTTP_WORKERS="1",
                   HTTP_HOST="127.0.0.1", GRPC_MOCK_PORT="0", ADMIN_PASSWORD="admin-pass-1234",
                   RUNNER_HEARTBEAT_TIMEOUT="3s")
        procs = []

        def admin():
            p = Proc([ADMIN_BIN], env, os.path.join(tmp, "admin%d.log" % len(procs)))
            procs.append(p)
            wait_for(lambda: RunnersTest.get_ok("/health"), 20, "the admin")
            return p
        RunnersTest.http = http
        t = RunnersTest("test_1_scope_refused")  # for its helpers
        t.grpc, t.tmp, t.procs = grpc_port, tmp, procs
        try:
            a = admin()
            RunnersTest.api2("POST", "/api/v1/mocks", {
                "http": {"route": "/hello", "httpMethod": "GET"},
                "response": {"statusCode": 200, "payload": {"hello": "world"}}})
            cid = t.create_collection("sandbox", "queued", [("hello", "/hello")])
            rids = [t.execute(cid) for _ in range(2)]
            a.stop()
            a = admin()
            for rid in rids:
                self.assertEqual(t.get_run(rid)["status"], "pending")
            t.start_runner("restart-runner", BOOT, shared=True)
            for rid in rids:
                self.assertEqual(t.wait_done(rid)["status"], "completed")
            a.stop()
            a = admin()
            rid = t.execute(cid)
            self.assertEqual(t.wait_done(rid, 40)["status"], "completed")
        finally:
            for p in procs:
                p.stop()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


class TlsTest(unittest.TestCase):
    """The coordinator over TLS with mTLS: a runner with a client certificate signed by the CA
    registers; one without a certificate is refused and never listed."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="runners-tls-e2e-")
        t = lambda n: os.path.join(cls.tmp, n)  # noqa: E731
        cls.t = staticmethod(t)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", t("ca.key"), "-out", t("ca.crt"), "-days", "2", "-subj", "/CN=test-ca")
        for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                          ("client", "extendedKeyUsage=clientAuth")):
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", t(name + ".key"), "-out", t(name + ".csr"), "-subj", "/CN=" + name)
            with open(t(name + ".ext"), "w") as f:
                f.write(ext + "\n")
            openssl("x509", "-req", "-in", t(name + ".csr"), "-CA", t("ca.crt"), "-CAkey",
                    t("ca.key"), "-CAcreateserial", "-out", t(name + ".crt"), "-days", "2",
                    "-extfile", t(name + ".ext"))
        cls.http, cls.grpc = free_port(), free_port()
        env = dict(os.environ, HTTP_PORT=str(cls.http), RUNNER_GRPC_PORT=str(cls.grpc),
                   DB_PATH=t("m.db"), API_TOKEN=BOOT, HTTP_WORKERS="1", HTTP_HOST="127.0.0.1",
                   GRPC_MOCK_PORT="0", RUNNER_GRPC_TLS_ENABLED="true",
                   RUNNER_GRPC_TLS_CERT_FILE=t("server.crt"), RUNNER_GRPC_TLS_KEY_FILE=t("server.key"),
                   RUNNER_GRPC_TLS_CLIENT_CA_CERT=t("ca.crt"), ADMIN_PASSWORD="admin-pass-1234")
        cls.admin = Proc([ADMIN_BIN], env, t("admin.log"))
        cls.procs = [cls.admin]
        RunnersTest.http = cls.http
        try:
            wait_for(lambda: RunnersTest.get_ok("/health"), 20, "the TLS admin")
        except BaseException:
            cls.admin.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            p.stop()

    def runner(self, name, cert):
        port = free_port()
        env = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % self.grpc, API_TOKEN=BOOT,
                   RUNNER_NAME=name, SHARED="true", RUNNER_HTTP_PORT=str(port),
                   RUNNER_HTTP_HOST="127.0.0.1", COORDINATOR_TLS="true",
                   COORDINATOR_TLS_CA_FILE=self.t("ca.crt"))
        if cert:
            env.update(COORDINATOR_TLS_CERT_FILE=self.t("client.crt"),
                       COORDINATOR_TLS_KEY_FILE=self.t("client.key"))
        p = Proc([RUNNER_BIN], env, self.t(name + ".log"))
        p.port = port
        self.procs.append(p)
        return p

    def names(self):
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/runners" % self.http,
                                     headers={"Authorization": "Bearer " + BOOT})
        with urllib.request.urlopen(req, timeout=10) as r:
            return {x["name"] for x in json.loads(r.read())["items"] if x["state"] == "online"}

    def test_mtls(self):
        self.assertIn("coordinator (gRPC, TLS)", self.admin.log())
        good = self.runner("tls-good", True)
        bad = self.runner("tls-nocert", False)
        wait_for(lambda: "tls-good" in self.names(), 20, "the runner with a certificate")
        time.sleep(1.5)
        self.assertNotIn("tls-nocert", self.names())
        self.assertIsNone(bad.p.poll())  # it keeps retrying, as after any connection loss
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % bad.port, timeout=5)
            self.fail("a runner that is not registered reports healthy")
        except urllib.error.HTTPError as e:
            code, h = e.code, json.loads(e.read())
        self.assertEqual(code, 503)
        self.assertEqual(h["components"]["coordinator"]["status"], "down")
        self.assertTrue(h["components"]["coordinator"]["error"])
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % good.port, timeout=5) as r:
            self.assertEqual(json.loads(r.read())["components"]["coordinator"]["status"], "up")


class SelfSignedTest(unittest.TestCase):
    """TLS on without certificate files: a self-signed pair is made in RUNNER_GRPC_TLS_DIR, a
    runner trusting it registers, and a restart reuses the same files."""

    def test_selfsigned(self):
        tmp = tempfile.mkdtemp(prefix="runners-selfsigned-e2e-")
        tls_dir = os.path.join(tmp, "tls", "coord")
        http, grpc_port = free_port(), free_port()
        env = dict(os.environ, HTTP_PORT=str(http), RUNNER_GRPC_PORT=str(grpc_port),
                   DB_PATH=os.path.join(tmp, "m.db"), API_TOKEN=BOOT, HTTP_WORKERS="1",
                   HTTP_HOST="127.0.0.1", GRPC_MOCK_PORT="0", ADMIN_PASSWORD="admin-pass-1234",
                   RUNNER_GRPC_TLS_ENABLED="true", RUNNER_GRPC_TLS_DIR=tls_dir)
        procs = []
        try:
            RunnersTest.http = http
            procs.append(Proc([ADMIN_BIN], env, os.path.join(tmp, "admin.log")))
            wait_for(lambda: RunnersTest.get_ok("/health"), 20, "the admin")
            crt = os.path.join(tls_dir, "coordinator.crt")
            key = os.path.join(tls_dir, "coordinator.key")
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
            with open(crt) as f:
                before = f.read()
            self.assertIn("BEGIN CERTIFICATE", before)
            self.assertEqual(procs[0].stop(), 0)
            procs.append(Proc([ADMIN_BIN], env, os.path.join(tmp, "admin2.log")))
            wait_for(lambda: RunnersTest.get_ok("/health"), 20, "the admin again")
            with open(crt) as f:
                self.assertEqual(f.read(), before)
            renv = dict(os.environ, COORDINATOR_ADDR="localhost:%d" % grpc_port, API_TOKEN=BOOT,
                        RUNNER_NAME="ss", SHARED="true", RUNNER_HTTP_PORT=str(free_port()),
                        RUNNER_HTTP_HOST="127.0.0.1", COORDINATOR_TLS="true",
                        COORDINATOR_TLS_CA_FILE=crt)
            procs.append(Proc([RUNNER_BIN], renv, os.path.join(tmp, "ss.log")))
            wait_for(lambda: "registered as ss" in procs[-1].log(), 20,
                     "a runner trusting the self-signed certificate")
        finally:
            for p in procs:
                p.stop()


if __name__ == "__main__":
    ADMIN_BIN, RUNNER_BIN = sys.argv[1], sys.argv[2]
    DESCRIPTORS = sys.argv[3] if len(sys.argv) > 3 else None
    del sys.argv[1:]
    unittest.main(verbosity=2)
