#!/bin/sh
# Checks the unit and its sysusers/tmpfiles files offline, as CI runs it (no systemd needed as PID 1):
#   systemd-analyze verify         must print nothing (every warning is a failure)
#   systemd-analyze security       --offline exposure at most 2.5 (prints the figure)
#   systemd-sysusers, -tmpfiles    apply cleanly to an empty root, giving the user, groups and directories
# Usage: systemd/check.sh [MAX_EXPOSURE]   (default 2.5)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
max=${1:-2.5}
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || { echo "systemd/check.sh: $tool is missing (apt-get install systemd)" >&2; exit 2; }
done
root=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-unit-check.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM

# verify resolves dependencies (sysinit.target, ...) and ExecStart= inside --root: give it the system's
# units and a stand-in executable where the package puts the real one.
mkdir -p "$root/usr/lib/systemd/system" "$root/usr/bin" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/etc"
cp -r /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/" 2>/dev/null || cp -r /lib/systemd/system/. "$root/usr/lib/systemd/system/"
cp "$here/edgerunner.service" "$root/usr/lib/systemd/system/edgerunner.service"
printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/edgerunner"
chmod 755 "$root/usr/bin/edgerunner"

out=$(systemd-analyze verify --root="$root" edgerunner.service 2>&1) || { echo "$out" >&2; echo "systemd/check.sh: systemd-analyze verify failed" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "$out" >&2
    echo "systemd/check.sh: systemd-analyze verify is not clean" >&2
    exit 1
fi
echo "systemd-analyze verify: clean"

security=$(systemd-analyze security --offline=true "$here/edgerunner.service" 2>&1) || true
exposure=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for edgerunner.service: \([0-9.]*\).*/\1/p')
if [ -z "$exposure" ]; then
    echo "$security" >&2
    echo "systemd/check.sh: no exposure figure from systemd-analyze security" >&2
    exit 1
fi
echo "systemd-analyze security --offline=true: exposure $exposure (at most $max)"
if ! awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e <= m) }'; then
    printf '%s\n' "$security" | grep '✗' >&2 || true
    echo "systemd/check.sh: exposure $exposure is over $max" >&2
    exit 1
fi

cp "$here/edgerunner.sysusers" "$root/usr/lib/sysusers.d/edgerunner.conf"
cp "$here/edgerunner.tmpfiles" "$root/usr/lib/tmpfiles.d/edgerunner.conf"
systemd-sysusers --root="$root" edgerunner.conf >/dev/null 2>&1
systemd-tmpfiles --root="$root" --create edgerunner.conf
grep -q '^edgerunner:x:[0-9]*:[0-9]*:EdgeRunner daemon:/var/lib/edgerunner:/usr/sbin/nologin$' "$root/etc/passwd"
for group in video gpio i2c spi dialout audio; do
    grep -q "^$group:x:[0-9]*:.*edgerunner" "$root/etc/group" || { echo "systemd/check.sh: edgerunner is not in group $group" >&2; exit 1; }
done
[ "$(stat -c %a "$root/var/lib/edgerunner")" = 700 ] && [ -d "$root/run/edgerunner" ]
echo "sysusers.d, tmpfiles.d: user edgerunner in video gpio i2c spi dialout audio; /var/lib/edgerunner 0700, /run/edgerunner"
