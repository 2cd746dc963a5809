"""Load tests on runners, end to end with the real binaries: an admin (REST, coordinator, and the
mocks that are the load's target) and two mockarty-runner processes with the performance
capability. A run whose thresholds pass and one whose thresholds fail; the submission checks
(PERF_ALLOWED_TARGETS, bad thresholds); a run split over both runners whose merged http_reqs
equals what the admin's request journal counted; stop mid-run (the run ends within a second and
keeps its metrics); a slow mock in the open model shows the latency its schedule implies; stored
configs, history, trend, compare, HTML report and SSE; a runner killed mid-run leaves the run
interrupted with its partial metrics and the task is not run again.
Usage: perf_runners_e2e.py <mockarty binary> <mockarty-runner binary>"""
import http.client
import json
import os
import signal
import sqlite3
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
from mockarty_proc import Mockarty, free_port  # noqa: E402
import open_model  # noqa: E402 (beside this script)
from support.services import LoggedProcess, wait_until as wait_for  # noqa: E402

ADMIN = RUNNER = None


class Runner(LoggedProcess):
    """A mockarty-runner with the performance capability, logging to <workdir>/<name>.log."""

    def __init__(self, name, grpc_port, workdir):
        self.name = name
        env = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % grpc_port, RUNNER_NAME=name,
                   SHARED="true", CAPABILITIES="performance", MAX_CONCURRENT="2",
                   RUNNER_HTTP_HOST="127.0.0.1", RUNNER_HTTP_PORT=str(free_port()))
        env.pop("API_TOKEN", None)
        super().__init__([RUNNER], env, os.path.join(workdir, name + ".log"))


class PerfRunnersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.grpc = free_port()
        # The journal's entry count is what the target counted: it must never reach its byte
        # bound here (at the bound each new entry evicts an old one and the count stands still).
        cls.m = Mockarty(ADMIN, env={"RUNNER_GRPC_PORT": str(cls.grpc), "HTTP_WORKERS": "1",
                                     "JOURNAL_MAX_BYTES": "1GiB",
                                     "RUNNER_HEARTBEAT_TIMEOUT": "3s",
                                     "PERF_ALLOWED_TARGETS": "127.0.0.1:*,localhost"}).start()
        cls.base = "http://127.0.0.1:%d" % cls.m.port
        cls.runners = []
        try:
            for mid, route, delay in (("pf-hello", "/pf/hello", 0), ("pf-slow", "/pf/slow", 100)):
                s, _, raw, _ = cls.m.request("POST", "/api/v1/mocks", {
                    "id": mid, "http": {"route": route, "httpMethod": "GET"},
                    "response": {"statusCode": 200, "delay": delay, "payload": {"ok": True}}})
                assert s == 201, raw
            cls.runners = [Runner(n, cls.grpc, cls.m.dir) for n in ("perf-r1", "perf-r2")]
            wait_for(lambda: cls.online() >= 2, 30, "two runners online")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        codes = [r.stop() for r in cls.runners]
        code, err = cls.m.stop()
        assert code == 0, err[-3000:]
        assert all(c in (0, -9) for c in codes), codes

    @classmethod
    def online(cls):
        s, body, _, _ = cls.m.request("GET", "/api/v1/runners")
        return sum(1 for r in body["items"] if r["state"] == "online")

    def api(self, method, path, body=None, expect=None):
        s, parsed, raw, _ = self.m.request(method, path, body)
        if expect is not None:
            self.assertEqual(s, expect, raw[:2000])
        return parsed if parsed is not None else raw

    def journal_total(self):
        """The journal is appended off the serving path: wait until it stops moving."""
        last, since = -1, time.time()
        while True:
            body = self.api("GET", "/api/v1/requests?limit=1", expect=200)
            if body["total"] != last:
                last, since = body["total"], time.time()
            elif time.time() - since > 0.3:
                return last
            time.sleep(0.05)

    def submit(self, cfg):
        task = self.api("POST", "/api/v1/perf/run", cfg, expect=202)
        self.assertEqual(task["status"], "queued")
        self.assertTrue(task["id"] and task["startedAt"])
        return task["id"]

    def result(self, rid):
        return self.api("GET", "/api/v1/perf-results/" + rid, expect=200)

    def wait_done(self, rid, timeout=40):
        return wait_for(lambda: (lambda r: r if r["status"] not in ("queued", "running")
                                 else None)(self.result(rid)), timeout, "run %s to end" % rid)

    def scenario(self, path="/pf/hello"):
        return {"requests": [{"method": "GET", "url": self.base + path}]}

    # ---- scenarios, in order (the last one kills a runner) ----

    def test_1_thresholds_pass_and_fail(self):
        before = self.journal_total()
        rid = self.submit({"name": "pass", "vus": 2, "iterations": 300,
                           "scenario": self.scenario(),
                           "thresholds": {"http_req_duration": ["p(95)<2000", "avg<2000"],
                                          "http_req_failed": ["rate<0.01"],
                                          "http_reqs": ["count>=300"]}})
        r = self.wait_done(rid)
        self.assertEqual(r["status"], "completed", r)
        self.assertTrue(r["thresholdsPassed"])
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 300)
        self.assertEqual(r["statusCodes"], {"200": 300})
        self.assertEqual(self.journal_total() - before, 300)
        self.assertTrue(r["thresholds"]["http_reqs"]["count>=300"]["ok"])
        self.assertEqual(len(r["shards"]), 1)
        self.assertEqual(r["shards"][0]["state"], "succeeded")
        rid = self.submit({"name": "fail", "vus": 2, "iterations": 100,
                           "scenario": self.scenario(),
                           "thresholds": {"http_req_duration": ["p(95)<0.001"],
                                          "http_reqs": ["count>=100"]}})
        r = self.wait_done(rid)
        self.assertEqual(r["status"], "failed", r)
        self.assertFalse(r["thresholdsPassed"])
        self.assertFalse(r["thresholds"]["http_req_duration"]["p(95)<0.001"]["ok"])
        self.assertTrue(r["thresholds"]["http_reqs"]["count>=100"]["ok"])
        # abortOnFail ends a 30 s run after its first second
        rid = self.submit({"name": "abort", "vus": 2, "duration": "30s",
                           "scenario": self.scenario(),
                           "thresholds": {"http_reqs": [{"threshold": "count<10",
                                                         "abortOnFail": True}]}})
        r = self.wait_done(rid)
        self.assertEqual((r["status"], r.get("abortedBy")), ("failed", "threshold"), r)
        self.assertLess(r["duration"], 10000)
        # the list has all three, newest first
        lst = self.api("GET", "/api/v1/perf-results", expect=200)
        self.assertEqual([x["name"] for x in lst[:3]], ["abort", "fail", "pass"])

    def test_2_refused_at_submission(self):
        r = self.api("POST", "/api/v1/perf/run",
                     {"vus": 1, "duration": "1s",
                      "scenario": {"requests": [{"url": "http://10.1.2.3:8080/x"}]}}, expect=403)
        self.assertIn("PERF_ALLOWED_TARGETS", r["error"])
        r = self.api("POST", "/api/v1/perf/run",
                     {"vus": 1, "duration": "1s", "scenario": self.scenario(),
                      "thresholds": {"http_req_nope": ["p(95)<1"]}}, expect=400)
        self.assertIn("http_req_nope", r["error"])
        r = self.api("POST", "/api/v1/perf/run",
                     {"vus": 1, "duration": "1x", "scenario": self.scenario()}, expect=400)
        self.assertIn("duration", r["error"])
        r = self.api("POST", "/api/v1/perf/run",
                     {"vus": 3, "duration": "1s", "runners": 3, "scenario": self.scenario()},
                     expect=503)
        self.assertIn("3 asked, 2 runners", r["error"])

    def test_3_split_over_two_runners(self):
        cfg = self.api("POST", "/api/v1/perf-configs",
                       {"name": "split", "vus": 4, "duration": "3s", "runners": 2,
                        "scenario": self.scenario(),
                        "thresholds": {"http_req_failed": ["rate<0.01"]}}, expect=201)
        self.assertEqual(self.api("GET", "/api/v1/perf-configs/" + cfg["id"], expect=200)["name"],
                         "split")
        before = self.journal_total()
        rid = self.submit({"configId": cfg["id"]})
        r = self.wait_done(rid)
        served = self.journal_total() - before
        self.assertEqual(r["status"], "completed", r)
        self.assertEqual(r["runners"], 2)
        self.assertEqual(len({s["runnerId"] for s in r["shards"]}), 2, r["shards"])
        self.assertGreater(served, 50)
        self.assertEqual(r["metrics"]["http_reqs"]["count"], served)
        self.assertEqual(r["statusCodes"], {"200": served})
        self.assertEqual(r["metrics"]["http_req_duration"]["count"], served)
        self.assertEqual(r["vus"], 4)
        tl = r["timeline"]
        self.assertGreaterEqual(len(tl), 3)
        self.assertEqual(sum(p["reqs"] for p in tl), served)  # the seconds add up exactly
        self.assertEqual(max(p["vus"] for p in tl), 4)
        # a second run of the same config: history, trend, compare
        rid2 = self.submit({"configId": cfg["id"], "duration": "1s"})
        self.wait_done(rid2)
        hist = self.api("GET", "/api/v1/perf-results/history/" + cfg["id"], expect=200)
        self.assertEqual([h["id"] for h in hist], [rid2, rid])
        trend = self.api("GET", "/api/v1/perf-results/trend/" + cfg["id"], expect=200)
        self.assertEqual([p["id"] for p in trend["points"]], [rid, rid2])
        cmp = self.api("GET", "/api/v1/perf-results/compare?ids=%s,%s" % (rid, rid2), expect=200)
        self.assertEqual([x["id"] for x in cmp["results"]], [rid, rid2])
        self.assertEqual(cmp["comparison"]["http_reqs"]["values"][0], served)
        html = self.api("GET", "/api/v1/perf-results/%s/report?compare=%s" % (rid, rid2),
                        expect=200)
        self.assertIn(b"class=\"cols\"", html)
        html = self.api("GET", "/api/v1/perf-results/%s/report" % rid, expect=200)
        self.assertIn(b"<svg", html)
        self.assertIn(b"<polyline", html)
        self.assertNotIn(b"<script src", html)
        # a finished run's stream: every second, then end, then it closes; Last-Event-ID resumes
        sse = self.api("GET", "/api/v1/perf/%s/events" % rid, expect=200).decode()
        self.assertEqual(sse.count("event: progress"), len(tl))
        self.assertIn("event: end", sse)
        s, _, raw, _ = self.m.request("GET", "/api/v1/perf/%s/events" % rid,
                                      headers={"Last-Event-ID": "2"})
        self.assertEqual(raw.decode().count("event: progress"), len(tl) - 2)
        self.assertIn("id: 3\n", raw.decode())
        self.assertEqual(self.api("POST", "/api/v1/perf/stop/" + rid)["error"].count("ended"), 1)
        self.api("DELETE", "/api/v1/perf-results/" + rid2, expect=200)
        self.api("GET", "/api/v1/perf-results/" + rid2, expect=404)

    def test_4_stop_mid_run(self):
        rid = self.submit({"name": "long", "vus": 2, "duration": "40s",
                           "scenario": self.scenario()})
        # the live event stream: seconds as they complete
        conn = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=15)
        conn.request("GET", "/api/v1/perf/%s/events" % rid)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "text/event-stream")
        ids = []
        while len(ids) < 2:
            line = resp.readline().decode()
            self.assertTrue(line, "the stream ended early")
            if line.startswith("id: "):
                ids.append(int(line[4:]))
        self.assertEqual(ids, [1, 2])
        t = time.time()
        self.assertEqual(self.api("POST", "/api/v1/perf/stop/" + rid, expect=200)["status"],
                         "stopping")
        # the stream ends with the result once the runner has reported
        end = None
        while end is None:
            line = resp.readline().decode()
            self.assertTrue(line, "the stream ended without an end event")
            if line.startswith("event: end"):
                end = json.loads(resp.readline().decode()[len("data: "):])
        took = time.time() - t
        self.assertEqual(resp.readline(), b"\n")
        self.assertEqual(resp.read(), b"")  # the stream ends after it
        conn.close()
        self.assertEqual(end["status"], "stopped", end)
        self.assertLess(took, 3.0)  # the runner stops within a second; the rest is reporting
        r = self.result(rid)
        self.assertEqual(r["status"], "stopped", r)
        self.assertLess(r["duration"], 15000)
        self.assertGreater(r["metrics"]["http_reqs"]["count"], 0)
        self.assertEqual(r["shards"][0]["state"], "cancelled")
        print("stop: end event %.2f s after the stop" % took, file=sys.stderr)

    def test_5_slow_target_open_model(self):
        rid = self.submit(dict(open_model.ONE_VU_20_PER_S, scenario=self.scenario("/pf/slow")))
        open_model.assert_queued(self, self.wait_done(rid))

    def test_5b_collection_and_stored_unread(self):
        # an API test collection's requests as the load: folders flattened, {{baseUrl}} filled
        item = lambda name, path: {"name": name, "request": {"method": "GET",
                                                              "url": "{{baseUrl}}" + path}}
        col = {"info": {"name": "col-load", "schema": "https://schema.getpostman.com/json/"
                        "collection/v2.1.0/collection.json"},
               "item": [{"name": "f", "item": [item("hello", "/pf/hello")]},
                        item("again", "/pf/hello")]}
        cid = self.api("POST", "/api/v1/api-tester/collections", col, expect=201)["id"]
        before = self.journal_total()
        task = self.api("POST", "/api/v1/perf/run-collection",
                        {"collectionId": cid, "vus": 1, "iterations": 40, "baseUrl": self.base},
                        expect=202)
        # never read through the API: the admin stores the result by itself once it ends
        db = os.path.join(self.m.dir, "mockarty.db")

        def stored():
            with sqlite3.connect(db, timeout=5) as con:
                row = con.execute("SELECT json FROM docs WHERE kind='perf_result' AND id=?",
                                  (task["id"],)).fetchone()
            doc = json.loads(row[0]) if row else {}
            return doc.get("result")
        if self.m.env.get("DB_USE") != "postgres":
            r = wait_for(stored, 20, "the result stored without a reader")
            self.assertEqual(r["status"], "completed", r)
        r = self.wait_done(task["id"])
        self.assertEqual(r["name"], "col-load")
        self.assertEqual(r["collectionId"], cid)
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 40)
        self.assertEqual(self.journal_total() - before, 40)

    def test_6_runner_killed_mid_run(self):
        rid = self.submit({"name": "doomed", "vus": 2, "duration": "30s",
                           "scenario": self.scenario()})
        wait_for(lambda: len(self.result(rid).get("timeline", [])) >= 2, 20, "two seconds")
        runner_id = self.result(rid)["shards"][0]["runnerId"]
        s, body, _, _ = self.m.request("GET", "/api/v1/runners")
        name = [x["name"] for x in body["items"] if x["id"] == runner_id][0]
        victim = [x for x in self.runners if x.name == name][0]
        victim.p.send_signal(signal.SIGKILL)
        victim.p.wait()
        r = self.wait_done(rid, timeout=20)
        self.assertEqual(r["status"], "interrupted", r)
        self.assertIn("not run again", r["error"])
        self.assertGreater(r["metrics"]["http_reqs"]["count"], 0)  # the seconds it reported
        self.assertEqual(r["metrics"]["http_reqs"]["count"], sum(p["reqs"] for p in r["timeline"]))
        self.assertEqual(r["shards"][0]["state"], "failed")
        self.assertEqual(r["shards"][0]["attempt"], 1)
        time.sleep(1.5)  # nothing picks it up again
        self.assertEqual(self.result(rid)["shards"][0]["attempt"], 1)


class PerfScopeTest(unittest.TestCase):
    """Namespaces and permissions with authentication on (no runner needed: runs stay queued)."""
    BOOT = "perf-boot-s3cret"

    @classmethod
    def setUpClass(cls):
        cls.m = Mockarty(ADMIN, env={"RUNNER_GRPC_PORT": str(free_port()), "API_TOKEN": cls.BOOT,
                                     "ADMIN_PASSWORD": "admin-pass-1234"}).start()

    @classmethod
    def tearDownClass(cls):
        code, err = cls.m.stop()
        assert code == 0, err[-3000:]

    def call(self, token, method, path, body=None):
        s, parsed, raw, _ = self.m.request(method, path, body,
                                           headers={"Authorization": "Bearer " + token})
        return s, parsed

    def test_namespaces(self):
        for ns in ("team-a", "team-b"):
            self.assertIn(self.call(self.BOOT, "POST", "/api/v1/namespaces", {"name": ns})[0],
                          (200, 201))
        tok = {}
        for name, ns, role in (("a-editor", "team-a", "editor"), ("a-viewer", "team-a", "viewer")):
            s, b = self.call(self.BOOT, "POST", "/api/v1/auth/tokens",
                             {"name": name, "kind": "integration", "namespace": ns, "role": role})
            self.assertEqual(s, 201, b)
            tok[name] = b["token"]
        cfg = {"vus": 1, "duration": "5s",
               "scenario": {"requests": [{"url": "http://127.0.0.1:%d/x" % self.m.port}]}}
        s, b = self.call(self.BOOT, "POST", "/api/v1/perf/run", dict(cfg, namespace="team-b"))
        self.assertEqual(s, 202, b)
        b_run = b["id"]
        s, b = self.call(tok["a-editor"], "POST", "/api/v1/perf/run", dict(cfg, namespace="team-a"))
        self.assertEqual(s, 202, b)
        a_run = b["id"]
        # a team-a token sees its namespace's runs only, and cannot act in team-b
        s, b = self.call(tok["a-viewer"], "GET", "/api/v1/perf-results")
        self.assertEqual((s, [r["id"] for r in b]), (200, [a_run]))
        self.assertEqual(self.call(tok["a-viewer"], "GET", "/api/v1/perf-results/" + b_run)[0],
                         404)
        self.assertEqual(self.call(tok["a-editor"], "POST", "/api/v1/perf/stop/" + b_run)[0], 404)
        self.assertEqual(self.call(tok["a-editor"], "POST", "/api/v1/perf/run",
                                   dict(cfg, namespace="team-b"))[0], 403)
        self.assertEqual(self.call(tok["a-viewer"], "POST", "/api/v1/perf/run",
                                   dict(cfg, namespace="team-a"))[0], 403)
        self.assertEqual(self.call(tok["a-viewer"], "POST", "/api/v1/perf/stop/" + a_run)[0], 403)
        s, b = self.call(tok["a-viewer"], "GET", "/api/v1/perf-results/" + a_run)
        self.assertEqual((s, b["status"], b["namespace"]), (200, "queued", "team-a"))
        # a queued run stopped before any runner took it
        s, b = self.call(tok["a-editor"], "POST", "/api/v1/perf/stop/" + a_run)
        self.assertEqual((s, b["status"]), (200, "stopping"))
        s, b = self.call(tok["a-viewer"], "GET", "/api/v1/perf-results/" + a_run)
        self.assertEqual(b["status"], "stopped")
        self.assertEqual(self.call(self.BOOT, "GET", "/api/v1/perf-results/" + b_run)[0], 200)


if __name__ == "__main__":
    ADMIN, RUNNER = sys.argv[1], sys.argv[2]
    del sys.argv[1:]
    unittest.main(verbosity=2)
