#!/bin/sh
# make run: starts tether-sim and shows its frames decoded until Ctrl-C.
# Usage: run-sim.sh SIM DUMP [sim options...]
set -eu

sim=$1
dump=$2
shift 2
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM

"$sim" "$@" >"$dir/pty" &
pid=$!
i=0
while [ ! -s "$dir/pty" ]; do
    i=$((i + 1))
    if [ "$i" -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run: tether-sim did not start" >&2
        exit 1
    fi
    sleep 0.1
done
echo "run: tether-sim is on $(cat "$dir/pty"); decoded frames follow (Ctrl-C stops)"
"$dump" "$(cat "$dir/pty")" || true
