"""Retention of finished API test runs and load test results against the real binaries: an admin
with TEST_RUN_RETENTION=2s, TEST_RUN_KEEP=1, PERF_RESULT_RETENTION=2s, PERF_RESULT_KEEP=1 and a
shared runner (api_test and performance). Four finished runs of one collection shrink to the
newest one; a collection run once keeps its run however old it gets; a run still running (its
request answers after 15 s) stays past the retention although a newer finished run of its
collection fills TEST_RUN_KEEP, and goes once it has finished; pruned runs answer 404 and their
task documents (which hold the results) are gone from the database. Three finished load tests of
one name leave the newest result and its one share task. /health's scheduler component counts
what was pruned.
Usage: retention_test.py <mockarty binary> <mockarty-runner binary>"""
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runners_test  # noqa: E402  (its process and HTTP helpers)
from runners_test import Proc, collection, free_port, wait_for  # noqa: E402

ADMIN_BIN = RUNNER_BIN = None
SLOW_MS = 15000


class RetentionTest(unittest.TestCase):
    api = classmethod(runners_test.RunnersTest.api.__func__)
    api2 = classmethod(runners_test.RunnersTest.api2.__func__)
    get_ok = classmethod(runners_test.RunnersTest.get_ok.__func__)

    @classmethod
    def setUpClass(cls):
        env = runners_test.admin_env(cls, "retention-e2e-", TEST_RUN_RETENTION="2s",
                                     TEST_RUN_KEEP="1", PERF_RESULT_RETENTION="2s",
                                     PERF_RESULT_KEEP="1", PERF_ALLOWED_TARGETS="127.0.0.1:*")
        env["HTTP_WORKERS"] = "2"
        cls.procs = [Proc([ADMIN_BIN], env, os.path.join(cls.tmp, "admin.log"))]
        try:
            wait_for(lambda: cls.get_ok("/health/ready"), 30, "the admin")
            for route, delay in (("/hello", 0), ("/slow/x", SLOW_MS), ("/fast/x", 0)):
                st, body = cls.api2("POST", "/api/v1/mocks", {
                    "http": {"route": route, "httpMethod": "GET"},
                    "response": {"statusCode": 200, "delay": delay,
                                 "payload": {"hello": "world"}}})
                assert st in (200, 201), body
            token = cls.api2("POST", "/api/v1/auth/tokens",
                             {"name": "runners", "kind": "integration"})[1]["token"]
            renv = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % cls.grpc, API_TOKEN=token,
                        RUNNER_NAME="r1", SHARED="true", RUNNER_HTTP_PORT=str(free_port()),
                        RUNNER_HTTP_HOST="127.0.0.1", CAPABILITIES="api_test,performance",
                        MAX_CONCURRENT="2")
            cls.procs.append(Proc([RUNNER_BIN], renv, os.path.join(cls.tmp, "r1.log")))
            wait_for(lambda: any(r.get("state") == "online"
                                 for r in cls.api2("GET", "/api/v1/runners")[1]["items"]),
                     20, "the runner")
            cls.cids = {}
            for name, path in (("often", "/hello"), ("rarely", "/hello"), ("mixed", "/x")):
                st, body = cls.api2("POST", "/api/v1/api-tester/collections",
                                    {"name": name, "collection": collection(name, [(name, path)])})
                assert st == 201, body
                cls.cids[name] = body["id"]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        codes = [p.stop() for p in cls.procs]
        assert codes[0] == 0, "admin exited %s: %s" % (codes[0], cls.procs[0].log()[-3000:])

    def run_collection(self, name, prefix=""):
        st, run = self.api2("POST", "/api/v1/api-tester/collections/%s/execute" % self.cids[name],
                            {"baseUrl": "http://127.0.0.1:%d%s" % (self.http, prefix)})
        self.assertEqual(st, 202, run)
        return run["id"]

    def run_status(self, rid):
        st, r = self.api2("GET", "/api/v1/api-tester/test-runs/" + rid)
        return r.get("status") if st == 200 else st

    def wait_finished(self, rid):
        wait_for(lambda: self.run_status(rid) not in ("pending", "running"), 20,
                 "run %s to finish" % rid)

    def run_ids(self, name):
        st, body = self.api2("GET", "/api/v1/api-tester/test-runs?collectionId=" + self.cids[name])
        self.assertEqual(st, 200, body)
        return [r["id"] for r in body["items"]]

    def stored(self, kind, ids):
        con = sqlite3.connect(self.db)
        try:
            return sorted(r[0] for r in con.execute(
                "SELECT id FROM docs WHERE kind=? AND id IN (%s)" % ",".join("?" * len(ids)),
                [kind] + list(ids)))
        finally:
            con.close()

    def test_perf_results(self):
        # Three finished load tests of no stored config (grouped by their name): the newest stays,
        # with its share's task; the others, their tasks and their results go.
        ids = []
        for _ in range(3):
            st, task = self.api2("POST", "/api/v1/perf/run", {
                "name": "retained", "vus": 1, "iterations": 5,
                "scenario": {"requests": [{"method": "GET",
                                           "url": "http://127.0.0.1:%d/hello" % self.http}]}})
            self.assertEqual(st, 202, task)
            ids.append(task["id"])
            wait_for(lambda: self.api2("GET", "/api/v1/perf-results/" + ids[-1])[1]
                     .get("status") == "completed", 20, "load test %s" % ids[-1])
            time.sleep(0.01)  # distinct createdAt
        wait_for(lambda: self.stored("perf_result", ids) == [ids[-1]], 8, "old results pruned")
        for rid in ids[:-1]:
            self.assertEqual(self.api2("GET", "/api/v1/perf-results/" + rid)[0], 404)
        self.assertEqual(self.api2("GET", "/api/v1/perf-results/" + ids[-1])[1]["status"],
                         "completed")
        con = sqlite3.connect(self.db)
        try:
            shares = con.execute("SELECT count(*) FROM docs WHERE kind='task' AND "
                                 "json LIKE '%\"capability\":\"performance\"%'").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(shares, 1)
        st, health = self.api2("GET", "/health")
        ret = health["components"]["scheduler"]["retention"]
        self.assertEqual(ret["pruned"]["perfResults"], 2, ret)
        self.assertEqual((ret["perfResultRetentionMs"], ret["perfResultKeep"]), (2000, 1), ret)

    def test_retention(self):
        slow = self.run_collection("mixed", "/slow")
        rarely = self.run_collection("rarely")
        self.wait_finished(rarely)
        fast = self.run_collection("mixed", "/fast")
        self.wait_finished(fast)
        often = []
        for _ in range(4):
            often.append(self.run_collection("often"))
            self.wait_finished(often[-1])
        self.assertEqual(self.run_status(slow), "running")
        self.assertEqual(sorted(self.run_ids("often")), sorted(often))

        # Past the retention (2 s, passes every second) only the newest run of "often" is left.
        wait_for(lambda: self.run_ids("often") == [often[-1]], 8, "old runs pruned")
        t_pruned = time.time()
        for rid in often[:-1]:
            self.assertEqual(self.run_status(rid), 404)
        # Gone from the database: the run documents and their tasks (a run's id is its task's).
        self.assertEqual(self.stored("apitest_run", often), [often[-1]])
        self.assertEqual(self.stored("task", often), [often[-1]])
        self.assertEqual(self.run_status(often[-1]), "completed")
        # The only run of "rarely" is older than the retention and stays (TEST_RUN_KEEP=1).
        self.assertEqual(self.run_ids("rarely"), [rarely])
        # The slow run is far past the retention and beyond the newest finished run of its
        # collection (the one TEST_RUN_KEEP keeps), but still running: kept.
        st, run = self.api2("GET", "/api/v1/api-tester/test-runs/" + slow)
        self.assertEqual((st, run["status"]), (200, "running"))
        self.assertGreater(time.time() * 1000 - run["createdAt"], 2500)
        self.assertEqual(sorted(self.run_ids("mixed")), sorted([slow, fast]))

        st, health = self.api2("GET", "/health")
        ret = health["components"]["scheduler"]["retention"]
        self.assertEqual(ret["pruned"]["testRuns"], 3, ret)
        self.assertEqual((ret["testRunRetentionMs"], ret["testRunKeep"]), (2000, 1), ret)
        self.assertLessEqual(abs(ret["lastPruneAt"] / 1000 - t_pruned), 3, ret)
        self.assertNotIn("lastError", ret)

        # Once it has ended it goes (the newer fast run is the one kept).
        self.wait_finished(slow)
        wait_for(lambda: self.run_ids("mixed") == [fast], 5, "the slow run pruned once ended")
        self.assertEqual(self.stored("task", [slow, fast]), [fast])
        st, health = self.api2("GET", "/health")
        self.assertEqual(health["components"]["scheduler"]["retention"]["pruned"]["testRuns"], 4)
        self.assertEqual(self.run_ids("rarely"), [rarely])
        self.assertEqual(self.run_ids("often"), [often[-1]])


if __name__ == "__main__":
    ADMIN_BIN, RUNNER_BIN = sys.argv[1], sys.argv[2]
    runners_test.ADMIN_BIN, runners_test.RUNNER_BIN = ADMIN_BIN, RUNNER_BIN
    del sys.argv[1:]
    unittest.main(verbosity=2)
