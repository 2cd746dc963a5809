"""Hand-run check of services.py: PostgreSQL starts, answers psql, stops and starts again on the
same port; Redis answers PING across a restart; nginx proxies to two tiny Python HTTP servers;
nothing is left running afterwards.

usage: python3 e2e/support/services_selfcheck.py
"""
import http.server
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support import services  # noqa: E402


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok:", msg, flush=True)


def tiny_server(name):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no keep-alive: a shut-down server must be gone

        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    services.install_signal_handlers()
    work = services.make_workdir("mk-selfcheck-")
    pids = []
    try:
        pg = services.Postgres(work).start()
        pids.append(pg.proc.pid)
        check(pg.psql("select 40 + 2").strip() == "42", "postgres answers psql on %d" % pg.port)
        pg.psql("create table t (v int); insert into t values (7)")
        port = pg.port
        check(pg.stop() == 0, "postgres fast shutdown exits 0")
        check(not services.port_open(port), "postgres port closed after stop")
        pg.start()
        pids.append(pg.proc.pid)
        check(pg.port == port and pg.psql("select v from t").strip() == "7",
              "postgres restarted on the same port with its data")

        rd = services.Redis(work).start()
        pids.append(rd.proc.pid)
        check(rd.ping(), "redis PING on %d" % rd.port)
        rd.stop()
        check(not rd.ping(), "redis down after stop")
        rd.start()
        pids.append(rd.proc.pid)
        check(rd.ping(), "redis PING after restart on the same port")

        a, b = tiny_server("a"), tiny_server("b")
        ng = services.Nginx(work, [a.server_address[1], b.server_address[1]]).start()
        pids.append(ng.proc.pid)
        seen = set()
        for _ in range(20):
            r = services.request(ng.port, "GET", "/x")
            check(r.status == 200, "nginx proxied /x") if not seen else None
            seen.add(r.raw.decode())
        check(seen == {"a", "b"}, "nginx spread requests over both upstreams: %s" % sorted(seen))
        a.shutdown()
        a.server_close()
        fails = [r for r in (services.request(ng.port, "GET", "/y") for _ in range(10))
                 if r.status != 200 or r.raw != b"b"]
        check(not fails, "nginx retries the next upstream when one is down: %s" % fails[:3])
        b.shutdown()
        b.server_close()
    finally:
        services.cleanup_all()
        shutil.rmtree(work, ignore_errors=True)
    alive = [p for p in pids if os.path.exists("/proc/%d" % p)]
    check(not alive, "no service process left after cleanup_all")
    left = subprocess.run(["pgrep", "-f", work], capture_output=True).stdout.strip()
    check(not left, "no process mentions the workdir any more")
    print("services self-check passed")


if __name__ == "__main__":
    main()
