"""The open-model check loadgen_e2e.py (one process) and perf_runners_e2e.py (on runners) share:
a 100 ms service on one connection at 20 arrivals/s for 2 s must show the queueing it implies."""

# The load both scripts run against their 100 ms mock (they add its scenario).
ONE_VU_20_PER_S = {"executor": "constant-arrival-rate", "rate": 20, "duration": "2s",
                   "preAllocatedVUs": 1, "maxVUs": 1, "gracefulStop": "10s"}


def assert_queued(tc, r):
    """Arrival k waits for the k before it, so the last one sent waited about (k+1)*100 - k*50
    ms, not 100 ms: r (the run's result) must show that, not hide it. tc: the unittest case."""
    n = r["metrics"]["http_reqs"]["count"]
    tc.assertTrue(16 <= n <= 22, n)
    tc.assertEqual(n + r["rate"]["dropped"], 40)
    tc.assertFalse(r["rate"]["kept"])
    implied = n * 100 - (n - 1) * 50
    got = r["metrics"]["http_req_duration"]["max"]
    # The point is the lower bound (queueing is not hidden); the upper one only guards against
    # nonsense, loosely, since a loaded CI machine adds its own delay.
    tc.assertTrue(0.85 * implied < got < 2.0 * implied, (got, implied))
    tc.assertGreater(r["metrics"]["http_req_duration"]["med"], 300)
