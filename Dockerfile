# syntax=docker/dockerfile:1
# Mockarty image: the binaries (admin, resolver, operator, and the runner once its CMake target
# exists) on Debian 12 slim; the first argument picks one (see packaging/docker-entrypoint.sh).
# Build: docker build -t mockarty/mockarty .   (or: make image-test, which builds it with buildah
# from a debootstrap'ed base and checks it). Reproducible from one commit: pass
# --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) --build-arg REVISION=$(git rev-parse HEAD).

FROM debian:12-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
# The build packages are those of `make build` (one list, scripts/install-deps.sh), so a module
# that needs a new library cannot build on a laptop and fail here.
COPY scripts/install-deps.sh /usr/local/sbin/install-deps
RUN install-deps runtime && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the binaries, not the tests. mockarty-runner is built (and then required) as soon as
# cmd/mockarty-runner exists; until then the image has no runner.
RUN targets="mockarty mockarty-resolver mockarty-operator"; \
    if [ -f cmd/mockarty-runner/CMakeLists.txt ]; then targets="$targets mockarty-runner"; fi; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DMK_SANITIZE=OFF \
 && cmake --build /build -j"$(nproc)" --target $targets \
 && mkdir -p /out \
 && for b in $targets; do \
      f="$(find /build -type f -name "$b" -perm -u+x | head -n 1)"; \
      if [ -z "$f" ]; then echo "binary $b was not built" >&2; exit 1; fi; \
      install -m 0755 -s "$f" "/out/$b"; \
    done

FROM debian:12-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.1.0
ARG REVISION=unknown
# Seen by the RUN steps (useradd dates its password entry by it): with buildah --timestamp (or
# docker's SOURCE_DATE_EPOCH) the same commit gives the same image.
ARG SOURCE_DATE_EPOCH
ARG SOURCE=https://github.com/mockarty/mockarty-c
LABEL org.opencontainers.image.title="mockarty" \
      org.opencontainers.image.description="Mockarty-compatible mock server: admin, resolver, runner, operator" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Runtime libraries only (checked against ldd of the built binaries by
# packaging/image_deps_test.py); ca-certificates for TLS to PostgreSQL, Redis and the API server;
# tini as PID 1 so SIGTERM reaches the binary and zombies are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates tini \
      libh2o-evloop0.13 libjansson4 libyaml-0-2 libsqlite3-0 libpcre2-8-0 libcurl4 \
      libhiredis0.14 libpq5 libssl3 libnghttp2-14 libprotobuf-c1 libsodium23 libduktape207 \
      libxml2 libwslay1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old /var/lib/dpkg/*-old \
 && groupadd --system --gid 10001 mockarty \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mockarty \
      --shell /usr/sbin/nologin mockarty \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/mockarty
COPY --from=build /out/ /usr/local/bin/
COPY packaging/docker-entrypoint.sh /usr/local/bin/docker-entrypoint
USER 10001:10001
WORKDIR /var/lib/mockarty
# 5770 admin HTTP, 5773 coordinator gRPC, 5780 resolver, 6770 runner dashboard, 8080 operator.
EXPOSE 5770 5773 5780 6770 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint"]
CMD ["mockarty"]
