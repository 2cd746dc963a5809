#!/usr/bin/env python3
"""A Kubernetes API server double for tests (standard library only).

It follows the documented semantics of kube-apiserver v1.32 and answers in the shapes recorded in
/work/shared/kube-fixtures: generic storage for any group/version/plural, one global resourceVersion,
generation bumped on spec changes only, the status subresource, optimistic concurrency (409), list
pagination and label selectors, watch streams with bookmarks and 410 Expired after compaction,
merge patch, server-side apply with per-manager field ownership, owner-reference garbage
collection and finalizers.

Usage: fake_apiserver.py [--port N] [--token T] [--bookmark-interval S] [--port-file F]
Test control: POST /_test/compact, POST /_test/drop-watches, GET /_test/log, POST /_test/clear-log.
"""
import argparse
import base64
import copy
import datetime
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Resources with a status subresource: writes to the main resource ignore status.
NO_STATUS = {"configmaps", "secrets", "leases", "events", "serviceaccounts", "endpoints",
             "roles", "rolebindings", "clusterroles", "clusterrolebindings"}
# Objects of these kinds carry no metadata.generation (as recorded: 11a, 13b, 00).
NO_GENERATION = NO_STATUS | {"horizontalpodautoscalers", "namespaces", "services"}
CLUSTER_SCOPED = {"namespaces", "nodes", "customresourcedefinitions", "clusterroles",
                  "clusterrolebindings", "persistentvolumes", "storageclasses"}
KINDS = {
    "namespaces": "Namespace", "configmaps": "ConfigMap", "secrets": "Secret",
    "services": "Service", "events": "Event", "pods": "Pod", "serviceaccounts": "ServiceAccount",
    "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "poddisruptionbudgets": "PodDisruptionBudget", "leases": "Lease",
    "customresourcedefinitions": "CustomResourceDefinition",
    "mockartyclusters": "MockartyCluster", "mockartyrunnerpools": "MockartyRunnerPool",
    "widgets": "Widget",
}
MICROTIME_FIELDS = {"leases": ("spec", ["acquireTime", "renewTime"])}
MICROTIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
# Fields of metadata that belong to the server, never to a field manager.
SERVER_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
               "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_builtin(group):
    return group == "" or "." not in group or group.endswith(".k8s.io")


def status_obj(code, reason, message, details=None, status="Failure"):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status}
    if message is not None:
        s["message"] = message
    if reason is not None:
        s["reason"] = reason
    if details is not None:
        s["details"] = details
    if code is not None:
        s["code"] = code
    return s


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.code = code


def qualified(res):
    return res["plural"] + ("." + res["group"] if res["group"] else "")


def not_found(res, name):
    d = {"name": name, "group": res["group"], "kind": res["plural"]} if res["group"] else \
        {"name": name, "kind": res["plural"]}
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(res), name), d)


def conflict(res, name):
    d = {"name": name, "group": res["group"], "kind": res["plural"]} if res["group"] else \
        {"name": name, "kind": res["plural"]}
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has '
                    'been modified; please apply your changes to the latest version and try again'
                    % (qualified(res), name), d)


def invalid(res, name, field, reason, message):
    kind = KINDS.get(res["plural"], res["plural"])
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s: %s' % (kind, name, field, message),
                    {"name": name, "group": res["group"], "kind": kind,
                     "causes": [{"reason": reason, "message": message, "field": field}]})


# ---------------------------------------------------------------------------------------------
# A small YAML reader for apply bodies: block mappings, block sequences, plain and quoted scalars,
# flow-style JSON values. JSON bodies are parsed as JSON first.

def _yaml_scalar(s):
    s = s.strip()
    if s == "" or s in ("~", "null", "Null", "NULL"):
        return None
    if s[0] in "\"'{[":
        if s[0] == "'":
            return s[1:-1].replace("''", "'")
        return json.loads(s)
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if re.match(r"^[-+]?\d+$", s):
        return int(s)
    if re.match(r"^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$", s):
        return float(s)
    return s


def parse_yaml(text):
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip() == "" or stripped.strip() in ("---", "..."):
            continue
        lines.append((len(stripped) - len(stripped.lstrip(" ")), stripped.strip()))
    pos = [0]

    def block(indent):
        if pos[0] >= len(lines):
            return None
        ind, text = lines[pos[0]]
        if text.startswith("- ") or text == "-":
            return seq(ind)
        return mapping(ind)

    def mapping(indent, first=None):
        out = {}
        while pos[0] < len(lines):
            ind, text = lines[pos[0]]
            if first is not None:
                ind, text, first = indent, first, None
            elif ind != indent or text.startswith("- "):
                break
            pos[0] += 1
            key, _, rest = text.partition(":")
            key = _yaml_scalar(key) if key[:1] in "\"'" else key.strip()
            rest = rest.strip()
            if rest == "":
                if pos[0] < len(lines) and (lines[pos[0]][0] > indent or (
                        lines[pos[0]][0] == indent and lines[pos[0]][1].startswith("- "))):
                    out[key] = block(lines[pos[0]][0])
                else:
                    out[key] = None
            else:
                out[key] = _yaml_scalar(rest)
        return out

    def seq(indent):
        out = []
        while pos[0] < len(lines):
            ind, text = lines[pos[0]]
            if ind != indent or not (text.startswith("- ") or text == "-"):
                break
            item = text[1:].strip()
            if item == "":
                pos[0] += 1
                out.append(block(lines[pos[0]][0]) if pos[0] < len(lines) else None)
            elif re.match(r"^[^\"'{\[][^:]*:( |$)", item):
                # "- key: value" opens a mapping whose keys sit at indent + 2.
                lines[pos[0]] = (indent + 2, item)
                out.append(mapping(indent + 2))
            else:
                pos[0] += 1
                out.append(_yaml_scalar(item))
        return out

    return block(0)


# ---------------------------------------------------------------------------------------------
# Field paths for server-side apply. A path is a tuple of "f:<name>" and 'k:{"name":"x"}' parts;
# lists whose items are all objects with a "name" are associative (keyed by name), other lists
# are atomic values.

def _keyed(lst):
    return isinstance(lst, list) and lst and all(isinstance(i, dict) and "name" in i for i in lst)


def _item_key(item):
    return 'k:{"name":%s}' % json.dumps(item["name"])


def leaf_paths(value, prefix=()):
    out = set()
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out |= leaf_paths(v, prefix + ("f:" + k,))
    elif _keyed(value):
        for item in value:
            p = prefix + (_item_key(item),)
            out.add(p)
            out |= leaf_paths(item, p)
    else:
        out.add(prefix)
    return out


def object_paths(obj):
    """The fields of obj a manager can own: everything but server metadata and status."""
    paths = set()
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "status"):
            continue
        if k == "metadata":
            for mk, mv in (v or {}).items():
                if mk not in SERVER_META:
                    paths |= leaf_paths(mv, ("f:metadata", "f:" + mk))
            continue
        paths |= leaf_paths(v, ("f:" + k,))
    return paths


def _step(node, part, create=False):
    if node is None:
        return None
    if part.startswith("f:"):
        if not isinstance(node, dict):
            return None
        if part[2:] not in node and create:
            node[part[2:]] = {}
        return node.get(part[2:])
    name = json.loads(part[2:])["name"]
    if not isinstance(node, list):
        return None
    for item in node:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


_MISSING = object()


def get_path(obj, path):
    node = obj
    for part in path:
        if node is None:
            return _MISSING
        if part.startswith("f:") and (not isinstance(node, dict) or part[2:] not in node):
            return _MISSING
        node = _step(node, part)
        if node is None and part.startswith("k:"):
            return _MISSING
    return node


def remove_path(obj, path):
    trail = [obj]
    node = obj
    for part in path[:-1]:
        node = _step(node, part)
        if node is None:
            return
        trail.append(node)
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(node, dict):
            node.pop(last[2:], None)
    elif isinstance(node, list):
        name = json.loads(last[2:])["name"]
        node[:] = [i for i in node if not (isinstance(i, dict) and i.get("name") == name)]
    # Prune maps and keyed items the removal left empty, but never the object's top level.
    for depth in range(len(trail) - 1, 0, -1):
        child, parent, part = trail[depth], trail[depth - 1], path[depth - 1]
        if child in ({}, []) or (isinstance(child, dict) and set(child) == {"name"}):
            if part.startswith("f:") and isinstance(parent, dict):
                parent.pop(part[2:], None)
            elif isinstance(parent, list):
                parent[:] = [i for i in parent if i is not child]
        else:
            break


def render_path(path):
    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        else:
            out += '[name=%s]' % json.dumps(json.loads(part[2:])["name"])
    return out


def fields_v1(paths):
    tree = {}
    for p in sorted(paths):
        node = tree
        for part in p:
            node = node.setdefault(part, {})
    return tree


def merge_apply(cur, applied):
    """Merges the applied configuration into cur: maps recursively, keyed lists by name, other
    values replaced."""
    if isinstance(cur, dict) and isinstance(applied, dict):
        for k, v in applied.items():
            cur[k] = merge_apply(cur.get(k), v) if k in cur else copy.deepcopy(v)
        return cur
    if _keyed(applied) and isinstance(cur, list):
        by_name = {i.get("name"): i for i in cur if isinstance(i, dict)}
        for item in applied:
            if item["name"] in by_name:
                merge_apply(by_name[item["name"]], item)
            else:
                cur.append(copy.deepcopy(item))
        return cur
    return copy.deepcopy(applied)


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


def changed_paths(old, new):
    """Leaf paths whose value differs between two objects (used to give Update managers the
    fields they wrote)."""
    a, b = object_paths(old), object_paths(new)
    return {p for p in b if get_path(old, p) != get_path(new, p)} | (a - b)


# ---------------------------------------------------------------------------------------------

class Store:
    def __init__(self, bookmark_interval):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}     # (group, plural, ns, name) -> object
        self.owners = {}      # same key -> {(manager, operation, subresource): set(paths)}
        self.history = []     # (rv, type, key, object)
        self.compacted = 0    # resourceVersions below this are gone
        self.drop_epoch = 0
        self.log = []
        self.bookmark_interval = bookmark_interval

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, etype, key, obj):
        self.history.append((int(obj["metadata"]["resourceVersion"]), etype, key,
                             copy.deepcopy(obj)))
        if len(self.history) > 5000:
            self.compact_locked(self.history[1000][0])
        self.lock.notify_all()

    def compact_locked(self, rv):
        self.compacted = max(self.compacted, rv)
        self.history = [h for h in self.history if h[0] > self.compacted]

    def render(self, key, obj):
        """The object as the API returns it, with managedFields rendered from ownership."""
        out = copy.deepcopy(obj)
        entries = []
        for (manager, op, sub), paths in sorted(self.owners.get(key, {}).items(),
                                                 key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
            if not paths:
                continue
            e = {"manager": manager, "operation": op, "apiVersion": out.get("apiVersion", ""),
                 "time": obj["metadata"].get("creationTimestamp"), "fieldsType": "FieldsV1",
                 "fieldsV1": fields_v1(paths)}
            if sub:
                e["subresource"] = sub
            entries.append(e)
        if entries:
            out["metadata"]["managedFields"] = entries
        return out


def label_match(labels, selector):
    labels = labels or {}
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        m = re.match(r"^([^!=]+?)\s*(==|=|!=)\s*(.*)$", term)
        if m:
            k, op, v = m.group(1).strip(), m.group(2), m.group(3).strip()
            if (op == "!=") == (labels.get(k) == v):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class Api:
    def __init__(self, store, token):
        self.s = store
        self.token = token

    # -- addressing ----------------------------------------------------------------------------
    def parse_path(self, path):
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] != "":
            ns, rest = rest[1], rest[2:]
        elif len(rest) == 2 and rest[0] == "namespaces" and group == "":
            pass  # a namespace object itself
        if not rest or len(rest) > 3:
            return None
        res = {"group": group, "version": version, "plural": rest[0]}
        res["namespaced"] = rest[0] not in CLUSTER_SCOPED
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return res, ns, name, sub

    def key(self, res, ns, name):
        return (res["group"], res["plural"], ns or "", name)

    def api_version(self, res):
        return (res["group"] + "/" if res["group"] else "") + res["version"]

    def kind(self, res, body=None):
        if body and body.get("kind"):
            return body["kind"]
        return KINDS.get(res["plural"], res["plural"].capitalize().rstrip("s"))

    # -- writes --------------------------------------------------------------------------------
    def validate(self, res, obj):
        name = obj.get("metadata", {}).get("name", "")
        spec = MICROTIME_FIELDS.get(res["plural"])
        if spec:
            for f in spec[1]:
                v = (obj.get(spec[0]) or {}).get(f)
                if v is not None and not MICROTIME_RE.match(v):
                    raise ApiError(400, "BadRequest", 'parsing time "%s" as '
                                   '"2006-01-02T15:04:05.000000Z07:00": cannot parse "%s" as '
                                   '".000000"' % (v, v[19:]))
        if res["plural"] == "deployments":
            spec_ = obj.get("spec") or {}
            if spec_.get("replicas") is not None and spec_["replicas"] < 0:
                raise invalid(res, name, "spec.replicas", "FieldValueInvalid",
                              "Invalid value: %d: must be greater than or equal to 0"
                              % spec_["replicas"])

    def crd_schema(self, res):
        """The openAPIV3Schema of a stored CRD for res, if one was created."""
        crd = self.s.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", "",
                                  "%s.%s" % (res["plural"], res["group"])))
        for v in ((crd or {}).get("spec") or {}).get("versions") or []:
            if v.get("name") == res["version"]:
                return (v.get("schema") or {}).get("openAPIV3Schema")
        return None

    def apply_defaults(self, schema, value):
        """Structural-schema defaulting: absent properties with a default get it, recursively
        inside objects that are present."""
        if not isinstance(schema, dict) or not isinstance(value, dict):
            return
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and isinstance(sub, dict) and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                self.apply_defaults(sub, value[name])

    def default(self, res, obj):
        if not is_builtin(res["group"]):
            schema = self.crd_schema(res)
            if schema:
                meta = obj.pop("metadata", None)
                self.apply_defaults(schema, obj)
                obj["metadata"] = meta
        if res["plural"] == "deployments":
            spec = obj.setdefault("spec", {})
            if spec.get("replicas") is None:
                spec["replicas"] = 1
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            if "strategy" not in spec:
                spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {
                    "maxUnavailable": "25%", "maxSurge": "25%"}}
        if res["plural"] == "services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for p in spec.get("ports") or []:
                p.setdefault("protocol", "TCP")
                if "targetPort" not in p and "port" in p:
                    p["targetPort"] = p["port"]
        # Built-in kinds echo an empty status (07a, 13a); custom resources have none until
        # something writes it (02).
        if res["plural"] not in NO_STATUS and "status" not in obj and is_builtin(res["group"]):
            obj["status"] = {}

    def spec_changed(self, old, new):
        strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}
        return strip(old) != strip(new)

    def commit(self, res, key, old, new, etype, manager, op, sub, owned=None):
        """Stores new, bumping resourceVersion/generation and recording ownership and events."""
        s = self.s
        meta = new["metadata"]
        if old is not None:
            for f in ("uid", "creationTimestamp", "name", "namespace"):
                if f in old["metadata"]:
                    meta[f] = old["metadata"][f]
            if "deletionTimestamp" in old["metadata"]:
                meta["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
                meta["deletionGracePeriodSeconds"] = 0
            if "generation" in old["metadata"]:
                meta["generation"] = old["metadata"]["generation"] + (
                    1 if self.spec_changed(old, new) else 0)
            if old == new:
                return old  # a no-op write keeps the resourceVersion, as the real server does
        meta.pop("managedFields", None)
        meta["resourceVersion"] = str(s.next_rv())
        owners = s.owners.setdefault(key, {})
        mkey = (manager, op, sub or None)
        if owned is None:
            owned = changed_paths(old or {}, new) if sub != "status" else {
                ("f:status",) + p[1:] for p in leaf_paths(new.get("status"), ("f:status",))
                if get_path(old or {}, p) != get_path(new, p)}
        if owned and op == "Update":
            for k2, paths in owners.items():
                if k2 != mkey:
                    paths -= owned
            owners.setdefault(mkey, set()).update(owned)
        s.objects[key] = new
        s.record(etype, key, s.render(key, new))
        return new

    def create(self, res, ns, body, q, ua_manager):
        s = self.s
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise invalid(res, "", "metadata.name", "FieldValueRequired",
                          "Required value: name or generateName is required")
        self.validate(res, obj)
        key = self.key(res, ns, meta["name"])
        if key in s.objects:
            raise ApiError(409, "AlreadyExists", '%s "%s" already exists'
                           % (qualified(res), meta["name"]),
                           {"name": meta["name"], "group": res["group"], "kind": res["plural"]})
        obj["apiVersion"] = self.api_version(res)
        obj["kind"] = self.kind(res, body)
        if ns:
            meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        for f in ("resourceVersion", "deletionTimestamp", "generation"):
            meta.pop(f, None)
        if res["plural"] not in NO_GENERATION:
            meta["generation"] = 1
        if res["plural"] not in NO_STATUS:
            obj.pop("status", None)
        self.default(res, obj)
        s.owners[key] = {}
        manager = q.get("fieldManager", ua_manager)
        return self.commit(res, key, None, obj, "ADDED", manager, "Update", None), 201

    def update(self, res, ns, name, sub, new, q, ua_manager, require_rv):
        s = self.s
        key = self.key(res, ns, name)
        old = s.objects.get(key)
        if old is None:
            raise not_found(res, name)
        meta = new.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the "
                           "name on the URL (%s)" % (meta.get("name"), name))
        rv = meta.get("resourceVersion")
        if rv is None and require_rv:
            raise invalid(res, name, "metadata.resourceVersion", "FieldValueInvalid",
                          "Invalid value: 0x0: must be specified for an update")
        if rv is not None and rv != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        return self.write(res, key, old, new, sub, q.get("fieldManager", ua_manager))

    def write(self, res, key, old, new, sub, manager, op="Update", owned=None):
        s = self.s
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        has_status = res["plural"] not in NO_STATUS
        if sub == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            if has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            if old["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(
                    old["metadata"].get("finalizers") or [])
                if added:
                    raise ApiError(422, "Invalid", '%s "%s" is invalid: metadata.finalizers: '
                                   'Forbidden: no new finalizers can be added if the object is '
                                   'being deleted' % (self.kind(res), key[3]))
        self.validate(res, new)
        self.default(res, new)
        if old["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The last finalizer is gone: the object is deleted, and the answer is the object
            # as it was asked to become, at the old resourceVersion (fixture 16e).
            out = copy.deepcopy(new)
            out["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            self.remove(res, key)
            return out
        return self.commit(res, key, old, new, "MODIFIED", manager, op, sub, owned)

    def remove(self, res, key):
        s = self.s
        obj = s.objects.pop(key)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(s.next_rv())
        s.record("DELETED", key, s.render(key, obj))
        s.owners.pop(key, None)
        self.schedule_gc(obj["metadata"]["uid"])

    def delete(self, res, ns, name, body):
        s = self.s
        key = self.key(res, ns, name)
        old = s.objects.get(key)
        if old is None:
            raise not_found(res, name)
        policy = (body or {}).get("propagationPolicy", "Background")
        pre = (body or {}).get("preconditions") or {}
        if pre.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise conflict(res, name)
        fins = list(old["metadata"].get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in fins:
            fins.append("foregroundDeletion")
        if fins:
            if old["metadata"].get("deletionTimestamp"):
                return s.render(key, old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["finalizers"] = fins
            if "generation" in new["metadata"]:
                new["metadata"]["generation"] += 1
            s.objects[key] = new
            new["metadata"]["resourceVersion"] = str(s.next_rv())
            s.record("MODIFIED", key, s.render(key, new))
            out = s.render(key, new)
            if policy == "Foreground":
                self.schedule_gc(new["metadata"]["uid"], foreground_key=(res, key))
            return out
        uid = old["metadata"]["uid"]
        self.remove(res, key)
        d = {"name": name, "group": res["group"], "kind": res["plural"], "uid": uid}
        if not res["group"]:
            del d["group"]
        return status_obj(None, None, None, d, status="Success")

    def schedule_gc(self, uid, foreground_key=None):
        def run():
            time.sleep(0.02)
            with self.s.lock:
                self.collect(uid)
                if foreground_key:
                    res, key = foreground_key
                    obj = self.s.objects.get(key)
                    if obj:
                        fins = [f for f in obj["metadata"].get("finalizers", [])
                                if f != "foregroundDeletion"]
                        new = copy.deepcopy(obj)
                        new["metadata"]["finalizers"] = fins
                        if not fins:
                            self.remove(res, key)
        threading.Thread(target=run, daemon=True).start()

    def collect(self, uid):
        """Background garbage collection: deletes dependents none of whose owners still exist."""
        live = {o["metadata"]["uid"] for o in self.s.objects.values()}
        for key, obj in list(self.s.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs) and not any(
                    r.get("uid") in live for r in refs):
                res = {"group": key[0], "plural": key[1], "version": ""}
                try:
                    self.delete(res, key[2], key[3], None)
                except ApiError:
                    pass

    def apply(self, res, ns, name, sub, body, q):
        s = self.s
        manager = q.get("fieldManager")
        if not manager:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager:'
                           ' Required value: is required for apply patch',
                           {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                               {"reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager"}]})
        force = q.get("force") in ("true", "1")
        if not isinstance(body, dict) or body.get("metadata", {}).get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        key = self.key(res, ns, name)
        applied = copy.deepcopy(body)
        applied.setdefault("metadata", {})["name"] = name
        if sub == "status":
            paths = leaf_paths(applied.get("status"), ("f:status",))
        else:
            applied.pop("status", None) if res["plural"] not in NO_STATUS else None
            paths = object_paths(applied)
        mkey = (manager, "Apply", sub)
        old = s.objects.get(key)
        if old is None:
            if sub:
                raise not_found(res, name)
            obj = copy.deepcopy(applied)
            new, code = self.create(res, ns, obj, {"fieldManager": manager}, manager)
            s.owners[key] = {mkey: paths}
            s.objects[key] = new
            # Re-record the ADDED event so watchers see Apply ownership.
            s.history[-1] = (s.history[-1][0], "ADDED", key, s.render(key, new))
            return s.render(key, new), 201
        owners = s.owners.setdefault(key, {})
        conflicts = []
        for other, opaths in owners.items():
            if other == mkey:
                continue
            for p in paths:
                hit = [op for op in opaths if op[:len(p)] == p or p[:len(op)] == op]
                for op in hit:
                    # A keyed list item only marks membership; its fields carry the values.
                    if op[-1].startswith("k:"):
                        continue
                    if get_path(old, op) != get_path(applied, op):
                        conflicts.append((other, op))
        if conflicts and not force:
            causes, parts = [], []
            for (m, op_, _sub), p in sorted(set(conflicts)):
                who = '"%s"' % m if op_ == "Apply" else '"%s" using %s' % (m, old["apiVersion"])
                causes.append({"reason": "FieldManagerConflict", "message": "conflict with %s"
                               % who, "field": render_path(p)})
                parts.append("conflict with %s: %s" % (who, render_path(p)))
            n = len(causes)
            raise ApiError(409, "Conflict", "Apply failed with %d conflict%s: %s"
                           % (n, "" if n == 1 else "s", "; ".join(parts)), {"causes": causes})
        for (other, p) in conflicts:
            owners[other] = {op for op in owners[other] if op != p and op[:len(p)] != p}
        new = copy.deepcopy(old)
        prev = owners.get(mkey, set())
        others = set().union(*[v for k, v in owners.items() if k != mkey]) if owners else set()
        for p in sorted(prev - paths, key=len, reverse=True):
            covered = any(op[:len(p)] == p or p[:len(op)] == op for op in others)
            if not covered and not any(np[:len(p)] == p for np in paths):
                remove_path(new, p)
        if sub == "status":
            new["status"] = merge_apply(new.get("status") or {}, applied.get("status") or {})
        else:
            merged = merge_apply(new, {k: v for k, v in applied.items() if k != "metadata"})
            merge_apply(merged["metadata"], {k: v for k, v in applied["metadata"].items()
                                             if k not in SERVER_META})
            new = merged
        owners[mkey] = paths
        if sub != "status" and res["plural"] not in NO_STATUS:
            new["status"] = copy.deepcopy(old.get("status", {}))
        out = self.write(res, key, old, new, sub, manager, "Apply", owned=set())
        return s.render(key, out) if key in s.objects else out, 200

    # -- reads ---------------------------------------------------------------------------------
    def list(self, res, ns, q):
        s = self.s
        sel = q.get("labelSelector")
        limit = int(q.get("limit", "0") or 0)
        cont = q.get("continue")
        rv = q.get("resourceVersion")
        start, list_rv = "", s.rv
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                start, list_rv = tok["start"], tok["rv"]
            except (ValueError, KeyError):
                raise ApiError(400, "BadRequest", "continue key is not valid")
            if list_rv < s.compacted:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to "
                               "display a consistent list result. You can start a new list "
                               "without the continue parameter.")
        elif rv and q.get("resourceVersionMatch") == "Exact":
            if int(rv) < s.compacted:
                raise ApiError(410, "Expired", "The resourceVersion for the provided list is too "
                               "old.")
        items = []
        for key in sorted(s.objects):
            if key[0] != res["group"] or key[1] != res["plural"]:
                continue
            if ns and key[2] != ns:
                continue
            pos = key[2] + "/" + key[3] + "\u0000"
            if pos <= start:
                continue
            obj = s.objects[key]
            if not label_match(obj["metadata"].get("labels"), sel):
                continue
            items.append((pos, s.render(key, obj)))
        meta = {"resourceVersion": str(list_rv)}
        if limit and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            tok = {"v": "meta.k8s.io/v1", "rv": list_rv, "start": items[-1][0]}
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps(tok, separators=(",", ":")).encode()).decode().rstrip("=")
            if not sel:
                meta["remainingItemCount"] = rest
        builtin = is_builtin(res["group"])
        out_items = []
        for _, o in items:
            if builtin:
                o.pop("kind", None)
                o.pop("apiVersion", None)
            out_items.append(o)
        kind = self.kind(res) + "List"
        if builtin:
            return {"kind": kind, "apiVersion": self.api_version(res), "metadata": meta,
                    "items": out_items}
        meta.setdefault("continue", "")
        return {"apiVersion": self.api_version(res), "items": out_items, "kind": kind,
                "metadata": meta}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

    def send_json(self, code, obj, extra=None):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, e):
        self.send_json(e.code, e.status)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def dispatch(self, method):
        api, store = self.server.api, self.server.store
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.read_body()
        ua = self.headers.get("User-Agent", "")
        with store.lock:
            store.log.append({"method": method, "path": url.path, "query": url.query, "ua": ua,
                              "time": time.time()})
        if url.path.startswith("/_test/"):
            return self.test_control(method, url.path)
        if url.path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return
        if url.path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.13-fake"})
        tok = self.server.token
        if tok:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self.send_error_status(ApiError(
                    403, "Forbidden", 'User "system:anonymous" cannot %s path "%s"'
                    % (method.lower(), url.path), {}))
            if auth != "Bearer " + tok:
                return self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
        parsed = api.parse_path(url.path)
        if parsed is None:
            return self.send_json(404, status_obj(404, "NotFound", "the server could not find "
                                                  "the requested resource", {}))
        res, ns, name, sub = parsed
        ua_manager = ua.split("/")[0] or "unknown"
        try:
            body = None
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if raw:
                if ctype == "application/apply-patch+yaml":
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = parse_yaml(raw.decode())
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError as e:
                        raise ApiError(400, "BadRequest", "the body of the request was in an "
                                       "unknown format: %s" % e)
            if method == "GET" and name is None and q.get("watch") in ("1", "true"):
                return self.watch(res, ns, q)
            with store.lock:
                code, out = self.handle_api(method, res, ns, name, sub, body, q, ctype, ua_manager)
            self.send_json(code, out)
        except ApiError as e:
            self.send_error_status(e)
        except Exception as e:  # a bug here must look like a server error, not a hang
            import traceback
            traceback.print_exc()
            self.send_json(500, status_obj(500, "InternalError", "fake apiserver: %r" % e, {}))

    def handle_api(self, method, res, ns, name, sub, body, q, ctype, ua_manager):
        api, store = self.server.api, self.server.store
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if method == "GET":
            if name is None:
                return 200, api.list(res, ns, q)
            obj = store.objects.get(api.key(res, ns, name))
            if obj is None:
                raise not_found(res, name)
            return 200, store.render(api.key(res, ns, name), obj)
        if method == "POST":
            if name is not None or body is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource", {})
            obj, code = api.create(res, ns, body, q, ua_manager)
            return code, store.render(api.key(res, ns, obj["metadata"]["name"]), obj)
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on "
                           "the requested resource", {})
        key = api.key(res, ns, name)
        if method == "PUT":
            require_rv = not is_builtin(res["group"])
            out = api.update(res, ns, name, sub, body or {}, q, ua_manager, require_rv)
            return 200, store.render(key, out) if key in store.objects else out
        if method == "DELETE":
            return 200, api.delete(res, ns, name, body)
        if method == "PATCH":
            if ctype == "application/apply-patch+yaml":
                out, code = api.apply(res, ns, name, sub, body, q)
                return code, out
            if ctype == "application/strategic-merge-patch+json" and not is_builtin(res["group"]):
                raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an '
                               'unknown format - accepted media types include: '
                               'application/json-patch+json, application/merge-patch+json, '
                               'application/apply-patch+yaml')
            if ctype not in ("application/merge-patch+json",
                             "application/strategic-merge-patch+json"):
                raise ApiError(415, "UnsupportedMediaType", "unsupported patch type %s" % ctype)
            old = store.objects.get(key)
            if old is None:
                raise not_found(res, name)
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "merge patch must be a JSON object")
            new = merge_patch(copy.deepcopy(old), body)
            if new.get("metadata", {}).get("resourceVersion") != old["metadata"][
                    "resourceVersion"]:
                raise conflict(res, name)
            out = api.write(res, key, old, new, sub, q.get("fieldManager", ua_manager))
            return 200, store.render(key, out) if key in store.objects else out
        raise ApiError(405, "MethodNotAllowed", "method not allowed", {})

    # -- watch ---------------------------------------------------------------------------------
    def write_chunk(self, obj):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def bookmark(self, api, res, rv, initial_end=False):
        kind = api.kind(res)
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            blueprint = {"kind": kind + "List", "apiVersion": api.api_version(res),
                         "metadata": {}, "items": None}
            meta["annotations"] = {
                "k8s.io/initial-events-end": "true",
                "kubernetes.io/initial-events-list-blueprint": base64.b64encode(
                    (json.dumps(blueprint, separators=(",", ":")) + "\n").encode()).decode()}
        if is_builtin(res["group"]):
            meta["creationTimestamp"] = None
            return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion":
                                                   api.api_version(res), "metadata": meta}}
        return {"type": "BOOKMARK", "object": {"apiVersion": api.api_version(res), "kind": kind,
                                               "metadata": meta}}

    def watch(self, res, ns, q):
        api, store = self.server.api, self.server.store
        sel = q.get("labelSelector")
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(q.get("timeoutSeconds") or 1800)
        rv = q.get("resourceVersion")
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def matches(key, obj):
            return key[0] == res["group"] and key[1] == res["plural"] and (
                not ns or key[2] == ns) and label_match(obj["metadata"].get("labels"), sel)

        pending = []
        with store.lock:
            epoch = store.drop_epoch
            if rv in (None, "", "0"):
                # WatchList semantics (on by default in 1.32): initial ADDED events, then a
                # bookmark marking their end.
                for key in sorted(store.objects):
                    obj = store.objects[key]
                    if matches(key, obj):
                        pending.append({"type": "ADDED", "object": store.render(key, obj)})
                last = store.rv
                if bookmarks:
                    pending.append(self.bookmark(api, res, last, initial_end=True))
            else:
                try:
                    last = int(rv)
                except ValueError:
                    last = -1
                if last < store.compacted:
                    pending.append({"type": "ERROR", "object": status_obj(
                        410, "Expired", "too old resource version: %s (%d)"
                        % (rv, store.compacted))})
                    last = None
        try:
            for ev in pending:
                self.write_chunk(ev)
            if last is None:
                self.wfile.write(b"0\r\n\r\n")
                return
            deadline = time.time() + timeout
            next_bookmark = time.time() + store.bookmark_interval
            while True:
                out = []
                with store.lock:
                    while True:
                        if store.drop_epoch != epoch:
                            self.close_connection = True
                            return  # the connection is cut without a final chunk
                        if last < store.compacted and (not store.history or
                                                       store.history[0][0] > last + 1):
                            out.append({"type": "ERROR", "object": status_obj(
                                410, "Expired", "too old resource version: %d (%d)"
                                % (last, store.compacted))})
                            break
                        for (erv, etype, key, obj) in store.history:
                            if erv > last and matches(key, obj):
                                out.append({"type": etype, "object": obj})
                        if out:
                            last = max(int(e["object"]["metadata"]["resourceVersion"])
                                       for e in out)
                            break
                        t = time.time()
                        if t >= deadline:
                            break
                        if bookmarks and t >= next_bookmark:
                            next_bookmark = t + store.bookmark_interval
                            # Like the real watch cache: a bookmark only when the RV advanced.
                            if store.rv > last:
                                last = store.rv
                                out.append(self.bookmark(api, res, last))
                                break
                        store.lock.wait(min(0.2, deadline - t))
                for ev in out:
                    self.write_chunk(ev)
                if (out and out[-1]["type"] == "ERROR") or time.time() >= deadline:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- test control --------------------------------------------------------------------------
    def test_control(self, method, path):
        store = self.server.store
        with store.lock:
            if method == "POST" and path == "/_test/compact":
                store.compact_locked(store.rv)
                store.lock.notify_all()
                out = {"compacted": store.compacted}
            elif method == "POST" and path == "/_test/drop-watches":
                store.drop_epoch += 1
                store.lock.notify_all()
                out = {"epoch": store.drop_epoch}
            elif method == "GET" and path == "/_test/log":
                out = {"log": store.log}
            elif method == "POST" and path == "/_test/clear-log":
                store.log = []
                out = {}
            else:
                return self.send_json(404, status_obj(404, "NotFound", "no such test endpoint"))
        self.send_json(200, out)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # clients cut watches and idle keep-alive connections; that is normal
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default="")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--port-file", default="")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    srv.store = Store(args.bookmark_interval)
    srv.api = Api(srv.store, args.token)
    srv.token = args.token
    srv.verbose = args.verbose
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.rename(args.port_file + ".tmp", args.port_file)
    print("listening on %d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
