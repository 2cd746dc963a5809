# What every bench script starts with (sourced after `cd` to the repository root): a scratch
# directory, the PIDS array whose processes are killed on exit, a free loopback port, and the
# 52-byte JSON body the serving benchmarks return.
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BODY='{"id":1,"name":"mockarty","ok":true,"items":[1,2,3]}'
