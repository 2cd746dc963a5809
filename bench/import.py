#!/usr/bin/python3
"""Import benchmark (issue 14): a generated OpenAPI 3.0 spec of 1,000 operations and 10,000
WireMock mappings, each previewed then created through the admin API of a Release build, timed
end to end (request sent to answer read), then one imported mock called to show it serves.
Not a test: results go to docs/imports.md by hand.
usage: bench/import.py [build-dir/cmd/mockarty/mockarty]"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/cmd/mockarty/mockarty"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openapi(ops):
    """ops operations: GET/POST on collections and GET/PUT/DELETE on items, with $refs."""
    paths = {}
    n, i = 0, 0
    while n < ops:
        paths["/svc%d/items" % i] = {
            "get": {"parameters": [{"name": "page", "in": "query", "required": True,
                                    "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"type": "array",
                                   "items": {"$ref": "#/components/schemas/Item"}}}}}}},
            "post": {"responses": {"201": {"$ref": "#/components/responses/Item"},
                                   "400": {"description": "bad"}}}}
        paths["/svc%d/items/{id}" % i] = {
            "get": {"responses": {"200": {"$ref": "#/components/responses/Item"},
                                  "404": {"description": "missing"}}},
            "put": {"responses": {"200": {"$ref": "#/components/responses/Item"}}},
            "delete": {"responses": {"204": {"description": "gone"}}}}
        n += 5
        i += 1
    return {"openapi": "3.0.3", "info": {"title": "bench", "version": "1"}, "paths": paths,
            "components": {
                "schemas": {"Item": {"type": "object", "required": ["id", "name"], "properties": {
                    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                    "price": {"type": "number", "minimum": 0, "maximum": 100},
                    "created": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}}}}},
                "responses": {"Item": {"description": "an item", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Item"}}}}}}}


def wiremock(n):
    return {"mappings": [{
        "id": "00000000-0000-4000-8000-%012d" % i,
        "request": {"method": "GET", "urlPath": "/wm/%d/things" % i,
                    "queryParameters": {"q": {"equalTo": "v%d" % i}},
                    "headers": {"Accept": {"contains": "json"}}},
        "response": {"status": 200, "jsonBody": {"n": i, "ok": True},
                     "headers": {"Content-Type": "application/json"}}} for i in range(n)]}


def cpu_ms(pid):
    """User + system CPU time of the server so far (the machine may be shared: wall time alone
    would measure the neighbours too)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def call(port, path, body, timeout=600):
    data = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t = time.perf_counter()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    dt = time.perf_counter() - t
    conn.close()
    return resp.status, json.loads(raw), dt, len(data)


def main():
    work = tempfile.mkdtemp(prefix="mk-import-bench-")
    port = free_port()
    env = dict(os.environ, HTTP_HOST="127.0.0.1", HTTP_PORT=str(port),
               DB_PATH=os.path.join(work, "db"))
    proc = subprocess.Popen([BIN], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.environ.get("BENCH_LOG", os.devnull), "w"))
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        for name, path, doc in [("OpenAPI, 1,000 operations", "/api/v1/generators/openapi",
                                 openapi(1000)),
                                ("WireMock, 10,000 mappings", "/api/v1/import/wiremock",
                                 wiremock(10000))]:
            req = {"spec": json.dumps(doc), "namespace": "bench"}
            c = cpu_ms(proc.pid)
            st, body, dt, size = call(port, path + "/preview", req)
            print("%-28s preview: %d, %5d mocks,       %6.0f ms wall, %6.0f ms server CPU "
                  "(%.1f MB spec)" % (name, st, body.get("count", -1), dt * 1e3,
                                      cpu_ms(proc.pid) - c, size / 1e6))
            c = cpu_ms(proc.pid)
            st, body, dt, _ = call(port, path, req)
            print("%-28s create:  %d, %5d created,     %6.0f ms wall, %6.0f ms server CPU"
                  % (name, st, body.get("created", -1), dt * 1e3, cpu_ms(proc.pid) - c))
            c = cpu_ms(proc.pid)
            st, body, dt, _ = call(port, path, req)
            print("%-28s again:   %d, %5d overwritten, %6.0f ms wall, %6.0f ms server CPU"
                  % (name, st, body.get("overwritten", -1), dt * 1e3, cpu_ms(proc.pid) - c))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/stubs/bench/wm/9999/things?q=v9999",
                     headers={"Accept": "application/json"})
        r = conn.getresponse()
        print("GET /stubs/bench/wm/9999/things?q=v9999 ->", r.status, r.read().decode())
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
