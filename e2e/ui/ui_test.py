"""The web UI in a real browser (headless Chromium through Selenium) against the real admin and a
runner: log in; create a mock in the form, see the API's validation error for a bad regex at its
field, fix it; call the mock with curl and see the call in the live tail within a second; create a
mock from an unmatched request; delete and restore; run a collection and watch its progress reach
the end; a viewer sees no edit controls and the API refuses the write anyway. Saves a screenshot
of each main view into the screenshot folder (argv[3]). Skips (exit 0 with a message) only when
no Chromium or chromedriver is installed.
Usage: ui_test.py <mockarty binary> <mockarty-runner binary> <screenshot dir>"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import services  # noqa: E402

ADMIN_BIN = RUNNER_BIN = SHOTS = None
BOOT = "ui-boot-token"
ADMIN_PW = "admin-pass-1234"
VIEWER_PW = "viewer-pass-1234"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException, TimeoutException)
    from selenium.webdriver.chrome.service import Service as ChromeService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - reported below
    webdriver = None


def browser_missing():
    if webdriver is None:
        return "python3-selenium is not installed"
    if not CHROMIUM or not os.path.exists(CHROMEDRIVER):
        return "chromium and chromium-driver are not installed"
    return None


def collection(name, paths):
    return {"info": {"name": name, "schema":
                     "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
            "item": [{"name": "get " + p, "request": {"method": "GET", "url": "{{baseUrl}}" + p},
                      "event": [{"listen": "test", "script": {"exec": [
                          "pm.test('status 200', function () {"
                          " pm.response.to.have.status(200); });"]}}]} for p in paths]}


class UiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.grpc = services.free_port()
        cls.admin = services.Node(ADMIN_BIN, name="ui-admin", env={
            "API_TOKEN": BOOT, "ADMIN_PASSWORD": ADMIN_PW, "RUNNER_GRPC_PORT": str(cls.grpc),
            "RUNNER_HEARTBEAT_TIMEOUT": "3s", "HTTP_WORKERS": "2"})
        cls.runner = None
        cls.driver = None
        try:
            cls.admin.start(wait_ready=True)
            cls.base = "http://127.0.0.1:%d" % cls.admin.port
            cls.prepare()
            opts = webdriver.ChromeOptions()
            for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--window-size=1440,900", "--disable-extensions", "--no-first-run"):
                opts.add_argument(a)
            opts.binary_location = CHROMIUM
            opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            cls.driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER),
                                          options=opts)
            cls.driver.set_page_load_timeout(30)
        except BaseException:
            cls.stop_all()
            raise

    @classmethod
    def api(cls, method, path, body=None, token=BOOT):
        h = {"Authorization": "Bearer " + token}
        return cls.admin.request(method, path, body, headers=h, timeout=30)

    @classmethod
    def prepare(cls):
        r = cls.api("POST", "/api/v1/users", {"login": "vera", "password": VIEWER_PW,
                                              "email": "vera@example.com"})
        assert r.status in (200, 201), r
        uid = r.json.get("id") or r.json["user"]["id"]
        r = cls.api("POST", "/api/v1/namespaces/sandbox/members", {"userId": uid, "role": "viewer"})
        assert r.status in (200, 201), r
        r = cls.api("POST", "/api/v1/auth/tokens", {"name": "ui-runner", "kind": "integration"})
        assert r.status in (200, 201), r
        token = r.json["token"]
        for p in ("/col/a", "/col/b", "/col/c"):
            r = cls.api("POST", "/api/v1/mocks", {"http": {"route": p, "httpMethod": "GET"},
                                                  "response": {"statusCode": 200,
                                                               "payload": {"ok": p}}})
            assert r.status in (200, 201), r
        r = cls.api("POST", "/api/v1/api-tester/collections", {
            "namespace": "sandbox", "name": "ui-smoke",
            "collection": collection("ui-smoke", ["/col/a", "/col/b", "/col/c"])})
        assert r.status == 201, r
        cls.collection_id = r.json["id"]
        cls.runner = services.Node(RUNNER_BIN, name="ui-runner", env={
            "COORDINATOR_ADDR": "127.0.0.1:%d" % cls.grpc, "API_TOKEN": token,
            "RUNNER_NAME": "ui-runner", "SHARED": "true", "MAX_CONCURRENT": "1",
            "CAPABILITIES": "api_test,performance", "RUNNER_HTTP_HOST": "127.0.0.1"})
        cls.runner.env["RUNNER_HTTP_PORT"] = str(cls.runner.port)
        cls.runner.start()

    @classmethod
    def stop_all(cls):
        if cls.driver is not None:
            cls.driver.quit()
            cls.driver = None
        if cls.runner is not None:
            cls.runner.stop()
        code, err = cls.admin.stop()
        return code, err

    @classmethod
    def tearDownClass(cls):
        code, err = cls.stop_all()
        assert code == 0, "admin exited %s: %s" % (code, err[-3000:])

    # ---- helpers ----

    def wait(self, cond, timeout=10, what=""):
        try:
            # views re-render while polled: a node found a moment ago may be gone
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05, ignored_exceptions=(
                StaleElementReferenceException, NoSuchElementException)).until(lambda d: cond())
        except TimeoutException:
            self.shot("failed-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", what or "wait"))
            raise AssertionError("timed out waiting for %s; browser log: %s" %
                                 (what, self.js_errors()))

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css, timeout=10):
        return self.wait(lambda: next((e for e in self.finds(css) if e.is_displayed()), None),
                         timeout, css)

    def go(self, hash_):
        self.driver.get(self.base + "/ui/" + hash_)

    def shot(self, name):
        if SHOTS and self.driver is not None:
            os.makedirs(SHOTS, exist_ok=True)
            self.driver.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def login(self, user, password):
        self.driver.delete_all_cookies()
        self.go("#/login")
        for css, text in (("#login", user), ("#password", password)):
            el = self.shown(css)
            el.clear()
            el.send_keys(text)
        self.find("#password").send_keys(Keys.ENTER)
        self.shown("#nav a[href='#/mocks']")
        self.shown("#mock-list table")

    def curl(self, *args):
        return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + list(args),
                              capture_output=True, text=True, timeout=10).stdout

    def js_errors(self):
        try:
            logs = self.driver.get_log("browser")
        except Exception:
            return []
        # 4xx answers the test provokes on purpose show as failed resources; script errors not
        return [x for x in logs if x["level"] == "SEVERE" and "Failed to load resource" not in
                x["message"]]

    # ---- the scenario, in order (one test: each step needs the previous one's state) ----

    def test_ui(self):
        self.step_redirect_and_login()
        self.step_create_mock_with_validation_error()
        self.step_live_tail()
        self.step_mock_from_unmatched()
        self.step_delete_and_restore()
        self.step_run_collection()
        self.step_other_views()
        self.assertEqual(self.js_errors(), [])
        self.step_viewer()

    def step_redirect_and_login(self):
        self.driver.get(self.base + "/")
        self.wait(lambda: "/ui/" in self.driver.current_url, what="redirect to /ui/")
        self.shown("#login")
        self.shot("login")
        self.shown("#login").send_keys("admin")
        self.find("#password").send_keys("wrong-password", Keys.ENTER)
        self.wait(lambda: "Invalid" in self.find("#login-error").text, what="login error")
        self.login("admin", ADMIN_PW)
        # the session is an HttpOnly cookie, out of the page's reach
        self.assertNotIn("mockarty_session", self.driver.execute_script("return document.cookie"))
        cookie = self.driver.get_cookie("mockarty_session")
        self.assertTrue(cookie and cookie["httpOnly"])

    def step_create_mock_with_validation_error(self):
        self.shown("#new-mock").click()
        self.shown("#mock-form")
        idf = self.find("[data-path='id']")
        idf.send_keys("ui-hello")
        Select(self.find("[data-path='http.httpMethod']")).select_by_value("GET")
        route = self.find("[data-path='http.route']")
        route.clear()
        route.send_keys("/ui-e2e/hello/:name")
        self.find("[data-add='header']").click()
        self.shown("[data-path='http.header[0].path']").send_keys("X-Env")
        Select(self.find("[data-path='http.header[0].assertAction']")).select_by_value("matches")
        value = self.find("[data-path='http.header[0].value']")
        value.send_keys("^(dev|test")  # unbalanced: the server's PCRE2 refuses it
        payload = self.find("[data-path='response.payload']")
        payload.clear()
        payload.send_keys('{"hello": "ui"}')
        # the JSON editor follows the form
        doc = json.loads(self.find("#mock-json").get_attribute("value"))
        self.assertEqual(doc["http"]["header"][0]["value"], "^(dev|test")
        self.assertEqual(doc["response"]["payload"], {"hello": "ui"})
        self.find("#mock-save").click()
        err = self.shown("[data-path='http.header[0].value'] + .field-error")
        self.assertIn("http.header[0].value", err.text)
        self.assertIn("regular expression", err.text)
        self.assertEqual(value.get_attribute("aria-invalid"), "true")
        self.assertEqual(self.api("GET", "/api/v1/mocks/ui-hello").status, 404)  # nothing stored
        self.shot("mock-editor-error")
        value.send_keys(")$")
        self.find("#mock-save").click()
        self.wait(lambda: "#/mock?id=ui-hello" in self.driver.current_url, what="saved mock")
        m = self.api("GET", "/api/v1/mocks/ui-hello").json
        self.assertEqual(m["http"]["route"], "/ui-e2e/hello/:name")
        self.assertEqual(m["http"]["header"][0], {"path": "X-Env", "assertAction": "matches",
                                                   "value": "^(dev|test)$"})
        self.shown("#recent-requests")
        self.shot("mock-editor")

    def step_live_tail(self):
        self.go("#/traffic")
        self.wait(lambda: self.find("#tail-mode").text.startswith("live"), what="tail live")
        time.sleep(0.3)
        self.assertEqual(self.curl("-H", "X-Env: dev", self.base + "/ui-e2e/hello/ann"), "200")
        t0 = time.time()
        sel = "#tail li[data-mock='ui-hello'][data-path='/ui-e2e/hello/ann']"
        entry = self.wait(lambda: self.finds(sel), 5, "the call in the live tail")[0]
        # when the page showed it (same machine, same clock), not when this poll noticed
        elapsed = int(entry.get_attribute("data-shown")) / 1000.0 - t0
        print("live tail: call shown %.3f s after curl returned (mode: %s)" %
              (elapsed, self.find("#tail-mode").text), file=sys.stderr)
        self.assertLess(elapsed, 1.0)
        entry.find_element(By.TAG_NAME, "summary").click()
        self.assertIn("x-env: dev", entry.text.lower())
        self.shot("traffic")

    def step_mock_from_unmatched(self):
        self.assertEqual(self.curl(self.base + "/ui-e2e/missing?x=1"), "404")
        sel = "#tail li[data-path='/ui-e2e/missing']"
        entry = self.wait(lambda: self.finds(sel), 5, "the unmatched call")[0]
        entry.find_element(By.TAG_NAME, "summary").click()
        # the near miss: the replayed request's 404 names the mock that came close
        entry.find_element(By.CSS_SELECTOR, "[data-action='explain']").click()
        self.wait(lambda: self.driver.switch_to.alert, what="replay confirmation").accept()
        self.wait(lambda: "ui-hello" in self.find("#explain").text, what="near-miss explanation")
        self.shot("traffic-near-miss")
        entry.find_element(By.CSS_SELECTOR, "[data-action='create-from']").click()
        self.wait(lambda: "#/mock?prefill=1" in self.driver.current_url, what="editor prefilled")
        route = self.shown("[data-path='http.route']")
        self.assertEqual(route.get_attribute("value"), "/ui-e2e/missing")
        self.assertEqual(self.find("[data-path='http.httpMethod']").get_attribute("value"), "GET")
        self.find("[data-path='id']").send_keys("from-unmatched")
        self.find("#mock-save").click()
        self.wait(lambda: "#/mock?id=from-unmatched" in self.driver.current_url,
                  what="mock created from the request")
        self.assertEqual(self.curl(self.base + "/ui-e2e/missing"), "200")

    def step_delete_and_restore(self):
        self.go("#/mocks")
        search = self.shown("#mock-search")
        search.send_keys("from-unmatched")
        row = "#mock-list tr[data-id='from-unmatched']"
        self.wait(lambda: len(self.finds("#mock-list tr[data-id]")) == 1 and self.finds(row),
                  what="search result")
        self.find(row + " [data-action='delete']").click()
        self.wait(lambda: not self.finds(row), what="row gone")
        self.assertEqual(self.api("GET", "/api/v1/mocks/from-unmatched").status, 404)
        self.assertEqual(self.curl(self.base + "/ui-e2e/missing"), "404")
        Select(self.find("#mock-status")).select_by_value("deleted")
        self.shown(row + " [data-action='restore']").click()
        self.wait(lambda: not self.finds(row), what="restored row leaves the deleted list")
        self.assertEqual(self.api("GET", "/api/v1/mocks/from-unmatched").status, 200)
        self.assertEqual(self.curl(self.base + "/ui-e2e/missing"), "200")
        Select(self.find("#mock-status")).select_by_value("live")
        search.send_keys(Keys.CONTROL, "a")
        search.send_keys(Keys.DELETE)
        self.wait(lambda: len(self.finds("#mock-list tr[data-id]")) >= 5, what="all mocks")
        self.shot("mocks")

    def step_run_collection(self):
        self.go("#/runs")
        self.wait(lambda: "ui-runner" in self.find("#runners").text and
                  "online" in self.find("#runners").text, 20, "runner online")
        btn = self.shown("[data-action='run'][data-collection='%s']" % self.collection_id)
        btn.click()
        progress = self.shown("#run-progress")
        seen = set()

        def done():
            seen.add(progress.get_attribute("aria-valuenow"))
            return progress.get_attribute("aria-valuenow") == "100"
        self.wait(done, 40, "run progress to reach 100")
        self.wait(lambda: self.find("#run-status").text in ("succeeded", "passed", "completed"),
                  5, "run succeeded")
        self.assertIn("3 of 3", self.find("#run-count").text)
        self.shown("[data-report='junit']")
        print("run progress values seen: %s" % sorted(seen, key=lambda v: int(v or 0)),
              file=sys.stderr)
        self.shot("runs")
        self.step_load_test()

    def step_load_test(self):
        form = self.shown("#perf-form")
        self.wait(lambda: form.find_elements(By.CSS_SELECTOR, "select[name='col'] option"),
                  what="collections in the load test form")
        vus = form.find_element(By.NAME, "vus")
        vus.clear()
        vus.send_keys("2")
        duration = form.find_element(By.NAME, "duration")
        duration.clear()
        duration.send_keys("2s")
        form.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
        status = self.shown("#perf-status", 20)
        self.assertIn(status.text, ("pending", "queued", "running", "completed"))
        self.wait(lambda: self.find("#perf-status").text == "completed", 40,
                  "load test completed")
        lines = self.finds("#perf-live svg.chart polyline")
        self.assertEqual(len(lines), 2)  # throughput and latency, one point a second
        # a point per second measured (a loaded machine may merge the short run into one)
        self.assertGreaterEqual(len(lines[0].get_attribute("points").split()), 1)
        self.shown("#perf-live a[href$='/report']")
        self.driver.execute_script("document.getElementById('perf-live').scrollIntoView()")
        self.shot("load-test")

    def step_other_views(self):
        for view, ready in (("stores", "#store"), ("admin", "#admin-panel table"), ("health", "#health-status")):
            self.go("#/" + view)
            self.shown(ready)
            self.shot(view)
        # stores: set a key through the form, see it listed
        self.go("#/stores")
        self.shown("#store-key").send_keys("color")
        self.find("#store-value").send_keys('{"name": "blue"}')
        self.find("#store-value").submit()
        self.wait(lambda: "color" in self.find("#store").text and "blue" in
                  self.find("#store").text, what="store key listed")
        self.assertEqual(self.api("GET", "/api/v1/stores/global?namespace=sandbox").json,
                         {"color": {"name": "blue"}})
        # imports: WireMock mappings, preview (stores nothing), then create
        self.go("#/imports")
        Select(self.shown("#import-kind")).select_by_value("wiremock")
        mapping = {"mappings": [{"request": {"method": "GET", "url": "/wm/imported"},
                                 "response": {"status": 200, "jsonBody": {"wm": True}}}]}
        self.driver.execute_script("document.getElementById('import-text').value = arguments[0]",
                                   json.dumps(mapping))
        self.find("#import-preview-btn").click()
        self.wait(lambda: "1 mocks would be created" in self.find("#import-preview").text,
                  what="import preview")
        self.assertEqual(self.curl(self.base + "/wm/imported"), "404")
        self.shot("imports")
        self.find("#import-create").click()
        self.wait(lambda: self.curl(self.base + "/wm/imported") == "200", what="imported mock")
        # tokens: a created secret is shown once
        self.go("#/admin")
        self.shown("[data-tab='tokens']").click()
        self.shown("#admin-panel input[name='name']").send_keys("ui-token", Keys.ENTER)
        secret = self.shown("#token-secret code").text
        self.assertTrue(secret.startswith("mk_"), secret)
        self.go("#/admin")
        self.shown("[data-tab='tokens']").click()
        self.wait(lambda: "ui-token" in self.find("#admin-panel").text, what="token listed")
        self.assertNotIn(secret, self.driver.page_source)

    def step_viewer(self):
        self.find("#logout").click()
        self.shown("#login")
        self.login("vera", VIEWER_PW)
        self.assertEqual(self.finds("#new-mock"), [])
        self.assertEqual(self.finds("[data-action='delete']"), [])
        self.assertTrue(self.finds("#mock-list tr[data-id='ui-hello']"))
        self.go("#/mock?id=ui-hello")
        self.shown("[data-path='http.route']")
        self.assertEqual(self.finds("#mock-save"), [])
        self.assertFalse(self.find("[data-path='http.route']").is_enabled())
        self.shot("mock-viewer")
        # the API refuses the write anyway, with the viewer's own session cookie
        status = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/api/v1/mocks/ui-hello', {method: 'DELETE', credentials: 'same-origin'})
              .then((r) => done(r.status), (e) => done(String(e)));""")
        self.assertEqual(status, 403)
        self.assertEqual(self.api("GET", "/api/v1/mocks/ui-hello").status, 200)
        self.go("#/runs")
        self.shown("#collections table")
        self.assertEqual(self.finds("[data-action='run']"), [])


if __name__ == "__main__":
    missing = browser_missing()
    if missing:
        print("SKIP ui_test: %s (scripts/install-deps.sh installs them)" % missing)
        sys.exit(0)
    ADMIN_BIN, RUNNER_BIN, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
    del sys.argv[1:4]
    services.install_signal_handlers()
    unittest.main()
