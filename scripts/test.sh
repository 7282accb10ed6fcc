#!/usr/bin/env bash
# Runs every test:
#   0. make lint: formatting (swift-format, clang-format), the layer rule, function length
#      (CONTRIBUTING.md);
#   1. swift test: unit tests and end-to-end tests (the built binary against real SQLite files, real
#      OpenSSL, and a real S3 server: SeaweedFS, started on loopback by the tests themselves);
#   2. the fuzz targets (Fuzz/, scripts/fuzz.sh): each libFuzzer target for 60 s, two at a time, over
#      the committed corpus, which also replays every reproducer of a past finding;
#   3. the Debian package test (build the .deb, lintian, install, man pages, cron, purge) when run as
#      root on a machine with dpkg-buildpackage; elsewhere it says so and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

echo "== make lint"
make lint

echo "== swift build --build-tests"
swift build --build-tests
echo "== swift test"
# All tests are XCTest; without this flag swift test also prints an empty Swift Testing run.
swift test --skip-build --disable-swift-testing

echo "== fuzzing (scripts/fuzz.sh)"
bash scripts/fuzz.sh --seconds 60

if [ "$(id -u)" -eq 0 ] && command -v dpkg-buildpackage >/dev/null; then
    echo "== Debian package test"
    bash debian/tests/run.sh
else
    echo "== Debian package test skipped (needs root and dpkg-buildpackage)"
fi
