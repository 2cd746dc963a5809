"""The recorder's tools against real upstreams: HAR 1.2 export (and its round trip through our own
HAR import), entry annotations, replay of a session or one entry (against the recorded upstream,
one that answers differently, a slow one and a port nobody listens on, with the admin API still
answering meanwhile), correlation and saved recorder configs.
Usage: recorder_test.py <mockarty binary>"""
import base64
import datetime
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from mockarty_proc import Mockarty, free_port  # noqa: E402
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402
from proxy_test import Echo, req  # noqa: E402

BINARY = sys.argv[1]
LOGO = bytes(range(256)) * 3  # not UTF-8: recorded (and exported) as base64


class Upstream(Echo):
    """Echo's paths, plus a binary image and a login handing out a token."""

    def handle_shop(self):
        path = self.path.partition("?")[0]
        if path == "/shop/logo.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(LOGO)))
            self.end_headers()
            self.wfile.write(LOGO)
            return
        if path == "/shop/old":
            self.send_response(302)
            self.send_header("Location", "/shop/items/1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/shop/login":
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            return self.answer(200, {"data": {"token": "tok-7f3a9c2e51", "user": {"id": 4242}}},
                               [("Set-Cookie", "session=sess-abc123xyz; Path=/")])
        return self.handle_any()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_shop


class Other(BaseHTTPRequestHandler):
    """Another deployment: 404 for everything, or a 2 s wait when slow is set."""
    protocol_version = "HTTP/1.1"
    slow = False

    def log_message(self, *args):
        pass

    def do_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if self.slow:
            time.sleep(2)
        data = b'{"missing":true}'
        try:
            self.send_response(404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass

    do_GET = do_POST = do_any


class Slow(Other):
    slow = True


def serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def record(node, up):
    st, s, raw, _, _ = req(node, "POST", "/api/v1/recorder/start",
                           {"name": "tools", "targetUrl": up, "namespace": "rt",
                            "pathPrefix": "/shop"})
    check(st == 201, "recorder/start (%s %s)" % (st, raw[:200]))
    sid = s["id"]
    auth = {"Authorization": "Bearer top-secret"}
    calls = [("GET", "/shop/items/1", None, auth), ("GET", "/shop/items/2", None, {}),
             ("GET", "/shop/logo.png", None, {}),
             ("POST", "/shop/orders", {"sku": "A"}, auth),
             ("GET", "/shop/search?q=a%20b&n=1", None, dict(auth, **{"X-Trace": "t1"}))]
    answers = []
    for method, path, body, headers in calls:
        st, b, raw, _, _ = req(node, method, "/stubs/rt" + path, body=body, headers=headers)
        answers.append((st, raw))
    check([a[0] for a in answers] == [200, 200, 200, 201, 200] and answers[2][1] == LOGO,
          "recording: the upstream answered through the session (%s)" % [a[0] for a in answers])
    st, s2, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/stop" % sid)
    check(st == 200 and s2["entryCount"] == 5, "5 entries recorded (%s)" % s2)
    st, es, _, _, _ = req(node, "GET", "/api/v1/recorder/%s/entries" % sid)
    return sid, es, answers


def scenario_export(node, up, sid, es, answers):
    st, har, raw, resp, _ = req(node, "POST", "/api/v1/recorder/%s/export" % sid)
    check(st == 200 and "attachment" in (resp.getheader("Content-Disposition") or ""),
          "export: 200 as an attachment (%s %s)" % (st, raw[:200]))
    har = json.loads(raw)  # python's json reads it
    log = har["log"]
    check(log["version"] == "1.2" and log["creator"]["name"] == "mockarty"
          and len(log["entries"]) == 5, "a HAR 1.2 log with the 5 entries")
    ok = True
    for e in log["entries"]:
        datetime.datetime.strptime(e["startedDateTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        r, s = e["request"], e["response"]
        ok = ok and isinstance(e["time"], int) and {"send", "wait", "receive"} <= set(e["timings"])
        ok = ok and {"method", "url", "httpVersion", "headers", "queryString", "cookies",
                     "headersSize", "bodySize"} <= set(r)
        ok = ok and {"status", "statusText", "httpVersion", "headers", "cookies", "content",
                     "redirectURL"} <= set(s) and {"size", "mimeType", "text"} <= set(s["content"])
    check(ok, "every entry has HAR 1.2's required fields")
    by_path = {e["request"]["url"][len(up):]: e for e in log["entries"]}
    check(sorted(by_path) == sorted(["/shop/items/1", "/shop/items/2", "/shop/logo.png",
                                     "/shop/orders", "/shop/search?q=a%20b&n=1"]),
          "request URLs are the upstream's (%s)" % sorted(by_path))
    search = by_path["/shop/search?q=a%20b&n=1"]["request"]
    check(search["queryString"] == [{"name": "q", "value": "a b"}, {"name": "n", "value": "1"}],
          "queryString decoded (%s)" % search["queryString"])
    hdr = {h["name"].lower(): h["value"] for h in search["headers"]}
    check(hdr.get("authorization") == "[REDACTED]" and hdr.get("x-trace") == "t1",
          "redacted request headers stay redacted, others are kept (%s)" % hdr)
    item = by_path["/shop/items/1"]["response"]
    rh = {h["name"].lower(): h["value"] for h in item["headers"]}
    check(rh.get("set-cookie") == "[REDACTED]" and item["statusText"] == "OK"
          and json.loads(item["content"]["text"]) == {"id": "1", "name": "item-1"}
          and item["content"]["mimeType"] == "application/json",
          "response: Set-Cookie redacted, status text, content text and mimeType (%s)" % item)
    order = by_path["/shop/orders"]
    check(order["request"]["postData"]["mimeType"] == "application/json"
          and json.loads(order["request"]["postData"]["text"]) == {"sku": "A"}
          and order["response"]["status"] == 201 and order["response"]["statusText"] == "Created",
          "postData of the POST, its 201 Created")
    logo = by_path["/shop/logo.png"]["response"]["content"]
    check(logo.get("encoding") == "base64" and base64.b64decode(logo["text"]) == LOGO
          and logo["size"] == len(LOGO), "binary content: base64 that decodes to the bytes served")
    st, har2, raw2, _, _ = req(node, "GET", "/api/v1/recorder/%s/export" % sid)
    check(st == 200 and har2 == har, "GET export (browsers) gives the same document")
    st, b, raw, _, _ = req(node, "POST", "/api/v1/recorder/nope/export")
    check(st == 404 and "nope" in b["error"], "export of an unknown session: 404 naming it")

    # Round trip: our own HAR import makes mocks that answer as the upstream did.
    st, b, raw, _, _ = req(node, "POST", "/api/v1/generators/har",
                           {"spec": raw2.decode(), "namespace": "hartrip"})
    check(st == 201 and b["created"] >= 4, "the export imports as HAR (%s %s)" % (st, raw[:300]))
    for (method, path, body), (st0, raw0) in zip(
            [("GET", "/shop/items/1", None), ("GET", "/shop/items/2", None),
             ("POST", "/shop/orders", {"sku": "A"}), ("GET", "/shop/search?q=a%20b&n=1", None)],
            [answers[0], answers[1], answers[3], answers[4]]):
        st, b, raw, _, _ = req(node, method, "/stubs/hartrip" + path, body=body)
        check(st == st0 and json.loads(raw) == json.loads(raw0),
              "round trip: %s %s answers as recorded (%s %s)" % (method, path, st, raw[:150]))


def scenario_annotate(node, sid, es):
    eid = es[0]["id"]
    note = {"note": "first item", "tags": ["catalog"], "n": 1}
    st, b, raw, _, _ = req(node, "PATCH", "/api/v1/recorder/%s/entries/%s" % (sid, eid), note)
    check(st == 200 and b["annotation"] == note, "PATCH annotates the entry (%s %s)"
          % (st, raw[:200]))
    st, es2, _, _, _ = req(node, "GET", "/api/v1/recorder/%s/entries" % sid)
    check(es2[0]["annotation"] == note and "annotation" not in es2[1],
          "the annotation is returned with the entries")
    st, har, _, _, _ = req(node, "GET", "/api/v1/recorder/%s/export" % sid)
    check(har["log"]["entries"][0].get("_annotation") == note, "and kept in the export")
    st, b, _, _, _ = req(node, "PATCH", "/api/v1/recorder/%s/entries/missing-1" % sid, note)
    check(st == 404 and "entry 'missing-1'" in b["error"] and sid in b["error"],
          "unknown entry: 404 naming the entry and the session (%s)" % b)
    st, b, _, _, _ = req(node, "PATCH", "/api/v1/recorder/nosuch/entries/%s" % eid, note)
    check(st == 404 and "recorder session 'nosuch'" in b["error"],
          "unknown session: 404 naming the session (%s)" % b)
    st, b, _, _, _ = req(node, "PATCH", "/api/v1/recorder/%s/entries/%s" % (sid, eid), [1])
    check(st == 400 and "object" in b["error"], "a non-object annotation is a 400")


def replay(node, sid, opts, timeout=30):
    return req(node, "POST", "/api/v1/recorder/%s/replay" % sid, opts, timeout=timeout)


def scenario_replay(node, up, sid, es):
    st, s, raw, _, _ = replay(node, sid, {})
    check(st == 200 and s["sessionId"] == sid and s["totalEntries"] == 5 and s["matched"] == 5
          and s["mismatched"] == 0 and s["failed"] == 0 and s["skipped"] == 0,
          "replay against the original upstream: 5 of 5 match (%s)" % raw[:400])
    res = {r["entryId"]: r for r in s["results"]}
    item = res[es[0]["id"]]
    check(item["originalStatus"] == 200 and item["newStatus"] == 200 and item["statusMatch"]
          and item["replayedUrl"] == up + "/shop/items/1" and "item-1" in item["responsePreview"]
          and isinstance(item["durationMs"], int), "a result names status, URL and preview")
    order = res[es[3]["id"]]
    check(order["newStatus"] == 201 and '"sku": "A"' in order["responsePreview"],
          "the POST is sent again with its body (%s)" % order)
    preview = res[es[4]["id"]]["responsePreview"]
    check("t1" in preview and "REDACTED" not in preview and "top-secret" not in preview,
          "recorded headers are sent again, redacted placeholders are not (%s)" % preview)
    check(res[es[2]["id"]]["statusMatch"] and "not UTF-8" in res[es[2]["id"]]["responsePreview"],
          "a binary answer has a note, not bytes, as preview")

    other = serve(Other)
    st, s, raw, _, _ = replay(node, sid, {"targetUrl": "http://127.0.0.1:%d"
                                          % other.server_address[1], "concurrency": 3})
    check(st == 200 and s["mismatched"] == 5 and s["matched"] == 0
          and all(r["newStatus"] == 404 and r["replayedUrl"].startswith(
              "http://127.0.0.1:%d/shop/" % other.server_address[1]) for r in s["results"]),
          "replay against targetUrl answering 404: 5 mismatched (%s)" % raw[:300])
    other.shutdown()

    dead = free_port()
    t0 = time.time()
    st, s, raw, _, _ = replay(node, sid, {"targetUrl": "http://127.0.0.1:%d" % dead,
                                          "timeoutMs": 2000})
    check(st == 200 and s["failed"] == 5 and all(r.get("error") for r in s["results"])
          and time.time() - t0 < 10, "an unreachable target: 5 failed, each with its error (%s)"
          % raw[:300])

    st, s, raw, _, _ = replay(node, sid, {"entryIds": [es[1]["id"]], "concurrency": 4})
    check(st == 200 and s["totalEntries"] == 1 and s["matched"] == 1
          and s["results"][0]["entryId"] == es[1]["id"], "entryIds picks entries (%s)" % raw[:200])
    st, b, _, _, _ = replay(node, sid, {"entryIds": ["nope-9"]})
    check(st == 404 and "nope-9" in b["error"], "an unknown entry id: 404 naming it")
    st, b, _, _, _ = replay(node, sid, {"concurrency": 99})
    check(st == 400 and "concurrency" in b["error"], "concurrency past the limit: 400 naming it")
    st, b, _, _, _ = replay(node, sid, {"targetUrl": "ftp://x"})
    check(st == 400 and "targetUrl" in b["error"], "a bad targetUrl: 400 naming it")
    st, b, _, _, _ = replay(node, "nosuch", {})
    check(st == 404 and "nosuch" in b["error"], "replay of an unknown session: 404")

    # A slow target: timeouts bound each request, concurrency bounds the whole, and the admin
    # keeps answering meanwhile.
    slow = serve(Slow)
    target = "http://127.0.0.1:%d" % slow.server_address[1]
    out = {}

    def run(key, opts):
        t = time.time()
        out[key] = (replay(node, sid, opts, timeout=60), time.time() - t)

    th = threading.Thread(target=run, args=("serial", {"targetUrl": target, "timeoutMs": 700}))
    th.start()
    time.sleep(0.3)
    lat = []
    for _ in range(10):
        t = time.time()
        st, _, _, _, _ = req(node, "GET", "/api/v1/recorder/%s" % sid)
        lat.append(time.time() - t)
        time.sleep(0.1)
    th.join()
    (st, s, raw, _, _), took = out["serial"]
    check(st == 200 and s["failed"] == 5
          and all("imed out" in r["error"] or "timeout" in r["error"].lower()
                  for r in s["results"]), "slow target: each entry fails on its timeout (%s)"
          % raw[:300])
    check(3.0 <= took < 8, "one at a time: 5 x 0.7 s (%.2f s)" % took)
    check(max(lat) < 0.5, "the admin answers during the replay (slowest %.3f s)" % max(lat))
    run("parallel", {"targetUrl": target, "timeoutMs": 700, "concurrency": 5})
    (st, s, _, _, _), took = out["parallel"]
    check(st == 200 and s["failed"] == 5 and took < 2.5,
          "concurrency 5: the 5 timeouts overlap (%.2f s)" % took)
    slow.shutdown()

    # One entry.
    st, r, raw, _, _ = req(node, "POST", "/api/v1/recorder/%s/entries/%s/replay"
                           % (sid, es[0]["id"]))
    check(st == 200 and r["entryId"] == es[0]["id"] and r["newStatus"] == 200
          and r["statusMatch"] is True, "replay of one entry: a result (%s)" % raw[:200])
    st, b, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/entries/nope/replay" % sid)
    check(st == 404 and "entry 'nope'" in b["error"], "replay of an unknown entry: 404")


def scenario_redirects(node, up):
    st, s, raw, _, _ = req(node, "POST", "/api/v1/recorder/start",
                           {"targetUrl": up, "namespace": "rd", "pathPrefix": "/shop"})
    sid = s["id"]
    st, _, _, r, _ = req(node, "GET", "/stubs/rd/shop/old")
    check(st == 302 and r.getheader("Location") == "/shop/items/1", "a 302 recorded as is")
    req(node, "POST", "/api/v1/recorder/%s/stop" % sid)
    st, s, raw, _, _ = replay(node, sid, {})
    check(s["matched"] == 1 and s["results"][0]["newStatus"] == 302,
          "replay does not follow redirects by default (%s)" % raw[:200])
    st, s, raw, _, _ = replay(node, sid, {"followRedirects": True})
    check(s["mismatched"] == 1 and s["results"][0]["newStatus"] == 200
          and "item-1" in s["results"][0]["responsePreview"],
          "followRedirects: the final answer (%s)" % raw[:200])


def scenario_correlate(node, up):
    st, s, raw, _, _ = req(node, "POST", "/api/v1/recorder/start",
                           {"name": "flow", "targetUrl": up, "namespace": "corr",
                            "pathPrefix": "/shop", "redact": False})
    check(st == 201, "a session without redaction (%s)" % raw[:200])
    sid = s["id"]
    tok, sess = "tok-7f3a9c2e51", "sess-abc123xyz"
    req(node, "POST", "/stubs/corr/shop/login", body={"user": "ann", "password": "pw"})
    req(node, "GET", "/stubs/corr/shop/items/4242",
        headers={"Authorization": "Bearer " + tok, "Cookie": "session=" + sess + "; theme=dark"})
    req(node, "POST", "/stubs/corr/shop/orders", body={"user": 4242, "token": tok})
    req(node, "GET", "/stubs/corr/shop/search?token=" + tok)
    req(node, "POST", "/api/v1/recorder/%s/stop" % sid)
    es = req(node, "GET", "/api/v1/recorder/%s/entries" % sid)[1]
    st, rep, raw, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid)
    check(st == 200 and rep["sessionId"] == sid and rep["totalEntries"] == 4
          and rep["scanned"] == 4, "correlate: a report (%s %s)" % (st, raw[:300]))
    by = {c["value"]: c for c in rep["correlations"]}
    check(sorted(by) == sorted([tok, "4242", sess]),
          "the token, the user id and the session cookie, nothing else (%s)" % sorted(by))
    t = by.get(tok, {})
    places = sorted((x["sequence"], x["section"], x["path"]) for x in t.get("targets", []))
    check(t.get("valueType") == "token" and t["source"] == {
              "entryId": es[0]["id"], "sequence": 0, "section": "response.body",
              "path": "$.data.token"}
          and places == [(1, "request.header", "Authorization"), (2, "request.body", "$.token"),
                         (3, "request.query", "token")]
          and t["targets"][0]["entryId"] == es[1]["id"] and 0 < t["confidence"] <= 1
          and t["reason"], "the token: from $.data.token into a header, a body and a query (%s)"
          % json.dumps(t)[:400])
    u = by.get("4242", {})
    check(u.get("valueType") == "number" and u["source"]["path"] == "$.data.user.id"
          and sorted((x["section"], x["path"]) for x in u["targets"])
          == [("request.body", "$.user"), ("request.path", "/shop/items/4242")]
          and u["confidence"] < t["confidence"], "the user id: into a URL path and a body (%s)"
          % json.dumps(u)[:300])
    k = by.get(sess, {})
    check(k.get("source", {}).get("section") == "response.cookie" and k["source"]["path"]
          == "session" and [(x["section"], x["path"]) for x in k["targets"]]
          == [("request.cookie", "session")], "the Set-Cookie value comes back as a cookie (%s)"
          % json.dumps(k)[:300])
    check(rep["summary"] == {"byValueType": {"token": 2, "number": 1},
                             "bySection": {"request.header": 1, "request.body": 2,
                                           "request.query": 1, "request.path": 1,
                                           "request.cookie": 1}},
          "summary by value type and by section (%s)" % rep["summary"])
    st, rep2, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid, {})
    check(rep2 == rep, "deterministic: the same report again")
    st, rep, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid,
                           {"excludeNumeric": True, "minValueLength": 5})
    check(st == 200 and sorted(c["value"] for c in rep["correlations"]) == sorted([tok, sess]),
          "excludeNumeric leaves the number out")
    st, rep, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid,
                           {"maxValueLength": 10})
    check(st == 200 and [c["value"] for c in rep["correlations"]] == ["4242"],
          "maxValueLength leaves the long values out (%s)" % rep)
    st, rep, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid,
                           {"entryIds": [es[0]["id"], es[3]["id"]]})
    check(st == 200 and rep["scanned"] == 2 and [
        (c["value"], [x["sequence"] for x in c["targets"]]) for c in rep["correlations"]]
        == [(tok, [3])], "entryIds: only those entries take part (%s)" % rep)
    st, b, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid,
                         {"minValueLength": "x"})
    check(st == 400 and "minValueLength" in b["error"], "a bad option: 400 naming it")
    st, b, _, _, _ = req(node, "POST", "/api/v1/recorder/nosuch/correlate")
    check(st == 404 and "nosuch" in b["error"], "correlate of an unknown session: 404")


def scenario_correlate_bounded(node, up):
    """Every segment of a long URL path is a request place that names the whole path: a few
    such requests must not make correlate index gigabytes (it stops, truncated)."""
    st, s, raw, _, _ = req(node, "POST", "/api/v1/recorder/start",
                           {"targetUrl": up, "namespace": "corrbig", "pathPrefix": "/shop"})
    sid = s["id"]
    long_path = "/stubs/corrbig/shop/" + "abcd/" * 1300
    for i in range(12):
        st, _, _, _, _ = req(node, "GET", long_path + "x%d" % i)
    req(node, "POST", "/api/v1/recorder/%s/stop" % sid)
    st, rep, raw, _, _ = req(node, "POST", "/api/v1/recorder/%s/correlate" % sid, timeout=60)
    check(st == 200 and rep["totalEntries"] == 12 and rep.get("truncated") is True,
          "correlate of long paths stops at its byte budget: truncated (%s %s)"
          % (st, raw[:200]))
    req(node, "DELETE", "/api/v1/recorder/%s" % sid)


def scenario_configs(node, up):
    base = "/api/v1/recorder/configs"
    st, cfg, raw, _, _ = req(node, "POST", base, {"name": "shop", "targetUrl": up, "port": 8089})
    check(st == 201 and cfg["id"] and cfg["name"] == "shop" and cfg["targetUrl"] == up
          and cfg["port"] == 8089, "save a config: 201 with a new id (%s %s)" % (st, raw[:200]))
    cid = cfg["id"]
    st, cfg2, raw, _, _ = req(node, "POST", base, {"id": cid, "name": "shop-2", "targetUrl": up})
    check(st == 200 and cfg2["id"] == cid and cfg2["name"] == "shop-2"
          and cfg2["createdAt"] == cfg["createdAt"], "save with its id: updated (%s)" % raw[:200])
    st, own, _, _, _ = req(node, "POST", base, {"id": "staging", "targetUrl": up + "/"})
    check(st == 201 and own["id"] == "staging", "save with an id of one's own: created")
    st, lst, _, _, _ = req(node, "GET", base)
    check(st == 200 and isinstance(lst, list)
          and sorted(x["id"] for x in lst) == sorted([cid, "staging"]),
          "list: a bare array of both (%s)" % lst)
    for bad, field in [({"targetUrl": "ftp://x"}, "targetUrl"), ({"name": "n"}, "targetUrl"),
                       ({"targetUrl": up, "port": 70000}, "port"),
                       ({"targetUrl": up, "id": "a/b"}, "id")]:
        st, b, _, _, _ = req(node, "POST", base, bad)
        check(st == 400 and field in b["error"], "a bad config is a 400 naming %s (%s)"
              % (field, b))
    st, exp, _, resp, _ = req(node, "GET", base + "/%s/export" % cid)
    check(st == 200 and exp == cfg2 and "attachment" in resp.getheader("Content-Disposition"),
          "export: the config as a JSON attachment")
    st, b, _, _, _ = req(node, "DELETE", base + "/" + cid)
    check(st == 200, "delete a config")
    st, b, _, _, _ = req(node, "DELETE", base + "/" + cid)
    check(st == 404 and cid in b["error"], "deleted: 404 naming it (%s)" % b)
    st, b, _, _, _ = req(node, "GET", base + "/%s/export" % cid)
    check(st == 404, "export of a deleted config: 404")
    st, lst, _, _, _ = req(node, "GET", base)
    check([x["id"] for x in lst] == ["staging"], "the other config stays")


def scenario_ca(node):
    for method, path in [("GET", "status"), ("POST", "generate"), ("GET", "download")]:
        st, b, _, _, _ = req(node, method, "/api/v1/recorder/ca/" + path)
        check(st == 501 and "not implemented" in b["error"], "CA %s: 501 (%s)" % (path, b))


def scenario_restart(node, sid, es):
    """What the first admin stored, read by the next one on the same database."""
    st, es2, _, _, _ = req(node, "GET", "/api/v1/recorder/%s/entries" % sid)
    check(st == 200 and [e["id"] for e in es2] == [e["id"] for e in es]
          and es2[0].get("annotation", {}).get("note") == "first item",
          "after a restart: the entries and the annotation are back")
    st, har, _, _, _ = req(node, "POST", "/api/v1/recorder/%s/export" % sid)
    check(st == 200 and len(har["log"]["entries"]) == 5, "and the session exports")
    st, lst, _, _, _ = req(node, "GET", "/api/v1/recorder/configs")
    check([x["id"] for x in lst] == ["staging"], "and the saved config is listed (%s)" % lst)


def stop(node):
    code, err = node.stop()
    problems = services.sanitizer_problems(err)
    check(code == 0 and not problems, "the admin stops cleanly, sanitizers quiet (%s %s)"
          % (code, "\n".join(problems)[:2000]))


def main():
    services.install_signal_handlers()
    workdir = services.make_workdir("mk-recorder-")
    up_srv = serve(Upstream)
    up = "http://127.0.0.1:%d" % up_srv.server_address[1]
    node = Mockarty(BINARY, workdir=workdir).start()
    try:
        sid, es, answers = record(node, up)
        scenario_export(node, up, sid, es, answers)
        scenario_annotate(node, sid, es)
        scenario_replay(node, up, sid, es)
        scenario_redirects(node, up)
        scenario_correlate(node, up)
        scenario_correlate_bounded(node, up)
        scenario_configs(node, up)
        scenario_ca(node)
        stop(node)
        node = Mockarty(BINARY, workdir=workdir).start()
        scenario_restart(node, sid, es)
    finally:
        if node.proc and node.proc.poll() is None:
            stop(node)
        up_srv.shutdown()
    sys.exit(harness.finish())


if __name__ == "__main__":
    main()
