#!/bin/sh
# Checks the systemd files without installing anything (docs/SYSTEMD.md):
#   1. systemd-analyze verify on the unit and on tetherd.socket.  verify insists that ExecStart=
#      names an existing executable, and /usr/bin/tetherd is not there
#      before installation, so a copy with ExecStart=/bin/true is verified;
#      nothing else in the copy differs.
#   2. systemd-analyze security --offline: the exposure must be at most
#      2.0 (--threshold counts in tenths).
#   3. systemd-sysusers and systemd-tmpfiles, run against a scratch root
#      holding a copy of this machine's /etc/passwd and /etc/group: the
#      user, its groups and /var/lib/tether must come out as intended.
# Needs systemd-analyze, systemd-sysusers and systemd-tmpfiles (Debian's
# systemd package); does not need systemd running.
set -eu

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "check-systemd: $*" >&2
    exit 1
}

sed 's|^ExecStart=.*|ExecStart=/bin/true|' systemd/tetherd.service \
    >"$tmp/tetherd.service"
out=$(systemd-analyze verify "$tmp/tetherd.service" 2>&1) ||
    fail "verify failed: $out"
[ -z "$out" ] || fail "verify is not clean: $out"
echo "check-systemd: systemd-analyze verify: clean"

# The socket unit for socket activation, verified next to the service copy
# it names; it must listen where tetherd's default socket is, 0660, group
# tether.
cp systemd/tetherd.socket "$tmp/tetherd.socket"
out=$(cd "$tmp" && systemd-analyze verify tetherd.socket 2>&1) ||
    fail "verify of tetherd.socket failed: $out"
[ -z "$out" ] || fail "verify of tetherd.socket is not clean: $out"
grep -qx 'ListenStream=/run/tether/tetherd.sock' systemd/tetherd.socket ||
    fail "tetherd.socket does not listen on /run/tether/tetherd.sock"
grep -qx 'SocketMode=0660' systemd/tetherd.socket ||
    fail "tetherd.socket is not mode 0660"
grep -qx 'SocketGroup=tether' systemd/tetherd.socket ||
    fail "tetherd.socket is not group tether"
echo "check-systemd: tetherd.socket: clean"

systemd-analyze security --offline=true --threshold=20 \
    systemd/tetherd.service >"$tmp/security.txt" 2>&1 ||
    fail "exposure above 2.0: $(tail -n 1 "$tmp/security.txt")"
echo "check-systemd: $(tail -n 1 "$tmp/security.txt")"

root=$tmp/root
mkdir -p "$root/etc/sysusers.d" "$root/etc/tmpfiles.d"
cp /etc/passwd /etc/group "$root/etc/"
cp systemd/tether.sysusers "$root/etc/sysusers.d/tether.conf"
cp systemd/tether.tmpfiles "$root/etc/tmpfiles.d/tether.conf"
systemd-sysusers --root="$root" tether.conf >/dev/null 2>&1 ||
    fail "systemd-sysusers failed"
grep -q '^tether:x:[0-9]*:[0-9]*:tether daemon:/var/lib/tether:' \
    "$root/etc/passwd" || fail "no tether user"
grep -q '^tether:x:' "$root/etc/group" || fail "no tether group"
grep -Eq '^dialout:x:[0-9]+:(.*,)?tether(,|$)' "$root/etc/group" ||
    fail "tether is not in dialout"
systemd-tmpfiles --root="$root" --create tether.conf ||
    fail "systemd-tmpfiles failed"
uid=$(awk -F: '$1 == "tether" { print $3 }' "$root/etc/passwd")
[ "$(stat -c '%a %u' "$root/var/lib/tether")" = "750 $uid" ] ||
    fail "/var/lib/tether is not 0750 tether"
echo "check-systemd: sysusers and tmpfiles: tether user in dialout," \
    "/var/lib/tether 0750"
