#!/bin/bash
# Proxy benchmark (issue 14): one upstream (nginx, 1 worker, a 50-byte JSON body), proxied by
# nginx's proxy_pass (1 worker, keep-alive upstream connections) and by a proxy mock of the admin
# (HTTP_WORKERS=1, the same upstream; WORKERS=n gives both n workers), both driven by
# `wrk -t1 -c32 -d$DURATION` in the same run. Prints req/s, p50/p99 latency, the CPU time each
# proxy spent per request (user + system, from /proc: on a shared machine the steadier figure)
# and the ratios mockarty / nginx (target >= 0.8). ROUNDS=n repeats the pair.
# Not a test: results go to docs/benchmarks.md by hand. Needs a Release build (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/cmd/mockarty/mockarty}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
. bench/common.sh

UPORT=$(free_port)
NPORT=$(free_port)
APORT=$(free_port)

nginx_conf() { # dir server-block [workers]
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<NGX
worker_processes ${3:-1};
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1;
    proxy_temp_path $1;
    fastcgi_temp_path $1;
    uwsgi_temp_path $1;
    scgi_temp_path $1;
    upstream up { server 127.0.0.1:$UPORT; keepalive 64; }
    $2
}
NGX
}

# The upstream, and nginx proxying it as nginx is usually set up for keep-alive upstreams.
nginx_conf "$WORK/up" "server { listen 127.0.0.1:$UPORT; location / { default_type application/json; return 200 '$BODY'; } }"
nginx_conf "$WORK/px" "server { listen 127.0.0.1:$NPORT; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" "$WORKERS"
nginx -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
nginx -c "$WORK/px/nginx.conf" -g 'daemon off;' &
PXPID=$!
PIDS+=($PXPID)

HTTP_HOST=127.0.0.1 HTTP_PORT=$APORT HTTP_WORKERS=$WORKERS DB_PATH=$WORK/bench.db \
    GRPC_MOCK_PORT=0 RUNNER_GRPC_PORT=0 "$BIN" >"$WORK/admin.log" 2>&1 &
APID=$!
PIDS+=($APID)
for _ in $(seq 500); do curl -sf "127.0.0.1:$APORT/health/ready" >/dev/null && break; sleep 0.02; done
curl -s -o /dev/null -X POST "127.0.0.1:$APORT/api/v1/mocks" \
    -d "{\"id\":\"px\",\"http\":{\"route\":\"/px/*\",\"httpMethod\":\"GET\"},\"proxy\":{\"target\":\"http://127.0.0.1:$UPORT\"}}"
check() { # url
    local got
    got=$(curl -s "$1")
    [ "$got" = "$BODY" ] || { echo "unexpected answer from $1: $got" >&2; exit 1; }
}
check "http://127.0.0.1:$NPORT/px/a"
check "http://127.0.0.1:$APORT/px/a"

cpu_ticks() { # pid... -> user+system clock ticks of the processes and their children
    local t=0 p
    for p in "$@" $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
run_wrk() { # url pid -> "rps p50 p99 cpu_us_per_request"
    local t0 t1
    t0=$(cpu_ticks "$2")
    wrk -t1 -c32 -d"$DURATION" --latency "$1" >"$WORK/wrk.out"
    t1=$(cpu_ticks "$2")
    local errs
    errs=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out")
    [ -z "$errs" ] || echo "  wrk: $errs" >&2
    local reqs
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    echo "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out") $(awk '$1=="50%" {print $2}' "$WORK/wrk.out") $(awk '$1=="99%" {print $2}' "$WORK/wrk.out") $(python3 -c "print('%.1f' % (($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $reqs))")"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-5s %10s %8s %8s %7s %12s %8s %8s %7s %6s %6s\n' round nginx_rps p50 p99 cpu_us \
    mockarty_rps p50 p99 cpu_us rps_x cpu_x
RATIOS=()
CPUS=()
for r in $(seq "$ROUNDS"); do
    read -r N_RPS N_P50 N_P99 N_CPU <<<"$(run_wrk "http://127.0.0.1:$NPORT/px/a" "$PXPID")"
    read -r M_RPS M_P50 M_P99 M_CPU <<<"$(run_wrk "http://127.0.0.1:$APORT/px/a" "$APID")"
    RATIO=$(python3 -c "print('%.2f' % ($M_RPS / $N_RPS))")
    # Requests per CPU second, mockarty over nginx: throughput when each gets the same CPU.
    CPUX=$(python3 -c "print('%.2f' % ($N_CPU / $M_CPU))")
    RATIOS+=("$RATIO")
    CPUS+=("$CPUX")
    printf '%-5s %10s %8s %8s %7s %12s %8s %8s %7s %6s %6s\n' "$r" "$N_RPS" "$N_P50" "$N_P99" \
        "$N_CPU" "$M_RPS" "$M_P50" "$M_P99" "$M_CPU" "$RATIO" "$CPUX"
done
echo "median req/s ratio mockarty/nginx proxy_pass: $(printf '%s\n' "${RATIOS[@]}" | median)" \
    "(target >= 0.8)"
echo "median requests per CPU second, mockarty/nginx: $(printf '%s\n' "${CPUS[@]}" | median)"
