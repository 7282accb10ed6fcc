#!/usr/bin/env bash
# make-prev-deb.sh REPO REV BINARY OUTDIR: builds the laju-backup .deb of an earlier commit REV of
# REPO around an already built BINARY, for the upgrade test. Everything but the compiler is that
# commit's own: its debian/ (control, rules, maintainer scripts, overrides), Makefile and packaging
# files, run through dpkg-buildpackage and debhelper as a real build would (so its conffiles,
# maintainer scripts and file list are exactly what that version shipped). Only `swift build` is
# skipped: the old Makefile runs $(SWIFT), and SWIFT=true turns it into a no-op with BINARY placed
# where the build would have left it. Conffile handling is dpkg's, so the binary's version does
# not matter to the upgrade.
# Writes OUTDIR/laju-backup_<old version>_<arch>.deb; the build log is OUTDIR/prev-build.log.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 REPO REV BINARY OUTDIR" >&2; exit 2; }
repo=$1 rev=$2 bin=$3 out=$4

tree=$out/prev-src
rm -rf "$tree"
mkdir -p "$tree"
git -C "$repo" archive "$rev" | tar -x -C "$tree"
# Where the old debian/rules (SCRATCH := $(CURDIR)/.build-deb-release) expects the binary.
install -D -m 0755 "$bin" "$tree/.build-deb-release/release/laju-backup"
# -nc: no clean first (it would delete the binary); SWIFT=true: no compiler run.
(cd "$tree" && SWIFT=true dpkg-buildpackage -b -nc -us -uc) >"$out/prev-build.log" 2>&1
