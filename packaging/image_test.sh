#!/bin/bash
# Builds the Dockerfile with buildah from a debootstrap'ed Debian 12 base (no registry needed) and
# checks the image: every binary present with all its libraries (ldd), a non-root user (10001),
# the OCI labels, the admin started from the entrypoint answering /health and serving a mock at
# /api/users/:id. Prints the image size and the build time. Opt-in: `make image-test` (it needs
# root, buildah, podman, debootstrap, and takes minutes; not part of make test).
# The build context is `git archive HEAD`: the image is of the committed tree, not the work tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mockarty-image
STORE=(--storage-driver vfs)
TAG=mockarty/mockarty:image-test
PORT=${IMAGE_TEST_PORT:-25770}
export BUILDAH_ISOLATION=chroot
mkdir -p "$CACHE"
t0=$(date +%s)

# 1. The base: debootstrap --variant=minbase bookworm, imported as debian:12-slim (cached).
if ! podman "${STORE[@]}" image exists debian:12-slim; then
    if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian
        tar -C "$CACHE/rootfs" --numeric-owner -cf "$CACHE/bookworm-minbase.tar" .
        rm -rf "$CACHE/rootfs"
    fi
    podman "${STORE[@]}" import "$CACHE/bookworm-minbase.tar" debian:12-slim
fi
t1=$(date +%s)

# 2. The image, from the committed tree.
ctx=$(mktemp -d)
ctr=""
cleanup() {
    [ -n "$ctr" ] && buildah "${STORE[@]}" rm "$ctr" >/dev/null 2>&1 || true
    [ -n "${admin_pid:-}" ] && kill "$admin_pid" 2>/dev/null || true
    rm -rf "$ctx"
}
trap cleanup EXIT
git -C "$ROOT" archive HEAD | tar -x -C "$ctx"
rev=$(git -C "$ROOT" rev-parse HEAD)
epoch=$(git -C "$ROOT" log -1 --format=%ct)
buildah "${STORE[@]}" bud --isolation chroot --network host --layers=false \
    --build-arg REVISION="$rev" --build-arg SOURCE_DATE_EPOCH="$epoch" \
    -t "$TAG" "$ctx"
t2=$(date +%s)

fail=0
check() { # condition-status message
    if [ "$1" = 0 ]; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi
}
ctr=$(buildah "${STORE[@]}" from "$TAG")
run() { buildah "${STORE[@]}" run --isolation chroot --network host "$ctr" -- "$@"; }

# 3. Binaries and their libraries; the runner only once it exists in the tree.
bins="mockarty mockarty-resolver mockarty-operator"
[ -f "$ROOT/cmd/mockarty-runner/CMakeLists.txt" ] && bins="$bins mockarty-runner"
for b in $bins; do
    missing=$(run sh -c "ldd /usr/local/bin/$b | grep 'not found' || true")
    [ -z "$missing" ]; check $? "$b present with all its libraries ${missing:+($missing)}"
done
uid=$(run id -u)
[ "$uid" = 10001 ]; check $? "runs as uid 10001 (got $uid)"
labels=$(buildah "${STORE[@]}" inspect --format '{{json .OCIv1.Config.Labels}}' "$TAG")
echo "$labels" | grep -q "\"org.opencontainers.image.revision\":\"$rev\""
check $? "OCI labels carry the revision ($labels)"
ver=$(run /usr/local/bin/mockarty-operator --version || true)
[ -n "$ver" ]; check $? "mockarty-operator --version: $ver"

# 4. The admin from the entrypoint (tini -> docker-entrypoint -> mockarty), SQLite in its home.
buildah "${STORE[@]}" run --isolation chroot --network host \
    --env HTTP_PORT=$PORT --env RUNNER_GRPC_PORT=$((PORT + 3)) "$ctr" -- \
    /usr/bin/tini -- /usr/local/bin/docker-entrypoint mockarty >"$CACHE/admin.log" 2>&1 &
admin_pid=$!
ok=1
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then ok=0; break; fi
    sleep 0.1
done
check $ok "admin from the entrypoint answers /health"
curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/mocks" -d '{"id":"user-by-id",
  "http":{"route":"/api/users/:id","httpMethod":"GET"},
  "response":{"statusCode":200,"payload":{"id":"$.pathParam.id","name":"Ann"}}}' >/dev/null
got=$(curl -fsS "http://127.0.0.1:$PORT/api/users/42" || true)
echo "$got" | grep -q '"id": *"42"'; check $? "admin serves the mock at /api/users/42 ($got)"
kill "$admin_pid" 2>/dev/null; wait "$admin_pid" 2>/dev/null || true
admin_pid=""

size=$(buildah "${STORE[@]}" images --format '{{.Size}}' "$TAG" | head -1)
echo "image $TAG: $size; base $((t1 - t0)) s, build $((t2 - t1)) s, checks $(($(date +%s) - t2)) s"
exit $fail
