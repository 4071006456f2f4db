#!/bin/sh
# make bench: measures tetherd in one run on this machine and writes
# docs/PERFORMANCE.md.  Figures are ratios against references measured in
# the same run where a reference exists.  Usage: bench.sh BUILD_DIR
set -eu

build=$1
out=docs/PERFORMANCE.md
tmp=$(mktemp -d)
sim_pid=""
d_pid=""
cleanup() {
    [ -n "$d_pid" ] && kill -KILL "$d_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && kill -CONT "$sim_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && kill -KILL "$sim_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

start_sim() {
    rm -f "$tmp/tty"
    "$build/tether-sim" --link "$tmp/tty" "$@" >/dev/null 2>&1 &
    sim_pid=$!
    while [ ! -e "$tmp/tty" ]; do sleep 0.05; done
}

stop_sim() {
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
}

# All threads' context switches: each is a wake-up or a preemption.
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}

rss_kb() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status; }

echo "bench: store writer against a bare insert loop"
"$build/bench/store_bench" "$tmp" 2000000 >"$tmp/store.txt"

echo "bench: event-loop stalls at full ingest (10 s)"
start_sim --rate 20000 --channels 16 --heap-period 100
"$build/bench/loop_bench" "$tmp/tty" "$tmp/loop.db" 10 >"$tmp/loop.txt"
stop_sim

echo "bench: tetherd at full ingest, then idle"
start_sim --rate 20000 --channels 16 --heap-period 100
"$build/tetherd" --config /dev/null --device "$tmp/tty" --db "$tmp/d.db" \
    --socket "$tmp/sock" 2>"$tmp/tetherd.log" &
d_pid=$!
sleep 2
rss_start=$(rss_kb "$d_pid")
sleep 8
rss_full=$(rss_kb "$d_pid")
kill -STOP "$sim_pid" # no more serial traffic
sleep 5               # the link goes stale; writer drains
s0=$(switches "$d_pid")
sleep 10
s1=$(switches "$d_pid")
rss_idle=$(rss_kb "$d_pid")
kill -TERM "$d_pid"
wait "$d_pid" || true
d_pid=""
kill -CONT "$sim_pid"
stop_sim
rows=$(sqlite3 "$tmp/d.db" 'SELECT count(*) FROM adc')
wakeups=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", (b - a) / 10 }')

# Waits up to 10 s for tetherd to create its query socket $1.
wait_socket() {
    n=0
    while [ ! -S "$1" ]; do
        if ! kill -0 "$d_pid" 2>/dev/null; then
            echo "bench: tetherd exited; see its log" >&2
            exit 1
        fi
        n=$((n + 1))
        if [ "$n" -gt 200 ]; then
            echo "bench: tetherd did not create $1" >&2
            exit 1
        fi
        sleep 0.05
    done
}

stop_tetherd() {
    kill -TERM "$d_pid" 2>/dev/null || true
    wait "$d_pid" || true
    d_pid=""
}

echo "bench: query socket round trips and request rate (tether-sim 1 kHz x 6)"
start_sim --rate 1000 --channels 6
"$build/tetherd" --config /dev/null --device "$tmp/tty" --db "$tmp/q.db" \
    --socket "$tmp/q.sock" 2>"$tmp/q-tetherd.log" &
d_pid=$!
wait_socket "$tmp/q.sock"
sleep 2 # the link comes up and the rings fill
"$build/bench/query_bench" rtt "$tmp/q.sock" "$tmp/echo.sock" "$d_pid" \
    >"$tmp/rtt.txt"
stop_tetherd
stop_sim

echo "bench: history: 30 days through the store, then read over the socket"
"$build/bench/seed_history" "$tmp/h.db" >"$tmp/seed.txt"
# No device: the link keeps retrying while the socket answers, and
# nothing is ingested while the reads are timed.
"$build/tetherd" --config /dev/null --device "$tmp/no-such-tty" \
    --db "$tmp/h.db" --socket "$tmp/h.sock" 2>"$tmp/h-tetherd.log" &
d_pid=$!
wait_socket "$tmp/h.sock"
"$build/bench/query_bench" history "$tmp/h.sock" "$tmp/h.db" \
    "$(get seed_end_us "$tmp/seed.txt")" >"$tmp/hist.txt"
stop_tetherd

w=$(get store_writer_rows_per_s "$tmp/store.txt")
bare=$(get bare_insert_rows_per_s "$tmp/store.txt")
ratio=$(get store_vs_bare "$tmp/store.txt")
p50=$(get loop_stall_p50_us "$tmp/loop.txt")
p99=$(get loop_stall_p99_us "$tmp/loop.txt")
max=$(get loop_stall_max_us "$tmp/loop.txt")
ingest=$(get ingest_samples_per_s "$tmp/loop.txt")
host=$(nproc)
r() { get "$1" "$tmp/rtt.txt"; }
h() { get "hist_$1" "$tmp/hist.txt"; }
sd() { get "seed_rows_$1" "$tmp/seed.txt"; }
# Round trips of one request kind in one placement: "p50 / p99", or "-"
# for a placement not measured (two CPUs on a one-CPU machine).
rt() {
    if [ -z "$(r "rtt_$1_$2_p50_us")" ]; then
        echo "-"
    else
        echo "$(r "rtt_$1_$2_p50_us") / **$(r "rtt_$1_$2_p99_us")**"
    fi
}
rtt_row() {
    echo "| $2 | $(rt same "$1") | $(rt split "$1") | $(rt free "$1") |"
}
rate_row() {
    [ -n "$(r "rate_$1_ratio")" ] || return 0
    echo "| $2 | $(r "rate_$1_tetherd_per_s") | $(r "rate_$1_echo_per_s") | **$(r "rate_$1_ratio")** | $(r "rate_$1_tetherd_cpu_us") / $(r "rate_$1_echo_cpu_us") µs | $(r "rate_$1_tetherd_wakeups") / $(r "rate_$1_echo_wakeups") |"
}
if [ "$(h buckets_param)" = 1 ]; then
    per1000='`buckets: 1000`'
else
    per1000='`bucket_us` for about 1,000 buckets'
fi
# One history row: case key, description, target.
hist_row() {
    echo "| $2 | $(h "$1_points") ($(h "$1_bytes") B; bucket_us $(h "$1_bucket_us"), $(h "$1_rows") rows) | $(h "$1_p50_ms") / **$(h "$1_p99_ms")** ms | $(h "$1_store_ms") ms | $(h "$1_parse_ms") ms | $3 |"
}

echo "bench: firmware upload through tetherd at 115200 and 921600 baud"
TETHER_SIM="$build/tether-sim" TETHER_SIM_V2="$build/tests/sim-v2" \
    TETHER_SIM_MUTE="$build/tests/sim-mute" TETHERD="$build/tetherd" \
    TETHERCTL="$build/tetherctl" \
    "$build/tests/integration-flash" --throughput >"$tmp/flash.txt"
# "115200 baud: ... = 10853 B/s, 94.2% of the line's 11520 B/s (0 chunks ...)"
up() { awk -v b="$1" -v f="$2" '$1 == b { for (i = 1; i <= NF; i++) {
    if (f == "rate" && $i == "B/s,") print $(i - 1)
    if (f == "share" && $(i + 1) == "of") print $i
    if (f == "resent" && $i == "chunks") print substr($(i - 1), 2) } }' \
    "$tmp/flash.txt"; }

cat >"$out" <<MD
# Performance

Measured by \`make bench\` (bench/bench.sh) in one run on one machine
($host cores, $(uname -m)); rerun it to measure yours. Ratios compare with a
reference measured in the same run. Nothing here is asserted by the tests,
which check behaviour only.

| what | measured | reference / target |
|---|---|---|
| Store writer (queue, writer thread, rollups), rows/s | $w | bare prepared-statement insert loop, same rows and batch (1000 rows per transaction, WAL, synchronous=NORMAL): $bare rows/s |
| Writer / bare insert | **$ratio** | target >= 0.8 |
| Ingest through tetherd's link + store in one loop, tether-sim unpaced | $ingest samples/s | offered: 320,000 samples/s (16 channels at 20 kHz), so this is a lower bound of capacity; a 115200-baud UART carries 5,274 |
| Event-loop stall during that ingest (lateness of a 1 ms timer), p50 / p99 / max | $p50 / **$p99** / $max µs | target p99 <= 1,000 µs |
| Rows stored by the whole daemon in 10 s of the same load | $rows | |
| Idle wake-ups (no serial traffic, all threads' context switches) | **$wakeups /s** | target <= 1 |
| Resident memory: after 2 s / after 10 s of full ingest / then idle | $rss_start / $rss_full / $rss_idle KiB | 4096-sample rings for 16 channels, 65,536-row store queue |

## Query socket

tetherd runs against tether-sim (1 kHz, 6 channels). One client sends one
request at a time. A round trip runs from writing the request to reading
the newline of its response; the client checks each response afterwards,
untimed. The reference for the rate is a blocking echo server (in
bench/query_bench.c): a process that reads request lines from the same
kind of socket and answers each with a line as long as tetherd's answer,
doing nothing else. Everything is measured in three placements: client
and server pinned to one CPU (the cost of the work itself), pinned to two
CPUs (adds a cross-CPU wake-up each way), and left to the scheduler,
which tends to keep the echo server, a child of the client, on the
client's CPU and puts tetherd on either, so that column varies from run
to run.

Round trips, µs, p50 / p99: $(r rtt_calls) calls of \`status\` and of \`latest\`
after $(r rtt_warmup); \`version\` and the echo server over all calls of the rate
rounds below.

| request | one CPU | two CPUs | placed by the scheduler |
|---|---|---|---|
$(rtt_row status "\`status\` ($(r rtt_same_status_bytes) B)")
$(rtt_row latest "\`latest\`, the newest sample of each channel ($(r rtt_same_latest_bytes) B)")
$(rtt_row tetherd "\`version\` ($(r rtt_version_bytes) B), the cheapest method")
$(rtt_row echo "echo server, an answer of the same length")

Requests per second, \`version\`, one client: $(r rate_rounds) rounds of $(r rate_calls) requests
to each server in turn, the median round. Target: tetherd at 0.9 of the
echo server's rate or more. "Server CPU" is the answering thread's CPU
time per request and "wake-ups" its voluntary context switches per
request, both from /proc.

| placement | tetherd | echo server | ratio | server CPU, tetherd / echo | wake-ups, tetherd / echo |
|---|---|---|---|---|---|
$(
    rate_row same "one CPU"
    rate_row split "two CPUs"
    rate_row free "placed by the scheduler"
)

## History over the socket

The database is built by bench/seed_history.c through the store's own
API, so the rollups are made the way tetherd makes them, under tetherd's
default retention: one ADC channel at 100 Hz for the last hour (360,000
raw rows) and at 1 Hz for the 29 days and 23 hours before it (30 days at
100 Hz would be 259 million rows; 1 Hz still fills every 1 s and 1 min
rollup row that the month's queries read), and heap reports at 1 Hz for
all 30 days. Rows in the file: adc $(sd adc), adc_1s $(sd adc_1s),
adc_1m $(sd adc_1m), heap $(sd heap), heap_1m $(sd heap_1m). tetherd
serves it with a device that does not exist, so nothing is ingested
meanwhile. Each query runs $(h runs) times after $(h warmup) warm-up calls (with so few
runs, the p99 is the slowest). Times are end to end over the socket; the
client's parsing of the answer is not included and shown apart. "Store
alone" is the same read by store_query_adc() or store_query_heap() in
the bench's own process; the rest is tetherd's JSON, the hand-off from
the thread pool and the socket.

| query | points | p50 / p99 | store alone (p50) | client parse | target |
|---|---|---|---|---|---|
$(hist_row hour_agg "One hour of channel 0 in 0.9 s buckets: all 360,000 raw rows in one call" "<= 60 ms")
$(hist_row hour_1000 "One hour of channel 0, $per1000" "")
$(hist_row month_adc "30 days of channel 0, $per1000" "<= 20 ms")
$(hist_row month_heap "30 days of the heap, $per1000" "<= 20 ms")
$(hist_row hour_page "One hour of channel 0, raw: the first page" "")

## Firmware upload

\`tetherctl flash\`'s path without the client: tetherd uploads sim-v2 (a
tether-sim executable of some 200 KiB) to tether-sim
\`--flash\` paced at each baud rate in both directions, window 4, full
242-byte chunks, then verifies, test-boots, runs the health gate and
confirms. The rate is body bytes over the upload's time (BEGIN to the
last chunk's answer); the line carries baud / 10 bytes a second. Each
chunk costs 256 bytes on the wire, so 94.5% is the ceiling.

| baud | upload rate | share of the line | chunks sent again | target |
|---|---|---|---|---|
| 115200 | $(up 115200 rate) B/s | **$(up 115200 share)** | $(up 115200 resent) | >= 85% |
| 921600 | $(up 921600 rate) B/s | **$(up 921600 share)** | $(up 921600 resent) | >= 85% |

Reproduce: \`make bench\`.
MD
cat "$out"
