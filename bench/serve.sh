#!/bin/bash
# Serving benchmark: nginx (1 worker) returning a static body vs. the admin node serving the same
# body as a mock, both driven by `wrk -t1 -c32 -d$DURATION` in the same run; then the admin with 10
# and with 10,000 mocks (parameterised routes over 100 namespaces). Prints req/s, ratios, p50/p99
# latency, the admin's RSS, and how soon a mock is served after its POST returns.
# Then memory per mock (issue 9): mocks with a parameterised route, a query condition, a header
# condition and a small JSON payload; RSS of an admin before and after 10,000 of them; 100,000
# over 1,000 namespaces loaded through POST /api/v1/mocks/batch, the admin restarted on that
# SQLite file (time to ready, RSS), and its rate on one of them against an admin with 10 of them.
# MEM=0 skips that part (it takes a few minutes: the 100,000 go through the API).
# Not a test: results go to docs/benchmarks.md by hand. Needs a Release build (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/cmd/mockarty/mockarty}
DURATION=${DURATION:-10s}
. bench/common.sh

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
wait_up() { # port [tries of 20 ms]
    for _ in $(seq "${2:-500}"); do curl -sf "127.0.0.1:$1/health/ready" >/dev/null && return 0; sleep 0.02; done
    return 1
}
wait_up "$APORT"
curl -s "127.0.0.1:$NPORT/" >/dev/null

post() { curl -s -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$APORT$1" -d "$2"; }
post /api/v1/mocks "{\"id\":\"static\",\"http\":{\"route\":\"/static\",\"httpMethod\":\"GET\"},\"response\":{\"statusCode\":200,\"payload\":$BODY}}" >/dev/null

run_wrk() { # url [wrk options] -> "rps p50 p99"
    local url=$1
    shift
    wrk -t1 -c32 -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk.out"
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

[ "${MEM:-1}" = 0 ] && exit 0

# --- memory per mock, 100,000 mocks (issue 9) ---
# pmocks PORT NAMESPACES PER: posts NAMESPACES batches of PER mocks (ns0..., ids p-<ns>-<i>) and
# prints the seconds it took. Mock i: GET /svc<i>/users/:id/orders/:order, ?q=v<i>, X-Tenant:
# t<i%7>, payload {"n": i, "name": "item", "ok": true}.
pmocks() {
    python3 - "$@" <<'PY'
import http.client, json, sys, time
port, nns, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t = time.time()
for ns in range(nns):
    items = [{"id": "p-%d-%d" % (ns, i), "namespace": "ns%d" % ns,
              "http": {"route": "/svc%d/users/:id/orders/:order" % i, "httpMethod": "GET",
                       "queryParams": [{"path": "q", "assertAction": "equals", "value": "v%d" % i}],
                       "header": [{"path": "X-Tenant", "assertAction": "equals", "value": "t%d" % (i % 7)}]},
              "response": {"statusCode": 200, "payload": {"n": i, "name": "item", "ok": True}}}
             for i in range(per)]
    c.request("POST", "/api/v1/mocks/batch", json.dumps(items))
    r = c.getresponse()
    body = r.read()
    if r.status >= 300:
        sys.exit("batch %d: %d %s" % (ns, r.status, body[:200]))
print("%.1f" % (time.time() - t))
PY
}
start_admin() { # port db -> pid; a 1 MiB journal, so that RSS shows the mocks, not the journal
    HTTP_HOST=127.0.0.1 HTTP_PORT=$1 DB_PATH=$2 JOURNAL_MAX_BYTES=1MiB "$BIN" >>"$WORK/mem.log" 2>&1 &
    echo $!
}
stop_admin() { # started in a subshell: not our child, so poll until it is gone
    kill "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}
kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
served() { # port path -> HTTP status with the matching header
    curl -s -o /dev/null -w '%{http_code}' -H 'X-Tenant: t0' "127.0.0.1:$1$2"
}

# 10 such mocks: the reference rate
P10=$(free_port)
A10=$(start_admin "$P10" "$WORK/m10.db")
PIDS+=("$A10")
wait_up "$P10"
pmocks "$P10" 1 10 >/dev/null
PURL="/stubs/ns0/svc7/users/42/orders/9?q=v7"
[ "$(served "$P10" "$PURL")" = 200 ] || { echo "10-mock admin: $PURL not served" >&2; exit 1; }
read -r R10_RPS R10_P50 R10_P99 <<<"$(run_wrk "http://127.0.0.1:$P10$PURL" -H 'X-Tenant: t0')"
stop_admin "$A10"

# 10,000: RSS before and after
PM=$(free_port)
AM=$(start_admin "$PM" "$WORK/m10k.db")
PIDS+=("$AM")
wait_up "$PM"
sleep 1
M_EMPTY=$(kb "$AM")
M_SECS=$(pmocks "$PM" 100 100)
M_FULL=$(kb "$AM")
stop_admin "$AM"

# 100,000 over 1,000 namespaces through the API, then a restart from SQLite
PH=$(free_port)
AH=$(start_admin "$PH" "$WORK/m100k.db")
PIDS+=("$AH")
wait_up "$PH"
sleep 1
H_EMPTY=$(kb "$AH")
H_SECS=$(pmocks "$PH" 1000 100)
H_API=$(kb "$AH")
stop_admin "$AH"
T0=$(date +%s%N)
AH=$(start_admin "$PH" "$WORK/m100k.db")
PIDS+=("$AH")
wait_up "$PH" 3000 || { echo "the 100,000-mock admin did not come up" >&2; exit 1; }
T1=$(date +%s%N)
H_READY_CPU=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$AH/stat")
H_RESTART=$(kb "$AH")
H_COUNT=$(curl -s "127.0.0.1:$PH/health" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"]["snapshot"]["mocks"])')
HURL="/stubs/ns517/svc7/users/42/orders/9?q=v7"
[ "$(served "$PH" "$HURL")" = 200 ] || { echo "100,000-mock admin: $HURL not served" >&2; exit 1; }
read -r RH_RPS RH_P50 RH_P99 <<<"$(run_wrk "http://127.0.0.1:$PH$HURL" -H 'X-Tenant: t0')"
H_AFTER=$(kb "$AH")
stop_admin "$AH"

per_mock() { python3 -c "print('%.0f' % (($2 - $1) * 1024 / $3))"; }
mb() { python3 -c "print('%.1f' % ($1 / 1024))"; }
echo
echo "memory per mock (route with 2 parameters, a query and a header condition, JSON payload;"
echo "admins with JOURNAL_MAX_BYTES=1MiB; RSS from /proc/<pid>/status)"
printf '%-44s %12s %10s %10s\n' case req/s p50 p99
printf '%-44s %12s %10s %10s\n' "admin, 10 such mocks" "$R10_RPS" "$R10_P50" "$R10_P99"
printf '%-44s %12s %10s %10s\n' "admin, $H_COUNT such mocks (1,000 ns)" "$RH_RPS" "$RH_P50" "$RH_P99"
echo "10,000 mocks:  RSS $(mb "$M_EMPTY") MB empty -> $(mb "$M_FULL") MB after the API load" \
    "($M_SECS s): $(per_mock "$M_EMPTY" "$M_FULL" 10000) B per mock (target <= 2048)"
echo "100,000 mocks: RSS $(mb "$H_EMPTY") MB empty -> $(mb "$H_API") MB after the API load" \
    "($H_SECS s): $(per_mock "$H_EMPTY" "$H_API" 100000) B per mock"
echo "  restarted from SQLite: ready in $(python3 -c "print('%.2f' % (($T1 - $T0) / 1e9))") s" \
    "(admin CPU ${H_READY_CPU} s; target < 3 s), RSS $(mb "$H_RESTART") MB (target < 250)," \
    "$(per_mock "$H_EMPTY" "$H_RESTART" 100000) B per mock; $(mb "$H_AFTER") MB after the wrk run"
echo "100,000 mocks / 10 mocks:   $(ratio "$RH_RPS" "$R10_RPS")  (target >= 0.90)"
