#!/bin/sh
# Runs a tether firmware image on QEMU's mps2-an505 (the Cortex-M33 of Arm's
# AN505 FPGA image) with its UART0 on a pseudo-terminal, the way tether-sim
# runs the core on Linux.
#
# Usage: qemu.sh ELF [LINK]
#
# The pty's path is the first line on stdout; with LINK, LINK is also made a
# symlink to it (and removed when QEMU ends).  QEMU's own messages go to
# stderr.  QEMU replaces this shell (exec), so the pid that started the
# script is QEMU's: SIGTERM or SIGINT to it ends QEMU, and a parent-death
# signal set before the exec stays in force.  A small watcher reads QEMU's
# output to find the pty; it ends by itself when QEMU's output closes.
#
# QEMU drops what the firmware sends while nothing has the pty open, and
# notices that a reader has come within about a second: a reader attaching
# late misses the boot HELLO and asks for one (tetherd does).
set -eu

usage() {
    echo "usage: qemu.sh ELF [LINK]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
fi
elf=$1
link=${2:-}
qemu=${QEMU:-qemu-system-arm}

if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "qemu.sh: $qemu not found (make deps installs qemu-system-arm)" >&2
    exit 127
fi
if [ ! -r "$elf" ]; then
    echo "qemu.sh: cannot read $elf" >&2
    exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-qemu.XXXXXX")
mkfifo "$dir/out"

# The watcher.  Opening the fifo waits for QEMU's end of it; the directory
# can go as soon as both ends are open.  QEMU's stdout carries the line
# "char device redirected to /dev/pts/N (label serial0)".
(
    exec <"$dir/out"
    rm -rf "$dir"
    trap '' INT TERM HUP # ends with QEMU's output, not with the terminal
    pty=""
    while IFS= read -r line; do
        case $line in
        "char device redirected to "*)
            pty=${line#char device redirected to }
            pty=${pty%% *}
            if [ -n "$link" ] && ! ln -sfn "$pty" "$link"; then
                echo "qemu.sh: cannot make $link a link to $pty" >&2
            fi
            printf '%s\n' "$pty"
            ;;
        *"nic lan9118.0 has no peer"*)
            # The board always has its Ethernet chip; this firmware does
            # not use it, so there is nothing to connect it to.
            ;;
        *)
            printf '%s\n' "$line" >&2
            ;;
        esac
    done
    if [ -n "$link" ] && [ -n "$pty" ] &&
        [ "$(readlink "$link" 2>/dev/null)" = "$pty" ]; then
        rm -f "$link"
    fi
) &

# -nodefaults drops every default device; UART0 gets the pty, nothing takes
# stdio, and no monitor is offered.  A system reset (SYSRESETREQ, the
# watchdog) restarts the machine: there is no -no-reboot.
exec "$qemu" -M mps2-an505 -kernel "$elf" -nodefaults -display none \
    -monitor none -serial pty >"$dir/out" 2>&1
