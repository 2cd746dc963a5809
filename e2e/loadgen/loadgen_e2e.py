"""mockarty-load against a real admin binary serving mocks: the counts equal what the mock's
request journal says was served, thresholds pass and fail (exit 0 / 99, abortOnFail), a slow
target in the open model shows the latency its schedule implies, resetting and unreachable
targets give counted errors and no crash, SIGINT stops within a second, bad configs are refused
(exit 2), the per-second snapshots add up to the totals, the HTML report is written."""
import http.client
import json
import os
import signal
import ssl
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
from mockarty_proc import Mockarty, free_port  # noqa: E402
import open_model  # noqa: E402 (beside this script)

ADMIN, LOAD = sys.argv[1], sys.argv[2]


def mock(mid, route, method="GET", **response):
    r = {"statusCode": 200, "payload": {"ok": True, "id": mid}}
    r.update(response)
    return {"id": mid, "http": {"route": route, "httpMethod": method}, "response": r}


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = Mockarty(ADMIN).start()
        cls.base = "http://127.0.0.1:%d" % cls.m.port
        cls.dir = tempfile.mkdtemp(prefix="mockarty-load-")
        for d in (mock("lg-item", "/lg/items/:id"), mock("lg-order", "/lg/orders", "POST"),
                  mock("lg-slow", "/lg/slow", delay=100),
                  mock("lg-reset", "/lg/reset", fault="CONNECTION_RESET_BY_PEER")):
            s, _, raw, _ = cls.m.request("POST", "/api/v1/mocks", d)
            assert s == 201, raw

    @classmethod
    def tearDownClass(cls):
        code, err = cls.m.stop()
        assert code == 0, err[-3000:]

    def journal_total(self):
        """The journal is appended off the serving path: wait until it stops moving."""
        last, since = -1, time.time()
        while True:
            s, body, _, _ = self.m.request("GET", "/api/v1/requests?limit=1")
            self.assertEqual(s, 200)
            if body["total"] != last:
                last, since = body["total"], time.time()
            elif time.time() - since > 0.3:
                return last
            time.sleep(0.05)

    def run_load(self, cfg, *args, expect=0):
        path = os.path.join(self.dir, "cfg.json")
        out = os.path.join(self.dir, "res.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        if os.path.exists(out):
            os.unlink(out)
        p = subprocess.run([LOAD, "-q", "-o", out, path] + list(args), capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, expect, p.stderr[-3000:])
        self.assertNotIn("Sanitizer", p.stderr)
        if expect == 2:
            return p.stderr
        with open(out) as f:
            return json.load(f)

    def scenario(self, *reqs):
        return {"requests": list(reqs), "variables": {"sku": "A1"}}

    def test_counts_equal_the_journal(self):
        before = self.journal_total()
        r = self.run_load({"name": "count", "vus": 8, "iterations": 2000, "threads": 2,
                           "scenario": self.scenario(
                               {"url": self.base + "/lg/items/{{$randomInt}}", "weight": 3},
                               {"method": "POST", "url": self.base + "/lg/orders",
                                "body": {"id": "{{$uuid}}", "sku": "{{sku}}"}})})
        m = r["metrics"]
        self.assertEqual(m["http_reqs"]["count"], 2000)
        self.assertEqual(r["statusCodes"], {"200": 2000})
        self.assertEqual(self.journal_total() - before, 2000)
        s, body, _, _ = self.m.request("GET", "/api/v1/requests?mockId=lg-order&limit=1")
        last = body["requests"][0]["request"]
        self.assertEqual(json.loads(last["body"])["sku"], "A1")
        self.assertEqual(len(json.loads(last["body"])["id"]), 36)
        # weights 3:1 -> about 500 orders
        self.assertTrue(350 < body["total"] < 650, body["total"])
        for k in ("min", "avg", "med", "p(90)", "p(95)", "p(99)", "max"):
            self.assertIn(k, m["http_req_duration"])
        self.assertGreater(m["data_received"]["count"], 0)

        # a duration run: in-flight requests finish within gracefulStop, so nothing is lost
        before = self.journal_total()
        snaps = os.path.join(self.dir, "snaps.jsonl")
        report = os.path.join(self.dir, "report.html")
        r = self.run_load({"vus": 4, "duration": "2s",
                           "scenario": self.scenario({"url": self.base + "/lg/items/1"})},
                          "--snapshots", snaps, "--report", report)
        self.assertEqual(self.journal_total() - before, r["metrics"]["http_reqs"]["count"])
        with open(snaps) as f:
            lines = [json.loads(x) for x in f]
        self.assertGreaterEqual(len(lines), 2)
        self.assertEqual(sum(x["delta"]["reqs"] for x in lines), r["metrics"]["http_reqs"]["count"])
        self.assertEqual(sum(x["delta"]["duration"]["count"] for x in lines),
                         r["metrics"]["http_req_duration"]["count"])
        with open(report) as f:
            html = f.read()
        self.assertIn("<svg", html)
        self.assertNotIn("<script src", html)

    def test_split_over_two_runners_merges_exactly(self):
        """Two processes each run their share (--runner I/2) and write per-second deltas; the
        merge (the coordinator's part) gives http_reqs equal to what the journal counted."""
        cfg = {"name": "split", "vus": 4, "duration": "2s",
               "scenario": self.scenario({"url": self.base + "/lg/items/{{$randomInt}}"}),
               "thresholds": {"http_req_duration": ["p(99)<5000"]}}
        path = os.path.join(self.dir, "split.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        before = self.journal_total()
        procs, outs, snaps = [], [], []
        for i in range(2):
            outs.append(os.path.join(self.dir, "split-%d.json" % i))
            snaps.append(os.path.join(self.dir, "split-%d.jsonl" % i))
            procs.append(subprocess.Popen([LOAD, "-q", "--runner", "%d/2" % i, "-o", outs[i],
                                           "--snapshots", snaps[i], path]))
        for p in procs:
            self.assertEqual(p.wait(timeout=60), 0)
        served = self.journal_total() - before
        parts = []
        for o in outs:
            with open(o) as f:
                parts.append(json.load(f))
        self.assertEqual([p["vus"] for p in parts], [2, 2])
        merged = os.path.join(self.dir, "merged.json")
        p = subprocess.run([LOAD, "-q", "-o", merged, path, "--merge"] + snaps,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(merged) as f:
            r = json.load(f)
        m = r["metrics"]
        self.assertEqual(m["http_reqs"]["count"], served)
        self.assertEqual(m["http_reqs"]["count"],
                         sum(x["metrics"]["http_reqs"]["count"] for x in parts))
        self.assertEqual(r["statusCodes"], {"200": served})
        p99s = [x["metrics"]["http_req_duration"]["p(99)"] for x in parts]
        self.assertTrue(min(p99s) <= m["http_req_duration"]["p(99)"] <= max(p99s), (p99s, m))
        self.assertEqual(m["http_req_duration"]["max"],
                         max(x["metrics"]["http_req_duration"]["max"] for x in parts))
        self.assertTrue(r["thresholdsPassed"])
        self.assertGreaterEqual(len(r["timeline"]), 2)

    def test_thresholds_pass_and_fail(self):
        sc = self.scenario({"url": self.base + "/lg/items/7"})
        r = self.run_load({"vus": 2, "iterations": 300, "scenario": sc,
                           "thresholds": {"http_req_duration": ["p(95)<2000", "avg<2000"],
                                          "http_req_failed": ["rate<0.01"],
                                          "http_reqs": ["count>=300"]}})
        self.assertTrue(r["thresholdsPassed"])
        self.assertEqual(r["status"], "completed")
        r = self.run_load({"vus": 2, "iterations": 300, "scenario": sc,
                           "thresholds": {"http_req_duration": ["p(95)<0.001"],
                                          "http_reqs": ["count>=300"]}}, expect=99)
        self.assertFalse(r["thresholdsPassed"])
        self.assertEqual(r["status"], "failed")
        th = r["thresholds"]
        self.assertFalse(th["http_req_duration"]["p(95)<0.001"]["ok"])
        self.assertTrue(th["http_reqs"]["count>=300"]["ok"])
        # abortOnFail ends a 60 s run after the first second's evaluation
        t = time.time()
        r = self.run_load({"vus": 2, "duration": "60s", "scenario": sc,
                           "thresholds": {"http_reqs": [{"threshold": "count<10",
                                                         "abortOnFail": True}]}}, expect=99)
        self.assertLess(time.time() - t, 10)
        self.assertEqual(r.get("abortedBy"), "threshold")

    def test_slow_target_open_model(self):
        sc = self.scenario({"url": self.base + "/lg/slow"})
        open_model.assert_queued(self, self.run_load(dict(open_model.ONE_VU_20_PER_S,
                                                          scenario=sc)))
        # enough connections: the rate is kept and latency is the service time
        r = self.run_load({"executor": "constant-arrival-rate", "rate": 20, "duration": "2s",
                           "preAllocatedVUs": 2, "maxVUs": 10, "scenario": sc})
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 40)
        self.assertTrue(r["rate"]["kept"])
        self.assertLess(r["metrics"]["http_req_duration"]["p(95)"], 250)

    def test_reset_and_unreachable_are_counted(self):
        r = self.run_load({"vus": 2, "iterations": 50,
                           "scenario": self.scenario({"url": self.base + "/lg/reset"}),
                           "thresholds": {"http_req_failed": ["rate<0.01"]}}, expect=99)
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 50)
        self.assertEqual(r["metrics"]["http_req_failed"]["passes"], 50)
        msgs = " ".join(e["message"] for e in r["errors"])
        self.assertTrue("reset" in msgs or "EOF" in msgs, r["errors"])
        self.assertEqual(sum(e["count"] for e in r["errors"]), 50)
        port = free_port()
        r = self.run_load({"vus": 3, "duration": "1s",
                           "scenario": self.scenario({"url": "http://127.0.0.1:%d/x" % port})})
        self.assertGreater(r["metrics"]["http_reqs"]["count"], 0)
        self.assertEqual(r["metrics"]["http_req_failed"]["rate"], 1)
        self.assertIn("refused", r["errors"][0]["message"])
        # the admin is still fine
        self.assertEqual(self.m.request("GET", "/lg/items/1")[0], 200)

    def test_sigint_stops_within_a_second(self):
        path = os.path.join(self.dir, "long.json")
        out = os.path.join(self.dir, "long-res.json")
        with open(path, "w") as f:
            json.dump({"vus": 4, "duration": "60s",
                       "scenario": self.scenario({"url": self.base + "/lg/slow"})}, f)
        p = subprocess.Popen([LOAD, "-q", "-o", out, path], stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        t = time.time()
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=20)
        took = time.time() - t
        err = p.stderr.read()
        p.stderr.close()
        self.assertEqual(code, 105, err[-2000:])
        self.assertLess(took, 1.0)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual(r["status"], "stopped")
        self.assertGreater(r["metrics"]["http_reqs"]["count"], 0)

    def test_tls_target(self):
        """https targets: verified against SSL_CERT_FILE, or insecureSkipTLSVerify, or refused
        with counted certificate errors."""
        d = tempfile.mkdtemp(prefix="mockarty-load-tls-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        t = Mockarty(ADMIN, env={"HTTP_TLS_CERT_FILE": cert, "HTTP_TLS_KEY_FILE": key})
        t.start()
        try:
            ctx = ssl.create_default_context(cafile=cert)

            def call(method, path, body=None):
                c = http.client.HTTPSConnection("127.0.0.1", t.port, context=ctx, timeout=10)
                c.request(method, path, body=json.dumps(body) if body else None,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                c.close()
                return r.status, json.loads(data) if data else None

            self.assertEqual(call("POST", "/api/v1/mocks", mock("tls-m", "/tls/m"))[0], 201)
            sc = self.scenario({"url": "https://127.0.0.1:%d/tls/m" % t.port})
            r = self.run_load({"vus": 4, "iterations": 300, "insecureSkipTLSVerify": True,
                               "scenario": sc})
            self.assertEqual(r["statusCodes"], {"200": 300})
            old = os.environ.get("SSL_CERT_FILE")
            os.environ["SSL_CERT_FILE"] = cert  # the run verifies against our CA
            try:
                r = self.run_load({"vus": 4, "iterations": 300, "scenario": sc})
            finally:
                if old is None:
                    del os.environ["SSL_CERT_FILE"]
                else:
                    os.environ["SSL_CERT_FILE"] = old
            self.assertEqual(r["statusCodes"], {"200": 300})
            time.sleep(0.5)
            self.assertEqual(call("GET", "/api/v1/requests?limit=1")[1]["total"], 600)
            # without the CA: every request fails verification, counted, no crash
            r = self.run_load({"vus": 2, "iterations": 20, "scenario": sc})
            self.assertEqual(r["metrics"]["http_req_failed"]["passes"], 20)
            self.assertIn("certificate verify failed", r["errors"][0]["message"])
        finally:
            code, err = t.stop()
            self.assertEqual(code, 0, err[-3000:])

    def test_bad_configs(self):
        sc = self.scenario({"url": self.base + "/lg/items/1"})
        cases = [({"vus": 1, "duration": "ten seconds", "scenario": sc}, "malformed duration"),
                 ({"vus": 1, "duration": "1s", "scenario": sc,
                   "thresholds": {"http_req_latency": ["p(95)<1"]}}, "unknown metric"),
                 ({"stages": [{"duration": "1s"}], "scenario": sc}, "target"),
                 ({"vus": 1, "duration": "1s", "script": "export default function() {}"},
                  "k6 JavaScript"),
                 ({"vus": 1, "duration": "1s",
                   "scenario": {"requests": [{"url": "http://{{host}}/"}]}},
                  "unknown variable 'host'")]
        for cfg, want in cases:
            self.assertIn(want, self.run_load(cfg, expect=2))
        msg = self.run_load({"vus": 1, "duration": "1s", "scenario": sc},
                            "--allowed-targets", "*.svc.cluster.local", expect=2)
        self.assertIn("PERF_ALLOWED_TARGETS", msg)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
