"""The admin and a resolver through PgBouncer in transaction pooling mode (Debian's pgbouncer), the
change feed's LISTEN on a direct connection (DB_LISTEN_DSN). Proves: the admin migrates and writes
through the pooler with DB_PREPARED_STATEMENTS=auto (it detects the pooler) and the resolver with
off; mocks created on the admin are served by the resolver; both restart and go on; PgBouncer
restarting under them is survived. The pooler's pool is 2 server connections for 8 client ones, so
statements prepared on one server connection would be missing on another.

With --bench N it instead times N sequential mock creates on the admin: direct with prepared
statements on, direct with them off, and through PgBouncer (off), and prints the figures.

usage: pgbouncer_test.py path/to/mockarty path/to/mockarty-resolver [--bench N]
"""
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support import services  # noqa: E402
from support.harness import Failure, require as check  # noqa: E402
from support.services import Client, Node  # noqa: E402

PGBOUNCER = os.environ.get("MK_PGBOUNCER", "/usr/sbin/pgbouncer")


class PgBouncer:
    """PgBouncer in transaction pooling mode on a free loopback port in front of one PostgreSQL.
    It refuses to run as root, so it runs as nobody (as services.Postgres does) when we are root."""

    def __init__(self, workdir, pg, pool_size=2):
        self.run_as = services._unprivileged()
        self.dir = services._private_dir(workdir, "pgbouncer-", self.run_as)
        self.port = services.free_port()
        self.log = os.path.join(self.dir, "pgbouncer.log")
        self.proc = None
        ini = os.path.join(self.dir, "pgbouncer.ini")
        users = os.path.join(self.dir, "userlist.txt")
        with open(users, "w") as f:
            f.write('"postgres" ""\n')
        with open(ini, "w") as f:
            f.write("[databases]\n"
                    "* = host=127.0.0.1 port=%d user=postgres\n"
                    "[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                    "auth_type = trust\nauth_file = %s\nadmin_users = postgres\n"
                    "pool_mode = transaction\ndefault_pool_size = %d\nmin_pool_size = 0\n"
                    "max_client_conn = 100\nserver_reset_query =\n"
                    "ignore_startup_parameters = extra_float_digits\n"
                    % (pg.port, self.port, users, pool_size))
        if self.run_as is not None:
            for p in (ini, users):
                os.chown(p, self.run_as[0], self.run_as[1])
        self.ini = ini
        services._register(self)

    def __repr__(self):
        return "PgBouncer(port=%d)" % self.port

    @property
    def dsn(self):
        return "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5" % self.port

    def start(self, timeout=30):
        services._register(self)
        self.proc = services._spawn([PGBOUNCER, self.ini], self.log, signal.SIGTERM, self.run_as,
                                    cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pgbouncer exited at start (%d): %s" %
                                   (self.proc.returncode, services._tail(self.log)))
            if services.port_open(self.port):
                return self
            time.sleep(0.05)
        raise RuntimeError("pgbouncer not listening on %d: %s" % (self.port,
                                                                  services._tail(self.log)))

    def stop(self):
        if self.proc is not None:
            # SIGINT: safe shutdown would wait for clients; SIGTERM cuts them (an outage).
            services._end(self.proc, signal.SIGTERM, 10)
            self.proc = None

    def show(self, what):
        """Rows of SHOW <what> on the admin console, as lists of strings."""
        r = subprocess.run([os.path.join(services.PG_BINDIR, "psql"), "-X", "-At", "-F", "|",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", "pgbouncer", "-c", "SHOW " + what],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("SHOW %s: %s" % (what, r.stderr.decode(errors="replace")))
        return [line.split("|") for line in r.stdout.decode().splitlines() if line]

    def transactions(self):
        """Transactions PgBouncer has passed to the postgres database so far."""
        for row in self.show("STATS"):
            if row[0] == "postgres":
                return int(row[1])
        return 0

    def cleanup(self):
        services._unregister(self)
        self.stop()


def mock(mid, route):
    return {"id": mid, "http": {"route": route, "httpMethod": "GET"},
            "response": {"statusCode": 200, "payload": {"id": mid}}}


def create(node, d):
    r = node.request("POST", "/api/v1/mocks", d)
    check(r.status in (200, 201), "admin POST /api/v1/mocks %s: %r %s" %
          (d["id"], r, node.stderr()[-2000:]))


def served(node, path, mid, timeout=10.0):
    """Polls the resolver until path answers the mock; returns the seconds it took."""
    t0 = time.time()
    c = Client(node.port, timeout=5)
    last = None
    while time.time() - t0 < timeout:
        try:
            last = c.request("GET", path)
            if last.status == 200 and last.json == {"id": mid}:
                return time.time() - t0
        except OSError as e:
            last = e
            c.close()
        time.sleep(0.02)
    raise Failure("resolver never served %s in %.0fs (last %r): %s" %
                  (path, timeout, last, node.stderr()[-2000:]))


def stop_clean(node):
    code, err = node.stop()
    check(code == 0 and not services.sanitizer_problems(err),
          "%s exited %s on SIGTERM: %s" % (node.name, code, err[-3000:]))


def run_test(work, admin_bin, resolver_bin):
    pg = services.Postgres(work).start()
    bouncer = PgBouncer(work, pg).start()
    common = {"DB_USE": "postgres", "DB_DSN": bouncer.dsn, "DB_LISTEN_DSN": pg.dsn}
    admin = Node(admin_bin, dict(common, HTTP_WORKERS="1", NODE_NAME="admin",
                                 DB_PREPARED_STATEMENTS="auto"), name="admin", workdir=work)
    # No periodic resync: a change can reach the resolver only through the LISTEN feed.
    resolver = Node(resolver_bin, dict(common, HTTP_WORKERS="1", NODE_NAME="r1",
                                       DB_PREPARED_STATEMENTS="off", RESYNC_INTERVAL="1h"),
                    name="r1", workdir=work)
    admin.start(wait_ready=True, timeout=120)
    resolver.start(wait_ready=True, timeout=120)
    check(pg.psql("SELECT max(version) FROM schema_migrations").strip() != "",
          "the admin migrated nothing through PgBouncer")

    # Through the pooler: admin writes, the resolver hears of them on the direct LISTEN.
    tx0 = bouncer.transactions()
    for i in range(20):
        create(admin, mock("pgb-%d" % i, "/pgb/%d" % i))
    worst = max(served(resolver, "/pgb/%d" % i, "pgb-%d" % i) for i in (0, 19))
    tx1 = bouncer.transactions()
    check(tx1 - tx0 >= 20, "PgBouncer passed %d transactions for 20 creates" % (tx1 - tx0))
    listeners = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
    check(int(listeners) == 1, "direct LISTEN sessions: %s (want the resolver's)" % listeners)
    print("ok: 20 mocks created through PgBouncer (%d transactions), resolver served them "
          "(slowest %.2fs), %s direct LISTEN sessions" % (tx1 - tx0, worst, listeners.strip()),
          flush=True)

    # Both nodes restart through the pooler and go on.
    stop_clean(resolver)
    stop_clean(admin)
    admin.start(wait_ready=True, timeout=120)
    resolver.start(wait_ready=True, timeout=120)
    served(resolver, "/pgb/7", "pgb-7")
    create(admin, mock("after-restart", "/pgb/after-restart"))
    served(resolver, "/pgb/after-restart", "after-restart")
    print("ok: admin and resolver restarted; old mocks served, a new one propagated", flush=True)

    # PgBouncer refusing (stopped): both nodes say so in the log and /health, the resolver keeps
    # serving; it restarts: writes work again with no node restart.
    bouncer.stop()
    t_down = time.time()
    while True:
        h = resolver.request("GET", "/health").json or {}
        if h.get("components", {}).get("database", {}).get("status") == "down":
            break
        check(time.time() - t_down < 10, "resolver /health never showed the database down: %r" % h)
        time.sleep(0.1)
    check(h.get("status") == "warn" and resolver.request("GET", "/pgb/after-restart").status == 200,
          "resolver without its pooler: %r" % h)
    # The admin measures its database on its own clock (every half second): wait for it too.
    while admin.request("GET", "/health").status != 503:
        check(time.time() - t_down < 10, "admin /health not failing")
        time.sleep(0.1)
    for n in (resolver, admin):
        check("database is down, serving what is loaded: postgres" in n.stderr(),
              "%s: no log line for the pooler refusing: %s" % (n.name, n.stderr()[-1500:]))
    bouncer.start()
    t0 = time.time()
    while True:
        r = admin.request("POST", "/api/v1/mocks", mock("after-bouncer", "/pgb/after-bouncer"))
        if r.status in (200, 201):
            break
        check(time.time() - t0 < 15, "admin writes still fail after PgBouncer came back: %r" % r)
        time.sleep(0.2)
    served(resolver, "/pgb/after-bouncer", "after-bouncer")
    t1 = time.time()
    while "database is back up" not in resolver.stderr():
        check(time.time() - t1 < 5, "resolver: no log line for the pooler back")
        time.sleep(0.1)
    print("ok: PgBouncer restarted; the admin wrote again after %.1fs, resolver served it" %
          (time.time() - t0), flush=True)

    stop_clean(resolver)
    stop_clean(admin)


def time_creates(work, admin_bin, dsn, listen_dsn, prepared, n, tag):
    """Seconds for n sequential creates on a fresh admin over an empty database (a create's cost
    grows with the mocks already there, so every run starts from none)."""
    env = {"DB_USE": "postgres", "DB_DSN": dsn, "DB_LISTEN_DSN": listen_dsn,
           "DB_PREPARED_STATEMENTS": prepared, "HTTP_WORKERS": "1"}
    admin = Node(admin_bin, env, name="admin-" + tag, workdir=work)
    admin.start(wait_ready=True, timeout=120)
    c = Client(admin.port, timeout=10)
    for i in range(50):  # warm-up: connections open, caches filled
        c.request("POST", "/api/v1/mocks", mock("warm-%s-%d" % (tag, i), "/w/%s/%d" % (tag, i)))
    t0 = time.time()
    for i in range(n):
        r = c.request("POST", "/api/v1/mocks", mock("b-%s-%d" % (tag, i), "/b/%s/%d" % (tag, i)))
        check(r.status in (200, 201), "create %d: %r" % (i, r))
    secs = time.time() - t0
    admin.stop()  # timing only: the functional test checks the exit
    return secs


def run_bench(work, admin_bin, n):
    pg = services.Postgres(work).start()
    bouncer = PgBouncer(work, pg, pool_size=4).start()
    rows = [("direct, prepared on", pg, "on"), ("direct, prepared off", pg, "off"),
            ("PgBouncer transaction mode, off", bouncer, "off")]
    for round_ in range(3):
        for k, (label, server, prepared) in enumerate(rows):
            db = "bench%d%d" % (round_, k)
            pg.psql("CREATE DATABASE " + db)
            dsn = server.dsn.replace("dbname=postgres", "dbname=" + db)
            direct = pg.dsn.replace("dbname=postgres", "dbname=" + db)
            secs = time_creates(work, admin_bin, dsn, direct, prepared, n, db)
            print("round %d  %-34s %5d creates  %6.2f s  %7.0f creates/s  %.3f ms each" %
                  (round_ + 1, label, n, secs, n / secs, secs * 1000 / n), flush=True)


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--bench"):
        print(__doc__)
        return 2
    admin_bin, resolver_bin = argv[1], argv[2]
    if not os.access(PGBOUNCER, os.X_OK):
        print("SKIP: %s is not installed (scripts/install-deps.sh test)" % PGBOUNCER, flush=True)
        return 77
    services.install_signal_handlers()
    work = services.make_workdir("mk-pgbouncer-")
    try:
        if len(argv) == 5:
            run_bench(work, admin_bin, int(argv[4]))
        else:
            run_test(work, admin_bin, resolver_bin)
        print("PASS", flush=True)
        return 0
    except Exception as e:
        print("FAIL: %s\n%s" % (e, traceback.format_exc()), flush=True)
        return 1
    finally:
        services.cleanup_all()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
