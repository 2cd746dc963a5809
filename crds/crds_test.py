#!/usr/bin/python3
"""Checks the CRDs: apiextensions.k8s.io/v1 structural-schema rules, defaults valid against their
own schema, the CEL rules present and referring to real fields, printer columns that resolve, and
(with a small evaluator for the CEL subset the rules use) that the rules accept the examples and
reject the bad variants the operator also rejects."""
import glob
import os
import re
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FILES = {
    "MockartyCluster": os.path.join(HERE, "mockarty.io_mockartyclusters.yaml"),
    "MockartyRunnerPool": os.path.join(HERE, "mockarty.io_mockartyrunnerpools.yaml"),
}
# The OpenAPI keywords a structural schema may use (apiextensions.k8s.io/v1 JSONSchemaProps).
KEYWORDS = {
    "type", "format", "description", "properties", "additionalProperties", "items", "required",
    "enum", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "pattern", "minItems", "maxItems", "minProperties", "maxProperties", "nullable",
    "anyOf", "allOf", "oneOf", "not", "title", "example", "multipleOf",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-validations", "x-kubernetes-embedded-resource",
}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def load(kind):
    with open(FILES[kind]) as f:
        return yaml.safe_load(f)


def schema_of(kind):
    return load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node, path="", under_anyof=False):
    """Yields (path, node) for every schema node."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, path + "." + name)
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], path + ".*")
    if "items" in node:
        yield from walk(node["items"], path + "[]")


def validate(schema, value, path="", errors=None):
    """A subset of OpenAPI validation: type, enum, bounds, lengths, required, unknown fields."""
    errors = [] if errors is None else errors
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errors.append(f"{path}: must be int or string")
        return errors
    t = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }.get(t, True)
    if not ok:
        errors.append(f"{path}: must be {t}, not {value!r}")
        return errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if t == "string":
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than minLength")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than maxLength")
    if t == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than minItems")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than maxItems")
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{path}[{i}]", errors)
    if t == "object":
        props = schema.get("properties") or {}
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{path}.{req}: required")
        for k, v in value.items():
            if k in props:
                validate(props[k], v, f"{path}.{k}", errors)
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(schema["additionalProperties"], v, f"{path}.{k}", errors)
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and path != ".metadata":
                # The API server would silently prune it: in a manifest that is a mistake.
                errors.append(f"{path}.{k}: unknown field (would be pruned)")
    return errors


def apply_defaults(schema, value):
    """Defaulting as the API server does it: absent fields with a default get it, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and "default" in sub:
                value[k] = yaml.safe_load(yaml.safe_dump(sub["default"]))
            if k in value:
                value[k] = apply_defaults(sub, value[k])
    elif isinstance(value, list) and "items" in schema:
        value = [apply_defaults(schema["items"], v) for v in value]
    return value


def check_resource(kind, obj):
    """Schema errors of a resource of kind, after defaulting. The CEL rules are checked by the
    real API server in crds_envtest.py (a hand-made evaluator once hid rules that broke it)."""
    schema = schema_of(kind)
    obj = apply_defaults(schema, yaml.safe_load(yaml.safe_dump(obj)))
    return validate(schema, {k: v for k, v in obj.items() if k != "status"})


class CRDTest(unittest.TestCase):
    def test_top_level_and_names(self):
        for kind, short in (("MockartyCluster", "mkc"), ("MockartyRunnerPool", "mkrp")):
            crd = load(kind)
            self.assertEqual(set(crd), {"apiVersion", "kind", "metadata", "spec"})
            self.assertEqual(crd["apiVersion"], "apiextensions.k8s.io/v1")
            self.assertEqual(crd["kind"], "CustomResourceDefinition")
            spec = crd["spec"]
            self.assertEqual(set(spec), {"group", "names", "scope", "versions"})
            self.assertEqual(spec["group"], "mockarty.io")
            self.assertEqual(spec["scope"], "Namespaced")
            names = spec["names"]
            self.assertEqual(names["kind"], kind)
            self.assertEqual(names["listKind"], kind + "List")
            self.assertEqual(names["plural"], kind.lower() + "s")
            self.assertEqual(names["singular"], kind.lower())
            self.assertEqual(crd["metadata"]["name"], names["plural"] + ".mockarty.io")
            self.assertEqual(names["shortNames"], [short])
            self.assertEqual(len(spec["versions"]), 1)
            v = spec["versions"][0]
            self.assertEqual(v["name"], "v1alpha1")
            self.assertTrue(v["served"] and v["storage"])
            self.assertEqual(v["subresources"]["status"], {})
            self.assertEqual(os.path.basename(FILES[kind]),
                             "mockarty.io_" + names["plural"] + ".yaml")

    def test_structural_schema(self):
        for kind in FILES:
            root = schema_of(kind)
            self.assertEqual(root["type"], "object")
            self.assertEqual(root["properties"]["metadata"], {"type": "object"})
            self.assertIn("status", root["properties"])
            for path, node in walk(root):
                with self.subTest(kind=kind, path=path):
                    unknown = set(node) - KEYWORDS
                    self.assertFalse(unknown, f"unknown keywords {unknown}")
                    if node.get("x-kubernetes-int-or-string"):
                        self.assertNotIn("type", node)
                        self.assertEqual([a.get("type") for a in node["anyOf"]],
                                         ["integer", "string"])
                        continue
                    self.assertIn(node.get("type"), TYPES, "every node needs a type")
                    for comb in ("anyOf", "allOf", "oneOf", "not"):
                        self.assertNotIn(comb, node)
                    if node["type"] == "object" and path != ".metadata":
                        has_props = "properties" in node
                        has_add = "additionalProperties" in node
                        self.assertFalse(has_props and has_add)
                        self.assertTrue(
                            has_props or has_add
                            or node.get("x-kubernetes-preserve-unknown-fields") is True,
                            "object without properties would drop every field")
                        for req in node.get("required", []):
                            self.assertIn(req, node.get("properties", {}))
                    if node["type"] == "array":
                        self.assertIn("items", node)
                        if node.get("x-kubernetes-list-type") == "map":
                            item = node["items"]
                            for key in node["x-kubernetes-list-map-keys"]:
                                self.assertTrue(key in item.get("required", [])
                                                or "default" in item["properties"][key],
                                                "list-map keys must be required or defaulted")
                    if "default" in node:
                        self.assertEqual(validate(node, node["default"]), [])
                        self.assertNotIn(path.split(".")[1] if path else "", ("status",))
                    if "enum" in node:
                        for e in node["enum"]:
                            self.assertEqual(validate({"type": node["type"]}, e), [])

    def test_defaults_of_an_empty_spec(self):
        obj = apply_defaults(schema_of("MockartyCluster"), {"spec": {}})["spec"]
        self.assertEqual(obj["database"]["type"], "sqlite")
        self.assertEqual(obj["cache"]["type"], "inmemory")
        self.assertEqual(obj["resolvers"]["replicas"], 0)
        self.assertEqual(obj["resolvers"]["autoscaling"],
                         {"enabled": False, "minReplicas": 2, "maxReplicas": 10,
                          "targetCPUUtilizationPercentage": 80})
        self.assertEqual(obj["image"]["pullPolicy"], "IfNotPresent")
        self.assertEqual(obj["admin"]["service"]["type"], "ClusterIP")
        self.assertEqual(obj["coordinator"]["tls"]["enabled"], False)
        errs = check_resource("MockartyCluster", {"apiVersion": "mockarty.io/v1alpha1",
                                                  "kind": "MockartyCluster",
                                                  "metadata": {"name": "x"}})
        self.assertEqual(errs, [])

    def test_cel_rules_present_and_resolve(self):
        want = {
            "MockartyCluster": {
                ".spec": "spec.database.type sqlite allows no resolvers",
                ".spec.database": "spec.database.postgres.dsnSecretRef is required",
                ".spec.cache": "spec.cache.redis.host is required",
                ".spec.resolvers.autoscaling": "minReplicas must be <= spec.resolvers",
                ".spec.coordinator.tls": "spec.coordinator.tls.secretName is required",
            },
            "MockartyRunnerPool": {
                ".spec": "spec.shared and spec.mockartyNamespace are mutually exclusive",
            },
        }
        for kind, rules in want.items():
            nodes = dict(walk(schema_of(kind)))
            found = {p: n["x-kubernetes-validations"] for p, n in nodes.items()
                     if "x-kubernetes-validations" in n}
            self.assertEqual(set(found), set(rules), kind)
            for path, text in rules.items():
                self.assertTrue(any(text in r["message"] for r in found[path]), (path, text))
                for r in found[path]:
                    self.assertTrue(r["rule"].strip() and r["message"].strip())
                    # Every self.a.b in the rule names a field of the schema at that node,
                    # and every one it reads is guarded by has(): the API server evaluates the
                    # rules against the (empty) defaults too.
                    for ref in re.findall(r"self((?:\.\w+)+)", r["rule"]):
                        self.assertIn(path + ref, nodes, f"{kind} rule refers to {ref}")
                        parts = ref.split(".")[1:]
                        for i in range(1, len(parts) + 1):
                            guard = "has(self.%s)" % ".".join(parts[:i])
                            self.assertIn(guard, r["rule"], f"{kind} {path}: {ref} unguarded")
                    if "fieldPath" in r:
                        self.assertIn(path + r["fieldPath"], nodes)

    def test_printer_columns_resolve(self):
        for kind, wanted in (("MockartyCluster", {"Phase", "Resolvers", "Age"}),
                             ("MockartyRunnerPool", {"Ready", "Desired", "Age"})):
            v = load(kind)["spec"]["versions"][0]
            nodes = dict(walk(v["schema"]["openAPIV3Schema"]))
            cols = {c["name"]: c for c in v["additionalPrinterColumns"]}
            self.assertTrue(wanted <= set(cols), kind)
            for c in cols.values():
                path = re.sub(r"\[\?\(.*\)\]", "[]", c["jsonPath"])
                if path == ".metadata.creationTimestamp":
                    self.assertEqual(c["type"], "date")
                    continue
                self.assertIn(path, nodes, c)
                self.assertEqual(nodes[path]["type"], c["type"], c)

    def test_examples_are_valid(self):
        seen = 0
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for doc in docs:
                if doc.get("kind") in FILES:
                    seen += 1
                    self.assertEqual(doc["apiVersion"], "mockarty.io/v1alpha1")
                    self.assertEqual(check_resource(doc["kind"], doc), [], path)
                else:
                    self.assertIn(doc.get("kind"), ("Secret", "Namespace"), path)
        self.assertGreaterEqual(seen, 4, "examples: 2 clusters and 2 pools expected")


if __name__ == "__main__":
    unittest.main(verbosity=1)
