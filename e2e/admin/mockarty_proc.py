"""Starts a real mockarty binary on a free loopback port with a fresh database and talks to it."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support.services import encode_body, free_port  # noqa: E402,F401 (free_port: for importers)


class Mockarty:
    def __init__(self, binary, env=None, workdir=None):
        self.binary = binary
        self.dir = workdir or tempfile.mkdtemp(prefix="mockarty-test-")
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update({"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(self.port),
                         "DB_PATH": os.path.join(self.dir, "mockarty.db"), "HTTP_WORKERS": "2",
                         # fixed default ports (gRPC mocks, coordinator) are off unless a test
                         # asks, so suites running side by side do not fight over them
                         "GRPC_MOCK_PORT": "0", "RUNNER_GRPC_PORT": "0",
                         # SIGTERM stops at once unless a test asks for the drain
                         "SHUTDOWN_DRAIN": "0"})
        self.env.update(env or {})
        if os.environ.get("MK_TEST_PG_DSN") and "DB_USE" not in (env or {}):
            self._use_postgres(os.environ["MK_TEST_PG_DSN"])
        self.proc = None
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    def _use_postgres(self, admin_dsn):
        """The same scenarios against PostgreSQL: one database per working directory, so a
        restart in the same directory finds its data, as with the SQLite file."""
        name = "t_" + re.sub(r"[^a-z0-9]", "_", os.path.basename(self.dir).lower())
        subprocess.run(["psql", admin_dsn, "-qc", "CREATE DATABASE %s" % name],
                       capture_output=True, text=True)
        self.env.update({"DB_USE": "postgres",
                         "DB_DSN": re.sub(r"dbname=\S+", "dbname=" + name, admin_dsn)})

    def start(self):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([self.binary], env=self.env, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mockarty exited at start: " + self.read_stderr())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mockarty did not listen in time")

    def read_stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, and return (exit code, stderr). Sanitizer reports make the exit code non-zero."""
        if self.proc is None:
            return 0, ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()
        self.proc = None
        return code, self.read_stderr()

    def request(self, method, path, body=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data, hdrs = encode_body(body, headers, raw)
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        parsed = None
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            pass
        return resp.status, parsed, payload, resp
