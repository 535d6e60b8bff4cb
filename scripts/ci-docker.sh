#!/usr/bin/env bash
# Install and start a Docker engine and make the local base image the e2e tests build on
# (tests/e2e/test_docker.py). Idempotent: every step is skipped when already done.
# There is no image registry on these machines, so the base image is made from Debian's
# packages with debootstrap (see ../shared/ENVIRONMENT.md).
set -euo pipefail

BASE_IMAGE="${DOCKYARD_TEST_BASE_IMAGE:-dockyard-test-base:bookworm}"
SUITE="${DOCKYARD_TEST_BASE_SUITE:-bookworm}"
ENGINE_DEADLINE="${DOCKYARD_ENGINE_DEADLINE:-90}"

log() { echo "ci-docker: $*" >&2; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    if [ ${#missing[@]} -eq 0 ]; then return; fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
}

start_engine() {
    if docker version >/dev/null 2>&1; then return; fi
    log "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    local deadline=$((SECONDS + ENGINE_DEADLINE))
    until docker version >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            log "dockerd did not answer within ${ENGINE_DEADLINE}s; last lines of its log:"
            tail -n 20 /var/log/dockerd.log >&2 || true
            exit 1
        fi
        sleep 1
    done
    log "engine up"
}

debian_mirror() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

make_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
    local rootfs
    rootfs=$(mktemp -d /tmp/dockyard-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' RETURN
    log "debootstrap $SUITE into $rootfs (about a minute)"
    debootstrap --variant=minbase --include=python3,python3-venv,git,ca-certificates,tini \
        "$SUITE" "$rootfs" "$(debian_mirror)" >/tmp/dockyard-debootstrap.log 2>&1 || {
        tail -n 20 /tmp/dockyard-debootstrap.log >&2; exit 1; }
    # Test infrastructure, not product: package registries answer inside containers with a
    # certificate signed by the host's local CA, so the image trusts the host's bundle.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE_IMAGE" >/dev/null
    log "made $BASE_IMAGE"
}

install_packages
start_engine
make_base_image
