#!/bin/sh
# Flash and RAM of each firmware image, checked against its budget
# (docs/FIRMWARE.md).  Run from the top of the tree, as `make size` and
# `make check-size` do:
#
#     scripts/fw-size.sh BUILD PORT...
#
# For each port it reads mcu-firmware/port/PORT/port.mk for the size tool
# (FW_SIZE_PORT) and the budget class (FW_CLASS_PORT: m33 or avr; if unset,
# taken from the size tool's name), measures BUILD/fw/PORT/tether-fw.elf,
# and finds the heap arena (the core's symbol "arena") with the matching nm
# so that it can be shown apart from the firmware's own static RAM.
#
#     flash      = text + data        (initial values of .data live in flash)
#     RAM        = data + bss         (.noinit counts as bss)
#     static RAM = RAM - heap arena
#
# Budgets:  m33  flash <= 32768, static RAM <= 8192
#           avr  flash <= 32768, RAM <= 1536 (a quarter of the 2048 bytes of
#                SRAM stays free for the stack)
#
# A port whose tether-fw.elf is a bootloader carrying the application as
# its factory image (mps2-an505) names the application's ELF, beside
# tether-fw.elf, in FW_APP_PORT.  The budget then applies to the
# application, which is what runs and what an update slot holds, and the
# bootloader gets a line of its own, "PORT boot": tether-fw.elf less its
# .factory section (the application's bytes), its flash held to 8192 so
# that it stays small; its RAM (its stack) is in use only until the
# application starts.
# Exits 1, naming every budget exceeded, when one is; 2 on a usage or
# measurement error.
set -u

FLASH_MAX=32768
M33_STATIC_MAX=8192
BOOT_FLASH_MAX=8192
AVR_SRAM=2048
AVR_RAM_MAX=$((AVR_SRAM - AVR_SRAM / 4))

die() {
    echo "fw-size: $*" >&2
    exit 2
}

[ $# -ge 1 ] || die "usage: fw-size.sh BUILD PORT..."
build=$1
shift
[ $# -ge 1 ] || die "no firmware ports (no mcu-firmware/port/*/port.mk)"

# Prints the value of make variable $2 as port.mk $1 sets it.  make itself
# reads the file, so any assignment form works; the parent make's flags are
# not passed on.
mkvar() {
    # shellcheck disable=SC2016 # $(...) is for make, not the shell
    printf 'include %s\n$(info =$(%s))\nnone: ;\n' "$1" "$2" |
        MAKEFLAGS='' MFLAGS='' ${MAKE:-make} -s -f - none 2>/dev/null |
        sed -n 's/^=//p'
}

failed=0
printf '%-16s %-5s %7s %6s %7s %7s %15s %8s %15s  %s\n' port class text \
    data bss arena flash/budget static RAM/budget status

for port in "$@"; do
    mk=mcu-firmware/port/$port/port.mk
    [ -f "$mk" ] || die "$port: no $mk"
    app=$(mkvar "$mk" "FW_APP_$port")
    boot=$build/fw/$port/tether-fw.elf
    elf=$build/fw/$port/${app:-tether-fw.elf}
    [ -f "$elf" ] || die "$port: no $elf (build it with make fw-build)"

    size=$(mkvar "$mk" "FW_SIZE_$port")
    class=$(mkvar "$mk" "FW_CLASS_$port")
    nm=$(mkvar "$mk" "FW_NM_$port")
    [ -n "$size" ] || die "$port: $mk does not set FW_SIZE_$port"
    [ -n "$nm" ] || nm=${size%size}nm
    if [ -z "$class" ]; then
        case $size in
        avr-size) class=avr ;;
        arm-none-eabi-size) class=m33 ;;
        *) die "$port: set FW_CLASS_$port (m33 or avr) in $mk" ;;
        esac
    fi

    # Berkeley format: a header, then "text data bss dec hex filename".
    # shellcheck disable=SC2046 # split into fields on purpose
    set -- $("$size" -B "$elf" | sed -n 2p)
    [ $# -ge 3 ] || die "$port: $size could not read $elf"
    text=$1 data=$2 bss=$3

    arena=$("$nm" -S "$elf" |
        awk '$3 ~ /^[bBdD]$/ && ($4 == "arena" || $4 ~ /^arena\./) {
                 print $2; exit }')
    [ -n "$arena" ] || die "$port: no heap arena symbol in $elf"
    arena=$((0x$arena))

    flash=$((text + data))
    ram=$((data + bss))
    was_failed=$failed
    failed=0
    static=$((ram - arena))
    case $class in
    m33)
        ram_shown=$static
        ram_max=$M33_STATIC_MAX
        if [ "$static" -gt "$M33_STATIC_MAX" ]; then
            echo "fw-size: $port: static RAM $static B (data + bss - heap" \
                "arena) exceeds the Cortex-M33 budget of $M33_STATIC_MAX B" >&2
            failed=1
        fi
        ;;
    avr)
        ram_shown=$ram
        ram_max=$AVR_RAM_MAX
        if [ "$ram" -gt "$AVR_RAM_MAX" ]; then
            echo "fw-size: $port: RAM $ram B (data + bss) leaves" \
                "$((AVR_SRAM - ram)) B of the $AVR_SRAM B SRAM for the" \
                "stack; at least $((AVR_SRAM - AVR_RAM_MAX)) B must stay" \
                "free" >&2
            failed=1
        fi
        ;;
    *) die "$port: unknown budget class '$class' (m33 or avr)" ;;
    esac
    if [ "$flash" -gt "$FLASH_MAX" ]; then
        echo "fw-size: $port: flash $flash B (text + data) exceeds" \
            "$FLASH_MAX B" >&2
        failed=1
    fi
    status=ok
    [ "$failed" -eq 0 ] || status=OVER
    printf '%-16s %-5s %7d %6d %7d %7d %15s %8d %15s  %s\n' "$port" \
        "$class" "$text" "$data" "$bss" "$arena" "$flash/$FLASH_MAX" \
        "$static" "$ram_shown/$ram_max" "$status"

    if [ -n "$app" ]; then
        [ -f "$boot" ] || die "$port: no $boot (build it with make fw-build)"
        # shellcheck disable=SC2046 # split into fields on purpose
        set -- $("$size" -B "$boot" | sed -n 2p)
        [ $# -ge 3 ] || die "$port: $size could not read $boot"
        text=$1 data=$2 bss=$3
        factory=$("$size" -A "$boot" | awk '$1 == ".factory" { print $2 }')
        [ -n "$factory" ] || die "$port: no .factory section in $boot"
        text=$((text - factory))
        flash=$((text + data))
        ram=$((data + bss))
        status=ok
        if [ "$flash" -gt "$BOOT_FLASH_MAX" ]; then
            echo "fw-size: $port: the bootloader's flash $flash B exceeds" \
                "$BOOT_FLASH_MAX B" >&2
            failed=1
            status=OVER
        fi
        printf '%-16s %-5s %7d %6d %7d %7s %15s %8d %15s  %s\n' \
            "$port boot" "$class" "$text" "$data" "$bss" - \
            "$flash/$BOOT_FLASH_MAX" "$ram" "$ram/-" "$status"
    fi
    [ "$was_failed" -eq 0 ] || failed=1
done

echo "fw-size: flash = text + data; static = data + bss - arena;" \
    "RAM/budget is static RAM (m33) or data + bss (avr)"
if [ "$failed" -ne 0 ]; then
    echo "fw-size: a firmware image is over its budget" >&2
    exit 1
fi
echo "fw-size: every image is within its budget"
