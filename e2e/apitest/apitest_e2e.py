"""API test collections end to end: the real admin serves mocks, our engine (mockarty-apitest) runs
a Postman collection written for this test against them, and Newman (from the npm registry,
cached) runs the same collection against the same mocks: every test must pass or fail the same
way in both, and our JUnit report must parse and say the same. With a runner binary, the same
collections also go through the admin's API and a mockarty-runner (imported, executed with an
environment), and their results must agree test for test with the CLI's (hence with Newman's).

usage: apitest_e2e.py MOCKARTY_BINARY MOCKARTY_APITEST_BINARY [MOCKARTY_RUNNER_BINARY]"""
import csv
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402
import snippets  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.join(HERE, "shop.postman_collection.json")

MOCKS = [
    {"id": "shop-login", "http": {"route": "/shop/login", "httpMethod": "POST"},
     "response": {"statusCode": 200, "headers": {"Set-Cookie": "session=s-9; Path=/shop"},
                  "payload": {"token": "tok-42", "user": {"id": 7, "name": "$.req.user"}}}},
    {"id": "shop-user", "http": {"route": "/shop/users/:id", "httpMethod": "GET",
                                 "header": [{"path": "Authorization", "assertAction": "equals",
                                             "value": "Bearer tok-42"}]},
     "response": {"statusCode": 200,
                  "payload": {"id": "$.pathParam.id", "name": "Ann", "roles": ["admin", "dev"],
                              "auth": "$.reqHeader.Authorization[0]",
                              "cookie": "$.reqHeader.Cookie[0]"}}},
    {"id": "shop-order-create", "http": {"route": "/shop/orders", "httpMethod": "POST",
                                         "header": [{"path": "Authorization",
                                                     "assertAction": "equals",
                                                     "value": "Bearer tok-42"}]},
     "response": {"statusCode": 201,
                  "payload": {"orderId": "o-1", "sku": "$.req.sku", "qty": "$.req.qty"}}},
    {"id": "shop-order-get", "http": {"route": "/shop/orders/:id", "httpMethod": "GET"},
     "response": {"statusCode": 200,
                  "payload": {"orderId": "$.pathParam.id", "total": 42.5, "status": "paid"}}},
    {"id": "shop-health", "http": {"route": "/shop/health", "httpMethod": "POST"},
     "response": {"statusCode": 200, "headers": {"Content-Type": "text/plain", "X-Form": "$.req"},
                  "payload": "OK"}},
]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def our_run(apitest, collection, env_path, workdir, extra=()):
    name = os.path.basename(collection).split(".")[0]
    out_json = os.path.join(workdir, name + "-ours.json")
    out_xml = os.path.join(workdir, name + "-ours.xml")
    for fmt, path in (("json", out_json), ("junit", out_xml)):
        p = subprocess.run([apitest, collection, "-e", env_path, "-r", fmt, "-o", path, "-q"] +
                           list(extra),
                           capture_output=True, text=True, timeout=120)
        # deliberate failures: exit 1, never 2 (usage) or a crash
        if p.returncode != 1:
            fail("mockarty-apitest -r %s exited %d: %s" % (fmt, p.returncode, p.stderr))
    with open(out_json) as f:
        return json.load(f), out_xml


def our_outcomes(run, errors_allowed=False):
    out = {}
    for r in run["results"]:
        for a in r.get("assertions", []):
            key = (r["requestName"], a["name"])
            if key in out:
                fail("test %s appears twice" % (key,))
            out[key] = bool(a["passed"])
        if r.get("error") and not errors_allowed:
            fail("request %s had an error: %s" % (r["requestName"], r["error"]))
        elif r.get("error"):
            print("  %s: %s" % (r["requestName"], r["error"]))
    return out


def newman_binary():
    cache = os.environ.get("MK_NPM_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "mockarty-e2e", "newman")
    binary = os.path.join(cache, "node_modules", ".bin", "newman")
    if os.path.exists(binary):
        return binary, None
    if not shutil.which("npm") or not shutil.which("node"):
        return None, "npm/node not installed"
    os.makedirs(cache, exist_ok=True)
    try:
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", cache,
                            "newman@6"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "npm install newman timed out (registry unreachable?)"
    if p.returncode != 0 or not os.path.exists(binary):
        return None, "npm install newman failed: " + (p.stderr or p.stdout)[-300:]
    return binary, None


def newman_outcomes(binary, collection, env_path, workdir, extra=()):
    report = os.path.join(workdir, os.path.basename(collection) + "-newman.json")
    p = subprocess.run([binary, "run", collection, "-e", env_path, "--reporters", "json",
                        "--reporter-json-export", report, "--timeout-request", "10000"] +
                       list(extra),
                       capture_output=True, text=True, timeout=300)
    if not os.path.exists(report):
        fail("newman produced no report (exit %d): %s" % (p.returncode, p.stderr[-500:]))
    with open(report) as f:
        doc = json.load(f)
    out = {}
    for ex in doc["run"]["executions"]:
        for a in ex.get("assertions", []):
            out[(ex["item"]["name"], a["assertion"])] = "error" not in a
    return out, doc["run"].get("failures", [])


def check_junit(path, run):
    root = ET.parse(path).getroot()
    if root.tag != "testsuites":
        fail("JUnit root is %s" % root.tag)
    suites = [s.get("name") for s in root.findall("testsuite")]
    want = ["Shop/Auth", "Shop/Users", "Shop/Orders", "Shop/Orders/Reports", "Shop"]
    if suites != want:
        fail("JUnit suites %s, want %s" % (suites, want))
    cases = root.findall("testsuite/testcase")
    if [c.get("name") for c in cases] != [r["requestName"] for r in run["results"]]:
        fail("JUnit testcases do not follow the run's results")
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    if sorted(failed) != ["get order", "get user", "missing report"]:
        fail("JUnit failures on %s" % sorted(failed))
    text = failed["get order"].text
    if "expected: 100" not in text or "actual: 42.5" not in text:
        fail("JUnit failure lacks expected/actual: %r" % text)
    if int(root.get("tests")) != 6 or int(root.get("failures")) != 3:
        fail("JUnit totals tests=%s failures=%s" % (root.get("tests"), root.get("failures")))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runner_outcomes(m, collection, env_values, data=None):
    """Runs a collection through the admin's API and the runner; its outcomes like our CLI's."""
    with open(collection) as f:
        status, body, raw, _ = m.request("POST", "/api/v1/api-tester/import/postman",
                                         json.load(f))
    if status != 201:
        fail("import/postman: %d %s" % (status, raw))
    run_body = {"environment": {"name": "e2e", "values": env_values}}
    if data is not None:
        run_body["data"] = data
    status, run, raw, _ = m.request("POST", "/api/v1/api-tester/collections/%s/execute" %
                                    body["id"], run_body)
    if status != 202:
        fail("execute: %d %s" % (status, raw))
    deadline = time.time() + 60
    while time.time() < deadline:
        status, r, raw, _ = m.request("GET", "/api/v1/api-tester/test-runs/" + run["id"])
        if r["status"] not in ("pending", "running"):
            return r
        time.sleep(0.2)
    fail("run %s did not finish: %s" % (run["id"], raw))


def main():
    admin_bin, apitest_bin = sys.argv[1], sys.argv[2]
    runner_bin = sys.argv[3] if len(sys.argv) > 3 else None
    workdir = tempfile.mkdtemp(prefix="apitest-e2e-")
    grpc_port = free_port()
    m = Mockarty(admin_bin, env={"RUNNER_GRPC_PORT": str(grpc_port)}).start()
    runner = None
    try:
        for mock in MOCKS + snippets.MOCKS:
            status, body, raw, _ = m.request("POST", "/api/v1/mocks", mock)
            if status not in (200, 201):
                fail("creating mock %s: %d %s" % (mock["id"], status, raw))
        base_url = "http://127.0.0.1:%d" % m.port
        env_path = os.path.join(workdir, "env.json")
        with open(env_path, "w") as f:
            json.dump({"name": "e2e", "values": [
                {"key": "baseUrl", "value": base_url, "enabled": True}]}, f)

        run, xml_path = our_run(apitest_bin, COLLECTION, env_path, workdir)
        ours = our_outcomes(run)
        failing = sorted(k for k, ok in ours.items() if not ok)
        want_failing = [("get order", "deliberately fails: total above 100"),
                        ("get user", "deliberately fails: name is Bob"),
                        ("missing report", "deliberately fails: expects 200")]
        if failing != want_failing:
            fail("our failing tests %s, want %s" % (failing, want_failing))
        print("ours: %d tests, %d failing as designed" % (len(ours), len(failing)))
        if run["metadata"]["variables"]["collectionVariables"].get("orderId") != "o-1":
            fail("orderId not extracted: %s" % run["metadata"]["variables"])
        check_junit(xml_path, run)
        print("JUnit report parses: 5 suites, 6 cases, 3 failures with expected/actual")

        snip_path = os.path.join(workdir, "snippets.postman_collection.json")
        with open(snip_path, "w") as f:
            json.dump(snippets.collection(), f, indent=1)
        snip_run, _ = our_run(apitest_bin, snip_path, env_path, workdir)
        snip_ours = our_outcomes(snip_run, errors_allowed=True)
        print("ours: snippets collection, %d tests, %d failing" % (
            len(snip_ours), sum(1 for v in snip_ours.values() if not v)))

        data_path = os.path.join(workdir, "data.postman_collection.json")
        csv_path = os.path.join(workdir, "rows.csv")
        with open(data_path, "w") as f:
            json.dump(snippets.data_collection(), f, indent=1)
        with open(csv_path, "w") as f:
            f.write(snippets.DATA_CSV)
        data_run, _ = our_run(apitest_bin, data_path, env_path, workdir, ["-d", csv_path])
        data_ours = our_outcomes(data_run)
        if len(data_run["results"]) != 3 or len(data_ours) != 9:
            fail("data-driven run: %d executions, %d tests" % (len(data_run["results"]),
                                                               len(data_ours)))
        print("ours: data-driven collection, 3 iterations from CSV, %d tests, %d failing" % (
            len(data_ours), sum(1 for v in data_ours.values() if not v)))

        if runner_bin:
            renv = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % grpc_port,
                        API_TOKEN=m.env.get("API_TOKEN", ""), RUNNER_NAME="e2e", SHARED="true",
                        RUNNER_HTTP_PORT=str(free_port()), RUNNER_HTTP_HOST="127.0.0.1")
            runner = subprocess.Popen([runner_bin], env=renv, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
            env_values = [{"key": "baseUrl", "value": base_url, "enabled": True}]
            # Rows as Newman reads the CSV: numbers become numbers.
            def cell(v):
                try:
                    return int(v)
                except ValueError:
                    return v
            with open(csv_path, newline="") as f:
                rows = [{k: cell(v) for k, v in row.items()} for row in csv.DictReader(f)]
            for label, path, mine, data in (("shop", COLLECTION, ours, None),
                                            ("snippets", snip_path, snip_ours, None),
                                            ("data", data_path, data_ours, rows)):
                r = runner_outcomes(m, path, env_values, data)
                theirs = our_outcomes(r, errors_allowed=True)
                diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                if diff:
                    why = [(x["requestName"], a)
                           for x in r["results"] for a in x.get("assertions", [])
                           if (x["requestName"], a["name"]) in diff]
                    fail("%s through a runner differs from the CLI on %s" % (label, why))
                print("%s through the admin and a runner: the same %d outcomes as the CLI" % (
                    label, len(mine)))

        binary, why = newman_binary()
        if not binary:
            print("SKIP newman comparison: " + why)
        else:
            for label, path, mine, extra in (("shop", COLLECTION, ours, []),
                                             ("snippets", snip_path, snip_ours, []),
                                             ("data", data_path, data_ours, ["-d", csv_path])):
                theirs, failures = newman_outcomes(binary, path, env_path, workdir, extra)
                if set(theirs) != set(mine):
                    fail("%s: different tests: only ours %s, only newman %s" % (
                        label, sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))))
                diff = sorted(k for k in mine if mine[k] != theirs[k])
                if diff:
                    fail("%s: pass/fail differs from newman on %s" % (label, diff))
                print("%s: newman agrees on all %d tests (%d failing)" % (
                    label, len(mine), sum(1 for v in mine.values() if not v)))
    finally:
        if runner is not None:
            runner.terminate()
            runner.wait(15)
        code, err = m.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if code != 0:
        fail("admin exited %d: %s" % (code, err[-2000:]))
    print("PASS")


if __name__ == "__main__":
    main()
