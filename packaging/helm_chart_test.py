#!/usr/bin/python3
"""Checks the Helm chart without helm (not installable here): the crds/ symlink resolves to the
repository's CRDs (one source of truth), every template is valid YAML once its template actions
are replaced by placeholders, every .Values path a template uses exists in values.yaml, every
included helper is defined, and the RBAC rules are exactly the least-privilege set."""
import glob
import os
import re
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "helm", "mockarty")
ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def strip_template(text):
    """Makes a template parseable: lines that hold only a control action (if, end, define...)
    go; a line that only includes/toYaml's a block with nindent N becomes a placeholder mapping at
    indent N; any other action becomes the scalar "x". Templates are written to keep to this."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        whole = ACTION.fullmatch(stripped)
        if whole:
            m = re.search(r"nindent (\d+)", whole.group(1))
            if m:
                out.append(" " * int(m.group(1)) + "__block__: x")
            continue
        if stripped.startswith("{{/*"):
            continue
        out.append(ACTION.sub("x", line))
    return "\n".join(out)


def values_paths(node, prefix=""):
    paths = {prefix.rstrip(".")} if prefix else set()
    if isinstance(node, dict):
        for k, v in node.items():
            paths |= values_paths(v, prefix + k + ".")
    return paths


def templates():
    for path in sorted(glob.glob(os.path.join(CHART, "templates", "*.yaml"))):
        with open(path) as f:
            yield path, f.read()


class ChartTest(unittest.TestCase):
    def test_chart_yaml(self):
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            chart = yaml.safe_load(f)
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["name"], "mockarty")
        self.assertRegex(chart["version"], r"^\d+\.\d+\.\d+$")
        self.assertTrue(chart["appVersion"])

    def test_crds_symlink_is_the_single_source(self):
        link = os.path.join(CHART, "crds")
        self.assertTrue(os.path.islink(link), "helm/mockarty/crds must be a symlink")
        self.assertEqual(os.readlink(link), "../../crds")
        self.assertEqual(os.path.realpath(link), os.path.realpath(os.path.join(ROOT, "crds")))
        crds = sorted(f for f in os.listdir(link) if f.endswith((".yaml", ".yml", ".json")))
        self.assertEqual(crds, ["mockarty.io_mockartyclusters.yaml",
                                "mockarty.io_mockartyrunnerpools.yaml"])
        for name in crds:
            with open(os.path.join(link, name)) as f:
                self.assertEqual(yaml.safe_load(f)["kind"], "CustomResourceDefinition")
        # Helm only installs manifests from crds/, but would package the rest: keep it out.
        with open(os.path.join(CHART, ".helmignore")) as f:
            ignore = f.read().split()
        self.assertIn("crds/*.py", ignore)
        self.assertIn("crds/CMakeLists.txt", ignore)
        # No hand-kept copy of a CRD anywhere else in the chart.
        for dirpath, _, files in os.walk(CHART):
            if os.path.realpath(dirpath).startswith(os.path.realpath(link)):
                continue
            for fn in files:
                with open(os.path.join(dirpath, fn)) as f:
                    self.assertNotIn("kind: CustomResourceDefinition", f.read(), fn)

    def test_templates_parse(self):
        kinds = []
        for path, text in templates():
            with self.subTest(template=os.path.basename(path)):
                for doc in yaml.safe_load_all(strip_template(text)):
                    if doc is None:
                        continue
                    self.assertIn("apiVersion", doc)
                    self.assertIn("metadata", doc)
                    kinds.append(doc["kind"])
        # clusterrole.yaml's kind is computed (ClusterRole, or Role with watchNamespace): real
        # Helm renders both in helm_envtest.
        for k in ("Deployment", "ServiceAccount", "ClusterRoleBinding", "Role",
                  "RoleBinding", "Service", "MockartyCluster"):
            self.assertIn(k, kinds)

    def test_values_and_helpers_exist(self):
        with open(os.path.join(CHART, "values.yaml")) as f:
            paths = values_paths(yaml.safe_load(f))
        with open(os.path.join(CHART, "templates", "_helpers.tpl")) as f:
            helpers_text = f.read()
        defined = set(re.findall(r'define "([^"]+)"', helpers_text))
        used_values = set()
        for path, text in list(templates()) + [("_helpers.tpl", helpers_text)]:
            for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
                used_values.add(ref)
                self.assertIn(ref, paths, f"{os.path.basename(path)} uses .Values.{ref}")
            for inc in re.findall(r'include "([^"]+)"', text):
                self.assertIn(inc, defined, f"{os.path.basename(path)} includes {inc}")
            # Balanced control blocks.
            opens = len(re.findall(r"{{-?\s*(if|range|with|define)\b", text))
            ends = len(re.findall(r"{{-?\s*end\b", text))
            self.assertEqual(opens, ends, path)
        self.assertIn("cluster.spec", used_values)
        self.assertIn("watchNamespace", used_values)

    def test_rbac_is_least_privilege(self):
        rules = {}
        for path, text in templates():
            for doc in yaml.safe_load_all(strip_template(text)):
                # "x": clusterrole.yaml's kind is ClusterRole or (watchNamespace) Role.
                if doc and doc["kind"] in ("ClusterRole", "Role", "x") and "rules" in doc:
                    for r in doc["rules"]:
                        for g in r["apiGroups"]:
                            for res in r["resources"]:
                                key = (g, res)
                                self.assertNotIn(key, rules, f"{key} granted twice")
                                rules[key] = sorted(r["verbs"])
        crud = sorted(["get", "list", "watch", "create", "patch", "update", "delete"])
        want = {
            ("mockarty.io", "mockartyclusters"): ["get", "list", "watch"],
            ("mockarty.io", "mockartyrunnerpools"): ["get", "list", "watch"],
            ("mockarty.io", "mockartyclusters/status"): ["patch", "update"],
            ("mockarty.io", "mockartyrunnerpools/status"): ["patch", "update"],
            ("mockarty.io", "mockartyclusters/finalizers"): ["update"],
            ("mockarty.io", "mockartyrunnerpools/finalizers"): ["update"],
            ("apps", "deployments"): crud,
            ("", "services"): crud,
            ("", "configmaps"): crud,
            ("autoscaling", "horizontalpodautoscalers"): crud,
            ("policy", "poddisruptionbudgets"): crud,
            ("", "secrets"): ["get"],
            ("monitoring.coreos.com", "servicemonitors"): ["create", "get", "patch", "update"],
            ("coordination.k8s.io", "leases"): ["create", "get", "update"],
            ("", "events"): ["create", "patch"],
            ("events.k8s.io", "events"): ["create", "patch"],
        }
        self.assertEqual(rules, want)
        for verbs in rules.values():
            self.assertNotIn("*", verbs)

    def test_operator_deployment(self):
        with open(os.path.join(CHART, "templates", "deployment.yaml")) as f:
            dep = yaml.safe_load(strip_template(f.read()))
        pod = dep["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        c = pod["containers"][0]
        self.assertEqual(c["args"], ["mockarty-operator"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        env = {e["name"] for e in c["env"]}
        self.assertTrue({"WATCH_NAMESPACE", "POD_NAME", "POD_NAMESPACE"} <= env)


class ChartReadmeTest(unittest.TestCase):
    def test_every_value_documented(self):
        """Each leaf of values.yaml (maps and lists documented as a whole) is a row of the
        chart's README, and the README names no value that does not exist."""
        with open(os.path.join(CHART, "values.yaml")) as f:
            values = yaml.safe_load(f)
        with open(os.path.join(CHART, "README.md")) as f:
            readme = f.read()
        rows = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.M))
        want = set()

        def leaves(node, prefix):
            for k, v in node.items():
                path = prefix + k
                if isinstance(v, dict) and v and k not in ("resources", "spec"):
                    leaves(v, path + ".")
                else:
                    want.add(path)
        leaves(values, "")
        self.assertEqual(want - rows, set(), "values missing from helm/mockarty/README.md")
        self.assertEqual(rows - want, set(), "README rows that are not values")


if __name__ == "__main__":
    unittest.main(verbosity=1)
