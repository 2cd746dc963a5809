"""Dynamic and stateful mocks against the real admin binary: templates, fakers, the gS/cS/mS
stores on the memory and the Redis storage layer (a real redis-server), faults seen by curl,
delays and dribbled bodies. Usage: stores_test.py <mockarty binary>"""
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
from mockarty_proc import Mockarty  # noqa: E402
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

BINARY = sys.argv[1]


def run_together(fn, n):
    """fn in n threads at once; returns when every one has finished."""
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def create(node, mock):
    status, body, raw, _ = node.request("POST", "/api/v1/mocks", mock)
    assert status in (200, 201), "create failed: %s %s" % (status, raw[:300])
    return body


def get(node, path, headers=None, method="GET", body=None):
    return node.request(method, path, body=body, headers=headers)


def scenario_templates(node):
    create(node, {"id": "tpl", "http": {"route": "/orders/:id", "httpMethod": "POST"},
                  "response": {"statusCode": 201,
                               "headers": {"X-Order": ["order-$.pathParam.id"]},
                               "payload": {"id": "$.pathParam.id", "count": "$.req.count",
                                           "who": "$.body.user.name",
                                           "msg": "Order $.pathParam.id for $.req.user.name",
                                           "q": "$.queryParam.q", "trace": "$.reqHeader.X-Trace[0]",
                                           "missing": "$.req.nothing",
                                           "uuid": "$.fake.UUID", "n": "$.fake.IntBetween(5,9)",
                                           "literal": "costs $.5"}}})
    status, body, raw, resp = get(node, "/orders/42?q=hi", headers={"X-Trace": "t-1"},
                                  method="POST", body={"count": 3, "user": {"name": "Ann \"A\""}})
    check(status == 201, "templated mock answers 201 (%s %s)" % (status, raw[:200]))
    body = body or {}
    check(body.get("id") == "42" and body.get("count") == 3, "path param and typed body value")
    check(body.get("who") == 'Ann "A"', "$.body alias with escaping")
    check(body.get("msg") == 'Order 42 for Ann "A"', "text rendering inside a string")
    check(body.get("q") == "hi" and body.get("trace") == "t-1", "query param and header")
    check(body.get("missing") is None and "missing" in body, "missing value renders as null")
    check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                       str(body.get("uuid"))) is not None, "UUID faker")
    check(isinstance(body.get("n"), int) and 5 <= body["n"] <= 9, "IntBetween is a number in range")
    check(body.get("literal") == "costs $.5", "a literal $. stays")
    check(resp.getheader("X-Order") == "order-42", "templated header value")
    # Same seed, same response; another seed, another one.
    a = get(node, "/orders/1", headers={"X-Mockarty-Seed": "7"}, method="POST", body={})[2]
    b = get(node, "/orders/1", headers={"X-Mockarty-Seed": "7"}, method="POST", body={})[2]
    c = get(node, "/orders/1", headers={"X-Mockarty-Seed": "8"}, method="POST", body={})[2]
    check(a == b and a != c, "X-Mockarty-Seed makes fakers reproducible")
    status, fakers, _, _ = get(node, "/api/v1/fakers")
    names = {f["name"].lower() for f in (fakers or [])}
    check(status == 200 and {"uuid", "iban", "creditcardnumber", "email"} <= names,
          "GET /api/v1/fakers lists the generators")
    # Templates that cannot be compiled are refused at save time, naming field and position.
    for payload, needle in [({"a": "$.fake.NoSuchFaker"}, "unknown faker"),
                            ({"a": "$.fake.IntBetween(5,1)"}, "greater than"),
                            ({"a": "$.fake.IntBetween(1,2"}, "unbalanced")]:
        status, err, raw, _ = node.request("POST", "/api/v1/mocks", {
            "http": {"route": "/bad"}, "response": {"payload": payload}})
        check(status == 400 and needle in (err or {}).get("error", "")
              and "response.payload.a" in (err or {}).get("error", ""),
              "bad template refused with 400 naming the field: %s" % raw[:200])
    deep = "x"
    for _ in range(80):
        deep = [deep]
    status, err, raw, _ = node.request("POST", "/api/v1/mocks", {
        "http": {"route": "/deep"}, "response": {"payload": deep}})
    check(status == 400, "payload nested too deep refused (%s)" % status)


def scenario_chain_login(node):
    create(node, {"id": "login", "chainId": "sess", "http": {"route": "/login", "httpMethod": "POST"},
                  "extract": {"cStore": {"token": "$.req.token", "user": "$.req.user"}},
                  "response": {"statusCode": 200, "payload": {"ok": True, "token": "$.cS.token"}}})
    create(node, {"id": "profile", "chainId": "sess",
                  "http": {"route": "/profile", "httpMethod": "GET"},
                  "response": {"statusCode": 200,
                               "payload": {"token": "$.cS.token", "user": "$.cS.user",
                                           "greeting": "hello $.cS.user"}}})
    status, body, _, _ = get(node, "/login", method="POST", body={"token": "abc123", "user": "ann"})
    check(status == 200 and (body or {}).get("token") == "abc123",
          "login sees the value it extracted (%s %s)" % (status, body))
    status, body, _, _ = get(node, "/profile")
    check(status == 200 and body == {"token": "abc123", "user": "ann", "greeting": "hello ann"},
          "profile reads the chain store (%s)" % body)
    status, store, _, _ = get(node, "/api/v1/stores/chain/sess")
    check(status == 200 and store == {"token": "abc123", "user": "ann"},
          "GET /api/v1/stores/chain/sess (%s)" % store)


def scenario_stores_api(node, backend):
    status, body, _, _ = node.request("POST", "/api/v1/stores/global",
                                      {"key": "color", "value": {"r": 1}, "namespace": "team-a"})
    check(status == 200, "POST global store")
    status, body, _, _ = get(node, "/api/v1/stores/global?namespace=team-a")
    check(body == {"color": {"r": 1}}, "global store of team-a (%s)" % body)
    status, body, _, _ = get(node, "/api/v1/stores/global?namespace=team-b")
    check(body == {}, "namespaces are isolated (%s)" % body)
    status, _, _, _ = node.request("DELETE", "/api/v1/stores/global/color?namespace=team-a")
    status, body, _, _ = get(node, "/api/v1/stores/global?namespace=team-a")
    check(body == {}, "DELETE a global key (%s)" % body)
    big = "x" * (70 * 1024)
    status, err, _, _ = node.request("POST", "/api/v1/stores/global", {"key": "big", "value": big})
    check(status == 400 and "STORE_MAX_VALUE_BYTES" in (err or {}).get("error", ""),
          "value over STORE_MAX_VALUE_BYTES refused (%s %s)" % (status, err))
    status, err, _, _ = node.request("POST", "/api/v1/stores/global", raw=b'{"key":"a\\u0000b","value":1}',
                                     headers={"Content-Type": "application/json"})
    check(status == 400 and "NUL" in (err or {}).get("error", ""), "key with NUL refused")
    # A mock store seeded from mStore, incremented per call.
    create(node, {"id": "mcount", "http": {"route": "/mcount"}, "mStore": {"n": 10},
                  "extract": {"mStore": {"n": "$.increment($.mS.n)"}},
                  "response": {"payload": {"n": "$.mS.n"}}})
    first = get(node, "/mcount")[1]
    second = get(node, "/mcount")[1]
    check(first == {"n": 11} and second == {"n": 12}, "mStore seed + increment (%s %s)" % (first, second))


def scenario_counter(node, clients=2, per_client=500):
    create(node, {"id": "counter", "http": {"route": "/hit"},
                  "extract": {"gStore": {"hits": "$.increment($.gS.hits)"}},
                  "response": {"payload": {"hits": "$.gS.hits"}}})
    errors = []

    def client():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        for _ in range(per_client):
            conn.request("GET", "/hit")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(resp.status)
        conn.close()

    run_together(client, clients)
    status, store, _, _ = get(node, "/api/v1/stores/global")
    check(not errors, "counter requests all answered 200 (%s errors)" % len(errors))
    check(store.get("hits") == clients * per_client,
          "counter incremented by %d clients x %d ends at exactly %d (got %s)"
          % (clients, per_client, clients * per_client, store.get("hits")))


def gql(node, query):
    return node.request("POST", "/graphql", {"query": query})


def scenario_graphql(node, clients=4, per_client=50):
    """GraphQL mocks run extract and store templates like HTTP mocks: a counter, the fields of
    one request (several mocks, chain and mock stores) in order, graphqlErrors reading a store,
    and concurrent clients each counted once."""
    create(node, {"id": "g-hits", "graphql": {"operation": "query", "field": "hits"},
                  "extract": {"gStore": {"gn": "$.increment($.gS.gn)"}},
                  "response": {"payload": {"data": {"hits": "$.gS.gn"}}}})
    first, second = gql(node, "{ hits }"), gql(node, "{ hits }")
    check(first[0] == 200 and first[1] == {"data": {"hits": 1}}
          and second[1] == {"data": {"hits": 2}},
          "GraphQL counter answers 1 then 2 (%s %s)" % (first[2][:200], second[2][:200]))
    check(get(node, "/api/v1/stores/global")[1].get("gn") == 2,
          "the GraphQL counter is in the global store")
    create(node, {"id": "g-again", "chainId": "gchain",
                  "graphql": {"operation": "query", "field": "again"},
                  "mStore": {"seen": 10},
                  "extract": {"cStore": {"last": "$.gS.gn"},
                              "mStore": {"seen": "$.increment($.mS.seen)"}},
                  "response": {"payload": {"data": {"again": {"g": "$.gS.gn", "c": "$.cS.last",
                                                              "m": "$.mS.seen"}}},
                               "graphqlErrors": [{"message": "chain saw $.cS.last"}]}})
    status, body, raw, _ = gql(node, "{ hits again { g c m } h2: hits __typename }")
    data = (body or {}).get("data", {})
    check(status == 200 and data.get("hits") == 3 and data.get("h2") == 4
          and data.get("again") == {"g": 3, "c": 3, "m": 11} and data.get("__typename") == "Query",
          "one request's fields see each other's store writes in order (%s)" % raw[:300])
    errors = (body or {}).get("errors") or [{}]
    check(errors[0].get("message") == "chain saw 3",
          "graphqlErrors render with the stores (%s)" % errors)
    check(get(node, "/api/v1/stores/chain/gchain")[1] == {"last": 3},
          "the GraphQL mock's chain store (%s)" % get(node, "/api/v1/stores/chain/gchain")[1])
    bad = []

    def client():
        for _ in range(per_client):
            st, b, _, _ = gql(node, "{ hits }")
            if st != 200 or not isinstance(((b or {}).get("data") or {}).get("hits"), int):
                bad.append((st, b))

    run_together(client, clients)
    total = get(node, "/api/v1/stores/global")[1].get("gn")
    check(not bad and total == 4 + clients * per_client,
          "GraphQL counter under %d concurrent clients counts each call once (%s, %d bad)"
          % (clients, total, len(bad)))


def scenario_soap(node):
    """A SOAP mock counting its calls: the template reads the operation's content and a store,
    with Redis too (where the answer waits for the store on the loop)."""
    create(node, {"id": "soap-count", "soap": {"path": "/ws/count", "method": "Ping"},
                  "extract": {"gStore": {"pings": "$.increment($.gS.pings)"}},
                  "response": {"payload": {"PingResponse": {"echo": "$.body.msg",
                                                            "n": "$.gS.pings"}}}})
    env = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
           '<Ping><msg>hi</msg></Ping></s:Body></s:Envelope>')
    answers = []
    for _ in range(2):
        status, _, raw, _ = node.request("POST", "/ws/count", raw=env.encode(),
                                         headers={"Content-Type": "text/xml", "SOAPAction": "Ping"})
        answers.append((status, raw.decode(errors="replace")))
    check(all(st == 200 for st, _ in answers) and "<echo>hi</echo>" in answers[1][1]
          and "<n>1</n>" in answers[0][1] and "<n>2</n>" in answers[1][1],
          "SOAP counter reads the operation's content and counts 1, 2 (%s)" % answers)
    status, entries, _, _ = get(node, "/api/v1/requests?mockId=soap-count")
    text = json.dumps(entries)
    check(status == 200 and '"soap"' in text and "Ping" in text,
          "the SOAP calls are journaled with protocol and operation (%s)" % text[:300])


def scenario_storeless_refused(node):
    """gRPC, WebSocket and SSE mocks render without stores: such a mock is refused, naming the
    field, rather than served with its stores silently left out."""
    why = ": stores ($.gS, $.cS, $.mS, $.increment, extract) are not available in "
    grpc = {"service": "shop.Cart", "method": "Add"}
    cases = [
        ({"grpc": grpc, "extract": {"gStore": {"n": "$.increment($.gS.n)"}},
          "response": {"payload": {}}}, "extract" + why + "gRPC mocks"),
        ({"grpc": grpc, "response": {"payload": {"n": "$.gS.n"}}},
         "response.payload" + why + "gRPC mocks"),
        ({"socket": {"route": "/ws"}, "extract": {"cStore": {"n": "1"}}, "response": {}},
         "extract" + why + "WebSocket mocks"),
        ({"socket": {"route": "/ws"},
          "response": {"sseEventChain": {"events": [{"data": {"n": "$.mS.n"}}]}}},
         "response.sseEventChain.events[0].data" + why + "WebSocket mocks"),
        ({"sse": {"eventPath": "/events"}, "extract": {"gStore": {"n": "1"}},
          "response": {"sseEventChain": {"events": [{"data": "x"}]}}}, "extract" + why + "SSE mocks"),
    ]
    for mock, msg in cases:
        status, err, raw, _ = node.request("POST", "/api/v1/mocks", mock)
        check(status == 400 and (err or {}).get("error") == msg,
              "refused: %s (%s %s)" % (msg, status, raw[:200]))


def curl(port, path, extra=()):
    t0 = time.time()
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "10",
                        *extra, "http://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, text=True)
    return p.returncode, time.time() - t0, p.stderr.strip()


def scenario_faults(node):
    expected = {"EMPTY_RESPONSE": {52}, "CONNECTION_RESET_BY_PEER": {56},
                "MALFORMED_RESPONSE_CHUNK": {56, 18}, "RANDOM_DATA_THEN_CLOSE": {1, 8, 56}}
    for fault, codes in expected.items():
        create(node, {"id": "f-" + fault, "http": {"route": "/fault/" + fault},
                      "response": {"statusCode": 200, "fault": fault, "payload": "never"}})
        rc, _, err = curl(node.port, "/fault/" + fault)
        check(rc in codes, "%s seen by curl as exit %s (got %d: %s)" % (fault, codes, rc, err))
    # The server keeps serving after every fault.
    check(get(node, "/api/v1/mocks")[0] == 200, "server alive after faults")
    create(node, {"id": "slow", "http": {"route": "/slow"},
                  "response": {"delayDistribution": {"type": "uniform", "lower": 200, "upper": 300},
                               "payload": {"ok": 1}}})
    create(node, {"id": "lognormal", "http": {"route": "/lognormal"},
                  "response": {"delayDistribution": {"type": "lognormal", "median": 50, "sigma": 0.1},
                               "payload": {"ok": 1}}})
    create(node, {"id": "dribble", "http": {"route": "/dribble"},
                  "response": {"chunkedDribbleDelay": {"numberOfChunks": 5, "totalDuration": 500},
                               "payload": "0123456789" * 10}})
    # Delays do not block: a slow call and a fast one in parallel, the fast one is fast.
    results = {}

    def run(name, path):
        results[name] = curl(node.port, path)
        results[name + "_end"] = time.time()

    slow = threading.Thread(target=run, args=("slow", "/slow"))
    slow.start()
    time.sleep(0.02)
    rc, fast_t, _ = curl(node.port, "/api/v1/fakers")
    fast_end = time.time()
    slow.join()
    rc_slow, slow_t, _ = results["slow"]
    check(rc_slow == 0 and 0.19 <= slow_t <= 1.5, "uniform delay 200-300 ms (took %.3f s)" % slow_t)
    # Judged by order, not by a wall-clock bound a loaded machine can miss: a delay that blocked
    # the loop would hold the fast call until the slow one is answered.
    check(fast_end < results["slow_end"],
          "a delayed response does not block others (fast %.3f s, ended after the slow one)" %
          fast_t)
    rc, t, _ = curl(node.port, "/lognormal")
    check(rc == 0 and 0.025 <= t <= 1.0, "lognormal delay around 50 ms (took %.3f s)" % t)
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-",
                        "http://127.0.0.1:%d/dribble" % node.port], capture_output=True, text=True)
    t0 = time.time()
    rc, t, _ = curl(node.port, "/dribble")
    check(p.returncode == 0 and p.stdout.endswith("0123456789" * 10), "dribbled body arrives whole")
    check("chunked" in p.stdout.lower(), "dribbled body uses chunked transfer encoding")
    check(0.35 <= t <= 2.0, "dribble spread over ~500 ms (took %.3f s)" % t)
    for bad, needle in [({"type": "uniform", "lower": 5, "upper": 1}, "below lower"),
                        ({"type": "gamma"}, "not one of")]:
        status, err, _, _ = node.request("POST", "/api/v1/mocks", {
            "http": {"route": "/x"}, "response": {"delayDistribution": bad}})
        check(status == 400 and needle in (err or {}).get("error", ""), "bad delayDistribution 400")
    status, err, _, _ = node.request("POST", "/api/v1/mocks", {
        "http": {"route": "/x"}, "response": {"fault": "EXPLODE"}})
    check(status == 400 and "fault" in (err or {}).get("error", ""), "unknown fault 400")


def scenario_redis_down(node, redis):
    create(node, {"id": "static", "http": {"route": "/static"}, "response": {"payload": {"s": 1}}})
    create(node, {"id": "uses-store", "http": {"route": "/uses-store"},
                  "response": {"payload": {"v": "$.gS.hits"}}})
    redis.stop()
    try:
        status, body, _, _ = get(node, "/uses-store")
        check(status == 503 and (body or {}).get("code") == "unavailable",
              "store-using mock answers 503 unavailable with Redis down (%s %s)" % (status, body))
        status, body, _, _ = get(node, "/static")
        check(status == 200 and body == {"s": 1}, "mock without stores still served with Redis down")
        status, body, raw, _ = gql(node, "{ hits }")
        check(status == 503 and ((body or {}).get("errors") or [{}])[0].get("extensions")
              == {"code": "STORE_UNAVAILABLE"},
              "a GraphQL mock using stores answers 503 STORE_UNAVAILABLE (%s %s)"
              % (status, raw[:200]))
        status, body, _, _ = get(node, "/api/v1/stores/global")
        check(status == 503 and (body or {}).get("code") == "unavailable", "stores API 503")
    finally:
        redis.start()
    deadline = time.time() + 5
    status = 0
    while time.time() < deadline:
        status = get(node, "/uses-store")[0]
        if status == 200:
            break
        time.sleep(0.1)
    check(status == 200, "store-using mock works again once Redis is back")


def scenario_redis_load(node, redis, clients=8, per_client=300):
    """The counter under concurrent load on Redis: every increment counted exactly once, every
    response shows its own increment (no two alike); then Redis stops in the middle of the load:
    answers turn into fast 503s, and come back once Redis is restarted."""
    import http.client
    create(node, {"id": "load-counter", "http": {"route": "/load-hit"},
                  "extract": {"gStore": {"load_hits": "$.increment($.gS.load_hits)"}},
                  "response": {"payload": {"hits": "$.gS.load_hits"}}})
    seen, errors = [], []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        for _ in range(per_client):
            conn.request("GET", "/load-hit")
            resp = conn.getresponse()
            body = resp.read()
            with lock:
                if resp.status != 200:
                    errors.append((resp.status, body[:200]))
                else:
                    seen.append(json.loads(body)["hits"])
        conn.close()

    run_together(client, clients)
    total = clients * per_client
    status, store, _, _ = get(node, "/api/v1/stores/global")
    check(not errors, "load: every request answered 200 (%d errors, first %s)"
          % (len(errors), errors[:1]))
    check((store or {}).get("load_hits") == total,
          "load: %d clients x %d requests leave the counter at exactly %d (got %s)"
          % (clients, per_client, total, (store or {}).get("load_hits")))
    check(sorted(seen) == list(range(1, total + 1)),
          "load: each response shows its own increment, 1..%d, none twice" % total)

    # Redis stops while 8 clients keep calling; then it comes back.
    stop = threading.Event()
    outcomes = []  # (time sent, status, seconds taken, error code)

    def hammer():
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        while not stop.is_set():
            t0 = time.time()
            conn.request("GET", "/load-hit")
            resp = conn.getresponse()
            body = resp.read()
            code = None
            if resp.status != 200:
                try:
                    code = json.loads(body).get("code")
                except ValueError:
                    code = body[:100]
            with lock:
                outcomes.append((t0, resp.status, time.time() - t0, code))
        conn.close()

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t_stop = time.time()
    redis.stop()
    time.sleep(1.0)
    t_start = time.time()
    redis.start()
    deadline = time.time() + 5
    back = None
    while time.time() < deadline and back is None:
        time.sleep(0.05)
        with lock:
            back = next((o[0] for o in outcomes if o[0] > t_start and o[1] == 200), None)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    before = [o for o in outcomes if o[0] + o[2] < t_stop]  # answered before Redis stopped
    down = [o for o in outcomes if t_stop + 0.2 < o[0] < t_start]
    bad = [o for o in outcomes if o[1] not in (200, 503)]
    check(before and all(o[1] == 200 for o in before), "outage: 200s before Redis stops")
    check(len(down) >= 20 and all(o[1] == 503 and o[3] == "unavailable" for o in down),
          "outage: only 503 unavailable while Redis is down (%d answers: %s)"
          % (len(down), sorted({(o[1], o[3]) for o in down})))
    slowest = max((o[2] for o in down), default=0)
    # fast: far below the 1 s reply timeout a call waiting on Redis would take (bounded loosely:
    # 2 shared cores, sanitizers; 0.03 s is usual)
    check(slowest < 0.5, "outage: the 503s are fast (slowest %.3f s)" % slowest)
    check(not bad, "outage: nothing but 200 and 503 (%s)" % bad[:3])
    check(back is not None and back - t_start < 3,
          "outage: 200s again within 3 s of Redis restarting (%s)"
          % (None if back is None else "%.2f s" % (back - t_start)))


def scenario_redis_paused(redis):
    """The event loop never waits on Redis: with one worker and redis-server frozen (SIGSTOP),
    requests that use a store wait (HTTP and GraphQL), while a static mock on the same worker
    answers at once; the waiting ones get 503 after the 1 s reply timeout, and Redis works again
    after SIGCONT."""
    import http.client
    import signal as sig
    env = {"STORE_TYPE": "redis", "HTTP_WORKERS": "1",
           "REPO_REDIS_HOST": "127.0.0.1", "REPO_REDIS_PORT": str(redis.port)}
    node = Mockarty(BINARY, env=env).start()
    try:
        create(node, {"id": "p-static", "http": {"route": "/p-static"},
                      "response": {"payload": {"s": 1}}})
        create(node, {"id": "p-count", "http": {"route": "/p-count"},
                      "extract": {"gStore": {"p": "$.increment($.gS.p)"}},
                      "response": {"payload": {"p": "$.gS.p"}}})
        create(node, {"id": "p-gql", "graphql": {"field": "p"},
                      "extract": {"gStore": {"p": "$.increment($.gS.p)"}},
                      "response": {"payload": {"data": {"p": "$.gS.p"}}}})
        check(get(node, "/p-count")[0] == 200, "paused: counter works before the pause")
        check(gql(node, "{ p }")[1] == {"data": {"p": 2}}, "paused: GraphQL counter before the pause")
        results = []
        calls = [("GET", "/p-count", None), ("POST", "/graphql", b'{"query": "{ p }"}')] * 2

        def waiting_call():
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            t0 = time.time()
            method, path, body = calls.pop()
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            results.append((resp.status, time.time() - t0))
            conn.close()

        os.kill(redis.proc.pid, sig.SIGSTOP)
        try:
            threads = [threading.Thread(target=waiting_call) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.2)
            t0 = time.time()
            status = get(node, "/p-static")[0]
            took = time.time() - t0
            check(status == 200 and took < 0.5,
                  "paused: a static mock answers at once while store calls wait (%s in %.3f s)"
                  % (status, took))
            for t in threads:
                t.join()
        finally:
            os.kill(redis.proc.pid, sig.SIGCONT)
        check(len(results) == 4 and all(st == 503 and 0.5 < d < 3 for st, d in results),
              "paused: the waiting store calls get 503 after the reply timeout (%s)" % results)
        deadline = time.time() + 5
        status = 0
        while time.time() < deadline and status != 200:
            time.sleep(0.1)
            status = get(node, "/p-count")[0]
        check(status == 200, "paused: the counter works again after SIGCONT")
    finally:
        code, stderr = node.stop()
        check(code == 0 and not services.sanitizer_problems(stderr),
              "paused: clean exit without sanitizer report (exit %d)\n%s" % (code, stderr[-3000:]))


def run_backend(backend, redis=None):
    env = {"STORE_TYPE": backend, "STORE_MAX_VALUE_BYTES": "64KiB"}
    if redis is not None:
        env.update({"REPO_REDIS_HOST": "127.0.0.1", "REPO_REDIS_PORT": str(redis.port)})
    node = Mockarty(BINARY, env=env).start()
    try:
        print("--- backend %s" % backend, flush=True)
        scenario_templates(node)
        scenario_chain_login(node)
        scenario_stores_api(node, backend)
        scenario_counter(node)
        scenario_graphql(node)
        scenario_soap(node)
        if redis is None:
            scenario_storeless_refused(node)
        scenario_faults(node)
        if redis is not None:
            scenario_redis_down(node, redis)
            scenario_redis_load(node, redis)
    finally:
        harness.check_exit(node, backend + ": admin")


def main():
    services.install_signal_handlers()
    run_backend("memory")
    redis = services.Redis()
    try:
        redis.start()
        run_backend("redis", redis)
        scenario_redis_paused(redis)
    finally:
        services.cleanup_all()
    sys.exit(harness.finish())


if __name__ == "__main__":
    main()
