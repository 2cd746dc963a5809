"""Proxy mocks, the namespace fallback proxy and record-and-playback against real upstreams: an
echo server of the test's own (a threaded Python server that answers with what it received, a
slow path, a counter), nginx over TLS with a self-signed certificate, and a port nobody listens
on. Usage: proxy_test.py <mockarty binary>"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
from mockarty_proc import Mockarty, free_port  # noqa: E402
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

BINARY = sys.argv[1]


class Echo(BaseHTTPRequestHandler):
    """/slow waits 3 s; /shop/counter counts; /shop/items/<id> names the item (with a cookie);
    anything else answers what it received."""
    protocol_version = "HTTP/1.1"
    counter = 0
    connections = set()

    def log_message(self, *args):
        pass

    def answer(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Upstream", "echo")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass  # the proxy gave up (timeout): nobody reads

    def handle_any(self):
        Echo.connections.add(self.client_address)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        path, _, query = self.path.partition("?")
        if path == "/slow":
            time.sleep(3)
            return self.answer(200, {"slow": True})
        if path == "/shop/counter":
            Echo.counter += 1
            return self.answer(200, {"n": Echo.counter})
        if path.startswith("/shop/items/"):
            item = path.rsplit("/", 1)[1]
            return self.answer(200, {"id": item, "name": "item-" + item},
                               [("Set-Cookie", "sid=secret; Path=/")])
        if path == "/shop/orders":
            return self.answer(201, {"created": True, "order": json.loads(body or "{}")})
        self.answer(200, {"method": self.command, "path": path, "query": query, "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def start_echo():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_tls_nginx(workdir):
    d = tempfile.mkdtemp(prefix="nginx-tls-", dir=workdir)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", d + "/key.pem", "-out", d + "/cert.pem"],
                   check=True, capture_output=True)
    port = free_port()
    with open(d + "/nginx.conf", "w") as f:
        f.write("""daemon off; master_process off; worker_processes 1; pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn; events { worker_connections 256; }
http { access_log off; client_body_temp_path %(d)s/cb; proxy_temp_path %(d)s/p;
  fastcgi_temp_path %(d)s/f; uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  server { listen 127.0.0.1:%(port)d ssl; ssl_certificate %(d)s/cert.pem;
    ssl_certificate_key %(d)s/key.pem; default_type application/json;
    location / { return 200 '{"tls":true,"uri":"$uri"}'; } } }
""" % {"d": d, "port": port})
    proc = subprocess.Popen([services.NGINX, "-p", d + "/", "-c", d + "/nginx.conf"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if services.port_open(port):
            break
        time.sleep(0.05)
    return proc, port


def req(node, method, path, body=None, headers=None, timeout=15):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    t0 = time.time()
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return resp.status, parsed, raw, resp, time.time() - t0


def create(node, mock):
    st, body, raw, _, _ = req(node, "POST", "/api/v1/mocks", mock)
    check(st in (200, 201), "create mock %s (%s %s)" % (mock.get("id"), st, raw[:200]))
    return st, body


def scenario_proxy(node, echo, tls_port, dead_port):
    up = "http://127.0.0.1:%d" % echo
    create(node, {"id": "px-basic", "http": {"route": "/api/users/:id", "httpMethod": "ANY",
                                              "header": [{"path": "X-Route", "value": "up"}]},
                  "proxy": {"target": up, "headers": {"X-Added": "by-proxy"},
                            "removeHeaders": ["X-Secret"]}})
    st, b, raw, r, _ = req(node, "GET", "/api/users/42?x=1&y=%20z",
                           headers={"X-Route": "up", "X-Secret": "s", "Connection": "keep-alive"})
    check(st == 200 and b["path"] == "/api/users/42" and b["query"] == "x=1&y=%20z"
          and r.getheader("X-Upstream") == "echo",
          "GET through the proxy mock reaches the upstream with path and query (%s %s)"
          % (st, raw[:200]))
    check(b["headers"].get("x-route") == "up" and b["headers"].get("x-added") == "by-proxy"
          and "x-secret" not in b["headers"],
          "request headers forwarded, proxy.headers added, removeHeaders dropped")
    st, b, raw, _, _ = req(node, "POST", "/api/users/7", body={"name": "Ann"},
                           headers={"X-Route": "up"})
    check(st == 200 and b["method"] == "POST" and json.loads(b["body"]) == {"name": "Ann"},
          "POST body forwarded (%s %s)" % (st, raw[:200]))
    st, _, _, _, _ = req(node, "GET", "/api/users/42")
    check(st == 404, "the mock's conditions hold as usual (no X-Route header: 404)")

    # Overrides and a delay on top of the upstream's answer.
    create(node, {"id": "px-over", "http": {"route": "/over/:id", "httpMethod": "GET"},
                  "proxy": {"target": up, "override": {
                      "statusCode": 203, "headers": {"X-Mocked": "yes", "X-Upstream": "hidden"},
                      "payload": {"extra": True, "headers": {"x-merged": "1"}}}},
                  "response": {"delay": 300}})
    st, b, raw, r, took = req(node, "GET", "/over/5")
    check(st == 203 and r.getheader("X-Mocked") == "yes" and r.getheader("X-Upstream") == "hidden",
          "override: status and headers replaced (%s %s)" % (st, r.getheaders()))
    check(b and b.get("extra") is True and b["path"] == "/over/5"
          and b["headers"].get("x-merged") == "1" and "host" in b["headers"],
          "override: payload merged into the upstream's JSON (deep) (%s)" % raw[:300])
    check(took >= 0.3, "the response's delay applies on top (%.3f s)" % took)

    create(node, {"id": "px-fault", "http": {"route": "/faulty", "httpMethod": "GET"},
                  "proxy": {"target": up},
                  "response": {"fault": "CONNECTION_RESET_BY_PEER"}})
    try:
        req(node, "GET", "/faulty")
        check(False, "a fault on a proxy mock breaks the connection")
    except (ConnectionError, http.client.HTTPException, OSError):
        check(True, "a fault on a proxy mock breaks the connection")

    # Failures: a slow upstream past the timeout, nobody listening, an unverified certificate.
    create(node, {"id": "px-slow", "http": {"route": "/slow", "httpMethod": "GET"},
                  "proxy": {"target": up, "timeout": 500}})
    st, b, raw, _, took = req(node, "GET", "/slow")
    check(st == 502 and "timed out" in b["error"] and b["code"] == "bad_gateway",
          "slow upstream: 502 naming the timeout (%s %s)" % (st, raw[:200]))
    check(0.45 <= took < 2.5, "the timeout is bounded (%.2f s)" % took)
    create(node, {"id": "px-dead", "http": {"route": "/dead", "httpMethod": "GET"},
                  "proxy": {"target": "http://127.0.0.1:%d" % dead_port}})
    st, b, raw, _, _ = req(node, "GET", "/dead")
    check(st == 502 and "onnect" in b["error"] and str(dead_port) in b["error"],
          "refused connection: 502 with the reason (%s %s)" % (st, raw[:200]))
    create(node, {"id": "px-tls", "http": {"route": "/tls", "httpMethod": "GET"},
                  "proxy": {"target": "https://127.0.0.1:%d" % tls_port}})
    st, b, raw, _, _ = req(node, "GET", "/tls")
    check(st == 502 and "certificate" in b["error"].lower(),
          "TLS upstream with a self-signed certificate: verified by default, 502 (%s)" % raw[:200])
    create(node, {"id": "px-tls-ok", "http": {"route": "/tls-ok", "httpMethod": "GET"},
                  "proxy": {"target": "https://127.0.0.1:%d" % tls_port, "insecure": True}})
    st, b, raw, _, _ = req(node, "GET", "/tls-ok")
    check(st == 200 and b == {"tls": True, "uri": "/tls-ok"},
          "insecure: true opts out of verification (%s %s)" % (st, raw[:200]))

    st, j, raw, _, _ = req(node, "GET", "/api/v1/requests?limit=200")
    j = j or {}
    items = (j.get("items") or j.get("requests") or []) if isinstance(j, dict) else j
    slow = [e for e in items if e.get("mockId") == "px-slow"]
    check(slow and slow[0]["response"]["status"] == 502
          and "timed out" in json.dumps(slow[0]["response"]),
          "the journal records the 502 and its reason (%s)" % json.dumps(slow[:1])[:300])

    st, b, raw, _, _ = req(node, "POST", "/api/v1/mocks",
                           {"id": "bad", "http": {"route": "/b", "httpMethod": "GET"},
                            "proxy": {"target": "ftp://x"}})
    check(st == 400 and "proxy.target" in raw.decode(), "a bad target is a 400 naming the field")
    st, b, raw, _, _ = req(node, "POST", "/api/v1/mocks",
                           {"id": "bad", "http": {"route": "/b", "httpMethod": "GET"},
                            "proxy": {"target": up, "timeout": -1}})
    check(st == 400 and "proxy.timeout" in raw.decode(), "a bad timeout is a 400 naming it")

    # Keep-alive: many requests through the proxy use few upstream connections.
    before = len(Echo.connections)
    for i in range(30):
        req(node, "GET", "/api/users/%d" % i, headers={"X-Route": "up"})
    check(len(Echo.connections) - before <= 4,
          "upstream connections are pooled (%d new for 30 requests)"
          % (len(Echo.connections) - before))


def scenario_fallback(node, echo):
    up = "http://127.0.0.1:%d" % echo
    create(node, {"id": "fb-own", "namespace": "fb", "http": {"route": "/own", "httpMethod": "GET"},
                  "response": {"statusCode": 200, "payload": {"own": True}}})
    st, _, _, _, _ = req(node, "GET", "/stubs/fb/elsewhere")
    check(st == 404, "before a fallback: unmatched is 404")
    st, b, raw, _, _ = req(node, "PUT", "/api/v1/namespaces/fb/fallback-proxy",
                           {"target": up, "timeout": 2000})
    check(st == 200 and b["target"] == up, "PUT fallback-proxy (%s %s)" % (st, raw[:200]))
    st, b, _, _, _ = req(node, "GET", "/api/v1/namespaces/fb/fallback-proxy")
    check(st == 200 and b["target"] == up and b["timeout"] == 2000, "GET fallback-proxy")
    st, b, raw, _, _ = req(node, "GET", "/stubs/fb/elsewhere/deep?q=1")
    check(st == 200 and b["path"] == "/elsewhere/deep" and b["query"] == "q=1",
          "unmatched requests go to the fallback upstream (%s %s)" % (st, raw[:200]))
    st, b, _, _, _ = req(node, "GET", "/stubs/fb/own")
    check(st == 200 and b == {"own": True}, "the namespace's own mocks still answer first")
    st, _, _, _, _ = req(node, "GET", "/stubs/other/elsewhere")
    check(st == 404, "other namespaces are not affected")
    st, _, _, _, _ = req(node, "DELETE", "/api/v1/namespaces/fb/fallback-proxy")
    check(st == 200, "DELETE fallback-proxy")
    st, _, _, _, _ = req(node, "GET", "/stubs/fb/elsewhere")
    check(st == 404, "after the delete: 404 again")


def scenario_recording(node, echo_srv):
    up = "http://127.0.0.1:%d" % echo_srv.server_address[1]
    st, s, raw, _, _ = req(node, "POST", "/api/v1/recorder/start",
                           {"name": "shop", "targetUrl": up, "namespace": "rec",
                            "pathPrefix": "/shop", "filters": {"excludePaths": ["/health"]}})
    check(st == 201 and s["status"] == "recording" and s["namespace"] == "rec",
          "recorder/start (%s %s)" % (st, raw[:200]))
    sid = s["id"]
    auth = {"Authorization": "Bearer top-secret", "Cookie": "a=b"}
    seen = []
    for path in ["/shop/items/1", "/shop/items/2", "/shop/items/1", "/shop/counter",
                 "/shop/counter", "/shop/health"]:
        st, b, _, _, _ = req(node, "GET", "/stubs/rec" + path, headers=auth)
        seen.append((st, b))
    st, b, _, _, _ = req(node, "POST", "/stubs/rec/shop/orders", body={"sku": "A"}, headers=auth)
    check(all(x[0] == 200 for x in seen) and st == 201 and seen[3][1] == {"n": 1},
          "while recording, requests are forwarded to the upstream")
    st, lst, _, _, _ = req(node, "GET", "/api/v1/recorder/sessions")
    check(st == 200 and isinstance(lst, list) and any(x["id"] == sid for x in lst),
          "recorder/sessions lists it (a bare array)")
    st, es, raw, _, _ = req(node, "GET", "/api/v1/recorder/%s/entries" % sid)
    check(st == 200 and isinstance(es, list) and len(es) == 6,
          "6 entries recorded (the excluded path left out) (%s %d)"
          % (st, len(es) if isinstance(es, list) else -1))
    check(all(e["requestHeaders"].get("Authorization") == "[REDACTED]"
              and e["requestHeaders"].get("Cookie") == "[REDACTED]" for e in es)
          and es[0]["responseHeaders"].get("Set-Cookie") == "[REDACTED]",
          "Authorization, Cookie and Set-Cookie are redacted in the entries")
    check(es[0]["method"] == "GET" and es[0]["path"] == "/shop/items/1"
          and es[0]["statusCode"] == 200 and json.loads(es[0]["responseBody"])["id"] == "1",
          "an entry holds the exchange")
    st, s2, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/stop" % sid)
    check(st == 200 and s2["status"] == "stopped" and s2["entryCount"] == 6, "recorder stop")
    st, _, _, _, _ = req(node, "GET", "/stubs/rec/shop/items/1")
    check(st == 404, "after stop nothing is proxied or recorded")

    st, mocks, raw, _, _ = req(node, "POST", "/api/v1/recorder/%s/mocks" % sid,
                               {"parametrize": True})
    check(st == 201 and isinstance(mocks, list) and len(mocks) == 3,
          "convert: items/1, items/2 (:id), counter, orders collapse to 3 mocks (%s %s)"
          % (st, raw[:400]))
    routes = sorted((m["http"]["httpMethod"], m["http"]["route"]) for m in (mocks or []))
    check(routes == [("GET", "/shop/counter"), ("GET", "/shop/items/:id"),
                     ("POST", "/shop/orders")], "routes parametrised (%s)" % routes)
    items = [m for m in mocks or [] if m["http"]["route"] == "/shop/items/:id"]
    check(items and "Set-Cookie" not in json.dumps(items[0]),
          "Set-Cookie is not replayed (redacted by default)")

    # Playback with the upstream gone.
    echo_srv.shutdown()
    echo_srv.server_close()
    st, b, raw, r, _ = req(node, "GET", "/stubs/rec/shop/items/9")
    check(st == 200 and b == {"id": "1", "name": "item-1"} and r.getheader("Set-Cookie") is None,
          "playback without the upstream: the recorded answer (%s %s)" % (st, raw[:200]))
    st, b, _, _, _ = req(node, "GET", "/stubs/rec/shop/items/9")
    check(st == 200 and b == {"id": "2", "name": "item-2"},
          "different recorded answers for one route play back in order")
    c1 = req(node, "GET", "/stubs/rec/shop/counter")[1]
    c2 = req(node, "GET", "/stubs/rec/shop/counter")[1]
    check(c1 == {"n": 1} and c2 == {"n": 2}, "the counter replays 1 then 2 (%s %s)" % (c1, c2))
    st, b, _, _, _ = req(node, "POST", "/stubs/rec/shop/orders", body={"sku": "A"})
    check(st == 201 and b == {"created": True, "order": {"sku": "A"}}, "the POST replays its 201")

    st, _, _, _, _ = req(node, "DELETE", "/api/v1/recorder/%s" % sid)
    check(st == 200, "recorder delete")
    st, _, _, _, _ = req(node, "GET", "/api/v1/recorder/%s" % sid)
    check(st == 404, "a deleted session is gone")


def main():
    services.install_signal_handlers()
    workdir = services.make_workdir("mk-proxy-")
    echo = start_echo()
    rec_echo = start_echo()
    tls_proc, tls_port = start_tls_nginx(workdir)
    node = Mockarty(BINARY, workdir=workdir).start()
    try:
        scenario_proxy(node, echo.server_address[1], tls_port, free_port())
        scenario_fallback(node, echo.server_address[1])
        scenario_recording(node, rec_echo)
    finally:
        code, err = node.stop()
        tls_proc.terminate()
        tls_proc.wait(10)
        echo.shutdown()
        problems = services.sanitizer_problems(err)
        check(code == 0 and not problems,
              "the admin stops cleanly, sanitizers quiet (%s %s)"
              % (code, "\n".join(problems)[:2000]))
    sys.exit(harness.finish())


if __name__ == "__main__":
    main()
