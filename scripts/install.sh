#!/bin/sh
# make install: installs tetherd and tetherctl, the
# systemd unit, the sysusers.d and tmpfiles.d files and the example
# configuration.  See docs/SYSTEMD.md.
#
#   PREFIX   where the programs and the systemd files go (default /usr/local;
#            systemd also searches /usr/local/lib/{systemd/system,
#            sysusers.d,tmpfiles.d}, so either /usr/local or /usr works)
#   DESTDIR  staging root prepended to every path (packaging, tests)
#   BUILD    the build directory holding tetherd (default build)
#   UNITDIR, SYSUSERSDIR, TMPFILESDIR  override the three systemd
#            directories (defaults $PREFIX/lib/systemd/system,
#            $PREFIX/lib/sysusers.d, $PREFIX/lib/tmpfiles.d)
#
# The configuration always goes to $DESTDIR/etc/tether/tetherd.conf, the
# path tetherd reads by default, and an existing one is never overwritten.
# The unit's ExecStart= is rewritten to $PREFIX/bin/tetherd.
#
# Installing into the running system (no DESTDIR) also creates the tether
# user (systemd-sysusers), /var/lib/tether (systemd-tmpfiles) and reloads
# systemd; it does not enable or start the service.
set -eu

cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BUILD=${BUILD:-build}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSUSERSDIR=${SYSUSERSDIR:-$PREFIX/lib/sysusers.d}
TMPFILESDIR=${TMPFILESDIR:-$PREFIX/lib/tmpfiles.d}
CONFDIR=/etc/tether

die() {
    echo "install: $*" >&2
    exit 1
}

case $PREFIX in
/*) ;;
*) die "PREFIX must be an absolute path, not '$PREFIX'" ;;
esac
# The prefix goes into ExecStart= unquoted and into a sed replacement.
case $PREFIX in
*[!A-Za-z0-9/._+-]*) die "PREFIX '$PREFIX' has characters a unit file path cannot hold" ;;
esac
[ -x "$BUILD/tetherd" ] || die "$BUILD/tetherd is not built; run make first"

bindir=$PREFIX/bin

say() {
    echo "install: $*"
}

install -d "$DESTDIR$bindir"
install -m 0755 "$BUILD/tetherd" "$DESTDIR$bindir/tetherd"
say "$DESTDIR$bindir/tetherd"
install -m 0755 "$BUILD/tetherctl" "$DESTDIR$bindir/tetherctl"
say "$DESTDIR$bindir/tetherctl"

# The unit, with ExecStart= pointing at the binary just installed.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed "s|^ExecStart=.*|ExecStart=$bindir/tetherd|" systemd/tetherd.service >"$tmp"
grep -q "^ExecStart=$bindir/tetherd\$" "$tmp" || die "no ExecStart= in systemd/tetherd.service"
install -d "$DESTDIR$UNITDIR"
install -m 0644 "$tmp" "$DESTDIR$UNITDIR/tetherd.service"
say "$DESTDIR$UNITDIR/tetherd.service (ExecStart=$bindir/tetherd)"
install -m 0644 systemd/tetherd.socket "$DESTDIR$UNITDIR/tetherd.socket"
say "$DESTDIR$UNITDIR/tetherd.socket"

install -d "$DESTDIR$SYSUSERSDIR" "$DESTDIR$TMPFILESDIR"
install -m 0644 systemd/tether.sysusers "$DESTDIR$SYSUSERSDIR/tether.conf"
say "$DESTDIR$SYSUSERSDIR/tether.conf"
install -m 0644 systemd/tether.tmpfiles "$DESTDIR$TMPFILESDIR/tether.conf"
say "$DESTDIR$TMPFILESDIR/tether.conf"

install -d "$DESTDIR$CONFDIR"
if [ -e "$DESTDIR$CONFDIR/tetherd.conf" ]; then
    say "$DESTDIR$CONFDIR/tetherd.conf exists; kept (the example is systemd/tetherd.conf)"
else
    install -m 0644 systemd/tetherd.conf "$DESTDIR$CONFDIR/tetherd.conf"
    say "$DESTDIR$CONFDIR/tetherd.conf"
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemd-sysusers "$SYSUSERSDIR/tether.conf"
    systemd-tmpfiles --create "$TMPFILESDIR/tether.conf"
    systemctl daemon-reload
    say "tether user and /var/lib/tether created, systemd reloaded;" \
        "start with: systemctl enable --now tetherd"
fi
