#!/bin/sh
# Fetches the daemons `make bench` compares tetherd's memory with (gpsd and
# chrony, Debian's builds) without installing them: installing would enable
# their services, and chrony would replace the machine's time daemon and
# set its clock from the network.  The packages are downloaded with
# `apt-get download` and unpacked under DIR/root; only the libraries they
# link (packages named lib*, which start nothing) are installed, through
# scripts/deps.sh.  Usage: peers.sh DIR.  A fast no-op once unpacked; on
# failure the bench reports the peer as not measured.
set -eu

dir=$1
peers="gpsd chrony"
root="$dir/root"
[ -x "$root/usr/sbin/gpsd" ] && [ -x "$root/usr/sbin/chronyd" ] && exit 0

mkdir -p "$dir/debs" "$root"
cd "$dir/debs"
if ! apt-get download $peers >/dev/null 2>&1; then
    # The package lists may never have been read on a fresh machine.
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -q >/dev/null
    fi
    apt-get download $peers >/dev/null
fi
cd - >/dev/null
libs="$dir/libs.txt"
: >"$libs"
for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$root"
    # Depends: "a (>= 1), b | c, ..." -> the first choice of each, lib* only.
    dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' |
        grep '^lib' >>"$libs" || true
done
sort -u -o "$libs" "$libs"
"$(dirname "$0")/deps.sh" "$libs"
