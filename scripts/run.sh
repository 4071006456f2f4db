#!/bin/sh
# make run: tetherd against a tether-sim it starts, everything under ./run/.
# make run-qemu: the same against the firmware image on QEMU's emulated
# Cortex-M33 (scripts/qemu.sh) instead of the simulator.
# The configuration is tetherd's compiled-in defaults plus the paths below;
# no file under /etc is read.  Ctrl-C (or SIGTERM) stops both cleanly.
# Usage: run.sh BUILD_DIR [--qemu ELF]
set -eu

build=$1
elf=""
if [ $# -ge 2 ]; then
    if [ "$2" != "--qemu" ] || [ $# -ne 3 ]; then
        echo "usage: run.sh BUILD_DIR [--qemu ELF]" >&2
        exit 2
    fi
    elf=$3
fi
dir=run
mkdir -p "$dir"
rm -f "$dir/tty"

if [ -n "$elf" ]; then
    # qemu.sh execs QEMU: $! is QEMU's pid.  Its messages go to a log.
    "$(dirname "$0")/qemu.sh" "$elf" "$dir/tty" >/dev/null 2>"$dir/qemu.log" &
    mcu="QEMU mps2-an505 running $elf"
else
    "$build/tether-sim" --link "$dir/tty" >/dev/null &
    mcu="tether-sim"
fi
sim=$!
tetherd=""
stop() {
    trap - INT TERM EXIT
    [ -n "$tetherd" ] && kill -TERM "$tetherd" 2>/dev/null || true
    [ -n "$tetherd" ] && wait "$tetherd" 2>/dev/null || true
    kill -TERM "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    echo "run: stopped; the history stays in $dir/tether.db"
}
trap stop INT TERM EXIT

i=0
while [ ! -e "$dir/tty" ]; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then
        echo "run: $mcu did not start" >&2
        exit 1
    fi
    sleep 0.1
done

cat <<MSG
run: $mcu (pid $sim) is the MCU on $dir/tty
run: ask tetherd with tetherctl, e.g.
       $build/tetherctl --socket $dir/tetherd.sock status
       $build/tetherctl --socket $dir/tetherd.sock watch --topics heap,alerts
       $build/tetherctl --socket $dir/tetherd.sock send scenario leak 512
run: tetherd stores its history in $dir/tether.db; look at it with, e.g.
       sqlite3 $dir/tether.db 'SELECT * FROM heap ORDER BY t_us DESC LIMIT 5'
       sqlite3 $dir/tether.db 'SELECT channel, count(*), min(value), max(value) FROM adc GROUP BY channel'
       sqlite3 $dir/tether.db 'SELECT datetime(t_us / 1000000, "unixepoch"), name, state, message FROM alerts'
run: Ctrl-C stops both.  tetherd's log follows.
MSG

"$build/tetherd" --config /dev/null --device "$dir/tty" \
    --db "$dir/tether.db" --socket "$dir/tetherd.sock" &
tetherd=$!
wait "$tetherd" || true
tetherd=""
