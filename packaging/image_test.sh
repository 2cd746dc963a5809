#!/bin/bash
# Builds the Dockerfile with buildah from a debootstrap'ed Debian 12 base (no registry needed) and
# checks the image: every binary present with all its libraries (ldd), a non-root user (10001),
# the OCI labels, the admin started from the entrypoint answering /health and serving a mock at
# /api/users/:id. Prints the image size and the build time. IMAGE_TEST_SKIP_BUILD=1 checks the image
# built last time; IMAGE_TEST_REF=<commit> builds that commit. Opt-in: `make image-test` (it needs
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

# 1. The base: debootstrap --variant=minbase bookworm (cached), made slim the way Debian's
#    debian:12-slim is (no docs, man pages, locales, apt caches; dpkg keeps them out of later
#    installs too), imported as debian:12-slim.
if ! podman "${STORE[@]}" image exists debian:12-slim; then
    if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian
        tar -C "$CACHE/rootfs" --numeric-owner -cf "$CACHE/bookworm-minbase.tar" .
        rm -rf "$CACHE/rootfs"
    fi
    slim=$(mktemp -d)
    tar -C "$slim" --numeric-owner -xf "$CACHE/bookworm-minbase.tar"
    cat >"$slim/etc/dpkg/dpkg.cfg.d/docker" <<'X'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
X
    printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n' \
        >"$slim/etc/apt/apt.conf.d/docker-clean"
    find "$slim/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$slim"/usr/share/man/* "$slim"/usr/share/info/* "$slim"/usr/share/locale/* \
        "$slim"/var/cache/apt/archives/*.deb "$slim"/var/cache/apt/*.bin \
        "$slim"/var/lib/apt/lists/* "$slim"/var/log/*.log "$slim"/var/log/apt/*
    tar -C "$slim" --numeric-owner -c . | podman "${STORE[@]}" import - debian:12-slim
    rm -rf "$slim"
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
ref=${IMAGE_TEST_REF:-HEAD}
git -C "$ROOT" archive "$ref" | tar -x -C "$ctx"
rev=$(git -C "$ROOT" rev-parse "$ref")
epoch=$(git -C "$ROOT" log -1 --format=%ct "$ref")
# --timestamp: the commit's time as the image's and its files' time (SOURCE_DATE_EPOCH).
if [ "${IMAGE_TEST_SKIP_BUILD:-0}" != 1 ]; then
    buildah "${STORE[@]}" bud --isolation chroot --network host --layers=false \
        --timestamp "$epoch" --build-arg SOURCE_DATE_EPOCH="$epoch" --build-arg REVISION="$rev" \
        -t "$TAG" "$ctx"
fi
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
label() { buildah "${STORE[@]}" inspect --format "{{index .OCIv1.Config.Labels \"$1\"}}" "$TAG"; }
[ "$(label org.opencontainers.image.revision)" = "$rev" ] && [ -n "$(label org.opencontainers.image.source)" ] &&
    [ -n "$(label org.opencontainers.image.version)" ]
check $? "OCI labels: source $(label org.opencontainers.image.source), version $(label org.opencontainers.image.version), revision $(label org.opencontainers.image.revision)"
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

# 5. Optionally (IMAGE_TEST_REPRO=1, a second full build): the same commit gives the same image.
if [ "${IMAGE_TEST_REPRO:-0}" = 1 ]; then
    buildah "${STORE[@]}" bud --isolation chroot --network host --layers=false \
        --timestamp "$epoch" --build-arg SOURCE_DATE_EPOCH="$epoch" --build-arg REVISION="$rev" \
        -t "$TAG-again" "$ctx" >/dev/null
    a=$(buildah "${STORE[@]}" images --no-trunc --format '{{.ID}}' "$TAG" | awk 'NR == 1')
    b=$(buildah "${STORE[@]}" images --no-trunc --format '{{.ID}}' "$TAG-again" | awk 'NR == 1')
    [ "$a" = "$b" ]; check $? "a second build of the same commit is the same image ($a, $b)"
fi

size=$(buildah "${STORE[@]}" images --format '{{.Size}}' "$TAG" | awk 'NR == 1')
echo "image $TAG: $size; base $((t1 - t0)) s, build $((t2 - t1)) s, checks $(($(date +%s) - t2)) s"
exit $fail
