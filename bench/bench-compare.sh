#!/usr/bin/env bash
# The whole comparison of docs/performance.md in one run, on one database, local-directory store:
#   backup:  laju-backup with gzip, zstd and xz (the full integrity_check at backup time, the
#            default, and BACKUP_CHECK=quick) against the shell pipelines
#            sqlite3 .backup + gzip -6 + openssl enc,  sqlite3 .backup + pigz -6 -p<cores>,
#            sqlite3 .backup + zstd -3 -T0;
#   restore: laju-backup (default --check auto, quick, full) against openssl enc -d | gzip -dc and
#            zstd -dc.
# Prints wall time, CPU time (user+sys), ratio (stored bytes / database bytes) and peak RSS for each,
# then the ratios against the targets docs/performance.md names. The page cache is dropped before every step.
#   bench/bench-compare.sh [SIZE_MIB=1024] [WORK_DIR=/var/tmp/laju-compare] [BINARY=.build/release/laju-backup]
# REUSE_DB=1 keeps a generated database between runs; SKIP_XZ=1 leaves xz out (it is slow).
set -euo pipefail
size=${1:-1024}
work=${2:-/var/tmp/laju-compare}
bin=${3:-$(pwd)/.build/release/laju-backup}
cores=$(nproc)
for p in time pigz zstd xz-utils sqlite3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        { echo "installing $p..." >&2; apt-get install -y -qq "$p" >/dev/null; }
done
[ -x "$bin" ] || swift build -c release --product laju-backup
db="$work/app.sqlite3"
if [ "${REUSE_DB:-0}" = 1 ] && [ -f "$db" ]; then
    find "$work" -mindepth 1 -maxdepth 1 ! -name 'app.sqlite3*' -exec rm -rf {} +
    sqlite3 "$db" "DELETE FROM backup_files" 2>/dev/null || true
else
    rm -rf "$work" && mkdir -p "$work"
    python3 "$(dirname "$0")/make-db.py" "$db" "$size"
fi
mkdir -p "$work"/{store,tmp,out,pipe}
key=$(head -c 32 /dev/urandom | base64)
hexkey=$(printf '%s' "$key" | base64 -d | od -An -tx1 | tr -d ' \n')
iv=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BACKUP_DATABASE="$db" BACKUP_STORAGE="file://$work/store" BACKUP_ENCRYPTION_KEY="$key" BACKUP_TMPDIR="$work/tmp"
db_bytes=$(stat -c %s "$db")

declare -A wall cpu rss stored
# measure NAME CMD...: runs CMD under GNU time with a cold page cache.
measure() {
    local name=$1; shift
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f '%e %U %S %M' -o "$work/time.$name" "$@" > "$work/log.$name" 2>&1 || { cat "$work/log.$name"; exit 1; }
    local u s
    read -r wall[$name] u s rss[$name] < "$work/time.$name"
    cpu[$name]=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
}
latest() { sqlite3 "$db" "SELECT key FROM backup_files ORDER BY uploaded_at DESC, rowid DESC LIMIT 1"; }
laju_backup() {   # NAME CODEC CHECK
    measure "$1" env BACKUP_COMPRESSION="$2" BACKUP_CHECK="$3" "$bin" backup
    local k; k=$(latest); eval "key_$1=\$k"; stored[$1]=$(stat -c %s "$work/store/$k")
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
laju_backup gzip gzip full
laju_backup gzip_quick gzip quick
laju_backup zstd zstd full
laju_backup zstd_quick zstd quick
[ "${SKIP_XZ:-0}" = 1 ] || laju_backup xz xz full
measure sh_gzip bash -c "sqlite3 '$db' \".backup '$work/pipe/snap.db'\" && gzip -6 < '$work/pipe/snap.db' > '$work/pipe/snap.db.gz' && openssl enc -aes-256-ctr -K $hexkey -iv $iv -in '$work/pipe/snap.db.gz' -out '$work/pipe/snap.gz.enc' && rm '$work/pipe/snap.db' '$work/pipe/snap.db.gz'"
stored[sh_gzip]=$(stat -c %s "$work/pipe/snap.gz.enc")
measure sh_pigz bash -c "sqlite3 '$db' \".backup '$work/pipe/snap.db'\" && pigz -6 -p$cores < '$work/pipe/snap.db' > '$work/pipe/snap.pigz.gz' && rm '$work/pipe/snap.db'"
stored[sh_pigz]=$(stat -c %s "$work/pipe/snap.pigz.gz")
measure sh_zstd bash -c "sqlite3 '$db' \".backup '$work/pipe/snap.db'\" && zstd -q -3 -T0 '$work/pipe/snap.db' -o '$work/pipe/snap.db.zst' && rm '$work/pipe/snap.db'"
stored[sh_zstd]=$(stat -c %s "$work/pipe/snap.db.zst")

measure r_gzip "$bin" restore --key "$key_gzip" --output "$work/out/gzip.db"
measure r_gzip_quick "$bin" restore --key "$key_gzip" --check quick --output "$work/out/gzip-quick.db"
measure r_gzip_full "$bin" restore --key "$key_gzip" --check full --output "$work/out/gzip-full.db"
measure r_gzip_nomac "$bin" restore --key "$key_gzip_quick" --output "$work/out/gzip-nomac.db"
measure r_zstd "$bin" restore --key "$key_zstd" --output "$work/out/zstd.db"
measure r_zstd_quick "$bin" restore --key "$key_zstd" --check quick --output "$work/out/zstd-quick.db"
[ "${SKIP_XZ:-0}" = 1 ] || measure r_xz "$bin" restore --key "$key_xz" --output "$work/out/xz.db"
measure r_sh_gzip bash -c "openssl enc -d -aes-256-ctr -K $hexkey -iv $iv -in '$work/pipe/snap.gz.enc' | gzip -dc > '$work/pipe/restored-gzip.db'"
measure r_sh_zstd bash -c "zstd -q -dc '$work/pipe/snap.db.zst' > '$work/pipe/restored-zstd.db'"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

mib() { awk -v b="$1" 'BEGIN{printf "%.0f MiB", b/1048576}'; }
row() {   # LABEL NAME
    local n=$2
    awk -v l="$1" -v w="${wall[$n]}" -v c="${cpu[$n]}" -v r="${rss[$n]}" -v s="${stored[$n]:-}" -v b="$db_bytes" 'BEGIN{
        ratio = s == "" ? "" : sprintf("%.3f", s / b)
        printf "| %-58s | %7.2f s | %7.2f s | %6s | %6.1f MiB |\n", l, w, c, ratio, r / 1024 }'
}
x() { awk -v a="${wall[$1]}" -v b="${wall[$2]}" 'BEGIN{printf "%.2f", a/b}'; }
echo
echo "database $(mib "$db_bytes"), $cores cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "| step | wall | CPU | ratio | peak RSS |"
echo "|---|---|---|---|---|"
row "laju-backup backup, gzip -6 (integrity_check at backup)" gzip
row "laju-backup backup, gzip -6, BACKUP_CHECK=quick" gzip_quick
row "laju-backup backup, zstd -3 (integrity_check at backup)" zstd
row "laju-backup backup, zstd -3, BACKUP_CHECK=quick" zstd_quick
[ "${SKIP_XZ:-0}" = 1 ] || row "laju-backup backup, xz -3 (integrity_check at backup)" xz
row "shell: sqlite3 .backup; gzip -6; openssl enc" sh_gzip
row "shell: sqlite3 .backup; pigz -6 -p$cores (no encryption)" sh_pigz
row "shell: sqlite3 .backup; zstd -3 -T0 (no encryption)" sh_zstd
row "laju-backup restore gzip (default: auto, MAC recorded)" r_gzip
row "laju-backup restore gzip --check quick" r_gzip_quick
row "laju-backup restore gzip --check full" r_gzip_full
row "laju-backup restore gzip, no MAC recorded (auto = full)" r_gzip_nomac
row "laju-backup restore zstd (default: auto, MAC recorded)" r_zstd
row "laju-backup restore zstd --check quick" r_zstd_quick
[ "${SKIP_XZ:-0}" = 1 ] || row "laju-backup restore xz (default: auto, MAC recorded)" r_xz
row "shell: openssl enc -d | gzip -dc (no check)" r_sh_gzip
row "shell: zstd -dc (no decryption, no check)" r_sh_zstd
echo
echo "targets (wall-time ratios of this run):"
echo "  backup zstd / backup gzip (both with integrity_check):   $(x zstd gzip)   (<= 0.25)"
echo "  backup zstd / backup gzip (both quick_check):            $(x zstd_quick gzip_quick)"
echo "  object zstd / object gzip:                               $(awk -v a="${stored[zstd]}" -v b="${stored[gzip]}" 'BEGIN{printf "%.3f", a/b}')   (<= 1)"
echo "  backup zstd quick / (snapshot + zstd -3 -T0):            $(x zstd_quick sh_zstd)   (<= 1.1)"
echo "  backup zstd full / (snapshot + zstd -3 -T0):             $(x zstd sh_zstd)"
echo "  backup gzip quick / (snapshot + pigz):                   $(x gzip_quick sh_pigz)   (<= 1.05)"
echo "  backup gzip full / (snapshot + pigz):                    $(x gzip sh_pigz)   (<= 1.35)"
echo "  restore default / (openssl | gzip -dc):                  $(x r_gzip r_sh_gzip)   (<= 1.1)"
echo "  restore --check quick / (openssl | gzip -dc):            $(x r_gzip_quick r_sh_gzip)   (<= 1.0)"
echo "  restore zstd default / zstd -dc:                         $(x r_zstd r_sh_zstd)"
grep -h -E ' (seal|snapshot|integrity_check|quick_check|upload|decrypt|integrity_mac):' "$work"/log.gzip "$work"/log.zstd "$work"/log.r_gzip "$work"/log.r_gzip_full 2>/dev/null | sed 's/^[^ ]* laju-backup\[[0-9]*\]: /  /' || true
for f in gzip-quick gzip-full; do
    cmp -s "$work/out/$f.db" "$work/out/gzip.db" || { echo "restored $f differs"; exit 1; }
done
sqlite3 "$work/out/gzip.db" 'SELECT count(*) FROM orders' >/dev/null && echo "restored databases identical"
