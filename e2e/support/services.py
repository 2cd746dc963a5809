"""Starts real PostgreSQL, Redis, nginx and mockarty nodes on free loopback ports for multi-process
tests and benchmarks, and guarantees none of them outlives the Python process that started it.

Start services from the main thread: children get a parent-death signal, and Linux sends it when
the *thread* that forked them exits.
"""
import atexit
import ctypes
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

PG_BINDIR = os.environ.get("MK_PG_BINDIR", "/usr/lib/postgresql/15/bin")
REDIS_SERVER = os.environ.get("MK_REDIS_SERVER", "/usr/bin/redis-server")
NGINX = os.environ.get("MK_NGINX", "/usr/sbin/nginx")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

_live = []
_live_lock = threading.Lock()


def _register(svc):
    with _live_lock:
        if svc not in _live:
            _live.append(svc)


def _unregister(svc):
    with _live_lock:
        if svc in _live:
            _live.remove(svc)


def cleanup_all():
    """Stops every service still registered, newest first. Safe to call more than once."""
    while True:
        with _live_lock:
            if not _live:
                return
            svc = _live.pop()
        try:
            svc.cleanup()
        except Exception as e:  # cleanup must go on with the others
            print("services: cleanup of %s failed: %s" % (svc, e), flush=True)


atexit.register(cleanup_all)


def install_signal_handlers():
    """Turns SIGTERM/SIGINT/SIGHUP into SystemExit so atexit cleanup runs (ctest sends SIGTERM...)."""

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    """pred()'s first true value, asked every 0.1 s; AssertionError naming what after timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def poll_until(fn, timeout, interval=0.02):
    """Calls fn (an OSError counts as None) until it returns a true value or timeout passes;
    returns (its last value, seconds taken)."""
    t0 = time.time()
    while True:
        try:
            v = fn()
        except OSError:
            v = None
        if v or time.time() - t0 > timeout:
            return v, time.time() - t0
        time.sleep(interval)


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def sanitizer_problems(text):
    """The lines of a stderr that report a sanitizer finding (ASan, LSan, UBSan), or []."""
    keys = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
            "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")
    return [line for line in text.splitlines() if any(k in line for k in keys)]


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _unprivileged():
    """(uid, gid) to run servers as: ourselves, or nobody when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def _traversable_by_others(path):
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def make_workdir(prefix="mk-e2e-"):
    """A fresh directory other users can traverse (PostgreSQL runs as nobody inside it)."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def _preexec(death_signal, run_as, parent):
    def fn():
        os.setsid()
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as[1])
            os.setuid(run_as[0])
        # Set after the uid change: changing credentials clears the parent-death signal.
        _libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), int(death_signal))

    return fn


def _spawn(argv, log_path, death_signal, run_as=None, env=None, cwd=None, err_path=None):
    out = open(log_path, "ab")
    err = open(err_path, "ab") if err_path else subprocess.STDOUT
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                cwd=cwd, close_fds=True,
                                preexec_fn=_preexec(death_signal, run_as, os.getpid()))
    finally:
        out.close()
        if err_path:
            err.close()


def _end(proc, sig, timeout):
    """Sends sig, waits up to timeout, then SIGKILLs. Returns the exit code (negative: signal)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _private_dir(workdir, prefix, run_as):
    """A directory owned by run_as inside workdir, or inside the system temp dir when run_as could
    not reach workdir."""
    base = workdir
    if base is not None and run_as is not None and not _traversable_by_others(base):
        base = None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    if run_as is not None:
        os.chown(d, run_as[0], run_as[1])
    return d


class _Server:
    """What Postgres, Redis and Nginx share: one child process in self.proc, stopped with
    STOP_SIGNAL (then SIGKILL after the timeout); start() waits until ready() says so."""

    STOP_SIGNAL = signal.SIGTERM
    proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _wait_started(self, ready, what, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (%d): %s" %
                                   (what, self.proc.returncode, _tail(self.log)))
            if ready():
                return self
            time.sleep(0.05)
        raise RuntimeError("%s not ready on port %d after %ds: %s" %
                           (what, self.port, timeout, _tail(self.log)))

    def stop(self, timeout=30):
        """STOP_SIGNAL; returns the exit code (0 when it was not running)."""
        if self.proc is None:
            return 0
        code = _end(self.proc, self.STOP_SIGNAL, timeout)
        self.proc = None
        return code

    def kill(self):
        if self.proc is not None:
            _end(self.proc, signal.SIGKILL, 10)
            self.proc = None


class Postgres(_Server):
    """A throwaway PostgreSQL cluster: trust auth, superuser postgres, fsync off, TCP on loopback
    and a Unix socket in its own directory. start/stop keep the port, so clients can reconnect.
    stop is a fast shutdown (SIGINT): open sessions are cut, the data stays."""

    STOP_SIGNAL = signal.SIGINT

    def __init__(self, workdir=None, port=None):
        self.run_as = _unprivileged()
        self.dir = _private_dir(workdir, "pg-", self.run_as)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = port or free_port()
        self.proc = None
        _register(self)
        initlog = os.path.join(self.dir, "initdb.log")
        with open(initlog, "wb") as f:
            r = subprocess.run([os.path.join(PG_BINDIR, "initdb"), "-D", self.data, "-U", "postgres",
                                "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                               cwd=self.dir, preexec_fn=_preexec(signal.SIGKILL, self.run_as,
                                                                 os.getpid()))
        if r.returncode != 0:
            raise RuntimeError("initdb failed (%d): %s" % (r.returncode, _tail(initlog)))

    def __repr__(self):
        return "Postgres(port=%d)" % self.port

    @property
    def dsn(self):
        return "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5" % self.port

    def start(self, timeout=60):
        if self.running():
            return self
        _register(self)
        argv = [os.path.join(PG_BINDIR, "postgres"), "-D", self.data, "-p", str(self.port),
                "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "log_min_messages=warning"]
        # SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends with it.
        self.proc = _spawn(argv, self.log, signal.SIGQUIT, self.run_as, cwd=self.dir)
        return self._wait_started(self.ready, "postgres", timeout)

    def ready(self):
        return subprocess.run([os.path.join(PG_BINDIR, "pg_isready"), "-q", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", "postgres", "-t", "2"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def psql(self, sql, db="postgres", timeout=30):
        """Runs sql with psql over TCP and returns its unaligned output; raises on failure."""
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        r = subprocess.run([os.path.join(PG_BINDIR, "psql"), "-X", "-q", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", db, "-c", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def cleanup(self):
        _unregister(self)
        self.stop(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis(_Server):
    """A redis-server without persistence on a fixed loopback port; stop/start keep the port."""

    def __init__(self, workdir=None, port=None):
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.log = os.path.join(self.dir, "redis.log")
        self.port = port or free_port()
        self.proc = None
        _register(self)

    def __repr__(self):
        return "Redis(port=%d)" % self.port

    def start(self, timeout=30):
        if self.running():
            return self
        _register(self)
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no",
                "--daemonize", "no"]
        self.proc = _spawn(argv, self.log, signal.SIGKILL, cwd=self.dir)
        return self._wait_started(self.ping, "redis-server", timeout)

    def command(self, *args, timeout=5):
        """Sends one command and returns the raw reply bytes (enough for tests: PING, DBSIZE...)."""
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(b"".join(parts))
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def ping(self):
        try:
            return self.command("PING", timeout=1).startswith(b"+PONG")
        except OSError:
            return False

    def cleanup(self):
        _unregister(self)
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def nginx_conf(d, http, worker_connections=4096):
    """An nginx.conf for a foreground master with one worker that keeps its pid, error log and
    temporary files in d; http is the inside of the http block."""
    return """daemon off;
master_process on;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections %(conns)d; }
http {
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
%(http)s}
""" % {"d": d, "conns": worker_connections, "http": http}


class Nginx(_Server):
    """nginx (one worker) load-balancing with least_conn over upstream ports on loopback."""

    def __init__(self, workdir, upstream_ports, port=None):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.log = os.path.join(self.dir, "error.log")
        self.proc = None
        _register(self)
        # A server refusing connections (restarting) is skipped for fail_timeout; nginx's 10 s
        # default outlasts a rolling restart of three, leaving "no live upstreams" (502).
        servers = "".join("        server 127.0.0.1:%d max_fails=1 fail_timeout=1s;\n" % p
                          for p in upstream_ports)
        d = self.dir
        proxy = ("proxy_pass http://resolvers; proxy_http_version 1.1; "
                 "proxy_set_header Connection \"\"; proxy_connect_timeout 5s; "
                 "proxy_read_timeout 30s; proxy_next_upstream error timeout;")
        with open(self.conf, "w") as f:
            f.write(nginx_conf(d, """    access_log off;
    upstream resolvers {
        least_conn;
%(servers)s        keepalive 32;
    }
    server {
        listen 127.0.0.1:%(port)d;
        location / { %(proxy)s }
        location /health { %(proxy)s }
    }
""" % {"servers": servers, "port": self.port, "proxy": proxy}))

    def __repr__(self):
        return "Nginx(port=%d)" % self.port

    def start(self, timeout=30):
        _register(self)
        argv = [NGINX, "-p", self.dir + "/", "-e", self.log, "-c", self.conf]
        # SIGTERM lets the master take its worker down too.
        self.proc = _spawn(argv, os.path.join(self.dir, "stdout.log"), signal.SIGTERM,
                           cwd=self.dir)
        return self._wait_started(lambda: port_open(self.port), "nginx", timeout)

    def cleanup(self):
        _unregister(self)
        self.stop(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class LoggedProcess:
    """A child process (self.p) writing stdout and stderr to one log file, for the scripts that
    start admins and runners themselves and read what they logged."""

    def __init__(self, argv, env, log_path):
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.p = subprocess.Popen(argv, env=env, stdout=self.logf, stderr=subprocess.STDOUT)

    def log(self):
        self.logf.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        """sig, then SIGKILL after 15 s; returns the exit code (negative: a signal)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode


class Reply:
    def __init__(self, status, raw, headers):
        self.status = status
        self.raw = raw
        self.headers = headers
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "%d %s" % (self.status, self.raw[:300].decode(errors="replace"))


def encode_body(body, headers=None, raw=None):
    """(what to send, headers): body JSON-encoded with Content-Type application/json unless the
    headers name one, or else raw as is."""
    hdrs = dict(headers or {})
    if body is None:
        return raw, hdrs
    hdrs.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode(), hdrs


def request(port, method, path, body=None, headers=None, timeout=10, raw=None):
    """One request on a fresh connection. body is JSON-encoded; raw is sent as is."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data, hdrs = encode_body(body, headers, raw)
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        return Reply(resp.status, payload, resp.msg)
    finally:
        conn.close()


class Client:
    """A keep-alive HTTP client for loops; reconnects once when the connection went stale."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        data, hdrs = encode_body(body, headers)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                if resp.will_close:
                    self.close()
                return Reply(resp.status, payload, resp.msg)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A reused connection the server had closed: retry once on a fresh one.
                self.close()
                if attempt == 1:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Node:
    """A mockarty or mockarty-resolver process on a free loopback port. Its working directory is
    private, so relative paths (the default SQLite file) land there."""

    def __init__(self, binary, env=None, name=None, workdir=None, port=None):
        self.binary = os.path.abspath(binary)  # the process runs in its own directory
        self.name = name or os.path.basename(binary)
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=workdir)
        self.port = port or free_port()
        self.env = dict(os.environ)
        # The gRPC mock and coordinator ports default to fixed numbers (5771/5781, 5773): tests
        # that run side by side must not fight over them, so they are off unless a test asks.
        # SIGTERM stops at once (no SHUTDOWN_DRAIN) unless a test asks for the drain.
        self.env.update({"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(self.port),
                         "GRPC_MOCK_PORT": "0", "RUNNER_GRPC_PORT": "0", "SHUTDOWN_DRAIN": "0"})
        self.env.update(env or {})
        self.out_path = os.path.join(self.dir, "stdout.log")
        self.err_path = os.path.join(self.dir, "stderr.log")
        self.err_offset = 0
        self.proc = None

    def __repr__(self):
        return "Node(%s, port=%d)" % (self.name, self.port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait_ready=False, timeout=60):
        """Starts the process and waits until the port accepts (and /health/ready is 200 when
        wait_ready). Raises with the stderr if the process exits first."""
        _register(self)
        self.err_offset = os.path.getsize(self.err_path) if os.path.exists(self.err_path) else 0
        self.proc = _spawn([self.binary], self.out_path, signal.SIGKILL, env=self.env,
                           cwd=self.dir, err_path=self.err_path)
        self.started_at = time.time()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (%d): %s" %
                                   (self.name, self.proc.returncode, self.stderr()))
            if port_open(self.port):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("%s did not listen on %d in %ds: %s" %
                               (self.name, self.port, timeout, self.stderr()))
        if wait_ready:
            self.wait_ready(max(1, deadline - time.time()))
        return self

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited while starting: %s" % (self.name, self.stderr()))
            try:
                last = request(self.port, "GET", "/health/ready", timeout=5)
                if last.status == 200:
                    return last
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError("%s not ready after %ds (last: %r): %s" %
                           (self.name, timeout, last, self.stderr()))

    def stderr(self):
        """What the process wrote to stderr since its last start."""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self.err_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=10, raw=None):
        return request(self.port, method, path, body, headers, timeout, raw)

    def stop(self, timeout=60):
        """SIGTERM; returns (exit code, stderr). Sanitizer reports make the exit code non-zero."""
        if self.proc is None:
            return 0, ""
        code = _end(self.proc, signal.SIGTERM, timeout)
        self.proc = None
        _unregister(self)
        return code, self.stderr()

    def kill(self):
        """SIGKILL, as a crash would; returns the exit code."""
        if self.proc is None:
            return 0
        code = _end(self.proc, signal.SIGKILL, 10)
        self.proc = None
        _unregister(self)
        return code

    def cleanup(self):
        _unregister(self)
        if self.proc is not None:
            _end(self.proc, signal.SIGKILL, 10)
            self.proc = None
