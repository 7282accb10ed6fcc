#!/usr/bin/env bash
# Incremental backups (restore points) against full ones on a generated database, local-directory store:
# after a base point, append rows worth 1% of the database and update 0.1% of the existing rows at
# random, then time `backup --incremental` and a full `backup` of the same database; then take
# POINTS-1 more such points (chains are capped at 64 manifests: a new base follows 63 incremental
# points), one more checked with integrity_check, a full backup of that same state, and time
# `restore --at latest` (with and without integrity_check) against a full restore of the same
# state. Prints bytes uploaded, wall time and peak RSS (GNU time) for each. Usage:
#   bench/bench-incremental.sh [SIZE_MIB=1024] [WORK_DIR=/var/tmp/laju-bench-incr] [BINARY=.build/release/laju-backup] [POINTS=96]
set -euo pipefail
size=${1:-1024}
work=${2:-/var/tmp/laju-bench-incr}
bin=${3:-$(pwd)/.build/release/laju-backup}
points=${4:-96}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
[ -x "$bin" ] || swift build -c release --product laju-backup
db="$work/app.sqlite3"
rm -rf "$work" && mkdir -p "$work"/{store,tmp,out}
python3 "$(dirname "$0")/make-db.py" "$db" "$size"
"$bin" migrate --database "$db" >/dev/null 2>&1 || true
export BACKUP_DATABASE="$db" BACKUP_STORAGE="file://$work/store" BACKUP_TMPDIR="$work/tmp" BACKUP_LOCK_DIR="$work/tmp"
BACKUP_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export BACKUP_ENCRYPTION_KEY
# Kept beside the store (a benchmark's throwaway key), so the store can be examined afterwards.
(umask 077 && printf 'BACKUP_ENCRYPTION_KEY=%s\n' "$BACKUP_ENCRYPTION_KEY" >"$work/key.env")

declare -A wall rss
measure() {
    local name=$1; shift
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f '%e %M' -o "$work/time.$name" "$@" > "$work/out.$name" 2> "$work/log.$name" || { cat "$work/log.$name"; exit 1; }
    read -r wall[$name] rss[$name] < "$work/time.$name"
}
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

# One round of changes: 1% of the file in new rows (orders of ~120 bytes), 0.1% of the rows updated.
change() {
    python3 - "$db" <<'PY'
import os, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
size = os.path.getsize(sys.argv[1])
n_orders = db.execute("SELECT max(id) FROM orders").fetchone()[0]
rnd = random.Random()
new = size // 100 // 120
db.executemany("INSERT INTO orders(user_id, total_cents, status, note, created_at) VALUES (1, ?, 'paid', ?, 0)",
               [(rnd.randint(100, 999999), os.urandom(40).hex()) for _ in range(new)])
db.executemany("UPDATE orders SET total_cents = ? WHERE id = ?",
               [(rnd.randint(100, 999999), rnd.randint(1, n_orders)) for _ in range(max(1, n_orders // 1000))])
db.commit()
PY
}

measure base "$bin" backup --incremental --json
change
measure incremental "$bin" backup --incremental --json
measure full "$bin" backup --json
inc_bytes=$(json "$work/out.incremental" uploaded_bytes)
full_bytes=$(json "$work/out.full" object_bytes)
for i in $(seq 2 "$points"); do change; "$bin" backup --incremental --quiet >/dev/null; done
# One more round, recorded as a point checked with integrity_check (BACKUP_INCREMENTAL_CHECK=full),
# then a full backup of that same state: both restores below rebuild the same database.
change
measure point_full_check env BACKUP_INCREMENTAL_CHECK=full "$bin" backup --incremental --json
measure full_final "$bin" backup --json
depth=$("$bin" list --points --json | python3 -c "import json,sys; p=json.load(sys.stdin)['points']; print(len(p), p[0]['kind'], p[0].get('depth'))")
# The point recorded integrity_check: its restore proves the bytes by the point's digest. The
# default points (quick_check) make restore run integrity_check: --check full costs the same.
measure restore_at "$bin" restore --at latest --output "$work/out/at.db"
measure restore_at_check "$bin" restore --at latest --check full --output "$work/out/at-check.db"
measure restore_full "$bin" restore --output "$work/out/full.db"
cmp "$work/out/at.db" "$work/out/full.db" >/dev/null && same=identical || same=DIFFERENT

db_bytes=$(stat -c %s "$db")
printf 'database at the end: %s bytes; points: %s (count, newest kind, its depth); restored files: %s\n' "$db_bytes" "$depth" "$same"
printf '%-34s %10s %10s %14s\n' step wall_s rss_KiB uploaded_bytes
printf '%-34s %10s %10s %14s\n' "base point" "${wall[base]}" "${rss[base]}" "$(json "$work/out.base" uploaded_bytes)"
printf '%-34s %10s %10s %14s\n' "incremental point" "${wall[incremental]}" "${rss[incremental]}" "$inc_bytes"
printf '%-34s %10s %10s %14s\n' "full backup" "${wall[full]}" "${rss[full]}" "$full_bytes"
printf '%-34s %10s %10s %14s\n' "one more point, integrity_check" "${wall[point_full_check]}" "${rss[point_full_check]}" "$(json "$work/out.point_full_check" uploaded_bytes)"
printf '%-34s %10s %10s %14s\n' "full backup, same state" "${wall[full_final]}" "${rss[full_final]}" "$(json "$work/out.full_final" object_bytes)"
printf '%-34s %10s %10s\n' "restore --at latest" "${wall[restore_at]}" "${rss[restore_at]}"
printf '%-34s %10s %10s\n' "restore --at latest --check full" "${wall[restore_at_check]}" "${rss[restore_at_check]}"
printf '%-34s %10s %10s\n' "full restore, same state" "${wall[restore_full]}" "${rss[restore_full]}"
python3 - "$inc_bytes" "$full_bytes" "${wall[incremental]}" "${wall[full]}" "${wall[restore_at]}" "${wall[restore_at_check]}" "${wall[restore_full]}" <<'PY'
import sys
ib, fb, iw, fw, ra, rc, rf = map(float, sys.argv[1:])
print(f"uploaded: {100*ib/fb:.1f}% of a full backup (target <= 5%)")
print(f"wall: {100*iw/fw:.0f}% of a full backup (target <= 30%)")
print(f"restore --at: {ra/rf:.2f}x a full restore of the same state (target <= 1.5x); with integrity_check: {rc/rf:.2f}x")
PY
