#!/bin/sh
# `make fuzz SECONDS=N`: builds the libFuzzer harnesses with clang (ASan+UBSan, coverage on every
# module) in build-fuzz-clang and runs each for N seconds, one at a time, on a working copy of its
# corpus. Crashes land in build-fuzz-clang/artifacts/<harness>/; copy a reproducer into
# fuzz/regressions/<harness>/ once fixed, so `make test` replays it. See docs/fuzzing.md.
#   fuzz/run.sh [SECONDS] [HARNESS...]
set -eu
seconds=${1:-60}
[ $# -gt 0 ] && shift
# Ours (fuzz/fuzz_<name>.c), then those beside their module (pkg/<module>/<name>_fuzz.c).
all="template jsonpath route cond config mock"
for f in pkg/*/*_fuzz.c; do
    [ -e "$f" ] && all="$all $(basename "$f" _fuzz.c)"
done
harnesses=${*:-$all}
build=${FUZZ_BUILD:-build-fuzz-clang}
cd "$(dirname "$0")/.."

scripts/install-deps.sh runtime
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
    echo "installing clang and libFuzzer (clang-14 libclang-rt-14-dev)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "run as root or install clang-14 libclang-rt-14-dev" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang-14 libclang-rt-14-dev >/dev/null
    cc=$(command -v clang-14)
fi

status=0
cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMK_SANITIZE=ON -DMK_FUZZ=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
# One target at a time, so a harness that does not build (a module mid-change) skips only itself.
built=""
for h in $harnesses; do
    if cmake --build "$build" -j 2 --target "fuzz_$h" >"$build/build-$h.log" 2>&1; then
        built="$built $h"
    else
        echo "fuzz_$h does not build, skipped: see $build/build-$h.log"
        grep -m3 "error" "$build/build-$h.log" || true
        status=1
    fi
done

summary="$build/fuzz-summary.txt"
: >"$summary"
for h in $built; do
    mkdir -p "$build/corpus/$h" "$build/artifacts/$h"
    log="$build/fuzz-$h.log"
    echo "== fuzz_$h for ${seconds}s (log: $log)"
    dict=""
    [ -f "fuzz/dict/$h.dict" ] && dict="-dict=fuzz/dict/$h.dict"
    # The first directory collects new inputs; the tree's corpora and reproducers are read only.
    seeds=""
    for d in "fuzz/corpus/$h" "fuzz/regressions/$h" pkg/*/fuzz_corpus/"$h"; do
        [ -d "$d" ] && seeds="$seeds $d"
    done
    # shellcheck disable=SC2086
    if ! "$build/fuzz/fuzz_$h" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        $dict -artifact_prefix="$build/artifacts/$h/" "$build/corpus/$h" $seeds \
        >"$log" 2>&1; then
        status=1
        echo "fuzz_$h FAILED: see $log and $build/artifacts/$h/"
        grep -m1 -E "ERROR|runtime error|invariant failed" "$log" || true
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E "^#[0-9]+.*cov: " "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    printf '%-9s %6ss  execs %-10s execs/s %-7s cov %-6s ft %-6s corpus %s\n' "$h" "$seconds" \
        "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" | tee -a "$summary"
done
echo "summary: $summary"
exit $status
