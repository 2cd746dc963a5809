"""mockarty-load speaking HTTP/2 ("http2": true): h2c with prior knowledge against our own admin
(the mock's journal counts exactly http_reqs) and against nginx, h2 by ALPN over TLS against nginx
with http2, and the fall back to HTTP/1.1 when the TLS server offers no h2; nginx's access log
shows which protocol each request came in on. A server that does not speak h2c gives counted
errors, not a crash."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
from mockarty_proc import Mockarty  # noqa: E402
from support import services  # noqa: E402

ADMIN, LOAD = sys.argv[1], sys.argv[2]
BIG = 300 * 1024  # more than HTTP/2's default 64 KiB windows: WINDOW_UPDATEs must flow


class NginxH2(services.Nginx):
    """nginx serving a static tree on three ports: h2c (prior knowledge), TLS with h2 and
    http/1.1 by ALPN, TLS with http/1.1 only; one access log line per request with the
    protocol."""

    def __init__(self, workdir):
        super().__init__(workdir, [])
        d = self.dir
        self.h2c, self.h2tls, self.h1tls = self.port, services.free_port(), services.free_port()
        os.makedirs(os.path.join(d, "www"))
        with open(os.path.join(d, "www", "ok"), "w") as f:
            f.write("ok\n")
        with open(os.path.join(d, "www", "big"), "wb") as f:
            f.write(b"x" * BIG)
        for p in (workdir, d, d + "/www"):  # nginx's worker runs unprivileged
            os.chmod(p, 0o755)
        for p in ("ok", "big"):
            os.chmod(os.path.join(d, "www", p), 0o644)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", d + "/key.pem", "-out",
                        d + "/cert.pem"], check=True, capture_output=True)
        self.access = os.path.join(d, "access.log")
        tls = "ssl_certificate %s/cert.pem; ssl_certificate_key %s/key.pem;" % (d, d)
        with open(self.conf, "w") as f:
            f.write(services.nginx_conf(d, """\
    log_format proto '$server_port $server_protocol $status $request_method $uri $args';
    access_log %(d)s/access.log proto;
    root %(d)s/www;
    keepalive_requests 100000;
    http2_max_requests 100000;
    server { listen 127.0.0.1:%(h2c)d http2; }
    server { listen 127.0.0.1:%(h2tls)d ssl http2; %(tls)s }
    server { listen 127.0.0.1:%(h1tls)d ssl; %(tls)s }
""" % {"d": d, "h2c": self.h2c, "h2tls": self.h2tls, "h1tls": self.h1tls, "tls": tls},
                worker_connections=1024))

    def lines(self, port):
        """Access log lines of one port, after nginx has written them."""
        time.sleep(0.3)
        with open(self.access) as f:
            return [x.split() for x in f if x.startswith("%d " % port)]


class LoadgenH2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mockarty-load-h2-")
        cls.m = Mockarty(ADMIN).start()
        cls.base = "http://127.0.0.1:%d" % cls.m.port
        for d in ({"id": "h2-item", "http": {"route": "/h2/items/:id", "httpMethod": "GET"},
                   "response": {"statusCode": 200, "payload": {"ok": True}}},
                  {"id": "h2-order", "http": {"route": "/h2/orders", "httpMethod": "POST"},
                   "response": {"statusCode": 201, "payload": {"ok": True}}},
                  {"id": "h2-slow", "http": {"route": "/h2/slow", "httpMethod": "GET"},
                   "response": {"statusCode": 200, "payload": {"ok": True}, "delay": 1000}}):
            s, _, raw, _ = cls.m.request("POST", "/api/v1/mocks", d)
            assert s == 201, raw
        cls.ng = NginxH2(cls.dir).start()

    @classmethod
    def tearDownClass(cls):
        cls.ng.cleanup()
        code, err = cls.m.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, err[-3000:]

    def run_load(self, cfg):
        path, out = os.path.join(self.dir, "cfg.json"), os.path.join(self.dir, "res.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        if os.path.exists(out):
            os.unlink(out)
        p = subprocess.run([LOAD, "-q", "-o", out, path], capture_output=True, text=True,
                           timeout=60)
        self.assertNotIn("Sanitizer", p.stderr)
        self.assertIn(p.returncode, (0, 99), p.stderr[-3000:])
        with open(out) as f:
            return json.load(f)

    def journal(self, mock_id):
        last, since = -1, time.time()
        while True:  # the journal is appended off the serving path: wait until it settles
            s, body, _, _ = self.m.request("GET", "/api/v1/requests?limit=1&mockId=" + mock_id)
            self.assertEqual(s, 200)
            if body["total"] != last:
                last, since = body["total"], time.time()
            elif time.time() - since > 0.3:
                return last, body["requests"]
            time.sleep(0.05)

    def test_h2c_against_the_admin_counts_equal_the_journal(self):
        before_get, _ = self.journal("h2-item")
        before_post, _ = self.journal("h2-order")
        r = self.run_load({"vus": 6, "iterations": 1200, "threads": 2, "http2": True,
                           "scenario": {"requests": [
                               {"url": self.base + "/h2/items/{{$randomInt}}", "weight": 3},
                               {"method": "POST", "url": self.base + "/h2/orders",
                                "headers": {"X-Trace": "t-{{$uuid}}"},
                                "body": {"id": "{{$uuid}}", "sku": "A1"}}]}})
        m = r["metrics"]
        self.assertEqual(m["http_reqs"]["count"], 1200, r.get("errors"))
        self.assertEqual(m["http_req_failed"]["passes"], 0)
        gets, _ = self.journal("h2-item")
        posts, last = self.journal("h2-order")
        self.assertEqual((gets - before_get) + (posts - before_post), 1200)
        self.assertEqual(r["statusCodes"], {"200": gets - before_get, "201": posts - before_post})
        body = json.loads(last[0]["request"]["body"])
        self.assertEqual(body["sku"], "A1")
        self.assertEqual(len(body["id"]), 36)
        self.assertGreater(m["data_sent"]["count"], 0)
        self.assertGreater(m["data_received"]["count"], 0)
        self.assertIn("p(99)", m["http_req_duration"])

    def test_open_model_and_timeouts(self):
        before, _ = self.journal("h2-item")
        r = self.run_load({"executor": "constant-arrival-rate", "rate": 300, "duration": "1s",
                           "preAllocatedVUs": 20, "http2": True,
                           "scenario": {"requests": [{"url": self.base + "/h2/items/1"}]}})
        after, _ = self.journal("h2-item")
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 300)
        self.assertEqual(after - before, 300)
        # a stream that does not answer within the timeout: counted, the session dropped
        t0 = time.time()
        r = self.run_load({"vus": 2, "duration": "1s", "timeout": "200ms", "http2": True,
                           "scenario": {"requests": [{"url": self.base + "/h2/slow"}]}})
        self.assertLess(time.time() - t0, 10)
        m = r["metrics"]
        self.assertGreaterEqual(m["http_reqs"]["count"], 4)
        self.assertEqual(m["http_req_failed"]["passes"], m["http_reqs"]["count"])
        self.assertEqual({e["message"] for e in r["errors"]}, {"request timeout"})

    def test_h2c_against_nginx_arrives_as_http2(self):
        r = self.run_load({"vus": 4, "duration": "1s", "http2": True,
                           "scenario": {"requests": [
                               {"url": "http://127.0.0.1:%d/ok" % self.ng.h2c, "weight": 4},
                               {"url": "http://127.0.0.1:%d/big" % self.ng.h2c}]}})
        n = r["metrics"]["http_reqs"]["count"]
        self.assertGreater(n, 50)
        lines = self.ng.lines(self.ng.h2c)
        self.assertEqual(len(lines), n)
        self.assertEqual({x[1] for x in lines}, {"HTTP/2.0"})
        self.assertEqual(r["statusCodes"], {"200": n})
        bigs = sum(1 for x in lines if x[4] == "/big")
        self.assertGreater(bigs, 0)
        self.assertGreater(r["metrics"]["data_received"]["count"], bigs * BIG)

    def tls_run(self, port, http2):
        cfg = {"vus": 3, "iterations": 300, "insecureSkipTLSVerify": True,
               "scenario": {"requests": [{"url": "https://localhost:%d/ok" % port},
                                         {"method": "POST", "url": "https://localhost:%d/ok"
                                          % port, "body": "x"}]}}
        if http2:
            cfg["http2"] = True
        before = len(self.ng.lines(port))
        r = self.run_load(cfg)
        lines = self.ng.lines(port)[before:]
        self.assertEqual(r["metrics"]["http_reqs"]["count"], 300)
        self.assertEqual(len(lines), 300)
        return r, {x[1] for x in lines}

    def test_tls_alpn_h2_and_fallback(self):
        # nginx answers a POST to a static file with 405: statuses prove the responses were read
        r, protos = self.tls_run(self.ng.h2tls, True)
        self.assertEqual(protos, {"HTTP/2.0"})
        self.assertEqual(sum(r["statusCodes"].values()), 300)
        self.assertEqual(set(r["statusCodes"]) - {"200", "405"}, set())
        r, protos = self.tls_run(self.ng.h1tls, True)  # no h2 offered: HTTP/1.1
        self.assertEqual(protos, {"HTTP/1.1"})
        self.assertEqual(set(r["statusCodes"]) - {"200", "405"}, set())
        r, protos = self.tls_run(self.ng.h2tls, False)  # not asked: HTTP/1.1
        self.assertEqual(protos, {"HTTP/1.1"})

    def test_per_request_option(self):
        # a request's own "http2" wins over the run's; the VU reconnects when it changes
        port = self.ng.h2tls
        url = "https://localhost:%d/ok" % port
        before = len(self.ng.lines(port))
        r = self.run_load({"vus": 2, "iterations": 200, "insecureSkipTLSVerify": True,
                           "http2": True, "seed": 7,
                           "scenario": {"requests": [{"url": url + "?v=2"},
                                                     {"url": url + "?v=1", "http2": False}]}})
        self.assertEqual(r["statusCodes"], {"200": 200})
        lines = self.ng.lines(port)[before:]
        self.assertEqual(len(lines), 200)
        by_arg = {(x[5], x[1]) for x in lines}
        self.assertEqual(by_arg, {("v=2", "HTTP/2.0"), ("v=1", "HTTP/1.1")})

    def test_h2c_against_an_http1_only_server_counts_errors(self):
        # the TLS-only port sees the h2c preface as garbage: failures counted, no crash
        r = self.run_load({"vus": 2, "iterations": 20, "http2": True, "timeout": "5s",
                           "scenario": {"requests": [
                               {"url": "http://127.0.0.1:%d/ok" % self.ng.h1tls}]}})
        m = r["metrics"]
        self.assertEqual(m["http_reqs"]["count"], 20)
        self.assertEqual(m["http_req_failed"]["passes"], 20)
        self.assertEqual(sum(e["count"] for e in r["errors"]), 20)
        self.assertIn("http2", " ".join(e["message"] for e in r["errors"]), r["errors"])

    def test_bad_option(self):
        path = os.path.join(self.dir, "bad.json")
        for run_opt, req_opt, where in (("yes", True, "http2"), (True, 1, "requests[0]: http2")):
            cfg = {"vus": 1, "iterations": 1, "http2": run_opt, "scenario": {"requests": [
                {"url": self.base + "/h2/items/1", "http2": req_opt}]}}
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([LOAD, "-q", path], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2)
            self.assertIn(where + ": a boolean expected", p.stderr)


if __name__ == "__main__":
    services.install_signal_handlers()
    unittest.main(argv=sys.argv[:1], verbosity=2)
