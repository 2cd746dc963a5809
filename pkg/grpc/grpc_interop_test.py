#!/usr/bin/python3
"""Interop of pkg/grpc with a real gRPC implementation (Debian's python3-grpcio).

Part 1: grpc_echo_server (C, pkg/grpc) called by a grpcio client: the four kinds of call,
metadata and trailers, error status with a -bin trailer, deadlines, a cancelled stream, a message
over the limit, an unknown method, gzip-compressed requests, keepalive, graceful stop; over h2c,
TLS and mutual TLS.
Part 2: grpc_echo_client (C, pkg/grpc) calling a grpcio server with the same service (the
client prints what it checked and exits non-zero on a mismatch), over h2c (the server
compressing its responses with gzip) and TLS.
Messages are built from the descriptor set protoc-c wrote for testdata/echo.proto."""
import argparse
import concurrent.futures
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def load_messages(path):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    fac = message_factory.MessageFactory(pool)
    get = lambda n: fac.GetPrototype(pool.FindMessageTypeByName(n))
    return get("mktest.EchoRequest"), get("mktest.EchoReply")


class CServer:
    """grpc_echo_server as a child process; lines it prints are collected."""

    def __init__(self, binary, *args):
        self.p = subprocess.Popen([binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        first = self.p.stdout.readline()
        if not first.startswith("PORT "):
            raise RuntimeError("server did not start: %r" % first)
        self.port = int(first.split()[1])
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.strip())

    def wait_line(self, text, timeout=5):
        end = time.time() + timeout
        while time.time() < end:
            if text in self.lines:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=20)
        self.t.join(timeout=5)
        return rc


def stubs(ch, Req, Rep):
    ser, de = (lambda m: m.SerializeToString()), Rep.FromString
    return {
        "unary": ch.unary_unary("/mktest.Echo/Unary", request_serializer=ser,
                                response_deserializer=de),
        "server": ch.unary_stream("/mktest.Echo/ServerStream", request_serializer=ser,
                                  response_deserializer=de),
        "client": ch.stream_unary("/mktest.Echo/ClientStream", request_serializer=ser,
                                  response_deserializer=de),
        "bidi": ch.stream_stream("/mktest.Echo/Bidi", request_serializer=ser,
                                 response_deserializer=de),
        "unknown": ch.unary_unary("/mktest.Echo/Nope", request_serializer=ser,
                                  response_deserializer=de),
    }


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def client_scenarios(label, ch, Req, Rep, srv, full=True):
    s = stubs(ch, Req, Rep)
    rep, call = s["unary"].with_call(Req(text="hi"), metadata=[("x-echo", "v1")], timeout=10)
    check(rep.text == "hi" and rep.metadata == "v1", label + ": unary echoes text and metadata")
    check(("x-echo-header", "v1") in [tuple(m) for m in call.initial_metadata()],
          label + ": unary header metadata")
    check(("x-trailer", "t") in [tuple(m) for m in call.trailing_metadata()],
          label + ": unary trailing metadata")

    try:
        s["unary"](Req(text="x", fail_code=5), timeout=10)
        check(False, label + ": error status")
    except grpc.RpcError as e:
        tr = dict(e.trailing_metadata())
        check(e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "failed as asked: é 100%",
              label + ": error status and percent-encoded UTF-8 message (%s %r)"
              % (e.code(), e.details()))
        check(tr.get("x-detail-bin") == b"\x00\x01\xff", label + ": -bin trailer round-trips")

    reps = list(s["server"](Req(text="s", count=5), timeout=10))
    check([r.index for r in reps] == [1, 2, 3, 4, 5], label + ": server streaming, 5 replies")

    rep = s["client"](iter([Req(text="a"), Req(text="b"), Req(text="c")]), timeout=10)
    check(rep.text == "a,b,c" and rep.index == 3, label + ": client streaming joins 3 requests")

    # Bidi in lock step: each reply arrives before the next request is sent.
    q = queue.Queue()

    def gen():
        for t in ["x", "y", "z"]:
            yield Req(text=t)
            q.get(timeout=5)

    got = []
    for r in s["bidi"](gen(), timeout=10):
        got.append((r.text, r.index))
        q.put(1)
    check(got == [("x", 1), ("y", 2), ("z", 3)], label + ": bidi in lock step %r" % got)
    if not full:
        return

    rep = s["unary"](Req(text="gz" * 300), timeout=5, compression=grpc.Compression.Gzip)
    check(rep.text == "gz" * 300, label + ": gzip-compressed request inflated by the server")

    code, _ = code_of(lambda: s["unknown"](Req(text="q"), timeout=5))
    check(code == grpc.StatusCode.UNIMPLEMENTED, label + ": unknown method UNIMPLEMENTED")

    t0 = time.time()
    code, _ = code_of(lambda: s["unary"](Req(text="slow", delay_ms=3000), timeout=0.3))
    took = time.time() - t0
    check(code == grpc.StatusCode.DEADLINE_EXCEEDED and took < 2,
          label + ": deadline 300 ms on a 3 s answer -> DEADLINE_EXCEEDED in %.2f s" % took)
    check(srv.wait_line("DONE /mktest.Echo/Unary DEADLINE_EXCEEDED")
          or srv.wait_line("DONE /mktest.Echo/Unary CANCELLED"),
          label + ": server saw the deadline end the call")

    # A client that cancels a server stream after two messages: the handler hears CANCELLED.
    it = s["server"](Req(text="c", count=100, delay_ms=50), timeout=30)
    first = [next(it).index, next(it).index]
    it.cancel()
    check(first == [1, 2], label + ": cancelled stream delivered 2 messages first")
    check(srv.wait_line("DONE /mktest.Echo/ServerStream CANCELLED"),
          label + ": server handler saw CANCELLED after RST_STREAM")

    code, details = code_of(lambda: s["unary"](Req(text="big", pad=b"x" * 4096), timeout=5))
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit" in details,
          label + ": 4 KiB message over a 1 KiB limit -> RESOURCE_EXHAUSTED (%s)" % details)
    # Still fine afterwards on the same channel.
    check(s["unary"](Req(text="after"), timeout=5).text == "after",
          label + ": channel works after the refused message")

    # Concurrency: 40 calls at once, 10 of them answered after 2 s: every fast call completes
    # before the first slow one (a loaded machine may be slow, but not that slow).
    done_at = {}
    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        t0 = time.time()
        slow = [ex.submit(s["unary"], Req(text="slow%d" % i, delay_ms=2000), timeout=20)
                for i in range(10)]
        fast = [ex.submit(s["unary"], Req(text="f%d" % i), timeout=20) for i in range(30)]
        for name, futs in (("slow", slow), ("fast", fast)):
            for f in futs:
                f.add_done_callback(lambda f, n=name: done_at.setdefault(n, []).append(
                    time.time() - t0))
        ok_fast = all(f.result().text == "f%d" % i for i, f in enumerate(fast))
        ok_slow = all(f.result().text == "slow%d" % i for i, f in enumerate(slow))
    last_fast, first_slow = max(done_at["fast"]), min(done_at["slow"])
    check(ok_fast and ok_slow and last_fast < first_slow,
          label + ": 30 fast calls done in %.2f s, the first of 10 slow ones at %.2f s"
          % (last_fast, first_slow))


def part1(args, Req, Rep, tmp):
    srv = CServer(args.server, "--max-recv", "1024", "--keepalive", "300")
    try:
        ch = grpc.insecure_channel("127.0.0.1:%d" % srv.port)
        client_scenarios("h2c", ch, Req, Rep, srv)
        # Keepalive pings every 300 ms while a 1.5 s call runs: grpcio acks, the call survives.
        rep = stubs(ch, Req, Rep)["unary"](Req(text="ka", delay_ms=1500), timeout=5)
        check(rep.text == "ka", "h2c: call survives server keepalive pings")

        # Graceful stop: a stream in flight finishes, the process exits 0, new calls fail.
        it = stubs(ch, Req, Rep)["server"](Req(text="g", count=5, delay_ms=100), timeout=10)
        first = next(it).index
        srv.p.stdin.close()
        rest = [r.index for r in it]
        check(first == 1 and rest == [2, 3, 4, 5], "stop: in-flight stream completed %r" % rest)
        rc = srv.p.wait(timeout=20)
        check(rc == 0 and srv.wait_line("STOPPED"), "stop: server exited 0 after GOAWAY")
        code, _ = code_of(lambda: stubs(ch, Req, Rep)["unary"](Req(text="late"), timeout=2))
        check(code == grpc.StatusCode.UNAVAILABLE, "stop: a new call is UNAVAILABLE (%s)" % code)
        ch.close()
    finally:
        if srv.p.poll() is None:
            srv.stop()

    cert, key = os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key")
    ccert, ckey = os.path.join(tmp, "client.pem"), os.path.join(tmp, "client.key")
    for c, k, cn in [(cert, key, "localhost"), (ccert, ckey, "runner-1")]:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k,
                        "-out", c, "-days", "2", "-subj", "/CN=" + cn, "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    root = open(cert, "rb").read()

    srv = CServer(args.server, "--tls", cert, key, "--max-recv", "1024")
    try:
        ch = grpc.secure_channel("localhost:%d" % srv.port, grpc.ssl_channel_credentials(root))
        client_scenarios("tls", ch, Req, Rep, srv)
        ch.close()
    finally:
        check(srv.stop() == 0, "tls: server stopped cleanly")

    srv = CServer(args.server, "--tls", cert, key, "--client-ca", ccert)
    try:
        ch = grpc.secure_channel("localhost:%d" % srv.port, grpc.ssl_channel_credentials(root))
        code, _ = code_of(lambda: stubs(ch, Req, Rep)["unary"](Req(text="anon"), timeout=5))
        check(code == grpc.StatusCode.UNAVAILABLE, "mtls: client without certificate refused")
        ch.close()
        creds = grpc.ssl_channel_credentials(root, open(ckey, "rb").read(),
                                             open(ccert, "rb").read())
        ch = grpc.secure_channel("localhost:%d" % srv.port, creds)
        rep = stubs(ch, Req, Rep)["unary"](Req(text="me"), timeout=5)
        check(rep.peer_identity == "runner-1", "mtls: client certificate accepted, identity %r"
              % rep.peer_identity)
        ch.close()
    finally:
        check(srv.stop() == 0, "mtls: server stopped cleanly")
    return cert, key


class PyEcho:
    """The echo service on grpcio, for the C client."""

    def __init__(self, Req, Rep):
        self.Req, self.Rep = Req, Rep
        self.cancelled = threading.Event()

    def _md(self, ctx):
        return dict(ctx.invocation_metadata()).get("x-echo", "")

    def _finish(self, ctx, req):
        ctx.set_trailing_metadata([("x-trailer", "t")] + (
            [("x-detail-bin", b"\x00\x01\xff")] if req.fail_code else []))
        if req.fail_code:
            ctx.abort(grpc.StatusCode(next(c for c in grpc.StatusCode
                                           if c.value[0] == req.fail_code)),
                      "failed as asked: é 100%")

    def unary(self, req, ctx):
        md = self._md(ctx)
        if md:
            ctx.send_initial_metadata([("x-echo-header", md)])
        if req.delay_ms:
            time.sleep(req.delay_ms / 1000)
        self._finish(ctx, req)
        return self.Rep(text=req.text, index=1, metadata=md)

    def server(self, req, ctx):
        ctx.add_callback(self.cancelled.set)
        for i in range(req.count):
            if req.delay_ms:
                time.sleep(req.delay_ms / 1000)
            if not ctx.is_active():
                return
            yield self.Rep(text=req.text, index=i + 1)
        self._finish(ctx, req)

    def client(self, reqs, ctx):
        texts = [r.text for r in reqs]
        ctx.set_trailing_metadata([("x-trailer", "t")])
        return self.Rep(text=",".join(texts), index=len(texts))

    def bidi(self, reqs, ctx):
        n = 0
        for r in reqs:
            n += 1
            if r.fail_code:
                self._finish(ctx, r)
            yield self.Rep(text=r.text, index=n)
        ctx.set_trailing_metadata([("x-trailer", "t")])


def start_py_server(Req, Rep, creds=None, max_recv=1024, compression=None):
    svc = PyEcho(Req, Rep)
    de, ser = Req.FromString, (lambda m: m.SerializeToString())
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(svc.unary, de, ser),
        "ServerStream": grpc.unary_stream_rpc_method_handler(svc.server, de, ser),
        "ClientStream": grpc.stream_unary_rpc_method_handler(svc.client, de, ser),
        "Bidi": grpc.stream_stream_rpc_method_handler(svc.bidi, de, ser),
    }
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(16),
                         options=[("grpc.max_receive_message_length", max_recv)],
                         compression=compression)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("mktest.Echo",
                                                                          handlers)])
    addr = "127.0.0.1:0" if creds is None else "localhost:0"
    port = server.add_insecure_port(addr) if creds is None else server.add_secure_port(addr, creds)
    server.start()
    return server, port, svc


def part2(args, Req, Rep, cert, key):
    # h2c with gzip-compressed responses (the C client advertises gzip), TLS without.
    server, port, svc = start_py_server(Req, Rep, compression=grpc.Compression.Gzip)
    try:
        r = subprocess.run([args.client, "127.0.0.1:%d" % port], capture_output=True, text=True, errors="replace",
                           timeout=120)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, "C client vs grpcio server (h2c, gzip responses): all checks "
              "passed")
        check(svc.cancelled.wait(5), "C client cancel reached the grpcio handler")
    finally:
        server.stop(0)
    creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
    server, port, _ = start_py_server(Req, Rep, creds)
    try:
        r = subprocess.run([args.client, "localhost:%d" % port, "--ca", cert], capture_output=True,
                           text=True, timeout=120)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, "C client vs grpcio server (TLS): all checks passed")
    finally:
        server.stop(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client")
    ap.add_argument("--descriptors", required=True)
    args = ap.parse_args()
    Req, Rep = load_messages(args.descriptors)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = part1(args, Req, Rep, tmp)
        if args.client:
            part2(args, Req, Rep, cert, key)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
