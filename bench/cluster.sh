#!/bin/bash
# Cluster benchmark (not a test): a Release build, real PostgreSQL and Redis started through
# e2e/support/services.py, and
#  (a) static-mock req/s on a resolver backed by PostgreSQL vs. the SQLite admin node, both driven
#      by `wrk -t1 -c32 -d$DURATION` in the same run (ratio resolver/admin);
#  (b) resolver start -> /health/ready 200 with $MOCKS mocks in PostgreSQL (created through the
#      admin's batch API), seconds;
#  (c) change propagation over $WRITES sequential writes: POST on the admin, poll the resolver
#      until it answers 200; p50/p99;
#  (d) N = 1, 2, 3 resolvers (HTTP_WORKERS=1 each) behind nginx least_conn (one worker), driven by
#      `wrk -t2 -c64 -d$DURATION` through nginx: req/s per N (all on this machine's cores, so it
#      shows where the machine, not the resolver, is the limit);
#  (e) PostgreSQL server connections with $FLEET resolvers (default DB_POOL_SIZE), directly and
#      through PgBouncer (transaction mode, pool $BOUNCER_POOL, LISTEN on DB_LISTEN_DSN direct):
#      client backends at rest after start and the most seen during a burst of $BURST writes
#      that every resolver reads back (a count, not a rate).
# Results go to docs/benchmarks.md by hand, with the machine line printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-5s}
MOCKS=${MOCKS:-10000}
WRITES=${WRITES:-1000}
STARTS=${STARTS:-3}
FLEET=${FLEET:-20}
BURST=${BURST:-200}
BOUNCER_POOL=${BOUNCER_POOL:-8}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMK_SANITIZE=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target mockarty mockarty-resolver >/dev/null

exec python3 - "$BUILD/cmd/mockarty/mockarty" "$BUILD/cmd/mockarty-resolver/mockarty-resolver" \
    "$DURATION" "$MOCKS" "$WRITES" "$STARTS" "$FLEET" "$BURST" "$BOUNCER_POOL" <<'PY'
import json, os, platform, shutil, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.getcwd(), "e2e"))
sys.path.insert(0, os.path.join(os.getcwd(), "e2e", "pgbouncer"))
from support import services
from support.services import Client, Node

admin_bin, resolver_bin, duration = sys.argv[1], sys.argv[2], sys.argv[3]
n_mocks, n_writes, n_starts = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
n_fleet, n_burst, bouncer_pool = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
BODY = {"id": 1, "name": "mockarty", "ok": True, "items": [1, 2, 3]}
STATIC = {"id": "static", "http": {"route": "/static", "httpMethod": "GET"},
          "response": {"statusCode": 200, "payload": BODY}}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def must(rep, what, ok=(200, 201)):
    if rep.status not in ok:
        raise SystemExit("%s failed: %r" % (what, rep))
    return rep


def wrk(port, path, threads=1, conns=32):
    """(req/s, p50, p99) from wrk, or None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d" + duration, "--latency",
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, check=True).stdout
    rps = p50 = p99 = "?"
    for line in out.splitlines():
        f = line.split()
        if line.startswith("Requests/sec"):
            rps = float(f[1])
        elif f[:1] == ["50%"]:
            p50 = f[1]
        elif f[:1] == ["99%"]:
            p99 = f[1]
    errors = [l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    if errors:
        log("wrk on %s: %s" % (path, errors))
    return rps, p50, p99


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


services.install_signal_handlers()
work = services.make_workdir("mk-bench-cluster-")
results = []
try:
    pg = services.Postgres(work).start()
    redis = services.Redis(work).start()
    cluster_env = {"DB_USE": "postgres", "DB_DSN": pg.dsn, "CACHE_TYPE": "redis",
                   "REPO_REDIS_HOST": "127.0.0.1", "REPO_REDIS_PORT": str(redis.port),
                   "STORE_TYPE": "redis"}
    admin = Node(admin_bin, cluster_env, name="admin-pg", workdir=work).start(wait_ready=True)
    resolver = Node(resolver_bin, dict(cluster_env, NODE_NAME="bench-r1"), name="resolver",
                    workdir=work).start(wait_ready=True)
    sqlite = Node(admin_bin, {}, name="admin-sqlite", workdir=work).start(wait_ready=True)

    # (a) one static mock: the resolver (PostgreSQL) vs. the SQLite admin, same body, same client.
    must(admin.request("POST", "/api/v1/mocks", STATIC), "create on the PostgreSQL admin")
    must(sqlite.request("POST", "/api/v1/mocks", STATIC), "create on the SQLite admin")
    t0 = time.time()
    while resolver.request("GET", "/static").status != 200:
        if time.time() - t0 > 10:
            raise SystemExit("the resolver does not serve /static")
        time.sleep(0.01)
    # The same resolver binary with stores and journal in memory: shows what Redis costs per request.
    plain = Node(resolver_bin, dict(cluster_env, NODE_NAME="bench-plain", STORE_TYPE="memory",
                                    CACHE_TYPE="inmemory"), name="resolver-plain",
                 workdir=work).start(wait_ready=True)
    log("(a) wrk -t1 -c32 -d%s on the SQLite admin, then on the resolvers" % duration)
    a_admin = wrk(sqlite.port, "/static")
    a_res = wrk(resolver.port, "/static")
    a_plain = wrk(plain.port, "/static")
    sqlite.stop()
    plain.stop()

    # (b) the PostgreSQL database grows to n_mocks; a fresh resolver loads them all.
    chunk = 500
    t0 = time.time()
    for off in range(0, n_mocks, chunk):
        mocks = [{"id": "bulk-%d" % i, "namespace": "ns%d" % (i % 100),
                  "http": {"route": "/svc%d/users/:id/orders/:order" % i, "httpMethod": "GET"},
                  "response": {"statusCode": 200, "payload": {"n": i}}}
                 for i in range(off, min(n_mocks, off + chunk))]
        must(admin.request("POST", "/api/v1/mocks/batch", {"mocks": mocks}, timeout=300),
             "batch at %d" % off)
    log("(b) %d mocks created through the batch API in %.1fs" % (n_mocks, time.time() - t0))
    resolver.wait_ready(120)
    starts = []
    for k in range(n_starts):
        r = Node(resolver_bin, dict(cluster_env, NODE_NAME="bench-start-%d" % k),
                 name="resolver-start", workdir=work)
        t0 = time.time()
        r.start(wait_ready=True, timeout=300)
        starts.append(time.time() - t0)
        last = "/stubs/ns%d/svc%d/users/1/orders/2" % ((n_mocks - 1) % 100, n_mocks - 1)
        rep = r.request("GET", last)
        if rep.status != 200:
            raise SystemExit("ready resolver does not serve %s: %r" % (last, rep))
        snap = (r.request("GET", "/health").json or {}).get("checks", {}).get("snapshot", {})
        r.stop()
        log("(b) start %d: ready after %.2fs, snapshot %s" % (k + 1, starts[-1], snap))

    # (c) sequential writes on the admin, each polled on the resolver until served.
    wc, pc = Client(admin.port), Client(resolver.port)
    write_lat, prop_lat, total_lat = [], [], []
    for i in range(n_writes):
        path = "/prop/%d" % i
        d = {"id": "prop-%d" % i, "http": {"route": path, "httpMethod": "GET"},
             "response": {"statusCode": 200, "payload": {"i": i}}}
        t0 = time.perf_counter()
        must(wc.request("POST", "/api/v1/mocks", d), "write %d" % i)
        t1 = time.perf_counter()
        while pc.request("GET", path).status != 200:
            if time.perf_counter() - t1 > 30:
                raise SystemExit("write %d not served by the resolver after 30s" % i)
        t2 = time.perf_counter()
        write_lat.append(t1 - t0)
        prop_lat.append(t2 - t1)
        total_lat.append(t2 - t0)
    wc.close()
    pc.close()

    ms = lambda s: "%.2f ms" % (s * 1000)  # noqa: E731
    mem_kb = int(open("/proc/meminfo").readline().split()[1])
    print("machine: %d cores, %.0f GiB, %s %s" % (os.cpu_count(), mem_kb / 1048576.0,
                                                 platform.system(), platform.release()))
    print("resolver and PostgreSQL admin: CACHE_TYPE=redis STORE_TYPE=redis; PostgreSQL 15 "
          "fsync=off on loopback")
    print()
    if a_admin is None or a_res is None:
        print("(a) skipped: wrk is not installed (Debian package wrk)")
    else:
        print("(a) static mock, wrk -t1 -c32 -d%s, body %d bytes" % (duration,
                                                                     len(json.dumps(BODY))))
        print("    %-34s %12s %10s %10s" % ("node", "req/s", "p50", "p99"))
        print("    %-34s %12.0f %10s %10s" % ("admin, SQLite (baseline)", *a_admin))
        print("    %-34s %12.0f %10s %10s" % ("resolver, PG, Redis stores+cache", *a_res))
        print("    %-34s %12.0f %10s %10s" % ("resolver, PG, memory stores", *a_plain))
        print("    ratio resolver/admin: %.2f (Redis stores), %.2f (memory stores)" %
              (a_res[0] / a_admin[0], a_plain[0] / a_admin[0]))
    print("(b) resolver start -> /health/ready with %d mocks in PostgreSQL: %s s (median %.2f s)"
          % (n_mocks, ", ".join("%.2f" % s for s in starts), pct(starts, 50)))
    print("(c) propagation over %d sequential writes (%d mocks in the database):" %
          (n_writes, n_mocks + 1))
    print("    %-36s %10s %10s %10s" % ("", "p50", "p99", "max"))
    for name, xs in (("admin POST round trip", write_lat),
                     ("POST answered -> resolver serves", prop_lat),
                     ("POST sent -> resolver serves", total_lat)):
        print("    %-36s %10s %10s %10s" % (name, ms(pct(xs, 50)), ms(pct(xs, 99)), ms(max(xs))))
    resolver.stop()

    # (d) N resolvers behind nginx.
    behind = []
    fleet = []
    for n in (1, 2, 3):
        while len(fleet) < n:
            fleet.append(Node(resolver_bin, dict(cluster_env, NODE_NAME="lb-%d" % len(fleet),
                                                 HTTP_WORKERS="1", STORE_TYPE="memory",
                                                 CACHE_TYPE="inmemory", SHUTDOWN_DRAIN="0"),
                              name="resolver-lb", workdir=work).start(wait_ready=True))
        lb = services.Nginx(work, [r.port for r in fleet]).start()
        log("(d) %d resolver(s) behind nginx: wrk -t2 -c64 -d%s" % (n, duration))
        behind.append((n, wrk(lb.port, "/static", threads=2, conns=64)))
        lb.stop()
    for r in fleet:
        r.stop()

    # (e) connections to PostgreSQL for a fleet of resolvers, direct and through PgBouncer.
    def backends():
        return int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                           "'client backend' AND pid <> pg_backend_pid()").strip())

    def fleet_connections(env, label):
        nodes = [Node(resolver_bin, dict(env, NODE_NAME="fleet-%d" % k, HTTP_WORKERS="1",
                                         STORE_TYPE="memory", CACHE_TYPE="inmemory",
                                         SHUTDOWN_DRAIN="0"),
                      name="fleet", workdir=work) for k in range(n_fleet)]
        base = backends()
        for r in nodes:
            r.start()
        for r in nodes:
            r.wait_ready(120)
        time.sleep(2)
        rest = backends() - base
        peak = [rest]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak.append(backends() - base)
                time.sleep(0.05)
        th = threading.Thread(target=sample)
        th.start()
        wc = Client(admin.port)
        tag = label.split()[0]
        for i in range(n_burst):
            d = {"id": "burst-%s-%d" % (tag, i), "http": {"route": "/burst/%s/%d" % (tag, i),
                                                          "httpMethod": "GET"},
                 "response": {"statusCode": 200, "payload": {"i": i}}}
            must(wc.request("POST", "/api/v1/mocks", d), "burst write %d" % i)
        wc.close()
        last = "/burst/%s/%d" % (tag, n_burst - 1)
        for r in nodes:
            t0 = time.time()
            while r.request("GET", last).status != 200:
                if time.time() - t0 > 30:
                    raise SystemExit("%s: %s never served" % (label, last))
                time.sleep(0.02)
        done.set()
        th.join()
        for r in nodes:
            r.stop()
        log("(e) %s: %d at rest, %d at most during the burst" % (label, rest, max(peak)))
        return rest, max(peak)

    direct = fleet_connections(cluster_env, "direct")
    pooled = None
    if shutil.which("pgbouncer") or os.path.exists("/usr/sbin/pgbouncer"):
        from pgbouncer_test import PgBouncer
        bouncer = PgBouncer(work, pg, pool_size=bouncer_pool)
        bouncer.start()
        pooled = fleet_connections(dict(cluster_env, DB_DSN=bouncer.dsn, DB_LISTEN_DSN=pg.dsn,
                                        DB_PREPARED_STATEMENTS="off"), "pgbouncer")
    if behind[0][1] is not None:
        print("(d) static mock through nginx (least_conn, 1 worker), wrk -t2 -c64 -d%s; each "
              "resolver HTTP_WORKERS=1, memory stores" % duration)
        print("    %-12s %12s %10s %10s" % ("resolvers", "req/s", "p50", "p99"))
        for n, (rps, p50, p99) in behind:
            print("    %-12d %12.0f %10s %10s" % (n, rps, p50, p99))
    print("(e) PostgreSQL client backends for %d resolvers (DB_POOL_SIZE 4 each), burst of %d "
          "writes read back by every resolver:" % (n_fleet, n_burst))
    print("    %-44s %8s %8s" % ("", "at rest", "peak"))
    print("    %-44s %8d %8d" % ("direct", *direct))
    if pooled is not None:
        print("    %-44s %8d %8d" % ("PgBouncer pool %d + direct LISTEN per resolver" %
                                      bouncer_pool, *pooled))
    code, err = admin.stop()
    if code != 0:
        log("admin exited %d: %s" % (code, err[-2000:]))
finally:
    services.cleanup_all()
    shutil.rmtree(work, ignore_errors=True)
PY
