"""A webhook target for e2e tests: an HTTP server on a free loopback port that records each POST
as (path, headers, body, time), after delay(path) seconds, answering 500 when fail(path) says so."""
import http.server
import threading
import time


class HookReceiver:
    def __init__(self, delay=lambda path: 0, fail=lambda path: False):
        self.calls = []
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay(self.path))
                rx.calls.append((self.path, dict(self.headers), body, time.time()))
                self.send_response(500 if fail(self.path) else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def wait(self, path, n, timeout=5):
        """The calls to path once there are n of them, or those there are after timeout s."""
        deadline = time.time() + timeout
        while True:
            got = [c for c in self.calls if c[0] == path]
            if len(got) >= n or time.time() > deadline:
                return got
            time.sleep(0.02)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
