#!/usr/bin/python3
"""Many concurrent HTTP/1.1 clients on one epoll loop, for bench/protocols.sh's SSE section.

usage: sse_client.py PORT SERVER_PID N SECONDS MODE PATH
  MODE idle: N keep-alive connections each get one answer from PATH, then sit idle.
  MODE sse:  N connections each open the event stream PATH and read it.
Prints one line of key=value: the server's RSS before and with the N connections (kB), bytes per
connection, and for sse the events received over SECONDS, the server's CPU seconds in that
window, and the latency of plain requests (GET /h) sent meanwhile (p50/p99 ms).
"""
import selectors
import socket
import sys
import time

port, pid, n, seconds, mode, path = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                      float(sys.argv[4]), sys.argv[5], sys.argv[6])


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


sel = selectors.DefaultSelector()
request = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode()


class Conn:
    __slots__ = ("sock", "buf", "events", "ready")

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.buf = b""
        self.events = 0
        self.ready = False


def settle(conns, until, want):
    """Runs the loop until want(conns) or the deadline; returns the events seen meanwhile."""
    total = 0
    while time.time() < until and not want(conns):
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c.sock)
                continue
            if mode == "idle":
                c.buf += data
                c.ready = c.ready or b"\r\n\r\n" in c.buf
                continue
            k = data.count(b"\n\n")
            c.events += k
            total += k
            c.ready = c.ready or k > 0
    return total


def open_all():
    conns = []
    for i in range(n):
        c = Conn()
        c.sock.connect_ex(("127.0.0.1", port))
        conns.append(c)
        if len(conns) % 500 == 0:  # let the server accept as we go
            time.sleep(0.02)
    for c in conns:
        for _ in range(200):
            try:
                c.sock.send(request)
                break
            except (BlockingIOError, OSError):
                time.sleep(0.005)
        sel.register(c.sock, selectors.EVENT_READ, c)
    return conns


def probe_latency(count=200):
    lat = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(b"GET /h HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        lat.append((time.time() - t0) * 1000)
        s.close()
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


before = rss_kb()
t0 = time.time()
conns = open_all()
settle(conns, time.time() + 120, lambda cs: all(c.ready for c in cs))
ready = sum(c.ready for c in conns)
setup = time.time() - t0
time.sleep(1)
settle(conns, time.time() + 0.2, lambda cs: False)
with_conns = rss_kb()
out = {"mode": mode, "connections": ready, "setup_s": "%.1f" % setup, "rss_before_kB": before,
       "rss_with_kB": with_conns,
       "bytes_per_conn": (with_conns - before) * 1024 // max(ready, 1)}
if mode == "sse":
    c0, w0 = cpu_s(), time.time()
    events = settle(conns, w0 + seconds, lambda cs: False)
    window = time.time() - w0
    out.update({"events": events, "events_per_s": int(events / window),
                "server_cpu_s": "%.2f" % (cpu_s() - c0), "window_s": "%.1f" % window,
                "streams_alive": sum(1 for c in conns if c.sock.fileno() >= 0 and
                                     sel.get_map().get(c.sock.fileno()) is not None)})
    p50, p99 = probe_latency()
    out.update({"plain_get_p50_ms": "%.2f" % p50, "plain_get_p99_ms": "%.2f" % p99})
print(" ".join("%s=%s" % kv for kv in out.items()), flush=True)
for c in conns:
    c.sock.close()
