#!/bin/bash
# Load generator benchmark (issue 12): against the same nginx (one worker, a 50-byte JSON reply),
# `wrk -t1 -c32 -d$DURATION --latency` versus mockarty-load with one thread and 32 VUs for the
# same time, ROUNDS times alternately; prints req/s and p50/p99 of each and the ratios (targets:
# >= 0.9x wrk's req/s, p99 within 10 % of wrk's) and the client CPU time per request of each (user
# + system, from /usr/bin/time: what the ratio is when the machine is shared and noisy). Then
# open-model runs (constant-arrival-rate, each of RATES per second for $DURATION) and how close
# the achieved rate came (target: within 1 % when nginx can serve that rate here).
# Not a test: results go to docs/benchmarks.md by hand. Needs a Release build:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target mockarty-load
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD=${LOAD:-build/cmd/mockarty-load/mockarty-load}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
RATES=${RATES:-20000 10000}
. bench/common.sh

NPORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
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
# PIN=1 puts nginx on CPU 0 and the client on CPU 1 (the same for wrk and for us), for a quiet
# machine; by default (PIN=0) the scheduler places them, which did better on the shared VM.
PIN=${PIN:-0}
PIN0=() PIN1=()
if [ "$PIN" = 1 ]; then PIN0=(taskset -c 0) PIN1=(taskset -c 1); fi
"${PIN0[@]}" nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 200); do curl -sf "127.0.0.1:$NPORT/" >/dev/null && break; sleep 0.02; done
URL="http://127.0.0.1:$NPORT/static"

to_ms() { # wrk latency "812.00us" / "1.23ms" / "1.02s" -> ms
    awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}
cpu_us_per_req() { # /usr/bin/time output file, requests
    awk -v n="$2" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$1"
}
run_wrk() { # -> "rps p50 p99 cpu_us_per_request"
    /usr/bin/time -f "%U %S" -o "$WORK/time.out" \
        "${PIN1[@]}" wrk -t1 -c32 -d"${DURATION}s" --latency "$URL" >"$WORK/wrk.out"
    local n
    n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    echo "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out") $(to_ms "$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")") $(to_ms "$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")") $(cpu_us_per_req "$WORK/time.out" "$n")"
}
run_ours() { # config file -> "rps p50 p99 cpu_us_per_request"
    /usr/bin/time -f "%U %S" -o "$WORK/time.out" "${PIN1[@]}" "$LOAD" -q -o "$WORK/res.json" "$1" || true
    local line
    line=$(python3 - "$WORK/res.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["metrics"]
print("%.2f %.3f %.3f %d" % (m["http_reqs"]["rate"], m["http_req_duration"]["med"], m["http_req_duration"]["p(99)"], m["http_reqs"]["count"]))
PY
)
    echo "${line% *} $(cpu_us_per_req "$WORK/time.out" "${line##* }")"
}
cat >"$WORK/closed.json" <<JSON
{"name": "bench", "vus": 32, "duration": "${DURATION}s", "threads": 1,
 "scenario": {"requests": [{"method": "GET", "url": "$URL"}]}}
JSON

printf '%-5s %-14s %12s %10s %10s %12s\n' round client req/s p50_ms p99_ms cpu_us/req
for r in $(seq "$ROUNDS"); do
    read -r W_RPS W_P50 W_P99 W_CPU <<<"$(run_wrk)"
    read -r O_RPS O_P50 O_P99 O_CPU <<<"$(run_ours "$WORK/closed.json")"
    printf '%-5s %-14s %12s %10s %10s %12s\n' "$r" "wrk" "$W_RPS" "$W_P50" "$W_P99" "$W_CPU"
    printf '%-5s %-14s %12s %10s %10s %12s\n' "$r" "mockarty-load" "$O_RPS" "$O_P50" "$O_P99" "$O_CPU"
    awk -v a="$O_RPS" -v b="$W_RPS" -v c="$O_P99" -v d="$W_P99" -v e="$O_CPU" -v f="$W_CPU" \
        'BEGIN { printf "      ratio req/s %.3f (target >= 0.9), p99 %.3f (target 0.9-1.1), cpu/req %.3f\n", a/b, c/d, e/f }'
done

for RATE in $RATES; do
cat >"$WORK/open.json" <<JSON
{"name": "open", "executor": "constant-arrival-rate", "rate": $RATE, "duration": "${DURATION}s",
 "preAllocatedVUs": 32, "maxVUs": 256, "threads": 1,
 "scenario": {"requests": [{"method": "GET", "url": "$URL"}]}}
JSON
"${PIN1[@]}" "$LOAD" -q -o "$WORK/open-res.json" "$WORK/open.json" || true
python3 - "$WORK/open-res.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rate, m = r["rate"], r["metrics"]
print("open model: target %.0f/s, achieved %.1f/s (%.2f %% off), kept=%s, dropped %d, "
      "p50 %.3f ms, p99 %.3f ms, failed %d" % (
      rate["target"], rate["achieved"], 100 * abs(rate["achieved"] - rate["target"]) / rate["target"],
      rate["kept"], rate["dropped"], m["http_req_duration"]["med"], m["http_req_duration"]["p(99)"],
      m["http_req_failed"]["passes"]))
PY
done
