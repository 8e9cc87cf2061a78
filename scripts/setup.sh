#!/usr/bin/env bash
# Installs what building, testing and the demo need, then starts the local
# services (RabbitMQ, moto, PostgreSQL and MariaDB, on 127.0.0.1 only; the
# databases with the test database, user and push table). Idempotent and quick when
# everything is already there: apt and pip run only for what is missing.
#
# Usage: scripts/setup.sh [--no-services]
# Needs: Debian 12, root (or sudo) for apt, Rust (cargo) and Python 3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# Debian packages. erlang-jiffy/erlang-meck land in /usr/lib/erlang/lib, so they
# are on every node's code path (tests only: the product uses neither).
# wrk: the load generator of scripts/bench_http.sh. postgresql, mariadb-server
# and Debian's Erlang clients for them: the push rdbms tests (test-only).
APT_PACKAGES=(erlang-nox erlang-dev erlang-common-test rebar3 rabbitmq-server
              erlang-jiffy erlang-meck wrk postgresql mariadb-server
              erlang-p1-pgsql erlang-p1-mysql)
# The Rust build links with the system C toolchain.
command -v cc >/dev/null 2>&1 || APT_PACKAGES+=(gcc libc6-dev)
# Python 3.11+ with pip: moto's server, and the test host parses TOML with tomllib.
command -v "$PYTHON" >/dev/null 2>&1 || APT_PACKAGES+=(python3)
"$PYTHON" -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

install_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "apt: all packages present"
        return 0
    fi
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep maintainer scripts from starting RabbitMQ on every interface
    # (invoke-rc.d asks policy-rc.d; 101 = "action forbidden"). Our services
    # script starts it on 127.0.0.1 instead.
    local policy=/usr/sbin/policy-rc.d added_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=yes
    fi
    local rc=0
    as_root apt-get update -qq || rc=$?
    if [ $rc -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}" || rc=$?
    fi
    [ "$added_policy" = no ] || as_root rm -f "$policy"
    if [ $rc -ne 0 ]; then
        log "apt: install failed ($rc)"
        return $rc
    fi
}

install_moto() {
    # `import moto.server` needs the [server] extra (flask and friends).
    if "$PYTHON" -c 'import moto.server' >/dev/null 2>&1; then
        log "pip: moto[server] present"
        return 0
    fi
    log "pip: installing moto[server]"
    local out
    if ! out=$("$PYTHON" -m pip install --quiet --disable-pip-version-check 'moto[server]' 2>&1); then
        if grep -q externally-managed-environment <<<"$out"; then
            # Debian's own python3 refuses user installs by default (PEP 668).
            "$PYTHON" -m pip install --quiet --disable-pip-version-check \
                --break-system-packages 'moto[server]'
        else
            printf '%s\n' "$out" >&2
            return 1
        fi
    fi
    "$PYTHON" -c 'import moto.server' || { log "pip: moto[server] installed but not importable by $PYTHON"; return 1; }
}

start=$SECONDS
command -v cargo >/dev/null 2>&1 || { log "cargo not found: install Rust (rustup) first"; exit 1; }
install_apt_packages
"$PYTHON" -c 'import tomllib' 2>/dev/null || { log "$PYTHON has no tomllib: Python 3.11+ is needed"; exit 1; }
install_moto
# mod_event_pusher_http_webhooks_SUITE checks signatures with standardwebhooks
# (PyPI), not our code; same fallback as moto for an externally-managed Python.
"$PYTHON" -c 'import standardwebhooks' >/dev/null 2>&1 \
    || "$PYTHON" -m pip install --quiet --disable-pip-version-check standardwebhooks 2>/dev/null \
    || "$PYTHON" -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks \
    || { log "pip: standardwebhooks could not be installed"; exit 1; }
if [ "${1:-}" != "--no-services" ]; then
    bash scripts/services.sh start
fi
log "done in $((SECONDS - start))s"
