#!/bin/bash
# Coordinator and runners benchmark (issue 11). Starts an admin (SQLite) and RUNNERS shared runners
# (MAX_CONCURRENT=SLOTS each), then:
#   1. dispatch: TASKS runs of an empty collection (no requests: a no-op task) queued at once;
#      tasks per second from the first submission to the last result stored, and the median
#      time from submission to completion;
#   2. overhead: one run of a collection of 100 GETs of a static mock on the same admin, its
#      end-to-end time (submit to result) against the same 100 requests sent by curl in a loop
#      (one process per request, as a shell loop does) and by one curl with 100 URLs (one
#      connection).
# Not a test: results go to docs/benchmarks.md by hand. Needs a Release build:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
#   cmake --build build --target mockarty mockarty-runner
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNNERS=${RUNNERS:-4}
SLOTS=${SLOTS:-4}
TASKS=${TASKS:-400}
exec /usr/bin/python3 - "$BUILD" "$RUNNERS" "$SLOTS" "$TASKS" <<'PY'
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

build, runners, slots, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tmp = tempfile.mkdtemp(prefix="bench-runners-")
procs = []


def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


http, grpc = port(), port()
base = "http://127.0.0.1:%d" % http


def api(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def start(argv, env, log):
    p = subprocess.Popen(argv, env=dict(os.environ, **env), stdout=open(log, "wb"),
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


try:
    start([os.path.join(build, "cmd/mockarty/mockarty")],
          {"HTTP_PORT": str(http), "RUNNER_GRPC_PORT": str(grpc), "HTTP_HOST": "127.0.0.1",
           "DB_PATH": os.path.join(tmp, "m.db"), "GRPC_MOCK_PORT": "0", "HTTP_WORKERS": "1"},
          os.path.join(tmp, "admin.log"))
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    for i in range(runners):
        start([os.path.join(build, "cmd/mockarty-runner/mockarty-runner")],
              {"COORDINATOR_ADDR": "127.0.0.1:%d" % grpc, "RUNNER_NAME": "bench-%d" % i,
               "SHARED": "true", "MAX_CONCURRENT": str(slots), "RUNNER_HTTP_PORT": str(port()),
               "RUNNER_HTTP_HOST": "127.0.0.1"}, os.path.join(tmp, "runner%d.log" % i))
    while len([r for r in api("GET", "/api/v1/runners")["items"]
               if r["state"] == "online"]) < runners:
        time.sleep(0.1)
    api("POST", "/api/v1/mocks", {"http": {"route": "/static", "httpMethod": "GET"},
                                  "response": {"statusCode": 200, "payload": {"ok": True}}})
    schema = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    empty = api("POST", "/api/v1/api-tester/collections",
                {"collection": {"info": {"name": "noop", "schema": schema}, "item": []}})["id"]

    # 1. dispatch
    t0 = time.time()
    submitted = {}
    for _ in range(tasks):
        r = api("POST", "/api/v1/api-tester/collections/%s/execute" % empty)
        submitted[r["id"]] = time.time()
    t_sub = time.time() - t0
    pending = set(submitted)
    while pending:
        time.sleep(0.05)
        for r in api("GET", "/api/v1/api-tester/test-runs")["items"]:
            if r["id"] in pending and r["status"] not in ("pending", "running"):
                pending.discard(r["id"])
    t_all = time.time() - t0
    print("dispatch: %d no-op tasks, %d runners x %d slots: submitted in %.2f s (%.0f/s), all "
          "finished after %.2f s: %.0f tasks/s end to end" %
          (tasks, runners, slots, t_sub, tasks / t_sub, t_all, tasks / t_all))

    # 2. overhead of a 100-request collection
    items = [{"name": "r%d" % i, "request": {"method": "GET", "url": "{{baseUrl}}/static"},
              "event": [{"listen": "test", "script": {"exec": [
                  "pm.test('200', function () { pm.response.to.have.status(200); });"]}}]}
             for i in range(100)]
    cid = api("POST", "/api/v1/api-tester/collections",
              {"collection": {"info": {"name": "hundred", "schema": schema},
                              "item": items}})["id"]
    runs = []
    for _ in range(3):
        t0 = time.time()
        rid = api("POST", "/api/v1/api-tester/collections/%s/execute" % cid,
                  {"baseUrl": base})["id"]
        while True:
            r = api("GET", "/api/v1/api-tester/test-runs/" + rid)
            if r["status"] not in ("pending", "running"):
                break
            time.sleep(0.01)
        runs.append((time.time() - t0, r.get("duration"), r.get("passed")))
    t0 = time.time()
    for _ in range(100):
        subprocess.run(["curl", "-s", "-o", "/dev/null", base + "/static"], check=True)
    t_curl = time.time() - t0
    t0 = time.time()
    subprocess.run(["curl", "-s"] + ["-o", "/dev/null", base + "/static"] * 100, check=True)
    t_curl1 = time.time() - t0
    best = min(runs)
    print("100-request collection through a runner (best of 3): %.3f s submit-to-result "
          "(run itself %s ms, %s passed); curl loop (100 processes): %.3f s; one curl, 100 "
          "URLs: %.3f s; ratio to the curl loop %.2fx" %
          (best[0], best[1], best[2], t_curl, t_curl1, best[0] / t_curl))
finally:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
PY
