#!/usr/bin/env bash
# Builds laju-backup's libFuzzer targets (Fuzz/) and runs each for a fixed time or number of runs.
#
#   bash scripts/fuzz.sh                       # every target for 60 s, two at a time (what CI runs)
#   bash scripts/fuzz.sh --seconds 600 xml     # one target, longer
#   bash scripts/fuzz.sh --runs 10000000 --jobs 1   # 10 M executions per target, one after another
#   bash scripts/fuzz.sh --merge --seconds 300 http # fold new coverage into Fuzz/corpus/http
#   bash scripts/fuzz.sh --list
#
# Options:
#   --seconds N   run each target for N seconds (default 60; with --runs, a cap: 0 = none)
#   --runs N      stop each target after N executions
#   --jobs N      targets run at the same time (default 2; the machine has 2 cores)
#   --nice N      niceness of the fuzzers (default 10)
#   --keep-going  do not stop at the first crash (libFuzzer -fork=1 -ignore_crashes=1
#                 -ignore_timeouts=1 -ignore_ooms=1): for long runs of a target with a known,
#                 unfixed finding; every crashing input is still kept and still fails the run
#   --merge       afterwards, merge what the runs found into Fuzz/corpus/<target> (libFuzzer
#                 -merge=1: only inputs that add coverage); without it the committed corpus is
#                 only read, and new inputs go to a temp directory that is deleted
#   --no-build    use the binaries already built
#   --list        print the target names and exit
#   TARGET...     only these (default: all)
#
# Per target it prints executions, exec/s, coverage (cov: edges, ft: features), peak RSS and the
# result. Exit status is non-zero if any target crashed, hung (-timeout=10 s per input), leaked,
# ran out of memory (-rss_limit_mb=2048) or a sanitizer reported anything; the input that did it is
# kept in Fuzz/artifacts/ (named in the output) and the log next to it.
# Writes only under Fuzz/ (.build/, artifacts/, and corpus/ with --merge) and one temp directory
# (under /dev/shm when it exists) that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

SWIFT_TARGETS=(xml s3error http metadata-headers metadata-json envfile key incremental)
C_TARGETS=(envelope envelope-tamper)
ALL_TARGETS=("${SWIFT_TARGETS[@]}" "${C_TARGETS[@]}")

seconds=60 seconds_set=0 runs=0 jobs=2 niceness=10 merge=0 build=1 keep_going=0 targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; seconds_set=1; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --nice) niceness="$2"; shift 2 ;;
        --merge) merge=1; shift ;;
        --keep-going) keep_going=1; shift ;;
        --no-build) build=0; shift ;;
        --list) printf '%s\n' "${ALL_TARGETS[@]}"; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (try --list)" >&2; exit 2; }
done
# --runs alone means "until N executions"; --seconds then only caps it when given explicitly.
if [ "$runs" -gt 0 ] && [ "$seconds_set" -eq 0 ]; then seconds=0; fi

BUILD=Fuzz/.build
ARTIFACTS=Fuzz/artifacts
mkdir -p "$ARTIFACTS"
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
WORK=$(mktemp -d "$base/laju-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------------------------------------
# Build
# ------------------------------------------------------------------------------------------------
swift_bin() { echo "$BUILD/release/fuzz-$1"; }
c_bin() { echo "$BUILD/c/fuzz-$1"; }
is_c_target() { [[ " ${C_TARGETS[*]} " == *" $1 "* ]]; }

if [ "$build" -eq 1 ]; then
    # Swift: release (-O keeps overflow and bounds checks; much faster than debug) with
    # -enable-testing for `@testable import LajuBackup`. The CSupport C target is instrumented too.
    # One product at a time: a plain `swift build` here would also link the laju-backup executable.
    for t in "${SWIFT_TARGETS[@]}"; do
        [[ " ${targets[*]} " == *" $t "* ]] || continue
        echo "== build fuzz-$t"
        if ! swift build --package-path Fuzz --scratch-path "$BUILD" -c release --product "fuzz-$t" \
                -Xswiftc -enable-testing -Xswiftc -parse-as-library \
                -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address \
                >"$WORK/build-$t.log" 2>&1; then
            grep -v "Cannot export local symbol" "$WORK/build-$t.log" | tail -40
            echo "fuzz.sh: building fuzz-$t failed" >&2
            exit 1
        fi
    done
    # C: the envelope target against the CSupport sources, with UBSan fatal.
    mkdir -p "$BUILD/c"
    for t in "${C_TARGETS[@]}"; do
        [[ " ${targets[*]} " == *" $t "* ]] || continue
        echo "== build fuzz-$t"
        defs=()
        [ "$t" = envelope-tamper ] && defs=(-DFUZZ_TAMPER)
        if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fuse-ld=lld -D_GNU_SOURCE "${defs[@]}" -ICSupport/include -ICSupport \
                Fuzz/c/fuzz_envelope.c CSupport/*.c -lsqlite3 -lcrypto -lz -lcurl -larchive -lzstd -llzma -lpthread \
                -o "$(c_bin "$t")" >"$WORK/build-$t.log" 2>&1; then
            cat "$WORK/build-$t.log"
            echo "fuzz.sh: building fuzz-$t failed" >&2
            exit 1
        fi
    done
fi

# ------------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------------
# Swift's own crash backtracer fights ASan over the crashing thread (and can hang): libFuzzer and
# ASan print the stack instead.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export FUZZ_TMPDIR="$WORK"

run_target() {
    local t="$1" bin corpus="Fuzz/corpus/$1" new="$WORK/new-$1" log="$WORK/$1.log"
    if is_c_target "$t"; then bin=$(c_bin "$t"); else bin=$(swift_bin "$t"); fi
    [ -x "$bin" ] || { echo "fuzz.sh: $bin is missing (build first)" >"$log"; echo 1 >"$WORK/$t.rc"; return; }
    mkdir -p "$new"
    local args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -detect_leaks=1
                "-artifact_prefix=$ARTIFACTS/$t.")
    [ "$seconds" -gt 0 ] && args+=("-max_total_time=$seconds")
    [ "$runs" -gt 0 ] && args+=("-runs=$runs")
    [ -f "Fuzz/dict/$t.dict" ] && args+=("-dict=Fuzz/dict/$t.dict")
    [ "$keep_going" -eq 1 ] && args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    ls "$ARTIFACTS" | grep -E "^$t\.(crash|leak|timeout|oom|slow-unit)-" >"$WORK/$t.before" || true
    local rc=0
    # New inputs go to $new (the first directory); the committed corpus is only read.
    nice -n "$niceness" "$bin" "${args[@]}" "$new" "$corpus" >"$log" 2>&1 || rc=$?
    echo "$rc" >"$WORK/$t.rc"
}

summary() {
    local t="$1" log="$WORK/$1.log" rc
    rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo 1)
    local execs speed rss cov result
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    if [ -z "$execs" ]; then
        # -fork=1 prints no final stats: take the last "#N: cov: ... exec/s: X ... time: Ts" line.
        execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
        speed=$(sed -n 's/^#[0-9]*: cov:.* exec\/s: \([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    # Inputs kept by this run (in -fork=1 mode the exit status does not tell).
    local new_artifacts
    new_artifacts=$(ls "$ARTIFACTS" | grep -E "^$t\.(crash|leak|timeout|oom|slow-unit)-" | grep -vxF -f "$WORK/$t.before" || true)
    [ -n "$new_artifacts" ] && [ "$rc" -eq 0 ] && rc=1
    local seeds
    seeds=$(find "Fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    result=ok
    if [ "$rc" -ne 0 ] || grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|SUMMARY: |Fatal error|fuzz invariant violated' "$log"; then
        result="FAILED (exit $rc)"
        local kept="$ARTIFACTS/$t.log"
        cp "$log" "$kept"
        local artifact
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        [ -n "$new_artifacts" ] && artifact=$(printf "$ARTIFACTS/%s " $new_artifacts)
        result+="; log $kept${artifact:+; input $artifact}"
    fi
    printf '%-17s seeds %4s  execs %10s  %7s exec/s  %-20s rss %5s MB  %s\n' \
        "$t" "$seeds" "${execs:-?}" "${speed:-?}" "${cov:-cov: ?}" "${rss:-?}" "$result"
    [ "$result" = ok ]
}

limit="${seconds} s"
if [ "$runs" -gt 0 ]; then
    limit="$runs runs"
    [ "$seconds" -gt 0 ] && limit+=" (at most $seconds s)"
fi
echo "== fuzzing ${#targets[@]} targets, $limit each, $jobs at a time"
start=$(date +%s)
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    echo "   start $t"
    run_target "$t" &
done
wait
elapsed=$(( $(date +%s) - start ))

echo "== results ($elapsed s)"
failed=0
for t in "${targets[@]}"; do summary "$t" || failed=1; done

if [ "$merge" -eq 1 ]; then
    for t in "${targets[@]}"; do
        [ -d "$WORK/new-$t" ] && [ -n "$(ls -A "$WORK/new-$t")" ] || continue
        if is_c_target "$t"; then bin=$(c_bin "$t"); else bin=$(swift_bin "$t"); fi
        before=$(find "Fuzz/corpus/$t" -type f | wc -l)
        "$bin" -merge=1 -timeout=10 -rss_limit_mb=2048 "Fuzz/corpus/$t" "$WORK/new-$t" >"$WORK/merge-$t.log" 2>&1 ||
            { echo "merge of $t failed:"; tail -5 "$WORK/merge-$t.log"; failed=1; }
        echo "   merged $t: $before -> $(find "Fuzz/corpus/$t" -type f | wc -l) files"
    done
fi

if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: FAILED: see the logs and inputs in $ARTIFACTS/ (reproduce: <binary> <input>)" >&2
    exit 1
fi
echo "fuzz.sh: no crash, hang, leak or sanitizer report"
