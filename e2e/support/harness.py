"""What the check-style e2e scripts share: a check() that tallies failures, the admin API called
with a bearer token, and (protocols/*_test.py, grpcmock/) the setup that runs the same scenarios
against the admin on SQLite, or, given a resolver binary, against a resolver following a
PostgreSQL admin.
"""
import json
import sys
import tempfile

from . import services
from .services import Node

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


class Failure(AssertionError):
    """A failed require(): the scenario stops there."""


def require(cond, msg):
    if not cond:
        raise Failure(msg)


def finish():
    """Prints the tally; returns the script's exit code."""
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


def api(node, token, method, path, body=None, raw=None, headers=None):
    """(status, the reply as JSON, or the raw bytes when it is not JSON, or None when empty)."""
    r = node.request(method, path, body=body, raw=raw,
                     headers=dict(headers or {}, Authorization="Bearer " + token))
    try:
        return r.status, (json.loads(r.raw) if r.raw else None)
    except ValueError:
        return r.status, r.raw


def check_exit(node, what):
    """Stops node and checks that it exited with 0 and no sanitizer report."""
    code, err = node.stop()
    check(code == 0 and not services.sanitizer_problems(err),
          "%s exits cleanly (%d) %s" % (what, code, err[-2000:]))


class AdminAndResolver:
    """usage: SCRIPT MOCKARTY [MOCKARTY_RESOLVER]. A context that owns a work directory and, when
    the resolver binary is given, a PostgreSQL for the admin and the resolver to share; leaving
    it stops every process the script started."""

    def __init__(self, prefix, token, argv=None):
        argv = argv or sys.argv
        self.admin_bin = argv[1]
        self.resolver_bin = argv[2] if len(argv) > 2 else None
        self.token = token
        services.install_signal_handlers()
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.pg = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        services.cleanup_all()
        if self.pg:
            self.pg.cleanup()
        return False

    def _db_env(self):
        return {"DB_USE": "postgres", "DB_DSN": self.pg.dsn} if self.pg else {}

    def start_admin(self, env=None):
        """The admin (two workers), on PostgreSQL when there is a resolver to follow it."""
        if self.resolver_bin and not self.pg:
            self.pg = services.Postgres(self.work)
            self.pg.start()
        full = {"API_TOKEN": self.token, "HTTP_WORKERS": "2"}
        full.update(env or {})
        full.update(self._db_env())
        return Node(self.admin_bin, full, name="admin", workdir=self.work).start(
            wait_ready=True, timeout=120)

    def start_resolver(self, env=None, wait_ready=True):
        """A resolver (one worker) on the admin's database, resyncing every 200 ms."""
        full = dict(self._db_env(), HTTP_WORKERS="1", API_TOKEN=self.token,
                    RESYNC_INTERVAL="200ms")
        full.update(env or {})
        return Node(self.resolver_bin, full, name="resolver", workdir=self.work).start(
            wait_ready=wait_ready, timeout=120)
