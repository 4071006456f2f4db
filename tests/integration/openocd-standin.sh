#!/bin/sh
# A STAND-IN FOR OPENOCD, not OpenOCD: the flash tests
# (tests/integration/test_flash.c) name it as [flash] openocd_command so
# that tetherd's method = openocd runs end to end without SWD hardware.
#
#   openocd-standin.sh STATE -f FILE... [-c init -c "reset halt"
#       -c "flash erase_address ADDR LEN"] -c "program FILE ADDR verify reset exit"
#
# STATE is the test's directory (the first word of openocd_command); the
# rest is what tetherd appends.  The stand-in checks those arguments as
# tetherd must build them (every -f file exists; the erase, if any, on a
# halted target after init, with a hexadecimal ADDR and LEN; one program
# command, last, with a readable FILE and a hexadecimal ADDR), records
# them one a line in STATE/argv, keeps a copy of FILE as STATE/programmed
# (tetherd removes FILE once we exit), and then does to tether-sim what
# OpenOCD and a reset do to a board:
#
# - The erase: the sim's flash is STATE/slots (tether-sim --flash), laid
#   out as the STM32U585's (docs/UPDATE.md section 3): an erase that
#   covers the boot record's page, 0x08120000 to 0x08121fff, removes
#   STATE/slots/boot, the sim's boot record.
# - The write: FILE is what the board would run.  A file that starts with
#   the image magic "TTIM" is a whole image, as tetherd hands over a
#   RAM-loaded one: the stand-in does what that board's bootloader does
#   with it (the STM32U585's, ramimage.c), checks IMAGE_FLAG_RAM, that
#   body_len is the rest of the file and the body's SHA-256, and runs the
#   body.  Anything else is the body itself.
# - The reset: the simulator running as the MCU (pid in STATE/sim.pid, pty
#   symlink STATE/link) is stopped, and the body, a tether-sim executable,
#   is started in its place on the same symlink, with --flash STATE/slots
#   when that directory exists (so a confirmed slot whose record was not
#   erased starts ahead of it, as on the board).  Its pid goes to
#   STATE/sim.pid for the test to stop; `timeout` bounds its life should
#   the test die first.
#
# Exit 0 on success, 1 on a bad argument or image.
set -eu

state=$1
shift
: >"$state/argv"
file=""
addr=""
erase=""
stage=start # start, init, halted, erased: what the -c commands did so far

hex8='0x[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
bad() {
    echo "stand-in: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    printf '%s\n' "$1" >>"$state/argv"
    case $1 in
    -f)
        [ -z "$file" ] && [ "$stage" = start ] ||
            bad "-f after the commands"
        [ $# -ge 2 ] && [ -f "$2" ] || bad "-f needs a file"
        printf '%s\n' "$2" >>"$state/argv"
        shift 2
        ;;
    -c)
        [ $# -ge 2 ] || bad "-c needs a command"
        [ -z "$file" ] || bad "a command after program"
        printf '%s\n' "$2" >>"$state/argv"
        cmd=$2
        shift 2
        case $stage:$cmd in
        start:init) stage=init ;;
        init:"reset halt") stage=halted ;;
        halted:"flash erase_address "*)
            read -r _ _ ea el rest <<EOF
$cmd
EOF
            # shellcheck disable=SC2254 # $hex8 is a pattern
            case $ea:$el in
            $hex8:$hex8) ;;
            *) bad "unexpected erase '$cmd'" ;;
            esac
            [ -z "$rest" ] || bad "unexpected erase '$cmd'"
            erase="$((ea)) $((el))"
            stage=erased
            ;;
        start:program* | erased:program*)
            read -r _ file addr w4 w5 w6 rest <<EOF
$cmd
EOF
            [ "$w4" = verify ] && [ "$w5" = reset ] && [ "$w6" = exit ] &&
                [ -z "$rest" ] || bad "unexpected -c '$cmd'"
            ;;
        *) bad "unexpected -c '$cmd' after $stage" ;;
        esac
        ;;
    *)
        bad "unexpected argument '$1'"
        ;;
    esac
done
[ -n "$file" ] || bad "no program command"
[ -r "$file" ] || bad "cannot read the file '$file'"
# shellcheck disable=SC2254 # $hex8 is a pattern
case $addr in
$hex8) ;;
*) bad "bad address '$addr'" ;;
esac
cp "$file" "$state/programmed"

# "Erase": the boot record's page of the STM32U585 layout.
if [ -n "$erase" ]; then
    # shellcheck disable=SC2086 # two numbers, split on purpose
    set -- $erase
    rec=$((0x08120000))
    if [ "$1" -le "$rec" ] && [ $(($1 + $2)) -ge $((rec + 0x2000)) ]; then
        rm -f "$state/slots/boot"
    fi
fi

# "Write the flash", and what the board's bootloader makes of it.
size=$(wc -c <"$file")
if [ "$size" -ge 64 ] && [ "$(head -c 4 "$file")" = TTIM ]; then
    # Little-endian fields of the header (docs/UPDATE.md section 1).
    le32() {
        od -An -tu1 -j "$1" -N 4 "$file" |
            awk '{ print $1 + 256 * ($2 + 256 * ($3 + 256 * $4)) }'
    }
    flags=$(od -An -tu1 -j 6 -N 1 "$file" | tr -d ' ')
    body_len=$(le32 16)
    [ $((flags & 1)) -eq 1 ] || bad "a whole image that is not RAM-loaded"
    [ "$body_len" -eq $((size - 64)) ] ||
        bad "body_len $body_len in a file of $size bytes"
    want=$(od -An -tx1 -j 28 -N 32 "$file" | tr -d ' \n')
    got=$(tail -c +65 "$file" | sha256sum | cut -d' ' -f1)
    [ "$want" = "$got" ] || bad "the body does not match the header's hash"
    tail -c +65 "$file" >"$state/sim-next"
else
    cp "$file" "$state/sim-next"
fi
chmod 0755 "$state/sim-next"

# "Reset the MCU": the old simulator goes (it removes its symlink as it
# exits), the new image comes up on the same path.
old=$(cat "$state/sim.pid")
kill -TERM "$old" 2>/dev/null || true
i=0
while [ -L "$state/link" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || bad "the old simulator stays"
    sleep 0.05
done
if [ -d "$state/slots" ]; then
    timeout 120 "$state/sim-next" --link "$state/link" \
        --flash "$state/slots" >/dev/null 2>&1 &
else
    timeout 120 "$state/sim-next" --link "$state/link" >/dev/null 2>&1 &
fi
echo $! >"$state/sim.pid"
echo "stand-in: programmed $file at $addr${erase:+ after erasing $erase};" \
    "simulator restarted" >&2
exit 0
