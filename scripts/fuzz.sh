#!/bin/bash
# Runs the libFuzzer targets of tests/fuzz/ (docs/FUZZING.md).
#
#   scripts/fuzz.sh run FUZZ_DIR TARGET...
#       fuzzes each target for $FUZZ_SECONDS (default 300), $FUZZ_JOBS at a
#       time (default 2), each from a copy of tests/fuzz/corpus/TARGET in
#       FUZZ_DIR/run/TARGET/ (the committed corpus is never written);
#   scripts/fuzz.sh replay FUZZ_DIR TARGET...
#       runs every file of tests/fuzz/regress/TARGET/ and of the seed corpus
#       through its target once.
#
# FUZZ_DIR holds the fuzz_TARGET binaries (make fuzz-build).  A crash, a
# broken invariant, a leak, a timeout (10 s an input) or memory over 2 GiB
# fails the run; the reproducer's path is printed, and it stays in
# FUZZ_DIR/run/TARGET/artifacts/ until the next run.
set -u

usage() {
    echo "usage: $0 run|replay FUZZ_DIR TARGET..." >&2
    exit 2
}

[ $# -ge 3 ] || usage
mode=$1
dir=$2
shift 2
seconds=${FUZZ_SECONDS:-300}
jobs=${FUZZ_JOBS:-2}
corpus=tests/fuzz/corpus
regress=tests/fuzz/regress
common=(-timeout=10 -rss_limit_mb=2048)

# The longest input worth trying: a few frames, one frame body, a few
# requests, a configuration file with flags, an image header and a body.
max_len() {
    case $1 in
    deframer) echo 4096 ;;
    msg) echo 256 ;;
    query) echo 4096 ;;
    config) echo 4096 ;;
    image) echo 4168 ;;
    *) echo 4096 ;;
    esac
}

for t in "$@"; do
    if [ ! -x "$dir/fuzz_$t" ]; then
        echo "fuzz: $dir/fuzz_$t is missing (make fuzz-build)" >&2
        exit 2
    fi
done

# Files of a directory, none if it is absent or empty; README files are
# notes, not inputs.
inputs() {
    [ -d "$1" ] || return 0
    find "$1" -maxdepth 1 -type f ! -name 'README*' | sort
}

replay_one() {
    local t=$1 work files
    work=$dir/run/replay-$t
    mapfile -t files < <(inputs "$regress/$t"; inputs "$corpus/$t")
    if [ ${#files[@]} -eq 0 ]; then
        echo "fuzz: $t: nothing to replay"
        return 0
    fi
    rm -rf "$work"
    mkdir -p "$work"
    if ! TMPDIR=$work "$dir/fuzz_$t" "${common[@]}" "${files[@]}" \
        >"$work/log" 2>&1; then
        echo "fuzz: $t: replay FAILED on" \
            "$(grep '^Running: ' "$work/log" | tail -n 1 | cut -d' ' -f2-)"
        tail -n 40 "$work/log"
        return 1
    fi
    echo "fuzz: $t: replayed ${#files[@]} inputs" \
        "($(inputs "$regress/$t" | wc -l) regression)"
    rm -rf "$work"
}

# Prints the line that sums up a finished run.
summary() {
    local t=$1 log=$2 last runs rate
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz: $t: ${runs:-?} runs in ${seconds} s, ${rate:-?} exec/s," \
        "$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' |
            tr -d :)"
}

fuzz_one() {
    local t=$1 work rc dict
    work=$dir/run/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
    if [ -d "$corpus/$t" ]; then
        inputs "$corpus/$t" | while read -r f; do cp "$f" "$work/corpus/"; done
    fi
    dict=()
    if [ -f "tests/fuzz/$t.dict" ]; then
        dict=(-dict="tests/fuzz/$t.dict")
    fi
    # libFuzzer stops itself after max_total_time; the outer timeout is
    # for a target that does not.
    TMPDIR=$work/tmp timeout -k 10 $((seconds + 120)) "$dir/fuzz_$t" \
        "${common[@]}" "${dict[@]}" -max_total_time="$seconds" \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
        echo "fuzz: $t FAILED (exit $rc); reproducer:"
        find "$work/artifacts" -type f | sed 's/^/    /'
        grep -E 'ERROR|invariant|SUMMARY|runtime error' "$work/log" | head -n 10
        echo "    log: $work/log"
        echo "    replay: $dir/fuzz_$t REPRODUCER"
        return 1
    fi
    summary "$t" "$work/log"
    touch "$work/ok"
}

failed=0
case $mode in
replay)
    for t in "$@"; do
        replay_one "$t" || failed=$((failed + 1))
    done
    ;;
run)
    # $jobs targets at a time; each leaves "ok" in its directory when it
    # passes, read once all have ended.
    for t in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
            wait -n
        done
        fuzz_one "$t" &
    done
    wait
    for t in "$@"; do
        [ -e "$dir/run/$t/ok" ] || failed=$((failed + 1))
    done
    ;;
*)
    usage
    ;;
esac

if [ $failed -ne 0 ]; then
    echo "fuzz: $failed of $# targets failed"
    exit 1
fi
if [ "$mode" = run ]; then
    echo "fuzz: $# targets, ${seconds} s each, no crash"
fi
