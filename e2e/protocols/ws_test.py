#!/usr/bin/python3
"""WebSocket mocks against a real client (Debian's python3-websockets): event and whole-message
matches, conditions on the message, several replies with delays, a message on connect, timer
pushes, a close code from a mock, the near-miss error message, ping/pong, a message over the size
limit (1009) and a broken frame on a raw socket (1002), the journal.

usage: ws_test.py MOCKARTY [MOCKARTY_RESOLVER]
With the resolver binary, the same scenarios also run against a resolver following a PostgreSQL
admin.
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

import websockets  # noqa: E402

TOKEN = "ws-e2e-token"


def api(node, method, path, body=None):
    return harness.api(node, TOKEN, method, path, body=body)


MOCKS = [
    # {"event": "echo", ...}: the event field picks the mock; the reply reads the message.
    {"id": "ws-echo", "socket": {"event": "echo"},
     "response": {"payload": {"echo": "$.req.text", "n": "$.req.n"}}},
    # The whole text message "hello" is the key when it is not JSON with an event.
    {"id": "ws-hello", "socket": {"event": "hello"}, "response": {"payload": "world"}},
    # No event: answers any message its conditions accept.
    {"id": "ws-orders", "socket": {"conditions": [
        {"path": "$.body.kind", "assertAction": "equals", "value": "order"}]},
     "response": {"payload": {"accepted": "$.req.id"}}},
    {"id": "ws-multi", "socket": {"event": "multi"},
     "response": {"payload": "first", "sseEventChain": {"events": [
         {"data": "second", "delay": 300},
         {"eventName": "third", "data": {"n": 3}, "delay": 300}]}}},
    {"id": "ws-connect", "socket": {"event": "connect"},
     "response": {"payload": {"hello": "welcome"}}},
    # Templates read the upgrade request's headers and query.
    {"id": "ws-whoami", "socket": {"event": "whoami"},
     "response": {"payload": {"user": "$.reqHeader.X-User[0]", "room": "$.queryParam.room"}}},
    {"id": "ws-bye", "socket": {"event": "bye"},
     "response": {"payload": "bye", "closeCode": 4000, "error": "done"}},
    # Another endpoint: a push every 200 ms from the connect mock, three times.
    {"id": "ws-ticker", "socket": {"namespace": "/ticker", "event": "connect"},
     "response": {"sseEventChain": {"loop": True, "loopDelay": 200, "maxLoops": 3,
                                    "events": [{"data": {"tick": "$.fake.UUID"}}]}}},
]


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def scenarios(port, where):
    url = "ws://127.0.0.1:%d/ws" % port
    async with websockets.connect(url, max_size=None) as ws:
        hello = await recv_json(ws)
        check(hello == {"hello": "welcome"}, where + ": the connect mock's message on connect")
        await ws.send(json.dumps({"event": "echo", "text": "hi", "n": 7}))
        got = await recv_json(ws)
        check(got == {"echo": "hi", "n": 7}, where + ": event match, reply rendered from it %r" % got)
        await ws.send("hello")
        got = await asyncio.wait_for(ws.recv(), 5)
        check(got == "world", where + ": whole text message match %r" % got)
        await ws.send(json.dumps({"kind": "order", "id": "o-1"}))
        got = await recv_json(ws)
        check(got == {"accepted": "o-1"}, where + ": catch-all mock with a condition %r" % got)

        t0 = time.monotonic()
        await ws.send(json.dumps({"event": "multi"}))
        msgs = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]
        took = time.monotonic() - t0
        check(msgs[0] == "first" and msgs[1] == "second" and
              json.loads(msgs[2]) == {"event": "third", "data": {"n": 3}},
              where + ": several replies in order %r" % msgs)
        check(0.55 <= took < 3, where + ": with their delays (%.2fs for 2 x 300 ms)" % took)

        # A message nothing matches: an error message naming it; the token shows the closest.
        await ws.send(json.dumps({"event": "nope", "kind": "x"}))
        got = await recv_json(ws)
        check(got.get("code") == "not_found" and got.get("event") == "nope" and "hint" in got,
              where + ": near miss without the token: an error message with a hint %r" % got)

        pong = await ws.ping(b"p1")
        await asyncio.wait_for(pong, 5)
        check(True, where + ": ping answered with pong")

        await ws.send("bye")
        got = await asyncio.wait_for(ws.recv(), 5)
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        check(got == "bye" and ws.close_code == 4000 and ws.close_reason == "done",
              where + ": a mock's close code and reason (%s %r)" % (ws.close_code, ws.close_reason))

    async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + TOKEN}) as ws:
        await recv_json(ws)  # connect
        await ws.send(json.dumps({"event": "nope", "kind": "x"}))
        got = await recv_json(ws)
        ids = [c.get("id") for c in got.get("closest", [])]
        check(got.get("code") == "not_found" and "ws-orders" in ids,
              where + ": near miss with the token lists the closest mocks %r" % ids)

    async with websockets.connect(url + "?room=blue", extra_headers={"X-User": "ann"}) as ws:
        await recv_json(ws)  # connect
        await ws.send("whoami")
        got = await recv_json(ws)
        check(got == {"user": "ann", "room": "blue"},
              where + ": templates read the upgrade request's header and query %r" % got)

    # Timer pushes.
    async with websockets.connect("ws://127.0.0.1:%d/ticker" % port) as ws:
        t0 = time.monotonic()
        ticks = [await recv_json(ws) for _ in range(3)]
        took = time.monotonic() - t0
        check(all("tick" in t for t in ticks) and len({t["tick"] for t in ticks}) == 3,
              where + ": three timer pushes, each rendered anew %r" % ticks)
        check(0.35 <= took < 3, where + ": 200 ms apart (%.2fs)" % took)
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.6)
        except asyncio.TimeoutError:
            extra = None
        check(extra is None, where + ": maxLoops stops the pushes")

    # A message over the size limit (1 MiB): closed with 1009.
    async with websockets.connect(url, max_size=None) as ws:
        await recv_json(ws)
        await ws.send("x" * (1100 * 1024))
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        check(ws.close_code == 1009, where + ": oversized message closed with 1009 (%s)" %
              ws.close_code)

    # No endpoint there: a plain 404, no upgrade.
    try:
        async with websockets.connect("ws://127.0.0.1:%d/nowhere" % port):
            status = 101
    except websockets.InvalidStatusCode as e:
        status = e.status_code
    check(status == 404, where + ": no socket mocks at the path: 404 (%s)" % status)


def raw_handshake(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b" ", 2)[1] if head else b""
    return s, status, head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""


def read_frames(s, buf, until_close=True, timeout=5):
    """Frames (opcode, payload) from the server until its close frame."""
    s.settimeout(timeout)
    frames = []
    while True:
        while len(buf) >= 2:
            ln = buf[1] & 0x7F
            hdr = 2
            if ln == 126:
                if len(buf) < 4:
                    break
                ln = struct.unpack(">H", buf[2:4])[0]
                hdr = 4
            if len(buf) < hdr + ln:
                break
            frames.append((buf[0] & 0x0F, buf[hdr:hdr + ln]))
            buf = buf[hdr + ln:]
            if frames[-1][0] == 8 and until_close:
                return frames
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return frames
        if not chunk:
            return frames
        buf += chunk


def broken_frames(port, where):
    # An unmasked client frame, a reserved opcode, an oversized control frame: close 1002 each.
    cases = [("unmasked text frame", b"\x81\x02hi"),
             ("reserved opcode 3", b"\x83\x82\x00\x00\x00\x00hi"),
             ("ping of 126 bytes", b"\x89\xfe\x00\x7e\x00\x00\x00\x00" + b"a" * 126)]
    for name, frame in cases:
        s, status, rest = raw_handshake(port, "/ws")
        if status != b"101":
            check(False, where + ": raw handshake answered %r" % status)
            s.close()
            continue
        s.sendall(frame)
        frames = read_frames(s, bytearray(rest))
        close = [f for f in frames if f[0] == 8]
        code = struct.unpack(">H", bytes(close[0][1][:2]))[0] if close and close[0][1] else None
        check(code == 1002, where + ": %s: closed with 1002 (%s)" % (name, code))
        s.settimeout(5)
        try:
            eof = s.recv(100) == b""
        except OSError:
            eof = True
        check(eof, where + ": %s: then the connection ends" % name)
        s.close()


async def stop_with_client(node):
    """Stops node while a client is connected: the client gets 1001 and the node exits."""
    async with websockets.connect("ws://127.0.0.1:%d/ws" % node.port) as ws:
        await recv_json(ws)
        stopped = asyncio.get_running_loop().run_in_executor(None, node.stop)
        try:
            await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code
        return code, await stopped


def stop(node, where):
    code, (rc, err) = asyncio.run(stop_with_client(node))
    check(code == 1001, where + ": a stopping server closes its WebSockets with 1001 (%s)" % code)
    check(rc == 0 and not services.sanitizer_problems(err),
          where + " exits cleanly (%d) %s" % (rc, err[-2000:]))


async def ask(port, event):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        await recv_json(ws)  # connect
        await ws.send(event)
        return await asyncio.wait_for(ws.recv(), 5)


def run(port, where):
    asyncio.run(scenarios(port, where))
    broken_frames(port, where)


def main():
    with harness.AdminAndResolver("mk-ws-", TOKEN) as setup:
        admin = setup.start_admin()
        for m in MOCKS:
            st, body = api(admin, "POST", "/api/v1/mocks", m)
            check(st in (200, 201), "create %s (%s %s)" % (m["id"], st, body))
        st, body = api(admin, "POST", "/api/v1/mocks",
                       {"id": "bad", "socket": {"event": "x"},
                        "response": {"payload": 1, "closeCode": 1005}})
        check(st == 400 and "closeCode" in json.dumps(body),
              "a close code a server may not send is refused (%s %s)" % (st, body))
        st, body = api(admin, "POST", "/api/v1/mocks",
                       {"id": "bad2", "socket": {"namespace": "/ws/:id"},
                        "response": {"payload": 1}})
        check(st == 400 and "socket.namespace" in json.dumps(body),
              "a socket namespace with a parameter is refused (%s %s)" % (st, body))

        run(admin.port, "admin")

        st, body = api(admin, "GET", "/api/v1/requests?protocol=websocket&limit=200")
        entries = (body or {}).get("requests", []) if isinstance(body, dict) else body or []
        ops = [e.get("operation") for e in entries]
        check(st == 200 and "echo" in ops and "connect" in ops and
              any(e.get("mockId") == "ws-echo" for e in entries),
              "journal: messages recorded with protocol websocket, event and mock id (%s)" % ops[:12])
        st, body = api(admin, "GET", "/api/v1/mocks/ws-echo/logs")
        check(st == 200, "the echo mock's logs answer (%s)" % st)
        metrics = admin.request("GET", "/metrics").raw.decode()
        check('mockarty_protocol_requests_total{protocol="websocket",outcome="matched"}' in metrics,
              "/metrics counts WebSocket upgrades by protocol")

        if setup.resolver_bin:
            res = setup.start_resolver()
            run(res.port, "resolver")
            # A mock created on the admin reaches the resolver through the change feed.
            st, _ = api(admin, "POST", "/api/v1/mocks", {"id": "ws-late", "socket": {
                "event": "late"}, "response": {"payload": "arrived"}})
            got, deadline = None, time.time() + 15
            while got != "arrived" and time.time() < deadline:
                got = asyncio.run(ask(res.port, "late"))
                time.sleep(0.2)
            check(st == 201 and got == "arrived",
                  "resolver: a socket mock created on the admin is served (%r)" % got)
            stop(res, "resolver")
        stop(admin, "admin")
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
