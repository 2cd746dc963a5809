#!/usr/bin/python3
"""The CRDs on a real kube-apiserver (e2e/support/envtest.py): they install (kubectl apply -f
crds/, as a user does, then the documented server-side apply for upgrades), the server's defaulting
of an empty spec, every x-kubernetes-validations rule accepting and rejecting with a message that
names the field, every file in examples/ accepted, and the printer columns served.
Exit 77 (ctest: skipped) when no control plane binaries exist."""
import glob
import os
import subprocess
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from support import envtest  # noqa: E402

CP = None
CRD_FILES = sorted(glob.glob(os.path.join(HERE, "*.yaml")))
# The CRDs of the previous release (0.1.0: the first a real API server accepted), installed first
# so that test_1 is the documented upgrade over objects stored under them.
PREVIOUS = sorted(glob.glob(os.path.join(HERE, "testdata", "0.1.0", "*.yaml")))
NS = "crd-test"
UPGRADE_NS = "crd-upgrade"


def setUpModule():
    global CP
    CP = envtest.ControlPlane().start()
    CP.ensure_namespace(NS)


def tearDownModule():
    if CP:
        CP.cleanup()


def cluster(spec, name="c"):
    return {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyCluster",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def pool(spec, name="p"):
    return {"apiVersion": "mockarty.io/v1alpha1", "kind": "MockartyRunnerPool",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def dry_create(obj):
    """Creates obj with dryRun=All: full admission (defaults, schema, CEL), nothing stored."""
    path = envtest.path_of(obj["kind"], obj["metadata"].get("namespace"))
    return CP.create(path + "?dryRun=All", obj)


PG = {"type": "postgres", "postgres": {"dsnSecretRef": {"name": "pg"}}}
POOL = {"clusterRef": {"name": "c"}, "tokenSecretRef": {"name": "t"}}
# (object, None when it must be accepted, else every text the 422 must contain).
CASES = [
    # spec: sqlite allows no resolvers
    (cluster({}), None),
    (cluster({"database": {"type": "sqlite"}, "resolvers": {"replicas": 0}}), None),
    (cluster({"resolvers": {"replicas": 2}}),
     ["spec.resolvers.replicas must be 0", "spec.database.type is sqlite", "spec.database.type"]),
    (cluster({"resolvers": {"autoscaling": {"enabled": True}}}),
     ["spec.resolvers.autoscaling.enabled must be false", "spec.database.type is sqlite"]),
    (cluster({"database": PG, "resolvers": {"replicas": 3}}), None),
    # database: postgres needs its DSN secret
    (cluster({"database": {"type": "postgres"}}),
     ["spec.database.postgres.dsnSecretRef is required", "spec.database.postgres"]),
    (cluster({"database": {"type": "postgres", "postgres": {}}}),
     ["spec.database.postgres.dsnSecretRef is required"]),
    (cluster({"database": PG}), None),
    # cache: redis needs a host
    (cluster({"cache": {"type": "redis"}}), ["spec.cache.redis.host is required"]),
    (cluster({"cache": {"type": "redis", "redis": {"host": ""}}}),
     ["spec.cache.redis.host is required"]),
    (cluster({"cache": {"type": "redis", "redis": {"host": "redis"}}}), None),
    # ... or sentinels (then the master is found through them)
    (cluster({"cache": {"type": "redis", "redis": {"sentinels": ["s0:26379", "s1:26379"],
                                                   "masterName": "mk"}}}), None),
    (cluster({"cache": {"type": "redis", "redis": {"sentinels": []}}}),
     ["spec.cache.redis.host is required"]),
    (cluster({"cache": {"type": "redis", "redis": {"sentinels": ["s0"]}}}),
     ["spec.cache.redis.sentinels[0]"]),
    # large deployments: replicas and a direct LISTEN by secret, the drain as a duration
    (cluster({"database": dict(PG, readDsnSecretRef={"name": "ro"},
                               listenDsnSecretRef={"name": "direct"}),
              "shutdownDrain": "10s", "resolvers": {"replicas": 2}}), None),
    (cluster({"shutdownDrain": "10 s"}), ["spec.shutdownDrain"]),
    # autoscaling bounds, explicit and against a default
    (cluster({"database": PG, "resolvers": {"autoscaling": {
        "enabled": True, "minReplicas": 5, "maxReplicas": 3}}}),
     ["spec.resolvers.autoscaling.minReplicas must be <= spec.resolvers.autoscaling.maxReplicas",
      "spec.resolvers.autoscaling.minReplicas"]),
    (cluster({"database": PG, "resolvers": {"autoscaling": {"enabled": True, "maxReplicas": 1}}}),
     ["spec.resolvers.autoscaling.minReplicas must be <="]),
    (cluster({"database": PG, "resolvers": {"autoscaling": {
        "enabled": True, "minReplicas": 3, "maxReplicas": 3}}}), None),
    # coordinator TLS needs its secret
    (cluster({"coordinator": {"tls": {"enabled": True}}}),
     ["spec.coordinator.tls.secretName is required", "spec.coordinator.tls.secretName"]),
    (cluster({"coordinator": {"tls": {"enabled": True, "secretName": ""}}}),
     ["spec.coordinator.tls.secretName is required"]),
    (cluster({"coordinator": {"tls": {"enabled": True, "secretName": "t"}}}), None),
    # schema (not CEL): enum and bounds
    (cluster({"database": {"type": "mysql"}}), ["spec.database.type", "Unsupported value"]),
    (cluster({"resolvers": {"replicas": -1}}), ["spec.resolvers.replicas"]),
    # runner pool: shared excludes mockartyNamespace
    (pool(dict(POOL, shared=True, mockartyNamespace="x")),
     ["spec.shared and spec.mockartyNamespace are mutually exclusive", "spec.mockartyNamespace"]),
    (pool(dict(POOL, shared=True)), None),
    (pool(dict(POOL, mockartyNamespace="x")), None),
    (pool({"clusterRef": {"name": "c"}}), ["spec.tokenSecretRef", "Required value"]),
    (pool(dict(POOL, capabilities=["x"])), ["spec.capabilities[0]", "Unsupported value"]),
]


def example_docs():
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc["kind"].startswith("Mockarty"):
                    yield path, doc


class CRDsOnARealAPIServer(unittest.TestCase):
    def test_0_previous_release(self):
        """Objects stored under the previous release's CRDs, to be upgraded by test_1."""
        self.assertTrue(PREVIOUS, "crds/testdata/0.1.0 holds the previous CRDs")
        for f in PREVIOUS:
            with open(f) as fh:
                r = CP.apply_crd(yaml.safe_load(fh))
            self.assertIn(r.status, (200, 201), "%s: %r" % (f, r))
        CP.ensure_namespace(UPGRADE_NS)
        for path, doc in example_docs():
            doc = dict(doc, metadata=dict(doc["metadata"], namespace=UPGRADE_NS))
            r = CP.create(envtest.path_of(doc["kind"], UPGRADE_NS), doc)
            self.assertEqual(r.status, 201, "%s under the 0.1.0 CRDs: %r" % (path, r))
            r = CP.call("PUT", envtest.path_of(doc["kind"], UPGRADE_NS, doc["metadata"]["name"]) +
                        "/status", dict(r.json, status={"observedGeneration": 1}))
            self.assertEqual(r.status, 200, r)

    def test_1_install(self):
        try:
            _, kubectl = envtest.helm_and_kubectl()
        except envtest.Unavailable as e:
            kubectl = None
            print("\nno kubectl (%s): the CRDs are applied through the API only" % e)
        env = dict(os.environ, KUBECONFIG=CP.kubeconfig)
        # What a user types first, then the documented upgrade path (server-side apply).
        for argv in ([kubectl, "apply", "-f", HERE], [kubectl, "apply", "--server-side",
                                                      "--force-conflicts", "-f", HERE]):
            if not kubectl:
                break
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, "%s: %s%s" % (argv, p.stdout, p.stderr))
        for f in CRD_FILES:
            with open(f) as fh:
                doc = yaml.safe_load(fh)
            r = CP.apply_crd(doc)
            self.assertIn(r.status, (200, 201), "%s: %r" % (f, r))
        # The chart installs the same files through its crds/ link.
        chart_crds = os.path.join(ROOT, "helm", "mockarty", "crds")
        self.assertEqual(os.path.realpath(chart_crds), os.path.realpath(HERE))

    def test_2_defaults_of_an_empty_spec(self):
        r = dry_create(cluster({}))
        self.assertEqual(r.status, 201, r)
        spec = r.json["spec"]
        self.assertEqual(spec["database"], {"type": "sqlite"})
        self.assertEqual(spec["cache"], {"type": "inmemory"})
        self.assertEqual(spec["resolvers"]["replicas"], 0)
        self.assertEqual(spec["resolvers"]["autoscaling"],
                         {"enabled": False, "minReplicas": 2, "maxReplicas": 10,
                          "targetCPUUtilizationPercentage": 80})
        self.assertEqual(spec["image"]["pullPolicy"], "IfNotPresent")
        self.assertEqual(spec["admin"]["service"]["type"], "ClusterIP")
        self.assertEqual(spec["coordinator"]["tls"], {"enabled": False})
        r = dry_create(pool(POOL))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["spec"]["capabilities"], ["api_test", "performance"])
        self.assertEqual(r.json["spec"]["tokenSecretRef"], {"name": "t", "key": "token"})

    def test_3_each_rule_accepts_and_rejects(self):
        for obj, want in CASES:
            with self.subTest(kind=obj["kind"], spec=obj["spec"]):
                r = dry_create(obj)
                if want is None:
                    self.assertEqual(r.status, 201, r)
                    continue
                self.assertEqual(r.status, 422, r)
                msg = r.json["message"]
                for text in want:
                    self.assertIn(text, msg)

    def test_3b_every_rule_is_exercised(self):
        """Each rule's message appears in some rejected case above, so a new rule needs a case."""
        rejected = " ".join(" ".join(w) for _, w in CASES if w)
        for f in CRD_FILES:
            with open(f) as fh:
                schema = yaml.safe_load(fh)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            stack = [schema]
            while stack:
                node = stack.pop()
                for rule in node.get("x-kubernetes-validations", []):
                    head = rule["message"].split(" ")[0]
                    self.assertIn(head, rejected, rule["message"])
                    self.assertTrue(rule["message"].startswith("spec."),
                                    "message names the field: " + rule["message"])
                stack += list((node.get("properties") or {}).values())

    def test_4_examples_accepted(self):
        seen = 0
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for doc in docs:
                ns = doc["metadata"].get("namespace")
                if ns:
                    CP.ensure_namespace(ns)
                if doc["kind"] == "Namespace":
                    CP.ensure_namespace(doc["metadata"]["name"])
                    continue
                r = CP.create(envtest.path_of(doc["kind"], ns), doc)
                self.assertEqual(r.status, 201, "%s %s: %r" % (path, doc["metadata"]["name"], r))
                seen += doc["kind"].startswith("Mockarty")
        self.assertGreaterEqual(seen, 4, "examples: 2 clusters and 2 pools expected")

    def test_6_objects_of_the_previous_release_stay_valid(self):
        """After the upgrade (test_1) every object stored under 0.1.0 reads back, takes a spec
        change and a status with the new fields."""
        seen = 0
        for path, doc in example_docs():
            p = envtest.path_of(doc["kind"], UPGRADE_NS, doc["metadata"]["name"])
            cur = CP.obj(p)
            self.assertIsNotNone(cur, path)
            r = CP.merge_patch(p, {"metadata": {"labels": {"upgraded": "yes"}},
                                   "spec": {"env": [{"name": "X", "value": "1"}]}
                                   if doc["kind"] == "MockartyRunnerPool" else
                                   {"admin": {"env": [{"name": "X", "value": "1"}]}}})
            self.assertEqual(r.status, 200, "%s after the CRD upgrade: %r" % (path, r))
            status = {"observedGeneration": 2}
            if doc["kind"] == "MockartyCluster":
                status["version"] = "0.1.0"
            r = CP.merge_patch(p + "/status", {"status": status})
            self.assertEqual(r.status, 200, r)
            if doc["kind"] == "MockartyCluster":
                self.assertEqual(r.json["status"].get("version"), "0.1.0",
                                 "the new status.version is kept, not pruned")
            seen += 1
        self.assertGreaterEqual(seen, 4)

    def test_5_printer_columns(self):
        want = {"mockartyclusters": ["Name", "Phase", "Version", "Upgrade", "Resolvers", "Age"],
                "mockartyrunnerpools": ["Name", "Cluster", "Ready", "Desired", "Status", "Age"]}
        for plural, cols in want.items():
            t = CP.get("/apis/mockarty.io/v1alpha1/%s" % plural,
                       accept="application/json;as=Table;v=v1;g=meta.k8s.io").json
            names = [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0]
            self.assertEqual(names, cols, plural)


if __name__ == "__main__":
    try:
        envtest.find_assets()
    except envtest.Unavailable as e:
        print("SKIP: %s" % e)
        sys.exit(77)
    sys.exit(0 if unittest.main(verbosity=2, exit=False).result.wasSuccessful() else 1)
