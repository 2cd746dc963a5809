#!/bin/bash
# Protocol mock benchmarks (issue 13), one section per protocol, each with a baseline measured in
# the same run. Sections run in the order below; ONLY="ws sse" picks some (default: all present).
# Each section is a function bench_<name> registered in SECTIONS; add a protocol by adding one
# function and one SECTIONS entry. Not a test: results go to docs/benchmarks.md by hand.
# Needs a Release build (make build): BIN=build/cmd/mockarty/mockarty.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
BIN=${BIN:-build/cmd/mockarty/mockarty}
DURATION=${DURATION:-10}
. bench/common.sh

wait_up() { # port
    for _ in $(seq 500); do curl -sf "127.0.0.1:$1/health/ready" >/dev/null && return 0; sleep 0.02; done
    return 1
}
# start_admin NAME [ENV=VALUE...]: an admin on a free port with its own SQLite file; sets PORT.
start_admin() {
    local name=$1
    shift
    PORT=$(free_port)
    env HTTP_HOST=127.0.0.1 HTTP_PORT="$PORT" DB_PATH="$WORK/$name.db" GRPC_MOCK_PORT=0 \
        RUNNER_GRPC_PORT=0 "$@" "$BIN" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    wait_up "$PORT"
}
post() { curl -s -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$1/api/v1/mocks" -d "$2"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

SECTIONS=()

# --- WebSocket: echo-style round trips ----------------------------------------------------------
# An echo mock ({"event":"echo"} -> {"echo": <the message's text>}, a template) on one worker;
# bench/ws_client.c keeps C connections each with one message in flight. Baseline in the same
# run: wrk GET round trips on a static HTTP mock of the same admin, same connection count.
bench_ws() {
    local conns=${WS_CONNECTIONS:-32}
    echo "== WebSocket (HTTP_WORKERS=1, $conns connections, ${DURATION}s)"
    cc -O2 -o "$WORK/ws_client" bench/ws_client.c
    start_admin ws HTTP_WORKERS=1
    local p=$PORT pid=${PIDS[-1]}
    post "$p" '{"id":"ws-echo","socket":{"event":"echo"},"response":{"payload":{"echo":"$.req.text"}}}' >/dev/null
    post "$p" '{"id":"ws-static","socket":{"event":"static"},"response":{"payload":{"ok":true}}}' >/dev/null
    post "$p" '{"id":"http","http":{"route":"/h","httpMethod":"GET"},"response":{"payload":{"ok":true}}}' >/dev/null
    local http ws_tpl ws_static
    http=$(wrk -t1 -c"$conns" -d"${DURATION}s" "http://127.0.0.1:$p/h" | awk '/Requests\/sec/ {print $2}')
    ws_static=$("$WORK/ws_client" "$p" /ws "$conns" "$DURATION" '{"event":"static"}')
    ws_tpl=$("$WORK/ws_client" "$p" /ws "$conns" "$DURATION" '{"event":"echo","text":"hello"}')
    echo "http GET static mock (wrk):        ${http} req/s"
    echo "ws static reply:                   $ws_static"
    echo "ws echo (template):                $ws_tpl"
    python3 - "$http" "$ws_static" "$ws_tpl" <<'PY'
import sys
http = float(sys.argv[1])
rate = lambda s: float(dict(kv.split("=") for kv in s.split())["rate"])
print("ratio ws static / http: %.2f   ws echo / http: %.2f" % (rate(sys.argv[2]) / http,
                                                           rate(sys.argv[3]) / http))
PY
    # Memory per idle connection: RSS before and after 2,000 open connections.
    local before after
    before=$(rss_kb "$pid")
    "$WORK/ws_client" "$p" /ws 2000 4 '{"event":"static"}' >/dev/null &
    local cpid=$!
    sleep 3
    after=$(rss_kb "$pid")
    wait "$cpid"
    echo "RSS idle ${before} kB, with 2,000 busy connections ${after} kB:" \
         "$(((after - before) * 1024 / 2000)) B per connection"
}
SECTIONS+=(ws)

# --- gRPC: unary calls with h2load ------------------------------------------------------------
# A unary mock (payload rendered from the request) on GRPC_MOCK_PORT, driven by h2load with gRPC
# framing from a data file (the 5-byte prefix and a GetUserRequest); baseline in the same run:
# h2load against a static HTTP/2 (h2c) mock on the same admin's HTTP port, same streams.
bench_grpc() {
    local clients=${GRPC_CLIENTS:-16} streams=${GRPC_STREAMS:-8}
    echo "== gRPC unary (HTTP_WORKERS=1, h2load -c$clients -m$streams, ${DURATION}s)"
    command -v h2load >/dev/null || { echo "SKIP: h2load missing (nghttp2-client)"; return; }
    local gport
    gport=$(free_port)
    start_admin grpc HTTP_WORKERS=1 GRPC_MOCK_PORT="$gport"
    local p=$PORT
    cat >"$WORK/bench.proto" <<'PROTO'
syntax = "proto3";
package demo;
message GetUserRequest { string user_id = 1; }
message User { string id = 1; string name = 2; }
service Users { rpc GetUser(GetUserRequest) returns (User); }
PROTO
    curl -sf -X POST -H 'Content-Type: text/plain' --data-binary @"$WORK/bench.proto" \
        "127.0.0.1:$p/api/v1/grpc/descriptors?name=bench" >/dev/null
    post "$p" '{"id":"g","grpc":{"service":"demo.Users","method":"GetUser"},"response":{"payload":{"id":"$.req.userId","name":"Ann"}}}' >/dev/null
    post "$p" '{"id":"h","http":{"route":"/h","httpMethod":"POST"},"response":{"payload":{"id":"u1","name":"Ann"}}}' >/dev/null
    # Length-prefixed GetUserRequest{user_id: "u1"}: 0 | 00000004 | 0a 02 'u' '1'.
    printf '\x00\x00\x00\x00\x04\x0a\x02u1' >"$WORK/req.bin"
    sleep 1.5 # the gRPC server re-reads descriptor sets on its poll
    local grpc http
    grpc=$(h2load -c"$clients" -m"$streams" -D"$DURATION" -d "$WORK/req.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$gport/demo.Users/GetUser" | awk '/^finished in/ {print $4}')
    http=$(h2load -c"$clients" -m"$streams" -D"$DURATION" -d "$WORK/req.bin" \
        "http://127.0.0.1:$p/h" | awk '/^finished in/ {print $4}')
    # Every call must have been answered by the mock, not UNIMPLEMENTED.
    curl -s "127.0.0.1:$p/metrics" | grep 'mockarty_protocol_requests_total{protocol="grpc"' || true
    echo "gRPC unary mock (h2load):            ${grpc} req/s"
    echo "HTTP/2 static mock (h2load, h2c):    ${http} req/s"
    python3 -c "import sys; print('ratio grpc / http2: %.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" \
        "$grpc" "$http"
}
SECTIONS+=(grpc)

# --- Server-Sent Events: 10,000 concurrent streams on one worker ---------------------------------
# An SSE mock whose chain sends one small event per second per stream (loop, no heartbeat) on an
# admin with HTTP_WORKERS=1; bench/sse_client.py opens SSE_STREAMS streams on one epoll loop and
# reports the server's RSS per stream, the events delivered per second, the server's CPU and the
# latency of plain GETs sent meanwhile. Baseline in the same run: a second admin with the same
# number of idle keep-alive connections that each got one plain answer (the cost of a connection
# that is not a stream).
bench_sse() {
    local n=${SSE_STREAMS:-10000}
    echo "== SSE ($n concurrent streams, HTTP_WORKERS=1, ${DURATION}s of events)"
    local plain='{"id":"h","http":{"route":"/h","httpMethod":"GET"},"response":{"payload":{"ok":true}}}'
    start_admin sse-idle HTTP_WORKERS=1
    post "$PORT" "$plain" >/dev/null
    local idle
    idle=$(python3 bench/sse_client.py "$PORT" "${PIDS[-1]}" "$n" 0 idle /h)
    kill "${PIDS[-1]}"
    start_admin sse HTTP_WORKERS=1
    post "$PORT" "$plain" >/dev/null
    post "$PORT" '{"id":"sse","sse":{"eventPath":"/sse"},"response":{"sseEventChain":{"events":[{"id":"t","data":{"tick":true,"source":"bench"},"delay":900}],"loop":true,"loopDelay":100,"maxLoops":0,"maxTime":3600}}}' >/dev/null
    local sse
    sse=$(python3 bench/sse_client.py "$PORT" "${PIDS[-1]}" "$n" "$DURATION" sse /sse)
    kill "${PIDS[-1]}"
    echo "idle keep-alive connections: $idle"
    echo "SSE streams:                 $sse"
    python3 - "$idle" "$sse" <<'PY'
import sys
kv = lambda s: dict(x.split("=") for x in s.split())
idle, sse = kv(sys.argv[1]), kv(sys.argv[2])
per_idle, per_sse = int(idle["bytes_per_conn"]), int(sse["bytes_per_conn"])
print("RSS per SSE stream %d B, per idle connection %d B (ratio %.2f); %s of %s streams got "
      "events, %s events/s (expected ~%s), server CPU %s s over %s s; plain GET p99 %s ms" %
      (per_sse, per_idle, per_sse / max(per_idle, 1), sse["streams_alive"], sse["connections"],
       sse["events_per_s"], sse["connections"], sse["server_cpu_s"], sse["window_s"],
       sse["plain_get_p99_ms"]))
PY
}
SECTIONS+=(sse)

for s in ${ONLY:-${SECTIONS[@]}}; do
    "bench_$s"
done
