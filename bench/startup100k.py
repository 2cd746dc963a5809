#!/usr/bin/env python3
"""usage: bench/startup100k.py build/cmd/mockarty/mockarty (a Release binary)

Loads 100,000 parameterised mocks over 1,000 namespaces into a fresh admin through the batch
API, restarts it from SQLite and reports time to /health/ready, the CPU it took and RSS."""
import http.client, json, os, resource, shutil, socket, subprocess, sys, tempfile, time
binary = sys.argv[1]
d = tempfile.mkdtemp()
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
port = free_port()
env = dict(os.environ, HTTP_HOST="127.0.0.1", HTTP_PORT=str(port), DB_PATH=d + "/m.db", HTTP_WORKERS="2")
def start():
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1); c.request("GET", "/health/ready")
            r = c.getresponse(); r.read()
            if r.status == 200: return p, time.time() - t0
        except OSError: pass
        time.sleep(0.01)
p, _ = start()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for b in range(100):
    mocks = []
    for i in range(1000):
        n = b * 1000 + i
        mocks.append({"id": "m%d" % n, "namespace": "ns%d" % (n % 1000),
                      "http": {"route": "/api/items/:id/%d" % n, "httpMethod": "GET",
                               "queryParams": [{"path": "q", "value": "v%d" % n, "assertAction": "equals"}],
                               "header": [{"path": "X-T", "value": "t", "assertAction": "equals"}]},
                      "response": {"statusCode": 200, "payload": {"n": n, "ok": True}}})
    c.request("POST", "/api/v1/mocks/batch", json.dumps({"mocks": mocks}), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status == 201, r.status
p.terminate(); p.wait()
p, ready = start()
with open("/proc/%d/stat" % p.pid) as f: st = f.read().split()
tick = os.sysconf("SC_CLK_TCK")
cpu = (int(st[13]) + int(st[14])) / tick
with open("/proc/%d/status" % p.pid) as f: rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
print("100,000 mocks / 1,000 namespaces: ready in %.2f s, %.2f s CPU (user+sys) by then, RSS %d MB, load %s" % (ready, cpu, int(rss) // 1024, os.getloadavg()[0]))
p.terminate(); p.wait(); shutil.rmtree(d)
