#!/bin/bash
# Serving benchmark: nginx (1 worker) returning a static body vs. the admin node serving the same
# body as a mock, both driven by `wrk -t1 -c32 -d$DURATION` in the same run; then the admin with 10
# and with 10,000 mocks (parameterised routes over 100 namespaces). Prints req/s, ratios, p50/p99
# latency, the admin's RSS, and how soon a mock is served after its POST returns.
# Not a test: results go to docs/benchmarks.md by hand. Needs a Release build (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/cmd/mockarty/mockarty}
DURATION=${DURATION:-10s}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BODY='{"id":1,"name":"mockarty","ok":true,"items":[1,2,3]}'

# --- nginx baseline ---
NPORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$NPORT;
        location / { default_type application/json; return 200 '$BODY'; }
    }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- admin ---
APORT=$(free_port)
HTTP_HOST=127.0.0.1 HTTP_PORT=$APORT DB_PATH=$WORK/bench.db "$BIN" >"$WORK/admin.log" 2>&1 &
APID=$!
PIDS+=($APID)
for _ in $(seq 100); do curl -s "127.0.0.1:$APORT/health/live" >/dev/null && break; sleep 0.1; done
curl -s "127.0.0.1:$NPORT/" >/dev/null

post() { curl -s -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$APORT$1" -d "$2"; }
post /api/v1/mocks "{\"id\":\"static\",\"http\":{\"route\":\"/static\",\"httpMethod\":\"GET\"},\"response\":{\"statusCode\":200,\"payload\":$BODY}}" >/dev/null

run_wrk() { # url -> "rps p50 p99"
    wrk -t1 -c32 -d"$DURATION" --latency "$1" >"$WORK/wrk.out"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")
    echo "$rps $p50 $p99"
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$APID/status"; }

read -r N_RPS N_P50 N_P99 <<<"$(run_wrk "http://127.0.0.1:$NPORT/static")"
read -r S_RPS S_P50 S_P99 <<<"$(run_wrk "http://127.0.0.1:$APORT/static")"

# 10 mocks with parameters in one namespace
batch() { # namespace count offset
    python3 - "$@" <<'PY'
import json, sys
ns, n, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(json.dumps([{"id": "b-%s-%d" % (ns, i), "namespace": ns,
                   "http": {"route": "/svc%d/users/:id/orders/:order" % i, "httpMethod": "GET"},
                   "response": {"statusCode": 200, "payload": {"n": i}}} for i in range(off, off + n)]))
PY
}
batch ns0 10 0 >"$WORK/b.json"
curl -s -o /dev/null -X POST "127.0.0.1:$APORT/api/v1/mocks/batch" --data-binary @"$WORK/b.json"
read -r T_RPS T_P50 T_P99 <<<"$(run_wrk "http://127.0.0.1:$APORT/stubs/ns0/svc7/users/42/orders/9")"
T_RSS=$(rss_mb)

# up to 10,000: 100 namespaces x 100 mocks
for n in $(seq 0 99); do
    if [ "$n" = 0 ]; then batch ns0 90 10; else batch "ns$n" 100 0; fi >"$WORK/b.json"
    curl -s -o /dev/null -X POST "127.0.0.1:$APORT/api/v1/mocks/batch" --data-binary @"$WORK/b.json"
done
L_RSS=$(rss_mb)
TOTAL=$(curl -s "127.0.0.1:$APORT/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"]["snapshot"]["mocks"])')
read -r K_RPS K_P50 K_P99 <<<"$(run_wrk "http://127.0.0.1:$APORT/stubs/ns57/svc73/users/42/orders/9")"
K_RSS=$(rss_mb)

# POST -> served: create a new mock and poll it on a fresh connection
LAT=$(python3 - "$APORT" <<'PY'
import http.client, json, sys, time
port = int(sys.argv[1])
worst = 0.0
for i in range(50):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", "/api/v1/mocks", json.dumps({"http": {"route": "/fresh/%d" % i, "httpMethod": "GET"},
              "response": {"statusCode": 200, "payload": {"i": i}}}))
    c.getresponse().read()
    t = time.time()
    while True:
        c.request("GET", "/fresh/%d" % i)
        r = c.getresponse(); r.read()
        if r.status == 200:
            break
    worst = max(worst, time.time() - t)
    c.close()
print("%.2f" % (worst * 1000))
PY
)

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "wrk -t1 -c32 -d$DURATION, body ${#BODY} bytes"
printf '%-32s %12s %10s %10s %8s\n' case req/s p50 p99 RSS_MB
printf '%-32s %12s %10s %10s %8s\n' "nginx 1 worker (baseline)" "$N_RPS" "$N_P50" "$N_P99" -
printf '%-32s %12s %10s %10s %8s\n' "admin, 1 static mock" "$S_RPS" "$S_P50" "$S_P99" -
printf '%-32s %12s %10s %10s %8s\n' "admin, 10 mocks (params)" "$T_RPS" "$T_P50" "$T_P99" "$T_RSS"
printf '%-32s %12s %10s %10s %8s\n' "admin, $TOTAL mocks (params)" "$K_RPS" "$K_P50" "$K_P99" "$K_RSS"
echo "static mock / nginx:        $(ratio "$S_RPS" "$N_RPS")  (target >= 0.70)"
echo "10,000 mocks / 10 mocks:    $(ratio "$K_RPS" "$T_RPS")  (target >= 0.90)"
echo "RSS with 10,000 mocks:      ${L_RSS} MB right after loading them; ${K_RSS} MB after the runs,"
echo "                            which includes the request journal (bounded by JOURNAL_MAX_BYTES, 64 MiB)"
echo "POST -> served, worst of 50: ${LAT} ms (target < 50)"
