#!/bin/sh
# Installs the Debian packages of a list that are missing.  Usage:
#   deps.sh [LIST]
# LIST is a file of package names, one a line, # for comments; the
# default is scripts/packages.txt, what tether needs to build, run and
# test.  `make bench` also installs scripts/packages-bench.txt.
# A fast no-op when all are present; needs root (or sudo) otherwise.
set -eu

list=${1:-"$(dirname "$0")/packages.txt"}
if [ ! -r "$list" ]; then
    echo "deps: cannot read $list" >&2
    exit 1
fi
missing=""
for pkg in $(grep -v '^#' "$list"); do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
    "install ok installed") ;;
    *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "deps: run as root: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086 # one word per package
$sudo apt-get install -y -q --no-install-recommends $missing
