#!/usr/bin/env bash
# Backup and restore of a generated database to the local-directory store, against the classic
# shell pipeline on the same file (sqlite3 .backup, gzip -6, openssl enc -aes-256-ctr).
# Prints wall time, throughput and peak RSS for each. Usage:
#   bench/bench-local.sh [SIZE_MIB=1024] [WORK_DIR=/var/tmp/laju-bench] [BINARY=.build/release/laju-backup]
set -euo pipefail
size=${1:-1024}
work=${2:-/var/tmp/laju-bench}
bin=${3:-$(pwd)/.build/release/laju-backup}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
[ -x "$bin" ] || swift build -c release --product laju-backup
db="$work/app.sqlite3"
if [ "${REUSE_DB:-0}" = 1 ] && [ -f "$db" ]; then      # keep a generated database between runs
    find "$work" -mindepth 1 -maxdepth 1 ! -name app.sqlite3 -exec rm -rf {} +
    sqlite3 "$db" "DELETE FROM backup_files"
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

# measure NAME CMD...: runs CMD under GNU time, records wall seconds and peak RSS (KiB).
declare -A wall rss
measure() {
    local name=$1; shift
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f '%e %M' -o "$work/time.$name" "$@" > "$work/log.$name" 2>&1 || { cat "$work/log.$name"; exit 1; }
    read -r wall[$name] rss[$name] < "$work/time.$name"
}

measure backup "$bin" backup
measure pipeline_backup bash -c "sqlite3 '$db' \".backup '$work/pipe/snap.db'\" && gzip -6 < '$work/pipe/snap.db' > '$work/pipe/snap.db.gz' && openssl enc -aes-256-ctr -K $hexkey -iv $iv -in '$work/pipe/snap.db.gz' -out '$work/pipe/snap.enc' && rm '$work/pipe/snap.db' '$work/pipe/snap.db.gz'"
measure restore "$bin" restore --output "$work/out/restored.db"
measure restore_quick "$bin" restore --check quick --output "$work/out/restored-quick.db"
measure pipeline_restore bash -c "openssl enc -d -aes-256-ctr -K $hexkey -iv $iv -in '$work/pipe/snap.enc' | gzip -dc > '$work/pipe/restored.db'"
obj=$(find "$work/store" -name '*.enc' -printf '%s\n' | head -1)

mib() { awk -v b="$1" 'BEGIN{printf "%.0f MiB", b/1048576}'; }
row() { awk -v n="$1" -v w="$2" -v r="$3" -v b="$db_bytes" 'BEGIN{printf "| %-44s | %7.2f s | %8.1f MiB/s | %7.1f MiB |\n", n, w, b/1048576/w, r/1024}'; }
echo
echo "database $(mib "$db_bytes"), stored object $(mib "$obj") (gzip -6 + AES-256-GCM), $(nproc) cores"
echo "| step                                         |    wall   |  throughput    | peak RSS  |"
echo "|----------------------------------------------|-----------|----------------|-----------|"
row "laju-backup backup (snapshot+gzip+aes+md5+store)" "${wall[backup]}" "${rss[backup]}"
row "shell: sqlite3 .backup; gzip -6; openssl enc" "${wall[pipeline_backup]}" "${rss[pipeline_backup]}"
row "laju-backup restore (md5+aes+gunzip+integrity)" "${wall[restore]}" "${rss[restore]}"
row "laju-backup restore --check quick" "${wall[restore_quick]}" "${rss[restore_quick]}"
row "shell: openssl enc -d | gzip -dc" "${wall[pipeline_restore]}" "${rss[pipeline_restore]}"
grep -h -E 'decrypt:|checksum:|integrity_check:|quick_check:|seal:|snapshot:|upload:' "$work"/log.backup "$work"/log.restore "$work"/log.restore_quick 2>/dev/null | sed 's/^[^ ]* laju-backup\[[0-9]*\]: /  /' || true
cmp -s <(sqlite3 "$db" 'SELECT count(*), sum(total_cents) FROM orders') <(sqlite3 "$work/out/restored.db" 'SELECT count(*), sum(total_cents) FROM orders') && echo "restored content matches" || { echo "restored content DIFFERS"; exit 1; }
