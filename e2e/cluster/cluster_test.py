"""Cluster scenarios with real processes: PostgreSQL, Redis, one admin node, three resolvers
(NODE_NAME r1..r3) behind nginx (least_conn). Proves propagation within 1 s, serving through a
PostgreSQL outage, a Redis outage and a resolver crash, the chain store shared through Redis, and a
clean SIGTERM exit (no sanitizer report) of every node.

usage: cluster_test.py path/to/mockarty path/to/mockarty-resolver
"""
import json
import os
import shutil
import sys
import threading
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support import services  # noqa: E402
from support.harness import Failure, require as check  # noqa: E402
from support.services import Client, Node, poll_until, request  # noqa: E402

PROPAGATION_LIMIT = 1.0  # seconds: the requirement for a change to reach every resolver
POLL = 0.005


def mock(mid, route, method="GET", payload=None, **extra):
    d = {"id": mid, "http": {"route": route, "httpMethod": method},
         "response": {"statusCode": 200,
                      "payload": payload if payload is not None else {"id": mid}}}
    d.update(extra)
    return d


def error_code(reply):
    return reply.json.get("code") if isinstance(reply.json, dict) else None


class Cluster:
    def __init__(self, work, admin_bin, resolver_bin):
        self.work = work
        self.pg = services.Postgres(work)
        self.redis = services.Redis(work)
        common = {"DB_USE": "postgres", "DB_DSN": self.pg.dsn, "CACHE_TYPE": "redis",
                  "REPO_REDIS_HOST": "127.0.0.1", "REPO_REDIS_PORT": str(self.redis.port),
                  "STORE_TYPE": "redis"}
        self.admin = Node(admin_bin, dict(common, HTTP_WORKERS="2", NODE_NAME="admin"),
                          name="admin", workdir=work)
        self.resolvers = [Node(resolver_bin, dict(common, HTTP_WORKERS="1", NODE_NAME=name),
                               name=name, workdir=work) for name in ("r1", "r2", "r3")]
        self.nginx = services.Nginx(work, [r.port for r in self.resolvers])
        self.nodes = [self.admin] + self.resolvers

    def start(self):
        self.pg.start()
        self.redis.start()
        # The admin runs the migrations, so it is up before any resolver reads the schema.
        self.admin.start(wait_ready=True, timeout=120)
        for r in self.resolvers:
            r.start(timeout=120)
        for r in self.resolvers:
            r.wait_ready(120)
        self.nginx.start()
        return self

    def create(self, d, status=(200, 201)):
        r = self.admin.request("POST", "/api/v1/mocks", d)
        check(r.status in status, "admin POST /api/v1/mocks %s: %r" % (d.get("id"), r))
        return r

    def batch(self, mocks):
        r = self.admin.request("POST", "/api/v1/mocks/batch", {"mocks": mocks}, timeout=60)
        check(r.status == 201, "admin batch of %d mocks: %r" % (len(mocks), r))
        check(r.json.get("total") == len(mocks), "batch total %r != %d" % (r.json, len(mocks)))
        return r


def wait_served_everywhere(cl, path, expect_status, expect_body=None, timeout=5.0, method="GET",
                           via_nginx=True):
    """Polls every resolver directly (one thread each) and nginx (three threads) until path answers
    expect_status (and expect_body); returns {label: seconds from the call}, None for never."""
    t0 = time.time()
    times = {}
    lock = threading.Lock()
    names = {r.name for r in cl.resolvers}

    def good(rep):
        return rep.status == expect_status and (expect_body is None or rep.json == expect_body)

    def direct(r):
        c = Client(r.port, timeout=5)
        while time.time() - t0 < timeout:
            try:
                rep = c.request(method, path)
                if good(rep):
                    with lock:
                        times[r.name] = time.time() - t0
                    return
            except OSError:
                c.close()
            time.sleep(POLL)

    def nginx():
        c = Client(cl.nginx.port, timeout=5)
        while time.time() - t0 < timeout:
            with lock:
                if names <= {k[6:] for k in times if k.startswith("nginx:")}:
                    return
            try:
                rep = c.request(method, path)
                node = rep.header("X-Mockarty-Node")
                if good(rep) and node:
                    with lock:
                        times.setdefault("nginx:" + node, time.time() - t0)
            except OSError:
                c.close()
            time.sleep(POLL)

    threads = [threading.Thread(target=direct, args=(r,)) for r in cl.resolvers]
    if via_nginx:
        threads += [threading.Thread(target=nginx) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = [r.name for r in cl.resolvers]
    if via_nginx:
        labels += ["nginx:" + r.name for r in cl.resolvers]
    return {k: times.get(k) for k in labels}


def fmt_times(times):
    return ", ".join("%s %s" % (k, "never" if v is None else "%.3fs" % v) for k, v in times.items())


def assert_within(times, limit, what):
    slow = {k: v for k, v in times.items() if v is None or v >= limit}
    check(not slow, "%s not within %.1fs: %s" % (what, limit, fmt_times(times)))


def load(port, paths, total, threads, stop_event=None):
    """Sends requests round-robin over paths [(path, body)] from several threads until total are
    done (or stop_event is set and total reached). Returns (count, errors, first error samples)."""
    lock = threading.Lock()
    state = {"n": 0, "errors": 0, "samples": []}

    def worker(k):
        c = Client(port, timeout=15)
        i = k
        while True:
            with lock:
                if state["n"] >= total and (stop_event is None or stop_event.is_set()):
                    return
                state["n"] += 1
            path, body = paths[i % len(paths)]
            i += 1
            try:
                rep = c.request("GET", path)
                ok = rep.status == 200 and rep.json == body
                err = None if ok else "%s -> %r (node %s)" % (path, rep,
                                                              rep.header("X-Mockarty-Node"))
            except OSError as e:
                c.close()
                err = "%s -> %s" % (path, e)
            if err:
                with lock:
                    state["errors"] += 1
                    if len(state["samples"]) < 5:
                        state["samples"].append(err)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    return ts, state


def join_load(handle):
    ts, state = handle
    for t in ts:
        t.join()
    return state["n"], state["errors"], state["samples"]


def health(node):
    rep = node.request("GET", "/health", timeout=5)
    return rep.json if isinstance(rep.json, dict) else {}


def component(h, name):
    return (h.get("components") or {}).get(name, {}).get("status")


# --- scenarios ---

def s1_propagation(cl):
    """A mock created on the admin reaches every resolver (directly and through nginx) within 1 s;
    soft-deleted, and separately purged, it is gone from all three within 1 s."""
    for r in cl.resolvers:
        rep = r.request("GET", "/api/v1/namespaces")
        check(rep.status == 404 and rep.json.get("code") == "not_found" and
              rep.header("X-Mockarty-Node") == r.name,
              "resolver %s must have no admin API (a mock miss) and name itself: %r (node %s)" %
              (r.name, rep, rep.header("X-Mockarty-Node")))
    # Resolvers reserve only /health, /health/... and /metrics: /api/... is mocks' space there,
    # even a route the admin's API takes (there the admin answers its API, with a warning).
    for route, probe in (("/api/v1/mocks", "/api/v1/mocks"), ("/api/users/:id", "/api/users/7"),
                         ("/health-check", "/health-check"), ("/metrics2", "/metrics2")):
        mid = "s1-path-%s" % uuid.uuid4().hex[:8]
        rep = cl.create(mock(mid, route, payload={"route": route}), status=(201,))
        clash = route == "/api/v1/mocks"
        check(("warnings" in rep.json) == clash, "warnings for %s: %r" % (route, rep.json))
        times = wait_served_everywhere(cl, probe, 200, {"route": route})
        print("  mock on %s served by every resolver after %s" % (route, fmt_times(times)))
        if clash:
            rep = cl.admin.request("GET", "/api/v1/mocks")
            check(rep.status == 200 and "items" in rep.json, "admin API shadowed: %r" % rep)
        cl.admin.request("DELETE", "/api/v1/mocks/%s/purge" % mid)
    for kind in ("delete", "purge"):
        mid = "s1-%s-%s" % (kind, uuid.uuid4().hex[:8])
        path = "/s1/" + mid
        body = {"scenario": 1, "id": mid}
        for r in cl.resolvers:
            rep = r.request("GET", path)
            check(rep.status == 404, "%s serves %s before it exists: %r" % (r.name, path, rep))
        cl.create(mock(mid, path, payload=body), status=(201,))
        times = wait_served_everywhere(cl, path, 200, body)
        print("  %s: created, served after %s" % (mid, fmt_times(times)))
        assert_within(times, PROPAGATION_LIMIT, "new mock %s" % mid)
        url = "/api/v1/mocks/%s%s" % (mid, "/purge" if kind == "purge" else "")
        rep = cl.admin.request("DELETE", url)
        check(rep.status == 200, "admin DELETE %s: %r" % (url, rep))
        times = wait_served_everywhere(cl, path, 404, via_nginx=False)
        print("  %s: %s, 404 after %s" % (mid, kind, fmt_times(times)))
        assert_within(times, PROPAGATION_LIMIT, "%s of %s" % (kind, mid))
        for _ in range(30):
            rep = request(cl.nginx.port, "GET", path)
            check(rep.status == 404, "nginx still serves %s after %s: %r (node %s)" %
                  (mid, kind, rep, rep.header("X-Mockarty-Node")))


def s2_postgres_down(cl):
    """PostgreSQL stops: resolvers keep serving (2,000 requests through nginx, no error), report
    warn/database down; the admin refuses writes with 503 unavailable. PostgreSQL back: database up
    and a new mock reaches every resolver within 5 s of the admin accepting it."""
    mocks = [mock("s2-%d" % i, "/s2/m%d" % i, payload={"s2": i}) for i in range(5)]
    cl.batch(mocks)
    paths = [("/s2/m%d" % i, {"s2": i}) for i in range(5)]
    for p, b in paths:
        assert_within(wait_served_everywhere(cl, p, 200, b, via_nginx=False), 5.0, p)

    code = cl.pg.stop()
    check(code == 0, "postgres fast shutdown exit code %d" % code)
    t_down = time.time()
    try:
        rep = cl.admin.request("POST", "/api/v1/mocks",
                               mock("s2-while-down", "/s2/while-down"), timeout=30)
        check(rep.status == 503 and error_code(rep) == "unavailable",
              "admin write with PostgreSQL down: want 503 code unavailable, got %r" % rep)

        n, errors, samples = join_load(load(cl.nginx.port, paths, 2000, 8))
        print("  %d requests through nginx with PostgreSQL down: %d errors" % (n, errors))
        check(errors == 0, "%d of %d requests failed with PostgreSQL down, e.g. %s" %
              (errors, n, samples))

        for r in cl.resolvers:
            h, secs = poll_until(lambda: (lambda h: h if h.get("status") == "warn" and
                                          component(h, "database") == "down" else None)(health(r)),
                                 max(0.5, 10.0 - (time.time() - t_down)), 0.1)
            check(h is not None, "%s /health 10s after PostgreSQL stopped: want warn/database down,"
                  " got %s" % (r.name, json.dumps(health(r))))
        print("  resolvers report warn / database down %.1fs after the stop" %
              (time.time() - t_down))

        rep = cl.admin.request("POST", "/api/v1/mocks",
                               mock("s2-while-down", "/s2/while-down"), timeout=30)
        check(rep.status == 503 and error_code(rep) == "unavailable",
              "admin write after the outage was noticed: want 503 unavailable, got %r" % rep)
        rep = request(cl.nginx.port, "GET", "/s2/while-down")
        check(rep.status == 404, "a refused write is served anyway: %r" % rep)
    finally:
        if not cl.pg.running():
            cl.pg.start()
    t_back = time.time()

    for r in cl.resolvers:
        h, secs = poll_until(lambda: (lambda h: h if component(h, "database") == "up" else None)(
            health(r)), max(0.5, 10.0 - (time.time() - t_back)), 0.1)
        check(h is not None, "%s /health database not up again 10s after PostgreSQL restart: %s"
              % (r.name, json.dumps(health(r))))
    print("  resolvers report database up %.1fs after PostgreSQL restart" % (time.time() - t_back))

    body = {"s2": "after"}

    def write():
        rep = cl.admin.request("POST", "/api/v1/mocks", mock("s2-after", "/s2/after", payload=body),
                               timeout=30)
        if rep.status in (200, 201):
            return rep
        check(rep.status == 503, "admin write after PostgreSQL restart: %r" % rep)
        return None

    rep, secs = poll_until(write, 30.0, 0.2)
    check(rep is not None, "admin still refuses writes 30s after PostgreSQL restart")
    t_written = time.time()
    times = wait_served_everywhere(cl, "/s2/after", 200, body, timeout=10.0, via_nginx=False)
    print("  admin accepted a write %.1fs after PostgreSQL restart; served after %s" %
          (t_written - t_back, fmt_times(times)))
    assert_within(times, 5.0, "mock written after PostgreSQL came back")


def s3_redis_down(cl):
    """Redis stops and starts: no failed request for store-less mocks (>= 1,000 through nginx);
    a mock that uses a store answers 503 unavailable while Redis is down and works after."""
    mocks = [mock("s3-%d" % i, "/s3/m%d" % i, payload={"s3": i}) for i in range(3)]
    mocks.append(mock("s3-store", "/s3/store", method="POST", payload={"saved": "$.gS.s3v"},
                      extract={"gStore": {"s3v": "$.req.v"}}))
    cl.batch(mocks)
    paths = [("/s3/m%d" % i, {"s3": i}) for i in range(3)]
    for p, b in paths:
        assert_within(wait_served_everywhere(cl, p, 200, b, via_nginx=False), 5.0, p)

    def store_call(node, value):
        return node.request("POST", "/s3/store", {"v": value}, timeout=15)

    for r in cl.resolvers:
        rep, _ = poll_until(lambda: (lambda x: x if x.status != 404 else None)(
            store_call(r, "one")), 5.0, POLL)
        check(rep is not None and rep.status == 200 and rep.json == {"saved": "one"},
              "%s store mock with Redis up: %r" % (r.name, rep))

    stop = threading.Event()
    handle = load(cl.nginx.port, paths, 1000, 4, stop)
    try:
        time.sleep(0.3)
        code = cl.redis.stop()
        check(code == 0, "redis-server exit code %d" % code)
        time.sleep(0.5)
        for r in cl.resolvers:
            rep = store_call(r, "down")
            check(rep.status == 503 and error_code(rep) == "unavailable",
                  "%s store mock with Redis down: want 503 unavailable, got %r" % (r.name, rep))
        time.sleep(1.0)
    finally:
        if not cl.redis.running():
            cl.redis.start()
        time.sleep(1.0)
        stop.set()
    n, errors, samples = join_load(handle)
    print("  %d requests through nginx while Redis was down and coming back: %d errors" %
          (n, errors))
    check(n >= 1000, "only %d requests were sent" % n)
    check(errors == 0, "%d of %d requests failed around the Redis outage, e.g. %s" %
          (errors, n, samples))
    for r in cl.resolvers:
        rep, secs = poll_until(lambda: (lambda x: x if x.status == 200 else None)(
            store_call(r, "two")), 15.0, 0.1)
        check(rep is not None, "%s store mock not working 15s after Redis came back: %r" %
              (r.name, store_call(r, "two")))
        check(rep.json == {"saved": "two"}, "%s store mock after Redis: %r" % (r.name, rep))
    print("  store mock works again on every resolver after Redis restart")


def s4_resolver_restart(cl):
    """A resolver killed with SIGKILL and restarted: /health/ready is 503 until it has the full
    set; once 200, every one of 200 mocks is served by it directly."""
    n = 200
    mocks = [mock("s4-%d" % i, "/s4/m/%d" % i, payload={"s4": i}) for i in range(n)]
    cl.batch(mocks)
    rep = cl.admin.request("GET", "/api/v1/mocks?search=s4-&limit=1000")
    check(rep.status == 200 and rep.json.get("total") == n,
          "admin lists %r s4 mocks, want %d" % (rep.json and rep.json.get("total"), n))
    last = ("/s4/m/%d" % (n - 1), {"s4": n - 1})
    assert_within(wait_served_everywhere(cl, last[0], 200, last[1], via_nginx=False), 5.0,
                  last[0])

    victim = cl.resolvers[2]
    code = victim.kill()
    check(code == -9, "%s kill: exit code %d" % (victim.name, code))
    sent, errors, samples = join_load(load(cl.nginx.port, [(m["http"]["route"],
                                                            m["response"]["payload"])
                                                           for m in mocks[:20]], 300, 4))
    check(errors == 0, "nginx failed %d of %d requests with %s dead: %s" %
          (errors, sent, victim.name, samples))

    victim.start(timeout=120)
    seen = {}
    t0 = time.time()
    while True:
        rep = victim.request("GET", "/health/ready", timeout=10)
        seen[rep.status] = seen.get(rep.status, 0) + 1
        check(rep.status in (200, 503), "%s /health/ready answered %r" % (victim.name, rep))
        if rep.status == 200:
            break
        check(time.time() - t0 < 120, "%s not ready 120s after restart" % victim.name)
        time.sleep(0.01)
    print("  %s ready %.2fs after it listened (ready answers: %s)" %
          (victim.name, time.time() - t0, seen))
    c = Client(victim.port)
    missing = []
    for m in mocks:
        rep = c.request("GET", m["http"]["route"])
        if rep.status != 200 or rep.json != m["response"]["payload"]:
            missing.append("%s -> %r" % (m["id"], rep))
        elif rep.header("X-Mockarty-Node") != victim.name:
            missing.append("%s served by %s" % (m["id"], rep.header("X-Mockarty-Node")))
    c.close()
    check(not missing, "%s, once ready, does not serve %d of %d mocks: %s" %
          (victim.name, len(missing), n, missing[:5]))
    print("  all %d mocks served by the restarted %s" % (n, victim.name))


def s5_chain_store(cl):
    """The chain store is shared through Redis: a token extracted by /login on r1 is rendered by
    /profile on r2, and the admin's store API shows it."""
    cl.batch([mock("s5-login", "/login", method="POST", payload={"ok": True}, chainId="sess",
                   extract={"cStore": {"token": "$.req.token"}}),
              mock("s5-profile", "/profile", payload={"token": "$.cS.token"}, chainId="sess")])
    r1, r2 = cl.resolvers[0], cl.resolvers[1]
    for r in (r1, r2):
        rep, _ = poll_until(lambda: (lambda x: x if x.status != 404 else None)(
            r.request("GET", "/profile")), 5.0, POLL)
        check(rep is not None, "%s does not serve /profile 5s after it was created" % r.name)
    token = "tok-" + uuid.uuid4().hex
    rep = r1.request("POST", "/login", {"token": token})
    check(rep.status == 200 and rep.json == {"ok": True}, "r1 POST /login: %r" % rep)
    check(rep.header("X-Mockarty-Node") == "r1", "login served by %s" %
          rep.header("X-Mockarty-Node"))
    rep = r2.request("GET", "/profile")
    check(rep.status == 200 and rep.json == {"token": token},
          "r2 GET /profile after login on r1: want token %s, got %r" % (token, rep))
    check(rep.header("X-Mockarty-Node") == "r2", "profile served by %s" %
          rep.header("X-Mockarty-Node"))
    rep = cl.admin.request("GET", "/api/v1/stores/chain/sess")
    check(rep.status == 200 and token in rep.raw.decode(errors="replace"),
          "admin GET /api/v1/stores/chain/sess does not show the token: %r" % rep)


SCENARIOS = [s1_propagation, s2_postgres_down, s3_redis_down, s4_resolver_restart, s5_chain_store]


def heal(cl):
    """Brings the cluster back to all-up after a failed scenario, so the next one can run."""
    if not cl.pg.running():
        cl.pg.start()
    if not cl.redis.running():
        cl.redis.start()
    # The admin's /health/ready is 200 only with its database reachable, so writes work again.
    cl.admin.wait_ready(60)
    for r in cl.resolvers:
        if not r.running():
            r.start(wait_ready=True, timeout=120)


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    admin_bin, resolver_bin = argv[1], argv[2]
    for b in (admin_bin, resolver_bin):
        if not os.access(b, os.X_OK):
            print("FAIL: binary %s is missing or not executable" % b, flush=True)
            return 1
    services.install_signal_handlers()
    failures = []
    cl = None
    t_start = time.time()
    work = services.make_workdir("mk-cluster-")
    try:
        try:
            cl = Cluster(work, admin_bin, resolver_bin)
            cl.start()
            up = True
        except Exception as e:
            failures.append(("setup", "%s\n%s" % (e, traceback.format_exc())))
            up = False
        if up:
            print("cluster up in %.1fs: admin :%d, resolvers %s, nginx :%d, postgres :%d, "
                  "redis :%d" % (time.time() - t_start, cl.admin.port,
                                 " ".join(":%d" % r.port for r in cl.resolvers), cl.nginx.port,
                                 cl.pg.port, cl.redis.port), flush=True)
            only = os.environ.get("MK_CLUSTER_ONLY")  # e.g. "s1,s5" while developing
            for fn in SCENARIOS:
                if only and fn.__name__.split("_")[0] not in only.split(","):
                    continue
                print("%s: %s" % (fn.__name__, fn.__doc__.split("\n")[0]), flush=True)
                t0 = time.time()
                try:
                    fn(cl)
                    print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
                except Exception as e:
                    detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
                    print("FAIL %s: %s" % (fn.__name__, detail), flush=True)
                    failures.append((fn.__name__, detail))
                    try:
                        heal(cl)
                    except Exception as e2:
                        failures.append(("heal", str(e2)))
                        break
            # Every node must exit 0 on SIGTERM with nothing from the sanitizers.
            code = cl.nginx.stop()
            if code != 0:
                failures.append(("shutdown", "nginx exit code %d" % code))
            for node in reversed(cl.nodes):
                code, err = node.stop()
                bad = services.sanitizer_problems(err)
                if code != 0 or bad:
                    failures.append(("shutdown", "%s exit code %d on SIGTERM: %s\n%s" %
                                     (node.name, code, bad[:5], err[-3000:])))
                else:
                    print("%s stopped cleanly" % node.name)
    finally:
        if failures and cl is not None:
            for node in cl.nodes:
                print("--- %s stderr (tail) ---\n%s" % (node.name, node.stderr()[-2000:]))
        services.cleanup_all()
        if os.environ.get("MK_E2E_KEEP"):
            print("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("total %.1fs" % (time.time() - t_start))
    if failures:
        for name, detail in failures:
            print("=== %s ===\n%s" % (name, detail))
        print("FAILED: %s" % ", ".join(name for name, _ in failures))
        return 1
    print("all cluster scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
