#!/usr/bin/env bash
# Runs every test: unit and end-to-end (swift test, which starts its own SeaweedFS S3 server on
# loopback), then the Debian package test when run as root with dpkg-buildpackage available.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift test"
swift build --build-tests
swift test --skip-build 2>&1 | tee .build/test-output.txt
