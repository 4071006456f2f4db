#!/bin/sh
# A STAND-IN FOR OPENOCD, not OpenOCD: the flash tests
# (tests/integration/test_flash.c) name it as [flash] openocd_command so
# that tetherd's method = openocd runs end to end without SWD hardware.
#
#   openocd-standin.sh STATE -f FILE... -c "program BODY ADDR verify reset exit"
#
# STATE is the test's directory (the first word of openocd_command); the
# rest is what tetherd appends.  The stand-in checks those arguments as
# tetherd must build them (every -f file exists, one -c with a readable
# BODY and a hexadecimal ADDR), records them one a line in STATE/argv, and
# then does to tether-sim what OpenOCD writing the flash and resetting the
# MCU does to a board: the simulator running as the MCU (pid in
# STATE/sim.pid, pty symlink STATE/link) is stopped, and BODY, a tether-sim
# executable, is started in its place on the same symlink.  Its pid goes
# to STATE/sim.pid for the test to stop; `timeout` bounds its life should
# the test die first.  Exit 0 on success, 1 on a bad argument.
set -eu

state=$1
shift
: >"$state/argv"
body=""
addr=""
while [ $# -gt 0 ]; do
    printf '%s\n' "$1" >>"$state/argv"
    case $1 in
    -f)
        [ $# -ge 2 ] && [ -f "$2" ] ||
            { echo "stand-in: -f needs a file" >&2; exit 1; }
        printf '%s\n' "$2" >>"$state/argv"
        shift 2
        ;;
    -c)
        [ $# -ge 2 ] || { echo "stand-in: -c needs a command" >&2; exit 1; }
        printf '%s\n' "$2" >>"$state/argv"
        cmd=$2
        shift 2
        read -r w1 body addr w4 w5 w6 rest <<EOF
$cmd
EOF
        [ "$w1" = program ] && [ "$w4" = verify ] && [ "$w5" = reset ] &&
            [ "$w6" = exit ] && [ -z "$rest" ] ||
            { echo "stand-in: unexpected -c '$cmd'" >&2; exit 1; }
        ;;
    *)
        echo "stand-in: unexpected argument '$1'" >&2
        exit 1
        ;;
    esac
done
[ -r "$body" ] || { echo "stand-in: cannot read the body '$body'" >&2; exit 1; }
case $addr in
0x[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
*) echo "stand-in: bad address '$addr'" >&2; exit 1 ;;
esac

# "Write the flash": tetherd removes BODY once we exit.
cp "$body" "$state/sim-next"
chmod 0755 "$state/sim-next"

# "Reset the MCU": the old simulator goes (it removes its symlink as it
# exits), the new image comes up on the same path.
old=$(cat "$state/sim.pid")
kill -TERM "$old" 2>/dev/null || true
i=0
while [ -L "$state/link" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || { echo "stand-in: the old simulator stays" >&2; exit 1; }
    sleep 0.05
done
timeout 120 "$state/sim-next" --link "$state/link" >/dev/null 2>&1 &
echo $! >"$state/sim.pid"
echo "stand-in: programmed $body at $addr; simulator restarted" >&2
exit 0
