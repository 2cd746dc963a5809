#!/usr/bin/env python3
"""One mock create as its namespace grows: starts a fresh admin (a Release binary, given), creates
mocks on /x/<n> one at a time over one keep-alive connection, and times 50 creates at 100, 1,000
and 3,000 mocks; prints each and the ratio to the 100-mock baseline measured in the same run.

usage: bench/writes.py build/cmd/mockarty/mockarty"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
work = tempfile.mkdtemp()
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()
env = dict(os.environ, HTTP_HOST="127.0.0.1", HTTP_PORT=str(port), DB_PATH=work + "/db",
           GRPC_MOCK_PORT="0", RUNNER_GRPC_PORT="0")
proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def create(i):
    conn.request("POST", "/api/v1/mocks",
                 json.dumps({"id": "m%d" % i, "http": {"route": "/x/%d" % i},
                             "response": {"payload": {"i": i}}}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status in (200, 201), r.status


n, base = 0, None
try:
    for size in (100, 1000, 3000):
        while n < size - 50:
            create(n)
            n += 1
        t0 = time.time()
        for _ in range(50):
            create(n)
            n += 1
        ms = (time.time() - t0) / 50 * 1000
        base = base or ms
        print("%5d mocks in the namespace: %.2f ms per create (%.2fx the 100-mock cost)" %
              (n, ms, ms / base))
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(work)
