#!/usr/bin/env python3
"""End-to-end test of mockarty-operator against the test API server (standard library only).

Usage: operator_e2e.py <mockarty-operator binary> <fake_apiserver.py> <kube-fixtures dir>

First replays recorded requests from the fixtures against fake_apiserver.py and compares status
codes and key fields; then checks what only the test server can do on demand: the operator relists
after its watches are dropped and the history is compacted (410 Expired), and converges. The other
scenarios run against a real kube-apiserver (operator_envtest.py).
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support.harness import check, failures  # noqa: E402
from support.services import free_port  # noqa: E402

OPERATOR, FAKE, FIXTURES = sys.argv[1], sys.argv[2], sys.argv[3]
TOKEN = "e2e-token"


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, ctype="application/json", token=TOKEN, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Accept": "application/json", "User-Agent": "e2e/1.0"}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(text) if text else None
        except ValueError:
            return resp.status, text

    def get(self, path):
        return self.call("GET", path)


def wait_for(what, fn, timeout=20.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except (OSError, KeyError, TypeError, IndexError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    check(False, "%s (timed out after %.0fs; last %r)" % (what, timeout, last))
    return None


def start_fake(tmp):
    port_file = os.path.join(tmp, "fake.port")
    proc = subprocess.Popen([sys.executable, FAKE, "--token", TOKEN, "--port-file", port_file,
                             "--bookmark-interval", "1"], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file):
            return proc, int(open(port_file).read())
        time.sleep(0.05)
    raise SystemExit("fake API server did not start")


# ---------------------------------------------------------------------------------------------
# Fixture replay: the test server answers recorded requests in the recorded shapes.

def fixture_response(name):
    raw = open(os.path.join(FIXTURES, name + ".http"), "rb").read()
    head, _, body = raw.partition(b"\r\n\r\n")
    code = int(head.split(b" ")[1])
    line = body.split(b"\n")[0]
    return code, json.loads(line) if line.strip() else None


def req_body(name):
    for ext in (".req.json", ".req.yaml"):
        p = os.path.join(FIXTURES, "requests", name + ext)
        if os.path.exists(p):
            return open(p, "rb").read()
    return None


def replay(api, name, method, path, ctype="application/json", token=TOKEN):
    code, got = api.call(method, path, raw=req_body(name), ctype=ctype, token=token)
    want_code, want = fixture_response(name)
    check(code == want_code, "fixture %s: HTTP %d (recorded %d)" % (name, code, want_code))
    return got, want


def test_fixtures(api):
    W = "/apis/fixtures.example.com/v1alpha1/namespaces/fixtures/widgets"
    D = "/apis/apps/v1/namespaces/fixtures/deployments"
    replay(api, "01c-crd-create", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    got, want = replay(api, "02-widget-create", "POST", W)
    check(got["spec"] == want["spec"], "fixture 02: spec.mode defaulted from the CRD schema")
    check(got["metadata"]["generation"] == 1 and got["kind"] == "Widget" and
          got["apiVersion"] == want["apiVersion"] and "uid" in got["metadata"] and
          re.match(r"^\d+$", got["metadata"]["resourceVersion"]) and "status" not in got,
          "fixture 02: created Widget has generation 1, uid, string resourceVersion, no status")
    rv = got["metadata"]["resourceVersion"]
    got, want = replay(api, "03-widget-get-missing", "GET", W + "/does-not-exist")
    check({k: got.get(k) for k in ("kind", "status", "reason", "code", "message")} ==
          {k: want.get(k) for k in ("kind", "status", "reason", "code", "message")} and
          got["details"] == want["details"], "fixture 03: NotFound Status identical")
    # 05a/05b use recorded resourceVersions; substitute ours.
    body = json.loads(req_body("05a-widget-put-ok-metadata-only"))
    body["metadata"]["resourceVersion"] = rv
    code, got = api.call("PUT", W + "/w1", body)
    check(code == 200 and got["metadata"]["generation"] == 1 and
          int(got["metadata"]["resourceVersion"]) > int(rv),
          "fixture 05a: metadata-only PUT keeps generation 1, new resourceVersion")
    stale = json.loads(req_body("05b-widget-put-stale-rv-conflict"))
    stale["metadata"]["resourceVersion"] = rv
    code, got = api.call("PUT", W + "/w1", stale)
    _, want = fixture_response("05b-widget-put-stale-rv-conflict")
    check(code == 409 and got["message"] == want["message"] and got["reason"] == "Conflict",
          "fixture 05b: stale PUT is a 409 Conflict with the recorded message")
    code, got = api.call("PUT", W + "/w1", json.loads(req_body("05c-widget-put-without-rv")))
    check(code == 422, "fixture 05c: CR PUT without resourceVersion is 422")
    got, _ = replay(api, "06a-widget-status-merge-patch", "PATCH", W + "/w1/status",
                    "application/merge-patch+json")
    check(got["status"]["phase"] == "Ready" and got["metadata"]["generation"] == 1,
          "fixture 06a: status patch sets status, generation unchanged")
    code, cur = api.get(W + "/w1")
    body = json.loads(req_body("06b-widget-status-put-ignores-spec"))
    body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    code, got = api.call("PUT", W + "/w1/status", body)
    check(code == 200 and got["spec"]["replicas"] == 1 and got["status"]["phase"] == "Scaling",
          "fixture 06b: status PUT ignores spec")
    got, _ = replay(api, "06c-widget-spec-merge-patch-bumps-generation", "PATCH", W + "/w1",
                    "application/merge-patch+json")
    check(got["metadata"]["generation"] == 2 and got["spec"]["replicas"] == 3 and
          got["status"]["phase"] == "Scaling",
          "fixture 06c: spec patch bumps generation, status part ignored")
    replay(api, "06g-widget-strategic-merge-patch-unsupported", "PATCH", W + "/w1",
           "application/strategic-merge-patch+json")
    apply_ct = "application/apply-patch+yaml"
    got, want = replay(api, "07a-ssa-create-deployment", "PATCH",
                       D + "/web?fieldManager=op&force=true", apply_ct)
    check(got["spec"]["replicas"] == 2 and got["metadata"]["managedFields"][0]["manager"] == "op"
          and got["metadata"]["managedFields"][0]["operation"] == "Apply",
          "fixture 07a: apply creates with an Apply managedFields entry")
    replay(api, "07b-ssa-reapply-changed-image", "PATCH", D + "/web?fieldManager=op&force=true",
           apply_ct)
    got, want = replay(api, "07c-ssa-conflict-other-manager", "PATCH",
                       D + "/web?fieldManager=other", apply_ct)
    check(got.get("message") == want["message"] and got["details"] == want["details"],
          "fixture 07c: apply conflict message and causes identical")
    got, _ = replay(api, "07d-merge-patch-replicas-by-hpa-sim", "PATCH",
                    D + "/web?fieldManager=hpa-sim", "application/merge-patch+json")
    got, _ = replay(api, "07e-ssa-apply-without-replicas-keeps-hpa-value", "PATCH",
                    D + "/web?fieldManager=op&force=true", apply_ct)
    check(got["spec"]["replicas"] == 4, "fixture 07e: apply without replicas keeps hpa's 4")
    got, want = replay(api, "07i-ssa-conflict-with-update-manager", "PATCH",
                       D + "/web?fieldManager=other", apply_ct)
    check(got.get("message") == want["message"],
          "fixture 07i: conflict with an Update manager names its apiVersion")
    replay(api, "07f-ssa-create-web2-replicas3", "PATCH", D + "/web2?fieldManager=op&force=true",
           apply_ct)
    got, _ = replay(api, "07g-ssa-apply-without-owned-replicas-resets-default", "PATCH",
                    D + "/web2?fieldManager=op&force=true", apply_ct)
    check(got["spec"]["replicas"] == 1, "fixture 07g: dropped owned replicas reset to default 1")
    got, want = replay(api, "07h-ssa-without-fieldmanager", "PATCH", D + "/web2", apply_ct)
    check(got == want, "fixture 07h: apply without fieldManager is the recorded 422")
    L = "/apis/coordination.k8s.io/v1/namespaces/fixtures/leases"
    replay(api, "11a-lease-create", "POST", L)
    got, want = replay(api, "11d-lease-create-time-without-microseconds", "POST", L)
    check(got.get("reason") == "BadRequest", "fixture 11d: MicroTime without 6 digits is 400")
    got, want = replay(api, "14a-bad-token-401", "GET", W, token="not-a-valid-token")
    check(got == want, "fixture 14a: 401 Status identical")
    replay(api, "14c-no-token-anonymous-403", "GET", W, token=None)
    # Garbage collection: 15a/15b/15d/15e.
    got, _ = replay(api, "15a-owner-widget-create", "POST", W)
    body = json.loads(req_body("15b-child-configmap-create"))
    body["metadata"]["ownerReferences"][0]["uid"] = got["metadata"]["uid"]
    code, _ = api.call("POST", "/api/v1/namespaces/fixtures/configmaps", body)
    check(code == 201, "fixture 15b: child with ownerReferences created")
    got, want = replay(api, "15d-owner-widget-delete", "DELETE", W + "/owner")
    check(got["kind"] == "Status" and got["status"] == "Success" and
          set(got["details"]) == set(want["details"]), "fixture 15d: delete answers Success")
    wait_for("fixture 15e: child garbage-collected", lambda: api.get(
        "/api/v1/namespaces/fixtures/configmaps/owner-child-1")[0] == 404, 5)
    # Finalizers: 16a/16b/16e/16f.
    got, _ = replay(api, "16a-widget-with-finalizer-create", "POST", W)
    got, _ = replay(api, "16b-widget-with-finalizer-delete", "DELETE", W + "/fin")
    check("deletionTimestamp" in got["metadata"] and got["metadata"]["generation"] == 2,
          "fixture 16b: delete with a finalizer returns the terminating object")
    check(api.get(W + "/fin")[0] == 200, "fixture 16c: object stays while finalizers remain")
    replay(api, "16d-widget-add-finalizer-while-terminating", "PATCH", W + "/fin",
           "application/merge-patch+json")
    replay(api, "16e-widget-remove-finalizer-patch", "PATCH", W + "/fin",
           "application/merge-patch+json")
    replay(api, "16f-widget-get-after-finalizer-removed", "GET", W + "/fin")


# ---------------------------------------------------------------------------------------------

class Operator:
    def __init__(self, name, kubeconfig, tmp):
        self.name = name
        self.port = free_port()
        self.log = open(os.path.join(tmp, name + ".log"), "w+")
        env = dict(os.environ, KUBECONFIG=kubeconfig, HEALTH_PORT=str(self.port),
                   LEADER_ELECTION="true", LEADER_ELECTION_NAMESPACE="mockarty-system",
                   POD_NAME=name, LOG_LEVEL="debug", RESYNC_PERIOD="1m")
        self.proc = subprocess.Popen([OPERATOR], env=env, stdout=self.log, stderr=self.log)

    def http(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        return r.status, body

    def metric(self, name):
        _, body = self.http("/metrics")
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return None
        return self.proc.returncode

    def dump(self):
        self.log.seek(0)
        return self.log.read()


NS = "team"
C = "/apis/mockarty.io/v1alpha1/namespaces/%s/mockartyclusters" % NS
DEP = "/apis/apps/v1/namespaces/%s/deployments" % NS


def cluster_obj(name, replicas, autoscaling=None, db="postgres"):
    spec = {"image": {"repository": "mockarty/mockarty", "tag": "0.1.0"},
            "database": {"type": db},
            "resolvers": {"replicas": replicas}}
    if db == "postgres":
        spec["database"]["postgres"] = {"dsnSecretRef": {"name": "pg", "key": "dsn"}}
    if autoscaling:
        spec["resolvers"]["autoscaling"] = autoscaling
    return {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyCluster",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def kubectl_apply(api, path, obj):
    return api.call("PATCH", path + "/" + obj["metadata"]["name"] +
                    "?fieldManager=kubectl&force=true", obj, "application/apply-patch+yaml")


def test_operator(api, kubeconfig, tmp):
    """Only what a real API server cannot be made to do on demand: dropped watches and 410 Expired
    after compaction. Every other scenario runs against a real kube-apiserver in
    operator_envtest.py."""
    a = Operator("op-a", kubeconfig, tmp)
    try:
        wait_for("op-a becomes leader", lambda: a.metric("mockarty_operator_is_leader") == 1)
        wait_for("op-a is ready", lambda: a.http("/readyz")[0] == 200)
        code, _ = kubectl_apply(api, C, cluster_obj("demo", 2))
        check(code == 201, "MockartyCluster demo created")
        wait_for("admin Deployment appears", lambda: api.get(DEP + "/demo-admin")[0] == 200)
        wait_for("ConfigMap appears", lambda: api.get(
            "/api/v1/namespaces/team/configmaps/demo-config")[0] == 200)
        # Watches dropped and history compacted while something changed: relist, converge.
        lists = a.metric("mockarty_operator_informer_lists_total")
        api.call("POST", "/_test/drop-watches")
        api.call("DELETE", "/api/v1/namespaces/team/configmaps/demo-config")
        api.call("DELETE", DEP + "/demo-admin")
        api.call("POST", "/_test/compact")
        wait_for("operator relisted after 410 Expired",
                 lambda: a.metric("mockarty_operator_informer_lists_total") > lists)
        wait_for("ConfigMap recreated after relist", lambda: api.get(
            "/api/v1/namespaces/team/configmaps/demo-config")[0] == 200)
        wait_for("admin Deployment recreated after relist",
                 lambda: api.get(DEP + "/demo-admin")[0] == 200)
        rc = a.stop()
        check(rc == 0, "op-a exits 0 on SIGTERM (%r)" % rc)
    finally:
        a.stop()
        if failures:
            print("---- op-a log ----\n" + a.dump()[-6000:])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        fake, port = start_fake(tmp)
        try:
            api = Api(port)
            if os.path.isdir(FIXTURES):
                test_fixtures(api)
            else:
                print("SKIP fixture replay: %s not found" % FIXTURES)
            kubeconfig = os.path.join(tmp, "kubeconfig")
            with open(kubeconfig, "w") as f:
                f.write("apiVersion: v1\nkind: Config\ncurrent-context: e2e\n"
                        "clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:%d\n"
                        "users:\n- name: op\n  user:\n    token: %s\n"
                        "contexts:\n- name: e2e\n  context:\n    cluster: fake\n    user: op\n"
                        "    namespace: mockarty-system\n" % (port, TOKEN))
            test_operator(api, kubeconfig, tmp)
        finally:
            fake.terminate()
            fake.wait()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
