#!/bin/sh
# Installs the amd64 package into a throwaway Debian 12 root and checks it, running the maintainer
# scripts for real (dpkg in a chroot): files and permissions, the edgerunner user and its groups,
# `edgerunner --version`, `check-config` on the installed configuration, a short run as the service
# user that publishes (checked with `edgerunner status`) and writes checkpoints on SIGTERM, remove
# (configuration stays), purge (configuration and state gone).
# Needs root, debootstrap (or a prepared root given as BASE_ROOT), and packaging/dist/edgerunner_*_amd64.deb.
# The base root (debootstrap minbase + systemd + libssl3, ~2-4 min from deb.debian.org) is cached in
# packaging/dist/.debroot; each run works on a copy.
# Usage: packaging/install-test.sh [DEB]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
deb=${1:-$(ls "$repo"/packaging/dist/edgerunner_*_amd64.deb | tail -n 1)}
base=${BASE_ROOT:-$repo/packaging/dist/.debroot}
if [ ! -x "$base/bin/sh" ]; then
    command -v debootstrap >/dev/null || { echo "install-test.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 2; }
    debootstrap --variant=minbase --include=systemd,libssl3 bookworm "$base" http://deb.debian.org/debian >/dev/null
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-install.XXXXXX")
daemon=""
cleanup() {
    # A check that fails while the daemon runs must not leave it running (it would hold its port and files).
    if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
        kill -TERM "$daemon" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$daemon" 2>/dev/null || true
    fi
    umount "$root/proc" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT INT TERM
cp -a "$base/." "$root/"
mount -t proc proc "$root/proc" 2>/dev/null || mount --bind /proc "$root/proc"
cp "$deb" "$root/tmp/edgerunner.deb"
in_root() { chroot "$root" "$@"; }
fail() { echo "install-test.sh: FAIL: $*" >&2; exit 1; }

echo "== install"
in_root dpkg -i /tmp/edgerunner.deb
in_root id edgerunner
for group in video gpio i2c spi dialout audio; do
    in_root id -nG edgerunner | tr ' ' '\n' | grep -qx "$group" || fail "edgerunner is not in $group"
done
[ -x "$root/usr/lib/edgerunner/edgerunner" ] || fail "no app host"
[ -L "$root/usr/bin/edgerunner" ] || fail "no /usr/bin/edgerunner"
[ -f "$root/lib/systemd/system/edgerunner.service" ] || [ -f "$root/usr/lib/systemd/system/edgerunner.service" ] || fail "no unit"
[ "$(in_root stat -c '%a %U' /var/lib/edgerunner)" = "700 edgerunner" ] || fail "/var/lib/edgerunner is $(in_root stat -c '%a %U' /var/lib/edgerunner)"
[ "$(stat -c '%a %U' "$root/etc/edgerunner/mqtt-password")" = "600 root" ] || fail "mqtt-password permissions"
[ -L "$root/etc/systemd/system/multi-user.target.wants/edgerunner.service" ] || fail "service not enabled"
grep -qx /etc/edgerunner/config.json "$root/var/lib/dpkg/info/edgerunner.conffiles" || fail "config.json is not a conffile"
if find "$root/usr/lib/edgerunner" -name '*.dll' -exec file {} + | grep -v 'Mono/.Net assembly' | grep -q .; then fail "Windows native files"; fi
echo "installed: $(du -sk "$root/usr/lib/edgerunner" | cut -f1) KiB in /usr/lib/edgerunner"

echo "== version, check-config"
in_root edgerunner --version
in_root edgerunner check-config

echo "== short run as the service user"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot --userspec=edgerunner:edgerunner "$root" env HOME=/var/lib/edgerunner sh -c \
    "cd /var/lib/edgerunner && exec edgerunner run --Mqtt:EmbeddedBroker:Port=$port" >"$root/tmp/run.log" 2>&1 &
daemon=$!
ready=""
for _ in $(seq 1 120); do
    if grep -q "ready in" "$root/tmp/run.log"; then ready=yes; break; fi
    kill -0 "$daemon" 2>/dev/null || break
    sleep 1
done
[ -n "$ready" ] || { cat "$root/tmp/run.log" >&2; fail "the daemon did not get ready"; }
grep "ready in" "$root/tmp/run.log"
# A second daemon on the same device is refused by the lock.
code=0; in_root edgerunner run --Mqtt:EmbeddedBroker:Port=$port >/dev/null 2>&1 || code=$?
[ "$code" = 69 ] || fail "second daemon exited $code, not 69"
sleep 3
code=0; in_root edgerunner status --Mqtt:EmbeddedBroker:Port=$port || code=$?
[ "$code" = 0 ] || fail "status exited $code while the daemon runs"
kill -TERM "$daemon"
wait "$daemon" || fail "daemon exited $? on SIGTERM"
ls "$root/var/lib/edgerunner" | grep -q . || fail "no checkpoints in /var/lib/edgerunner after stop"

echo "== remove"
in_root dpkg -r edgerunner
[ -f "$root/etc/edgerunner/config.json" ] || fail "remove deleted the configuration"
[ ! -e "$root/usr/lib/edgerunner/edgerunner" ] || fail "remove left the program"
echo "== purge"
in_root dpkg -P edgerunner
[ ! -e "$root/etc/edgerunner" ] || fail "purge left /etc/edgerunner"
[ ! -e "$root/var/lib/edgerunner" ] || fail "purge left /var/lib/edgerunner"
echo "install-test.sh: PASS"
