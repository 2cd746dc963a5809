#!/usr/bin/python3
"""Server-Sent Events mocks with real clients: `curl -N` (HTTP/1.1 and HTTP/2) and a Python
EventSource-style client (event names, ids, multi-line data, retry, Last-Event-ID resume, loops,
maxTime, heartbeats, header conditions, templates), a client that stops reading (dropped, the
server's memory stays bounded), and the request journal's live tail
(GET /api/v1/requests/stream: a mock call appears within a second; filters).

usage: sse_test.py MOCKARTY [MOCKARTY_RESOLVER]
With the resolver binary, the mock scenarios also run against a resolver following a PostgreSQL
admin (the tail is the admin's API, and runs against the admin).
"""
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

TOKEN = "sse-e2e-token"


def api(node, method, path, body=None):
    return harness.api(node, TOKEN, method, path, body=body)


MOCKS = [
    # Three events, the second with two lines of data and a retry, templates in data.
    {"id": "sse-orders", "sse": {"eventPath": "/events/:kind", "eventName": "order-update"},
     "response": {"headers": {"X-Stream": ["orders"]}, "sseEventChain": {"events": [
         {"id": "e1", "eventName": "order.received",
          "data": {"kind": "$.pathParam.kind", "q": "$.queryParam.x", "u": "$.fake.UUID"}},
         {"id": "e2", "data": "line one\nline two", "delay": 200, "retry": 1500},
         {"id": "e3", "eventName": "order.done", "data": {"done": True}, "delay": 200}]}}},
    # Looping: two events per pass, three passes, then the stream ends.
    {"id": "sse-loop", "sse": {"eventPath": "/loop"},
     "response": {"sseEventChain": {"events": [{"id": "a", "data": "A"},
                                                {"id": "b", "data": "B", "delay": 50}],
                                     "loop": True, "loopDelay": 100, "maxLoops": 3}}},
    # Endless (maxLoops 0) but maxTime 2 s, with heartbeats.
    {"id": "sse-forever", "sse": {"eventPath": "/forever"},
     "response": {"sseEventChain": {"events": [{"data": "tick", "delay": 400}], "loop": True,
                                     "loopDelay": 100, "maxLoops": 0, "maxTime": 2,
                                     "heartbeat": 300}}},
    # Long-lived, for the stop.
    {"id": "sse-long", "sse": {"eventPath": "/long"},
     "response": {"sseEventChain": {"events": [{"data": "tick", "delay": 100}], "loop": True,
                                     "loopDelay": 100, "maxLoops": 0, "maxTime": 60}}},
    # A firehose for the slow reader: 16 KiB events back to back.
    {"id": "sse-flood", "sse": {"eventPath": "/flood"},
     "response": {"sseEventChain": {"events": [{"data": "x" * 16000}] * 20, "loop": True,
                                     "loopDelay": 100, "maxLoops": 0, "maxTime": 60}}},
    # Only for tenant acme.
    {"id": "sse-acme", "sse": {"eventPath": "/tenant",
                               "headerConditions": [{"path": "X-Tenant", "assertAction": "equals",
                                                     "value": "acme"}]},
     "response": {"sseEventChain": {"events": [{"data": "hello acme"}]}}},
    # In another namespace (its prefix /stubs/team).
    {"id": "sse-team", "namespace": "team", "sse": {"eventPath": "/events"},
     "response": {"sseEventChain": {"events": [{"data": "team event"}]}}},
    # A plain mock for the tail.
    {"id": "plain-hello", "http": {"route": "/hello", "httpMethod": "GET"},
     "response": {"statusCode": 200, "payload": {"hello": "world"}}},
]


def create_mocks(admin):
    for m in MOCKS:
        st, body = api(admin, "POST", "/api/v1/mocks", m)
        check(st in (200, 201), "create mock %s (%s %s)" % (m["id"], st, str(body)[:200]))
    st, body = api(admin, "POST", "/api/v1/mocks", {
        "sse": {"eventPath": "/bad"},
        "response": {"sseEventChain": {"events": [{"data": 1, "delay": -1}]}}})
    check(st == 400 and "response.sseEventChain.events[0].delay" in str(body),
          "a bad chain is refused naming its field (%s %s)" % (st, str(body)[:160]))


class Stream:
    """A minimal EventSource: reads text/event-stream from an HTTP/1.1 response and parses
    events as the HTML standard does (event, data lines joined with \\n, id, retry, comments)."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request("GET", path, headers=dict(headers or {}, Accept="text/event-stream"))
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.comments = []
        self.retry = None
        self.closed = False

    def header(self, name):
        return self.resp.getheader(name)

    def next_event(self):
        """The next event as a dict, or None when the server ended the stream."""
        ev = {"event": "message", "data": [], "id": None}
        seen = False
        while True:
            line = self.resp.readline()
            if not line:
                self.closed = True
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if seen:  # as the standard: no data, no event (a lone retry: or id:)
                    ev["data"] = "\n".join(ev["data"])
                    return ev
                ev["event"] = "message"
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                seen = True
                ev["data"].append(value)
            elif name == "event":
                ev["event"] = value
            elif name == "id":
                ev["id"] = value
            elif name == "retry":
                self.retry = int(value)

    def all_events(self):
        out = []
        while True:
            e = self.next_event()
            if e is None:
                return out
            out.append(e)

    def close(self):
        self.conn.close()


def curl(port, path, *extra, timeout=10):
    t0 = time.time()
    p = subprocess.run(["curl", "-sN", "--max-time", str(timeout)] + list(extra) +
                       ["http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True)
    return p.returncode, p.stdout, time.time() - t0


def rss_kb(node):
    with open("/proc/%d/status" % node.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mock_scenarios(node, who):
    port = node.port
    # curl -N, HTTP/1.1: the whole chain, on time, and a clean end (curl exits 0).
    rc, out, took = curl(port, "/events/orders?x=7")
    check(rc == 0 and out.count("id: e") == 3 and "event: order.received" in out and
          '"kind":"orders"' in out and '"q":"7"' in out and
          "data: line one\ndata: line two\n" in out and "retry: 1500" in out,
          "%s: curl -N gets the three events with rendered data (rc %d): %r" % (who, rc, out[:300]))
    check(0.35 <= took < 5, "%s: the chain follows its delays (%.2f s for 0+200+200 ms)" % (who, took))
    # curl -N over HTTP/2 (cleartext, prior knowledge).
    rc, out, _ = curl(port, "/events/h2", "--http2-prior-knowledge")
    check(rc == 0 and out.count("id: e") == 3 and '"kind":"h2"' in out,
          "%s: curl -N over HTTP/2 gets the chain (rc %d)" % (who, rc))

    # The Python client: names, ids, data, retry, headers.
    s = Stream(port, "/events/py")
    events = s.all_events()
    check(s.status == 200 and s.header("Content-Type") == "text/event-stream" and
          s.header("X-Stream") == "orders" and s.header("Cache-Control") == "no-cache",
          "%s: 200 text/event-stream with the mock's headers (%s %s)" %
          (who, s.status, s.header("Content-Type")))
    check([e["id"] for e in events] == ["e1", "e2", "e3"] and
          [e["event"] for e in events] == ["order.received", "order-update", "order.done"] and
          events[1]["data"] == "line one\nline two" and json.loads(events[2]["data"]) == {"done": True}
          and s.retry == 1500,
          "%s: Python client parses names (eventName default from sse), ids, data, retry: %r" %
          (who, events))
    u1 = json.loads(events[0]["data"])["u"]
    s.close()
    s = Stream(port, "/events/py")
    u2 = json.loads(s.next_event()["data"])["u"]
    s.close()
    check(len(u1) == 36 and u1 != u2, "%s: fakers render per stream (%s, %s)" % (who, u1, u2))

    # Last-Event-ID resumes after that event; after the last one of a finished chain: 204.
    s = Stream(port, "/events/r", headers={"Last-Event-ID": "e2"})
    events = s.all_events()
    check([e["id"] for e in events] == ["e3"], "%s: Last-Event-ID e2 resumes at e3 (%r)" %
          (who, [e["id"] for e in events]))
    s = Stream(port, "/events/r", headers={"Last-Event-ID": "e3"})
    check(s.status == 204, "%s: Last-Event-ID of the last event answers 204 (%s)" % (who, s.status))
    s.close()
    rc, out, _ = curl(port, "/events/r", "-H", "Last-Event-ID: e1")
    check(rc == 0 and "id: e1" not in out and "id: e2" in out and "id: e3" in out,
          "%s: curl with Last-Event-ID e1 gets e2 and e3" % who)

    # loop / loopDelay / maxLoops: A B A B A B, then the end.
    t0 = time.time()
    s = Stream(port, "/loop")
    events = s.all_events()
    took = time.time() - t0
    check([e["data"] for e in events] == ["A", "B"] * 3 and s.closed,
          "%s: loop runs maxLoops 3 passes then ends (%r)" % (who, [e["data"] for e in events]))
    check(took >= 0.3, "%s: passes are loopDelay apart (%.2f s)" % (who, took))

    # maxTime: the endless stream is closed cleanly at 2 s, with heartbeats on the way.
    rc, out, took = curl(port, "/forever", timeout=10)
    check(rc == 0 and 1.8 <= took < 4 and out.count("data: tick") >= 3 and ": heartbeat" in out,
          "%s: maxTime 2 s closes the stream cleanly (rc %d, %.2f s, %d ticks, heartbeat %s)" %
          (who, rc, took, out.count("data: tick"), ": heartbeat" in out))

    # headerConditions; another namespace's prefix.
    rc, out, _ = curl(port, "/tenant", "-H", "X-Tenant: acme")
    check("data: hello acme" in out, "%s: headerConditions match" % who)
    r = node.request("GET", "/tenant", headers={"X-Tenant": "other"})
    check(r.status == 404, "%s: headerConditions refuse another tenant (%s)" % (who, r.status))
    rc, out, _ = curl(port, "/stubs/team/events")
    check("data: team event" in out, "%s: a namespace's SSE mock under /stubs/<ns>" % who)

    # A client that stops reading: dropped, the server's memory stays bounded, others unaffected.
    h2sock, h2t0 = h2_slow_reader_start(port)
    before = rss_kb(node)
    socks = []
    for _ in range(20):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", port))
        c.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(c)
    time.sleep(3)
    grown = rss_kb(node) - before
    # Each socket's kernel buffers fill within a second or two; then nothing is taken for 10 s
    # (MK_SERVE_SSE_STALL_MS) and the stream is dropped. Reading earlier would revive it.
    time.sleep(11)
    rc, out, _ = curl(port, "/tenant", "-H", "X-Tenant: acme")
    check("hello acme" in out, "%s: the server answers while 20 clients do not read" % who)
    dropped = 0
    for c in socks:
        c.settimeout(10)
        total = 0
        try:
            while True:
                b = c.recv(1 << 20)
                if not b:
                    dropped += 1
                    break
                total += len(b)
                if total > 64 << 20:
                    break
        except OSError:
            dropped += 1
        c.close()
    check(dropped == 20, "%s: clients that stopped reading were dropped (%d of 20)" %
          (who, dropped))
    # A fast client takes a burst bigger than the queue: paced, not dropped.
    s = Stream(port, "/flood")
    got = [s.next_event() for _ in range(60)]
    s.close()
    check(all(e and len(e["data"]) == 16000 for e in got),
          "%s: a reading client gets bursts larger than the queue (60 events of 16 kB)" % who)
    check(grown < 20 * 2048, "%s: memory stays bounded: RSS grew %d KiB for 20 stalled "
          "firehose streams" % (who, grown))
    h2_slow_reader_finish(h2sock, h2t0, who)


def h2_frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid) + payload)


def h2_get(path, extra=()):
    """An HPACK header block for GET path: literals without indexing, no Huffman."""
    def lit(prefix, name, value):
        v = value.encode()
        n = b"" if name is None else bytes([len(name)]) + name.encode()
        return bytes([prefix]) + n + bytes([len(v)]) + v
    out = b"\x82\x86" + lit(0x04, None, path) + lit(0x01, None, "sse-test")
    for name, value in extra:
        out += lit(0x00, name, value)
    return out


def h2_read(s, buf):
    """One frame (type, flags, stream, payload) from s, or None at the end."""
    while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    n = int.from_bytes(buf[:3], "big")
    return (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]), buf[9 + n:]


def h2_slow_reader_start(port):
    """An HTTP/2 client that will read frames but never give flow-control window back."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(20)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
              h2_frame(1, 0x5, 1, h2_get("/flood")))
    return s, time.time()


def h2_slow_reader_finish(s, t0, who):
    """Its stream is reset (RST_STREAM CANCEL) once nothing left for MK_SERVE_SSE_STALL_MS, and
    the connection goes on serving another stream."""
    buf, data, rst = b"", 0, None
    while time.time() - t0 < 20 and rst is None:
        f, buf = h2_read(s, buf)
        if f is None:
            break
        if f[0] == 4 and not f[1] & 1:
            s.sendall(h2_frame(4, 1, 0))  # SETTINGS ack
        elif f[0] == 0 and f[2] == 1:
            data += len(f[3])
        elif f[0] == 3 and f[2] == 1:
            rst = int.from_bytes(f[3], "big")
    check(rst == 8, "%s: HTTP/2 stream whose client grants no window is reset with CANCEL "
          "(rst %s after %.1f s, %d bytes sent)" % (who, rst, time.time() - t0, data))
    s.sendall(h2_frame(8, 0, 0, struct.pack(">I", 1 << 20)) +
              h2_frame(1, 0x5, 3, h2_get("/tenant", [("x-tenant", "acme")])))
    got = b""
    while True:
        f, buf = h2_read(s, buf)
        if f is None or (f[0] == 0 and f[2] == 3 and (got := got + f[3]) and f[1] & 1):
            break
    s.close()
    check(b"data: hello acme" in got, "%s: the HTTP/2 connection serves another stream after "
          "the reset (%r)" % (who, got[:60]))


def read_tail(node, query, out, stop):
    s = Stream(node.port, "/api/v1/requests/stream" + query,
               headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
    out.append(("status", s.status))
    while not stop.is_set():
        try:
            e = s.next_event()
        except (OSError, http.client.HTTPException):
            break
        if e is None:
            break
        out.append((time.time(), e))
    s.close()


def tail_scenarios(admin):
    stop = threading.Event()
    all_, ok_only, by_mock = [], [], []
    threads = [threading.Thread(target=read_tail, args=(admin, q, o, stop), daemon=True)
               for q, o in (("", all_), ("?status=200&path=/hello", ok_only),
                            ("?mockId=sse-acme", by_mock))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t_call = time.time()
    r = admin.request("GET", "/hello")
    r404 = admin.request("GET", "/nothing-here")
    curl(admin.port, "/tenant", "-H", "X-Tenant: acme")
    deadline = time.time() + 3
    while time.time() < deadline and not (ok_only[1:] and by_mock[1:] and len(all_) >= 4):
        time.sleep(0.05)
    stop.set()
    check(r.status == 200 and r404.status == 404, "tail: mock calls answered")
    check(all_ and all_[0] == ("status", 200), "tail: GET /api/v1/requests/stream is 200")
    hello = [(t, e) for t, e in all_[1:] if json.loads(e["data"])["request"]["path"] == "/hello"]
    check(hello and hello[0][0] - t_call < 1.0,
          "tail: the mock call appears within a second (%.3f s)" %
          (hello[0][0] - t_call if hello else -1))
    entry = json.loads(hello[0][1]["data"]) if hello else {}
    st, listed = api(admin, "GET", "/api/v1/requests?path=/hello&limit=1")
    check(hello and entry.get("mockId") == "plain-hello" and hello[0][1]["id"] == entry["id"] and
          set(entry) == set(listed["requests"][0]),
          "tail: the event is the journal entry, in the shape of GET /api/v1/requests, id = entry id")
    paths = [json.loads(e["data"])["request"]["path"] for _, e in all_[1:]]
    check("/nothing-here" in paths and "/tenant" in paths,
          "tail: unfiltered, it shows every call (%r)" % paths)
    ok_paths = [json.loads(e["data"])["request"]["path"] for _, e in ok_only[1:]]
    check(ok_paths == ["/hello"], "tail: status=200&path=/hello filters (%r)" % ok_paths)
    mocks = [json.loads(e["data"])["mockId"] for _, e in by_mock[1:]]
    check(mocks == ["sse-acme"], "tail: mockId filters, SSE calls included (%r)" % mocks)
    sse_entry = json.loads(by_mock[1][1]["data"]) if by_mock[1:] else {}
    check(sse_entry.get("protocol") == "sse", "tail: the SSE call is journaled as protocol sse")
    # Resume: Last-Event-ID replays what came after it.
    first_id = all_[1][1]["id"] if all_[1:] else "0"
    s = Stream(admin.port, "/api/v1/requests/stream",
               headers={"Authorization": "Bearer " + TOKEN, "Last-Event-ID": first_id})
    e = s.next_event()
    s.close()
    check(e is not None and int(e["id"]) == int(first_id) + 1,
          "tail: Last-Event-ID %s resumes with the next entry (%s)" % (first_id, e and e["id"]))
    r = admin.request("GET", "/api/v1/requests/stream")
    check(r.status == 401, "tail: needs a token (%s)" % r.status)
    st, body = api(admin, "GET", "/api/v1/requests/stream?status=abc")
    check(st == 400, "tail: a bad status filter is a 400 (%s)" % st)


def main():
    with harness.AdminAndResolver("mk-sse-", TOKEN) as setup:
        # ASan's quarantine keeps freed blocks resident, which would hide the bound the memory
        # check looks for; a small one still catches a use after a recent free.
        asan = {"ASAN_OPTIONS":
                (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8").lstrip(":")}
        admin = setup.start_admin(asan)
        create_mocks(admin)
        if setup.resolver_bin:
            res = setup.start_resolver(asan)
            mock_scenarios(res, "resolver")
            harness.check_exit(res, "resolver")
        else:
            mock_scenarios(admin, "admin")
            tail_scenarios(admin)
        # Stopping with streams open ends them cleanly (the last chunk: curl exits 0).
        procs = [subprocess.Popen(["curl", "-sN", "--max-time", "20",
                                   "http://127.0.0.1:%d%s" % (admin.port, p)],
                                  stdout=subprocess.PIPE, text=True)
                 for p in ("/long", "/long")]
        tail = subprocess.Popen(["curl", "-sN", "--max-time", "20", "-H",
                                 "Authorization: Bearer " + TOKEN,
                                 "http://127.0.0.1:%d/api/v1/requests/stream" % admin.port],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        t0 = time.time()
        code, err = admin.stop()
        outs = [p.communicate(timeout=20) for p in procs + [tail]]
        check(all(p.returncode == 0 for p in procs + [tail]) and time.time() - t0 < 10,
              "admin stop ends open streams cleanly (curl exits %r)" %
              [p.returncode for p in procs + [tail]])
        check(all("data: tick" in o[0] for o in outs[:2]), "the streams were live before the stop")
        check(code == 0 and not services.sanitizer_problems(err),
              "admin exits cleanly (%d) %s" % (code, err[-2000:]))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
