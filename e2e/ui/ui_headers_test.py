"""The embedded web UI's HTTP contract against the real admin: every file under web/ is served
from the binary as it is in the tree, gzip when accepted (and only then), ETags with 304, a strict
Content-Security-Policy and no inline script or style in the pages; the UI's prefix is
UI_PATH_PREFIX; "/" redirects to the UI only while no mock takes it.
Usage: ui_headers_test.py <mockarty binary>"""
import gzip
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import services  # noqa: E402

ADMIN_BIN = None
WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")


def web_files():
    out = []
    for root, dirs, files in os.walk(WEB):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith(".") and not f.endswith("~"):
                out.append(os.path.relpath(os.path.join(root, f), WEB))
    return sorted(out)


class UiHeadersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = services.Node(ADMIN_BIN, name="ui-admin").start(wait_ready=True)

    @classmethod
    def tearDownClass(cls):
        code, err = cls.admin.stop()
        assert code == 0, "admin exited %s: %s" % (code, err[-3000:])

    def get(self, path, headers=None, method="GET", node=None):
        return (node or self.admin).request(method, path, headers=headers)

    def test_every_web_file_is_served_as_in_the_tree(self):
        files = web_files()
        self.assertIn("index.html", files)
        self.assertIn("app.js", files)
        for rel in files:
            with open(os.path.join(WEB, rel), "rb") as f:
                want = f.read()
            r = self.get("/ui/" + rel)
            self.assertEqual(r.status, 200, rel)
            self.assertEqual(r.raw, want, rel)
            self.assertIsNone(r.header("Content-Encoding"), rel)
            z = self.get("/ui/" + rel, {"Accept-Encoding": "gzip, deflate, br"})
            self.assertEqual(z.status, 200, rel)
            if z.header("Content-Encoding") == "gzip":
                self.assertEqual(gzip.decompress(z.raw), want, rel)
                self.assertLess(len(z.raw), len(want), rel)
            else:  # only files gzip does not shrink go out as they are
                self.assertEqual(z.raw, want, rel)
            self.assertIn("Accept-Encoding", z.header("Vary") or "")
        types = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
        for rel, t in types.items():
            self.assertTrue(self.get("/ui/" + rel).header("Content-Type").startswith(t), rel)

    def test_gzip_for_big_text_files(self):
        r = self.get("/ui/app.js", {"Accept-Encoding": "gzip"})
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        # q=0 refuses a coding
        r = self.get("/ui/app.js", {"Accept-Encoding": "gzip;q=0, identity"})
        self.assertIsNone(r.header("Content-Encoding"))
        r = self.get("/ui/app.js", {"Accept-Encoding": "*"})
        self.assertEqual(r.header("Content-Encoding"), "gzip")

    def test_etag_and_304(self):
        r = self.get("/ui/app.js")
        etag = r.header("ETag")
        self.assertRegex(etag, r'^"[0-9a-f]{20}"$')
        z = self.get("/ui/app.js", {"Accept-Encoding": "gzip"})
        self.assertEqual(z.header("ETag"), etag[:-1] + '-gz"')  # another representation
        for inm, enc in ((etag, None), (z.header("ETag"), "gzip"), ('"x", ' + etag, None),
                         ("W/" + etag, None), ("*", None)):
            h = {"If-None-Match": inm}
            if enc:
                h["Accept-Encoding"] = enc
            n = self.get("/ui/app.js", h)
            self.assertEqual(n.status, 304, inm)
            self.assertEqual(n.raw, b"")
            self.assertIsNotNone(n.header("ETag"))
        self.assertEqual(self.get("/ui/app.js", {"If-None-Match": '"deadbeef"'}).status, 200)
        self.assertEqual(self.get("/ui/style.css", {"If-None-Match": etag}).status, 200)
        self.assertEqual(r.header("Cache-Control"), "no-cache")

    def test_csp_and_no_inline_code(self):
        r = self.get("/ui/")
        self.assertEqual(r.status, 200)
        csp = r.header("Content-Security-Policy")
        self.assertIsNotNone(csp)
        directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
        self.assertEqual(directives["default-src"], "'none'")
        self.assertEqual(directives["script-src"], "'self'")
        self.assertEqual(directives["style-src"], "'self'")
        self.assertEqual(directives["connect-src"], "'self'")
        self.assertEqual(directives["frame-ancestors"], "'none'")
        self.assertNotIn("unsafe", csp)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        for rel in web_files():
            if rel.endswith(".html"):
                with open(os.path.join(WEB, rel)) as f:
                    html = f.read()
                self.assertIsNone(re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), rel)
                self.assertIsNone(re.search(r"<style|\sstyle=|\son[a-z]+=", html), rel)
                for ref in re.findall(r'(?:src|href)="([^"#]+)"', html):
                    self.assertFalse(re.match(r"^(https?:)?//", ref), "CDN in %s: %s" % (rel, ref))
            if rel.endswith(".js"):
                with open(os.path.join(WEB, rel)) as f:
                    js = f.read()
                self.assertNotIn("innerHTML", js, rel)
                self.assertIsNone(re.search(r"\beval\(|new Function\(", js), rel)
                self.assertIsNone(re.search(r"""from\s+['"]https?:""", js), rel)

    def test_prefix_paths(self):
        r = self.get("/ui")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "/ui/")
        self.assertEqual(self.get("/ui/nope.js").status, 404)
        self.assertEqual(self.get("/ui/../api/v1/endpoints").status, 404)
        self.assertEqual(self.get("/ui/app.js", method="POST").status, 405)
        self.assertEqual(self.get("/ui/app.js", method="HEAD").status, 200)
        # /uix is not the UI's: a mock path
        self.assertEqual(self.get("/uix").status, 404)
        self.assertIsNotNone(self.get("/uix").json)

    def test_root_redirects_only_without_a_mock(self):
        r = self.get("/")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "/ui/")
        st = self.admin.request("POST", "/api/v1/mocks", {
            "id": "root-mock", "http": {"route": "/", "httpMethod": "GET"},
            "response": {"statusCode": 200, "payload": {"root": True}}})
        self.assertIn(st.status, (200, 201), st)
        r = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"root": True})
        self.assertEqual(self.admin.request("DELETE", "/api/v1/mocks/root-mock").status, 200)
        self.assertEqual(self.get("/").status, 302)
        # a mock elsewhere is served as before, and the journal never saw the UI's files
        self.admin.request("POST", "/api/v1/mocks", {
            "id": "other", "http": {"route": "/other"}, "response": {"payload": {"ok": 1}}})
        self.assertEqual(self.get("/other").json, {"ok": 1})
        j = self.admin.request("GET", "/api/v1/requests?limit=1000").json
        paths = [e["request"]["path"] for e in j.get("items", j.get("requests", []))]
        self.assertFalse([p for p in paths if p == "/ui" or p.startswith("/ui/")], paths)

    def test_mock_list_pages_fast_at_10000(self):
        """The UI pages the mock list on the server: a page of 10,000 matches renders one page."""
        import time
        mocks = [{"id": "big-%05d" % i, "tags": ["t%d" % (i % 10)],
                  "http": {"route": "/big/%d" % i, "httpMethod": "GET"},
                  "response": {"payload": {"i": i}}} for i in range(10000)]
        r = self.admin.request("POST", "/api/v1/mocks/batch?namespace=big", mocks, timeout=120)
        self.assertEqual(r.status, 201, r)
        timings = {}
        for q in ("limit=50", "limit=50&offset=9950", "limit=50&tags=t3", "limit=50&protocol=http"):
            # the best of three: a neighbour test compiling on the same 2 cores once made one
            # request 531 ms; rendering all 10,000 mocks takes seconds every time
            for _ in range(3):
                t = time.time()
                r = self.admin.request("GET", "/api/v1/mocks?namespace=big&" + q, timeout=30)
                ms = (time.time() - t) * 1000
                timings[q] = min(timings.get(q, ms), ms)
                self.assertEqual(r.status, 200)
                self.assertEqual(len(r.json["items"]), 50, q)
        r = self.admin.request("GET", "/api/v1/mocks?namespace=big&limit=50&offset=9950")
        self.assertEqual(r.json["total"], 10000)
        self.assertEqual(r.json["items"][0]["id"], "big-00049")  # newest first
        self.assertEqual(r.json["items"][-1]["id"], "big-00000")
        r = self.admin.request("GET", "/api/v1/mocks?namespace=big&limit=5&protocol=grpc")
        self.assertEqual(r.json["total"], 0)
        print("page of 50 among 10,000 mocks: %s" %
              ", ".join("%s %.0f ms" % kv for kv in timings.items()), file=sys.stderr)
        # 2.4 s before pages rendered only their own mocks (Debug+ASan), ~50 ms after
        self.assertLess(max(timings.values()), 500, timings)

    def test_prefix_setting(self):
        node = services.Node(ADMIN_BIN, name="ui-admin-prefix",
                             env={"UI_PATH_PREFIX": "/console/"}).start(wait_ready=True)
        try:
            self.assertEqual(self.get("/console/", node=node).status, 200)
            r = self.get("/", node=node)
            self.assertEqual((r.status, r.header("Location")), (302, "/console/"))
            # /ui is a mock path there
            node.request("POST", "/api/v1/mocks", {
                "http": {"route": "/ui/app.js"}, "response": {"payload": {"mock": True}}})
            self.assertEqual(self.get("/ui/app.js", node=node).json, {"mock": True})
        finally:
            code, err = node.stop()
        self.assertEqual(code, 0, err[-3000:])
        off = services.Node(ADMIN_BIN, name="ui-admin-off",
                            env={"UI_PATH_PREFIX": "off"}).start(wait_ready=True)
        try:
            self.assertEqual(self.get("/ui/", node=off).status, 404)
            self.assertEqual(self.get("/", node=off).status, 404)
        finally:
            code, err = off.stop()
        self.assertEqual(code, 0, err[-3000:])


if __name__ == "__main__":
    ADMIN_BIN = sys.argv.pop(1)
    services.install_signal_handlers()
    unittest.main()
