#!/bin/bash
# Dynamic-mock benchmark: on one admin process with STORE_TYPE=memory, `wrk -t1 -c32 -d$DURATION`
# measures (a) a static mock (baseline), (b) a templated mock (path param, query param, header and
# two fakers), (c) a mock incrementing a global-store counter; then on one admin with
# STORE_TYPE=redis (a real redis-server on loopback) (d) the same counter mock, plus its static mock
# for reference, alternating $REPEAT times. Prints req/s, p50/p99, the ratios to (a), and checks
# each counter against wrk's count of 200 responses. Both admins run with HTTP_WORKERS=$WORKERS (default 1). Target for (d):
# at least 0.5x the static mock of the same Redis-backed admin (store calls do not block the loop).
# Not a test: results go to docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-1}
REPEAT=${REPEAT:-3} # alternations of (static, counter) on the Redis admin
. bench/common.sh

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMK_SANITIZE=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target mockarty >/dev/null
BIN=$BUILD/cmd/mockarty/mockarty

die() { echo "dynamic.sh: $*" >&2; exit 1; }
DYN='{"id":"$.pathParam.id","q":"$.queryParam.q","xid":"$.reqHeader.X-Id[0]","uuid":"$.fake.UUID","name":"$.fake.FirstName"}'

start_admin() { # name env... -> sets PORT
    local name=$1
    shift
    PORT=$(free_port)
    env "$@" HTTP_HOST=127.0.0.1 HTTP_PORT="$PORT" HTTP_WORKERS="$WORKERS" \
        DB_PATH="$WORK/$name.db" "$BIN" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/health/ready")" = 200 ] && return
        sleep 0.1
    done
    die "$name admin not ready on $PORT: $(tail -5 "$WORK/$name.log")"
}

create_mocks() { # port: the static, templated and counter mocks
    local spec code
    for spec in \
        "{\"id\":\"static\",\"http\":{\"route\":\"/static\",\"httpMethod\":\"GET\"},\"response\":{\"statusCode\":200,\"payload\":$BODY}}" \
        "{\"id\":\"dyn\",\"http\":{\"route\":\"/dyn/:id\",\"httpMethod\":\"GET\"},\"response\":{\"statusCode\":200,\"payload\":$DYN}}" \
        "{\"id\":\"hit\",\"http\":{\"route\":\"/hit\",\"httpMethod\":\"GET\"},\"extract\":{\"gStore\":{\"hits\":\"\$.increment(\$.gS.hits)\"}},\"response\":{\"statusCode\":200,\"payload\":{\"hits\":\"\$.gS.hits\"}}}"; do
        code=$(curl -s -o "$WORK/post.out" -w '%{http_code}' -X POST "127.0.0.1:$1/api/v1/mocks" -d "$spec")
        case $code in 200 | 201) ;; *) die "POST /api/v1/mocks -> $code: $(cat "$WORK/post.out")" ;; esac
    done
}

hits() { # port -> the global counter
    curl -s "127.0.0.1:$1/api/v1/stores/global" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("hits", 0))'
}

# Fails unless the templated mock renders every placeholder and the counter counts.
sanity() { # port
    curl -s -H 'X-Id: hdr-7' "127.0.0.1:$1/dyn/42?q=hello" >"$WORK/dyn.json"
    python3 - "$WORK/dyn.json" <<'PY' || die "templated mock renders wrong: $(cat "$WORK/dyn.json")"
import json, re, sys
b = json.load(open(sys.argv[1]))
assert b["id"] == "42" and b["q"] == "hello" and b["xid"] == "hdr-7", b
assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b["uuid"]), b
assert isinstance(b["name"], str) and b["name"], b
PY
    local before after
    before=$(hits "$1")
    curl -s -o /dev/null "127.0.0.1:$1/hit"
    after=$(hits "$1")
    [ "$after" = $((before + 1)) ] || die "counter went $before -> $after after one request"
}

run_wrk() { # url [wrk args...] -> "rps p50 p99 ok" (ok: responses counted by wrk minus non-2xx)
    local url=$1
    shift
    wrk -t1 -c32 -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk.out"
    awk '/Socket errors|Non-2xx/ {print "wrk: " $0 > "/dev/stderr"}' "$WORK/wrk.out"
    awk '/requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Requests\/sec/ {rps=$2}
         $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print rps, p50, p99, n-bad}' "$WORK/wrk.out"
}

# --- memory backend: (a) static, (b) templated, (c) counter ---
start_admin mem STORE_TYPE=memory
MPORT=$PORT
create_mocks "$MPORT"
sanity "$MPORT"
wrk -t1 -c32 -d1s "http://127.0.0.1:$MPORT/static" >/dev/null # warm-up, not measured
read -r A_RPS A_P50 A_P99 _ <<<"$(run_wrk "http://127.0.0.1:$MPORT/static")"
read -r B_RPS B_P50 B_P99 _ <<<"$(run_wrk "http://127.0.0.1:$MPORT/dyn/42?q=hello" -H 'X-Id: hdr-7')"
C_BEFORE=$(hits "$MPORT")
read -r C_RPS C_P50 C_P99 C_OK <<<"$(run_wrk "http://127.0.0.1:$MPORT/hit")"
C_HITS=$(($(hits "$MPORT") - C_BEFORE))

# --- Redis backend: (d) counter (and its static mock, for reference) ---
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
start_admin redis STORE_TYPE=redis REPO_REDIS_HOST=127.0.0.1 REPO_REDIS_PORT="$RPORT"
DPORT=$PORT
create_mocks "$DPORT"
sanity "$DPORT"
wrk -t1 -c32 -d1s "http://127.0.0.1:$DPORT/static" >/dev/null # warm-up, not measured
redis_cmds() { redis-cli -p "$RPORT" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
redis-cli -p "$RPORT" config resetstat >/dev/null
# On a shared machine the load drifts: the static mock and the counter alternate $REPEAT times,
# and each is reported by its median run (the ratio is also the median of the pairs' ratios).
D_OK=0 D_HITS=0 D_CMDS=0
: >"$WORK/pairs"
for _ in $(seq "$REPEAT"); do
    read -r r_rps r_p50 r_p99 _ <<<"$(run_wrk "http://127.0.0.1:$DPORT/static")"
    before=$(hits "$DPORT")
    cmds=$(redis_cmds)
    read -r d_rps d_p50 d_p99 d_ok <<<"$(run_wrk "http://127.0.0.1:$DPORT/hit")"
    D_CMDS=$((D_CMDS + $(redis_cmds) - cmds))
    D_HITS=$((D_HITS + $(hits "$DPORT") - before))
    D_OK=$((D_OK + d_ok))
    echo "$r_rps $r_p50 $r_p99 $d_rps $d_p50 $d_p99" >>"$WORK/pairs"
done
median_row() { # column -> the row whose value in that column is the median
    sort -g -k"$1" "$WORK/pairs" | sed -n "$(((REPEAT + 1) / 2))p"
}
read -r R_RPS R_P50 R_P99 _ <<<"$(median_row 1)"
read -r _ _ _ D_RPS D_P50 D_P99 <<<"$(median_row 4)"
D_RATIO=$(awk '{print $4 / $1}' "$WORK/pairs" | sort -g | sed -n "$(((REPEAT + 1) / 2))p")
redis-cli -p "$RPORT" info commandstats | grep '^cmdstat' >"$WORK/cmdstats"

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
verdict() { python3 -c "print('met' if $1 / $2 >= $3 else 'MISSED')"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "wrk -t1 -c32 -d$DURATION; each admin: Release, HTTP_WORKERS=$WORKERS, SQLite, default journal"
printf '%-44s %12s %10s %10s\n' case req/s p50 p99
printf '%-44s %12s %10s %10s\n' "(a) static mock, memory (baseline)" "$A_RPS" "$A_P50" "$A_P99"
printf '%-44s %12s %10s %10s\n' "(b) 3 request placeholders + 2 fakers" "$B_RPS" "$B_P50" "$B_P99"
printf '%-44s %12s %10s %10s\n' "(c) gS counter, STORE_TYPE=memory" "$C_RPS" "$C_P50" "$C_P99"
printf '%-44s %12s %10s %10s\n' "    static mock, STORE_TYPE=redis (ref.)" "$R_RPS" "$R_P50" "$R_P99"
printf '%-44s %12s %10s %10s\n' "(d) gS counter, STORE_TYPE=redis" "$D_RPS" "$D_P50" "$D_P99"
for r in "b $B_RPS 0.5" "c $C_RPS 0.5"; do
    read -r n v t <<<"$r"
    echo "$n/a: $(ratio "$v" "$A_RPS")  (target >= $t: $(verdict "$v" "$A_RPS" "$t"))"
done
# Issue 9: the Redis counter against the static mock of the same (Redis-backed) admin.
echo "d/static on the Redis admin: $(python3 -c "print('%.2f' % $D_RATIO)") (median of $REPEAT pairs:" \
    "$(awk '{printf "%s%.2f", (NR == 1 ? "" : " "), $4 / $1}' "$WORK/pairs"))" \
    "(target >= 0.5: $(verdict "$D_RATIO" 1 0.5)); d/a: $(ratio "$D_RPS" "$A_RPS")"
# The counter may exceed wrk's count by up to the connection count per run: wrk stops counting requests
# still in flight when its time is up, but the server has already served them.
echo "(c) counter +$C_HITS, wrk 200 responses $C_OK (difference $((C_HITS - C_OK)))"
echo "(d) counter +$D_HITS, wrk 200 responses $D_OK (difference $((D_HITS - D_OK)))"
echo "(d) Redis commands during the $REPEAT counter runs: $D_CMDS, $(python3 -c "print('%.1f' % ($D_CMDS / max($D_HITS, 1)))") per counted request;"
echo "    by command: $(sed -E 's/^cmdstat_([^:]+):calls=([0-9]+),.*/\1 \2/' "$WORK/cmdstats" | paste -sd, - | sed 's/,/, /g')"
