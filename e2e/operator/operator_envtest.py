#!/usr/bin/python3
"""mockarty-operator against a real kube-apiserver (e2e/support/envtest.py) with the real garbage
collector and HPA controller of kube-controller-manager. The test stands in for the Deployment
controller (no kubelet makes pods ready) by writing Deployment status.

Scenarios (issue 15): children with controller owner references written by server-side apply,
replicas follow the spec, HPA-owned replicas not reverted, a deleted child recreated, status
conditions and observedGeneration, Events, a runner pool waiting for its cluster and for its token
Secret, coordinator wiring of runners and resolvers, admin-first upgrades, leader election with two
operators through a real Lease, garbage collection of children when the cluster is deleted.

Usage: operator_envtest.py <mockarty-operator binary>; exit 77 when no control plane exists.
"""
import glob
import http.client
import os
import signal
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from support import envtest, services  # noqa: E402
from support.harness import check, failures  # noqa: E402

OPERATOR = sys.argv[1] if len(sys.argv) > 1 else None
CP = None
P = envtest.path_of


def wait(what, fn, timeout=30):
    got = CP.wait_for(what, fn, timeout)
    check(bool(got), what)
    return got


class Operator:
    def __init__(self, name, workdir, **env):
        self.name = name
        self.port = services.free_port()
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w+")
        e = dict(os.environ, KUBECONFIG=CP.kubeconfig, HEALTH_PORT=str(self.port),
                 LEADER_ELECTION="true", LEADER_ELECTION_NAMESPACE="mockarty-system",
                 POD_NAME=name, LOG_LEVEL="debug", RESYNC_PERIOD="1m")
        e.update(env)
        self.proc = subprocess.Popen([OPERATOR], env=e, stdout=self.log, stderr=self.log)

    def http(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def metric(self, name):
        _, body = self.http("/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def dump(self):
        self.log.seek(0)
        return self.log.read()


NS, NS_B = "team", "team-b"
SERVICEMONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList",
                       "plural": "servicemonitors", "singular": "servicemonitor"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


def cluster_obj(name, replicas=0, db="sqlite", tag="0.1.0", **spec_extra):
    spec = {"image": {"repository": "mockarty/mockarty", "tag": tag}, "database": {"type": db},
            "resolvers": {"replicas": replicas}}
    if db == "postgres":
        spec["database"]["postgres"] = {"dsnSecretRef": {"name": "pg", "key": "dsn"}}
    spec.update(spec_extra)
    return {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyCluster",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def controlled_by(obj, owner):
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller") and
               r.get("blockOwnerDeletion") and r.get("kind") == owner["kind"] for r in refs)


def dep(ns, name):
    return CP.obj(P("Deployment", ns, name))


def env_of(d):
    return {e["name"]: e for c in d["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])}


def image_of(d):
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


def condition(obj, ctype):
    st = (obj or {}).get("status") or {}
    return next((c for c in st.get("conditions") or [] if c["type"] == ctype), None)


def roll_out(ns, name, ready=None):
    """Stands in for the Deployment controller: the current spec is rolled out and ready."""
    d = dep(ns, name)
    n = d["spec"].get("replicas", 1) if ready is None else ready
    st = {"observedGeneration": d["metadata"]["generation"], "replicas": n, "readyReplicas": n,
          "updatedReplicas": n, "availableReplicas": n,
          "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                          "message": "ok"},
                         {"type": "Progressing", "status": "True",
                          "reason": "NewReplicaSetAvailable", "message": "rolled out"}]}
    r = CP.merge_patch(P("Deployment", ns, name) + "/status", {"status": st})
    return r.status == 200


def events_for(ns, name):
    r = CP.get(P("Event", ns) + "?fieldSelector=involvedObject.name%3D" + name)
    return r.json["items"] if r.status == 200 else []


def scenario_children(a):
    C = P("MockartyCluster", NS)
    r = CP.apply(C, cluster_obj("demo", 2, db="postgres"), manager="kubectl")
    check(r.status == 201, "MockartyCluster demo created (%d)" % r.status)
    cl = CP.obj(C + "/demo")
    adm = wait("admin Deployment appears", lambda: dep(NS, "demo-admin"))
    res = wait("resolver Deployment appears", lambda: dep(NS, "demo-resolvers"))
    if adm and res:
        check(controlled_by(adm, cl) and controlled_by(res, cl),
              "Deployments carry a controller owner reference (blockOwnerDeletion) to the cluster")
        check(res["spec"]["replicas"] == 2, "resolver replicas follow spec (2)")
        check(adm["spec"]["replicas"] == 1, "admin runs 1 replica")
        check(any(m["manager"] == "mockarty-operator" and m["operation"] == "Apply"
                  for m in res["metadata"].get("managedFields") or []),
              "children are written by server-side apply (manager mockarty-operator)")
        check("secretKeyRef" in (env_of(adm).get("DB_DSN", {}).get("valueFrom") or {}),
              "admin gets DB_DSN by secretKeyRef")
        c0 = res["spec"]["template"]["spec"]["containers"][0]
        cms = [e["configMapRef"]["name"] for e in c0.get("envFrom", []) if "configMapRef" in e]
        data = {}
        for cm in cms:
            data.update((CP.obj(P("ConfigMap", NS, cm)) or {}).get("data") or {})
        data.update({k: v.get("value") for k, v in env_of(res).items()})
        check(data.get("COORDINATOR_ADDR") == "demo-admin.team.svc:5773",
              "resolvers get COORDINATOR_ADDR of the admin Service (env or their ConfigMap)")
    for kind, name in (("Service", "demo-admin"), ("Service", "demo-resolvers"),
                       ("ConfigMap", "demo-config"), ("PodDisruptionBudget", "demo-resolvers")):
        obj = wait("%s %s appears" % (kind, name), lambda: CP.obj(P(kind, NS, name)))
        check(controlled_by(obj, cl), "%s %s is controlled by the cluster" % (kind, name))
    roll_out(NS, "demo-admin")
    roll_out(NS, "demo-resolvers")
    st = wait("status has observedGeneration 1 and phase Ready", lambda: (
        CP.obj(C + "/demo").get("status") or {}).get("phase") == "Ready" and CP.obj(
        C + "/demo")["status"]["observedGeneration"] == 1 and CP.obj(C + "/demo")["status"])
    if st:
        ready = condition({"status": st}, "Ready")
        check(ready and ready["status"] == "True" and ready.get("observedGeneration") == 1,
              "Ready condition True with observedGeneration 1")
        check(st.get("version") == "0.1.0", "status.version is the admin's tag (%r)"
              % st.get("version"))
    sm = wait("a ServiceMonitor is created (the kind is served here)",
              lambda: CP.obj("/apis/monitoring.coreos.com/v1/namespaces/team/servicemonitors/demo"))
    if sm:
        check(controlled_by(sm, cl) and sm["spec"]["selector"]["matchLabels"][
            "app.kubernetes.io/instance"] == "demo" and sm["spec"]["endpoints"][0]["path"] ==
            "/metrics", "ServiceMonitor owned by the cluster, scraping its Services' /metrics")
    evs = wait("Created Events recorded on the cluster",
               lambda: [e for e in events_for(NS, "demo") if e["reason"] == "Created"])
    check(evs and any("Deployment demo-admin" in e["message"] for e in evs),
          "an Event names the created admin Deployment")

    # Replicas follow the spec; generation moves on and status follows it.
    CP.merge_patch(C + "/demo", {"spec": {"resolvers": {"replicas": 3}}})
    wait("resolver Deployment follows replicas 3", lambda: dep(NS, "demo-resolvers")["spec"][
        "replicas"] == 3)
    wait("status.observedGeneration follows generation 2",
         lambda: (CP.obj(C + "/demo").get("status") or {}).get("observedGeneration") == 2)
    wait("an Updated Event names the resolver Deployment",
         lambda: [e for e in events_for(NS, "demo") if e["reason"] == "Updated" and
                  "demo-resolvers" in e["message"]])


def scenario_hpa(a):
    """The real HPA controller scales the Deployment to minReplicas (no metrics needed for
    that); the operator must leave the replicas to it."""
    C = P("MockartyCluster", NS)
    CP.merge_patch(C + "/demo", {"spec": {"resolvers": {"autoscaling": {
        "enabled": True, "minReplicas": 4, "maxReplicas": 6}}}})
    hpa = wait("HPA appears", lambda: CP.obj(P("HorizontalPodAutoscaler", NS, "demo-resolvers")))
    if hpa:
        check(hpa["spec"]["maxReplicas"] == 6 and hpa["spec"]["minReplicas"] == 4 and
              hpa["spec"]["scaleTargetRef"]["name"] == "demo-resolvers",
              "HPA targets the resolver Deployment with 4..6")
    wait("the HPA controller scales the Deployment to 4",
         lambda: dep(NS, "demo-resolvers")["spec"]["replicas"] == 4, 40)
    before = a.metric("mockarty_operator_reconcile_total")
    CP.merge_patch(C + "/demo", {"metadata": {"annotations": {"touch": "1"}}})
    wait("operator reconciled after the scale",
         lambda: a.metric("mockarty_operator_reconcile_total") >= before + 1)
    time.sleep(1.0)
    d = dep(NS, "demo-resolvers")
    check(d["spec"]["replicas"] == 4, "replicas set by the HPA stay at 4 after reconciles")
    check(not any(m["manager"] == "mockarty-operator" and "f:replicas" in
                  str(m.get("fieldsV1", {}).get("f:spec", {}))
                  for m in d["metadata"]["managedFields"]),
          "the operator does not own spec.replicas while autoscaling")


def scenario_recreate():
    old = CP.obj(P("Service", NS, "demo-admin"))["metadata"]["uid"]
    CP.delete(P("Service", NS, "demo-admin"))
    wait("deleted Service is recreated", lambda: (CP.obj(P("Service", NS, "demo-admin")) or {
        "metadata": {"uid": old}})["metadata"]["uid"] != old)
    CP.delete(P("Deployment", NS, "demo-admin"))
    wait("deleted admin Deployment is recreated", lambda: dep(NS, "demo-admin"))


def scenario_upgrade():
    """Admin first: the resolvers keep the old image until the admin runs the new one."""
    C = P("MockartyCluster", NS)
    roll_out(NS, "demo-admin")
    roll_out(NS, "demo-resolvers")
    wait("cluster Ready before the upgrade", lambda: CP.obj(C + "/demo")["status"]["phase"] ==
         "Ready")
    CP.merge_patch(C + "/demo", {"spec": {"image": {"tag": "0.2.0"}}})
    wait("admin Deployment gets image 0.2.0",
         lambda: image_of(dep(NS, "demo-admin")).endswith(":0.2.0"))
    cond = wait("Upgrading condition says AdminRollingOut",
                lambda: (condition(CP.obj(C + "/demo"), "Upgrading") or {}).get(
                    "reason") == "AdminRollingOut" and condition(CP.obj(C + "/demo"), "Upgrading"))
    if cond:
        check(cond["status"] == "True" and "0.2.0" in cond["message"],
              "Upgrading=True names the new version: %s" % cond["message"])
    time.sleep(1.5)
    check(image_of(dep(NS, "demo-resolvers")).endswith(":0.1.0"),
          "resolvers stay at 0.1.0 while the admin rolls out")
    check(CP.obj(C + "/demo")["status"].get("version") == "0.1.0",
          "status.version stays 0.1.0 until the admin is available")
    roll_out(NS, "demo-admin")  # the admin's new ReplicaSet became available
    wait("resolvers roll to 0.2.0 once the admin is available",
         lambda: image_of(dep(NS, "demo-resolvers")).endswith(":0.2.0"))
    wait("status.version becomes 0.2.0", lambda: CP.obj(C + "/demo")["status"].get(
        "version") == "0.2.0")
    roll_out(NS, "demo-resolvers")
    wait("Upgrading condition ends as UpToDate",
         lambda: (condition(CP.obj(C + "/demo"), "Upgrading") or {}).get("reason") == "UpToDate"
         and condition(CP.obj(C + "/demo"), "Upgrading")["status"] == "False")


def scenario_pool(a):
    PP = P("MockartyRunnerPool", NS_B)
    pool = {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyRunnerPool",
            "metadata": {"name": "runners", "namespace": NS_B},
            "spec": {"clusterRef": {"name": "late", "namespace": NS},
                     "capabilities": ["api_test"], "replicas": 1, "maxConcurrent": 7,
                     "mockartyNamespace": "payments",
                     "tokenSecretRef": {"name": "runner-token", "key": "token"},
                     "tls": {"caSecretName": "coord-ca", "clientCertSecretName": "runner-cert"}}}
    r = CP.apply(PP, pool, manager="kubectl")
    check(r.status == 201, "MockartyRunnerPool created (%d)" % r.status)
    cond = wait("pool without its cluster is Ready=False ClusterNotFound", lambda: (
        condition(CP.obj(PP + "/runners"), "Ready") or {}).get("reason") == "ClusterNotFound")
    CP.apply(P("MockartyCluster", NS), cluster_obj("late", coordinator={"tls": {
        "enabled": True, "secretName": "coord-tls"}}), manager="kubectl")
    cond = wait("pool whose token Secret is missing is Ready=False TokenSecretNotFound", lambda: (
        condition(CP.obj(PP + "/runners"), "Ready") or {}).get("reason") == "TokenSecretNotFound"
        and condition(CP.obj(PP + "/runners"), "Ready"))
    if cond:
        check("runner-token" in cond["message"], "the condition names the Secret: %s"
              % cond["message"])
    CP.create(P("Secret", NS_B), {"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": "runner-token"},
                                  "stringData": {"token": "mki_test"}})
    pool_now = CP.obj(PP + "/runners")

    def runner_dep():
        items = CP.get(P("Deployment", NS_B)).json["items"]
        return next((d for d in items if controlled_by(dict(d, kind="Deployment"), pool_now)),
                    None)
    d = wait("runner Deployment appears once the cluster and the Secret exist", runner_dep, 20)
    if d:
        env = env_of(d)
        val = {k: v.get("value") for k, v in env.items()}
        check(val.get("COORDINATOR_ADDR") == "late-admin.team.svc:5773",
              "runner COORDINATOR_ADDR points at the cluster's admin Service")
        check(val.get("MAX_CONCURRENT") == "7" and val.get("CAPABILITIES") == "api_test" and
              val.get("NAMESPACE") == "payments" and val.get("SHARED") == "false",
              "runner env from the pool spec: MAX_CONCURRENT, CAPABILITIES, NAMESPACE, SHARED")
        check("secretKeyRef" in (env.get("API_TOKEN", {}).get("valueFrom") or {}),
              "runner API_TOKEN comes from the token Secret")
        check(val.get("RUNNER_GRPC_TLS_ENABLED") == "true" and
              val.get("RUNNER_GRPC_TLS_CA_FILE") and val.get("RUNNER_GRPC_TLS_CERT_FILE") and
              val.get("RUNNER_GRPC_TLS_KEY_FILE"),
              "runner TLS client settings: CA, client certificate and key files")
        vols = {v["name"]: v for v in d["spec"]["template"]["spec"].get("volumes", [])}
        secrets = {v.get("secret", {}).get("secretName") for v in vols.values()}
        check({"coord-ca", "runner-cert"} <= secrets,
              "runner mounts the CA and client-certificate Secrets (%s)" % sorted(
                  s for s in secrets if s))
        c0 = d["spec"]["template"]["spec"]["containers"][0]
        check(any(p.get("containerPort") == 6770 for p in c0.get("ports", [])) and
              c0.get("readinessProbe") and c0.get("livenessProbe"),
              "runner has its dashboard port 6770 and probes")
        roll_out(NS_B, d["metadata"]["name"])
        wait("pool becomes Ready=True", lambda: (condition(CP.obj(PP + "/runners"), "Ready") or {}
                                                 ).get("status") == "True")


def scenario_leader(a, b):
    L = P("Lease", "mockarty-system", "mockarty-operator-leader")
    lease = CP.obj(L)
    check(lease and lease["spec"]["holderIdentity"] == "op-a", "the real Lease is held by op-a")
    check(b.metric("mockarty_operator_reconcile_total") == 0, "op-b (standby) reconciled nothing")
    # The API server's audit log: who wrote, by user agent ("mockarty-operator/0.1.0 (op-b)").
    writes = {n: [e for e in CP.audit_events() if "(%s)" % n in e.get("userAgent", "")]
              for n in ("op-a", "op-b")}
    check(writes["op-b"] == [], "op-b (standby) sent no write request (audit log): %s" % [
        (e["verb"], e["requestURI"]) for e in writes["op-b"]][:5])
    check(len(writes["op-a"]) > 10, "op-a sent the writes (%d in the audit log)"
          % len(writes["op-a"]))
    check(b.metric("mockarty_operator_is_leader") == 0, "op-b is not leader")
    rc = a.stop()
    check(rc == 0, "op-a exits 0 on SIGTERM (%r)" % rc)
    wait("op-b takes the lease", lambda: b.metric("mockarty_operator_is_leader") == 1, 20)
    check(CP.obj(L)["spec"]["holderIdentity"] == "op-b", "lease holder is op-b")
    C = P("MockartyCluster", NS)
    CP.merge_patch(C + "/demo", {"spec": {"resolvers": {"autoscaling": {"enabled": False},
                                                        "replicas": 2}}})
    wait("new leader reconciles: autoscaling off removes the HPA",
         lambda: CP.get(P("HorizontalPodAutoscaler", NS, "demo-resolvers")).status == 404)
    wait("new leader reconciles: replicas back to 2",
         lambda: dep(NS, "demo-resolvers")["spec"]["replicas"] == 2)


def scenario_gc():
    C = P("MockartyCluster", NS)
    CP.delete(C + "/demo")
    for kind, name in (("Deployment", "demo-admin"), ("Deployment", "demo-resolvers"),
                       ("Service", "demo-admin"), ("ConfigMap", "demo-config"),
                       ("PodDisruptionBudget", "demo-resolvers")):
        wait("garbage collector deletes %s %s" % (kind, name),
             lambda: CP.get(P(kind, NS, name)).status == 404, 40)


def main():
    global CP
    try:
        envtest.find_assets()
    except envtest.Unavailable as e:
        print("SKIP: %s" % e)
        return 77
    services.install_signal_handlers()
    t0 = time.time()
    CP = envtest.ControlPlane(kcm="garbagecollector,horizontalpodautoscaling", audit=True).start()
    a = b = None
    try:
        for f in sorted(glob.glob(os.path.join(ROOT, "crds", "*.yaml"))):
            with open(f) as fh:
                r = CP.apply_crd(yaml.safe_load(fh))
            check(r.status in (200, 201), "CRD %s installed" % os.path.basename(f))
        for ns in (NS, NS_B, "mockarty-system"):
            CP.ensure_namespace(ns)
        # The Prometheus Operator's kind, reduced to what the operator writes: discovered, not
        # assumed (the helm test runs without it, and nothing asks for ServiceMonitors there).
        r = CP.apply_crd(SERVICEMONITOR_CRD)
        check(r.status in (200, 201), "ServiceMonitor CRD installed (%d)" % r.status)
        a = Operator("op-a", CP.dir)
        wait("op-a becomes leader", lambda: a.metric("mockarty_operator_is_leader") == 1)
        wait("op-a is ready", lambda: a.http("/readyz")[0] == 200)
        b = Operator("op-b", CP.dir)
        wait("op-b is ready as a standby", lambda: b.http("/readyz")[0] == 200)
        for name, fn in (("children", lambda: scenario_children(a)),
                         ("hpa", lambda: scenario_hpa(a)),
                         ("recreate", scenario_recreate),
                         ("upgrade", scenario_upgrade),
                         ("pool", lambda: scenario_pool(a)),
                         ("leader", lambda: scenario_leader(a, b)),
                         ("gc", scenario_gc)):
            t = time.time()
            print("--- %s" % name, flush=True)
            fn()
            print("--- %s took %.1fs" % (name, time.time() - t), flush=True)
        for op in (a, b):
            problems = services.sanitizer_problems(op.dump())
            check(not problems, "%s log has no sanitizer reports %s" % (op.name, problems[:3]))
        check(b.stop() == 0, "op-b exits 0 on SIGTERM")
    finally:
        for op in (a, b):
            if op:
                op.stop()
        if failures:
            for op in (a, b):
                if op:
                    print("---- %s log (tail) ----\n%s" % (op.name, op.dump()[-5000:]))
        CP.cleanup()
    print("%d failed; %.1fs" % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
