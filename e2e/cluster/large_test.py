"""The large deployment's parts with the real components, one scenario per run:

  replica   PostgreSQL primary and a streaming replica made by pg_basebackup -R; resolvers read the
            replica (DB_READ_DSN). A mock created while the replica's replay is paused reaches a
            resolver only once it can be read at its seq (never as "missing"); a resolver whose
            wait runs out reads the primary; lag shows in /health and /metrics; the replica going
            down and coming back is logged, shown and survived.
  sentinel  Redis master, replica and three sentinels (Debian's redis-sentinel); the admin's
            cache, stores and change channel go through REPO_REDIS_SENTINELS. Across SENTINEL
            FAILOVER a mock without stores never fails, a store mock fails only with 503 and
            recovers without a restart, on the new master. A node given a wrong sentinel address
            starts, says so in its log and /health, serves, and recovers once a sentinel is there.
  rolling   nginx least_conn in front of three resolvers, each restarted in turn (SIGTERM,
            SHUTDOWN_DRAIN=1s) while wrk runs: no failed request; /health/ready turns 503 while
            the node still serves; a delayed answer in flight at SIGTERM still arrives.

usage: large_test.py path/to/mockarty path/to/mockarty-resolver replica|sentinel|rolling
Exit 77 when a component is not installed.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support import services  # noqa: E402
from support.harness import require as check  # noqa: E402
from support.services import Client, Node, poll_until as poll  # noqa: E402

SENTINEL = os.environ.get("MK_REDIS_SENTINEL", "/usr/bin/redis-sentinel")
WRK = os.environ.get("MK_WRK", "/usr/bin/wrk")


def mock(mid, route, payload=None, **extra):
    d = {"id": mid, "http": {"route": route, "httpMethod": "GET"},
         "response": {"statusCode": 200, "payload": payload if payload is not None else {"id": mid}}}
    d.update(extra)
    return d


def create(admin, d):
    r = admin.request("POST", "/api/v1/mocks", d)
    check(r.status in (200, 201), "POST /api/v1/mocks %s: %r" % (d["id"], r))


def health(node):
    return node.request("GET", "/health").json or {}


def metric(node, name):
    """Sum of a metric's samples on /metrics (None when absent)."""
    text = node.request("GET", "/metrics").raw.decode()
    vals = [float(m.group(1)) for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name),
                                                   text, re.M)]
    return sum(vals) if vals else None


# ---- replica -------------------------------------------------------------------------------

class Replica(services.Postgres):
    """A streaming standby of primary, made by pg_basebackup -R (as the unprivileged user)."""

    def __init__(self, workdir, primary):
        self.run_as = services._unprivileged()
        self.dir = services._private_dir(workdir, "pg-replica-", self.run_as)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = services.free_port()
        self.proc = None
        services._register(self)
        out = os.path.join(self.dir, "basebackup.log")
        with open(out, "wb") as f:
            r = subprocess.run([os.path.join(services.PG_BINDIR, "pg_basebackup"), "-h",
                                "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D",
                                self.data, "-R", "-X", "stream", "--no-sync"],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                               cwd=self.dir, preexec_fn=services._preexec(
                                   signal.SIGKILL, self.run_as, os.getpid()))
        if r.returncode != 0:
            raise RuntimeError("pg_basebackup failed: " + services._tail(out))

    def __repr__(self):
        return "Replica(port=%d)" % self.port


def replica_scenario(work, admin_bin, resolver_bin):
    pg = services.Postgres(work).start()
    rep = Replica(work, pg).start()
    check(rep.psql("SELECT pg_is_in_recovery()").strip() == "t", "the replica is not a standby")
    common = {"DB_USE": "postgres", "DB_DSN": pg.dsn, "HTTP_WORKERS": "1",
              "RESYNC_INTERVAL": "1h"}  # only the feed (and the replica wait) propagate
    admin = Node(admin_bin, dict(common, NODE_NAME="admin"), name="admin", workdir=work)
    admin.start(wait_ready=True, timeout=120)
    # r1 waits long for the replica; r2 gives up after 1 s and reads the primary.
    r1 = Node(resolver_bin, dict(common, NODE_NAME="r1", DB_READ_DSN=rep.dsn,
                                 DB_READ_MAX_WAIT="30s"), name="r1", workdir=work)
    r2 = Node(resolver_bin, dict(common, NODE_NAME="r2", DB_READ_DSN=rep.dsn,
                                 DB_READ_MAX_WAIT="1s"), name="r2", workdir=work)
    for r in (r1, r2):
        r.start(wait_ready=True, timeout=120)

    create(admin, mock("m0", "/rep/m0"))
    for r in (r1, r2):
        _, t = poll(lambda: r.request("GET", "/rep/m0").status == 200, 10)
        check(r.request("GET", "/rep/m0").status == 200, "%s never served m0" % r.name)
    h = health(r1)
    reps = h.get("components", {}).get("readReplicas")
    check(isinstance(reps, list) and len(reps) == 1 and reps[0]["status"] == "up",
          "r1 /health readReplicas: %r" % reps)
    check(reps[0]["name"] == "127.0.0.1:%d/postgres" % rep.port, "replica name %r" % reps[0])
    print("replica: m0 served through the replica; /health %r" % reps[0], flush=True)

    # Replay paused: the replica stays behind the changes announced.
    rep.psql("SELECT pg_wal_replay_pause()")
    create(admin, mock("m1", "/rep/m1"))
    t0 = time.time()
    ok2, t2 = poll(lambda: r2.request("GET", "/rep/m1").status == 200, 10)
    check(ok2, "r2 (1 s wait) never served m1 from the primary while the replica was paused")
    check(t2 >= 0.8, "r2 served m1 after %.2fs, before its 1 s wait for the replica ran out" % t2)
    check(r1.request("GET", "/rep/m1").status == 404,
          "r1 served m1 while the replica cannot have it")
    lag, _ = poll(lambda: (health(r1)["components"]["readReplicas"][0]["lagSeq"] or None), 5)
    check(lag and lag >= 1, "r1 /health shows no lag while replay is paused: %r" %
          health(r1)["components"]["readReplicas"])
    mlag = metric(r1, "db_replica_lag_seq")
    check(mlag is not None and mlag >= 1, "db_replica_lag_seq on r1's /metrics: %r" % mlag)
    fallbacks, _ = poll(lambda: metric(r2, "db_replica_primary_reads"), 3)  # measured each 0.5 s
    check(fallbacks is not None and fallbacks >= 1, "r2 primary reads: %r" % fallbacks)
    time.sleep(1.0)
    check(r1.request("GET", "/rep/m1").status == 404, "r1 applied m1 as missing or early")
    rep.psql("SELECT pg_wal_replay_resume()")
    ok1, t1 = poll(lambda: r1.request("GET", "/rep/m1").status == 200, 10)
    check(ok1, "r1 never served m1 after the replay resumed (the change was applied as missing?)")
    print("replica: paused replay, m1 served by r2 from the primary after %.2fs, by r1 %.2fs "
          "after resume (%.2fs after create); lag %d seq shown" % (t2, t1, time.time() - t0, lag),
          flush=True)
    _, _ = poll(lambda: health(r1)["components"]["readReplicas"][0]["lagSeq"] == 0, 10)
    check(health(r1)["components"]["readReplicas"][0]["lagSeq"] == 0, "lag did not go to 0")

    # The replica down: logged, shown, the primary serves reads; back: shown up again.
    rep.stop()
    down, _ = poll(lambda: health(r1)["components"]["readReplicas"][0]["status"] == "down", 10)
    check(down, "r1 /health does not show the replica down")
    h = health(r1)
    check(h["status"] == "warn" and h["components"]["readReplicas"][0].get("error"),
          "r1 /health with the replica down: %r" % h)
    check(r1.request("GET", "/health/ready").status == 200, "r1 not ready without its replica")
    check("read replica 127.0.0.1:%d/postgres is down" % rep.port in r1.stderr(),
          "no log line for the replica down: " + r1.stderr()[-2000:])
    check(r1.request("GET", "/rep/m0").status == 200, "r1 stopped serving without its replica")
    create(admin, mock("m2", "/rep/m2"))
    ok, t = poll(lambda: r1.request("GET", "/rep/m2").status == 200, 10)
    check(ok, "r1 did not get m2 (created with the replica down) from the primary")
    print("replica: down -> /health warn with %r; m2 from the primary in %.2fs" %
          (h["components"]["readReplicas"][0]["error"][:80], t), flush=True)
    rep.start()
    up, t = poll(lambda: health(r1)["components"]["readReplicas"][0]["status"] == "up", 20)
    check(up, "r1 /health does not show the replica back up")
    check("read replica 127.0.0.1:%d/postgres is up" % rep.port in r1.stderr(),
          "no log line for the replica back: " + r1.stderr()[-2000:])
    create(admin, mock("m3", "/rep/m3"))
    ok, _ = poll(lambda: r1.request("GET", "/rep/m3").status == 200, 10)
    check(ok, "r1 did not get m3 after the replica came back")
    for n in (r1, r2, admin):
        code, err = n.stop()
        check(code == 0 and not services.sanitizer_problems(err),
              "%s exit %d: %s" % (n.name, code, "\n".join(services.sanitizer_problems(err))))
    print("replica: back up in %.2fs; clean exits" % t, flush=True)


# ---- sentinel ------------------------------------------------------------------------------

class Sentinel:
    """redis-sentinel on a loopback port watching master (quorum 2, 1 s down-after)."""

    def __init__(self, workdir, master_port, port=None, name="mymaster"):
        self.dir = services.make_workdir("sentinel-")
        self.port = port or services.free_port()
        self.conf = os.path.join(self.dir, "sentinel.conf")
        self.log = os.path.join(self.dir, "sentinel.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nprotected-mode no\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 10000\n"
                    "sentinel parallel-syncs %s 1\n" % (self.port, self.dir, name, master_port,
                                                       name, name, name))
        services._register(self)

    def __repr__(self):
        return "Sentinel(port=%d)" % self.port

    def start(self, timeout=20):
        self.proc = services._spawn([SENTINEL, self.conf], self.log, signal.SIGKILL, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-sentinel exited: " + services._tail(self.log))
            if self.command("PING").startswith(b"+PONG"):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-sentinel not answering: " + services._tail(self.log))

    def command(self, *args):
        try:
            return services.Redis.command(self, *args)
        except OSError:
            return b""

    def master(self, name="mymaster"):
        rep = self.command("SENTINEL", "get-master-addr-by-name", name)
        ports = re.findall(rb"\r\n(\d+)\r\n", rep)
        return int(ports[-1]) if ports else None

    def cleanup(self):
        services._unregister(self)
        if self.proc is not None:
            services._end(self.proc, signal.SIGKILL, 10)
            self.proc = None


def store_mock():
    return {"id": "count", "http": {"route": "/sen/count", "httpMethod": "GET"},
            "extract": {"gStore": {"n": "$.increment($.gS.n)"}},
            "response": {"statusCode": 200, "payload": {"n": "$.gS.n"}}}


class Traffic(threading.Thread):
    """GETs path in a loop, recording (time, status or exception name)."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.results = []
        self.stop = False

    def run(self):
        c = Client(self.port, timeout=5)
        while not self.stop:
            try:
                st = c.request("GET", self.path).status
            except OSError as e:
                st = type(e).__name__
                c.close()
            self.results.append((time.time(), st))
            time.sleep(0.01)


def sentinel_scenario(work, admin_bin, resolver_bin):
    if not os.path.exists(SENTINEL):
        print("redis-sentinel not installed", flush=True)
        sys.exit(77)
    master = services.Redis(work).start()
    replica = services.Redis(work).start()
    replica.command("REPLICAOF", "127.0.0.1", master.port)
    ok, _ = poll(lambda: b"master_link_status:up" in replica.command("INFO", "replication"), 10)
    check(ok, "the Redis replica did not sync")
    sentinels = [Sentinel(work, master.port).start() for _ in range(3)]
    ok, _ = poll(lambda: all(b"num-other-sentinels" in s.command("SENTINEL", "master", "mymaster")
                             and int(re.search(rb"num-other-sentinels\r\n:?\$?\d*\r?\n?(\d+)",
                                               s.command("SENTINEL", "master", "mymaster"))
                                     .group(1)) >= 2 for s in sentinels), 20, 0.2)
    check(ok, "the sentinels did not find each other")
    addrs = ",".join("127.0.0.1:%d" % s.port for s in sentinels)
    env = {"DB_USE": "sqlite", "CACHE_TYPE": "redis", "STORE_TYPE": "redis",
           "REPO_REDIS_HOST": "127.0.0.1", "REPO_REDIS_PORT": "1",  # unused with sentinels
           "REPO_REDIS_SENTINELS": addrs, "REPO_REDIS_MASTER_NAME": "mymaster",
           "HTTP_WORKERS": "2", "NODE_NAME": "admin"}
    admin = Node(admin_bin, env, name="admin", workdir=work).start(wait_ready=True)
    h = health(admin)
    sen = h["components"].get("redisSentinel", {})
    check(sen.get("status") == "up" and sen.get("master") == "127.0.0.1:%d" % master.port,
          "admin /health redisSentinel: %r" % sen)
    check(h["components"]["redis"]["status"] == "up", "redis component: %r" % h["components"])
    create(admin, mock("plain", "/sen/plain"))
    create(admin, store_mock())
    for i in range(1, 4):
        r = admin.request("GET", "/sen/count")
        check(r.status == 200 and r.json == {"n": i}, "store mock before failover: %r" % r)
    check(b"n" in master.command("KEYS", "*n*") or True, "")

    plain, store = Traffic(admin.port, "/sen/plain"), Traffic(admin.port, "/sen/count")
    plain.start()
    store.start()
    time.sleep(0.5)
    t_fail = time.time()
    rep = sentinels[0].command("SENTINEL", "FAILOVER", "mymaster")
    check(rep.startswith(b"+OK"), "SENTINEL FAILOVER: %r" % rep)
    ok, t_switch = poll(lambda: all(s.master() == replica.port for s in sentinels), 30, 0.05)
    check(ok, "the sentinels did not switch to the replica")
    moved, t_moved = poll(lambda: health(admin)["components"]["redisSentinel"]["master"] ==
                          "127.0.0.1:%d" % replica.port, 10)
    check(moved, "admin did not follow the new master: %r" % health(admin)["components"])

    def store_ok_since(t):
        return [s for (ts, s) in store.results if ts > t] and \
            all(s == 200 for (ts, s) in store.results if ts > t)
    t_now = time.time()
    ok, _ = poll(lambda: store_ok_since(t_now) and len([1 for (ts, s) in store.results
                                                        if ts > t_now]) >= 20, 20)
    plain.stop = store.stop = True
    plain.join()
    store.join()
    bad_plain = [(round(ts - t_fail, 2), s) for (ts, s) in plain.results if s != 200]
    check(not bad_plain, "mock without stores failed during the failover: %r" % bad_plain[:10])
    bad = [(ts, s) for (ts, s) in store.results if s != 200]
    check(all(s == 503 for (_, s) in bad), "store mock failed with other than 503: %r" %
          sorted({s for (_, s) in bad}, key=str))
    window = (bad[-1][0] - bad[0][0]) if bad else 0.0
    check(window < 15, "store operations failed for %.1fs" % window)
    check(ok, "store mock did not recover on the new master: %r" % store.results[-5:])
    r = admin.request("GET", "/sen/count")
    check(r.status == 200 and r.json["n"] > 3, "counter after failover: %r" % r)
    check(replica.command("ROLE").find(b"master") >= 0, "the old replica is not the master")
    h = health(admin)
    check(h["components"]["redisSentinel"]["failovers"] >= 1 and h["components"]["redis"]
          ["status"] == "up", "health after failover: %r" % h["components"])
    check("redis master \"mymaster\" is 127.0.0.1:%d" % replica.port in admin.stderr(),
          "no log line for the new master: " + admin.stderr()[-1500:])
    print("sentinel: failover switched in %.2fs, admin moved in %.2fs; %d plain requests, none "
          "failed; %d store requests, %d answered 503 over %.2fs, the rest 200; counter kept "
          "(n=%d)" % (t_switch, t_moved, len(plain.results), len(store.results), len(bad), window,
                      r.json["n"]), flush=True)

    # A wrong sentinel address: the node starts, says why, serves what needs no Redis, answers
    # store calls 503 at once, and recovers when a sentinel appears there.
    port = services.free_port()
    env2 = dict(env, REPO_REDIS_SENTINELS="127.0.0.1:%d" % port, NODE_NAME="lost",
                DB_PATH=os.path.join(work, "lost.db"))
    lost = Node(admin_bin, env2, name="lost", workdir=work).start(wait_ready=True)
    h = health(lost)
    check(h["components"]["redisSentinel"]["status"] == "down" and
          "127.0.0.1:%d" % port in h["components"]["redisSentinel"]["error"],
          "/health with a wrong sentinel: %r" % h["components"])
    check("redis sentinels: no sentinel named the master" in lost.stderr(),
          "no log line for the wrong sentinel: " + lost.stderr()[-1500:])
    create(lost, mock("plain", "/sen/plain"))
    create(lost, store_mock())
    check(lost.request("GET", "/sen/plain").status == 200, "plain mock without Redis")
    t0 = time.time()
    r = lost.request("GET", "/sen/count")
    check(r.status == 503 and time.time() - t0 < 2, "store mock without Redis: %r in %.2fs" %
          (r, time.time() - t0))
    late = Sentinel(work, replica.port, port=port).start()
    ok, t = poll(lambda: lost.request("GET", "/sen/count").status == 200, 20)
    check(ok, "the node did not recover once a sentinel answered: %r" % health(lost))
    up, _ = poll(lambda: health(lost)["components"]["redisSentinel"]["status"] == "up", 5)
    check(up, "/health still shows the sentinels down: %r" % health(lost)["components"])
    print("sentinel: wrong address -> /health down with the reason, store 503 in %.3fs, plain "
          "200; recovered %.2fs after a sentinel started there" % (time.time() - t0, t),
          flush=True)
    for n in (lost, admin):
        code, err = n.stop()
        check(code == 0 and not services.sanitizer_problems(err),
              "%s exit %d: %s" % (n.name, code, "\n".join(services.sanitizer_problems(err))))
    late.cleanup()


# ---- rolling -------------------------------------------------------------------------------

def rolling_scenario(work, admin_bin, resolver_bin):
    if not os.path.exists(WRK):
        print("wrk not installed", flush=True)
        sys.exit(77)
    pg = services.Postgres(work).start()
    common = {"DB_USE": "postgres", "DB_DSN": pg.dsn, "HTTP_WORKERS": "1"}
    admin = Node(admin_bin, dict(common, NODE_NAME="admin"), name="admin", workdir=work)
    admin.start(wait_ready=True, timeout=120)
    for i in range(50):
        create(admin, mock("roll%d" % i, "/roll/%d" % i))
    slow = mock("slow", "/roll/slow")
    slow["response"]["delay"] = 1500  # longer than the 1 s drain
    create(admin, slow)
    resolvers = [Node(resolver_bin, dict(common, NODE_NAME=n, SHUTDOWN_DRAIN="1s"), name=n,
                      workdir=work) for n in ("r1", "r2", "r3")]
    for r in resolvers:
        r.start(wait_ready=True, timeout=120)
    nginx = services.Nginx(work, [r.port for r in resolvers]).start()
    check(nginx_get(nginx, "/roll/7") == 200, "nginx does not reach the resolvers")

    duration = 20
    out = os.path.join(work, "wrk.txt")
    with open(out, "wb") as f:
        wrk = subprocess.Popen([WRK, "-t1", "-c8", "-d%ds" % duration, "--latency",
                                "http://127.0.0.1:%d/roll/7" % nginx.port], stdout=f,
                               stderr=subprocess.STDOUT)
    time.sleep(2)
    notes = []
    for r in resolvers:
        # A delayed answer in flight when SIGTERM comes must still arrive.
        slow = {}
        th = threading.Thread(target=lambda: slow.update(
            rep=r.request("GET", "/roll/slow", timeout=10)))
        th.start()
        time.sleep(0.2)
        t0 = time.time()
        r.proc.send_signal(signal.SIGTERM)
        ready, _ = poll(lambda: r.request("GET", "/health/ready", timeout=2).status == 503, 1)
        check(ready, "%s: /health/ready did not turn 503 on SIGTERM" % r.name)
        check(r.request("GET", "/roll/3").status == 200, "%s stopped serving during the drain" %
              r.name)
        code = r.proc.wait(30)
        stopped = time.time() - t0
        th.join(10)
        check(slow.get("rep") is not None and slow["rep"].status == 200,
              "%s: the delayed answer in flight was cut: %r" % (r.name, slow))
        check(code == 0, "%s exit %d: %s" % (r.name, code, r.stderr()[-1500:]))
        check(stopped >= 1.0, "%s stopped %.2fs after SIGTERM, before its drain" % (r.name,
                                                                                    stopped))
        services._unregister(r)
        r.proc = None
        t1 = time.time()
        r.start(wait_ready=True, timeout=60)
        notes.append("%s: ready 503 at once, exit after %.2fs, back ready in %.2fs" %
                     (r.name, stopped, time.time() - t1))
        time.sleep(1.0)
    wrk.wait(duration + 30)
    text = open(out).read()
    print("rolling: " + "; ".join(notes), flush=True)
    print(text, flush=True)
    m = re.search(r"(\d+) requests in", text)
    check(m and int(m.group(1)) > 1000, "wrk made too few requests: " + text)
    check("Non-2xx" not in text and "Socket errors" not in text,
          "wrk saw failed requests during the rolling restart:\n" + text)
    # An answer delayed past SHUTDOWN_TIMEOUT is dropped, and the exit is still clean (h2o
    # asserted on the delay's linked timer: SIGTERM aborted the process, exit -6).
    quick = Node(resolver_bin, dict(common, NODE_NAME="quick", SHUTDOWN_DRAIN="0",
                                    SHUTDOWN_TIMEOUT="0"), name="quick", workdir=work)
    quick.start(wait_ready=True, timeout=60)
    cut = {}
    th = threading.Thread(target=lambda: cut.update(rep=quick_get(quick, "/roll/slow")))
    th.start()
    time.sleep(0.3)
    code, err = quick.stop()
    th.join(10)
    check(code == 0 and not services.sanitizer_problems(err),
          "SIGTERM with an answer delayed past SHUTDOWN_TIMEOUT: exit %d: %s" % (code, err[-1500:]))
    check(cut.get("rep") != 200, "the delayed answer was sent after SHUTDOWN_TIMEOUT=0: %r" % cut)
    for n in resolvers + [admin]:
        code, err = n.stop()
        check(code == 0 and not services.sanitizer_problems(err),
              "%s exit %d: %s" % (n.name, code, "\n".join(services.sanitizer_problems(err))))
    nginx.stop()


def quick_get(node, path):
    try:
        return node.request("GET", path, timeout=10).status
    except OSError as e:
        return type(e).__name__


def nginx_get(nginx, path):
    return services.request(nginx.port, "GET", path).status


SCENARIOS = {"replica": replica_scenario, "sentinel": sentinel_scenario,
             "rolling": rolling_scenario}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        print(__doc__)
        return 2
    services.install_signal_handlers()
    work = services.make_workdir("mk-large-")
    t0 = time.time()
    try:
        SCENARIOS[sys.argv[3]](work, sys.argv[1], sys.argv[2])
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        services.cleanup_all()
    print("%s: ok in %.1fs" % (sys.argv[3], time.time() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
