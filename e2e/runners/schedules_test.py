"""Environments and scheduled runs against the real binaries: an admin and a shared runner.
Environments: CRUD, one active per namespace, a run without variables of its own takes the active
one, environmentId picks another. Schedules: a six-field cron fires runs that finish, disabling
stops them, bad crons and unknown collections are refused, the scheduler shows in /health, and a
firing time missed while the admin was down runs once after the restart, not again after the
next restart. Perf schedules are checked for validation.
Usage: schedules_test.py <mockarty binary> <mockarty-runner binary>"""
import calendar
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runners_test  # noqa: E402  (its process and HTTP helpers)
from runners_test import Proc, collection, free_port, wait_for  # noqa: E402

ADMIN_BIN = RUNNER_BIN = None


class SchedulesTest(unittest.TestCase):
    api = classmethod(runners_test.RunnersTest.api.__func__)
    api2 = classmethod(runners_test.RunnersTest.api2.__func__)
    get_ok = classmethod(runners_test.RunnersTest.get_ok.__func__)

    @classmethod
    def setUpClass(cls):
        cls.env = runners_test.admin_env(cls, "schedules-e2e-")
        cls.procs = []
        cls.admin = cls.start_admin("admin")
        try:
            st, body = cls.api2("POST", "/api/v1/mocks", {
                "http": {"route": "/hello", "httpMethod": "GET"},
                "response": {"statusCode": 200, "payload": {"hello": "world"}}})
            assert st in (200, 201), body
            token = cls.api2("POST", "/api/v1/auth/tokens",
                             {"name": "runners", "kind": "integration"})[1]["token"]
            renv = dict(os.environ, COORDINATOR_ADDR="127.0.0.1:%d" % cls.grpc, API_TOKEN=token,
                        RUNNER_NAME="r1", SHARED="true", RUNNER_HTTP_PORT=str(free_port()),
                        RUNNER_HTTP_HOST="127.0.0.1", CAPABILITIES="api_test")
            cls.procs.append(Proc([RUNNER_BIN], renv, os.path.join(cls.tmp, "r1.log")))
            st, body = cls.api2("POST", "/api/v1/api-tester/collections",
                                {"name": "hello", "collection":
                                 collection("hello", [("hello", "/hello")])})
            assert st == 201, body
            cls.cid = body["id"]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_admin(cls, name):
        p = Proc([ADMIN_BIN], cls.env, os.path.join(cls.tmp, name + ".log"))
        cls.procs.insert(0, p)
        wait_for(lambda: cls.get_ok("/health/ready"), 30, "the admin (%s)" % name)
        return p

    @classmethod
    def tearDownClass(cls):
        codes = [p.stop() for p in cls.procs]
        assert codes[0] == 0, "admin exited %s: %s" % (codes[0], cls.procs[0].log()[-3000:])

    def runs_of(self, cid):
        st, body = self.api2("GET", "/api/v1/api-tester/test-runs?collectionId=" + cid)
        self.assertEqual(st, 200, body)
        return body["items"] if isinstance(body, dict) else body

    def wait_run(self, rid, timeout=40):
        def done():
            st, r = self.api2("GET", "/api/v1/api-tester/test-runs/" + rid)
            return r if r.get("status") not in ("pending", "running", "queued") else None
        return wait_for(done, timeout, "run %s to finish" % rid)

    def assertPassed(self, run):
        self.assertEqual((run["status"], run["passed"], run["failed"]), ("completed", 1, 0), run)

    def env_doc(self, name, base):
        st, body = self.api2("POST", "/api/v1/api-tester/environments",
                             {"name": name, "variables": {"baseUrl": base}})
        self.assertEqual(st, 201, body)
        self.assertFalse(body["isActive"])
        return body["id"]

    def test_1_environments(self):
        good = self.env_doc("local", "http://127.0.0.1:%d" % self.http)
        bad = self.env_doc("nowhere", "http://127.0.0.1:%d" % free_port())
        st, body = self.api2("GET", "/api/v1/api-tester/environments/active")
        self.assertEqual(st, 404, body)

        st, body = self.api2("POST", "/api/v1/api-tester/environments/%s/activate" % bad)
        self.assertEqual((st, body["isActive"]), (200, True))
        st, body = self.api2("POST", "/api/v1/api-tester/environments/%s/activate" % good)
        self.assertEqual(st, 200, body)
        st, envs = self.api2("GET", "/api/v1/api-tester/environments")
        active = {e["name"]: e["isActive"] for e in envs}
        self.assertEqual(active, {"local": True, "nowhere": False})
        st, body = self.api2("GET", "/api/v1/api-tester/environments/active")
        self.assertEqual((st, body["id"]), (200, good))

        # No baseUrl of its own: the active environment gives it.
        st, run = self.api2("POST", "/api/v1/api-tester/collections/%s/execute" % self.cid, {})
        self.assertEqual(st, 202, run)
        self.assertPassed(self.wait_run(run["id"]))
        # environmentId wins over the active one: nothing listens there.
        st, run = self.api2("POST", "/api/v1/api-tester/collections/%s/execute" % self.cid,
                            {"environmentId": bad})
        self.assertEqual(st, 202, run)
        r = self.wait_run(run["id"])
        self.assertTrue(r["status"] == "failed" or r["failed"] > 0, r)
        st, body = self.api2("POST", "/api/v1/api-tester/collections/%s/execute" % self.cid,
                             {"environmentId": "no-such-env"})
        self.assertEqual(st, 404, body)
        self.assertIn("no-such-env", body["error"])

        st, body = self.api2("PUT", "/api/v1/api-tester/environments/" + bad,
                             {"name": "renamed", "variables": {"baseUrl": 7}})
        self.assertEqual(st, 400, body)
        self.assertIn("variables.baseUrl", body["error"])
        st, body = self.api2("POST", "/api/v1/api-tester/environments", {"variables": {}})
        self.assertEqual(st, 400, body)
        self.assertIn("name", body["error"])
        st, body = self.api2("DELETE", "/api/v1/api-tester/environments/" + bad)
        self.assertEqual(st, 200, body)
        st, body = self.api2("GET", "/api/v1/api-tester/environments/" + bad)
        self.assertEqual(st, 404, body)
        # The active one stays for the schedules below (they bring no baseUrl).

    def test_2_schedules(self):
        # The active environment of test_1 gives the runs their baseUrl.
        st, body = self.api2("POST", "/api/v1/api-tester/schedules",
                             {"collectionId": self.cid, "cron": "* 25 * * *"})
        self.assertEqual(st, 400, body)
        self.assertIn("hour: 25", body["error"])
        st, body = self.api2("POST", "/api/v1/api-tester/schedules",
                             {"collectionId": "nope", "cron": "* * * * *"})
        self.assertEqual(st, 404, body)
        st, body = self.api2("POST", "/api/v1/perf-schedules",
                             {"configId": "nope", "cron": "@daily"})
        self.assertEqual(st, 404, body)

        before = len(self.runs_of(self.cid))
        st, sched = self.api2("POST", "/api/v1/api-tester/schedules",
                              {"collectionId": self.cid, "cron": "*/2 * * * * *"})
        self.assertEqual(st, 201, sched)
        self.assertTrue(sched["enabled"])
        self.assertGreater(sched["nextFireAt"], int(time.time() * 1000) - 1000)
        wait_for(lambda: len(self.runs_of(self.cid)) >= before + 2, 15, "two scheduled runs")
        st, sched = self.api2("GET", "/api/v1/api-tester/schedules/" + sched["id"])
        self.assertTrue(sched.get("lastRunId"), sched)
        self.assertPassed(self.wait_run(sched["lastRunId"]))
        st, health = self.api2("GET", "/health")
        comp = health["components"]["scheduler"]
        self.assertEqual(comp["status"], "up")
        self.assertGreaterEqual(comp["fired"], 2)

        st, body = self.api2("PUT", "/api/v1/api-tester/schedules/" + sched["id"],
                             {"enabled": False})
        self.assertEqual((st, body["enabled"]), (200, False))
        time.sleep(0.5)  # a firing already under way when the change landed
        stopped = len(self.runs_of(self.cid))
        time.sleep(4)
        self.assertEqual(len(self.runs_of(self.cid)), stopped)
        st, _ = self.api2("DELETE", "/api/v1/api-tester/schedules/" + sched["id"])
        self.assertEqual(st, 200)

    def test_3_missed_while_down(self):
        # A firing time 3 s from now (UTC), missed while the admin is down: one run after the
        # restart, none after the next.
        t = time.gmtime(time.time() + 3)
        cron = "%d %d %d %d %d *" % (t.tm_sec, t.tm_min, t.tm_hour, t.tm_mday, t.tm_mon)
        st, body = self.api2("POST", "/api/v1/api-tester/collections",
                             {"name": "once", "collection": collection("once", [("hello", "/hello")])})
        cid = body["id"]
        st, sched = self.api2("POST", "/api/v1/api-tester/schedules",
                              {"collectionId": cid, "cron": cron})
        self.assertEqual(st, 201, sched)
        self.assertEqual(sched["nextFireAt"], calendar.timegm(t) * 1000)
        self.assertEqual(self.procs[0].stop(), 0)
        self.procs.pop(0)
        time.sleep(max(0, calendar.timegm(t) - time.time()) + 1.5)
        self.start_admin("admin-2")
        wait_for(lambda: len(self.runs_of(cid)) >= 1, 10, "the missed run")
        time.sleep(1)
        self.assertEqual(len(self.runs_of(cid)), 1)
        self.assertEqual(self.procs[0].stop(), 0)
        self.procs.pop(0)
        self.start_admin("admin-3")
        time.sleep(2)
        self.assertEqual(len(self.runs_of(cid)), 1)


if __name__ == "__main__":
    ADMIN_BIN, RUNNER_BIN = sys.argv[1], sys.argv[2]
    runners_test.ADMIN_BIN, runners_test.RUNNER_BIN = ADMIN_BIN, RUNNER_BIN
    del sys.argv[1:]
    unittest.main(verbosity=2)
